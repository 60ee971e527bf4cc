"""Reference reader for the wall benchmark: when does each frame number arrive over RTSP?

Run by ``bench.wall`` as a separate process (so its timestamps are not delayed by the
benchmark's own work)::

    python -m bench.wall_reference rtsp://127.0.0.1:8554/cam1 --loop-frames 250

It opens the simulator's mount directly with PyAV (the same shared pipeline the service
reads), stamps every packet with ``time.time()`` the moment the demuxer hands it over, and
prints one line per packet: ``<frame number> <arrival time>``. Only keyframes are decoded:
the generator draws the frame number into every picture, and without B-frames the packets
of a GOP follow their keyframe in order, so packet k after keyframe N is frame N + k (modulo
the clip's length, which loops). Each keyframe checks the count: a line ``mismatch <decoded>
<counted>`` reports a packet lost or split. The first line is ``ready`` once the first
keyframe has been read; it ends after ``--seconds`` or when its stdin or stdout closes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

import av

from surveillance.simulator import read_frame_number

OPEN_TIMEOUT_S = 10.0


def open_mount(url: str) -> Any:
    return av.open(
        url,
        format="rtsp",
        options={
            "rtsp_transport": "tcp",
            "allowed_media_types": "video",
            "fflags": "nobuffer",
            "analyzeduration": "1000000",
            "probesize": "1000000",
        },
        timeout=(OPEN_TIMEOUT_S, OPEN_TIMEOUT_S),
    )


def keyframe_number(codec: str, extradata: bytes | None, packet: Any) -> int | None:
    """Decode one keyframe on a fresh decoder (flushed, so no frame is held back)."""
    decoder: Any = av.CodecContext.create(codec, "r")
    if extradata:
        decoder.extradata = extradata
    decoder.thread_count = 1
    frames = [*decoder.decode(packet), *decoder.decode(None)]
    if not frames:
        return None
    return read_frame_number(frames[0].to_ndarray(format="bgr24"))


def run(url: str, loop_frames: int, seconds: float) -> int:
    container = open_mount(url)
    try:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        extradata = stream.codec_context.extradata
        deadline = time.monotonic() + seconds
        number: int | None = None
        for packet in container.demux(stream):
            arrived = time.time()
            if packet.size == 0:
                continue
            if number is not None:
                number = (number + 1) % loop_frames
            if packet.is_keyframe:
                decoded = keyframe_number(codec, extradata, packet)
                if decoded is not None:
                    if number is None:
                        print("ready", flush=True)
                    elif decoded != number:
                        print(f"mismatch {decoded} {number}", flush=True)
                    number = decoded
            if number is not None:
                print(f"{number} {arrived:.6f}", flush=True)
            if time.monotonic() > deadline:
                break
    finally:
        container.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wall_reference", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--loop-frames", type=int, required=True, help="frames in the clip")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    args = parser.parse_args(argv)
    try:
        return run(args.url, args.loop_frames, args.seconds)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0


if __name__ == "__main__":
    sys.exit(main())
