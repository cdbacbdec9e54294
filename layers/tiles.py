"""OGC API – Tiles: Mapbox vector tiles (WebMercatorQuad, WorldCRS84Quad) built in PostGIS, and a cache a write invalidates.

A tile is one SQL statement over the layer's published view ``ogc_<id>`` (never the
base table, so row-level security on the caller's transaction applies), run on the
connection the caller hands in. The same statement reads the layer's data version
from ``layer_versions``, which statement-level triggers bump on every write to a
table the view reads; a cached tile is served only while its version is current.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from core.vocabulary import OPEN_STATUSES
from layers.catalogue import layer as catalogue_layer

TILE_MATRIX_SET = "WebMercatorQuad"
TILE_MATRIX_SET_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
CRS_URI = "http://www.opengis.net/def/crs/EPSG/0/3857"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
TILEJSON_VERSION = "3.0.0"
MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
MAX_TILE_MATRIX = 24  # the deepest tile matrix of the registered WebMercatorQuad
EXTENT = 4096  # MVT coordinate units per tile side
BUFFER = 64  # units drawn beyond each tile edge, so strokes and symbols meet across tiles
MAX_AGE_S = 30  # browsers may reuse a tile this long, then revalidate with its ETag
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/tms/2.0/conf/tilematrixset",
    "http://www.opengis.net/spec/tms/2.0/conf/json-tilematrixset",
)

# Web Mercator's square world: half its side in metres, and the tile size the scales refer to.
_HALF_WORLD_M = 20037508.342789244
_TILE_PX = 256
_PIXEL_M = 0.00028  # the standardized rendering pixel of OGC scale denominators
_VERSION_TRIGGER = "layer_versions_bump"


@dataclass(frozen=True)
class TileMatrixSet:
    """One offered tile matrix set (OGC 2D TMS 2.0): matrix ``z`` has ``width0 · 2^z`` × ``height0 · 2^z`` tiles."""

    id: str
    title: str
    uri: str
    crs: str
    srid: int
    ordered_axes: tuple[str, str]
    well_known_scale_set: str
    origin: tuple[float, float]  # top-left corner, easting/longitude first
    span0: float  # a tile's side at matrix 0, in CRS units
    width0: int
    height0: int
    max_matrix: int
    # this set's matrix whose tiles are as wide (in longitude) as WebMercatorQuad's tiles at zoom z: z + zoom_offset
    zoom_offset: int
    metres_per_unit: float

    def matrix_size(self, z: int) -> tuple[int, int]:
        return self.width0 << z, self.height0 << z

    def cell_size(self, z: int) -> float:
        return self.span0 / _TILE_PX / (1 << z)

    def zoom_range(self, spec: "TileLayerSpec") -> tuple[int, int]:
        """The matrices of this set that hold ``spec``'s tiles (its WebMercatorQuad zoom range, shifted)."""
        return (max(0, spec.min_zoom + self.zoom_offset), min(self.max_matrix, spec.max_zoom + self.zoom_offset))

    def bounds(self, z: int, x: int, y: int) -> tuple[float, float, float, float]:
        """The tile's (west, south, east, north) in the set's CRS."""
        side = self.span0 / (1 << z)
        west, north = self.origin[0] + x * side, self.origin[1] - y * side
        return west, north - side, west + side, north

    def lower_left(self) -> list[float]:
        width, height = self.matrix_size(0)
        return [self.origin[0], self.origin[1] - height * self.span0]

    def upper_right(self) -> list[float]:
        width, height = self.matrix_size(0)
        return [self.origin[0] + width * self.span0, self.origin[1]]


WEB_MERCATOR_QUAD = TileMatrixSet(
    id=TILE_MATRIX_SET, title="Google Maps Compatible for the World", uri=TILE_MATRIX_SET_URI, crs=CRS_URI, srid=3857,
    ordered_axes=("E", "N"), well_known_scale_set="http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
    origin=(-_HALF_WORLD_M, _HALF_WORLD_M), span0=2 * _HALF_WORLD_M, width0=1, height0=1, max_matrix=MAX_TILE_MATRIX,
    zoom_offset=0, metres_per_unit=1.0,
)
# lon/lat tiles, two at matrix 0: GDAL's OGCAPI driver (3.6) prefers this set for vector tiles and reads
# the collection's CRS84 bbox as coordinates of the set's CRS, which only a CRS84 set makes true
WORLD_CRS84_QUAD = TileMatrixSet(
    id="WorldCRS84Quad", title="CRS84 for the World", uri="http://www.opengis.net/def/tilematrixset/OGC/1.0/WorldCRS84Quad",
    crs=CRS84_URI, srid=4326, ordered_axes=("Lon", "Lat"),
    well_known_scale_set="http://www.opengis.net/def/wkss/OGC/1.0/GoogleCRS84Quad",
    origin=(-180.0, 90.0), span0=180.0, width0=2, height0=1, max_matrix=MAX_TILE_MATRIX - 1,
    zoom_offset=-1, metres_per_unit=6378137 * math.pi / 180,
)
TILE_MATRIX_SETS = {tms.id: tms for tms in (WEB_MERCATOR_QUAD, WORLD_CRS84_QUAD)}


