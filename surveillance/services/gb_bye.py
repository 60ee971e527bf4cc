"""The BYEs of GB/T 28181 play sessions (RFC 3261 s.15.1.1), sent from the event loop.

A BYE goes to where the platform is registered now, not where the INVITE went: a platform
that re-registered from another address no longer listens at the old one and would stream
on. Nobody waits for a BYE but the node's stop; one that gets no answer is a WARNING
naming the camera, since the platform may still be sending. A node that was killed left
its sessions open at the platforms; at its next start each row it left is BYE'd, again
once its platform registers if the first try got no answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from surveillance.gb28181.records import GbSessionRecord
from surveillance.gb28181.sip_message import SipRequest
from surveillance.gb28181.transactions import SipTimeout
from surveillance.gb28181.transport import Peer
from surveillance.services.gb_dialog import Dialog, SavedDialog
from surveillance.services.gb_signalling import Signalling

log = logging.getLogger(__name__)

BYE_TIMEOUT_S = 2.0  # a BYE's transaction; nobody waits for it but the node's stop
# A session a crashed run left is BYE'd at start; unanswered, again when its platform
# registers within this long (looked at every LEFTOVER_POLL_S).
LEFTOVER_WAIT_S = 600.0
LEFTOVER_POLL_S = 1.0


class ByeSender:
    """``soon`` and ``of`` run on any thread, the rest on the loop."""

    def __init__(self, signalling: Signalling) -> None:
        self._signalling = signalling
        self._loop: asyncio.AbstractEventLoop | None = None
        self._byes: set[asyncio.Task[bool]] = set()
        self._leftovers: set[asyncio.Task[None]] = set()  # BYEs of a crashed run's sessions

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def stop(self) -> None:
        """Waits for the BYEs in flight (bounded); gives up on a crashed run's."""
        for task in self._leftovers:
            task.cancel()
        if self._byes:
            await asyncio.wait(set(self._byes), timeout=BYE_TIMEOUT_S + 1)
        self._loop = None

    def of(self, platform_id: str, dialog: Dialog, camera: str) -> tuple[Peer, SipRequest, str]:
        """The BYE of a dialog, to where the platform is now: one that re-registered from
        another address since the INVITE no longer listens at the old one, and would keep
        streaming a session whose BYE went there."""
        now_at = self._signalling.peer(platform_id)
        if now_at is not None and now_at != dialog.peer:
            dialog = dataclasses.replace(dialog, peer=now_at)
        return dialog.peer, dialog.bye(self._signalling.local), camera

    def soon(self, peer: Peer, bye: SipRequest, camera: str) -> None:
        """Send BYE from the loop, without waiting for it (called from worker threads)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self.start_bye, peer, bye, camera)

    def start_bye(self, peer: Peer, bye: SipRequest, camera: str) -> None:
        task = asyncio.get_running_loop().create_task(self.send(peer, bye, camera))
        self._byes.add(task)
        task.add_done_callback(self._byes.discard)

    async def send(self, peer: Peer, bye: SipRequest, camera: str) -> bool:
        """True when the platform answered. Unanswered, the platform may stream on: said
        as a WARNING naming the camera, for the operator to check the platform."""
        try:
            response = await self._signalling.client.request(bye, peer, BYE_TIMEOUT_S)
        except (SipTimeout, OSError) as exc:
            log.warning(
                "gb28181: %s: BYE %s to %s:%d not answered (%s); the platform may still be "
                "sending this stream", camera, bye.headers.get("Call-ID"), peer.host,
                peer.port, exc,
            )  # fmt: skip
            return False
        if response.status >= 300:
            log.info("gb28181: %s: BYE %s answered %d", camera, bye.headers.get("Call-ID"),
                     response.status)  # fmt: skip
        return True

    # -- what a crashed run left (loop) ----------------------------------------------------
    def end_left(self, record: GbSessionRecord) -> None:
        if record.dialog is None:
            return  # a row from before the dialog was kept: nothing to BYE with
        try:
            saved = SavedDialog.from_json(record.dialog)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("gb28181: %s: the session row the last run left is unreadable (%s)",
                        record.camera_id, exc)  # fmt: skip
            return
        log.info("gb28181: %s: ending session %s, left open by the last run (BYE)",
                 record.camera_id, saved.call_id)  # fmt: skip
        task = asyncio.get_running_loop().create_task(
            self._bye_left(record.camera_id, record.platform_id, saved)
        )
        self._leftovers.add(task)
        task.add_done_callback(self._leftovers.discard)

    async def _bye_left(self, camera: str, platform_id: str, saved: SavedDialog) -> None:
        """BYE to where the platform is registered, else to its address of the INVITE; not
        answered there, again once the platform registers (from wherever it does), for
        LEFTOVER_WAIT_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEFTOVER_WAIT_S
        tried: set[tuple[Peer, bool]] = set()
        while True:
            registered = self._signalling.peer(platform_id)
            peer = registered or saved.peer
            if (peer, registered is not None) not in tried:
                tried.add((peer, registered is not None))
                dialog = dataclasses.replace(saved, peer=peer)
                if await self.send(peer, dialog.bye(self._signalling.local), camera):
                    return
            if loop.time() >= deadline:
                return
            await asyncio.sleep(LEFTOVER_POLL_S)
