"""/api/cases/: who may see and act, a case walked through its life over HTTP, and the refusals.

The requests run in this process (Django's test client) against the test database; each
test's cases are made through the services and removed afterwards (the API's reads take
their own transactions under the caller's row-level security, so they cannot be nested
in a test's rollback).
"""

from __future__ import annotations

import base64
import json

import pytest
from django.test import Client

from core.identity import Identity
from gis import models as m
from gis.cases import services as cases
from gis.incidents.services import incident_create

COMMANDER = Identity(role="commander", username="cmd.api")


def client(account=None) -> Client:
    if account is None:
        return Client(HTTP_HOST="127.0.0.1")
    raw = base64.b64encode(f"{account.username}:{account.token}".encode()).decode()
    return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Basic {raw}")


def post(account, url: str, body: dict | None = None, **extra):
    return client(account).post(url, data=json.dumps(body or {}), content_type="application/json", **extra)


@pytest.fixture
def case_in(demo_db):
    """Cases made in a grid (a level-3 grid's code), removed with their incidents afterwards."""
    made = []

    def make(grid: m.Grid, category: str = "sanitation") -> m.Case:
        point = grid.geom.point_on_surface
        incident = incident_create(lon=point.x, lat=point.y, category=category, source="staff",
                                   code=f"INC-API-{grid.code}-{len(made)}")
        made.append(incident.id)
        return cases.case_open(incident_id=incident.id)

    yield make
    m.Incident.objects.filter(id__in=made).delete()


def test_anonymous_is_asked_to_sign_in_and_analysts_are_refused(accounts):
    answer = client().get("/api/cases/")
    assert answer.status_code == 401 and answer["WWW-Authenticate"].startswith("Basic")
    assert client(accounts["analyst"]).get("/api/cases/").status_code == 403


def test_a_grid_worker_sees_the_cases_of_their_grid_only_for_every_method(accounts, case_in, own_grid, other_grid):
    mine, theirs = case_in(own_grid), case_in(other_grid)
    listed = client(accounts["worker"]).get("/api/cases/?limit=500").json()
    codes = {row["code"] for row in listed["cases"]}
    assert mine.code in codes and theirs.code not in codes
    assert client(accounts["worker"]).get(f"/api/cases/{mine.id}").status_code == 200
    assert client(accounts["worker"]).get(f"/api/cases/{theirs.id}").status_code == 404
    for method in ("post", "put", "delete", "patch"):
        answer = getattr(client(accounts["worker"]), method)(f"/api/cases/{theirs.id}/acknowledge")
        assert answer.status_code == 404, method
    assert post(accounts["commander"], f"/api/cases/{theirs.id}/accept").status_code == 200  # the command centre may


def test_an_elders_alert_is_never_a_departments_case(accounts, case_in, own_grid):
    alert = case_in(own_grid, category="elder_inactivity")
    assert client(accounts["department"]).get(f"/api/cases/{alert.id}").status_code == 404
    assert client(accounts["commander"]).get(f"/api/cases/{alert.id}").json()["category"] == "elder_inactivity"


def test_a_case_walks_its_life_over_http(accounts, case_in, own_grid):
    case = case_in(own_grid)
    worker = m.GridWorker.objects.filter(grid=own_grid).order_by("id").first()
    commander, grid_worker = accounts["commander"], accounts["worker"]
    assert post(commander, f"/api/cases/{case.id}/accept").json()["state"] == "accepted"
    filed = post(commander, f"/api/cases/{case.id}/file").json()
    assert filed["state"] == "filed" and filed["stage"] == "dispatch" and filed["due_at"]
    assert post(commander, f"/api/cases/{case.id}/dispatch", {"worker_id": worker.id}).json()["assignee"] == worker.name
    assert post(grid_worker, f"/api/cases/{case.id}/acknowledge", {"position": [113.66, 34.75]}).status_code == 200
    handled = post(grid_worker, f"/api/cases/{case.id}/handle", {"note": "已清理 <b>", "photos": ["a.jpg"]}).json()
    assert handled["state"] == "handled" and handled["allowed"] == []  # the check is the command centre's
    closed = post(commander, f"/api/cases/{case.id}/pass").json()
    assert closed["state"] == "closed" and closed["closed_on_time"] is True
    actions = [step["action"] for step in closed["history"]]
    assert actions == ["report", "accept", "file", "dispatch", "acknowledge", "handle", "pass"]
    assert closed["history"][5]["data"]["note"] == "已清理 <b>"  # kept as written; JSON, never HTML


