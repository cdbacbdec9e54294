"""Vector tiles: MVT built in PostGIS from the published views, data versions bumped by writes, the tile cache."""

from __future__ import annotations

import os
import statistics
import time
from datetime import timezone

import mapbox_vector_tile
import psycopg
import pytest

from layers.catalogue import layer as catalogue_layer
from layers.tiles import (
    BUFFER,
    EXTENT,
    MVT_MEDIA_TYPE,
    TILE_LAYERS,
    Tile,
    TileCache,
    TileError,
    collection_tilesets_document,
    etag_matches,
    layer_extent,
    layer_version,
    sync_layer_versions,
    tile_cached,
    tile_of_layers,
    tile_http_headers,
    tile_parameters,
    tile_query,
    tile_render,
    tilejson_document,
    tilematrixset_document,
    tileset_document,
)

# Web Mercator half-world, written out here rather than taken from the module under test.
HALF = 20037508.342789244


@pytest.fixture
def conn(rollback):
    """The raw psycopg connection of Django's connection, inside the rolled-back test transaction."""
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


@pytest.fixture
def own_conn(database_url, demo_db):
    """A separate autocommit connection (its writes are committed: tests restore what they change)."""
    with psycopg.connect(database_url, autocommit=True) as c:
        yield c


def _tile_near_centre(conn, layer_id: str, z: int) -> tuple[int, int, int]:
    """The z tile holding the layer's feature nearest the middle of the demo's level-1 grid."""
    query = (
        "WITH c AS (SELECT ST_PointOnSurface(geom) AS pt FROM grids WHERE level = 1), "
        "f AS (SELECT ST_Transform(ST_PointOnSurface(v.geom), 3857) AS p FROM {view} v, c "
        "      ORDER BY v.geom <-> c.pt LIMIT 1) "
        "SELECT floor((ST_X(p) + %(h)s) / (2 * %(h)s) * 2 ^ %(z)s)::int, "
        "       floor((%(h)s - ST_Y(p)) / (2 * %(h)s) * 2 ^ %(z)s)::int FROM f"
    )
    with conn.cursor() as cur:
        cur.execute(psycopg.sql.SQL(query).format(view=psycopg.sql.Identifier(f"ogc_{layer_id}")), {"h": HALF, "z": z})
        x, y = cur.fetchone()
    return z, x, y


def _expected_features(conn, layer_id: str, z: int, x: int, y: int, *, overview: bool = True) -> dict[int, dict]:
    """{id: properties} of the view's rows meeting the tile and its buffer, read straight from the view."""
    spec = TILE_LAYERS[layer_id]
    columns = psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(p) for p in spec.properties)
    keep = psycopg.sql.SQL("")
    if overview and spec.detail_zoom is not None and z < spec.detail_zoom:
        keep = psycopg.sql.SQL(" AND {} IN ({})").format(
            psycopg.sql.Identifier(spec.overview_column),
            psycopg.sql.SQL(", ").join(map(psycopg.sql.Literal, spec.overview_values)),
        )
    query = psycopg.sql.SQL(
        "SELECT id, {cols} FROM {view} "
        "WHERE ST_Intersects(geom, ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4326)){keep}"
    ).format(cols=columns, view=psycopg.sql.Identifier(f"ogc_{layer_id}"), keep=keep)
    with conn.cursor() as cur:
        cur.execute(query, [z, x, y, BUFFER / EXTENT])
        rows = cur.fetchall()
    expected = {}
    for row in rows:
        props = {}
        for name, value in zip(spec.properties, row[1:]):
            if value is None:
                continue  # MVT leaves null properties out
            if hasattr(value, "astimezone"):
                value = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            props[name] = value
        expected[row[0]] = props
    return expected


def _decoded(tile: Tile) -> dict[int, dict]:
    layers = mapbox_vector_tile.decode(tile.data, default_options={"y_coord_down": True})
    assert set(layers) == {tile.layer}
    assert layers[tile.layer]["extent"] == EXTENT
    return {f["id"]: f["properties"] for f in layers[tile.layer]["features"]}


def _features(tile: Tile) -> list[dict]:
    return mapbox_vector_tile.decode(tile.data, default_options={"y_coord_down": True})[tile.layer]["features"]


