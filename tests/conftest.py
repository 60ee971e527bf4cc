"""Shared fixtures, and the test tiers.

Every test lands in exactly one tier, marked here from what it uses (so a new test needs no
marker by hand; an explicit ``unit``/``integration``/``browser`` marker wins):

- ``browser``: drives headless Chromium (``tests/web``, anything that imports Playwright);
- ``integration``: starts something real: the GStreamer RTSP server (the ``simulator``
  fixture, or a ``Simulator`` made in the module), a PostgreSQL cluster, the app under
  uvicorn (``ServiceProcess``), or another process (``subprocess``);
- ``unit``: everything else, in-process and quick. ``scripts/check --fast`` runs only these.
"""

from __future__ import annotations

import fcntl
import inspect
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest
from _pytest.nodeid import NodeId  # no public name for a node's id yet (pytest 9.2)

from surveillance.simulator import ClipSpec, MountSpec, Simulator
from tests.service import ServiceProcess

# Generated clips are cached across runs (CI starts empty and fills it once).
CLIP_CACHE = Path(os.environ.get("SURVEILLANCE_TEST_CLIPS", "/tmp/surveillance-test-clips"))

# Small, fast clips: the behaviour under test does not depend on resolution.
SMALL_H264 = ClipSpec(
    codec="h264", profile="main", width=640, height=360, fps=25, bitrate_kbps=800, gop_s=1.0,
    seconds=4.0,
)  # fmt: skip
HIGH = replace(SMALL_H264, profile="high")
HIGH_BFRAMES = replace(HIGH, bframes=2)
BASELINE = replace(SMALL_H264, profile="baseline")
H265 = replace(SMALL_H264, codec="h265")
FULL_HD = replace(HIGH, width=1920, height=1080, bitrate_kbps=4000, gop_s=2.0, seconds=2.0)
# A still view; 6 s into each loop someone walks into x 0.55-0.85, y 0.45-0.85 and out.
INTRUDER = replace(SMALL_H264, seconds=20.0, scene="intruder", event_at_s=6.0)

CAMERA_USER = "operator"
CAMERA_PASSWORD = "s3cret-Pa55word"

FLEET_SIZE = 20


def fleet_mounts() -> list[MountSpec]:
    mounts = [
        MountSpec(f"cam{i:02d}", SMALL_H264, start_offset_s=(i * 0.37) % 4)
        for i in range(FLEET_SIZE)
    ]
    mounts += [
        MountSpec("auth", SMALL_H264, username=CAMERA_USER, password=CAMERA_PASSWORD),
        MountSpec("stall", SMALL_H264),
        MountSpec("drop", SMALL_H264),
        MountSpec("bframes", HIGH_BFRAMES),
        MountSpec("baseline", BASELINE),
        MountSpec("high", HIGH),
        MountSpec("h265", H265),
        MountSpec("sdp-only", SMALL_H264, params_in_sdp_only=True),
        MountSpec("fullhd", FULL_HD),
        MountSpec("intruder", INTRUDER),
    ]
    # Taken down and brought back by the events tests alone (tests/api/test_events_api.py).
    mounts += [MountSpec(name, SMALL_H264) for name in ("flap", "storm0", "storm1", "storm2")]
    # One frame a second, 10 s GOP: a frame rate measured by diagnosis (test_quality_rtsp.py).
    mounts.append(MountSpec("one-fps", replace(H265, fps=1, gop_s=10.0, seconds=20.0)))
    mounts += fault_mounts()
    return mounts


# Video-quality faults (simulator/scenes.py): each loop of the clip shows the ordinary
# picture for FAULT_AT_S, then the fault until it loops again ("turned" turns later). The
# simulator plays a clip on its own clock: a client joins the loop wherever it is.
FAULT_AT_S = 3.0
TURNED_AT_S = 8.0
FAULT_CLIP_S = 14.0


