"""Shared mounts against real clients: one media for many cameras, each client still starting
at a keyframe with its parameter sets, and faults kept to the camera they name."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import av
import av.container
import pytest

from surveillance.simulator import (
    ClipSpec,
    MountSpec,
    Simulator,
    SimulatorError,
    SimulatorUnavailable,
    find_gst_python,
)
from tests.conftest import CLIP_CACHE, missing
from tests.simulator.test_server import READ_TIMEOUT_S, SPS_NAL, Reader, nal_types, open_rtsp
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

# A short GOP so that clients joining at random moments land mid-GOP most of the time.
CLIP = ClipSpec(width=320, height=240, fps=25, bitrate_kbps=400, gop_s=1.0, seconds=2.0)
SHARED = [f"shared{i}" for i in range(4)]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    try:
        find_gst_python()
    except SimulatorUnavailable as exc:
        missing(str(exc))
    mounts = [MountSpec(path, CLIP, shared=True) for path in SHARED]
    mounts.append(MountSpec("sdp-shared", CLIP, params_in_sdp_only=True, shared=True))
    # Shared, but with nobody: no other mount has its start offset.
    mounts.append(MountSpec("alone", CLIP, shared=True, start_offset_s=1.0))
    with Simulator(mounts, clip_dir=CLIP_CACHE) as simulator:
        yield simulator


def first_packets(url: str, count: int) -> list[av.Packet]:
    with open_rtsp(url) as container:
        found = []
        for packet in container.demux(video=0):
            if packet.size:
                found.append(packet)
            if len(found) >= count:
                return found
    raise AssertionError(f"only {len(found)} packets")


def test_every_client_starts_at_a_keyframe_with_its_parameter_sets(sim: Simulator) -> None:
    # Keep one client on the media so that the others join a stream already running,
    # at moments spread over the GOP (a 40 ms frame, 25 frames a GOP).
    holder = Reader(open_rtsp(sim.url(SHARED[0])))
    try:
        holder.wait_packets(5)
        for join in range(8):
            time.sleep(0.113 * join % 1.0)  # lands on a different frame of the GOP each time
            packets = first_packets(sim.url(SHARED[join % len(SHARED)]), 5)
            assert packets[0].is_keyframe, f"join {join} started mid-GOP"
            assert SPS_NAL["h264"] in nal_types(bytes(packets[0]), "h264")
            assert not any(p.is_keyframe for p in packets[1:])
        assert not holder.ended.is_set()
    finally:
        holder.finish()


def test_a_client_of_parameter_sets_in_the_sdp_only_decodes_from_its_first_packet(
    sim: Simulator,
) -> None:
    with open_rtsp(sim.url("sdp-shared")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.extradata
        first = next(p for p in container.demux(stream) if p.size)
        assert first.is_keyframe
        assert SPS_NAL["h264"] not in nal_types(bytes(first), "h264")
        assert first.decode(), "the first packet did not decode with the SDP's parameter sets"


def test_status_counts_clients_per_path_though_they_share_a_media(sim: Simulator) -> None:
    readers = [Reader(open_rtsp(sim.url(path))) for path in (SHARED[1], SHARED[1], SHARED[2])]
    try:
        for reader in readers:
            reader.wait_packets(3)
        status = sim.status()
        assert status[SHARED[1]]["clients"] == 2
        assert status[SHARED[2]]["clients"] == 1
        assert status[SHARED[3]]["clients"] == 0
        assert status[SHARED[1]]["shared"] and status[SHARED[1]]["playing"]
    finally:
        for reader in readers:
            reader.finish()


def test_drop_and_refuse_hit_only_the_named_camera(sim: Simulator) -> None:
    named, other = Reader(open_rtsp(sim.url(SHARED[2]))), Reader(open_rtsp(sim.url(SHARED[3])))
    try:
        named.wait_packets(3)
        other.wait_packets(3)
        sim.fault(SHARED[2], "refuse")
        assert named.ended.wait(READ_TIMEOUT_S + 2), "the refused camera's client was not closed"
        with pytest.raises(av.error.FFmpegError):
            open_rtsp(sim.url(SHARED[2]))
        before = len(other.arrivals)
        other.wait_packets(before + 25)  # a second more of video on the camera beside it
        assert not other.ended.is_set()
    finally:
        sim.fault(SHARED[2], "resume")
        named.finish()
        other.finish()
    assert first_packets(sim.url(SHARED[2]), 1)[0].is_keyframe


def test_stall_is_refused_on_a_media_other_cameras_share(sim: Simulator) -> None:
    with pytest.raises(SimulatorError, match="shares its media with 3 other mounts"):
        sim.fault(SHARED[0], "stall")
    # A shared mount alone on its media (its own start offset) may stall.
    reader = Reader(open_rtsp(sim.url("alone")))
    try:
        reader.wait_packets(5)
        sim.fault("alone", "stall")
        wait_until(
            lambda: time.monotonic() - reader.arrivals[-1] >= 0.5, READ_TIMEOUT_S, "the stall"
        )
        sim.fault("alone", "resume")
        reader.wait_packets(len(reader.arrivals) + 5)
    finally:
        sim.fault("alone", "resume")
        reader.finish()


def test_clients_coming_and_going_never_leave_the_media_dead(sim: Simulator) -> None:
    # The last client leaving and the next arriving at once is what left unshared-era
    # shared pipelines dead (gst_server.py, _keep_prepared); here in quick succession.
    for _ in range(6):
        assert first_packets(sim.url(SHARED[3]), 2)[0].is_keyframe
    done: list[bool] = []

    def join(path: str) -> None:
        done.append(first_packets(sim.url(path), 2)[0].is_keyframe)

    threads = [threading.Thread(target=join, args=(path,)) for path in SHARED * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(READ_TIMEOUT_S * 2)
    assert done == [True] * len(threads)
