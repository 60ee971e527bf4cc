"""The picture a stream showed at a past moment, decoded from the packet ring.

For evidence of a moment that is still in the ring (an alarm a minute ago): the camera's
own full picture, rather than an event's small snapshot. Decodes from the keyframe at or
before the moment up to the last packet that arrived by then: one GOP at most. Blocking:
call in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from surveillance.media.decode import decode_packets, new_decoder
from surveillance.media.packets import Packet
from surveillance.media.ring import PacketRing

# A moment this much older than the ring's first keyframe is not in it: a picture from
# later would be a different moment.
REACH_SLACK_S = 0.5


@dataclass(frozen=True)
class RingPicture:
    frame: Any  # av.VideoFrame
    received_at: float  # monotonic arrival of its last packet


def picture_at(ring: PacketRing, moment: float) -> RingPicture | None:
    """The picture on screen at ``moment`` (monotonic), or None when the ring does not
    reach back that far, or holds nothing after it of the same connection."""
    packets = ring.since(moment)
    if not packets or not packets[0].keyframe:
        return None
    if packets[0].received_at > moment + REACH_SLACK_S:
        return None
    info = packets[0].info
    gop: list[Packet] = []
    for packet in packets:
        if packet.info is not info or (gop and packet.received_at > moment):
            break  # a reconnect's packets, or the moment has passed
        gop.append(packet)
    frame = decode_packets(new_decoder(info), gop, flush=True)
    return None if frame is None else RingPicture(frame, gop[-1].received_at)
