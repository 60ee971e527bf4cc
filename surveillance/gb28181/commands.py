"""The ``surveillance gb status`` command: the GB/T 28181 platforms as the database has them.

It reads the node's database, so it answers whether or not the node runs: a platform is
"online" while its registration has not expired and it was heard (REGISTER or Keepalive)
within ``keepalive_missed * keepalive_interval_s``. Passwords are never read or printed.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

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


def gb_status(config: AppConfig, now: float) -> list[dict[str, Any]]:
    """One entry per configured platform (registered or not), from the database."""
    engine = create_db_engine(database_url(config))
    try:
        check_current(engine)
        store = GbStore(engine)
        records = {r.platform_id: r for r in store.platforms()}
        counts = store.channel_counts()
        sessions = store.sessions()
    finally:
        engine.dispose()
    gb = config.gb28181
    timeout_s = gb.keepalive_missed * gb.keepalive_interval_s
    result = []
    for platform in gb.platforms:
        record = records.get(platform.id)
        count = counts.get(platform.id)
        result.append(
            {
                "platform": platform.id,
                "name": platform.name,
                "device_id": platform.device_id,
                "online": record is not None and record.online(now, timeout_s),
                "address": f"{record.host}:{record.port}/{record.transport}" if record else None,
                "registered_at": _iso(record.registered_at) if record else None,
                "expires_at": _iso(record.expires_at) if record else None,
                "last_keepalive_at": _iso(record.last_keepalive_at) if record else None,
                "catalog_at": _iso(record.catalog_at) if record else None,
                "channels": count.total if count else 0,
                "channels_on": count.online if count else 0,
                "streams": sum(1 for s in sessions if s.platform_id == platform.id),
            }
        )
    return result


def gb_status_command(config: AppConfig, as_json: bool) -> int:
    sqlite_file = config.server.data_dir / SQLITE_FILE
    if config.database.url is None and not sqlite_file.is_file():
        print(f"FAILED: no database at {sqlite_file}: start the service once", file=sys.stderr)
        return 2
    try:
        platforms = gb_status(config, time.time())
    except StoreOutdated as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(platforms, indent=2))
        return 0
    if not platforms:
        print("no GB/T 28181 platforms configured (gb28181.platforms)")
    for p in platforms:
        state = "online" if p["online"] else "offline"
        print(
            f"{p['platform']} ({p['device_id']}) {state}"
            f"  address {p['address'] or '-'}  last keepalive {p['last_keepalive_at'] or '-'}"
            f"  channels {p['channels_on']}/{p['channels']} on  streams {p['streams']}"
        )
    if not config.gb28181.enabled:
        print("note: gb28181.enabled is false: the node does not run the SIP server")
    return 0
