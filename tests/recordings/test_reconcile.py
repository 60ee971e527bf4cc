"""At start the node accounts for every file laid out like a segment, and destroys none it
cannot account for: one no row knows is set aside, anything else is left where it is."""

from __future__ import annotations

import os
import time
from pathlib import Path

from surveillance.recordings.layout import SEGMENT_ID_PLACEHOLDER, segment_path
from surveillance.recordings.store import RecordingStore
from surveillance.recordings.verify import verify_recordings
from surveillance.services.recording_reconcile import SHARED_STALE_S, UNINDEXED_DIR, reconcile
from tests.recordings.conftest import T0, record


def test_files_no_row_knows_are_set_aside_never_deleted(
    store: RecordingStore, tmp_path: Path
) -> None:
    root = tmp_path / "recordings"
    kept, removed = record(store, root, "gate-1", T0), record(store, root, "gate-1", T0 + 60)
    # Retention removed the row, and the node died before it removed the file.
    store.remove_segments([removed], "retention period over")
    # Somebody else's video in a folder of the root, and a file under a camera that is
    # not laid out like a segment: neither is the node's.
    foreign = root / "gate-1" / "exports" / "my-holiday.mp4"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not footage of this node")
    stray = root / "gate-1" / "main" / "note.mp4"
    stray.write_bytes(b"a file a person put there")

    report = reconcile(store, root)

    assert report.set_aside == 1
    assert not (root / removed.path).exists()
    aside = root / UNINDEXED_DIR / removed.path
    assert aside.read_bytes() == f"gate-1 main {T0 + 60}".encode() * 50
    assert foreign.read_bytes() == b"not footage of this node"
    assert stray.read_bytes() == b"a file a person put there"
    assert (root / kept.path).is_file()
    # A second start finds nothing more to set aside (the set-aside folder is no camera).
    assert reconcile(store, root).set_aside == 0
    # verify names the files that are not the node's (by path: they are no camera's), and
    # the one set aside.
    checked = verify_recordings(store, root)
    assert checked.set_aside == [f"{UNINDEXED_DIR}/{removed.path}"]
    assert sorted(checked.problems) == [
        "file gate-1/exports/my-holiday.mp4 is not in the index",
        "gate-1 main: file gate-1/main/note.mp4 is not in the index",
    ], checked.problems


def test_a_starting_cluster_node_leaves_what_a_live_node_writes(
    store: RecordingStore, tmp_path: Path
) -> None:
    """Cluster mode: root and index are shared. Another node's open segment (file written
    to just now, or its row just opened without a file yet), its new file whose row this
    node has not read, and its open gap stay as they are; stale ones are reconciled."""
    root = tmp_path / "recordings"
    now = time.time()
    live_id = store.open_segment(
        "gate-1", "main", segment_path("gate-1", "main", now - 30, SEGMENT_ID_PLACEHOLDER),
        now - 30, "h264", 1280, 720,
    )  # fmt: skip
    [live] = [s for s in store.open_segments() if s.id == live_id]
    (root / live.path).parent.mkdir(parents=True)
    (root / live.path).write_bytes(b"being written")
    fileless_id = store.open_segment(
        "gate-2", "main", segment_path("gate-2", "main", now - 5, SEGMENT_ID_PLACEHOLDER),
        now - 5, "h264", 1280, 720,
    )  # fmt: skip
    stale_id = store.open_segment(
        "gate-3", "main", segment_path("gate-3", "main", T0, SEGMENT_ID_PLACEHOLDER),
        T0, "h264", 1280, 720,
    )  # fmt: skip
    unread = root / segment_path("gate-1", "main", now - 2, 999)
    unread.write_bytes(b"a new segment of a live node")
    store.add_gap("gate-1", "main", now - 60, "camera not delivering")

    report = reconcile(store, root, shared=True)

    open_ids = {s.id for s in store.open_segments()}
    assert open_ids == {live_id, fileless_id}  # the stale one (no file, old) was discarded
    assert stale_id not in open_ids and report.discarded == 1
    assert (root / live.path).read_bytes() == b"being written"
    assert unread.is_file() and report.set_aside == 0
    assert report.gaps_ended == 0
    # Once stale (the writer is gone), the same files are reconciled as on one node.
    old = now - SHARED_STALE_S - 60
    for path in (root / live.path, unread):
        os.utime(path, (old, old))
    again = reconcile(store, root, shared=True)
    assert live_id not in {s.id for s in store.open_segments()}
    assert again.set_aside == 1 and not unread.exists()
    # A single node ends every open gap, as before.
    assert reconcile(store, root).gaps_ended == 1


def test_a_cluster_node_reconciles_only_the_cameras_it_holds(
    store: RecordingStore, tmp_path: Path
) -> None:
    """Two nodes' footage in one shared root and index: the starting node holds gate-1,
    the other node gate-2. Stale files of gate-2 that no row knows (its owner's retention
    removing them, or rows not read yet) and gate-2's stale open segment stay where they
    are; gate-1's are set aside and closed as on one node."""
    root = tmp_path / "recordings"
    old = time.time() - SHARED_STALE_S - 60
    mine = record(store, root, "gate-1", T0)
    theirs = record(store, root, "gate-2", T0)
    store.remove_segments([mine, theirs], "retention period over")  # files left behind
    their_open_id = store.open_segment(
        "gate-2", "main", segment_path("gate-2", "main", T0 + 120, SEGMENT_ID_PLACEHOLDER),
        T0 + 120, "h264", 1280, 720,
    )  # fmt: skip
    for path in (root / mine.path, root / theirs.path):
        os.utime(path, (old, old))

    report = reconcile(store, root, shared=True, holds=lambda camera: camera == "gate-1")

    assert report.set_aside == 1
    assert (root / UNINDEXED_DIR / mine.path).is_file() and not (root / mine.path).exists()
    assert (root / theirs.path).is_file()  # gate-2's files are its owner's to judge
    assert not (root / UNINDEXED_DIR / "gate-2").exists()
    assert their_open_id in {s.id for s in store.open_segments()}
    assert report.recovered == report.discarded == 0
