"""GET /api/cameras/events against the real app under uvicorn and the real RTSP server:
a snapshot first, then a camera's change when it goes down; only the cameras the user may
see, URLs only for admins; the per-user cap; the end of the stream when access ends."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer, ensure_user
from tests.service import ServiceProcess
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp

STREAMS_PER_USER = 2
DOWN_MOUNT = "drop"  # the camera that goes down
OTHER_MOUNT = "cam12"


class EventReader:
    """Reads one event stream in a thread: (event name, parsed data, arrival), and
    comment lines, as they come."""

    def __init__(
        self, client: httpx.Client, headers: dict[str, str], path: str = "/api/cameras/events"
    ) -> None:
        self.path = path
        self.events: list[tuple[str, Any, float]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.ended = threading.Event()
        self._client = client
        self._headers = headers
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> EventReader:
        self._thread.start()
        wait_until(lambda: self.status is not None, 10, "the stream's answer")
        return self

    def close(self) -> None:
        if self._response is not None:
            # Closing the response from this thread does not wake the reader blocked in a
            # read: it would wait for the next event or keepalive (15 s). Shutting the socket
            # down ends that read at once, and the server sees the close as a viewer's would.
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed
                    sock.shutdown(socket.SHUT_RDWR)
            self._response.close()
        self._thread.join(10)

    def named(self, name: str) -> list[Any]:
        return [data for event, data, _ in self.events if event == name]

    def _run(self) -> None:
        try:
            with self._client.stream(
                "GET", self.path, headers=self._headers, timeout=None
            ) as response:
                self._response = response
                self.status = response.status_code
                if response.status_code != 200:
                    response.read()
                    return
                assert response.headers["content-type"].startswith("text/event-stream")
                event = None
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments.append(line)
                    elif line.startswith("event: "):
                        event = line[len("event: ") :]
                    elif line.startswith("data: ") and event is not None:
                        self.events.append((event, json.loads(line[6:]), time.monotonic()))
                        event = None
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test
        finally:
            if self.status is None:
                self.status = -1
            self.ended.set()


@contextmanager
def reading(client: httpx.Client, headers: dict[str, str]) -> Iterator[EventReader]:
    reader = EventReader(client, headers).start()
    try:
        yield reader
    finally:
        reader.close()


def state_of(client: httpx.Client, camera: str, headers: dict[str, str]) -> str:
    return str(client.get(f"/api/cameras/{camera}", headers=headers).json()["state"])


@pytest.fixture(scope="module")
def service(simulator: Simulator) -> Iterator[tuple[httpx.Client, ServiceProcess]]:
    config = AppConfig.model_validate(
        {
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1, "stall_after_s": 1.5},
            "platforms": [{"id": "town", "name": "Town"}, {"id": "port", "name": "Port"}],
            "cameras": [
                {
                    "id": "down",
                    "name": "Goes down",
                    "platform": "town",
                    "url": simulator.url(DOWN_MOUNT),
                },
                {
                    "id": "other",
                    "name": "Other",
                    "platform": "port",
                    "url": simulator.url(OTHER_MOUNT),
                },
            ],
            "limits": {"event_streams_per_user": STREAMS_PER_USER},
        }
    )
    process = ServiceProcess(config)
    process.start()
    try:
        with httpx.Client(base_url=process.url, timeout=10) as client:
            admin = bearer(process.node)
            for camera in ("down", "other"):
                wait_until(
                    lambda camera=camera: state_of(client, camera, admin) == "online",
                    30,
                    f"{camera} online",
                )
            yield client, process
    finally:
        process.stop()


def test_snapshot_then_a_change_when_a_camera_goes_down_in_scope_only(
    simulator: Simulator, service: tuple[httpx.Client, ServiceProcess]
) -> None:
    client, process = service
    admin = bearer(process.node)
    scoped = bearer(process.node, "porter", Role.VIEWER, cameras=["other"])
    listed_for_admin = client.get("/api/cameras", headers=admin).json()
    with reading(client, admin) as everyone, reading(client, scoped) as porter:
        wait_until(lambda: everyone.named("snapshot") and porter.named("snapshot"), 10, "snapshots")
        snapshot = everyone.named("snapshot")[0]
        # The same list GET /api/cameras gives (health figures move, ids and shape do not).
        assert [c["id"] for c in snapshot] == [c["id"] for c in listed_for_admin]
        assert set(snapshot[0]) == set(listed_for_admin[0])
        assert set(snapshot[0]["health"]) >= {"retry_at", "last_live_at", "attempting", "warning"}
        assert all(c["url"] for c in snapshot)  # admins see (redacted) URLs
        (porter_view,) = porter.named("snapshot")[0]
        assert porter_view["id"] == "other" and porter_view["url"] is None
        simulator.fault(DOWN_MOUNT, "refuse")
        try:
            simulator.fault(DOWN_MOUNT, "drop")
            down = wait_until(
                lambda: [c for c in everyone.named("camera") if c["id"] == "down"
                         and c["state"] == "offline"],
                15,
                "the down camera's change",
            )  # fmt: skip
            assert down[-1]["health"]["last_error"]
            assert down[-1]["url"]
            # Events of one camera are at least 250 ms apart (coalesced).
            times = [at for event, data, at in everyone.events
                     if event == "camera" and data["id"] == "down"]  # fmt: skip
            assert all(b - a >= 0.2 for a, b in itertools.pairwise(times)), times
            time.sleep(1.0)  # whatever the scoped stream would wrongly get has come by now
            assert all(c["id"] == "other" for c in porter.named("camera"))
            assert all(c["url"] is None for c in porter.named("camera"))
        finally:
            simulator.fault(DOWN_MOUNT, "resume")
        wait_until(
            lambda: [c for c in everyone.named("camera") if c["id"] == "down"
                     and c["state"] == "online"],
            20,
            "the down camera back online",
        )  # fmt: skip


def test_streams_past_the_users_cap_get_429_and_a_closed_one_frees_its_place(
    service: tuple[httpx.Client, ServiceProcess],
) -> None:
    client, process = service
    ensure_user(process.node, "capped", Role.VIEWER)
    headers = bearer(process.node, "capped", Role.VIEWER)
    readers = [EventReader(client, headers).start() for _ in range(STREAMS_PER_USER)]
    try:
        assert [r.status for r in readers] == [200] * STREAMS_PER_USER
        refused = client.get("/api/cameras/events", headers=headers)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        # Another user is not counted against this one.
        with reading(client, bearer(process.node)) as other:
            assert other.status == 200
        readers.pop().close()
        # Only this user's remaining stream is open now, once the server saw the close.
        wait_until(
            lambda: len(process.node.health_events) < STREAMS_PER_USER,
            10,
            "the closed stream's place freed",
        )
        with reading(client, headers) as again:
            assert again.status == 200
    finally:
        for reader in readers:
            reader.close()


def test_the_stream_ends_when_the_token_is_revoked(
    service: tuple[httpx.Client, ServiceProcess],
) -> None:
    client, process = service
    node = process.node
    ensure_user(node, "revoked", Role.VIEWER)
    info, secret = node.auth.create_token("revoked", "tests")
    with reading(client, {"Authorization": f"Bearer {secret}"}) as reader:
        wait_until(lambda: reader.named("snapshot"), 10, "snapshot")
        assert not reader.ended.is_set()
        node.auth.revoke_token(info.id)
        assert reader.ended.wait(10), "the stream outlived its token"


def test_a_change_of_scope_sends_a_fresh_snapshot_without_the_cameras_left_out(
    service: tuple[httpx.Client, ServiceProcess],
) -> None:
    """``event: camera`` can only add or update a camera: when the user's scope narrows,
    only a new snapshot tells the page which cameras it may no longer show."""
    client, process = service
    node = process.node
    headers = bearer(node, "narrowed", Role.VIEWER, cameras=["down", "other"])
    with reading(client, headers) as reader:
        wait_until(lambda: reader.named("snapshot"), 10, "snapshot")
        assert {c["id"] for c in reader.named("snapshot")[0]} == {"down", "other"}
        node.auth.update_user("narrowed", cameras=["other"])
        # The stream re-checks its credential every LIVE_RECHECK_S (2 s).
        wait_until(lambda: len(reader.named("snapshot")) >= 2, 10, "a fresh snapshot")
        assert [c["id"] for c in reader.named("snapshot")[1]] == ["other"]
        node.auth.update_user("narrowed", cameras=["down", "other"])
        wait_until(lambda: len(reader.named("snapshot")) >= 3, 10, "a snapshot on widening")
        assert {c["id"] for c in reader.named("snapshot")[2]} == {"down", "other"}
        time.sleep(2.5)  # one more re-check with the scope unchanged: no snapshot
        assert len(reader.named("snapshot")) == 3
