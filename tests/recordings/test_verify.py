"""The chain check: tampering with files or rows shows, retention's removals do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from surveillance.cli import main
from surveillance.recordings.records import ChainAnchor, RemovalRecord, SegmentRecord
from surveillance.recordings.store import RecordingStore
from surveillance.recordings.verify import verify_recordings
from tests.recordings.conftest import T0, record


def _chain_rows(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _unlink(root: Path, segments: list[SegmentRecord]) -> None:
    for segment in segments:
        (root / segment.path).unlink()


def test_chains_pass_through_retention_at_the_head_holes_and_compaction(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    store = RecordingStore(sqlite_engine)
    root = tmp_path / "recordings"
    main_ = [record(store, root, "gate-1", T0 + 60 * i) for i in range(8)]
    sub = [record(store, root, "gate-1", T0 + 60 * i, stream="sub") for i in range(2)]
    other = [record(store, root, "gate-2", T0 + 60 * i) for i in range(2)]
    gap = store.add_gap("gate-1", "main", T0 - 100, "camera offline")
    store.end_gap(gap, T0)
    report = verify_recordings(store, root)
    assert report.problems == []
    assert (report.chains, report.segments, report.removed_segments) == (3, 12, 0)
    total = store.total_bytes()
    assert total == sum(s.bytes for s in [*main_, *sub, *other]) == report.bytes

    # Retention at the head: the anchor moves on, no row is added anywhere.
    store.remove_segments(main_[:2], "expired")
    _unlink(root, main_[:2])
    assert verify_recordings(store, root).problems == []
    assert _chain_rows(sqlite_engine, "recording_removals") == 0
    assert store.total_bytes() == total - main_[0].bytes - main_[1].bytes
    # The gap before the footage that is left went into the removed window's gap.
    [head] = store.gaps("gate-1", "main", T0 - 200, T0 + 1000)
    assert (head.start_at, head.end_at) == (T0 - 100, main_[1].end_at)
    assert head.reason == "removed (expired)" and head.removed_at is not None

    # main_[3] is held: asked for with it, main_[4] and main_[5] go, holes with a row each.
    hold = store.add_hold("2026-0001", "gate-1", main_[3].start_at + 1, main_[3].start_at + 2, "al")
    removed = store.remove_segments(main_[3:6], "expired")
    assert [s.id for s in removed] == [main_[4].id, main_[5].id]
    _unlink(root, removed)
    report = verify_recordings(store, root)
    assert report.problems == [] and report.holes == 2 and report.removed_segments == 4
    # Then main_[2] at the head; the head stops at the held main_[3]. Asking again for one
    # already removed changes nothing.
    assert store.remove_segments([main_[2], main_[4]], "disk space") == [main_[2]]
    _unlink(root, [main_[2]])
    assert verify_recordings(store, root).problems == []
    assert _chain_rows(sqlite_engine, "recording_removals") == 2
    # The hold released, main_[3] goes: the head reaches the holes and folds them in.
    assert store.release_hold(hold.id, "al") is not None
    store.remove_segments([main_[3]], "expired")
    _unlink(root, [main_[3]])
    assert verify_recordings(store, root).problems == []
    assert _chain_rows(sqlite_engine, "recording_removals") == 0
    anchors, _ = store.chain_anchors()
    [anchor] = [a for a in anchors if (a.camera_id, a.stream) == ("gate-1", "main")]
    assert (anchor.head_seq, anchor.head_link) == (7, main_[5].link)
    assert (anchor.stored_segments, anchor.removed_segments) == (2, 6)

    # Everything removed, then recording goes on: the chain continues from its tail.
    store.remove_segments(main_[6:], "expired")
    _unlink(root, main_[6:])
    assert verify_recordings(store, root).problems == []
    later = record(store, root, "gate-1", T0 + 3600)
    assert later.prev_link == main_[7].link and later.chain_seq == 9
    report = verify_recordings(store, root)
    assert report.problems == [] and report.segments == 5 and report.removed_segments == 8

    # An open segment is not checked yet, and said so.
    store.open_segment("gate-1", "main", "gate-1/main/open.mp4", T0 + 4000, "h264", 1, 1)
    assert verify_recordings(store, root).open_segments == 1


Tamper = Callable[[Engine, Path, list[SegmentRecord]], None]


def _flip_a_byte(engine: Engine, root: Path, chain: list[SegmentRecord]) -> None:
    path = root / chain[3].path
    data = bytearray(path.read_bytes())
    data[10] ^= 1
    path.write_bytes(bytes(data))


def _truncate(engine: Engine, root: Path, chain: list[SegmentRecord]) -> None:
    (root / chain[3].path).write_bytes(b"short")


def _delete_file(engine: Engine, root: Path, chain: list[SegmentRecord]) -> None:
    (root / chain[3].path).unlink()


def _replace_file_by_a_link(engine: Engine, root: Path, chain: list[SegmentRecord]) -> None:
    path = root / chain[3].path
    copy = path.with_suffix(".copy")
    path.rename(copy)
    path.symlink_to(copy)


def _run(statement: str) -> Tamper:
    def tamper(engine: Engine, root: Path, chain: list[SegmentRecord]) -> None:
        ids = [s.id for s in chain]
        with engine.begin() as connection:
            connection.execute(text(statement.format(*ids)))

    return tamper


def _remove_segment_in_the_middle(engine: Engine, root: Path, chain: list[SegmentRecord]) -> None:
    _run("DELETE FROM recording_segments WHERE id = {3}")(engine, root, chain)
    (root / chain[3].path).unlink()


# The chain as tampered with: segments 0..7 recorded, 0 removed by retention at the head,
# 6 removed behind 5 (held then): a removal row. Indexes below are into those eight.
@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_flip_a_byte, "segment {3} (gate-1/main/"),
        (_flip_a_byte, "file altered: its SHA-256 differs"),
        (_truncate, "segment {3}"),
        (_truncate, "file altered: 5 bytes, the index says"),
        (_delete_file, "file missing"),
        (_replace_file_by_a_link, "file unreadable"),
        (_run("UPDATE recording_segments SET start_at = start_at + 30 WHERE id = {3}"),
         "segment {3} "),
        (_run("UPDATE recording_segments SET bytes = 1 WHERE id = {3}"), "row altered"),
        (_run("UPDATE recording_segments SET link = '" + "0" * 64 + "' WHERE id = {3}"),
         "segment {4} (gate-1/main/"),
        (_run("UPDATE recording_removals SET end_at = end_at - 5"),
         "removal record of segment {6} (gate-1/main/"),
        (_run("DELETE FROM recording_segments WHERE id = {3}"),
         "1 segment row(s) missing before segment {4}"),
        (_run("DELETE FROM recording_segments WHERE id = {1}"),
         "1 segment row(s) missing before segment {2}"),
        (_run("DELETE FROM recording_segments WHERE id = {5}"),
         "1 segment row(s) missing before removal record of segment {6}"),
        (_run("DELETE FROM recording_removals"), "1 segment row(s) missing before segment {7}"),
        (_run("DELETE FROM recording_segments WHERE id = {7}"),
         "the newest 1 segment row(s) missing"),
        (_remove_segment_in_the_middle, "1 segment row(s) missing before segment {4}"),
        (_run("DELETE FROM recording_chain_anchors WHERE camera_id = 'gate-1'"),
         "segments without a chain anchor"),
        (_run("UPDATE recording_chain_anchors SET head_seq = 1 WHERE camera_id = 'gate-1'"),
         "1 segment row(s) missing before segment {1}"),
    ],
)  # fmt: skip
def test_tampering_shows_and_names_the_segment(
    sqlite_engine: Engine, tmp_path: Path, tamper: Tamper, expected: str
) -> None:
    store = RecordingStore(sqlite_engine)
    root = tmp_path / "recordings"
    chain = [record(store, root, "gate-1", T0 + 60 * i) for i in range(8)]
    record(store, root, "gate-2", T0)  # an untouched chain stays quiet
    store.remove_segments([chain[0], chain[6]], "expired")
    _unlink(root, [chain[0], chain[6]])
    assert verify_recordings(store, root).problems == []
    tamper(sqlite_engine, root, chain)
    problems = verify_recordings(store, root).problems
    wanted = expected.format(*[s.id for s in chain])
    assert any(wanted in p for p in problems), problems
    assert all(p.startswith("gate-1 main: ") for p in problems), problems


def test_verify_command_exit_status_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from surveillance import db

    config = tmp_path / "node.yaml"
    config.write_text("server:\n  data_dir: data\nrecording:\n  dir: footage\n")
    arguments = ["verify", "--recordings", "--config", str(config)]
    assert main(arguments) == 2  # no database yet
    assert "no database" in capsys.readouterr().err
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'data' / 'cases.db'}")
    db.upgrade(engine)
    store = RecordingStore(engine)
    chain = [record(store, tmp_path / "footage", "gate-1", T0 + 60 * i) for i in range(4)]
    engine.dispose()

    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "OK: 1 camera streams, 4 segments" in out and str(tmp_path / "footage") in out
    _flip_a_byte(engine, tmp_path / "footage", chain)
    assert main(arguments) == 1
    out = capsys.readouterr().out
    assert f"FAILED: gate-1 main: segment {chain[3].id} ({chain[3].path}, from " in out
    assert "VERIFICATION FAILED: 1 problem(s)" in out


def test_a_recording_node_is_checked_as_one_moment_saw_each_chain(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """verify runs against a node that records: a camera's first segment still open has no
    anchor yet and is no problem; a segment retention removes (row, then file) after its
    chain was read is no problem either."""
    store = RecordingStore(sqlite_engine)
    root = tmp_path / "recordings"
    kept = [record(store, root, "gate-1", T0 + 60 * i) for i in range(3)]
    store.open_segment("gate-9", "main", "gate-9/main/new.mp4", T0, "h264", 640, 360)
    assert verify_recordings(store, root).problems == []

    read_chain = store.chain

    def retention_runs_meanwhile(
        camera_id: str, stream: str
    ) -> tuple[ChainAnchor, list[SegmentRecord], list[RemovalRecord]] | None:
        chain = read_chain(camera_id, stream)
        if camera_id == "gate-1":
            store.remove_segments(kept[:1], "expired")
            _unlink(root, kept[:1])
        return chain

    store.chain = retention_runs_meanwhile  # type: ignore[method-assign]
    assert verify_recordings(store, root).problems == []
    # A file that goes while its row stays is still found.
    store.chain = read_chain  # type: ignore[method-assign]
    (root / kept[1].path).unlink()
    [problem] = verify_recordings(store, root).problems
    assert "file missing" in problem and kept[1].path in problem


def test_files_no_row_knows_are_named_and_a_segment_being_written_is_not_one(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    store = RecordingStore(sqlite_engine)
    root = tmp_path / "recordings"
    chain = [record(store, root, "gate-1", T0 + 60 * i) for i in range(3)]
    # A segment being written: its row is open, its file grows. Known, not stray.
    writing = store.open_segment(
        "gate-1", "main", "gate-1/main/writing.mp4", T0 + 200, "h264", 1, 1
    )
    (root / "gate-1/main/writing.mp4").write_bytes(b"fragments so far")
    assert writing and verify_recordings(store, root).problems == []

    # A segment renamed by hand: missing under its name, and found under the other one.
    old = root / chain[1].path
    renamed = old.with_name(old.stem + "-renamed.mp4")
    old.rename(renamed)
    (root / "notes.txt").write_text("someone's notes")  # beside the cameras, not in one
    problems = verify_recordings(store, root).problems
    relative = renamed.relative_to(root).as_posix()
    assert any("file missing" in p and chain[1].path in p for p in problems), problems
    # Not laid out like a segment any more: the node leaves it where it is.
    assert f"gate-1 main: file {relative} is not in the index" in problems, problems
    assert "file notes.txt is not in the index" in problems, problems
    assert len(problems) == 3, problems
