"""The recorder against the real simulator, real files, a real file system that fills up and
turns read-only (a tmpfs mounted for this module: root only, which CI is), and a real
``kill -9`` of a node in a child process.

One node records for the whole module (segments of 2 s, fragments of 0.5 s, so segments
roll over many times in a short run); each test looks at what it wrote and the faults it
went through. Files are checked by decoding them with PyAV and by the index's own
verification, never by trusting what the recorder says it wrote.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import av
import httpx
import pytest
import yaml
from prometheus_client import generate_latest

from surveillance.api.metrics import build_registry
from surveillance.api.node import Node
from surveillance.auth.audit import AuditQuery
from surveillance.config.models import AppConfig
from surveillance.db import SQLITE_FILE, create_db_engine, database_url
from surveillance.media.health import StreamState
from surveillance.media.recording_read import SegmentRef
from surveillance.recordings.records import SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.recordings.verify import verify_recordings
from surveillance.services.camera_recorder import GAP_DISK_FULL, GAP_READ_ONLY, GAP_SHUTDOWN
from surveillance.services.recorder import RecordingState
from surveillance.services.recording_reconcile import GAP_NOT_RUNNING, RECOVERED
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.service import ServiceProcess, free_port
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

SEGMENT_S = 2.0
FRAGMENT_S = 0.5
RECORDED = ("cam00", "bframes", "h265", "sdp-only")
FLAPPING = "drop"  # the simulator's mount for drop and refuse faults
FLAPS = 4
KILLED = "baseline"  # the camera of the node killed with SIGKILL
WRITTEN_A_SECOND = 100_000  # bytes of an 800 kbit/s camera's segment: a second written
NOT_RECORDED = "high"  # its own policy turns recording off
TMPFS_SIZE = "96m"  # a few minutes of the five recorded cameras; filled on purpose below
RETRY_WITHIN_S = 15.0  # the recorder retries every 5 s, then waits for a keyframe
ALL_TIME = (0.0, 1e12)
# What the camera's health says when its path is refused: the open stream ends, then a new
# connection finds no such path.
REFUSED_REASONS = ("the server ended the stream", "stream not found on the server (404)")


def node_config(simulator: Simulator, data_dir: Path, recordings: Path) -> dict[str, object]:
    cameras: list[dict[str, object]] = [
        {"id": name, "name": name, "platform": "town", "url": simulator.url(name)}
        for name in (*RECORDED, FLAPPING)
    ]
    # Asks for its sub-stream, which it does not have: the main one is recorded instead.
    cameras[0]["recording"] = {"stream": "sub"}
    cameras.append(
        {
            "id": NOT_RECORDED, "name": NOT_RECORDED, "platform": "town",
            "url": simulator.url(NOT_RECORDED), "recording": {"mode": "off"},
        }
    )  # fmt: skip
    return {
        "server": {"data_dir": str(data_dir)},
        # A stall is flagged after 4 s, not sooner: on a starved two-core CI machine a 1.5 s
        # pause in delivery happened on its own and closed a segment early (a true stall, but
        # not the one this module's tests are about).
        "ingest": {
            "connect_timeout_s": 3, "read_timeout_s": 6, "stall_after_s": 4,
            "backoff_initial_s": 0.2, "backoff_max_s": 1.0, "ring_seconds": 3,
        },
        "recording": {
            "dir": str(recordings), "segment_s": SEGMENT_S, "fragment_s": FRAGMENT_S,
            "min_free_bytes": 0, "default": {"mode": "continuous"},
        },
        # Diagnosis subscribes to every always-on camera for the node's life: the
        # subscriptions counted here are the recorder's own.
        "events": {"diagnosis": {"enabled": False}},
        "platforms": [{"id": "town", "name": "Town"}],
        "cameras": cameras,
    }  # fmt: skip


@pytest.fixture(scope="module")
def tmpfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A small file system of the recordings' own, to fill and to make read-only."""
    mount_point = tmp_path_factory.mktemp("recordings-fs")
    run = subprocess.run
    run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(mount_point)],
        check=True)  # fmt: skip
    try:
        yield mount_point
    finally:
        run(["umount", "-l", str(mount_point)], check=False)  # a read-only bind first
        run(["umount", "-l", str(mount_point)], check=False)


