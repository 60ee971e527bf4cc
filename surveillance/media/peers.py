"""WebRTC viewers: one peer connection per viewer, from the offer to its one ending.

Live tiles and mosaics set up their viewers the same way: a peer connection, one track,
the answer to the browser's offer; and end them the same way: when the connection fails
or closes, when the answer could not be made, or at shutdown. :class:`PeerSessions` does
that once for both: the track is stopped (which frees its subscription), the session's
``on_close`` runs exactly once however it ended, and ``on_end`` (the audit's "stopped
watching") runs once for a viewer that had started.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import MediaStreamTrack, RTCPeerConnection

from surveillance.media.webrtc import answer_offer

log = logging.getLogger(__name__)


@dataclass
class _Session:
    track: MediaStreamTrack
    on_close: Callable[[], None] | None
    on_end: Callable[[], None] | None


class PeerSessions:
    """The peer connections of one service's WebRTC viewers."""

    def __init__(self) -> None:
        self._sessions: dict[RTCPeerConnection, _Session] = {}

    async def answer(
        self,
        offer_sdp: str,
        track: MediaStreamTrack,
        *,
        on_end: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> str:
        """The answer SDP for a viewer that receives ``track``.

        ``on_close`` is called once when the session ends, whether or not it started;
        ``on_end`` once when a viewer that got an answer stops (connection failed or
        closed, or shutdown). Raises BadOffer for an offer that cannot be answered; the
        track is stopped and ``on_close`` called before any error leaves.
        """
        peer = RTCPeerConnection()
        self._sessions[peer] = _Session(track, on_close, on_end)

        @peer.on("connectionstatechange")
        async def _on_state() -> None:
            if peer.connectionState in ("failed", "closed"):
                await self._end(peer, started=True)

        try:
            answer = await answer_offer(peer, offer_sdp, track)
        except BaseException:
            await self._end(peer, started=False)  # never started: nothing to report as ended
            raise
        return str(answer.sdp)

    async def _end(self, peer: RTCPeerConnection, *, started: bool) -> None:
        session = self._sessions.pop(peer, None)
        if session is None:
            return  # already ended: the state may change more than once
        session.track.stop()
        for callback in (session.on_close, session.on_end if started else None):
            if callback is not None:
                try:
                    callback()
                except Exception:
                    log.exception("a WebRTC viewer's end callback failed")
        with contextlib.suppress(Exception):
            await peer.close()

    def __len__(self) -> int:
        return len(self._sessions)

    async def close(self) -> None:
        """End every session: a viewer cut off by shutdown stopped watching too."""
        for peer in list(self._sessions):
            await self._end(peer, started=True)
