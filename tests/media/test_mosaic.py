"""The mosaic renderer fed by real streams of generated clips (no RTSP): tile geometry,
live tiles that advance, an offline tile shown dark with its state, labels in any script,
and an H.264 output a decoder reads back at the mosaic's size."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from surveillance.media.canvas import Rect, YuvCanvas, ascii_text, i420_to_bgr
from surveillance.media.health import ErrorKind, StreamState
from surveillance.media.mosaic import (
    STALE_PICTURE_S,
    GridCell,
    MosaicRenderer,
    MosaicTile,
    grid_rects,
)
from surveillance.media.packets import StreamInfo
from surveillance.media.stream import Stream
from surveillance.media.tile_source import fit
from surveillance.simulator import ensure_clip
from surveillance.simulator.clips import read_frame_number
from tests.conftest import CLIP_CACHE, SMALL_H264
from tests.waits import wait_until

FPS = 25
W, H = 1920, 1080
# Packets in a stream's ring before the renderer starts: a GOP under way (~0.3 s of the
# 1 s GOP), as from a camera that has been up a while.
CACHED_PACKETS = 8
STALE_MARGIN_S = 0.1  # composition after the stale limit, not on it


class ClipFeeder:
    """Delivers a clip's packets to a Stream at its frame rate, looping with rising
    timestamps, as an ingest worker would."""

    def __init__(self, path: Path, stream: Stream) -> None:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            self.info = StreamInfo(
                "h264", video.codec_context.width, video.codec_context.height,
                video.time_base, video.codec_context.extradata, None, FPS, time.time(),
            )  # fmt: skip
            self.packets = [(bytes(p), p.is_keyframe) for p in container.demux(video) if p.size]
        self.step = int(1 / (FPS * self.info.time_base))
        self.stream = stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        index = 0
        started = time.monotonic()
        while not self._stop.is_set():
            data, keyframe = self.packets[index % len(self.packets)]
            pts = index * self.step
            self.stream.deliver(data, pts, pts, keyframe, self.info)
            index += 1
            self._stop.wait(max(0.0, started + index / FPS - time.monotonic()))

    def __enter__(self) -> ClipFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)


def new_stream(key: str) -> Stream:
    return Stream(key, ring_seconds=4, queue_packets=100)


@pytest.fixture
def clip() -> Path:
    return ensure_clip(SMALL_H264, CLIP_CACHE)


@pytest.fixture
def two_by_two(clip: Path) -> Iterator[tuple[MosaicRenderer, list[Stream]]]:
    streams = [new_stream(f"cam{i}") for i in range(4)]
    streams[3].health.set_error(ErrorKind.REFUSED, "connection refused", StreamState.OFFLINE)
    cells = [GridCell(x, y, 1, 1) for y in range(2) for x in range(2)]
    rects = grid_rects(2, 2, cells, W, H)
    names = ["Gate 1", "Křižovatka", "学校门口", "Dead one"]
    tiles = [MosaicTile(r, n, s) for r, n, s in zip(rects, names, streams, strict=True)]
    renderer = MosaicRenderer("test", tiles, W, H, FPS)
    feeders = [ClipFeeder(clip, s) for s in streams[:3]]
    for feeder in feeders:
        feeder.__enter__()
    # A cached GOP to start from, as a camera that has been up a while.
    live = streams[:3]
    wait_until(lambda: all(len(s.ring) >= CACHED_PACKETS for s in live), 5, "a GOP under way")
    renderer.start()
    try:
        yield renderer, streams
    finally:
        renderer.stop()
        renderer.join(3)
        for feeder in feeders:
            feeder.__exit__()


def tile_of(bgr: np.ndarray, rect: Rect) -> np.ndarray:
    return bgr[rect.y : rect.y + rect.h, rect.x : rect.x + rect.w]


def test_grid_rects_cover_the_picture_on_even_edges() -> None:
    cells = [GridCell(0, 0, 2, 2)] + [
        GridCell(x, y) for y in range(3) for x in range(3) if x == 2 or y == 2
    ]
    rects = grid_rects(3, 3, cells, W, H)
    assert rects[0] == Rect(0, 0, 1280, 720)
    assert sum(r.w * r.h for r in rects) == W * H
    assert all(v % 2 == 0 for r in rects for v in (r.x, r.y, r.w, r.h))
    assert grid_rects(5, 5, [GridCell(4, 4, 1, 1)], W, H)[0] == Rect(1536, 864, 384, 216)


def test_fit_keeps_aspect_and_fills_near_matches() -> None:
    assert fit(640, 360, 480, 270) == (480, 270)
    assert fit(640, 480, 960, 540) == (720, 540)
    assert fit(1920, 1080, 640, 480) == (640, 360)


def test_labels_in_any_script_are_drawn_as_ascii() -> None:
    assert ascii_text("Křižovatka č. 5") == "Krizovatka c. 5"
    assert ascii_text("学校门口 gate") == "???? gate"
    canvas = YuvCanvas(320, 180)
    for text in ("学校门口", "<img src=x>", "", "x" * 500, "\x00\n\t😀"):
        canvas.text(Rect(0, 150, 320, 30), text)  # never raises, never spills out
    assert (canvas.y[:150] == 16).all()


def test_live_tiles_advance_and_the_offline_tile_is_dark_with_text(
    two_by_two: tuple[MosaicRenderer, list[Stream]],
) -> None:
    renderer, streams = two_by_two
    assert renderer.wait_settled(5)
    first = renderer.wait_picture(0, 5, not_before=time.monotonic())
    assert first is not None
    # The cameras move on by 15 frames (0.6 s at 25 fps) before the second picture.
    seen = [s.ring.latest().seq for s in streams[:3]]
    wait_until(
        lambda: all(s.ring.latest().seq >= n + 15 for s, n in zip(streams[:3], seen, strict=True)),
        5,
        "15 new packets from each live camera",
    )
    second = renderer.wait_picture(first[0], 5)
    assert second is not None
    a, b = i420_to_bgr(first[1]), i420_to_bgr(second[1])
    assert a.shape == (H, W, 3)
    rects = [t.rect for t in renderer.tiles]
    for rect in rects[:3]:
        before, after = read_frame_number(tile_of(a, rect)), read_frame_number(tile_of(b, rect))
        assert before is not None and after is not None, "the tile does not show the source"
        assert 8 <= (after - before) % 100 <= 25, (before, after)
    dead = tile_of(b, rects[3])
    picture_area = dead[: rects[3].h * 3 // 4]
    assert picture_area.mean() < 40, "an offline tile is dark"
    assert (picture_area > 200).any(), "an offline tile says why in text"


def test_a_stalled_camera_is_not_shown_as_live(clip: Path) -> None:
    stream = new_stream("stalls")
    tile = MosaicTile(Rect(0, 0, 640, 360), "Stalls", stream)
    renderer = MosaicRenderer("stall", [tile], 640, 360, FPS)
    with ClipFeeder(clip, stream):
        wait_until(lambda: len(stream.ring) >= CACHED_PACKETS, 5, "a GOP under way")
        renderer.start()
        assert renderer.wait_settled(5)
        live = renderer.wait_picture(0, 5, not_before=time.monotonic())
        assert live is not None and read_frame_number(i420_to_bgr(live[1])) is not None
    try:
        # Packets stopped; the ingest state still says online. The first picture composed
        # once the last one is older than the stale limit must not pass it off as live.
        last_packet = stream.ring.latest()
        assert last_packet is not None
        stale_from = last_packet.received_at + STALE_PICTURE_S + STALE_MARGIN_S
        stale = renderer.wait_picture(0, 5, not_before=stale_from)
        assert stale is not None
        bgr = i420_to_bgr(stale[1])
        assert read_frame_number(bgr) is None
        assert bgr[:270].mean() < 40
    finally:
        renderer.stop()
        renderer.join(3)


def test_encoded_output_is_h264_at_the_mosaic_size(
    two_by_two: tuple[MosaicRenderer, list[Stream]],
) -> None:
    renderer, streams = two_by_two
    assert renderer.encoded == 0, "no encoding before anyone wants video"
    renderer.want_video()
    with renderer.stream.subscribe(from_cached_gop=True) as subscription:
        packets = []
        deadline = time.monotonic() + 5
        while len(packets) < 10 and time.monotonic() < deadline:
            packet = subscription.get(timeout=1)
            if packet is not None:
                packets.append(packet)
    assert packets[0].keyframe
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for p in packets for f in decoder.decode(av.Packet(p.data))]
    assert frames and (frames[-1].width, frames[-1].height) == (W, H)
    assert all(s.consumers == 1 for s in streams), "one tile decoder per camera"
