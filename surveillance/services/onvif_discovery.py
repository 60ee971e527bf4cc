"""Discovery runs: find ONVIF devices (WS-Discovery multicast and unicast), inspect each, and
compare them with the catalog, in the background and within a time limit.

One run at a time (a second is refused while one runs: discovery knocks on a whole network);
an address of a network or range named with a port where nothing accepts a connection is
counted ("246 addresses did not answer"), not listed: most addresses of a network hold no
camera. A host named alone is listed whatever it answered, with the reason.
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
from surveillance.config.models import OnvifConfig, OnvifDiscoveryConfig
from surveillance.errors import Conflict, InvalidRequest, NotFound
from surveillance.onvif.catalog_rows import build_rows, to_csv, to_yaml
from surveillance.onvif.inspect import inspect
from surveillance.onvif.records import DeviceReport, DiscoveredDevice
from surveillance.onvif.targets import Target, parse_targets
from surveillance.onvif.wsd import probe
from surveillance.services.onvif_scope import (
    CatalogStatus,
    catalog_status,
    device_order,
    gone_cameras,
    host_of,
    local_networks,
)

log = logging.getLogger(__name__)

KEPT_RUNS = 10
# Connection attempts to a range's addresses at once (each is a SYN; cheap, unlike an
# inspection, which builds SOAP services).
KNOCKS_AT_ONCE = 32
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
    status: CatalogStatus  # "new", "same", "changed", or the outcome if not inspected
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
    silent: int = 0  # addresses of a ported network or range where nothing answered
    not_probed: int = 0  # named addresses the time limit came before
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
        results = {result.report.device_url: result for result in run.results}
        reports = {url: result.report for url, result in results.items()}
        unknown = [url for url in device_urls if url not in reports]
        if unknown:
            raise InvalidRequest(f"device {unknown[0]!r} is not a result of run {run_id}")
        if platform not in self._catalog.platforms:
            raise InvalidRequest(f"unknown platform {platform!r}")
        unknown_tags = [tag for tag in tags if tag not in self._catalog.tags]
        if unknown_tags:  # the configuration would not load with them
            raise InvalidRequest(f"unknown tag {unknown_tags[0]!r}")
        chosen = [reports[url] for url in dict.fromkeys(device_urls)]
        failed = [report.device_url for report in chosen if not report.ok]
        if failed:
            raise InvalidRequest(f"device {failed[0]!r} was not inspected successfully")
        # Its rows would be a second camera id for one device (a second PTZ lease, every
        # stream pulled twice). The camera's id is not named: it may be another
        # administrator's platform's.
        same = [url for url in dict.fromkeys(device_urls) if results[url].status == "same"]
        if same:
            raise InvalidRequest(
                f"device {same[0]!r} is already in the catalog, unchanged: "
                "choose new (or changed) devices only"
            )
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
            "discovery %s done in %.1f s: %d probes, devices %s, %d addresses silent, "
            "%d gone, %d answers dropped",
            run.id,
            run.elapsed_s,
            run.probes_sent,
            counts or "none",
            run.silent,
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
        hosts = {target.host for target in targets}
        inspections = _Inspections(limits, username, password)

        def answered_probe(device: DiscoveredDevice) -> None:
            # Inspected at once: a /24's sweep and its answer wait overlap the inspections.
            if device.device_url and _in_scope(device, hosts, run.multicast):
                inspections.add(device.device_url, device)
                run.to_inspect = len(inspections)

        def probe_sent(count: int) -> None:
            run.probes_sent = count  # the page's progress line grows during a sweep

        try:
            outcome = await probe(
                unicast=list(dict.fromkeys(target.host for target in targets)),
                multicast_interfaces=[str(network.ip) for network in networks],
                probes_per_s=limits.probes_per_s,
                answer_wait_s=limits.answer_wait_s,
                deadline=deadline - inspect_budget,
                on_device=answered_probe,
                on_sent=probe_sent,
            )
        except BaseException:
            await self._stopped(run, inspections)  # no inspection outlives the run
            raise
        run.probes_sent = outcome.probes_sent
        run.not_probed = outcome.not_probed
        run.dropped = list(outcome.dropped)
        answered = {device.address for device in outcome.devices}
        answered |= {name for name, ip in outcome.resolved.items() if ip in answered}
        for target in targets:
            if target.host in answered:
                continue
            # Named with a port: tried even without a WS-Discovery answer; a range's address
            # only if something accepts a connection. A host named alone without a port is
            # tried on the usual port (80), so that it is listed with its reason (README:
            # "a host named alone is always listed"); a range's portless addresses are not.
            if target.port_given:
                inspections.add(target.device_url, None, knock=target if target.in_range else None)
            elif not target.in_range:
                inspections.add(target.device_url, None)
        run.phase = "inspecting"
        run.to_inspect = len(inspections)
        try:
            reports, run.silent = await inspections.finish(deadline - loop.time())
        except BaseException:
            await self._stopped(run, inspections)
            raise
        finally:
            inspections.cancel()
        reports.sort(key=lambda report: device_order(report.device_url))
        run.results = [self._with_status(report) for report in reports]
        # Unreachable: nothing took the connection, so nothing answered from that host.
        seen_hosts = answered | {
            host_of(report.device_url) for report in reports if report.outcome != "unreachable"
        }
        run.gone = gone_cameras(self._catalog, seen_hosts, named=hosts, networks=networks)

    async def _stopped(self, run: DiscoveryRun, inspections: _Inspections) -> None:
        """The run is being stopped (a shutdown, Ctrl-C of the command): its inspections
        are cancelled and waited for (each closes its HTTP sessions), and what was
        inspected by then is kept as the run's results."""
        reports = await inspections.close()
        reports.sort(key=lambda report: device_order(report.device_url))
        run.results = [self._with_status(report) for report in reports]

    def _with_status(self, report: DeviceReport) -> DiscoveryResult:
        status, camera_id, changes = catalog_status(self._catalog, report)
        return DiscoveryResult(report, status, camera_id, changes)


