"""Reads of an item are logged once per reader, item and action within the window."""

from __future__ import annotations

from surveillance.cases.reads import RecentReads


def test_one_claim_per_reader_and_item_within_the_window() -> None:
    now = [0.0]
    reads = RecentReads(window_s=60, clock=lambda: now[0])
    key = ("session-a", "2026-000001", 1, "view")
    assert reads.claim(key) and not reads.claim(key)
    assert reads.claim(("session-b", "2026-000001", 1, "view"))
    assert reads.claim(("session-a", "2026-000001", 1, "download"))
    assert reads.claim(("session-a", "2026-000001", 2, "view"))
    now[0] = 59.9
    assert not reads.claim(key)
    now[0] = 60.1
    assert reads.claim(key)
    reads.release(key)  # its entry could not be written: the next read logs again
    assert reads.claim(key)
