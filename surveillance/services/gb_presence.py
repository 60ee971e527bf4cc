"""GB/T 28181 platforms' presence: registered until when, heard of when, online or why not
(GB/T 28181-2016 s.9.1 and s.9.6), and REGISTER failures limited per source address (bounded:
a flood from many addresses forgets the oldest ones rather than grow).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from surveillance.config.models import Gb28181Config, GbPlatformConfig
from surveillance.gb28181.records import GbPlatformRecord, GbRegistration
from surveillance.gb28181.store import GbStore
from surveillance.gb28181.transport import Peer
from surveillance.services.gb_cameras import NOT_REGISTERED, GbChannelCameras
from surveillance.services.gb_catalog import GbCatalogSync

log = logging.getLogger(__name__)

MAX_FAILURES = 5  # failed REGISTERs from one address within FAILURE_WINDOW_S ...
FAILURE_WINDOW_S = 60.0
BLOCK_S = 60.0  # ... refuse it (403) for this long
MAX_ADDRESSES = 10_000  # addresses remembered at once; the oldest are forgotten
CHECK_EVERY_S = 1.0
NEVER_REGISTERED = NOT_REGISTERED
UNREGISTERED = "platform unregistered"
EXPIRED = "platform offline: its registration expired"


class RegisterFailures:
    """Failed REGISTERs (unknown id, wrong password) per source address (time passed in)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = FAILURE_WINDOW_S,
        block_s: float = BLOCK_S,
    ) -> None:
        self._max = max_failures
        self._window_s = window_s
        self._block_s = block_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked_until: OrderedDict[str, float] = OrderedDict()
        self.refused = 0  # REGISTERs refused because their address was blocked

    def blocked(self, host: str, now: float) -> bool:
        until = self._blocked_until.get(host)
        if until is None:
            return False
        if now < until:
            return True
        del self._blocked_until[host]
        return False

    def failed(self, host: str, now: float) -> bool:
        """Count a failure; True when the address is blocked from now on."""
        times = self._failures.pop(host, None) or deque(maxlen=self._max)
        times.append(now)
        while times and now - times[0] > self._window_s:
            times.popleft()
        self._failures[host] = times
        _bound(self._failures)
        if len(times) >= self._max:
            del self._failures[host]
            self._blocked_until[host] = now + self._block_s
            _bound(self._blocked_until)
            return True
        return False

    def succeeded(self, host: str) -> None:
        self._failures.pop(host, None)


def _bound(entries: OrderedDict[str, Any]) -> None:
    while len(entries) > MAX_ADDRESSES:
        entries.popitem(last=False)


@dataclass(frozen=True)
class GbPlatformStatus:
    platform_id: str
    name: str
    device_id: str
    online: bool
    host: str | None
    port: int | None
    transport: str | None  # SIP transport: "udp" | "tcp"
    registered_at: float | None
    expires_at: float | None
    last_keepalive_at: float | None
    channels: int
    channels_online: int
    streams: int  # channel streams being played now
    reason: str | None  # why it is not online


@dataclass
class _Presence:
    peer: Peer
    registered_at: float
    expires_at: float
    last_heard: float
    last_keepalive_at: float | None
    reason: str | None = None  # None: online


def offline_reason(timeout_s: float) -> str:
    return f"platform offline: no keepalive for {timeout_s:.0f} s"


