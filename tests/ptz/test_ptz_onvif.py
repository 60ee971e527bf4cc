"""PTZ from the API to simulated ONVIF devices (surveillance/simulator/onvif_fleet.py): real
SOAP over real sockets through onvif-zeep-async, the real node (SQLite), its audit log.

Moves, stops and presets reach the device (its position and the commands it took); one
operator's lease refuses another; an admin takes it over; a camera left alone goes home
and its lease ends; a move whose refreshes stop is stopped by the deadman; cameras that
cannot be steered or reached are refused saying why; hostile preset names are refused or
shown as text. A fixed device is known as such from the start (the node probes it); a hung
or slow device costs one timeout, not one per click.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.api.node import Node
from surveillance.auth.roles import Role
from surveillance.config.models import AppConfig
from surveillance.simulator.onvif_device import SimulatedDevice
from surveillance.simulator.onvif_fleet import OnvifFleet
from surveillance.simulator.onvif_specs import OnvifDeviceSpec
from tests.auth_helpers import bearer
from tests.onvif_net import test_subnet
from tests.waits import wait_until

# Real HTTP servers (the devices) and waits of seconds (the deadman, the return home). The
# pictures are not needed here: the wall's PTZ test watches them move.
pytestmark = pytest.mark.integration

WAIT_S = 30.0  # generous: CI is a loaded 2-core machine
IDLE_HOME_S = 8.0  # longer than any pause between one test's commands, loaded or not
MOVE_TIMEOUT_S = 2.0  # a refresh comes well within it, even on a loaded machine
REQUEST_TIMEOUT_S = 3.0
FIRST_HOST = 60  # 127.0.S.60-61: apart from the other ONVIF tests' devices
DEVICE_USER, DEVICE_PASSWORD = "admin", "admin-pass"
HOSTILE_NAME = "<img src=x onerror=\"alert(1)\"> & 'quotes'"


@dataclass
class Rig:
    client: TestClient
    node: Node
    steered: SimulatedDevice
    fixed: SimulatedDevice
    slow: SimulatedDevice
    headers: dict[str, dict[str, str]]

    def post(self, who: str, path: str, body: Any) -> Any:
        return self.client.post(path, json=body, headers=self.headers[who])

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers[who])

    def holders(self) -> list[tuple[str, str]]:
        """(camera, holder) of every lease held now, as a viewer reads them."""
        answer = self.get("viewer", "/api/ptz/leases")
        assert answer.status_code == 200, answer.text
        return [(lease["camera_id"], lease["holder"]) for lease in answer.json()]

    def audit(self, action: str) -> list[dict[str, Any]]:
        answer = self.get("admin", "/api/audit", action=action, limit=500)
        assert answer.status_code == 200, answer.text
        return list(reversed(answer.json()["entries"]))  # oldest first


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    subnet = test_subnet()
    specs = [
        OnvifDeviceSpec(address=f"{subnet}.{FIRST_HOST}", name="Dome"),
        OnvifDeviceSpec(address=f"{subnet}.{FIRST_HOST + 1}", name="Fixed", ptz=False),
        OnvifDeviceSpec(address=f"{subnet}.{FIRST_HOST + 2}", name="Hung", fault="hang"),
        OnvifDeviceSpec(address=f"{subnet}.{FIRST_HOST + 3}", name="Slow"),  # slowed later
    ]
    with OnvifFleet(specs, pictures=False, discovery=False) as fleet:
        steered, fixed, hung, slow = fleet.devices
        nothing_there = f"http://{subnet}.{FIRST_HOST + 9}:8080/onvif/device_service"
        config = AppConfig.model_validate(
            {
                "server": {"data_dir": str(tmp_path_factory.mktemp("ptz-node"))},
                "ingest": {"connect_timeout_s": 3.0, "backoff_max_s": 1.0},
                "onvif": {"request_timeout_s": REQUEST_TIMEOUT_S},
                "ptz": {"idle_home_s": IDLE_HOME_S, "move_timeout_s": MOVE_TIMEOUT_S},
                "platforms": [
                    {
                        "id": "town",
                        "name": "Town",
                        "username": DEVICE_USER,
                        "password": DEVICE_PASSWORD,
                    }
                ],
                "cameras": [
                    _camera("dome", "rtsp://127.0.0.1:9/dome", steered.url),
                    _camera("fixed", "rtsp://127.0.0.1:9/fixed", fixed.url),
                    _camera("gone", "rtsp://127.0.0.1:9/gone", nothing_there),
                    _camera("hung", "rtsp://127.0.0.1:9/hung", hung.url),
                    _camera("slow", "rtsp://127.0.0.1:9/slow", slow.url),
                    # Its home preset does not exist on the device.
                    {**_camera("homeless", "rtsp://127.0.0.1:9/homeless", slow.url),
                     "onvif": {"url": slow.url, "home_preset": "77"}},
                    # Its stream never connects: offline, refused before its device is asked.
                    {**_camera("dark", "rtsp://127.0.0.1:9/dark", steered.url),
                     "mode": "always-on"},
                    {"id": "plain", "name": "Plain", "platform": "town",
                     "url": "rtsp://127.0.0.1:9/plain", "mode": "on-demand"},
                ],
            }
        )  # fmt: skip
        app = create_app(config)
        with TestClient(app, base_url="http://localhost") as client:
            node: Node = app.state.node
            headers = {
                name: bearer(node, name, role)
                for name, role in (
                    ("opa", Role.OPERATOR),
                    ("opb", Role.OPERATOR),
                    ("admin", Role.ADMIN),
                    ("viewer", Role.VIEWER),
                )
            }
            yield Rig(client, node, steered, fixed, slow, headers)


def _camera(camera_id: str, url: str, device_url: str) -> dict[str, Any]:
    return {
        "id": camera_id,
        "name": camera_id.title(),
        "platform": "town",
        "url": url,
        "mode": "on-demand",
        "onvif": {"url": device_url},
    }


def _operations(device: SimulatedDevice, since: int = 0) -> list[str]:
    return [command.operation for command in device.commands()[since:]]


def _listed_ptz(rig: Rig) -> dict[str, bool]:
    return {c["id"]: c["ptz"] for c in rig.get("opa", "/api/cameras").json()}


def test_cameras_that_cannot_be_steered_are_refused_saying_why(rig: Rig) -> None:
    # The fixed device is known from the start (the node asked it), before anyone opened
    # its pad: no PTZ button, no lease on it, and the state says why.
    wait_until(lambda: _listed_ptz(rig)["fixed"] is False, WAIT_S, "fixed camera known fixed")
    listed = _listed_ptz(rig)
    assert listed["dome"] is True and listed["plain"] is False
    lease = rig.post("opa", "/api/cameras/fixed/ptz/lease", {"takeover": False})
    assert lease.status_code == 409 and "no PTZ" in lease.json()["detail"], lease.text
    state = rig.get("opa", "/api/cameras/fixed/ptz").json()
    assert state["controllable"] is False and "no PTZ" in state["reason"]
    plain = rig.post("opa", "/api/cameras/plain/ptz", {"pan": 0.5})
    assert plain.status_code == 409 and "no onvif section" in plain.json()["detail"]
    fixed = rig.post("opa", "/api/cameras/fixed/ptz", {"pan": 0.5})
    assert fixed.status_code == 409 and "no PTZ" in fixed.json()["detail"], fixed.text
    gone = rig.post("opa", "/api/cameras/gone/ptz", {"pan": 0.5})
    assert gone.status_code == 503, gone.text
    assert "onvif/device_service" in gone.json()["detail"]  # names the device, not the password
    assert DEVICE_PASSWORD not in gone.text
    # Held on: its refreshes fail the same way (remembered now): audited once, not each.
    for _ in range(2):
        assert rig.post("opa", "/api/cameras/gone/ptz", {"pan": 0.5}).status_code == 503
    assert rig.post("opa", "/api/cameras/gone/ptz", {"pan": -0.5}).status_code == 503
    wait_until(
        lambda: rig.get("admin", "/api/cameras/dark").json()["state"] == "offline",
        WAIT_S,
        "camera dark offline",
    )
    before = len(rig.steered.commands())
    dark = rig.post("opa", "/api/cameras/dark/ptz", {"pan": 0.5})
    assert dark.status_code == 503 and "offline" in dark.json()["detail"], dark.text
    dark_state = rig.get("opa", "/api/cameras/dark/ptz").json()  # the pad says why at once
    assert dark_state["reason"] and "offline" in dark_state["reason"], dark_state
    assert len(rig.steered.commands()) == before  # its device was not asked
    assert rig.post("opa", "/api/cameras/nosuch/ptz", {"pan": 0.5}).status_code == 404
    assert rig.post("viewer", "/api/cameras/dome/ptz", {"pan": 0.5}).status_code == 403
    # A command refused before the device is asked takes no lease; one the device did not
    # take keeps it (the operator is still steering). Each is audited with its reason.
    assert rig.holders() == [("gone", "opa")]
    failed = [e for e in rig.audit("camera.ptz") if e["outcome"] == "failed"]
    assert {e["camera_id"] for e in failed} == {"plain", "fixed", "gone", "dark"}
    assert all(e["detail"]["reason"] for e in failed)
    assert [e["detail"]["pan"] for e in failed if e["camera_id"] == "gone"] == [0.5, -0.5]


def test_moves_presets_leases_and_the_return_home(rig: Rig) -> None:
    device = rig.steered
    start = len(device.commands())
    state = rig.get("opa", "/api/cameras/dome/ptz").json()
    assert state["controllable"] is True and state["kind"] == "onvif"
    assert state["lease"] is None and state["idle_home_s"] == IDLE_HOME_S
    # A move, refreshed twice (one audit entry), reaches the device with its Timeout.
    for _ in range(3):
        assert (
            rig.post("opa", "/api/cameras/dome/ptz", {"pan": 1, "tilt": 0, "zoom": 0}).status_code
            == 204
        )
    wait_until(lambda: device.position()[0] > 0.05, WAIT_S, "the device pans right")
    moves = [c for c in device.commands()[start:] if c.operation == "ContinuousMove"]
    assert [(c.args["pan"], c.args["timeout_s"]) for c in moves] == [(1.0, MOVE_TIMEOUT_S)] * 3

    # Another operator is refused, naming who steers; everyone sees the lease.
    refused = rig.post("opb", "/api/cameras/dome/ptz", {"pan": -1, "tilt": 0, "zoom": 0})
    assert refused.status_code == 409
    assert "steered by opa (operator)" in refused.json()["detail"]
    assert ("dome", "opa") in rig.holders()
    # Camera dark is the same device under another id: the same lease holds it.
    twin = rig.post("opb", "/api/cameras/dark/ptz/lease", {"takeover": False})
    assert twin.status_code == 409 and "steered by opa" in twin.json()["detail"], twin.text
    mine = rig.get("opa", "/api/cameras/dome/ptz").json()["lease"]
    assert mine["holder"] == "opa" and mine["mine"] is True and mine["expires_in_s"] > 0

    assert (
        rig.post("opa", "/api/cameras/dome/ptz", {"pan": 0, "tilt": 0, "zoom": 0}).status_code
        == 204
    )
    wait_until(lambda: not device.moving(), WAIT_S, "the device stops")
    assert "Stop" in _operations(device, start)
    moved_to = device.position()

    # Presets: a hostile name is stored and shown as sent (the wall shows it as text);
    # names and tokens that are not printable, too long or reorder text are refused.
    saved = rig.post(
        "opa", "/api/cameras/dome/ptz", {"preset": {"action": "set", "name": HOSTILE_NAME}}
    )
    assert saved.status_code == 200, saved.text
    token = saved.json()["token"]
    assert device.presets()[token] == HOSTILE_NAME
    presets = rig.get("opa", "/api/cameras/dome/ptz").json()["presets"]
    assert {"token": token, "name": HOSTILE_NAME} in presets
    # A GB preset number names no new ONVIF preset (the device chooses tokens): refused.
    numbered = rig.post(
        "opa", "/api/cameras/dome/ptz", {"preset": {"action": "set", "number": 5, "name": "x"}}
    )
    assert numbered.status_code == 422 and "by name" in numbered.text, numbered.text
    for bad in ({"name": "a\nb"}, {"name": "x" * 65}, {"name": "evil\u202egnp"}, {"token": "\x00"}):
        answer = rig.post("opa", "/api/cameras/dome/ptz", {"preset": {"action": "set", **bad}})
        assert answer.status_code == 422, bad
    # Away and back to the preset.
    rig.post("opa", "/api/cameras/dome/ptz", {"pan": 0, "tilt": 1, "zoom": 0})
    wait_until(lambda: device.position()[1] > moved_to[1] + 0.05, WAIT_S, "the device tilts")
    rig.post("opa", "/api/cameras/dome/ptz", {"pan": 0, "tilt": 0, "zoom": 0})
    goto = rig.post("opa", "/api/cameras/dome/ptz", {"preset": {"action": "goto", "token": token}})
    assert goto.status_code == 204, goto.text
    wait_until(
        lambda: all(abs(a - b) < 0.02 for a, b in zip(device.position(), moved_to, strict=True)),
        WAIT_S,
        "the device back at the preset",
    )
    unknown = rig.post(
        "opa", "/api/cameras/dome/ptz", {"preset": {"action": "goto", "token": "nope"}}
    )
    assert unknown.status_code == 502, unknown.text  # the device refused it; the lease stays
    assert rig.get("opa", "/api/cameras/dome/ptz").json()["lease"]["holder"] == "opa"

    # An operator cannot take it over; the admin can, and then the operator is refused.
    over = rig.post("opb", "/api/cameras/dome/ptz/lease", {"takeover": True})
    assert over.status_code == 409 and "only a higher role" in over.json()["detail"]
    taken = rig.post("admin", "/api/cameras/dome/ptz/lease", {"takeover": True})
    assert taken.status_code == 200 and taken.json()["holder"] == "admin", taken.text
    assert (
        rig.post("opa", "/api/cameras/dome/ptz", {"pan": 1, "tilt": 0, "zoom": 0}).status_code
        == 409
    )
    removed = rig.post(
        "admin", "/api/cameras/dome/ptz", {"preset": {"action": "remove", "token": token}}
    )
    assert removed.status_code == 204 and token not in device.presets()
    released = rig.client.delete("/api/cameras/dome/ptz/lease", headers=rig.headers["admin"])
    assert released.status_code == 204
    assert "dome" not in dict(rig.holders())

    # Left alone, it goes home (the device's home position: no home_preset configured).
    wait_until(lambda: max(map(abs, device.position())) < 0.01, WAIT_S, "the device back home")
    assert "GotoHomePosition" in _operations(device, start)
    homes = wait_until(lambda: rig.audit("ptz.home"), WAIT_S, "ptz.home audited")
    assert homes[-1]["user"] == "system" and homes[-1]["camera_id"] == "dome"
    assert homes[-1]["detail"]["to"] == "home position"

    # The audit: each distinct command once (the refreshes are not), the lease's story.
    commands = [
        (e["user"], e["outcome"], e["detail"].get("preset"), e["detail"].get("pan"))
        for e in rig.audit("camera.ptz") if e["camera_id"] == "dome"
    ]  # fmt: skip
    assert commands[:2] == [("opa", "ok", None, 1), ("opb", "failed", None, -1)], commands
    assert ("opa", "ok", "set", None) in commands and ("opa", "ok", "goto", None) in commands
    assert ("opa", "failed", "goto", None) in commands  # the unknown token
    assert ("admin", "ok", "remove", None) in commands
    leases = [
        (e["user"], e["detail"]["event"])
        for e in rig.audit("ptz.lease")
        if e["camera_id"] == "dome"
    ]
    assert leases == [
        ("opa", "taken"),
        ("admin", "taken-over"),
        ("admin", "released"),
        ("system", "expired-home"),
    ], leases


def test_a_move_whose_refreshes_stop_is_stopped_by_the_deadman(rig: Rig) -> None:
    device = rig.steered
    start = len(device.commands())
    pan_before = device.position()[0]
    for _ in range(2):  # a held button: refreshed, then the page goes away
        moved = rig.post("opb", "/api/cameras/dome/ptz", {"pan": -0.5, "tilt": 0, "zoom": 0})
        assert moved.status_code == 204, moved.text

    def stopped_after_the_moves() -> list[str]:
        ops = _operations(device, start)
        return ops if ops[-1:] == ["Stop"] and ops.count("ContinuousMove") == 2 else []

    # Nobody sent a stop: the node's deadman did (the device's own Timeout is the same).
    ops = wait_until(stopped_after_the_moves, WAIT_S, "the deadman's Stop at the device")
    assert ops.count("Stop") == 1, ops
    assert not device.moving() and device.position()[0] < pan_before
    stops = [e for e in rig.audit("camera.ptz") if e["detail"].get("stop") == "deadman"]
    assert stops and stops[-1]["user"] == "system" and stops[-1]["camera_id"] == "dome"
    assert stops[-1]["detail"]["after_s"] == MOVE_TIMEOUT_S


def test_a_missing_home_preset_sends_the_camera_to_its_home_position(rig: Rig) -> None:
    device = rig.slow
    start = len(device.commands())
    moved = rig.post("opa", "/api/cameras/homeless/ptz", {"pan": 1, "tilt": 0, "zoom": 0})
    assert moved.status_code == 204, moved.text
    wait_until(lambda: device.position()[0] > 0.05, WAIT_S, "the device pans right")
    rig.post("opa", "/api/cameras/homeless/ptz", {"pan": 0, "tilt": 0, "zoom": 0})

    def homed() -> list[dict[str, Any]]:
        return [e for e in rig.audit("ptz.home") if e["camera_id"] == "homeless"]

    entry = wait_until(homed, WAIT_S, "homeless sent home")[-1]
    assert entry["outcome"] == "ok" and entry["detail"]["to"] == "home position", entry
    assert "preset 77" in entry["detail"]["why"]
    assert _operations(device, start)[-1:] == ["GotoHomePosition"]  # (a refusal is not kept)
    assert max(map(abs, device.position())) < 0.01


def test_a_hung_or_slow_device_costs_one_timeout_not_one_per_click(rig: Rig) -> None:
    # The slow device answered the node's probe at start (it has PTZ); now each of its
    # answers takes 40 % of the request timeout: connecting again (clock, services), the
    # profiles and the move each come in time, but not all of them in one command's time.
    drivers = rig.node.ptz.drivers
    wait_until(lambda: drivers.known("slow") is True, WAIT_S, "the slow device probed")
    rig.slow.slow_answer_s = 0.4 * REQUEST_TIMEOUT_S
    rig.slow.set_fault("slow")
    right = {"pan": 1, "tilt": 0, "zoom": 0}
    late = rig.post("opb", "/api/cameras/slow/ptz", right)
    assert late.status_code == 504, late.text
    assert "did not answer in time" in late.json()["detail"]
    assert "not asked again" not in late.json()["detail"]
    # Remembered: the next click is answered at once with that reason, the device not asked.
    again = rig.post("opb", "/api/cameras/slow/ptz", right)
    assert again.status_code == 504, again.text
    assert "did not answer in time (not asked again for" in again.json()["detail"]
    # The hung device (its probe at start timed out): of three clicks in a row at most the
    # first waits for it (when its failure was forgotten just before).
    hung = [rig.post("opb", "/api/cameras/hung/ptz", right) for _ in range(3)]
    assert [answer.status_code for answer in hung] == [504] * 3, [a.text for a in hung]
    remembered = ["not asked again" in answer.json()["detail"] for answer in hung]
    assert remembered[1:] == [True, True], remembered
    state = rig.get("opb", "/api/cameras/hung/ptz").json()
    assert state["controllable"] is True and "did not answer in time" in state["reason"]
    assert state["presets"] == []

    # No deadman stop for the moves the devices never took: the dome's deadman (armed
    # after theirs, with the same delay) fires, theirs never do.
    def deadman_stops(camera_id: str) -> int:
        return sum(
            1
            for e in rig.audit("camera.ptz")
            if e["camera_id"] == camera_id and e["detail"].get("stop") == "deadman"
        )

    dome_stops = deadman_stops("dome")
    moved = rig.post("opb", "/api/cameras/dome/ptz", {"pan": 0.3, "tilt": 0, "zoom": 0})
    assert moved.status_code == 204, moved.text
    wait_until(lambda: deadman_stops("dome") > dome_stops, WAIT_S, "the dome's deadman")
    assert deadman_stops("hung") == 0 and deadman_stops("slow") == 0


def test_a_slow_or_briefly_gone_device_keeps_moving_and_goes_home_once_back(rig: Rig) -> None:
    device, right = rig.steered, {"pan": 0.2, "tilt": 0, "zoom": 0}
    start = len(device.commands())
    assert rig.post("opb", "/api/cameras/dome/ptz", right).status_code == 204  # connected
    # The device now answers later than move_timeout_s (within the request timeout): the
    # deadman counts from its answer, so the refresh sent right after it keeps the camera
    # moving; then the page goes away and only then the deadman stops it.
    device.slow_answer_s = 1.1 * MOVE_TIMEOUT_S
    device.set_fault("slow")
    try:
        for _ in range(2):
            assert rig.post("opb", "/api/cameras/dome/ptz", right).status_code == 204
        ops = wait_until(
            lambda: (ops := _operations(device, start))[-1:] == ["Stop"] and ops,
            WAIT_S,
            "the deadman's Stop",
        )
    finally:
        device.set_fault(None)
    assert ops == ["ContinuousMove"] * 3 + ["Stop"], ops

    # Left alone, it is due home while its device hangs: the return fails (audited once),
    # its lease row stays, and once the device answers again it goes home after all.
    home_entries = len(rig.audit("ptz.home"))
    device.set_fault("hang")
    try:

        def failed_home() -> list[dict[str, Any]]:
            return [e for e in rig.audit("ptz.home")[home_entries:] if e["outcome"] == "failed"]

        failed = wait_until(failed_home, WAIT_S, "the return home failed")
        assert failed[0]["camera_id"] == "dome" and failed[0]["detail"]["retry_s"] > 0
        assert "did not answer in time" in failed[0]["detail"]["reason"]
        # A background attempt leaves no remembered failure to refuse the operator with.
        camera = rig.node.catalog.camera("dome")
        assert camera is not None
        driver = rig.node.ptz.drivers.onvif_driver(camera)
        assert driver is not None and driver.remembered_failure() is None
    finally:
        device.set_fault(None)

    def went_home() -> list[dict[str, Any]]:
        return [e for e in rig.audit("ptz.home")[home_entries:] if e["outcome"] == "ok"]

    home = wait_until(went_home, WAIT_S, "the return home once the device is back")[-1]
    assert home["camera_id"] == "dome" and home["detail"]["attempts"] >= 2, home
    assert max(map(abs, device.position())) < 0.01
    assert len(failed_home()) == 1  # its retries are not audited each
    assert "dome" not in dict(rig.holders())