def find_tile_matrix_set(tms_id: str, *, status: int = 400) -> TileMatrixSet:
    """The offered tile matrix set ``tms_id``, or a TileError naming the offered ones."""
    try:
        return TILE_MATRIX_SETS[tms_id]
    except (KeyError, TypeError):
        raise TileError(f"tile matrix set {tms_id!r} is not offered; use {' or '.join(map(repr, TILE_MATRIX_SETS))}",
                        status=status) from None


@dataclass(frozen=True)
class TileLayerSpec:
    """What one layer puts into its tiles: the zoom range and the published properties (view columns)."""

    id: str
    min_zoom: int
    max_zoom: int
    properties: tuple[str, ...]
    # why the layer starts where it does (shown in the docs and the tileset description)
    note: str = ""
    # below ``detail_zoom`` only rows whose ``overview_column`` is one of ``overview_values``
    detail_zoom: int | None = None
    overview_column: str = ""
    overview_values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        columns = {c.name: c for c in catalogue_layer(self.id).columns}
        unknown = [p for p in self.properties if p not in columns]
        if unknown:
            raise ValueError(f"tile layer {self.id!r}: {unknown} are not columns of its view; known: {sorted(columns)}")
        # one tile serves every reader of the layer, so no property may be kept from some of them
        restricted = [p for p in self.properties if getattr(columns[p], "roles", None) is not None]
        if restricted:
            raise ValueError(f"tile layer {self.id!r}: {restricted} are shown only to some roles; leave them out")
        if not 0 <= self.min_zoom <= self.max_zoom <= MAX_TILE_MATRIX:
            raise ValueError(f"tile layer {self.id!r}: zoom range must lie in 0..{MAX_TILE_MATRIX}")
        if self.detail_zoom is not None and (self.overview_column not in columns or not self.overview_values):
            raise ValueError(f"tile layer {self.id!r}: an overview needs a view column and the values to keep")

    @property
    def view(self) -> str:
        return catalogue_layer(self.id).view

    def property_types(self) -> dict[str, str]:
        """Each property's schema type, as the catalogue declares it."""
        columns = {c.name: c for c in catalogue_layer(self.id).columns}
        return {name: columns[name].type for name in self.properties}


TILE_LAYERS: dict[str, TileLayerSpec] = {
    spec.id: spec
    for spec in (
        TileLayerSpec(
            "grids", 8, 22, ("code", "level", "name"),
            "all levels from z8 (a whole city's grids are under 200 kB there); the demo street fits one z13 tile",
        ),
        TileLayerSpec(
            "buildings", 14, 22, ("code", "floors", "height_m", "grid_code"),
            "from z14, where a footprint is at least a pixel or two wide",
        ),
        TileLayerSpec(
            "incidents", 12, 22, ("code", "category", "status", "severity", "reported_at"),
            "from z12; below z16 only open incidents (new, dispatched, in progress), the ones a command "
            "centre acts on: a city's closed history would make a z12 tile megabytes and seconds",
            detail_zoom=16,
            overview_column="status",
            overview_values=OPEN_STATUSES,
        ),
        TileLayerSpec(
            "parking_spots", 16, 22, ("code", "kind", "occupancy"),
            "from z16, where a 2.5 m spot is about one pixel wide",
        ),
    )
}


