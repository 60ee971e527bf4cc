"""The demo: simulated cameras from the built-in simulator, served by a real node.

The demo's configuration is built in code (not read from a file) so that ``surveillance
demo`` runs on a fresh machine with no cameras and no config at all. There is no default
account either: each run makes (or resets) the demo's admin with a new random password.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from surveillance.auth.audit import AuditEntry, AuditLog
from surveillance.auth.roles import Role
from surveillance.auth.store import AuthStore
from surveillance.config.models import AppConfig
from surveillance.db import create_db_engine, database_url, upgrade
from surveillance.simulator import MountSpec, Simulator

DEMO_ADMIN = "admin"
DEMO_ACTOR = "demo"  # who the audit log says made the demo's admin
DEMO_RECORDING_MAX_BYTES = 1_000_000_000  # the demo's footage; the oldest goes past it

DEMO_PLATFORMS = (
    ("town-cctv", "Town CCTV platform"),
    ("safe-city", "Police safe-city platform"),
    ("forest-watch", "Forestry lookout platform"),
)
DEMO_TAG_SETS = (
    ["traffic"],
    ["school-gate", "public-order"],
    ["forest-fire"],
    ["geological-hazard"],
    ["sanitation", "public-order"],
    ["traffic", "public-order"],
)
DEMO_PLACE_NAMES = (
    "Main St / River Rd intersection",
    "No. 1 Primary School gate",
    "North ridge lookout",
    "Landslide slope K12",
    "Market square",
    "Bridge approach",
)


def demo_config(simulator: Simulator, mounts: list[MountSpec], data_dir: Path) -> AppConfig:
    """A config with one camera per main mount, its ``-sub`` mount as sub-stream."""
    paths = {mount.path for mount in mounts}
    cameras = []
    main_mounts = [m for m in mounts if not m.path.endswith("-sub")]
    for index, mount in enumerate(main_mounts):
        platform_id, _ = DEMO_PLATFORMS[index % len(DEMO_PLATFORMS)]
        sub_path = f"{mount.path}-sub"
        cameras.append(
            {
                "id": mount.path,
                "name": f"{DEMO_PLACE_NAMES[index % len(DEMO_PLACE_NAMES)]} ({mount.path})",
                "platform": platform_id,
                "url": simulator.url(mount.path),
                "sub_url": simulator.url(sub_path) if sub_path in paths else None,
                "tags": DEMO_TAG_SETS[index % len(DEMO_TAG_SETS)],
            }
        )
    return AppConfig.model_validate(
        {
            "server": {"data_dir": str(data_dir)},
            # Every demo camera records (a real node decides per tag, platform and camera),
            # capped so a demo left running does not fill its machine's disk.
            "recording": {
                "default": {"mode": "continuous", "retain_days": 1},
                "max_bytes": DEMO_RECORDING_MAX_BYTES,
            },
            "platforms": [{"id": i, "name": n} for i, n in DEMO_PLATFORMS],
            "cameras": cameras,
        }
    )


def demo_admin(config: AppConfig) -> str:
    """Make the demo's admin, or give it back its role and a new password, in the demo's
    database; returns the password, made for this run only (no two runs share one)."""
    password = secrets.token_urlsafe(12)
    engine = create_db_engine(database_url(config))
    try:
        upgrade(engine)
        store, audit = AuthStore(engine), AuditLog(engine)
        if store.user(DEMO_ADMIN) is None:
            store.add_user(DEMO_ADMIN, Role.ADMIN, password)
            detail: dict[str, object] = {"role": Role.ADMIN.value}
            action = "user.add"
        else:
            store.update_user(DEMO_ADMIN, role=Role.ADMIN, platforms=(), cameras=(), disabled=False)
            store.set_password(DEMO_ADMIN, password)  # also ends the last run's sessions
            detail = {"role": Role.ADMIN.value, "password_reset": True}
            action = "user.update"
        audit.record(
            AuditEntry(
                user=DEMO_ACTOR,
                action=action,
                client="local",
                detail={"target": DEMO_ADMIN, **detail},
            )
        )
    finally:
        engine.dispose()
    return password
