"""Events raised or changed on one node, followed on every node (cluster mode).

After the event bus commits a change it NOTIFYs ``surveillance_events`` with the event's
id (a bus listener, in the writer's thread; sending never waits: services/cluster_notify.py).
The other nodes hand the id to their own followers (``/api/events/stream``, and through it
the wall's alarms), who read the event's newest state from the shared database when they
send, as their user may see it. The bus's other listeners (metrics, alarm clips, cases)
stay with the node that raised the event. Notifications lost while a node's listener was
disconnected: each follower there sends a fresh snapshot after the reconnection.
"""

from __future__ import annotations

from typing import Any

from surveillance.events.records import EventRecord
from surveillance.services.cluster_notify import EVENTS_CHANNEL, Notifier
from surveillance.services.event_bus import EventBus


def relay_events(bus: EventBus, notifier: Notifier) -> None:
    """Wire the bus to the other nodes, both ways (before the notifier starts)."""

    def publish(record: EventRecord) -> None:
        notifier.notify(EVENTS_CHANNEL, {"id": record.id})

    def received(payload: dict[str, Any]) -> None:
        event_id = payload.get("id")
        if isinstance(event_id, int) and not isinstance(event_id, bool) and event_id > 0:
            bus.changed_elsewhere(event_id)
        else:
            notifier.refused(EVENTS_CHANNEL)

    bus.add_listener(publish)
    notifier.on(EVENTS_CHANNEL, received)
    notifier.on_resync(bus.refresh_followers)