class TileError(ValueError):
    """A tile request that cannot be answered; ``status`` is the HTTP status (400 or 404)."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Tile:
    layer: str
    z: int
    x: int
    y: int
    data: bytes  # b"" for a tile with no features (answer 204)
    version: int  # the layer's data version the tile was rendered from
    etag: str  # strong, quoted; a hash of the bytes, so equal tiles revalidate across versions


def tile_render(
    conn: psycopg.Connection, *, layer_id: str, z: int, x: int, y: int, tile_matrix_set: str = TILE_MATRIX_SET
) -> Tile:
    """Render one tile in the caller's transaction: MVT bytes and the layer version from one snapshot."""
    spec = tile_layer(layer_id)
    z, x, y = check_tile(spec, z=z, x=x, y=y, tile_matrix_set=tile_matrix_set)
    with conn.cursor() as cursor:
        cursor.execute(tile_query(spec, z=z, tile_matrix_set=tile_matrix_set),
                       tile_parameters(spec, z=z, x=x, y=y, tile_matrix_set=tile_matrix_set))
        data, version = cursor.fetchone()
    if version is None:
        raise RuntimeError(f"layer_versions has no row for {spec.id!r}: run `onemap migrate` to create it")
    data = bytes(data or b"")
    return Tile(layer=spec.id, z=z, x=x, y=y, data=data, version=version, etag=_etag(data))


def tile_cached(
    conn: psycopg.Connection,
    cache: TileCache,
    *,
    scope_key: str,
    layer_id: str,
    z: int,
    x: int,
    y: int,
    tile_matrix_set: str = TILE_MATRIX_SET,
) -> Tile:
    """The tile from ``cache`` when its version is still the layer's current one, else rendered and stored.

    ``scope_key`` names what the caller may see (e.g. ``"public"`` or ``"grid:<code>"``):
    tiles rendered under one row-level-security scope are never served to another.
    """
    spec = tile_layer(layer_id)
    z, x, y = check_tile(spec, z=z, x=x, y=y, tile_matrix_set=tile_matrix_set)
    key = (scope_key, spec.id, tile_matrix_set, z, x, y)
    cached = cache.get(key)
    if cached is not None and cached.version == layer_version(conn, layer_id=spec.id):
        cache.stats.hits += 1
        return cached
    cache.stats.misses += 1
    tile = tile_render(conn, layer_id=spec.id, z=z, x=x, y=y, tile_matrix_set=tile_matrix_set)
    cache.put(key, tile)
    return tile


