"""The case service: the workflow and evidence operations the API offers, in one place.

An attach checks the case first (a missing or closed case fails before any footage is
taken), takes the footage, stores its bytes, then records the item, checking the case's
state again in the recording transaction. If storing fails nothing is recorded; if
recording fails (the case was closed meanwhile, the database is full) the stored file is
removed again unless something else owns it (:mod:`.unowned`), and what a crash leaves
is set aside at the next start.

Assignees are people with an account: the service asks ``assignee_exists`` (wired to the
user store by the node, since this package knows nothing of auth) before a case is
created, edited or moved with a new assignee.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import hashlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from surveillance.cases import bundle, key_ring
from surveillance.cases.case_store import UNSET
from surveillance.cases.entry_signatures import record_start
from surveillance.cases.errors import (
    EvidenceMissing,
    ExportFailed,
    ExportOutdated,
    UnknownAssignee,
)
from surveillance.cases.footage import Footage, FootageSource
from surveillance.cases.reads import RecentReads
from surveillance.cases.records import (
    CaseDetail,
    CaseFilter,
    CasePage,
    CaseRecord,
    CustodyRecord,
    ItemRecord,
    TimelineRecord,
)
from surveillance.cases.signing import NodeKey
from surveillance.cases.states import CaseState
from surveillance.cases.storage import EvidenceStore
from surveillance.cases.store import CaseStores
from surveillance.cases.unowned import AttachClaims, set_aside_unowned
from surveillance.db.fence import Fence
from surveillance.errors import SurveillanceError

log = logging.getLogger(__name__)

# A bundle is written again if the case's custody log moved on while it was written (a
# view or an attach meanwhile), so that the bundle ends with its own export entry.
EXPORT_ATTEMPTS = 3


class CaseService:
    def __init__(
        self,
        engine: Engine,
        evidence: EvidenceStore,
        footage: FootageSource,
        key_dir: Path,
        assignee_exists: Callable[[str], bool],
        node_name: str | None = None,
        key_ring: Path | None = None,
    ) -> None:
        """``key_ring``: the cluster's shared directory (cluster mode), where this node
        publishes its public key and finds the other nodes' (:mod:`.key_ring`)."""
        self.engine = engine
        self._assignee_exists = assignee_exists
        self.stores = CaseStores(engine, self._sign_entry)
        self.evidence = evidence
        self.footage = footage
        self.node_name = node_name or socket.gethostname()
        self._key_dir = key_dir
        self._key_ring = key_ring
        self._key: NodeKey | None = None
        self._key_lock = threading.Lock()
        self.recent_reads = RecentReads()
        self._claims = AttachClaims()
        self._signing_start: dict[str, Any] | None = None
        self._archive_hooks: list[Callable[[str, str], None]] = []
        # Cluster mode: items cut from a camera's live footage are written only while this
        # node holds the camera (the node sets it; None checks nothing).
        self.live_fence: Fence | None = None
        # The camera's clock offset (camera minus server, s) as the node knows it now, for
        # the items made from its footage (the node sets it; None: never known).
        self.camera_clock: Callable[[str], float | None] | None = None

    # -- life cycle -----------------------------------------------------------------------
    def open(self) -> None:
        """Prepare the evidence store: remove what an interrupted write left, and set aside
        files no item owns (an attach interrupted between file and row) (blocking)."""
        self.evidence.prepare()
        set_aside_unowned(self.evidence, self.stores.items.owned_hashes())
        # Before any entry is signed: from now on every new case's entries must be.
        self._signing_start = record_start(
            self._key_dir, datetime.now(UTC), self.stores.last_numbers
        )
        if self._key_ring is not None:
            key_ring.publish(self._key_ring, self.node_name, self.key.public_raw)

    def cluster_keys(self) -> dict[str, bytes]:
        """The other nodes' public keys by node id (empty on a single node) (blocking)."""
        if self._key_ring is None:
            return {}
        keys = key_ring.read_keys(self._key_ring)
        keys.pop(self.node_name, None)
        return keys

    def _sign_entry(self, message: bytes) -> bytes:
        """Every new custody entry is signed with the node's key; a key that cannot be
        made or read fails the change (507 or 500, naming the file) rather than leaving
        an unsigned entry that verification would flag as forged."""
        return self.key.sign(message)

    @property
    def key(self) -> NodeKey:
        """The node's signing key, created on first use."""
        with self._key_lock:
            if self._key is None:
                self._key = NodeKey.load_or_create(self._key_dir)
            return self._key

    def on_archived(self, hook: Callable[[str, str], None]) -> None:
        """``hook(number, actor)`` runs once a case is archived (the recordings release the
        holds it placed; this package knows nothing of recordings)."""
        self._archive_hooks.append(hook)

    # -- cases (blocking: async callers run these in a worker thread) ----------------------
    def create(
        self,
        *,
        title: str,
        description: str = "",
        place: str | None = None,
        tags: Iterable[str] = (),
        cameras: Iterable[str] = (),
        reporter: str,
        assignee: str | None = None,
        now: datetime | None = None,
    ) -> CaseRecord:
        self._check_assignee(assignee)
        return self.stores.cases.create(
            title=title,
            description=description,
            place=place,
            tags=tags,
            cameras=cameras,
            reporter=reporter,
            assignee=assignee,
            now=now,
        )

    def _check_assignee(self, name: str | None) -> None:
        if name and not self._assignee_exists(name):
            raise UnknownAssignee(name)

    def search(self, query: CaseFilter) -> CasePage:
        return self.stores.cases.search(query)

    def get(self, number: str) -> CaseDetail:
        return self.stores.cases.get(number)

    def update(
        self,
        number: str,
        actor: str,
        *,
        title: str | None = None,
        description: str | None = None,
        place: str | None = UNSET,
        assignee: str | None = UNSET,
        tags: Sequence[str] | None = None,
        cameras: Sequence[str] | None = None,
    ) -> CaseRecord:
        """Edit a case; a field left out stays as it is (place and assignee take None)."""
        if assignee is not UNSET:
            self._check_assignee(assignee)
        return self.stores.cases.update(
            number,
            actor,
            title=title,
            description=description,
            place=place,
            assignee=assignee,
            tags=tags,
            cameras=cameras,
        )

    def transition(
        self,
        number: str,
        target: CaseState,
        actor: str,
        *,
        comment: str | None = None,
        assignee: str | None = None,
    ) -> CaseRecord:
        self._check_assignee(assignee)
        record = self.stores.cases.transition(
            number, target, actor, comment=comment, assignee=assignee
        )
        if record.state is CaseState.ARCHIVED:
            for hook in self._archive_hooks:
                try:
                    hook(number, actor)
                except (SurveillanceError, SQLAlchemyError):
                    # The archive stands; what the hook kept (held footage) stays kept, the
                    # safe side, until someone lets it go by hand.
                    log.exception("case %s archived, but a follow-up failed", number)
        return record

    def comment(self, number: str, actor: str, text: str) -> TimelineRecord:
        return self.stores.cases.comment(number, actor, text)

    def items(self, number: str) -> list[ItemRecord]:
        return self.stores.items.items(number)

    def item(self, number: str, ref: str) -> ItemRecord:
        return self.stores.items.item(number, ref)

    def custody(self, number: str) -> list[CustodyRecord]:
        return self.stores.custody.entries(number)

    # -- evidence -------------------------------------------------------------------------
    async def attach_snapshot(
        self, number: str, camera_id: str, actor: str, *, at: datetime | None = None
    ) -> ItemRecord:
        await asyncio.to_thread(self.stores.items.check_attachable, number)
        footage = await self.footage.snapshot(camera_id, at)
        return await self._record(number, footage, actor, live=at is None)

    async def attach_clip(
        self,
        number: str,
        camera_id: str,
        actor: str,
        *,
        at: datetime | None,
        pre_s: float,
        post_s: float,
    ) -> ItemRecord:
        await asyncio.to_thread(self.stores.items.check_attachable, number)
        footage = await self.footage.clip(camera_id, at, pre_s, post_s)
        return await self._record(number, footage, actor, live=at is None)

    async def attach(self, number: str, footage: Footage, actor: str) -> ItemRecord:
        """Attach footage the caller took itself (an alarm's picture from the ring, or the
        snapshot its event stored), with the same checks as the attaches above."""
        await asyncio.to_thread(self.stores.items.check_attachable, number)
        return await self._record(number, footage, actor)

    async def _record(
        self, number: str, footage: Footage, actor: str, *, live: bool = False
    ) -> ItemRecord:
        """``live``: cut from the camera's live footage now (fenced in cluster mode)."""
        fence = self.live_fence if live else None
        clock = self.camera_clock
        if footage.camera_clock_offset_s is None and clock is not None:
            # Read when the item is made: a clock set right later does not rewrite it.
            footage = dataclasses.replace(footage, camera_clock_offset_s=clock(footage.camera_id))
        return await asyncio.to_thread(self._store_and_record, number, footage, actor, fence)

    def _store_and_record(
        self, number: str, footage: Footage, actor: str, fence: Fence | None = None
    ) -> ItemRecord:
        sha256 = hashlib.sha256(footage.data).hexdigest()
        with self._claims.claim(sha256):
            blob = self.evidence.put(footage.data)
            try:
                return self.stores.items.add(number, footage, blob, actor, fence)
            except BaseException:
                # Whoever first stored these bytes: if no attach but this one claims
                # them and no item owns them, they go with this attach's failure.
                self._discard_quietly(sha256)
                raise

    def _discard_quietly(self, sha256: str) -> None:
        # The attach's own error is the one to report; if the database cannot even be
        # asked whether an item owns the file, it stays, and the next start sets it aside.
        try:
            self._claims.discard_if_unowned(sha256, self.evidence, self.stores.items.owns)
        except (SurveillanceError, OSError, SQLAlchemyError):
            log.exception("could not remove evidence file %s of a refused attach", sha256)

    def open_item(
        self, item: ItemRecord, actor: str, *, download: bool, reader: str
    ) -> tuple[BinaryIO, bool]:
        """An item's bytes, and whether this read was logged as a view or a download now
        (blocking). Every read counts, whatever range it asks for; ``reader`` (a session or
        a token) is logged once per item and action within :data:`.reads.READ_LOG_WINDOW_S`.
        """
        try:
            handle = self.evidence.open(item.sha256)
        except KeyError:
            raise EvidenceMissing.of(item) from None
        action = "download" if download else "view"
        key = (reader, item.case_number, item.id, action)
        if not self.recent_reads.claim(key):
            return handle, False
        try:
            self.stores.custody.log_access(item.case_number, item.id, action, actor)
        except BaseException:
            self.recent_reads.release(key)
            handle.close()
            raise
        return handle, True

    def export(self, number: str, actor: str, out: IO[bytes]) -> None:
        """Write the case's signed bundle to ``out`` (seekable), then log the export
        (blocking). The entry is committed only once the bundle is whole; a bundle that
        cannot be written is logged as ``export_failed`` with its reason instead."""
        key = self.key
        detail = {"node": self.node_name, "fingerprint": key.fingerprint}
        for _ in range(EXPORT_ATTEMPTS):
            view = self.stores.prepare_export(number, actor, detail)
            out.seek(0)
            out.truncate()
            try:
                exported_at = datetime.now(UTC)
                bundle.write_bundle(
                    out,
                    view,
                    self.evidence,
                    key,
                    self.node_name,
                    actor,
                    exported_at,
                    self._signing_start,
                    key_ring.described(self.cluster_keys()),
                )
            except (SurveillanceError, OSError) as exc:
                failure = _export_failure(number, exc)
                self.stores.custody.log_failed_export(
                    number, actor, failure.reason, failure.item_id
                )
                raise failure from exc
            if self.stores.commit_export(number, view):
                return
        raise ExportOutdated(number)


def _export_failure(number: str, exc: SurveillanceError | OSError) -> ExportFailed:
    if isinstance(exc, OSError):
        disk_full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "the disk is full" if disk_full else (exc.strerror or str(exc))
        return ExportFailed(number, reason, disk_full=disk_full)
    item_id = exc.item_id if isinstance(exc, EvidenceMissing) else None
    failure = ExportFailed(number, str(exc), item_id=item_id)
    failure.status_code = exc.status_code  # type: ignore[misc]
    return failure
