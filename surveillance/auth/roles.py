"""Roles and the permissions each one grants: the one table the whole service checks."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    HANDLER = "handler"
    ADMIN = "admin"


class Permission(StrEnum):
    LIVE_VIEW = "live.view"  # camera list, live video, mosaic, reading layouts and tours
    SNAPSHOT_TAKE = "snapshot.take"  # still pictures straight from a camera
    RECORDINGS_VIEW = "recordings.view"  # recorded footage: spans, playback, export, past frames
    WALL_EDIT = "wall.edit"  # saving and deleting layouts and tours
    CASES_READ = "cases.read"  # cases, their evidence and custody log
    CASES_WRITE = "cases.write"  # reporting, editing, moving and commenting on cases
    EVIDENCE_ATTACH = "evidence.attach"  # attaching snapshots and clips to cases
    EVIDENCE_EXPORT = "evidence.export"  # signed export bundles
    AUDIT_READ = "audit.read"  # the audit log (others' entries for unscoped admins only)
    USERS_MANAGE = "users.manage"  # users and API tokens
    SYSTEM_READ = "system.read"  # metrics and the node's configuration
    EVENTS_VIEW = "events.view"  # events and alarms of the cameras one sees
    EVENTS_ACK = "events.ack"  # acknowledging and closing them
    ZONES_EDIT = "zones.edit"  # drawing, changing and removing motion zones
    REPORTS_READ = "reports.read"  # availability reports (online rate per platform and day)
    PTZ_CONTROL = "ptz.control"  # steering cameras: PTZ moves, presets, holding the control
    DEVICES_DISCOVER = "devices.discover"  # finding ONVIF devices on a network (admins only)


_WALL = {Permission.LIVE_VIEW, Permission.AUDIT_READ, Permission.EVENTS_VIEW}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_WALL),
    # Recordings are a permission of their own: viewers watch the wall live, nothing past.
    Role.OPERATOR: frozenset(
        _WALL
        | {
            Permission.SNAPSHOT_TAKE,
            Permission.RECORDINGS_VIEW,
            Permission.WALL_EDIT,
            Permission.EVENTS_ACK,
            Permission.ZONES_EDIT,
            Permission.PTZ_CONTROL,
        }
    ),
    # Handlers watch the wall too: evidence is attached from a wall tile.
    Role.HANDLER: frozenset(
        _WALL
        | {
            Permission.SNAPSHOT_TAKE,
            Permission.RECORDINGS_VIEW,
            Permission.CASES_READ,
            Permission.CASES_WRITE,
            Permission.EVIDENCE_ATTACH,
            Permission.EVIDENCE_EXPORT,
            Permission.EVENTS_ACK,
            Permission.REPORTS_READ,
            # A handler turning a camera toward what a case needs: PTZ is for operators
            # "and above" (issue 16), and a handler outranks an operator for take-overs.
            Permission.PTZ_CONTROL,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}
