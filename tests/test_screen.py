"""The command-centre screen: who may open it, what it loads, the scene numbers, incidents and evidence.

Numbers are checked against independent counts made with the ORM over grid codes
(the selectors walk parent ids in SQL); the page's asset URLs are parsed out of the
HTML, our CSS and JS; evidence is written with OpenCV into a temporary folder.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Count, Q, Sum
from django.test import Client

from api.screen import charts, evidence
from api.screen import selectors as scenes
from api.screen import views as screen
from data.demo import DEMO_AS_OF
from gis import models as m

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "api" / "static" / "screen"
OPEN = ("new", "dispatched", "in_progress")
SCREEN_APIS = ("/screen/api/scenes", "/screen/api/incidents", "/screen/api/care-alerts", "/screen/api/cameras",
               "/screen/api/grid-labels", "/screen/api/case-grids")


def _client(account=None) -> Client:
    if account is None:
        return Client(HTTP_HOST="127.0.0.1")
    raw = base64.b64encode(f"{account.username}:{account.token}".encode()).decode()
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Basic {raw}")


@pytest.fixture
def commander(accounts):
    return _client(accounts["commander"])


@pytest.fixture
def level1(demo_db):
    return m.Grid.objects.get(level=1)


def _codes_below(grid: m.Grid) -> list[str]:
    """Level-3 grid codes inside ``grid``, by the hierarchical code (independent of parent ids)."""
    return list(m.Grid.objects.filter(level=3, code__startswith=grid.code).values_list("code", flat=True))


# -- who may open it -----------------------------------------------------------------


@pytest.mark.parametrize("url", ("/screen/", *SCREEN_APIS, "/screen/tiles/grids/14/6500/13360"))
def test_anonymous_gets_a_basic_challenge(demo_db, url):
    response = _client().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Basic realm="Community One Map"')


@pytest.mark.parametrize("who", ("analyst", "worker", "department"))
@pytest.mark.parametrize("url", ("/screen/", *SCREEN_APIS))
def test_other_roles_are_told_which_roles_may(accounts, who, url):
    response = _client(accounts[who]).get(url)
    assert response.status_code == 403
    assert "for the roles administrator, commander" in response.content.decode()
    assert "WWW-Authenticate" not in response


@pytest.mark.parametrize("who", ("administrator", "commander"))
@pytest.mark.parametrize("url", ("/screen/", *SCREEN_APIS))
def test_administrators_and_commanders_may(accounts, who, url):
    assert _client(accounts[who]).get(url).status_code == 200


def test_a_wrong_token_is_refused_with_the_screen_challenge(accounts):
    account = dataclasses.replace(accounts["commander"], token="om_not-a-token")
    response = _client(account).get("/screen/")
    assert response.status_code == 401
    assert 'realm="Community One Map"' in response["WWW-Authenticate"]


def test_only_get(commander):
    response = commander.post("/screen/api/scenes")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


# -- the page loads nothing from elsewhere -----------------------------------------------

_URL_ATTR = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.I)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""", re.I)
_JS_EXTERNAL = re.compile(r"""https?://|["'`]//""")


def _urls(text: str) -> list[str]:
    return _URL_ATTR.findall(text) + _CSS_URL.findall(text)


def _external(url: str) -> bool:
    return url.startswith(("http://", "https://", "//")) or re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I) is not None


def test_the_page_references_only_this_server(commander, monkeypatch):
    monkeypatch.delenv(screen.BASEMAP_ENV, raising=False)
    html = commander.get("/screen/").content.decode()
    urls = _urls(html)
    assert "/vendor/leaflet/leaflet.js" in urls and "/static/screen/screen.js" in urls
    assert [u for u in urls if _external(u)] == []
    assert not re.search(r"cdn|googleapis|jsdelivr|jquery|bootstrap|font-awesome|awesome-markers", html, re.I)
    for url in urls:  # our own files exist; /vendor/ is made by `onemap vendor`
        if url.startswith("/static/"):
            assert (ROOT / "api" / url.lstrip("/")).is_file(), url
        else:
            assert url.startswith(("/vendor/", "/screen/")), url


def test_our_css_and_js_reference_only_this_server():
    files = sorted(STATIC.rglob("*"))
    assert {p.suffix for p in files if p.is_file()} >= {".css", ".js", ".svg"}
    for path in (p for p in files if p.suffix in (".css", ".js")):
        text = path.read_text()
        assert [u for u in _CSS_URL.findall(text) if _external(u)] == [], path
        if path.suffix == ".js":
            assert not _JS_EXTERNAL.search(text), path
    for path in STATIC.rglob("*.svg"):  # icons: xmlns is a name, not a request; nothing may be fetched
        root = ET.parse(path).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg", path
        assert not [u for u in _urls(path.read_text()) if _external(u)], path


