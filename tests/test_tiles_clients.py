"""Vector tiles as standard clients read them: TileJSON over HTTP, GDAL's MVT and OGCAPI drivers, the tile matrix sets GDAL 3.6 parses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import requests

needs_ogr = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed (apt-get install gdal-bin)")
HALF = 20037508.342789244


def _level1_box_3857() -> tuple[float, float, float, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                       "(SELECT ST_Extent(ST_Transform(geom, 3857)) e FROM grids WHERE level = 1) s")
        return cursor.fetchone()


def _tile_with_buildings(live_server, z=16) -> tuple[int, int, int]:
    """The z/x/y of the tile at the TileJSON's centre (the middle of the buildings)."""
    doc = requests.get(f"{live_server}/ogc/collections/buildings/tiles/WebMercatorQuad/tilejson.json", timeout=30).json()
    lon, lat, _ = doc["center"]
    import math

    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def test_tilejson_per_layer_and_for_all(live_server, accounts):
    one = requests.get(f"{live_server}/ogc/collections/buildings/tiles/WebMercatorQuad/tilejson.json", timeout=30)
    assert one.status_code == 200 and one.headers["Content-Type"].startswith("application/json")
    doc = one.json()
    assert doc["tilejson"] == "3.0.0" and [layer["id"] for layer in doc["vector_layers"]] == ["buildings"]
    assert re.fullmatch(r"http://[^?]+/\{z\}/\{x\}/\{y\}\.pbf", doc["tiles"][0])
    z, x, y = _tile_with_buildings(live_server)
    tile = requests.get(doc["tiles"][0].format(z=z, x=x, y=y), timeout=30)  # no query string
    assert tile.status_code == 200 and tile.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    everyone = requests.get(f"{live_server}/ogc/tilejson.json", timeout=30).json()
    assert {layer["id"] for layer in everyone["vector_layers"]} == {"grids", "buildings", "parking_spots"}
    analyst = requests.get(f"{live_server}/ogc/tilejson.json", auth=accounts["analyst"].auth, timeout=30).json()
    assert "incidents" in {layer["id"] for layer in analyst["vector_layers"]}
    # GDAL's MVT driver opening …/xyz/{z} as a folder reads …/xyz/metadata.json: the same document
    metadata = requests.get(f"{live_server}/ogc/collections/buildings/tiles/WebMercatorQuad/xyz/metadata.json", timeout=30)
    assert metadata.json() == doc
    assert requests.get(f"{live_server}/ogc/collections/incidents/tiles/WebMercatorQuad/tilejson.json",
                        timeout=30).status_code == 401
    assert requests.get(f"{live_server}/ogc/collections/cameras/tiles/WebMercatorQuad/tilejson.json",
                        auth=accounts["analyst"].auth, timeout=30).status_code == 404


def test_tileset_limits_cover_only_the_data(live_server):
    doc = requests.get(f"{live_server}/ogc/collections/buildings/tiles/WebMercatorQuad", timeout=30).json()
    z16 = next(limit for limit in doc["tileMatrixSetLimits"] if limit["tileMatrix"] == "16")
    assert z16["maxTileCol"] - z16["minTileCol"] < 20 and z16["maxTileRow"] - z16["minTileRow"] < 20
    z, x, y = _tile_with_buildings(live_server)
    assert z16["minTileCol"] <= x <= z16["maxTileCol"] and z16["minTileRow"] <= y <= z16["maxTileRow"]
    template = next(link["href"] for link in doc["links"] if link["rel"] == "item")
    assert "?" not in template


def _ogr_extent(output: str) -> tuple[float, float, float, float]:
    found = re.search(r"Extent: \(([-\d.]+), ([-\d.]+)\) - \(([-\d.]+), ([-\d.]+)\)", output)
    assert found, output
    return tuple(float(v) for v in found.groups())


def _inside(inner, outer, slack=0.0) -> bool:
    return (inner[0] >= outer[0] - slack and inner[1] >= outer[1] - slack
            and inner[2] <= outer[2] + slack and inner[3] <= outer[3] + slack)


