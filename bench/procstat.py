"""CPU time and memory of processes, read from /proc; CPU use over a time window.

Figures are in percent of ONE core (100 = one core busy all the time), the unit ``top``
uses, so a 2-core machine tops out at 200. Memory is in MiB (reported as "MB").
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and ')': split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def rss_mb(pid: int) -> float | None:
    """Resident set size (VmRSS) in MiB; shared library pages count in full."""
    kib = _status_kib(pid, "VmRSS")
    return None if kib is None else kib / 1024


def pss_mb(pid: int) -> float | None:
    """Proportional set size in MiB: shared pages divided among the processes sharing them.

    Summing RSS over N identical processes counts their shared libraries N times; PSS
    does not, so it is the fair per-process figure for a fleet of ffmpeg processes.
    """
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii").splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in lines:
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return None


def tcp_received(server_ports: Sequence[int]) -> dict[tuple[int, str], int]:
    """Bytes received so far per loopback TCP connection to any of ``server_ports``.

    Keyed by (pid, local address). From the kernel's tcp_info via ``ss``: FFmpeg reads its
    sockets with recv(), which the per-process counters of /proc/<pid>/io do not see.
    """
    if not server_ports:
        return {}
    ports = " or ".join(f"dport = :{port}" for port in server_ports)
    out = subprocess.run(
        ["ss", "-tinpH", "state", "established", f"( {ports} )"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout
    received: dict[tuple[int, str], int] = {}
    keys: list[tuple[int, str]] = []
    for line in out.splitlines():
        if not line.startswith(("\t", " ")):  # a socket line; its tcp_info line follows
            fields = line.split()
            local = fields[2] if len(fields) > 2 else "?"
            keys = [(int(pid), local) for pid in _PID.findall(line)]
            continue
        found = _BYTES_RECEIVED.search(line)
        for key in keys:
            received[key] = int(found.group(1)) if found else 0
    return received


def tcp_received_by_pid(server_ports: Sequence[int]) -> dict[int, int]:
    """Bytes received so far on connections to any of ``server_ports``, summed per pid."""
    by_pid: dict[int, int] = {}
    for (pid, _), count in tcp_received(server_ports).items():
        by_pid[pid] = by_pid.get(pid, 0) + count
    return by_pid


_PID = re.compile(r"pid=(\d+)")
_BYTES_RECEIVED = re.compile(r"bytes_received:(\d+)")


def all_processes_cpu() -> dict[int, float]:
    """CPU seconds of every process on the machine, by pid.

    Summing processes, not reading /proc/stat: in this VM the kernel's per-CPU totals
    disagree with the per-process figures (they can read lower than two processes'
    sum), and only like can be subtracted from like.
    """
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            seconds = cpu_seconds(int(entry.name))
            if seconds is not None:
                found[int(entry.name)] = seconds
    return found


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


@dataclass(frozen=True)
class CpuWindow:
    """CPU use of named groups of processes over one window, in % of one core."""

    wall_s: float
    groups: dict[str, float]  # group name -> % of one core, summed over its processes
    lost: dict[str, int]  # group name -> processes that were gone at the end of the window
    machine_pct: float  # every process alive through the window, in % of one core
    background_pct: float  # machine_pct minus the groups: what else was running


def _group_cpu(pids: Sequence[int]) -> dict[int, float]:
    found: dict[int, float] = {}
    for pid in pids:
        seconds = cpu_seconds(pid)
        if seconds is not None:
            found[pid] = seconds
    return found


def measure_cpu(groups: Mapping[str, Sequence[int]], seconds: float) -> CpuWindow:
    """Sleep ``seconds`` and return how much CPU each group of processes used meanwhile.

    Only processes alive at both ends of the window count; ``lost`` says how many died
    (and short-lived processes elsewhere on the machine escape ``background_pct``).
    """
    before = {name: _group_cpu(pids) for name, pids in groups.items()}
    machine_before = all_processes_cpu()
    started = time.monotonic()
    time.sleep(seconds)
    after = {name: _group_cpu(pids) for name, pids in groups.items()}
    machine_after = all_processes_cpu()
    wall = time.monotonic() - started
    pct: dict[str, float] = {}
    lost: dict[str, int] = {}
    for name, pids in groups.items():
        used = sum(after[name][p] - before[name][p] for p in before[name] if p in after[name])
        pct[name] = 100 * used / wall
        lost[name] = len(pids) - len(after[name])
    machine_used = sum(
        machine_after[p] - machine_before[p] for p in machine_before if p in machine_after
    )
    machine = 100 * machine_used / wall
    return CpuWindow(
        wall_s=wall,
        groups=pct,
        lost=lost,
        machine_pct=machine,
        background_pct=max(0.0, machine - sum(pct.values())),
    )


def machine_facts() -> dict[str, object]:
    """What a reader needs to judge a run: cores, CPU model, memory, kernel, load at start."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "mem_total_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "loadavg_start": load_average(),
    }


def cpu_model() -> str | None:
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None
