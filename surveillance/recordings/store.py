"""The recording index: segments, gaps and holds, each change one short transaction.

Time-range reads use the (camera_id, stream, start_at, end_at) index: a segment that
overlaps the start of a range began at most :data:`~.records.MAX_SEGMENT_S` earlier, so
the look-back is bounded; a gap can last days, so the one gap before the range (gaps of
one camera stream follow each other) is found by a descending seek instead. The timeline
wants :meth:`RecordingStore.spans`, read from the index alone (a month of a camera in a
few hundred adjacent index pages); :meth:`RecordingStore.segments` reads whole rows, which
lie among every other camera's, for the windows that are played or exported.

Closing a segment links it into its chain (:mod:`.chain`) in the transaction that reads
the chain's tail; removing segments keeps the chain checkable
(:meth:`RecordingStore.remove_segments`).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Engine, and_, delete, func, not_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from surveillance.config.models import RecordingStream
from surveillance.db.advisory import RETENTION_LOCK, exclusive
from surveillance.db.fence import Fence
from surveillance.db.orm import Transactions, from_row
from surveillance.errors import Conflict, NotFound
from surveillance.recordings.chain import genesis_link, segment_link
from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, check_relative
from surveillance.recordings.records import (
    MAX_SEGMENT_S,
    ChainAnchor,
    GapRecord,
    HoldRecord,
    RemovalRecord,
    SegmentRecord,
    Span,
)
from surveillance.recordings.tables import (
    REASON_LENGTH,
    ChainAnchorRow,
    GapRow,
    HoldRow,
    RemovalRow,
    SegmentRow,
)

STREAMS = tuple(s.value for s in RecordingStream)
SPAN_TOUCH_S = 1.5  # segments of a stream this close are one span of footage
IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound variable limit
_segments = SegmentRow.__table__
_gaps = GapRow.__table__


class SegmentNotFound(NotFound):
    def __init__(self, segment_id: int) -> None:
        super().__init__(f"no recording segment {segment_id}")


class SegmentNotOpen(Conflict):
    def __init__(self, segment_id: int) -> None:
        super().__init__(f"recording segment {segment_id} is already closed")


def _streams(stream: str | None) -> tuple[str, ...]:
    if stream is None:
        return STREAMS
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(STREAMS)}, not {stream!r}")
    return (stream,)


# Segment rows are read in the record's field order and made into records by position: a
# day of one camera is 1,440 of them, and the timeline reads that in well under 100 ms.
_SEGMENT_COLUMNS = [
    _segments.c["keyframes" if f.name == "keyframes_json" else f.name]
    for f in fields(SegmentRecord)
]


def _segment(row: Sequence[Any]) -> SegmentRecord:
    return SegmentRecord(*row)


def _reason(text: str) -> str:
    return text[:REASON_LENGTH]


class RecordingStore:
    def __init__(self, engine: Engine, fence: Fence | None = None) -> None:
        """``fence(connection, camera_id)``: cluster mode's check, inside the transaction
        of each write for a camera (a segment opened, closed or discarded, a gap added or
        ended), that this node still holds the camera (raises LeaseLost): a node that
        lost the lease (paused, cut off) must not touch what the camera's new owner
        reconciles. ``fenced=False`` on a write skips it: for a recorder closing what it
        let go cleanly (its hand-off, services/camera_recorder.py), and for nothing else."""
        self._engine = engine
        self._transactions = Transactions(engine)
        self._fence = fence

    def retention_turn(self) -> AbstractContextManager[bool]:
        """Cluster mode: a context whose value says whether this node runs the retention
        pass now, one node at a time (services/retention.py says why)."""
        return exclusive(self._engine, RETENTION_LOCK)

    # -- segments ---------------------------------------------------------------------

    def open_segment(
        self,
        camera_id: str,
        stream: str,
        path: str,
        start_at: float,
        codec: str,
        width: int,
        height: int,
    ) -> int:
        """A new open segment's id; ``path`` (relative) may hold :data:`SEGMENT_ID_PLACEHOLDER`,
        stored with the id in its place."""
        _streams(stream)
        check_relative(path)
        with self._transactions.begin() as session:
            self._check(session, camera_id)
            row = SegmentRow(
                camera_id=camera_id, stream=stream, path=path, start_at=start_at, bytes=0,
                codec=codec, width=width, height=height, frames=0, init_bytes=0,
                keyframes="[]",
            )  # fmt: skip
            session.add(row)
            session.flush()
            row.path = path.replace(SEGMENT_ID_PLACEHOLDER, str(row.id))
            return row.id

    def close_segment(
        self,
        segment_id: int,
        end_at: float,
        bytes: int,
        sha256: str,
        frames: int,
        init_bytes: int,
        keyframes: Sequence[tuple[float, int]],
        reason: str,
        *,
        fenced: bool = True,
    ) -> SegmentRecord:
        """Close an open segment with its file's facts and link it to its chain's tail."""
        if bytes < 0 or len(sha256) != 64:
            raise ValueError("a closed segment needs its size and hex SHA-256")
        with self._transactions.begin() as session:
            row = session.get(SegmentRow, segment_id, with_for_update=True)
            if row is None:
                raise SegmentNotFound(segment_id)
            self._check(session, row.camera_id, fenced)
            if row.end_at is not None:
                raise SegmentNotOpen(segment_id)
            if end_at < row.start_at:
                raise ValueError(f"segment {segment_id} cannot end before it starts")
            anchor = self._anchor(session, row.camera_id, row.stream)
            seq = anchor.tail_seq + 1
            row.end_at = end_at
            row.bytes = bytes
            row.sha256 = sha256
            row.frames = frames
            row.init_bytes = init_bytes
            row.keyframes = json.dumps([[float(t), int(offset)] for t, offset in keyframes])
            row.closed_reason = _reason(reason)
            row.chain_seq = seq
            row.prev_link = anchor.tail_link
            row.link = segment_link(
                anchor.tail_link, row.id, row.camera_id, row.stream, seq, row.path,
                row.start_at, end_at, bytes, sha256,
            )  # fmt: skip
            anchor.tail_seq = seq
            anchor.tail_link = row.link
            anchor.stored_segments += 1
            anchor.stored_bytes += bytes
            return _segment([getattr(row, column.name) for column in _SEGMENT_COLUMNS])

    @staticmethod
    def _anchor(session: Session, camera_id: str, stream: str) -> ChainAnchorRow:
        anchor = session.get(ChainAnchorRow, (camera_id, stream), with_for_update=True)
        if anchor is None:
            start = genesis_link(camera_id, stream)
            anchor = ChainAnchorRow(
                camera_id=camera_id, stream=stream, head_seq=1, head_link=start, tail_seq=0,
                tail_link=start, stored_segments=0, stored_bytes=0, removed_segments=0,
                removed_bytes=0, removed_through=None,
            )  # fmt: skip
            session.add(anchor)
        return anchor

    def _check(self, session: Session, camera_id: str, fenced: bool = True) -> None:
        """The fence, first in a write's transaction (see __init__)."""
        if fenced and self._fence is not None:
            self._fence(session.connection(), camera_id)

    def discard_segment(self, segment_id: int) -> None:
        """Forget an open segment that holds nothing usable (its file is the caller's)."""
        with self._transactions.begin() as session:
            row = session.get(SegmentRow, segment_id, with_for_update=True)
            if row is None:
                raise SegmentNotFound(segment_id)
            self._check(session, row.camera_id)
            if row.end_at is not None:
                raise SegmentNotOpen(segment_id)
            session.delete(row)

    def segment(self, segment_id: int) -> SegmentRecord | None:
        with self._transactions.begin() as session:
            query = select(*_SEGMENT_COLUMNS).where(_segments.c.id == segment_id)
            row = session.execute(query).first()
            return None if row is None else _segment(row)

    def open_segments(self) -> list[SegmentRecord]:
        """Segments left open (by a crash, when read at start-up), oldest first."""
        query = (
            select(*_SEGMENT_COLUMNS).where(_segments.c.end_at.is_(None)).order_by(_segments.c.id)
        )
        return self._segments(query)

    def segments(
        self, camera_id: str, stream: str | None, start_at: float, end_at: float
    ) -> list[SegmentRecord]:
        """Closed segments overlapping [start_at, end_at), by start_at."""
        c = _segments.c
        query = (
            select(*_SEGMENT_COLUMNS)
            .where(
                c.camera_id == camera_id,
                c.stream.in_(_streams(stream)),
                c.start_at >= start_at - MAX_SEGMENT_S,
                c.start_at < end_at,
                c.end_at > start_at,
            )
            # The index's own order (rowid last): no sort of the result for one stream.
            .order_by(c.start_at, c.end_at, c.id)
        )
        return self._segments(query)

    def segment_paths(self, camera_id: str) -> set[str]:
        """The paths of a camera's segments, open or closed: to tell a file the index does
        not know (left by a crash between a removal and its unlink) without reading whole
        records."""
        c = _segments.c
        query = select(c.path).where(c.camera_id == camera_id, c.stream.in_(STREAMS))
        with self._transactions.begin() as session:
            return set(session.scalars(query))

    def spans(
        self,
        camera_id: str,
        stream: str | None,
        start_at: float,
        end_at: float,
        touch_s: float = SPAN_TOUCH_S,
    ) -> list[Span]:
        """The footage overlapping [start_at, end_at) as spans, by stream then start: closed
        segments of a stream no more than ``touch_s`` apart are one span. Reads three
        columns, not whole records: a month of a camera (44,640 segments) answers fast."""
        c = _segments.c
        query = (
            select(c.stream, c.start_at, c.end_at)
            .where(
                c.camera_id == camera_id,
                c.stream.in_(_streams(stream)),
                c.start_at >= start_at - MAX_SEGMENT_S,
                c.start_at < end_at,
                c.end_at > start_at,
            )
            .order_by(c.stream, c.start_at)
        )
        spans: list[Span] = []
        with self._transactions.begin() as session:
            rows = session.execute(query).all()
        current: list[Any] | None = None
        for one, start, end in rows:
            if current is not None and current[0] == one and start - current[2] <= touch_s:
                current[2] = max(current[2], end)
                continue
            if current is not None:
                spans.append(Span(*current))
            current = [one, start, end]
        if current is not None:
            spans.append(Span(*current))
        return spans

    def oldest_segments(
        self,
        limit: int,
        *,
        camera_id: str | None = None,
        before: float | None = None,
        after: tuple[float, int] | None = None,
    ) -> list[SegmentRecord]:
        """Closed segments by (start_at, id), ``limit`` at a time: of one camera or all,
        starting before ``before``, past the (start_at, id) ``after`` of the last batch."""
        c = _segments.c
        conditions: list[ColumnElement[bool]] = [c.end_at.is_not(None)]
        if camera_id is not None:
            conditions += [c.camera_id == camera_id, c.stream.in_(STREAMS)]
        if before is not None:
            conditions.append(c.start_at < before)
        if after is not None:
            # A range seek on start_at, then the ties: an OR would lose the index.
            conditions += [
                c.start_at >= after[0],
                not_(and_(c.start_at == after[0], c.id <= after[1])),
            ]
        query = select(*_SEGMENT_COLUMNS).where(*conditions).order_by(c.start_at, c.id).limit(limit)
        return self._segments(query)

    def _segments(self, query: Any) -> list[SegmentRecord]:
        with self._transactions.begin() as session:
            return [_segment(row) for row in session.execute(query).all()]

    def total_bytes(self) -> int:
        """Bytes of every closed segment (open ones are the recorder's to count)."""
        with self._transactions.begin() as session:
            total = session.scalar(select(func.sum(ChainAnchorRow.stored_bytes)))
            return int(total or 0)

    # -- gaps ---------------------------------------------------------------------------

    def add_gap(
        self, camera_id: str, stream: str, start_at: float, reason: str, *, fenced: bool = True
    ) -> int:
        _streams(stream)
        with self._transactions.begin() as session:
            self._check(session, camera_id, fenced)
            row = GapRow(
                camera_id=camera_id, stream=stream, start_at=start_at, reason=_reason(reason)
            )
            session.add(row)
            session.flush()
            return row.id

    def end_gap(self, gap_id: int, end_at: float, *, fenced: bool = True) -> None:
        with self._transactions.begin() as session:
            row = session.get(GapRow, gap_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no recording gap {gap_id}")
            self._check(session, row.camera_id, fenced)
            if row.end_at is None:
                row.end_at = max(end_at, row.start_at)

    def open_gaps(self, cameras: Callable[[str], bool]) -> list[GapRecord]:
        """The gaps still open of the ``cameras`` it accepts."""
        with self._transactions.begin() as session:
            rows = session.scalars(select(GapRow).where(GapRow.end_at.is_(None))).all()
            return [from_row(GapRecord, row) for row in rows if cameras(row.camera_id)]

    def end_open_gaps(
        self,
        end_at: float,
        reason_suffix: str = "",
        cameras: Callable[[str], bool] | None = None,
    ) -> int:
        """End every gap still open (after a crash: the service was down until ``end_at``),
        of the ``cameras`` it accepts (None: all); how many."""
        with self._transactions.begin() as session:
            rows = session.scalars(select(GapRow).where(GapRow.end_at.is_(None))).all()
            rows = [row for row in rows if cameras is None or cameras(row.camera_id)]
            for row in rows:
                row.end_at = max(end_at, row.start_at)
                row.reason = _reason(row.reason + reason_suffix)
            return len(rows)

    def gaps(
        self, camera_id: str, stream: str | None, start_at: float, end_at: float
    ) -> list[GapRecord]:
        """Gaps overlapping [start_at, end_at) (ongoing ones included), by start_at."""
        c = _gaps.c
        found: list[Any] = []
        with self._transactions.begin() as session:
            for one in _streams(stream):
                chain = (c.camera_id == camera_id, c.stream == one)
                before = session.execute(
                    select(_gaps)
                    .where(*chain, c.start_at < start_at)
                    .order_by(c.start_at.desc(), c.id.desc())
                    .limit(1)
                ).first()
                if before is not None and (before.end_at is None or before.end_at > start_at):
                    found.append(before)
                found += session.execute(
                    select(_gaps).where(*chain, c.start_at >= start_at, c.start_at < end_at)
                ).all()
        found.sort(key=lambda row: (row.start_at, row.id))
        return [from_row(GapRecord, row) for row in found]

    # -- holds --------------------------------------------------------------------------

    def add_hold(
        self,
        case_number: str,
        camera_id: str,
        start_at: float,
        end_at: float,
        created_by: str,
        created_at: float | None = None,
    ) -> HoldRecord:
        if end_at <= start_at:
            raise ValueError("a hold must end after it starts")
        with self._transactions.begin() as session:
            row = HoldRow(
                case_number=case_number, camera_id=camera_id, start_at=start_at,
                end_at=end_at, created_by=created_by,
                created_at=time.time() if created_at is None else created_at,
            )  # fmt: skip
            session.add(row)
            session.flush()
            return from_row(HoldRecord, row)

    def release_holds(
        self, case_number: str, user: str, at: float | None = None
    ) -> list[HoldRecord]:
        """Release a case's active holds; the ones released."""
        query = select(HoldRow).where(
            HoldRow.case_number == case_number, HoldRow.released_at.is_(None)
        )
        return self._release(query, user, at)

    def release_hold(self, hold_id: int, user: str, at: float | None = None) -> HoldRecord | None:
        """Release one active hold; None if there is no such active hold."""
        query = select(HoldRow).where(HoldRow.id == hold_id, HoldRow.released_at.is_(None))
        released = self._release(query, user, at)
        return released[0] if released else None

    def _release(self, query: Any, user: str, at: float | None) -> list[HoldRecord]:
        with self._transactions.begin() as session:
            rows = session.scalars(query.order_by(HoldRow.id).with_for_update()).all()
            for row in rows:
                row.released_at = time.time() if at is None else at
                row.released_by = user
            return [from_row(HoldRecord, row) for row in rows]

    def holds(
        self, camera_id: str | None = None, active: bool = True, case_number: str | None = None
    ) -> list[HoldRecord]:
        """Holds by id: of one camera or case or all; only active ones unless ``active`` is
        False (then released ones too)."""
        query = select(HoldRow).order_by(HoldRow.id)
        if camera_id is not None:
            query = query.where(HoldRow.camera_id == camera_id)
        if case_number is not None:
            query = query.where(HoldRow.case_number == case_number)
        if active:
            query = query.where(HoldRow.released_at.is_(None))
        with self._transactions.begin() as session:
            return [from_row(HoldRecord, row) for row in session.scalars(query)]

    # -- chains (what verify reads) ---------------------------------------------------------

    def chain_anchors(self) -> tuple[list[ChainAnchor], set[tuple[str, str]]]:
        """Every chain's anchor, and every (camera, stream) that has closed segments or
        removal rows, anchored or not: read together, so a chain that closes its first
        segment meanwhile is in both or neither."""
        c = _segments.c
        with self._transactions.begin() as session:
            rows = session.scalars(
                select(ChainAnchorRow).order_by(ChainAnchorRow.camera_id, ChainAnchorRow.stream)
            )
            anchors = [from_row(ChainAnchor, row) for row in rows]
            found = session.execute(
                select(c.camera_id, c.stream).where(c.chain_seq.is_not(None)).distinct()
            )
            removed = session.execute(select(RemovalRow.camera_id, RemovalRow.stream).distinct())
            return anchors, {(camera, stream) for camera, stream in [*found, *removed]}

    def chain(
        self, camera_id: str, stream: str
    ) -> tuple[ChainAnchor, list[SegmentRecord], list[RemovalRecord]] | None:
        """One chain as one moment saw it: its anchor, closed segments and removal rows by
        chain position, read in one transaction (a segment closing or retention running
        meanwhile changes all three together). None: the chain has no anchor (any more).
        Tens of thousands of rows at most: a camera stream's retention."""
        c = _segments.c
        segments_query = select(*_SEGMENT_COLUMNS).where(
            c.camera_id == camera_id, c.stream == stream, c.chain_seq.is_not(None)
        )
        removals_query = (
            select(RemovalRow)
            .where(RemovalRow.camera_id == camera_id, RemovalRow.stream == stream)
            .order_by(RemovalRow.chain_seq)
        )
        with self._transactions.begin() as session:
            anchor_row = session.get(ChainAnchorRow, (camera_id, stream))
            if anchor_row is None:
                return None
            anchor = from_row(ChainAnchor, anchor_row)
            segments = [_segment(row) for row in session.execute(segments_query).all()]
            removals = [from_row(RemovalRecord, row) for row in session.scalars(removals_query)]
        return anchor, sorted(segments, key=lambda s: s.chain_seq or 0), removals

    # -- removal ------------------------------------------------------------------------

    def remove_segments(
        self, segments: Iterable[SegmentRecord], reason: str, at: float | None = None
    ) -> list[SegmentRecord]:
        """Delete closed segments' rows and keep each chain checkable, in one transaction;
        the segments removed, whose files the caller unlinks next (and only those).

        A segment under an active hold is kept even if asked for: a hold made after the
        retention plan was read wins. One already gone is skipped. Positions at the chain's
        head (and holes the head now reaches) fold into its anchor; a segment removed behind
        one still kept leaves a removal row with its link's fields. The removed footage shows as
        gaps (``removed_at`` set, reason "removed (<reason>)"): one row per chain for
        everything before its remaining footage, grown by each pass and taking in the older
        gaps it covers, and one per run of segments removed behind a kept one."""
        at = time.time() if at is None else at
        by_chain: dict[tuple[str, str], list[int]] = defaultdict(list)
        for segment in segments:
            by_chain[(segment.camera_id, segment.stream)].append(segment.id)
        removed: list[SegmentRecord] = []
        with self._transactions.begin() as session:
            active = select(HoldRow).where(HoldRow.released_at.is_(None))
            holds = [from_row(HoldRecord, row) for row in session.scalars(active)]
            for (camera_id, stream), ids in sorted(by_chain.items()):
                rows: list[SegmentRecord] = []
                for chunk in _chunks(ids):
                    query = select(*_SEGMENT_COLUMNS).where(_segments.c.id.in_(chunk))
                    rows += [_segment(row) for row in session.execute(query).all()]
                held = [h for h in holds if h.camera_id == camera_id]
                rows = [
                    s for s in rows if not any(h.covers(s.start_at, s.end_at or 0.0) for h in held)
                ]
                if rows:
                    self._remove_from_chain(session, camera_id, stream, rows, _reason(reason), at)
                removed += rows
        return removed

    def _remove_from_chain(
        self,
        session: Session,
        camera_id: str,
        stream: str,
        rows: list[SegmentRecord],
        reason: str,
        at: float,
    ) -> None:
        removed: dict[int, SegmentRecord] = {}
        for row in rows:
            if row.chain_seq is None or row.end_at is None:
                raise ValueError(f"recording segment {row.id} is open: close it first")
            removed[row.chain_seq] = row
        newest = max(row.end_at or 0.0 for row in rows)
        anchor = self._anchor(session, camera_id, stream)
        holes = {
            r.chain_seq: r
            for r in session.scalars(
                select(RemovalRow).where(
                    RemovalRow.camera_id == camera_id, RemovalRow.stream == stream
                )
            )
        }
        # Fold the head: removed segments and earlier holes, as long as they follow on.
        folded_start: float | None = None
        folded_end: float | None = None
        seq = anchor.head_seq
        while seq <= anchor.tail_seq and (seq in removed or seq in holes):
            member = removed.pop(seq, None)
            if member is not None:
                link, start_at, end_at = member.link, member.start_at, member.end_at
            else:
                hole = holes.pop(seq)
                link, start_at, end_at = hole.link, hole.start_at, hole.end_at
                session.delete(hole)
            assert link is not None and end_at is not None  # closed: checked above
            anchor.head_link = link
            folded_start = start_at if folded_start is None else min(folded_start, start_at)
            folded_end = end_at if folded_end is None else max(folded_end, end_at)
            seq += 1
        anchor.head_seq = seq
        for row in removed.values():
            hole_row = RemovalRow(
                camera_id=camera_id, stream=stream, chain_seq=row.chain_seq,
                segment_id=row.id, path=row.path, start_at=row.start_at, end_at=row.end_at,
                bytes=row.bytes, sha256=row.sha256, prev_link=row.prev_link, link=row.link,
                removed_at=at, reason=reason,
            )  # fmt: skip
            session.add(hole_row)
        for chunk in _chunks([row.id for row in rows]):
            session.execute(delete(SegmentRow).where(SegmentRow.id.in_(chunk)))
        removed_bytes = sum(row.bytes for row in rows)
        anchor.stored_segments -= len(rows)
        anchor.stored_bytes -= removed_bytes
        anchor.removed_segments += len(rows)
        anchor.removed_bytes += removed_bytes
        anchor.removed_through = max(anchor.removed_through or newest, newest)
        chain = (camera_id, stream)
        if folded_start is not None and folded_end is not None:
            window = _Removed(folded_start, folded_end, reason, at)
            self._record_removed(session, chain, window, absorb_through=folded_end)
        for window in _runs(removed.values(), reason, at):
            self._record_removed(session, chain, window)

    @staticmethod
    def _record_removed(
        session: Session,
        chain: tuple[str, str],
        window: _Removed,
        absorb_through: float | None = None,
    ) -> None:
        """Show removed footage as a gap, in as few rows as will do: the removed windows it
        touches merge into one row, and at the head (``absorb_through``) so does every gap
        that ended there or before, so the head of a chain under continuous retention is
        one row that grows rather than one a pass."""
        c = _gaps.c
        covered: ColumnElement[bool] = and_(
            c.removed_at.is_not(None),
            c.start_at <= window.end_at + SPAN_TOUCH_S,
            c.end_at >= window.start_at - SPAN_TOUCH_S,
        )
        if absorb_through is not None:
            covered = or_(covered, c.end_at <= absorb_through)
        rows = session.scalars(
            select(GapRow)
            .where(GapRow.camera_id == chain[0], GapRow.stream == chain[1], covered)
            .order_by(GapRow.id)
        ).all()
        kept = next((row for row in rows if row.removed_at is not None), None)
        if kept is None:
            kept = GapRow(camera_id=chain[0], stream=chain[1], start_at=window.start_at)
            session.add(kept)
        causes: list[str] = []
        start_at, end_at = window.start_at, window.end_at
        for row in rows:
            start_at = min(start_at, row.start_at)
            end_at = max(end_at, row.end_at if row.end_at is not None else end_at)
            if row.removed_at is not None:
                causes += removal_causes(row.reason)
            if row is not kept:
                session.delete(row)
        kept.start_at, kept.end_at = start_at, end_at
        kept.reason = _reason(removal_reason([*causes, window.reason]))
        kept.removed_at = max(window.at, kept.removed_at or window.at)
        session.flush()  # the next window of this pass sees this row


@dataclass(frozen=True)
class _Removed:
    """A window of removed footage, as one pass of :meth:`RecordingStore.remove_segments`
    removed it."""

    start_at: float
    end_at: float
    reason: str
    at: float


def _runs(segments: Iterable[SegmentRecord], reason: str, at: float) -> list[_Removed]:
    """Removed segments as windows of footage: segments whose ends touch are one window."""
    runs: list[_Removed] = []
    for segment in sorted(segments, key=lambda s: s.start_at):
        end_at = segment.end_at or segment.start_at
        if runs and segment.start_at - runs[-1].end_at <= SPAN_TOUCH_S:
            last = runs[-1]
            runs[-1] = _Removed(last.start_at, max(last.end_at, end_at), reason, at)
        else:
            runs.append(_Removed(segment.start_at, end_at, reason, at))
    return runs


_REMOVED = "removed ({})"
_CAUSES_SEPARATOR = "; "


def removal_reason(causes: Iterable[str]) -> str:
    """A removed window's gap reason: "removed (<why>)", each distinct cause once, in the
    order they first removed footage from the window (retention's reasons are short, e.g.
    "retention period over", "disk budget")."""
    return _REMOVED.format(_CAUSES_SEPARATOR.join(dict.fromkeys(causes)))


def removal_causes(reason: str) -> list[str]:
    """The causes a :func:`removal_reason` names."""
    prefix, suffix = _REMOVED.split("{}")
    if not (reason.startswith(prefix) and reason.endswith(suffix)):
        return [reason]
    return reason[len(prefix) : len(reason) - len(suffix)].split(_CAUSES_SEPARATOR)


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield list(ids[start : start + IN_CHUNK])