def test_the_configured_basemap_is_the_only_other_origin(commander, monkeypatch):
    template = "http://tiles.intranet.example/{z}/{x}/{y}.png"
    monkeypatch.setenv(screen.BASEMAP_ENV, template)
    html = commander.get("/screen/").content.decode()
    assert template in html
    assert not re.search(r"https?://(?!tiles\.intranet\.example/)", html)
    monkeypatch.setenv(screen.BASEMAP_ENV, "tiles.example/{z}")
    response = commander.get("/screen/")
    assert response.status_code == 500 and "ONEMAP_SCREEN_BASEMAP" in response.content.decode()


def test_page_config_carries_the_contract(commander, level1):
    html = commander.get("/screen/").content.decode()
    config = json.loads(re.search(r"window\.ONEMAP_SCREEN_CONFIG = (\{.*?\});</script>", html).group(1))
    assert config["grid"]["code"] == level1.code
    assert config["urls"]["events"] == "/screen/events"
    assert config["limits"] == {"markers": 2000, "events": 200, "newSeconds": 60}
    assert f"var {config['mapName']} = L.map(" in html
    from layers.tiles import TILE_LAYERS

    assert config["tileZooms"] == {k: [v.min_zoom, v.max_zoom] for k, v in TILE_LAYERS.items()}
    js = (STATIC / "screen.js").read_text()
    for name in ("onemapScreen", "markerSeenAt", "lastEventId", "eventsReceived", "connection", "om-new",
                 "data-incident-id", "last_event_id", "EventSource"):
        assert name in js, name


# -- ?grid= --------------------------------------------------------------------------


def test_grid_focus(commander):
    grid = m.Grid.objects.filter(level=3).order_by("-code").first()
    response = commander.get("/screen/", {"grid": grid.code})
    assert response.status_code == 200
    html = response.content.decode()
    config = json.loads(re.search(r"window\.ONEMAP_SCREEN_CONFIG = (\{.*?\});</script>", html).group(1))
    assert config["grid"]["code"] == grid.code and grid.name in html
    west, south, east, north = grid.geom.extent
    assert config["grid"]["bounds"] == pytest.approx([west, south, east, north], abs=1e-6)
    assert "fitBounds" in html and f"[{south}, {west}]"[:12] in html
    scenes_body = commander.get("/screen/api/scenes", {"grid": grid.code}).json()
    assert scenes_body["grid"]["code"] == grid.code


@pytest.mark.parametrize("url", ("/screen/", "/screen/api/scenes", "/screen/api/care-alerts", "/screen/api/case-grids"))
def test_an_unknown_grid_is_404_saying_so(commander, url):
    response = commander.get(url, {"grid": "999999999"})
    assert response.status_code == 404
    assert "no grid with code '999999999'" in response.content.decode()


# -- the scene panels ------------------------------------------------------------------


@pytest.fixture(params=["level1", "level2", "level3"])
def grid(request, demo_db):
    level = int(request.param[-1])
    return m.Grid.objects.filter(level=level).order_by("code")[1 if level > 1 else 0]


def test_party_numbers(grid):
    codes = _codes_below(grid)
    data = scenes.scene_party(grid_id=grid.id, now=DEMO_AS_OF)
    orgs = m.PartyOrganization.objects.filter(grid__code__in=codes)
    assert data["organizations"] == orgs.count() > 0
    assert data["members"] == orgs.aggregate(n=Sum("members"))["n"]
    branches = orgs.exclude(kind="party_committee").values("grid__code").annotate(n=Count("id"), s=Sum("members"))
    assert {r["code"]: (r["branches"], r["members"]) for r in data["branches_by_grid"]} == {
        r["grid__code"]: (r["n"], r["s"]) for r in branches}
    window = m.PartyActivity.objects.filter(organization__in=orgs, starts_at__gte=DEMO_AS_OF - timedelta(days=30),
                                            starts_at__lt=DEMO_AS_OF)
    assert data["activities_30d"] == window.count()
    assert data["participants_30d"] == (window.aggregate(n=Sum("participants"))["n"] or 0)
    assert len(data["recent_activities"]) == min(5, m.PartyActivity.objects.filter(organization__in=orgs).count())