def layer_version(conn: psycopg.Connection, *, layer_id: str) -> int:
    """The layer's current data version as the caller's transaction sees it (one primary-key read)."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT version FROM layer_versions WHERE layer = %s", [layer_id])
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError(f"layer_versions has no row for {layer_id!r}: run `onemap migrate` to create it")
    return row[0]


def tile_layer(layer_id: str) -> TileLayerSpec:
    """The tiled layer ``layer_id``, or a 404 TileError naming the tiled layers."""
    try:
        return TILE_LAYERS[layer_id]
    except (KeyError, TypeError):
        raise TileError(
            f"no vector tiles for collection {layer_id!r}; tiled collections: {', '.join(TILE_LAYERS)}", status=404
        ) from None


def check_tile(
    spec: TileLayerSpec, *, z: int | str, x: int | str, y: int | str, tile_matrix_set: str = TILE_MATRIX_SET
) -> tuple[int, int, int]:
    """(z, x, y) as integers, or a 400 TileError saying which value is out of which range."""
    tms = find_tile_matrix_set(tile_matrix_set)
    z = _tile_index("tileMatrix (zoom)", z)
    low, high = tms.zoom_range(spec)
    if not low <= z <= high:
        raise TileError(f"tileMatrix (zoom) {z} is outside the range of {spec.id!r} tiles in {tms.id}: {low}..{high}")
    width, height = tms.matrix_size(z)
    x = _tile_index("tileCol (x)", x)
    y = _tile_index("tileRow (y)", y)
    for name, value, last in (("tileCol (x)", x, width - 1), ("tileRow (y)", y, height - 1)):
        if value > last:
            raise TileError(f"{name} {value} is outside 0..{last}, the valid range at tileMatrix {z} of {tms.id}")
    return z, x, y


def _tile_index(name: str, value: int | str) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TileError(f"{name} must be a whole number ≥ 0, got {value!r}")
    return value


def _etag(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def tile_parameters(
    spec: TileLayerSpec, *, z: int, x: int, y: int, tile_matrix_set: str = TILE_MATRIX_SET
) -> dict:
    """The values :func:`tile_query` is run with."""
    if tile_matrix_set == TILE_MATRIX_SET:
        return {"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer": spec.id}
    west, south, east, north = TILE_MATRIX_SETS[tile_matrix_set].bounds(z, x, y)
    return {"west": west, "south": south, "east": east, "north": north, "pad": (east - west) * BUFFER / EXTENT,
            "layer": spec.id}


def tile_query(spec: TileLayerSpec, *, z: int, tile_matrix_set: str = TILE_MATRIX_SET) -> sql.Composed:
    """The one statement behind a tile at zoom ``z``: ``(mvt bytea, version bigint)`` for ``%(z)s/%(x)s/%(y)s``."""
    if tile_matrix_set != TILE_MATRIX_SET:
        return _lonlat_tile_query(spec, z=z, tms=TILE_MATRIX_SETS[tile_matrix_set])
    # The filter box is the tile plus its buffer in EPSG:4326, a constant for the
    # planner, so ``geom &&`` is answered by the view's GiST index; a Web Mercator
    # rectangle stays an exact lon/lat rectangle, so nothing inside is missed.
    # ST_AsMVT skips rows whose clipped geometry is NULL; filtering them here would
    # make the planner compute ST_AsMVTGeom twice.
    return sql.SQL(
        "SELECT (SELECT ST_AsMVT(f, {name}, {extent}, 'geom', 'id') FROM ("
        "SELECT v.id, {properties}, "
        "ST_AsMVTGeom(ST_Transform(v.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), "
        "{extent}, {buffer}, true) AS geom "
        "FROM {view} v "
        "WHERE v.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326){overview}"
        ") f), "
        "(SELECT lv.version FROM layer_versions lv WHERE lv.layer = %(layer)s)"
    ).format(
        name=sql.Literal(spec.id),
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        properties=sql.SQL(", ").join(_property(name, kind) for name, kind in spec.property_types().items()),
        view=sql.Identifier(spec.view),
        overview=_overview_filter(spec, z),
    )


def _lonlat_tile_query(spec: TileLayerSpec, *, z: int, tms: TileMatrixSet) -> sql.Composed:
    """:func:`tile_query` for a lon/lat set (WorldCRS84Quad): the tile is a lon/lat box, so no transform at all."""
    return sql.SQL(
        "SELECT (SELECT ST_AsMVT(f, {name}, {extent}, 'geom', 'id') FROM ("
        "SELECT v.id, {properties}, "
        "ST_AsMVTGeom(v.geom, ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, {srid}), "
        "{extent}, {buffer}, true) AS geom "
        "FROM {view} v "
        "WHERE v.geom && ST_Expand(ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, {srid}), %(pad)s)"
        "{overview}) f), "
        "(SELECT lv.version FROM layer_versions lv WHERE lv.layer = %(layer)s)"
    ).format(
        name=sql.Literal(spec.id),
        extent=sql.Literal(EXTENT),
        buffer=sql.Literal(BUFFER),
        srid=sql.Literal(tms.srid),
        properties=sql.SQL(", ").join(_property(name, kind) for name, kind in spec.property_types().items()),
        view=sql.Identifier(spec.view),
        overview=_overview_filter(spec, z - tms.zoom_offset),
    )


def _overview_filter(spec: TileLayerSpec, z: int) -> sql.Composable:
    if spec.detail_zoom is None or z >= spec.detail_zoom:
        return sql.SQL("")
    # the values are code, written into the statement so that a partial index
    # ``WHERE <column> IN (<values>)`` can serve every plan, generic ones too
    return sql.SQL(" AND v.{} IN ({})").format(
        sql.Identifier(spec.overview_column), sql.SQL(", ").join(map(sql.Literal, spec.overview_values))
    )


def _property(name: str, kind: str) -> sql.Composable:
    column = sql.Identifier("v", name)
    if kind == "date-time":  # MVT has no time type: ISO 8601 in UTC, to the second
        return sql.SQL("""to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS {}""").format(
            column, sql.Identifier(name)
        )
    return column


# --- the cache ----------------------------------------------------------------------------------------

_ENTRY_OVERHEAD = 256  # bytes counted per entry beyond the tile itself (key, Tile object, list links)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


@dataclass
class TileCache:
    """An in-process LRU of tiles bounded by their total size in bytes; safe to share between threads."""

    max_bytes: int = 64 * 1024 * 1024
    stats: CacheStats = field(default_factory=CacheStats)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        self._entries: OrderedDict[tuple, Tile] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Tile | None:
        """The tile stored under ``key`` (any version), now the most recently used; None if absent."""
        with self._lock:
            tile = self._entries.get(key)
            if tile is not None:
                self._entries.move_to_end(key)
            return tile

    def put(self, key: tuple, tile: Tile) -> None:
        """Store ``tile`` under ``key``, evicting the least recently used tiles beyond ``max_bytes``."""
        size = _entry_size(tile)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= _entry_size(old)
            if size > self.max_bytes:  # would evict everything and still not fit
                return
            self._entries[key] = tile
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _entry_size(evicted)
                self.stats.evictions += 1

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def _entry_size(tile: Tile) -> int:
    return len(tile.data) + _ENTRY_OVERHEAD


# --- data versions ------------------------------------------------------------------------------------


def sync_layer_versions(*, using: str = "default") -> None:
    """Create ``layer_versions`` and the triggers that bump it on writes to every table a tiled view reads.

    Idempotent; run after the views are (re)built. Versions come from a sequence, so a
    number used by a rolled-back write is never current later, while the table row
    makes the current number transactional (same snapshot as the data).
    """
    from django.db import connections, transaction

    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        raw = cursor.connection

        def run(query: sql.Composable, params=None):
            cursor.execute(query.as_string(raw), params)

        run(sql.SQL(
            "CREATE TABLE IF NOT EXISTS layer_versions ("
            "layer text PRIMARY KEY, version bigint NOT NULL, changed_at timestamptz NOT NULL DEFAULT now())"
        ))
        run(sql.SQL("CREATE SEQUENCE IF NOT EXISTS layer_version_seq"))
        run(
            sql.SQL(
                "INSERT INTO layer_versions (layer, version) SELECT l, nextval('layer_version_seq') "
                "FROM unnest(%s::text[]) AS l ON CONFLICT (layer) DO NOTHING"
            ),
            [list(TILE_LAYERS)],
        )
        # SECURITY DEFINER: a writer restricted by row-level security still bumps the
        # versions; rows are locked in name order so two bumping writers queue, not deadlock.
        run(sql.SQL(
            "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql "
            "SECURITY DEFINER SET search_path FROM CURRENT AS $body$\n"
            "BEGIN\n"
            "  UPDATE layer_versions SET version = nextval('layer_version_seq'), changed_at = now()\n"
            "  WHERE layer IN (SELECT lv.layer FROM layer_versions lv WHERE lv.layer = ANY (TG_ARGV)\n"
            "                  ORDER BY lv.layer FOR UPDATE);\n"
            "  RETURN NULL;\n"
            "END\n$body$"
        ).format(fn=sql.Identifier(_VERSION_TRIGGER)))
        cursor.execute(_TABLES_READ_SQL, [list(TILE_LAYERS), [spec.view for spec in TILE_LAYERS.values()]])
        tables = {(schema, table): layers for schema, table, layers in cursor.fetchall()}
        missing = set(TILE_LAYERS) - {layer for layers in tables.values() for layer in layers}
        if missing:
            raise RuntimeError(f"no views found for tiled layers {sorted(missing)}: run sync_views (migrate) first")
        for (schema, table), layers in sorted(tables.items()):
            run(sql.SQL(
                "CREATE OR REPLACE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {fn}({layers})"
            ).format(
                trigger=sql.Identifier(_VERSION_TRIGGER),
                table=sql.Identifier(schema, table),
                fn=sql.Identifier(_VERSION_TRIGGER),
                layers=sql.SQL(", ").join(sql.Literal(layer) for layer in layers),
            ))
        # a table no tiled view reads any more keeps no trigger
        cursor.execute(
            "SELECT n.nspname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = %s AND NOT t.tgisinternal",
            [_VERSION_TRIGGER],
        )
        for schema, table in cursor.fetchall():
            if (schema, table) not in tables:
                run(sql.SQL("DROP TRIGGER {} ON {}").format(
                    sql.Identifier(_VERSION_TRIGGER), sql.Identifier(schema, table)
                ))


# The tables each layer's view reads, through views of views, as PostgreSQL records
# them (the rewrite rule's dependencies), so joined tables are never forgotten.
_TABLES_READ_SQL = """
WITH RECURSIVE reads(layer, rel) AS (
    SELECT l.layer, to_regclass(l.view)::oid
    FROM unnest(%s::text[], %s::text[]) AS l(layer, view)
    WHERE to_regclass(l.view) IS NOT NULL
  UNION
    SELECT reads.layer, d.refobjid
    FROM reads
    JOIN pg_rewrite r ON r.ev_class = reads.rel
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
)
SELECT n.nspname, c.relname, array_agg(DISTINCT reads.layer ORDER BY reads.layer)
FROM reads JOIN pg_class c ON c.oid = reads.rel JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
GROUP BY n.nspname, c.relname
"""


# --- HTTP ---------------------------------------------------------------------------------------------


def tile_http_headers(tile: Tile, *, shared: bool = False) -> dict[str, str]:
    """Response headers for a tile; ``shared=True`` lets proxies keep it (only for tiles anyone may see)."""
    visibility = "public" if shared else "private"
    return {
        "Content-Type": MVT_MEDIA_TYPE,
        "ETag": tile.etag,
        "Cache-Control": f"{visibility}, max-age={MAX_AGE_S}, must-revalidate",
    }


def etag_matches(tile: Tile, if_none_match: str | None) -> bool:
    """True when an ``If-None-Match`` header names the tile's ETag (answer 304)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or tile.etag in tags


