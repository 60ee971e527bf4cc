"""GCJ-02 -> WGS-84: the published offset reproduced (a worked value at its origin), inverted
to well under half a metre across China, and nothing moved outside it."""

from __future__ import annotations

import math

import pytest

from surveillance.gb28181.coords import gcj02_to_wgs84, wgs84_to_gcj02

EARTH_RADIUS_M = 6_371_008.8  # mean radius: enough for distances of metres


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance between two (lon, lat) in degrees."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2
    h += math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def test_at_the_formulas_origin_the_offset_is_300_m_east_and_100_m_south() -> None:
    # At 105 E, 35 N (x = y = 0) every sine and root term of the offset vanishes and what
    # is left is its constants: 300 m east, -100 m north, on the Krasovsky 1940 ellipsoid
    # (a = 6378245 m, e^2 = 0.00669342162296594323). Metres to degrees there:
    #   M = a (1 - e^2) / (1 - e^2 sin^2 35)^1.5  (meridian),  N = a / (1 - e^2 sin^2 35)^0.5
    a, e2, phi = 6378245.0, 0.00669342162296594323, math.radians(35.0)
    w2 = 1 - e2 * math.sin(phi) ** 2
    meridian, prime_vertical = a * (1 - e2) / w2**1.5, a / math.sqrt(w2)
    expected = (
        105.0 + math.degrees(300.0 / (prime_vertical * math.cos(phi))),
        35.0 + math.degrees(-100.0 / meridian),
    )
    gcj = wgs84_to_gcj02(105.0, 35.0)
    assert gcj == pytest.approx(expected, abs=1e-12)
    # sqrt(300^2 + 100^2) = 316.2 m, give or take the sphere the test measures on
    assert 315 < distance_m((105.0, 35.0), gcj) < 317.5
    assert gcj02_to_wgs84(*gcj) == pytest.approx((105.0, 35.0), abs=1e-9)


CITIES = {
    "Beijing": (116.3913, 39.9075),
    "Shanghai": (121.4737, 31.2304),
    "Guangzhou": (113.2644, 23.1291),
    "Hefei": (117.2272, 31.8206),
    "Urumqi": (87.6168, 43.8256),
    "Kashgar": (75.9897, 39.4704),
    "Lhasa": (91.1409, 29.6456),
    "Harbin": (126.5349, 45.8038),
    "Sanya": (109.5119, 18.2528),
    "Mohe": (122.5380, 52.9723),
}


def test_round_trip_error_is_under_half_a_metre_across_china() -> None:
    grid = [(lon, lat) for lon in range(74, 136, 3) for lat in range(19, 54, 3)]
    points = [*CITIES.values(), *((float(lon) + 0.37, lat + 0.61) for lon, lat in grid)]
    for wgs in points:
        gcj = wgs84_to_gcj02(*wgs)
        # GCJ-02 really moved it: tens to hundreds of metres, never kilometres
        assert 10 < distance_m(wgs, gcj) < 1500, wgs
        assert distance_m(wgs, gcj02_to_wgs84(*gcj)) < 0.5, wgs


@pytest.mark.parametrize(
    "point",
    [
        (139.6917, 35.6895),
        (2.3522, 48.8566),
        (151.2093, -33.8688),
        (0.0, 0.0),
        (-180.0, -90.0),
        (180.0, 90.0),
        (71.9, 39.0),
        (120.0, 56.0),
        (103.8, 0.5),
    ],
)
def test_outside_china_positions_are_unchanged(point: tuple[float, float]) -> None:
    assert gcj02_to_wgs84(*point) == point
    assert wgs84_to_gcj02(*point) == point


def test_non_finite_positions_are_returned_as_they_are() -> None:
    lon, lat = gcj02_to_wgs84(math.nan, 39.9)
    assert math.isnan(lon) and lat == 39.9
    assert gcj02_to_wgs84(116.4, math.inf) == (116.4, math.inf)
