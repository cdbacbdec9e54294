"""Writes from another site's page: refused when the browser would have added remembered credentials.

A browser resends HTTP Basic credentials it remembers with a form another site submits
(``enctype="text/plain"`` can even shape a JSON body). Every write route refuses such a
request (``Sec-Fetch-Site`` or ``Origin`` naming another site) before any view runs, and
changes nothing; clients that are not browsers (no such headers) and the site's own pages
are served as before.
"""

from __future__ import annotations

import json

import pytest
import requests

from core.identity import Identity
from gis import models as m
from gis.cases import services as cases

EVIL = {"Origin": "https://evil.example", "Content-Type": "text/plain"}


@pytest.fixture
def open_case(demo_db, accounts):
    grid = m.Grid.objects.get(code=accounts["worker"].grid_code)
    point = grid.geom.point_on_surface
    from gis.incidents.services import incident_create

    incident = incident_create(lon=point.x, lat=point.y, category="sanitation", source="staff",
                               code="INC-CROSS-SITE-1")
    case = cases.case_open(incident_id=incident.id)
    yield case
    m.Incident.objects.filter(pk=incident.id).delete()


@pytest.mark.parametrize("headers", [
    EVIL,
    {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
    {"Sec-Fetch-Site": "same-site", "Origin": "https://other.example"},
    {"Origin": "null"},  # a sandboxed frame or a file
])
def test_a_case_action_from_another_sites_page_is_refused_and_changes_nothing(live_server, accounts, open_case,
                                                                               headers):
    before = m.Case.objects.filter(pk=open_case.id).values().get()
    events = m.CaseEvent.objects.filter(case=open_case).count()
    answer = requests.post(f"{live_server}/api/cases/{open_case.id}/accept", data='{"x": "="}', headers=headers,
                           auth=accounts["commander"].auth, timeout=30)
    assert answer.status_code == 403 and "was refused" in answer.json()["error"]
    assert m.Case.objects.filter(pk=open_case.id).values().get() == before
    assert m.CaseEvent.objects.filter(case=open_case).count() == events


def test_the_sites_own_page_and_clients_without_a_browser_still_write(live_server, accounts, open_case):
    own = {"Origin": live_server, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
    answer = requests.post(f"{live_server}/api/cases/{open_case.id}/accept", data="{}", headers=own,
                           auth=accounts["commander"].auth, timeout=30)
    assert answer.status_code == 200, answer.text
    answer = requests.post(f"{live_server}/api/cases/{open_case.id}/file", json={},
                           auth=accounts["commander"].auth, timeout=30)  # curl, QGIS: no Origin at all
    assert answer.status_code == 200 and answer.json()["state"] == "filed"


def test_every_write_route_refuses_a_cross_site_request_with_credentials(live_server, accounts, open_case):
    """The replay button, OGC writes, the phone's actions: one rule for all, before any view."""
    dead = m.Notification.objects.create(key="cross-site-dead", channel="in_app", recipient="command-centre",
                                         subject_kind="case", subject_id=open_case.id, payload={}, state="dead")
    try:
        feature = json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [113.66, 34.75]},
                              "properties": {"category": "sanitation"}})
        for method, path, body in (
                ("POST", f"/api/cases/notices/{dead.id}/replay", ""),
                ("POST", "/ogc/collections/incidents/items", feature),
                ("DELETE", f"/ogc/collections/incidents/items/{open_case.incident_id}", ""),
                ("POST", "/m/api/position", '{"position": [113.66, 34.75]}')):
            answer = requests.request(method, live_server + path, data=body, headers=EVIL,
                                      auth=accounts["worker" if path.startswith("/m/") else "administrator"].auth,
                                      timeout=30)
            assert answer.status_code == 403, (method, path, answer.status_code, answer.text[:200])
        assert m.Notification.objects.get(pk=dead.id).state == "dead"
        assert m.Incident.objects.filter(pk=open_case.incident_id).exists()
    finally:
        dead.delete()