def fault_mounts() -> list[MountSpec]:
    clip = replace(SMALL_H264, seconds=FAULT_CLIP_S, event_at_s=FAULT_AT_S)
    mounts = [
        MountSpec(scene, replace(clip, scene=scene))
        for scene in ("frozen", "black", "covered", "defocus", "sprayed")
    ]
    mounts.append(MountSpec("turned", replace(clip, scene="turned", event_at_s=TURNED_AT_S)))
    return mounts


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(fleet_mounts(), clip_dir=CLIP_CACHE)
    # Each pytest-xdist worker has a simulator of its own (dynamic port), from one clip
    # cache. On a cold cache (CI) the first worker generates the clips while the others wait
    # here and then find them made, instead of every worker encoding the same clips at once.
    CLIP_CACHE.mkdir(parents=True, exist_ok=True)
    with (CLIP_CACHE / ".fleet.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sim.start(timeout_s=180)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def _work_in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nodes built without a data_dir use ./data: keep that inside each test's tmp dir."""
    monkeypatch.chdir(tmp_path)


MOUNTS_IDLE_TIMEOUT_S = 15.0


@pytest.fixture(autouse=True)
def _simulator_clients_gone_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the shared simulator, wait until the clients it opened are gone,
    as the simulator's status() reports them, mount by mount.

    A client left over from one test (a node still closing its connections) must not be
    counted by, or compete with, the next test's. A fixed settle time after the clients left
    is no longer needed: each client gets a pipeline of its own (gst_server.py, "One pipeline
    per client"), so a pipeline still being torn down is never handed to a new client; such
    a pipeline may outlive its client by seconds, so it is not waited for. Clients held by
    module-scoped fixtures were there before the test and are not waited for; nor, past the
    deadline, is a connection such a fixture's node opened during the test and keeps.
    """
    if "simulator" not in request.fixturenames:
        yield
        return
    simulator: Simulator = request.getfixturevalue("simulator")
    before = _clients(simulator)
    yield
    if not simulator.running:
        return
    deadline = time.monotonic() + MOUNTS_IDLE_TIMEOUT_S
    while time.monotonic() < deadline:
        now = _clients(simulator)
        if all(now[path] <= count for path, count in before.items()):
            return
        time.sleep(0.02)


def _clients(simulator: Simulator) -> dict[str, int]:
    return {path: int(mount["clients"]) for path, mount in simulator.status().items()}


def needs_file(path: Path, what: str) -> Path:
    """A file from outside the repository that a test needs (recorded footage, say).

    Under CI (``CI`` set, as .ci/run does) a missing file fails the test: CI provides it, so
    its absence is a broken set-up, not a reason to pass quietly. Elsewhere the test skips,
    naming the path it looked for.
    """
    if path.is_file():
        return path
    missing(f"{what} not found at {path}")


def missing(message: str) -> NoReturn:
    """Something a test needs is not on this machine: fail under CI (``CI`` set, as .ci/run
    does: CI installs everything, so its absence is a broken set-up), skip elsewhere."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{message} (required under CI)")
    pytest.skip(message)


# -- test tiers ----------------------------------------------------------------------------

TIERS = ("browser", "integration", "unit")  # a test that fits several takes the first
BROWSER_FIXTURES = frozenset({"browser"})
INTEGRATION_FIXTURES = frozenset({"simulator", "postgres", "gb_platform"})
INTEGRATION_MARKERS = frozenset({"rtsp", "postgresql"})
# What a test module imports that starts something real: modules by name, other objects by
# "module.qualname" of where they are defined (so re-exports are recognised too).
BROWSER_IMPORTS = ("playwright",)
INTEGRATION_IMPORTS = (
    "surveillance.simulator.server.Simulator",
    "surveillance.simulator.fleet.SimulatorFleet",
    "tests.service.ServiceProcess",
    "uvicorn",
    "subprocess",
)
BROWSER_DIRS = ("web",)  # under tests/


@pytest.fixture(autouse=True)
def _unit_tests_start_no_servers(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the unit tier honest: a test the rules above took for a unit test that starts the
    RTSP simulator or a real HTTP server fails, saying how to put it in its tier."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*_: object, **__: object) -> None:
        pytest.fail(
            "a unit-tier test started a server: mark it @pytest.mark.integration, or use the "
            "simulator fixture (tiers: tests/conftest.py)"
        )

    monkeypatch.setattr(Simulator, "start", refuse)
    monkeypatch.setattr(ServiceProcess, "start", refuse)


# Before pytest-xdist's own hook, which reads the xdist_group marks added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    _unique_node_ids(items)
    for item in items:
        if not any(item.get_closest_marker(tier) for tier in TIERS):  # else marked by hand
            item.add_marker(_tier(item, tests_dir))
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(_xdist_group(item, tests_dir)))
        if config.getoption("loadgroup", False):
            # pytest-xdist 3.8 appends "@<group>" (what its scheduler groups by) to the
            # string `_nodeid`, which pytest 9.2 no longer reads (its id is a NodeId in
            # `_id`): without this every test would be a group of its own.
            marks = item.iter_markers("xdist_group")
            groups = sorted({str(m.args[0] if m.args else m.kwargs["name"]) for m in marks})
            _set_node_id(item, f"{item.nodeid}@{'_'.join(groups)}")


# -- parallel runs (scripts/check: pytest-xdist, --dist loadgroup) ---------------------------

# Browser tests share one worker, one after another: headless Chromium takes most of a core,
# and their waits ("the tile says so within two seconds") are measured against the page's
# own clock, which two browsers at once on two cores would stretch.
BROWSER_GROUP = "browser"


def _unique_node_ids(items: list[pytest.Item]) -> None:
    """schemathesis gives the test of every API operation the node id of the function alone
    (tests/security/test_fuzz.py: 52 items, one id). pytest-xdist schedules by node id and
    would run one of them and silently drop the rest: such items get their own name (which
    names the operation, "test_no_server_errors[GET /api/cameras]") as their id's last part."""
    counts = Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1:
            module_id = item.nodeid.rsplit("::", 1)[0]
            _set_node_id(item, f"{module_id}::{item.name}")
    assert len({item.nodeid for item in items}) == len(items), "duplicate test node ids"


def _set_node_id(item: pytest.Item, node_id: str) -> None:
    """pytest 9.2 (the dev extras' minimum) keeps a node's id as a NodeId in `_id`."""
    item._id = NodeId.parse(node_id)


# Package-scoped nodes: every test using one goes to the same worker, so it starts once.
PACKAGE_NODE_GROUPS = {"secure": "security-node"}


def _xdist_group(item: pytest.Item, tests_dir: Path) -> str:
    """The unit of work a parallel run hands to one worker, run there in collection order:
    a test module, so its module-scoped nodes start once; the users of a package-scoped
    node; all browser tests (BROWSER_GROUP). An explicit ``@pytest.mark.xdist_group`` wins."""
    if item.get_closest_marker("browser"):
        return BROWSER_GROUP
    for fixture in getattr(item, "fixturenames", ()):
        if fixture in PACKAGE_NODE_GROUPS:
            return PACKAGE_NODE_GROUPS[fixture]
    return item.path.resolve().relative_to(tests_dir).as_posix()


def _tier(item: pytest.Item, tests_dir: Path) -> str:
    fixtures = set(getattr(item, "fixturenames", ()))
    imports = _imports(item.module) if isinstance(item, pytest.Function) else set()
    path = item.path.resolve()
    in_browser_dir = any(path.is_relative_to(tests_dir / name) for name in BROWSER_DIRS)
    if in_browser_dir or fixtures & BROWSER_FIXTURES or _uses(imports, BROWSER_IMPORTS):
        return "browser"
    if (
        fixtures & INTEGRATION_FIXTURES
        or any(item.get_closest_marker(name) for name in INTEGRATION_MARKERS)
        or _uses(imports, INTEGRATION_IMPORTS)
    ):
        return "integration"
    return "unit"


def _imports(module: ModuleType | None) -> set[str]:
    """Where the objects a test module holds at its top level come from."""
    if module is None:
        return set()
    found: set[str] = set()
    for value in vars(module).values():
        if inspect.ismodule(value):
            found.add(value.__name__)
        elif inspect.isclass(value) or inspect.isfunction(value):
            found.add(f"{value.__module__}.{value.__qualname__}")
    return found


def _uses(imports: set[str], wanted: tuple[str, ...]) -> bool:
    return any(name == w or name.startswith(w + ".") for name in imports for w in wanted)
