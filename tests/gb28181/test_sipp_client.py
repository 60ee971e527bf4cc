"""Our SIP client and transport against an independent SIP implementation: SIPp
(``/usr/bin/sipp``) as a platform answering a MESSAGE late, over UDP (our client must
retransmit, RFC 3261 s.17.1.2.2) and over TCP (we connect out, frame by Content-Length, and
must not retransmit)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from surveillance.gb28181.sip_message import LocalParty, SipMessage, SipResponse, new_request
from surveillance.gb28181.transactions import SipClient
from surveillance.gb28181.transport import Peer, SipTransport

pytestmark = pytest.mark.integration

SIPP = "/usr/bin/sipp"
SCENARIO = Path(__file__).with_name("sipp") / "uas_message_late.xml"
SIPP_TIMEOUT_S = 30  # SIPp's own limit: it ends, never hangs the test
WAIT_S = 20.0
T1_S = 0.1  # short: several retransmissions fit in SIPp's 1.5 s pause


@pytest.fixture
def sipp_binary() -> str:
    if not Path(SIPP).is_file():
        pytest.fail(f"{SIPP} is missing: install Debian's sip-tester (scripts/install)")
    return SIPP


@pytest.fixture
async def client(sipp_binary: str) -> AsyncIterator[tuple[SipClient, SipTransport]]:
    async def handler(message: SipMessage, peer: Peer) -> None:
        if isinstance(message, SipResponse):
            assert sip_client.take_response(message)

    transport = SipTransport("127.0.0.1", 0, handler, max_message_bytes=65000, requests_per_s=100)
    sip_client = SipClient(transport, t1_s=T1_S)
    await transport.start()
    yield sip_client, transport
    await transport.stop()


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _sipp_uas(port: int, transport: str, work: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        SIPP, "-sf", str(SCENARIO), "-m", "1", "-t", transport, "-i", "127.0.0.1",
        "-p", str(port), "-timeout", str(SIPP_TIMEOUT_S), "-timeout_error", "-nostdin",
        "-trace_err",
        cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


async def _message(client: SipClient, transport: SipTransport, peer: Peer) -> SipResponse:
    local = LocalParty("34020000002000000001", "3402000000", "127.0.0.1", transport.port)
    uri = f"sip:34020000001320000001@127.0.0.1:{peer.port}"
    request = new_request(
        "MESSAGE", uri, local=local, to_uri=uri, transport=peer.transport,
        body=b"<?xml version=\"1.0\"?><Query><CmdType>Catalog</CmdType></Query>",
        content_type="Application/MANSCDP+xml",
    )  # fmt: skip
    return await client.request(request, peer, timeout_s=WAIT_S)


async def _finished(process: asyncio.subprocess.Process, work: Path) -> None:
    _, stderr = await asyncio.wait_for(process.communicate(), SIPP_TIMEOUT_S + 10)
    assert process.returncode == 0, stderr.decode(errors="replace") + _errors_logged(work)


def _errors_logged(work: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in work.glob("*errors.log"))


async def test_udp_request_is_retransmitted_until_sipp_answers(
    client: tuple[SipClient, SipTransport], tmp_path: Path
) -> None:
    sip_client, transport = client
    port = _free_port(socket.SOCK_DGRAM)
    (tmp_path / "udp").mkdir()
    process = await _sipp_uas(port, "u1", tmp_path / "udp")
    # Sent before SIPp listens, the first copies are lost: retransmission covers that too.
    response = await _message(sip_client, transport, Peer("127.0.0.1", port, "udp"))
    assert response.status == 200
    await _finished(process, tmp_path / "udp")
    # 1.5 s of pause at T1 = 0.1 s doubling: 0.1, 0.3, 0.7, 1.5 -> at least 3 copies.
    assert transport.stats.sent >= 3
    assert transport.stats.received == 1 and transport.stats.dropped_malformed == 0


async def test_tcp_request_goes_once_over_our_connection(
    client: tuple[SipClient, SipTransport], tmp_path: Path
) -> None:
    sip_client, transport = client
    port = _free_port(socket.SOCK_STREAM)
    (tmp_path / "tcp").mkdir()
    process = await _sipp_uas(port, "t1", tmp_path / "tcp")
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + WAIT_S
    while True:  # SIPp takes a moment to listen; a refused connection is no answer yet
        try:
            response = await _message(sip_client, transport, Peer("127.0.0.1", port, "tcp"))
            break
        except ConnectionRefusedError:
            assert loop.time() < give_up_at, "SIPp never listened"
            await asyncio.sleep(0.1)
    assert response.status == 200 and response.headers.get("Content-Length") is None
    await _finished(process, tmp_path / "tcp")
    assert transport.stats.sent == 1  # a reliable transport: no retransmission
    assert transport.stats.received == 1 and transport.stats.dropped_malformed == 0