@pytest.mark.parametrize("account, url, body, status, message", [
    ("commander", "{id}/pass", {}, 409, "allowed now: accept, reject, escalate"),
    ("worker", "{id}/accept", {}, 409, "may not 'accept'"),
    ("commander", "{id}/reject", {}, 400, "needs a reason"),
    ("commander", "{id}/fly", {}, 404, "there is no case action"),
    ("commander", "{id}/dispatch", {"worker_id": "7"}, 400, "worker_id must be a positive whole number"),
    ("commander", "{id}/request_deferral", {"until": "tomorrow"}, 400, "until must be an ISO 8601"),
    ("commander", "999999999/accept", {}, 404, "does not exist"),
    ("commander", "x1/accept", {}, 404, "whole number"),
])
def test_refusals_say_why_and_change_nothing(accounts, case_in, own_grid, account, url, body, status, message):
    case = case_in(own_grid)
    before = m.Case.objects.filter(pk=case.id).values().get()
    answer = post(accounts[account], "/api/cases/" + url.format(id=case.id), body)
    assert answer.status_code == status and message in answer.json()["error"]
    assert m.Case.objects.filter(pk=case.id).values().get() == before


def test_bad_bodies_and_methods_are_client_errors(accounts, case_in, own_grid):
    case = case_in(own_grid)
    commander = accounts["commander"]
    raw = client(commander).post(f"/api/cases/{case.id}/accept", data=b"{not json", content_type="application/json")
    assert raw.status_code == 400 and "not JSON" in raw.json()["error"]
    assert post(commander, f"/api/cases/{case.id}/accept", ["a"]).status_code == 400
    assert client(commander).get(f"/api/cases/{case.id}/accept").status_code == 405
    assert client(commander).delete(f"/api/cases/{case.id}").status_code == 405
    assert client(commander).get("/api/cases/?state=lost").status_code == 400
    assert client(commander).get("/api/cases/?limit=0").status_code == 400
    assert client(commander).get("/api/cases/?grid=%00").status_code == 400  # was a 500 (NUL reached PostgreSQL)
    assert client(commander).get("/api/cases/?grid=" + "x" * 101).status_code == 400


def test_the_list_filters_and_pages(accounts, case_in, own_grid):
    made = [case_in(own_grid) for _ in range(3)]
    cases.case_accept(case_id=made[0].id, actor=COMMANDER)
    commander = client(accounts["commander"])
    accepted = commander.get(f"/api/cases/?state=accepted&grid={own_grid.code}").json()
    assert [row["code"] for row in accepted["cases"]] == [made[0].code]
    page = commander.get(f"/api/cases/?grid={own_grid.code}&limit=2&offset=1").json()
    assert page["numberMatched"] >= 3 and page["numberReturned"] == 2 and page["offset"] == 1


def test_indicators_as_json_csv_and_the_ogc_collection_agree(accounts, case_in, own_grid):
    from datetime import timedelta

    from django.utils import timezone

    from gis.cases.selectors import case_indicators

    made = [case_in(own_grid) for _ in range(2)]
    for case in made:
        cases.case_accept(case_id=case.id, actor=COMMANDER)
        cases.case_file(case_id=case.id, actor=COMMANDER)
    analyst = client(accounts["analyst"])
    answer = analyst.get("/api/cases/indicators?by=grid").json()
    mine = [row for row in answer["indicators"] if row["grid"] == own_grid.code]
    assert len(mine) == 1 and mine[0]["filed"] >= 2
    csv_text = analyst.get("/api/cases/indicators?by=grid&f=csv").content.decode()
    header, *lines = csv_text.strip().split("\r\n")
    assert header.split(",")[:3] == ["grid", "filed", "due"] and any(l.startswith(own_grid.code + ",") for l in lines)
    ogc = analyst.get(f"/ogc/collections/case_indicators/items?f=json&filter=code='{own_grid.code}'").json()
    properties = ogc["features"][0]["properties"]
    now = timezone.now()
    expected = [r for r in case_indicators(start=now - timedelta(days=30), end=now) if r["grid"] == own_grid.code]
    assert (properties["filed"], properties["due"], properties["closed"]) == (
        expected[0]["filed"], expected[0]["due"], expected[0]["closed"])
    assert client(accounts["worker"]).get("/api/cases/indicators").status_code == 403
    assert analyst.get("/api/cases/indicators?by=street").status_code == 400
    assert analyst.get("/api/cases/indicators?start=2026-12-08T00:00:00%2B08:00&end=2026-12-01T00:00:00%2B08:00"
                       ).status_code == 400


