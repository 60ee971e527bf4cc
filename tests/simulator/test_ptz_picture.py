"""The simulated PTZ camera's picture against real clients: PyAV reading the RTSP mount,
and the service's ingest reading it like any camera.

The simulator crops a view out of a still scene (simulator/ptz_scene.py) and encodes it
live; every picture a client decodes is compared with the crop the view should show,
computed here from the same scene, with simulator/picture_change.py.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import av.container
import numpy as np
import pytest

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.media.health import StreamState
from surveillance.media.ring_picture import picture_at
from surveillance.services.ingest import IngestService
from surveillance.simulator import (
    MountSpec,
    Simulator,
    SimulatorError,
    SimulatorUnavailable,
    find_gst_python,
)
from surveillance.simulator.picture_change import MOVED_THRESHOLD, difference
from surveillance.simulator.ptz_scene import U8Array, expected_view, make_scene, write_scene
from tests.conftest import missing
from tests.waits import eventually, wait_until

pytestmark = pytest.mark.rtsp

READ_TIMEOUT_S = 10.0
# No probing: at 10 fps FFmpeg's default probe reads ~3 s of frames before av.open returns;
# the SDP's parameter sets tell the decoder all it needs.
OPEN_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"}
MOVE_WAIT_S = 20.0  # a new view shows within ~0.2 s; generous for a loaded CI machine
SUB_USER, SUB_PASSWORD = "ptz-viewer", "pa:ss/@word"
SCENE_SIZE = (1280, 720)  # smaller than the default: quicker to make, same behaviour


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, U8Array]:
    path = write_scene(tmp_path_factory.mktemp("ptz") / "scene.png", *SCENE_SIZE, seed=3)
    return path, make_scene(*SCENE_SIZE, seed=3)


@pytest.fixture(scope="module")
def sim(
    scene: tuple[Path, U8Array], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Simulator]:
    try:
        find_gst_python()
    except SimulatorUnavailable as exc:
        missing(str(exc))
    mounts = [
        MountSpec("ptz/main", ptz_scene=scene[0]),
        MountSpec(
            "ptz/sub", ptz_scene=scene[0], ptz_size=(320, 180), username=SUB_USER,
            password=SUB_PASSWORD,
        ),
    ]  # fmt: skip
    with Simulator(mounts, clip_dir=tmp_path_factory.mktemp("clips")) as simulator:
        yield simulator


class Client:
    """One RTSP client decoding the mount's pictures (BGR) in order, as they arrive."""

    def __init__(self, url: str) -> None:
        self.container: av.container.InputContainer = av.open(
            url, options=OPEN_OPTIONS, timeout=(READ_TIMEOUT_S, READ_TIMEOUT_S)
        )
        self.stream = self.container.streams.video[0]
        self.packets: list[av.Packet] = []
        self.frames: list[av.VideoFrame] = []
        self._pictures = self._decode()

    def _decode(self) -> Iterator[U8Array]:
        for packet in self.container.demux(self.stream):
            if packet.size:
                self.packets.append(packet)
            for frame in packet.decode():
                self.frames.append(frame)
                yield frame.to_ndarray(format="bgr24")

    def next_picture(self) -> U8Array:
        return next(self._pictures)

    def picture_like(self, expected: U8Array, within_s: float = MOVE_WAIT_S) -> U8Array:
        """The first picture from now on that shows ``expected``."""
        deadline = time.monotonic() + within_s
        while True:
            picture = self.next_picture()
            if difference(picture, expected) < MOVED_THRESHOLD:
                return picture
            assert time.monotonic() < deadline, "the expected view never showed"

    def close(self) -> None:
        self.container.close()


@contextmanager
def client(url: str) -> Iterator[Client]:
    reader = Client(url)
    try:
        yield reader
    finally:
        reader.close()


