"""The coordinate reference systems the OGC API offers (Features Part 2), with their axis order.

Storage is EPSG:4326 with longitude first inside PostGIS. A CRS whose official axis
order is north-first (EPSG:4326, EPSG:4490, EPSG:4547) is answered and read in that
order, as the standard says; CRS84 and EPSG:3857 are east-first.
"""

from __future__ import annotations

from dataclasses import dataclass

from layers.errors import InvalidParameter

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"


@dataclass(frozen=True)
class Crs:
    uri: str
    srid: int
    north_first: bool  # axis order of the CRS definition: latitude/northing first
    decimals: int  # coordinate precision written in responses (about a centimetre)

    @property
    def projected(self) -> bool:
        return self.srid not in (4326, 4490)


STORAGE = Crs(CRS84, 4326, north_first=False, decimals=7)
SUPPORTED: tuple[Crs, ...] = (
    STORAGE,
    Crs(_EPSG.format(4326), 4326, north_first=True, decimals=7),
    Crs(_EPSG.format(4490), 4490, north_first=True, decimals=7),
    Crs(_EPSG.format(4547), 4547, north_first=True, decimals=2),
    Crs(_EPSG.format(3857), 3857, north_first=False, decimals=2),
)
_BY_URI = {crs.uri: crs for crs in SUPPORTED}
# short spellings people type by hand; the canonical URI is what responses carry
_ALIASES = {
    "CRS84": STORAGE,
    "OGC:CRS84": STORAGE,
    "EPSG:4326": _BY_URI[_EPSG.format(4326)],
    "EPSG:4490": _BY_URI[_EPSG.format(4490)],
    "EPSG:4547": _BY_URI[_EPSG.format(4547)],
    "EPSG:3857": _BY_URI[_EPSG.format(3857)],
}


def crs_from_parameter(value: str | None, *, parameter: str) -> Crs:
    """The CRS named by a ``crs``/``bbox-crs``/``filter-crs`` value (default CRS84); 400 when unknown."""
    if value is None or value == "":
        return STORAGE
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):  # safe CURIE form [EPSG:4326]
        value = value[1:-1]
    crs = _BY_URI.get(value) or _ALIASES.get(value.upper())
    if crs is None and value.startswith("http://www.opengis.net/def/crs/EPSG/0/"):
        crs = _BY_URI.get(value.rstrip("/"))
    if crs is None:
        raise InvalidParameter(
            f"{parameter}: unsupported CRS {value!r}; use one of {', '.join(c.uri for c in SUPPORTED)}"
        )
    return crs


def supported_uris() -> list[str]:
    return [crs.uri for crs in SUPPORTED]


def swap_axes(coordinates):
    """GeoJSON-style nested coordinates with the first two axes of every position swapped (north-first ↔ east-first)."""
    if isinstance(coordinates, list) and coordinates and isinstance(coordinates[0], (int, float)):
        return [coordinates[1], coordinates[0], *coordinates[2:]]
    if isinstance(coordinates, list):
        return [swap_axes(c) for c in coordinates]
    return coordinates
