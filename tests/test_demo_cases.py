"""The demo's cases: the recent incidents walked through the services, consistent with their audit rows."""

from __future__ import annotations

from collections import Counter

from data.cases import load_demo_cases
from data.demo import DEFAULT_SEED, DEMO_AS_OF
from gis import models as m
from gis.cases.selectors import case_indicators


def test_the_demo_cases_cover_the_states_and_agree_with_their_audit_rows(rollback):
    earlier = set(m.Case.objects.values_list("id", flat=True))  # other tests' cases, committed through a server
    counts = load_demo_cases(as_of=DEMO_AS_OF, seed=DEFAULT_SEED)
    assert sum(counts.values()) >= 150
    assert {"closed", "rejected", "acknowledged", "suspended"} <= set(counts)
    for case in m.Case.objects.exclude(id__in=earlier):
        events = list(case.events.order_by("at", "id"))
        assert events[0].action == "report" and events[-1].to_state == case.state, case.code
        assert all(e.at <= DEMO_AS_OF for e in events)
        if case.state == "closed":
            assert any(e.action == "pass" for e in events) and case.closed_at is not None
    breached = m.Case.objects.exclude(breached_at=None).exclude(id__in=earlier)
    assert all(c.escalation_count >= 1 or c.tier == 0 for c in breached)
    indicators = case_indicators(start=DEMO_AS_OF.replace(day=1), end=DEMO_AS_OF)
    assert indicators and all(0 <= (row["closure_rate"] or 0) <= 1 for row in indicators)
    actions = Counter(m.CaseEvent.objects.values_list("action", flat=True))
    assert actions["dispatch"] >= actions["pass"] > 0 and actions["fail"] + actions["approve_deferral"] > 0


def test_the_demo_has_departments_that_take_every_category_but_the_elders_alert(rollback):
    load_demo_cases(as_of=DEMO_AS_OF, seed=DEFAULT_SEED, limit=5)
    handled = {c for d in m.Department.objects.all() for c in d.categories}
    assert m.Department.objects.count() == 3 and all(d.synthetic for d in m.Department.objects.all())
    assert handled == set(m.Incident.objects.values_list("category", flat=True).distinct()) - {"elder_inactivity"}


def test_a_residents_demo_case_has_its_report_co_reporters_and_reporter_rating(rollback):
    from gis.models import Case, CaseEvent, Report

    earlier = set(Case.objects.values_list("id", flat=True))  # other tests' cases, committed through a server
    load_demo_cases(as_of=DEMO_AS_OF, seed=DEFAULT_SEED)
    resident = Case.objects.filter(incident__source="resident").exclude(id__in=earlier)
    assert resident.exists()
    # every resident's case has exactly one first report, at its incident, with no phone number
    firsts = Report.objects.filter(kind="report", case__in=resident)
    assert firsts.count() == resident.count()
    assert set(firsts.values_list("case_id", flat=True)) == set(resident.values_list("id", flat=True))
    assert not Report.objects.filter(case__in=resident, phone_cipher__isnull=False).exists()
    # each "me too" is a join in its case's history, by the reporter it names
    assert Report.objects.filter(kind="me_too", case__in=resident).exists()
    assert CaseEvent.objects.filter(action="rate", role="reporter", case__in=resident).exists()
    for joined in Report.objects.filter(kind="me_too", case__in=resident):
        event = CaseEvent.objects.get(case_id=joined.case_id, action="join")
        assert event.data == {"report": joined.code} and event.role == "reporter"
    # a resident's case is rated by its reporter, anyone else's by the command centre
    for event in CaseEvent.objects.filter(action="rate").exclude(case_id__in=earlier).select_related("case__incident"):
        assert (event.role == "reporter") == (event.case.incident.source == "resident")
