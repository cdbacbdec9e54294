"""Daily incident kernel density: a GeoTIFF in EPSG:4547 for QGIS, a colour PNG in EPSG:3857 for the web map.

One SQL statement reads the day's published incidents (the local day of ``ONEMAP_TIME_ZONE``,
Asia/Shanghai by default), false alarms left out (nothing happened there),
already transformed to EPSG:4547 metres by PostGIS, together with the area they are
counted in (the level-1 grids, or one grid and the grids below it). The points are
binned into cells and the cell counts convolved with a quartic (biweight) kernel by
FFT, so the kernel's cost depends on the raster's size, not on the number of points. Density is in incidents per km²
and integrates to the number of incidents. The GeoTIFF is cached under
``$ONEMAP_VAR_DIR/density/`` and recomputed only when its inputs changed: its tags
carry a digest of exactly what it was computed from (every point, the area, the
parameters), which is cheap to compare and never stale. See ``docs/density.md``.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from psycopg import sql

from core.settings import settings

TZ = ZoneInfo(settings().time_zone)  # the local day incidents are counted in (ONEMAP_TIME_ZONE)
# statuses that say nothing happened at the place: never counted toward the density
EXCLUDED_STATUSES = ("false_alarm",)
CRS_EPSG = 4547  # CGCS2000 / 3-degree Gauss-Kruger CM 114E: metres around Zhengzhou
WEB_EPSG = 3857
BANDWIDTH_M = 75.0
CELL_M = 10.0
KERNEL = "quartic"
UNITS = "incidents per km²"
NODATA = -9999.0  # cells farther than a bandwidth from the area: no estimate there
TIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
MAX_CELLS = 40_000_000  # about 160 MB of float32; a larger raster needs a larger cell or a grid
MAX_OVERLAY_PX = 4096  # longest side of the web PNG
# GeoTIFFs kept in the cache folder; beyond this the least recently used are removed (each new date
# an analyst asks for writes one file, so without a bound the disk would fill)
MAX_CACHED_RASTERS = 400
_FORMAT = "onemap-density-2"  # bump when the computation changes, so every cached raster is recomputed


class DensityError(ValueError):
    """A density request that cannot be answered; ``status`` is the HTTP status (400 or 404)."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DensityRequest:
    """What a density raster is of: one local day, optionally one grid and some categories."""

    day: date
    grid_code: str | None = None
    categories: tuple[str, ...] = ()  # sorted; empty means every published category
    bandwidth_m: float = BANDWIDTH_M
    cell_m: float = CELL_M

    @property
    def stem(self) -> str:
        """``incidents-YYYY-MM-DD[-grid][-categories]``, plus the parameters when not the defaults."""
        parts = [f"incidents-{self.day.isoformat()}"]
        if self.grid_code:
            parts.append(self.grid_code)
        if self.categories:
            parts.append("+".join(self.categories))
        if (self.bandwidth_m, self.cell_m) != (BANDWIDTH_M, CELL_M):
            parts.append(f"h{self.bandwidth_m:g}m-c{self.cell_m:g}m")
        return "-".join(parts)

    @property
    def filename(self) -> str:
        return self.stem + ".tif"


@dataclass(frozen=True)
class DensityRaster:
    """A computed (or cached) density GeoTIFF and what the JSON and the overlay need to know about it."""

    request: DensityRequest
    path: Path
    count: int  # incidents in the raster
    max_density: float  # incidents per km² at the densest cell
    width: int
    height: int
    bounds: tuple[float, float, float, float]  # EPSG:4547 metres: min x, min y, max x, max y
    synthetic: bool
    fingerprint: str  # digest of the inputs; equal digests, equal rasters
    computed: bool  # True when this call computed it, False when the cached file was current

    @property
    def empty(self) -> bool:
        return self.count == 0


@dataclass(frozen=True)
class DensityOverlay:
    """The raster as a colour PNG in EPSG:3857, with its lon/lat bounds for a Leaflet ``imageOverlay``."""

    png: bytes
    width: int
    height: int
    bbox: tuple[float, float, float, float]  # west, south, east, north (degrees)
    fingerprint: str

    @property
    def leaflet_bounds(self) -> list[list[float]]:
        west, south, east, north = self.bbox
        return [[south, west], [north, east]]


# -- public entry points -----------------------------------------------------------------------------------


