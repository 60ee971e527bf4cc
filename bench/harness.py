"""What the phased benchmarks (``bench.ingest``, ``bench.wall``) share around their phases.

Their common options, the wait for an idle machine before measuring, progress lines on
stderr, the report's environment, settings and CPU medians, and :func:`run_benchmark`, the
``main`` of each: run the phases, print the table, write the JSON, and stop every child
process however the run ends.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields, is_dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from bench.procs import unwind_on_termination
from bench.procstat import CpuWindow, load_average, machine_facts, measure_cpu
from bench.service import serve_prefix
from bench.stats import median, rounded
from surveillance.simulator import ClipSpec

CLIP_CACHE = Path.home() / ".cache" / "surveillance" / "bench-clips"
SERVICE_READY_TIMEOUT_S = 60.0
QUIET_SAMPLE_S = 2.0
QUIET_BUSY_PCT = 25.0  # % of one core: the idle simulator and the odd daemon stay below
BUSY_BACKGROUND_PCT = 20.0  # % of one core used by others during a phase: worth a warning
VERSION_TIMEOUT_S = 30.0  # ``chromium --version`` starts slowly on a cold cache

Report = dict[str, Any]


class BenchSettings(Protocol):
    """A benchmark's settings: a frozen dataclass with (at least) these two fields."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def quick(self) -> bool: ...

    @property
    def json_path(self) -> Path | None: ...


AnySettings = TypeVar("AnySettings", bound=BenchSettings)


def add_run_options(parser: argparse.ArgumentParser, *, quick: str, wait_quiet: str) -> None:
    """``--quick``, ``--json``, ``--cache-dir`` and ``--wait-quiet``, with these two helps.

    Each option's ``dest`` is the settings field it sets (see :func:`settings_from`).
    """
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument(
        "--json", dest="json_path", metavar="JSON", type=Path, help="write the results here"
    )
    parser.add_argument("--cache-dir", type=Path, default=CLIP_CACHE, help="clip cache")
    parser.add_argument(
        "--wait-quiet", dest="wait_quiet_s", metavar="WAIT_QUIET", type=float, help=wait_quiet
    )


def settings_from(args: argparse.Namespace, full: AnySettings, quick: AnySettings) -> AnySettings:
    """The full run's defaults (``quick``'s with --quick), then every option given.

    An option sets the settings field named like its ``dest``; one left out is None.
    """
    base = quick if args.quick else full
    given = {
        field.name: getattr(args, field.name)
        for field in fields(base)
        if getattr(args, field.name, None) is not None
    }
    return replace(base, **given)


def progress(benchmark: str, message: str) -> None:
    print(f"[{benchmark} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wait_quiet(benchmark: str, max_wait_s: float) -> dict[str, float]:
    """Wait (up to ``max_wait_s``) until the machine is nearly idle before a phase starts.

    The machine may be shared; another user's load during a window inflates nothing we
    measure per process, but it starves the simulator and the measured processes alike.
    """
    if max_wait_s <= 0:
        return {}
    started = time.monotonic()
    announced = False
    while True:
        busy = measure_cpu({}, QUIET_SAMPLE_S).machine_pct
        waited = time.monotonic() - started
        if busy <= QUIET_BUSY_PCT or waited >= max_wait_s:
            if busy > QUIET_BUSY_PCT:
                progress(
                    benchmark, f"the machine is still busy ({busy:.0f}% of a core): going ahead"
                )
            return {"machine_pct": round(busy, 1), "waited_s": round(waited, 1)}
        if not announced:
            progress(benchmark, f"waiting for the machine to quieten ({busy:.0f}% of a core busy)")
            announced = True


def window_medians(windows: list[CpuWindow], digits: int) -> dict[str, float | None]:
    """Each group's median CPU over the windows (to ``digits``), then background and machine."""
    groups = windows[0].groups.keys() if windows else []
    found = {g: rounded(median([w.groups[g] for w in windows]), digits) for g in groups}
    found["background"] = rounded(median([w.background_pct for w in windows]), 1)
    found["machine"] = rounded(median([w.machine_pct for w in windows]), 1)
    return found


def background_warnings(cpu_by_phase: dict[str, dict[str, float | None]]) -> list[str]:
    """A warning for each phase during which other processes were busy (``window_medians``)."""
    return [
        f"{phase}: other processes used {cpu['background']}% of a core meanwhile "
        "(the machine is shared): the phase competed for CPU"
        for phase, cpu in cpu_by_phase.items()
        if (cpu["background"] or 0) > BUSY_BACKGROUND_PCT
    ]


def command_version(args: Sequence[str]) -> str | None:
    """The first line a tool prints for its version, None if it cannot be run."""
    try:
        lines = subprocess.run(
            list(args), capture_output=True, text=True, check=False, timeout=VERSION_TIMEOUT_S
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    return lines[0].strip() if lines else None


def environment(benchmark: str, argv: Sequence[str], versions: dict[str, Any]) -> Report:
    """Where and how the run happened; ``versions`` adds the benchmark's own libraries."""
    import surveillance

    return {
        "benchmark": benchmark,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, "-m", benchmark, *argv]),
        "machine": machine_facts(),
        "versions": {
            "python": platform.python_version(),
            "surveillance": surveillance.__version__,
            **versions,
        },
    }


def settings_info(settings: Any) -> Report:
    """A benchmark's settings dataclass as JSON: clips by their cache key, paths as text."""
    info: Report = {}
    for field in fields(settings):
        value = getattr(settings, field.name)
        if isinstance(value, ClipSpec):
            value = value.key()
        elif isinstance(value, Path):
            value = str(value)
        elif is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        info[field.name] = value
    info["service_command"] = " ".join(serve_prefix())
    return info


def plain(value: Any) -> Any:
    """``value`` with every CPU window in it turned into a dict, ready for JSON."""
    if isinstance(value, CpuWindow):
        return asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def run_benchmark(
    benchmark: str,
    argv: Sequence[str],
    settings: AnySettings,
    *,
    versions: Callable[[], dict[str, Any]],
    run_phases: Callable[[AnySettings], Report],
    summarize: Callable[[AnySettings, Report], Report],
    print_table: Callable[[Report], None],
    describe: Callable[[AnySettings], Report] = settings_info,
) -> int:
    """Run the phases, then print and write the report.

    The report is the environment, what ``summarize`` makes of the phases, the phases
    themselves and the settings (``describe``). SIGTERM and SIGHUP unwind like Ctrl-C, so
    every process the phases started is stopped however the run ends.
    """
    unwind_on_termination()
    report = environment(benchmark, argv, versions())
    try:
        phases = run_phases(settings)
    except KeyboardInterrupt:
        progress(benchmark, "interrupted: every process it started has been stopped")
        return 130
    report.update(summarize(settings, phases))
    report["phases"] = plain(phases)
    report["settings"] = describe(settings)
    report["machine"]["loadavg_end"] = load_average()
    print_table(report)
    if settings.json_path is not None:
        settings.json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        progress(benchmark, f"wrote {settings.json_path}")
    return 0
