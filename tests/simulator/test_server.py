"""The simulator against real clients: PyAV opening RTSP over TCP from the real GStreamer server."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import av.container
import pytest

from surveillance.simulator import (
    ClipSpec,
    MountSpec,
    Simulator,
    SimulatorUnavailable,
    find_gst_python,
    read_frame_number,
)
from tests.conftest import missing, needs_file
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

FOOTAGE = Path(__file__).resolve().parents[3] / "shared" / "footage" / "car-detection.mp4"
CLIP = ClipSpec(width=320, height=240, fps=25, bitrate_kbps=400, gop_s=1.0, seconds=2.0)
HEVC = ClipSpec(codec="h265", width=320, height=240, bitrate_kbps=400, gop_s=1.0, seconds=2.0)
# An upper bound only (opening, reading): eight clients opening at once on a loaded CI
# machine once took over 8 s.
READ_TIMEOUT_S = 15.0
QUIET_S = 0.3  # no packet for this long: what was queued before a stall has arrived
# NAL unit types of an SPS: H.264 7, H.265 33.
SPS_NAL = {"h264": 7, "hevc": 33}


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim-clips")


@pytest.fixture(scope="module")
def sim(clip_dir: Path) -> Iterator[Simulator]:
    try:
        find_gst_python()
    except SimulatorUnavailable as exc:
        missing(str(exc))
    mounts = [
        MountSpec("cam", CLIP),
        MountSpec("offset", CLIP, start_offset_s=0.9),
        MountSpec("sdp", CLIP, params_in_sdp_only=True),
        MountSpec("hevc-sdp", HEVC, params_in_sdp_only=True),
        MountSpec("auth", CLIP, username="viewer", password="s3cret:/@"),
        MountSpec("stall", CLIP),
        MountSpec("drop", CLIP),
        MountSpec("refuse", CLIP),
    ]
    if FOOTAGE.is_file():  # else the test that needs it fails under CI, skips elsewhere
        mounts.append(MountSpec("footage", FOOTAGE))
    with Simulator(mounts, clip_dir=clip_dir) as simulator:
        yield simulator


def open_rtsp(url: str) -> av.container.InputContainer:
    return av.open(url, options={"rtsp_transport": "tcp"}, timeout=(READ_TIMEOUT_S, READ_TIMEOUT_S))


def nal_types(data: bytes, codec: str) -> set[int]:
    """NAL unit types in an Annex B packet (what FFmpeg's RTP depacketizer produces)."""
    types = set()
    for chunk in data.split(b"\x00\x00\x01")[1:]:
        if chunk:
            types.add(chunk[0] & 0x1F if codec == "h264" else (chunk[0] >> 1) & 0x3F)
    return types


class Reader:
    """Reads packets in a thread, stamping each with its arrival time; ``ended`` on EOF/error."""

    def __init__(self, container: av.container.InputContainer) -> None:
        self.container = container
        self.arrivals: list[float] = []
        self.ended = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for packet in self.container.demux(video=0):
                if packet.size:
                    self.arrivals.append(time.monotonic())
                if self.stop.is_set():
                    return
        except (av.error.FFmpegError, OSError):
            pass
        self.ended.set()

    def wait_packets(self, count: int, timeout_s: float = READ_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.arrivals) < count:
            assert time.monotonic() < deadline, f"only {len(self.arrivals)} packets arrived"
            time.sleep(0.05)

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(READ_TIMEOUT_S + 2)
        self.container.close()


def test_mount_opens_and_timestamps_stay_monotonic_across_loops(sim: Simulator) -> None:
    with open_rtsp(sim.url("cam")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
        stamps: list[float] = []
        number = None
        for packet in container.demux(stream):
            if number is None:
                for frame in packet.decode():
                    number = read_frame_number(frame.to_ndarray(format="bgr24"))
            ts = packet.dts if packet.dts is not None else packet.pts
            if ts is not None:
                stamps.append(float(ts * packet.time_base))
            if len(stamps) >= 80:  # 3.2 s of a 2 s clip: crosses the loop boundary
                break
    assert number is not None, "the frame counter drawn into the picture was not readable"
    distinct = [t for i, t in enumerate(stamps) if i == 0 or t != stamps[i - 1]]
    steps = [b - a for a, b in itertools.pairwise(distinct)]
    assert all(step > 0 for step in steps), "DTS went backwards"
    assert max(steps) < 2.5 / CLIP.fps, f"DTS jumped by {max(steps):.3f} s"
    assert distinct[-1] - distinct[0] > CLIP.seconds + 0.5


def numbered_frames(url: str, seconds: float, out: list[tuple[float, int]]) -> None:
    """(when it was due, frame number drawn into the picture) of each frame for ``seconds``.

    A frame is dated by its place in the session's run of drawn numbers (25 to the second),
    put on this machine's clock by its least late frame: being late (a server pipeline or
    a reader starved of CPU by other work, the burst FFmpeg reads while probing) only ever
    adds to a frame's delay. Dated by arrival, one session of two in a process was seen
    receiving its frames in bursts of ten (0.4 s) while the other flowed evenly, and on a
    loaded machine the compared readers came out 40 frames off (-18 where +22 was due).
    Not by the frames' timestamps: in such bursts one frame's was 1.3 s off its neighbours'.
    """
    seen: list[tuple[float, int]] = []  # (arrival, number)
    with open_rtsp(url) as container:
        deadline = time.monotonic() + seconds
        for frame in container.decode(video=0):
            number = read_frame_number(frame.to_ndarray(format="bgr24"))
            if number is not None:
                seen.append((time.monotonic(), number))
            if time.monotonic() > deadline:
                break
    if not seen:
        return
    loop = int(CLIP.fps * CLIP.seconds)
    counts = [0]  # frames since the first, across loops of the clip
    for (_, before), (_, after) in itertools.pairwise(seen):
        counts.append(counts[-1] + (after - before) % loop)
    delay = min(
        arrival - count / CLIP.fps for (arrival, _), count in zip(seen, counts, strict=True)
    )
    out.extend(
        (count / CLIP.fps + delay, number) for (_, number), count in zip(seen, counts, strict=True)
    )


def frame_gap(a: list[tuple[float, int]], b: list[tuple[float, int]], frames: int) -> list[int]:
    """For each frame of ``b``, how far ahead (in frames, modulo the clip) ``a`` was then."""
    gaps = []
    for at, number in b:
        if not a[0][0] <= at <= a[-1][0]:
            continue  # only while both were reading
        _, nearest = min(a, key=lambda sample: abs(sample[0] - at))
        gap = (nearest - number) % frames
        gaps.append(gap - frames if gap > frames // 2 else gap)
    return gaps


def test_clients_of_a_mount_see_the_same_picture_at_the_same_time(sim: Simulator) -> None:
    # As with a real camera: a second viewer joining later sees what the first one sees.
    # (The wall-latency benchmark compares a reference reader with the service's feed.)
    first: list[tuple[float, int]] = []
    second: list[tuple[float, int]] = []
    early = threading.Thread(target=numbered_frames, args=(sim.url("cam"), 3.0, first))
    early.start()
    # A fixed wait, kept on purpose: the second viewer joins later, at another point of the
    # clip. Timing it from the first viewer's frames and letting the first watch until the
    # second is done (issue 9) compared twice as many frames and failed half the runs here:
    # the gap between the two readers is a 0-6 frame sawtooth that a short overlap samples
    # less of.
    time.sleep(1.3)
    numbered_frames(sim.url("cam"), 1.5, second)
    early.join(READ_TIMEOUT_S)
    frames = int(CLIP.fps * CLIP.seconds)
    gaps = sorted(abs(g) for g in frame_gap(first, second, frames))
    # Two clients of one mount may disagree by up to the simulator's feed lead (250 ms,
    # FEED_AHEAD_NS in gst_server.py: some client pipelines send a buffer when it is pushed,
    # others at its timestamp), plus delivery and decoding jitter of two readers in one
    # process on a busy machine: seen medians of 1 to 5 frames, a 0-6 frame sawtooth.
    # Without one clock per mount, the second reader, joining 1.3 s later, starts the clip
    # over: about 32 frames behind, 18 either way of the 50-frame loop. The bounds sit
    # between the two.
    feed_lead_frames = round(0.250 * CLIP.fps)
    assert gaps and gaps[len(gaps) // 2] <= feed_lead_frames, gaps
    assert gaps[-1] <= feed_lead_frames + 4, gaps


def test_start_offset_moves_the_mounts_clock(sim: Simulator) -> None:
    plain: list[tuple[float, int]] = []
    ahead: list[tuple[float, int]] = []
    reader = threading.Thread(target=numbered_frames, args=(sim.url("cam"), 2.5, plain))
    reader.start()
    numbered_frames(sim.url("offset"), 2.0, ahead)
    reader.join(READ_TIMEOUT_S)
    frames = int(CLIP.fps * CLIP.seconds)
    # 0.9 s ahead at 25 fps: 22 or 23 frames, give or take delivery jitter.
    gaps = frame_gap(ahead, plain, frames)
    assert gaps and all(19 <= g <= 26 for g in gaps), gaps


def test_parameter_sets_in_stream_by_default(sim: Simulator) -> None:
    with open_rtsp(sim.url("cam")) as container:
        for packet in container.demux(video=0):
            if packet.is_keyframe:
                assert SPS_NAL["h264"] in nal_types(bytes(packet), "h264")
                break


@pytest.mark.parametrize(("path", "codec"), [("sdp", "h264"), ("hevc-sdp", "hevc")])
def test_params_in_sdp_only_opens_without_sps_in_packets(
    sim: Simulator, path: str, codec: str
) -> None:
    with open_rtsp(sim.url(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec
        assert stream.codec_context.extradata, "no parameter sets in the SDP"
        frames = 0
        for index, packet in enumerate(container.demux(stream)):
            assert SPS_NAL[codec] not in nal_types(bytes(packet), codec)
            frames += len(packet.decode())
            if index >= 40:
                break
    assert frames > 0, "nothing decoded with the SDP's parameter sets"


def test_wrong_or_missing_credentials_get_401(sim: Simulator) -> None:
    for url in (sim.url("auth", credentials=False), sim.url("auth").replace("s3cret", "wrong")):
        with pytest.raises(av.error.FFmpegError, match="401"):
            open_rtsp(url)
    with open_rtsp(sim.url("auth")) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_stall_keeps_the_session_open_without_packets(sim: Simulator) -> None:
    reader = Reader(open_rtsp(sim.url("stall")))
    try:
        reader.wait_packets(10)
        sim.fault("stall", "stall")
        # What the server had queued before the stall drains: its queue empties and the
        # packets stop arriving.
        wait_until(
            lambda: (
                sim.status()["stall"]["queued_bytes"] == 0
                and time.monotonic() - reader.arrivals[-1] >= QUIET_S
            ),
            READ_TIMEOUT_S,
            "the stalled mount's queue draining",
        )
        before = len(reader.arrivals)
        time.sleep(2.0)  # the wait is what is under test: nothing arrives, the session stays
        assert len(reader.arrivals) == before, "packets kept coming during the stall"
        assert not reader.ended.is_set()
        assert sim.status()["stall"]["clients"] == 1
        sim.fault("stall", "resume")
        reader.wait_packets(before + 10)
        assert not reader.ended.is_set()
    finally:
        sim.fault("stall", "resume")
        reader.finish()


def test_drop_closes_clients_and_accepts_new_ones(sim: Simulator) -> None:
    reader = Reader(open_rtsp(sim.url("drop")))
    try:
        reader.wait_packets(5)
        sim.fault("drop", "drop")
        assert reader.ended.wait(READ_TIMEOUT_S + 2), "the client's read did not fail"
    finally:
        reader.finish()
    with open_rtsp(sim.url("drop")) as container:
        assert next(container.demux(video=0)) is not None


def test_refuse_fails_opening_until_resume(sim: Simulator) -> None:
    reader = Reader(open_rtsp(sim.url("refuse")))
    try:
        reader.wait_packets(5)
        sim.fault("refuse", "refuse")
        assert reader.ended.wait(READ_TIMEOUT_S + 2), "the existing session was not closed"
        with pytest.raises(av.error.FFmpegError):
            open_rtsp(sim.url("refuse"))
    finally:
        sim.fault("refuse", "resume")
        reader.finish()
    with open_rtsp(sim.url("refuse")) as container:
        assert container.streams.video


def test_recorded_footage_serves_video_only(sim: Simulator) -> None:
    needs_file(FOOTAGE, "recorded footage (../shared/footage, see its README)")
    with open_rtsp(sim.url("footage")) as container:
        assert len(container.streams) == 1, "the audio track must not be served"
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (768, 432)
        frames = 0
        for packet in container.demux(stream):
            frames += len(packet.decode())
            if frames >= 5:
                break
    assert frames >= 5


def test_stop_breaks_clients_and_restart_keeps_the_port(clip_dir: Path) -> None:
    try:
        find_gst_python()
    except SimulatorUnavailable as exc:
        missing(str(exc))
    with Simulator([MountSpec("cam", CLIP)], clip_dir=clip_dir) as sim:
        port = sim.port
        reader = Reader(open_rtsp(sim.url("cam")))
        try:
            reader.wait_packets(5)
            sim.stop()
            sim.stop()  # idempotent
            assert reader.ended.wait(READ_TIMEOUT_S + 2), "the client's read did not fail"
        finally:
            reader.finish()
        with pytest.raises(av.error.FFmpegError):
            open_rtsp(sim.url("cam"))
        sim.start()
        assert sim.port == port
        with open_rtsp(sim.url("cam")) as container:
            assert next(container.demux(video=0)) is not None
        sim.restart()
        assert sim.port == port
        with open_rtsp(sim.url("cam")) as container:
            assert next(container.demux(video=0)) is not None