def test_governance_numbers(grid):
    codes = _codes_below(grid)
    incidents = m.Incident.objects.filter(grid__code__in=codes).exclude(category="elder_inactivity")
    data = scenes.scene_governance(grid_id=grid.id)
    assert data["open"] == incidents.filter(status__in=OPEN).count()
    assert data["closed"] == incidents.exclude(status__in=OPEN).count()
    expected = incidents.values("category").annotate(o=Count("id", filter=Q(status__in=OPEN)),
                                                     c=Count("id", filter=~Q(status__in=OPEN)))
    assert {r["category"]: (r["open"], r["closed"]) for r in data["by_category"]} == {
        r["category"]: (r["o"], r["c"]) for r in expected}
    parts = m.Grid.objects.filter(parent=grid) if grid.level < 3 else [grid]
    assert [r["code"] for r in data["by_grid"]] == sorted(p.code for p in parts)
    for row in data["by_grid"]:
        inside = incidents.filter(grid__code__startswith=row["code"])
        assert (row["open"], row["closed"]) == (inside.filter(status__in=OPEN).count(),
                                                inside.exclude(status__in=OPEN).count())


def test_safety_numbers(grid):
    codes = _codes_below(grid)
    local_midnight = DEMO_AS_OF.replace(hour=0, minute=0, second=0)  # DEMO_AS_OF is in Asia/Shanghai
    data = scenes.scene_safety(grid_id=grid.id, now=DEMO_AS_OF)
    assert set(data) == {"falling_object", "fire_smoke", "illegal_parking"}
    for category, numbers in data.items():
        rows = m.Incident.objects.filter(grid__code__in=codes, category=category)
        assert numbers == {
            "today": rows.filter(reported_at__gte=local_midnight, reported_at__lt=DEMO_AS_OF).count(),
            "last_7_days": rows.filter(reported_at__gte=DEMO_AS_OF - timedelta(days=7),
                                       reported_at__lt=DEMO_AS_OF).count(),
            "open": rows.filter(status__in=OPEN, reported_at__lt=DEMO_AS_OF).count(),
        }, category
    assert sum(v["last_7_days"] for v in scenes.scene_safety(grid_id=grid.id, now=DEMO_AS_OF).values()) > 0 \
        or grid.level == 3


def test_elder_care_numbers(grid):
    codes = _codes_below(grid)
    subjects = m.CareSubject.objects.filter(grid__code__in=codes, active=True)
    alerts = m.Incident.objects.filter(grid__code__in=codes, category="elder_inactivity", status__in=OPEN)
    assert scenes.scene_elder_care(grid_id=grid.id) == {
        "registered": subjects.count(),
        "elders": subjects.filter(kind="elder").count(),
        "living_alone": subjects.filter(lives_alone=True).count(),
        "open_alerts": alerts.count(),
        "buildings_with_alerts": alerts.values("building").distinct().exclude(building=None).count(),
    }


def test_parking_and_services_numbers(grid):
    codes = _codes_below(grid)
    spots = m.ParkingSpot.objects.filter(grid__code__in=codes)
    parking = scenes.scene_parking(grid_id=grid.id)
    counts = {k: spots.filter(occupancy=k).count() for k in ("free", "occupied", "unknown")}
    assert {k: parking[k] for k in counts} == counts and parking["spots"] == spots.count() > 0
    known = counts["free"] + counts["occupied"]
    assert parking["occupancy_rate"] == pytest.approx(counts["occupied"] / known, abs=5e-4)
    assert parking["no_parking_zones"] == m.NoParkingZone.objects.filter(grid__code__in=codes).count()
    services = scenes.scene_services(grid_id=grid.id)
    points = m.ServicePoint.objects.filter(grid__code__in=codes)
    assert services["total"] == points.count()
    assert services["by_category"] == {r["category"]: r["n"] for r in points.values("category").annotate(n=Count("id"))}