# --- metadata documents (OGC API – Tiles, OGC 2D Tile Matrix Set 2.0) ---------------------------------


def tilematrixsets_document(base_url: str) -> dict:
    """``/tileMatrixSets``: the tile matrix sets offered."""
    base = base_url.rstrip("/")
    return {
        "tileMatrixSets": [
            {
                "id": tms.id,
                "title": tms.title,
                "uri": tms.uri,
                "links": [{"rel": "self", "type": "application/json", "href": f"{base}/tileMatrixSets/{tms.id}"}],
            }
            for tms in TILE_MATRIX_SETS.values()
        ],
        "links": [{"rel": "self", "type": "application/json", "href": f"{base}/tileMatrixSets"}],
    }


def tilematrixset_document(base_url: str, tile_matrix_set: str = TILE_MATRIX_SET) -> dict:
    """``/tileMatrixSets/{id}``: the tile matrix set, every matrix computed from its definition.

    The document is OGC 2D Tile Matrix Set 2.0 (``id``, ``crs``, ``tileMatrices``) and carries
    the same matrices again under the TMS 1.0 keys (OGC 17-083r2: ``type``, ``identifier``,
    ``supportedCRS``, ``tileMatrix``): GDAL before 3.7 (Debian 12 ships 3.6) reads only those
    and refuses the set otherwise ("Invalid tiling matrix set name"); 2.0 readers ignore them.
    """
    tms = find_tile_matrix_set(tile_matrix_set, status=404)
    base = base_url.rstrip("/")
    matrices, matrices_v1 = [], []
    for z in range(tms.max_matrix + 1):
        cell_size = tms.cell_size(z)
        width, height = tms.matrix_size(z)
        common = {
            "scaleDenominator": cell_size * tms.metres_per_unit / _PIXEL_M,
            "tileWidth": _TILE_PX,
            "tileHeight": _TILE_PX,
            "matrixWidth": width,
            "matrixHeight": height,
        }
        origin = list(tms.origin)
        matrices.append({"id": str(z), **common, "cellSize": cell_size, "cornerOfOrigin": "topLeft",
                         "pointOfOrigin": origin})
        matrices_v1.append({"type": "TileMatrixType", "identifier": str(z), **common, "topLeftCorner": origin})
    return {
        "id": tms.id,
        "title": tms.title,
        "uri": tms.uri,
        "crs": tms.crs,
        "orderedAxes": list(tms.ordered_axes),
        "wellKnownScaleSet": tms.well_known_scale_set,
        "boundingBox": {
            "lowerLeft": tms.lower_left(),
            "upperRight": tms.upper_right(),
            "crs": tms.crs,
            # TMS 1.0 names of the same corners
            "type": "BoundingBoxType",
            "lowerCorner": tms.lower_left(),
            "upperCorner": tms.upper_right(),
        },
        "tileMatrices": matrices,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{base}/tileMatrixSets/{tms.id}"},
        ],
        # TMS 1.0 (OGC 17-083r2), for GDAL 3.6
        "type": "TileMatrixSetType",
        "identifier": tms.id,
        "supportedCRS": tms.crs,
        "tileMatrix": matrices_v1,
    }