@pytest.fixture(scope="module")
def service(
    simulator: Simulator, tmpfs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    data_dir = tmp_path_factory.mktemp("recorder-node")
    process = ServiceProcess(AppConfig.model_validate(node_config(simulator, data_dir, tmpfs)))
    process.start()
    try:
        # Every camera connected before the first test: the connections this module's node
        # keeps are then the simulator's clients from before each test, not ones a test
        # opened (which tests/conftest.py waits up to 15 s for after each test).
        wait_until(lambda: all_online(process.node), 30, "every camera online")
        yield process
    finally:
        process.stop()


def all_online(node: Node) -> bool:
    return all(h.state is StreamState.ONLINE for h in node.ingest.all_health())


def closed_segments(node: Node, camera: str) -> list[SegmentRecord]:
    return node.recordings.segments(camera, None, *ALL_TIME)


def verified(store: RecordingStore, root: Path) -> None:
    """``verify --recordings`` passes, read while the node records."""
    report = verify_recordings(store, root)
    assert report.ok, report


def rolled(node: Node, camera: str) -> bool:
    return len(closed_segments(node, camera)) >= 3


def recording_since(node: Node, camera: str, moment: float) -> bool:
    """Recording a segment that started after ``moment``."""
    status = node.recorder.status(camera)
    started = status.segment_started_at
    return status.state is RecordingState.RECORDING and started is not None and started > moment


def decoded_frames(path: Path) -> int:
    """Every frame of the file decoded; raises on a broken file."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def check_segment(root: Path, segment: SegmentRecord) -> None:
    """The file is what its row says: size, hash, frames that decode, from a keyframe."""
    path = root / segment.path
    data = path.read_bytes()
    assert len(data) == segment.bytes, segment
    assert hashlib.sha256(data).hexdigest() == segment.sha256, segment
    assert segment.end_at is not None and segment.end_at > segment.start_at
    # It starts with a keyframe, in the first fragment (its media time is its presentation
    # time: a B-frame stream's first picture is shown a frame or two in).
    assert segment.keyframes and segment.keyframes[0][1] == segment.init_bytes
    assert 0.0 <= segment.keyframes[0][0] < 0.2
    assert decoded_frames(path) == segment.frames, segment


def state_of(node: Node, camera: str) -> RecordingState:
    return node.recorder.status(camera).state


def recording_fds(root: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)):
            found.append(target)
    return found


def test_records_every_kind_of_source(service: ServiceProcess) -> None:
    node = service.node
    root = node.recorder.root
    # Three closed segments each: the first starts from the cached GOP, later ones at a
    # keyframe after segment_s.
    for camera in RECORDED:
        wait_until(partial(rolled, node, camera), 30, f"{camera} rolls over")
    for camera in RECORDED:
        segments = closed_segments(node, camera)
        for segment in segments:
            check_segment(root, segment)
        for before, after in itertools.pairwise(segments):
            assert before.closed_reason == "segment length reached"
            assert before.end_at is not None
            # Rolled over at a keyframe after segment_s (the clips have 1 s GOPs)...
            assert SEGMENT_S - 0.1 <= before.end_at - before.start_at <= SEGMENT_S + 1.6
            # ...and the next one starts where it ended: no footage between them is lost.
            assert abs(after.start_at - before.end_at) < 0.5, (before, after)
        status = node.recorder.status(camera)
        assert status.state is RecordingState.RECORDING and status.stream == "main"
        fell_back = camera == RECORDED[0]
        assert (status.detail == "no sub-stream: recording the main stream") is fell_back
        # The recent past, open segment included (whole fragments written so far).
        refs = node.recorder.refs(camera, "main", time.time() - 60, time.time() + 1)
        assert [r.path for r in refs[: len(segments)]] == [root / s.path for s in segments]

        def open_one_listed(c: str = camera) -> SegmentRef | None:
            # A segment only just opened has no whole fragment yet: wait for its first.
            refs = node.recorder.refs(c, "main", time.time() - 60, time.time() + 1)
            closed = {root / s.path for s in closed_segments(node, c)}
            return refs[-1] if refs and refs[-1].path not in closed else None

        last = wait_until(open_one_listed, 5, f"{camera}'s open segment among its refs")
        assert last is not None and last.duration_s > 0 and last.start_at >= segments[-1].start_at
    verified(node.recordings, root)
    off = node.recorder.status(NOT_RECORDED)
    assert off.state is RecordingState.OFF and off.stream is None
    assert node.ingest.stream(NOT_RECORDED).consumers == 0  # no subscription for it
    assert not closed_segments(node, NOT_RECORDED)
    metrics = generate_latest(build_registry(node.ingest, node.recorder)).decode()
    assert (
        'surveillance_camera_recording_state{camera="cam00",platform="town",state="recording"} 1.0'
    ) in metrics
    assert (
        f'surveillance_camera_recording_state{{camera="{NOT_RECORDED}",platform="town",'
        'state="off"} 1.0'
    ) in metrics
    assert "surveillance_recording_removed_within_retention_bytes_total 0.0" in metrics


def test_a_camera_that_goes_away_leaves_a_gap_with_its_reason(
    service: ServiceProcess, simulator: Simulator
) -> None:
    node = service.node
    wait_until(lambda: state_of(node, FLAPPING) is RecordingState.RECORDING, 20, "recording")
    simulator.fault(FLAPPING, "refuse")
    try:
        wait_until(lambda: state_of(node, FLAPPING) is RecordingState.WAITING, 15, "waiting")
        detail = node.recorder.status(FLAPPING).detail
        gaps = node.recordings.gaps(FLAPPING, "main", *ALL_TIME)
        assert gaps and gaps[-1].end_at is None
        # The reason the outage began: the camera's own error then (the server ended the
        # stream; a retry meanwhile may already have met the next one, the 404 of a refused
        # path), the same in the state and in the gap.
        reason = gaps[-1].reason
        assert reason in REFUSED_REASONS and detail and reason in detail, (reason, detail)
        last = closed_segments(node, FLAPPING)[-1]
        assert last.closed_reason in ("camera stopped delivering", "camera reconnected")
        assert last.end_at is not None and gaps[-1].start_at == pytest.approx(last.end_at)
    finally:
        simulator.fault(FLAPPING, "resume")
    wait_until(lambda: state_of(node, FLAPPING) is RecordingState.RECORDING, 20, "back")
    ended = node.recordings.gaps(FLAPPING, "main", *ALL_TIME)[-1]
    assert ended.end_at is not None and ended.reason == reason
    wait_until(lambda: closed_segments(node, FLAPPING)[-1].start_at > ended.start_at, 15, "new")
    resumed = closed_segments(node, FLAPPING)[-1]
    assert resumed.start_at == pytest.approx(ended.end_at)
    for segment in closed_segments(node, FLAPPING):
        check_segment(node.recorder.root, segment)


def test_a_flapping_camera_leaks_nothing(service: ServiceProcess, simulator: Simulator) -> None:
    node = service.node
    root = node.recorder.root
    wait_until(lambda: state_of(node, FLAPPING) is RecordingState.RECORDING, 20, "recording")
    fds_before = len(os.listdir("/proc/self/fd"))
    threads_before = len(threading.enumerate())
    segments_before = len(closed_segments(node, FLAPPING))
    gaps_before = len(node.recordings.gaps(FLAPPING, "main", *ALL_TIME))
    # Dropped a second after each time it records again (reconnecting takes about as
    # long): flapping every two to three seconds.
    dropped_at = 0.0
    for _ in range(FLAPS + 1):
        wait_until(partial(recording_since, node, FLAPPING, dropped_at), 15, "recording again")
        if dropped_at:
            time.sleep(1.0)
        dropped_at = time.time()
        simulator.fault(FLAPPING, "drop")
    wait_until(partial(recording_since, node, FLAPPING, dropped_at), 15, "recording again")
    # Each drop closed the segment it cut and left a gap that says why.
    segments = closed_segments(node, FLAPPING)
    cut = [s for s in segments[segments_before:] if s.closed_reason != "segment length reached"]
    # At least one per drop: on a starved machine the stream may also stall once on its own
    # between drops (a real "stopped delivering", which closes a segment too, as it should).
    assert len(cut) >= FLAPS + 1, segments[segments_before:]
    assert {s.closed_reason for s in cut} <= {"camera reconnected", "camera stopped delivering"}
    assert len(node.recordings.gaps(FLAPPING, "main", *ALL_TIME)) >= gaps_before + FLAPS
    for segment in segments:
        check_segment(root, segment)
    for gap in node.recordings.gaps(FLAPPING, "main", *ALL_TIME):
        assert gap.reason  # every hole says why
    verified(node.recordings, root)
    # One open segment per recorded stream at most, and nothing else left open; the node's
    # threads and descriptors back where they were once the camera is steady again.
    assert len(recording_fds(root)) <= len(RECORDED) + 1
    wait_until(lambda: len(threading.enumerate()) <= threads_before, 10, "threads settle")
    wait_until(lambda: len(os.listdir("/proc/self/fd")) <= fds_before + 2, 10, "fds settle")


def fill(path: Path) -> None:
    """Write zeros into ``path`` until the file system is full, down to the last page."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 12):
            block = bytes(size)
            try:
                while True:
                    os.write(fd, block)
            except OSError as error:
                assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_disk_full_then_read_only_while_live_goes_on(service: ServiceProcess, tmpfs: Path) -> None:
    node = service.node
    root = node.recorder.root
    camera = "cam00"
    client = httpx.Client(base_url=service.url, timeout=10, headers=bearer(node))
    wait_until(lambda: state_of(node, camera) is RecordingState.RECORDING, 20, "recording")
    filler = tmpfs / "filler"
    try:
        fill(filler)
        wait_until(lambda: state_of(node, camera) is RecordingState.DISK_FULL, 10, "disk full")
        assert "disk full" in (node.recorder.status(camera).detail or "")
        assert client.get(f"/api/cameras/{camera}/snapshot.jpg").status_code == 200  # live on
        gap = node.recordings.gaps(camera, "main", *ALL_TIME)[-1]
        assert gap.reason == GAP_DISK_FULL and gap.end_at is None
    finally:
        filler.unlink()
    wait_until(lambda: state_of(node, camera) is RecordingState.RECORDING, RETRY_WITHIN_S, "r")
    assert node.recordings.gaps(camera, "main", *ALL_TIME)[-1].end_at is not None
    for segment in closed_segments(node, camera):  # the cut one kept its whole fragments
        check_segment(root, segment)
    verified(node.recordings, root)

    # Read-only: a read-only bind mount over the directory (chmod does not stop root). Open
    # segments go on through their own descriptors; the next one cannot be created.
    subprocess.run(["mount", "--bind", str(tmpfs), str(tmpfs)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(tmpfs)], check=True)
        wait_until(lambda: state_of(node, camera) is RecordingState.ERROR, 15, "read-only")
        assert GAP_READ_ONLY in (node.recorder.status(camera).detail or "")
        assert client.get(f"/api/cameras/{camera}/snapshot.jpg").status_code == 200
    finally:
        subprocess.run(["umount", str(tmpfs)], check=True)
    wait_until(lambda: state_of(node, camera) is RecordingState.RECORDING, RETRY_WITHIN_S, "r")
    gaps = node.recordings.gaps(camera, "main", *ALL_TIME)
    assert gaps[-1].reason == GAP_READ_ONLY and gaps[-1].end_at is not None
    client.close()


def test_retention_removes_rows_then_files_and_audits(service: ServiceProcess) -> None:
    """Past retain_days (7, the default) every closed segment goes; the open ones stay;
    the chains still verify (retention's removals are told apart from tampering)."""
    node = service.node
    root = node.recorder.root
    before = {c: closed_segments(node, c) for c in RECORDED}
    assert all(before.values())
    removed = node.recorder.run_retention(now=time.time() + 8 * 86_400)
    assert {s.id for s in removed} >= {s.id for segments in before.values() for s in segments}
    for segment in removed:
        assert not (root / segment.path).exists()
    for camera in RECORDED:
        assert not [s for s in closed_segments(node, camera) if s.id in {r.id for r in removed}]
    assert len(recording_fds(root)) >= 1  # open segments are never removed: still written
    verified(node.recordings, root)
    node.audit.flush()
    entries = node.audit.query(AuditQuery(action="recordings.delete", limit=500))
    assert {e.camera_id for e in entries} >= set(RECORDED)
    assert all(e.detail["reason"] == "retention period over" for e in entries)
    # From when to when, as ISO like every other audit entry (not epoch numbers).
    assert all(e.detail["from"].endswith("Z") and e.detail["to"].endswith("Z") for e in entries)
    assert all(e.detail["from"] <= e.detail["to"] for e in entries)


def test_kill_9_loses_at_most_the_fragment_being_built(
    simulator: Simulator, tmp_path: Path
) -> None:
    """A node in a child process, killed while recording; the next start salvages."""
    data_dir, recordings = tmp_path / "data", tmp_path / "recordings"
    settings = node_config(simulator, data_dir, recordings)
    # A mount of its own: the module's node is still connected to the others.
    settings["cameras"] = [
        {"id": KILLED, "name": KILLED, "platform": "town", "url": simulator.url(KILLED)}
    ]
    config_path = tmp_path / "node.yaml"
    config_path.write_text(yaml.safe_dump(settings))
    config = AppConfig.model_validate(settings)
    command = [sys.executable, "-m", "surveillance.cli", "serve", "--config", str(config_path),
               "--port", str(free_port())]  # fmt: skip
    log = (tmp_path / "node.log").open("w+")
    child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    engine = None
    try:

        def mid_segment() -> bool:
            nonlocal engine
            if engine is None:
                if not (data_dir / SQLITE_FILE).exists():
                    return False
                engine = create_db_engine(database_url(config))
            try:
                store = RecordingStore(engine)
                opened = store.open_segments()
                closed = store.segments(KILLED, None, *ALL_TIME)
            except Exception:  # the child is still creating its tables
                return False
            # Killed a good way into a segment (a second of video written), after a whole one.
            if not (closed and opened):
                return False
            written = recordings / opened[0].path
            return written.exists() and written.stat().st_size > WRITTEN_A_SECOND

        def stopped_mid_segment() -> float | None:
            """When the child was stopped (SIGSTOP) with mid_segment() still true. Looked at
            and then killed, it could close the segment in between on a loaded machine; a
            stopped child moves on no more, so what is looked at is what the kill meets.
            Moved on already: it goes on, to be stopped at a later look."""
            if not mid_segment():
                return None
            stopped_at = time.time()
            child.send_signal(signal.SIGSTOP)
            _, status = os.waitpid(child.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status), f"the child ended before the kill (status {status})"
            if mid_segment():
                return stopped_at
            child.send_signal(signal.SIGCONT)
            return None

        try:
            killed_at = wait_until(stopped_mid_segment, 60, "the child records")
        except AssertionError as failure:
            log.seek(0)
            raise AssertionError(
                f"{failure}; the child's log ends:\n{log.read()[-2000:]}"
            ) from None
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        log.close()
    assert engine is not None
    store = RecordingStore(engine)
    left_open = store.open_segments()
    assert len(left_open) == 1
    # The restart: a node on the same directories reconciles before it records.
    restarted = Node.build(config)

    async def restart() -> None:
        await restarted.start()
        await restarted.stop()

    asyncio.run(restart())
    recovered = next(s for s in store.segments(KILLED, None, *ALL_TIME) if s.id == left_open[0].id)
    assert recovered.closed_reason == RECOVERED
    check_segment(recordings, recovered)
    assert recovered.end_at is not None
    # Everything up to the last whole fragment: what was lost is the fragment being built
    # (fragment_s) plus the writer's wake-up interval, never more.
    assert killed_at - recovered.end_at < FRAGMENT_S + 1.0, killed_at - recovered.end_at
    gaps = store.gaps(KILLED, "main", *ALL_TIME)
    assert any(g.reason == GAP_NOT_RUNNING and g.end_at is not None for g in gaps)
    # Only the restarted node's own stop leaves a gap open (ended at the next start).
    assert all(g.end_at is not None for g in gaps if g.reason != GAP_SHUTDOWN)
    verified(store, recordings)
    engine.dispose()
