"""The daily incident kernel density: GeoTIFF in EPSG:4547, cache, web overlay, downloads, roles, CLI, GDAL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest
import rasterio
from django.test import Client
from pyproj import Transformer

from gis import models as m
from gis.incidents.services import incident_create
from layers import density

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAY = date(2031, 3, 14)  # far from the demo's incidents: only ours are on it
EMPTY_DAY = date(2031, 3, 10)  # between the demo's days and DAY: in range, with no incident
CLUSTER = 30  # incidents within a few metres of one spot
SPREAD = 10  # incidents spread over other level-3 grids
TO_4547 = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
TO_3857 = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)


@pytest.fixture(scope="module")
def placed(demo_db):
    """Our incidents, committed (the live server must see them) and removed afterwards."""
    grids = list(m.Grid.objects.filter(level=3).order_by("code"))
    centre_grid = grids[5]
    centre = centre_grid.geom.point_on_surface
    rng = np.random.default_rng(7)
    local_noon = datetime.combine(DAY, time(10, 0), tzinfo=density.TZ)
    assert len(grids) > SPREAD
    cluster = [(centre.x + dx, centre.y + dy) for dx, dy in rng.uniform(-0.00002, 0.00002, (CLUSTER, 2))]
    spread = [grid.geom.point_on_surface for grid in grids if grid != centre_grid][:SPREAD]
    made = []
    for n, (lon, lat) in enumerate(cluster):
        made.append(incident_create(lon=lon, lat=lat, category="falling_object", source="camera",
                                    code=f"DENS-C{n:03d}", reported_at=local_noon))
    for n, point in enumerate(spread):
        made.append(incident_create(lon=point.x, lat=point.y, category="sanitation", source="staff",
                                    code=f"DENS-S{n:03d}", reported_at=local_noon + timedelta(hours=n)))
    # a minute before local midnight the day before, and just after the day: not ours
    for code, when in (("DENS-BEFORE", datetime.combine(DAY, time.min, tzinfo=density.TZ) - timedelta(minutes=1)),
                       ("DENS-AFTER", datetime.combine(DAY + timedelta(days=1), time.min, tzinfo=density.TZ))):
        made.append(incident_create(lon=centre.x, lat=centre.y, category="sanitation", source="staff",
                                    code=code, reported_at=when))
    yield {"centre": (centre.x, centre.y), "centre_grid": centre_grid, "cluster": cluster,
           "spread": [(p.x, p.y) for p in spread]}
    m.Incident.objects.filter(code__startswith="DENS-").delete()


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh cache folder for this test, also for the views (they use density_dir())."""
    monkeypatch.setenv("ONEMAP_VAR_DIR", str(tmp_path))
    return tmp_path / "density"


def _raster(**kwargs):
    return density.density_raster(request=density.density_request(**kwargs))


def _valid(path):
    with rasterio.open(path) as src:
        band = src.read(1)
        return band[band != src.nodata], src


# -- the kernel itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bandwidth, cell", [(75, 10), (75, 7), (200, 25), (30, 2)])
def test_the_kernel_integrates_to_one(bandwidth, cell):
    kernel = density.quartic_kernel(bandwidth_m=bandwidth, cell_m=cell)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.sum() * (cell / 1000) ** 2 == pytest.approx(1.0)
    assert kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] == kernel.max()
    assert kernel[0, 0] == 0  # the corners lie beyond the bandwidth


@pytest.mark.parametrize("n", [1, 7, 17, 97, 1000, 1531])
def test_fft_lengths_are_smooth_and_not_smaller(n):
    length = density._fft_length(n)
    assert n <= length <= 2 * n
    rest = length
    for factor in (2, 3, 5):
        while rest % factor == 0:
            rest //= factor
    assert rest == 1


