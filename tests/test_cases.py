"""Cases: every path from report to closure on a clock the tests hold, across a weekend and National Day 2026.

The moments are Asia/Shanghai wall-clock times; due times come from the working calendar
(working hours, China's holidays and the 调休 make-up days), so the expectations below are
written as the calendar's rules say them, and checked against the calendar's own count.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.identity import Identity
from gis import models as m
from gis.cases import clock
from gis.cases import services as cases
from gis.cases.limits import limit_for
from gis.cases.models import Case, CaseEvent
from gis.cases.services import CaseRefused
from gis.cases.sla import sla_sweep
from gis.cases.workflow import ACTIONS, allowed_actions
from gis.incidents.services import incident_create
from gis.services import ServiceError

SH = ZoneInfo("Asia/Shanghai")
COMMANDER = Identity(role="commander", username="cmd.test")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
def make_case(rollback, own_grid):
    """A new case in the first level-3 grid, of a category, opened at a moment."""
    made = []

    def make(category: str = "falling_object", moment: str = "2026-12-07 10:00") -> Case:
        point = own_grid.geom.point_on_surface
        incident = incident_create(lon=point.x, lat=point.y, category=category, source="staff",
                                   code=f"INC-CASE-{len(made)}", reported_at=at(moment))
        case = cases.case_open(incident_id=incident.id, at=at(moment))
        made.append(case)
        return case

    return make


@pytest.fixture
def handler(own_grid):
    worker = m.GridWorker.objects.filter(grid=own_grid).order_by("id").first()
    assert worker is not None, "the demo has a worker in every level-3 grid"
    return worker


@pytest.fixture
def worker_identity(own_grid):
    return Identity(role="grid_worker", username="worker.test", grid_id=own_grid.id)


def filed(case: Case, moment: str) -> Case:
    cases.case_accept(case_id=case.id, actor=COMMANDER, at=at(moment))
    return cases.case_file(case_id=case.id, actor=COMMANDER, at=at(moment))


def actions_of(case: Case) -> list[str]:
    return list(CaseEvent.objects.filter(case=case).order_by("id").values_list("action", flat=True))


# -- the paths ------------------------------------------------------------------------------


def test_the_normal_path_closes_on_time_and_keeps_every_step(make_case, handler, worker_identity):
    case = filed(make_case(moment="2026-12-07 09:00"), "2026-12-07 09:05")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:20"))
    cases.case_acknowledge(case_id=case.id, actor=worker_identity, at=at("2026-12-07 09:25"), position=(113.66, 34.75))
    cases.case_handle(case_id=case.id, actor=worker_identity, note="清理完毕", at=at("2026-12-07 10:30"))
    case = cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-07 11:00"))
    case = cases.case_rate(case_id=case.id, actor=COMMANDER, rating=5, at=at("2026-12-07 12:00"))
    assert (case.state, case.closed_on_time, case.rating, case.assignee_id) == ("closed", True, 5, handler.id)
    assert actions_of(case) == ["report", "accept", "file", "dispatch", "acknowledge", "handle", "pass", "rate"]
    assert m.Incident.objects.get(pk=case.incident_id).status == "resolved"
    event = CaseEvent.objects.get(case=case, action="acknowledge")
    assert (event.actor, event.role, round(event.position.x, 2)) == ("worker.test", "grid_worker", 113.66)


def test_a_rejected_case_needs_a_reason_and_then_allows_nothing(make_case):
    case = make_case()
    with pytest.raises(ServiceError, match="needs a reason"):
        cases.case_reject(case_id=case.id, actor=COMMANDER, reason=" ")
    case = cases.case_reject(case_id=case.id, actor=COMMANDER, reason="重复上报")
    assert case.state == "rejected"
    with pytest.raises(CaseRefused, match="allowed now: nothing"):
        cases.case_accept(case_id=case.id, actor=COMMANDER)


def test_a_returned_case_is_dispatched_again_with_a_fresh_dispatch_clock(make_case, handler, worker_identity):
    case = filed(make_case(), "2026-12-07 09:00")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    case = cases.case_return(case_id=case.id, actor=worker_identity, reason="不属本网格", at=at("2026-12-07 10:00"))
    assert (case.state, case.stage, case.assignee_id, case.handle_due_at) == ("returned", "dispatch", None, None)
    assert case.due_at == clock.due(at("2026-12-07 10:00"), limit_for(case.category).dispatch_minutes, case.category)
    case = cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 10:05"))
    assert case.state == "dispatched" and case.stage == "handle"


def test_rework_goes_back_to_the_handler_and_keeps_the_first_due_time(make_case, handler, worker_identity):
    case = filed(make_case(), "2026-12-07 09:00")
    case = cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    first_due = case.handle_due_at
    cases.case_handle(case_id=case.id, actor=worker_identity, note="done", at=at("2026-12-07 10:00"))
    case = cases.case_fail(case_id=case.id, actor=COMMANDER, reason="现场仍有杂物", at=at("2026-12-07 10:30"))
    assert (case.state, case.rework_count, case.due_at, case.handle_due_at) == ("dispatched", 1, first_due, first_due)
    cases.case_handle(case_id=case.id, actor=worker_identity, note="再次清理", at=at("2026-12-07 16:00"))
    case = cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-07 16:30"))
    assert case.closed_on_time is (at("2026-12-07 16:00") <= first_due)


def test_a_deferral_stops_the_clock_until_approved_and_moves_the_due_time(make_case, handler, worker_identity):
    case = filed(make_case(), "2026-12-07 09:00")
    case = cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    first_due = case.due_at
    until = at("2026-12-09 17:00")
    case = cases.case_request_deferral(case_id=case.id, actor=worker_identity, until=until, reason="需物业配合",
                                       at=at("2026-12-07 10:00"))
    assert (case.due_at, case.warn_at, case.deferral_requested_until) == (None, None, until)
    assert sla_sweep(now=first_due + timedelta(hours=1)).breached == []  # paused: nothing falls due
    case = cases.case_approve_deferral(case_id=case.id, actor=COMMANDER, at=at("2026-12-07 11:00"))
    assert (case.deferred, case.due_at, case.handle_due_at) == (True, until, until)
    cases.case_handle(case_id=case.id, actor=worker_identity, note="修复完毕", at=at("2026-12-09 15:00"))
    assert cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-09 16:00")).closed_on_time is True


def test_a_refused_deferral_lets_the_clock_run_on_from_where_it_stopped(make_case, handler, worker_identity):
    case = filed(make_case(category="elder_inactivity"), "2026-12-07 09:00")  # around the clock: plain minutes
    case = cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:00"))
    cases.case_request_deferral(case_id=case.id, actor=worker_identity, until=at("2026-12-08 09:00"),
                                reason="联系不上家属", at=at("2026-12-07 09:20"))  # 40 of 60 minutes left
    case = cases.case_approve_deferral(case_id=case.id, actor=COMMANDER, approve=False, at=at("2026-12-07 12:00"))
    assert (case.deferred, case.due_at) == (False, at("2026-12-07 12:40"))


def test_suspension_stops_the_clock_and_resumes_where_it_was(make_case, handler, worker_identity):
    case = filed(make_case(), "2026-12-07 09:00")
    case = cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    cases.case_acknowledge(case_id=case.id, actor=worker_identity, at=at("2026-12-07 09:20"))
    left = clock.minutes_between(at("2026-12-07 10:00"), case.due_at, case.category)
    case = cases.case_suspend(case_id=case.id, actor=COMMANDER, reason="等待产权单位答复", at=at("2026-12-07 10:00"))
    assert (case.state, case.due_at) == ("suspended", None)
    with pytest.raises(CaseRefused, match="only from dispatched, acknowledged\\); allowed now: nothing"):
        cases.case_handle(case_id=case.id, actor=worker_identity, note="x", at=at("2026-12-08 10:00"))
    assert "resume" in allowed_actions("suspended", "commander")
    case = cases.case_resume(case_id=case.id, actor=COMMANDER, at=at("2026-12-10 09:00"))
    assert case.state == "acknowledged"
    assert clock.minutes_between(at("2026-12-10 09:00"), case.due_at, case.category) == pytest.approx(left, abs=0.02)


def test_a_breach_climbs_one_tier_once_per_breach(make_case, handler, worker_identity):
    case = filed(make_case(), "2026-12-07 09:00")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    case = cases.case_acknowledge(case_id=case.id, actor=worker_identity, at=at("2026-12-07 09:15"))
    warn, due, grid = case.warn_at, case.due_at, case.grid
    assert sla_sweep(now=warn - timedelta(seconds=1)).warned == []
    assert sla_sweep(now=warn).warned == [case.id]
    assert sla_sweep(now=warn + timedelta(minutes=1)).warned == []  # once
    report = sla_sweep(now=due)
    assert (report.breached, report.escalated) == ([case.id], [case.id])
    case.refresh_from_db()
    assert (case.tier, case.grid_id, case.escalation_count) == (2, grid.parent_id, 1)
    assert sla_sweep(now=due + timedelta(minutes=1)).breached == []  # the new tier has its own full limit
    assert sla_sweep(now=case.due_at).escalated == [case.id]
    case.refresh_from_db()
    assert case.tier == 1
    assert actions_of(case).count("breach") == 2 and actions_of(case).count("warn") == 2  # one of each per tier


def test_a_closed_case_reopens_within_seven_days_only(make_case, handler, worker_identity):
    case = filed(make_case(), "2026-12-07 09:00")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    cases.case_handle(case_id=case.id, actor=worker_identity, note="done", at=at("2026-12-07 10:00"))
    cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-07 10:30"))
    case = cases.case_reopen(case_id=case.id, actor=COMMANDER, reason="居民反映问题复发", at=at("2026-12-10 09:00"))
    assert (case.state, case.reopen_count, case.closed_at, case.stage) == ("filed", 1, None, "dispatch")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-10 09:10"))
    cases.case_handle(case_id=case.id, actor=worker_identity, note="done", at=at("2026-12-10 10:00"))
    cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-10 10:30"))
    with pytest.raises(CaseRefused, match="within 7 days"):
        cases.case_reopen(case_id=case.id, actor=COMMANDER, reason="again", at=at("2026-12-18 10:31"))


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("action, role", [("pass", "commander"), ("accept", "grid_worker"), ("dispatch", "analyst"),
                                          ("resume", "commander"), ("rate", "commander")])
def test_an_illegal_action_is_refused_naming_the_allowed_ones_and_changes_nothing(make_case, action, role):
    case = make_case()
    before = (Case.objects.filter(pk=case.id).values().get(), actions_of(case))
    service = getattr(cases, f"case_{action}")
    kwargs = {"worker_id": 1} if action == "dispatch" else {"rating": 3} if action == "rate" else {}
    with pytest.raises(CaseRefused) as refused:
        service(case_id=case.id, actor=Identity(role=role, username="x"), **kwargs)
    allowed = allowed_actions("reported", role)
    assert f"allowed now: {', '.join(allowed) if allowed else 'nothing'}" in str(refused.value)
    assert (Case.objects.filter(pk=case.id).values().get(), actions_of(case)) == before


def test_every_action_of_the_table_has_its_service():
    assert all(callable(getattr(cases, f"case_{name}", None)) for name in ACTIONS)


# -- the calendar under the clock -------------------------------------------------------------


def test_a_friday_evening_filing_falls_due_on_monday_in_working_hours(make_case):
    case = filed(make_case(moment="2026-12-11 17:50"), "2026-12-11 17:50")  # a Friday
    due = case.due_at.astimezone(SH)
    assert due.weekday() == 0 and due.date().isoformat() == "2026-12-14"
    assert clock.minutes_between(at("2026-12-11 17:50"), case.due_at, case.category) == pytest.approx(30, abs=0.02)


def test_national_day_2026_and_its_make_up_saturday(make_case, handler):
    before = filed(make_case(moment="2026-09-30 17:00"), "2026-09-30 17:00")
    before = cases.case_dispatch(case_id=before.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-09-30 17:00"))
    assert before.due_at.astimezone(SH).date().isoformat() == "2026-10-08"  # 1–7 October are holidays
    makeup = filed(make_case(moment="2026-10-09 17:00"), "2026-10-09 17:00")
    makeup = cases.case_dispatch(case_id=makeup.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-10-09 17:00"))
    assert makeup.due_at.astimezone(SH).date().isoformat() == "2026-10-10"  # Saturday 10 October is worked (调休)


def test_no_warning_or_breach_at_three_in_the_morning_for_a_working_hours_category(make_case, handler):
    case = filed(make_case(moment="2026-12-11 17:50"), "2026-12-11 17:50")
    assert sla_sweep(now=at("2026-12-14 03:00")) .warned == [] and case.due_at > at("2026-12-14 03:00")
    for moment in (case.warn_at, case.due_at):
        local = moment.astimezone(SH)
        assert 8 <= local.hour < 18, f"{local} is outside working hours"
    alert = filed(make_case(category="elder_inactivity", moment="2026-12-12 02:00"), "2026-12-12 02:00")
    assert sla_sweep(now=at("2026-12-12 02:15")).breached == [alert.id]  # around the clock: it does fire at night


# -- indicators -------------------------------------------------------------------------------


def _expected_indicators(case_ids, start, end) -> dict:
    """The bulletin's numbers for the cases filed in [start, end), straight from the audit rows, in Python."""
    import statistics

    filed = due = closed = on_time = reworked = deferred = 0
    to_dispatch, to_close = [], []
    for case_id in case_ids:
        events = [e for e in CaseEvent.objects.filter(case_id=case_id).order_by("at", "id") if e.at < end]
        files = [e.at for e in events if e.action == "file"]
        if not files or not start <= min(files) < end:
            continue
        filed += 1
        first_file = min(files)
        closing = [e for e in events if e.action in ("pass", "reopen")]
        is_closed = bool(closing) and closing[-1].action == "pass"
        approvals = [e for e in events if e.action == "approve_deferral" and e.data.get("approved")]
        until = datetime.fromisoformat(approvals[-1].data["until"]) if approvals else None
        deferred += until is not None
        suspended = events[-1].to_state == "suspended"
        if suspended or (until is not None and until >= end and not is_closed):
            continue
        due += 1
        dispatches = [e.at for e in events if e.action == "dispatch"]
        if dispatches:
            to_dispatch.append((min(dispatches) - first_file).total_seconds() / 60)
        if is_closed:
            closed += 1
            on_time += bool(closing[-1].data.get("on_time"))
            reworked += any(e.action == "fail" for e in events)
            to_close.append((closing[-1].at - first_file).total_seconds() / 60)
    return {"filed": filed, "due": due, "closed": closed, "on_time": on_time, "reworked": reworked,
            "deferred": deferred, "close_median_min": round(statistics.median(to_close), 1) if to_close else None}


