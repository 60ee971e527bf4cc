"""The budget of recorded-footage exports: places per user and node, scratch files."""

from __future__ import annotations

from pathlib import Path

import pytest

from surveillance.services.export_budget import ExportBudget, TooManyExports


def test_places_per_user_and_node_and_a_scratch_dir_emptied_at_start(tmp_path: Path) -> None:
    scratch = tmp_path / "data" / "tmp"
    scratch.mkdir(parents=True, mode=0o755)
    (scratch / "export-left.mp4").write_bytes(b"x" * 10)  # a node stopped mid-export
    (scratch / "leftover").mkdir()
    budget = ExportBudget(scratch, per_user=2, total=3)
    budget.prepare()
    assert scratch.stat().st_mode & 0o777 == 0o700 and not list(scratch.iterdir())

    first, second = budget.claim("ann"), budget.claim("ann")
    assert first.path.parent == scratch and first.path != second.path
    with pytest.raises(TooManyExports, match="you may run 2 exports") as refused:
        budget.claim("ann")
    assert refused.value.status_code == 429 and refused.value.retry_after_s
    third = budget.claim("bob")
    with pytest.raises(TooManyExports, match="this node runs 3 exports"):
        budget.claim("cid")
    assert budget.running() == 3 and budget.running("ann") == 2
    first.release()
    first.release()  # twice (the stream's end and an error path) frees one place
    assert budget.running() == 2 and not first.path.exists() and second.path.exists()
    with budget.claim("ann") as again:
        assert again.path.exists()
    assert not again.path.exists() and budget.running("ann") == 1
    second.release()
    third.release()
    assert budget.running() == 0 and not list(scratch.iterdir())
    # Case clips: a scratch file, removed afterwards, not counted.
    with budget.scratch_file() as path:
        assert path.parent == scratch and budget.running() == 0
    assert not path.exists()
