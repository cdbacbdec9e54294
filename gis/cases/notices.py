"""Who hears of a case's step, through the outbox (``gis.notifications``), in the step's own transaction.

- a dispatch: the worker it went to (in the app; by SMS too when they have a phone and a
  gateway is configured);
- a warning (80% of a limit): the worker who has it;
- a breach, a dispatch nobody signed for in time, a handler's request to escalate: the
  command centre (in the app, and every configured DingTalk robot);
- an elder's alert climbing a tier: the grid now responsible (``grid:<code>``: the level-2
  community, then the level-1 subdistrict), the ladder of ``docs/care.md``;
- a closure, a refusal, a merge into another case: every resident who reported it and left a
  number (SMS; the outbox names them ``report:<id>`` and the number is read only to send).

Each notice's idempotency key is made from the audit row it reports (case, row, channel,
recipient), so a retry, a second sweep or a second worker never tells anyone twice.
"""

from __future__ import annotations

from core.settings import settings
from core.vocabulary import CARE_CATEGORY
from gis.cases.models import Case, CaseEvent
from gis.notifications.models import DINGTALK, IN_APP, SMS
from gis.notifications.services import notify

COMMAND_CENTRE = "command-centre"
SUBJECT = "case"  # a notice's subject: ("case", the case's id)
_TITLES = {"dispatch": "新派遣案件", "warn": "案件即将超时", "breach": "案件已超时",
           "ack_breach": "派遣案件无人签收", "request_escalation": "网格员申请上报",
           "escalate": "关爱预警未签收，已上报"}


# what a resident who reported (or said "me too") is told, by SMS when they left a number
_TO_REPORTERS = {"pass": "您反映的问题已办结（跟踪码 {code}）。如有异议，可在7日内凭跟踪码提出。",
                 "reject": "您反映的问题未予受理（跟踪码 {code}）：{reason}",
                 "merge": "您反映的问题与已有案件重复，已合并办理（跟踪码 {code}）。"}


def announce(case: Case, event: CaseEvent) -> int:
    """The notices of one audit row; how many were put in the outbox (0 for a step nobody hears of)."""
    sent = _tell_reporters(case, event) if event.action in _TO_REPORTERS else 0
    if event.action not in _TITLES or (event.action == "escalate" and case.category != CARE_CATEGORY):
        return sent
    due = case.due_at.isoformat() if case.due_at else ""
    payload = {"title": f"{_TITLES[event.action]} {case.code}", "case_id": case.id, "action": event.action,
               "category": case.category, "due_at": due,
               "text": f"{_TITLES[event.action]}：{case.incident.title or case.category}（{case.code}）"
                       + (f"，时限 {due[:16].replace('T', ' ')}" if due else "")}
    for channel, recipient in _recipients(case, event):
        sent += notify(key=f"case:{case.id}:{event.id}:{channel}:{recipient}", channel=channel, recipient=recipient,
                       subject=(SUBJECT, case.id), payload=payload)
    return sent


def _tell_reporters(case: Case, event: CaseEvent) -> int:
    """Each reporter with a number hears of the closure (or refusal) once; the outbox names them by
    reference (``report:<id>``), so the number is read only when the SMS is sent."""
    if not settings().notifications.sms_url:
        return 0
    sent = 0
    # a merge moved the reports to the other case already: the duplicate's reporters are found there
    reports = (case.merged_into.reports.filter(code__in=event.data.get("reports", []))
               if event.action == "merge" and case.merged_into_id else case.reports.all())
    for report in reports.filter(phone_cipher__isnull=False, banned=False).only("id", "code"):
        text = _TO_REPORTERS[event.action].format(code=report.code, reason=event.reason[:100])
        sent += notify(key=f"case:{case.id}:{event.id}:sms:report:{report.id}", channel=SMS,
                       recipient=f"report:{report.id}", subject=("case", case.id),
                       payload={"title": "社区一张图", "text": text, "case_id": case.id, "action": event.action})
    return sent


def _recipients(case: Case, event: CaseEvent):
    worker = case.assignee
    if event.action in ("dispatch", "warn") and worker is not None:
        yield IN_APP, f"worker:{worker.code}"
        if event.action == "dispatch" and worker.phone and settings().notifications.sms_url:
            yield SMS, worker.phone
    if event.action == "escalate" and case.grid is not None:  # an elder's alert: the next rung of the ladder
        yield IN_APP, f"grid:{case.grid.code}"
    if event.action in ("breach", "ack_breach", "request_escalation"):
        yield IN_APP, COMMAND_CENTRE
        for robot in settings().notifications.dingtalk_robots:
            yield DINGTALK, robot.name
