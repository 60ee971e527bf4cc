"""Coordinates: turn the GCJ-02 positions most Chinese platforms report into WGS-84, which
the maps and the rest of this service use.

GCJ-02 is WGS-84 moved by an obfuscating offset of a few hundred metres that varies with
the place. The offset used here is the widely published approximation of it (the formula
of the open-source eviltransform and coordtransform libraries, written out again here): a
polynomial-and-sine function of the position relative to 105 E, 35 N whose values are
metres on the Krasovsky 1940 ellipsoid, applied only inside a rectangle around China. It
matches the official transform to a metre or two, which is what every platform's encoder
uses too.

There is no closed form back, so gcj02_to_wgs84 inverts it by fixed-point iteration: the
offset changes by well under 1 % of itself over its own size, so each step shrinks the error
a hundredfold and a few steps reach a millimetre.
"""

from __future__ import annotations

import math

KRASOVSKY_A_M = 6378245.0  # semi-major axis of the Krasovsky 1940 ellipsoid
KRASOVSKY_E2 = 0.00669342162296594323  # its first eccentricity squared
# The rectangle inside which positions are offset (and outside which they are not).
CHINA_LON_MIN, CHINA_LON_MAX = 72.004, 137.8347
CHINA_LAT_MIN, CHINA_LAT_MAX = 0.8293, 55.8271
INVERSE_TOLERANCE_DEG = 1e-10  # about 0.01 mm
INVERSE_MAX_STEPS = 30


def in_china(lon: float, lat: float) -> bool:
    """Whether GCJ-02 offsets this position (the transform's rectangle, not the border)."""
    return CHINA_LON_MIN <= lon <= CHINA_LON_MAX and CHINA_LAT_MIN <= lat <= CHINA_LAT_MAX


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """The GCJ-02 position of a WGS-84 one; outside China (or not finite) unchanged."""
    if not (math.isfinite(lon) and math.isfinite(lat) and in_china(lon, lat)):
        return lon, lat
    return _offset(lon, lat)


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """The WGS-84 position of a GCJ-02 one; outside China (or not finite) unchanged."""
    if not (math.isfinite(lon) and math.isfinite(lat) and in_china(lon, lat)):
        return lon, lat
    wgs_lon, wgs_lat = lon, lat
    for _ in range(INVERSE_MAX_STEPS):
        # No rectangle test inside the loop: near its edge the estimate may step outside,
        # and the offset must stay the same function for the iteration to converge.
        gcj_lon, gcj_lat = _offset(wgs_lon, wgs_lat)
        error_lon, error_lat = gcj_lon - lon, gcj_lat - lat
        wgs_lon -= error_lon
        wgs_lat -= error_lat
        if abs(error_lon) < INVERSE_TOLERANCE_DEG and abs(error_lat) < INVERSE_TOLERANCE_DEG:
            break
    return wgs_lon, wgs_lat


def _offset(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    north_m = _north_offset_m(x, y)
    east_m = _east_offset_m(x, y)
    # Metres to degrees on the Krasovsky ellipsoid: the meridian radius of curvature M for
    # latitude, the prime vertical one N times cos(latitude) for longitude.
    phi = math.radians(lat)
    w2 = 1.0 - KRASOVSKY_E2 * math.sin(phi) ** 2
    meridian_m = KRASOVSKY_A_M * (1.0 - KRASOVSKY_E2) / (w2 * math.sqrt(w2))
    prime_vertical_m = KRASOVSKY_A_M / math.sqrt(w2)
    d_lat = math.degrees(north_m / meridian_m)
    d_lon = math.degrees(east_m / (prime_vertical_m * math.cos(phi)))
    return lon + d_lon, lat + d_lat


def _ripple(x: float) -> float:
    """The short-wave term both offsets share."""
    return (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0


def _north_offset_m(x: float, y: float) -> float:
    value = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    value += _ripple(x)
    value += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    value += (
        (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    return value


def _east_offset_m(x: float, y: float) -> float:
    value = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    value += _ripple(x)
    value += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    value += (
        (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    return value