def test_clients_see_the_view_move_on_one_shared_live_pipeline(
    sim: Simulator, scene: tuple[Path, U8Array]
) -> None:
    picture = scene[1]
    home = expected_view(picture, (640, 360), 0, 0, 0)
    aside = expected_view(picture, (640, 360), 0.1, 0, 0)
    moved = expected_view(picture, (640, 360), 0.6, 0.4, 0.5)
    # The scene tells views apart: a pan step of 0.1 is far past the threshold.
    assert difference(home, aside) > 3 * MOVED_THRESHOLD
    sim.view("ptz/main", 0, 0, 0)
    with client(sim.url("ptz/main")) as first:
        context = first.stream.codec_context
        assert (context.name, context.width, context.height) == ("h264", 640, 360)
        still = [first.next_picture() for _ in range(25)]  # 2.5 s of a still view
        for shown in still:  # the home view, every picture
            assert difference(shown, home) < MOVED_THRESHOLD
        # Live, as a real camera: the mark in the corner moves (the diagnosis would call
        # a picture that never changes frozen) while the view itself stays still.
        corner = [p[-60:, -60:].astype(np.int16) for p in still]
        assert max(float(np.abs(c - corner[0]).mean()) for c in corner) > 5.0
        assert max(difference(still[1], shown) for shown in still[2:]) < 1.0
        assert first.frames[0].key_frame  # a client starts at a keyframe
        # (FFmpeg gives the very first packet no timestamps.)
        timed = [p for p in first.packets if p.pts is not None]
        keyframe_times = [p.pts * p.time_base for p in timed if p.is_keyframe]
        assert len(keyframe_times) >= 2 and len(timed) >= len(first.packets) - 1
        assert max(b - a for a, b in itertools.pairwise(keyframe_times)) <= 1.05
        assert all(p.pts == p.dts for p in timed)  # no B-frames: no reordering

        sim.view("ptz/main", 0.6, 0.4, 0.5)
        first.picture_like(moved)
        assert difference(first.next_picture(), home) > MOVED_THRESHOLD

        # A second client shares the running pipeline and starts with the current view.
        with client(sim.url("ptz/main")) as second:
            assert difference(second.next_picture(), moved) < MOVED_THRESHOLD
            status = sim.status()["ptz/main"]
            assert (status["clients"], status["pipelines"], status["playing"]) == (2, 1, True)
            sim.view("ptz/main", -0.3, -0.9, 0)
            target = expected_view(picture, (640, 360), -0.3, -0.9, 0)
            second.picture_like(target)
            first.picture_like(target)
    # The last client gone, the pipeline stops encoding (an unwatched mount costs next to
    # nothing), and a client coming at once finds it again, with the current view.
    wait_until(lambda: not sim.status()["ptz/main"]["playing"], 15, "encoding stopped")
    with client(sim.url("ptz/main")) as third:
        assert difference(third.next_picture(), target) < MOVED_THRESHOLD
        assert sim.status()["ptz/main"]["pipelines"] == 1


def test_the_last_view_applies_to_later_pipelines_and_restarts(
    sim: Simulator, scene: tuple[Path, U8Array]
) -> None:
    view = (-0.8, 0.7, 1.0)  # up and left, zoomed in 4x
    expected = expected_view(scene[1], (320, 180), *view)
    sim.view("ptz/sub", *view)  # nobody watches: kept for the next pipeline
    assert not sim.status()["ptz/sub"]["playing"]
    with client(sim.url("ptz/sub")) as reader:
        assert reader.stream.codec_context.width == 320
        assert difference(reader.next_picture(), expected) < MOVED_THRESHOLD
    with pytest.raises(av.error.FFmpegError):  # credentials apply as to any mount
        Client(sim.url("ptz/sub", credentials=False))
    # Steered from another thread (as a device's PTZ ticker does) across a restart: no
    # view is refused or lost, the last one set shows.
    errors: list[Exception] = []
    steering = threading.Event()
    steering.set()

    def steer() -> None:
        step = 0
        while steering.is_set():
            step += 1
            try:
                sim.view("ptz/main", (step % 20) / 10 - 1, 0, 0)
            except Exception as exc:
                errors.append(exc)

    thread = threading.Thread(target=steer, daemon=True)
    thread.start()
    sim.restart()
    steering.clear()
    thread.join(READ_TIMEOUT_S)
    assert errors == []
    sim.view("ptz/main", 0, 0, 0)
    with client(sim.url("ptz/sub")) as reader:
        assert difference(reader.next_picture(), expected) < MOVED_THRESHOLD
    # Bad steering is refused, and the mount keeps working.
    with pytest.raises(SimulatorError, match="no PTZ mount"):
        sim.view("ptz/nothing", 0, 0, 0)
    with pytest.raises(ValueError, match="finite"):
        sim.view("ptz/sub", math.nan, 0, 0)
    with pytest.raises(SimulatorError, match="live PTZ picture"):
        sim.fault("ptz/sub", "stall")
    assert sim.status()["ptz/sub"]["crop"]["left"] > 0


async def test_ingest_reads_the_mount_as_any_camera(
    sim: Simulator, scene: tuple[Path, U8Array]
) -> None:
    sim.view("ptz/main", 0.2, 0.2, 0.2)
    before = expected_view(scene[1], (640, 360), 0.2, 0.2, 0.2)
    after = expected_view(scene[1], (640, 360), 0.3, 0.2, 0.2)
    config = AppConfig.model_validate(
        {
            "ingest": {"connect_timeout_s": 5, "read_timeout_s": 5},
            "platforms": [{"id": "town", "name": "Town"}],
            "cameras": [{"id": "ptz", "name": "PTZ", "platform": "town",
                         "url": sim.url("ptz/main")}],
        }
    )  # fmt: skip
    ingest = IngestService(Catalog.from_config(config), config.ingest, lambda text: text)
    await ingest.start()
    try:
        stream = ingest.stream("ptz")
        await eventually(lambda: stream.health.state is StreamState.ONLINE, "online")
        health = ingest.camera_health("ptz").main
        assert (health.codec, health.width, health.height) == ("h264", 640, 360)

        def shows(expected: U8Array) -> bool:
            shown = picture_at(stream.ring, time.monotonic())
            if shown is None:
                return False
            picture = np.asarray(shown.frame.to_ndarray(format="bgr24"))
            return difference(picture, expected) < MOVED_THRESHOLD

        await eventually(lambda: shows(before), "the ingest's picture shows the view")
        sim.view("ptz/main", 0.3, 0.2, 0.2)  # a pan step of 0.1
        await eventually(lambda: shows(after), "the ingest's picture shows the moved view")
    finally:
        await ingest.stop()
