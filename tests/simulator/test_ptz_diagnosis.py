"""The service's video-quality diagnosis on a simulated PTZ camera's stream: live, not frozen.

A simulated PTZ camera shows a still scene; without the simulator's live mark (a small
square wandering in the picture's corner, simulator/gst_ptz_mount.py) every keyframe was
the same and the diagnosis raised "Picture frozen" for every simulated ONVIF camera, the
demo's two included. Here the mounts' real streams (main 640x360 and sub 320x180, the one
the service diagnoses) are recorded and judged offline on their own clock by the
diagnosis' own code (tests/services/quality_feed.py), beside a frozen camera's clip judged
at the same settings, which must still be flagged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from surveillance.config.models import DiagnosisConfig
from surveillance.services.camera_quality import QualityCheck
from surveillance.services.conditions import Transition
from surveillance.services.diagnosis import camera_settings
from surveillance.simulator import (
    MountSpec,
    Simulator,
    SimulatorUnavailable,
    ensure_clip,
    find_gst_python,
)
from surveillance.simulator.demo import FROZEN_SUB
from surveillance.simulator.picture_change import MOVED_THRESHOLD, difference
from surveillance.simulator.ptz_scene import write_scene
from tests.conftest import CLIP_CACHE, missing
from tests.services.quality_feed import feed

pytestmark = pytest.mark.rtsp

RECORD_S = 12.0  # of each mount's stream: a dozen keyframes
OPEN_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"}
DEFAULTS = camera_settings(DiagnosisConfig(), ())
# Every keyframe judged against the one before, a condition raised after 2 s: a frozen
# picture is flagged within the recording.
QUICK = camera_settings(DiagnosisConfig(interval_s=1, settle_s=1, hold_s=2, clear_s=1), ())
MINUTES = 4 * 60.0  # the recording looped, at the default settings


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    try:
        find_gst_python()
    except SimulatorUnavailable as exc:
        missing(str(exc))
    folder = tmp_path_factory.mktemp("ptz-diagnosis")
    scene = write_scene(folder / "scene.png", 1280, 720, seed=5)
    mounts = [
        MountSpec("ptz/main", ptz_scene=scene),
        MountSpec("ptz/sub", ptz_scene=scene, ptz_size=(320, 180)),
    ]
    with Simulator(mounts, clip_dir=folder) as sim:
        sim.view("ptz/main", 0.3, -0.2, 0.4)  # a still view, held throughout
        sim.view("ptz/sub", 0.3, -0.2, 0.4)
        paths = {m.path: folder / f"{m.path.replace('/', '-')}.mp4" for m in mounts}
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_record, args=(sim.url(path), out, errors))
            for path, out in paths.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(RECORD_S + 60)
        assert errors == [] and not any(t.is_alive() for t in threads), errors
        yield paths


def _record(url: str, out: Path, errors: list[BaseException]) -> None:
    """Copy RECORD_S seconds of the mount's stream into an MP4, as received."""
    try:
        with av.open(url, options=OPEN_OPTIONS, timeout=(10, 10)) as source:
            stream = source.streams.video[0]
            with av.open(str(out), "w") as sink:
                copy = sink.add_stream_from_template(stream)
                started = time.monotonic()
                for packet in source.demux(stream):
                    if packet.dts is None or packet.size == 0:
                        continue  # FFmpeg gives the first packet no timestamps
                    packet.stream = copy
                    sink.mux(packet)
                    if time.monotonic() - started >= RECORD_S:
                        break
    except BaseException as exc:
        errors.append(exc)


def test_a_still_ptz_view_is_live_for_the_diagnosis_while_a_frozen_clip_is_flagged(
    recordings: dict[str, Path],
) -> None:
    for path, recording in recordings.items():
        quick = feed(recording, QUICK, RECORD_S - 1)
        assert quick.pictures >= RECORD_S - 4, (path, quick)
        assert quick.changes == [], (path, quick.changes)
        looped = feed(recording, DEFAULTS, MINUTES)
        assert looped.pictures >= MINUTES / DEFAULTS.interval_s * 0.8, (path, looped)
        assert looped.changes == [], (path, looped.changes)
        # The mark is all that moves: for picture_change the view is still throughout.
        with av.open(str(recording)) as container:
            pictures = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
        assert len(pictures) >= RECORD_S * 5, path
        assert max(difference(pictures[1], p) for p in pictures[2:]) < MOVED_THRESHOLD / 4
    # The same diagnosis still flags a frozen camera (the demo's camera 6) at both settings.
    frozen = ensure_clip(FROZEN_SUB, CLIP_CACHE)
    for settings in (QUICK, DEFAULTS):
        result = feed(frozen, settings, settings.settle_s + settings.timing.hold_s + 30)
        seen = [(change.check, change.transition) for _, change in result.changes]
        assert seen == [(QualityCheck.FROZEN, Transition.RAISE)], (settings, seen)