def density_request(
    *,
    day: str | date,
    grid_code: str | None = None,
    categories: str | Iterable[str] | None = None,
    bandwidth_m: float = BANDWIDTH_M,
    cell_m: float = CELL_M,
) -> DensityRequest:
    """A checked request; a 400 DensityError says which value to change (the grid's existence is checked later)."""
    if isinstance(day, str):
        day = parse_day(day)
    grid_code = (grid_code or "").strip() or None
    if grid_code is not None and not re.fullmatch(r"[0-9]{6,24}", grid_code):
        raise DensityError(f"grid must be a grid code of 6 to 24 digits, e.g. 410104003; got {grid_code!r}")
    chosen = _categories(categories)
    if not 5 <= bandwidth_m <= 5000:
        raise DensityError(f"bandwidth must be 5 to 5000 metres, got {bandwidth_m:g}")
    if not 0.5 <= cell_m <= bandwidth_m / 2:
        raise DensityError(f"cell must be 0.5 m to half the bandwidth ({bandwidth_m / 2:g} m), got {cell_m:g}")
    return DensityRequest(day=day, grid_code=grid_code, categories=chosen, bandwidth_m=bandwidth_m, cell_m=cell_m)


def density_raster(*, request: DensityRequest, directory: Path | None = None) -> DensityRaster:
    """The request's GeoTIFF under ``directory`` (default ``density_dir()``): the cached file when still current.

    Only days from the first incident's to today (or the last incident's, if later) have a
    density; any other day is a 400 that names the range. The folder keeps at most
    ``MAX_CACHED_RASTERS`` files, the least recently used going first.
    """
    check_day(request.day)
    inputs = _read_inputs(request)
    folder = directory or density_dir()
    path = folder / request.filename
    cached = _cached_raster(path, request=request, fingerprint=inputs.fingerprint)
    if cached is not None:
        _touch(path)
        return cached
    density, grid = _density(inputs, request)
    raster = _write_geotiff(path, density=density, grid=grid, inputs=inputs, request=request)
    _prune(folder, keep=MAX_CACHED_RASTERS)
    return raster


def day_range() -> tuple[date, date]:
    """The days a density can be asked for: the first incident's local day to today (or the last incident's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT min(reported_at), max(reported_at) FROM ogc_incidents")
        first, last = cursor.fetchone()
    now = today()
    first_day = first.astimezone(TZ).date() if first else now
    last_day = max(now, last.astimezone(TZ).date()) if last else now
    return min(first_day, now), last_day


def check_day(day: date) -> None:
    """A 400 DensityError unless ``day`` lies in :func:`day_range`."""
    first, last = day_range()
    if not first <= day <= last:
        raise DensityError(
            f"there is no density for {day.isoformat()}: days from {first.isoformat()} (the first incident) "
            f"to {last.isoformat()} can be asked for"
        )


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _prune(folder: Path, *, keep: int) -> None:
    """Remove the least recently used GeoTIFFs of ``folder`` beyond the newest ``keep``."""
    files = []
    for entry in folder.glob("incidents-*.tif"):
        try:
            files.append((entry.stat().st_mtime, entry))
        except OSError:
            continue  # removed by another process meanwhile
    files.sort(reverse=True)
    for _, entry in files[keep:]:
        entry.unlink(missing_ok=True)


def density_overlay(*, raster: DensityRaster) -> DensityOverlay:
    """The raster warped to EPSG:3857 and coloured (transparent at zero, yellow to red); remembered per digest."""
    key = (str(raster.path), raster.fingerprint)
    with _OVERLAYS_LOCK:
        overlay = _OVERLAYS.get(key)
        if overlay is not None:
            _OVERLAYS.move_to_end(key)
            return overlay
    overlay = _render_overlay(raster)
    with _OVERLAYS_LOCK:
        _OVERLAYS[key] = overlay
        while len(_OVERLAYS) > _OVERLAYS_KEPT:
            _OVERLAYS.popitem(last=False)
    return overlay


def density_days(
    *, grid_code: str | None = None, categories: Iterable[str] = (), limit: int = 366
) -> list[tuple[date, int]]:
    """The most recent local days with published incidents (newest first) and their counts, in one statement."""
    from django.db import connection

    with connection.cursor() as cursor:
        raw = cursor.connection
        _check_grid(cursor, grid_code)
        query = sql.SQL(
            "{scope} SELECT (v.reported_at AT TIME ZONE %(tz)s)::date AS day, count(*) "
            "FROM ogc_incidents v WHERE {where} GROUP BY 1 ORDER BY 1 DESC LIMIT %(limit)s"
        ).format(scope=_scope_cte(grid_code), where=_incident_filter(categories))
        cursor.execute(query.as_string(raw), {
            "tz": str(TZ), "limit": limit, "grid": grid_code, "categories": list(categories),
            "excluded": list(EXCLUDED_STATUSES),
        })
        return [(row[0], row[1]) for row in cursor.fetchall()]


def density_dir() -> Path:
    """Where the GeoTIFFs are kept: ``$ONEMAP_VAR_DIR/density``."""
    from core.settings import settings

    return settings().var_dir / "density"


def parse_day(value: str) -> date:
    """``YYYY-MM-DD`` as a date, or a 400 DensityError that shows the expected form."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise DensityError(f"date must be a calendar day written YYYY-MM-DD, e.g. 2026-11-20; got {value!r}") from None


