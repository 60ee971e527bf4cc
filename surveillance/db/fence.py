"""The fencing check a store runs inside a write's transaction (cluster mode).

``fence(connection, camera_id)`` raises (cluster/errors.py ``LeaseLost``) unless this node
still holds the camera's lease in the database, so a node that lost its lease (paused, cut
off) cannot write rows for the camera afterwards: the check and the write commit together.
Stores take one as an optional argument; None (one node) checks nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

Fence = Callable[[Connection, str], None]
