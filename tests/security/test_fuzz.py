"""Fuzz the whole HTTP API from its own OpenAPI schema: no request an admin can send may make
the server fail (5xx). Runs in-process against a node of its own (fuzzing changes state), with
real cameras from the simulator and one camera that never answers."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from surveillance.api.app import create_app
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.security.conftest import make_offer

pytestmark = pytest.mark.rtsp

# Hypothesis keeps caches (constants, unicode data) on disk even with database=None; keep
# them out of the repository. Read lazily, so setting it before the first example is enough.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "surveillance-hypothesis")
)

LIVE_CAMERAS = {"fuzz-a": ("alpha", "cam13"), "fuzz-b": ("beta", "cam14")}
OFFLINE_CAMERA = "fuzz-offline"
CAMERAS = (*LIVE_CAMERAS, OFFLINE_CAMERA)
LAYOUT = "fuzz-layout"
TOUR = "fuzz-tour"
CLIP_PATH = "/api/cases/{number}/items/clip"
MAX_REAL_CLIP_POST_S = 1.0  # a real clip waits post_s for footage: keep the run short
LAYOUT_BODY = {
    "name": LAYOUT,
    "title": "Fuzz",
    "cols": 2,
    "rows": 1,
    "tiles": [{"x": 0, "y": 0, "camera": "fuzz-a"}, {"x": 1, "y": 0, "camera": "fuzz-b"}],
}
TOUR_BODY = {"name": TOUR, "title": "Fuzz", "tag": "traffic", "preset": "2x2"}
RANGES = ("bytes=0-", "bytes=0-0", "bytes=-1", "bytes=5-2", "bytes=-0", "bytes=99999999999-")

# Real ids and a real WebRTC offer, filled in by the fixture before the first example is
# drawn. Token ids are left alone: the fuzzing admin's own token must not be revoked.
REAL: dict[str, str] = {}


def _openapi() -> dict[str, Any]:
    # The routes do not depend on the configuration; building the app starts nothing.
    with tempfile.TemporaryDirectory() as data_dir:
        return create_app(AppConfig.model_validate({"server": {"data_dir": data_dir}})).openapi()


schema = (
    schemathesis.openapi.from_dict(_openapi())
    # Would end the fuzzing admin's own session / change its password mid-run.
    .exclude(method="POST", path=["/api/auth/logout", "/api/auth/password"])
    # An endless MJPEG stream: the in-process client would never finish reading it.
    .exclude(method="GET", path="/api/mosaic/{layout}.mjpeg")
    # The camera health event stream never ends either (tests/api/test_camera_events.py).
    .exclude(method="GET", path="/api/cameras/events")
    # Nor does the events stream (tests/api/test_events_api.py).
    .exclude(method="GET", path="/api/events/stream")
    # Could disable, demote or remove the fuzzing admin, turning the rest of the run into 401s.
    .exclude(method=["DELETE", "PATCH"], path="/api/users/{name}")
)
# No "coverage" phase: max_examples is then a real bound on the requests per operation.
schema.config.phases.update(phases=["examples", "fuzzing"])


def _real(path: str, name: str) -> str | None:
    if name == "name":  # layouts and tours share the parameter name
        return REAL.get("tour" if path.startswith("/api/tours/") else "layout")
    return REAL.get(name)


@schema.hook
def flatmap_case(context: Any, case: schemathesis.Case) -> st.SearchStrategy[schemathesis.Case]:
    """Now and then swap a generated id for a real one, so the fuzz reaches past the 404s."""
    path = case.operation.path
    params = [name for name in case.path_parameters or {} if _real(path, name) is not None]
    body = case.body if isinstance(case.body, dict) else {}
    return st.fixed_dictionaries(
        {
            "params": st.fixed_dictionaries({name: st.booleans() for name in params}),
            "camera": st.sampled_from((None, *CAMERAS)) if "camera" in body else st.none(),
            "sdp": st.booleans() if "sdp" in body and "sdp" in REAL else st.just(False),
            "range": st.sampled_from((None, *RANGES)) if "ref" in params else st.none(),
        }
    ).map(lambda swaps: _swap_in_real_ids(case, swaps))


def _swap_in_real_ids(case: schemathesis.Case, swaps: dict[str, Any]) -> schemathesis.Case:
    path = case.operation.path
    if any(swaps["params"].values()):
        case.path_parameters = {
            name: _real(path, name) if swaps["params"].get(name) else value
            for name, value in case.path_parameters.items()
        }
    if isinstance(case.body, dict):
        body = dict(case.body)
        if swaps["camera"] is not None:
            body["camera"] = swaps["camera"]
        if swaps["sdp"]:
            body["sdp"] = REAL["sdp"]
        post_s = body.get("post_s")
        if (
            path == CLIP_PATH
            and case.path_parameters.get("number") == REAL.get("number")
            and isinstance(post_s, (int, float))
        ):
            # Only a real case makes the request wait post_s for footage; elsewhere the
            # fuzzed value stays (the request fails fast on the unknown case).
            body["post_s"] = min(post_s, MAX_REAL_CLIP_POST_S)
        if body != case.body:
            case.body = body
    if swaps["range"] is not None:
        case.headers = {**(case.headers or {}), "Range": swaps["range"]}
    return case


@dataclass
class FuzzNode:
    client: TestClient
    auth: dict[str, str]

    def restore_wall(self) -> None:
        """(Re)create the layout and the tour that the fuzz may change or delete."""
        for path, body in (
            (f"/api/layouts/{LAYOUT}", LAYOUT_BODY),
            (f"/api/tours/{TOUR}", TOUR_BODY),
        ):
            response = self.client.put(path, json=body, headers=self.auth)
            assert response.status_code == 200, response.text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fuzz_config(simulator: Simulator, data_dir: Path) -> AppConfig:
    cameras: list[dict[str, Any]] = [
        {
            "id": cid,
            "name": cid,
            "platform": platform,
            "url": simulator.url(mount),
            "tags": ["traffic"],
        }
        for cid, (platform, mount) in LIVE_CAMERAS.items()
    ]
    cameras.append(
        {
            "id": OFFLINE_CAMERA,
            "name": "Never answers",
            "platform": "beta",
            "url": f"rtsp://127.0.0.1:{_closed_port()}/nothing",
        }
    )
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1},
            "platforms": [{"id": "alpha", "name": "Alpha"}, {"id": "beta", "name": "Beta"}],
            "cameras": cameras,
        }
    )


@pytest.fixture(scope="module")
def fuzz_node(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzNode]:
    app = create_app(fuzz_config(simulator, tmp_path_factory.mktemp("fuzz-node")))
    # Server errors come back as 500 responses (for the check) instead of being raised here.
    with TestClient(app, raise_server_exceptions=False, base_url="http://localhost") as client:
        auth = bearer(app.state.node, "fuzz-admin")  # an admin holds every permission
        deadline = time.monotonic() + 30
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            cameras = client.get("/api/cameras", headers=auth).json()
            states = {c["id"]: c["state"] for c in cameras}
            if all(states.get(cid) == "online" for cid in LIVE_CAMERAS):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"cameras did not come online: {states}")
        # Something real behind the id-taking routes (schemathesis does not guess ids).
        response = client.post("/api/cases", json={"title": "Fuzzed case"}, headers=auth)
        assert response.status_code == 201, response.text
        number = response.json()["number"]
        response = client.post(
            f"/api/cases/{number}/items/snapshot", json={"camera": "fuzz-a"}, headers=auth
        )
        assert response.status_code == 201, response.text
        fuzz = FuzzNode(client=client, auth=auth)
        fuzz.restore_wall()
        REAL.update(
            number=number,
            ref=str(response.json()["id"]),
            camera_id="fuzz-a",
            layout=LAYOUT,
            tour=TOUR,
            sdp=asyncio.run(make_offer()),
        )
        try:
            yield fuzz
        finally:
            REAL.clear()


def no_unplanned_server_error(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """A 500 always fails; another 5xx only if the operation does not document it (503 for
    an offline camera is the answer the service means to give)."""
    status = response.status_code
    if status != 500 and str(status) in case.operation.definition.raw.get("responses", {}):
        return None
    return not_a_server_error(ctx, response, case)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case, fuzz_node: FuzzNode) -> None:
    client = fuzz_node.client
    kwargs: dict[str, Any] = case.as_transport_kwargs(
        base_url=str(client.base_url), headers=fuzz_node.auth
    )
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)  # Starlette warns about per-request cookies
    if isinstance(kwargs.get("data"), (bytes, str)):
        kwargs["content"] = kwargs.pop("data")  # requests-style raw body -> httpx
    response = client.request(**kwargs)
    if case.method in ("PUT", "DELETE") and case.path_parameters.get("name") in (LAYOUT, TOUR):
        fuzz_node.restore_wall()
    case.validate_response(response, checks=[no_unplanned_server_error], headers=fuzz_node.auth)
