"""At start the node accounts for every file laid out like a segment, and destroys none it
cannot account for: one no row knows is set aside, anything else is left where it is."""

from __future__ import annotations

from pathlib import Path

from surveillance.recordings.store import RecordingStore
from surveillance.recordings.verify import verify_recordings
from surveillance.services.recording_reconcile import UNINDEXED_DIR, reconcile
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
