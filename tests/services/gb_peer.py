"""A minimal GB/T 28181 lower platform for the registry's tests, built from this project's
own ``gb28181.sip_message`` and ``digest`` client side: it registers (answering the 401),
keeps alive, answers the server's requests 200 and sends catalog pages and notifications.
The full simulator (``simulator/gb_platform.py``, its own SIP code) meets the server in
the end-to-end tests; this one lets a test send exactly the message it is about."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from surveillance.gb28181.digest import authorization, digest_params
from surveillance.gb28181.sip_message import (
    LocalParty,
    SipRequest,
    SipResponse,
    cseq,
    new_call_id,
    new_request,
    parse_message,
    response_to,
    to_bytes,
)

MANSCDP = "Application/MANSCDP+xml"


def item_xml(channel_id: str, name: str, **fields: str) -> str:
    extra = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<Item><DeviceID>{channel_id}</DeviceID><Name>{name}</Name>{extra}</Item>"


def catalog_body(root: str, sn: int, device_id: str, sum_num: int, items: list[str]) -> bytes:
    text = (
        '<?xml version="1.0" encoding="GB2312"?>\r\n'
        f"<{root}><CmdType>Catalog</CmdType><SN>{sn}</SN><DeviceID>{device_id}</DeviceID>"
        f'<SumNum>{sum_num}</SumNum><DeviceList Num="{len(items)}">{"".join(items)}'
        f"</DeviceList></{root}>"
    )
    return text.encode("gb18030")


@dataclass
class _Protocol(asyncio.DatagramProtocol):
    received: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(parse_message(data, 65535))


class TestPlatform:
    """One lower platform on a UDP port of its own."""

    __test__ = False  # not a test class, whatever its name

    def __init__(
        self, device_id: str, server_port: int, port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        self.device_id = device_id
        self.server = ("127.0.0.1", server_port)
        self.host = host  # another loopback address (127.0.0.2): another machine to the server
        self.port = port
        self.requests: list[SipRequest] = []  # what the server sent us
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol = _Protocol()
        self._responses: dict[tuple[str, int], asyncio.Future[SipResponse]] = {}
        self._cseq = itertools.count(1)
        self._sn = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: self._protocol, local_addr=(self.host, self.port)
        )
        self._transport = transport
        self.port = transport.get_extra_info("sockname")[1]
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._transport is not None:
            self._transport.close()

    @property
    def local(self) -> LocalParty:
        return LocalParty(self.device_id, self.device_id[:10], self.host, self.port)

    async def _read(self) -> None:
        while True:
            message = await self._protocol.received.get()
            if isinstance(message, SipResponse):
                key = (message.headers.get("Call-ID") or "", cseq(message)[0])
                future = self._responses.get(key)
                if future is not None and not future.done() and message.status >= 200:
                    future.set_result(message)
            else:
                self.requests.append(message)
                if message.method != "ACK":
                    self.send(response_to(message, 200, to_tag="peer"))

    def send(self, message: SipRequest | SipResponse) -> None:
        assert self._transport is not None
        self._transport.sendto(to_bytes(message), self.server)

    async def request(
        self, method: str, *, body: bytes = b"", extra: list[tuple[str, str]] | None = None,
        call_id: str | None = None, timeout_s: float = 10.0,
    ) -> SipResponse:  # fmt: skip
        number = next(self._cseq)
        message = new_request(
            method, f"sip:34020000002000000001@{self.server[0]}:{self.server[1]}",
            local=self.local, to_uri=f"sip:{self.device_id}@{self.device_id[:10]}"
            if method == "REGISTER" else "sip:34020000002000000001@3402000000",
            call_id=call_id or new_call_id(), cseq=number, body=body,
            content_type=MANSCDP if body else None, extra=extra or [],
        )  # fmt: skip
        key = (message.headers.get("Call-ID") or "", number)
        future: asyncio.Future[SipResponse] = asyncio.get_running_loop().create_future()
        self._responses[key] = future
        self.send(message)
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            del self._responses[key]

    async def register(self, password: str, expires: int = 3600) -> SipResponse:
        """REGISTER, and again with digest credentials when challenged (RFC 3261 s.22.2)."""
        call_id = new_call_id()
        extra = [("Expires", str(expires))]
        first = await self.request("REGISTER", extra=extra, call_id=call_id)
        if first.status != 401:
            return first
        challenge = digest_params(first.headers.get("WWW-Authenticate") or "")
        uri = f"sip:34020000002000000001@{self.server[0]}:{self.server[1]}"
        credentials = authorization(
            username=self.device_id, password=password, realm=challenge["realm"],
            nonce=challenge["nonce"], method="REGISTER", uri=uri, qop=challenge.get("qop"),
            cnonce="0a4f113b",
        )  # fmt: skip
        extra.append(("Authorization", credentials))
        return await self.request("REGISTER", extra=extra, call_id=call_id)

    async def keepalive(self) -> SipResponse:
        body = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify><CmdType>Keepalive</CmdType>'
            f"<SN>{next(self._sn)}</SN><DeviceID>{self.device_id}</DeviceID>"
            "<Status>OK</Status></Notify>"
        ).encode()
        return await self.request("MESSAGE", body=body)

    def catalog_queries(self) -> list[SipRequest]:
        return [r for r in self.requests if r.method == "MESSAGE" and b"<Query>" in r.body]

    def subscriptions(self) -> list[SipRequest]:
        return [r for r in self.requests if r.method == "SUBSCRIBE"]