def today() -> date:
    """The current local day in Asia/Shanghai."""
    return datetime.now(TZ).date()


@functools.cache
def published_categories() -> tuple[str, ...]:
    """The incident categories the incidents layer publishes (the only ones a density may be of)."""
    from layers.catalogue import layer

    column = next(c for c in layer("incidents").columns if c.name == "category")
    return tuple(column.choices)


# -- reading: one statement for the area and the day's points ---------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    points: np.ndarray  # (n, 2) float64 EPSG:4547 x (east), y (north)
    area_bounds: tuple[float, float, float, float]  # the area's box in EPSG:4547
    area_wkb: bytes  # the area grown by a bandwidth and a cell: outside it is nodata
    synthetic: bool
    fingerprint: str


def _read_inputs(request: DensityRequest) -> _Inputs:
    from django.db import connection

    start = datetime.combine(request.day, time.min, tzinfo=TZ)
    query = sql.SQL(
        "{scope}, "
        "area AS (SELECT ST_Transform(ST_Union(r.geom), {srid}) AS geom, bool_and(r.synthetic) AS synthetic "
        "FROM grids r WHERE r.id IN (SELECT id FROM roots)), "
        "pts AS (SELECT v.synthetic, ST_Transform(v.geom, {srid}) AS p FROM ogc_incidents v "
        "WHERE v.reported_at >= %(start)s AND v.reported_at < %(end)s AND {where}) "
        "SELECT ST_XMin(a.geom), ST_YMin(a.geom), ST_XMax(a.geom), ST_YMax(a.geom), "
        "ST_AsBinary(ST_Buffer(a.geom, %(margin)s)), a.synthetic, "
        "(SELECT string_agg(float8send(ST_X(p)) || float8send(ST_Y(p)), ''::bytea) FROM pts), "
        "(SELECT coalesce(bool_and(synthetic), true) FROM pts) "
        "FROM area a"
    ).format(
        scope=_scope_cte(request.grid_code),
        srid=sql.Literal(CRS_EPSG),
        where=_incident_filter(request.categories),
    )
    params = {
        "grid": request.grid_code,
        "categories": list(request.categories),
        "excluded": list(EXCLUDED_STATUSES),
        "start": start,
        "end": start + timedelta(days=1),
        "margin": request.bandwidth_m + request.cell_m,
    }
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(cursor.connection), params)
        row = cursor.fetchone()
    xmin, ymin, xmax, ymax, area_wkb, area_synthetic, point_bytes, points_synthetic = row
    if xmin is None:
        if request.grid_code:
            raise DensityError(
                f"no grid with code {request.grid_code!r}; see /ogc/collections/grids/items for the codes",
                status=404,
            )
        raise DensityError("there is no level-1 grid to compute a density over: load the grids first", status=404)
    area_wkb = bytes(area_wkb)
    points = np.frombuffer(bytes(point_bytes or b""), dtype=">f8").astype(np.float64).reshape(-1, 2)
    synthetic = bool(area_synthetic) and bool(points_synthetic)
    digest = hashlib.blake2b(digest_size=16)
    for part in (_FORMAT, request.stem, KERNEL, repr(request.bandwidth_m), repr(request.cell_m), str(synthetic)):
        digest.update(part.encode() + b"\0")
    digest.update(area_wkb)
    # the rows come in no particular order (an ORDER BY would cost a sort of every row): sort for the digest
    digest.update(np.sort(points[:, 0] + 1j * points[:, 1]).tobytes())  # complex numbers sort by x, then y
    return _Inputs(
        points=points,
        area_bounds=(xmin, ymin, xmax, ymax),
        area_wkb=area_wkb,
        synthetic=synthetic,
        fingerprint=digest.hexdigest(),
    )


