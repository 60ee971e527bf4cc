"""Server-side mosaics on demand: one renderer per (layout, size, frame rate) in use.

A transcoded live view is a one-tile mosaic of its camera at the viewer's size: one
renderer per (camera, stream, size) decodes, scales and encodes once for every viewer of
it, who each get the encoded packets as they are (before, aiortc decoded and encoded per
viewer: eight transcodes of one camera cost eight encoders).

The first consumer of a mosaic starts its renderer; every consumer holds a
:class:`MosaicLease` and gives it back when it leaves; the renderer stops ``idle_s`` after
the last lease is returned, so a client that reconnects finds it still warm. Tiles decode
their cameras' sub-streams where the camera has one (a mosaic tile never needs the main
stream's detail), through the same on-demand connection as every other consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from surveillance.catalog import Catalog
from surveillance.errors import (
    CameraElsewhere,
    CameraNotFound,
    InvalidRequest,
    NotFound,
    TooBusy,
    Unavailable,
)
from surveillance.media.canvas import ascii_text
from surveillance.media.memory import give_back_freed_memory
from surveillance.media.mosaic import GridCell, MosaicRenderer, MosaicTile, grid_rects
from surveillance.media.peers import PeerAnswer, PeerSessions
from surveillance.media.stream import Stream
from surveillance.media.webrtc import PassthroughTrack
from surveillance.services.ingest import IngestService
from surveillance.wall.layouts import PRESETS, Grid, fill
from surveillance.wall.store import WallStore

log = logging.getLogger(__name__)

MOSAIC_IDLE_S = 10.0  # a renderer stops this long after its last consumer left
REAP_INTERVAL_S = 1.0  # how often idle renderers are looked for
# Memory is given back to the system this long after renderers stopped: their viewers'
# last pictures and responses are freed after the renderer, and a trim right at the stop
# left 100 MB of them resident (media/memory.py).
MEMORY_SETTLE_S = 5.0
RENDERER_JOIN_S = 3.0  # how long stopping waits for a renderer's threads
# How long a WebRTC viewer waits for the mosaic encoder's first keyframe: the renderer is
# local, so this is not the cameras' FIRST_PICTURE_WAIT_S.
ENCODER_FIRST_PICTURE_WAIT_S = 5.0
OUTPUT_SIZES = {1080: (1920, 1080), 2160: (3840, 2160)}  # ?size= -> pixels
DEFAULT_FPS = 25
MAX_FPS = 25  # the cameras' own rate; more would only repeat pictures
MAX_RENDERERS = 8  # mosaics rendering at once on the node (limits.mosaics in the config)


def _label(name: str, camera_id: str) -> str:
    """The tile's label: the name, unless the ASCII-only font would show nothing of it
    (a name wholly in another script), then the camera id."""
    readable = any(c.isascii() and c.isalnum() for c in ascii_text(name))
    return name if readable else camera_id


class MosaicLayoutNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"no layout or preset named {name!r}")
        self.name = name


class TooManyRenderers(TooBusy):
    """The node renders as many different mosaics as it may; viewers of one of those
    (same layout, size and frame rate) still join it."""


class MosaicUnavailable(Unavailable):
    """The mosaic could not produce what a viewer needs to start (its encoder's picture)."""


@dataclass(frozen=True)
class MosaicRequest:
    layout: str
    cameras: tuple[str, ...] = ()  # for a preset: the cameras to fill it with, in order
    size: int = 1080
    fps: int = DEFAULT_FPS


@dataclass
class _Entry:
    renderer: MosaicRenderer
    name: str  # for log lines: the layout asked for, or "transcoder of <stream>"
    transcoder: bool = False  # a one-tile renderer for a transcoded live view
    leases: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class MosaicLease:
    """One consumer's hold on a running renderer; ``release`` is safe to call twice."""

    def __init__(self, renderer: MosaicRenderer, on_release: Callable[[], None]) -> None:
        self.renderer = renderer
        self._on_release = on_release
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._on_release()

    def __enter__(self) -> MosaicLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class MosaicService:
    def __init__(
        self,
        ingest: IngestService,
        catalog: Catalog,
        wall: WallStore,
        idle_s: float = MOSAIC_IDLE_S,
        peers: PeerSessions | None = None,
        max_renderers: int = MAX_RENDERERS,
    ) -> None:
        self._ingest = ingest
        self._catalog = catalog
        self._wall = wall
        self.idle_s = idle_s
        self.max_renderers = max_renderers
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._peers = peers if peers is not None else PeerSessions()  # empty is falsy
        self._reaper: asyncio.Task[None] | None = None

    # -- layouts --------------------------------------------------------------------------
    def resolve(self, request: MosaicRequest) -> Grid:
        """A stored layout by name; with ``cameras``, a preset filled with them.

        Blocking (a stored layout is a database read): from async code, ``await grid()``."""
        if request.size not in OUTPUT_SIZES:
            raise InvalidRequest(f"size must be one of {sorted(OUTPUT_SIZES)}")
        if not 1 <= request.fps <= MAX_FPS:
            raise InvalidRequest(f"fps must be 1 to {MAX_FPS}")
        grid: Grid | None = None
        preset = PRESETS.get(request.layout)
        if not request.cameras or preset is None:
            grid = self._wall.layout(request.layout)
            if grid is not None and request.cameras:
                raise InvalidRequest(
                    f"`cameras` fills a preset ({', '.join(PRESETS)}); {request.layout!r} is a "
                    "stored layout with its own cameras: leave `cameras` out"
                )
        if grid is None:
            if preset is None:
                raise MosaicLayoutNotFound(request.layout)
            grid = fill(preset, list(request.cameras))
        for tile in grid.tiles:
            if tile.camera and self._catalog.camera(tile.camera) is None:
                raise CameraNotFound(tile.camera)
        return Grid(cols=grid.cols, rows=grid.rows, tiles=grid.tiles)

    def _build(self, key: str, grid: Grid, size: int, fps: int) -> MosaicRenderer:
        width, height = OUTPUT_SIZES[size]
        cells = [GridCell(t.x, t.y, t.w, t.h) for t in grid.tiles]
        tiles = []
        for tile, rect in zip(grid.tiles, grid_rects(grid.cols, grid.rows, cells, width, height),
                              strict=True):  # fmt: skip
            camera = self._catalog.camera(tile.camera) if tile.camera else None
            if camera is None:
                tiles.append(MosaicTile(rect, "", None))
                continue
            try:
                stream = self._ingest.ensure_connected(camera.id, sub=camera.has_sub_stream)
            except CameraElsewhere:  # another node's (cluster mode): an offline tile here
                stream = self._ingest.stream(camera.id, sub=camera.has_sub_stream)
            tiles.append(MosaicTile(rect, _label(camera.name, camera.id), stream))
        return MosaicRenderer(key, tiles, width, height, fps)

    def _streams_of(self, grid: Grid) -> str:
        """Which stream objects the grid's cameras have now (ids: each is kept alive by the
        renderer that reads it, so an id is not reused while its mosaic exists)."""
        ids = []
        for tile in grid.tiles:
            camera = self._catalog.camera(tile.camera) if tile.camera else None
            if camera is not None:
                ids.append(str(id(self._ingest.stream(camera.id, sub=camera.has_sub_stream))))
        return ",".join(ids)

    async def grid(self, request: MosaicRequest) -> Grid:
        """:meth:`resolve`, off the event loop."""
        return await asyncio.to_thread(self.resolve, request)

    # -- leases ---------------------------------------------------------------------------
    def acquire(self, request: MosaicRequest, grid: Grid | None = None) -> MosaicLease:
        """Start (or join) the renderer of this mosaic; raises for unknown layouts/cameras.

        Blocking unless given the request's ``grid``: from async code, ``await lease()``."""
        if grid is None:
            grid = self.resolve(request)
        # The grid itself is the key: editing a stored layout makes a new mosaic, and the
        # old one idles out. So do its cameras' streams: a camera removed and added again
        # while the node runs (catalog.py) has a new stream, and the old mosaic shows the
        # old one's end.
        key = f"{request.size}p{request.fps}:{grid.model_dump_json()}:{self._streams_of(grid)}"

        def build() -> MosaicRenderer:
            log.info("mosaic %r starting: %d tiles, %dp%d", request.layout,
                     len(grid.tiles), request.size, request.fps)  # fmt: skip
            return self._build(key, grid, request.size, request.fps)

        name = f"mosaic {request.layout!r} {request.size}p{request.fps}"
        return self._join(key, name, build, transcoder=False)

    def transcoder(self, stream: Stream, width: int, height: int, fps: int) -> MosaicLease:
        """Start (or join) the one transcoder of a camera's ``stream`` at this size: a
        one-tile renderer without a label, at ``fps`` when it starts. Not counted as a
        mosaic (the live views' limits count transcodes)."""
        # Not keyed by the rate: a measured rate wavers (24 or 25) and would split viewers.
        # The stream object too: a camera added again under its id has a new one.
        key = f"transcode:{stream.key}:{id(stream)}:{width}x{height}"

        def build() -> MosaicRenderer:
            log.info("transcoder of %s starting: %dx%d at %d fps", stream.key, width, height, fps)
            tile = MosaicTile(grid_rects(1, 1, [GridCell(0, 0)], width, height)[0], "", stream)
            return MosaicRenderer(key, [tile], width, height, fps)

        return self._join(key, f"transcoder of {stream.key}", build, transcoder=True)

    def _join(
        self, key: str, name: str, build: Callable[[], MosaicRenderer], *, transcoder: bool
    ) -> MosaicLease:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not entry.renderer.running:
                if not transcoder:
                    self._check_room(key)
                renderer = build()
                renderer.start()
                entry = _Entry(renderer, name, transcoder)
                self._entries[key] = entry
            entry.leases += 1
            return MosaicLease(entry.renderer, functools.partial(self._release, key))

    def _check_room(self, key: str) -> None:
        """Under the lock: raise TooManyRenderers unless a new renderer may start. One
        idle (nobody watching) is stopped early to make room rather than refuse."""
        running = {
            k: e
            for k, e in self._entries.items()
            if e.renderer.running and not e.transcoder and k != key
        }
        if len(running) < self.max_renderers:
            return
        idle = [k for k, e in running.items() if e.leases == 0]
        if not idle:
            raise TooManyRenderers(
                f"this node renders {self.max_renderers} mosaics at most; try again later"
            )
        oldest = min(idle, key=lambda k: running[k].idle_since)
        # Its threads see the stop and end on their own; nobody holds a lease to wait for.
        self._entries.pop(oldest).renderer.stop()

    async def lease(self, request: MosaicRequest) -> MosaicLease:
        """:meth:`acquire`, with the layout read off the event loop."""
        return self.acquire(request, await self.grid(request))

    def _release(self, key: str) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.leases -= 1
                if entry.leases <= 0:
                    entry.leases = 0
                    entry.idle_since = time.monotonic()

    def running(self) -> list[MosaicRenderer]:
        """The mosaics rendering now (not the transcoders)."""
        with self._lock:
            return [
                e.renderer
                for e in self._entries.values()
                if e.renderer.running and not e.transcoder
            ]

    def transcoders(self) -> list[MosaicRenderer]:
        """The transcoders running now, one per camera stream and size in use."""
        with self._lock:
            return [
                e.renderer for e in self._entries.values() if e.renderer.running and e.transcoder
            ]

    def consumers(self) -> int:
        with self._lock:
            return sum(e.leases for e in self._entries.values())

    # -- WebRTC ---------------------------------------------------------------------------
    async def webrtc_answer(
        self,
        request: MosaicRequest,
        offer_sdp: str,
        on_end: Callable[[], None] | None = None,
        owner: str | None = None,
    ) -> PeerAnswer:
        """The answer; ``on_end`` is called once when the viewer's connection ends.

        Raises MosaicLayoutNotFound, CameraNotFound, TooManyRenderers, MosaicUnavailable
        when the encoder produced no picture in time, BadOffer for an offer that cannot be
        answered, or TooManyPendingPeers."""
        return await self.answer_from(await self.lease(request), offer_sdp, on_end, owner)

    async def answer_from(
        self,
        lease: MosaicLease,
        offer_sdp: str,
        on_end: Callable[[], None] | None = None,
        owner: str | None = None,
    ) -> PeerAnswer:
        """The answer for a viewer of the leased renderer's video; the lease is given back
        when the viewer ends, or at once if none could be set up."""
        try:
            renderer = lease.renderer
            renderer.want_video()
            stream = renderer.stream
            if not await stream.wait_ready(ENCODER_FIRST_PICTURE_WAIT_S):
                raise MosaicUnavailable("the mosaic encoder produced no picture")
            track = PassthroughTrack(stream.subscribe(from_cached_gop=True))
        except BaseException:
            lease.release()
            raise
        return await self._peers.answer(
            offer_sdp, track, owner=owner, on_end=on_end, on_close=lease.release
        )

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap(), name="mosaic-reaper")

    async def _reap(self) -> None:
        give_back_at: float | None = None
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            if await self._reap_idle():
                give_back_at = time.monotonic() + MEMORY_SETTLE_S
            if give_back_at is not None and time.monotonic() >= give_back_at:
                give_back_at = None
                await asyncio.to_thread(give_back_freed_memory)

    async def _reap_idle(self) -> bool:
        """Stop the renderers nobody used for ``idle_s``; whether any was stopped."""
        # A function of its own: the loop's locals would otherwise keep the last stopped
        # renderer (its 12 MB pictures, decoders and encoder) alive until the next one.
        now = time.monotonic()
        with self._lock:
            idle = [
                (key, e.renderer, e.name)
                for key, e in self._entries.items()
                if (e.leases == 0 and now - e.idle_since >= self.idle_s) or not e.renderer.running
            ]
            for key, _, _ in idle:
                del self._entries[key]
        for _, renderer, name in idle:
            log.info("%s idle: stopping", name)
            await self._stop_renderer(renderer)
        return bool(idle)

    @staticmethod
    async def _stop_renderer(renderer: MosaicRenderer) -> None:
        renderer.stop()
        await asyncio.to_thread(renderer.join, RENDERER_JOIN_S)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self._peers.close()
        with self._lock:
            renderers = [e.renderer for e in self._entries.values()]
            self._entries.clear()
        for renderer in renderers:
            await self._stop_renderer(renderer)
