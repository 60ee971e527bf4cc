"""Zone outlines: every class of refusal names what is wrong; good outlines pass as given."""

from __future__ import annotations

import pytest

from surveillance.zones.geometry import MAX_POINTS, ZoneShapeError, check_outline, signed_area

SQUARE = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]


def test_good_outlines_pass_unchanged() -> None:
    assert check_outline(SQUARE) == tuple((x, y) for x, y in SQUARE)
    corners = [[0, 0], [1, 0], [1, 1], [0, 1]]  # the whole picture, edges included
    assert abs(signed_area(check_outline(corners))) == 1.0
    concave = [[0.1, 0.1], [0.5, 0.4], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]
    assert len(check_outline(concave)) == 5
    circle = [[0.5 + 0.4 * c, 0.5 + 0.4 * s] for c, s in _unit_circle(MAX_POINTS)]
    assert len(check_outline(circle)) == MAX_POINTS


def _unit_circle(n: int) -> list[tuple[float, float]]:
    import math

    return [(math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)) for k in range(n)]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[0.1, 0.1], [0.5, 0.5]], "at least 3 points, got 2"),
        ([[0.5, 0.5]] * (MAX_POINTS + 1), f"at most {MAX_POINTS} points, got {MAX_POINTS + 1}"),
        ([[0.1, 0.1], [1.2, 0.1], [0.5, 0.5]], "points[1] is outside the picture"),
        ([[0.1, 0.1], [0.9, 0.1], [0.5, -0.01]], "points[2] is outside the picture"),
        ([[0.1, 0.1], [0.9, float("nan")], [0.5, 0.5]], "points[1] is outside the picture"),
        ([[0.1, 0.1], [0.9], [0.5, 0.5]], "points[1] must be [x, y]"),
        ([[0.1, 0.1], [0.1, 0.1], [0.5, 0.5]], "points[0] and points[1] are the same point"),
        # A bow tie: the edges 0-1 and 2-3 cross in the middle.
        (
            [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]],
            "edge points[0]-points[1] and edge points[2]-points[3]",
        ),
        # The closing edge 4-0 crosses edge 1-2.
        (
            [[0.5, 0.1], [0.2, 0.5], [0.8, 0.5], [0.9, 0.9], [0.1, 0.9]],
            "crosses itself: edge points[1]-points[2] and edge points[4]-points[0]",
        ),
        # Turning straight back at points[2]: its two edges overlap.
        (
            [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.9, 0.5]],
            "overlaps itself: edge points[1]-points[2] and edge points[2]-points[3]",
        ),
        # A point touching another edge counts as crossing.
        (
            [[0.1, 0.1], [0.9, 0.1], [0.5, 0.1], [0.5, 0.9]],
            "itself",
        ),
        ([[0.1, 0.1], [0.9, 0.1], [0.5, 0.1005]], "no area"),
    ],
)
def test_refusals_name_the_problem(points: list[list[float]], message: str) -> None:
    with pytest.raises(ZoneShapeError) as refused:
        check_outline(points)
    assert message in str(refused.value)
    assert refused.value.status_code == 422
