"""SIP transactions (RFC 3261 s.17): requests this service sends, retransmitted over UDP until
a final response or a hard time-out, and the responses it gave, replayed to a retransmitted
request instead of handling it twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from surveillance.gb28181.sip_message import (
    Headers,
    SipError,
    SipRequest,
    SipResponse,
    cseq,
    header_param,
    name_addr_uri,
    new_branch,
)
from surveillance.gb28181.transport import Peer, SipTransport

log = logging.getLogger(__name__)

T1_S = 0.5  # RFC 3261 s.17.1.1.1: round-trip estimate
T2_S = 4.0  # the longest interval between non-INVITE retransmissions
SERVER_CACHE_S = 32.0  # RFC 3261 s.17.2.2 Timer J (64 * T1): retransmissions still arrive
MAX_CACHED_RESPONSES = 4096
ACKED_KEEP_S = 32.0  # a 2xx to INVITE retransmitted this long after is ACKed again


class SipTimeout(Exception):
    """No final response within the time asked for."""


def top_via(headers: Headers) -> str:
    """The topmost Via value (a Via header may hold several, comma-separated)."""
    return (headers.get("Via") or "").split(",", 1)[0].strip()


def _branch(headers: Headers) -> str:
    return header_param(top_via(headers), "branch") or ""


@dataclass
class _Pending:
    final: asyncio.Future[SipResponse]
    provisional: bool = False


@dataclass
class _Acked:
    ack: SipRequest
    peer: Peer
    until: float  # time.monotonic() after which a retransmitted 2xx is not ACKed again


class SipClient:
    """Client transactions over one transport; its handler hands responses to
    ``take_response``."""

    def __init__(self, transport: SipTransport, *, t1_s: float = T1_S, t2_s: float = T2_S) -> None:
        self._transport = transport
        self._t1_s = t1_s
        self._t2_s = t2_s
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._acked: OrderedDict[tuple[str, int], _Acked] = OrderedDict()  # call-id, cseq

    async def request(self, request: SipRequest, peer: Peer, timeout_s: float) -> SipResponse:
        """Sends ``request`` and returns its final response (provisional ones are waited
        through); SipTimeout after ``timeout_s``; OSError if it cannot be sent at all."""
        _, method = cseq(request)
        key = (_branch(request.headers), method)
        if not key[0] or key in self._pending:
            raise ValueError("a request needs a Via branch of its own")
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future())
        self._pending[key] = pending
        try:
            await self._transport.send(request, peer)
            response = await self._await_final(request, method, peer, pending, timeout_s)
        finally:
            del self._pending[key]
        if method == "INVITE" and response.status >= 300:
            await self._ack_failure(request, response, peer)
        return response

    async def _await_final(
        self, request: SipRequest, method: str, peer: Peer, pending: _Pending, timeout_s: float
    ) -> SipResponse:
        """RFC 3261 s.17.1.1.2 (INVITE: Timer A doubles, stops at a provisional response) and
        s.17.1.2.2 (non-INVITE: Timer E doubles up to T2, T2 after a provisional one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        interval = self._t1_s
        retransmit = peer.transport == "udp"  # reliable transports do their own
        while not pending.final.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SipTimeout(f"no final response to {method} within {timeout_s:g} s")
            await asyncio.wait({pending.final}, timeout=min(remaining, interval))
            if pending.final.done() or not retransmit:
                continue
            if pending.provisional and method == "INVITE":
                retransmit = False
                continue
            try:
                await self._transport.send(request, peer)
            except OSError as error:
                log.debug("SIP retransmission failed: %s", error)
            interval = self._t2_s if pending.provisional and method != "INVITE" else interval * 2
            if method != "INVITE":
                interval = min(interval, self._t2_s)
        return pending.final.result()

    def take_response(self, response: SipResponse) -> bool:
        """Hands a received response to the transaction waiting for it; False when none is
        (a stray or late response, the caller logs it)."""
        try:
            _, method = cseq(response)
        except SipError:
            return False
        pending = self._pending.get((_branch(response.headers), method))
        if pending is None:
            return self._reack(response, method)
        if response.status < 200:
            pending.provisional = True
        elif not pending.final.done():
            pending.final.set_result(response)
        return True

    async def ack(self, request: SipRequest, response: SipResponse, peer: Peer) -> None:
        """ACKs a 2xx to an INVITE (RFC 3261 s.13.2.2.4): a new transaction to the remote
        target, re-sent if the 2xx is retransmitted."""
        number, _ = cseq(request)
        contact = response.headers.get("Contact")
        uri = name_addr_uri(contact) if contact else request.uri
        ack = self._ack_request(request, response, uri, new_branch(), number)
        now = time.monotonic()
        call_id = request.headers.get("Call-ID") or ""
        self._acked[(call_id, number)] = _Acked(ack, peer, now + ACKED_KEEP_S)
        while self._acked and next(iter(self._acked.values())).until < now:
            self._acked.popitem(last=False)
        await self._transport.send(ack, peer)

    def _reack(self, response: SipResponse, method: str) -> bool:
        if method != "INVITE" or not 200 <= response.status < 300:
            return False
        number, _ = cseq(response)
        acked = self._acked.get((response.headers.get("Call-ID") or "", number))
        if acked is None or acked.until < time.monotonic():
            return False
        task = asyncio.ensure_future(self._transport.send(acked.ack, acked.peer))
        task.add_done_callback(_ignore_failure)
        return True

    async def _ack_failure(self, request: SipRequest, response: SipResponse, peer: Peer) -> None:
        """The ACK of a non-2xx final response to INVITE belongs to the INVITE transaction:
        the same branch and Request-URI (RFC 3261 s.17.1.1.3)."""
        number, _ = cseq(request)
        ack = self._ack_request(request, response, request.uri, _branch(request.headers), number)
        try:
            await self._transport.send(ack, peer)
        except OSError as error:
            log.debug("SIP ACK failed: %s", error)

    @staticmethod
    def _ack_request(
        request: SipRequest, response: SipResponse, uri: str, branch: str, number: int
    ) -> SipRequest:
        via = top_via(request.headers)
        sent_by = via.split(";", 1)[0]
        headers = Headers(
            [
                ("Via", f"{sent_by};rport;branch={branch}"),
                ("From", request.headers.get("From") or ""),
                ("To", response.headers.get("To") or request.headers.get("To") or ""),
                ("Call-ID", request.headers.get("Call-ID") or ""),
                ("CSeq", f"{number} ACK"),
                ("Max-Forwards", "70"),
            ]
        )
        return SipRequest("ACK", uri, headers)


def _ignore_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("SIP ACK re-send failed: %s", task.exception())


class ServerTransactions:
    """Responses given lately, by request, so a retransmitted request (RFC 3261 s.17.2) is
    answered the same again instead of being handled twice. Bounded in time and number."""

    def __init__(
        self,
        *,
        keep_s: float = SERVER_CACHE_S,
        max_entries: int = MAX_CACHED_RESPONSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keep_s = keep_s
        self._max = max_entries
        self._clock = clock
        self._responses: OrderedDict[tuple[str, ...], tuple[float, SipResponse]] = OrderedDict()

    @staticmethod
    def _key(request: SipRequest, peer: Peer) -> tuple[str, ...]:
        # The branch alone identifies an RFC 3261 transaction; Call-ID and CSeq cover the
        # older devices whose branches are not unique (RFC 2543, s.17.2.3's fallback).
        return (
            _branch(request.headers),
            request.headers.get("Call-ID") or "",
            request.headers.get("CSeq") or "",
            peer.host,
            str(peer.port),
            peer.transport,
        )

    def cached(self, request: SipRequest, peer: Peer) -> SipResponse | None:
        entry = self._responses.get(self._key(request, peer))
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def remember(self, request: SipRequest, peer: Peer, response: SipResponse) -> None:
        now = self._clock()
        key = self._key(request, peer)
        self._responses.pop(key, None)
        self._responses[key] = (now + self._keep_s, response)
        while self._responses and (
            len(self._responses) > self._max or next(iter(self._responses.values()))[0] < now
        ):
            self._responses.popitem(last=False)
