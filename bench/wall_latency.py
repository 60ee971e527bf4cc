"""Latency from the source to a decoded, presented frame in the browser, for ``bench.wall``.

The simulator draws each frame's number into its top-left corner
(:func:`surveillance.simulator.read_frame_number` reads it back). Two observers note when
they see each number, both on this machine's wall clock:

- a reference reader (:mod:`bench.wall_reference`, a separate process) opens the same RTSP
  mount directly and records when each frame's packet arrives;
- a grabber in the page (:mod:`bench.wall_browser`) keeps the number region of every frame
  a tile presents, with its presentation time.

Latency = presentation time - arrival time of the same number at the reference reader. The
numbers loop with the clip, so each presented frame is matched to the arrival of its number
nearest in time (unambiguous while latency stays under half the clip's length).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.procs import Children, python_env
from bench.stats import percentile, rounded
from surveillance.simulator import read_frame_number
from surveillance.simulator.clips import DIGITS

# Geometry of the generator's frame counter (surveillance.simulator.clips): cells of
# ``unit = max(3, height // 90)`` pixels; the box spans 13 units down and
# DIGITS * 7 - 2 + 4 units across.
_BOX_ROWS, _BOX_COLS = 13, DIGITS * 7 - 2 + 4
MIN_SCALED_UNIT = 4  # pixels per cell after scaling: the reader samples cell centres


def counter_unit(height: int) -> int:
    return max(3, height // 90)


def crop_for(height: int, scale: int) -> tuple[int, int, int, int]:
    """(sw, sh, dw, dh): the counter box at full size and drawn ``scale`` times smaller."""
    unit = counter_unit(height)
    sw, sh = _BOX_COLS * unit, _BOX_ROWS * unit
    return sw, sh, -(-sw // scale), -(-sh // scale)


def best_scale(height: int) -> int:
    """The largest reduction at which the reader finds the same cells in a smaller picture.

    The reader derives the cell size from the picture's height, so a picture ``s`` times
    smaller must have exactly ``unit / s`` pixel cells, and they must stay big enough to
    sample. 1 means full resolution.
    """
    unit = counter_unit(height)
    for scale in (4, 3, 2):
        small = height // scale
        fits = height % scale == 0 and unit % scale == 0 and counter_unit(small) * scale == unit
        if fits and unit // scale >= MIN_SCALED_UNIT:
            return scale
    return 1


def number_in_grab(pixels_b64: str, dw: int, dh: int, height: int, scale: int) -> int | None:
    """The frame number in one grabbed region (grey, ``dw`` x ``dh``) of a ``height`` frame."""
    grey = np.frombuffer(base64.b64decode(pixels_b64), dtype=np.uint8)
    if grey.size != dw * dh:
        return None
    full_height = height // scale
    picture = np.zeros((max(full_height, dh), dw, 3), dtype=np.uint8)
    picture[:dh] = grey.reshape(dh, dw)[:, :, None]
    return read_frame_number(picture[:full_height])


@dataclass
class Reference:
    """A running reference reader: arrivals of each frame number, gathered by a thread."""

    camera: str
    proc: subprocess.Popen[str]
    arrivals: dict[int, list[float]] = field(default_factory=dict)
    ready: threading.Event = field(default_factory=threading.Event)
    mismatches: list[str] = field(default_factory=list)
    packets: int = 0
    first_arrival: float | None = None
    last_arrival: float | None = None

    def pump(self) -> None:
        assert self.proc.stdout is not None
        # OSError, ValueError: the pipe closed under us when the reader was stopped.
        with contextlib.suppress(OSError, ValueError):
            self._read(self.proc.stdout)

    def _read(self, lines: Iterable[str]) -> None:
        for line in lines:
            parts = line.split()
            if parts == ["ready"]:
                self.ready.set()
            elif parts and parts[0] == "mismatch":
                self.mismatches.append(line.strip())
            elif len(parts) == 2:
                number, arrived = int(parts[0]), float(parts[1])
                self.arrivals.setdefault(number, []).append(arrived)
                self.packets += 1
                if self.first_arrival is None:
                    self.first_arrival = arrived
                self.last_arrival = arrived

    def nearest(self, number: int, when: float) -> float | None:
        times = self.arrivals.get(number)
        if not times:
            return None
        i = bisect.bisect_left(times, when)
        candidates = times[max(0, i - 1) : i + 1]
        return min(candidates, key=lambda t: abs(when - t))


def start_reference(
    children: Children, camera: str, url: str, loop_frames: int, log: Path
) -> Reference:
    proc = children.spawn(
        [sys.executable, "-m", "bench.wall_reference", url, "--loop-frames", str(loop_frames)],
        log=log,
        stdout=subprocess.PIPE,
        env=python_env(),
        text=True,
    )
    reference = Reference(camera, proc)
    threading.Thread(target=reference.pump, name=f"reference-{camera}", daemon=True).start()
    return reference


def wait_ready(references: list[Reference], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    return all(r.ready.wait(max(0.0, deadline - time.monotonic())) for r in references)


@dataclass
class Grab:
    viewer: int
    camera: str
    presented_ms: float  # wall clock, ms since the epoch
    received_ms: float | None  # WebRTC: when the frame's last packet arrived
    number: int | None


def read_grabs(
    viewer: int, grabs: dict[str, dict[str, Any]], height: int, scale: int, crop_dw: int
) -> tuple[list[Grab], int]:
    """Frame numbers of grabbed samples; also the count of grabber errors in the page."""
    found: list[Grab] = []
    errors = 0
    dh = -(-_BOX_ROWS * counter_unit(height) // scale)
    for camera, batch in grabs.items():
        errors += int(batch.get("errors", 0))
        for sample in batch["samples"]:
            number = None
            if int(sample["height"]) == height:
                number = number_in_grab(sample["pixels"], crop_dw, dh, height, scale)
            found.append(
                Grab(viewer, camera, float(sample["presented"]),
                     None if sample["received"] is None else float(sample["received"]), number)
            )  # fmt: skip
    return found, errors


def latency_figures(grabs: list[Grab], references: dict[str, Reference]) -> dict[str, Any]:
    """Latency percentiles (ms) over every readable, matched grabbed frame."""
    total: list[float] = []
    network: list[float] = []  # reference arrival -> browser receipt (service + network)
    browser: list[float] = []  # browser receipt -> presentation (jitter buffer, decode)
    unreadable = unmatched = 0
    for grab in grabs:
        if grab.number is None:
            unreadable += 1
            continue
        reference = references.get(grab.camera)
        presented_s = grab.presented_ms / 1000
        arrived = None if reference is None else reference.nearest(grab.number, presented_s)
        if arrived is None:
            unmatched += 1
            continue
        total.append(1000 * (presented_s - arrived))
        if grab.received_ms is not None:
            network.append(grab.received_ms - 1000 * arrived)
            browser.append(grab.presented_ms - grab.received_ms)
    return {
        "latency_frames": len(total),
        "latency_grabbed": len(grabs),
        "latency_unreadable": unreadable,
        "latency_unmatched": unmatched,
        "latency_p50_ms": rounded(percentile(total, 50), 1),
        "latency_p95_ms": rounded(percentile(total, 95), 1),
        "latency_max_ms": rounded(max(total), 1) if total else None,
        "latency_min_ms": rounded(min(total), 1) if total else None,
        "to_browser_receipt_p50_ms": rounded(percentile(network, 50), 1),
        "to_browser_receipt_p95_ms": rounded(percentile(network, 95), 1),
        "receipt_to_presentation_p50_ms": rounded(percentile(browser, 50), 1),
        "receipt_to_presentation_p95_ms": rounded(percentile(browser, 95), 1),
    }
