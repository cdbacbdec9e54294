"""OGC API Features Parts 1–4 and Tiles on the live server: links, CRS axis order, CQL2, transactions, tiles."""

from __future__ import annotations

import json
import math
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pyproj import Transformer

from gis import models as m

GEOJSON = "application/geo+json"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def _get(url, auth=None, **params):
    return requests.get(url, params=params, auth=auth, timeout=30, allow_redirects=False,
                        headers={"Accept": "application/geo+json, application/json"})


def _ids(body) -> list:
    return [f["id"] for f in body["features"]]


# ---------------------------------------------------------------- Part 1: links, paging, counts


def test_every_page_links_onward_keeping_every_parameter(live_server):
    params = {"limit": "30", "bbox": "113.64,34.745,113.68,34.77", "sortby": "-floors",
              "properties": "code,floors", "apikey": "kept-too"}
    url = f"{live_server}/ogc/collections/buildings/items"
    seen, floors, pages = [], [], 0
    body = _get(url, **params).json()
    while True:
        pages += 1
        assert body["numberReturned"] == len(body["features"])
        assert set(body["features"][0]["properties"]) == {"code", "floors"} if body["features"] else True
        seen += _ids(body)
        floors += [f["properties"]["floors"] for f in body["features"]]
        links = {link["rel"]: link for link in body["links"]}
        assert links["self"]["type"] == GEOJSON
        nxt = links.get("next")
        if nxt is None:
            break
        assert nxt["type"] == GEOJSON
        query = {k: v[0] for k, v in parse_qs(urlsplit(nxt["href"]).query).items()}
        for key, value in params.items():
            assert query[key] == value, (key, nxt["href"])
        assert int(query["offset"]) == len(seen)
        body = requests.get(nxt["href"], timeout=30).json()
        assert "prev" in {link["rel"] for link in body["links"]}
    expected = m.Building.objects.filter(geom__intersects=_envelope(113.64, 34.745, 113.68, 34.77)).count()
    assert len(seen) == len(set(seen)) == expected == body["numberMatched"]
    assert pages == math.ceil(expected / 30) > 3
    assert floors == sorted(floors, reverse=True)


def _envelope(*bbox):
    from django.contrib.gis.geos import Polygon

    return Polygon.from_bbox(bbox)


def test_number_matched_is_exact_when_filtered_and_unfiltered(live_server, accounts):
    analyst = accounts["analyst"].auth
    body = _get(f"{live_server}/ogc/collections/incidents/items", analyst, limit=5, status="new").json()
    expected = m.Incident.objects.filter(status="new").exclude(category="elder_inactivity").count()
    assert body["numberMatched"] == expected
    body = _get(f"{live_server}/ogc/collections/buildings/items", limit=5).json()
    assert body["numberMatched"] == m.Building.objects.count()


def test_a_write_refreshes_the_cached_count(live_server, accounts):
    admin = accounts["administrator"].auth
    url = f"{live_server}/ogc/collections/no_parking_zones/items"
    before = _get(url, limit=1).json()["numberMatched"]
    created = _post(url, admin, _square(113.6561, 34.7551))
    assert created.status_code == 201, created.text
    try:
        assert _get(url, limit=1).json()["numberMatched"] == before + 1
    finally:
        assert requests.delete(created.headers["Location"], auth=admin, timeout=30).status_code == 204
    assert _get(url, limit=1).json()["numberMatched"] == before


def test_limit_bounds_and_datetime(live_server, accounts):
    analyst = accounts["analyst"].auth
    url = f"{live_server}/ogc/collections/incidents/items"
    assert len(_get(url, analyst, limit=10000).json()["features"]) == m.Incident.objects.exclude(
        category="elder_inactivity").count()
    start, end = "2026-11-01T00:00:00+08:00", "2026-11-10T00:00:00+08:00"
    body = _get(url, analyst, limit=1000, datetime=f"{start}/{end}").json()
    from datetime import datetime

    expected = m.Incident.objects.exclude(category="elder_inactivity").filter(
        reported_at__gte=datetime.fromisoformat(start), reported_at__lte=datetime.fromisoformat(end)).count()
    assert 0 < body["numberMatched"] == expected == len(body["features"])
    open_ended = _get(url, analyst, limit=1, datetime=f"{end}/..").json()
    assert open_ended["numberMatched"] == m.Incident.objects.exclude(category="elder_inactivity").filter(
        reported_at__gte=datetime.fromisoformat(end)).count()