def collection_tilesets_document(base_url: str, layer_id: str) -> dict:
    """``/collections/{id}/tiles``: the collection's vector tilesets, one per offered tile matrix set."""
    spec = tile_layer(layer_id)
    base = base_url.rstrip("/")
    collection = f"{base}/collections/{spec.id}"
    return {
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{collection}/tiles"},
            {"rel": "collection", "type": "application/json", "href": collection},
        ],
        "tilesets": [
            {
                "title": f"{catalogue_layer(spec.id).title} (vector tiles, {tms.id})",
                "dataType": "vector",
                "crs": tms.crs,
                "tileMatrixSetURI": tms.uri,
                "links": [
                    {"rel": "self", "type": "application/json", "href": f"{collection}/tiles/{tms.id}"},
                    _tiling_scheme_link(base, tms),
                    _tile_template_link(collection, tms),
                ],
            }
            for tms in TILE_MATRIX_SETS.values()
        ],
    }


def tileset_document(
    base_url: str,
    layer_id: str,
    *,
    tile_matrix_set: str = TILE_MATRIX_SET,
    extent: tuple[float, float, float, float] | None = None,
) -> dict:
    """``/collections/{id}/tiles/{tileMatrixSetId}``: tileset metadata; limits narrowed to a lon/lat ``extent``."""
    spec = tile_layer(layer_id)
    tms = find_tile_matrix_set(tile_matrix_set, status=404)
    catalogue = catalogue_layer(spec.id)
    base = base_url.rstrip("/")
    collection = f"{base}/collections/{spec.id}"
    fields = {name: kind for name, kind in spec.property_types().items()}
    properties = {
        name: {"type": "string", "format": "date-time"} if kind == "date-time" else {"type": kind}
        for name, kind in fields.items()
    }
    low, high = tms.zoom_range(spec)
    document = {
        "title": f"{catalogue.title} (vector tiles)",
        "description": f"{catalogue.description} Tiles {low}..{high} of {tms.id}: {spec.note}.",
        "dataType": "vector",
        "crs": tms.crs,
        "tileMatrixSetURI": tms.uri,
        "links": [
            {"rel": "self", "type": "application/json", "href": f"{collection}/tiles/{tms.id}"},
            _tiling_scheme_link(base, tms),
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/geodata", "type": "application/json", "href": collection},
            _tile_template_link(collection, tms),
        ],
        # limited to the data: a client walking the limits (GDAL's OGCAPI driver) asks only for tiles that hold some
        "tileMatrixSetLimits": [_matrix_limits(tms, z, extent) for z in range(low, high + 1)],
        "layers": [
            {
                "id": spec.id,
                "title": catalogue.title,
                "dataType": "vector",
                "geometryDimension": 0 if catalogue.geometry_type == "Point" else 2,
                "minTileMatrix": str(low),
                "maxTileMatrix": str(high),
                "propertiesSchema": {"type": "object", "properties": properties},
            }
        ],
    }
    if extent is not None:
        document["boundingBox"] = {
            "lowerLeft": [extent[0], extent[1]],
            "upperRight": [extent[2], extent[3]],
            "crs": CRS84_URI,
        }
        lon, lat, zoom = _centre(extent, spec.min_zoom, spec.max_zoom)
        document["centerPoint"] = {"coordinates": [lon, lat], "crs": CRS84_URI, "tileMatrix": str(zoom + tms.zoom_offset)}
    return document