def test_indicators_from_the_audit_log_equal_an_independent_count(make_case, handler, worker_identity, own_grid):
    from gis.cases.selectors import case_indicators

    def walk(moment: str, *steps) -> Case:
        case = filed(make_case(moment=moment), moment)
        for step in steps:
            step(case)
        return case

    day = "2026-12-07"
    dispatch = lambda t: lambda c: cases.case_dispatch(case_id=c.id, actor=COMMANDER, worker_id=handler.id,  # noqa: E731
                                                       at=at(f"{day} {t}"))
    handle = lambda t: lambda c: cases.case_handle(case_id=c.id, actor=worker_identity, note="ok",  # noqa: E731
                                                   at=at(f"{day} {t}"))
    check = lambda t: lambda c: cases.case_pass(case_id=c.id, actor=COMMANDER, at=at(f"{day} {t}"))  # noqa: E731
    fail = lambda t: lambda c: cases.case_fail(case_id=c.id, actor=COMMANDER, reason="redo",  # noqa: E731
                                               at=at(f"{day} {t}"))
    made = [
        walk(f"{day} 09:00", dispatch("09:10"), handle("10:00"), check("10:30")),  # closed on time
        walk(f"{day} 09:05", dispatch("09:20"), handle("10:00"), fail("10:10"), handle("11:00"), check("11:30")),
        walk(f"{day} 09:10", dispatch("09:30")),  # open
        walk(f"{day} 09:15", dispatch("09:40"), handle("17:50"), check("17:55")),  # handled after its due: late
        walk(f"{day} 09:20", lambda c: cases.case_suspend(case_id=c.id, actor=COMMANDER, reason="wait",
                                                          at=at(f"{day} 09:30"))),  # suspended: not due
        walk(f"{day} 09:25", dispatch("09:30"),
             lambda c: cases.case_request_deferral(case_id=c.id, actor=worker_identity, until=at("2026-12-20 17:00"),
                                                   reason="parts", at=at(f"{day} 09:40")),
             lambda c: cases.case_approve_deferral(case_id=c.id, actor=COMMANDER, at=at(f"{day} 09:45"))),
        walk("2026-12-06 09:00"),  # filed before the period
    ]
    start, end = at(f"{day} 00:00"), at("2026-12-08 00:00")
    rows = [r for r in case_indicators(start=start, end=end) if r["grid"] == own_grid.code]
    assert len(rows) == 1
    got = rows[0]
    expected = _expected_indicators([c.id for c in made], start, end)
    assert {k: got[k] for k in expected} == expected
    assert (expected["filed"], expected["due"], expected["closed"], expected["on_time"]) == (6, 4, 3, 2)
    assert got["closure_rate"] == round(3 / 4, 4) and got["on_time_rate"] == round(2 / 4, 4)
    assert got["rework_rate"] == round(1 / 3, 4) and got["deferral_rate"] == round(1 / 6, 4)


