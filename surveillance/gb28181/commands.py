"""The ``surveillance gb status`` command: the GB/T 28181 platforms as the database has them.

It reads the node's database, so it answers whether or not the node runs. While the node
runs (its heartbeat, the ``node.running`` event, is open and recent), a platform is
"online" while its registration has not expired and it was heard (REGISTER or Keepalive)
within ``keepalive_missed * keepalive_interval_s``, and its streams are the sessions
playing. When the node is not running nothing is online (no registrar is up to take a
platform's keepalives): the command says so, and shows each platform as last known at the
node's last heartbeat, and the sessions the stopped node left open. Passwords are never
read or printed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from surveillance.config.models import AppConfig
from surveillance.db import (
    SQLITE_FILE,
    StoreOutdated,
    check_current,
    create_db_engine,
    database_url,
)
from surveillance.gb28181.store import GbStore


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class NodeSign:
    """What the database says of the node's own run: whether its heartbeat is open and
    recent (a node killed without a clean stop leaves it open, but no longer recent)."""

    running: bool
    last_seen_at: float | None  # its last heartbeat; None: it never ran


def gb_status(
    config: AppConfig, now: float, node: Callable[[Engine], NodeSign]
) -> tuple[NodeSign, list[dict[str, Any]]]:
    """The node's sign, and one entry per configured platform (registered or not)."""
    engine = create_db_engine(database_url(config))
    try:
        check_current(engine)
        sign = node(engine)
        store = GbStore(engine)
        records = {r.platform_id: r for r in store.platforms()}
        counts = store.channel_counts()
        sessions = store.sessions()
    finally:
        engine.dispose()
    gb = config.gb28181
    timeout_s = gb.keepalive_missed * gb.keepalive_interval_s
    # Stopped: judged as of the last heartbeat, the last moment anyone knew.
    as_of = now if sign.running else sign.last_seen_at
    result = []
    for platform in gb.platforms:
        record = records.get(platform.id)
        count = counts.get(platform.id)
        known_online = record is not None and as_of is not None and record.online(as_of, timeout_s)
        open_sessions = sum(1 for s in sessions if s.platform_id == platform.id)
        result.append(
            {
                "platform": platform.id,
                "name": platform.name,
                "device_id": platform.device_id,
                "node_running": sign.running,
                "online": sign.running and known_online,
                "last_known_online": known_online,
                "address": f"{record.host}:{record.port}/{record.transport}" if record else None,
                "registered_at": _iso(record.registered_at) if record else None,
                "expires_at": _iso(record.expires_at) if record else None,
                "last_keepalive_at": _iso(record.last_keepalive_at) if record else None,
                "catalog_at": _iso(record.catalog_at) if record else None,
                "channels": count.total if count else 0,
                "channels_on": count.online if count else 0,
                "streams": open_sessions if sign.running else 0,
                "sessions_left_open": 0 if sign.running else open_sessions,
            }
        )
    return sign, result


def gb_status_command(config: AppConfig, as_json: bool, node: Callable[[Engine], NodeSign]) -> int:
    """``node`` reads the node's heartbeat from the database (the events are not this
    package's to read: the command line hands the reader in)."""
    sqlite_file = config.server.data_dir / SQLITE_FILE
    if config.database.url is None and not sqlite_file.is_file():
        print(f"FAILED: no database at {sqlite_file}: start the service once", file=sys.stderr)
        return 2
    try:
        sign, platforms = gb_status(config, time.time(), node)
    except StoreOutdated as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(platforms, indent=2))
        return 0
    if not sign.running:
        seen = _iso(sign.last_seen_at)
        print(
            f"node not running (last heartbeat {seen}): states as last known then"
            if seen
            else "node not running (it never ran on this database)"
        )
    if not platforms:
        print("no GB/T 28181 platforms configured (gb28181.platforms)")
    for p in platforms:
        if sign.running:
            state = "online" if p["online"] else "offline"
            streams = f"streams {p['streams']}"
        else:
            state = "last known " + ("online" if p["last_known_online"] else "offline")
            streams = f"sessions left open {p['sessions_left_open']}"
        print(
            f"{p['platform']} ({p['device_id']}) {state}"
            f"  address {p['address'] or '-'}  last keepalive {p['last_keepalive_at'] or '-'}"
            f"  channels {p['channels_on']}/{p['channels']} on  {streams}"
        )
    if not config.gb28181.enabled:
        print("note: gb28181.enabled is false: the node does not run the SIP server")
    return 0
