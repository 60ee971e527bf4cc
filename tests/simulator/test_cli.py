"""``surveillance simulate``'s mounts: what each option asks of the simulator."""

from __future__ import annotations

import argparse

from surveillance.simulator.cli import add_arguments, build_mounts


def mounts_for(*argv: str) -> list[tuple[str, bool, float]]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return [(m.path, m.shared, m.start_offset_s) for m in build_mounts(parser.parse_args(argv))]


def test_cameras_are_unshared_unless_asked() -> None:
    assert {shared for _, shared, _ in mounts_for("--cameras", "3")} == {False}


def test_shared_cameras_keep_their_start_offsets() -> None:
    found = mounts_for("--cameras", "6", "--shared")
    assert [shared for _, shared, _ in found] == [True] * 6
    # Six cameras over a 10 s clip with 2 s GOPs: five offsets, so the sixth shares the
    # first one's media and the others each have their own.
    assert [offset for _, _, offset in found] == [0.0, 2.0, 4.0, 6.0, 8.0, 0.0]


def test_shared_demo_shares_main_and_sub_streams() -> None:
    found = mounts_for("--demo", "--cameras", "2", "--shared")
    assert [(path, shared) for path, shared, _ in found] == [
        ("cam1", True), ("cam1-sub", True), ("cam2", True), ("cam2-sub", True),
    ]  # fmt: skip