def test_the_big_screen_shows_the_case_its_clock_and_whom_to_send(accounts, case_in, own_grid, monkeypatch):
    from api.screen import views as screen
    from gis.cases.sla import sla_sweep

    monkeypatch.setattr(screen, "SCENES_TTL", 0.0)  # a panel another test asked for within 10 s is not this one

    case = case_in(own_grid)
    cases.case_accept(case_id=case.id, actor=COMMANDER)
    case = cases.case_file(case_id=case.id, actor=COMMANDER)
    commander = client(accounts["commander"])
    panel = commander.get(f"/screen/api/incidents/{case.incident_id}").json()["case"]
    assert (panel["code"], panel["label"], panel["breached"]) == (case.code, "已立案", False)
    assert "dispatch" in panel["allowed"] and panel["recommendation"]["candidates"]
    assert [step["action"] for step in panel["history"]] == ["report", "accept", "file"]
    sla_sweep(now=case.due_at)  # the dispatch limit breached: overdue, escalated one tier
    scenes = commander.get(f"/screen/api/scenes?grid={own_grid.code}").json()["cases"]
    open_here = m.Case.objects.filter(incident__grid=own_grid).exclude(state__in=["closed", "rejected"])
    assert scenes["open"] == open_here.count()
    assert scenes["overdue"] == open_here.filter(events__action="breach").distinct().count() >= 1
    assert scenes["escalated"] == open_here.filter(escalation_count__gt=0).count() >= 1
    live = commander.get(f"/screen/api/incidents?grid={own_grid.code}").json()["features"]
    mine = [f for f in live if f["id"] == case.incident_id]
    assert mine and mine[0]["properties"]["overdue"] is True


def test_the_big_screen_counts_cases_by_grid_as_the_caller_may_see_them(accounts, case_in, own_grid, other_grid,
                                                                       monkeypatch):
    from api.screen import views as screen
    from core.vocabulary import OPEN_CASE_STATES
    from gis.cases.selectors import case_counts_by_grid
    from layers.access import scoped_django

    monkeypatch.setattr(screen, "SCENES_TTL", 0.0)
    escalated = case_in(own_grid)
    cases.case_escalate(case_id=escalated.id, actor=COMMANDER, reason="需街道协调")
    case_in(own_grid)
    case_in(other_grid)
    level2 = own_grid.parent
    commander = client(accounts["commander"])
    answer = commander.get(f"/screen/api/case-grids?grid={level2.code}").json()
    assert answer["grid"]["code"] == level2.code
    rows = {row["code"]: row for row in answer["grids"]}
    assert set(rows) == set(m.Grid.objects.filter(level=3, parent=level2).values_list("code", flat=True))
    for grid in (own_grid, other_grid):
        open_here = m.Case.objects.filter(incident__grid=grid, state__in=OPEN_CASE_STATES)
        assert rows[grid.code]["open"] == open_here.count() >= 1
        assert rows[grid.code]["overdue"] == open_here.filter(events__action="breach").distinct().count()
        assert rows[grid.code]["escalated"] == open_here.filter(escalation_count__gt=0).count()
    assert rows[own_grid.code]["escalated"] >= 1
    counts = ("open", "overdue", "escalated")
    assert answer["total"] == {k: sum(row[k] for row in rows.values()) for k in counts}
    panel = commander.get(f"/screen/api/scenes?grid={level2.code}").json()["cases"]
    assert {k: panel[k] for k in counts} == answer["total"]  # the governance panel's counts are the table's total
    assert client(accounts["worker"]).get(f"/screen/api/case-grids?grid={level2.code}").status_code == 403
    assert commander.get("/screen/api/case-grids?grid=nosuch").status_code == 404

    # row-level security decides what counts: a grid worker's scope holds their grid's cases and nothing else
    worker = Identity(role="grid_worker", username=accounts["worker"].username, grid_id=own_grid.id)
    with scoped_django(worker):
        own, wider, other = (case_counts_by_grid(grid_id=grid.id) for grid in (own_grid, level2, other_grid))
    assert own["total"] == {k: rows[own_grid.code][k] for k in counts}
    assert [row["code"] for row in own["grids"]] == [own_grid.code]
    assert wider["grids"] == other["grids"] == [] and other["total"] == {k: 0 for k in counts}


