"""A scripted GB/T 28181 lower platform for the player's and control's unit tests.

A fake, on purpose: the real simulator (surveillance/simulator/gb_platform.py) is what the
end-to-end tests play against; this one answers an INVITE with exactly what a test needs on
demand (a 404, a busy, silence, a malformed or odd SDP, another SSRC) and records every
request, which no well-behaved platform does. Built from gb28181.sip_message over a real
UDP socket on loopback, and a real TCP connection for the media of TCP plays.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from surveillance.gb28181.sip_message import (
    LocalParty,
    SipMessage,
    SipRequest,
    SipResponse,
    header_param,
    name_addr_uri,
    new_request,
    parse_message,
    response_to,
    to_bytes,
)
from surveillance.gb28181.transactions import SipClient
from surveillance.gb28181.transport import Peer, SipTransport

PLATFORM = "city"  # the platform's id in the node's configuration
OUR_ID = "34020000002000000001"
OUR_DOMAIN = "3402000000"
DEVICE_ID = "34020000002000000002"
PLATFORM_DOMAIN = DEVICE_ID[:10]
CHANNEL_ID = "34020000001320000001"
PEER_SSRC = "0100000999"


def answer_sdp(*, port: int, ssrc: str | None, tcp: bool = False, setup: str | None = None) -> str:
    lines = [
        "v=0",
        f"o={CHANNEL_ID} 0 0 IN IP4 127.0.0.1",
        "s=Play",
        "c=IN IP4 127.0.0.1",
        "t=0 0",
        f"m=video {port} {'TCP/RTP/AVP' if tcp else 'RTP/AVP'} 96",
        "a=sendonly",
        "a=rtpmap:96 PS/90000",
    ]
    if setup:
        lines.append(f"a=setup:{setup}")
    if ssrc:
        lines.append(f"y={ssrc}")
    return "\r\n".join(lines) + "\r\n"


def rtp_packet(seq: int, ssrc: int, payload: bytes = b"\x00\x00\x01\xba") -> bytes:
    """RFC 3550 s.5.1: version 2, PT 96, marker set."""
    return struct.pack("!BBHII", 0x80, 0x80 | 96, seq, seq * 3600, ssrc) + payload


def offer_field(request: SipRequest, prefix: str) -> str | None:
    for line in request.body.decode().split("\r\n"):
        if line.startswith(prefix):
            return line[len(prefix) :]
    return None


@dataclass
class ScriptedPlatform(asyncio.DatagramProtocol):
    """``invite``: "ok", "silent", a status code as text ("404"), or "sdp:<raw answer>".
    ``answer_ssrc``: "offer" (echo the offer's y=), None (no y=), or a value."""

    invite: str = "ok"
    answer_ssrc: str | None = "offer"
    message_status: int = 200
    tcp: bool = False
    setup: str | None = None
    media_port: int = 40000  # the port an answer names when the platform listens (tcp-active)
    requests: list[SipRequest] = field(default_factory=list)
    responses: list[SipResponse] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    dialogs: dict[str, tuple[SipRequest, SipResponse]] = field(default_factory=dict)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def peer(self) -> Peer:
        return Peer("127.0.0.1", self.port, "udp")

    def local(self) -> LocalParty:
        return LocalParty(DEVICE_ID, PLATFORM_DOMAIN, "127.0.0.1", self.port)

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data, 65535)
        if isinstance(message, SipResponse):
            self.responses.append(message)
            return
        self.requests.append(message)
        if message.method == "INVITE":
            self._invite(message, addr)
        elif message.method in ("BYE", "MESSAGE"):
            status = 200 if message.method == "BYE" else self.message_status
            self._send(response_to(message, status), addr)

    def _invite(self, request: SipRequest, addr: tuple[str, int]) -> None:
        if self.invite == "silent":
            return
        self._send(response_to(request, 100), addr)
        if self.invite.isdigit():
            self._send(response_to(request, int(self.invite), to_tag="refuser"), addr)
            return
        if self.invite.startswith("sdp:"):
            body = self.invite[len("sdp:") :]
        else:
            offered = offer_field(request, "y=")
            ssrc = offered if self.answer_ssrc == "offer" else self.answer_ssrc
            port = self.media_port if self.setup == "passive" else 15060
            body = answer_sdp(port=port, ssrc=ssrc, tcp=self.tcp, setup=self.setup)
        response = response_to(
            request,
            200,
            to_tag="platform-tag",
            body=body.encode(),
            content_type="application/sdp",
            extra=[("Contact", f"<sip:{CHANNEL_ID}@127.0.0.1:{self.port}>")],
        )
        self.dialogs[request.headers.get("Call-ID") or ""] = (request, response)
        self._send(response, addr)

    def send_bye(self, call_id: str, to: Peer, *, as_call_id: str | None = None) -> None:
        """End a dialog from the platform's side (RFC 3261 s.15.1.1): From and To swapped.
        ``as_call_id``: the same BYE with another Call-ID (a dialog that is not ours)."""
        invite, ok = self.dialogs[call_id]
        bye = new_request(
            "BYE",
            name_addr_uri(invite.headers.get("Contact") or ""),
            local=self.local(),
            to_uri=name_addr_uri(invite.headers.get("From") or ""),
            to_tag=header_param(invite.headers.get("From") or "", "tag"),
            call_id=as_call_id or call_id,
            cseq=1,
        )
        bye.headers.set("From", ok.headers.get("To") or "")
        self._send(bye, (to.host, to.port))

    def _send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(to_bytes(message), addr)


async def start_platform(**script: object) -> ScriptedPlatform:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: ScriptedPlatform(**script),
        local_addr=("127.0.0.1", 0),
    )
    return protocol


def free_tcp_listener() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener


@dataclass
class OurSide:
    """The node's signalling as the player and control see it (services/gb_signalling.py),
    over the real transport and transaction client; ``platform`` None: not registered."""

    transport: SipTransport
    client: SipClient
    local: LocalParty
    platform: Peer | None
    on_bye: Callable[[SipRequest, Peer], bool] = lambda request, peer: False

    def peer(self, platform_id: str) -> Peer | None:
        return self.platform if platform_id == PLATFORM else None

    def peer_of_ours(self) -> Peer:
        return Peer("127.0.0.1", self.transport.port, "udp")


async def start_our_side(platform: Peer | None) -> OurSide:
    side: OurSide | None = None

    async def handle(message: SipMessage, peer: Peer) -> None:
        assert side is not None
        if isinstance(message, SipResponse):
            side.client.take_response(message)
        elif message.method == "BYE":
            status = 200 if side.on_bye(message, peer) else 481
            await side.transport.send(response_to(message, status), peer)

    transport = SipTransport("127.0.0.1", 0, handle, max_message_bytes=65535, requests_per_s=1000)
    await transport.start()
    local = LocalParty(OUR_ID, OUR_DOMAIN, "127.0.0.1", transport.port)
    side = OurSide(transport, SipClient(transport), local, platform)
    return side
