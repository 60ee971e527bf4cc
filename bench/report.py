"""The ingest benchmark's verdicts against the performance budget, and its printed table."""

from __future__ import annotations

from typing import Any

CPU_RATIO_LIMIT = 1.5  # service CPU per stream / ffmpeg -c copy CPU per stream
SCALE_STREAMS = 200  # streams one 2-core node must hold ...
SCALE_MACHINE_SHARE = 0.5  # ... using at most this share of the machine
RSS_RING_FACTOR, RSS_SLACK_MB = 1.2, 2.0  # RSS per stream <= factor x ring + slack
SNAPSHOT_1080P_P95_MS = 50.0


def _verdict(value: float | None, limit: float | None) -> bool | None:
    if value is None or limit is None:
        return None
    return value <= limit


def build_targets(f: dict[str, Any], nproc: int) -> dict[str, dict[str, Any]]:
    """Each target: its rule, the measured value, the limit, and pass (None: not judged)."""
    ring = f["ring_mb_per_stream"]
    rss_limit = None if ring is None else round(RSS_RING_FACTOR * ring + RSS_SLACK_MB, 3)
    cpu_limit = SCALE_MACHINE_SHARE * 100 * nproc  # in % of one core
    targets: dict[str, dict[str, Any]] = {
        "cpu_per_stream_vs_ffmpeg": {
            "rule": f"service CPU per stream <= {CPU_RATIO_LIMIT}x ffmpeg -c copy per stream",
            "value": f["ratio_service_vs_ffmpeg"],
            "limit": CPU_RATIO_LIMIT,
            "pass": _verdict(f["ratio_service_vs_ffmpeg"], CPU_RATIO_LIMIT),
        },
        "streams_per_node": {
            "rule": f">= {SCALE_STREAMS} streams online at <= {SCALE_MACHINE_SHARE:.0%} of the "
            f"machine ({cpu_limit:g}% of one core); judged only at --cameras >= {SCALE_STREAMS}",
            "value": {"online": f["online"], "service_cpu_pct_total": f["service_cpu_pct_total"]},
            "limit": {"online": SCALE_STREAMS, "service_cpu_pct_total": cpu_limit},
            "pass": None,
        },
        "memory_per_stream": {
            "rule": f"RSS per stream <= {RSS_RING_FACTOR} x ring MB + {RSS_SLACK_MB:g} MB",
            "value": f["service_rss_mb_per_stream"],
            "limit": rss_limit,
            "pass": _verdict(f["service_rss_mb_per_stream"], rss_limit),
        },
        "snapshot_1080p_p95": {
            "rule": f"1080p snapshot p95 <= {SNAPSHOT_1080P_P95_MS:g} ms (cold and warm requests "
            "as sampled; the on-demand connect excluded)",
            "value": f.get("snapshot_1080p_p95_ms"),
            "limit": SNAPSHOT_1080P_P95_MS,
            "pass": _verdict(f.get("snapshot_1080p_p95_ms"), SNAPSHOT_1080P_P95_MS),
        },
        "snapshot_1080p_cold_p95": {
            "rule": "informational: cold 1080p snapshots alone, "
            f"p95 <= {SNAPSHOT_1080P_P95_MS:g} ms",
            "value": f.get("snapshot_1080p_cold_p95_ms"),
            "limit": SNAPSHOT_1080P_P95_MS,
            "pass": _verdict(f.get("snapshot_1080p_cold_p95_ms"), SNAPSHOT_1080P_P95_MS),
        },
    }
    if f["cameras"] >= SCALE_STREAMS and f["service_cpu_pct_total"] is not None:
        targets["streams_per_node"]["pass"] = (
            f["online"] >= SCALE_STREAMS and f["service_cpu_pct_total"] <= cpu_limit
        )
    return targets


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _row(label: str, *cells: Any) -> str:
    return f"  {label:<30}" + "".join(f"{_fmt(c):>14}" for c in cells)