def test_convolution_equals_the_sum_of_kernels():
    kernel = density.quartic_kernel(bandwidth_m=30, cell_m=10)
    counts = np.zeros((40, 50))
    counts[10, 12] = 3
    counts[30, 40] = 1
    expected = np.zeros_like(counts)
    r = kernel.shape[0] // 2
    expected[10 - r : 10 + r + 1, 12 - r : 12 + r + 1] += 3 * kernel
    expected[30 - r : 30 + r + 1, 40 - r : 40 + r + 1] += kernel
    assert np.allclose(density._convolve(counts, kernel), expected, atol=kernel.max() * 1e-9)


# -- the GeoTIFF ----------------------------------------------------------------------------------------------


def test_geotiff_is_epsg_4547_tiled_deflate_with_tags(placed, cache_dir):
    raster = _raster(day=DAY)
    assert raster.path == cache_dir / f"incidents-{DAY}.tif"
    assert raster.count == CLUSTER + SPREAD and raster.computed
    with rasterio.open(raster.path) as src:
        assert src.crs.to_epsg() == 4547
        assert src.dtypes == ("float32",) and src.nodata == density.NODATA
        assert src.profile["tiled"] and src.compression.name.lower() == "deflate"
        assert src.res == (10.0, 10.0)
        tags = src.tags()
        assert tags["DAY"] == str(DAY) and tags["KERNEL"] == "quartic"
        assert float(tags["BANDWIDTH_M"]) == 75 and float(tags["CELL_M"]) == 10
        assert int(tags["COUNT"]) == CLUSTER + SPREAD
        assert tags["SYNTHETIC"] == "false"  # our incidents were recorded by the service, not generated
        assert "incidents per km²" in tags["TIFFTAG_IMAGEDESCRIPTION"]


def test_density_integrates_to_the_number_of_incidents(placed, cache_dir):
    raster = _raster(day=DAY)
    values, src = _valid(raster.path)
    cell_km2 = (src.res[0] / 1000) ** 2
    assert values.sum() * cell_km2 == pytest.approx(CLUSTER + SPREAD, rel=0.02)
    assert values.min() >= 0


def test_the_peak_is_at_the_cluster(placed, cache_dir):
    raster = _raster(day=DAY)
    with rasterio.open(raster.path) as src:
        band = src.read(1)
        row, col = np.unravel_index(np.argmax(band), band.shape)
        x, y = src.xy(row, col)
    cx, cy = TO_4547.transform(*placed["centre"])
    assert abs(x - cx) <= 15 and abs(y - cy) <= 15
    assert band.max() == pytest.approx(raster.max_density)
    # 30 incidents within 5 m: about 30 × 3/(π·0.075²) per km² at the peak
    assert band.max() == pytest.approx(CLUSTER * 3 / (np.pi * 0.075**2), rel=0.15)


def test_the_raster_covers_the_level1_grid_plus_a_bandwidth(placed, cache_dir):
    raster = _raster(day=DAY)
    level1 = m.Grid.objects.get(level=1).geom.transform(4547, clone=True).extent
    west, south, east, north = raster.bounds
    assert west <= level1[0] - 75 and south <= level1[1] - 75
    assert east >= level1[2] + 75 and north >= level1[3] + 75
    assert east - west < level1[2] - level1[0] + 2 * 75 + 40  # and not much more


def test_a_day_without_incidents_is_all_zero(demo_db, cache_dir):
    raster = _raster(day=EMPTY_DAY)
    values, _ = _valid(raster.path)
    assert raster.count == 0 and raster.empty and raster.max_density == 0
    assert values.size > 0 and not values.any()
    overlay = density.density_overlay(raster=raster)
    assert not _png(overlay.png)[..., 3].any()


def test_the_demo_days_are_synthetic(demo_db, cache_dir):
    days = [(day, count) for day, count in density.density_days() if day < DAY - timedelta(days=1)]
    assert days, "the demo has incidents"
    day, count = days[0]
    raster = _raster(day=day)
    assert raster.count == count > 0
    assert raster.synthetic
    with rasterio.open(raster.path) as src:
        assert src.tags()["SYNTHETIC"] == "true"
        assert "Synthetic" in src.tags()["TIFFTAG_IMAGEDESCRIPTION"]