def test_scenes_api_and_charts(commander, level1):
    body = commander.get("/screen/api/scenes").json()
    assert body["grid"]["code"] == level1.code
    assert set(body) >= {"party", "governance", "safety", "elder_care", "parking", "services", "charts"}
    assert body["governance"] == scenes.scene_governance(grid_id=level1.id)
    for name, svg in body["charts"].items():
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag == "{http://www.w3.org/2000/svg}svg", name
        assert len(root.attrib["viewBox"].split()) == 4
    bars = ET.fromstring(body["charts"]["governance_by_category"])
    titles = [t.text for t in bars.iter("{http://www.w3.org/2000/svg}title")]
    for row in body["governance"]["by_category"]:
        label = screen.CATEGORY_LABELS[row["category"]]
        assert f"{label} · 未办结 open: {row['open']}" in titles
    party = ET.fromstring(body["charts"]["party_branches"])
    shown = [t for t in party.itertext() if "个支部" in t]
    rows = body["party"]["branches_by_grid"]
    assert len(shown) == min(charts.MAX_CHART_ROWS, len(rows)) > 0
    assert set(shown) <= {f"{r['branches']}个支部 · {r['members']}人" for r in rows}
    least_shown = min(int(t.split(" · ")[1][:-1]) for t in shown)  # the busiest grids, by members
    assert sorted((r["members"] for r in rows), reverse=True)[len(shown) - 1] == least_shown


def test_charts_are_svg_for_edge_cases():
    empty = ET.fromstring(charts.bar_chart_svg(rows=[], series=("a",), colours=("#fff",)))
    assert "no data" in "".join(empty.itertext())
    donut = ET.fromstring(charts.donut_chart_svg(parts=[("a <b> & c", 3, "#f00"), ("d", 0, "#0f0")]))
    assert "a <b> & c: 3" in "".join(donut.itertext())
    paths = donut.findall("{http://www.w3.org/2000/svg}path")
    assert len(paths) == 1  # a zero share draws nothing; a whole share still draws a ring


# -- map layers ----------------------------------------------------------------------