# --- tiles hold exactly the view's rows ------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer_id, z",
    [
        ("buildings", 16), ("buildings", 14), ("incidents", 16), ("incidents", 15), ("incidents", 12),
        ("parking_spots", 16), ("grids", 14), ("grids", 8),
    ],
)
def test_tile_holds_the_views_rows_in_it(conn, layer_id, z):
    z, x, y = _tile_near_centre(conn, layer_id, z)
    expected = _expected_features(conn, layer_id, z, x, y)
    assert expected, "the chosen tile must hold demo features"
    tile = tile_render(conn, layer_id=layer_id, z=z, x=x, y=y)
    assert (tile.layer, tile.z, tile.x, tile.y) == (layer_id, z, x, y)
    assert _decoded(tile) == expected


def test_incident_overview_keeps_only_open_incidents(conn):
    spec = TILE_LAYERS["incidents"]
    z, x, y = _tile_near_centre(conn, "incidents", spec.detail_zoom - 2)
    everything = _expected_features(conn, "incidents", z, x, y, overview=False)
    shown = _decoded(tile_render(conn, layer_id="incidents", z=z, x=x, y=y))
    assert shown and len(shown) < len(everything)
    assert {p["status"] for p in shown.values()} <= set(spec.overview_values)
    z, x, y = _tile_near_centre(conn, "incidents", spec.detail_zoom)
    detail = _decoded(tile_render(conn, layer_id="incidents", z=z, x=x, y=y))
    assert {p["status"] for p in detail.values()} - set(spec.overview_values), "closed ones show at detail zoom"


def test_point_positions_are_in_tile_units(conn):
    z, x, y = _tile_near_centre(conn, "incidents", 16)
    tile = tile_render(conn, layer_id="incidents", z=z, x=x, y=y)
    size = 2 * HALF / 2**z
    left, top = -HALF + x * size, HALF - y * size
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, ST_X(ST_Transform(geom, 3857)), ST_Y(ST_Transform(geom, 3857)) "
            "FROM ogc_incidents WHERE id = ANY(%s)",
            [[f["id"] for f in _features(tile)]],
        )
        where = {row[0]: row[1:] for row in cur.fetchall()}
    for feature in _features(tile):
        assert feature["geometry"]["type"] == "Point"
        px, py = feature["geometry"]["coordinates"]
        mx, my = where[feature["id"]]
        assert abs(px - (mx - left) / size * EXTENT) <= 1
        assert abs(py - (top - my) / size * EXTENT) <= 1