def _tile_template(collection_url: str, tms: TileMatrixSet = WEB_MERCATOR_QUAD) -> str:
    return f"{collection_url}/tiles/{tms.id}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"


def _tile_template_link(collection_url: str, tms: TileMatrixSet) -> dict:
    return {"rel": "item", "type": MVT_MEDIA_TYPE, "templated": True, "href": _tile_template(collection_url, tms)}


def _tiling_scheme_link(base: str, tms: TileMatrixSet) -> dict:
    return {
        "rel": "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
        "type": "application/json",
        "href": f"{base}/tileMatrixSets/{tms.id}",
    }


def _matrix_limits(tms: TileMatrixSet, z: int, extent: tuple[float, float, float, float] | None) -> dict:
    width, height = tms.matrix_size(z)
    if extent is None:
        return {"tileMatrix": str(z), "minTileRow": 0, "maxTileRow": height - 1, "minTileCol": 0,
                "maxTileCol": width - 1}
    west, south, east, north = extent
    min_col, min_row = _tile_of(west, north, z, tms)
    max_col, max_row = _tile_of(east, south, z, tms)
    return {
        "tileMatrix": str(z), "minTileRow": min_row, "maxTileRow": max_row, "minTileCol": min_col, "maxTileCol": max_col
    }


def _tile_of(lon: float, lat: float, z: int, tms: TileMatrixSet = WEB_MERCATOR_QUAD) -> tuple[int, int]:
    """The (col, row) of the tile of ``tms`` holding (lon, lat) at matrix ``z``."""
    width, height = tms.matrix_size(z)
    if tms.srid == 4326:
        side = tms.span0 / (1 << z)
        col, row = int((lon - tms.origin[0]) / side), int((tms.origin[1] - lat) / side)
    else:
        lat = max(-85.05112878, min(85.05112878, lat))
        col = int((lon + 180.0) / 360.0 * width)
        row = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * height)
    return min(max(col, 0), width - 1), min(max(row, 0), height - 1)


