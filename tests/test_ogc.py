"""The OGC API at /ogc/, driven by real clients (GDAL's OAPIF driver, OWSLib, plain HTTP) against the live server."""

from __future__ import annotations

import shutil
import subprocess

import time

import pytest
import requests

from gis import models as m
from layers.catalogue import public_layers

PUBLISHED = {"grids", "buildings", "parking_spots", "no_parking_zones", "party_orgs", "service_points"}
# what a signed-in analyst reads on top: no personal records, the aggregate instead
ANALYST = PUBLISHED | {"cameras", "incidents", "care_density", "case_indicators", "departments"}
PERSONAL_FIELDS = {"full_name", "birth_date", "room", "contacts", "health_notes", "unit_room", "monitoring_rule"}

needs_ogr = pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL's ogrinfo is not installed (apt-get install gdal-bin)")


def _get(url, auth=None, **params):
    response = requests.get(
        url, params=params, headers={"Accept": "application/json"}, timeout=30, allow_redirects=False, auth=auth
    )
    return response


def test_collections_are_what_the_caller_may_read(live_server, accounts):
    body = _get(f"{live_server}/ogc/collections", f="json").json()
    ids = {c["id"] for c in body["collections"]}
    assert ids == PUBLISHED == {layer.id for layer in public_layers()}
    analyst = {c["id"] for c in _get(f"{live_server}/ogc/collections", accounts["analyst"].auth).json()["collections"]}
    assert analyst == ANALYST
    admin = {c["id"] for c in _get(f"{live_server}/ogc/collections", accounts["administrator"].auth).json()["collections"]}
    assert admin == ANALYST | {"care_subjects"}


def test_landing_page_has_what_qgis_needs(live_server):
    for url in (f"{live_server}/ogc", f"{live_server}/ogc/"):
        response = _get(url)
        assert response.status_code == 200, url
        links = response.json()["links"]
        assert any(l["rel"] == "service-desc" and l["type"].startswith("application/vnd.oai.openapi+json") for l in links)
        assert any(l["rel"] == "data" and l["type"] == "application/json" for l in links)


@pytest.mark.parametrize("path", ["/ogc/collections", "/ogc/collections/", "/ogc/conformance", "/ogc/collections/grids/items"])
def test_no_redirects(live_server, path):
    for method in ("GET", "OPTIONS"):
        response = requests.request(method, live_server + path, allow_redirects=False, timeout=30)
        assert response.status_code < 300, (method, path, response.status_code)


def test_items_paging_by_next_links_reads_everything(live_server):
    url = f"{live_server}/ogc/collections/buildings/items?f=json&limit=100"
    seen, pages = set(), 0
    while url:
        body = requests.get(url, timeout=30).json()
        pages += 1
        seen |= {f["id"] for f in body["features"]}
        url = next((l["href"] for l in body["links"] if l["rel"] == "next"), None)
        if not body["features"]:
            break
    assert len(seen) == m.Building.objects.count()
    assert pages >= 4