def test_rows_the_view_hides_are_not_in_tiles(conn):
    """Elder-inactivity alerts are not published, so the tile over one must not show it."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, ST_X(ST_Transform(geom, 3857)), ST_Y(ST_Transform(geom, 3857)) FROM incidents "
            "WHERE category = 'elder_inactivity' ORDER BY id LIMIT 1"
        )
        row = cur.fetchone()
    assert row, "the demo has elder-inactivity alerts"
    hidden_id, mx, my = row
    z = 18
    x, y = int((mx + HALF) / (2 * HALF) * 2**z), int((HALF - my) / (2 * HALF) * 2**z)
    tile = tile_render(conn, layer_id="incidents", z=z, x=x, y=y)
    assert hidden_id not in (_decoded(tile) if tile.data else {})


def test_tile_sees_the_callers_own_transaction(conn):
    z, x, y = _tile_near_centre(conn, "parking_spots", 16)
    before = _decoded(tile_render(conn, layer_id="parking_spots", z=z, x=x, y=y))
    spot_id = next(iter(before))
    new = "occupied" if before[spot_id].get("occupancy") != "occupied" else "free"
    with conn.cursor() as cur:
        cur.execute("UPDATE parking_spots SET occupancy = %s WHERE id = %s", [new, spot_id])
    after = _decoded(tile_render(conn, layer_id="parking_spots", z=z, x=x, y=y))
    assert after[spot_id]["occupancy"] == new


def test_empty_tile_outside_the_demo_area(conn):
    tile = tile_render(conn, layer_id="buildings", z=16, x=32768, y=32768)  # off the coast of Africa
    assert tile.data == b""
    assert tile.version == layer_version(conn, layer_id="buildings")
    assert tile.etag.startswith('"') and tile.etag.endswith('"')


# --- bad requests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "z, x, y, message",
    [
        (25, 0, 0, "14..22"),
        (13, 0, 0, "14..22"),
        (16, 65536, 0, "0..65535"),
        (16, 0, 65536, "0..65535"),
        (16, -1, 0, "≥ 0"),
        (16, 0, -3, "≥ 0"),
        (-1, 0, 0, "≥ 0"),
        ("sixteen", 0, 0, "whole number"),
        (True, 0, 0, "whole number"),
        (16.0, 0, 0, "whole number"),
    ],
)
def test_bad_tile_index_is_400_with_the_range(conn, z, x, y, message):
    with pytest.raises(TileError, match=message) as caught:
        tile_render(conn, layer_id="buildings", z=z, x=x, y=y)
    assert caught.value.status == 400


def test_path_strings_are_accepted(conn):
    tile = tile_render(conn, layer_id="buildings", z="16", x="32768", y="32768")
    assert (tile.z, tile.x, tile.y) == (16, 32768, 32768)


@pytest.mark.parametrize("layer_id", ["nope", "cameras", "care_subjects"])
def test_unknown_or_untiled_layer_is_404(conn, layer_id):
    with pytest.raises(TileError, match="tiled collections: grids") as caught:
        tile_render(conn, layer_id=layer_id, z=16, x=0, y=0)
    assert caught.value.status == 404


def test_other_tile_matrix_set_is_400(conn):
    with pytest.raises(TileError, match="'WebMercatorQuad' or 'WorldCRS84Quad'") as caught:
        tile_render(conn, layer_id="buildings", z=16, x=0, y=0, tile_matrix_set="EuropeanETRS89_LAEAQuad")
    assert caught.value.status == 400


def _crs84_tile_near_centre(conn, layer_id: str, z: int) -> tuple[int, int, int]:
    """The WorldCRS84Quad matrix-z tile holding the layer's feature nearest the middle of the level-1 grid."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(v.geom) p FROM {catalogue_layer(layer_id).view} v "
            "ORDER BY v.geom <-> (SELECT ST_Centroid(geom) FROM grids WHERE level = 1) LIMIT 1) s"
        )
        lon, lat = cur.fetchone()
    side = 180 / 2**z  # degrees per tile at matrix z, columns from -180, rows from +90 down
    return z, int((lon + 180) / side), int((90 - lat) / side)


@pytest.mark.parametrize("layer_id, z", [("buildings", 15), ("buildings", 13), ("incidents", 11), ("grids", 7)])
def test_world_crs84_quad_tile_holds_the_views_rows_in_its_lonlat_box(conn, layer_id, z):
    z, x, y = _crs84_tile_near_centre(conn, layer_id, z)
    side = 180 / 2**z
    west, north = -180 + x * side, 90 - y * side
    overview = ""
    spec = TILE_LAYERS[layer_id]
    if spec.detail_zoom is not None and z + 1 < spec.detail_zoom:  # matrix z is as wide as Web Mercator zoom z + 1
        overview = f" AND {spec.overview_column} IN ({', '.join(repr(v) for v in spec.overview_values)})"
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id FROM {catalogue_layer(layer_id).view} WHERE ST_Intersects(geom, "
            f"ST_MakeEnvelope(%s, %s, %s, %s, 4326)){overview}", [west, north - side, west + side, north])
        inside = {row[0] for row in cur.fetchall()}
    assert inside, "the chosen tile must hold demo features"
    tile = tile_render(conn, layer_id=layer_id, z=z, x=x, y=y, tile_matrix_set="WorldCRS84Quad")
    features = _features(tile)
    # every feature inside the box, and nothing beyond the box and its buffer
    assert inside <= {f["id"] for f in features}
    margin = side * BUFFER / EXTENT
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT id FROM {catalogue_layer(layer_id).view} WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
            f"{overview}", [west - margin, north - side - margin, west + side + margin, north + margin])
        near = {row[0] for row in cur.fetchall()}
    assert {f["id"] for f in features} <= near


