"""Open live views and the access they were opened with, re-checked until they end.

A route checks access once, when a viewer starts; a live view then runs for hours. So every
live view (an fMP4 WebSocket, a WebRTC viewer of a camera or of a mosaic, an MJPEG mosaic)
is registered here with who opened it: the credential (a session or an API token), the
user, and the cameras it shows. Every ``LIVE_RECHECK_S`` each credential is looked up again
the way a new request would be (signed out, session expired, token revoked, user disabled
or removed all make it fail), and its user's current role and scope are checked against
each camera shown; a view that fails is ended (the route's ``stop``: close the WebSocket
with a policy code, close the peer, end the stream) and remembers why, for its route's
``live.stop`` audit entry.

Looking a credential up counts as using it: an open live view keeps its session from
idling out (a control room's wall is watched, not clicked), never past its maximum age.

The registry also counts what each user is watching, for the limits on concurrent mosaics
and transcodes (``limits`` in the configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy.exc import SQLAlchemyError

from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.config.models import LimitsConfig
from surveillance.db.outage_log import OutageLog
from surveillance.errors import Forbidden, TooBusy
from surveillance.media.peers import PeerAnswer
from surveillance.services.access import Access

log = logging.getLogger(__name__)

LIVE_RECHECK_S = 2.0  # how often open live views re-check their credential and scope

# What a view is told when it ends; the audit entry's reason.
ACCESS_ENDED = "access ended: signed out, token revoked, or user disabled or removed"
ROLE_ENDED = "access ended: the user's role may no longer view live video"
SCOPE_ENDED = "access ended: camera {} is no longer in the user's scope"

Recheck = Callable[[], Principal | None]  # blocking (reads the database): the current principal
Stop = Callable[[str], Awaitable[None]]  # ends the view, with the reason


class ViewKind(StrEnum):
    MSE = "mse"
    WEBRTC = "webrtc"
    TRANSCODE = "transcode"
    MOSAIC = "mosaic"  # MJPEG or WebRTC


class TooManyMosaics(TooBusy):
    """The user, or the node, watches as many mosaics as allowed."""


class TooManyTranscodes(TooBusy):
    """The user, or the node, has as many transcoded live views as allowed."""


class LiveAccessEnded(Forbidden):
    """The viewer's access ended while its live view was being set up."""


def peer_owner(principal: Principal) -> str:
    """Whose WebRTC viewers these are, for the caps on viewers waiting to connect."""
    return f"user:{principal.user.id}"


@dataclass(eq=False)
class LiveView:
    kind: ViewKind
    principal: Principal
    cameras: tuple[str, ...]
    recheck: Recheck = field(repr=False)
    stop: Stop | None = field(default=None, repr=False)
    ended_because: str | None = None  # set when access ended it
    # Named to the page that opened it, which ends it by this id when it leaves (a closed
    # page's peer connection is otherwise noticed only by ICE consent's ~30 s time-out).
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    @property
    def credential(self) -> tuple[str, str]:
        """Which sign-in opened the view: ("token", id) or ("session", hash)."""
        if self.principal.token_id is not None:
            return "token", self.principal.token_id
        return "session", self.principal.session_hash or ""

    @property
    def stop_reason(self) -> str:
        """For the ``live.stop`` audit entry."""
        return self.ended_because or "viewer left"


def refusal(view: LiveView, current: Principal | None, access: Access) -> str | None:
    """Why ``view`` may not go on when its credential now yields ``current``, or None."""
    if current is None or current.user.id != view.principal.user.id:
        return ACCESS_ENDED
    if not current.can(Permission.LIVE_VIEW):
        return ROLE_ENDED
    for camera_id in view.cameras:
        if not access.sees_camera(current, camera_id):
            return SCOPE_ENDED.format(camera_id)
    return None