def _scope_cte(grid_code: str | None) -> sql.Composable:
    """``WITH RECURSIVE roots, scope``: the area's top grids and every grid below them (incidents are in level 3)."""
    roots = sql.SQL("g.code = %(grid)s") if grid_code else sql.SQL("g.level = 1")
    return sql.SQL(
        "WITH RECURSIVE roots AS (SELECT g.id FROM grids g WHERE {roots}), "
        "scope(id, code) AS (SELECT g.id, g.code FROM grids g WHERE g.id IN (SELECT id FROM roots) "
        "UNION ALL SELECT g.id, g.code FROM grids g JOIN scope s ON g.parent_id = s.id)"
    ).format(roots=roots)


def _incident_filter(categories: Iterable[str]) -> sql.Composable:
    """Incidents routed to a grid of the scope (the grid routing of the incident service), of the chosen categories,
    false alarms left out."""
    where = sql.SQL("v.grid_code IN (SELECT code FROM scope) AND v.status <> ALL(%(excluded)s)")
    if tuple(categories):
        where += sql.SQL(" AND v.category = ANY(%(categories)s)")
    return where


def _check_grid(cursor, grid_code: str | None) -> None:
    if grid_code is None:
        return
    cursor.execute("SELECT 1 FROM grids WHERE code = %s", [grid_code])
    if cursor.fetchone() is None:
        raise DensityError(
            f"no grid with code {grid_code!r}; see /ogc/collections/grids/items for the codes", status=404
        )


def _categories(value: str | Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    chosen = sorted({item.strip() for item in items if item and item.strip()})
    known = published_categories()
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise DensityError(
            f"unknown or unpublished incident categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(map(repr, unknown))}; choose among {', '.join(known)} (comma-separated)"
        )
    return tuple(chosen)


# -- computing: bin, then convolve with the kernel ---------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """The raster's cells: origin at the top-left corner, rows running south."""

    west: float
    north: float
    cell: float
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.west, self.north - self.height * self.cell, self.west + self.width * self.cell, self.north)

    def transform(self):
        from rasterio.transform import from_origin

        return from_origin(self.west, self.north, self.cell, self.cell)


def _density(inputs: _Inputs, request: DensityRequest) -> tuple[np.ndarray, _Grid]:
    """Density in incidents per km² on the area's box grown by a bandwidth; nodata outside the grown area."""
    grid = _raster_grid(inputs.area_bounds, request)
    kernel = quartic_kernel(bandwidth_m=request.bandwidth_m, cell_m=request.cell_m)
    counts = _bin(inputs.points, grid)
    density = _convolve(counts, kernel) if counts.any() else np.zeros_like(counts)
    density[~_area_mask(inputs.area_wkb, grid)] = NODATA
    return density.astype(np.float32), grid


def _raster_grid(bounds: tuple[float, float, float, float], request: DensityRequest) -> _Grid:
    # the margin keeps the kernel mass of every point inside the area on the raster; the
    # origin snaps to whole cells so that rasters of one area line up day after day
    cell, margin = request.cell_m, request.bandwidth_m + request.cell_m
    west = math.floor((bounds[0] - margin) / cell) * cell
    south = math.floor((bounds[1] - margin) / cell) * cell
    east = math.ceil((bounds[2] + margin) / cell) * cell
    north = math.ceil((bounds[3] + margin) / cell) * cell
    width, height = round((east - west) / cell), round((north - south) / cell)
    if width * height > MAX_CELLS:
        raise DensityError(
            f"the area needs {width} × {height} cells of {cell:g} m, more than {MAX_CELLS:,}: "
            "choose a grid (?grid=CODE) or a larger cell"
        )
    return _Grid(west=west, north=north, cell=cell, width=width, height=height)


def quartic_kernel(*, bandwidth_m: float, cell_m: float) -> np.ndarray:
    """The quartic kernel (1 − d²/h²)² at cell centres, scaled so that its sum × the cell area in km² is 1."""
    radius = math.ceil(bandwidth_m / cell_m)
    offsets = np.arange(-radius, radius + 1) * cell_m
    d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    weights = np.where(d2 < bandwidth_m**2, (1.0 - d2 / bandwidth_m**2) ** 2, 0.0)
    # normalised on the sampled cells, not analytically (3/πh²), so the density integrates
    # to the point count exactly whatever the cell size
    cell_km2 = (cell_m / 1000.0) ** 2
    return weights / (weights.sum() * cell_km2)