def test_world_crs84_quad_ranges(conn):
    spec = TILE_LAYERS["buildings"]
    with pytest.raises(TileError, match=r"13\.\.21"):
        tile_render(conn, layer_id="buildings", z=spec.min_zoom - 2, x=0, y=0, tile_matrix_set="WorldCRS84Quad")
    with pytest.raises(TileError, match=r"tileRow \(y\) 32768 is outside 0\.\.32767"):
        tile_render(conn, layer_id="buildings", z=15, x=65535, y=32768, tile_matrix_set="WorldCRS84Quad")
    assert tile_render(conn, layer_id="buildings", z=15, x=65535, y=32767, tile_matrix_set="WorldCRS84Quad").data == b""


# --- versions and the cache ------------------------------------------------------------------------------


def _one_incident_in_tile(c) -> tuple[tuple[int, int, int], int, str]:
    z, x, y = _tile_near_centre(c, "incidents", 16)
    expected = _expected_features(c, "incidents", z, x, y)
    incident_id = min(expected)
    return (z, x, y), incident_id, expected[incident_id]["status"]


def test_second_call_is_a_cache_hit(own_conn):
    cache = TileCache()
    (z, x, y), _, _ = _one_incident_in_tile(own_conn)
    first = tile_cached(own_conn, cache, scope_key="public", layer_id="incidents", z=z, x=x, y=y)
    second = tile_cached(own_conn, cache, scope_key="public", layer_id="incidents", z=z, x=x, y=y)
    assert second is first
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    other_scope = tile_cached(own_conn, cache, scope_key="grid:x", layer_id="incidents", z=z, x=x, y=y)
    assert other_scope is not first and cache.stats.misses == 2


def test_committed_write_bumps_the_version_and_the_cache_rerenders(own_conn, database_url):
    cache = TileCache()
    (z, x, y), incident_id, status = _one_incident_in_tile(own_conn)
    first = tile_cached(own_conn, cache, scope_key="public", layer_id="incidents", z=z, x=x, y=y)
    new_status = "closed" if status != "closed" else "resolved"
    with psycopg.connect(database_url) as writer:  # its own transaction, committed on leaving the block
        writer.execute("UPDATE incidents SET status = %s WHERE id = %s", [new_status, incident_id])
    try:
        second = tile_cached(own_conn, cache, scope_key="public", layer_id="incidents", z=z, x=x, y=y)
        assert second.version > first.version
        assert second.version == layer_version(own_conn, layer_id="incidents")
        assert _decoded(second)[incident_id]["status"] == new_status
        assert _decoded(first)[incident_id]["status"] == status
        assert second.etag != first.etag
        assert (cache.stats.hits, cache.stats.misses) == (0, 2)
    finally:
        with psycopg.connect(database_url) as writer:
            writer.execute("UPDATE incidents SET status = %s WHERE id = %s", [status, incident_id])


def test_rolled_back_write_leaves_the_version(own_conn, database_url):
    (_, incident_id, status) = _one_incident_in_tile(own_conn)
    before = layer_version(own_conn, layer_id="incidents")
    with psycopg.connect(database_url) as writer:
        writer.execute("UPDATE incidents SET status = 'closed', severity = 4 WHERE id = %s", [incident_id])
        assert layer_version(writer, layer_id="incidents") > before  # the writer sees its own bump
        assert layer_version(own_conn, layer_id="incidents") == before  # nobody else does
        writer.rollback()
    assert layer_version(own_conn, layer_id="incidents") == before


def test_tile_of_a_rolled_back_write_is_never_served(own_conn, database_url):
    """A tile rendered inside a transaction that rolls back carries a version no later write reuses."""
    cache = TileCache()
    (z, x, y), incident_id, status = _one_incident_in_tile(own_conn)
    with psycopg.connect(database_url) as c:
        c.execute("UPDATE incidents SET title = 'never committed' WHERE id = %s", [incident_id])
        tile_cached(c, cache, scope_key="public", layer_id="incidents", z=z, x=x, y=y)
        c.rollback()
    new_status = "closed" if status != "closed" else "resolved"
    with psycopg.connect(database_url) as writer:
        writer.execute("UPDATE incidents SET status = %s WHERE id = %s", [new_status, incident_id])
    try:
        tile = tile_cached(own_conn, cache, scope_key="public", layer_id="incidents", z=z, x=x, y=y)
        assert cache.stats.hits == 0
        assert _decoded(tile)[incident_id]["status"] == new_status
    finally:
        with psycopg.connect(database_url) as writer:
            writer.execute("UPDATE incidents SET status = %s WHERE id = %s", [status, incident_id])


