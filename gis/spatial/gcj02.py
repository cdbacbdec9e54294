"""GCJ-02, the offset datum of China's phone map SDKs (AMap, Tencent), to and from WGS84.

A point a phone's map picker gives in GCJ-02 lies 300–500 m from its WGS84 place here;
stored unconverted, every resident's report would land in the wrong building. The forward
offset is the published closed form (a fixed polynomial-and-sine shift on the Krasovsky
ellipsoid); there is no closed inverse, so :func:`to_wgs84` iterates the forward shift
until it reproduces the given point (under a millimetre after a few rounds).

Outside China the datum is plain WGS84 (the SDKs shift only inside), so points there pass
through unchanged. Written here rather than taken from PyPI: the formula is a few lines,
and the packages that carry it are small and unmaintained.
"""

from __future__ import annotations

import math

_A = 6378245.0  # Krasovsky 1940 semi-major axis, as the datum uses it
_EE = 0.00669342162296594323  # its first eccentricity squared
_TOLERANCE_DEG = 1e-10  # ~0.01 mm
_MAX_ROUNDS = 30


def in_china(lon: float, lat: float) -> bool:
    """The rough box the datum's offset applies in (the SDKs' own test)."""
    return 72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271


def to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS84 → GCJ-02 (degrees)."""
    if not in_china(lon, lat):
        return lon, lat
    d_lon, d_lat = _offset(lon, lat)
    return lon + d_lon, lat + d_lat


def to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 → WGS84 (degrees), by fixed-point iteration of the forward offset."""
    if not in_china(lon, lat):
        return lon, lat
    guess_lon, guess_lat = lon, lat
    for _ in range(_MAX_ROUNDS):
        fwd_lon, fwd_lat = to_gcj02(guess_lon, guess_lat)
        err_lon, err_lat = fwd_lon - lon, fwd_lat - lat
        guess_lon, guess_lat = guess_lon - err_lon, guess_lat - err_lat
        if abs(err_lon) < _TOLERANCE_DEG and abs(err_lat) < _TOLERANCE_DEG:
            break
    return guess_lon, guess_lat


def _offset(lon: float, lat: float) -> tuple[float, float]:
    x, y = lon - 105.0, lat - 35.0
    d_lat = _shift_lat(x, y)
    d_lon = _shift_lon(x, y)
    rad = math.radians(lat)
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return d_lon, d_lat


def _waves(x: float, y_or_x: float, a: float, b: float) -> float:
    """The sine terms both shifts share in form: 2/3·(20 sin 6πx + 20 sin 2πx) and the slower ones."""
    return (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0 + (
        a * math.sin(y_or_x * math.pi) + b * math.sin(y_or_x / 3.0 * math.pi)) * 2.0 / 3.0


def _shift_lat(x: float, y: float) -> float:
    base = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    slow = (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return base + _waves(x, y, 20.0, 40.0) + slow


def _shift_lon(x: float, y: float) -> float:
    base = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    slow = (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return base + _waves(x, x, 20.0, 40.0) + slow
