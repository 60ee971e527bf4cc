"""One camera's video-quality diagnosis: packets and pictures in, conditions raised and ended out.

The same object runs live (services/diagnosis.py feeds it from a subscription, with the
monotonic clock) and offline (tests and benches feed it a file's packets and decoded
keyframes with the file's own timestamps, much faster than real time): what is judged does
not depend on where the pictures came from.

Each sample (one every ``interval_s``) folds the packets since the last one into their
figures (media/packet_stats.py) and, when a new keyframe was decoded, measures the picture
(media/picture_checks.py). A check becomes an event after failing ``hold_s`` and ends after
passing ``clear_s`` (services/conditions.py); a camera flagged frozen passes again only on
a clearly larger change (picture_checks.FROZEN_RELEASE_FACTOR). For ``settle_s`` after each
(re)connect nothing is judged: a camera that reconnects shows grey, half-drawn or old
pictures for a moment.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from surveillance.media.packet_stats import PacketFigures, PacketStats
from surveillance.media.picture_checks import (
    Check,
    Figures,
    SmallPicture,
    Thresholds,
    analysis_size,
    failing,
    measure,
)
from surveillance.services.conditions import Conditions, Timing, Transition


class QualityCheck(StrEnum):
    """Every check; the event type of each is ``quality.<value>``."""

    FROZEN = "frozen"
    DARK = "dark"
    BRIGHT = "bright"
    COVERED = "covered"
    DEFOCUS = "defocus"
    ONE_COLOUR = "one_colour"
    MOVED = "moved"
    FRAME_RATE = "frame_rate"


PICTURE_CHECKS = tuple(QualityCheck(check.value) for check in Check)


@dataclass(frozen=True)
class DiagnosisSettings:
    """One camera's diagnosis settings, its tags' overrides applied."""

    interval_s: float
    settle_s: float
    timing: Timing
    thresholds: Thresholds = field(default_factory=Thresholds)
    enabled: bool = True


@dataclass(frozen=True)
class Change:
    check: QualityCheck
    transition: Transition
    at: float  # on the caller's clock: when the condition began (raise) or was seen clear
    detail: Mapping[str, Any]  # the figures that made the verdict


@dataclass(frozen=True)
class QualityState:
    """What the quality route shows: each check's state and the last figures."""

    active: frozenset[QualityCheck]
    settling: bool
    figures: Figures | None
    packets: PacketFigures | None
    measured_at: float | None  # caller's clock


class CameraQuality:
    """Not shared across threads except as documented: ``packet`` and ``take_window`` by one
    feeder, ``judge`` by one analyser at a time (the service never runs two per camera)."""

    def __init__(self, camera_id: str, settings: DiagnosisSettings) -> None:
        self.camera_id = camera_id
        self.settings = settings
        self._stats = PacketStats()
        self._conditions: Conditions[QualityCheck] = Conditions()
        self._settle_until: float | None = None
        self._next_sample: float | None = None
        self._previous: SmallPicture | None = None
        self._connection = 0  # counts (re)connects: a picture of an older one is not compared
        self._previous_connection = -1
        self._lock = threading.Lock()  # the state the quality route reads
        self._figures: Figures | None = None
        self._packets: PacketFigures | None = None
        self._measured_at: float | None = None

    # -- the feeder ----------------------------------------------------------------------
    def packet(
        self,
        size: int,
        keyframe: bool,
        timestamp_s: float | None,
        arrival: float,
        new_connection: bool = False,
    ) -> None:
        if new_connection:
            self._stats.new_connection()
            self._connection += 1
            self._settle_until = arrival + self.settings.settle_s
            self._next_sample = arrival + self.settings.interval_s
        self._stats.add(size, keyframe, timestamp_s, arrival)

    def due(self, now: float) -> bool:
        """Whether a sample is due; the first is one interval after the first packet."""
        if self._next_sample is None:
            self._next_sample = now + self.settings.interval_s
        return now >= self._next_sample

    def take_window(self, now: float) -> tuple[PacketFigures, int]:
        """The packet figures since the last sample, and the connection they belong to."""
        self._next_sample = now + self.settings.interval_s
        return self._stats.window(), self._connection

    def settling(self, now: float) -> bool:
        return self._settle_until is not None and now < self._settle_until

    # -- the analyser --------------------------------------------------------------------
    def judge(
        self,
        now: float,
        packets: PacketFigures,
        connection: int,
        picture: SmallPicture | None,
        reference: SmallPicture | None,
    ) -> list[Change]:
        """One sample: the window's packet figures and, if a new keyframe was decoded, its
        picture. Returns the conditions raised or ended by it."""
        figures = None
        if picture is not None:
            same_connection = connection == self._previous_connection
            figures = measure(picture, self._previous if same_connection else None, reference)
            self._previous, self._previous_connection = picture, connection
        with self._lock:
            self._packets, self._measured_at = packets, now
            if figures is not None:
                self._figures = figures
        if self.settling(now):
            return []
        verdicts: dict[QualityCheck, bool] = {}
        if packets.frame_rate is not None:
            verdicts[QualityCheck.FRAME_RATE] = packets.slow
        if figures is not None:
            frozen_flagged = self._conditions.active(QualityCheck.FROZEN)
            failed = failing(figures, self.settings.thresholds, frozen_flagged=frozen_flagged)
            for check in PICTURE_CHECKS:
                verdicts[check] = Check(check.value) in failed
        changes: list[Change] = []
        for check, failed_now in verdicts.items():
            transition = self._conditions.update(check, failed_now, now, self.settings.timing)
            if transition is None:
                continue
            raised = self._conditions.raised_at(check) if transition is Transition.RAISE else None
            at = raised if raised is not None else now
            changes.append(Change(check, transition, at, _detail(check, figures, packets)))
        return changes

    def state(self, now: float) -> QualityState:
        with self._lock:
            return QualityState(
                active=frozenset(self._conditions.active_keys()),
                settling=self.settling(now),
                figures=self._figures,
                packets=self._packets,
                measured_at=self._measured_at,
            )

    def active(self) -> frozenset[QualityCheck]:
        return frozenset(self._conditions.active_keys())


def picture_of(frame: Any) -> SmallPicture:
    """A decoded picture (av.VideoFrame) at analysis size."""
    width, height = analysis_size(frame.width, frame.height)
    return SmallPicture.from_yuv420(frame.to_ndarray(format="yuv420p", width=width, height=height))


def _detail(check: QualityCheck, figures: Figures | None, packets: PacketFigures) -> dict[str, Any]:
    """The figures an event carries, rounded for people."""
    if check is QualityCheck.FRAME_RATE:
        return {
            "frame_rate": _round(packets.frame_rate),
            "usual_frame_rate": _round(packets.usual_frame_rate),
        }
    detail: dict[str, Any] = {}
    if figures is not None:
        detail.update(
            mean_luma=_round(figures.mean),
            contrast=_round(figures.contrast),
            sharpness=_round(figures.sharpness, 3),
            colour_share=_round(figures.colour_share, 3),
            change=_round(figures.change),
            similarity=_round(figures.similarity, 3),
        )
    if check is QualityCheck.FROZEN:
        detail.update(
            p_frame_bytes=_round(packets.p_median_bytes),
            usual_p_frame_bytes=_round(packets.usual_p_bytes),
        )
    return detail


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