class _Inspections:
    """A run's inspections, each started as its device is found (once per device URL), at
    most ``inspect_concurrency`` at a time. One added with ``knock`` (an address of a range,
    not found by WS-Discovery) is first tried with a bare TCP connection: where nothing
    accepts one, there is no device and no report, only a count."""

    def __init__(
        self, limits: OnvifDiscoveryConfig, username: str | None, password: str | None
    ) -> None:
        self._limits = limits
        self._username = username
        self._password = password
        self._gate = asyncio.Semaphore(limits.inspect_concurrency)
        self._knocks = asyncio.Semaphore(KNOCKS_AT_ONCE)
        self._tasks: dict[
            str, tuple[asyncio.Task[DeviceReport | None], DiscoveredDevice | None, bool]
        ] = {}
        self._accepted: set[str] = set()  # knocked, and something took the connection

    def __len__(self) -> int:
        return len(self._tasks)

    def add(
        self, url: str, discovered: DiscoveredDevice | None, *, knock: Target | None = None
    ) -> None:
        if url not in self._tasks:
            task = asyncio.create_task(self._one(url, discovered, knock))
            self._tasks[url] = (task, discovered, knock is not None)

    async def _one(
        self, url: str, discovered: DiscoveredDevice | None, knock: Target | None
    ) -> DeviceReport | None:
        if knock is not None:
            async with self._knocks:
                if not await accepts(knock.host, knock.port, self._limits.inspect_timeout_s):
                    return None
            self._accepted.add(url)
        async with self._gate:
            return await inspect(
                url,
                self._username,
                self._password,
                timeout_s=self._limits.inspect_timeout_s,
                discovered=discovered,
            )

    def cancel(self) -> None:
        for task, _, _ in self._tasks.values():
            task.cancel()
        self._password = None

    async def close(self) -> list[DeviceReport]:
        """Cancels the inspections still going and waits for them; the reports of those
        that were done."""
        self.cancel()
        tasks = [task for task, _, _ in self._tasks.values()]
        await asyncio.gather(*tasks, return_exceptions=True)
        return [
            report
            for task in tasks
            if not task.cancelled()
            and task.exception() is None
            and (report := task.result()) is not None
        ]

    async def finish(self, time_left_s: float) -> tuple[list[DeviceReport], int]:
        """Every report, and how many knocked addresses took no connection; one not done
        within ``time_left_s`` is cancelled and "timeout" (or silent, if it was knocked on
        and nothing had accepted the connection yet)."""
        tasks = [task for task, _, _ in self._tasks.values()]
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, time_left_s))
        reports: list[DeviceReport] = []
        silent = 0
        for url, (task, discovered, knocked) in self._tasks.items():
            if task.done() and not task.cancelled() and task.exception() is None:
                report = task.result()
                if report is None:
                    silent += 1
                else:
                    reports.append(report)
                continue
            task.cancel()
            if knocked and url not in self._accepted:
                silent += 1
                continue
            reports.append(
                DeviceReport(
                    device_url=url,
                    outcome="timeout",
                    reason="not inspected within the run's time limit",
                    endpoint=discovered.endpoint if discovered else None,
                    found_by=discovered.found_by if discovered else None,
                )
            )
        await asyncio.gather(*tasks, return_exceptions=True)
        return reports, silent


async def accepts(host: str, port: int, timeout_s: float) -> bool:
    """Whether something at ``host``:``port`` accepts a TCP connection within ``timeout_s``
    (refused, no route and no answer to the SYN all say no)."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _in_scope(device: DiscoveredDevice, hosts: Iterable[str], multicast: bool) -> bool:
    """A multicast run takes every device that answered; a unicast-only run only those at
    the addresses it named (a device elsewhere may have answered a stray probe)."""
    return multicast or device.address in set(hosts)