def test_a_dispatch_keeps_the_recommendation_beside_the_choice(make_case, handler):
    case = filed(make_case(), "2026-12-07 09:00")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    data = CaseEvent.objects.get(case=case, action="dispatch").data
    advice = data["recommendation"]
    assert advice["candidates"] and advice["rule"]
    assert data["followed"] is (advice["recommended"] == handler.id)
    assert data["worker"] == handler.code


# -- who hears of it --------------------------------------------------------------------------


def test_a_dispatch_and_a_breach_are_told_once_through_the_outbox(make_case, handler, worker_identity, monkeypatch):
    from gis.notifications.models import Notification

    monkeypatch.setenv("ONEMAP_DINGTALK_ROBOTS", '{"command": {"webhook": "http://127.0.0.1:9/robot", '
                                                 '"secret": "SEC0123456789"}}')
    case = filed(make_case(), "2026-12-07 09:00")
    case = cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    told = Notification.objects.filter(subject_kind="case", subject_id=case.id)
    assert sorted(told.values_list("channel", "recipient")) == [("in_app", f"worker:{handler.code}")]  # no SMS gateway
    case = cases.case_acknowledge(case_id=case.id, actor=worker_identity, at=at("2026-12-07 09:15"))
    sla_sweep(now=case.warn_at)
    sla_sweep(now=case.due_at)
    sla_sweep(now=case.due_at + timedelta(seconds=30))  # nothing new: nobody is told twice
    kinds = sorted((n.payload["action"], n.channel, n.recipient) for n in told)
    assert kinds == [("breach", "dingtalk", "command"), ("breach", "in_app", "command-centre"),
                     ("dispatch", "in_app", f"worker:{handler.code}"), ("warn", "in_app", f"worker:{handler.code}")]