def test_item_by_id_and_unknown_id(live_server):
    grid = m.Grid.objects.get(level=1)
    body = _get(f"{live_server}/ogc/collections/grids/items/{grid.id}", f="json").json()
    assert body["properties"]["code"] == grid.code
    assert _get(f"{live_server}/ogc/collections/grids/items/99999999", f="json").status_code == 404
    assert _get(f"{live_server}/ogc/collections/grids/items/not-a-number", f="json").status_code == 404


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"limit": "-1"}, "limit"),
        ({"level": "three"}, "level: 'three' is not a valid integer"),
        ({"bbox": "34.77,113.68,34.745,113.64"}, "axis order: without bbox-crs a bbox is lon,lat"),
        ({"bbox": "34.745,113.64,34.77,113.68"}, "axis order: without bbox-crs a bbox is lon,lat"),
        ({"colour": "red", "levle": "3"}, "unknown query parameters 'colour', 'levle'"),
        ({"full_name": "x"}, "unknown query parameter 'full_name'"),  # not a queryable of grids
    ],
)
def test_bad_requests_are_400_with_a_reason(live_server, params, fragment):
    response = _get(f"{live_server}/ogc/collections/grids/items", f="json", **params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["description"]


def test_a_gateway_key_and_queryables_are_not_unknown(live_server):
    response = _get(f"{live_server}/ogc/collections/grids/items", f="json", level="3", api_key="k")
    assert response.status_code == 200 and {f["properties"]["level"] for f in response.json()["features"]} == {3}
    html = requests.get(f"{live_server}/ogc/collections/grids/items", params={"f": "html", "nope": "1"}, timeout=30)
    assert html.status_code == 400 and "'nope'" in html.text


def test_unknown_and_restricted_collections(live_server, accounts):
    anonymous = _get(f"{live_server}/ogc/collections/care_subjects/items", f="json")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert _get(f"{live_server}/ogc/collections/care_subjects/items", accounts["analyst"].auth).status_code == 403
    assert _get(f"{live_server}/ogc/collections/incidents/items", f="json").status_code == 401
    assert _get(f"{live_server}/ogc/collections/nope", f="json").status_code == 404


def test_private_things_stay_private(live_server, accounts):
    analyst = accounts["analyst"].auth
    for layer in ANALYST:
        body = _get(f"{live_server}/ogc/collections/{layer}/items", analyst, f="json", limit=1000).json()
        for feature in body["features"]:
            assert not PERSONAL_FIELDS & set(feature["properties"]), layer
            assert "notes" not in feature["properties"], layer
    cameras = _get(f"{live_server}/ogc/collections/cameras/items", analyst, f="json", limit=1000).json()["features"]
    assert cameras and all(f["properties"]["purpose"] != "peephole" for f in cameras)
    incidents = _get(f"{live_server}/ogc/collections/incidents/items", analyst, f="json", limit=1000).json()["features"]
    assert incidents and all(f["properties"]["category"] != "elder_inactivity" for f in incidents)
    assert m.Incident.objects.filter(category="elder_inactivity").exists()  # they exist, just not published


def test_bbox_filters(live_server):
    grid = m.Grid.objects.filter(level=3).order_by("code").first()
    minx, miny, maxx, maxy = grid.geom.extent
    body = _get(f"{live_server}/ogc/collections/buildings/items", f="json", limit=1000,
                bbox=f"{minx},{miny},{maxx},{maxy}").json()
    expected = m.Building.objects.filter(geom__bboverlaps=grid.geom.envelope).count()
    assert 0 < len(body["features"]) == expected < m.Building.objects.count()


def test_owslib_reads_the_api(live_server, accounts):
    from owslib.ogcapi.features import Features
    from owslib.util import Authentication

    api = Features(f"{live_server}/ogc")
    ids = {c["id"] for c in api.collections()["collections"]}
    assert ids == PUBLISHED
    items = api.collection_items("grids", limit=50)
    assert len(items["features"]) == 22
    signed_in = Features(f"{live_server}/ogc", auth=Authentication(*accounts["analyst"].auth))
    assert {c["id"] for c in signed_in.collections()["collections"]} == ANALYST
    incidents = signed_in.collection_items("incidents", limit=5, bbox=[113.6, 34.7, 113.7, 34.8])
    assert incidents["numberReturned"] == 5 and incidents["numberMatched"] > 5
    projected = signed_in.collection_items(
        "buildings", limit=3, crs="http://www.opengis.net/def/crs/EPSG/0/4547"
    )
    northing, easting = projected["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 3_800_000 < northing < 3_900_000 and 400_000 < easting < 600_000  # EPSG:4547 is northing first
    assert signed_in.collection_queryables("buildings")["properties"]["floors"]["type"] == "integer"


@needs_ogr
def test_ogrinfo_lists_collections_and_reads_level3_grids(live_server):
    listing = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{live_server}/ogc"], capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    for layer in PUBLISHED:
        assert f": {layer} " in listing.stdout or f": {layer}\n" in listing.stdout, listing.stdout
    dump = subprocess.run(
        ["ogrinfo", "-ro", "-json" if _ogr_supports_json() else "-al", f"OAPIF:{live_server}/ogc", "grids",
         "-where", "level=3"],
        capture_output=True, text=True, timeout=120,
    )
    assert dump.returncode == 0, dump.stderr
    features = _ogr_features(dump.stdout)
    expected = {g.code: g for g in m.Grid.objects.filter(level=3).select_related("parent")}
    assert {f["code"] for f in features} == set(expected)
    for f in features:
        grid = expected[f["code"]]
        assert f["name"] == grid.name
        assert f["parent_code"] == grid.parent.code
        assert int(f["level"]) == 3
        assert f["responsible_unit"] == grid.responsible_unit


@needs_ogr
def test_ogr2ogr_reads_a_restricted_layer_with_a_token_in_pages_and_a_bbox(live_server, accounts, tmp_path):
    analyst = accounts["analyst"]
    out = tmp_path / "incidents.gpkg"
    grid = m.Grid.objects.filter(level=2).order_by("code").first()
    minx, miny, maxx, maxy = grid.geom.extent
    result = subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live_server}/ogc", "incidents",
         "-oo", "PAGE_SIZE=25", "-oo", f"USERPWD={analyst.username}:{analyst.token}",
         "-spat", str(minx), str(miny), str(maxx), str(maxy)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    import pyogrio

    expected = (
        m.Incident.objects.exclude(category="elder_inactivity")
        .filter(geom__intersects=grid.geom.envelope).count()
    )
    assert expected > 60  # several pages of 25
    assert pyogrio.read_info(out)["features"] == expected
    denied = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{live_server}/ogc", "incidents", "-oo", "USERPWD=nobody:om_wrong"],
        capture_output=True, text=True, timeout=120,
    )
    assert denied.returncode != 0
    m.LoginFailure.objects.all().delete()  # later tests come from the same address


@needs_ogr
def test_ogr2ogr_pages_through_a_layer(live_server, tmp_path):
    out = tmp_path / "buildings.gpkg"
    result = subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{live_server}/ogc", "buildings", "-oo", "PAGE_SIZE=50"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    import pyogrio

    assert pyogrio.read_info(out)["features"] == m.Building.objects.count()


