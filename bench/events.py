"""Events benchmark: what diagnosis and zone motion cost per camera, how fast faults are
detected, whether sound cameras raise anything, and how fast an alarm reaches the wall.

Usage::

    python -m bench.events --quick --json /tmp/bench-events.json      # a smoke run
    python -m bench.events --cameras 8 --json /tmp/bench-events.json

Figures, with issue 13's targets:

=====================================  ==========================  ==================
figure                                 measured by                 target
=====================================  ==========================  ==================
diagnosis_cpu_pct_per_camera           ``bench.events_diagnosis``  <= 0.3 % of a core
zone_motion_cpu_pct_per_camera         ``bench.events_zones``      <= 3 % of a core
detect_latency_s (per fault type)      ``bench.events_diagnosis``  <= 30 s each
false_alarms_per_100_camera_hours      here (and the modules)      0
alarm_to_wall_ms (median)              here                        <= 1000 ms
=====================================  ==========================  ==================

The two other modules each start their own simulator and service (CPU is measured on a
service process with the feature on minus off, same run, the same cameras), run as
``python -m bench.<module> --cameras N [--quick] --json FILE``; their JSON is read back
by the figure names above, at its top level or one section down (and ``*_baseline*``
figures beside them are printed too). A
module that is missing or fails is named in ``warnings`` and its figures are null.
This module's own part is :mod:`bench.events_wall`. CPU is in percent of ONE core.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from bench import events_wall, harness
from bench.cameras import camera_ids, staggered_mounts
from bench.procs import python_env, unwind_on_termination
from surveillance.simulator import ClipSpec, Simulator

BENCHMARK = "bench.events"
OTHER_MODULES = ("bench.events_diagnosis", "bench.events_zones")
OTHER_MODULE_TIMEOUT_S = 1800.0
CLIP = ClipSpec(width=1280, height=720, fps=25, bitrate_kbps=2000, gop_s=2.0, seconds=10.0)
TARGETS: dict[str, tuple[str, float]] = {  # figure: (rule, limit); every one "at most"
    "diagnosis_cpu_pct_per_camera": ("<= 0.3 % of a core", 0.3),
    "zone_motion_cpu_pct_per_camera": ("<= 3 % of a core", 3.0),
    "detect_latency_s": ("<= 30 s for every fault type", 30.0),
    "false_alarms_per_100_camera_hours": ("0", 0.0),
    "alarm_to_wall_ms": ("<= 1000 ms (median)", 1000.0),
}
DEFAULTS = {"cameras": 8, "samples": 20, "soak_s": 300.0}
QUICK = {"cameras": 3, "samples": 5, "soak_s": 45.0}


def _run_module(
    module: str, cameras: int, quick: bool, tmp: Path
) -> tuple[dict[str, Any], str | None]:
    """The module's JSON report, or a warning saying why there is none."""
    if find_spec(module) is None:
        return {}, f"{module} is missing: its figures are null"
    out = tmp / f"{module}.json"
    command = [sys.executable, "-m", module, "--cameras", str(cameras), "--json", str(out)]
    if quick:
        command.append("--quick")
    harness.progress(BENCHMARK, f"running {' '.join(command[1:])} ...")
    try:
        done = subprocess.run(
            command, env=python_env(), timeout=OTHER_MODULE_TIMEOUT_S, check=False,
            stdout=sys.stderr,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {}, f"{module} ran past {OTHER_MODULE_TIMEOUT_S:.0f} s: its figures are null"
    if done.returncode != 0 or not out.exists():
        return {}, f"{module} exited with status {done.returncode}: its figures are null"
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report, None


def _flat(report: dict[str, Any]) -> dict[str, Any]:
    """A module's figures, top level first, then those one section down (a module may
    group them: ``{"diagnosis_cpu": {"diagnosis_cpu_pct_per_camera": ...}}``)."""
    found = {k: v for k, v in report.items() if not isinstance(v, dict)}
    for section in report.values():
        if isinstance(section, dict):
            for k, v in section.items():
                found.setdefault(k, v)
    found.update({k: v for k, v in report.items() if isinstance(v, dict) and k in TARGETS})
    return found


def _figure(reports: list[dict[str, Any]], name: str) -> Any:
    for report in reports:
        value = _flat(report).get(name)
        if value is not None:
            return value
    return None


def _baselines(reports: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: v for r in reports for k, v in _flat(r).items() if "baseline" in k}


def _verdict(name: str, value: Any) -> bool | None:
    limit = TARGETS[name][1]
    if value is None:
        return None
    if isinstance(value, dict):  # per fault type: every one within the limit, none missed
        values = list(value.values())
        # A latency below zero (an event before its fault began) is a wrong measurement.
        return bool(values) and all(v is not None and 0 <= v <= limit for v in values)
    return bool(value <= limit)


def run(cameras: int, samples: int, soak_s: float, quick: bool) -> dict[str, Any]:
    unwind_on_termination()
    report = harness.environment(BENCHMARK, sys.argv[1:], {})
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp_name:
        tmp = Path(tmp_name)
        others: list[dict[str, Any]] = []
        for module in OTHER_MODULES:
            found, warning = _run_module(module, cameras, quick, tmp)
            others.append(found)
            if warning:
                warnings.append(warning)
        ids = camera_ids(cameras)
        simulator = Simulator(staggered_mounts(ids, CLIP), clip_dir=harness.CLIP_CACHE)
        simulator.start(timeout_s=180)
        try:
            harness.progress(
                BENCHMARK, f"alarm to wall: {samples} alarms, then soak to {soak_s:g} s"
            )
            wall = events_wall.measure(
                {cid: simulator.url(cid) for cid in ids}, tmp / "data", samples, soak_s
            )
        finally:
            simulator.stop()
    false_here = wall.false_alarms_per_100_camera_hours
    false_others = _figure(others, "false_alarms_per_100_camera_hours")
    figures = {
        "diagnosis_cpu_pct_per_camera": _figure(others, "diagnosis_cpu_pct_per_camera"),
        "zone_motion_cpu_pct_per_camera": _figure(others, "zone_motion_cpu_pct_per_camera"),
        "detect_latency_s": _figure(others, "detect_latency_s"),
        "false_alarms_per_100_camera_hours": max(
            (v for v in (false_here, false_others) if v is not None), default=None
        ),
        "alarm_to_wall_ms": wall.alarm_to_wall_ms,
    }
    report.update(figures)
    report["baselines"] = {"alarm_sse_ms": wall.sse_baseline_ms, **_baselines(others)}
    report["targets"] = {
        name: {"rule": rule, "value": figures[name], "pass": _verdict(name, figures[name])}
        for name, (rule, _) in TARGETS.items()
    }
    report["alarm_to_wall"] = asdict(wall)
    report["modules"] = dict(zip(OTHER_MODULES, others, strict=True))
    report["settings"] = {"cameras": cameras, "samples": samples, "soak_s": soak_s, "quick": quick}
    report["warnings"] = warnings
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"{'figure':<36} {'measured':>10}  {'target':<30} pass")
    for name, target in report["targets"].items():
        value = target["value"]
        verdict = {True: "yes", False: "NO", None: "-"}[target["pass"]]
        shown = "per type" if isinstance(value, dict) else str(value)
        print(f"{name:<36} {shown:>10}  {target['rule']:<30} {verdict}")
        if isinstance(value, dict):
            for kind, figure in value.items():
                print(f"  {kind:<34} {figure!s:>10}")
    wall = report["alarm_to_wall"]
    print(
        f"baseline beside alarm_to_wall_ms: the same event at a plain SSE client "
        f"{report['baselines']['alarm_sse_ms']} ms (median); wall max "
        f"{wall['alarm_to_wall_ms_max']} ms, {wall['missed']} of {wall['samples']} alarms "
        f"not pinned in {events_wall.PIN_TIMEOUT_S:g} s"
    )
    print(
        f"false alarms here: {wall['false_alarms']} over {wall['camera_hours']} camera-hours "
        "of sound cameras"
    )
    for name, value in report["baselines"].items():
        if name != "alarm_sse_ms":
            print(f"baseline {name}: {value}")
    for warning in report["warnings"]:
        print(f"warning: {warning}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {BENCHMARK}", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cameras", type=int, help="simulator cameras (default 8; 3 quick)")
    parser.add_argument("--samples", type=int, help="alarms raised for the wall (default 20)")
    parser.add_argument("--soak-s", type=float, help="node running time for false alarms")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    cameras = args.cameras or int(base["cameras"])
    samples = args.samples or int(base["samples"])
    soak_s = args.soak_s if args.soak_s is not None else float(base["soak_s"])
    if cameras < 1 or samples < 1:
        parser.error("--cameras and --samples must be positive")
    report = run(cameras, samples, soak_s, args.quick)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        harness.progress(BENCHMARK, f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
