"""Synthetic cases for the demo: the recent incidents walked through the case services on a clock.

Every case is made by the same services a person uses (``gis.cases.services``), at moments
drawn after its incident's report and before ``as_of``, so the audit log, the due times on
the working calendar and the indicators are what the system itself would have produced. A
case whose next step would fall after ``as_of`` stays where it is: the newest are open,
the oldest mostly closed, a few rejected, returned, reworked, deferred or suspended. A
resident's incident gets the report behind it (no phone number; most published) and now
and then a co-reporter's "me too"; its reporter rates it. A last SLA sweep at ``as_of``
marks what is overdue and escalates it. Deterministic for a seed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from core.identity import Identity
from core.roles import COMMANDER, GRID_WORKER

WINDOW = timedelta(days=60)
MAX_CASES = 300
DEMO_COMMANDER = Identity(role=COMMANDER, username="demo_commander")


def load_demo_cases(*, as_of: datetime, seed: int, limit: int = MAX_CASES) -> dict:
    """Cases for the newest incidents of the last ``WINDOW`` before ``as_of``; counts by state."""
    from gis.cases import services as cases
    from gis.cases.models import Case
    from gis.cases.sla import sla_sweep
    from gis.incidents.models import Incident
    from gis.spatial.models import GridWorker

    _departments()
    rng = np.random.default_rng(seed)
    workers: dict[int, list[GridWorker]] = {}
    for worker in GridWorker.objects.order_by("id"):
        workers.setdefault(worker.grid_id, []).append(worker)
    incidents = (Incident.objects.filter(reported_at__gte=as_of - WINDOW, reported_at__lt=as_of, case__isnull=True)
                 .exclude(grid=None).order_by("-reported_at", "id")[:limit])
    for incident in incidents:
        walk = _Walk(rng, as_of, incident, workers.get(incident.grid_id, []), cases)
        walk.run()
    sla_sweep(now=as_of)
    return _counts(Case)


def forget_demo_cases() -> int:
    """Remove the cases of the demo's (synthetic) incidents and the reports behind them, before they are walked
    again for another as-of moment; returns how many cases went."""
    from gis.cases.models import Case
    from gis.reports.models import Report

    cases = Case.objects.filter(incident__synthetic=True)
    Report.objects.filter(case__in=cases).delete()
    removed, _ = cases.delete()
    return removed


# the units beyond the grids the subdistrict works with, over the whole subdistrict (synthetic)
DEPARTMENTS = (
    ("DEPT-DEMO-POLICE", "平等街派出所（合成）", "police"),
    ("DEPT-DEMO-MARKET", "西大街市场监管所（合成）", "market"),
    ("DEPT-DEMO-ENFORCE", "管城区城管执法中队（合成）", "enforcement"),
)
# which of them handles each category (the elder's alert stays with the community)
HANDLED_BY = {"neighbour_dispute": "police", "falling_object": "police", "fire_smoke": "police",
              "epidemic": "market", "sanitation": "enforcement", "illegal_parking": "enforcement",
              "facility_damage": "enforcement", "resident_report": "enforcement"}


def _departments() -> None:
    from django.contrib.gis.geos import MultiPolygon

    from gis.cases.models import Department
    from gis.spatial.models import Grid

    top = Grid.objects.filter(level=1).order_by("code").first()
    if top is None:
        return
    area = top.geom if top.geom.geom_type == "MultiPolygon" else MultiPolygon(top.geom)
    for code, name, kind in DEPARTMENTS:
        categories = [category for category, unit in HANDLED_BY.items() if unit == kind]
        Department.objects.update_or_create(code=code, defaults={
            "name": name, "kind": kind, "categories": categories, "geom": area, "synthetic": True})


def _counts(model) -> dict:
    from django.db.models import Count

    return {row["state"]: row["n"] for row in model.objects.values("state").annotate(n=Count("id")).order_by("state")}


class _Walk:
    """One case's life, step by step until the next step would come after ``as_of``."""

    def __init__(self, rng, as_of: datetime, incident, workers, cases):
        self.rng, self.as_of, self.incident, self.cases = rng, as_of, incident, cases
        self.worker = workers[int(rng.integers(len(workers)))] if workers else None
        self.handler = Identity(role=GRID_WORKER, username=self.worker.code if self.worker else "worker")
        self.moment = incident.reported_at
        self.reporter: Identity | None = None  # a resident's case: the holder of its report's code

    def later(self, low_min: float, high_min: float) -> datetime | None:
        """The next step's moment, or None when it would come after ``as_of`` (the walk stops)."""
        moment = self.moment + timedelta(minutes=float(self.rng.uniform(low_min, high_min)))
        if moment >= self.as_of:
            return None
        self.moment = moment
        return moment

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def run(self) -> None:
        c, command = self.cases, DEMO_COMMANDER
        case = c.case_open(incident_id=self.incident.id, at=self.moment)
        if self.incident.source == "resident":
            self._resident_reports(case)
        if (at := self.later(5, 40)) is None:
            return
        if self.chance(0.04):
            c.case_reject(case_id=case.id, actor=command, reason="重复上报 duplicate report", at=at)
            return
        c.case_accept(case_id=case.id, actor=command, at=at)
        if (at := self.later(5, 60)) is None:
            return
        c.case_file(case_id=case.id, actor=command, at=at)
        if self.worker is None or (at := self.later(5, 90)) is None:
            return
        c.case_dispatch(case_id=case.id, actor=command, worker_id=self.worker.id, at=at)
        if self.chance(0.05) and (at := self.later(5, 60)) is not None:
            c.case_return(case_id=case.id, actor=self.handler, reason="不属本网格 not this grid's", at=at)
            if (at := self.later(5, 60)) is None:
                return
            c.case_dispatch(case_id=case.id, actor=command, worker_id=self.worker.id, at=at)
        if (at := self.later(2, 30)) is None:
            return
        c.case_acknowledge(case_id=case.id, actor=self.handler, at=at)
        if self.chance(0.08) and (at := self.later(10, 120)) is not None:
            c.case_suspend(case_id=case.id, actor=command, reason="等待产权单位答复 waiting for the owner", at=at)
            if (at := self.later(600, 20160)) is None:  # the owner answers within hours or two weeks
                return
            c.case_resume(case_id=case.id, actor=command, at=at)
        if self.chance(0.05) and (at := self.later(10, 120)) is not None:
            case.refresh_from_db()
            until = max(case.due_at or at, at) + timedelta(days=int(self.rng.integers(2, 6)))
            c.case_request_deferral(case_id=case.id, actor=self.handler, until=until, reason="需协调物业 needs the "
                                    "property company", at=at)
            if (at := self.later(10, 240)) is None:
                return
            c.case_approve_deferral(case_id=case.id, actor=command, at=at)
        self._handle_and_check(case)

    def _handle_and_check(self, case) -> None:
        c, command = self.cases, DEMO_COMMANDER
        for attempt in range(3):
            if (at := self.later(20, 600)) is None:
                return
            c.case_handle(case_id=case.id, actor=self.handler, note="已处置 handled", at=at)
            if (at := self.later(10, 240)) is None:
                return
            if attempt < 2 and self.chance(0.06):
                c.case_fail(case_id=case.id, actor=command, reason="现场未整改到位 not fixed on site", at=at)
                continue
            c.case_pass(case_id=case.id, actor=command, at=at)
            if self.chance(0.5) and (at := self.later(30, 1440)) is not None:
                rater = self.reporter or command  # a resident's case is rated by its reporter
                c.case_rate(case_id=case.id, actor=rater, rating=int(self.rng.choice([3, 4, 5, 5, 5])), at=at)
            return

    def _resident_reports(self, case) -> None:
        """The report behind a resident's incident (synthetic, no phone number), and now and then a "me too"."""
        from gis.cases.workflow import REPORTER
        from gis.reports.models import Report
        from gis.reports.services import new_code

        def code() -> str:
            return new_code(pick=lambda alphabet: alphabet[int(self.rng.integers(len(alphabet)))])

        incident = self.incident
        first = Report.objects.create(
            code=code(), kind="report", case=case, incident=incident, category=incident.category,
            description=incident.description or incident.title, geom=incident.geom, grid_id=incident.grid_id,
            moderation="public" if self.chance(0.7) else "pending", created_at=incident.reported_at)
        self.reporter = Identity(role=REPORTER, username=f"report:{first.code}")
        if self.chance(0.2) and (at := self.later(10, 600)) is not None:
            joined = code()
            self.cases.case_join(case_id=case.id, actor=Identity(role=REPORTER, username=f"report:{joined}"),
                                 report=joined, at=at)
            Report.objects.create(code=joined, kind="me_too", case=case, category=incident.category,
                                  geom=incident.geom, grid_id=incident.grid_id, moderation="pending", created_at=at)