def test_filters_by_category_and_grid(placed, cache_dir):
    falling = _raster(day=DAY, categories="falling_object")
    assert falling.count == CLUSTER and falling.path.name == f"incidents-{DAY}-falling_object.tif"
    grid = placed["centre_grid"]
    in_grid = _raster(day=DAY, grid_code=grid.code)
    assert in_grid.count == CLUSTER
    whole = _raster(day=DAY)
    assert (in_grid.bounds[2] - in_grid.bounds[0]) < (whole.bounds[2] - whole.bounds[0])
    community = _raster(day=DAY, grid_code=grid.parent.code)  # a level-2 grid counts its level-3 grids
    assert community.count >= CLUSTER
    values, src = _valid(in_grid.path)
    assert values.sum() * (src.res[0] / 1000) ** 2 == pytest.approx(CLUSTER, rel=0.02)


def test_the_cache_is_used_until_an_incident_changes(placed, cache_dir, rollback):
    first = _raster(day=DAY)
    again = _raster(day=DAY)
    assert not again.computed and again.fingerprint == first.fingerprint
    stamp = first.path.stat().st_mtime_ns
    lon, lat = placed["spread"][0]
    added = incident_create(lon=lon, lat=lat, category="fire_smoke", source="staff", code="DENS-LATE",
                            reported_at=datetime.combine(DAY, time(23, 59), tzinfo=density.TZ))
    after = _raster(day=DAY)
    assert after.computed and after.count == CLUSTER + SPREAD + 1 and after.fingerprint != first.fingerprint
    assert after.path.stat().st_mtime_ns != stamp
    from gis.incidents.services import incident_update

    incident_update(incident_id=added.id, lon=lon + 0.001, lat=lat)  # moved: same count, other raster
    moved = _raster(day=DAY)
    assert moved.computed and moved.count == after.count and moved.fingerprint != after.fingerprint
    incident_update(incident_id=added.id, status="dispatched")  # a status change does not move a point
    assert not _raster(day=DAY).computed


@pytest.mark.parametrize("kwargs, status, words", [
    ({"day": "2031-02-30"}, 400, "YYYY-MM-DD"),
    ({"day": "14/03/2031"}, 400, "YYYY-MM-DD"),
    ({"day": DAY, "grid_code": "abc"}, 400, "grid code"),
    ({"day": DAY, "categories": "falling_object,meteor"}, 400, "'meteor'"),
    ({"day": DAY, "categories": "elder_inactivity"}, 400, "unpublished"),
    ({"day": DAY, "bandwidth_m": 1}, 400, "bandwidth"),
])
def test_bad_requests_say_what_to_change(kwargs, status, words):
    with pytest.raises(density.DensityError) as caught:
        density.density_request(**kwargs)
    assert caught.value.status == status and words in str(caught.value)


def test_an_unknown_grid_is_404(demo_db, cache_dir):
    with pytest.raises(density.DensityError) as caught:
        _raster(day=DAY, grid_code="999999999999")
    assert caught.value.status == 404 and "999999999999" in str(caught.value)


# -- the web overlay --------------------------------------------------------------------------------------------


def _png(data: bytes) -> np.ndarray:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.ndim == 3 and image.shape[2] == 4
    return image[..., [2, 1, 0, 3]]  # RGBA


def test_the_overlay_bounds_contain_the_points_and_the_cluster_is_red(placed, cache_dir):
    raster = _raster(day=DAY)
    overlay = density.density_overlay(raster=raster)
    west, south, east, north = overlay.bbox
    for lon, lat in placed["cluster"] + placed["spread"]:
        assert west < lon < east and south < lat < north
    assert overlay.leaflet_bounds == [[south, west], [north, east]]
    image = _png(overlay.png)
    assert image.shape[:2] == (overlay.height, overlay.width)
    left, bottom = TO_3857.transform(west, south)
    right, top = TO_3857.transform(east, north)
    x, y = TO_3857.transform(*placed["centre"])
    col = int((x - left) / (right - left) * overlay.width)
    row = int((top - y) / (top - bottom) * overlay.height)
    red, green, blue, alpha = (int(v) for v in image[row, col])
    assert alpha > 200 and red > 180 and green < 80 and blue < 40
    assert image[0, 0, 3] == 0  # transparent where no incident is near
    assert density.density_overlay(raster=raster) is overlay  # remembered


