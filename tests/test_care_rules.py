"""The elder-care rules over simulated weeks, on a clock the tests hold, against the real database.

The state ingest keeps (``gis.care.ingest``: sensor heartbeats and battery, gateway status,
``care_subjects.last_activity_at``) is written here with the ORM, as ingest writes it; the
sweep (``gis.care.rules.care_rules_sweep``) reads nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from core.identity import Identity
from gis import models as m
from gis.care import services as care
from gis.care.rules import care_rules_sweep
from gis.cases.models import CaseEvent
from gis.cases.sla import sla_sweep
from gis.notifications.models import Notification
from gis.services import ServiceError

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 0, 0, tzinfo=SH)  # a Monday, after the demo's data: the demo's own sensors are all silent
H = timedelta(hours=1)


@dataclass
class Home:
    """A person under care with a door magnet, as the demo makes them, and what ingest would write for them."""

    subject: m.CareSubject
    door: m.Sensor
    seq: int = 0
    events: list = field(default_factory=list)

    def heartbeat(self, ts: datetime, battery: int | None = None) -> None:
        self._event(ts, "heartbeat")
        m.Sensor.objects.filter(pk=self.door.pk).update(last_heartbeat_at=ts, last_seen_at=ts,
                                                        **({"battery_pct": battery} if battery is not None else {}))
        if self.door.gateway_id:  # the message came through the gateway: it is alive too
            m.Gateway.objects.filter(pk=self.door.gateway_id).update(last_seen_at=ts)

    def door_open(self, ts: datetime, sensor: m.Sensor | None = None, kind: str = "door_open") -> None:
        sensor = sensor or self.door
        self._event(ts, kind, sensor)
        m.Sensor.objects.filter(pk=sensor.pk).update(last_seen_at=ts)
        subject = m.CareSubject.objects.get(pk=self.subject.pk)
        if subject.last_activity_at is None or subject.last_activity_at < ts:
            m.CareSubject.objects.filter(pk=self.subject.pk).update(last_activity_at=ts)

    def _event(self, ts: datetime, kind: str, sensor: m.Sensor | None = None) -> None:
        self.seq += 1
        m.SensorEvent.objects.create(sensor=sensor or self.door, seq=self.seq, ts=ts, type=kind)

    def alerts(self, kind: str | None = None) -> list[m.CareAlert]:
        rows = m.CareAlert.objects.filter(subject=self.subject).order_by("id")
        return list(rows.filter(kind=kind) if kind else rows)

    def state(self) -> m.CareRuleState:
        return m.CareRuleState.objects.get(subject=self.subject)


@pytest.fixture
def make_home(rollback, own_grid):
    buildings = list(m.Building.objects.filter(grid=own_grid).order_by("id")[:50])
    made = []

    def make(*, rule: dict | None = None, gateway: m.Gateway | None = None, kind: str = "elder",
             active_since: datetime = T0) -> Home:
        n = len(made)
        building = buildings[n % len(buildings)]
        point = building.geom.point_on_surface
        subject = m.CareSubject.objects.create(
            code=f"CS-TEST-{n}", kind=kind, age_band="80-84", lives_alone=True, monitoring_rule=rule or {},
            building=building, grid=own_grid, geom=point, last_activity_at=active_since)
        m.CareSubject.objects.filter(pk=subject.pk).update(created_at=active_since - 30 * 24 * H)
        door = m.Sensor.objects.create(code=f"SEN-TEST-{n}", kind="door_magnet", care_subject=subject,
                                       building=building, geom=point, gateway=gateway, battery_pct=90,
                                       last_heartbeat_at=active_since, last_seen_at=active_since)
        m.Sensor.objects.filter(pk=door.pk).update(created_at=active_since - 30 * 24 * H)
        home = Home(m.CareSubject.objects.get(pk=subject.pk), door)
        made.append(home)
        return home

    return make


def live(homes: list[Home], start: datetime, end: datetime, *, step: timedelta = H, doors_until=None,
         heartbeats_until=None, sweep_from: datetime | None = None, down: tuple[datetime, datetime] | None = None):
    """Advance the clock from ``start`` to ``end``: heartbeats every step, a door opening at 08:00 and 18:00
    (until ``doors_until``), a sweep after each step unless the worker is ``down``."""
    t = start
    while t < end:
        t += step
        for home in homes:
            if heartbeats_until is None or t <= heartbeats_until:
                home.heartbeat(t)
            local = t.astimezone(SH)
            if (doors_until is None or t <= doors_until) and local.minute == 0 and local.hour in (8, 18):
                home.door_open(t)
        if (sweep_from is None or t >= sweep_from) and not (down and down[0] <= t < down[1]):
            care_rules_sweep(now=t)


# -- the inactivity rule ----------------------------------------------------------------------------


def test_a_lone_elder_who_stops_opening_the_door_is_warned_at_24h_and_alerted_at_48h_once(make_home, own_grid):
    home = make_home()
    last_door = T0 + timedelta(days=2, hours=18)  # Wednesday 18:00, then nothing
    live([home], T0, T0 + timedelta(days=9), doors_until=last_door)
    warning, = home.alerts("warning")
    alert, = home.alerts("alert")
    assert warning.basis_at == alert.basis_at == last_door
    assert (warning.raised_at, alert.raised_at) == (last_door + 24 * H, last_door + 48 * H)
    assert warning.cleared_at is None and alert.cleared_at is None
    # the alert is a case, at the building (never the flat), dispatched to a worker of the level-3 grid
    incident = alert.incident
    case = incident.case
    assert (incident.category, incident.source, incident.floor) == ("elder_inactivity", "sensor", None)
    assert incident.geom.equals_exact(home.subject.geom, 1e-9) and incident.building_id == home.subject.building_id
    assert case.state == "dispatched" and case.assignee.grid_id == own_grid.id
    assert case.tier == 3 and case.due_at == alert.raised_at + 60 * timedelta(minutes=1)
    # the warning told the grid's workers, naming the building only
    told = Notification.objects.filter(key__startswith=f"care-warning:{warning.id}:")
    assert told.exists() and all(n.recipient.startswith("worker:") for n in told)
    assert all(home.subject.code not in str(n.payload) for n in told)


def test_a_restarted_worker_catches_up_and_raises_nothing_twice(make_home):
    home = make_home()
    last_door = T0 + timedelta(days=1, hours=8)
    # the worker is down from 20 h to 30 h of silence (over the warning) and again over the alert
    live([home], T0, last_door + 30 * H, doors_until=last_door, down=(last_door + 20 * H, last_door + 30 * H))
    warning, = home.alerts("warning")
    assert warning.raised_at == last_door + 30 * H  # the first sweep after the restart
    live([home], last_door + 30 * H, last_door + 72 * H, doors_until=last_door, down=(last_door + 40 * H, last_door + 60 * H))
    care_rules_sweep(now=last_door + 72 * H)  # two sweeps at one moment (two workers): nothing twice
    assert len(home.alerts("warning")) == 1
    alert, = home.alerts("alert")
    assert alert.raised_at == last_door + 60 * H and alert.incident is not None


def test_away_mode_suppresses_and_the_count_starts_again_at_the_return(make_home):
    home = make_home()
    last_door = T0 + timedelta(hours=8)
    back = T0 + timedelta(days=5)
    care.care_period_add(subject_id=home.subject.id, kind="away", starts_at=T0 + 9 * H, ends_at=back, note="外出探亲")
    live([home], T0, back - H, doors_until=last_door)
    assert home.alerts() == [] and home.state().suspended == "away" and home.state().alert_at is None
    live([home], back - H, back + 30 * H, doors_until=last_door)
    warning, = home.alerts()
    assert warning.kind == "warning" and warning.basis_at == back and warning.raised_at == back + 24 * H


def test_hospital_suspends_until_its_end(make_home):
    home = make_home()
    period = care.care_period_add(subject_id=home.subject.id, kind="hospital", starts_at=T0 + H)
    live([home], T0, T0 + timedelta(days=4), doors_until=T0)
    assert home.alerts() == [] and home.state().suspended == "hospital"
    care.care_period_end(period_id=period.id, at=T0 + timedelta(days=4))
    care_rules_sweep(now=T0 + timedelta(days=4, hours=1))
    assert home.state().suspended == "" and home.state().basis_at == T0 + timedelta(days=4)


def test_activity_clears_a_warning_and_no_alert_follows(make_home):
    home = make_home()
    last_door = T0 + timedelta(hours=8)
    live([home], T0, last_door + 30 * H, doors_until=last_door)
    warning, = home.alerts()
    # a peephole camera bound to the door sees the person pass (a sighting counts as activity)
    peephole = m.Sensor.objects.create(code="SEN-TEST-PEEP", kind="peephole_camera", care_subject=home.subject,
                                       building=home.subject.building, geom=home.subject.geom,
                                       last_heartbeat_at=last_door + 30 * H)
    home.door_open(last_door + 31 * H, sensor=peephole, kind="sighting")
    live([home], last_door + 30 * H, last_door + 50 * H, doors_until=last_door)
    m.Sensor.objects.filter(pk=peephole.pk).update(last_heartbeat_at=last_door + 50 * H)
    warning.refresh_from_db()
    assert warning.cleared_at == last_door + 31 * H
    assert home.alerts("alert") == [] and home.state().basis_at == last_door + 31 * H


def test_a_rule_change_takes_effect_at_the_next_sweep(make_home):
    home = make_home()
    live([home], T0, T0 + 13 * H, doors_until=T0)
    assert home.alerts() == []
    care.care_rule_set(subject_id=home.subject.id, rule={"warn_hours": 6, "alert_hours": 12})
    care_rules_sweep(now=T0 + 13 * H + timedelta(minutes=1))
    assert sorted(a.kind for a in home.alerts()) == ["alert", "warning"]


def test_only_the_counted_hours_of_the_day_count(make_home):
    # nights do not count: 07:00-22:00 only; 30 counted hours from Monday 20:00 = 2 + 15 + 13 → Wednesday 20:00
    home = make_home(rule={"alert_hours": 30, "warn_hours": 15, "counted_hours": [7, 22]},
                     active_since=T0 + 20 * H)
    care_rules_sweep(now=T0 + 21 * H)
    state = home.state()
    assert state.warn_at == T0 + timedelta(days=1, hours=20)  # 2 + 13
    assert state.alert_at == T0 + timedelta(days=2, hours=20)


@pytest.mark.parametrize("rule, error", [
    ({"alert_hours": -1}, "alert_hours"), ({"warn_hours": 30, "alert_hours": 24}, "less than"),
    ({"counted_hours": [7]}, "counted_hours"), ({"nights": True}, "unknown rule keys"),
])
def test_a_bad_rule_is_refused_with_its_reason(make_home, rule, error):
    home = make_home()
    with pytest.raises(ServiceError, match=error):
        care.care_rule_set(subject_id=home.subject.id, rule=rule)


def test_a_malformed_rule_written_behind_the_service_falls_back_to_the_defaults(make_home):
    home = make_home()
    m.CareSubject.objects.filter(pk=home.subject.pk).update(monitoring_rule={"alert_hours": "soon"})
    care_rules_sweep(now=T0 + H)
    assert home.state().alert_at == T0 + 48 * H


# -- silence told apart -----------------------------------------------------------------------------


def test_a_dead_sensor_is_a_device_fault_and_not_an_inactivity_alert(make_home):
    home = make_home()
    dies = T0 + timedelta(days=1)
    live([home], T0, T0 + timedelta(days=4), doors_until=T0, heartbeats_until=dies)
    fault, = m.CareFault.objects.filter(sensor=home.door)
    assert (fault.kind, fault.reason, fault.cleared_at) == ("device", "heartbeat_lost", None)
    assert fault.opened_at == dies + 7 * H  # silent for more than 6 h
    assert home.alerts("alert") == [] and home.state().suspended == "device_fault"
    told, = Notification.objects.filter(key=f"care-fault:{fault.id}")
    assert told.recipient == care.MAINTENANCE and home.subject.code not in str(told.payload)
    # repaired: the fault clears and the silence counts from the repair
    live([home], T0 + timedelta(days=4), T0 + timedelta(days=4, hours=2))
    fault.refresh_from_db()
    assert fault.cleared_at == T0 + timedelta(days=4, hours=1)
    assert home.state().basis_at == fault.cleared_at


def test_a_low_battery_is_a_maintenance_task_while_the_rule_keeps_running(make_home):
    home = make_home()
    home.heartbeat(T0 + H, battery=12)
    care_rules_sweep(now=T0 + H)
    fault, = m.CareFault.objects.filter(sensor=home.door)
    assert fault.reason == "battery_low" and home.state().suspended == ""


def test_a_silent_gateway_is_one_network_fault_not_forty_alerts(make_home, own_grid):
    building = m.Building.objects.filter(grid=own_grid).first()
    gateway = m.Gateway.objects.create(code="GW-TEST-1", building=building, geom=building.geom.point_on_surface,
                                       last_seen_at=T0)
    homes = [make_home(gateway=gateway) for _ in range(40)]
    gone = T0 + timedelta(hours=30)
    # every home lives normally, then the gateway's last-will arrives and nothing more is heard
    live(homes, T0, gone, doors_until=gone)
    m.Gateway.objects.filter(pk=gateway.pk).update(last_seen_at=gone)
    m.Gateway.objects.filter(pk=gateway.pk).update(status="offline")
    live(homes, gone, gone + timedelta(days=3), step=2 * H, doors_until=gone, heartbeats_until=gone)
    network = m.CareFault.objects.filter(kind="network", gateway=gateway)
    assert network.count() == 1 and network.get().reason == "gateway_offline"
    sensors = [h.door.id for h in homes]
    assert not m.CareFault.objects.filter(sensor_id__in=sensors).exists()
    assert not m.CareAlert.objects.filter(subject__in=[h.subject for h in homes]).exists()
    assert {h.state().suspended for h in homes} == {"network_fault"}
    assert Notification.objects.get(key=f"care-fault:{network.get().id}").recipient == care.NETWORK


# -- alerts, the ladder, visits -----------------------------------------------------------------------


def test_an_unacknowledged_alert_climbs_the_ladder(make_home, own_grid):
    home = make_home()
    care.care_rule_set(subject_id=home.subject.id, rule={"alert_hours": 4})
    report = care_rules_sweep(now=T0 + 5 * H)
    case = m.Case.objects.get(pk=report.cases[0])
    raised = T0 + 5 * H
    assert (case.tier, case.grid_id) == (3, own_grid.id)
    sla_sweep(now=raised + timedelta(minutes=11))  # not signed for in 10 minutes: the community
    case.refresh_from_db()
    level2 = own_grid.parent
    assert (case.tier, case.grid_id) == (2, level2.id)
    sla_sweep(now=raised + timedelta(minutes=11 + 61))  # nobody handled it there in an hour: the subdistrict
    case.refresh_from_db()
    assert (case.tier, case.grid_id) == (1, level2.parent_id)
    rungs = Notification.objects.filter(subject_kind="case", subject_id=case.id).values_list("recipient", flat=True)
    assert f"grid:{level2.code}" in rungs and f"grid:{level2.parent.code}" in rungs
    assert any(r.startswith("worker:") for r in rungs)
    assert list(CaseEvent.objects.filter(case=case, action="escalate").values_list("actor", flat=True)) == \
        ["system", "system"]


def test_a_door_opened_during_isolation_raises_one_alert(make_home):
    home = make_home(kind="home_monitoring")
    care.care_period_add(subject_id=home.subject.id, kind="isolation", starts_at=T0 + H, ends_at=T0 + 14 * 24 * H)
    home.door_open(T0 + 30 * timedelta(minutes=1))  # before the period: nothing
    home.heartbeat(T0 + 2 * H)
    care_rules_sweep(now=T0 + 2 * H)
    assert home.alerts("isolation") == []
    home.door_open(T0 + 3 * H)
    home.door_open(T0 + 4 * H)
    home.heartbeat(T0 + 5 * H)
    care_rules_sweep(now=T0 + 5 * H)
    care_rules_sweep(now=T0 + 6 * H)
    alert, = home.alerts("isolation")
    assert alert.basis_at == T0 + 3 * H and alert.incident.title == "居家隔离期间开门"


def test_a_visit_records_the_outcome_handles_the_case_and_counts(make_home, own_grid):
    from gis.care.selectors import care_indicators

    home = make_home()
    care.care_rule_set(subject_id=home.subject.id, rule={"alert_hours": 4})
    raised = T0 + 5 * H
    case = m.Case.objects.get(pk=care_rules_sweep(now=raised).cases[0])
    worker = case.assignee
    from django.contrib.auth import get_user_model

    worker.user = get_user_model().objects.create(username="visit.test")
    worker.save()
    who = Identity(role="grid_worker", username="visit.test", user_id=worker.user_id, grid_id=own_grid.id)
    with pytest.raises(ServiceError, match="check in"):
        care.care_visit_record(case_id=case.id, actor=who, outcome="false_alarm", at=raised + 20 * timedelta(minutes=1))
    position = (home.subject.geom.x, home.subject.geom.y)
    visit = care.care_visit_record(case_id=case.id, actor=who, outcome="false_alarm", note="老人在家看电视",
                                   position=position, at=raised + 25 * timedelta(minutes=1))
    case.refresh_from_db()
    assert case.state == "handled" and visit.checked_in_at == raised + 25 * timedelta(minutes=1)
    assert m.CareAlert.objects.get(incident=case.incident).cleared_at == visit.at
    # the visit saw the person: a new silence counts from it
    care_rules_sweep(now=raised + H)
    assert home.state().basis_at == visit.at
    rows = care_indicators(start=T0, end=T0 + timedelta(days=31))
    mine = next(r for r in rows if r["grid"] == own_grid.code and r["month"] == "2027-03")
    assert (mine["alerts"], mine["visited"], mine["false_alarms"]) == (1, 1, 1)
    assert mine["false_alarm_share"] == 1.0 and mine["median_minutes_to_visit"] == 25.0
    assert mine["alerts_per_person_month"] == pytest.approx(1 / mine["people"])


def test_a_visit_finding_the_person_away_rests_the_rule(make_home, own_grid):
    home = make_home()
    care.care_rule_set(subject_id=home.subject.id, rule={"alert_hours": 4})
    raised = T0 + 5 * H
    case = m.Case.objects.get(pk=care_rules_sweep(now=raised).cases[0])
    commander = Identity(role="commander", username="cmd.test")
    care.care_visit_record(case_id=case.id, actor=commander, outcome="hospitalised", position=(113.66, 34.75),
                           at=raised + H)
    care_rules_sweep(now=raised + 2 * H)
    assert home.state().suspended == "hospital"


def test_the_sweep_is_set_based_over_the_whole_population(make_home):
    """One statement per step, whatever the number of people (the bench times it over 100,000)."""
    from django.test.utils import CaptureQueriesContext

    homes = [make_home() for _ in range(5)]
    live(homes, T0, T0 + H)
    with CaptureQueriesContext(connection) as queries:
        care_rules_sweep(now=T0 + 2 * H)
    assert len(queries) < 20


# -- through the API (the phone's queue posts to /api/cases/{id}/visit) -----------------------------------


@pytest.fixture
def committed_alert(accounts, own_grid):
    """An alert's case dispatched to the signed-in worker, committed (requests run under their own database
    role, which a test transaction would keep), and everything it made removed afterwards."""
    from gis.accounts.services import grid_worker_bind
    from gis.care.services import care_alert_cases

    worker = m.GridWorker.objects.filter(grid=own_grid).order_by("code").first()
    duty = dict(m.GridWorker.objects.filter(grid=own_grid).values_list("id", "on_duty"))
    grid_worker_bind(username=accounts["worker"].username, worker_code=worker.code)
    m.GridWorker.objects.filter(grid=own_grid).update(on_duty=False)
    m.GridWorker.objects.filter(pk=worker.pk).update(on_duty=True)
    building = m.Building.objects.filter(grid=own_grid).order_by("id").first()
    point = building.geom.point_on_surface
    subject = m.CareSubject.objects.create(code="CS-TEST-API", age_band="80-84", lives_alone=True, building=building,
                                           grid=own_grid, geom=point, last_activity_at=T0)
    m.Sensor.objects.create(code="SEN-TEST-API", kind="door_magnet", care_subject=subject, building=building,
                            geom=point, last_heartbeat_at=T0)
    m.CareAlert.objects.create(subject=subject, kind="alert", basis_at=T0, raised_at=T0 + 48 * H, grid=own_grid)
    case = m.Case.objects.get(pk=care_alert_cases(at=T0 + 48 * H)[0])
    yield case, subject, worker
    incident = case.incident_id
    m.CareVisit.objects.filter(subject=subject).delete()
    m.CareAlert.objects.filter(subject=subject).delete()
    m.CarePeriod.objects.filter(subject=subject).delete()
    Notification.objects.filter(subject_kind="case", subject_id=case.id).delete()
    m.Incident.objects.filter(pk=incident).delete()
    subject.delete()
    m.Sensor.objects.filter(code="SEN-TEST-API").delete()
    m.GridWorker.objects.filter(pk=worker.pk).update(user=None)
    for pk, on_duty in duty.items():
        m.GridWorker.objects.filter(pk=pk).update(on_duty=on_duty)


def test_the_phone_checks_in_and_records_the_visit_and_figures_read_the_indicators(committed_alert, accounts,
                                                                                     own_grid):
    import base64
    import json

    from django.test import Client

    def client(account=None) -> Client:
        if account is None:
            return Client(HTTP_HOST="127.0.0.1")
        raw = base64.b64encode(f"{account.username}:{account.token}".encode()).decode()
        return Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Basic {raw}")

    case, subject, worker = committed_alert
    assert case.assignee_id == worker.id and case.state == "dispatched"
    phone = client(accounts["worker"])
    here = [subject.geom.x, subject.geom.y]
    for action, body in (("acknowledge", {}), ("arrive", {"position": here})):
        answer = phone.post(f"/api/cases/{case.id}/{action}", json.dumps(body), content_type="application/json")
        assert answer.status_code == 200, answer.content
    bad = phone.post(f"/api/cases/{case.id}/visit", json.dumps({"outcome": "asleep"}), content_type="application/json")
    assert bad.status_code == 400 and "outcome must be one of" in bad.json()["error"]
    answer = phone.post(f"/api/cases/{case.id}/visit", json.dumps({"outcome": "false_alarm", "note": "在家"}),
                        content_type="application/json", HTTP_IDEMPOTENCY_KEY="visit-key-0001")
    assert answer.status_code == 200 and answer.json()["state"] == "handled"
    visit, = m.CareVisit.objects.filter(case=case)
    assert (visit.outcome, visit.note, visit.worker_id) == ("false_alarm", "在家", worker.id)
    assert visit.position is not None and visit.checked_in_at is not None
    assert client().get("/api/care/indicators").status_code == 401
    assert client(accounts["worker"]).get("/api/care/indicators").status_code == 403
    period = "start=2027-03-01T00:00:00%2B08:00&end=2027-04-01T00:00:00%2B08:00"
    figures = client(accounts["analyst"]).get(f"/api/care/indicators?{period}")
    assert figures.status_code == 200
    row = next(r for r in figures.json()["indicators"] if r["grid"] == own_grid.code)
    assert (row["alerts"], row["visited"], row["false_alarm_share"]) == (1, 1, 1.0)
    assert subject.code not in figures.content.decode()
    csv = client(accounts["commander"]).get(f"/api/care/indicators?f=csv&{period}")
    assert csv.status_code == 200 and csv.content.decode().startswith("grid,")


def test_the_demos_alerts_are_the_rules_own_and_the_first_sweep_repeats_none(rollback):
    from data.demo import DEMO_AS_OF

    made = m.Incident.objects.filter(synthetic=True, category="elder_inactivity")
    assert made.exists() and m.CareAlert.objects.filter(incident__in=made, kind="alert").count() == made.count()
    report = care_rules_sweep(now=DEMO_AS_OF + timedelta(minutes=1), open_cases=False)
    assert not m.CareAlert.objects.filter(pk__in=report.alerts, subject__sensors__incidents__in=made).exists()
    opened = m.CareFault.objects.filter(pk__in=report.faults_opened)
    assert set(opened.values_list("reason", flat=True)) == {"battery_low"}  # the demo's batteries: 15-100%
    # the demo's people with a door magnet are watched: their deadlines run
    watched = m.CareRuleState.objects.filter(subject__sensors__kind="door_magnet").distinct()
    assert watched.exists() and not watched.exclude(suspended="").exists()


@pytest.mark.parametrize("query, words", [
    ("end=0001-01-01T00:00:00Z", "between the years"), ("start=2027-03-01T00:00:00", "UTC offset"),
    ("start=2027-04-01T00:00:00%2B08:00&end=2027-03-01T00:00:00%2B08:00", "before end"), ("f=xml", "json or csv"),
])
def test_the_indicators_refuse_a_bad_period_with_a_400(accounts, query, words):
    import base64

    from django.test import Client

    raw = base64.b64encode(f"{accounts['analyst'].username}:{accounts['analyst'].token}".encode()).decode()
    answer = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Basic {raw}").get(f"/api/care/indicators?{query}")
    assert answer.status_code == 400 and words in answer.json()["error"]