def _versions(c) -> dict[str, int]:
    return {layer_id: layer_version(c, layer_id=layer_id) for layer_id in TILE_LAYERS}


def test_a_joined_table_bumps_every_layer_that_reads_it(own_conn):
    before = _versions(own_conn)
    own_conn.execute("UPDATE grids SET name = name WHERE level = 1")
    after = _versions(own_conn)
    assert all(after[layer_id] > before[layer_id] for layer_id in TILE_LAYERS), (before, after)


def test_a_table_no_tiled_view_reads_bumps_nothing(own_conn):
    before = _versions(own_conn)
    own_conn.execute("UPDATE cameras SET status = status")
    own_conn.execute("UPDATE buildings SET floors = floors WHERE false")
    after = _versions(own_conn)
    assert after["incidents"] == before["incidents"] and after["grids"] == before["grids"]
    assert after["buildings"] > before["buildings"]  # a statement-level trigger fires even for no rows


def test_sync_is_idempotent_and_covers_joined_tables(own_conn):
    before = _versions(own_conn)
    sync_layer_versions()
    sync_layer_versions()
    assert _versions(own_conn) == before
    rows = own_conn.execute(
        "SELECT c.relname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname = 'layer_versions_bump'"
    ).fetchall()
    tables = {name for name, _ in rows}
    assert tables == {"grids", "buildings", "incidents", "parking_spots"}
    grids_trigger = dict(rows)["grids"]
    for layer_id in TILE_LAYERS:
        assert f"'{layer_id}'" in grids_trigger
    assert "TRUNCATE" in grids_trigger and "FOR EACH STATEMENT" in grids_trigger


def _tile(n: int, size: int) -> Tile:
    data = bytes([n % 256]) * size
    return Tile(layer="buildings", z=16, x=n, y=0, data=data, version=1, etag=f'"{n}"')


def test_cache_stays_under_its_byte_bound_and_evicts_least_recently_used():
    cache = TileCache(max_bytes=10_000)
    for n in range(3):
        cache.put(("public", "buildings", 16, n, 0), _tile(n, 2_000))
    assert cache.get(("public", "buildings", 16, 0, 0)) is not None  # 0 is now the most recently used
    for n in range(3, 40):
        cache.put(("public", "buildings", 16, n, 0), _tile(n, 2_000))
        assert cache.size_bytes <= 10_000
    assert cache.get(("public", "buildings", 16, 1, 0)) is None
    assert cache.get(("public", "buildings", 16, 39, 0)) is not None
    assert cache.stats.evictions > 0
    cache.put(("public", "buildings", 16, 99, 0), _tile(99, 20_000))  # larger than the whole cache
    assert cache.get(("public", "buildings", 16, 99, 0)) is None and cache.size_bytes <= 10_000


def test_cache_replaces_a_key_without_counting_it_twice():
    cache = TileCache(max_bytes=100_000)
    key = ("public", "buildings", 16, 1, 0)
    cache.put(key, _tile(1, 5_000))
    size = cache.size_bytes
    cache.put(key, _tile(1, 5_000))
    assert cache.size_bytes == size and len(cache) == 1


def test_cache_of_real_tiles_stays_under_its_bound(own_conn):
    cache = TileCache(max_bytes=60_000)
    z, x0, y0 = _tile_near_centre(own_conn, "buildings", 16)
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            tile_cached(own_conn, cache, scope_key="public", layer_id="buildings", z=z, x=x0 + dx, y=y0 + dy)
            assert cache.size_bytes <= 60_000
    assert len(cache) > 0


# --- the query uses the spatial index --------------------------------------------------------------------


