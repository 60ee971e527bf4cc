"""Packet figures: a frozen encoder's tiny P-frames and a slowed camera are told from the
camera's own habits, and a fault does not become the camera's habit."""

from __future__ import annotations

from surveillance.media.packet_stats import TINY_P_BYTES, PacketStats

FPS = 25


def _second(
    stats: PacketStats, start: float, p_bytes: int, fps: int = FPS, step: float = 1.0
) -> None:
    """One second of packets from ``start``: a keyframe then P-frames; timestamps advance by
    ``step`` frame intervals each frame (0: a camera repeating its timestamps)."""
    for index in range(fps):
        stats.add(
            30_000 if index == 0 else p_bytes,
            index == 0,
            start + step * index / fps,
            start + index / fps,
        )


def test_tiny_p_frames_against_the_cameras_own_baseline() -> None:
    stats = PacketStats()
    _second(stats, 0.0, 2_000)
    first = stats.window()
    assert first.tiny_p_frames is False and first.usual_p_bytes is None  # no baseline yet
    assert first.frame_rate is not None and abs(first.frame_rate - FPS) < 0.5
    for start in range(1, 5):
        _second(stats, float(start), 2_000)
        stats.window()
    # A frozen encoder: P-frames far under the camera's usual ones, though above TINY_P_BYTES.
    for start in range(5, 30):
        _second(stats, float(start), 150)
        frozen = stats.window()
        assert frozen.tiny_p_frames is True
        assert frozen.usual_p_bytes is not None and frozen.usual_p_bytes > 1_900  # not learnt
    # A quiet scene of a camera whose P-frames are small anyway is not frozen.
    quiet = PacketStats()
    _second(quiet, 0.0, 300)
    quiet.window()
    _second(quiet, 1.0, 250)
    assert quiet.window().tiny_p_frames is False
    _second(quiet, 2.0, TINY_P_BYTES - 40)
    assert quiet.window().tiny_p_frames is True  # skipped macroblocks only: nothing at all
    intra_only = PacketStats()
    intra_only.add(30_000, True, 0.0, 0.0)
    assert intra_only.window().tiny_p_frames is None  # nothing to judge by


def test_a_slow_camera_and_repeated_timestamps_lower_the_frame_rate() -> None:
    stats = PacketStats()
    # A burst on connecting (the server sends ahead): a second of frames in a tenth of one
    # is still 25 frames per second, and sets no baseline of 250.
    for index in range(FPS):
        stats.add(2_000, index == 0, index / FPS - 1.0, index / (10 * FPS) - 1.0)
    burst = stats.window()
    assert burst.frame_rate is not None and abs(burst.frame_rate - FPS) < 1.5
    for start in range(3):
        _second(stats, float(start), 2_000)
        assert not stats.window().slow
    _second(stats, 3.0, 2_000, fps=8)
    slow = stats.window()
    assert slow.slow and slow.frame_rate is not None and slow.frame_rate < 10
    _second(stats, 4.0, 2_000, step=0.0)  # packets arrive, timestamps stand still
    assert stats.window().slow
    _second(stats, 5.0, 2_000)
    back = stats.window()
    assert not back.slow and back.usual_frame_rate is not None and back.usual_frame_rate > 24
    # A reconnect restarts timestamps at 0: that is not a camera going backwards.
    stats.new_connection()
    _second(stats, 0.0, 2_000)
    assert not stats.window().slow
    assert stats.window().frame_rate is None  # an empty window measures nothing
