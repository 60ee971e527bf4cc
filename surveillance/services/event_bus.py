"""EventBus: where every part of the node raises, ends and changes events, and pages follow them.

Health alarms, diagnosis, zone motion (and later device alarms) raise events from their own
threads or the loop; operators acknowledge and close them through the API. Every write is
a short synchronous transaction in the caller's thread (so a thread never waits on the
event loop), after which the change is handed to the loop with ``call_soon_threadsafe``
for the pages' event streams, and given to the listeners (metrics, cases) in the writer's
thread. The store (events/store.py) holds the state rules.

At start, events a stopped node left active (a crash, a power cut; in cluster mode, this
node's own) are ended at that node's last heartbeat (the newest ``node.running``
sighting), with ``{"ended_by": "node restart"}``: no ghost alarm stays active for a
condition nobody watches any more. Before that, the events of a camera (or platform) the
configuration no longer has are ended and closed by the node (``closed_by`` "node",
``{"ended_by": "camera removed from the configuration"}``): nobody could act on them, and
they stay in history. Then, hourly, events
older than ``events.retain_days`` are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence

from surveillance.auth.audit import AuditAction, AuditEntry, AuditLog
from surveillance.catalog import Catalog
from surveillance.config.models import EventsConfig
from surveillance.events.records import (
    EventFilter,
    EventPage,
    EventPicture,
    EventRecord,
    EventSpec,
    EventType,
    Severity,
)
from surveillance.events.store import EventStore
from surveillance.services.feeds import Feed, Feeds

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0  # retention of old events runs this often
DAY_S = 86400.0
RESTART_DETAIL = {"ended_by": "node restart"}
REMOVED_DETAIL = {"ended_by": "camera removed from the configuration"}
TAKEN_OVER = "node {node} stopped"  # ended_by of a dead node's events of cameras taken over
# Who closes (and the audit log names for) what the node closes itself: no user did it.
NODE_ACTOR = "node"

Listener = Callable[[EventRecord], None]


class EventBus:
    def __init__(
        self,
        store: EventStore,
        catalog: Catalog,
        config: EventsConfig,
        audit: AuditLog,
        streams_per_user: int = 8,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._config = config
        self._audit = audit
        self._feeds: Feeds[int] = Feeds(streams_per_user, "event streams")
        self._listeners: list[Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prune_task: asyncio.Task[None] | None = None
        self._counts_lock = threading.Lock()
        self._raised: Counter[str] = Counter()  # new events per type since the node started

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """End what a stopped node left active, then prune hourly. Run before anything
        raises events (health alarms, diagnosis, the node's own up-time)."""
        self._loop = asyncio.get_running_loop()
        ended = await asyncio.to_thread(self._end_leftovers)
        if ended:
            log.info("events: %d left active by the previous run ended", len(ended))
        self._prune_task = asyncio.create_task(self._prune_forever(), name="events-prune")

    def stop(self) -> None:
        if self._prune_task is not None:
            self._prune_task.cancel()
            self._prune_task = None
        self._loop = None

    def _end_leftovers(self) -> list[EventRecord]:
        heartbeat = self._store.latest_seen(EventType.NODE_RUNNING)
        # Events of a camera (or platform) the configuration no longer has: no page could
        # acknowledge, close or play them, and no watcher will end them. Ended and closed by
        # the node before the crash leftovers, so their detail says why.
        cameras = self._catalog.cameras
        platforms = set(self._catalog.platforms) | {c.platform_id for c in cameras.values()}
        removed = self._store.close_removed(
            cameras.keys(), platforms, heartbeat or 0.0, REMOVED_DETAIL, NODE_ACTOR, time.time()
        )
        for record in removed:
            self._audited(
                NODE_ACTOR, AuditAction.EVENTS_CLOSE, record, "", REMOVED_DETAIL["ended_by"]
            )
            self._changed(record)
        if removed:
            log.info("events: %d of removed cameras or platforms closed", len(removed))
        # Without a heartbeat, each event ends at its own last sighting.
        ended = self._store.end_leftovers(heartbeat or 0.0, RESTART_DETAIL)
        for record in ended:
            self._changed(record)
        return ended

    async def _prune_forever(self) -> None:
        while True:
            cutoff = time.time() - self._config.retain_days * DAY_S
            try:
                removed = await asyncio.to_thread(self._store.prune, cutoff)
            except Exception:  # a failed pass is retried next hour, never ends the loop
                log.exception("events: retention pass failed")
            else:
                if removed:
                    log.info(
                        "events: %d older than %g days removed", removed, self._config.retain_days
                    )
            await asyncio.sleep(PRUNE_EVERY_S)

    # -- writes (any thread) --------------------------------------------------------------
    def raise_event(
        self, spec: EventSpec, snapshot: EventPicture | None = None, *, parent_id: int | None = None
    ) -> EventRecord:
        """The condition's event: new, or its active one updated. ``parent_id``: the
        platform event a camera event is folded under (health alarms' storms)."""
        at = time.time() if spec.at is None else spec.at
        camera = self._catalog.camera(spec.camera_id) if spec.camera_id else None
        if camera is not None and spec.platform_id is None:
            # Platform roll-ups (storms, availability) find a camera's events by platform.
            spec = dataclasses.replace(spec, platform_id=camera.platform_id)
        record, created = self._store.raise_event(spec, at, snapshot, parent_id)
        if created:
            with self._counts_lock:
                self._raised[record.type] += 1
        self._changed(record)
        return record

    def end_event(self, key: str, at: float | None = None) -> EventRecord | None:
        """End the key's active event, if there is one."""
        record = self._store.end_event(key, time.time() if at is None else at)
        if record is not None:
            self._changed(record)
        return record

    def end_node_events(self, node_id: str, camera_ids: Sequence[str]) -> list[EventRecord]:
        """Cluster mode: cameras taken over from ``node_id``, which is not live: its active
        events of them end (at their last sighting), ``ended_by`` saying so."""
        detail = {"ended_by": TAKEN_OVER.format(node=node_id)}
        records = self._store.end_node_events(node_id, camera_ids, time.time(), detail)
        for record in records:
            self._changed(record)
        return records

    def acknowledge(
        self, event_id: int, user: str, note: str | None, *, client: str = ""
    ) -> EventRecord:
        """Audited (events.ack). EventNotFound, or EventStateConflict for an event that
        is not open."""
        record = self._store.acknowledge(event_id, user, note, time.time())
        self._audited(user, AuditAction.EVENTS_ACK, record, client, note)
        self._changed(record)
        return record

    def close(self, event_id: int, user: str, note: str | None, *, client: str = "") -> EventRecord:
        """Audited (events.close). EventStateConflict for a closed event."""
        record = self._store.close(event_id, user, note, time.time())
        self._audited(user, AuditAction.EVENTS_CLOSE, record, client, note)
        self._changed(record)
        return record

    def link_case(self, event_id: int, case_number: str, user: str) -> EventRecord:
        """Tie the event to the case made from it (the caller audits events.case).
        EventStateConflict, naming the case, when it is linked already."""
        record = self._store.link_case(event_id, case_number, time.time())
        self._changed(record)
        return record

    # -- reads (any thread) ---------------------------------------------------------------
    def get(self, event_id: int) -> EventRecord:
        """EventNotFound when there is no such event."""
        return self._store.get(event_id)

    def get_many(self, event_ids: Collection[int]) -> list[EventRecord]:
        """Those that still exist (retention may have removed some), by id."""
        return self._store.get_many(event_ids)

    def search(self, query: EventFilter) -> EventPage:
        return self._store.search(query)

    def snapshot(self, event_id: int) -> EventPicture | None:
        return self._store.snapshot(event_id)

    def open_counts(self) -> dict[Severity, int]:
        return self._store.open_counts()

    def raised_counts(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._raised)

    # -- followers (the loop) -------------------------------------------------------------
    def subscribe(self, user_id: int) -> Feed[int]:
        """A page's feed of changed event ids; TooManyEventStreams past the user's limit."""
        return self._feeds.subscribe(user_id)

    def unsubscribe(self, feed: Feed[int]) -> None:
        self._feeds.unsubscribe(feed)

    def changed_elsewhere(self, event_id: int) -> None:
        """Another node changed the event (cluster mode, services/remote_events.py): this
        node's followers read it as if it changed here. The loop only."""
        self._feeds.push(event_id)

    def refresh_followers(self, user_id: int | None = None) -> None:
        """The followers of ``user_id`` (None: all) look their credential up and send a
        fresh snapshot now (services/session_revocation.py). The loop only."""
        self._feeds.refresh(user_id)

    def add_listener(self, listener: Listener) -> None:
        """``listener(record)`` after every change, in the writer's thread: it must be quick
        and must not raise events itself."""
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self._feeds)

    # -- inside ---------------------------------------------------------------------------
    def _changed(self, record: EventRecord) -> None:
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:  # one broken listener must not lose the others' news
                log.exception("events: listener failed on event %d", record.id)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self._feeds.push, record.id)

    def _audited(
        self, user: str, action: AuditAction, record: EventRecord, client: str, note: str | None
    ) -> None:
        detail: dict[str, object] = {"event": record.id, "type": record.type}
        if note:
            detail["note"] = note
        self._audit.record(
            AuditEntry(
                user=user, action=action, camera_id=record.camera_id, client=client, detail=detail
            )
        )
