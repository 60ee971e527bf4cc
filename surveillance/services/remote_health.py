"""Camera health across the nodes of a cluster: each camera's owner publishes it, the other
nodes show it.

A camera is read by one node only (its lease, services/camera_ownership.py); every other
node must still show its health on the wall and in ``/api/cameras``. So:

- the owner's :class:`HealthPublisher` collects the cameras whose health changed (the
  ingest's health listeners, any thread), and once every ``PUBLISH_EVERY_S`` writes those it
  holds into ``camera_status`` (one upsert per lease generation) and NOTIFYs them on
  ``surveillance_health`` with their status inline (split to fit the payload limit); every
  ``REFRESH_EVERY_S`` it republishes all it holds, so figures (fps, bitrate) that change
  without a state change do not stay old elsewhere for long. A write that fails (the database
  is restarting) leaves the cameras to publish for the next pass.
- every node's :class:`RemoteHealth` keeps the newest status of each camera from the table
  (read at each (re)connection of the notifier: the first, and after a database restart,
  when notifications were lost) and from notifications, and answers the ingest's
  ``remote(camera_id, sub)`` with it while the status comes from the camera's current owner
  (a status left by a node that lost the camera is not shown). Each change calls
  ``ingest.notify_health(camera_id)``, so pages following ``/api/cameras/events`` on any node
  see it.
- a status ages: the owner republishes every camera it holds every ``REFRESH_EVERY_S``, so
  when nothing came from it for ``STALE_AFTER_S`` (three of those) its last word is no
  longer shown as the camera's state. The camera is shown offline, with the reason "no
  status from node X for N s" and its last live packet's real age: what the node does not
  know it does not claim (the owner may be paused, cut off from the database, or its
  notifications lost). A new word from the owner (or from a new owner) shows again at once.

The status is JSON: ``{"main": <wire>, "sub": <wire> | null, "device": <device wire>,
"at": owner's time.time()}`` (services/health_wire.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from surveillance.errors import SurveillanceError
from surveillance.media.health import ErrorKind, HealthSnapshot, StreamState
from surveillance.services.cluster_notify import (
    HEALTH_CHANNEL,
    Notifier,
    PayloadTooLarge,
    split_payloads,
)
from surveillance.services.device_health import NO_DEVICE, DeviceHealth
from surveillance.services.health_wire import device_from_wire, device_to_wire, from_wire, to_wire
from surveillance.services.ingest import IngestService

log = logging.getLogger(__name__)

PUBLISH_EVERY_S = 1.0  # an owner's changed cameras are published at most this often
WATCH_EVERY_S = 0.5  # how often staleness and changes of hands are looked for
REFRESH_EVERY_S = 30.0  # and all it holds this often, for the figures
MAX_CAMERA_ID = 256  # a longer id in a notification is not one of ours
# Three republications missed: one lost notification or a slow pass is no reason to doubt.
STALE_AFTER_S = 3 * REFRESH_EVERY_S


class StatusStore(Protocol):
    """ClusterStore's camera_status part (surveillance/cluster/store.py)."""

    def publish_status(
        self, node_id: str, generation: int, statuses: Mapping[str, str]
    ) -> None: ...

    def statuses(self) -> dict[str, tuple[str, str]]: ...


class Token(Protocol):
    """ClusterStore's LeaseToken: who holds a camera's lease, and which generation."""

    @property
    def node_id(self) -> str: ...

    @property
    def generation(self) -> int: ...


@dataclass(frozen=True)
class RemoteStatus:
    node_id: str  # who published it
    at: float  # its publication, the owner's clock
    main: HealthSnapshot
    sub: HealthSnapshot | None
    device: DeviceHealth = NO_DEVICE  # its clock and events, as the owner measured them
    # When this node last heard it (time.monotonic()); not part of the word itself, so a
    # table read of a status already known changes nothing.
    heard_at: float = field(default_factory=time.monotonic, compare=False)


def status_json(
    main: HealthSnapshot, sub: HealthSnapshot | None, at: float, device: DeviceHealth = NO_DEVICE
) -> dict[str, Any]:
    return {
        "main": to_wire(main),
        "sub": None if sub is None else to_wire(sub),
        "device": device_to_wire(device),
        "at": at,
    }


def read_status(node_id: str, status: Any, heard_at: float | None = None) -> RemoteStatus:
    """ValueError when the status does not read. ``heard_at``: when it was heard (monotonic;
    now if None)."""
    if not isinstance(status, dict):
        raise ValueError("a camera status is a JSON object")
    at, sub = status.get("at"), status.get("sub")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise ValueError("a camera status needs its time")
    if not isinstance(status.get("main"), dict) or not (sub is None or isinstance(sub, dict)):
        raise ValueError("a camera status needs its main stream's health")
    return RemoteStatus(
        node_id,
        float(at),
        from_wire(status["main"]),
        None if sub is None else from_wire(sub),
        device_from_wire(status.get("device")),
        time.monotonic() if heard_at is None else heard_at,
    )


