"""Who may see or change what: the one place that decides it.

A route's guard says who is asking and whether their role (and their token) allows the
route; everything after that, which cameras, platforms, cases, evidence items, timeline and
custody entries, layouts, tours and mosaics the principal may see or change, is decided
here, from the catalog and the cases, so a new route asks this module instead of writing
its own check.

The rules, in one list:

* A user limited to some platforms or cameras sees only those cameras. A camera outside the
  scope is "not found", in the same words as a missing one, so a scoped user cannot tell
  others' cameras from cameras that do not exist.
* Such a user sees every case, but of each case only the cameras, evidence items and their
  timeline and custody entries of cameras in scope; they may not export a case holding
  evidence they cannot see (a bundle is signed as the whole case).
* They see others' layouts and tours with the tiles of hidden cameras emptied, and may not
  overwrite or delete a layout or tour that shows hidden cameras (they would drop them
  without knowing). A tag tour shows every camera carrying its tag, now and later, so they
  may create, overwrite or delete one only if every camera carrying the tag is in scope.
* A mosaic that would show a hidden camera is refused as a whole, never drawn with holes.
* They see the events of cameras in scope, and the platform events (storms) of platforms
  with a camera in scope; an event they may not see is "not found", like a camera.
* An API token limited to some permissions reaches only routes that need one of them; a
  route that needs no named permission (signing out, changing the password, the API schema)
  is refused to it, except the few marked open to limited tokens (``/api/auth/me``, which
  tells a token what it may do).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from surveillance.auth.principal import Principal
from surveillance.auth.roles import ROLE_PERMISSIONS, Permission
from surveillance.cases.errors import ItemNotFound
from surveillance.cases.records import CaseDetail, CaseRecord, CustodyRecord, ItemRecord
from surveillance.catalog import Camera, Catalog
from surveillance.errors import CameraNotFound, Forbidden, InvalidRequest
from surveillance.wall.layouts import Grid
from surveillance.wall.tours import Tour, tag_pages

G = TypeVar("G", bound=Grid)

HIDDEN_CAMERAS = "this shows cameras outside your scope; an admin may change it"
HIDDEN_MOSAIC = "this layout shows cameras outside your scope"
HIDDEN_EVIDENCE = "the case holds evidence outside your scope; ask an admin"
LIMITED_TOKEN = "this token is limited to {}; this route needs a token without limits"  # noqa: S105
LIMITED_TOKEN_LACKS = "this token is limited and lacks {}; your role has it"  # noqa: S105


class CaseReader(Protocol):
    """What access needs of the case service: a case, and its evidence items."""

    def get(self, number: str) -> CaseDetail: ...

    def items(self, number: str) -> list[ItemRecord]: ...


def route_refusal(
    principal: Principal, needs: Iterable[Permission], *, open_to_limited_tokens: bool = False
) -> tuple[str, list[str]] | None:
    """Why a route needing ``needs`` refuses the principal (the text and the missing
    permissions), or None when it may proceed."""
    missing = sorted(p.value for p in needs if not principal.can(p))
    limits = principal.token_permissions
    if missing:
        granted = ROLE_PERMISSIONS[principal.user.role]
        if all(Permission(p) in granted for p in missing):  # the role has it, the token not
            return LIMITED_TOKEN_LACKS.format(", ".join(missing)), missing
        return f"your role may not do this (needs {', '.join(missing)})", missing
    if limits is not None and not needs and not open_to_limited_tokens:
        # A token limited to system.read is a metrics scraper, not its user: it may not
        # change the user's password or read the API's shape.
        return LIMITED_TOKEN.format(", ".join(sorted(limits)) or "nothing"), []
    return None


class Access:
    def __init__(self, catalog: Catalog, cases: CaseReader) -> None:
        self._catalog = catalog
        self._cases = cases

    # -- cameras and platforms ------------------------------------------------------------
    def sees_camera(self, principal: Principal, camera_id: str) -> bool:
        """Whether the camera exists and is in the principal's scope."""
        camera = self._catalog.camera(camera_id)
        return camera is not None and principal.sees(camera.id, camera.platform_id)

    def camera(self, principal: Principal, camera_id: str) -> Camera:
        """The camera, if it exists and is in scope; else CameraNotFound either way."""
        camera = self._catalog.camera(camera_id)
        if camera is None or not principal.sees(camera.id, camera.platform_id):
            raise CameraNotFound(camera_id)
        return camera

    def cameras(self, principal: Principal, cameras: Iterable[Camera]) -> list[Camera]:
        """Those of ``cameras`` in scope, in order."""
        return [c for c in cameras if principal.sees(c.id, c.platform_id)]

    def camera_filter(self, principal: Principal) -> Callable[[Camera], bool] | None:
        """A predicate for roll-ups (platform health) that count only cameras in scope;
        None when every camera counts."""
        if not principal.scope.limited:
            return None
        return lambda camera: principal.sees(camera.id, camera.platform_id)

    # -- events ---------------------------------------------------------------------------
    def event_scope(
        self, principal: Principal
    ) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """The cameras whose events the principal sees, and the platforms whose camera-less
        events (a storm's platform event) they see: those with a camera in scope. None,
        None: everything."""
        if not principal.scope.limited:
            return None, None
        visible = self.cameras(principal, self._catalog.cameras.values())
        return frozenset(c.id for c in visible), frozenset(c.platform_id for c in visible)

    def sees_event(
        self, principal: Principal, camera_id: str | None, platform_id: str | None
    ) -> bool:
        """Whether the principal sees an event of this camera or (without one) platform;
        events of neither (the node's own) are for unscoped users."""
        if camera_id is not None:
            if self._catalog.camera(camera_id) is None:
                # A camera removed from the configuration: its events stay in history, and
                # only an unscoped user may place them (as the list route shows them).
                return not principal.scope.limited
            return self.sees_camera(principal, camera_id)
        cameras, platforms = self.event_scope(principal)
        return cameras is None or (platform_id is not None and platform_id in (platforms or ()))

    def sees_stream_urls(self, principal: Principal) -> bool:
        """Stream URLs, even with their credentials redacted, map the camera network (hosts,
        ports, paths): they are the node's configuration, shown to who may read it (admins)."""
        return principal.can(Permission.SYSTEM_READ)

    def check_references(
        self, principal: Principal, tags: Iterable[str] | None, cameras: Iterable[str] | None
    ) -> None:
        """422 for tags that do not exist and cameras that do not exist or are hidden."""
        unknown_tags = [t for t in tags or () if t not in self._catalog.tags]
        if unknown_tags:
            raise InvalidRequest(f"unknown tag(s): {', '.join(unknown_tags)}")
        self._check_cameras(principal, list(cameras or ()))

    def _check_cameras(self, principal: Principal, cameras: Iterable[str]) -> None:
        unknown = sorted({c for c in cameras if not self.sees_camera(principal, c)})
        if unknown:
            raise InvalidRequest(f"unknown camera(s): {', '.join(unknown)}")

    # -- cases and their evidence ---------------------------------------------------------
    def _case_camera_seen(
        self, principal: Principal, camera_id: str, platform_id: str | None
    ) -> bool:
        """A camera named by a case or an item: the platform recorded with it counts if the
        camera has left the catalog since."""
        if not principal.scope.limited:
            return True
        camera = self._catalog.camera(camera_id)
        platform = camera.platform_id if camera is not None else platform_id
        return principal.sees(camera_id, platform or "")

    def sees_item(self, principal: Principal, item: ItemRecord) -> bool:
        return self._case_camera_seen(principal, item.camera_id, item.platform_id)

    def _hidden_items(self, principal: Principal, number: str) -> set[int]:
        if not principal.scope.limited:
            return set()
        return {i.id for i in self._cases.items(number) if not self.sees_item(principal, i)}

    def case(self, principal: Principal, case: CaseRecord) -> CaseRecord:
        """The case as the principal sees it: only the cameras in scope."""
        if not principal.scope.limited:
            return case
        cameras = tuple(c for c in case.cameras if self._case_camera_seen(principal, c, None))
        return dataclasses.replace(case, cameras=cameras)

    def case_detail(self, principal: Principal, detail: CaseDetail) -> CaseDetail:
        """The case, and its timeline without the entries of hidden evidence (reads the
        case's items: blocking)."""
        if not principal.scope.limited:
            return detail
        hidden = self._hidden_items(principal, detail.case.number)
        timeline = tuple(t for t in detail.timeline if t.item_id is None or t.item_id not in hidden)
        return dataclasses.replace(
            detail,
            case=self.case(principal, detail.case),
            timeline=timeline,
            item_count=detail.item_count - len(hidden),
        )

    def case_search_cameras(
        self, principal: Principal, cameras: tuple[str, ...]
    ) -> tuple[str, ...] | None:
        """The cameras a case search may filter by; None when the principal asked only about
        cameras outside their scope (the search then finds nothing)."""
        seen = tuple(c for c in cameras if self._case_camera_seen(principal, c, None))
        return None if cameras and not seen else seen

    def case_cameras_after_edit(
        self, principal: Principal, number: str, cameras: list[str] | None
    ) -> list[str] | None:
        """A case's new camera list: a scoped user edits the cameras they see, and the
        others stay linked (blocking: reads the case)."""
        if cameras is None or not principal.scope.limited:
            return cameras
        current = self._cases.get(number).case.cameras
        hidden = [c for c in current if not self._case_camera_seen(principal, c, None)]
        return hidden + [c for c in cameras if c not in hidden]

    def items(self, principal: Principal, items: Iterable[ItemRecord]) -> list[ItemRecord]:
        return [item for item in items if self.sees_item(principal, item)]

    def item(self, principal: Principal, item: ItemRecord, ref: str) -> ItemRecord:
        """The item, or ItemNotFound in the same words as a missing one."""
        if not self.sees_item(principal, item):
            raise ItemNotFound(item.case_number, ref)
        return item

    def custody(
        self, principal: Principal, number: str, entries: Iterable[CustodyRecord]
    ) -> list[CustodyRecord]:
        """The custody log without the entries of hidden evidence, and without the cameras
        they cannot see in the camera lists create and edit entries record (blocking)."""
        hidden = self._hidden_items(principal, number)
        shown = [e for e in entries if e.item_id is None or e.item_id not in hidden]
        if not principal.scope.limited:
            return shown
        return [self._seen_cameras_only(principal, e) for e in shown]

    def _seen_cameras_only(self, principal: Principal, entry: CustodyRecord) -> CustodyRecord:
        cameras = entry.detail.get("cameras")
        if not isinstance(cameras, list):
            return entry
        seen = [c for c in cameras if self._case_camera_seen(principal, c, None)]
        return dataclasses.replace(entry, detail={**entry.detail, "cameras": seen})

    def export_refusal(self, principal: Principal, number: str) -> Forbidden | None:
        """Why the principal may not export the case, or None (blocking)."""
        return Forbidden(HIDDEN_EVIDENCE) if self._hidden_items(principal, number) else None

    # -- wall: layouts and tours ----------------------------------------------------------
    def grid(self, principal: Principal, grid: G) -> G:
        """The grid with the tiles of cameras outside the scope emptied."""
        if not principal.scope.limited:
            return grid
        tiles = [
            t
            if t.camera is None or self.sees_camera(principal, t.camera)
            else t.model_copy(update={"camera": None})
            for t in grid.tiles
        ]
        return grid.model_copy(update={"tiles": tiles})

    def tour(self, principal: Principal, tour: Tour) -> Tour:
        pages = [p.model_copy(update={"grid": self.grid(principal, p.grid)}) for p in tour.pages]
        return tour.model_copy(update={"pages": pages})

    def tour_pages(self, principal: Principal, tour: Tour) -> list[Grid]:
        """A tour's pages now: fixed pages as stored, a tag tour's from the cameras carrying
        the tag now; only cameras in scope either way."""
        if tour.tag:
            tagged = self._catalog.select(tags_all=[tour.tag])
            return tag_pages(tour.preset, [c.id for c in self.cameras(principal, tagged)])
        return [self.grid(principal, page.grid) for page in tour.pages]

    def check_layout_save(self, principal: Principal, layout: Grid, existing: Grid | None) -> None:
        """422 for hidden or missing cameras; 403 for replacing a layout that shows hidden
        cameras."""
        self._check_cameras(principal, _grid_cameras([layout]))
        if existing is not None:
            self.check_layout_change(principal, existing)

    def check_layout_change(self, principal: Principal, existing: Grid) -> None:
        """403 if the stored layout shows cameras outside the scope."""
        if self._hides(principal, _grid_cameras([existing])):
            raise Forbidden(HIDDEN_CAMERAS)

    def check_tour_save(self, principal: Principal, tour: Tour, existing: Tour | None) -> None:
        """422 for an unknown tag or hidden cameras on its pages; 403 for a tag carried by
        hidden cameras, or for replacing a tour that shows hidden cameras."""
        if tour.tag and tour.tag not in self._catalog.tags:
            raise InvalidRequest(f"unknown tag {tour.tag!r}")
        self._check_cameras(principal, _grid_cameras([p.grid for p in tour.pages]))
        if self._hides(principal, self._tag_cameras(tour)):
            raise Forbidden(f"cameras outside your scope carry the tag {tour.tag!r}")
        if existing is not None:
            self.check_tour_change(principal, existing)

    def check_tour_change(self, principal: Principal, existing: Tour) -> None:
        """403 if the stored tour shows cameras outside the scope, on its pages or by tag."""
        shown = _grid_cameras([p.grid for p in existing.pages]) + self._tag_cameras(existing)
        if self._hides(principal, shown):
            raise Forbidden(HIDDEN_CAMERAS)

    def _tag_cameras(self, tour: Tour) -> list[str]:
        return [c.id for c in self._catalog.select(tags_all=[tour.tag])] if tour.tag else []

    def _hides(self, principal: Principal, cameras: Iterable[str]) -> bool:
        return any(not self.sees_camera(principal, c) for c in cameras)

    # -- mosaics --------------------------------------------------------------------------
    def mosaic_cameras(self, principal: Principal, grid: Grid, named: Iterable[str]) -> list[str]:
        """The cameras a mosaic of ``grid`` shows, if the principal may see every one.

        A camera the request named (``?cameras=``) outside the scope is "not found", as
        everywhere; a stored layout that shows one is refused as a whole (403)."""
        requested = set(named)
        shown = _grid_cameras([grid])
        for camera_id in shown:
            if self.sees_camera(principal, camera_id):
                continue
            if camera_id in requested:
                raise CameraNotFound(camera_id)
            raise Forbidden(HIDDEN_MOSAIC)
        return shown


def _grid_cameras(grids: Iterable[Grid]) -> list[str]:
    return [t.camera for g in grids for t in g.tiles if t.camera]
