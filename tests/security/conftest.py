"""One node for the security tests: two platforms ("town" is the scoped users' own, "police"
the other), real cameras from the simulator with credentials in every URL, a user per role,
users limited to "town", and a case holding evidence from both platforms."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCPeerConnection

from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator import Simulator
from tests.auth_helpers import bearer
from tests.service import ServiceProcess

# Every credential the node knows; none may ever leave it.
OWN_CAMERA_PASSWORD = "Canary-Own-7c1e"
OTHER_CAMERA_PASSWORD = "Canary-Other-52ab"
PLATFORM_PASSWORD = "Canary-Platform-90df"
# Credentials in the query string, the way Dahua-style cameras take them
# (".../cam/realmonitor?channel=1&subtype=0&user=admin&password=...").
QUERY_PASSWORD = "Canary-Query-3f6b"
QUERY_PWD = "Canary-Pwd-d071"
QUERY_TOKEN = "Canary-Token-e48a"
# Credentials in the path (XMEye/Uniview "/user=admin_password=XXX_channel=1_stream=0.sdp"),
# in ';' parameters and in the fragment.
PATH_PASSWORD = "Canary-Path-1a9c"
SEMICOLON_PASSWORD = "Canary-Semi-64d2"
FRAGMENT_PASSWORD = "Canary-Frag-b37e"
SECRETS = (
    OWN_CAMERA_PASSWORD,
    OTHER_CAMERA_PASSWORD,
    PLATFORM_PASSWORD,
    QUERY_PASSWORD,
    QUERY_PWD,
    QUERY_TOKEN,
    PATH_PASSWORD,
    SEMICOLON_PASSWORD,
    FRAGMENT_PASSWORD,
)

OWN_CAMERA = "own-cam"
OTHER_CAMERA = "other-cam"
OWN_LAYOUT = "own-layout"
OTHER_LAYOUT = "other-layout"
QUERY_CAMERA = "query-cam"  # online, credentials in its query string
QUERY_FAILING_CAMERA = "query-failing"  # offline with an error text that echoes its URL
# Offline too (rtsps:// to a plain server), their error texts echoing URLs with credentials
# in the path, a ';' parameter and the fragment.
PATH_FAILING_CAMERAS = ("path-failing", "semicolon-failing", "fragment-failing")

# name -> (role, platforms): one unscoped user per role, and two limited to "town".
IDENTITIES: dict[str, tuple[Role, tuple[str, ...]]] = {
    "viewer": (Role.VIEWER, ()),
    "operator": (Role.OPERATOR, ()),
    "handler": (Role.HANDLER, ()),
    "admin": (Role.ADMIN, ()),
    "scoped-operator": (Role.OPERATOR, ("town",)),
    "scoped-handler": (Role.HANDLER, ("town",)),
}


def _with_credentials(url: str, user: str, password: str) -> str:
    return url.replace("rtsp://", f"rtsp://{user}:{password}@", 1)


def _failing_url(simulator: Simulator, path: str) -> str:
    root = simulator.url("cam14", credentials=False).rsplit("/", 1)[0]
    root = root.replace("rtsp://", "rtsps://", 1)
    return f"{root}/{path}"


def security_config(simulator: Simulator, data_dir: Path) -> AppConfig:
    path_forms = (
        f"user=watch_password={PATH_PASSWORD}_channel=1_stream=0.sdp",
        f"cam15;password={SEMICOLON_PASSWORD}",
        f"cam16?channel=1#password={FRAGMENT_PASSWORD}",
    )
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            "ingest": {"backoff_initial_s": 0.2, "backoff_max_s": 1},
            "platforms": [
                {"id": "town", "name": "Town"},
                {
                    "id": "police",
                    "name": "Police",
                    "username": "nvr",
                    "password": PLATFORM_PASSWORD,
                },
            ],
            "cameras": [
                {
                    "id": OWN_CAMERA,
                    "name": "Own camera",
                    "platform": "town",
                    "url": _with_credentials(simulator.url("cam10"), "watch", OWN_CAMERA_PASSWORD),
                    "tags": ["traffic"],
                },
                {
                    "id": OTHER_CAMERA,
                    "name": "Other camera",
                    "platform": "police",
                    "url": _with_credentials(
                        simulator.url("cam11"), "watch", OTHER_CAMERA_PASSWORD
                    ),
                    "tags": ["traffic"],
                },
                {
                    # Platform credentials, used because the camera names none.
                    "id": "police-plain",
                    "name": "Police, platform credentials",
                    "platform": "police",
                    "url": simulator.url("cam12"),
                },
                {
                    "id": QUERY_CAMERA,
                    "name": "Query-string credentials",
                    "platform": "town",
                    "url": simulator.url("cam13")
                    + f"?channel=1&subtype=0&user=watch&password={QUERY_PASSWORD}",
                },
                {
                    # rtsps:// to a plain RTSP server: FFmpeg fails with EIO and a text
                    # holding the whole URL, which becomes the camera's last_error.
                    "id": QUERY_FAILING_CAMERA,
                    "name": "Query-string credentials, failing",
                    "platform": "town",
                    "url": simulator.url("cam14").replace("rtsp://", "rtsps://", 1)
                    + f"?username=watch&pwd={QUERY_PWD}&token={QUERY_TOKEN}",
                },
                *(
                    {
                        "id": camera_id,
                        "name": camera_id,
                        "platform": "town",
                        "url": _failing_url(simulator, path),
                    }
                    for camera_id, path in zip(PATH_FAILING_CAMERAS, path_forms, strict=True)
                ),
            ],
        }
    )


async def make_offer() -> str:
    """A browser-like receive-only video offer, for the WebRTC routes."""
    peer = RTCPeerConnection()
    peer.addTransceiver("video", direction="recvonly")
    await peer.setLocalDescription(await peer.createOffer())
    sdp = str(peer.localDescription.sdp)
    await peer.close()
    return sdp


@dataclass
class SecureNode:
    # A real server: the matrix must reach endless streams and WebSockets over the wire.
    service: ServiceProcess
    client: httpx.Client
    node: Node
    headers: dict[str, dict[str, str]]  # identity -> Authorization header
    own_case: str  # evidence from the own platform only
    mixed_case: str  # evidence from both platforms
    own_item: int  # in own_case
    other_item: int  # in mixed_case
    offer_sdp: str
    data_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="package")
def secure(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNode]:
    data_dir = tmp_path_factory.mktemp("secure-node")
    service = ServiceProcess(security_config(simulator, data_dir))
    service.start()
    node = service.node
    with httpx.Client(base_url=service.url, timeout=30) as client:
        headers = {
            name: bearer(node, name, role, platforms=platforms)
            for name, (role, platforms) in IDENTITIES.items()
        }
        admin = headers["admin"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = {c["id"]: c["state"] for c in client.get("/api/cameras", headers=admin).json()}
            if states.get(OWN_CAMERA) == states.get(OTHER_CAMERA) == "online":
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"cameras did not come online: {states}")

        def new_case(title: str, cameras: tuple[str, ...]) -> tuple[str, list[int]]:
            number = client.post("/api/cases", json={"title": title}, headers=admin).json()[
                "number"
            ]
            items = [
                client.post(
                    f"/api/cases/{number}/items/snapshot", json={"camera": camera}, headers=admin
                ).json()["id"]
                for camera in cameras
            ]
            return number, items

        own_case, (own_item,) = new_case("Own evidence", (OWN_CAMERA,))
        mixed_case, (_, other_item) = new_case("Evidence from both", (OWN_CAMERA, OTHER_CAMERA))
        for name, camera in ((OWN_LAYOUT, OWN_CAMERA), (OTHER_LAYOUT, OTHER_CAMERA)):
            layout = {
                "name": name,
                "title": name,
                "cols": 1,
                "rows": 1,
                "tiles": [{"x": 0, "y": 0, "camera": camera}],
            }
            assert client.put(f"/api/layouts/{name}", json=layout, headers=admin).status_code == 200
        yield SecureNode(
            service=service,
            client=client,
            node=node,
            headers=headers,
            own_case=own_case,
            mixed_case=mixed_case,
            own_item=own_item,
            other_item=other_item,
            offer_sdp=asyncio.run(make_offer()),
            data_dir=data_dir,
        )
    service.stop()
