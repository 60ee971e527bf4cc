"""SIP transactions over real loopback sockets: UDP retransmission until a reply (RFC 3261
s.17.1), the hard time-out when none comes, INVITE's provisional and ACK handling, and the
server side's cached responses for retransmitted requests (s.17.2)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from surveillance.gb28181.sip_message import (
    LocalParty,
    SipMessage,
    SipRequest,
    SipResponse,
    header_param,
    new_request,
    response_to,
)
from surveillance.gb28181.transactions import ServerTransactions, SipClient, SipTimeout
from surveillance.gb28181.transport import Peer, SipTransport

WAIT_S = 10.0
T1_S = 0.05  # short timers: the test is about the pattern, not the RFC's absolute times
T2_S = 0.4


@dataclass
class Platform:
    """A tiny peer on its own transport: ``answer`` decides what each request gets."""

    answer: Callable[[SipRequest, int], list[SipResponse]]
    requests: list[SipRequest] = field(default_factory=list)
    transport: SipTransport | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, message: SipMessage, peer: Peer) -> None:
        assert self.transport is not None
        if isinstance(message, SipRequest):
            self.requests.append(message)
            self.arrived.set()
            for response in self.answer(message, len(self.requests)):
                await self.transport.send(response, peer)

    async def received(self, method: str, count: int) -> list[SipRequest]:
        """The first ``count`` requests of ``method``, once that many came."""

        async def enough() -> list[SipRequest]:
            while len(found := [r for r in self.requests if r.method == method]) < count:
                self.arrived.clear()
                await self.arrived.wait()
            return found

        return await asyncio.wait_for(enough(), WAIT_S)


@dataclass
class Rig:
    client: SipClient
    transport: SipTransport
    platform: Platform
    peer: Peer
    stray: list[SipResponse]
    stray_arrived: asyncio.Event

    def client_peer(self) -> Peer:
        return Peer("127.0.0.1", self.transport.port, "udp")

    def request(self, method: str = "MESSAGE") -> SipRequest:
        local = LocalParty("34020000002000000001", "3402000000", "127.0.0.1", self.transport.port)
        uri = "sip:34020000001320000001@3402000000"
        return new_request(method, uri, local=local, to_uri=uri, body=b"<Query/>")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    platform = Platform(answer=lambda request, n: [])
    platform.transport = SipTransport(
        "127.0.0.1", 0, platform.handle, max_message_bytes=65000, requests_per_s=1000
    )
    stray: list[SipResponse] = []
    stray_arrived = asyncio.Event()

    async def ours(message: SipMessage, peer: Peer) -> None:
        if isinstance(message, SipResponse) and not client.take_response(message):
            stray.append(message)
            stray_arrived.set()

    transport = SipTransport("127.0.0.1", 0, ours, max_message_bytes=65000, requests_per_s=1000)
    client = SipClient(transport, t1_s=T1_S, t2_s=T2_S)
    await platform.transport.start()
    await transport.start()
    to_platform = Peer("127.0.0.1", platform.transport.port, "udp")
    yield Rig(client, transport, platform, to_platform, stray, stray_arrived)
    await transport.stop()
    await platform.transport.stop()


async def test_retransmits_until_the_third_copy_is_answered(rig: Rig) -> None:
    rig.platform.answer = lambda request, n: [response_to(request, 200)] if n >= 3 else []
    request = rig.request()
    response = await rig.client.request(request, rig.peer, timeout_s=WAIT_S)
    assert response.status == 200
    assert len(rig.platform.requests) >= 3  # 3 unless a loaded machine delays the answer
    # The same transaction each time (the platform's transport marked rport on its copies).
    branches = {header_param(r.headers.get("Via") or "", "branch") for r in rig.platform.requests}
    assert branches == {header_param(request.headers.get("Via") or "", "branch")}


async def test_times_out_when_nothing_answers_and_retransmissions_back_off(rig: Rig) -> None:
    request = rig.request()
    with pytest.raises(SipTimeout, match="no final response to MESSAGE within 1 s"):
        await rig.client.request(request, rig.peer, timeout_s=1.0)
    # T1 doubling to T2 within 1 s: 0.05, 0.1, 0.2, 0.4, then every 0.4 -> 5 to 6 copies;
    # a loaded machine may send fewer, never more than without the back-off (20 at T1).
    assert 2 <= len(rig.platform.requests) <= 7
    # A late answer to a finished transaction is nobody's: the handler is told so.
    assert rig.platform.transport is not None
    await rig.platform.transport.send(response_to(request, 200), rig.client_peer())
    await asyncio.wait_for(rig.stray_arrived.wait(), WAIT_S)
    assert rig.stray[0].headers.get("Call-ID") == request.headers.get("Call-ID")


async def test_provisional_then_final_and_stray_responses(rig: Rig) -> None:
    async def later(request: SipRequest) -> None:
        await asyncio.sleep(1.0)  # the platform takes its time: many T1s
        assert rig.platform.transport is not None
        await rig.platform.transport.send(response_to(request, 200, to_tag="pl"), rig.client_peer())

    def trying_then_ok(request: SipRequest, n: int) -> list[SipResponse]:
        if n == 1:
            asyncio.get_running_loop().create_task(later(request))
            return [response_to(request, 100)]
        return []

    rig.platform.answer = trying_then_ok
    invite = rig.request("INVITE")
    response = await rig.client.request(invite, rig.peer, timeout_s=WAIT_S)
    assert response.status == 200 and header_param(response.headers.get("To") or "", "tag") == "pl"
    # The 100 stopped INVITE retransmissions: without it there would be 5 copies in 1 s
    # (T1 doubling), with it 1 (2 or 3 if a loaded machine delays the 100 past T1).
    assert 1 <= len(rig.platform.requests) <= 3
    await rig.client.ack(invite, response, rig.peer)

    (ack,) = await rig.platform.received("ACK", 1)
    assert ack.headers.get("CSeq") == "1 ACK" and ack.headers.get("Call-ID") == invite.headers.get(
        "Call-ID"
    )
    assert header_param(ack.headers.get("To") or "", "tag") == "pl"
    assert header_param(ack.headers.get("Via") or "", "branch") != header_param(
        invite.headers.get("Via") or "", "branch"
    )
    # The platform did not see the ACK and sends its 200 again: the ACK is sent again.
    assert rig.client.take_response(response)
    await rig.platform.received("ACK", 2)
    # A response no transaction waits for is handed back.
    other = response_to(rig.request(), 200)
    assert not rig.client.take_response(other)


async def test_a_refused_invite_is_acked_in_its_transaction(rig: Rig) -> None:
    rig.platform.answer = lambda request, n: (
        [response_to(request, 486, to_tag="busy")] if request.method == "INVITE" else []
    )
    invite = rig.request("INVITE")
    response = await rig.client.request(invite, rig.peer, timeout_s=WAIT_S)
    assert response.status == 486

    (ack_request,) = await rig.platform.received("ACK", 1)
    assert ack_request.uri == invite.uri
    assert header_param(ack_request.headers.get("Via") or "", "branch") == header_param(
        invite.headers.get("Via") or "", "branch"
    )
    with pytest.raises(ValueError):  # a request without a branch cannot be matched
        bare = rig.request()
        bare.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5060")
        await rig.client.request(bare, rig.peer, timeout_s=1)


def test_server_transactions_replay_then_forget() -> None:
    now = [100.0]
    cache = ServerTransactions(keep_s=32.0, max_entries=3, clock=lambda: now[0])
    local = LocalParty("34020000001320000001", "3402000000", "127.0.0.1", 5060)
    uri = "sip:34020000002000000001@3402000000"
    request = new_request("MESSAGE", uri, local=local, to_uri=uri)
    peer = Peer("127.0.0.1", 5060, "udp")
    assert cache.cached(request, peer) is None
    answer = response_to(request, 200)
    cache.remember(request, peer, answer)
    assert cache.cached(request, peer) is answer
    assert cache.cached(request, Peer("127.0.0.1", 5061, "udp")) is None  # another sender
    assert cache.cached(new_request("MESSAGE", uri, local=local, to_uri=uri), peer) is None
    now[0] += 33
    assert cache.cached(request, peer) is None  # Timer J ran out
    for _ in range(5):  # bounded: the oldest go first
        cache.remember(new_request("MESSAGE", uri, local=local, to_uri=uri), peer, answer)
    cache.remember(request, peer, answer)
    assert cache.cached(request, peer) is answer
    assert len(cache._responses) == 3
