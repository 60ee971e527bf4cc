"""Notifier: what one node must tell the others at once, over PostgreSQL LISTEN/NOTIFY.

The nodes of a cluster share one database; a change that other nodes must see at once (an
event raised, a camera's health, a session revoked) is sent as a NOTIFY on one of
``CHANNELS`` with a small JSON payload. Each node keeps one connection in a thread doing
LISTEN on every channel, and hands each notification to the handlers registered for its
channel on the event loop (``call_soon_threadsafe``). Notifications a node sent itself
come back to it too (it listens on the channels it sends on): the payload names the
sending node (``"node"``) and those are ignored.

Sending never waits for the database: ``notify`` queues the payload (bounded) and a second
thread with its own connection sends it (several per transaction when they pile up). While
the database is down the queue holds what was sent and it goes out when it is back.

Notifications are not stored: those sent while a listener was disconnected (a database
restart, a network fault) are lost to it. So the listener reconnects with backoff and,
after every connection (the first too: anything sent before it listened is lost as well),
calls the "resync" callbacks, which reload what they keep from the tables.

PostgreSQL docs, NOTIFY: "the payload must be shorter than 8000 bytes" in the default
configuration; ``notify`` refuses a payload of ``MAX_PAYLOAD_BYTES`` or more with
:class:`PayloadTooLarge`, and :func:`split_payloads` packs many items into payloads that fit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from surveillance.media.backoff import Backoff

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "surveillance_events"  # {"id": event id}: an event was raised or changed
HEALTH_CHANNEL = "surveillance_health"  # {"statuses": {camera: status}} or {"cameras": [...]}
SESSIONS_CHANNEL = "surveillance_sessions"  # {"user": id} / {"session": hash} / {"token": id}
CHANNELS = (EVENTS_CHANNEL, HEALTH_CHANNEL, SESSIONS_CHANNEL)

MAX_PAYLOAD_BYTES = 7900  # PostgreSQL's limit is 8000 bytes; room for the "node" field
MAX_QUEUED = 10_000  # payloads waiting to be sent; the oldest give way beyond
SEND_BATCH = 200  # payloads sent in one transaction at most
RECEIVE_WAIT_S = 0.5  # the listener looks at its stop flag this often
LIVENESS_CHECK_S = 10.0  # a quiet listening connection is checked with a query this often
STOP_JOIN_S = 3.0  # how long stop() waits for the threads
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 10.0
CONNECT_TIMEOUT_S = 5
# A connection whose peer vanished (no FIN: a partition) is noticed by TCP, not by a read
# that waits forever: keepalives, and tcp_user_timeout for data sent but not acknowledged.
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 15_000,  # ms
    "application_name": "surveillance-notify",
}
BAD_PAYLOAD_LOG_EVERY_S = 60.0  # a flood of malformed notifications logs once a minute

Handler = Callable[[dict[str, Any]], None]  # runs on the event loop


class PayloadTooLarge(ValueError):
    """A notification's JSON would not fit PostgreSQL's NOTIFY payload."""


def libpq_conninfo(url: str) -> str:
    """A libpq connection string from the database URL (SQLAlchemy's
    ``postgresql+psycopg://`` form or libpq's own)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError("cluster notifications need a PostgreSQL database")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def encoded(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def split_payloads(
    base: Mapping[str, Any], key: str, items: Sequence[Any] | Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``base`` with ``items`` (a list, or a mapping) under ``key``, as few payloads as fit
    under MAX_PAYLOAD_BYTES each (with a sending node's name added). An item too large to
    fit alone raises PayloadTooLarge."""
    room = MAX_PAYLOAD_BYTES - len(encoded({**base, key: [], "node": "x" * 64}).encode())
    entries = list(items.items()) if isinstance(items, Mapping) else list(items)
    batches: list[list[Any]] = []
    used = room + 1
    for entry in entries:
        size = len(encoded(dict([entry]) if isinstance(items, Mapping) else [entry]).encode()) + 1
        if size > room:
            raise PayloadTooLarge(f"one item of {key!r} takes {size} bytes, over {room}")
        if used + size > room:
            batches.append([])
            used = 2
        batches[-1].append(entry)
        used += size
    if isinstance(items, Mapping):
        return [{**base, key: dict(batch)} for batch in batches]
    return [{**base, key: batch} for batch in batches]


class Notifier:
    """One node's side of the channels: ``on`` / ``on_resync`` before ``start``."""

    def __init__(self, url: str, node_id: str) -> None:
        self.node_id = node_id
        self._conninfo = libpq_conninfo(url)
        parsed = make_url(url)
        # For log lines: where, never who or with which password.
        self._where = f"{parsed.host or 'local socket'}:{parsed.port or 5432}/{parsed.database}"
        self._handlers: dict[str, list[Handler]] = {channel: [] for channel in CHANNELS}
        self._resyncs: list[Callable[[], None]] = []
        self._queue: deque[tuple[str, str]] = deque()
        self._queue_changed = threading.Condition()
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []
        self.listening = threading.Event()  # LISTEN holds on a live connection now
        self.connections = 0  # listening connections made so far (1 + reconnections)
        self.dropped = 0  # payloads that gave way in a full queue
        self._bad_logged_at = -BAD_PAYLOAD_LOG_EVERY_S
        self._bad_since_logged = 0
        self.malformed = 0  # notifications dropped as malformed so far (tests, diagnostics)
        self._refused_lock = threading.Lock()

    # -- wiring (before start) -------------------------------------------------------------
    def on(self, channel: str, handler: Handler) -> None:
        """``handler(payload)`` on the event loop for each notification another node sends
        on ``channel``. The payload is a JSON object from the database: check its fields."""
        if channel not in self._handlers:
            raise ValueError(f"unknown channel {channel!r}")
        self._handlers[channel].append(handler)

    def on_resync(self, callback: Callable[[], None]) -> None:
        """``callback()`` on the event loop after each (re)connection of the listener: what
        was sent meanwhile is lost, reload it from the tables."""
        self._resyncs.append(callback)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._listen_forever, name="notify-listen", daemon=True),
            threading.Thread(target=self._send_forever, name="notify-send", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    async def stop(self) -> None:
        """Sends what is queued (briefly), then closes both connections."""
        self._stopping.set()
        with self._queue_changed:
            self._queue_changed.notify_all()
        threads, self._threads = self._threads, []
        deadline = time.monotonic() + STOP_JOIN_S
        for thread in threads:
            await asyncio.to_thread(thread.join, max(0.0, deadline - time.monotonic()))
        self._loop = None

    # -- sending (any thread) -------------------------------------------------------------
    def notify(self, channel: str, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` (a JSON object; "node" is added) for the other nodes. Never
        waits for the database. PayloadTooLarge when its JSON would not fit."""
        if channel not in self._handlers:
            raise ValueError(f"unknown channel {channel!r}")
        text = encoded({**payload, "node": self.node_id})
        size = len(text.encode())
        if size >= MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"a {channel} notification of {size} bytes is refused: NOTIFY payloads must "
                f"stay under {MAX_PAYLOAD_BYTES} bytes (split it with split_payloads)"
            )
        with self._queue_changed:
            if len(self._queue) >= MAX_QUEUED:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.warning("notify: %d queued notifications dropped so far", self.dropped)
            self._queue.append((channel, text))
            self._queue_changed.notify()

    def _next_batch(self) -> list[tuple[str, str]]:
        with self._queue_changed:
            while not self._queue and not self._stopping.is_set():
                self._queue_changed.wait()
            return [self._queue.popleft() for _ in range(min(SEND_BATCH, len(self._queue)))]

    def _requeue(self, batch: list[tuple[str, str]]) -> None:
        with self._queue_changed:
            room = MAX_QUEUED - len(self._queue)
            self.dropped += max(0, len(batch) - room)
            self._queue.extendleft(reversed(batch[:room] if room > 0 else []))

    def _send_forever(self) -> None:
        backoff = Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S)
        connection: psycopg.Connection[Any] | None = None
        try:
            while True:
                batch = self._next_batch()
                if not batch:
                    return  # stopping, nothing left
                try:
                    if connection is None or connection.closed:
                        connection = psycopg.connect(
                            self._conninfo, autocommit=True, **CONNECT_OPTIONS
                        )
                    with connection.transaction():
                        for channel, text in batch:
                            connection.execute("SELECT pg_notify(%s, %s)", (channel, text))
                    backoff.reset()
                except psycopg.Error as error:
                    self._requeue(batch)
                    if connection is not None:
                        connection.close()
                    connection = None
                    if self._stopping.is_set():
                        return  # the database is away: what is queued is lost with us
                    delay = backoff.next_delay()
                    if backoff.failures == 1:
                        log.warning("notify: sending to %s failed (%s); retrying",
                                    self._where, _first_line(error))  # fmt: skip
                    self._stopping.wait(delay)
        finally:
            if connection is not None:
                connection.close()

    # -- listening (its thread) -----------------------------------------------------------
    def _listen_forever(self) -> None:
        backoff = Backoff(BACKOFF_INITIAL_S, BACKOFF_MAX_S)
        while not self._stopping.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, **CONNECT_OPTIONS
                ) as connection:
                    for channel in CHANNELS:
                        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.connections += 1
                    if backoff.failures:
                        log.info("notify: listening on %s again", self._where)
                    backoff.reset()
                    self.listening.set()
                    for callback in self._resyncs:
                        self._to_loop(callback)
                    self._receive(connection)
            # Not only psycopg.Error: whatever ends a connection (a bug here, a driver's
            # surprise) must not end the thread, or this node hears nothing from the others
            # again and shows their cameras as they were, for good. So: reconnect, resync.
            except Exception as error:
                self.listening.clear()
                if self._stopping.is_set():
                    return
                if backoff.failures == 0:
                    log.warning("notify: listening on %s failed (%s: %s); reconnecting",
                                self._where, type(error).__name__, _first_line(error))  # fmt: skip
                self._stopping.wait(backoff.next_delay())
        self.listening.clear()

    def _receive(self, connection: psycopg.Connection[Any]) -> None:
        checked_at = time.monotonic()
        while not self._stopping.is_set():
            for notification in connection.notifies(timeout=RECEIVE_WAIT_S):
                self._dispatch(notification.channel, notification.payload)
                checked_at = time.monotonic()
            if time.monotonic() - checked_at >= LIVENESS_CHECK_S:
                connection.execute("SELECT 1")  # raises if the database went away
                checked_at = time.monotonic()

    def _dispatch(self, channel: str, text: str) -> None:
        """Hands one notification to the channel's handlers. Anyone who may connect to the
        database may NOTIFY anything: whatever it sends (JSON nested deep enough to raise
        RecursionError, a huge number, not JSON) is dropped here, never raised into the
        listening loop."""
        handlers = self._handlers.get(channel)
        if not handlers:
            return
        try:
            payload = json.loads(text)
        except Exception:  # ValueError, RecursionError: both mean "not a notification of ours"
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("node"), str):
            self.refused(channel)
            return
        if payload["node"] == self.node_id:
            return  # our own, back to us
        for handler in handlers:
            self._to_loop(self._handle, channel, handler, payload)

    def _handle(self, channel: str, handler: Handler, payload: dict[str, Any]) -> None:
        """One handler, on the loop: one that raises on a payload it could not read drops
        that payload (counted and logged like a malformed one), never the others' news."""
        try:
            handler(payload)
        except Exception as error:
            self.refused(channel, f"{handler.__qualname__}: {type(error).__name__}")

    def refused(self, channel: str, why: str = "") -> None:
        """A malformed notification was dropped (here, or by a handler that could not read
        its fields): anyone with access to the database may NOTIFY, so a flood of them logs
        once a minute. Any thread."""
        with self._refused_lock:
            self._bad_since_logged += 1
            self.malformed += 1
            now = time.monotonic()
            if now - self._bad_logged_at < BAD_PAYLOAD_LOG_EVERY_S:
                return
            count, self._bad_logged_at, self._bad_since_logged = self._bad_since_logged, now, 0
        log.warning("notify: %d malformed notification(s) on %s dropped%s",
                    count, channel, f" (last: {why})" if why else "")  # fmt: skip

    def _to_loop(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(_guarded, callback, *args)


def _guarded(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:  # one broken handler must not end the others' news
        log.exception("notify: handler %r failed", callback)


def _first_line(error: BaseException) -> str:
    """psycopg's messages name host and port, never the password; one line is enough."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