# -- HTTP -------------------------------------------------------------------------------------------------------------


def _client(account=None) -> Client:
    if account is None:
        return Client(HTTP_HOST="127.0.0.1")
    import base64

    basic = base64.b64encode(f"{account.username}:{account.token}".encode()).decode()
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Basic {basic}")


@pytest.mark.parametrize("who, status", [
    ("administrator", 200), ("commander", 200), ("analyst", 200), ("department", 403), ("worker", 403), (None, 401),
])
@pytest.mark.parametrize("url", ["/screen/density/", f"/screen/density/{DAY}.json", f"/screen/density/{DAY}.tif"])
def test_who_may_download(placed, accounts, cache_dir, who, status, url):
    response = _client(accounts[who] if who else None).get(url)
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"].startswith('Basic realm="Community One Map"')
    if status >= 400:
        message = response.json()["error"]
        assert "analyst" in message and "commander" in message if status == 403 else "token" in message


def test_day_json_describes_the_raster_and_links_it(placed, accounts, cache_dir):
    response = _client(accounts["analyst"]).get(f"/screen/density/{DAY}.json", {"category": "falling_object"})
    assert response.status_code == 200
    document = response.json()
    assert document["date"] == str(DAY) and document["count"] == CLUSTER and not document["empty"]
    assert document["crs"] == "EPSG:4547" and document["units"] == "incidents per km²"
    assert document["categories"] == ["falling_object"] and document["max"] > 0
    south, west = document["overlay"]["leaflet_bounds"][0]
    north, east = document["overlay"]["leaflet_bounds"][1]
    lon, lat = placed["centre"]
    assert west < lon < east and south < lat < north
    links = document["links"]
    assert links["tif"].endswith(f"/screen/density/{DAY}.tif?category=falling_object")
    assert links["png"].startswith("http://") and ".png?category=falling_object" in links["png"]


def test_empty_day_json_says_so(demo_db, accounts, cache_dir):
    document = _client(accounts["commander"]).get(f"/screen/density/{EMPTY_DAY}.json").json()
    assert document["empty"] and document["count"] == 0 and "all zero" in document["note"]


def test_index_lists_days_with_counts(placed, accounts, cache_dir):
    document = _client(accounts["commander"]).get("/screen/density/").json()
    days = {entry["date"]: entry["count"] for entry in document["days"]}
    assert days[str(DAY)] == CLUSTER + SPREAD
    assert days[str(DAY - timedelta(days=1))] >= 1  # DENS-BEFORE, a minute before local midnight
    assert str(EMPTY_DAY) not in days
    assert document["latest"] == max(days)
    assert document["links"]["tif"].endswith(f"/screen/density/{document['latest']}.tif")
    assert document["templates"]["png"].endswith("/screen/density/{date}.png")
    grid = placed["centre_grid"].code
    narrowed = _client(accounts["commander"]).get("/screen/density/", {"grid": grid}).json()
    assert {e["date"]: e["count"] for e in narrowed["days"]}[str(DAY)] == CLUSTER
    assert narrowed["templates"]["json"].endswith("{date}.json?grid=" + grid)


