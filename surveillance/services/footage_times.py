"""Moments and windows asked for in the past: the one place that reads and checks them.

Every route that takes a moment of recorded footage (recordings, export, playback, a past
snapshot, a clip or a hold for a case) reads it here, so each bad input is refused with the
same words wherever it is sent: not ISO 8601, without a time zone (a moment without one
means a different instant on every machine that reads it), in the future, an end before
its start, a window longer than allowed. Whether a window lies inside the recorded footage
is asked of the recordings (:mod:`surveillance.services.recordings`), which know it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from surveillance.errors import InvalidRequest

MAX_FUTURE_S = 5.0  # a moment may lie this far ahead of the server clock (clients' skew)
MAX_MOMENT_CHARS = 64  # longer than any ISO 8601 moment: refused before it is parsed
EXAMPLE = "e.g. 2026-12-01T14:32:00Z"
MIN_EPOCH_S = datetime(1, 1, 2, tzinfo=UTC).timestamp()  # a day inside datetime's range
MAX_EPOCH_S = datetime(9999, 12, 30, tzinfo=UTC).timestamp()
CYCLE_S = 146_097 * 86_400.0  # 400 Gregorian years, to the second
CYCLE_BASE_S = datetime(2000, 1, 1, tzinfo=UTC).timestamp()  # moved to 2000..2399


def iso(epoch_s: float) -> str:
    """An epoch moment as the API writes it: ISO 8601, UTC, with ``Z``, milliseconds.

    A moment before year 1 or after 9999 (9999-12-31T23:59:59-14:00 is one, in UTC) is
    written with ISO 8601's expanded year (``+10000-01-01T09:59:59.000Z``): Python's
    datetime stops at those years, the calendar repeats every 400 years, so the moment is
    moved by whole cycles into range and the year moved back."""
    if not math.isfinite(epoch_s):
        return str(epoch_s)
    cycles = 0
    if not MIN_EPOCH_S <= epoch_s < MAX_EPOCH_S:
        cycles = math.floor((epoch_s - CYCLE_BASE_S) / CYCLE_S)
    moment = datetime.fromtimestamp(epoch_s - cycles * CYCLE_S, UTC)
    year = moment.year + 400 * cycles
    text = moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return (f"{year:04d}" if 1 <= year <= 9999 else f"{year:+05d}") + text


def parse_moment(name: str, text: str) -> float:
    """``text`` (a query parameter called ``name``) as epoch seconds; 422 naming the
    parameter when it is not an ISO 8601 moment with a time zone."""
    if len(text) > MAX_MOMENT_CHARS:
        raise InvalidRequest(f"`{name}` is not an ISO 8601 moment ({EXAMPLE})")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"`{name}` is not an ISO 8601 moment ({EXAMPLE})") from None
    return epoch(name, moment)


def epoch(name: str, moment: datetime) -> float:
    """An already parsed moment (a JSON body's) as epoch seconds; 422 without a zone."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRequest(f"`{name}` needs a time zone, Z or an offset ({EXAMPLE})")
    return moment.timestamp()


def not_future(name: str, at: float, now: float) -> None:
    if at > now + MAX_FUTURE_S:
        raise InvalidRequest(f"`{name}` lies in the future ({iso(at)}; now is {iso(now)})")


@dataclass(frozen=True)
class Window:
    """A checked window of footage, epoch seconds, ``start < end``."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def window(
    start: float,
    end: float,
    *,
    now: float,
    max_s: float,
    names: tuple[str, str] = ("start", "end"),
    future_end_allowed: bool = False,
    limit: str = "recording.max_export_s",
) -> Window:
    """``start``..``end`` checked: start not in the future, end after start, not longer
    than ``max_s``. ``future_end_allowed`` lets the end lie ahead (a clip that waits for
    its post-event seconds; a hold on what is still to be recorded). ``limit`` names
    where ``max_s`` comes from, for the refusal."""
    first, last = names
    not_future(first, start, now)
    if not future_end_allowed:
        not_future(last, end, now)
    if end <= start:
        raise InvalidRequest(f"`{last}` must lie after `{first}` ({iso(end)} <= {iso(start)})")
    if end - start > max_s:
        raise InvalidRequest(
            f"the window from `{first}` to `{last}` is {end - start:.0f} s; "
            f"at most {max_s:.0f} s is allowed ({limit})"
        )
    return Window(start, end)