@pytest.mark.parametrize(
    "collection, params, status, fragment",
    [
        ("buildings", {"bbox": "113.6,34.7,113.7"}, 400, "bbox: expected 4 numbers"),
        ("buildings", {"bbox": "north,34.7,113.7,34.8"}, 400, "not four comma-separated numbers"),
        ("buildings", {"bbox": "113.7,34.7,113.6,34.8"}, 400, "lower corner must come first"),
        ("buildings", {"bbox": "113.6,34.7,113.7,34.8", "bbox-crs": EPSG.format(4326)}, 400, "latitude first"),
        ("buildings", {"filter": "floors >"}, 400, "filter"),
        ("buildings", {"filter": "hieght > 3"}, 400, "did you mean 'height_m'"),
        ("buildings", {"filter": "floors = 'seven'"}, 400, "floors"),
        ("buildings", {"filter": "floors = 3", "filter-lang": "sql"}, 400, "cql2-text"),
        ("buildings", {"crs": "EPSG:27700"}, 400, "unsupported CRS"),
        ("buildings", {"bbox-crs": "urn:nope"}, 400, "bbox-crs"),
        ("buildings", {"limit": "0"}, 400, "limit: 0 is out of range"),
        ("buildings", {"limit": "10001"}, 400, "use a value from 1 to 10000"),
        ("buildings", {"limit": "ten"}, 400, "not an integer"),
        ("buildings", {"offset": "-5"}, 400, "offset"),
        ("buildings", {"datetime": "2026-11-01T00:00:00Z"}, 400, "has no time"),
        ("buildings", {"sortby": "colour"}, 400, "sortby: unknown property 'colour'"),
        ("buildings", {"properties": "code,colour"}, 400, "properties: unknown 'colour'"),
        ("buildings", {"f": "xml"}, 400, "f: 'xml' is not offered"),
        ("buildings", {"floors": "many"}, 400, "floors: 'many' is not a valid integer"),
    ],
)
def test_bad_requests_answer_ogc_exceptions_that_say_what_to_change(live_server, collection, params, status, fragment):
    response = _get(f"{live_server}/ogc/collections/{collection}/items", **params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == "InvalidParameterValue"
    assert fragment in body["description"], body["description"]


# ---------------------------------------------------------------- Part 2: CRS


def _first_vertex(feature):
    coordinates = feature["geometry"]["coordinates"]
    while isinstance(coordinates[0], list):
        coordinates = coordinates[0]
    return coordinates


@pytest.mark.parametrize("srid, north_first", [(4326, True), (4490, True), (4547, True), (3857, False)])
def test_crs_axis_order_and_content_crs(live_server, srid, north_first):
    building = m.Building.objects.order_by("id").first()
    url = f"{live_server}/ogc/collections/buildings/items/{building.id}"
    lon, lat = _first_vertex(_get(url).json())
    response = _get(url, crs=EPSG.format(srid))
    assert response.headers["Content-Crs"] == f"<{EPSG.format(srid)}>"
    got = _first_vertex(response.json())
    x, y = Transformer.from_crs("OGC:CRS84", f"EPSG:{srid}", always_xy=True).transform(lon, lat)
    expected = (y, x) if north_first else (x, y)
    tolerance = 1e-6 if srid in (4326, 4490) else 0.05
    assert got == pytest.approx(expected, abs=tolerance)
    items = _get(f"{live_server}/ogc/collections/buildings/items", crs=EPSG.format(srid), limit=1)
    assert items.headers["Content-Crs"] == f"<{EPSG.format(srid)}>"
    assert _get(url).headers["Content-Crs"] == f"<{CRS84}>"


@pytest.mark.parametrize("srid", [4326, 4490, 4547, 3857])
def test_bbox_crs_selects_the_same_features(live_server, srid):
    bbox = (113.65, 34.75, 113.66, 34.76)
    plain = set(_ids(_get(f"{live_server}/ogc/collections/buildings/items", bbox=",".join(map(str, bbox)), limit=1000).json()))
    to = Transformer.from_crs("OGC:CRS84", f"EPSG:{srid}", always_xy=True)
    (x1, y1), (x2, y2) = to.transform(bbox[0], bbox[1]), to.transform(bbox[2], bbox[3])
    corners = (y1, x1, y2, x2) if srid in (4326, 4490, 4547) else (x1, y1, x2, y2)
    other = _get(f"{live_server}/ogc/collections/buildings/items", bbox=",".join(map(str, corners)),
                 **{"bbox-crs": EPSG.format(srid)}, limit=1000).json()
    got = set(_ids(other))
    assert plain and len(got ^ plain) <= max(2, len(plain) // 50)  # a projected box is not exactly a lon/lat box


def test_collections_declare_their_crs(live_server):
    body = _get(f"{live_server}/ogc/collections/buildings").json()
    assert body["storageCrs"] == CRS84
    assert {CRS84, EPSG.format(4326), EPSG.format(4490), EPSG.format(4547), EPSG.format(3857)} <= set(body["crs"])


# ---------------------------------------------------------------- Part 3: filtering


def test_conformance_declares_what_qgis_looks_for(live_server):
    classes = set(_get(f"{live_server}/ogc/conformance").json()["conformsTo"])
    for needed in (
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
        "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
        "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
        "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
        "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    ):
        assert needed in classes


@pytest.mark.parametrize(
    "text, json_filter, where",
    [
        ("floors >= 12 AND use = 'residential'",
         {"op": "and", "args": [{"op": ">=", "args": [{"property": "floors"}, 12]},
                                {"op": "=", "args": [{"property": "use"}, "residential"]}]},
         {"floors__gte": 12, "use": "residential"}),
        ("S_INTERSECTS(geometry, BBOX(113.65, 34.75, 113.66, 34.76))",
         {"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [113.65, 34.75, 113.66, 34.76]}]},
         {"geom__intersects": _envelope(113.65, 34.75, 113.66, 34.76)}),
        ("name LIKE '%1号楼' OR built_year BETWEEN 1990 AND 1995",
         {"op": "or", "args": [{"op": "like", "args": [{"property": "name"}, "%1号楼"]},
                               {"op": "between", "args": [{"property": "built_year"}, 1990, 1995]}]},
         None),
    ],
)
def test_cql2_text_and_json_give_the_same_rows(live_server, text, json_filter, where):
    import json

    url = f"{live_server}/ogc/collections/buildings/items"
    by_text = _get(url, limit=1000, filter=text).json()
    by_json = _get(url, limit=1000, filter=json.dumps(json_filter), **{"filter-lang": "cql2-json"}).json()
    assert _ids(by_text) == _ids(by_json) and by_text["numberMatched"] == len(by_text["features"]) > 0
    if where is not None:
        assert set(_ids(by_text)) == set(m.Building.objects.filter(**where).values_list("id", flat=True))


def test_filter_crs_reads_latitude_first(live_server):
    url = f"{live_server}/ogc/collections/buildings/items"
    lonlat = _get(url, limit=1000, filter="S_INTERSECTS(geometry, BBOX(113.65, 34.75, 113.66, 34.76))").json()
    latlon = _get(url, limit=1000, filter="S_INTERSECTS(geometry, BBOX(34.75, 113.65, 34.76, 113.66))",
                  **{"filter-crs": EPSG.format(4326)}).json()
    assert _ids(lonlat) == _ids(latlon) and lonlat["features"]


def test_queryables_list_the_properties(live_server):
    body = _get(f"{live_server}/ogc/collections/buildings/queryables").json()
    assert body["properties"]["floors"]["type"] == "integer"
    assert "geometry" in body["properties"] or "geom" in str(body)


# ---------------------------------------------------------------- Part 4: transactions


def _square(lon, lat, size=0.00005):
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"name": "测试禁停区", "reason": "fire_lane"}}


def _post(url, auth, feature, **headers):
    import json

    return requests.post(url, data=json.dumps(feature), auth=auth, timeout=30,
                         headers={"Content-Type": "application/geo+json", **headers})


def test_options_answers_allow_per_role(live_server, accounts):
    url = f"{live_server}/ogc/collections/no_parking_zones/items"
    allow = lambda response: set(response.headers["Allow"].replace(" ", "").split(","))  # noqa: E731
    assert allow(requests.options(url, timeout=30)) == {"GET", "HEAD", "OPTIONS"}
    assert allow(requests.options(url, auth=accounts["administrator"].auth, timeout=30)) == {"GET", "HEAD", "OPTIONS", "POST"}
    zone = m.NoParkingZone.objects.first()
    item = requests.options(f"{url}/{zone.id}", auth=accounts["administrator"].auth, timeout=30)
    assert allow(item) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}
    incidents = f"{live_server}/ogc/collections/incidents/items"
    assert allow(requests.options(incidents, auth=accounts["analyst"].auth, timeout=30)) == {"GET", "HEAD", "OPTIONS"}
    assert "POST" in allow(requests.options(incidents, auth=accounts["worker"].auth, timeout=30))
    assert allow(requests.options(f"{incidents}/1", auth=accounts["department"].auth, timeout=30)) == {
        "GET", "HEAD", "OPTIONS", "PUT", "PATCH"}


def test_create_replace_update_delete_with_status_codes_and_headers(live_server, accounts):
    admin = accounts["administrator"].auth
    url = f"{live_server}/ogc/collections/no_parking_zones/items"
    created = _post(url, admin, _square(113.6561, 34.7551))
    assert created.status_code == 201
    location = created.headers["Location"]
    assert location.startswith(f"{live_server}/ogc/collections/no_parking_zones/items/")
    feature = _get(location, admin).json()
    assert feature["properties"]["name"] == "测试禁停区" and feature["properties"]["grid_code"]
    replaced = _square(113.6562, 34.7552)
    replaced["properties"] = {"name": "改名", "reason": "hydrant", "code": "ignored", "grid_code": "ignored"}
    put = requests.put(location, json=replaced, auth=admin, timeout=30, headers={"Content-Type": "application/geo+json"})
    assert put.status_code == 204, put.text
    after = _get(location, admin).json()
    assert after["properties"]["reason"] == "hydrant" and _first_vertex(after) == pytest.approx([113.6562, 34.7552])
    patch = requests.patch(location, json={"type": "Feature", "properties": {"reason": "entrance"}}, auth=admin,
                           timeout=30, headers={"Content-Type": "application/geo+json"})
    assert patch.status_code == 204
    assert _get(location, admin).json()["properties"] == {**after["properties"], "reason": "entrance"}
    assert requests.delete(location, auth=admin, timeout=30).status_code == 204
    assert _get(location, admin).status_code == 404
    assert requests.delete(location, auth=admin, timeout=30).status_code == 404


def test_create_in_another_crs_honours_its_axis_order(live_server, accounts):
    admin = accounts["administrator"].auth
    url = f"{live_server}/ogc/collections/no_parking_zones/items"
    feature = _square(113.6561, 34.7551)
    ring = feature["geometry"]["coordinates"][0]
    feature["geometry"]["coordinates"] = [[[lat, lon] for lon, lat in ring]]
    created = _post(url, admin, feature, **{"Content-Crs": f"<{EPSG.format(4326)}>"})
    assert created.status_code == 201, created.text
    try:
        assert _first_vertex(_get(created.headers["Location"], admin).json()) == pytest.approx([113.6561, 34.7551])
    finally:
        requests.delete(created.headers["Location"], auth=admin, timeout=30)


@pytest.mark.parametrize(
    "change, status, fragment",
    [
        ({"geometry": {"type": "Point", "coordinates": [113.65, 34.75]}}, 400, "must be a GeoJSON Polygon"),
        ({"geometry": {"type": "Polygon", "coordinates": [[[113.65, 34.75], [113.66, 34.76], [113.66, 34.75],
                                                           [113.65, 34.76], [113.65, 34.75]]]}}, 400, "not valid"),
        ({"properties": {"reason": "because"}}, 400, "reason must be one of"),
        ({"properties": {"colour": "red"}}, 400, "unknown property 'colour'"),
        ({"type": "FeatureCollection"}, 400, "one GeoJSON Feature"),
    ],
)
def test_bad_bodies_are_400_with_reasons_and_write_nothing(live_server, accounts, change, status, fragment):
    before = m.NoParkingZone.objects.count()
    feature = {**_square(113.6561, 34.7551), **change}
    response = _post(f"{live_server}/ogc/collections/no_parking_zones/items", accounts["administrator"].auth, feature)
    assert response.status_code == status and fragment in response.json()["description"], response.text
    assert m.NoParkingZone.objects.count() == before


def test_writes_need_the_right_role_and_media_type(live_server, accounts):
    url = f"{live_server}/ogc/collections/no_parking_zones/items"
    anonymous = _post(url, None, _square(113.6561, 34.7551))  # a role may write here: sign in, says the challenge
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    assert _post(url, accounts["analyst"].auth, _square(113.6561, 34.7551)).status_code == 405
    wrong = requests.post(url, data="<xml/>", auth=accounts["administrator"].auth, timeout=30,
                          headers={"Content-Type": "application/xml"})
    assert wrong.status_code == 415
    not_json = requests.post(url, data="{nope", auth=accounts["administrator"].auth, timeout=30,
                             headers={"Content-Type": "application/geo+json"})
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["description"]


def test_incident_case_fields_through_owslib(live_server, accounts):
    from owslib.ogcapi.features import Features
    from owslib.util import Authentication

    api = Features(f"{live_server}/ogc", auth=Authentication(*accounts["commander"].auth))
    incident = m.Incident.objects.exclude(category="elder_inactivity").filter(status="new").first()
    original = (incident.status, incident.notes, incident.resolved_at)
    try:
        api.collection_item_update("incidents", incident.id,
                                   {"type": "Feature", "properties": {"status": "dispatched", "notes": "派单"}})
        incident.refresh_from_db()
        assert (incident.status, incident.notes) == ("dispatched", "派单")
        assert api.collection_item("incidents", incident.id)["properties"]["notes"] == "派单"
    finally:
        m.Incident.objects.filter(pk=incident.pk).update(status=original[0], notes=original[1], resolved_at=original[2])


# ---------------------------------------------------------------- Part 4: a grid worker withdraws their own incident


def _allow(response) -> set[str]:
    return set(response.headers["Allow"].replace(" ", "").split(","))


def _incident(point, title: str) -> dict:
    from core.vocabulary import PUBLISHED_CATEGORIES

    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
            "properties": {"category": PUBLISHED_CATEGORIES[0], "title": title}}