def test_geotiff_download_headers_head_range_and_etag(placed, accounts, cache_dir, tmp_path):
    client = _client(accounts["analyst"])
    url = f"/screen/density/{DAY}.tif"
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/tiff; application=geotiff"
    assert response["Content-Disposition"] == f'attachment; filename="incidents-{DAY}.tif"'
    body = response.content
    assert int(response["Content-Length"]) == len(body) and body[:4] in (b"II*\0", b"MM\0*")
    head = client.head(url)
    assert head.status_code == 200 and head.content == b"" and int(head["Content-Length"]) == len(body)
    part = client.get(url, HTTP_RANGE="bytes=0-99")
    assert part.status_code == 206 and part.content == body[:100]
    assert part["Content-Range"] == f"bytes 0-99/{len(body)}"
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.status_code == 206 and tail.content == body[-10:]
    assert client.get(url, HTTP_RANGE=f"bytes={len(body)}-").status_code == 416
    assert client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    # GDAL reads the download
    saved = tmp_path / "download.tif"
    saved.write_bytes(body)
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(saved)], capture_output=True, text=True,
                                     check=True, timeout=60).stdout)
    assert '"EPSG",4547' in info["coordinateSystem"]["wkt"].replace(" ", "")
    assert info["metadata"][""]["DAY"] == str(DAY)
    assert info["bands"][0]["noDataValue"] == density.NODATA


def test_png_download(placed, accounts, cache_dir):
    response = _client(accounts["commander"]).get(f"/screen/density/{DAY}.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert _png(response.content)[..., 3].any()


@pytest.mark.parametrize("url, status, words", [
    ("/screen/density/2031-13-01.json", 400, "YYYY-MM-DD"),
    ("/screen/density/yesterday.tif", 400, "YYYY-MM-DD"),
    (f"/screen/density/{DAY}.json?grid=999999999999", 404, "no grid"),
    (f"/screen/density/{DAY}.png?category=meteor", 400, "choose among"),
    ("/screen/density/?category=elder_inactivity", 400, "unpublished"),
])
def test_bad_input_is_answered_with_a_sentence(demo_db, accounts, cache_dir, url, status, words):
    response = _client(accounts["analyst"]).get(url)
    assert response.status_code == status
    assert words in response.json()["error"]


def test_only_get_and_head(demo_db, accounts, cache_dir):
    response = _client(accounts["administrator"]).post(f"/screen/density/{DAY}.json")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"


# -- QGIS-style: GDAL over HTTP, and the command line -----------------------------------------------------------------


def test_gdal_reads_the_geotiff_over_http_with_basic_auth(placed, live_server, accounts):
    url = f"/vsicurl/{live_server}/screen/density/{DAY}.tif"
    analyst = accounts["analyst"]
    env = dict(os.environ, GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", CPL_VSIL_CURL_USE_HEAD="YES",
               GDAL_HTTP_USERPWD=f"{analyst.username}:{analyst.token}")
    result = subprocess.run(["gdalinfo", "-json", "-stats", url], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert '"EPSG",4547' in info["coordinateSystem"]["wkt"].replace(" ", "")
    assert info["metadata"][""]["COUNT"] == str(CLUSTER + SPREAD)
    assert float(info["bands"][0]["maximum"]) > 0
    anonymous = dict(env)
    del anonymous["GDAL_HTTP_USERPWD"]
    refused = subprocess.run(["gdalinfo", url], capture_output=True, text=True, env=anonymous, timeout=120)
    assert refused.returncode != 0


def _onemap(*args, database_url):
    env = dict(os.environ, ONEMAP_DATABASE_URL=database_url)
    return subprocess.run([sys.executable, "-m", "host.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_cli_writes_the_geotiffs(placed, database_url, tmp_path):
    one = tmp_path / "one.tif"
    result = _onemap("density", "--date", str(DAY), "--category", "falling_object", "--out", str(one),
                     database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert str(one) in result.stdout and f"{CLUSTER:>7,} incidents" in result.stdout
    with rasterio.open(one) as src:
        assert src.crs.to_epsg() == 4547 and src.tags()["COUNT"] == str(CLUSTER)
    folder = tmp_path / "days"
    result = _onemap("density", "--date", str(DAY + timedelta(days=1)), "--days", "3", "--out", str(folder),
                     database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == [
        f"incidents-{DAY - timedelta(days=1)}.tif", f"incidents-{DAY}.tif", f"incidents-{DAY + timedelta(days=1)}.tif"
    ]
    bad = _onemap("density", "--date", "2031-3-14", database_url=database_url)
    assert bad.returncode == 1 and "YYYY-MM-DD" in bad.stderr and "Traceback" not in bad.stderr