class GbPresence:
    """Each platform's registration and keepalives, and what follows from them: its channel
    cameras reachable or not (with the reason), its catalog read when it comes (back)."""

    def __init__(
        self,
        config: Gb28181Config,
        cameras: GbChannelCameras,
        catalog: GbCatalogSync,
        store: GbStore,
        clock: Callable[[], float],
    ) -> None:
        self._config = config
        self._cameras = cameras
        self._catalog = catalog
        self._store = store
        self._clock = clock
        self._presence: dict[str, _Presence] = {}
        cameras.still_registered = self._restore

    def timeout_s(self) -> float:
        """GB/T 28181-2016 s.9.6.2: offline after this many keepalive intervals unheard."""
        return self._config.keepalive_missed * self._config.keepalive_interval_s

    def peer(self, platform_id: str) -> Peer | None:
        """Where a registered, online platform is; None otherwise."""
        presence = self._presence.get(platform_id)
        return presence.peer if presence is not None and presence.reason is None else None

    def where(self, platform_id: str) -> str:
        """The platform and its last address, for log lines: "city (192.0.2.7:5060/udp)"."""
        presence = self._presence.get(platform_id)
        if presence is None:
            return f"{platform_id} (never registered)"
        peer = presence.peer
        return f"{platform_id} ({peer.host}:{peer.port}/{peer.transport})"

    def is_registered(self, platform_id: str) -> bool:
        presence = self._presence.get(platform_id)
        return presence is not None and presence.expires_at > self._clock()

    def _restore(self, records: Sequence[GbPlatformRecord]) -> list[str]:
        """At start: the stored registrations still valid are taken over as they were.

        A platform registered before our restart does not register again until its
        registration expires (GB/T 28181-2016 s.9.1.2): it keeps sending keepalives to
        the same address. So it is online, pending its next keepalive: heard of "now",
        offline only after ``keepalive_missed`` intervals without one, as always.
        Returns the platforms taken over."""
        now = self._clock()
        by_id = {p.id: p for p in self._config.platforms}
        restored = []
        for record in records:
            platform = by_id.get(record.platform_id)
            if (
                platform is None
                or platform.device_id != record.device_id  # the configuration changed it
                or record.expires_at is None
                or record.expires_at <= now
                or record.platform_id in self._presence
                # Over TCP the platform's connection ended with our process: it connects
                # and registers again (a device does when its connection drops); until
                # then there is no way to reach it, so nothing is taken over.
                or record.transport == "tcp"
            ):
                continue
            peer = Peer(record.host, record.port, record.transport)
            registered_at = record.registered_at if record.registered_at is not None else now
            self._presence[platform.id] = _Presence(
                peer, registered_at, record.expires_at, now, record.last_keepalive_at
            )
            # Read its catalog again (it may have changed while we were down) and subscribe.
            self._catalog.platform_online(platform.id, platform.device_id)
            log.info(
                "GB platform %s (%s:%d over %s) registered until %s before the restart: "
                "online, pending its next keepalive",
                platform.id, peer.host, peer.port, peer.transport,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.expires_at)),
            )  # fmt: skip
            restored.append(platform.id)
        return restored

    async def registered(
        self, platform: GbPlatformConfig, peer: Peer, expires: int, agent: str | None
    ) -> None:
        now = self._clock()
        old = self._presence.get(platform.id)
        moved = old is not None and (old.peer.host, old.peer.port) != (peer.host, peer.port)
        keepalive_at = old.last_keepalive_at if old else None
        self._presence[platform.id] = _Presence(peer, now, now + expires, now, keepalive_at)
        registration = GbRegistration(
            platform.id, platform.device_id, peer.host, peer.port, peer.transport,
            now, now + expires, agent,
        )  # fmt: skip
        await asyncio.to_thread(self._store.record_registration, registration)
        if old is None or old.reason is not None or moved:
            was = f"; it was at {old.peer.host}:{old.peer.port}" if moved and old else ""
            log.info(
                "GB platform %s registered from %s:%d over %s for %d s%s",
                platform.id, peer.host, peer.port, peer.transport, expires, was,
            )  # fmt: skip
            self._online(platform)

    async def unregistered(self, platform: GbPlatformConfig, peer: Peer) -> None:
        now = self._clock()
        presence = self._presence.get(platform.id)
        if presence is not None:
            presence.expires_at = now
            presence.reason = UNREGISTERED
        await asyncio.to_thread(self._store.record_unregistered, platform.id, now)
        log.info("GB platform %s (%s:%d) unregistered", platform.id, peer.host, peer.port)
        self._offline(platform.id, UNREGISTERED)

    def keepalive(self, platform: GbPlatformConfig, peer: Peer) -> float | None:
        """A Keepalive heard now (taken at once: a queue of catalog work must not make a
        live platform look silent); the time to store, None if it is not registered."""
        presence = self._presence.get(platform.id)
        if presence is None:
            return None
        now = self._clock()
        presence.last_heard = presence.last_keepalive_at = now
        if presence.reason is not None and presence.expires_at > now:
            log.info("GB platform %s (%s:%d) back: keepalive", platform.id, peer.host, peer.port)
            self._online(platform)
        return now

    async def store_keepalive(self, platform_id: str, at: float) -> None:
        await asyncio.to_thread(self._store.record_keepalive, platform_id, at)

    async def watch(self) -> None:
        """Marks platforms offline whose registration expired or keepalives stopped."""
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            now = self._clock()
            timeout = self.timeout_s()
            for platform_id, presence in self._presence.items():
                if presence.reason is not None:
                    continue
                if now >= presence.expires_at:
                    reason = EXPIRED
                elif now - presence.last_heard >= timeout:
                    reason = offline_reason(timeout)
                else:
                    continue
                log.warning(
                    "GB platform %s (%s:%d): %s",
                    platform_id, presence.peer.host, presence.peer.port, reason,
                )  # fmt: skip
                try:
                    self._offline(platform_id, reason)
                except Exception:  # the others are still watched
                    log.exception("GB platform %s: marking it offline failed", platform_id)

    def _online(self, platform: GbPlatformConfig) -> None:
        self._presence[platform.id].reason = None
        self._cameras.set_platform_reason(platform.id, None)
        self._catalog.platform_online(platform.id, platform.device_id)

    def _offline(self, platform_id: str, reason: str) -> None:
        presence = self._presence.get(platform_id)
        if presence is not None:
            presence.reason = reason
        self._cameras.set_platform_reason(platform_id, reason)
        self._catalog.platform_offline(platform_id)

    def status(self, playing: dict[str, int]) -> list[GbPlatformStatus]:
        """Every configured platform; ``playing``: streams being played, by platform."""
        result = []
        for platform in self._config.platforms:
            presence = self._presence.get(platform.id)
            channels, channels_online = self._cameras.counts(platform.id)
            reason = presence.reason if presence else NEVER_REGISTERED
            result.append(
                GbPlatformStatus(
                    platform_id=platform.id,
                    name=platform.name,
                    device_id=platform.device_id,
                    online=presence is not None and reason is None,
                    host=presence.peer.host if presence else None,
                    port=presence.peer.port if presence else None,
                    transport=presence.peer.transport if presence else None,
                    registered_at=presence.registered_at if presence else None,
                    expires_at=presence.expires_at if presence else None,
                    last_keepalive_at=presence.last_keepalive_at if presence else None,
                    channels=channels,
                    channels_online=channels_online,
                    streams=playing.get(platform.id, 0),
                    reason=reason,
                )
            )
        return result
