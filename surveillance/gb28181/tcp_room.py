"""Which accepted SIP TCP connections may stay: no address may hold them against the others.

At most ``max_per_address`` from one address; a connection must bring a valid SIP message
within ``first_message_s`` of opening; and when every place is taken a newcomer is still let
in: a connection that never brought a valid message goes first (it would be closed soon
anyway), else the least recently active of the address holding the most. A platform needs
one or two connections and speaks at once; only a host hoarding connections loses them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

Key = tuple[str, int]  # the peer's host and port


@dataclass
class Inbound:
    """An accepted connection: when it opened, last brought a message, and whether it has
    brought a valid one yet."""

    writer: asyncio.StreamWriter
    opened_at: float = field(default_factory=time.monotonic)
    active_at: float = field(default_factory=time.monotonic)
    proven: bool = False

    def brought_a_message(self) -> None:
        self.proven = True
        self.active_at = time.monotonic()


class InboundConnections:
    def __init__(self, max_per_address: int, first_message_s: float) -> None:
        self.max_per_address = max_per_address
        self._first_message_s = first_message_s
        self._open: dict[Key, Inbound] = {}

    def full_for(self, host: str) -> bool:
        """Whether ``host`` holds as many connections as one address may."""
        return sum(1 for held, _ in self._open if held == host) >= self.max_per_address

    def add(self, key: Key, writer: asyncio.StreamWriter) -> Inbound:
        inbound = self._open[key] = Inbound(writer)
        return inbound

    def forget(self, key: Key, writer: asyncio.StreamWriter) -> None:
        inbound = self._open.get(key)
        if inbound is not None and inbound.writer is writer:
            del self._open[key]

    def to_close(self, newcomer: str) -> tuple[Key, Inbound] | None:
        """The connection to close so that one from ``newcomer`` fits (counted as holding
        one more), forgotten here; None when there is none."""
        if not self._open:
            return None
        held: dict[str, int] = {newcomer: 1}
        for host, _ in self._open:
            held[host] = held.get(host, 0) + 1
        key, victim = min(
            self._open.items(),
            key=lambda item: (item[1].proven, -held[item[0][0]], item[1].active_at),
        )
        del self._open[key]
        return key, victim

    def silence_s(self, inbound: Inbound | None, idle_s: float) -> float:
        """How long the next read may wait for the peer: ``idle_s``, and for a connection yet
        to bring a valid message only until its first-message deadline (a trickle of bytes
        does not extend it)."""
        if inbound is None or inbound.proven:
            return idle_s
        return inbound.opened_at + self._first_message_s - time.monotonic()
