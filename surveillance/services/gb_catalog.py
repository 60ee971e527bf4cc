"""A GB/T 28181 platform's catalog: asked for, assembled from its pages, kept up to date.

After a platform registers it is asked for its catalog (a Catalog Query MESSAGE) and
subscribed to its changes (SUBSCRIBE, Event: Catalog), GB/T 28181-2016 s.9.5 and s.9.11.
The answer comes as MESSAGEs of up to a few dozen items each, all with the query's SN and
the total in SumNum; they are collected by platform and SN until SumNum items came, then
the catalog replaces the platform's channels. Pages that stop coming (a lost UDP datagram)
end the wait after ``PAGE_WAIT_S``: what came is merged in, nothing removed, since a
missing page is not a removed channel. NOTIFYs change single channels (ON/OFF/ADD/DEL/UPDATE).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from surveillance.config.models import Gb28181Config
from surveillance.gb28181.manscdp import (
    CatalogAnswer,
    CatalogItem,
    CatalogNotify,
    catalog_query,
    catalog_subscribe_body,
)
from surveillance.services.gb_cameras import GbChannelCameras, is_video_channel

log = logging.getLogger(__name__)

PAGE_WAIT_S = 30.0  # from the query (or the last page) to giving up on the rest
MAX_ASSEMBLIES_PER_PLATFORM = 4  # catalogs being collected at once; the oldest gives way
SUBSCRIBE_EXPIRES_S = 3600
RENEW_MARGIN_S = 60  # renew a subscription this long before it ends
TICK_S = 1.0
# GB/T 28181-2016 A.2.4.2 / A.2.5: what a catalog NOTIFY item's Event says.
OFF_EVENTS = frozenset({"OFF", "VLOST", "DEFECT"})  # no video from the channel now
ON_EVENTS = frozenset({"ON"})
REMOVE_EVENTS = frozenset({"DEL"})

# (platform id, method, body, extra headers) -> the final response's status, None when the
# platform is not registered or did not answer.
Requester = Callable[[str, str, bytes, Iterable[tuple[str, str]]], Awaitable[int | None]]


@dataclass(frozen=True)
class CatalogResult:
    platform_id: str
    sn: int
    sum_num: int
    items: tuple[CatalogItem, ...]  # the video channels among what came
    beyond_max: int  # video channels left out: over the platform's max_channels
    complete: bool  # every one of SumNum items came
    seconds: float  # from the first page (or the query) to now


@dataclass
class _Assembly:
    sn: int
    started: float
    last_page: float
    sum_num: int | None = None
    received: int = 0  # every item, channel or not: SumNum counts them all
    items: dict[str, CatalogItem] = field(default_factory=dict)
    beyond_max: int = 0  # video channels left out: the platform's max_channels was reached


class CatalogAssembler:
    """Pages of catalog answers collected by platform and SN (pure: time is passed in)."""

    def __init__(
        self, max_channels: Callable[[str], int], page_wait_s: float = PAGE_WAIT_S
    ) -> None:
        self._max_channels = max_channels
        self._page_wait_s = page_wait_s
        self._open: dict[str, dict[int, _Assembly]] = {}

    def expect(self, platform_id: str, sn: int, now: float) -> None:
        """A query with this SN was sent: its answer may take PAGE_WAIT_S to start."""
        self._assembly(platform_id, sn, now)

    def _assembly(self, platform_id: str, sn: int, now: float) -> _Assembly:
        by_sn = self._open.setdefault(platform_id, {})
        if sn not in by_sn:
            if len(by_sn) >= MAX_ASSEMBLIES_PER_PLATFORM:
                del by_sn[min(by_sn, key=lambda k: by_sn[k].last_page)]
            by_sn[sn] = _Assembly(sn, now, now)
        return by_sn[sn]

    def add(self, platform_id: str, answer: CatalogAnswer, now: float) -> CatalogResult | None:
        """One page; the result when it completes the catalog."""
        assembly = self._assembly(platform_id, answer.sn, now)
        assembly.last_page = now
        assembly.sum_num = max(0, answer.sum_num)
        assembly.received += len(answer.items) + answer.skipped  # SumNum counts those too
        room = self._max_channels(platform_id)
        for item in answer.items:
            if not is_video_channel(item.device_id):
                continue
            if item.device_id in assembly.items or len(assembly.items) < room:
                assembly.items[item.device_id] = item
            else:
                assembly.beyond_max += 1
        if assembly.received < assembly.sum_num:
            return None
        del self._open[platform_id][answer.sn]
        return self._result(platform_id, assembly, now, complete=True)

    def expire(self, now: float) -> list[CatalogResult]:
        """Catalogs whose next page has not come within PAGE_WAIT_S: what came of them."""
        done = []
        for platform_id, by_sn in self._open.items():
            for sn in [sn for sn, a in by_sn.items() if now - a.last_page >= self._page_wait_s]:
                done.append(self._result(platform_id, by_sn.pop(sn), now, complete=False))
        return done

    def forget(self, platform_id: str) -> None:
        self._open.pop(platform_id, None)

    @staticmethod
    def _result(platform_id: str, a: _Assembly, now: float, *, complete: bool) -> CatalogResult:
        return CatalogResult(
            platform_id=platform_id,
            sn=a.sn,
            sum_num=a.sum_num or 0,
            items=tuple(a.items.values()),
            beyond_max=a.beyond_max,
            complete=complete,
            seconds=now - a.started,
        )


@dataclass
class _Schedule:
    device_id: str
    next_query_at: float
    subscribed_until: float = 0.0


class GbCatalogSync:
    """Queries, subscriptions and the catalog answers and NOTIFYs of registered platforms."""

    def __init__(
        self,
        config: Gb28181Config,
        cameras: GbChannelCameras,
        request: Requester,
        clock: Callable[[], float] = time.time,
        tick_s: float = TICK_S,
    ) -> None:
        self._config = config
        self._cameras = cameras
        self._request = request
        self._clock = clock
        self._tick_s = tick_s
        platforms = {p.id: p for p in config.platforms}
        self.assembler = CatalogAssembler(lambda p: platforms[p].max_channels)
        self._online: dict[str, _Schedule] = {}
        self._sn = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._work: set[asyncio.Task[None]] = set()
        # "platform (address)" for log lines; the registry sets its presence's.
        self.where: Callable[[str], str] = str

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gb-catalog")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._work) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def platform_online(self, platform_id: str, device_id: str) -> None:
        """Registered (again, or from a new address): read its catalog and subscribe now."""
        self._online[platform_id] = _Schedule(device_id, next_query_at=0.0)

    def platform_offline(self, platform_id: str) -> None:
        self._online.pop(platform_id, None)
        self.assembler.forget(platform_id)

    async def _run(self) -> None:
        while True:
            now = self._clock()
            for result in self.assembler.expire(now):
                await self._guarded(self._apply(result), result.platform_id)
            for platform_id, schedule in list(self._online.items()):
                if now >= schedule.next_query_at:
                    schedule.next_query_at = now + self._config.catalog_refresh_s
                    self._spawn(self._query(platform_id, schedule.device_id), platform_id)
                if now >= schedule.subscribed_until - RENEW_MARGIN_S:
                    # Renewed as a new subscription, not a refresh in the old dialog: platforms
                    # answer both, and it survives a platform that lost our dialog.
                    schedule.subscribed_until = now + SUBSCRIBE_EXPIRES_S
                    self._spawn(self._subscribe(platform_id, schedule.device_id), platform_id)
            await asyncio.sleep(self._tick_s)

    async def _guarded(self, work: Coroutine[Any, Any, None], platform_id: str) -> None:
        """One platform's catalog work: its failure (the database, say) is logged and the
        others' goes on."""
        try:
            await work
        except Exception:
            log.exception("GB platform %s: catalog work failed", self.where(platform_id))

    def _spawn(self, work: Coroutine[Any, Any, None], platform_id: str) -> None:
        task = asyncio.create_task(self._guarded(work, platform_id))
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _query(self, platform_id: str, device_id: str) -> None:
        sn = next(self._sn)
        self.assembler.expect(platform_id, sn, self._clock())
        status = await self._request(platform_id, "MESSAGE", catalog_query(sn, device_id), ())
        if status is None or status >= 300:
            log.warning(
                "GB platform %s: catalog query refused or unanswered (%s)",
                self.where(platform_id), status,
            )  # fmt: skip

    async def _subscribe(self, platform_id: str, device_id: str) -> None:
        sn = next(self._sn)
        extra = (("Event", f"Catalog;id={sn}"), ("Expires", str(SUBSCRIBE_EXPIRES_S)))
        body = catalog_subscribe_body(sn, device_id)
        status = await self._request(platform_id, "SUBSCRIBE", body, extra)
        if status is None or status >= 300:
            # Changes then come with the next periodic query; try again at the next renewal.
            where = self.where(platform_id)
            log.info("GB platform %s: catalog subscription not taken (%s)", where, status)
            schedule = self._online.get(platform_id)
            if schedule is not None:
                schedule.subscribed_until = self._clock() + self._config.catalog_refresh_s

    # -- what platforms send ----------------------------------------------------------------
    async def on_answer(self, platform_id: str, answer: CatalogAnswer) -> None:
        result = self.assembler.add(platform_id, answer, self._clock())
        if result is not None:
            await self._apply(result)

    async def _apply(self, result: CatalogResult) -> None:
        if result.platform_id not in self._cameras.platforms:
            return
        now = self._clock()
        if result.complete:
            count = await self._cameras.replace(result.platform_id, result.items, now)
        else:
            await self._cameras.upsert(result.platform_id, result.items, now)
            count = len(result.items)
        log.info(
            "GB platform %s: catalog SN %d %s: %d channels of %d items in %.1f s",
            self.where(result.platform_id),
            result.sn,
            "applied" if result.complete else "incomplete, merged",
            count,
            result.sum_num,
            result.seconds,
        )
        if result.beyond_max:
            log.warning(
                "GB platform %s: %d channels beyond max_channels %d ignored",
                self.where(result.platform_id),
                result.beyond_max,
                len(result.items),
            )

    async def on_notify(self, platform_id: str, notify: CatalogNotify) -> None:
        """GB/T 28181-2016 s.9.11.2: each item's Event says what happened to it."""
        now = self._clock()
        by_event: dict[str, list[CatalogItem]] = {}
        for item in notify.items:
            by_event.setdefault((item.event or "UPDATE").upper(), []).append(item)
        for event, items in by_event.items():
            ids = [i.device_id for i in items]
            if event in REMOVE_EVENTS:
                await self._cameras.remove(platform_id, ids)
            elif event in OFF_EVENTS:
                await self._cameras.set_status(platform_id, ids, "OFF")
            elif event in ON_EVENTS:
                await self._cameras.set_status(platform_id, ids, "ON")
            else:  # ADD, UPDATE, or none given: the item as it is now
                await self._cameras.upsert(platform_id, items, now)
        log.info(
            "GB platform %s: catalog notification of %d items (%s)",
            self.where(platform_id),
            len(notify.items),
            ", ".join(sorted(by_event)),
        )