def test_the_sla_sweep_is_a_periodic_job_of_the_worker():
    from procrastinate.contrib.django import app

    import gis.tasks  # noqa: F401  (what onemap worker imports)

    assert "cases.sla_sweep" in app.tasks
    assert any(p.task.name == "cases.sla_sweep" for p in app.periodic_registry.periodic_tasks.values())


# -- joint cases and departments ----------------------------------------------------------------


@pytest.fixture
def departments(own_grid):
    """Two units whose jurisdiction is the first level-3 grid's subdistrict, handling sanitation and disputes."""
    from django.contrib.gis.geos import MultiPolygon

    level1 = own_grid.parent.parent
    area = level1.geom if level1.geom.geom_type == "MultiPolygon" else MultiPolygon(level1.geom)
    return [m.Department.objects.create(code=f"DEPT-TEST-{n}", name=name, kind=kind, categories=categories, geom=area)
            for n, (name, kind, categories) in enumerate([
                ("城管执法中队", "enforcement", ["sanitation", "illegal_parking"]),
                ("派出所", "police", ["neighbour_dispute", "falling_object"])])]


def test_a_joint_case_closes_only_when_every_unit_has_done_its_part(make_case, handler, worker_identity, departments):
    case = filed(make_case(category="sanitation"), "2026-12-07 09:00")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    for department in departments:
        cases.case_add_task(case_id=case.id, actor=COMMANDER, department_id=department.id,
                            due_at=at("2026-12-08 17:00"), note="联合整治", at=at("2026-12-07 09:20"))
    with pytest.raises(CaseRefused, match="has a part of case .* already"):
        cases.case_add_task(case_id=case.id, actor=COMMANDER, department_id=departments[0].id,
                            due_at=at("2026-12-08 17:00"), at=at("2026-12-07 09:21"))
    cases.case_handle(case_id=case.id, actor=worker_identity, note="网格已处置", at=at("2026-12-07 11:00"))
    with pytest.raises(CaseRefused, match="joint case: 城管执法中队, 派出所 still have their part open"):
        cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-07 11:30"))
    squad = Identity(role="department", username="dept.squad", department="城管执法中队")
    police = Identity(role="department", username="dept.police", department="派出所")
    # a unit completes its own part only (and an account naming no unit, none)
    for outsider in (police, Identity(role="department", username="dept.none")):
        with pytest.raises(CaseRefused, match="this is 城管执法中队's part"):
            cases.case_complete_task(case_id=case.id, actor=outsider, department_id=departments[0].id,
                                     at=at("2026-12-07 14:00"))
    assert case.tasks.filter(state="done").count() == 0
    cases.case_complete_task(case_id=case.id, actor=squad, department_id=departments[0].id,
                             at=at("2026-12-07 15:00"))
    with pytest.raises(CaseRefused, match="派出所 still"):
        cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-07 15:30"))
    cases.case_complete_task(case_id=case.id, actor=police, department_id=departments[1].id,
                             at=at("2026-12-09 10:00"))  # after its part's deadline
    case = cases.case_pass(case_id=case.id, actor=COMMANDER, at=at("2026-12-09 10:30"))
    assert case.state == "closed"
    done = CaseEvent.objects.filter(case=case, action="complete_task").order_by("id")
    assert [e.data["on_time"] for e in done] == [True, False]