def test_a_dead_letter_names_its_case(accounts, case_in, own_grid):
    from django.db import connection

    from gis.notifications.models import Notification
    from gis.notifications.services import notify

    case = case_in(own_grid)
    notify(key=f"test:dead-letter:case:{case.id}", channel="dingtalk", recipient="nosuch-robot",
           subject=("case", case.id), payload={"title": "测试 dead letter of a case"})
    dead = Notification.objects.get(key=f"test:dead-letter:case:{case.id}")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE notifications SET state = 'dead', attempts = 1, last_error = 'no robot' WHERE id = %s",
                       [dead.id])
    try:
        listed = client(accounts["commander"]).get("/api/cases/notices/dead").json()["notifications"]
        [row] = [n for n in listed if n["id"] == dead.id]
        assert (row["case_code"], row["recipient"], row["subject"]) == (case.code, "nosuch-robot",
                                                                        {"kind": "case", "id": case.id})
    finally:
        Notification.objects.filter(pk=dead.id).delete()


def test_a_joint_part_is_added_and_shown_over_http(accounts, case_in, own_grid):
    from django.contrib.gis.geos import MultiPolygon

    level1 = own_grid.parent.parent
    area = level1.geom if level1.geom.geom_type == "MultiPolygon" else MultiPolygon(level1.geom)
    unit = m.Department.objects.create(code="DEPT-API-1", name="派出所", kind="police",
                                       categories=["sanitation"], geom=area)
    try:
        case = case_in(own_grid)
        cases.case_accept(case_id=case.id, actor=COMMANDER)
        cases.case_file(case_id=case.id, actor=COMMANDER)
        url = f"/api/cases/{case.id}/add_task"
        assert post(accounts["commander"], url, {"department_id": unit.id}).status_code == 400  # no due_at
        added = post(accounts["commander"], url, {"department_id": unit.id, "due_at": "2099-01-01T17:00:00+08:00"})
        assert added.status_code == 200 and added.json()["tasks"][0]["department"] == "派出所"
        assert post(accounts["commander"], url, {"department_id": unit.id,
                                                 "due_at": "2099-01-01T17:00:00+08:00"}).status_code == 409
        # the test's department account names no unit: it may not complete the police station's part
        done = post(accounts["department"], f"/api/cases/{case.id}/complete_task", {"department_id": unit.id})
        assert done.status_code == 409 and "this is 派出所's part" in done.json()["error"]
        from api.auth import clear_identity_cache

        m.AccessProfile.objects.filter(user__username=accounts["department"].username).update(department="派出所")
        clear_identity_cache()
        try:
            done = post(accounts["department"], f"/api/cases/{case.id}/complete_task", {"department_id": unit.id})
        finally:
            m.AccessProfile.objects.filter(user__username=accounts["department"].username).update(department="")
            clear_identity_cache()
        assert done.status_code == 200 and done.json()["tasks"][0]["state"] == "done"
    finally:
        m.CaseTask.objects.filter(department=unit).delete()
        unit.delete()


