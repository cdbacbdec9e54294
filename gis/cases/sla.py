"""The SLA sweep: yellow warnings at 80% of a stage's limit, red breaches at the limit, each exactly once;
and a dispatched case nobody signed for by its acknowledgement deadline.

One conditional ``UPDATE … RETURNING`` per kind marks what fell due since the last sweep,
so two workers sweeping at once never mark a case twice, and a sweep after a restart
catches up on everything it missed. A breach climbs one tier (``case_escalate`` by the
system), once per breach: the new tier gets the stage's full limit, and a second breach
there climbs again. Working-hours categories never fall due outside working hours, because
their due moments are computed on the working calendar (``gis.cases.clock``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from core.vocabulary import OPEN_CASE_STATES, sql_list
from gis.cases.models import Case, CaseEvent
from gis.cases.notices import announce
from gis.cases.services import SYSTEM_IDENTITY, CaseRefused, case_escalate

_MARK = """
UPDATE cases SET {mark} = %(now)s
WHERE {mark} IS NULL AND {moment} <= %(now)s AND state IN """ + sql_list(OPEN_CASE_STATES) + """
RETURNING id, state, {moment}
"""


@dataclass
class SweepReport:
    warned: list[int] = field(default_factory=list)
    breached: list[int] = field(default_factory=list)
    unacknowledged: list[int] = field(default_factory=list)  # dispatched, not signed for in time
    escalated: list[int] = field(default_factory=list)


def sla_sweep(*, now: datetime | None = None) -> SweepReport:
    """Mark warnings and breaches due by ``now`` (each once), write their audit rows, escalate breaches."""
    now = now or timezone.now()
    report = SweepReport()
    with transaction.atomic():
        report.warned = _mark("warned_at", "warn_at", "warn", now)
        report.breached = _mark("breached_at", "due_at", "breach", now)
        report.unacknowledged = _mark("ack_breached_at", "ack_due_at", "ack_breach", now)
    climbs = [(case_id, "time limit breached") for case_id in report.breached]
    climbs += [(case_id, "not signed for in time") for case_id in report.unacknowledged
               if case_id not in report.breached]
    for case_id, reason in climbs:
        try:
            case_escalate(case_id=case_id, actor=SYSTEM_IDENTITY, at=now, reason=reason)
        except CaseRefused:
            continue  # already with a department: the breach stays marked, nothing higher to climb to
        report.escalated.append(case_id)
    return report


def _mark(mark: str, moment: str, action: str, now: datetime) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(_MARK.format(mark=mark, moment=moment), {"now": now})
        rows = cursor.fetchall()
    events = CaseEvent.objects.bulk_create(
        CaseEvent(case_id=case_id, at=now, action=action, from_state=state, to_state=state,
                  actor=SYSTEM_IDENTITY.username, role=SYSTEM_IDENTITY.role, data={"due": due.isoformat()})
        for case_id, state, due in rows
    )
    cases = Case.objects.select_related("assignee", "incident").in_bulk([row[0] for row in rows])
    for event in events:
        announce(cases[event.case_id], event)
    return sorted(row[0] for row in rows)