@pytest.mark.parametrize("layer_id", list(TILE_LAYERS))
def test_tile_query_uses_the_gist_index(conn, layer_id):
    spec = TILE_LAYERS[layer_id]
    z, x, y = _tile_near_centre(conn, layer_id, max(spec.min_zoom, 16))
    table = catalogue_layer(layer_id).table
    with conn.cursor() as cur:
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef ILIKE '%%USING gist (geom)%%'", [table]
        )
        index = cur.fetchone()[0]
        # the demo tables are small enough that a sequential scan may win; the point
        # is that the filter can use the index, so take the cheap way out of the race
        cur.execute("SET LOCAL enable_seqscan = off")
        query = psycopg.sql.SQL("EXPLAIN (FORMAT TEXT) ") + tile_query(spec, z=z)
        cur.execute(query, tile_parameters(spec, z=z, x=x, y=y))
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert index in plan, plan
    assert "&&" in plan, plan


def test_buildings_z16_tile_time(own_conn):
    """Measure (no assertion on time): a z16 buildings tile over the middle of the demo, rendered and cached."""
    z, x, y = _tile_near_centre(own_conn, "buildings", 16)
    runs = int(os.environ.get("ONEMAP_TILE_RUNS", "50"))
    cache = TileCache()

    def median_ms(call) -> float:
        call()  # warm the plan and the cache
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    rendered = median_ms(lambda: tile_render(own_conn, layer_id="buildings", z=z, x=x, y=y))
    cached = median_ms(
        lambda: tile_cached(own_conn, cache, scope_key="public", layer_id="buildings", z=z, x=x, y=y)
    )
    tile = tile_render(own_conn, layer_id="buildings", z=z, x=x, y=y)
    features = len(_features(tile))
    print(
        f"\nz16 buildings tile {z}/{x}/{y}: {features} features, {len(tile.data)} bytes; median of {runs}: "
        f"render {rendered:.2f} ms, cache hit (version check) {cached:.3f} ms, ratio {rendered / cached:.1f}x"
    )
    assert features > 0 and cache.stats.hits >= runs


# --- metadata and headers --------------------------------------------------------------------------------


def test_tilematrixset_document_is_webmercatorquad():
    doc = tilematrixset_document("http://h/ogc/")
    assert doc["id"] == "WebMercatorQuad" and doc["crs"].endswith("/EPSG/0/3857")
    assert [m["id"] for m in doc["tileMatrices"]] == [str(z) for z in range(25)]
    # the TMS 1.0 keys GDAL 3.6 reads, the same matrices
    assert doc["type"] == "TileMatrixSetType" and doc["supportedCRS"] == doc["crs"]
    assert [(m["identifier"], m["topLeftCorner"], m["matrixWidth"]) for m in doc["tileMatrix"]] == [
        (m["id"], m["pointOfOrigin"], m["matrixWidth"]) for m in doc["tileMatrices"]
    ]
    assert doc["boundingBox"]["lowerCorner"] == doc["boundingBox"]["lowerLeft"] == [-HALF, -HALF]
    zero, sixteen = doc["tileMatrices"][0], doc["tileMatrices"][16]
    assert zero["scaleDenominator"] == pytest.approx(559082264.0287178)  # published in OGC 17-083r4
    assert zero["cellSize"] == pytest.approx(156543.03392804097)
    assert sixteen["matrixWidth"] == sixteen["matrixHeight"] == 65536
    assert sixteen["cellSize"] * 256 * 65536 == pytest.approx(2 * HALF)
    assert zero["pointOfOrigin"] == [-HALF, HALF] and zero["cornerOfOrigin"] == "topLeft"
    assert doc["links"][0]["href"] == "http://h/ogc/tileMatrixSets/WebMercatorQuad"


