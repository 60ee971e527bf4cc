"""Reports: per-platform daily availability, as JSON and as CSV.

Days are counted in the node's local time zone (its ``TZ``), which the JSON names. Only
cameras in the caller's scope count; a platform outside it is not found.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from surveillance.api.csv_export import csv_text
from surveillance.api.deps import AccessDep, AvailabilityDep, CatalogDep
from surveillance.api.guards import requires
from surveillance.api.schemas.reports import AvailabilityDayOut, AvailabilityOut
from surveillance.auth.principal import Principal
from surveillance.auth.roles import Permission
from surveillance.catalog import Catalog
from surveillance.errors import InvalidRequest, NotFound
from surveillance.events.availability import DayAvailability
from surveillance.services.access import Access
from surveillance.services.availability import AvailabilityService

router = APIRouter(prefix="/api/reports", tags=["reports"])

MAX_DAYS = 366  # a year's report at once; the monthly one is the usual
DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
CSV_HEADER = (
    "platform", "platform_name", "date", "cameras", "online_rate", "monitored_hours",
    "offline_events",
)  # fmt: skip

Reader = Annotated[Principal, requires(Permission.REPORTS_READ)]
First = Annotated[str, Query(alias="from", pattern=DAY_PATTERN, description="YYYY-MM-DD")]
Last = Annotated[str, Query(alias="to", pattern=DAY_PATTERN, description="YYYY-MM-DD, included")]
PlatformQuery = Annotated[str | None, Query(max_length=64, description="One platform")]


class PlatformNotFound(NotFound):
    def __init__(self, platform_id: str) -> None:
        super().__init__(f"no platform with id {platform_id!r}")


def _day(name: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"`{name}` is not a date (YYYY-MM-DD)") from None


def _time_zone() -> str:
    return datetime.now().astimezone().strftime("%Z (UTC%z)")


async def _report(
    availability: AvailabilityService,
    catalog: Catalog,
    access: Access,
    principal: Principal,
    first_text: str,
    last_text: str,
    platform: str | None,
) -> list[DayAvailability]:
    first, last = _day("from", first_text), _day("to", last_text)
    if last < first:
        raise InvalidRequest("`to` lies before `from`")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"a report covers at most {MAX_DAYS} days")
    cameras = access.cameras(principal, catalog.select(platform=platform))
    if platform is not None and (platform not in catalog.platforms or not cameras):
        raise PlatformNotFound(platform)
    return await asyncio.to_thread(availability.report, first, last, cameras)


def _out(row: DayAvailability, catalog: Catalog) -> AvailabilityDayOut:
    platform = catalog.platforms.get(row.platform_id)
    return AvailabilityDayOut(
        platform=row.platform_id,
        platform_name=platform.name if platform else row.platform_id,
        date=row.day,
        cameras=row.cameras,
        online_rate=None if row.online_rate is None else round(row.online_rate, 6),
        monitored_hours=round(row.monitored_hours, 3),
        offline_events=row.offline_events,
    )


@router.get("/availability", response_model=AvailabilityOut, summary="Daily online rate")
async def availability_json(
    availability: AvailabilityDep,
    catalog: CatalogDep,
    access: AccessDep,
    principal: Reader,
    first: First,
    last: Last,
    platform: PlatformQuery = None,
) -> AvailabilityOut:
    rows = await _report(availability, catalog, access, principal, first, last, platform)
    return AvailabilityOut(time_zone=_time_zone(), days=[_out(row, catalog) for row in rows])


@router.get(
    "/availability.csv",
    summary="Daily online rate as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def availability_csv(
    availability: AvailabilityDep,
    catalog: CatalogDep,
    access: AccessDep,
    principal: Reader,
    first: First,
    last: Last,
    platform: PlatformQuery = None,
) -> Response:
    rows = await _report(availability, catalog, access, principal, first, last, platform)
    outs = [_out(row, catalog) for row in rows]
    body = csv_text(
        CSV_HEADER,
        (
            (o.platform, o.platform_name, o.date.isoformat(), o.cameras, o.online_rate,
             o.monitored_hours, o.offline_events)
            for o in outs
        ),
    )  # fmt: skip
    filename = f"availability-{first}-{last}.csv"  # digits and dashes: the pattern says so
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