@pytest.fixture
def new_incidents(demo_db):
    """Incidents a test makes (through the API or the services), removed afterwards with their cases."""
    before = set(m.Incident.objects.values_list("id", flat=True))
    yield
    m.Incident.objects.exclude(id__in=before).delete()


def _report(base, account, point, title="withdraw test") -> tuple[str, int]:
    created = _post(f"{base}/ogc/collections/incidents/items", account.auth, _incident(point, title))
    assert created.status_code == 201, created.text
    return created.headers["Location"], int(created.headers["Location"].rsplit("/", 1)[1])


def _kept(*ids: int) -> dict[int, str]:
    """Each incident that is still there, with its case's state."""
    return dict(m.Case.objects.filter(incident_id__in=ids).values_list("incident_id", "state"))


def test_a_grid_worker_withdraws_their_own_new_incident_with_its_case(live_server, accounts, own_grid, new_incidents):
    worker = accounts["worker"]
    url, pk = _report(live_server, worker, own_grid.geom.point_on_surface, "报错了")
    incident = m.Incident.objects.select_related("reported_by").get(pk=pk)
    case = m.Case.objects.get(incident=incident)
    assert incident.reported_by.username == worker.username and case.state == "reported"
    assert list(case.events.values_list("action", "actor")) == [("report", worker.username)]  # who reported it
    patch = requests.patch(url, json={"type": "Feature", "properties": {"status": "in_progress"}}, auth=worker.auth,
                           timeout=30, headers={"Content-Type": "application/geo+json"})
    assert patch.status_code == 204  # a status history, which goes with it as with an administrator's delete
    assert m.IncidentStatusChange.objects.filter(incident_id=pk).exists()
    assert "DELETE" in _allow(requests.options(url, auth=worker.auth, timeout=30))
    response = requests.delete(url, auth=worker.auth, timeout=30)
    assert response.status_code == 204, response.text
    assert not m.Incident.objects.filter(pk=pk).exists()
    assert not m.Case.objects.filter(pk=case.id).exists() and not m.CaseEvent.objects.filter(case_id=case.id).exists()
    assert not m.IncidentStatusChange.objects.filter(incident_id=pk).exists()
    assert requests.delete(url, auth=worker.auth, timeout=30).status_code == 404