def _bin(points: np.ndarray, grid: _Grid) -> np.ndarray:
    """Points counted per cell (float64); points off the raster are left out."""
    counts = np.zeros(grid.height * grid.width, dtype=np.float64)
    if len(points):
        cols = np.floor((points[:, 0] - grid.west) / grid.cell).astype(np.int64)
        rows = np.floor((grid.north - points[:, 1]) / grid.cell).astype(np.int64)
        inside = (cols >= 0) & (cols < grid.width) & (rows >= 0) & (rows < grid.height)
        flat = rows[inside] * grid.width + cols[inside]
        counts += np.bincount(flat, minlength=counts.size)
    return counts.reshape(grid.height, grid.width)


def _convolve(counts: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``counts`` convolved with the (odd, symmetric) kernel, same shape, by real FFT."""
    radius = kernel.shape[0] // 2
    shape = (_fft_length(counts.shape[0] + 2 * radius), _fft_length(counts.shape[1] + 2 * radius))
    spectrum = np.fft.rfft2(counts, shape) * np.fft.rfft2(kernel, shape)
    full = np.fft.irfft2(spectrum, shape)
    out = full[radius : radius + counts.shape[0], radius : radius + counts.shape[1]].copy()
    # FFT round-off leaves ±1e-16-relative noise where no kernel reaches: zero means no incident near
    out[out < kernel.max() * 1e-7] = 0.0
    return out


def _fft_length(n: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ n (pocketfft is fastest on such lengths)."""
    best = 1 << max(0, (n - 1).bit_length())
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            candidate = power35
            while candidate < n:
                candidate *= 2
            best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def _area_mask(area_wkb: bytes, grid: _Grid) -> np.ndarray:
    """True for cells whose centre lies in the grown area."""
    import shapely
    from rasterio.features import geometry_mask

    shape = shapely.from_wkb(area_wkb)
    if shape.is_empty:
        return np.zeros((grid.height, grid.width), dtype=bool)
    return geometry_mask([shape], out_shape=(grid.height, grid.width), transform=grid.transform(), invert=True)


# -- the GeoTIFF and its cache ---------------------------------------------------------------------------


def _cached_raster(path: Path, *, request: DensityRequest, fingerprint: str) -> DensityRaster | None:
    import rasterio
    from rasterio.errors import RasterioIOError

    if not path.exists():
        return None
    try:
        with rasterio.open(path) as src:
            tags = src.tags()
            if tags.get("FINGERPRINT") != fingerprint:
                return None
            return DensityRaster(
                request=request, path=path, count=int(tags["COUNT"]), max_density=float(tags["MAX_DENSITY"]),
                width=src.width, height=src.height, bounds=tuple(src.bounds), synthetic=tags.get("SYNTHETIC") == "true",
                fingerprint=fingerprint, computed=False,
            )
    except (RasterioIOError, KeyError, ValueError):  # half-written by a crashed run, or an older layout
        return None


def _write_geotiff(
    path: Path, *, density: np.ndarray, grid: _Grid, inputs: _Inputs, request: DensityRequest
) -> DensityRaster:
    """Write a tiled DEFLATE float32 GeoTIFF atomically (readers see the old file or the new one, never half)."""
    import rasterio

    valid = density[density != NODATA]
    peak = float(valid.max()) if valid.size else 0.0
    count = int(len(inputs.points))
    tags = {
        "DAY": request.day.isoformat(),
        "TIMEZONE": str(TZ),
        "GRID": request.grid_code or "level-1",
        "CATEGORIES": ",".join(request.categories) or "all published",
        "EXCLUDED_STATUSES": ",".join(EXCLUDED_STATUSES),
        "KERNEL": KERNEL,
        "BANDWIDTH_M": f"{request.bandwidth_m:g}",
        "CELL_M": f"{request.cell_m:g}",
        "UNITS": UNITS,
        "COUNT": str(count),
        "MAX_DENSITY": repr(peak),
        "SYNTHETIC": "true" if inputs.synthetic else "false",
        "FINGERPRINT": inputs.fingerprint,
        "CREATED": datetime.now(TZ).isoformat(timespec="seconds"),
    }
    description = _description(request, count=count, synthetic=inputs.synthetic)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tif")
    profile = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "float32",
        "crs": f"EPSG:{CRS_EPSG}", "transform": grid.transform(), "nodata": NODATA,
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3,
    }
    try:
        with rasterio.open(temporary, "w", **profile) as dst:
            dst.write(density, 1)
            dst.update_tags(TIFFTAG_IMAGEDESCRIPTION=description, **tags)
            dst.set_band_description(1, f"incident density ({UNITS})")
            dst.set_band_unit(1, "1/km2")
            dst.update_tags(1, STATISTICS_MINIMUM="0", STATISTICS_MAXIMUM=repr(peak))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return DensityRaster(
        request=request, path=path, count=count, max_density=peak, width=grid.width, height=grid.height,
        bounds=grid.bounds, synthetic=inputs.synthetic, fingerprint=inputs.fingerprint, computed=True,
    )