def _centre(extent: tuple[float, float, float, float], min_zoom: int, max_zoom: int) -> tuple[float, float, int]:
    """The middle of a lon/lat box and the zoom at which the box fits a 1024-pixel view, within the zoom range."""
    west, south, east, north = extent
    lon, lat = (west + east) / 2, (south + north) / 2
    # a Web Mercator degree of latitude is 1/cos(lat) degrees of longitude long on the map
    span = max(east - west, (north - south) / max(math.cos(math.radians(lat)), 0.01), 1e-9)
    zoom = int(math.floor(math.log2(360.0 * 1024 / _TILE_PX / span)))
    return round(lon, 7), round(lat, 7), min(max(zoom, min_zoom), max_zoom)


# --- TileJSON 3.0 and {z}/{x}/{y} tiles (MapLibre, Leaflet.VectorGrid, QGIS, GDAL's MVT driver) ------

# what a TileJSON ``fields`` entry says of a property: the type names tippecanoe writes, which GDAL's
# MVT driver turns into field types (anything else is a string)
_TILEJSON_FIELD_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}
_WORLD = (-180.0, -85.0511287798066, 180.0, 85.0511287798066)


def layer_extent(conn: psycopg.Connection, *, layer_id: str) -> tuple[float, float, float, float] | None:
    """The lon/lat box of the layer's rows that the caller's transaction sees; None when it sees none."""
    spec = tile_layer(layer_id)
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM {}) s"
        ).format(sql.Identifier(spec.view)))
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return tuple(round(value, 7) for value in row)


def tilejson_document(
    *, tiles_url: str, extents: dict[str, tuple[float, float, float, float] | None], name: str,
    description: str = "", attribution: str = "",
) -> dict:
    """A TileJSON 3.0.0 document for the tiles at ``tiles_url`` (a ``{z}/{x}/{y}`` template) holding the layers of ``extents``.

    ``extents`` maps each tiled layer to the lon/lat box of its rows (None: no rows); the
    document's ``bounds`` is their union and ``center`` its middle, at a zoom that shows it.
    """
    specs = [tile_layer(layer_id) for layer_id in extents]
    if not specs:
        raise TileError("no tiled layer to describe", status=404)
    min_zoom = min(spec.min_zoom for spec in specs)
    max_zoom = max(spec.max_zoom for spec in specs)
    boxes = [box for box in extents.values() if box is not None]
    bounds = (
        (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        if boxes else _WORLD
    )
    lon, lat, zoom = _centre(bounds, min_zoom, max_zoom)
    return {
        "tilejson": TILEJSON_VERSION,
        "name": name,
        "description": description,
        "version": "1.0.0",
        "attribution": attribution,
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": min_zoom,
        "maxzoom": max_zoom,
        "bounds": list(bounds),
        "center": [lon, lat, zoom],
        "vector_layers": [
            {
                "id": spec.id,
                "description": catalogue_layer(spec.id).title,
                "minzoom": spec.min_zoom,
                "maxzoom": spec.max_zoom,
                "fields": {
                    field_name: _TILEJSON_FIELD_TYPES.get(kind, "String")
                    for field_name, kind in spec.property_types().items()
                },
            }
            for spec in specs
        ],
    }


def tile_of_layers(
    conn: psycopg.Connection, cache: TileCache, *, scope_key: str, layer_ids: list[str], z: int | str, x: int | str,
    y: int | str,
) -> Tile:
    """One tile holding every layer of ``layer_ids`` whose zoom range has ``z`` (MVT layers concatenate)."""
    specs = [tile_layer(layer_id) for layer_id in layer_ids]
    if not specs:
        raise TileError("no tiled layer to draw", status=404)
    z = _tile_index("z", z)
    low, high = min(s.min_zoom for s in specs), max(s.max_zoom for s in specs)
    if not low <= z <= high:
        raise TileError(f"z {z} is outside the zoom range of these tiles: {low}..{high}")
    parts = [
        tile_cached(conn, cache, scope_key=scope_key, layer_id=spec.id, z=z, x=x, y=y)
        for spec in specs if spec.min_zoom <= z <= spec.max_zoom
    ]
    data = b"".join(part.data for part in parts)
    return Tile(layer="+".join(p.layer for p in parts), z=z, x=parts[0].x, y=parts[0].y, data=data,
                version=max(p.version for p in parts), etag=_etag(data))
