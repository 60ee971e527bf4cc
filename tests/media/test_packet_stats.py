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
    assert first.frame_rate is None  # a connection's first window: perhaps a burst
    for start in range(1, 5):
        _second(stats, float(start), 2_000)
        stats.window()
    # A frozen encoder: P-frames far under the camera's usual ones, though above TINY_P_BYTES.
    for start in range(5, 30):
        _second(stats, float(start), 150)
        frozen = stats.window()
        assert frozen.tiny_p_frames is True
        # Learnt only slowly: the fault is not the camera's normal while it lasts.
        assert frozen.usual_p_bytes is not None and frozen.usual_p_bytes > 1_500
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


def test_the_frame_rate_counts_arrivals_whatever_the_timestamps_say() -> None:
    stats = PacketStats()
    # A burst on connecting (FFmpeg's probe buffer, a server sending ahead: the last second
    # in a tenth of one): no rate from it, so no baseline of 250.
    for index in range(FPS):
        stats.add(2_000, index == 0, index / FPS - 1.0, index / (10 * FPS) - 0.14)
    burst = stats.window()
    assert burst.frame_rate is None and burst.usual_frame_rate is None
    for start in range(3):
        _second(stats, float(start), 2_000)
        steady = stats.window()
        assert not steady.slow and steady.frame_rate is not None
        assert abs(steady.frame_rate - FPS) < 0.5
    # Timestamps that stand still, or come out of order (B-frames): the same 25 frames a
    # second arrived, so the same rate (counting advancing timestamps read 5-7 fps here).
    _second(stats, 3.0, 2_000, step=0.0)
    assert stats.window().frame_rate == FPS
    for index in range(FPS):
        stats.add(2_000, index == 0, 4.0 + ((index * 7) % FPS) / FPS, 4.0 + index / FPS)
    assert stats.window().frame_rate == FPS
    _second(stats, 5.0, 2_000, fps=8)
    slow = stats.window()
    assert slow.slow and slow.frame_rate is not None and slow.frame_rate < 10
    _second(stats, 6.0, 2_000)
    back = stats.window()
    assert not back.slow and back.usual_frame_rate is not None and back.usual_frame_rate > 24
    # A reconnect: the new connection's first window measures nothing, then as before.
    stats.new_connection()
    _second(stats, 100.0, 2_000)
    assert stats.window().frame_rate is None
    _second(stats, 101.0, 2_000)
    assert not stats.window().slow
    assert stats.window().frame_rate is None  # an empty window measures nothing


def test_a_one_fps_camera_sampled_every_second_and_a_lasting_change_of_rate() -> None:
    stats = PacketStats()
    rates = []
    for second in range(12):  # one frame a second, a window a second, a little jitter
        stats.add(80_000, second % 10 == 0, float(second), second + 0.05 * (second % 3))
        rates.append(stats.window().frame_rate)
    assert rates[0] is None and all(r is not None and 0.85 < r < 1.15 for r in rates[1:]), rates
    # A camera reconfigured from 25 to 10 fps: slow at first, its normal within minutes
    # (the baseline moves slowly during a fault, but it does move: no event for ever).
    stats = PacketStats()
    for start in range(10):
        _second(stats, float(start), 2_000)
        stats.window()
    verdicts = []
    for start in range(10, 10 + 80):
        _second(stats, float(start), 2_000, fps=10)
        verdicts.append(stats.window().slow)
    assert verdicts[0] and not verdicts[-1], verdicts