def test_a_grid_worker_may_not_delete_what_is_not_their_new_report(live_server, accounts, own_grid, other_grid,
                                                                    new_incidents):
    import secrets

    from core.identity import Identity
    from core.vocabulary import PUBLISHED_CATEGORIES
    from gis.cases.services import case_accept, case_escalate, case_open
    from gis.incidents.services import incident_create

    worker, admin = accounts["worker"], accounts["administrator"]
    commander = Identity(role="commander", username=accounts["commander"].username)
    inside = own_grid.geom.point_on_surface
    moved_url, moved = _report(live_server, worker, inside, "已受理")  # their own, but the case was accepted
    case_accept(case_id=m.Case.objects.get(incident_id=moved).id, actor=commander)
    # their own, still 'reported', but the command centre has acted on it (escalated it a tier)
    worked_url, worked = _report(live_server, worker, inside, "已上报")
    case_escalate(case_id=m.Case.objects.get(incident_id=worked).id, actor=commander, reason="大件垃圾，需街道处理")
    theirs_url, theirs = _report(live_server, admin, inside, "别人报的")  # someone else's, in their grid
    camera = incident_create(lon=inside.x, lat=inside.y, category=PUBLISHED_CATEGORIES[0], source="camera",
                             code=f"INC-CAM-{secrets.token_hex(4)}")  # a camera's evidence
    case_open(incident_id=camera.id)
    camera_url = f"{live_server}/ogc/collections/incidents/items/{camera.id}"
    for url, why in ((moved_url, "its case has moved on (it is accepted)"),
                     (worked_url, "its case has already been worked on"), (theirs_url, "someone else reported it"),
                     (camera_url, "it came from a camera, not from you")):
        allow = _allow(requests.options(url, auth=worker.auth, timeout=30))
        assert "DELETE" not in allow and {"PUT", "PATCH"} <= allow, (url, allow)  # Allow tells the truth per row
        response = requests.delete(url, auth=worker.auth, timeout=30)
        assert response.status_code == 403, (url, response.text)
        description = response.json()["description"]
        assert why in description and "Only the person who reported an incident may withdraw it" in description
    assert "DELETE" in _allow(requests.options(theirs_url, auth=admin.auth, timeout=30))
    # outside their grid, even another worker's own new report is not there for them: 404 for every method
    elsewhere_url, elsewhere = _report(live_server, accounts["worker2"], other_grid.geom.point_on_surface)
    assert requests.delete(elsewhere_url, auth=worker.auth, timeout=30).status_code == 404
    assert requests.options(elsewhere_url, auth=worker.auth, timeout=30).status_code == 404
    # roles that delete nothing
    anonymous = requests.delete(theirs_url, timeout=30)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    for role in ("analyst", "department", "commander"):
        assert requests.delete(theirs_url, auth=accounts[role].auth, timeout=30).status_code == 405, role
    assert _kept(moved, worked, theirs, camera.id, elsewhere) == {
        moved: "accepted", worked: "reported", theirs: "reported", camera.id: "reported", elsewhere: "reported"}
    assert m.Incident.objects.filter(pk__in=(moved, worked, theirs, camera.id, elsewhere)).count() == 5