def test_cameras_have_wedges_and_no_peepholes(commander, level1):
    body = commander.get("/screen/api/cameras").json()
    expected = m.Camera.objects.filter(grid__code__in=_codes_below(level1)).exclude(purpose="peephole")
    assert len(body["features"]) == expected.count() > 0
    assert m.Camera.objects.filter(purpose="peephole").exists()
    feature = body["features"][0]
    camera = expected.get(code=feature["properties"]["code"])
    ring = feature["properties"]["wedge"]["coordinates"][0]
    assert ring[0] == ring[-1] == pytest.approx(list(camera.geom.coords), abs=1e-6)
    assert len(ring) == scenes.WEDGE_STEPS + 3
    lat0 = math.radians(camera.geom.y)
    for lon, lat in ring[1:-1]:  # every arc point 40 m from the camera (equirectangular is enough at 40 m)
        dx = math.radians(lon - camera.geom.x) * math.cos(lat0) * 6371008.8
        dy = math.radians(lat - camera.geom.y) * 6371008.8
        assert math.hypot(dx, dy) == pytest.approx(scenes.WEDGE_LENGTH_M, rel=0.01)
    lon, lat = ring[1 + scenes.WEDGE_STEPS // 2]  # the middle of the arc lies along the heading
    east, north = math.radians(lon - camera.geom.x) * math.cos(lat0), math.radians(lat - camera.geom.y)
    bearing = math.degrees(math.atan2(east, north))
    assert (bearing - camera.heading_deg + 540) % 360 - 180 == pytest.approx(0, abs=0.5)


def test_care_alerts_are_buildings_and_counts_only(commander, level1):
    body = commander.get("/screen/api/care-alerts").json()
    alerts = m.Incident.objects.filter(category="elder_inactivity", status__in=OPEN, building__isnull=False,
                                       grid__code__in=_codes_below(level1))
    expected = dict(alerts.values_list("building_id").annotate(n=Count("id")))
    assert expected and {f["id"]: f["properties"]["open_alerts"] for f in body["features"]} == expected
    for feature in body["features"]:
        assert set(feature["properties"]) == {"building_id", "code", "name", "grid_code", "open_alerts", "since"}
        assert feature["geometry"]["type"] == "MultiPolygon"


def test_grid_labels(commander, level1):
    body = commander.get("/screen/api/grid-labels").json()
    assert sorted(f["properties"]["code"] for f in body["features"]) == sorted(
        m.Grid.objects.filter(level__in=(2, 3)).values_list("code", flat=True))


def test_tiles_and_small_layers_through_the_screen(commander, accounts):
    response = commander.get("/screen/tiles/grids/14/6524/13363")
    assert response.status_code in (200, 204)
    assert commander.get("/screen/tiles/buildings/3/1/1").status_code == 400  # below the layer's zooms
    assert _client(accounts["analyst"]).get("/screen/tiles/grids/14/6524/13363").status_code == 403
    body = commander.get("/screen/api/features/service_points", {"limit": 1000, "f": "json"}).json()
    assert len(body["features"]) == m.ServicePoint.objects.count()
    assert commander.get("/screen/api/features/care_subjects").status_code == 404


# -- incidents -----------------------------------------------------------------------


def test_live_markers_are_recent_open_incidents(commander, rollback):
    from gis.incidents.services import incident_create

    incident = m.Incident.objects.filter(category="fire_smoke").first()
    lon, lat = incident.geom.coords
    new = incident_create(lon=lon, lat=lat, category="fire_smoke", source="staff", code="INC-TEST-SCREEN-1")
    care = incident_create(lon=lon, lat=lat, category="elder_inactivity", source="sensor", code="INC-TEST-SCREEN-2")
    body = commander.get("/screen/api/incidents").json()
    ids = [f["id"] for f in body["features"]]
    assert new.id in ids and care.id not in ids
    recent = m.Incident.objects.filter(status__in=OPEN, reported_at__gte=new.reported_at - timedelta(hours=24))
    shown = recent.exclude(category="elder_inactivity").exclude(grid__isnull=True)  # outside every grid: no marker
    assert len(ids) == min(scenes.LIVE_LIMIT, shown.count())
    feature = body["features"][ids.index(new.id)]
    assert set(feature["properties"]) == {
        "code", "category", "source", "severity", "status", "title", "floor", "reported_at", "resolved_at",
        "updated_at", "grid_id", "grid_code", "grid_name", "building_id", "camera_id", "has_evidence",
        "overdue"}  # its case past a time limit (issue 14)
    assert feature["geometry"]["coordinates"] == pytest.approx([lon, lat])


def test_incident_detail_and_history(commander, rollback):
    from gis.incidents.services import incident_update

    incident = m.Incident.objects.filter(category="falling_object").select_related("grid", "building").first()
    incident_update(incident_id=incident.id, status="dispatched")
    body = commander.get(f"/screen/api/incidents/{incident.id}").json()
    props = body["feature"]["properties"]
    assert (props["code"], props["floor"], props["grid_code"]) == (incident.code, incident.floor, incident.grid.code)
    assert body["labels"]["category"] == "高空抛物"
    assert [g["level"] for g in body["grid_path"]] == [1, 2, 3]
    assert body["building"]["code"] == incident.building.code
    assert body["history"][0]["from_status"] is None
    assert body["history"][-1]["to_status"] == "dispatched" == props["status"]
    assert body["evidence_urls"] == {"keyframe": None, "clip": None}  # the demo has no evidence files


def test_a_deleted_incident_is_404(commander, rollback):
    from gis.incidents.services import incident_create, incident_delete

    incident = incident_create(lon=113.66, lat=34.75, category="sanitation", source="staff", code="INC-TEST-SCREEN-3")
    incident_delete(incident_id=incident.id)
    response = commander.get(f"/screen/api/incidents/{incident.id}")
    assert response.status_code == 404 and "does not exist" in response.json()["error"]
    assert commander.get("/screen/api/incidents/abc").status_code == 404


# -- evidence ------------------------------------------------------------------------


@pytest.fixture
def evidence_dir(tmp_path, monkeypatch):
    from django.conf import settings

    root = tmp_path / "evidence"
    (root / "CAM-1").mkdir(parents=True)
    monkeypatch.setenv(evidence.EVIDENCE_ENV, str(root))
    monkeypatch.setattr(settings, "ONEMAP", dataclasses.replace(settings.ONEMAP, var_dir=tmp_path / "var"))
    return root


def _write_clip(path: Path, frames: int = 12) -> None:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for k in range(frames):
        writer.write(np.full((120, 160, 3), 10 * k, np.uint8))
    writer.release()


def _incident_with_evidence(**evidence) -> m.Incident:
    from gis.incidents.services import incident_create

    return incident_create(lon=113.66, lat=34.75, category="falling_object", source="camera",
                           code=f"INC-TEST-EV-{len(evidence)}-{abs(hash(str(evidence))) % 10**8}", evidence=evidence)


def test_evidence_is_served_and_the_clip_plays(commander, rollback, evidence_dir):
    import cv2
    import numpy as np

    clip, keyframe = evidence_dir / "CAM-1" / "000001.avi", evidence_dir / "CAM-1" / "000001.jpg"
    _write_clip(clip)
    cv2.imwrite(str(keyframe), np.zeros((40, 60, 3), np.uint8))
    before = hashlib.sha256(clip.read_bytes()).hexdigest()
    incident = _incident_with_evidence(clip=str(clip), keyframe=str(keyframe))
    detail = commander.get(f"/screen/api/incidents/{incident.id}").json()
    assert detail["evidence_urls"]["clip"] == f"/screen/api/incidents/{incident.id}/evidence/clip"
    image = commander.get(detail["evidence_urls"]["keyframe"])
    assert image["Content-Type"] == "image/jpeg" and b"".join(image.streaming_content) == keyframe.read_bytes()
    video = commander.get(detail["evidence_urls"]["clip"])
    assert video.status_code == 200 and video["Content-Type"] == "video/webm"
    data = b"".join(video.streaming_content)
    assert data[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
    cached = list((evidence_dir.parent / "var" / "screen" / "clips").glob("*.webm"))
    assert len(cached) == 1
    capture = cv2.VideoCapture(str(cached[0]))
    assert int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"VP80"
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 12
    assert hashlib.sha256(clip.read_bytes()).hexdigest() == before  # the evidence file is untouched
    mtime = cached[0].stat().st_mtime_ns
    commander.get(detail["evidence_urls"]["clip"])
    assert cached[0].stat().st_mtime_ns == mtime  # transcoded once


def test_evidence_outside_the_folder_is_refused(commander, rollback, evidence_dir, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8 not for the screen")
    link = evidence_dir / "CAM-1" / "link.jpg"
    link.symlink_to(secret)
    for stored in (str(evidence_dir / "CAM-1" / ".." / ".." / "secret.jpg"), str(secret), str(link), "/etc/passwd",
                   "../../etc/passwd"):
        incident = _incident_with_evidence(keyframe=stored)
        response = commander.get(f"/screen/api/incidents/{incident.id}/evidence/keyframe")
        assert response.status_code == 404, stored
        assert b"not for the screen" not in b"".join(getattr(response, "streaming_content", [response.content]))
        assert "outside the evidence folder" in response.json()["error"], stored


def test_missing_evidence_says_so(commander, rollback, evidence_dir):
    none = _incident_with_evidence()
    assert "has no clip evidence" in commander.get(
        f"/screen/api/incidents/{none.id}/evidence/clip").json()["error"]
    gone = _incident_with_evidence(clip=str(evidence_dir / "CAM-1" / "000009.avi"))
    response = commander.get(f"/screen/api/incidents/{gone.id}/evidence/clip")
    assert response.status_code == 404 and "missing" in response.json()["error"]


# -- no personal data ------------------------------------------------------------------

_PERSONAL_FIELDS = {"full_name", "birth_date", "phone", "room", "contacts", "health_notes", "gender", "unit"}


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | set().union(*(_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_keys(v) for v in value)) if value else set()
    return set()


def test_no_personal_data_reaches_the_screen(commander, level1):
    from gis.care.private import private_open

    private = [private_open(subject_id=p.subject_id, sealed=p.sealed) for p in m.CareSubjectPrivate.objects.all()]
    values = set()
    for p in private:
        values |= {p["full_name"], p["birth_date"], p["phone"]}
        values |= {c.get("name") for c in p["contacts"]} | {c.get("phone") for c in p["contacts"]}
    values = {v for v in values if v and len(v) >= 2}
    assert len(values) > 1000
    care = m.Incident.objects.filter(category="elder_inactivity").first()
    level3 = m.Grid.objects.filter(level=3).first()
    urls = [*SCREEN_APIS, f"/screen/api/incidents/{care.id}", "/screen/",
            *(f"{u}?grid={level3.code}" for u in SCREEN_APIS)]
    for url in urls:
        response = commander.get(url)
        assert response.status_code == 200, url
        text = response.content.decode()
        assert not [v for v in values if v in text], url
        if url != "/screen/":
            assert not _keys(response.json()) & _PERSONAL_FIELDS, url
    for layer in screen.SMALL_LAYERS:  # public layers: no person's name or number either
        text = commander.get(f"/screen/api/features/{layer}", {"limit": 5000}).content.decode()
        assert not [v for v in values if v in text], layer



def test_scenes_follow_new_incidents(commander, rollback, monkeypatch):
    from gis.incidents.services import incident_create

    monkeypatch.setattr(screen, "SCENES_TTL", 0.0)
    before = commander.get("/screen/api/scenes").json()["governance"]
    spot = m.Incident.objects.filter(category="sanitation").first().geom
    incident_create(lon=spot.x, lat=spot.y, category="sanitation", source="staff", code="INC-TEST-SCREEN-4")
    after = commander.get("/screen/api/scenes").json()["governance"]
    assert after["open"] == before["open"] + 1 and after["closed"] == before["closed"]
