"""A grid worker withdraws only their own new incident: no route deletes someone else's.

The routes are the OGC API's DELETE, WFS-T's Delete (by resource id in WFS 2.0 and by feature
id in WFS 1.0, as QGIS 3.22 writes it; Delete selected by any other filter is refused), and
raw SQL under the grid workers' database role: it has no DELETE on incidents or cases at all,
and the one function it may call checks the rule itself. Each attack is shown to change
nothing, beside the same worker withdrawing their own new incident by the same route.
"""

from __future__ import annotations

import psycopg
import pytest
import requests
from attacks import point_feature, write

from gis import models as m

WFS = "http://www.opengis.net/wfs/2.0"
FES = "http://www.opengis.net/fes/2.0"


@pytest.fixture
def made(demo_db):
    """Incidents the test makes, removed afterwards with their cases."""
    before = set(m.Incident.objects.values_list("id", flat=True))
    yield
    m.Incident.objects.exclude(id__in=before).delete()


def _report(base, account, point, title) -> int:
    created = write("POST", f"{base}/ogc/collections/incidents/items", account.auth,
                    point_feature(point.x, point.y, title=title))
    assert created.status_code == 201, created.text
    return int(created.headers["Location"].rsplit("/", 1)[1])


def _ogc_delete(base, auth, pk: int) -> int:
    return requests.delete(f"{base}/ogc/collections/incidents/items/{pk}", auth=auth, timeout=30).status_code


def _wfs(base, auth, body: str) -> int:
    return requests.post(f"{base}/wfs", data=body.encode(), auth=auth, timeout=30,
                         headers={"Content-Type": "text/xml"}).status_code


def _wfs2_delete(pk: int) -> str:
    return (f'<wfs:Transaction xmlns:wfs="{WFS}" xmlns:fes="{FES}" service="WFS" version="2.0.0">'
            f'<wfs:Delete typeName="onemap:incidents"><fes:Filter><fes:ResourceId rid="incidents.{pk}"/>'
            "</fes:Filter></wfs:Delete></wfs:Transaction>")


def _wfs1_delete(pk: int) -> str:
    return ('<Transaction xmlns="http://www.opengis.net/wfs" xmlns:ogc="http://www.opengis.net/ogc" service="WFS" '
            f'version="1.0.0"><Delete typeName="onemap:incidents"><ogc:Filter><ogc:FeatureId fid="incidents.{pk}"/>'
            "</ogc:Filter></Delete></Transaction>")


def _wfs_filter_delete(code: str) -> str:
    return (f'<wfs:Transaction xmlns:wfs="{WFS}" xmlns:fes="{FES}" service="WFS" version="2.0.0">'
            '<wfs:Delete typeName="onemap:incidents"><fes:Filter><fes:PropertyIsEqualTo>'
            f"<fes:ValueReference>code</fes:ValueReference><fes:Literal>{code}</fes:Literal>"
            "</fes:PropertyIsEqualTo></fes:Filter></wfs:Delete></wfs:Transaction>")


def test_no_route_deletes_another_persons_incident(live_server, accounts, own_grid, made):
    worker, admin = accounts["worker"], accounts["administrator"]
    inside = own_grid.geom.point_on_surface
    theirs = _report(live_server, admin, inside, "the command centre's")
    code = m.Incident.objects.get(pk=theirs).code
    assert _ogc_delete(live_server, worker.auth, theirs) == 403
    assert _wfs(live_server, worker.auth, _wfs2_delete(theirs)) == 403
    assert _wfs(live_server, worker.auth, _wfs1_delete(theirs)) == 403
    assert _wfs(live_server, worker.auth, _wfs_filter_delete(code)) == 400  # only resource ids select a Delete
    assert m.Incident.objects.filter(pk=theirs).exists() and m.Case.objects.filter(incident_id=theirs).exists()
    # the same routes withdraw the worker's own new incidents
    for route in (lambda pk: _ogc_delete(live_server, worker.auth, pk),
                  lambda pk: _wfs(live_server, worker.auth, _wfs2_delete(pk)),
                  lambda pk: _wfs(live_server, worker.auth, _wfs1_delete(pk))):
        mine = _report(live_server, worker, inside, "mine")
        assert route(mine) in (200, 204)
        assert not m.Incident.objects.filter(pk=mine).exists() and not m.Case.objects.filter(incident_id=mine).exists()


def _as_worker(cursor, grid_id: int, user_id: int) -> None:
    cursor.execute("SELECT set_config('role', 'onemap_grid', true), set_config('onemap.grid_id', %s, true), "
                   "set_config('onemap.user_id', %s, true)", [str(grid_id), str(user_id)])


def test_raw_sql_as_a_grid_worker_deletes_only_through_the_withdraw_rule(live_server, database_url, accounts, own_grid,
                                                                          made):
    worker, admin = accounts["worker"], accounts["administrator"]
    inside = own_grid.geom.point_on_surface
    theirs = _report(live_server, admin, inside, "the command centre's")
    mine = _report(live_server, worker, inside, "mine")
    user_id = m.Incident.objects.get(pk=mine).reported_by_id
    case = m.Case.objects.get(incident_id=theirs).id
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement, params in (("DELETE FROM incidents WHERE id = %s", [theirs]),
                                  ("DELETE FROM incidents WHERE id = %s", [mine]),  # not even one's own, directly
                                  ("DELETE FROM cases WHERE id = %s", [case]),
                                  ("DELETE FROM case_events WHERE case_id = %s", [case])):
            with conn.transaction(), conn.cursor() as cursor:
                _as_worker(cursor, own_grid.id, user_id)
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    cursor.execute(statement, params)
                raise psycopg.Rollback()  # leave the failed transaction
        with conn.transaction(), conn.cursor() as cursor:
            _as_worker(cursor, own_grid.id, user_id)
            cursor.execute("SELECT onemap_incident_withdraw(%s)", [theirs])
            assert cursor.fetchone()[0] == "reporter"
            cursor.execute("SELECT onemap_incident_withdraw(%s)", [mine])
            assert cursor.fetchone()[0] is None
    assert m.Incident.objects.filter(pk=theirs).exists() and m.Case.objects.filter(incident_id=theirs).exists()
    assert not m.Incident.objects.filter(pk=mine).exists() and not m.Case.objects.filter(incident_id=mine).exists()