# ---------------------------------------------------------------- Tiles


def _tile_of(lon, lat, z):
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_vector_tile_decodes_to_the_expected_features(live_server):
    import mapbox_vector_tile

    building = m.Building.objects.order_by("id").first()
    centre = building.geom.point_on_surface
    x, y = _tile_of(centre.x, centre.y, 16)
    url = f"{live_server}/ogc/collections/buildings/tiles/WebMercatorQuad/16/{y}/{x}"
    response = requests.get(url, params={"f": "mvt"}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    assert "max-age" in response.headers["Cache-Control"] and response.headers["ETag"]
    decoded = mapbox_vector_tile.decode(response.content)
    ids = {f["id"] for f in decoded["buildings"]["features"]}
    assert building.id in ids
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM buildings WHERE ST_Intersects(ST_Transform(geom, 3857), ST_TileEnvelope(16, %s, %s))",
            [x, y],
        )
        assert {row[0] for row in cursor.fetchall()} <= ids
    again = requests.get(url, timeout=30, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_tile_errors_and_metadata(live_server):
    base = f"{live_server}/ogc/collections/buildings/tiles"
    assert requests.get(f"{base}/WebMercatorQuad/16/1/99999999", timeout=30).status_code == 400
    assert requests.get(f"{base}/WebMercatorQuad/40/0/0", timeout=30).status_code == 400
    assert requests.get(f"{base}/EuropeanETRS89_LAEAQuad/16/0/0", timeout=30).status_code == 400
    assert requests.get(f"{base}/WorldCRS84Quad/16/0/0", timeout=30).status_code == 204  # offered, nothing there
    assert requests.get(f"{base}/WorldCRS84Quad/16/65536/0", timeout=30).status_code == 400  # 65536 rows at 16
    assert requests.get(f"{live_server}/ogc/collections/party_orgs/tiles/WebMercatorQuad/16/0/0", timeout=30).status_code == 404
    assert requests.get(f"{base}/WebMercatorQuad/16/0/0", timeout=30).status_code == 204  # nothing there
    tilesets = requests.get(base, timeout=30).json()
    assert [t["dataType"] for t in tilesets["tilesets"]] == ["vector", "vector"]
    assert [t["tileMatrixSetURI"].rsplit("/", 1)[1] for t in tilesets["tilesets"]] == ["WebMercatorQuad", "WorldCRS84Quad"]
    collection = _get(f"{live_server}/ogc/collections/buildings").json()
    assert any("tilesets-vector" in link["rel"] for link in collection["links"])
    assert requests.get(f"{live_server}/ogc/tileMatrixSets/WebMercatorQuad", timeout=30).json()["id"] == "WebMercatorQuad"
    assert requests.get(f"{live_server}/ogc/tileMatrixSets/WorldCRS84Quad", timeout=30).json()["id"] == "WorldCRS84Quad"
    assert requests.get(f"{live_server}/ogc/tileMatrixSets/EuropeanETRS89_LAEAQuad", timeout=30).status_code == 404
    # TileJSON and its z/x/y are Web Mercator's
    assert requests.get(f"{base}/WorldCRS84Quad/tilejson.json", timeout=30).status_code == 404
    assert requests.get(f"{base}/WorldCRS84Quad/xyz/16/0/0.pbf", timeout=30).status_code == 404


def test_a_write_shows_in_the_next_tile(live_server, accounts):
    import mapbox_vector_tile

    admin = accounts["administrator"].auth
    incident = m.Incident.objects.exclude(category="elder_inactivity").filter(status="new").last()
    x, y = _tile_of(incident.geom.x, incident.geom.y, 16)
    url = f"{live_server}/ogc/collections/incidents/tiles/WebMercatorQuad/16/{y}/{x}"

    def status_in_tile():
        decoded = mapbox_vector_tile.decode(requests.get(url, auth=admin, timeout=30).content)
        return {f["id"]: f["properties"]["status"] for f in decoded["incidents"]["features"]}[incident.id]

    assert status_in_tile() == "new"
    try:
        patch = requests.patch(f"{live_server}/ogc/collections/incidents/items/{incident.id}", auth=admin, timeout=30,
                               json={"type": "Feature", "properties": {"status": "in_progress"}},
                               headers={"Content-Type": "application/geo+json"})
        assert patch.status_code == 204
        assert status_in_tile() == "in_progress"
    finally:
        m.Incident.objects.filter(pk=incident.pk).update(status="new", resolved_at=None)


@pytest.mark.parametrize("path, query", [
    ("/ogc/collections/incidents/items", "limit=5&sortby=-severity&crs=EPSG:4326&status=new"),
    ("/ogc/collections/incidents/items/3", "crs=EPSG:3857"),
    ("/ogc/collections/care_subjects/items", "limit=2"),
    ("/ogc/collections/incidents/items", "limit=0"),
    ("/ogc/collections/nope/items", ""),
])
def test_the_wsgi_fast_path_answers_as_the_django_view_does(demo_db, accounts, path, query):
    import base64
    import io
    import json
    import sys

    from django.test import Client

    from host.wsgi import application

    user = accounts["commander"]
    authorization = "Basic " + base64.b64encode(f"{user.username}:{user.token}".encode()).decode()
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
               "wsgi.errors": sys.stderr, "HTTP_AUTHORIZATION": authorization, "REMOTE_ADDR": "127.0.0.1"}
    started = []
    fast_body = b"".join(application(environ, lambda status, headers: started.append((status, dict(headers)))))
    status, fast_headers = started[0]
    django = Client(HTTP_HOST="127.0.0.1").get(f"{path}?{query}", HTTP_AUTHORIZATION=authorization)
    assert int(status.split()[0]) == django.status_code
    for name in ("Content-Type", "Content-Crs", "Cache-Control", "X-Content-Type-Options", "X-Frame-Options"):
        assert fast_headers.get(name) == django.headers.get(name), name
    fast, slow = json.loads(fast_body), json.loads(django.content)
    fast.pop("timeStamp", None), slow.pop("timeStamp", None)
    assert fast == slow


