"""Where a GB/T 28181 platform registered from: the address its other requests must come from
(the device id in a request's From is only the sender's word)."""

from __future__ import annotations

from dataclasses import dataclass

from surveillance.gb28181.sip_message import SipRequest
from surveillance.gb28181.transport import Peer


@dataclass(frozen=True)
class Origin:
    """Where a platform registered from, which its other requests must come from.

    The host always. Over UDP also the port: a platform behind NAT is seen at the port its
    NAT maps its SIP socket to, the same for every message to us (RFC 4787 s.4.1: even an
    address-and-port-dependent mapping keeps one port per destination), and two platforms
    behind one NAT share the host but not the port. A platform that sends from another
    socket than it registers from (seen un-NATed: the top Via's sent-by host is the source
    host) is also taken from the port its Via names. Over TCP any connection from the host:
    a platform opens a new connection (a new port) whenever the old one dropped.
    """

    host: str
    transport: str
    ports: frozenset[int]

    @classmethod
    def of(cls, request: SipRequest, peer: Peer) -> Origin:
        ports = {peer.port}
        sent_by = _via_sent_by(request)
        if sent_by is not None and sent_by[0] == peer.host:
            ports.add(sent_by[1])
        return cls(peer.host, peer.transport, frozenset(ports))

    def admits(self, peer: Peer) -> bool:
        if (peer.host, peer.transport) != (self.host, self.transport):
            return False
        return peer.transport == "tcp" or peer.port in self.ports


def _via_sent_by(request: SipRequest) -> tuple[str, int] | None:
    """The top Via's sent-by host and port (5060 when it names none: RFC 3261 s.18.1.1)."""
    top = (request.headers.get("Via") or "").split(",")[0].split(";")[0].split()
    if len(top) != 2:
        return None
    sent_by = top[1]
    if sent_by.startswith("["):  # an IPv6 reference: [addr]:port
        host, _, rest = sent_by[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else "5060"
    else:
        host, colon, port = sent_by.partition(":")
        port = port if colon else "5060"
    return (host, int(port)) if port.isdigit() and int(port) < 65536 else None