def test_escalation_above_the_subdistrict_goes_to_the_department_of_the_category_and_place(make_case, departments):
    case = filed(make_case(category="sanitation"), "2026-12-07 09:00")
    for reason in ("需街道协调", "需联合执法"):
        cases.case_escalate(case_id=case.id, actor=COMMANDER, reason=reason, at=at("2026-12-07 09:30"))
    case = cases.case_escalate(case_id=case.id, actor=COMMANDER, reason="需执法", at=at("2026-12-07 09:40"))
    assert (case.tier, case.department, case.grid) == (0, "城管执法中队", None)
    orphan = filed(make_case(category="epidemic"), "2026-12-07 09:00")  # nobody handles epidemics here
    for reason in ("a", "b"):
        cases.case_escalate(case_id=orphan.id, actor=COMMANDER, reason=reason, at=at("2026-12-07 09:30"))
    with pytest.raises(CaseRefused, match="no department handles epidemic at this place"):
        cases.case_escalate(case_id=orphan.id, actor=COMMANDER, reason="c", at=at("2026-12-07 09:40"))


def test_a_dispatch_nobody_signs_for_climbs_a_tier_and_the_command_centre_hears_of_it(make_case, handler,
                                                                                      worker_identity):
    from gis.notifications.models import Notification

    case = filed(make_case(category="elder_inactivity"), "2026-12-12 02:00")  # around the clock: 10 minutes to sign
    case = cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-12 02:05"))
    assert case.ack_due_at == at("2026-12-12 02:15")
    assert sla_sweep(now=at("2026-12-12 02:14")).unacknowledged == []
    report = sla_sweep(now=at("2026-12-12 02:15"))
    assert (report.unacknowledged, report.escalated) == ([case.id], [case.id])
    case.refresh_from_db()
    assert (case.tier, case.ack_due_at) == (2, None)
    assert sla_sweep(now=at("2026-12-12 02:30")).unacknowledged == []  # once
    told = Notification.objects.filter(subject_kind="case", subject_id=case.id, payload__action="ack_breach")
    assert list(told.values_list("recipient", flat=True)) == ["command-centre"]
    signed = filed(make_case(category="elder_inactivity"), "2026-12-12 03:00")
    cases.case_dispatch(case_id=signed.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-12 03:00"))
    cases.case_acknowledge(case_id=signed.id, actor=worker_identity, at=at("2026-12-12 03:05"))
    assert signed.id not in sla_sweep(now=at("2026-12-12 03:20")).unacknowledged


def test_a_handler_may_ask_to_escalate_and_the_command_centre_is_told(make_case, handler, worker_identity):
    from gis.notifications.models import Notification

    case = filed(make_case(), "2026-12-07 09:00")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    case = cases.case_request_escalation(case_id=case.id, actor=worker_identity, reason="涉及多个产权单位",
                                         at=at("2026-12-07 09:30"))
    assert (case.state, case.tier) == ("dispatched", 3)  # asking does not climb; a commander decides
    told = Notification.objects.filter(subject_kind="case", subject_id=case.id, payload__action="request_escalation")
    assert told.count() == 1
    with pytest.raises(CaseRefused, match="may not 'escalate'"):
        cases.case_escalate(case_id=case.id, actor=worker_identity, reason="x", at=at("2026-12-07 09:31"))


def test_the_longest_incident_code_still_has_a_case(rollback, own_grid):
    point = own_grid.geom.point_on_surface
    incident = incident_create(lon=point.x, lat=point.y, category="sanitation", source="staff", code="X" * 40)
    assert cases.case_open(incident_id=incident.id).code == "CASE-" + "X" * 40


def test_arriving_records_where_the_handler_is_and_changes_nothing_else(make_case, handler, worker_identity):
    case = filed(make_case(), "2026-12-07 09:00")
    cases.case_dispatch(case_id=case.id, actor=COMMANDER, worker_id=handler.id, at=at("2026-12-07 09:10"))
    with pytest.raises(CaseRefused, match="only from acknowledged"):
        cases.case_arrive(case_id=case.id, actor=worker_identity, position=(113.66, 34.75), at=at("2026-12-07 09:15"))
    case = cases.case_acknowledge(case_id=case.id, actor=worker_identity, at=at("2026-12-07 09:20"))
    before = {k: v for k, v in m.Case.objects.filter(pk=case.id).values().get().items() if k != "updated_at"}
    with pytest.raises(ServiceError, match="needs the position"):
        cases.case_arrive(case_id=case.id, actor=worker_identity, position=None, at=at("2026-12-07 09:30"))
    case = cases.case_arrive(case_id=case.id, actor=worker_identity, position=(113.66, 34.75),
                             at=at("2026-12-07 09:30"))
    after = {k: v for k, v in m.Case.objects.filter(pk=case.id).values().get().items() if k != "updated_at"}
    assert after == before
    step = m.CaseEvent.objects.filter(case_id=case.id).order_by("-id").first()
    assert (step.action, step.from_state, step.to_state) == ("arrive", "acknowledged", "acknowledged")
    assert (step.position.x, step.position.y) == (113.66, 34.75)
    assert "arrive" in allowed_actions("acknowledged", "grid_worker")


# -- the cases as they stand, by grid (the big screen) -------------------------------------------------


def _counts_in_python(grid_code: str) -> tuple[dict, dict]:
    """Open, overdue and escalated cases per level-3 grid under ``grid_code``, from the rows, in Python.

    Grids by their hierarchical code (the selector walks parent ids); overdue from the breach rows of the
    audit log; escalated from the escalation counter.
    """
    from core.vocabulary import OPEN_CASE_STATES

    leaves = m.Grid.objects.filter(level=3, code__startswith=grid_code).values_list("code", flat=True)
    by_grid = {code: {"open": 0, "overdue": 0, "escalated": 0} for code in leaves}
    breached = set(CaseEvent.objects.filter(action="breach").values_list("case_id", flat=True))
    for case_id, state, escalations, code in Case.objects.values_list(
            "id", "state", "escalation_count", "incident__grid__code"):
        if code not in by_grid or state not in OPEN_CASE_STATES:
            continue
        row = by_grid[code]
        row["open"] += 1
        row["overdue"] += case_id in breached
        row["escalated"] += escalations > 0
    total = {key: sum(row[key] for row in by_grid.values()) for key in ("open", "overdue", "escalated")}
    return by_grid, total


def test_open_overdue_and_escalated_cases_by_grid_equal_an_independent_count(rollback, own_grid, other_grid,
                                                                             handler, worker_identity):
    from gis.cases.selectors import case_counts_by_grid

    level1 = own_grid.parent.parent
    late = at("2026-12-20 12:00")  # long after every due time of the cases below
    sla_sweep(now=late)  # the demo's late cases first, so that the second sweep marks only the ones made here

    def counts() -> dict:
        found = case_counts_by_grid(grid_id=level1.id)
        return {**{row["code"]: {k: row[k] for k in ("open", "overdue", "escalated")} for row in found["grids"]},
                "total": found["total"]}

    before = counts()
    made = {}

    def make(name: str, grid: m.Grid, category: str = "sanitation") -> Case:
        point = grid.geom.point_on_surface
        incident = incident_create(lon=point.x, lat=point.y, category=category, source="staff",
                                   code=f"INC-BYGRID-{name}", reported_at=at("2026-12-07 09:00"))
        made[name] = cases.case_open(incident_id=incident.id, at=at("2026-12-07 09:00"))
        return made[name]

    make("reported", own_grid)  # open
    filed(make("breached", own_grid), "2026-12-07 09:00")  # the sweep breaches and escalates it: all three
    cases.case_escalate(case_id=make("escalated", own_grid).id, actor=COMMANDER, reason="需街道协调",
                        at=at("2026-12-07 09:10"))  # open, escalated, never late
    cases.case_reject(case_id=make("rejected", own_grid).id, actor=COMMANDER, reason="重复上报",
                      at=at("2026-12-07 09:10"))  # not open
    filed(make("closed", other_grid), "2026-12-07 09:00")  # breached and escalated, then closed: nothing
    make("fire", other_grid, "fire_smoke")  # starts with the level-2 grid: open, not escalated
    assert sla_sweep(now=late).breached == sorted([made["breached"].id, made["closed"].id])
    closer = m.GridWorker.objects.filter(grid=other_grid).order_by("id").first() or handler
    cases.case_dispatch(case_id=made["closed"].id, actor=COMMANDER, worker_id=closer.id, at=at("2026-12-21 09:10"))
    cases.case_handle(case_id=made["closed"].id, actor=worker_identity, note="ok", at=at("2026-12-21 09:30"))
    assert cases.case_pass(case_id=made["closed"].id, actor=COMMANDER, at=at("2026-12-21 10:00")).state == "closed"
    fire = Case.objects.get(pk=made["fire"].id)
    assert (fire.tier, fire.escalation_count) == (2, 0)

    after = counts()
    expected = {own_grid.code: {"open": 3, "overdue": 1, "escalated": 2},
                other_grid.code: {"open": 1, "overdue": 0, "escalated": 0}}
    for key in after:  # what changed is what was made here, grid by grid, and in the total
        change = {k: after[key][k] - before[key][k] for k in ("open", "overdue", "escalated")}
        if key == "total":
            assert change == {"open": 4, "overdue": 1, "escalated": 2}
        else:
            assert change == expected.get(key, {"open": 0, "overdue": 0, "escalated": 0}), key

    for grid in (level1, own_grid.parent, own_grid):  # and everything, at every level, as Python counts it
        found = case_counts_by_grid(grid_id=grid.id)
        by_grid, total = _counts_in_python(grid.code)
        assert {row["code"]: {k: row[k] for k in ("open", "overdue", "escalated")} for row in found["grids"]} == by_grid
        assert found["total"] == total
    assert total["open"] > 0 and [row["code"] for row in found["grids"]] == [own_grid.code]
    west, south, east, north = own_grid.geom.extent
    assert found["grids"][0]["bounds"] == pytest.approx([west, south, east, north])