def _description(request: DensityRequest, *, count: int, synthetic: bool) -> str:
    where = f"grid {request.grid_code}" if request.grid_code else "the level-1 grid"
    what = ", ".join(request.categories) or "all published categories"
    made_up = " Synthetic demo data: no real incidents." if synthetic else ""
    return (
        f"Incident kernel density, {request.day.isoformat()} ({TZ}), {where}, {what}: "
        f"{count} incidents (false alarms left out), {KERNEL} kernel, bandwidth {request.bandwidth_m:g} m, cell {request.cell_m:g} m, "
        f"{UNITS}, EPSG:{CRS_EPSG}. Community One Map.{made_up}"
    )


# -- the web overlay ---------------------------------------------------------------------------------------

_OVERLAYS: OrderedDict[tuple[str, str], DensityOverlay] = OrderedDict()
_OVERLAYS_LOCK = threading.Lock()
_OVERLAYS_KEPT = 16

# colour stops over density / peak: transparent at zero, yellow, orange, red at the peak
_RAMP_AT = np.array([0.0, 0.08, 0.4, 1.0])
_RAMP_RGBA = np.array([
    [255, 255, 0, 0],
    [255, 235, 0, 130],
    [255, 140, 0, 190],
    [215, 20, 0, 235],
], dtype=np.float64)


def _render_overlay(raster: DensityRaster) -> DensityOverlay:
    import cv2
    import rasterio
    from rasterio.warp import (
        Resampling,
        calculate_default_transform,
        reproject,
        transform_bounds,
    )

    with rasterio.open(raster.path) as src:
        scale = max(1.0, max(src.width, src.height) / MAX_OVERLAY_PX)
        transform, width, height = calculate_default_transform(
            src.crs, f"EPSG:{WEB_EPSG}", src.width, src.height, *src.bounds,
            dst_width=max(1, round(src.width / scale)), dst_height=max(1, round(src.height / scale)),
        )
        warped = np.full((height, width), NODATA, dtype=np.float32)
        reproject(
            source=rasterio.band(src, 1), destination=warped, dst_transform=transform, dst_crs=f"EPSG:{WEB_EPSG}",
            src_nodata=NODATA, dst_nodata=NODATA, resampling=Resampling.bilinear,
        )
    rgba = colourise(warped, peak=raster.max_density)
    ok, png = cv2.imencode(".png", rgba[:, :, [2, 1, 0, 3]])  # OpenCV writes BGRA
    if not ok:
        raise RuntimeError(f"could not encode the density overlay of {raster.path} as PNG")
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * width, top + transform.e * height
    bbox = transform_bounds(f"EPSG:{WEB_EPSG}", "EPSG:4326", left, bottom, right, top)
    return DensityOverlay(
        png=png.tobytes(), width=width, height=height, bbox=tuple(bbox), fingerprint=raster.fingerprint
    )


def colourise(density: np.ndarray, *, peak: float) -> np.ndarray:
    """RGBA uint8: transparent at zero and nodata, yellow through orange to red at ``peak``."""
    rgba = np.zeros(density.shape + (4,), dtype=np.uint8)
    positive = density > 0
    if peak <= 0 or not positive.any():
        return rgba
    t = np.clip(density[positive] / peak, 0.0, 1.0)
    for channel in range(4):
        rgba[..., channel][positive] = np.round(np.interp(t, _RAMP_AT, _RAMP_RGBA[:, channel])).astype(np.uint8)
    return rgba
