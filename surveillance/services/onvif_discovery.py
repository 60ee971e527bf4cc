"""Discovery runs: find ONVIF devices (WS-Discovery multicast and unicast), inspect each, and
compare them with the catalog, in the background and within a time limit.

One run at a time (a second is refused while one runs: discovery knocks on a whole network);
the last :data:`KEPT_RUNS` are kept in memory for the admin page to read. The password a run
is given is used by its inspections and dropped when the run ends: a finished run, its log
lines and everything shown of it hold the user name at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from surveillance.catalog import Catalog
from surveillance.config.models import OnvifConfig
from surveillance.errors import Conflict, InvalidRequest, NotFound
from surveillance.onvif.catalog_rows import build_rows, to_csv, to_yaml
from surveillance.onvif.inspect import inspect
from surveillance.onvif.records import DeviceReport, DiscoveredDevice
from surveillance.onvif.targets import Target, parse_targets
from surveillance.onvif.wsd import probe
from surveillance.services.onvif_scope import (
    CatalogStatus,
    catalog_status,
    gone_cameras,
    host_of,
    local_networks,
)

log = logging.getLogger(__name__)

KEPT_RUNS = 10
RunState = Literal["running", "done"]


@dataclass(frozen=True)
class DiscoveryRequest:
    targets: tuple[str, ...] = ()
    multicast: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    time_limit_s: float | None = None  # <= config.onvif.discovery.time_limit_s


@dataclass(frozen=True)
class DiscoveryResult:
    """One device: what inspecting it gave, and how it stands against the catalog."""

    report: DeviceReport
    status: CatalogStatus
    camera_id: str | None = None  # the catalog camera on the same host
    changes: tuple[str, ...] = ()  # "same"/"changed": what differs, for a person


@dataclass
class DiscoveryRun:
    """A run, as the page reads it while it goes on. Holds no password."""

    id: str
    by: str
    targets: tuple[str, ...]
    multicast: bool
    username: str | None
    time_limit_s: float
    started_at: datetime
    started_monotonic: float
    state: RunState = "running"
    phase: Literal["probing", "inspecting", "done"] = "probing"
    probes_sent: int = 0
    to_inspect: int = 0
    results: list[DiscoveryResult] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    ended_monotonic: float | None = None

    @property
    def elapsed_s(self) -> float:
        end = self.ended_monotonic if self.ended_monotonic is not None else time.monotonic()
        return round(end - self.started_monotonic, 3)


class DiscoveryService:
    def __init__(
        self,
        config: OnvifConfig,
        catalog: Catalog,
        *,
        multicast_interfaces: Sequence[str] | None = None,
    ) -> None:
        """``multicast_interfaces``: local IPv4 addresses to probe from; None: every
        interface of this machine (as ONVIF clients do: cameras sit on any of them)."""
        self._config = config.discovery
        self._catalog = catalog
        self._interfaces = multicast_interfaces
        self._runs: OrderedDict[str, DiscoveryRun] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, request: DiscoveryRequest, by: str) -> DiscoveryRun:
        """Starts a run in the background. InvalidRequest for bad targets or limits, Conflict
        while another run goes on."""
        limits = self._config
        try:
            targets = parse_targets(request.targets, limits.max_hosts)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if not targets and not request.multicast:
            raise InvalidRequest("nothing to search: give targets or allow multicast")
        limit = request.time_limit_s if request.time_limit_s is not None else limits.time_limit_s
        if not 0 < limit <= limits.time_limit_s:
            raise InvalidRequest(f"time_limit_s must be above 0 and at most {limits.time_limit_s}")
        running = [run for run in self._runs.values() if run.state == "running"]
        if running:
            raise Conflict(f"discovery run {running[0].id} by {running[0].by} is still running")
        run = DiscoveryRun(
            id=secrets.token_hex(8),
            by=by,
            targets=tuple(request.targets),
            multicast=request.multicast,
            username=request.username,
            time_limit_s=limit,
            started_at=datetime.now(UTC),
            started_monotonic=time.monotonic(),
        )
        self._runs[run.id] = run
        while len(self._runs) > KEPT_RUNS:
            oldest = next(iter(self._runs))
            if self._runs[oldest].state == "running":
                break
            del self._runs[oldest]
        log.info(
            "discovery %s by %s: %d hosts named, multicast %s, limit %.0f s",
            run.id,
            by,
            len(targets),
            "on" if request.multicast else "off",
            limit,
        )
        task = asyncio.create_task(
            self._run(run, targets, request.username, request.password),
            name=f"onvif-discovery-{run.id}",
        )
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))
        return run

    def get(self, run_id: str) -> DiscoveryRun:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFound(f"no discovery run {run_id!r}")
        return run

    async def wait(self, run_id: str) -> DiscoveryRun:
        """The run once it is done (for the command line and the bench)."""
        run = self.get(run_id)
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.shield(task)
        return run

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def catalog_text(
        self,
        run_id: str,
        device_urls: Sequence[str],
        *,
        fmt: Literal["csv", "yaml"],
        platform: str,
        tags: Sequence[str] = (),
        id_prefix: str = "",
    ) -> str:
        """Catalog rows (CSV or YAML) for the chosen devices of a run."""
        run = self.get(run_id)
        reports = {result.report.device_url: result.report for result in run.results}
        unknown = [url for url in device_urls if url not in reports]
        if unknown:
            raise InvalidRequest(f"device {unknown[0]!r} is not a result of run {run_id}")
        if platform not in self._catalog.platforms:
            raise InvalidRequest(f"unknown platform {platform!r}")
        chosen = [reports[url] for url in dict.fromkeys(device_urls)]
        failed = [report.device_url for report in chosen if not report.ok]
        if failed:
            raise InvalidRequest(f"device {failed[0]!r} was not inspected successfully")
        try:
            rows, skipped = build_rows(
                chosen,
                platform=platform,
                tags=tags,
                id_prefix=id_prefix,
                taken_ids=self._catalog.cameras,
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        if skipped:
            url, why = skipped[0]
            raise InvalidRequest(f"device {url!r} cannot be a camera: {why}")
        return to_csv(rows) if fmt == "csv" else to_yaml(rows)

    async def _run(
        self,
        run: DiscoveryRun,
        targets: list[Target],
        username: str | None,
        password: str | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + run.time_limit_s
        try:
            await self._discover(run, targets, username, password, deadline)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("discovery %s failed", run.id)
        finally:
            run.state = "done"
            run.phase = "done"
            run.ended_monotonic = time.monotonic()
        counts: dict[str, int] = {}
        for result in run.results:
            counts[result.report.outcome] = counts.get(result.report.outcome, 0) + 1
        log.info(
            "discovery %s done in %.1f s: %d probes, devices %s, %d gone, %d answers dropped",
            run.id,
            run.elapsed_s,
            run.probes_sent,
            counts or "none",
            len(run.gone),
            len(run.dropped),
        )

    async def _discover(
        self,
        run: DiscoveryRun,
        targets: list[Target],
        username: str | None,
        password: str | None,
        deadline: float,
    ) -> None:
        limits = self._config
        loop = asyncio.get_running_loop()
        networks = local_networks(self._interfaces) if run.multicast else []
        # Leave one inspection's worth of time (or half the run) after the probes.
        inspect_budget = min(limits.inspect_timeout_s * 3, run.time_limit_s / 2)
        outcome = await probe(
            unicast=list(dict.fromkeys(target.host for target in targets)),
            multicast_interfaces=[str(network.ip) for network in networks],
            probes_per_s=limits.probes_per_s,
            answer_wait_s=limits.answer_wait_s,
            deadline=deadline - inspect_budget,
        )
        run.probes_sent = outcome.probes_sent
        run.dropped = list(outcome.dropped)
        hosts = {target.host for target in targets}
        found = [d for d in outcome.devices if d.device_url and _in_scope(d, hosts, run.multicast)]
        to_inspect: dict[str, DiscoveredDevice | None] = {}
        for device in found:
            to_inspect.setdefault(device.device_url or "", device)
        answered = {device.address for device in outcome.devices}
        for target in targets:  # named with a port: tried even without a WS-Discovery answer
            if target.port_given and target.host not in answered:
                to_inspect.setdefault(target.device_url, None)
        run.phase = "inspecting"
        run.to_inspect = len(to_inspect)
        reports = await self._inspect_all(to_inspect, username, password, deadline - loop.time())
        run.results = [self._with_status(report) for report in reports]
        seen_hosts = answered | {host_of(report.device_url) for report in reports}
        run.gone = gone_cameras(self._catalog, seen_hosts, named=hosts, networks=networks)

    async def _inspect_all(
        self,
        devices: dict[str, DiscoveredDevice | None],
        username: str | None,
        password: str | None,
        time_left_s: float,
    ) -> list[DeviceReport]:
        limits = self._config
        gate = asyncio.Semaphore(limits.inspect_concurrency)

        async def one(url: str, discovered: DiscoveredDevice | None) -> DeviceReport:
            async with gate:
                return await inspect(
                    url,
                    username,
                    password,
                    timeout_s=limits.inspect_timeout_s,
                    discovered=discovered,
                )

        tasks = {url: asyncio.create_task(one(url, d)) for url, d in devices.items()}
        if tasks:
            await asyncio.wait(tasks.values(), timeout=max(0.0, time_left_s))
        reports: list[DeviceReport] = []
        for url, task in tasks.items():
            if task.done() and not task.cancelled() and task.exception() is None:
                reports.append(task.result())
                continue
            task.cancel()
            discovered = devices[url]
            reports.append(
                DeviceReport(
                    device_url=url,
                    outcome="timeout",
                    reason="not inspected within the run's time limit",
                    endpoint=discovered.endpoint if discovered else None,
                    found_by=discovered.found_by if discovered else None,
                )
            )
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        return reports

    def _with_status(self, report: DeviceReport) -> DiscoveryResult:
        status, camera_id, changes = catalog_status(self._catalog, report)
        return DiscoveryResult(report, status, camera_id, changes)


def _in_scope(device: DiscoveredDevice, hosts: Iterable[str], multicast: bool) -> bool:
    """A multicast run takes every device that answered; a unicast-only run only those at
    the addresses it named (a device elsewhere may have answered a stray probe)."""
    return multicast or device.address in set(hosts)