class LiveViews:
    """The registry of open live views."""

    def __init__(
        self, access: Access, limits: LimitsConfig, recheck_s: float = LIVE_RECHECK_S
    ) -> None:
        self._access = access
        self._limits = limits
        self.recheck_s = recheck_s
        self._views: set[LiveView] = set()
        self._task: asyncio.Task[None] | None = None

    # -- opening and closing --------------------------------------------------------------
    def open(
        self,
        kind: ViewKind,
        principal: Principal,
        recheck: Recheck,
        cameras: Iterable[str],
        stop: Stop | None = None,
    ) -> LiveView:
        """Register a view about to start; raises TooManyMosaics or TooManyTranscodes when
        the user or the node is at its limit. Give ``stop`` now or set it once it exists."""
        self._check_limits(kind, principal)
        view = LiveView(kind, principal, tuple(cameras), recheck, stop)
        self._views.add(view)
        return view

    def close(self, view: LiveView) -> None:
        """The view ended (safe to call twice)."""
        self._views.discard(view)

    async def leave(self, view_id: str, user_id: int) -> bool:
        """The page that opened a view left it: end it now, freeing its slot (a transcode
        counts against its user's limit until it ends). False when no open view of this
        user has that id (ended already, or someone else's)."""
        view = next((v for v in self._views if v.id == view_id), None)
        if view is None or view.principal.user.id != user_id:
            return False
        self._views.discard(view)
        if view.stop is not None:
            try:
                await view.stop("viewer left")
            except Exception:
                log.exception("ending a live view failed")
        return True

    def count(self, kind: ViewKind, user_id: int | None = None) -> int:
        return sum(
            1
            for v in self._views
            if v.kind is kind and (user_id is None or v.principal.user.id == user_id)
        )

    def __len__(self) -> int:
        return len(self._views)

    def _check_limits(self, kind: ViewKind, principal: Principal) -> None:
        limits = self._limits
        error: type[TooBusy]
        if kind is ViewKind.MOSAIC:
            per_user, error, what = limits.mosaics_per_user, TooManyMosaics, "mosaics"
        elif kind is ViewKind.TRANSCODE:
            per_user, error, what = limits.transcodes_per_user, TooManyTranscodes, "transcodes"
            if self.count(kind) >= limits.transcodes:
                raise error(f"this node runs {limits.transcodes} {what} at most; try later")
        else:
            return
        if self.count(kind, principal.user.id) >= per_user:
            raise error(f"you may watch {per_user} {what} at once; close one first")

    # -- re-checking ----------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._recheck_forever(), name="live-recheck")

    async def _recheck_forever(self) -> None:
        outage = OutageLog(log, "re-checking live views")
        while True:
            await asyncio.sleep(self.recheck_s)
            try:
                await self.recheck_now()
            except SQLAlchemyError as error:  # the views go on; looked at again next turn
                outage.failed(error)
                continue
            except Exception:  # anything else must not end the re-checking for good
                log.exception("re-checking live views failed")
                continue
            outage.worked()

    async def recheck_now(self, only: Callable[[LiveView], bool] | None = None) -> None:
        """Look every open view's credential up once (``only``: those views), end those
        whose access has ended."""
        views = [v for v in self._views if only is None or only(v)]
        if not views:
            return
        # One lookup per credential, however many views it opened.
        by_credential: dict[tuple[str, str], list[LiveView]] = defaultdict(list)
        for view in views:
            by_credential[view.credential].append(view)
        lookups = {key: group[0].recheck for key, group in by_credential.items()}
        current = await asyncio.to_thread(
            lambda: {key: lookup() for key, lookup in lookups.items()}
        )
        for key, group in by_credential.items():
            for view in group:
                reason = refusal(view, current[key], self._access)
                if reason is not None and view in self._views:
                    await self.end(view, reason)

    async def answered(self, view: LiveView, answering: Awaitable[PeerAnswer]) -> PeerAnswer:
        """The WebRTC answer made for ``view``, tied to it: ending the view closes the peer.
        If the answer fails the view is closed; if access ended while it was being made,
        the peer is closed and this raises :class:`LiveAccessEnded`."""
        try:
            answer = await answering
        except BaseException:
            self.close(view)
            raise
        view.stop = lambda _reason: answer.close()
        if view.ended_because is not None:
            await answer.close()
            raise LiveAccessEnded(view.ended_because)
        return answer

    async def end(self, view: LiveView, reason: str) -> None:
        """End one view because its access ended."""
        self._views.discard(view)
        view.ended_because = reason
        log.info("live %s view of %s by %s ended: %s", view.kind.value,
                 ",".join(view.cameras), view.principal.name, reason)  # fmt: skip
        if view.stop is not None:
            try:
                await view.stop(reason)
            except Exception:
                log.exception("ending a live view failed")

    async def close_all(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._views.clear()
