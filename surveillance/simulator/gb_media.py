"""One play of the simulated GB platform: its PS clip over RTP, in real time, looping.

RTP (RFC 3550): payload type 96, 90 kHz clock, timestamp = the unit's PES time, each access
unit cut into payloads of at most RTP_PAYLOAD_MAX bytes, the marker bit on a unit's last
packet. Over TCP each packet is framed by a 2-byte length (RFC 4571 s.2). One task per stream
wakes once per unit and sends all its packets, so twenty streams cost twenty timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from dataclasses import dataclass, field

from surveillance.simulator.ps_units import RTP_PAYLOAD_MAX, PsClip

log = logging.getLogger(__name__)

PAYLOAD_TYPE = 96
CATCH_UP_S = 1.0  # further behind than this (a stall, a slow reader): skip ahead, no burst
TCP_CONNECT_TIMEOUT_S = 10.0


@dataclass
class StreamFaults:
    """Faults of one stream, set by the platform (GbPlatformSimulator.fault)."""

    stopped: bool = False  # "stop-media": the dialog stays, no RTP
    garbage: bool = False  # "garbage-rtp": junk datagrams between the real ones
    ssrc_delta: int = 0  # "wrong-ssrc": RTP under another SSRC than the answer's y=

    def apply(self, name: str) -> None:
        """Take a platform fault (GbPlatformSimulator.fault) that concerns media."""
        if name == "reset":
            self.stopped = self.garbage = False
            self.ssrc_delta = 0
        elif name == "stop-media":
            self.stopped = True
        elif name == "garbage-rtp":
            self.garbage = True
        elif name == "wrong-ssrc":
            self.ssrc_delta = 1


@dataclass
class GbStream:
    """An active play, by Call-ID in GbPlatformSimulator.streams."""

    call_id: str
    channel_id: str
    ssrc: int
    transport: str  # "udp" | "tcp-passive" (we connect) | "tcp-active" (they connect)
    dest: tuple[str, int] | None
    clip: PsClip
    faults: StreamFaults = field(default_factory=StreamFaults)
    local_port: int = 0
    packets_sent: int = 0
    units_sent: int = 0
    ended: str | None = None  # why it stopped sending
    _udp: socket.socket | None = None
    _listener: asyncio.Server | None = None
    _accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
    _task: asyncio.Task[None] | None = None

    async def prepare(self, host: str) -> None:
        """Bind what the SDP answer names: a UDP socket or, for tcp-active, a listener."""
        if self.transport == "udp":
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._udp.bind((host, 0))
            self._udp.setblocking(False)
            self.local_port = self._udp.getsockname()[1]
        elif self.transport == "tcp-active":
            loop = asyncio.get_running_loop()
            self._accepted = loop.create_future()

            def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                if self._accepted is not None and not self._accepted.done():
                    self._accepted.set_result((reader, writer))
                else:
                    writer.close()  # one connection per play

            self._listener = await asyncio.start_server(accepted, host, 0)
            self.local_port = self._listener.sockets[0].getsockname()[1]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, reason: str = "bye") -> None:
        self.ended = self.ended or reason
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._close()

    def _close(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _run(self) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            writer = await self._connect()
            await self._send_loop(writer)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.ended = f"{type(exc).__name__}: {exc}"[:200]
            log.info("GB sim stream %s ended: %s", self.channel_id, self.ended)
        finally:
            if writer is not None:
                writer.close()
            self._close()

    async def _connect(self) -> asyncio.StreamWriter | None:
        if self.transport == "tcp-passive":
            assert self.dest is not None
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(*self.dest), TCP_CONNECT_TIMEOUT_S
            )
            return writer
        if self.transport == "tcp-active":
            assert self._accepted is not None
            _, writer = await asyncio.wait_for(self._accepted, TCP_CONNECT_TIMEOUT_S)
            return writer
        return None

    async def _send_loop(self, writer: asyncio.StreamWriter | None) -> None:
        loop = asyncio.get_running_loop()
        units, period = self.clip.units, self.clip.period_90k
        first = units[0].time_90k
        start = loop.time()
        seq = int.from_bytes(os.urandom(2), "big")
        lap = 0
        while True:
            for unit in units:
                elapsed_90k = lap * period + unit.time_90k - first
                delay = start + elapsed_90k / 90_000 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -CATCH_UP_S:
                    start -= delay
                if self.faults.stopped:
                    continue
                data = unit.shifted(lap * period)
                stamp = (unit.time_90k + lap * period) & 0xFFFFFFFF
                packets = []
                ssrc = (self.ssrc + self.faults.ssrc_delta) & 0xFFFFFFFF
                for at in range(0, len(data), RTP_PAYLOAD_MAX):
                    last = at + RTP_PAYLOAD_MAX >= len(data)
                    header = struct.pack(
                        ">BBHII", 0x80, PAYLOAD_TYPE | (0x80 if last else 0), seq, stamp, ssrc
                    )
                    packets.append(header + data[at : at + RTP_PAYLOAD_MAX])
                    seq = (seq + 1) & 0xFFFF
                if self.faults.garbage:
                    packets.insert(len(packets) // 2, _garbage())
                await self._send(packets, writer)
                self.packets_sent += len(packets)
                self.units_sent += 1
            lap += 1

    async def _send(self, packets: list[bytes], writer: asyncio.StreamWriter | None) -> None:
        if writer is not None:
            writer.write(b"".join(struct.pack(">H", len(p)) + p for p in packets))
            await writer.drain()
            return
        assert self._udp is not None and self.dest is not None
        for packet in packets:
            # Like a camera: a full buffer or an ICMP error loses the datagram.
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError):
                self._udp.sendto(packet, self.dest)


def _garbage() -> bytes:
    """Not RTP: version 0 and random bytes (what a broken sender or a port scan looks like)."""
    junk = bytearray(os.urandom(64))
    junk[0] &= 0x3F
    return bytes(junk)
