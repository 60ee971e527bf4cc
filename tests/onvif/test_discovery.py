"""Discovery against simulated ONVIF devices (surveillance/simulator/onvif_fleet.py): real
WS-Discovery over loopback multicast and unicast, real SOAP through onvif-zeep-async, the
real node and its API; then the found camera imported into a configuration and online.

One fleet for the module: two good PTZ devices (one with its clock 30 s ahead) whose stream
URIs are mounts of the RTSP simulator (the ``simulator`` fixture), one device per fault a
device can have, and two closed addresses after them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from surveillance.api.app import create_app
from surveillance.auth.roles import Role
from surveillance.catalog import Catalog
from surveillance.cli import build_parser
from surveillance.config import load_config
from surveillance.config.models import AppConfig, OnvifConfig
from surveillance.errors import Conflict, InvalidRequest
from surveillance.services.onvif_discover_command import run as discover_command
from surveillance.services.onvif_discovery import DiscoveryRequest, DiscoveryService
from surveillance.simulator import Simulator
from surveillance.simulator.onvif_fleet import OnvifFleet
from tests.auth_helpers import bearer
from tests.onvif_net import test_subnet
from tests.waits import wait_until

pytestmark = pytest.mark.rtsp  # the good devices' streams are the RTSP simulator's

SUBNET = test_subnet()
FIRST_HOST = 200  # 127.0.S.200-210: apart from the other ONVIF tests' devices
HTTP_PORT = 8084
USER, PASSWORD = "admin", "admin-pass"
FAULTS = {
    2: "hostile-xml",
    3: "malformed",
    4: "not-onvif",
    5: "hang",
    6: "slow",
    7: "huge",
    8: "wsd-hostile",
}
COUNT = 9  # hosts .200-.208; .209 and .210 are closed
WAIT_S = 60.0  # generous: CI is a loaded 2-core machine
# Short enough that the hanging and slow devices end the run quickly, long enough for a
# loaded machine to answer the good ones.
DISCOVERY = {"inspect_timeout_s": 4.0, "time_limit_s": 25.0, "answer_wait_s": 1.5}


def host(index: int) -> str:
    return f"{SUBNET}.{FIRST_HOST + index}"


def device_url(index: int) -> str:
    return f"http://{host(index)}:{HTTP_PORT}/onvif/device_service"


@pytest.fixture(scope="module")
def fleet(simulator: Simulator) -> Iterator[OnvifFleet]:
    with OnvifFleet.on_subnet(
        SUBNET,
        COUNT,
        first_host=FIRST_HOST,
        http_port=HTTP_PORT,
        faults=FAULTS,
        clock_offsets={1: 30.0},
        pictures=False,
        rtsp_main=simulator.url("cam03", credentials=False),
        rtsp_sub=simulator.url("cam04", credentials=False),
    ) as running:
        yield running


def catalog_with(cameras: list[dict[str, Any]]) -> Catalog:
    config = AppConfig.model_validate(
        {
            "platforms": [{"id": "site", "name": "Site", "username": USER, "password": "x"}],
            "cameras": cameras,
        }
    )
    return Catalog.from_config(config)


def ours(devices: Any) -> dict[str, Any]:
    """Results of this worker's devices only (another worker's may answer a multicast)."""
    return {d.report.device_url: d for d in devices if f"{SUBNET}.2" in d.report.device_url}


def test_a_range_finds_the_devices_reports_each_fault_and_stays_in_its_time(
    fleet: OnvifFleet, simulator: Simulator
) -> None:
    catalog = catalog_with(
        [
            # Known, but its streams moved: "changed".
            {"id": "dome", "name": "Dome", "platform": "site", "url": "rtsp://old/dome",
             "onvif": {"url": device_url(0)}},
            # Known as it is: "same", and no rows may be written for it again.
            {"id": "skew", "name": "Skewed", "platform": "site",
             "url": simulator.url("cam03", credentials=False),
             "sub_url": simulator.url("cam04", credentials=False),
             "onvif": {"url": device_url(1)}},
            # Hangs: nothing compared, so its outcome, not "same"; it is there: not gone.
            {"id": "hung", "name": "Hung", "platform": "site", "url": "rtsp://old/hung",
             "onvif": {"url": device_url(5)}},
            # Cameras whose devices are at closed addresses, one named alone with the port,
            # one only in the ported range: both "gone".
            {"id": "lost", "name": "Lost", "platform": "site", "url": "rtsp://old/lost",
             "onvif": {"url": f"http://{host(9)}:{HTTP_PORT}/onvif/device_service"}},
            {"id": "lost2", "name": "Lost 2", "platform": "site", "url": "rtsp://old/lost2",
             "onvif": {"url": device_url(10)}},
            # Out of the range: not "gone", whatever answered.
            {"id": "elsewhere", "name": "Far", "platform": "site", "url": "rtsp://old/far",
             "onvif": {"url": "http://192.0.2.250/onvif/device_service"}},
        ]
    )  # fmt: skip
    service = DiscoveryService(OnvifConfig(discovery=DISCOVERY), catalog, multicast_interfaces=[])

    async def discover() -> Any:
        run = service.start(
            DiscoveryRequest(
                targets=(f"{host(0)}-{FIRST_HOST + 10}:{HTTP_PORT}", f"{host(9)}:{HTTP_PORT}"),
                multicast=False,
                username=USER,
                password=PASSWORD,
            ),
            by="tester",
        )
        assert run.state == "running" and "admin-pass" not in repr(run)
        return await service.wait(run.id)

    started = time.monotonic()
    run = asyncio.run(discover())
    took = time.monotonic() - started
    assert run.state == "done" and took <= DISCOVERY["time_limit_s"] + 2.0, took
    assert run.probes_sent == 11  # the range's 11 hosts, at the bounded rate
    results = ours(run.results)
    good, skewed = results[device_url(0)], results[device_url(1)]
    assert good.report.outcome == "ok" and good.report.found_by == "unicast"
    assert (good.report.manufacturer, good.report.model) == ("Surveillance Sim", "SimPTZ")
    assert good.report.name == f"PTZ camera {FIRST_HOST}" and good.report.ptz
    assert good.report.main_uri and good.report.main_uri.startswith("rtsp://")
    assert good.report.sub_uri and good.report.sub_uri != good.report.main_uri
    assert good.status == "changed" and good.camera_id == "dome"
    assert any(change.startswith("main stream:") for change in good.changes)
    assert skewed.report.outcome == "ok" and (skewed.status, skewed.camera_id) == ("same", "skew")
    assert skewed.report.clock_offset_s is not None and 28 < skewed.report.clock_offset_s < 32
    # Each fault: its outcome and a reason naming the device, never fatal to the run.
    expected = {
        2: ("malformed", "DTD or entities"),  # external entity + entity bomb, refused unread
        3: ("malformed", "not valid XML"),
        4: ("malformed", "not what ONVIF describes"),
        5: ("timeout", "did not answer in time"),
        6: ("timeout", "did not answer in time"),
        7: ("malformed", "too large"),
    }
    for index, (outcome, says) in expected.items():
        report = results[device_url(index)].report
        assert (report.outcome, report.reason.count(says)) == (outcome, 1), report
        assert device_url(index) in report.reason
    hung = results[device_url(5)]
    assert (hung.status, hung.camera_id, hung.changes) == ("timeout", "hung", ())
    # Its WS-Discovery answer was a DOCTYPE bomb: dropped unread; named in a range with the
    # port, its device service was then tried directly.
    assert (host(8), "its WS-Discovery answer declares a DTD or entities (dropped unread)") in (
        run.dropped
    )
    assert results[device_url(8)].report.found_by is None
    # The closed addresses: the one only in the range is counted, not listed; the one also
    # named alone is listed with its reason. Both cameras there are gone.
    assert device_url(10) not in results and run.silent == 1
    unreachable = results[device_url(9)]
    assert unreachable.report.outcome == "unreachable" and "cannot be reached" in (
        unreachable.report.reason
    )
    assert (unreachable.status, unreachable.camera_id) == ("unreachable", "lost")
    assert run.gone == ["lost", "lost2"]
    assert all(PASSWORD not in r.report.reason for r in run.results)
    # In address order (the service's and the command's lines alike).
    assert [r.report.device_url for r in run.results] == [
        device_url(i) for i in range(10) if device_url(i) in results
    ]
    # Rows: for a changed device if asked, never again for one the catalog has as it is.
    assert "onvif" in service.catalog_text(run.id, [device_url(0)], fmt="csv", platform="site")
    with pytest.raises(InvalidRequest, match="already in the catalog, unchanged"):
        service.catalog_text(run.id, [device_url(1), device_url(0)], fmt="csv", platform="site")


def test_multicast_finds_the_devices_and_a_bad_password_is_reported(fleet: OnvifFleet) -> None:
    lost = f"http://{host(10)}:{HTTP_PORT}/onvif/device_service"
    catalog = catalog_with(
        [{"id": "lost", "name": "Lost", "platform": "site", "url": "rtsp://old/lost",
          "onvif": {"url": lost}}]
    )  # fmt: skip
    service = DiscoveryService(
        OnvifConfig(discovery=DISCOVERY), catalog, multicast_interfaces=["127.0.0.1"]
    )

    async def discover() -> Any:
        run = service.start(
            DiscoveryRequest(multicast=True, username=USER, password="wrong", time_limit_s=15),
            by="tester",
        )
        with pytest.raises(Conflict, match="is still running"):
            service.start(DiscoveryRequest(), by="other")
        return await service.wait(run.id)

    run = asyncio.run(discover())
    results = ours(run.results)
    assert {device_url(i) for i in range(8)} <= set(results)
    assert all(results[device_url(i)].report.found_by == "multicast" for i in range(8))
    good = results[device_url(0)].report
    assert good.outcome == "unauthorized" and "refused the user name and password" in good.reason
    assert (
        good.name == f"PTZ camera {FIRST_HOST}" and good.clock_offset_s is not None
    )  # learnt before
    assert run.gone == ["lost"]  # on the loopback network, and silent
    assert run.elapsed_s <= 15 + 2.0


@pytest.fixture(scope="module")
def admin_client(fleet: OnvifFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path_factory.mktemp("discover-node"))},
            "onvif": {"discovery": DISCOVERY},
            "platforms": [{"id": "site", "name": "Site", "username": USER, "password": PASSWORD}],
        }
    )
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as client:
        headers = {
            role.value: bearer(app.state.node, role.value, role)
            for role in (Role.ADMIN, Role.OPERATOR)
        }
        yield client, headers


def test_admin_discovers_by_api_and_the_imported_camera_comes_online(
    admin_client: Any, fleet: OnvifFleet, tmp_path: Path
) -> None:
    client, headers = admin_client
    body = {"targets": [f"{host(0)}:{HTTP_PORT}", f"{host(5)}:{HTTP_PORT}"],
            "multicast": False, "username": USER, "password": PASSWORD}  # fmt: skip
    refused = client.post("/api/onvif/discovery", json=body, headers=headers["operator"])
    assert refused.status_code == 403
    bad = client.post(
        "/api/onvif/discovery", json={**body, "targets": ["10.0.0.0/8"]}, headers=headers["admin"]
    )
    assert bad.status_code == 422 and "16777214 hosts" in bad.text
    started = client.post("/api/onvif/discovery", json=body, headers=headers["admin"])
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]

    def finished() -> Any:
        answer = client.get(f"/api/onvif/discovery/{run_id}", headers=headers["admin"]).json()
        return answer if answer["state"] == "done" else None

    run = wait_until(finished, WAIT_S, "the discovery run to end")
    devices = {d["device_url"]: d for d in run["devices"]}
    assert devices[device_url(0)]["outcome"] == "ok"
    assert devices[device_url(0)]["catalog_status"] == "new"
    assert devices[device_url(5)]["outcome"] == "timeout"
    audit = client.get(
        "/api/audit", params={"action": "onvif.discover"}, headers=headers["admin"]
    ).json()["entries"]
    assert [e["outcome"] for e in audit] == ["ok", "failed"]  # newest first
    assert audit[0]["detail"]["targets"] == body["targets"]
    for text in (started.text, str(run), str(audit)):
        assert PASSWORD not in text

    rows = client.post(
        f"/api/onvif/discovery/{run_id}/catalog",
        json={"devices": [device_url(0)], "platform": "site", "id_prefix": "found-"},
        headers=headers["admin"],
    )
    assert rows.status_code == 200, rows.text
    assert rows.headers["content-type"].startswith("text/csv")
    assert "attachment" in rows.headers["content-disposition"]
    failed = client.post(
        f"/api/onvif/discovery/{run_id}/catalog",
        json={"devices": [device_url(5)], "platform": "site"},
        headers=headers["admin"],
    )
    assert failed.status_code == 422 and "not inspected successfully" in failed.text
    untagged = client.post(
        f"/api/onvif/discovery/{run_id}/catalog",
        json={"devices": [device_url(0)], "platform": "site", "tags": ["no-such-tag"]},
        headers=headers["admin"],
    )
    assert untagged.status_code == 422 and "unknown tag 'no-such-tag'" in untagged.text

    # The rows as an administrator adds them: a CSV file next to the configuration.
    (tmp_path / "found.csv").write_text(rows.text, encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        f"server: {{data_dir: {tmp_path / 'data'}}}\n"
        "platforms:\n"
        f"  - {{id: site, name: Site, username: {USER}, password: {PASSWORD}}}\n"
        "camera_files: [found.csv]\n"
    )
    config = load_config(tmp_path / "config.yaml", env={})
    (camera,) = config.cameras
    assert camera.id == f"found-ptz-camera-{FIRST_HOST}" and camera.onvif is not None
    app = create_app(config)
    with TestClient(app, base_url="http://localhost") as imported:
        admin = bearer(app.state.node, "admin", Role.ADMIN)

        def online() -> bool:
            answer = imported.get(f"/api/cameras/{camera.id}", headers=admin)
            return answer.status_code == 200 and answer.json()["state"] == "online"

        wait_until(online, WAIT_S, "the imported camera to come online")


def test_the_discover_command_prints_each_device_and_writes_rows(
    fleet: OnvifFleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DISCOVER_PASSWORD", PASSWORD)
    config = AppConfig.model_validate(
        {
            "onvif": {"discovery": DISCOVERY},
            "platforms": [{"id": "site", "name": "Site", "username": USER, "password": "x"}],
        }
    )
    out = tmp_path / "found.yaml"
    args = build_parser().parse_args(
        ["discover", "--range", f"{host(0)}-{FIRST_HOST + 2}", "--no-multicast",
         "--username", USER, "--password-env", "DISCOVER_PASSWORD", "--time-limit", "20",
         "--yaml", str(out), "--platform", "site", "--tags", "traffic", "--id-prefix", "cli-"]
    )  # fmt: skip
    assert discover_command(args, config) == 0
    printed = capsys.readouterr().out
    assert f"{device_url(0)}  ok  Surveillance Sim  SimPTZ  firmware 1.0.0  PTZ" in printed
    assert f"{device_url(2)}  malformed: " in printed and "DTD or entities" in printed
    assert "3 devices" in printed and "2 new cameras written" in printed
    assert PASSWORD not in printed
    (tmp_path / "config.yaml").write_text(
        "platforms: [{id: site, name: Site}]\n" + out.read_text(encoding="utf-8")
    )
    loaded = load_config(tmp_path / "config.yaml", env={})
    assert [c.id for c in loaded.cameras] == [f"cli-ptz-camera-{FIRST_HOST}",
                                              f"cli-ptz-camera-{FIRST_HOST + 1}"]  # fmt: skip
    assert all(c.tags == ["traffic"] and c.onvif is not None for c in loaded.cameras)
    # Bad arguments: 2, saying why.
    for bad in (["--range", "10.0.0.0/8"], ["--password-env", "NOT_SET_ANYWHERE"],
                ["--csv", str(out)]):  # fmt: skip
        assert discover_command(build_parser().parse_args(["discover", *bad]), config) == 2
    assert "16777214 hosts" in capsys.readouterr().err


def test_ctrl_c_stops_the_discover_command_cleanly_with_what_was_found(
    fleet: OnvifFleet, tmp_path: Path
) -> None:
    # A listener that takes connections and never answers (a hung device service): the run
    # is still inspecting it when SIGINT comes, as a person's Ctrl-C would.
    hung = socket.create_server(("127.0.0.1", 0))
    connected = threading.Event()

    def hold() -> None:
        held = []
        with contextlib.suppress(OSError):
            while True:
                held.append(hung.accept()[0])
                connected.set()

    threading.Thread(target=hold, daemon=True).start()
    config = tmp_path / "config.yaml"
    slow = {**DISCOVERY, "inspect_timeout_s": 30.0, "time_limit_s": 120.0}
    config.write_text(f"onvif: {{discovery: {slow}}}\n", encoding="utf-8")
    closed = host(COUNT)  # named alone without a port: nothing answers there (B8)
    command = [str(Path(sys.executable).parent / "surveillance"), "discover", "--config",
               str(config), "--no-multicast", "--username", USER, "--password-env", "PW",
               "--range", f"{host(0)}:{HTTP_PORT}", "--range", closed,
               "--range", f"127.0.0.1:{hung.getsockname()[1]}"]  # fmt: skip
    env = {**os.environ, "PW": PASSWORD}
    try:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert connected.wait(WAIT_S)
        time.sleep(5.0)  # device 0's inspection done meanwhile (the hung one holds 30 s)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=WAIT_S)
    finally:
        hung.close()
    printed, errors = out.decode(), err.decode()
    assert process.returncode == 130, (printed, errors)
    assert "Traceback" not in errors and "Unclosed" not in errors, errors
    assert "discovery cancelled" in errors and PASSWORD not in printed + errors
    assert f"{device_url(0)}  ok  Surveillance Sim" in printed, printed
    # The portless host named alone is listed with its reason, not silently left out.
    assert f"http://{closed}:80/onvif/device_service  unreachable: " in printed, printed
