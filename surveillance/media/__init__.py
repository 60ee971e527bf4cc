"""Video work: RTSP demux, the compressed packet ring, fan-out, decoding on demand.

Nothing here imports the web layer. The ingest path (:mod:`.worker`) only demuxes: packets
stay compressed from the camera to the ring and to every consumer; decoding happens in
consumers that asked for pictures (:mod:`.snapshot`).
"""