def test_commanders_see_the_dead_letters_and_replay_them(accounts, demo_db):
    from django.db import connection

    from gis.notifications.models import Notification
    from gis.notifications.services import notify

    notify(key="test:dead-letter:1", channel="in_app", recipient="command-centre", subject=("case", None),
           payload={"title": "测试 dead letter"})
    dead = Notification.objects.get(key="test:dead-letter:1")
    with connection.cursor() as cursor:  # as the worker leaves it after its last attempt
        cursor.execute("UPDATE notifications SET state = 'dead', attempts = 5, last_error = 'HTTP 500' WHERE id = %s",
                       [dead.id])
    try:
        listed = client(accounts["commander"]).get("/api/cases/notices/dead").json()["notifications"]
        assert [n["last_error"] for n in listed if n["id"] == dead.id] == ["HTTP 500"]
        assert client(accounts["worker"]).get("/api/cases/notices/dead").status_code == 403
        assert post(accounts["worker"], f"/api/cases/notices/{dead.id}/replay").status_code == 403
        replayed = post(accounts["commander"], f"/api/cases/notices/{dead.id}/replay").json()
        assert (replayed["state"], replayed["attempts"]) == ("pending", 0)
        again = post(accounts["commander"], f"/api/cases/notices/{dead.id}/replay")
        assert again.status_code == 409 and "only a dead letter" in again.json()["error"]
        assert post(accounts["commander"], "/api/cases/notices/999999999/replay").status_code == 404
        assert client(accounts["commander"]).get(f"/api/cases/notices/{dead.id}/replay").status_code == 405
    finally:
        Notification.objects.filter(pk=dead.id).delete()


@pytest.mark.parametrize("who", ["administrator", "worker"])
def test_an_incident_written_through_the_ogc_api_is_a_case_and_goes_with_it(accounts, own_grid, who):
    """Every incident is a case: one POSTed by an administrator, or by a grid worker inside their
    grid (under row-level security), opens its case in the same transaction; a DELETE takes both."""
    point = own_grid.geom.point_on_surface
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
               "properties": {"category": "sanitation", "title": "OGC 写入的事件"}}
    account = accounts[who]
    made = client(account).post("/ogc/collections/incidents/items", data=json.dumps(feature),
                                content_type="application/geo+json")
    assert made.status_code == 201, made.content
    number = int(made.headers["Location"].rsplit("/", 1)[1])
    case = m.Case.objects.get(incident_id=number)
    assert case.state == "reported" and case.grid_id == own_grid.id
    assert list(case.events.values_list("action", flat=True)) == ["report"]
    gone = client(accounts["administrator"]).delete(f"/ogc/collections/incidents/items/{number}")
    assert gone.status_code == 204
    assert not m.Case.objects.filter(pk=case.pk).exists()


def test_a_residents_pin_near_the_boundary_is_seen_by_the_neighbouring_worker_too(accounts, own_grid, other_grid):
    """A pin 10 m inside the first grid from its edge with the second: the case is the first grid's, flagged for
    the second, whose worker finds it in the cases API (row-level security) while a third grid's does not."""
    from django.db import connection

    from gis.reports.services import report_submit

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT ST_X(p), ST_Y(p) FROM grids a, grids b,
            LATERAL (SELECT ST_ClosestPoint(ST_Buffer(a.geom::geography, -10)::geometry,
                     ST_PointOnSurface(ST_Intersection(a.geom, b.geom))) AS p) q
            WHERE a.id = %s AND b.id = %s""", [own_grid.id, other_grid.id])
        lon, lat = cursor.fetchone()
    report = report_submit(category="sanitation", description="两个网格交界处的垃圾", lon=lon, lat=lat)
    try:
        case = m.Case.objects.get(pk=report.case_id)
        assert case.grid_id == own_grid.id and case.near_grid_id == other_grid.id
        for who in ("worker", "worker2"):
            assert client(accounts[who]).get(f"/api/cases/{case.id}").status_code == 200, who
            listed = client(accounts[who]).get("/api/cases/?limit=500").json()["cases"]
            assert case.code in {row["code"] for row in listed}, who
        third = m.Grid.objects.filter(level=3).exclude(id__in=[own_grid.id, other_grid.id]).order_by("code").first()
        from gis.accounts.services import token_create, user_create

        user_create(username="test_worker3_near", role="grid_worker", grid_code=third.code)
        _, token = token_create(username="test_worker3_near", name="tests")
        from conftest import Account

        outsider = Account("test_worker3_near", token, "grid_worker", third.code)
        assert client(outsider).get(f"/api/cases/{case.id}").status_code == 404
    finally:
        m.Incident.objects.filter(pk=report.incident_id).delete()
        m.Report.objects.filter(pk=report.pk).delete()
        from django.contrib.auth import get_user_model

        get_user_model().objects.filter(username="test_worker3_near").delete()
