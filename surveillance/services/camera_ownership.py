"""Which cameras this node reads: leases in the shared database, renewed, claimed, handed on.

Every ``renew_s`` the leases are renewed, by a loop that does nothing else, and a round
reads every lease and the live nodes; claims the leased cameras this node is the preferred
owner of (weighted rendezvous over the live nodes, cluster/rendezvous.py) that nobody holds;
hands off those whose preferred owner is another node live for at least lease_s (settled:
not one that may die at once), stopping their ingest BEFORE releasing them, so no two nodes
read a camera at once. Nothing slow is awaited by either loop: the ingest's starts and stops
(a stop waits for the camera's reader thread to end, seconds for a reader blocked on a
silent camera) and the take-over callbacks run as tasks of their own, a camera let go is
released by whichever comes first, the end of its stop or a later round, and the lease
statements have a database thread of their own. A renewal waiting behind a hand-off let
the deadlines of the node's other leases pass: their cameras went dark for a second or two.

"Still mine" is a LOCAL MONOTONIC deadline: the monotonic time just before the renewing
statement was sent + lease_s - LEASE_MARGIN_S, always before the database lets anyone else
claim. Past it (renewals failing, the process paused) holds() is False and the fence
raises LeaseLost, so a node cut off from the database stops WRITING (recordings, events,
evidence, alarm clips) before another may start; a watchdog stops the ingest (READING)
of the camera at that moment too, with one exception:

A database outage. When the lease statements fail (the database unreachable, as opposed
to a renewal that answers without a camera: "lease lost"), the node asks every peer live
at its last read of ``cluster_nodes``, each renew round, whether it reaches the database
(services/outage_evidence.py, ``GET /api/cluster/database``). While every one says it does
not, nobody can claim a camera: the node goes on READING the cameras it held (reads(),
what the ingest follows; live video goes on) for a short while after each such answer,
writing nothing for them. A peer that reaches the database, or cannot be asked, means this
node may be the one cut off: it stops reading at once ("database unreachable" on the
camera). Alone in the cluster, nobody else can claim: it reads on. Safe because a node
that has not reached the database (a failed statement, or none answered for
DB_SILENT_S) waits lease_s after it reaches it again before claiming any camera others
held, and says "unreachable" only in that state; meanwhile the node that read on renews
first: the leases that expired under it are claimed again at once (generation + 1, new
fence tokens), and one another node did take is dropped at once. (A node STARTED in the
seconds after the database came back has seen no outage: it may claim such an expired
lease before its reader's renewal does; the reader then finds it taken and stops.)

A hand-off stops the camera's ingest first and releases the lease only once its reader
thread has ended (renewing it meanwhile, however long that takes: the ingest monitor ends
a let-go reader hung on a silent camera); a lease is never released under a running
reader, so a hand-off never puts two nodes on one camera.

Pinned cameras (source kind other than "rtsp": GB/T 28181 channels, whose platform
registered to this node) are always held here and never leased.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from surveillance.catalog import Catalog
from surveillance.cluster.errors import LeaseLost
from surveillance.cluster.records import Lease, LeaseToken
from surveillance.cluster.rendezvous import assign
from surveillance.cluster.store import ClusterStore
from surveillance.config.models import ClusterConfig
from surveillance.services.cluster_membership import Membership
from surveillance.services.ingest import IngestService
from surveillance.services.outage_evidence import ASK_TIMEOUT_S, nobody_can_claim

log = logging.getLogger(__name__)

# What a camera whose lease ran out under this node shows until its new owner's status.
LEASE_LOST = "lease lost: another node may hold it now"
DB_UNREACHABLE = (
    "database unreachable from this node while another node reaches it: not read here "
    "until this node can renew its lease"
)
LEASE_MARGIN_S = 1.0  # the local deadline comes this much before the database's expiry
# A camera let go whose worker thread has not ended after this is said in the log (once):
# its lease stays this node's (renewed, not read) until the thread ends.
RELEASE_WAIT_LOG_S = 30.0
# Seconds past renew_s without an answer from the database (a statement hanging on a
# dead connection) after which this node counts it unreachable, like a failed statement.
DB_SILENT_EXTRA_S = 2.0
LEASED_KIND = "rtsp"  # cameras of this source kind are leased; others are pinned here
DB_ERROR_LOG_EVERY_S = 30.0
MIN_WAKE_S = 0.05  # the watchdog's shortest sleep

# on_takeover(node_id, camera_ids): cameras taken over from a node that is not live (its
# events of them are ended). Called in a worker thread; their ingest starts after it.
TakeOver = Callable[[str, Sequence[str]], object]
T = TypeVar("T")


class Ownership:
    def __init__(
        self,
        store: ClusterStore,
        membership: Membership,
        catalog: Catalog,
        ingest: IngestService,
        config: ClusterConfig,
        *,
        on_takeover: TakeOver | None = None,
    ) -> None:
        self.store = store
        self.membership = membership
        self.catalog = catalog
        self.ingest = ingest
        self.config = config
        self.node_id = membership.node_id
        self.on_takeover = on_takeover
        self._deadlines: dict[str, float] = {}  # camera -> local monotonic deadline
        self._tokens: dict[str, LeaseToken] = {}
        self._owners: dict[str, str] = {}  # camera -> holder, at the last lease read
        self._running: set[str] = set()  # cameras the ingest was last told are ours
        # Renewals, claims and releases one at a time, each with its adoption of the
        # result: a renewal's list of all we hold must not miss a claim that overtook it.
        self._lease_lock = asyncio.Lock()
        # Lease statements never queue behind other work in the shared default pool
        # (ingest joins, event writes): a thread of their own, made when first used.
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="cluster-leases")
        self._tasks: set[asyncio.Task[None]] = set()  # ingest changes, take-overs
        self._taking: set[str] = set()  # held, not started until on_takeover has run
        self._releasing: dict[str, float] = {}  # let go, released once not read: since
        self._quiet_until = 0.0  # monotonic; no claims of others' cameras before it
        self._db_down = False  # a lease statement failed since the last that answered
        self._db_ok_at = time.monotonic()  # when a lease statement last answered
        self._error_logged_at = -DB_ERROR_LOG_EVERY_S
        # Outage: held cameras may be read (not written) until this monotonic time, every
        # live peer having said it cannot reach the database either (outage_evidence.py).
        self._unclaimable_until = 0.0
        self._outage_said: set[str] = set()  # what was logged of this outage (once each)
        self._dropped: set[str] = set()  # leases found taken or gone: shown "lease lost"
        self._slow_release_said: set[str] = set()
        self._wake = asyncio.Event()  # the watchdog looks again (a deadline moved)
        self._rounds_task: asyncio.Task[None] | None = None
        self._renewals_task: asyncio.Task[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._outage_task: asyncio.Task[None] | None = None
        membership.on_lost(self._lost)

    # -- life cycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """The first round, then the loops. Before the ingest starts (after the membership
        joined): the node never connects a camera it does not hold."""
        await self.round()
        self._renewals_task = asyncio.create_task(
            _every(self.config.renew_s, self._renew, "renewal"), name="cluster-renewals"
        )
        self._rounds_task = asyncio.create_task(
            _every(self.config.renew_s, self._work, "round"), name="cluster-leases"
        )
        self._watchdog_task = asyncio.create_task(self._watchdog(), name="cluster-watchdog")
        self._outage_task = asyncio.create_task(
            _every(self.config.renew_s, self._ask_peers, "outage check"), name="cluster-outage"
        )

    async def stop_renewing(self) -> None:
        """Stop the rounds: no renewal, claim or hand-off from now on; held cameras stop
        at their local deadlines (what a node cut off from the database lives through)."""
        await _cancel(self._renewals_task)
        await _cancel(self._rounds_task)
        await _cancel(self._outage_task)
        self._renewals_task = self._rounds_task = self._outage_task = None

    async def stop(self) -> None:
        """Stop the loops, the ingest of the held cameras, then release them: the others
        take them at their next round instead of a lease later."""
        await self.stop_renewing()
        await _cancel(self._watchdog_task)
        self._watchdog_task = None
        held = set(self._deadlines) | set(self._releasing)
        self._deadlines.clear()
        self._tokens.clear()
        self._sync()
        while self._tasks:  # the ingest stops (bounded joins) and take-overs under way
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # A camera whose reader is still ending is left to expire (a lease later).
        done = sorted(c for c in held if not self.ingest.reading(c))
        if done:
            with contextlib.suppress(SQLAlchemyError):
                await self._db(self.store.release, self.node_id, done)
        self._db_thread.shutdown(wait=False)

    # -- reads (any thread) ---------------------------------------------------------------
    def pinned(self, camera_id: str) -> bool:
        camera = self.catalog.camera(camera_id)
        return camera is not None and camera.source_kind != LEASED_KIND

    def holds(self, camera_id: str) -> bool:
        """This node reads the camera: pinned, or its lease's local deadline not passed."""
        if self.pinned(camera_id):
            return True
        return self._deadlines.get(camera_id, 0.0) > time.monotonic()

    def reads(self, camera_id: str) -> bool:
        """This node reads the camera (what the ingest follows): it holds it, or held it
        until a database outage that every peer shares (nobody can claim it; nothing is
        written for it meanwhile)."""
        if self.holds(camera_id):
            return True
        return camera_id in self._deadlines and self._unclaimable_until > time.monotonic()

    def database_reachable(self, now: float | None = None) -> bool:
        """Whether this node's lease statements reach the database: the last one answered
        and one did within renew_s + DB_SILENT_EXTRA_S. False also means: once it answers
        again, no camera another node held is claimed here for lease_s (peers rely on it,
        GET /api/cluster/database)."""
        now = time.monotonic() if now is None else now
        silent_s = now - self._db_ok_at
        return not self._db_down and silent_s < self.config.renew_s + DB_SILENT_EXTRA_S

    def held(self) -> frozenset[str]:
        """The leased cameras held now (pinned ones are not listed)."""
        now = time.monotonic()
        return frozenset(c for c, deadline in list(self._deadlines.items()) if deadline > now)

    def owner(self, camera_id: str) -> str | None:
        """The node holding the camera: this one for held and pinned cameras, else the
        holder at the last lease read (None: nobody, or moving)."""
        if self.holds(camera_id):
            return self.node_id
        holder = self._owners.get(camera_id)
        return None if holder == self.node_id else holder

    def owner_url(self, camera_id: str) -> str | None:
        """Where to forward a request for the camera; None when this node holds it (or
        nobody does: then it is answered here, "camera unavailable")."""
        holder = self.owner(camera_id)
        if holder is None or holder == self.node_id:
            return None
        return self.membership.node_url(holder)

    def token(self, camera_id: str) -> LeaseToken:
        """The fencing token of a held camera; LeaseLost when it is not held."""
        token = self._tokens.get(camera_id)
        if token is None or not self.holds(camera_id):
            raise LeaseLost(camera_id, f"node {self.node_id} does not hold its lease")
        return token

    def fence(self, connection: Connection, camera_id: str) -> None:
        """Inside a writer's transaction: LeaseLost unless this node's lease on the camera
        still holds in the database. No check for pinned cameras, nor for one the catalog
        no longer has (nobody leases it)."""
        camera = self.catalog.camera(camera_id)
        if camera is None or camera.source_kind != LEASED_KIND:
            return
        self.store.check_fence(connection, camera_id, self.token(camera_id))

    # -- the round ------------------------------------------------------------------------
    async def round(self) -> None:
        """Renew, then one round: read, claim, hand off. Public for tests and the first
        round (the loops do the two apart, each every renew_s)."""
        if await self._renew():
            await self._work()

    async def _renew(self) -> bool:
        """Renew this node's leases and move their local deadlines. False: the database
        did not answer (held cameras run on until their deadlines)."""
        if self.membership.lost:
            return False
        try:
            async with self._lease_lock:
                sent_at = time.monotonic()
                mine = await self._db(self.store.renew, self.node_id, self.config.lease_s)
                self._db_ok()
                listed = {lease.camera_id for lease in mine}
                # Read on through an outage (or a pause) past their leases: claimed again
                # now, before anyone waiting out the outage may (generation + 1); one
                # another node took meanwhile is not got, and stops below.
                again = [c for c in self._running if c in self._deadlines and c not in listed]
                got: Sequence[Lease] = []
                if again:
                    got = await self._db(self.store.claim, self.node_id, again, self.config.lease_s)
                    self._log_reclaimed(again, got)
                self._adopt([*mine, *got], sent_at, every=True)
                self._unclaimable_until = 0.0  # from now on the leases say who reads what
        except SQLAlchemyError as error:
            self._db_failed(error)
            self._sync()
            return False
        self._sync()
        return True

    async def _work(self) -> None:
        """Read every lease and the live nodes; claim, hand off, release what has ended."""
        if self.membership.lost:
            return
        leased = self._leased_cameras()
        try:
            leases = await self._db(self.store.leases)
        except SQLAlchemyError as error:
            self._db_failed(error)
            self._sync()
            return
        self._db_ok()
        rows = {lease.camera_id: lease for lease in leases}
        self._owners = {c: lease.node_id for c, lease in rows.items() if lease.remaining_s > 0}
        # A camera read on past its lease (an outage) that another node now holds: its
        # reader stops at once (it cannot be during a true outage; a partition, say).
        taken = [c for c in self._running if not self.holds(c) and self._owners.get(c) not in
                 (None, self.node_id)]  # fmt: skip
        for camera_id in taken:
            self._deadlines.pop(camera_id, None)
            self._tokens.pop(camera_id, None)
            self._dropped.add(camera_id)
        # Held leases of cameras the catalog no longer has are let go.
        gone = [c for c in self._deadlines if c not in leased]
        live = self.membership.live_nodes()
        if self.membership.is_live(self.node_id):
            preferred = assign(sorted(leased), [(n.id, n.capacity) for n in live])
            await self._claim(leased, preferred, rows)
            handed = [
                c for c in self.held()
                if (owner := preferred.get(c)) not in (None, self.node_id)
                and self.membership.live_for_s(owner) >= self.config.lease_s
            ]  # fmt: skip
            self._let_go(gone + handed)
        else:
            self._let_go(gone)
        await self._release_ended()  # (those whose stop ended without releasing them)
        self._sync()

    async def _claim(
        self, leased: Collection[str], preferred: dict[str, str], rows: dict[str, Lease]
    ) -> None:
        quiet = time.monotonic() < self._quiet_until
        held = self.held()
        wanted = []
        for camera_id in leased:
            if preferred.get(camera_id) != self.node_id or camera_id in held:
                continue
            if camera_id in self._releasing:
                continue  # claimed again once released (its reader has ended)
            row = rows.get(camera_id)
            if row is not None and row.node_id != self.node_id and (row.remaining_s > 0 or quiet):
                continue  # its holder keeps it (and hands it over when settled)
            wanted.append(camera_id)
        if not wanted:
            return
        try:
            async with self._lease_lock:
                sent_at = time.monotonic()
                got = await self._db(self.store.claim, self.node_id, wanted, self.config.lease_s)
                self._db_ok()
                self._adopt(got, sent_at)
        except SQLAlchemyError as error:
            self._db_failed(error)
            return
        if got:
            log.info("cluster: claimed %d cameras: %s", len(got),
                     ", ".join(sorted(lease.camera_id for lease in got)[:10]))  # fmt: skip
        taken: dict[str, list[str]] = {}
        for lease in got:
            row = rows.get(lease.camera_id)
            # A dead node's camera (not one handed off): its events nobody ends otherwise.
            if row and row.node_id != self.node_id and not self.membership.is_live(row.node_id):
                taken.setdefault(row.node_id, []).append(lease.camera_id)
        for node_id, cameras in taken.items():
            log.info("cluster: took over %d cameras of node %s", len(cameras), node_id)
            if self.on_takeover is not None:
                self._taking.update(cameras)
                self._spawn(self._take_over(self.on_takeover, node_id, cameras))
        self._sync()  # the others' ingest starts now

    async def _take_over(self, on_takeover: TakeOver, node_id: str, cameras: list[str]) -> None:
        """The dead node's events ended, then the cameras' ingest started (what this node
        writes for them comes after what ends the old holder's), renewals going on."""
        try:
            await asyncio.to_thread(on_takeover, node_id, cameras)
        except Exception:  # its events stay active; the cameras are ours anyway
            log.exception("cluster: ending node %s's events failed", node_id)
        self._taking.difference_update(cameras)
        self._sync()

    def _let_go(self, camera_ids: Sequence[str]) -> None:
        """Stop reading the cameras; their leases are released once their worker threads
        have ended (their connections closed): until then the leases stay ours, renewed
        but not read, so the next holder cannot connect while this node still does."""
        now = time.monotonic()
        for camera_id in camera_ids:
            self._deadlines.pop(camera_id, None)
            self._tokens.pop(camera_id, None)
            self._releasing.setdefault(camera_id, now)
        if camera_ids:
            self._sync()

    async def _release_ended(self) -> None:
        """Release the cameras let go whose readers have ended. One whose reader has not
        is kept (renewed, not read) however long: released under a running reader, the
        camera could be read by two nodes. The ingest monitor ends a reader hung on a
        silent camera; one that outlives RELEASE_WAIT_LOG_S is said once."""
        try:
            async with self._lease_lock:  # (picked inside: a claim must not come between)
                now = time.monotonic()
                done = [c for c in self._releasing if not self.ingest.reading(c)]
                for camera_id, since in self._releasing.items():
                    slow = now - since > RELEASE_WAIT_LOG_S and camera_id not in done
                    if slow and camera_id not in self._slow_release_said:
                        self._slow_release_said.add(camera_id)
                        log.warning("cluster: camera %s handed off, but its reader has not "
                                    "ended after %g s: its lease is kept (not read) until it "
                                    "does", camera_id, RELEASE_WAIT_LOG_S)  # fmt: skip
                if not done:
                    return
                await self._db(self.store.release, self.node_id, done)
                self._db_ok()
                for camera_id in done:
                    self._releasing.pop(camera_id, None)
                    self._slow_release_said.discard(camera_id)
        except SQLAlchemyError as error:
            self._db_failed(error)  # retried next round, or they expire, a lease later
            return
        log.info("cluster: handed off %d cameras: %s", len(done), ", ".join(sorted(done)[:10]))

    def _adopt(self, leases: Sequence[Lease], sent_at: float, *, every: bool = False) -> None:
        """Leases the database says are ours: their local deadlines, from before the
        statement was sent. ``every``: the list is all we hold (a renewal), so a held
        camera missing from it is lost now (expired there: someone may claim it)."""
        if every:
            listed = {lease.camera_id for lease in leases}
            gone = [c for c in self._deadlines if c not in listed]
            if gone:
                log.warning("cluster: lease lost, %d leases expired or taken before renewal: "
                            "%s", len(gone), ", ".join(sorted(gone)[:10]))  # fmt: skip
            for camera_id in gone:
                del self._deadlines[camera_id]
                self._tokens.pop(camera_id, None)
                self._dropped.add(camera_id)
        for lease in leases:
            if lease.node_id != self.node_id or lease.camera_id in self._releasing:
                continue  # (one being let go stays ours only until its reader has ended)
            remaining = min(self.config.lease_s, lease.remaining_s)
            self._deadlines[lease.camera_id] = sent_at + remaining - LEASE_MARGIN_S
            self._tokens[lease.camera_id] = LeaseToken(self.node_id, lease.generation)
        self._wake.set()

    def _leased_cameras(self) -> set[str]:
        return {c.id for c in self.catalog.cameras.values() if c.source_kind == LEASED_KIND}

    async def _db(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, call, *args)

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- keeping the ingest in step ------------------------------------------------------
    def _sync(self) -> None:
        """Tell the ingest which leased cameras are ours now (it starts and stops workers),
        in tasks of their own: a stop waits for the worker threads to end. Tasks run in
        the order made, and each applies its change before its first wait, so a later
        change never overtakes an earlier one."""
        want = {c for c in self._deadlines if self.reads(c)} - self._taking
        # Read until now but not let go (no hand-off): the lease ran out or was taken.
        lost = {c for c in self._running - want if c in self._deadlines or c in self._dropped}
        cut_off = set() if self.database_reachable() else lost - self._dropped
        lost -= cut_off
        self._dropped.clear()
        changed = (want - self._running) | (self._running - want - lost - cut_off)
        self._running = want
        if lost:
            log.warning(
                "cluster: lease lost, %d cameras no longer read here: %s",
                len(lost), ", ".join(sorted(lost)[:10]),
            )  # fmt: skip
            self._spawn(self._apply(self.ingest.ownership_changed(sorted(lost), LEASE_LOST)))
        if cut_off:
            self._say_once("cut off", "cluster: database unreachable here but not from every "
                           "live peer (this node may be cut off): cameras no longer read here "
                           "from their lease deadlines, first %d: %s", len(cut_off),
                           ", ".join(sorted(cut_off)[:10]))  # fmt: skip
            self._spawn(self._apply(self.ingest.ownership_changed(sorted(cut_off), DB_UNREACHABLE)))
        if changed:
            self._spawn(self._apply(self.ingest.ownership_changed(sorted(changed))))

    async def _apply(self, change: Awaitable[None]) -> None:
        try:
            await change
        except Exception:
            log.exception("cluster: starting or stopping cameras failed")
        if self._releasing:
            await self._release_ended()  # a hand-off's reader has ended: release it now

    async def _watchdog(self) -> None:
        """Stop the ingest of a camera as soon as its local deadline passes, whatever the
        rounds are waiting for (a database that does not answer)."""
        while True:
            self._wake.clear()
            now = time.monotonic()
            running_deadlines = [self._read_deadline(c) for c in self._running]
            if any(d <= now for d in running_deadlines):
                self._sync()
                continue
            nearest = min(running_deadlines, default=now + self.config.renew_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(MIN_WAKE_S, nearest - now))

    def _read_deadline(self, camera_id: str) -> float:
        deadline = self._deadlines.get(camera_id, 0.0)
        return max(deadline, self._unclaimable_until) if camera_id in self._deadlines else 0.0

    async def _ask_peers(self) -> None:
        """During an outage, every renew round: may the cameras held be read on? Yes
        while every peer live at the last read says it cannot reach the database either
        (for the next round and an ask's time; never past what a peer's answer holds: it
        claims nothing others held for lease_s after it reaches the database again)."""
        asked_at = time.monotonic()
        if self.database_reachable(asked_at) or not self._deadlines or self.membership.lost:
            return
        peers = [n.url for n in self.membership.live_nodes() if n.id != self.node_id]
        shared = await nobody_can_claim(peers)
        valid_s = min(self.config.renew_s + 2 * ASK_TIMEOUT_S, self.config.lease_s - LEASE_MARGIN_S)
        self._unclaimable_until = asked_at + valid_s if shared else 0.0
        if shared:
            self._say_once("reading on", "cluster: database unreachable from every node (%d "
                           "peers say so too): %d held cameras are read on, nothing is written "
                           "for them until their leases are renewed", len(peers),
                           len(self._deadlines))  # fmt: skip
        self._wake.set()
        self._sync()

    def _log_reclaimed(self, wanted: Sequence[str], got: Sequence[Lease]) -> None:
        mine = sorted(lease.camera_id for lease in got if lease.node_id == self.node_id)
        if mine:
            log.warning("cluster: %d cameras read on past their leases claimed again "
                        "(new generation): %s", len(mine), ", ".join(mine[:10]))  # fmt: skip
        taken = sorted(set(wanted) - set(mine))
        if taken:
            log.warning("cluster: lease lost, %d cameras read on past their leases were taken "
                        "meanwhile: %s", len(taken), ", ".join(taken[:10]))  # fmt: skip

    def _say_once(self, what: str, message: str, *args: object) -> None:
        """One log line of each kind per outage (not per camera, not per round)."""
        if what not in self._outage_said:
            self._outage_said.add(what)
            log.warning(message, *args)

    def _db_ok(self) -> None:
        """A lease statement answered. After an outage (as database_reachable() told the
        peers) the cameras others held are left to them for lease_s: they renew first."""
        now = time.monotonic()
        if not self.database_reachable(now):
            self._quiet_until = now + self.config.lease_s
            log.warning("cluster: database reachable again; claims of others' cameras "
                        "resume in %g s", self.config.lease_s)  # fmt: skip
            self._outage_said.clear()
            self._error_logged_at = -DB_ERROR_LOG_EVERY_S
        self._db_down = False
        self._db_ok_at = now

    def _lost(self) -> None:
        """Another process runs under this node's id: hold nothing from now on."""
        self._deadlines.clear()
        self._tokens.clear()
        self._releasing.clear()  # the leases are the other process's now: not released
        self._taking.clear()
        self._wake.set()

    def _db_failed(self, error: SQLAlchemyError) -> None:
        self._db_down = True
        now = time.monotonic()
        if now - self._error_logged_at >= DB_ERROR_LOG_EVERY_S:
            self._error_logged_at = now
            # The class name only: a driver's message may carry the connection string.
            log.warning(
                "cluster: lease database unreachable (%s): no claims; writes for held cameras "
                "stop at their lease deadlines, reading goes on only while every live peer "
                "cannot reach the database either",
                type(error).__name__,
            )


async def _every(period_s: float, job: Callable[[], Awaitable[object]], what: str) -> None:
    """``job`` every ``period_s``, counted from the start of the previous one (not its
    end: a slow one does not push the next back), never two at once."""
    due = time.monotonic()
    while True:
        due = max(due + period_s, time.monotonic())
        await asyncio.sleep(due - time.monotonic())
        try:
            await job()
        except Exception:  # one failed pass must not end the node's leases
            log.exception("cluster: lease %s failed", what)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