def unheard(snapshot: HealthSnapshot, node_id: str, silent_s: float) -> HealthSnapshot:
    """``snapshot``, the last word of ``node_id`` heard ``silent_s`` ago, as shown once it is
    too old to vouch for the stream: offline (the node cannot say the camera works), why,
    and the last packet's age counted to now; the owner's figures of then are dropped."""
    now = time.time()
    last_live_at = snapshot.last_live_at
    return dataclasses.replace(
        snapshot,
        state=StreamState.OFFLINE,
        state_since=now - silent_s,
        last_packet_age_s=None if last_live_at is None else max(0.0, now - last_live_at),
        retry_at=None,
        attempting=False,
        fps=None,
        bitrate_kbps=None,
        last_error=f"no status from node {node_id} for {int(silent_s)} s "
        f"(it sends one every {int(REFRESH_EVERY_S)} s): the camera's state is unknown",
        last_error_kind=ErrorKind.OTHER,
        last_error_at=now,
    )


class RemoteHealth:
    """The health other nodes publish of their cameras, as this node shows it."""

    def __init__(
        self,
        store: StatusStore,
        notifier: Notifier,
        ingest: IngestService,
        owner: Callable[[str], str | None],
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self.stale_after_s = stale_after_s  # a word older than this is not shown as the state
        self._store = store
        self._ingest = ingest
        self._owner = owner
        self._node_id = notifier.node_id
        self._statuses: dict[str, RemoteStatus] = {}  # replaced whole: read by any thread
        self._reload: asyncio.Task[None] | None = None
        self._reload_again = False
        self._ageing: asyncio.Task[None] | None = None
        self.reloads = 0  # full reads of the table so far (tests, diagnostics)
        notifier.on(HEALTH_CHANNEL, self._notified)
        notifier.on_resync(self.resync)

    def health(self, camera_id: str, sub: bool) -> HealthSnapshot | None:
        """The ingest's ``remote``: the owner's word on the stream, if the status there is
        comes from the camera's current owner (any thread)."""
        status = self._statuses.get(camera_id)
        if status is None or status.node_id == self._node_id:
            return None
        if self._owner(camera_id) != status.node_id:
            return None  # left by a node that lost the camera; the new one has not spoken
        snapshot = status.sub if sub else status.main
        silent_s = time.monotonic() - status.heard_at
        if snapshot is None or silent_s <= self.stale_after_s:
            return snapshot
        return unheard(snapshot, status.node_id, silent_s)

    def device(self, camera_id: str) -> DeviceHealth:
        """The owner's word on the camera's device (clock, events), while its status is
        current (any thread); nothing known otherwise."""
        status = self._statuses.get(camera_id)
        if status is None or status.node_id == self._node_id:
            return NO_DEVICE
        if self._owner(camera_id) != status.node_id:
            return NO_DEVICE
        if time.monotonic() - status.heard_at > self.stale_after_s:
            return NO_DEVICE  # too old to vouch for: what the node does not know it does not claim
        return status.device

    async def stop(self) -> None:
        for task in (self._reload, self._ageing):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- ageing ---------------------------------------------------------------------------
    async def _age_forever(self) -> None:
        """Tells the health followers when what ``health`` shows of a camera changed without
        a new word: its status turned too old, or this node learnt that the camera changed
        hands (a failover: the new owner's first word may have come before this node read
        the new lease; shown from then on, not at the owner's next republication)."""
        stale: set[str] = set()
        owners: dict[str, str | None] = {}
        while True:
            await asyncio.sleep(WATCH_EVERY_S)
            now = time.monotonic()
            statuses = self._statuses
            now_stale = {
                camera_id
                for camera_id, status in statuses.items()
                if now - status.heard_at > self.stale_after_s
            }
            now_owners = {camera_id: self._owner(camera_id) for camera_id in statuses}
            moved = {c for c, owner in now_owners.items() if owners.get(c, owner) != owner}
            for camera_id in (now_stale - stale) | moved:
                self._ingest.notify_health(camera_id)
            stale, owners = now_stale, now_owners

    # -- the table ------------------------------------------------------------------------
    def resync(self) -> None:
        """Read the whole table again (the loop; at each connection of the notifier)."""
        if self._ageing is None:  # the loop's first call: statuses come from here on
            self._ageing = asyncio.get_running_loop().create_task(
                self._age_forever(), name="remote-health-ageing"
            )
        if self._reload is not None and not self._reload.done():
            self._reload_again = True  # the read under way may have started too early
            return
        self._reload = asyncio.get_running_loop().create_task(
            self._reload_table(), name="remote-health-reload"
        )

    async def _reload_table(self) -> None:
        while True:
            self._reload_again = False
            try:
                rows = await asyncio.to_thread(self._store.statuses)
            except Exception as error:  # the notifier calls again when it reconnects
                log.warning("remote health: reading camera_status failed: %s", type(error).__name__)
                return
            self.reloads += 1
            fresh: dict[str, RemoteStatus] = {}
            wall_now, now = time.time(), time.monotonic()
            for camera_id, (node_id, text) in rows.items():
                with contextlib.suppress(ValueError, RecursionError):
                    status = json.loads(text)
                    # Heard when the owner wrote it (by its clock; never in our future): a
                    # row a node left long ago is not news because we read it now.
                    at = status.get("at") if isinstance(status, dict) else None
                    age = wall_now - at if isinstance(at, int | float) else 0.0
                    heard_at = now - min(max(0.0, age), 10 * self.stale_after_s)
                    fresh[camera_id] = read_status(node_id, status, heard_at)
            self._merge(fresh)
            if not self._reload_again:
                return

    # -- notifications --------------------------------------------------------------------
    def _notified(self, payload: dict[str, Any]) -> None:
        node_id = payload["node"]
        statuses = payload.get("statuses")
        if isinstance(statuses, dict):
            fresh: dict[str, RemoteStatus] = {}
            for camera_id, status in statuses.items():
                with contextlib.suppress(ValueError):
                    fresh[camera_id] = read_status(node_id, status)
            self._merge(fresh)
        elif isinstance(payload.get("cameras"), list):
            self.resync()  # a status too large to travel inline: it is in the table

    def _merge(self, fresh: Mapping[str, RemoteStatus]) -> None:
        known = self._ingest.catalog.cameras  # only cameras of ours: bounded memory
        merged = dict(self._statuses)
        changed = []
        for camera_id, status in fresh.items():
            if len(camera_id) > MAX_CAMERA_ID or camera_id not in known:
                continue
            old = merged.get(camera_id)
            if old is not None and old.node_id == status.node_id and old.at > status.at:
                continue  # an older word of the same owner (a table read racing a notice)
            if old != status:
                merged[camera_id] = status
                changed.append(camera_id)
        self._statuses = merged
        for camera_id in changed:
            self._ingest.notify_health(camera_id)


class HealthPublisher:
    """The owner's side: the cameras it holds whose health changed, published every
    PUBLISH_EVERY_S."""

    def __init__(
        self,
        store: StatusStore,
        notifier: Notifier,
        ingest: IngestService,
        token: Callable[[str], Token],
        every_s: float = PUBLISH_EVERY_S,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._ingest = ingest
        self._token = token
        self._every_s = every_s
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.published = 0  # camera statuses written so far
        ingest.add_health_listener(self._health_changed)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._publish_forever(), name="health-publish")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _health_changed(self, camera_id: str) -> None:
        """An ingest health listener: any thread, returns at once."""
        with self._lock:
            self._changed.add(camera_id)

    async def _publish_forever(self) -> None:
        refresh_at = time.monotonic() + REFRESH_EVERY_S
        while True:
            await asyncio.sleep(self._every_s)
            if time.monotonic() >= refresh_at:
                refresh_at = time.monotonic() + REFRESH_EVERY_S
                with self._lock:
                    self._changed.update(camera_id for camera_id, _ in self._ingest.streams())
            try:
                await self.publish_now()
            except Exception:  # never ends the loop; the cameras wait for the next pass
                log.exception("remote health: publishing failed")

    async def publish_now(self) -> None:
        """Publish the held cameras changed since the last pass."""
        with self._lock:
            cameras, self._changed = self._changed, set()
        by_generation: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        inline: dict[str, Any] = {}
        now = time.time()
        for camera_id in cameras:
            if not self._ingest.holds(camera_id):
                continue
            try:
                token = self._token(camera_id)
                health = self._ingest.camera_health(camera_id)
            except SurveillanceError:  # lost meanwhile, pinned (never leased), or removed
                continue
            status = status_json(health.main, health.sub, now, health.device)
            by_generation[(token.node_id, token.generation)][camera_id] = json.dumps(status)
            inline[camera_id] = status
        if not inline:
            return
        try:
            await asyncio.to_thread(self._write, by_generation)
        except Exception as error:
            with self._lock:
                self._changed.update(inline)
            log.warning("remote health: writing camera_status failed (%s); retrying",
                        type(error).__name__)  # fmt: skip
            return
        self.published += len(inline)
        self._announce(inline)

    def _write(self, by_generation: Mapping[tuple[str, int], Mapping[str, str]]) -> None:
        for (node_id, generation), statuses in by_generation.items():
            self._store.publish_status(node_id, generation, statuses)

    def _announce(self, statuses: dict[str, Any]) -> None:
        try:
            payloads = split_payloads({}, "statuses", statuses)
        except PayloadTooLarge:  # one status too large to travel: the others read the table
            payloads = split_payloads({}, "cameras", sorted(statuses))
        for payload in payloads:
            self._notifier.notify(HEALTH_CHANNEL, payload)
