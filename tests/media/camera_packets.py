"""Packets as ingest hands them over, captured from the real RTSP simulator.

Each mount is read once per test process for a few seconds (in parallel, one thread per
mount) and the packets are reused by every test that asks: recording tests need real
camera packets (no dts on a connection's first packets, B-frame reordering, parameter sets
only in the SDP), not an encoder's.
"""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Sequence

import av

from surveillance.media.packets import Packet
from surveillance.media.source import SourceOptions, open_rtsp, stream_info
from surveillance.simulator import Simulator, read_frame_number
from tests.conftest import SMALL_H264

CAPTURE_S = 5.5  # of each mount: whole GOPs of 1 s for two segments of a couple of seconds
MOUNTS = ("cam00", "bframes", "h265", "sdp-only")
LOOP_FRAMES = SMALL_H264.frame_count  # every mount used here loops a clip of this length
OPEN_ATTEMPTS = 3
OPTIONS = SourceOptions("tcp", connect_timeout_s=10, read_timeout_s=10)

_captured: dict[str, list[Packet]] = {}
_lock = threading.Lock()


def _capture(url: str, seconds: float) -> list[Packet]:
    container = open_rtsp(url, OPTIONS)
    try:
        video = container.streams.video[0]
        info = stream_info(video)
        packets: list[Packet] = []
        started = time.monotonic()
        for packet in container.demux(video):
            if packet.size == 0:
                continue
            now = time.monotonic()
            if not packets and not packet.is_keyframe:
                continue  # as a recorder does: a segment starts at a keyframe
            packets.append(
                Packet(len(packets), bytes(packet), packet.pts, packet.dts,
                       packet.is_keyframe, now, info)
            )  # fmt: skip
            if now - started >= seconds:
                break
        # Whole GOPs only: packets cut off after the last keyframe would miss B-frames
        # that the camera sends after the frame they precede.
        last_keyframe = max(i for i, p in enumerate(packets) if p.keyframe)
        return packets[:last_keyframe]
    finally:
        container.close()


def packets_of(simulator: Simulator, mounts: Sequence[str] = MOUNTS) -> dict[str, list[Packet]]:
    """``CAPTURE_S`` seconds of packets of each mount, captured once per process."""
    with _lock:
        missing = [m for m in mounts if m not in _captured]
        results: dict[str, list[Packet]] = {}
        errors: list[BaseException] = []

        def run(mount: str) -> None:
            for attempt in range(OPEN_ATTEMPTS):
                try:
                    results[mount] = _capture(simulator.url(mount), CAPTURE_S)
                    return
                except av.FFmpegError as exc:
                    # Opening is not what these tests test: on a starved machine an open
                    # can fail now and then ("Invalid data" when the DESCRIBE answer comes
                    # late); the packets, once they flow, are what matters.
                    if attempt == OPEN_ATTEMPTS - 1:
                        errors.append(exc)  # re-raised in the test's thread below
                    time.sleep(0.5)
                except BaseException as exc:
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=run, args=(m,)) for m in missing]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        _captured.update(results)
        return {m: _captured[m] for m in mounts}


def decoded_frames(data: bytes) -> list[tuple[float, int | None]]:
    """(media time s, frame number drawn by the simulator) of each picture of an MP4, in
    display order."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return [
            (float(frame.time), read_frame_number(frame.to_ndarray(format="bgr24")))
            for frame in container.decode(stream)
        ]


def frame_numbers_follow(numbers: Sequence[int | None]) -> bool:
    """Each number one more than the one before (the simulator's clip loops)."""
    return all(
        a is not None and b is not None and (b - a) % LOOP_FRAMES == 1
        for a, b in itertools.pairwise(numbers)
    )
