"""A zone's outline: a simple polygon in picture coordinates (0..1 of width and height).

Checked once, when an operator saves it, so the motion detector can rasterise any stored
zone without asking again. Every refusal names the offending point or edges by their
index in the list sent (``points[2]``), which is what the zone editor highlights; the
values themselves are not echoed (api/errors.py: a 422 never repeats the input).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from surveillance.errors import InvalidRequest

MIN_POINTS = 3
MAX_POINTS = 64  # enough for any outline drawn by hand; bounds the O(n^2) crossing check
# Smaller than this share of the picture is a line or a dot, not a zone: at the analysed
# 160 x 90 it would be about 7 pixels, below the detector's smallest blob.
MIN_AREA = 0.0005

Point = tuple[float, float]


class ZoneShapeError(InvalidRequest):
    """The outline sent is not a usable zone (the message says which point or edges)."""


def check_outline(points: Sequence[Sequence[float]]) -> tuple[Point, ...]:
    """The outline as a tuple of points, or :class:`ZoneShapeError` naming what is wrong."""
    if len(points) < MIN_POINTS:
        raise ZoneShapeError(f"a zone needs at least {MIN_POINTS} points, got {len(points)}")
    if len(points) > MAX_POINTS:
        raise ZoneShapeError(f"a zone has at most {MAX_POINTS} points, got {len(points)}")
    outline: list[Point] = []
    for index, point in enumerate(points):
        if len(point) != 2:
            raise ZoneShapeError(f"points[{index}] must be [x, y]")
        x, y = float(point[0]), float(point[1])
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= 1 and 0 <= y <= 1):
            raise ZoneShapeError(
                f"points[{index}] is outside the picture (x and y must be within 0..1)"
            )
        outline.append((x, y))
    _check_edges(outline)
    if abs(signed_area(outline)) < MIN_AREA:
        raise ZoneShapeError(
            f"the zone encloses (almost) no area: at least {MIN_AREA:g} of the picture"
        )
    return tuple(outline)


def signed_area(outline: Sequence[Point]) -> float:
    """The shoelace area (positive when the points go counter-clockwise in x-right y-up)."""
    total = 0.0
    for (x1, y1), (x2, y2) in _edges(outline):
        total += x1 * y2 - x2 * y1
    return total / 2


def _edges(outline: Sequence[Point]) -> list[tuple[Point, Point]]:
    return [(outline[i], outline[(i + 1) % len(outline)]) for i in range(len(outline))]


def _edge_name(index: int, count: int) -> str:
    return f"points[{index}]-points[{(index + 1) % count}]"


def _check_edges(outline: list[Point]) -> None:
    count = len(outline)
    edges = _edges(outline)
    for i, (a, b) in enumerate(edges):
        if a == b:
            raise ZoneShapeError(f"points[{i}] and points[{(i + 1) % count}] are the same point")
    # Neighbouring edges share a point; they overlap only when the outline turns straight
    # back there. Any other two edges must not meet at all.
    for k in range(count):
        if _turns_back(outline[k - 1], outline[k], outline[(k + 1) % count]):
            raise ZoneShapeError(_crossing((k - 1) % count, k, count, "overlaps"))
    for i in range(count):
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue  # the closing edge neighbours the first
            if _segments_meet(*edges[i], *edges[j]):
                raise ZoneShapeError(_crossing(i, j, count, "crosses"))


def _crossing(i: int, j: int, count: int, verb: str) -> str:
    return f"the outline {verb} itself: edge {_edge_name(i, count)} and edge {_edge_name(j, count)}"


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _turns_back(a: Point, b: Point, c: Point) -> bool:
    """Whether a -> b -> c reverses at b along one line (the edges then overlap)."""
    if _cross(a, b, c) != 0:
        return False
    return (b[0] - a[0]) * (c[0] - b[0]) + (b[1] - a[1]) * (c[1] - b[1]) < 0


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether segments a-b and c-d share any point (touching counts: a zone whose outline
    touches itself is two zones, or none)."""
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and _on_segment(a, c, d))
        or (d2 == 0 and _on_segment(b, c, d))
        or (d3 == 0 and _on_segment(c, a, b))
        or (d4 == 0 and _on_segment(d, a, b))
    )
