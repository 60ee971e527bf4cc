"""``surveillance discover``: a discovery run from the command line, one line per device,
the catalog's new/changed/gone, and optionally the found cameras as CSV or YAML rows.

The password comes from an environment variable (``--password-env``), never from the
command line (where ``ps`` and the shell history would show it); it is given to the run
and printed nowhere. Exit 0 once the run ends, whatever the devices answered (their reasons
are printed); 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.errors import SurveillanceError
from surveillance.onvif.catalog_rows import build_rows, to_csv, to_yaml
from surveillance.services.onvif_discovery import (
    DiscoveryRequest,
    DiscoveryResult,
    DiscoveryRun,
    DiscoveryService,
)
from surveillance.services.onvif_scope import COMPARISONS, device_order


def add_arguments(commands: Any) -> None:
    discover = commands.add_parser(
        "discover", help="find ONVIF cameras (WS-Discovery, then ask each what it is)"
    )
    discover.add_argument("--config", type=Path, help="compare with this configuration's cameras")
    discover.add_argument(
        "--range",
        dest="targets",
        action="append",
        default=[],
        metavar="ENTRY",
        help="address, network (10.1.2.0/24), range (10.1.2.3-40) or name, optional :port; "
        "repeat for more",
    )
    discover.add_argument("--no-multicast", action="store_true", help="unicast to --range only")
    discover.add_argument(
        "--interface",
        action="append",
        metavar="ADDR",
        help="local IPv4 address to send the multicast probe from (default: every interface)",
    )
    discover.add_argument("--username", help="user name for asking the devices")
    discover.add_argument(
        "--password-env", metavar="VAR", help="environment variable holding the password"
    )
    discover.add_argument("--time-limit", type=float, metavar="S", help="seconds for the run")
    out = discover.add_mutually_exclusive_group()
    out.add_argument("--csv", type=Path, metavar="OUT", help="write the cameras found as CSV")
    out.add_argument("--yaml", type=Path, metavar="OUT", help="... or as a cameras: section")
    discover.add_argument("--platform", help="platform id of the written cameras")
    discover.add_argument("--tags", default="", help="tags of the written cameras: a,b")
    discover.add_argument("--id-prefix", default="", help="prefix of the written cameras' ids")
    discover.add_argument("--json", action="store_true", help="print the run as JSON")


INTERRUPTED = 130  # the shell's code for a command ended by SIGINT (128 + 2)


def run(args: argparse.Namespace, config: AppConfig) -> int:
    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            print(f"environment variable {args.password_env} is not set", file=sys.stderr)
            return 2
    if (args.csv or args.yaml) and not args.platform:
        print("--csv/--yaml need --platform (the written cameras' platform)", file=sys.stderr)
        return 2
    catalog = Catalog.from_config(config)
    if args.platform and args.config and args.platform not in catalog.platforms:
        print(f"unknown platform {args.platform!r} in {args.config}", file=sys.stderr)
        return 2
    request = DiscoveryRequest(
        targets=tuple(args.targets),
        multicast=not args.no_multicast,
        username=args.username,
        password=password,
        time_limit_s=args.time_limit,
    )
    service = DiscoveryService(config.onvif, catalog, multicast_interfaces=args.interface)
    try:
        finished, interrupted = asyncio.run(_discover(service, request))
    except SurveillanceError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C while the first one's stop was going on
        print("discovery cancelled", file=sys.stderr)
        return INTERRUPTED
    if interrupted:  # what was inspected before Ctrl-C, then no rows: the run is partial
        print(_table(finished))
        print("discovery cancelled: the devices above were inspected so far", file=sys.stderr)
        return INTERRUPTED
    if args.json:
        print(json.dumps(_as_json(finished), indent=2, default=str))
    else:
        print(_table(finished))
    if args.csv or args.yaml:
        return _write_rows(args, catalog, finished)
    return 0


async def _discover(
    service: DiscoveryService, request: DiscoveryRequest
) -> tuple[DiscoveryRun, bool]:
    """The finished run, and whether Ctrl-C stopped it. asyncio.run turns the first Ctrl-C
    into a cancellation of this task: the run is stopped here, its inspections waited for
    (their HTTP sessions closed), so nothing is left for asyncio to report as unclosed."""
    started = service.start(request, by="cli")
    try:
        return await service.wait(started.id), False
    except asyncio.CancelledError:
        await service.stop()
        return service.get(started.id), True


def _line(result: DiscoveryResult) -> str:
    report = result.report
    status = result.status + (f" ({result.camera_id})" if result.camera_id else "")
    if not report.ok:
        return f"{report.device_url}  {report.outcome}: {report.reason}  [{status}]"
    offset = "?" if report.clock_offset_s is None else f"{report.clock_offset_s:+.1f} s"
    words = [
        report.device_url,
        "ok",
        report.manufacturer or "?",
        report.model or "?",
        f"firmware {report.firmware or '?'}",
        "PTZ" if report.ptz else "fixed",
        f"clock {offset}",
        f"main {report.main_uri or '-'}",
        f"sub {report.sub_uri or '-'}",
        f"[{status}]",
    ]
    lines = ["  ".join(words)]
    lines += [f"    {change}" for change in result.changes]
    return "\n".join(lines)


def _table(run: DiscoveryRun) -> str:
    ordered = sorted(run.results, key=lambda r: device_order(r.report.device_url))
    lines = [_line(result) for result in ordered]
    if not lines:
        lines.append("no devices found")
    lines += [f"gone: {camera_id} (in reach, did not answer)" for camera_id in run.gone]
    lines += [f"dropped: {address}: {why}" for address, why in run.dropped]
    counts = {s: sum(r.status == s for r in run.results) for s in COMPARISONS}
    failed = sum(not r.report.ok for r in run.results)
    lines.append(
        f"{len(run.results)} devices in {run.elapsed_s:.1f} s ({run.probes_sent} probes): "
        f"{counts['new']} new, {counts['changed']} changed, {counts['same']} same, "
        f"{failed} not inspected, {len(run.gone)} gone"
        + (f"; {run.silent} address{'es' * (run.silent != 1)} did not answer" if run.silent else "")
        + (f"; time ran out before {run.not_probed} were probed" if run.not_probed else "")
    )
    return "\n".join(lines)


def _as_json(run: DiscoveryRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "elapsed_s": run.elapsed_s,
        "probes_sent": run.probes_sent,
        "silent": run.silent,
        "not_probed": run.not_probed,
        "devices": [
            {
                **dataclasses.asdict(r.report),
                "catalog_status": r.status,
                "camera_id": r.camera_id,
                "changes": list(r.changes),
            }
            for r in run.results
        ],
        "gone": run.gone,
        "dropped": [{"address": a, "reason": why} for a, why in run.dropped],
    }


def _write_rows(args: argparse.Namespace, catalog: Catalog, run: DiscoveryRun) -> int:
    found = [r.report for r in run.results if r.report.ok and r.status == "new"]
    tags = [tag.strip() for tag in args.tags.split(",") if tag.strip()]
    unknown = [tag for tag in tags if tag not in catalog.tags]
    if unknown:  # a configuration naming it would not load
        print(f"unknown tag {unknown[0]!r}", file=sys.stderr)
        return 2
    try:
        rows, skipped = build_rows(
            found,
            platform=args.platform,
            tags=tags,
            id_prefix=args.id_prefix,
            taken_ids=catalog.cameras,
        )
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for url, why in skipped:
        print(f"not written: {url}: {why}", file=sys.stderr)
    path: Path = args.csv or args.yaml
    path.write_text(to_csv(rows) if args.csv else to_yaml(rows), encoding="utf-8")
    print(f"{len(rows)} new cameras written to {path}")
    return 0