def print_table(r: dict[str, Any]) -> None:
    phases = r["phases"]
    cpu = r["cpu_pct_by_phase"]
    s = r["settings"]
    print(
        f"\nbench.ingest  {r['timestamp']}  {r['machine']['nproc']} cores "
        f"({r['machine']['cpu_model']}), load {r['machine']['loadavg_start']}"
    )
    print(f"  {r['command']}")
    servers = phases["simulator_processes"]
    print(
        f"  {r['cameras']} cameras from {servers} simulator process{'es' if servers != 1 else ''}"
        f", clip {s['clip']}; {s['repeat']} x {s['seconds']:g} s windows per phase, medians; "
        "CPU in % of one core\n"
    )
    print(_row("", "service", "ffmpeg copy", f"opencv ({r['opencv_cameras']})"))
    print(
        _row(
            "CPU total",
            r["service_cpu_pct_total"],
            r["ffmpeg_copy_cpu_pct_total"],
            cpu["opencv"]["opencv"],
        )
    )
    print(
        _row(
            "CPU per stream",
            r["service_cpu_pct_per_stream"],
            r["ffmpeg_copy_cpu_pct_per_stream"],
            r["opencv_cpu_pct_per_stream"],
        )
    )
    print(
        _row(
            "RSS MB per stream",
            r["service_rss_mb_per_stream"],
            r["ffmpeg_rss_mb_per_stream"],
            r["opencv_rss_mb_per_stream"],
        )
    )
    print(_row("  (ffmpeg PSS MB per stream)", None, r["ffmpeg_pss_mb_per_stream"], None))
    for label, key in (("simulator CPU", "simulator"), ("background CPU", "background")):
        print(_row(label, *(cpu[p][key] for p in ("service", "ffmpeg", "opencv"))))
    print(_row("machine CPU", *(cpu[p]["machine"] for p in ("service", "ffmpeg", "opencv"))))
    print(
        _row("streams flowing", *(r["flowing_streams"][p] for p in ("service", "ffmpeg", "opencv")))
    )
    print(
        _row(
            "received kbit/s per stream",
            *(phases[p]["received_kbps_per_stream"] for p in ("service", "ffmpeg", "opencv")),
        )
    )
    _print_service_lines(r, phases)
    _print_targets(r["targets"])
    for warning in r["warnings"]:
        print(f"  WARNING: {warning}")


def _print_service_lines(r: dict[str, Any], phases: dict[str, Any]) -> None:
    svc = phases["service"]
    print(
        f"\n  online {r['online']}/{r['cameras']} (waited {svc['online_wait_s']} s); "
        f"service reports {svc['stream_fps_mean']} fps, {svc['stream_kbps_mean']} kbit/s per "
        f"stream; {phases['ffmpeg']['ffmpeg_receiving']}/{r['cameras']} ffmpeg receiving"
    )
    print(
        f"  RSS {r['service_rss_mb']} MB with {r['cameras']} cameras, "
        f"{r['service_rss_mb_zero']} MB and {r['service_cpu_pct_zero']}% CPU with none; "
        f"ring {r['ring_mb_per_stream']} MB per stream ({svc['ring_seconds_mean']} s); "
        f"ratio service/ffmpeg {r['ratio_service_vs_ffmpeg']} per stream, "
        f"{r['ratio_service_vs_ffmpeg_per_mbit']} per Mbit/s received, "
        f"opencv/ffmpeg {r['ratio_opencv_vs_ffmpeg']}"
    )
    print(
        f"  opencv: {r['opencv_fps_per_camera']} fps per camera (min {r['opencv_fps_min']}), "
        f"keeps up: {r['opencv_keeps_up']}"
    )
    print("\n  snapshots (ms)                     p50           p95             n")
    for label, prefix in (
        ("720p all", "snapshot"),
        ("720p cold", "snapshot_cold"),
        ("720p warm", "snapshot_warm"),
        ("1080p all", "snapshot_1080p"),
        ("1080p cold", "snapshot_1080p_cold"),
        ("1080p warm", "snapshot_1080p_warm"),
        ("1080p mode=keyframe", "snapshot_1080p_keyframe"),
    ):
        print(
            _row(label, r.get(f"{prefix}_p50_ms"), r.get(f"{prefix}_p95_ms"), r.get(f"{prefix}_n"))
        )
    print(
        f"  1080p first request (on-demand connect): {r.get('snapshot_1080p_first_ms')} ms; "
        f"failed requests: {r.get('snapshot_failed')} (720p), {r.get('snapshot_1080p_failed')} "
        f"(1080p); service CPU while snapshotting {svc['service_cpu_pct_during_snapshots']}%"
    )


def _print_targets(targets: dict[str, dict[str, Any]]) -> None:
    print("\n  targets")
    for name, target in targets.items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[target["pass"]]
        print(
            f"  [{verdict}] {name}: {target['value']} (limit {target['limit']}) - {target['rule']}"
        )
    print()
