"""The access rules, principal x object x expected, on the real access service with a real
catalog and a case reader holding records in memory: no server, no database, no cameras."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from surveillance.auth.principal import Principal, User
from surveillance.auth.roles import Permission, Role
from surveillance.auth.scope import Scope
from surveillance.cases.errors import ItemNotFound
from surveillance.cases.records import (
    CaseDetail,
    CaseRecord,
    CustodyRecord,
    ItemRecord,
    TimelineRecord,
)
from surveillance.cases.states import CaseState
from surveillance.catalog import Catalog
from surveillance.config.models import AppConfig
from surveillance.errors import CameraNotFound, Forbidden, InvalidRequest
from surveillance.services.access import Access, route_refusal
from surveillance.wall.layouts import Grid, Layout, Tile
from surveillance.wall.tours import Tour, TourPage

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CASE = "2026-000001"

# Two platforms; "traffic" is carried by cameras of both, "forest-fire" by town's only.
CATALOG = Catalog.from_config(
    AppConfig.model_validate(
        {
            "platforms": [{"id": "town", "name": "Town"}, {"id": "police", "name": "Police"}],
            "cameras": [
                {"id": "own", "name": "Own", "platform": "town", "url": "rtsp://10.0.0.1/a",
                 "tags": ["traffic", "forest-fire"]},
                {"id": "own2", "name": "Own 2", "platform": "town", "url": "rtsp://10.0.0.2/a",
                 "tags": ["forest-fire"]},
                {"id": "other", "name": "Other", "platform": "police",
                 "url": "rtsp://10.0.0.3/a", "tags": ["traffic"]},
            ],
        }
    )
)  # fmt: skip


UNLIMITED = Scope()


def principal(
    scope: Scope = UNLIMITED,
    role: Role = Role.ADMIN,
    token: frozenset[Permission] | None = None,
) -> Principal:
    user = User(1, "someone", role, scope, False, 0.0, 0.0)
    return Principal(user, token_id="t1" if token is not None else None, token_permissions=token)


EVERYONE = principal()
TOWN = principal(Scope.of(platforms=["town"]))
ONE_CAMERA = principal(Scope.of(cameras=["other"]))


def item(item_id: int, camera: str, platform: str | None) -> ItemRecord:
    return ItemRecord(
        id=item_id, case_number=CASE, kind="snapshot", sha256=f"{item_id:064x}", size=1,
        media_type="image/jpeg", camera_id=camera, platform_id=platform, captured_at=NOW,
        stream_time_s=None, attached_at=NOW, attached_by="admin", codec="jpeg", width=1,
        height=1, duration_s=None, frames=1,
    )  # fmt: skip


ITEMS = [item(1, "own", "town"), item(2, "other", "police"), item(3, "gone", "town")]
RECORD = CaseRecord(
    1, CASE, "t", "", None, "admin", None, CaseState.REPORTED, (), ("own", "other", "gone"),
    NOW, NOW, 4, "head",
)  # fmt: skip


def timeline(item_id: int | None) -> TimelineRecord:
    return TimelineRecord(item_id or 0, NOW, "admin", "evidence", "", None, None, item_id)


def custody(seq: int, item_id: int | None) -> CustodyRecord:
    return CustodyRecord(seq, NOW, "admin", "attach", item_id, {}, "", "")


class Cases:
    """The two reads access makes of the case service, from memory."""

    def get(self, number: str) -> CaseDetail:
        return CaseDetail(RECORD, (timeline(None), timeline(1), timeline(2)), len(ITEMS))

    def items(self, number: str) -> list[ItemRecord]:
        return list(ITEMS)


ACCESS = Access(CATALOG, Cases())


def grid(*cameras: str | None) -> Grid:
    tiles = [Tile(x=i, y=0, camera=c) for i, c in enumerate(cameras)]
    return Grid(cols=max(1, len(cameras)), rows=1, tiles=tiles)


def layout(*cameras: str | None) -> Layout:
    return Layout(name="l", title="l", **grid(*cameras).model_dump())


def tag_tour(tag: str) -> Tour:
    return Tour(name="t", title="t", tag=tag, preset="2x2")


def page_tour(*cameras: str | None) -> Tour:
    return Tour(name="t", title="t", pages=[TourPage(grid=grid(*cameras))])


# -- cameras ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "camera", "seen"),
    [
        (EVERYONE, "own", True),
        (EVERYONE, "other", True),
        (EVERYONE, "missing", False),
        (TOWN, "own", True),
        (TOWN, "other", False),
        (TOWN, "missing", False),
        (ONE_CAMERA, "other", True),
        (ONE_CAMERA, "own", False),
    ],
)
def test_cameras(who: Principal, camera: str, seen: bool) -> None:
    assert ACCESS.sees_camera(who, camera) is seen
    if seen:
        assert ACCESS.camera(who, camera).id == camera
    else:
        # Hidden and missing cameras are refused in the same words.
        with pytest.raises(CameraNotFound, match=f"no camera with id '{camera}'"):
            ACCESS.camera(who, camera)


@pytest.mark.parametrize(
    ("who", "ids"), [(EVERYONE, ["own", "own2", "other"]), (TOWN, ["own", "own2"])]
)
def test_camera_lists_and_roll_ups(who: Principal, ids: list[str]) -> None:
    assert [c.id for c in ACCESS.cameras(who, CATALOG.cameras.values())] == ids
    keep = ACCESS.camera_filter(who)
    counted = [c.id for c in CATALOG.cameras.values() if keep is None or keep(c)]
    assert counted == ids


@pytest.mark.parametrize(
    ("who", "tags", "cameras", "error"),
    [
        (EVERYONE, ["traffic"], ["own", "other"], None),
        (TOWN, [], ["own"], None),
        (TOWN, [], ["other"], "unknown camera(s): other"),
        (TOWN, [], ["missing"], "unknown camera(s): missing"),
        (EVERYONE, ["nope"], [], "unknown tag(s): nope"),
    ],
)
def test_references(who: Principal, tags: list[str], cameras: list[str], error: str | None) -> None:
    if error is None:
        ACCESS.check_references(who, tags, cameras)
    else:
        with pytest.raises(InvalidRequest, match=error.replace("(", r"\(").replace(")", r"\)")):
            ACCESS.check_references(who, tags, cameras)


# -- cases --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "cameras", "items", "timeline_items", "custody_items", "exports"),
    [
        (EVERYONE, ("own", "other", "gone"), [1, 2, 3], [None, 1, 2], [None, 1, 2, 3], True),
        # "gone" left the catalog: the platform recorded with its item still counts, but
        # the case's bare camera id is in no scope.
        (TOWN, ("own",), [1, 3], [None, 1], [None, 1, 3], False),
        (ONE_CAMERA, ("other",), [2], [None, 2], [None, 2], False),
    ],
)
def test_cases(
    who: Principal,
    cameras: tuple[str, ...],
    items: list[int],
    timeline_items: list[int | None],
    custody_items: list[int | None],
    exports: bool,
) -> None:
    assert ACCESS.case(who, RECORD).cameras == cameras
    detail = ACCESS.case_detail(who, Cases().get(CASE))
    assert [t.item_id for t in detail.timeline] == timeline_items
    assert detail.item_count == len(items)
    assert [i.id for i in ACCESS.items(who, ITEMS)] == items
    log = [custody(n, i) for n, i in enumerate([None, 1, 2, 3])]
    assert [e.item_id for e in ACCESS.custody(who, CASE, log)] == custody_items
    for record in ITEMS:
        if record.id in items:
            assert ACCESS.item(who, record, str(record.id)) is record
        else:
            with pytest.raises(ItemNotFound, match=f"has no evidence item '{record.id}'"):
                ACCESS.item(who, record, str(record.id))
    refusal = ACCESS.export_refusal(who, CASE)
    assert (refusal is None) is exports
    assert refusal is None or isinstance(refusal, Forbidden)


@pytest.mark.parametrize(
    ("who", "asked", "search", "after_edit"),
    [
        (EVERYONE, ("own",), ("own",), ["own"]),
        (TOWN, ("own", "other"), ("own",), ["other", "gone", "own"]),
        (TOWN, ("other",), None, ["other", "gone"]),
    ],
)
def test_case_filters_and_edits(
    who: Principal, asked: tuple[str, ...], search: tuple[str, ...] | None, after_edit: list[str]
) -> None:
    assert ACCESS.case_search_cameras(who, asked) == search
    # A scoped user's edit keeps the cameras they cannot see.
    edited = [c for c in asked if ACCESS.sees_camera(who, c)]
    assert ACCESS.case_cameras_after_edit(who, CASE, edited) == after_edit


# -- wall ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "shown"),
    [(EVERYONE, ["own", "other", None]), (TOWN, ["own", None, None])],
)
def test_grids_show_only_cameras_in_scope(who: Principal, shown: list[str | None]) -> None:
    assert [t.camera for t in ACCESS.grid(who, grid("own", "other", None)).tiles] == shown
    tour = ACCESS.tour(who, page_tour("own", "other", None))
    assert [t.camera for t in tour.pages[0].grid.tiles] == shown


@pytest.mark.parametrize(
    ("who", "tag", "shown"),
    [
        (EVERYONE, "traffic", ["own", "other"]),
        (TOWN, "traffic", ["own"]),
        (ONE_CAMERA, "traffic", ["other"]),
        (ONE_CAMERA, "forest-fire", []),
    ],
)
def test_tag_tour_pages_show_only_cameras_in_scope(
    who: Principal, tag: str, shown: list[str]
) -> None:
    pages = ACCESS.tour_pages(who, tag_tour(tag))
    assert [t.camera for page in pages for t in page.tiles if t.camera] == shown


@pytest.mark.parametrize(
    ("who", "new", "existing", "error"),
    [
        (EVERYONE, layout("other"), layout("own", "other"), None),
        (TOWN, layout("own"), None, None),
        (TOWN, layout("own"), layout("own2"), None),
        (TOWN, layout("other"), None, InvalidRequest),  # naming a hidden camera
        (TOWN, layout("own"), layout("other"), Forbidden),  # dropping a hidden camera
    ],
)
def test_layout_changes(
    who: Principal, new: Layout, existing: Layout | None, error: type[Exception] | None
) -> None:
    if error is None:
        ACCESS.check_layout_save(who, new, existing)
    else:
        with pytest.raises(error):
            ACCESS.check_layout_save(who, new, existing)


@pytest.mark.parametrize(
    ("who", "existing", "allowed"),
    [
        (EVERYONE, layout("other"), True),
        (TOWN, layout("own"), True),
        (TOWN, layout("other"), False),
    ],
)
def test_layout_deletes(who: Principal, existing: Layout, allowed: bool) -> None:
    if allowed:
        ACCESS.check_layout_change(who, existing)
    else:
        with pytest.raises(Forbidden):
            ACCESS.check_layout_change(who, existing)


@pytest.mark.parametrize(
    ("who", "new", "existing", "error"),
    [
        (EVERYONE, tag_tour("traffic"), tag_tour("traffic"), None),
        (TOWN, page_tour("own"), page_tour("own2"), None),
        (TOWN, page_tour("other"), None, InvalidRequest),
        (TOWN, page_tour("own"), page_tour("other"), Forbidden),
        # Every camera carrying "forest-fire" is town's: a town user may make its tour.
        (TOWN, tag_tour("forest-fire"), None, None),
        (TOWN, tag_tour("forest-fire"), tag_tour("forest-fire"), None),
        # "traffic" is carried by a police camera too: not theirs to create or overwrite.
        (TOWN, tag_tour("traffic"), None, Forbidden),
        (TOWN, page_tour("own"), tag_tour("traffic"), Forbidden),
        (ONE_CAMERA, tag_tour("forest-fire"), None, Forbidden),
        (EVERYONE, tag_tour("no-such-tag"), None, InvalidRequest),
    ],
)
def test_tour_changes(
    who: Principal, new: Tour, existing: Tour | None, error: type[Exception] | None
) -> None:
    if error is None:
        ACCESS.check_tour_save(who, new, existing)
    else:
        with pytest.raises(error):
            ACCESS.check_tour_save(who, new, existing)


@pytest.mark.parametrize(
    ("who", "existing", "allowed"),
    [
        (EVERYONE, tag_tour("traffic"), True),
        (TOWN, tag_tour("forest-fire"), True),
        (TOWN, tag_tour("traffic"), False),
        (TOWN, page_tour("own", "other"), False),
    ],
)
def test_tour_deletes(who: Principal, existing: Tour, allowed: bool) -> None:
    if allowed:
        ACCESS.check_tour_change(who, existing)
    else:
        with pytest.raises(Forbidden):
            ACCESS.check_tour_change(who, existing)


# -- mosaics ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "shown", "named", "error"),
    [
        (EVERYONE, grid("own", "other"), (), None),
        (TOWN, grid("own", None), ("own",), None),
        (TOWN, grid("own", "other"), ("own", "other"), CameraNotFound),  # named by the request
        (TOWN, grid("own", "other"), (), Forbidden),  # a stored layout showing it
    ],
)
def test_mosaics(
    who: Principal, shown: Grid, named: tuple[str, ...], error: type[Exception] | None
) -> None:
    if error is None:
        expected = [t.camera for t in shown.tiles if t.camera]
        assert ACCESS.mosaic_cameras(who, shown, named) == expected
    else:
        with pytest.raises(error):
            ACCESS.mosaic_cameras(who, shown, named)


# -- routes and limited tokens ------------------------------------------------------------
METRICS_ONLY = frozenset({Permission.SYSTEM_READ})


@pytest.mark.parametrize(
    ("who", "needs", "open_to_limited", "refused"),
    [
        (EVERYONE, set(), False, False),
        (EVERYONE, {Permission.USERS_MANAGE}, False, False),
        (principal(role=Role.VIEWER), {Permission.USERS_MANAGE}, False, True),
        # Recorded footage: operators and handlers, never viewers (issue 12).
        (principal(role=Role.VIEWER), {Permission.RECORDINGS_VIEW}, False, True),
        (principal(role=Role.OPERATOR), {Permission.RECORDINGS_VIEW}, False, False),
        (principal(role=Role.HANDLER), {Permission.RECORDINGS_VIEW}, False, False),
        (principal(token=METRICS_ONLY), {Permission.SYSTEM_READ}, False, False),
        (principal(token=METRICS_ONLY), {Permission.LIVE_VIEW}, False, True),
        # A route needing no named permission (password, sign-out, the API schema) is not
        # for a limited token, unless it says so (who am I).
        (principal(token=METRICS_ONLY), set(), False, True),
        (principal(token=METRICS_ONLY), set(), True, False),
        (principal(token=frozenset()), set(), True, False),
        (principal(token=frozenset(Permission)), set(), False, True),
    ],
)
def test_route_refusals(
    who: Principal, needs: set[Permission], open_to_limited: bool, refused: bool
) -> None:
    refusal = route_refusal(who, needs, open_to_limited_tokens=open_to_limited)
    assert (refusal is not None) is refused


def test_a_refusal_says_whether_the_role_or_the_token_lacks_the_permission() -> None:
    # A metrics scraper's token of an admin: the role could, the token may not.
    scraper = principal(role=Role.ADMIN, token=frozenset({Permission.SYSTEM_READ}))
    refusal = route_refusal(scraper, {Permission.LIVE_VIEW})
    assert refusal is not None
    assert "token is limited" in refusal[0] and "live.view" in refusal[0]
    # A viewer's own session: the role itself lacks it.
    viewer = principal(role=Role.VIEWER)
    refusal = route_refusal(viewer, {Permission.USERS_MANAGE})
    assert refusal is not None
    assert refusal[0].startswith("your role may not do this")


@pytest.mark.parametrize(
    ("who", "camera", "platform", "seen"),
    [
        (EVERYONE, "own", "town", True),
        (ONE_CAMERA, "own", "town", False),
        # A camera removed from the configuration: its events stay in history, for
        # unscoped users (the list shows them), never for a scoped one.
        (EVERYONE, "gone", "town", True),
        (TOWN, "gone", "town", False),
        (ONE_CAMERA, "gone", "police", False),
        # Camera-less: the platform's event, or the node's own (unscoped users only).
        (TOWN, None, "town", True),
        (TOWN, None, "police", False),
        (TOWN, None, None, False),
        (EVERYONE, None, None, True),
    ],
)
def test_events(who: Principal, camera: str | None, platform: str | None, seen: bool) -> None:
    assert ACCESS.sees_event(who, camera, platform) is seen
