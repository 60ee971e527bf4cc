"""The shelf of kept alarm clips, on real files: private modes, the cap (the oldest clips
give way), a failed write that leaves nothing, and a restart that drops what an interrupted
write left and knows what is kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from surveillance.events.clips import ClipShelf, KeptClipFacts

FACTS = KeptClipFacts(
    camera_id="gate", platform_id="town", captured_at=1_700_000_000.25, stream_time_s=12.5,
    codec="h264", width=640, height=360, frames=75, duration_s=3.0, note=None,
)  # fmt: skip


def test_kept_clips_are_private_bounded_and_survive_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "event-clips"
    shelf = ClipShelf(root, max_bytes=250)
    shelf.prepare()
    shelf.put(7, b"a" * 100, FACTS)
    shelf.put(9, b"b" * 100, FACTS)
    assert (root.stat().st_mode & 0o777, (root / "7.mp4").stat().st_mode & 0o777) == (0o700, 0o600)
    assert shelf.read(7) == (b"a" * 100, FACTS) and shelf.has(9) and not shelf.has(8)

    shelf.put(11, b"c" * 100, FACTS)  # 300 bytes would pass the cap: the oldest gives way
    assert shelf.ids() == [9, 11] and shelf.read(7) is None
    assert sorted(os.listdir(root)) == ["11.json", "11.mp4", "9.json", "9.mp4"]
    with pytest.raises(OSError, match="larger than the cap"):
        shelf.put(12, b"d" * 251, FACTS)
    assert shelf.ids() == [9, 11]

    # What a write cut short by a crash leaves: a temporary file, facts without a clip.
    (root / ".tmp-0123456789abcdef").write_bytes(b"half")
    (root / "13.json").write_bytes(b"{}")
    again = ClipShelf(root, max_bytes=250)
    again.prepare()
    assert again.ids() == [9, 11]
    assert sorted(os.listdir(root)) == ["11.json", "11.mp4", "9.json", "9.mp4"]
    assert again.keep_only([11, 99]) == [9] and again.ids() == [11]
    assert sorted(os.listdir(root)) == ["11.json", "11.mp4"]


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "event-clips"
    shelf = ClipShelf(root, max_bytes=1000)
    shelf.prepare()
    (root / "5.mp4").mkdir()  # in the way of the clip's name: the last step fails
    with pytest.raises(IsADirectoryError):
        shelf.put(5, b"x" * 10, FACTS)
    assert os.listdir(root) == ["5.mp4"] and not shelf.has(5) and shelf.read(5) is None
