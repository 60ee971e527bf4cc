"""WebRTC delivery with aiortc: camera packets forwarded as they are.

:class:`PassthroughTrack` hands aiortc the camera's own H.264 access units (aiortc packs
them into RTP without decoding). Three things make that work in a browser
(docs/architecture.md, "Browser delivery facts"): H.264 must be forced on the transceiver
(Chromium offers VP8 first and aiortc would otherwise send H.264 under VP8's payload type);
parameter sets go in front of every keyframe, since some cameras send them only in the
SDP; and a new viewer starts from the cached GOP, because aiortc ignores the browser's
keyframe requests (PLI) in pass-through and the camera's next keyframe may be seconds away.

Sources no browser path can carry as they are (H.265 in a browser without H.265 support)
are transcoded once per camera stream and size by a one-tile mosaic renderer
(services/mosaic.py), whose H.264 is forwarded by this same track.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription, sdp
from aiortc.exceptions import OperationError

from surveillance.errors import BadOffer
from surveillance.media.bitstream import parameter_sets_annexb, with_parameter_sets
from surveillance.media.fanout import Subscription
from surveillance.media.packets import Packet, StreamInfo

RTP_CLOCK = 90_000
RTP_TIME_BASE = Fraction(1, RTP_CLOCK)
CACHED_FRAME_STEP = 1  # RTP ticks between cached-GOP frames: the browser plays them at once
DEFAULT_FRAME_STEP = RTP_CLOCK // 25  # used when the source timestamps jump
MAX_SOURCE_STEP = 5 * RTP_CLOCK  # a larger gap is a discontinuity (reconnect), not a pause


class RtpClock:
    """RTP timestamps for forwarded frames.

    Live frames keep the source's spacing, so the browser paces them as the camera did.
    Frames of the cached GOP are squeezed one tick apart: they are decoded only to reach
    the present picture, and spacing them like live frames would add their age as delay.
    Source discontinuities (a reconnect restarts timestamps) are bridged with one frame step.
    """

    def __init__(self) -> None:
        self._last_source: int | None = None
        self._last_info: StreamInfo | None = None
        self._out = 0

    def next(self, packet: Packet, cached: bool) -> int:
        source_ts = packet.pts if packet.pts is not None else packet.dts
        if source_ts is None:
            step = DEFAULT_FRAME_STEP
            source = None
        else:
            source = int(source_ts * packet.info.time_base * RTP_CLOCK)
            step = DEFAULT_FRAME_STEP
            if self._last_source is not None and packet.info is self._last_info:
                delta = source - self._last_source
                if 0 < delta <= MAX_SOURCE_STEP:
                    step = delta
        if cached:
            step = CACHED_FRAME_STEP
        if self._last_source is None and self._out == 0:
            step = 0
        self._last_source = source
        self._last_info = packet.info
        self._out += step
        return self._out


class PassthroughTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, subscription: Subscription) -> None:
        super().__init__()
        self._subscription = subscription
        self._cached_left = subscription.prefilled
        self._clock = RtpClock()
        self._parameter_sets: dict[int, bytes] = {}
        self.frames_sent = 0

    def _parameter_sets_for(self, info: StreamInfo) -> bytes:
        key = id(info)
        if key not in self._parameter_sets:
            self._parameter_sets = {key: parameter_sets_annexb(info.codec, info.extradata)}
        return self._parameter_sets[key]

    async def recv(self) -> Any:  # av.Packet: aiortc packs it into RTP as it is
        packet = await self._subscription.aget()
        cached = self._cached_left > 0
        if cached:
            self._cached_left -= 1
        data = packet.data
        if packet.keyframe:
            data = with_parameter_sets(
                packet.info.codec, data, self._parameter_sets_for(packet.info)
            )
        out = av.Packet(data)
        out.time_base = RTP_TIME_BASE
        out.pts = self._clock.next(packet, cached)
        out.is_keyframe = packet.keyframe
        self.frames_sent += 1
        return out

    def stop(self) -> None:
        self._subscription.close()
        super().stop()


def without_mdns_candidates(sdp: str) -> str:
    """The offer without host candidates hidden behind mDNS names (``<uuid>.local``).

    Browsers hide local addresses that way; aiortc tries to resolve each name and waits out
    a one-second time-out first, which delayed every viewer's first frame by a second. The
    browser's connectivity checks reach us anyway, and its real address is learned from
    them (a peer-reflexive candidate), so nothing is lost by dropping these lines.
    """
    kept = [
        line
        for line in sdp.splitlines(keepends=True)
        if not (line.startswith("a=candidate:") and ".local " in line)
    ]
    return "".join(kept)


def h264_codecs() -> list[Any]:
    capabilities = RTCRtpSender.getCapabilities("video")
    return [c for c in capabilities.codecs if c.mimeType.lower() == "video/h264"]


async def answer_offer(
    peer: RTCPeerConnection, offer_sdp: str, track: MediaStreamTrack
) -> RTCSessionDescription:
    """Accept a browser's receive-only video offer and send ``track`` as H.264.

    Raises BadOffer for an offer that does not parse, has no video, or shares no codec
    with us; anything else that fails is ours, and leaves as it is.
    """
    offer = without_mdns_candidates(offer_sdp)
    try:
        # aiortc's parser answers malformed lines with assertions, index and value errors:
        # parsed here alone, whatever it raises is the offer's fault.
        parsed = sdp.SessionDescription.parse(offer)
    except Exception as exc:
        raise BadOffer(f"the SDP does not parse ({type(exc).__name__})") from exc
    if not any(media.kind == "video" for media in parsed.media):
        raise BadOffer("the offer has no video section")
    # The transceiver must exist, with H.264 preferred, before the offer is applied: aiortc
    # settles a transceiver's codecs when it matches it to the offer's video section.
    # Otherwise it picks the browser's first choice (VP8) and would send our H.264
    # packets under VP8's payload type, which nothing can decode.
    transceiver = peer.addTransceiver(track, direction="sendonly")
    transceiver.setCodecPreferences(h264_codecs())
    try:
        await peer.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
    except (ValueError, OperationError) as exc:
        # ValueError: the offer fails validation (ICE credentials, DTLS fingerprint, RTCP
        # multiplexing); OperationError: it offers no codec we can send (no H.264).
        raise BadOffer(str(exc) or type(exc).__name__) from exc
    if transceiver.mid is None:
        raise BadOffer("the offer has no video section")
    await peer.setLocalDescription(await peer.createAnswer())
    local = peer.localDescription
    return RTCSessionDescription(sdp=local.sdp, type=local.type)
