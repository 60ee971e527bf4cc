"""Every route the app serves x every identity x own and other platform gets the status its
declared rule promises.

The routes come from the app's own route table, so a route added later is in the matrix
without editing this file. What each role may do is written here from the issue's words
(``ALLOWED``), not read back from the service, so a route that declares too little is caught.
Requests carry real identifiers and, where the test knows one, a valid body; a route it
knows nothing about still gets the anonymous and role checks.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_connect

from surveillance.api.guards import Guard, route_guard, served_routes
from surveillance.auth.roles import Permission, Role
from tests.auth_helpers import TEST_PASSWORD
from tests.security.conftest import (
    IDENTITIES,
    OTHER_CAMERA,
    OTHER_LAYOUT,
    OWN_CAMERA,
    OWN_LAYOUT,
    SecureNode,
)

pytestmark = pytest.mark.rtsp

# The role table: viewer (wall), operator (wall, layouts, tours, snapshots),
# handler (cases, attaching and exporting evidence; they attach from the wall), admin (all).
# Issue 13: every role sees events; operators and handlers acknowledge them; operators draw
# zones (handlers do not); handlers read the availability reports. Issue 14: operators steer
# cameras (PTZ), handlers do not.
WALL = {Permission.LIVE_VIEW, Permission.AUDIT_READ, Permission.EVENTS_VIEW}
ALLOWED: dict[Role, set[Permission]] = {
    Role.VIEWER: WALL,
    Role.OPERATOR: WALL
    | {
        Permission.SNAPSHOT_TAKE,
        Permission.RECORDINGS_VIEW,
        Permission.WALL_EDIT,
        Permission.EVENTS_ACK,
        Permission.ZONES_EDIT,
        Permission.PTZ_CONTROL,
    },
    Role.HANDLER: WALL
    | {
        Permission.SNAPSHOT_TAKE,
        Permission.RECORDINGS_VIEW,
        Permission.CASES_READ,
        Permission.CASES_WRITE,
        Permission.EVIDENCE_ATTACH,
        Permission.EVIDENCE_EXPORT,
        Permission.EVENTS_ACK,
        Permission.REPORTS_READ,
        Permission.PTZ_CONTROL,
    },
    Role.ADMIN: set(Permission),
}
# Only these may be reached without signing in.
PUBLIC = {
    ("GET", "/api/health"),
    ("POST", "/api/auth/login"),
    ("GET", "/login"),
    ("GET", "/favicon.ico"),  # the icon the sign-in page shows too
    # Whether this node reaches the database ("ok" / "unreachable", nothing else): the
    # other nodes ask it without credentials during an outage (services/outage_evidence.py).
    ("GET", "/api/cluster/database"),
}
# Sensitive permissions that must guard these routes at least (catches a route that
# declares a weaker rule than its job needs).
MUST_NEED = {
    ("GET", "/api/users"): Permission.USERS_MANAGE,
    ("POST", "/api/users"): Permission.USERS_MANAGE,
    ("POST", "/api/tokens"): Permission.USERS_MANAGE,
    ("GET", "/metrics"): Permission.SYSTEM_READ,
    ("GET", "/api/cases/{number}/export.zip"): Permission.EVIDENCE_EXPORT,
    ("GET", "/api/cases/{number}/items/{ref}/content"): Permission.CASES_READ,
    ("POST", "/api/cases/{number}/items/clip"): Permission.EVIDENCE_ATTACH,
    ("GET", "/api/cameras/{camera_id}/snapshot.jpg"): Permission.SNAPSHOT_TAKE,
    ("GET", "/api/cameras/{camera_id}/recordings"): Permission.RECORDINGS_VIEW,
    ("GET", "/api/cameras/{camera_id}/recordings/export.mp4"): Permission.RECORDINGS_VIEW,
    ("GET", "/api/cameras/{camera_id}/recordings/play.mp4"): Permission.RECORDINGS_VIEW,
    ("POST", "/api/cases/{number}/items/clips"): Permission.EVIDENCE_ATTACH,
    ("POST", "/api/cases/{number}/holds"): Permission.EVIDENCE_ATTACH,
    ("PUT", "/api/layouts/{name}"): Permission.WALL_EDIT,
    ("GET", "/api/audit"): Permission.AUDIT_READ,
    ("GET", "/api/events"): Permission.EVENTS_VIEW,
    ("GET", "/api/events/stream"): Permission.EVENTS_VIEW,
    ("GET", "/api/events/{event_id}/snapshot"): Permission.EVENTS_VIEW,
    ("GET", "/api/events/{event_id}/clip.mp4"): Permission.RECORDINGS_VIEW,  # + events.view
    ("POST", "/api/events/{event_id}/ack"): Permission.EVENTS_ACK,
    ("POST", "/api/events/{event_id}/close"): Permission.EVENTS_ACK,
    ("POST", "/api/events/{event_id}/case"): Permission.EVIDENCE_ATTACH,
    ("GET", "/api/reports/availability"): Permission.REPORTS_READ,
    ("GET", "/api/reports/availability.csv"): Permission.REPORTS_READ,
    ("GET", "/api/gb/platforms"): Permission.SYSTEM_READ,  # addresses of platforms
    ("PUT", "/api/cameras/{camera_id}/override"): Permission.USERS_MANAGE,
    ("POST", "/api/cameras/{camera_id}/ptz"): Permission.PTZ_CONTROL,
    ("POST", "/api/cameras/{camera_id}/ptz/lease"): Permission.PTZ_CONTROL,
    ("DELETE", "/api/cameras/{camera_id}/ptz/lease"): Permission.PTZ_CONTROL,
    ("GET", "/api/cameras/{camera_id}/ptz"): Permission.LIVE_VIEW,
    ("GET", "/api/ptz/leases"): Permission.LIVE_VIEW,
    ("POST", "/api/onvif/discovery"): Permission.DEVICES_DISCOVER,
    ("GET", "/api/onvif/discovery/{run_id}"): Permission.DEVICES_DISCOVER,
    ("POST", "/api/onvif/discovery/{run_id}/catalog"): Permission.DEVICES_DISCOVER,
}
# Routes about something a camera may not have yet: 404 is their answer for the own camera
# too (a camera without a reference picture).
OPTIONAL_THINGS = {
    ("GET", "/api/cameras/{camera_id}/reference.jpg"),
    ("DELETE", "/api/cameras/{camera_id}/reference"),
    # Names and tags of GB/T 28181 channel cameras: an RTSP camera is none (404).
    ("PUT", "/api/cameras/{camera_id}/override"),
    ("DELETE", "/api/cameras/{camera_id}/override"),
}
BODY_CAP = 256 * 1024  # enough of any answer to search; an MJPEG stream never ends
# What a user limited to "town" must never be shown (an echo in a 4xx error is not showing).
OTHER_PLATFORM_IDS = (OTHER_CAMERA.encode(), b"police-plain")
PAGES = {
    "/", "/wall", "/wall/{layout}", "/cases", "/cases/{number}", "/admin", "/login", "/playback",
}  # fmt: skip


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # the route's template
    url: str
    body: Any
    # Whether the request names something of the target platform (camera, item, layout).
    about_target: bool


def routes(secure: SecureNode) -> list[tuple[str, str, APIRoute | APIWebSocketRoute]]:
    found = []
    app = secure.service._app
    assert app is not None
    for path, route in served_routes(app):
        if isinstance(route, APIRoute):
            found += [(method, path, route) for method in sorted(route.methods - {"HEAD"})]
        elif isinstance(route, APIWebSocketRoute):
            found.append(("WS", path, route))
    return found


def build(secure: SecureNode, method: str, path: str, other: bool) -> Call:
    """A real request for the route, about the own or the other platform."""
    camera = OTHER_CAMERA if other else OWN_CAMERA
    layout = OTHER_LAYOUT if other else OWN_LAYOUT
    values = {
        "camera_id": camera,
        # The other platform's case is a mixed one: the case is visible to a scoped user,
        # the other platform's evidence in it is not.
        "number": secure.mixed_case if other else secure.own_case,
        "ref": str(secure.other_item if other else secure.own_item),
        "token_id": "0000000000ab",  # a token that does not exist: revoking it is a 404
        "viewer": "no-such-viewer",  # a live viewer that does not exist: ending it is a 404
        "layout": layout,
        "hold_id": "999999",  # a hold that does not exist: releasing it is a 404
        "event_id": "999999",  # an event that does not exist: a 404 whoever asks
        "platform_id": "no-such-gb-platform",  # this node runs no GB/T 28181 server: a 404
        "run_id": "0000000000000000",  # a discovery run that does not exist: a 404
    }
    about = path.count("{camera_id}") + path.count("{ref}") + path.endswith("/export.zip")
    if path.startswith("/api/users/"):
        values["name"] = "nobody-by-this-name"
    elif path == "/api/layouts/{name}":
        values["name"] = layout
        # Reading a layout shows the other platform's tiles empty (checked on the body);
        # changing one that shows them is refused.
        about += method != "GET"
    elif path.startswith("/api/tours/"):
        values["name"] = "no-such-tour"
    elif "{zone_id}" in path:
        values["zone_id"] = str(_new_zone(secure, camera))
    if path in PAGES:
        about = 0  # a page is the same static file whatever its URL names
    url = path
    for name, value in values.items():
        url = url.replace("{" + name + "}", value)
    assert "{" not in url, f"no sample value for a parameter of {path}: add one to build()"
    body, body_about = _body(secure, method, path, camera, layout)
    query = ""
    if path.startswith("/api/mosaic/"):
        url = url.replace(layout, "1")
        query = f"?cameras={camera}"
        about = 1
    if path == "/api/live/mse":
        query = f"?camera={camera}"
        about = 1
    if path.startswith("/api/cameras/{camera_id}/recordings"):
        query = _recordings_query(path)
    if path.startswith("/api/reports/"):
        # Every platform the caller sees: a scoped user's must not show the other's.
        today = datetime.now(UTC).date().isoformat()
        query = f"?from={today}&to={today}"
    return Call(method, path, url + query, body, bool(about or body_about))


ZONE_POINTS = [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]


def _zone_body() -> dict[str, Any]:
    """A valid zone, with a name no other zone has (names are unique per camera)."""
    return {"name": f"zone-{uuid.uuid4().hex[:8]}", "points": ZONE_POINTS, "enabled": False}


def _new_zone(secure: SecureNode, camera: str) -> int:
    """A zone of ``camera``, made by the admin, for one row to change or remove."""
    answer = secure.client.post(
        f"/api/cameras/{camera}/zones", json=_zone_body(), headers=secure.headers["admin"]
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _recordings_query(path: str) -> str:
    """A window the recordings routes accept (nothing is recorded: an empty answer)."""
    now = datetime.now(UTC)
    start = (now - timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    end = (now - timedelta(seconds=20)).isoformat().replace("+00:00", "Z")
    if path.endswith("/recordings"):
        return f"?from={start}&to={end}"
    return f"?start={start}&end={end}"


def _body(secure: SecureNode, method: str, path: str, camera: str, layout: str) -> tuple[Any, bool]:
    if method not in ("POST", "PUT", "PATCH"):
        return None, False
    recently = (datetime.now(UTC) - timedelta(seconds=3)).isoformat()
    grid = {"cols": 1, "rows": 1, "tiles": [{"x": 0, "y": 0, "camera": camera}]}
    known: dict[tuple[str, str], tuple[Any, bool]] = {
        ("POST", "/api/auth/login"): ({"name": "viewer", "password": TEST_PASSWORD}, False),
        ("POST", "/api/auth/logout"): (None, False),
        ("POST", "/api/auth/password"): (
            {"current_password": TEST_PASSWORD, "new_password": TEST_PASSWORD},
            False,
        ),
        ("POST", "/api/users"): (
            {"name": f"u-{uuid.uuid4().hex[:8]}", "role": "viewer", "password": TEST_PASSWORD},
            False,
        ),
        ("PATCH", "/api/users/{name}"): ({"disabled": False}, False),
        ("POST", "/api/tokens"): ({"user": "viewer", "label": "matrix"}, False),
        ("POST", "/api/live/plan"): (
            {"camera": camera, "caps": {"webrtc_h264": True, "mse_avc": True, "mse_hevc": False}},
            True,
        ),
        ("POST", "/api/live/webrtc"): ({"camera": camera, "sdp": secure.offer_sdp}, True),
        ("POST", "/api/mosaic/{layout}/webrtc"): ({"sdp": secure.offer_sdp}, True),
        ("POST", "/api/cases"): ({"title": "matrix", "cameras": [camera]}, True),
        ("PATCH", "/api/cases/{number}"): ({"cameras": [camera]}, True),
        ("POST", "/api/cases/{number}/transitions"): ({"to": "dispatched"}, False),
        ("POST", "/api/cases/{number}/comments"): ({"text": "matrix"}, False),
        ("POST", "/api/cases/{number}/items/snapshot"): ({"camera": camera}, True),
        ("POST", "/api/cases/{number}/items/clip"): (
            {"camera": camera, "at": recently, "pre_s": 1, "post_s": 0.5},
            True,
        ),
        ("POST", "/api/cases/{number}/items/clips"): (
            {"camera_ids": [camera], "at": recently, "pre_s": 1, "post_s": 0.5},
            True,
        ),
        ("POST", "/api/cases/{number}/holds"): (
            {"camera_id": camera, "start": recently, "end": datetime.now(UTC).isoformat()},
            True,
        ),
        ("PUT", "/api/layouts/{name}"): ({"name": layout, "title": layout, **grid}, True),
        ("POST", "/api/cameras/{camera_id}/zones"): (_zone_body(), True),
        ("POST", "/api/cameras/{camera_id}/ptz"): ({"pan": 0, "tilt": 0, "zoom": 0}, True),
        ("POST", "/api/cameras/{camera_id}/ptz/lease"): ({"takeover": False}, True),
        # A short run against a closed port (202 first, 409 while it goes on).
        ("POST", "/api/onvif/discovery"): (
            {"targets": ["127.0.0.1:9"], "multicast": False, "time_limit_s": 1},
            False,
        ),
        ("PUT", "/api/cameras/{camera_id}/zones/{zone_id}"): (_zone_body(), True),
        ("PUT", "/api/tours/{name}"): (
            {"name": "no-such-tour", "title": "t", "pages": [{"grid": grid, "dwell_s": 10}]},
            True,
        ),
    }
    return known.get((method, path), ({}, False))


def restore_layout(secure: SecureNode, layout_name: str) -> None:
    """Put back a layout an allowed DELETE removed, so later rows find the same data."""
    camera = OWN_CAMERA if layout_name == OWN_LAYOUT else OTHER_CAMERA
    layout = {
        "name": layout_name,
        "title": layout_name,
        "cols": 1,
        "rows": 1,
        "tiles": [{"x": 0, "y": 0, "camera": camera}],
    }
    response = secure.client.put(
        f"/api/layouts/{layout_name}", json=layout, headers=secure.headers["admin"]
    )
    assert response.status_code == 200


def send(secure: SecureNode, identity: str | None, call: Call) -> tuple[int, bytes]:
    headers = secure.headers[identity] if identity else {}
    client = secure.client
    client.cookies.clear()  # the sign-in route's cookie would make the next call signed in
    if call.method == "WS":
        url = secure.service.url.replace("http", "ws", 1) + call.url
        try:
            # max_queue=None: the media after the first message keeps being read, so the
            # server's close frame is seen at once; with the default queue (16 messages)
            # full of unread media the client stops reading and close() waits out its
            # close_timeout (10 s).
            with websocket_connect(
                url, additional_headers=headers, open_timeout=10, max_queue=None
            ) as ws:
                message = json.loads(ws.recv(timeout=10))
        except InvalidStatus as exc:
            # A refused handshake is an HTTP 403 whatever the reason; who asked tells which.
            assert exc.response.status_code == 403
            return (401 if identity is None else 403), b""
        return (200 if message.get("type") == "init" else 404), json.dumps(message).encode()
    # Streamed, so an endless answer (MJPEG) gives its status without being read to the end.
    with client.stream(
        call.method, call.url, json=call.body, headers=headers, follow_redirects=False
    ) as response:
        body = b""
        # An event stream never ends and may stay quiet for seconds: its first event (the
        # snapshot of what the caller may see) is what there is to check.
        events = response.headers.get("content-type", "").startswith("text/event-stream")
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= BODY_CAP or (events and b"\n\n" in body):
                break
        return response.status_code, body


def expected(identity: str | None, guard: Guard, call: Call, other: bool) -> set[int] | str:
    """The statuses the rules allow, or "allowed" (anything but 401, 403 and 5xx)."""
    if guard.public:
        return "allowed"
    if identity is None:
        return {303} if call.path in PAGES else {401}
    role, platforms = IDENTITIES[identity]
    if not guard.permissions <= ALLOWED[role]:
        return {403}
    if platforms and call.about_target and other:
        return {403, 404, 422}
    return "allowed"


def test_every_route_declares_a_rule_and_only_the_public_ones_are_open(
    secure: SecureNode,
) -> None:
    open_routes = set()
    for method, path, route in routes(secure):
        guard = route_guard(route)
        assert guard is not None, f"{method} {path} has no access rule"
        if guard.public:
            open_routes.add((method, path))
        need = MUST_NEED.get((method, path))
        if need is not None:
            assert need in guard.permissions, f"{method} {path} must need {need}"
    assert open_routes == PUBLIC


def own_echoes_out(path: str, body: bytes) -> bytes:
    """The body to scan for the other platform's ids: the audit log without the caller's
    own refused requests. A scoped user reads only their own entries, and a refusal's
    entry echoes the path they sent (``/api/cameras/other-cam/...``): what they typed, not
    what the node told them; a camera that does not exist is refused with the same status
    and leaves the same kind of entry. Every other entry is scanned as it is."""
    if path != "/api/audit":
        return body
    page = json.loads(body)
    page["entries"] = [e for e in page["entries"] if e["action"] != "access.denied"]
    return json.dumps(page).encode()


@pytest.mark.parametrize("identity", [None, *IDENTITIES], ids=lambda i: i or "anonymous")
def test_route_matrix(secure: SecureNode, identity: str | None) -> None:
    problems = []
    for method, path, route in routes(secure):
        guard = route_guard(route)
        assert guard is not None
        for other in (False, True):
            call = build(secure, method, path, other)
            if other and not call.about_target:
                continue  # the same request as for the own platform
            status, body = send(secure, identity, call)
            want = expected(identity, guard, call, other)
            if status == 204 and call.method == "DELETE" and path == "/api/layouts/{name}":
                restore_layout(secure, layout_name=call.url.rsplit("/", 1)[1])
            scoped = bool(identity and IDENTITIES[identity][1])
            if want == "allowed":
                ok = status not in (401, 403) and status < 500
                if ok and call.about_target and not other and status == 404:
                    # The own platform's things must be found.
                    ok = (method, path) in OPTIONAL_THINGS
                if scoped and not other and call.about_target:
                    ok = ok and status != 422
            else:
                ok = status in want
            if scoped and status < 400:
                shown = [i.decode() for i in OTHER_PLATFORM_IDS if i in own_echoes_out(path, body)]
                if shown:
                    problems.append(f"{call.method} {call.url} shows {shown} to {identity}")
            if not ok:
                where = "other" if other else "own"
                problems.append(f"{call.method} {call.url} ({where}): {status}, expected {want}")
    assert not problems, "\n".join(problems)
