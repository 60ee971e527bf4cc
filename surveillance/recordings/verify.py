"""Check every camera stream's chain of recorded segments against the files on disk.

For each chain, from its anchor's head to its tail: every position is present, as a
segment row or as a removal row retention left behind a held segment; each one's link is
what its fields give and its ``prev_link`` the link before it; each segment's file is in
the recordings root, of the recorded size and SHA-256; the anchor's totals match the rows.
So an altered file, an altered row, a deleted row (oldest, newest or in the middle) and a
deleted file each show, while retention's removals (at the head, or holes behind a hold,
folded into the head later) do not.

What a chain cannot show: someone with write access to the database who recomputes every
link after a change, and the anchor with them, or who deletes a whole chain and its anchor.
The audit log's ``recordings.delete`` entries and any export taken earlier are the check
against that.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from surveillance.recordings.chain import segment_link
from surveillance.recordings.layout import UNINDEXED_DIR, laid_out_like_a_segment
from surveillance.recordings.records import ChainAnchor, RemovalRecord, SegmentRecord
from surveillance.recordings.store import RecordingStore

HASH_CHUNK = 1 << 20
STREAM_FOLDERS = ("main", "sub")  # a camera's folders (recordings/layout.py)


@dataclass
class VerifyReport:
    problems: list[str] = field(default_factory=list)
    chains: int = 0
    segments: int = 0
    bytes: int = 0
    removed_segments: int = 0  # by retention, at the heads and in holes
    holes: int = 0  # removal rows: segments removed behind a held one
    open_segments: int = 0  # being written (or left by a crash): not in a chain yet
    # Files the node set aside at a start as in no row (under .unindexed/), by path.
    set_aside: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_recordings(store: RecordingStore, root: Path) -> VerifyReport:
    report = VerifyReport()
    anchors, chains = store.chain_anchors()
    anchored = {(a.camera_id, a.stream) for a in anchors}
    for camera_id, stream in sorted(chains - anchored):
        report.problems.append(
            f"{camera_id} {stream}: segments without a chain anchor (anchor row deleted)"
        )
    for listed in anchors:
        # Read again, whole, in one transaction: a node that records while it is checked
        # closes segments and removes old ones between one chain's reads and the next.
        chain = store.chain(listed.camera_id, listed.stream)
        if chain is not None:
            _verify_chain(store, root, *chain, report)
    report.open_segments = len(store.open_segments())
    strays, report.set_aside = _stray_files(store, root)
    report.problems.extend(strays)
    return report


def _stray_files(store: RecordingStore, root: Path) -> tuple[list[str], list[str]]:
    """Files under the root that no segment row, open or closed, names: a segment renamed
    or copied by hand, or one retention took out of the index and failed to unlink. Named,
    so that someone looking for the footage learns it is still there. A segment being
    written has its row before its file is made and the rows are read after the walk, so
    it is known; a file retention unlinks meanwhile is gone by the second look."""
    if not root.is_dir():
        return [], []
    found: dict[str, list[str]] = {}  # camera directory -> relative paths of its files
    set_aside: list[str] = []
    for directory, _, names in os.walk(root):
        for name in names:
            relative = (Path(directory) / name).relative_to(root).as_posix()
            camera_dir = relative.split("/", 1)[0] if "/" in relative else ""  # "": the root
            if camera_dir == UNINDEXED_DIR:
                set_aside.append(relative)  # named, not a problem: the node logged each
                continue
            found.setdefault(camera_dir, []).append(relative)
    problems = []
    for camera_dir, files in sorted(found.items()):
        known = store.segment_paths(camera_dir) if camera_dir else set()
        for relative in sorted(set(files) - known):
            path = root / relative
            if not path.is_symlink() and not path.exists():
                continue  # removed while we looked
            parts = relative.split("/")
            # The reconcile at start sets such a file aside (services/recording_reconcile.py).
            # Named with its camera stream when it lies in one's folder; a file elsewhere
            # (another program's folder under the root) by its path alone.
            segment_like = laid_out_like_a_segment(relative)
            in_stream = len(parts) > 2 and parts[1] in STREAM_FOLDERS
            chain = f"{parts[0]} {parts[1]}: " if in_stream else ""
            fate = (
                f" (the node sets it aside under {UNINDEXED_DIR}/ at its next start)"
                if segment_like
                else ""
            )
            problems.append(f"{chain}file {relative} is not in the index{fate}")
    return problems, sorted(set_aside)


def _verify_chain(
    store: RecordingStore,
    root: Path,
    anchor: ChainAnchor,
    segments: list[SegmentRecord],
    removals: list[RemovalRecord],
    report: VerifyReport,
) -> None:
    chain = f"{anchor.camera_id} {anchor.stream}"
    problems = report.problems
    report.chains += 1
    report.segments += len(segments)
    report.bytes += sum(s.bytes for s in segments)
    report.removed_segments += anchor.removed_segments
    report.holes += len(removals)

    members: dict[int, SegmentRecord | RemovalRecord] = {}
    rows: list[SegmentRecord | RemovalRecord] = [*segments, *removals]
    for member in rows:
        seq = member.chain_seq
        assert seq is not None  # chain_segments returns closed segments only
        if seq in members:
            problems.append(f"{chain}: position {seq} is held by two rows ({_name(member)})")
        members[seq] = member

    expected_link: str | None = anchor.head_link
    expected_seq = anchor.head_seq
    for seq in sorted(members):
        member = members[seq]
        if seq < anchor.head_seq:
            problems.append(
                f"{chain}: {_name(member)} is before the chain's head: the anchor says "
                "retention removed it"
            )
            continue
        if seq > expected_seq:
            problems.append(
                f"{chain}: {seq - expected_seq} segment row(s) missing before {_name(member)} "
                f"(positions {expected_seq}..{seq - 1}: deleted without a retention record)"
            )
            expected_link = None
        if expected_link is not None and member.prev_link != expected_link:
            problems.append(
                f"{chain}: {_name(member)} does not follow the link before it "
                "(that row or this one altered or replaced)"
            )
        if _link_of(member) != member.link:
            problems.append(
                f"{chain}: {_name(member)}: row altered (its fields no longer give its link)"
            )
        if isinstance(member, SegmentRecord):
            problem = _check_file(root, member)
            if problem and store.segment(member.id) is None:
                problem = None  # retention removed it (row, then file) after the chain was read
            if problem:
                problems.append(f"{chain}: {_name(member)}: {problem}")
        expected_link = member.link
        expected_seq = seq + 1

    if expected_seq <= anchor.tail_seq:
        problems.append(
            f"{chain}: the newest {anchor.tail_seq - expected_seq + 1} segment row(s) missing "
            f"(positions {expected_seq}..{anchor.tail_seq}: deleted without a retention record)"
        )
    elif expected_seq > anchor.tail_seq + 1:
        problems.append(
            f"{chain}: rows past the chain's recorded tail (position {anchor.tail_seq})"
        )
    elif expected_link is not None and expected_link != anchor.tail_link:
        problems.append(f"{chain}: the newest segment is not the one the chain's anchor recorded")
    if (len(segments), sum(s.bytes for s in segments)) != (
        anchor.stored_segments,
        anchor.stored_bytes,
    ):
        problems.append(
            f"{chain}: {len(segments)} segments of {sum(s.bytes for s in segments)} bytes, the "
            f"anchor counts {anchor.stored_segments} of {anchor.stored_bytes}"
        )


def _link_of(member: SegmentRecord | RemovalRecord) -> str:
    segment_id = member.id if isinstance(member, SegmentRecord) else member.segment_id
    assert member.chain_seq is not None and member.end_at is not None
    return segment_link(
        member.prev_link or "", segment_id, member.camera_id, member.stream, member.chain_seq,
        member.path, member.start_at, member.end_at, member.bytes, member.sha256 or "",
    )  # fmt: skip


def _name(member: SegmentRecord | RemovalRecord) -> str:
    start = datetime.fromtimestamp(member.start_at, UTC).isoformat().replace("+00:00", "Z")
    if isinstance(member, SegmentRecord):
        return f"segment {member.id} ({member.path}, from {start})"
    return f"removal record of segment {member.segment_id} ({member.path}, from {start})"


def _check_file(root: Path, segment: SegmentRecord) -> str | None:
    """What is wrong with the segment's file, or None. Never follows a link: a file swapped
    for a symbolic link to other bytes is a problem, not a match."""
    path = root / segment.path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return f"file missing ({path})"
    except OSError as exc:
        return f"file unreadable ({path}: {exc.strerror})"
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return f"not a regular file ({path})"
        if info.st_size != segment.bytes:
            return f"file altered: {info.st_size} bytes, the index says {segment.bytes}"
        digest = hashlib.sha256()
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != segment.sha256:
        return "file altered: its SHA-256 differs from the index"
    return None
