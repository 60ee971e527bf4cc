"""A GB/T 28181 play session: its INVITE dialog, the BYE that ends it (RFC 3261 s.12, s.15),
and what it holds on this node (port, socket, receiver) until it ends.

The dialog is what a BYE needs of the INVITE and its 2xx: the Call-ID, our From (with our
tag), the platform's To (with its tag), the remote target (the 2xx's Contact, s.12.1.2) and
the next CSeq (s.12.2.1.1: one above the INVITE's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import threading
from dataclasses import dataclass, field

from surveillance.gb28181.records import GbSessionRecord
from surveillance.gb28181.sip_message import (
    LocalParty,
    SipRequest,
    SipResponse,
    cseq,
    header_param,
    name_addr_uri,
    new_request,
)
from surveillance.gb28181.transport import Peer
from surveillance.media.rtp import RtpReceiver


@dataclass(frozen=True)
class Dialog:
    invite: SipRequest
    peer: Peer
    to_header: str  # the 2xx's To, with the platform's tag
    remote_target: str

    @classmethod
    def of(cls, invite: SipRequest, response: SipResponse, peer: Peer) -> Dialog:
        to_header = response.headers.get("To") or invite.headers.get("To") or ""
        contact = response.headers.get("Contact")
        # Without a Contact (a platform that leaves it out), in-dialog requests go where
        # the INVITE went.
        target = name_addr_uri(contact) if contact else invite.uri
        return cls(invite=invite, peer=peer, to_header=to_header, remote_target=target)

    @property
    def call_id(self) -> str:
        return self.invite.headers.get("Call-ID") or ""

    @property
    def to_tag(self) -> str | None:
        return header_param(self.to_header, "tag")

    def bye(self, local: LocalParty) -> SipRequest:
        return self.saved().bye(local)

    def saved(self) -> SavedDialog:
        number, _ = cseq(self.invite)
        return SavedDialog(
            call_id=self.call_id,
            from_header=self.invite.headers.get("From") or "",
            to_header=self.to_header,
            remote_target=self.remote_target,
            invite_cseq=number,
            peer=self.peer,
        )


@dataclass(frozen=True)
class SavedDialog:
    """What a BYE needs of a dialog, kept in its ``gb_sessions`` row (as JSON), so a node
    restarted after a crash can end the sessions the platforms still stream."""

    call_id: str
    from_header: str  # ours, with our tag
    to_header: str  # the platform's, with its tag
    remote_target: str
    invite_cseq: int
    peer: Peer

    def bye(self, local: LocalParty) -> SipRequest:
        request = new_request(
            "BYE",
            self.remote_target,
            local=local,
            to_uri=name_addr_uri(self.to_header),
            to_tag=header_param(self.to_header, "tag"),
            call_id=self.call_id,
            cseq=self.invite_cseq + 1,
            transport=self.peer.transport.upper(),
        )
        # The dialog's own From and To, tags included, as the INVITE and its 2xx had them.
        request.headers.set("From", self.from_header)
        request.headers.set("To", self.to_header)
        return request

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        fields["peer"] = [self.peer.host, self.peer.port, self.peer.transport]
        return json.dumps(fields)

    @classmethod
    def from_json(cls, text: str) -> SavedDialog:
        """ValueError (KeyError, TypeError included) for a row that is not one."""
        fields = json.loads(text)
        host, port, transport = fields.pop("peer")
        return cls(**fields, peer=Peer(str(host), int(port), str(transport)))


@dataclass
class PlaySession:
    """A stream being played: its dialog and what it holds on this node until it ends."""

    record: GbSessionRecord
    dialog: Dialog
    port: int | None  # ours from the pool; None for tcp-active (we connect out)
    sock: socket.socket | None = None  # ours (udp, tcp-passive): shut down to wake a reader
    receiver: EndableReceiver | None = None
    closed: bool = False
    remote_ended: bool = False  # the platform sent BYE: no BYE back

    @property
    def call_id(self) -> str:
        return self.record.call_id

    def end_from_platform(self) -> None:
        """The platform sent BYE: the worker's next read reports the feed closed."""
        self.remote_ended = True
        self.end_from_node()

    def end_from_node(self) -> None:
        """The worker reading the session (if one still does) sees its feed closed."""
        if self.receiver is not None:
            self.receiver.ended.set()
        if self.sock is not None:
            # Wakes a worker blocked in a read on it (Linux wakes the readers of an
            # unconnected UDP socket too); the worker then closes the feed.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


@dataclass
class EndableReceiver:
    """The session's RTP receiver, which reports itself closed once the platform sent BYE."""

    inner: RtpReceiver
    ended: threading.Event = field(default_factory=threading.Event)

    def receive(self, timeout_s: float) -> bytes | None:
        if self.ended.is_set():
            raise EOFError("the platform ended the stream (BYE)")
        return self.inner.receive(timeout_s)

    def close(self) -> None:
        self.inner.close()
