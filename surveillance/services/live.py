"""Live delivery to browsers: which path each source takes, and the sessions on each path.

One ingest per camera serves every viewer: each viewer is a bounded subscription on the
camera's stream, so a viewer that falls behind drops frames and never slows the camera or
another viewer. The path is chosen per source and per browser from what the page reports
it can decode (docs/architecture.md, "Browser delivery facts"):

- ``webrtc``: H.264 without B-frames, forwarded packet by packet, no decoding;
- ``mse``: fragmented MP4 over a WebSocket, still no re-encoding: B-frame H.264, and H.265
  where the browser's Media Source Extensions accept it;
- ``transcode``: decoded, scaled down and re-encoded to H.264 over WebRTC: the last resort,
  once per camera stream and size for all its viewers (a one-tile mosaic renderer,
  services/mosaic.py).

What the picture is for matters too (``Purpose``): a tile among many on a wall takes fMP4
whenever the browser can play it, because a WebSocket send per frame costs the server far
less than aiortc's per-RTP-packet path (docs/architecture.md, "Browser delivery facts");
a single picture watched closely keeps WebRTC where it works, the lowest latency.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from surveillance.errors import Conflict
from surveillance.media.batch_thread import BatchThread
from surveillance.media.bitstream import codec_string, parameter_sets_annexb
from surveillance.media.fanout import Subscription, SubscriptionClosed
from surveillance.media.fmp4 import InitSegment, MseSegmenter
from surveillance.media.packets import StreamInfo
from surveillance.media.peers import PeerAnswer, PeerSessions
from surveillance.media.stream import Stream
from surveillance.media.webrtc import PassthroughTrack
from surveillance.services.ingest import IngestService
from surveillance.services.mosaic import MAX_FPS, MosaicLease, MosaicService

log = logging.getLogger(__name__)

CODEC_NAMES = {"h264": "H.264", "hevc": "H.265"}  # FFmpeg's codec names, as people say them

TRANSCODE_MAX_WIDTH = 960  # pixels; the fallback is for seeing something, not for detail
# How long a plan waits, right after a (re)connect, for the stream to show whether it has
# B-frames (media/reorder.py settles it within 12 frames: 0.5 s at 25 fps, 2 s at 6 fps).
B_FRAMES_KNOWN_WAIT_S = 2.0
LIVE_QUEUE_PACKETS = 120  # ~5 s at 25 fps: a viewer further behind skips to the next keyframe
# Packets muxed per hand-off to the muxing thread: a viewer's backlog (the cached GOP, a
# burst after a stall) goes over in one; a viewer that keeps up has one packet at a time.
MSE_BURST_PACKETS = 50


class DeliveryPath(StrEnum):
    WEBRTC = "webrtc"
    MSE = "mse"
    TRANSCODE = "transcode"


class Purpose(StrEnum):
    """What the page shows the picture for."""

    GRID = "grid"  # one tile of many: the cheapest path per viewer
    SINGLE = "single"  # one picture watched closely (full screen): the lowest latency


@dataclass(frozen=True)
class BrowserCaps:
    """What the page found it can decode."""

    webrtc_h264: bool
    mse_avc: bool
    mse_hevc: bool


@dataclass(frozen=True)
class SourceFacts:
    codec: str
    b_frames: bool | None  # None: the connection has not shown yet whether it has any
    codec_string: str | None
    width: int
    height: int


@dataclass(frozen=True)
class DeliveryPlan:
    path: DeliveryPath
    reason: str
    source: SourceFacts

    @property
    def mime(self) -> str | None:
        if self.source.codec_string is None:
            return None
        return f'video/mp4; codecs="{self.source.codec_string}"'


def choose_path(
    source: SourceFacts,
    caps: BrowserCaps,
    purpose: Purpose = Purpose.SINGLE,
    avoid: frozenset[DeliveryPath] = frozenset(),
) -> tuple[DeliveryPath, str]:
    """The path for this source to this browser and use; ``avoid``: pass-through paths the
    page saw fail for this source (its video did not advance), taken as ones it cannot
    decode."""
    if avoid:
        usable = BrowserCaps(
            webrtc_h264=caps.webrtc_h264 and DeliveryPath.WEBRTC not in avoid,
            mse_avc=caps.mse_avc and DeliveryPath.MSE not in avoid,
            mse_hevc=caps.mse_hevc and DeliveryPath.MSE not in avoid,
        )
        path, reason = choose_path(source, usable, purpose)
        return path, f"{reason} (the page's video did not advance over {', '.join(sorted(avoid))})"
    if purpose is Purpose.GRID and source.codec == "h264" and caps.mse_avc:
        return DeliveryPath.MSE, "grid tile: fragmented MP4 pass-through, the cheapest per viewer"
    if source.codec == "h264":
        if source.b_frames is False and caps.webrtc_h264:
            return DeliveryPath.WEBRTC, "H.264 without B-frames: WebRTC pass-through"
        if caps.mse_avc:
            why = {
                True: "B-frames",
                None: "B-frames not known yet",
                False: "no WebRTC H.264 in this browser",
            }[source.b_frames]
            return DeliveryPath.MSE, f"{why}: fragmented MP4 pass-through"
        if source.b_frames is None and caps.webrtc_h264:
            # No MSE to fall back on: pass-through may stutter if B-frames turn up, but
            # decoding and re-encoding would cost far more for a source that likely has none.
            return DeliveryPath.WEBRTC, "B-frames not known yet, no MSE: WebRTC pass-through"
    elif source.codec == "hevc" and caps.mse_hevc:
        return DeliveryPath.MSE, "H.265 accepted by this browser: fragmented MP4 pass-through"
    return DeliveryPath.TRANSCODE, "no pass-through path this browser can decode: transcoding"


class NoWebRtcPassThrough(Conflict):
    """Pass-through WebRTC asked for a source browsers cannot decode over WebRTC."""

    def __init__(self, camera_id: str, codec: str) -> None:
        name = CODEC_NAMES.get(codec, codec)
        super().__init__(
            f"camera {camera_id!r} sends {name}, which browsers cannot decode over WebRTC "
            "pass-through: ask POST /api/live/plan for its path (fragmented MP4 over "
            "/api/live/mse where the browser accepts it, else /api/live/webrtc with "
            '"transcode": true)'
        )
        self.camera_id = camera_id


class MseChannel(Protocol):
    """Where fragmented MP4 goes: a WebSocket, as the API passes it, satisfies this."""

    async def send_json(self, data: Any) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...


class LiveService:
    def __init__(
        self,
        ingest: IngestService,
        transcoders: MosaicService,
        peers: PeerSessions | None = None,
    ) -> None:
        self._ingest = ingest
        self._transcoders = transcoders
        self._facts: dict[int, tuple[StreamInfo, SourceFacts]] = {}
        self._peers = peers if peers is not None else PeerSessions()  # empty is falsy
        self._muxing = BatchThread("mse-mux")

    async def _source_facts(self, stream: Stream, wait_s: float) -> SourceFacts:
        info = stream.ring.latest_gop()[0].info
        cached = self._facts.get(id(stream))
        if cached and cached[0] is info and cached[1].b_frames is not None:
            return cached[1]
        # Right after a (re)connect the connection may not have shown its B-frames yet:
        # wait the fraction of a second that takes rather than guess from a lucky sample.
        b_frames = await stream.wait_b_frames_known(info, wait_s)
        parameter_sets = parameter_sets_annexb(info.codec, info.extradata)
        facts = SourceFacts(
            codec=info.codec,
            b_frames=b_frames,
            codec_string=codec_string(info.codec, parameter_sets),
            width=info.width,
            height=info.height,
        )
        self._facts[id(stream)] = (info, facts)
        return facts

    async def plan(
        self,
        camera_id: str,
        sub: bool,
        caps: BrowserCaps,
        purpose: Purpose = Purpose.SINGLE,
        avoid: frozenset[DeliveryPath] = frozenset(),
    ) -> DeliveryPlan:
        stream = await self._ingest.ready_stream(camera_id, sub)
        # A grid tile in a browser with MSE takes fMP4 whatever the B-frame verdict.
        grid_mse = purpose is Purpose.GRID and caps.mse_avc and DeliveryPath.MSE not in avoid
        source = await self._source_facts(stream, 0.0 if grid_mse else B_FRAMES_KNOWN_WAIT_S)
        path, reason = choose_path(source, caps, purpose, avoid)
        return DeliveryPlan(path, reason, source)

    async def subscribe(self, camera_id: str, sub: bool) -> Subscription:
        return _live_subscription(await self._ingest.ready_stream(camera_id, sub))

    async def serve_mse(
        self,
        camera_id: str,
        sub: bool,
        channel: MseChannel,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        """Send the camera's packets as fragmented MP4 until the stream or the viewer ends.

        Raises CameraNotFound or CameraUnavailable before anything is sent. Then calls
        ``on_start``, and sends a JSON message ``{"type": "init", "mime": ...}`` and the init
        segment before each new set of parameters, then one media segment per frame. An error
        raised by the channel's send methods means the viewer has gone: it returns normally.
        """
        subscription = await self.subscribe(camera_id, sub)
        if on_start is not None:
            on_start()
        segmenter = MseSegmenter()
        try:
            while True:
                burst = [await subscription.aget()]
                burst += subscription.take_pending(MSE_BURST_PACKETS - 1)
                # Muxing is FFmpeg work: off the event loop, in one thread that takes every
                # viewer's waiting burst per wake-up (a pool's hop per job cost more than the
                # muxing). One viewer's bursts go one at a time: its segments keep their order.
                segments = await self._muxing.run(functools.partial(segmenter.segments, burst))
                for segment in segments:
                    if isinstance(segment, InitSegment):
                        await channel.send_json({"type": "init", "mime": segment.mime})
                        segment = segment.data
                    await channel.send_bytes(segment)
        except SubscriptionClosed:
            pass
        except Exception as exc:  # the channel failed: the viewer has gone
            log.debug("mse viewer of %s gone: %s", camera_id, type(exc).__name__)
        finally:
            subscription.close()
            self._close_off_loop(segmenter)

    def _close_off_loop(self, segmenter: MseSegmenter) -> None:
        # A burst may still be muxing in a thread (the viewer's task was cancelled): close
        # after it, there, without making the event loop wait.
        try:
            self._muxing.submit(segmenter.close)
        except RuntimeError:  # shutting down: the thread takes no more work
            segmenter.close()

    async def webrtc_answer(
        self,
        camera_id: str,
        sub: bool,
        offer_sdp: str,
        transcode: bool,
        on_end: Callable[[], None] | None = None,
        owner: str | None = None,
    ) -> PeerAnswer:
        """The answer; ``on_end`` is called once when the viewer's connection ends.

        Raises CameraNotFound, CameraUnavailable, NoWebRtcPassThrough for pass-through of
        a source that is not H.264, BadOffer for an offer that cannot be answered, or
        TooManyPendingPeers when too many of ``owner``'s (or all) viewers
        wait to connect."""
        if transcode:
            answer = await self._transcoders.answer_from(
                await self._transcoder(camera_id, sub), offer_sdp, on_end, owner
            )
        else:
            stream = await self._ingest.ready_stream(camera_id, sub)
            # The page asked anyway (a stale plan, another client): a tile that never
            # plays would say nothing, a refusal says why and what to use instead.
            codec = stream.ring.latest_gop()[0].info.codec
            if codec != "h264":
                raise NoWebRtcPassThrough(camera_id, codec)
            track = PassthroughTrack(_live_subscription(stream))
            answer = await self._peers.answer(offer_sdp, track, owner=owner, on_end=on_end)
        log.info(
            "webrtc viewer of %s (%s)", camera_id, "transcode" if transcode else "pass-through"
        )
        return answer

    async def _transcoder(self, camera_id: str, sub: bool) -> MosaicLease:
        """A lease on the camera stream's shared transcoder: at most TRANSCODE_MAX_WIDTH
        wide, the source's aspect and (measured) frame rate."""
        stream = await self._ingest.ready_stream(camera_id, sub)
        info = stream.ring.latest_gop()[0].info
        width = min(TRANSCODE_MAX_WIDTH, info.width) // 2 * 2
        height = max(2, round(info.height * width / max(1, info.width) / 2) * 2)
        # A 6 fps camera encoded at 25 would only repeat pictures.
        fps = min(MAX_FPS, max(1, round(info.average_fps or stream.health.fps or MAX_FPS)))
        return self._transcoders.transcoder(stream, width, height, fps)

    @property
    def viewers(self) -> int:
        return len(self._peers)

    async def close(self) -> None:
        await self._peers.close()
        self._muxing.close()


def _live_subscription(stream: Stream) -> Subscription:
    # From the cached GOP: a new viewer's first picture is the current one.
    return stream.subscribe(from_cached_gop=True, max_packets=LIVE_QUEUE_PACKETS)
