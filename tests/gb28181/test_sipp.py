"""The SIP server against an independent SIP implementation: SIPp (``/usr/bin/sipp``, Debian's
``sip-tester``) as the lower platform, running the scenarios in ``sipp/``.

REGISTER with the right digest password is taken (200), with a wrong one challenged again
or refused, from an unknown device id refused at once (403); a registered platform's
Keepalive MESSAGE gets 200. SIPp computes the digest itself (RFC 2617), so a mistake shared
by this project's client and server sides would show here.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, upgrade
from surveillance.redact import Redactor
from surveillance.services.gb_registry import GbRegistry, build_gb_registry
from surveillance.services.ingest import IngestService

pytestmark = pytest.mark.integration

SIPP = "/usr/bin/sipp"
SCENARIOS = Path(__file__).with_name("sipp")
SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"
DEVICE = "34020000002000000002"
PASSWORD = "sipp-Secret-31"
SIPP_TIMEOUT_S = 30  # SIPp's own global limit: it fails the call, never hangs the test


@pytest.fixture
def sipp_binary() -> str:
    if not Path(SIPP).is_file():
        pytest.fail(f"{SIPP} is missing: install Debian's sip-tester (scripts/install)")
    return SIPP


@pytest.fixture
async def registry(tmp_path: Path, sipp_binary: str) -> AsyncIterator[GbRegistry]:
    config = AppConfig.model_validate(
        {
            "server": {"data_dir": str(tmp_path / "data")},
            "gb28181": {
                "enabled": True,
                "sip_id": SERVER_ID,
                "domain": DOMAIN,
                "platforms": [
                    {"id": "city", "name": "City", "device_id": DEVICE, "password": PASSWORD}
                ],
            },
        }
    )
    gb = config.gb28181.model_copy(update={"sip_port": 0})  # a free port, UDP and TCP
    engine = create_db_engine(f"sqlite:///{tmp_path / 'node.db'}")
    upgrade(engine)
    catalog = Catalog.from_config(config)
    ingest = IngestService(catalog, config.ingest, Redactor())
    built = build_gb_registry(gb, catalog, ingest, engine, Redactor())
    assert built is not None
    await built.start()
    yield built
    await built.stop()
    engine.dispose()


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def sipp(
    registry: GbRegistry, scenario: str, tmp_path: Path, *, device: str = DEVICE,
    password: str = PASSWORD, local_port: int | None = None,
) -> tuple[int, str]:  # fmt: skip
    """Runs one call of the scenario (in a thread: the registry answers on this loop);
    SIPp's exit status (0: the call succeeded) and what it said about failures."""
    command = [
        SIPP, f"127.0.0.1:{registry.transport.port}",
        "-sf", str(SCENARIOS / f"{scenario}.xml"), "-m", "1", "-t", "u1",
        "-i", "127.0.0.1", "-p", str(local_port or _free_udp_port()),
        "-s", SERVER_ID, "-key", "device", device, "-key", "domain", DOMAIN,
        "-au", device, "-ap", password,
        "-timeout", str(SIPP_TIMEOUT_S), "-timeout_error", "-nostdin", "-trace_err",
    ]  # fmt: skip
    return await asyncio.to_thread(_run, command, tmp_path / scenario)


def _run(command: list[str], work: Path) -> tuple[int, str]:
    work.mkdir(exist_ok=True)
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
    errors = "".join(p.read_text(errors="replace") for p in work.glob("*errors.log"))
    return done.returncode, done.stderr + errors


async def test_sipp_registers_with_digest_and_keeps_alive(
    registry: GbRegistry, tmp_path: Path
) -> None:
    # Before registering, a keepalive is refused: SIPp expected 200 and fails the call.
    port = _free_udp_port()
    status, _ = await sipp(registry, "keepalive", tmp_path, local_port=port)
    assert status != 0
    status, said = await sipp(registry, "register", tmp_path, local_port=port)
    assert status == 0, said
    platform = registry.status()[0]
    assert platform.online and (platform.host, platform.port) == ("127.0.0.1", port)
    status, said = await sipp(registry, "keepalive", tmp_path, local_port=port)
    assert status == 0, said
    assert registry.status()[0].last_keepalive_at is not None


async def test_sipp_wrong_password_and_unknown_id_are_refused(
    registry: GbRegistry, tmp_path: Path
) -> None:
    status, said = await sipp(registry, "register_wrong", tmp_path, password="not-it")
    assert status == 0, said  # the scenario expects 401 (or 403) after the wrong digest
    assert registry.status()[0].online is False
    assert registry.dropped()["bad_credentials"] == 1
    status, said = await sipp(registry, "register_unknown", tmp_path, device="34020000002000000077")
    assert status == 0, said
    assert registry.dropped()["unknown_device"] == 1
    # SIPp's expectations fail when the answer differs: the right password is no 403.
    status, _ = await sipp(registry, "register_unknown", tmp_path)
    assert status != 0