def test_the_benchmark_sql_is_what_the_server_sends(live_server, database_url):
    """tests/bench/ogc.py runs this SQL as 'PostGIS alone'; it must produce the server's features."""
    import json

    import psycopg

    from bench.sql_text import item_sql_text, items_sql_text

    query = "limit=20&bbox=113.64,34.745,113.68,34.77&sortby=-floors"
    with psycopg.connect(database_url) as conn:
        for steady in (False, True):
            returned, features, matched, _ = conn.execute(items_sql_text("buildings", query, steady=steady)).fetchone()
            served = _get(f"{live_server}/ogc/collections/buildings/items?{query}").json()
            assert json.loads(f"[{features}]") == served["features"] and (returned, matched) == (
                served["numberReturned"], served["numberMatched"])
        building = m.Building.objects.order_by("id").first()
        row = conn.execute(item_sql_text("buildings", str(building.id))).fetchone()
    served = _get(f"{live_server}/ogc/collections/buildings/items/{building.id}").json()
    served.pop("links")
    assert json.loads(row[1]) == served


def test_html_items_take_datetime_through_the_provider(live_server, accounts):
    url = f"{live_server}/ogc/collections/incidents/items"
    page = requests.get(url, params={"f": "html", "datetime": "2026-11-01T00:00:00Z/..", "limit": 5},
                        auth=accounts["analyst"].auth, timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    bad = requests.get(url, params={"f": "html", "datetime": "yesterday"}, auth=accounts["analyst"].auth, timeout=30)
    assert bad.status_code == 400


def _html_features(page: str) -> list[dict]:
    """The features pygeoapi's HTML items page embeds in its script (``var geojson_data = …``)."""
    import re

    match = re.search(r"var geojson_data = (.*?);\n", page)
    return json.loads(match.group(1)) if match else []


@pytest.mark.parametrize("layer_id", ["grids", "buildings", "cameras", "parking_spots", "no_parking_zones",
                                      "incidents", "party_orgs", "service_points", "care_subjects", "care_density"])
@pytest.mark.parametrize("params", [
    {"bbox": "113.655,34.745,113.665,34.755"},
    {"bbox": "34.745,113.655,34.755,113.665", "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"},
    {"filter": "S_INTERSECTS(geometry, BBOX(113.655, 34.745, 113.665, 34.755))"},
    {"crs": "http://www.opengis.net/def/crs/EPSG/0/3857", "limit": "5"},
    {"bbox": "113.655,34.745,113.665,34.755", "crs": "http://www.opengis.net/def/crs/EPSG/0/4547", "limit": "7"},
], ids=["bbox", "bbox-crs", "filter", "crs", "bbox+crs"])
def test_html_and_json_items_hold_the_same_features(live_server, accounts, layer_id, params):
    """One parse per request: the HTML page reads exactly what the JSON route reads, bbox-crs, filter and crs included."""
    url = f"{live_server}/ogc/collections/{layer_id}/items"
    auth = accounts["administrator"].auth
    as_json = requests.get(url, params={**params, "f": "json"}, auth=auth, timeout=30)
    as_html = requests.get(url, params={**params, "f": "html"}, auth=auth, timeout=30)
    assert as_json.status_code == as_html.status_code == 200, (as_json.text[:200], as_html.text[:200])
    expected = as_json.json()["features"]
    shown = _html_features(as_html.text)
    assert [f["id"] for f in shown] == [f["id"] for f in expected]
    assert [f["geometry"] for f in shown] == [f["geometry"] for f in expected]


def test_an_html_page_with_a_cql2_filter_keeps_it_in_its_paging_links(live_server, accounts):
    """pygeoapi writes the HTML page's links from the request; the filter it does not parse is still in them."""
    cql = "S_INTERSECTS(geometry, BBOX(113.60, 34.70, 113.70, 34.80)) AND floors > 1"
    page = requests.get(f"{live_server}/ogc/collections/buildings/items", timeout=30,
                        params={"f": "html", "filter": cql, "filter-lang": "cql2-text", "limit": "2"})
    assert page.status_code == 200, page.text[:300]
    import html
    import re
    from urllib.parse import parse_qs, urlsplit

    nexts = [html.unescape(href) for href in re.findall(r'href="([^"]*offset=2[^"]*)"', page.text)]
    assert nexts, "no link to the next page"
    assert parse_qs(urlsplit(nexts[0]).query)["filter"] == [cql]


def test_the_same_parameters_are_parsed_once_per_layer_and_role_and_bad_ones_every_time(demo_db):
    from layers.catalogue import layer
    from layers.errors import InvalidParameter
    from layers.features import QUERIES, parse_query

    buildings = layer("buildings")
    params = {"limit": "7", "filter": "floors>3", "filter-lang": "cql2-text"}
    first = parse_query(dict(params), layer=buildings, role="analyst")
    assert parse_query(dict(params), layer=buildings, role="analyst") is first
    assert parse_query(dict(params), layer=buildings, role="grid_worker") is not first
    assert parse_query({**params, "limit": "8"}, layer=buildings, role="analyst").limit == 8
    for _ in range(2):  # a refusal is not remembered: it is refused again, with its reason
        with pytest.raises(InvalidParameter, match="limit"):
            parse_query({"limit": "0"}, layer=buildings, role="analyst")
    long_filter = {"filter": " OR ".join(["floors=1"] * 400), "filter-lang": "cql2-text"}
    assert parse_query(long_filter, layer=buildings, role="analyst") is not parse_query(
        long_filter, layer=buildings, role="analyst")  # too long to keep
    assert QUERIES.get(("buildings", "analyst", tuple(long_filter.items()))) is None