def test_tilematrixset_document_world_crs84_quad():
    doc = tilematrixset_document("http://h/ogc", "WorldCRS84Quad")
    assert doc["id"] == doc["identifier"] == "WorldCRS84Quad" and doc["crs"] == doc["supportedCRS"]
    assert doc["crs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    zero = doc["tileMatrices"][0]
    assert (zero["matrixWidth"], zero["matrixHeight"], zero["cellSize"]) == (2, 1, 0.703125)
    assert zero["scaleDenominator"] == pytest.approx(279541132.0143589)  # published in OGC 17-083r4
    assert zero["pointOfOrigin"] == doc["tileMatrix"][0]["topLeftCorner"] == [-180, 90]
    assert doc["boundingBox"]["lowerLeft"] == [-180, -90] and doc["boundingBox"]["upperRight"] == [180, 90]
    assert len(doc["tileMatrices"]) == 24


def test_tileset_document():
    doc = tileset_document("http://h/ogc", "buildings")
    assert doc["dataType"] == "vector" and doc["crs"].endswith("/EPSG/0/3857")
    template = next(link for link in doc["links"] if link["rel"] == "item")
    assert template["href"] == (
        "http://h/ogc/collections/buildings/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}"
    )
    assert template["type"] == MVT_MEDIA_TYPE and template["templated"] is True
    rels = {link["rel"] for link in doc["links"]}
    assert {"self", "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"} <= rels
    spec = TILE_LAYERS["buildings"]
    assert [lim["tileMatrix"] for lim in doc["tileMatrixSetLimits"]] == [
        str(z) for z in range(spec.min_zoom, spec.max_zoom + 1)
    ]
    assert "tiles" not in doc and "vector_layers" not in doc  # TileJSON is a document of its own
    assert doc["layers"][0]["geometryDimension"] == 2
    incidents = tileset_document("http://h/ogc", "incidents")
    assert incidents["layers"][0]["propertiesSchema"]["properties"]["reported_at"]["format"] == "date-time"
    assert incidents["layers"][0]["geometryDimension"] == 0


def test_tileset_limits_narrow_to_an_extent_and_cover_its_features(conn):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM ogc_buildings) s"
        )
        extent = cur.fetchone()
    doc = tileset_document("http://h/ogc", "buildings", extent=extent)
    z, x, y = _tile_near_centre(conn, "buildings", 16)
    limits = next(lim for lim in doc["tileMatrixSetLimits"] if lim["tileMatrix"] == "16")
    assert limits["minTileCol"] <= x <= limits["maxTileCol"] and limits["minTileRow"] <= y <= limits["maxTileRow"]
    assert limits["maxTileCol"] - limits["minTileCol"] < 20
    assert doc["centerPoint"]["tileMatrix"] == "16"
    with pytest.raises(TileError) as caught:
        tileset_document("http://h/ogc", "buildings", tile_matrix_set="EuropeanETRS89_LAEAQuad")
    assert caught.value.status == 404
    crs84 = tileset_document("http://h/ogc", "buildings", tile_matrix_set="WorldCRS84Quad", extent=extent)
    assert crs84["crs"].endswith("/OGC/1.3/CRS84") and crs84["centerPoint"]["tileMatrix"] == "15"
    limits = next(lim for lim in crs84["tileMatrixSetLimits"] if lim["tileMatrix"] == "15")
    side = 180 / 2**15
    assert limits["minTileCol"] == int((extent[0] + 180) / side) and limits["maxTileCol"] == int((extent[2] + 180) / side)
    assert limits["minTileRow"] == int((90 - extent[3]) / side) and limits["maxTileRow"] == int((90 - extent[1]) / side)


def test_tilejson_document_bounds_centre_and_fields(conn):
    extents = {layer_id: layer_extent(conn, layer_id=layer_id) for layer_id in ("grids", "buildings")}
    doc = tilejson_document(tiles_url="http://h/ogc/xyz/{z}/{x}/{y}.pbf", extents=extents, name="n")
    assert doc["tilejson"] == "3.0.0" and doc["tiles"] == ["http://h/ogc/xyz/{z}/{x}/{y}.pbf"]
    assert "?" not in doc["tiles"][0]
    assert (doc["minzoom"], doc["maxzoom"]) == (8, 22)
    west, south, east, north = doc["bounds"]
    assert west == extents["grids"][0] and north == max(extents["grids"][3], extents["buildings"][3])
    lon, lat, zoom = doc["center"]
    assert west < lon < east and south < lat < north and 14 <= zoom <= 18  # a street fills a screen near z15-16
    buildings = next(layer for layer in doc["vector_layers"] if layer["id"] == "buildings")
    assert buildings["fields"] == {"code": "String", "floors": "Number", "height_m": "Number", "grid_code": "String"}
    assert buildings["minzoom"] == 14


