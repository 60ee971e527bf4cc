"""Video work: RTSP demux, the compressed packet ring, fan-out, decoding on demand.

Nothing here imports the web layer or the services. The ingest path (:mod:`.worker`) only
demuxes: packets stay compressed from the camera to the ring (:mod:`.ring`) and to every
consumer (:mod:`.fanout`) of the camera's :mod:`.stream`, which also says when its first
picture can be had (``Stream.wait_ready``). Decoding happens only in consumers that asked
for pictures, all through :class:`.decode.PacketDecoder`: snapshots (:mod:`.decode`),
mosaic tiles (:mod:`.tile_source`) and the WebRTC transcoding track (:mod:`.webrtc`).
Browsers get the packets as they are over WebRTC (:mod:`.webrtc`, viewers' connections in
:mod:`.peers`) or as fragmented MP4 (:mod:`.fmp4`); clips are remuxed (:mod:`.clip`).
"""