@needs_ogr
@pytest.mark.parametrize("path", [
    "/ogc/collections/buildings/tiles/WebMercatorQuad/xyz/{z}/{x}/{y}.pbf",  # one tile: z/x/y read from the path
    "/ogc/collections/buildings/tiles/WebMercatorQuad/xyz/{z}",  # a folder of tiles with its metadata.json
    "/ogc/xyz/{z}/{x}/{y}.pbf",  # every layer in one tile
])
def test_gdal_mvt_driver_reads_georeferenced_buildings(live_server, path):
    z, x, y = _tile_with_buildings(live_server)
    url = live_server + path.format(z=z, x=x, y=y)
    result = subprocess.run(["ogrinfo", "-ro", "-so", f"MVT:{url}", "buildings"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Pseudo-Mercator" in result.stdout
    count = int(re.search(r"Feature Count: (\d+)", result.stdout).group(1))
    assert count > 0
    extent = _ogr_extent(result.stdout)
    # georeferenced (not the tile's 0..4096 units) and inside the level-1 grid; a tile's features are clipped
    # at its edge plus the buffer, so the extent may reach a metre or two past a building
    assert _inside(extent, _level1_box_3857(), slack=50), (extent, _level1_box_3857())


@needs_ogr
def test_gdal_parses_the_tile_matrix_set(live_server, tmp_path):
    """GDAL 3.6's TileMatrixSet parser (the one its OGCAPI driver uses) reads /tileMatrixSets/WebMercatorQuad."""
    document = requests.get(f"{live_server}/ogc/tileMatrixSets/WebMercatorQuad", timeout=30).json()
    tms = tmp_path / "tms.json"
    tms.write_text(json.dumps(document))
    source, out = tmp_path / "src.tif", tmp_path / "cog.tif"
    subprocess.run(["gdal_create", "-of", "GTiff", "-outsize", "4", "4", "-bands", "1", "-a_srs", "EPSG:3857",
                    "-a_ullr", "12650000", "4131000", "12652000", "4129000", str(source)], check=True, timeout=60,
                   capture_output=True)
    result = subprocess.run(["gdal_translate", "-q", "-of", "COG", "-co", f"TILING_SCHEME={tms}", str(source), str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr, result.stderr


def _level1_box_lonlat() -> tuple[float, float, float, float]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                       "(SELECT ST_Extent(geom) e FROM grids WHERE level = 1) s")
        return cursor.fetchone()


@needs_ogr
def test_gdal_ogcapi_driver_reads_georeferenced_buildings(live_server, tmp_path):
    """``ogrinfo OGCAPI:…/collections/buildings`` (GDAL 3.6, Debian 12) gives the buildings in lon/lat, each on its own
    footprint and inside the level-1 grid. GDAL before 3.7 cannot read OGC API tiles (it finds no layer in any tile
    matrix set), so it is served the collection without its tilesets link and reads the items."""
    from shapely.geometry import box, shape

    from gis.models import Building

    url = f"OGCAPI:{live_server}/ogc/collections/buildings"
    listing = subprocess.run(["ogrinfo", "-ro", "-so", url, "buildings"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stdout[-2000:] + listing.stderr
    assert "Multi Polygon" in listing.stdout and "WGS 84" in listing.stdout, listing.stdout
    assert int(re.search(r"Feature Count: (\d+)", listing.stdout).group(1)) == Building.objects.count()
    level1 = box(*_level1_box_lonlat())
    assert _inside(_ogr_extent(listing.stdout), level1.bounds), (listing.stdout, level1.bounds)
    out = tmp_path / "buildings.geojson"
    result = subprocess.run(["ogr2ogr", "-f", "GeoJSON", str(out), url, "buildings"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    features = json.loads(out.read_text())["features"]
    footprints = {b.code: shape(json.loads(b.geom.geojson)) for b in Building.objects.all()}
    assert sorted(f["properties"]["code"] for f in features) == sorted(footprints)
    for feature in features:
        geometry = shape(feature["geometry"])
        assert level1.contains(geometry), (feature["properties"]["code"], geometry.bounds, level1.bounds)
        assert geometry.hausdorff_distance(footprints[feature["properties"]["code"]]) < 1e-6, feature["properties"]["code"]


def test_tilesets_link_is_left_out_for_gdal_before_3_7_only(live_server):
    url = f"{live_server}/ogc/collections/buildings"

    def linked(headers) -> bool:
        answer = requests.get(url, headers=headers, timeout=30)
        assert "User-Agent" in answer.headers["Vary"]
        return any(link["rel"].endswith("/tilesets-vector") for link in answer.json()["links"])

    gdal_accept = "application/geo+json, application/json"
    assert not linked({"Accept": gdal_accept, "User-Agent": ""})  # GDAL 3.6 sends no User-Agent
    assert not linked({"Accept": gdal_accept, "User-Agent": "GDAL/3.6.2"})
    assert linked({"Accept": gdal_accept, "User-Agent": "GDAL/3.8.4"})
    assert linked({"Accept": "application/json", "User-Agent": "Mozilla/5.0 QGIS/32200"})
    assert linked({"Accept": "application/json"})