def test_tile_of_layers_concatenates_the_layers_in_range(own_conn):
    cache = TileCache()
    z, x, y = _tile_near_centre(own_conn, "buildings", 16)
    tile = tile_of_layers(own_conn, cache, scope_key="t", layer_ids=["grids", "buildings", "parking_spots"], z=z, x=x, y=y)
    assert set(mapbox_vector_tile.decode(tile.data)) == {"grids", "buildings", "parking_spots"}
    low = tile_of_layers(own_conn, cache, scope_key="t", layer_ids=["grids", "buildings"], z=10, x=x >> 6, y=y >> 6)
    assert set(mapbox_vector_tile.decode(low.data)) == {"grids"}  # buildings start at z14
    with pytest.raises(TileError, match="outside the zoom range"):
        tile_of_layers(own_conn, cache, scope_key="t", layer_ids=["buildings"], z=3, x=0, y=0)


def test_collection_tilesets_document():
    doc = collection_tilesets_document("http://h/ogc", "grids")
    mercator, crs84 = doc["tilesets"]
    assert mercator["dataType"] == crs84["dataType"] == "vector"
    assert any(link["href"] == "http://h/ogc/collections/grids/tiles/WebMercatorQuad" for link in mercator["links"])
    # GDAL's OGCAPI driver picks the tileset whose tileMatrixSetURI names WorldCRS84Quad
    assert crs84["tileMatrixSetURI"] == "http://www.opengis.net/def/tilematrixset/OGC/1.0/WorldCRS84Quad"
    assert any(link["href"] == "http://h/ogc/collections/grids/tiles/WorldCRS84Quad/{tileMatrix}/{tileRow}/{tileCol}"
               for link in crs84["links"])
    with pytest.raises(TileError) as caught:
        collection_tilesets_document("http://h/ogc", "cameras")
    assert caught.value.status == 404


def test_http_headers_and_etag_match():
    tile = Tile(layer="grids", z=14, x=1, y=2, data=b"x", version=7, etag='"abc"')
    headers = tile_http_headers(tile)
    assert headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert headers["ETag"] == '"abc"'
    assert "must-revalidate" in headers["Cache-Control"] and "private" in headers["Cache-Control"]
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    assert 0 < max_age <= 300
    assert "public" in tile_http_headers(tile, shared=True)["Cache-Control"]
    assert etag_matches(tile, '"zzz", W/"abc"') and etag_matches(tile, "*")
    assert not etag_matches(tile, '"zzz"') and not etag_matches(tile, None)


# --- row-level security (the lead's layers.access) applies to tiles -------------------------------------


def test_grid_worker_tile_holds_only_their_grid(conn):
    access = pytest.importorskip("layers.access")
    z, x, y = 14, *_tile_near_centre(conn, "buildings", 14)[1:]
    everyone = _decoded(tile_render(conn, layer_id="buildings", z=z, x=x, y=y))
    grids = {props["grid_code"] for props in everyone.values()}
    assert len(grids) > 1, "the tile must straddle grids for this test to mean anything"
    code = sorted(grids)[0]
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM grids WHERE code = %s", [code])
        grid_id = cur.fetchone()[0]
        cur.execute(
            "SELECT set_config('role', %s, true), set_config('onemap.grid_id', %s, true)",
            [access.db_role("grid_worker"), str(grid_id)],
        )
    tile = tile_render(conn, layer_id="buildings", z=z, x=x, y=y)
    mine = _decoded(tile)
    assert mine and {props["grid_code"] for props in mine.values()} == {code}
    assert mine == {i: p for i, p in everyone.items() if p["grid_code"] == code}
    # a write made under the grid worker's role bumps the version too (the trigger runs as its owner)
    before = layer_version(conn, layer_id="incidents")
    with conn.cursor() as cur:
        cur.execute("UPDATE incidents SET severity = severity WHERE grid_id = %s", [grid_id])
        assert cur.rowcount > 0
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == access.db_role("grid_worker")
    assert tile_render(conn, layer_id="incidents", z=z, x=x, y=y).version > before