def _ogr_supports_json() -> bool:
    return False  # GDAL 3.6's ogrinfo has no -json for vector data; parse the text dump


def _ogr_features(text: str) -> list[dict]:
    features, current = [], None
    for line in text.splitlines():
        if line.startswith("OGRFeature("):
            current = {}
            features.append(current)
        elif current is not None and " = " in line and line.startswith("  ") and "(" in line:
            key_type, value = line.strip().split(" = ", 1)
            current[key_type.split(" (")[0]] = value
    return features


def test_home_page_lists_the_layers(live_server):
    response = requests.get(live_server + "/", timeout=30)
    assert response.status_code == 200
    for layer in PUBLISHED:
        assert f"<code>{layer}</code>" in response.text
    assert "synthetic" in response.text
    assert response.headers["X-Frame-Options"] == "DENY"


def test_html_pages_find_their_stylesheet(live_server):
    page = requests.get(f"{live_server}/ogc/collections/grids/items?f=html", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert '<link rel="stylesheet" href="/vendor/bootstrap/bootstrap.min.css">' in page.text  # `onemap vendor`
    css = requests.get(f"{live_server}/vendor/bootstrap/bootstrap.min.css", timeout=30)
    assert css.status_code == 200 and css.text.strip()
    assert requests.get(f"{live_server}/ogc/static/../../host/settings.py", timeout=30).status_code == 404


def test_next_link_is_what_qgis_follows(live_server):
    """QGIS pages only along rel=next typed application/geo+json, and the link must keep the query."""
    response = requests.get(
        f"{live_server}/ogc/collections/buildings/items",
        params={"limit": 7, "bbox": "113.6,34.7,113.7,34.8"},
        headers={"Accept": "application/geo+json, application/json"},
        timeout=30,
    )
    body = response.json()
    assert body["numberReturned"] == 7 and body["numberMatched"] == m.Building.objects.count()
    nxt = [l for l in body["links"] if l["rel"] == "next"]
    assert len(nxt) == 1 and nxt[0]["type"] == "application/geo+json"
    assert "bbox=113.6,34.7,113.7,34.8" in nxt[0]["href"] and "limit=7" in nxt[0]["href"]


def test_gdal_oapif_driver_asks_for_a_crs_and_pages_in_it(live_server, accounts):
    """GDAL 3.12 (bundled with pyogrio) sends `crs` and `bbox-crs`; Debian's GDAL 3.6 cannot."""
    import pyogrio
    from pyproj import Transformer

    if "OAPIF" not in pyogrio.list_drivers():
        pytest.skip("pyogrio's GDAL has no OAPIF driver")
    analyst = accounts["analyst"]
    url = f"OAPIF:{live_server}/ogc"
    options = {"PAGE_SIZE": "40", "USERPWD": f"{analyst.username}:{analyst.token}"}
    plain = pyogrio.read_dataframe(url, layer="buildings", **options)
    projected = pyogrio.read_dataframe(url, layer="buildings", CRS="EPSG:4547", **options)
    assert len(plain) == len(projected) == m.Building.objects.count() > 40 * 3  # several pages
    assert projected.crs.to_epsg() == 4547
    import os
    from pathlib import Path

    database = os.environ.get("ONEMAP_TEST_DATABASE", "onemap_test")
    log_path = Path(__file__).resolve().parent.parent / ".var" / f"test-server-{database}.log"
    asked = "crs=http://www.opengis.net/def/crs/EPSG/0/4547"
    deadline = time.monotonic() + 10  # the access log is written every half second (host.access_log)
    while asked not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert asked in log_path.read_text()  # asked of the server, not reprojected by GDAL
    by_code = dict(zip(projected["code"], projected.geometry))
    to_gk = Transformer.from_crs("OGC:CRS84", "EPSG:4547", always_xy=True)
    for code, geometry in list(zip(plain["code"], plain.geometry))[:20]:
        x, y = to_gk.transform(*geometry.exterior.coords[0] if geometry.geom_type == "Polygon"
                               else geometry.geoms[0].exterior.coords[0])
        px, py = (by_code[code].geoms[0] if by_code[code].geom_type == "MultiPolygon" else by_code[code]).exterior.coords[0]
        assert abs(px - x) < 0.05 and abs(py - y) < 0.05, code  # GDAL read the server's northing-first order right
    grid = m.Grid.objects.filter(level=3).order_by("code").first()
    minx, miny, maxx, maxy = grid.geom.extent
    (x1, y1), (x2, y2) = to_gk.transform(minx, miny), to_gk.transform(maxx, maxy)
    boxed = pyogrio.read_dataframe(url, layer="buildings", CRS="EPSG:4547", bbox=(x1, y1, x2, y2), **options)
    expected = m.Building.objects.filter(geom__intersects=grid.geom.envelope).count()
    assert 0 < len(boxed) <= len(projected) and abs(len(boxed) - expected) <= max(2, expected // 20)
