"""The SIP server GB/T 28181 platforms register to: REGISTER with digest authentication, and
the dispatch of what registered platforms send.

GB/T 28181-2016 s.9.1 (register), RFC 3261 s.10 (registrar). A platform is known by the
device id in To (REGISTER) or From (every other request), which must be a configured
platform's; its password is checked by digest (RFC 2617) on every REGISTER. Other requests
are taken only from a registered platform, and only from where it registered (``Origin``):
the device id in From is the sender's word, the address is what the password vouched for.
Presence (keepalives, offline, the reasons) is :mod:`.gb_presence`'s; catalogs
:mod:`.gb_catalog`'s; BYE and alarms go to the player's hooks. Log lines name the platform
and its address, never a password, nonce or digest response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from sqlalchemy import Engine

from surveillance.catalog import Catalog
from surveillance.config.models import Gb28181Config, GbPlatformConfig
from surveillance.gb28181.digest import DigestAuthenticator
from surveillance.gb28181.limits import LogLimiter
from surveillance.gb28181.manscdp import (
    AlarmNotify,
    CatalogAnswer,
    CatalogNotify,
    Keepalive,
    ManscdpError,
    parse_body,
)
from surveillance.gb28181.origin import Origin
from surveillance.gb28181.register_fields import gb_date, register_expires
from surveillance.gb28181.sip_message import (
    LocalParty,
    SipMessage,
    SipRequest,
    SipResponse,
    name_addr_uri,
    new_request,
    new_tag,
    response_to,
    uri_user,
)
from surveillance.gb28181.store import GbStore
from surveillance.gb28181.transactions import ServerTransactions, SipClient, SipTimeout
from surveillance.gb28181.transport import Peer, SipTransport
from surveillance.media.health import StreamState
from surveillance.redact import Redactor
from surveillance.services.gb_cameras import GbChannelCameras
from surveillance.services.gb_catalog import GbCatalogSync
from surveillance.services.gb_presence import GbPlatformStatus, GbPresence, RegisterFailures
from surveillance.services.ingest import IngestService

log = logging.getLogger(__name__)

MANSCDP = "Application/MANSCDP+xml"
REQUEST_TIMEOUT_S = 5.0
MAX_FOLLOW_UPS = 10_000  # catalog pages, notifications, keepalives waiting to be stored
PLAYING = frozenset({StreamState.CONNECTING, StreamState.ONLINE, StreamState.STALLED})


class GbRegistry:
    def __init__(
        self,
        config: Gb28181Config,
        cameras: GbChannelCameras,
        store: GbStore,
        ingest: IngestService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self.cameras = cameras
        self.store = store  # play's sessions are kept here too
        self._ingest = ingest
        self._clock = clock
        self._by_device = {p.device_id: p for p in config.platforms}
        self._platforms = {p.id: p for p in config.platforms}
        self._auth = DigestAuthenticator(config.domain)
        self._transactions = ServerTransactions()
        self._failures = RegisterFailures()
        self._logs = LogLimiter(log)
        self.refused: dict[str, int] = {
            "unknown_device": 0,
            "bad_credentials": 0,
            "wrong_address": 0,  # a registered platform's id from another address
        }
        self.transport = SipTransport(
            config.listen,
            config.sip_port,
            self.handle,
            max_message_bytes=config.max_message_bytes,
            requests_per_s=config.requests_per_s,
        )
        self.client = SipClient(self.transport)
        self.catalog = GbCatalogSync(config, cameras, self.request_status, clock)
        self.presence = GbPresence(config, cameras, self.catalog, store, clock)
        self.catalog.where = cameras.where = self.presence.where
        # Hooks of the player (set before start): a platform's BYE (True: a session of
        # ours, answered 200; else 481), and its alarms (called on the loop, returns at once).
        self.on_bye: Callable[[SipRequest, Peer], bool] | None = None
        self.on_alarm: Callable[[str, AlarmNotify], None] | None = None
        self._later: asyncio.Queue[Coroutine[Any, Any, None]] = asyncio.Queue(MAX_FOLLOW_UPS)
        self._tasks: list[asyncio.Task[None]] = []
        self._local: LocalParty | None = None
        self._loaded = False
        self._origins: dict[str, Origin] = {}  # by platform id: where it registered from

    @property
    def local(self) -> LocalParty:
        """This server as From/Via/Contact of its requests (after start: the bound port)."""
        if self._local is None:
            raise RuntimeError("the GB/T 28181 registry has not started")
        return self._local

    # -- life cycle -----------------------------------------------------------------------
    async def load(self) -> None:
        """The stored channels as cameras (unreachable until their platforms register):
        before the event bus starts, which ends the events of cameras it does not know."""
        await self.cameras.load()
        # Registrations taken over from before a restart (gb_presence: a platform does not
        # register again until its registration expires): its requests come from where it
        # registered then, and that address was vouched for by its password.
        for platform in self._config.platforms:
            peer = self.presence.peer(platform.id)
            if peer is not None and platform.id not in self._origins:
                self._origins[platform.id] = Origin(
                    peer.host, peer.transport, frozenset({peer.port})
                )
                self.transport.trust(peer.host)
        self._loaded = True

    async def start(self) -> None:
        if not self._loaded:
            await self.load()
        await self.transport.start()
        c = self._config
        self._local = LocalParty(c.sip_id, c.domain, c.advertised_media_host(), self.transport.port)
        await self.catalog.start()
        self._tasks = [
            asyncio.create_task(self.presence.watch(), name="gb-presence"),
            asyncio.create_task(self._run_later(), name="gb-followups"),
        ]
        log.info("GB/T 28181 SIP server on %s:%d (UDP and TCP)", c.listen, self.transport.port)

    async def stop(self) -> None:
        await self.catalog.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.transport.stop()
        while not self._later.empty():  # work nobody will do now: close, never awaited
            self._later.get_nowait().close()

    # -- what others ask ------------------------------------------------------------------
    def peer(self, platform_id: str) -> Peer | None:
        """Where a registered, online platform is; None otherwise."""
        return self.presence.peer(platform_id)

    async def request(
        self, platform_id: str, method: str, body: bytes, extra: Iterable[tuple[str, str]] = ()
    ) -> SipResponse | None:
        """A request with a MANSCDP body to a registered platform; its final response, or
        None when it is not registered or did not answer."""
        peer = self.peer(platform_id)
        if peer is None:
            return None
        device_id = self._platforms[platform_id].device_id
        message = new_request(
            method,
            f"sip:{device_id}@{peer.host}:{peer.port}",
            local=self.local,
            to_uri=f"sip:{device_id}@{device_id[:10]}",
            transport=peer.transport.upper(),
            body=body,
            content_type=MANSCDP,
            extra=extra,
        )
        try:
            return await self.client.request(message, peer, REQUEST_TIMEOUT_S)
        except (SipTimeout, OSError) as error:
            log.warning(
                "GB platform %s (%s:%d): %s not answered: %s",
                platform_id, peer.host, peer.port, method, type(error).__name__,
            )  # fmt: skip
            return None

    async def request_status(
        self, platform_id: str, method: str, body: bytes, extra: Iterable[tuple[str, str]]
    ) -> int | None:
        response = await self.request(platform_id, method, body, extra)
        return None if response is None else response.status

    def status(self) -> list[GbPlatformStatus]:
        playing: dict[str, int] = {}
        for camera_id, stream in self._ingest.streams():
            platform_id = camera_id.partition(".")[0]
            if platform_id in self._platforms and stream.health.state in PLAYING:
                playing[platform_id] = playing.get(platform_id, 0) + 1
        return self.presence.status(playing)

    def dropped(self) -> dict[str, int]:
        """SIP messages dropped or refused since start, by reason (for the metrics)."""
        stats = self.transport.stats
        return {
            "malformed": stats.dropped_malformed,
            "oversized": stats.dropped_oversized,
            "flood": stats.dropped_flood,
            "tcp_connections": stats.dropped_connections,  # hoarded, or silent too long
            "blocked_address": self._failures.refused,
            **self.refused,
        }

    # -- the SIP handler ------------------------------------------------------------------
    async def handle(self, message: SipMessage, peer: Peer) -> None:
        if isinstance(message, SipResponse):
            if not self.client.take_response(message):
                log.debug("GB: a response from %s:%d matching no request", peer.host, peer.port)
            return
        if message.method == "ACK":
            return  # for a final response of ours: nothing to do (RFC 3261 s.17.2.1)
        cached = self._transactions.cached(message, peer)
        if cached is None:
            cached = await self._answer(message, peer)
            self._transactions.remember(message, peer, cached)
        await self.transport.send(cached, peer)

    async def _answer(self, request: SipRequest, peer: Peer) -> SipResponse:
        if request.method == "REGISTER":
            return await self._register(request, peer)
        if request.method == "OPTIONS":
            return response_to(request, 200, to_tag=new_tag())
        if request.method not in ("MESSAGE", "NOTIFY", "BYE"):
            allow = (("Allow", "REGISTER, MESSAGE, NOTIFY, BYE, ACK, OPTIONS"),)
            return response_to(request, 405, to_tag=new_tag(), extra=allow)
        if request.method == "BYE":
            # Before the sender check: a BYE's From is the dialog's remote party, the
            # channel the INVITE went to, not the platform's device id (RFC 3261 s.12.2.1.1).
            # The player knows its dialogs by Call-ID and platform address; 481 otherwise.
            ours = self.on_bye is not None and self.on_bye(request, peer)
            return response_to(request, 200 if ours else 481, to_tag=new_tag())
        platform = self._sender(request, peer)
        if platform is None:
            return response_to(request, 403, to_tag=new_tag())
        return self._body(platform, request, peer)

    def _sender(self, request: SipRequest, peer: Peer) -> GbPlatformConfig | None:
        """The registered platform a MESSAGE or NOTIFY comes from, when it comes from where
        that platform registered; else None (logged, at most once a minute per address)."""
        device_id = uri_user(name_addr_uri(request.headers.get("From") or "")) or ""
        platform = self._by_device.get(device_id)
        if platform is None or not self.presence.is_registered(platform.id):
            who = device_id[:20] or "no device id"
            self._logs.warning(
                peer.host, f"{request.method} refused", f"{who} is not a registered platform"
            )
            return None
        origin = self._origins.get(platform.id)
        if origin is None or not origin.admits(peer):
            self.refused["wrong_address"] += 1
            self._logs.warning(
                peer.host,
                f"{request.method} refused",
                f"{peer.host}:{peer.port}/{peer.transport} claims platform {platform.id} "
                f"({device_id}), which registered from another address; a platform that "
                "moved must REGISTER again",
            )
            return None
        return platform

    def _body(self, platform: GbPlatformConfig, request: SipRequest, peer: Peer) -> SipResponse:
        # RFC 3261 s.8.2.6.2: a To tag on every response (an in-dialog NOTIFY keeps its own).
        ok = response_to(request, 200, to_tag=new_tag())
        try:
            body = parse_body(request.body)
        except ManscdpError as error:
            self._logs.warning(
                peer.host, f"{request.method} body refused", f"platform {platform.id}: {error}"
            )
            return response_to(request, 400, str(error)[:80], to_tag=new_tag())
        if isinstance(body, Keepalive):
            heard_at = self.presence.keepalive(platform, peer)
            if heard_at is not None:
                self._follow(self.presence.store_keepalive(platform.id, heard_at), peer)
        elif isinstance(body, CatalogAnswer):
            self._follow(self.catalog.on_answer(platform.id, body), peer)
        elif isinstance(body, CatalogNotify):
            self._follow(self.catalog.on_notify(platform.id, body), peer)
        elif isinstance(body, AlarmNotify):
            if self.on_alarm is not None:
                try:
                    self.on_alarm(platform.id, body)
                except Exception:  # the platform still gets its 200: the alarm arrived
                    log.exception("GB platform %s: handling an alarm failed", platform.id)
        else:
            log.debug("GB platform %s: %s %s answered 200", platform.id, body.root, body.cmd_type)
        return ok

    def _follow(self, work: Coroutine[Any, Any, None], peer: Peer) -> None:
        try:
            self._later.put_nowait(work)
        except asyncio.QueueFull:  # the database is far behind: shed, never grow
            work.close()
            self._logs.warning(peer.host, "overloaded", "a message's follow-up dropped")

    async def _run_later(self) -> None:
        """What follows a response, in arrival order, after it was sent: a platform waiting
        for its 200 must not wait for a catalog page to be stored (it would resend it)."""
        while True:
            work = await self._later.get()
            try:
                await work
            except Exception:
                log.exception("GB: handling a platform's message failed")

    # -- registration (GB/T 28181-2016 s.9.1.2.1) -----------------------------------------
    async def _register(self, request: SipRequest, peer: Peer) -> SipResponse:
        now = self._clock()
        if self._failures.blocked(peer.host, now):
            self._failures.refused += 1
            return response_to(request, 403, "Too many failed attempts", to_tag=new_tag())
        device_id = uri_user(name_addr_uri(request.headers.get("To") or "")) or ""
        platform = self._by_device.get(device_id)
        if platform is None:
            self.refused["unknown_device"] += 1
            self._failed(peer, now, f"unknown device id {device_id[:20] or '(none)'}")
            return response_to(request, 403, to_tag=new_tag())
        asked, given = register_expires(request)
        if asked is None:  # RFC 3261 s.20.19: delta-seconds, digits only
            shown = "".join(c for c in given if c.isprintable() and c.isascii())[:20]
            self._logs.warning(
                peer.host, "REGISTER refused", f"platform {platform.id}: Expires {shown!r}"
            )
            return response_to(request, 400, f"Bad Expires: {shown}", to_tag=new_tag())
        result = self._auth.verify(
            request,
            lambda user: platform.password.get_secret_value() if user == device_id else None,
            host=peer.host,  # a nonce is good only from the address it was sent to
        )
        if not result.ok:
            # A stale or replayed nonce with the right answer: a fresh challenge, not a
            # failure (a replay is refused, the device that reused a count just retries).
            stale = result.reason in ("stale nonce", "replayed nonce")
            if result.reason == "replayed nonce":
                self._logs.warning(
                    peer.host,
                    "REGISTER refused",
                    f"platform {platform.id}: "
                    "credentials already used (a replay?); challenged again",
                )
            elif not stale and result.reason != "no credentials":
                self.refused["bad_credentials"] += 1
                if self._failed(peer, now, f"platform {platform.id}: {result.reason}"):
                    return response_to(request, 403, "Too many failed attempts", to_tag=new_tag())
            challenge = self._auth.challenge(stale=stale, host=peer.host)
            return response_to(
                request, 401, to_tag=new_tag(), extra=(("WWW-Authenticate", challenge),)
            )
        self._failures.succeeded(peer.host)
        expires = min(asked, self._config.register_expires_max_s)
        if expires:
            # The right password vouches for the address (for the node's life: another
            # platform may share it): its catalog's bursts of pages are not a flood
            # (gb28181/transport.py, TRUSTED_RATE_FACTOR).
            self.transport.trust(peer.host)
        if expires == 0:
            self._origins.pop(platform.id, None)
            await self.presence.unregistered(platform, peer)
        else:
            self._origins[platform.id] = Origin.of(request, peer)
            agent = request.headers.get("User-Agent")
            await self.presence.registered(platform, peer, expires, agent)
        contact = request.headers.get("Contact")
        extra = [("Expires", str(expires)), ("Date", gb_date(now))]
        if contact and expires:
            # The binding without its parameters (a URI's own, inside <>, stay).
            bare = contact[: contact.index(">") + 1] if ">" in contact else contact.split(";")[0]
            extra.append(("Contact", f"{bare};expires={expires}"))
        return response_to(request, 200, to_tag=new_tag(), extra=extra)

    def _failed(self, peer: Peer, now: float, why: str) -> bool:
        blocked = self._failures.failed(peer.host, now)
        blocking = "; address refused for a minute" if blocked else ""
        self._logs.warning(peer.host, "REGISTER refused", f"{why}{blocking}")
        return blocked


def build_gb_registry(
    config: Gb28181Config,
    catalog: Catalog,
    ingest: IngestService,
    engine: Engine,
    redactor: Redactor,
) -> GbRegistry | None:
    """The SIP server and its channel cameras, when ``gb28181.enabled``; the platforms'
    passwords join the redactor's secrets."""
    if not config.enabled:
        return None
    redactor.add(p.password.get_secret_value() for p in config.platforms)
    store = GbStore(engine)
    cameras = GbChannelCameras(config.platforms, catalog, ingest, store)
    return GbRegistry(config, cameras, store, ingest)
