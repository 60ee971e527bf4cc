"""A PS file cut into access units, ready to send over RTP in a loop.

The sender paces units in real time and loops the clip, so each unit keeps its decode time and
where its timestamps (pack SCR, PES PTS/DTS) are: each loop moves them on by the clip's length,
so a receiver sees time run forward, as from a live camera. A unit is everything from the
headers before a PES packet that carries a PTS up to the next such headers (ISO/IEC 13818-1
s.2.5: pack header BA, system header BB, program stream map BC, PES E0-EF).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

PTS_WRAP = 1 << 33
RTP_PAYLOAD_MAX = 1400  # bytes: fits a 1500-byte Ethernet MTU with IP/UDP/RTP headers
_PACK, _SYSTEM, _PSM, _END = 0xBA, 0xBB, 0xBC, 0xB9


@dataclass(frozen=True, slots=True)
class PsUnit:
    """One access unit's PS bytes, its decode time (90 kHz), and where its timestamps are."""

    data: bytes
    time_90k: int  # DTS, or PTS when there is no DTS: the send order is decode order
    scr_at: tuple[int, ...]  # offsets of pack headers' SCR fields (6 bytes)
    ts_at: tuple[int, ...]  # offsets of PES PTS/DTS fields (5 bytes)

    def shifted(self, by_90k: int) -> bytes:
        """The bytes with every timestamp moved on by ``by_90k`` (modulo 2**33)."""
        if by_90k == 0:
            return self.data
        out = bytearray(self.data)
        for at in self.scr_at:
            _write_scr(out, at, (_read_scr(out, at) + by_90k) % PTS_WRAP)
        for at in self.ts_at:
            _write_ts(out, at, (_read_ts(out, at) + by_90k) % PTS_WRAP)
        return bytes(out)


@dataclass(frozen=True)
class PsClip:
    """A PS file's units (the first one starts at a keyframe) and its loop length, 90 kHz."""

    units: tuple[PsUnit, ...]
    period_90k: int

    @property
    def frame_90k(self) -> int:
        return self.period_90k // len(self.units)


@dataclass
class _Element:
    kind: int  # the start code's last byte
    start: int
    end: int
    time: int | None = None  # a PES packet's DTS (or PTS)


def load_clip(path: Path, *, without_psm: bool = False) -> PsClip:
    """Cut a PS file into units; ``without_psm``: leave out system headers and PSMs (a fault:
    a platform that never says which codec it sends)."""
    data = path.read_bytes()
    groups: list[list[_Element]] = [[]]
    pending: list[_Element] = []
    for element in _elements(data):
        if element.kind in (_SYSTEM, _PSM) and without_psm:
            continue
        if 0xE0 <= element.kind <= 0xEF:
            if element.time is not None and any(0xE0 <= e.kind <= 0xEF for e in groups[-1]):
                groups.append([])
            groups[-1] += [*pending, element]
            pending = []
        else:
            pending.append(element)
    groups[-1] += pending
    units = tuple(_unit(data, group) for group in groups if group)
    if len(units) < 2:
        raise ValueError(f"{path.name}: fewer than two access units")
    first, last = units[0].time_90k, units[-1].time_90k
    frame = (last - first) // (len(units) - 1)
    return PsClip(units, last - first + frame)


def _unit(data: bytes, group: list[_Element]) -> PsUnit:
    base = group[0].start
    times = [e.time for e in group if e.time is not None]
    if not times:
        raise ValueError("an access unit without a timestamp")
    return PsUnit(
        data=data[base : group[-1].end] if _contiguous(group) else _join(data, group),
        time_90k=times[0],
        scr_at=tuple(_offset(group, e) + 4 for e in group if e.kind == _PACK),
        ts_at=tuple(
            _offset(group, e) + 9 + 5 * i
            for e in group
            if 0xE0 <= e.kind <= 0xEF and e.time is not None
            for i in range(_ts_count(data, e))
        ),
    )


def _contiguous(group: list[_Element]) -> bool:
    return all(a.end == b.start for a, b in itertools.pairwise(group))


def _join(data: bytes, group: list[_Element]) -> bytes:
    return b"".join(data[e.start : e.end] for e in group)


def _offset(group: list[_Element], element: _Element) -> int:
    offset = 0
    for e in group:
        if e is element:
            return offset
        offset += e.end - e.start
    raise ValueError("element not in its group")


def _ts_count(data: bytes, element: _Element) -> int:
    return {0b10: 1, 0b11: 2}.get(data[element.start + 7] >> 6, 0)


def _elements(data: bytes) -> list[_Element]:
    found: list[_Element] = []
    at = 0
    while at + 4 <= len(data):
        if data[at : at + 3] != b"\x00\x00\x01":
            raise ValueError(f"no start code at byte {at}")
        kind = data[at + 3]
        if kind == _PACK:
            end = at + 14 + (data[at + 13] & 0x07)
        elif kind == _END:
            end = at + 4
        elif kind >= _SYSTEM:
            end = at + 6 + int.from_bytes(data[at + 4 : at + 6], "big")
        else:
            raise ValueError(f"unexpected start code 0x{kind:02x} at byte {at}")
        element = _Element(kind, at, end)
        if 0xE0 <= kind <= 0xEF:
            _read_pes(data, element)
        found.append(element)
        at = end
    return found


def _read_pes(data: bytes, element: _Element) -> None:
    at = element.start
    flags = data[at + 7] >> 6
    if flags == 0b10:
        element.time = _read_ts(data, at + 9)
    elif flags == 0b11:
        element.time = _read_ts(data, at + 14)


def _read_ts(data: bytes | bytearray, at: int) -> int:
    b = data[at : at + 5]
    return ((b[0] >> 1) & 0x7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def _write_ts(data: bytearray, at: int, value: int) -> None:
    data[at] = (data[at] & 0xF1) | ((value >> 30) & 0x7) << 1
    data[at + 1] = (value >> 22) & 0xFF
    data[at + 2] = ((value >> 15) & 0x7F) << 1 | 1
    data[at + 3] = (value >> 7) & 0xFF
    data[at + 4] = (value & 0x7F) << 1 | 1


def _read_scr(data: bytes | bytearray, at: int) -> int:
    bits = int.from_bytes(data[at : at + 6], "big")
    return ((bits >> 43) & 0x7) << 30 | ((bits >> 27) & 0x7FFF) << 15 | (bits >> 11) & 0x7FFF


def _write_scr(data: bytearray, at: int, value: int) -> None:
    bits = int.from_bytes(data[at : at + 6], "big")
    bits &= ~((0x7 << 43) | (0x7FFF << 27) | (0x7FFF << 11))
    bits |= ((value >> 30) & 0x7) << 43 | ((value >> 15) & 0x7FFF) << 27 | (value & 0x7FFF) << 11
    data[at : at + 6] = bits.to_bytes(6, "big")
