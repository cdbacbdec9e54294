"""The case's life as one table: every action, the states it may start from, where it leads, who may take it.

GB/T 30428's stages: 信息采集 (reported) → 受理 (accepted) or 不予受理 (rejected) →
立案 (filed) → 派遣 (dispatched) → 签收 (acknowledged) or 退回 (returned) → 处置反馈
(handled) → 核查 (checked: pass → 结案 closed; fail → 返工, back to dispatched with the
original due time) → 评价 (rated, optional). Beside the line: 延期 (a deferral asked by the
handler, approved by the level above), 挂起 (suspended: the clock stops; resumed to where
it was), escalation one tier up, and a reopening within ``REOPEN_DAYS`` of closure (by the
command centre, or by a reporter disputing the closure). Duplicates: a resident's "me too"
joins an open case as a co-reporter (附议); the command centre merges a duplicate case into
another while it is still being screened (reported or accepted), its reporters moving along.

A service (``gis.cases.services``) takes an action only if this table allows it from the
case's state for the caller's role; anything else is refused, naming what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass

from types import SimpleNamespace

from core.roles import ADMINISTRATOR, COMMANDER, DEPARTMENT, GRID_WORKER
from core.vocabulary import CASE_STATE_CODES

S = SimpleNamespace(**{code: code for code in CASE_STATE_CODES})  # the states by name: a typo fails at import

REOPEN_DAYS = 7
SYSTEM = "system"  # the worker's own actions (SLA escalation; an elder-care alert filed and dispatched), not a user's
REPORTER = "reporter"  # a resident holding a report's tracking code: "me too", rating, dispute

_COMMAND = frozenset({ADMINISTRATOR, COMMANDER})
_HANDLERS = frozenset({ADMINISTRATOR, COMMANDER, GRID_WORKER, DEPARTMENT})
_ACTIVE = (S.filed, S.dispatched, S.acknowledged, S.returned, S.handled)
_OPEN = tuple(code for code in CASE_STATE_CODES if code not in (S.rejected, S.closed))


@dataclass(frozen=True)
class Action:
    """One thing that can happen to a case."""

    name: str
    label_zh: str
    sources: tuple[str, ...]  # states it may start from
    target: str | None  # the state it leads to; None: it stays (or, for resume, goes back)
    roles: frozenset[str]
    needs_reason: bool = False


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("accept", "受理", (S.reported,), S.accepted, _COMMAND | {SYSTEM}),
    Action("reject", "不予受理", (S.reported,), S.rejected, _COMMAND, needs_reason=True),
    Action("file", "立案", (S.accepted,), S.filed, _COMMAND | {SYSTEM}),
    Action("dispatch", "派遣", (S.filed, S.returned), S.dispatched, _COMMAND | {SYSTEM}),
    Action("acknowledge", "签收", (S.dispatched,), S.acknowledged, _HANDLERS),
    Action("arrive", "到场", (S.acknowledged,), None, _HANDLERS),
    Action("return", "退回", (S.dispatched, S.acknowledged), S.returned, _HANDLERS, needs_reason=True),
    Action("handle", "处置反馈", (S.dispatched, S.acknowledged), S.handled, _HANDLERS),
    Action("pass", "核查通过", (S.handled,), S.closed, _COMMAND),
    Action("fail", "核查不通过", (S.handled,), S.dispatched, _COMMAND, needs_reason=True),
    Action("rate", "评价", (S.closed,), None, _COMMAND | {REPORTER}),
    Action("request_deferral", "申请延期", (S.dispatched, S.acknowledged), None, _HANDLERS, needs_reason=True),
    Action("approve_deferral", "批准延期", (S.dispatched, S.acknowledged), None, _COMMAND),
    Action("suspend", "挂起", _ACTIVE, S.suspended, _COMMAND, needs_reason=True),
    Action("resume", "恢复", (S.suspended,), None, _COMMAND),
    Action("escalate", "上报上级", _ACTIVE + (S.reported, S.accepted), None, _COMMAND | {SYSTEM},
           needs_reason=True),
    Action("reopen", "重新办理", (S.closed,), S.filed, _COMMAND | {REPORTER}, needs_reason=True),
    Action("request_escalation", "申请上报", (S.dispatched, S.acknowledged), None, _HANDLERS, needs_reason=True),
    Action("add_task", "联合执法", _ACTIVE, None, _COMMAND),
    Action("complete_task", "分项办结", _ACTIVE, None, _COMMAND | {DEPARTMENT}),
    Action("join", "附议", _OPEN, None, frozenset({REPORTER})),
    Action("merge", "合并重复", (S.reported, S.accepted), S.rejected, _COMMAND, needs_reason=True),
)}


def allowed_actions(state: str, role: str) -> list[str]:
    """The actions a caller with ``role`` may take on a case in ``state``, in the table's order."""
    return [a.name for a in ACTIONS.values() if state in a.sources and role in a.roles]


def refusal(action: str, state: str, role: str) -> str | None:
    """Why ``action`` may not be taken (None when it may): names the allowed ones."""
    known = ACTIONS.get(action)
    if known is None:
        return f"there is no case action {action!r}; the actions are {', '.join(ACTIONS)}"
    allowed = allowed_actions(state, role)
    if state in known.sources and role in known.roles:
        return None
    if state not in known.sources:
        why = f"'{action}' is not possible for a case that is {state} (only from {', '.join(known.sources)})"
    else:
        why = f"a {role} may not '{action}' a case"
    return f"{why}; allowed now: {', '.join(allowed) if allowed else 'nothing'}"
