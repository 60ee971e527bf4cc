"""WebRTC viewers: one peer connection per viewer, from the offer to its one ending.

Live tiles and mosaics set up their viewers the same way: a peer connection, one track,
the answer to the browser's offer; and end them the same way: when the connection fails
or closes, when the answer could not be made, or at shutdown. :class:`PeerSessions` does
that once for both: the track is stopped (which frees its subscription), the session's
``on_close`` runs exactly once however it ended, and ``on_end`` (the audit's "stopped
watching") runs once for a viewer that had started.

A viewer answered but not connected costs two sockets and a DTLS context while it waits;
a thousand offers nobody completes would hold them for aiortc's own time-outs (about a
minute). So the number of such pending viewers is capped per owner (a user) and in all
(:class:`TooManyPendingPeers`, 429), and one not connected ``connect_deadline_s`` after its
answer is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import MediaStreamTrack, RTCPeerConnection

from surveillance.errors import TooBusy
from surveillance.media.webrtc import answer_offer

log = logging.getLogger(__name__)


PEER_CONNECT_DEADLINE_S = 15.0  # an answered viewer not connected by then is dropped
MAX_PENDING_PEERS = 64  # answered, not yet connected, in all
MAX_PENDING_PEERS_PER_OWNER = 8


class TooManyPendingPeers(TooBusy):
    """Too many WebRTC viewers answered and not yet connected (of one user, or in all)."""


@dataclass
class _Session:
    track: MediaStreamTrack
    on_close: Callable[[], None] | None
    on_end: Callable[[], None] | None
    owner: str | None
    connected: bool = False
    deadline: asyncio.TimerHandle | None = None


@dataclass(frozen=True)
class PeerAnswer:
    """The answer to a viewer's offer, and the way to end that viewer."""

    sdp: str
    peer: RTCPeerConnection
    sessions: PeerSessions

    async def close(self) -> None:
        """End the viewer (its ``on_end`` runs, once)."""
        await self.sessions.end(self.peer)


class PeerSessions:
    """The peer connections of one node's WebRTC viewers."""

    def __init__(
        self,
        *,
        connect_deadline_s: float = PEER_CONNECT_DEADLINE_S,
        max_pending: int = MAX_PENDING_PEERS,
        max_pending_per_owner: int = MAX_PENDING_PEERS_PER_OWNER,
    ) -> None:
        self._sessions: dict[RTCPeerConnection, _Session] = {}
        self.connect_deadline_s = connect_deadline_s
        self.max_pending = max_pending
        self.max_pending_per_owner = max_pending_per_owner
        self._closing: set[asyncio.Task[None]] = set()  # held until done: the loop keeps weak refs

    def pending(self, owner: str | None = None) -> int:
        """Viewers answered (or being answered) and not connected yet, of ``owner`` or all."""
        return sum(
            1
            for s in self._sessions.values()
            if not s.connected and (owner is None or s.owner == owner)
        )

    def _check_pending(self, owner: str | None) -> None:
        if self.pending() >= self.max_pending:
            raise TooManyPendingPeers(
                f"{self.max_pending} WebRTC viewers are waiting to connect; try again shortly"
            )
        if owner is not None and self.pending(owner) >= self.max_pending_per_owner:
            raise TooManyPendingPeers(
                f"you have {self.max_pending_per_owner} WebRTC viewers waiting to connect; "
                "connect or close them first"
            )

    async def answer(
        self,
        offer_sdp: str,
        track: MediaStreamTrack,
        *,
        owner: str | None = None,
        on_end: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> PeerAnswer:
        """The answer for a viewer that receives ``track``, counted as ``owner``'s.

        ``on_close`` is called once when the session ends, whether or not it started;
        ``on_end`` once when a viewer that got an answer stops (connection failed or
        closed, not connected within the deadline, ended, or shutdown). Raises BadOffer for
        an offer that cannot be answered, TooManyPendingPeers when too many viewers wait to
        connect; the track is stopped and ``on_close`` called before any error leaves.
        """
        session = _Session(track, on_close, on_end, owner)
        try:
            self._check_pending(owner)
        except TooBusy:
            self._finish(session, started=False)
            raise
        peer = RTCPeerConnection()
        self._sessions[peer] = session

        @peer.on("connectionstatechange")
        async def _on_state() -> None:
            if peer.connectionState == "connected":
                session.connected = True
                if session.deadline is not None:
                    session.deadline.cancel()
            elif peer.connectionState in ("failed", "closed"):
                await self._end(peer, started=True)

        try:
            answer = await answer_offer(peer, offer_sdp, track)
        except BaseException:
            await self._end(peer, started=False)  # never started: nothing to report as ended
            raise
        if peer in self._sessions and not session.connected:
            session.deadline = asyncio.get_running_loop().call_later(
                self.connect_deadline_s, self._drop_unconnected, peer
            )
        return PeerAnswer(str(answer.sdp), peer, self)

    def _drop_unconnected(self, peer: RTCPeerConnection) -> None:
        session = self._sessions.get(peer)
        if session is not None and not session.connected:
            log.info("a WebRTC viewer did not connect within %g s: dropped",
                     self.connect_deadline_s)  # fmt: skip
            # Its own task: a timer callback cannot await the close.
            task = asyncio.get_running_loop().create_task(self._end(peer, started=True))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def end(self, peer: RTCPeerConnection) -> None:
        """End one viewer that got an answer (nothing happens if it has ended already)."""
        await self._end(peer, started=True)

    async def _end(self, peer: RTCPeerConnection, *, started: bool) -> None:
        session = self._sessions.pop(peer, None)
        if session is None:
            return  # already ended: the state may change more than once
        self._finish(session, started=started)
        with contextlib.suppress(Exception):
            await peer.close()

    @staticmethod
    def _finish(session: _Session, *, started: bool) -> None:
        if session.deadline is not None:
            session.deadline.cancel()
        session.track.stop()
        for callback in (session.on_close, session.on_end if started else None):
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("a WebRTC viewer's end callback failed")

    def __len__(self) -> int:
        return len(self._sessions)

    async def close(self) -> None:
        """End every session: a viewer cut off by shutdown stopped watching too."""
        for peer in list(self._sessions):
            await self._end(peer, started=True)
