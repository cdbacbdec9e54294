"""Writes to cases: one service per action of ``gis.cases.workflow``, each one transaction with its audit row.

Every service takes the caller (``core.identity.Identity``) and the moment (``at``,
default now; tests pass their own clock). It locks the case, checks the workflow table
(``CaseRefused`` naming the allowed actions otherwise, and nothing changes), applies the
action's effect on the clock, writes a ``CaseEvent`` and keeps the incident's status in
step. Due and warning moments come from ``gis.cases.clock`` in working time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from core.identity import Identity
from core.roles import DEPARTMENT
from gis.cases import clock
from gis.cases.limits import WARN_SHARE, limit_for
from gis.cases.models import Case, CaseEvent, CaseTask, Department
from gis.cases.notices import announce
from gis.cases.selectors import departments_for
from gis.cases.workflow import ACTIONS, REOPEN_DAYS, SYSTEM, refusal
from gis.incidents.models import Incident
from gis.services import ServiceError, check_values
from gis.spatial.models import Grid, GridWorker
from gis.spatial.routing import dispatch_recommendation

SYSTEM_IDENTITY = Identity(role=SYSTEM, username=SYSTEM)
# the incident's status that follows each case state (the big screen and the layers count incidents)
_INCIDENT_STATUS = {"rejected": "closed", "dispatched": "dispatched", "acknowledged": "in_progress",
                    "handled": "in_progress", "closed": "resolved", "filed": "new", "returned": "new"}


class CaseRefused(ServiceError):
    """An action not allowed for the case's state or the caller's role (HTTP 409); nothing changed."""


# -- opening ------------------------------------------------------------------------------


@transaction.atomic
def case_open(*, incident_id: int, actor: Identity = SYSTEM_IDENTITY, at: datetime | None = None) -> Case:
    """The case of an incident (made once: a second call returns the same case)."""
    at = at or timezone.now()
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    existing = Case.objects.filter(incident=incident).first()
    if existing is not None:
        return existing
    tier = limit_for(incident.category).tier
    case = Case.objects.create(code=f"CASE-{incident.code}", incident=incident, category=incident.category,
                               tier=tier, grid=_grid_at_tier(incident.grid, tier))
    _record(case, "report", "", "reported", actor, at, data={"incident": incident.code})
    return case


# -- the line -----------------------------------------------------------------------------


def case_accept(*, case_id: int, actor: Identity, at: datetime | None = None) -> Case:
    return _act(case_id, "accept", actor, at)


def case_reject(*, case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    return _act(case_id, "reject", actor, at, reason=reason)


def case_file(*, case_id: int, actor: Identity, at: datetime | None = None) -> Case:
    """立案: the dispatch clock starts."""
    return _act(case_id, "file", actor, at, effect=lambda case, at: _start_stage(case, "dispatch", at))


def case_dispatch(*, case_id: int, actor: Identity, worker_id: int, at: datetime | None = None,
                  recommendation: dict | None = None) -> Case:
    """派遣 to a grid worker: the handling clock starts (a rework keeps the first due time).

    The audit row keeps the recommendation by walking time (``gis.spatial.routing``) beside
    the actual choice, and whether they agree; a caller that showed one passes it in.
    """
    worker = GridWorker.objects.filter(pk=worker_id).first()
    if worker is None:
        raise ServiceError(f"there is no grid worker {worker_id}")

    def effect(case: Case, at: datetime) -> dict:
        case.assignee = worker
        _start_stage(case, "handle", at)
        case.ack_due_at = clock.due(at, limit_for(case.category).acknowledge_minutes, case.category)
        case.ack_breached_at = None
        advice = recommendation or case_recommendation(case=case, at=at)
        return {"worker": worker.code, "worker_name": worker.name, "recommendation": advice,
                "followed": advice.get("recommended") == worker.id}

    return _act(case_id, "dispatch", actor, at, effect=effect)


def case_recommendation(*, case: Case, at: datetime | None = None) -> dict:
    """Whom to send: the on-duty workers nearest the incident by walking time, with why."""
    point = case.incident.geom
    return dispatch_recommendation(lon=point.x, lat=point.y, now=at)


def case_acknowledge(*, case_id: int, actor: Identity, at: datetime | None = None,
                     position: tuple[float, float] | None = None) -> Case:
    """签收: the worker has it; the acknowledgement deadline no longer runs."""

    def effect(case: Case, at: datetime) -> None:
        case.ack_due_at = None

    return _act(case_id, "acknowledge", actor, at, position=position, effect=effect)


def case_arrive(*, case_id: int, actor: Identity, position: tuple[float, float] | None,
                at: datetime | None = None) -> Case:
    """到场: the handler is at the place (the position is the proof); the state and the clock are unchanged."""
    if position is None:
        raise ServiceError("'arrive' needs the position where the handler is")
    return _act(case_id, "arrive", actor, at, position=position)


def case_request_escalation(*, case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    """申请上报: the handler finds the case too big for the grid; the command centre is told and decides."""
    return _act(case_id, "request_escalation", actor, at, reason=reason)


def case_return(*, case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    """退回: the case goes back to be dispatched again; the dispatch clock starts afresh."""

    def effect(case: Case, at: datetime) -> None:
        case.assignee = None
        case.handle_due_at = case.handle_warn_at = case.ack_due_at = None
        _start_stage(case, "dispatch", at)

    return _act(case_id, "return", actor, at, reason=reason, effect=effect)


def case_handle(*, case_id: int, actor: Identity, note: str, at: datetime | None = None,
                position: tuple[float, float] | None = None, photos: list[str] | None = None) -> Case:
    """处置反馈: the handler reports what was done; the clock stops until the check."""

    def effect(case: Case, at: datetime) -> dict:
        case.handled_at = at
        case.ack_due_at = None
        _stop_clock(case)
        return {"note": note, "photos": list(photos or [])}

    return _act(case_id, "handle", actor, at, position=position, effect=effect)


def case_pass(*, case_id: int, actor: Identity, at: datetime | None = None) -> Case:
    """核查通过 → 结案: on time when it was handled by its (possibly deferred) due time and never breached one."""

    def effect(case: Case, at: datetime) -> dict:
        waiting = [t.department.name for t in case.tasks.select_related("department").filter(state="open")]
        if waiting:
            raise CaseRefused(f"case {case.code} is a joint case: {', '.join(waiting)} still have their part open")
        case.closed_at = at
        breached = CaseEvent.objects.filter(case=case, action="breach").exists()
        case.closed_on_time = not breached and (case.handle_due_at is None or case.handled_at <= case.handle_due_at)
        return {"on_time": case.closed_on_time}

    return _act(case_id, "pass", actor, at, effect=effect)


def case_fail(*, case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    """核查不通过 → 返工: back to the same handler, the original due time kept."""

    def effect(case: Case, at: datetime) -> dict:
        case.rework_count += 1
        case.handled_at = None
        _start_stage(case, "handle", at)
        return {"rework": case.rework_count}

    return _act(case_id, "fail", actor, at, reason=reason, effect=effect)


def case_rate(*, case_id: int, actor: Identity, rating: int, at: datetime | None = None) -> Case:
    check_values(Case, {"rating": rating})
    if not 1 <= rating <= 5:
        raise ServiceError(f"rating must be 1 to 5; got {rating}")

    def effect(case: Case, at: datetime) -> dict:
        case.rating = rating
        return {"rating": rating}

    return _act(case_id, "rate", actor, at, effect=effect)


# -- beside the line ----------------------------------------------------------------------


def case_join(*, case_id: int, actor: Identity, report: str, at: datetime | None = None) -> Case:
    """附议: another reporter of the same problem joins the open case (their report names it)."""
    return _act(case_id, "join", actor, at, effect=lambda case, at: {"report": report})


def case_merge(*, case_id: int, into_case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    """合并重复: a duplicate, still being screened, is closed into another open case; its reporters move along.

    The duplicate ends rejected (not filed, so never due: the indicators do not count it) with
    ``merged_into`` set; the case it joins records the merge in its own history.
    """
    def effect(case: Case, at: datetime) -> dict:
        if into_case_id == case.id:
            raise ServiceError("a case cannot be merged into itself")
        into = Case.objects.select_for_update().filter(pk=into_case_id).first()
        if into is None:
            raise ServiceError(f"there is no case {into_case_id}")
        if into.state not in ACTIONS["join"].sources:
            raise CaseRefused(f"case {into.code} is {into.state}: only an open case can take a duplicate")
        moved = list(case.reports.values_list("code", flat=True))
        case.reports.update(case=into)
        case.merged_into = into
        _record(into, "join", into.state, into.state, actor, at, reason=reason,
                data={"merged": case.code, "reports": moved})
        return {"into": into.code, "reports": moved}

    return _act(case_id, "merge", actor, at, reason=reason, effect=effect)



def case_add_task(*, case_id: int, actor: Identity, department_id: int, due_at: datetime, note: str = "",
                  at: datetime | None = None) -> Case:
    """联合执法: a unit's own part of the case, with its own deadline; the case closes when every part is done."""
    department = Department.objects.filter(pk=department_id).first()
    if department is None:
        raise ServiceError(f"there is no department {department_id}")
    check_values(CaseTask, {"note": note})

    def effect(case: Case, at: datetime) -> dict:
        if due_at <= at:
            raise ServiceError(f"the part's due time {due_at.isoformat()} has passed already")
        if case.tasks.filter(department=department).exists():
            raise CaseRefused(f"{department.name} has a part of case {case.code} already")
        CaseTask.objects.create(case=case, department=department, due_at=due_at, note=note, created_at=at)
        return {"department": department.code, "department_name": department.name, "due_at": due_at.isoformat()}

    return _act(case_id, "add_task", actor, at, effect=effect)


def case_complete_task(*, case_id: int, actor: Identity, department_id: int, note: str = "",
                       at: datetime | None = None) -> Case:
    """A unit reports its part of a joint case done."""
    check_values(CaseTask, {"note": note})

    def effect(case: Case, at: datetime) -> dict:
        task = case.tasks.select_related("department").filter(department_id=department_id).first()
        if task is None:
            raise ServiceError(f"department {department_id} has no part in case {case.code}")
        if actor.role == DEPARTMENT and actor.department != task.department.name:
            mine = f"only {actor.department}'s part" if actor.department else "no part (your account names no unit)"
            raise CaseRefused(f"this is {task.department.name}'s part of case {case.code}; you may complete {mine}")
        if task.state == "done":
            raise CaseRefused(f"{task.department.name}'s part of case {case.code} is done already")
        task.state, task.done_at, task.note = "done", at, note or task.note
        task.save()
        return {"department": task.department.code, "on_time": at <= task.due_at}

    return _act(case_id, "complete_task", actor, at, effect=effect)




def case_request_deferral(*, case_id: int, actor: Identity, until: datetime, reason: str,
                          at: datetime | None = None) -> Case:
    """申请延期: the handler asks for a new due time; the clock stops until the level above decides."""

    def effect(case: Case, at: datetime) -> dict:
        if until <= (case.due_at or at):
            raise ServiceError(f"the new due time {until.isoformat()} must be later than the current one")
        if case.deferral_requested_until is not None:
            raise CaseRefused("a deferral is already waiting for approval")
        case.deferral_requested_until = until
        _pause(case, at)
        return {"until": until.isoformat()}

    return _act(case_id, "request_deferral", actor, at, reason=reason, effect=effect)


def case_approve_deferral(*, case_id: int, actor: Identity, approve: bool = True, reason: str = "",
                          at: datetime | None = None) -> Case:
    """批准延期 (or refuse it): the new due time holds, or the clock runs on from where it stopped."""

    def effect(case: Case, at: datetime) -> dict:
        until = case.deferral_requested_until
        if until is None:
            raise CaseRefused("no deferral is waiting for approval")
        case.deferral_requested_until = None
        if approve:
            case.deferred = True
            case.remaining_minutes = clock.minutes_between(at, until, case.category)
            case.handle_due_at = None  # the deferred due time replaces the first one
        _unpause(case, at)
        _restart_acknowledgement(case, case.state, at)
        return {"approved": approve, "until": until.isoformat()}

    return _act(case_id, "approve_deferral", actor, at, reason=reason, effect=effect)


def case_suspend(*, case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    """挂起: the clock stops; ``case_resume`` brings the case back where it was."""

    def effect(case: Case, at: datetime) -> None:
        case.resume_state = case.state
        _pause(case, at)

    return _act(case_id, "suspend", actor, at, reason=reason, effect=effect)


def case_resume(*, case_id: int, actor: Identity, at: datetime | None = None) -> Case:
    def effect(case: Case, at: datetime) -> dict:
        _unpause(case, at)
        _restart_acknowledgement(case, case.resume_state, at)
        return {"to": case.resume_state}

    return _act(case_id, "resume", actor, at, effect=effect, target=lambda case: case.resume_state)


def case_escalate(*, case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    """上报上级: one tier up (level-3 grid → level-2 → level-1 → department); the stage's clock starts afresh."""

    def effect(case: Case, at: datetime) -> dict:
        if case.tier == 0:
            raise CaseRefused("the case is with a department already: there is no tier above")
        before = case.tier
        if before == 1:  # above the subdistrict: the department that handles the category where it happened
            point = case.incident.geom
            found = departments_for(category=case.category, lon=point.x, lat=point.y)
            if not found:
                raise CaseRefused(f"no department handles {case.category} at this place; add one to the "
                                  "departments layer, or keep the case with the subdistrict")
            case.department = found[0].name
        case.tier -= 1
        case.escalation_count += 1
        case.ack_due_at = None  # the next tier decides whom to send
        case.grid = case.grid.parent if case.tier > 0 and case.grid is not None else None
        if case.stage:  # the new tier gets the stage's full limit (a late case stays late: see case_pass)
            case.handle_due_at = case.handle_warn_at = None
            _start_stage(case, case.stage, at)
        return {"from_tier": before, "to_tier": case.tier, "grid": case.grid.code if case.grid else None}

    return _act(case_id, "escalate", actor, at, reason=reason, effect=effect)


def case_reopen(*, case_id: int, actor: Identity, reason: str, at: datetime | None = None) -> Case:
    """重新办理, within ``REOPEN_DAYS`` of closure: filed again, to be dispatched afresh."""

    def effect(case: Case, at: datetime) -> dict:
        if case.closed_at is not None and at - case.closed_at > timedelta(days=REOPEN_DAYS):
            raise CaseRefused(f"the case was closed on {case.closed_at.isoformat()}; it can be reopened "
                              f"within {REOPEN_DAYS} days of closure only")
        case.reopen_count += 1
        case.closed_at = case.closed_on_time = case.handled_at = None
        case.assignee = None
        case.handle_due_at = case.handle_warn_at = None
        _start_stage(case, "dispatch", at)
        return {"reopen": case.reopen_count}

    return _act(case_id, "reopen", actor, at, reason=reason, effect=effect)


# -- the machinery ------------------------------------------------------------------------


@transaction.atomic
def _act(case_id: int, action: str, actor: Identity, at: datetime | None, *, reason: str = "",
         position: tuple[float, float] | None = None, effect=None, target=None) -> Case:
    at = at or timezone.now()
    check_values(CaseEvent, {"reason": reason})
    case = Case.objects.select_for_update().filter(pk=case_id).first()
    if case is None:
        raise ServiceError(f"there is no case {case_id}")
    why = refusal(action, case.state, actor.role)
    if why is not None:
        raise CaseRefused(f"case {case.code}: {why}")
    if ACTIONS[action].needs_reason and not reason.strip():
        raise ServiceError(f"'{action}' needs a reason")
    before = case.state
    data = (effect(case, at) if effect else None) or {}
    after = target(case) if target else (ACTIONS[action].target or before)
    case.state = after
    case.save()
    _record(case, action, before, after, actor, at, reason=reason, position=position, data=data)
    status = _INCIDENT_STATUS.get(after)
    if status is not None and after != before:
        Incident.objects.filter(pk=case.incident_id).exclude(status=status).update(status=status)
    return case


def _record(case: Case, action: str, before: str, after: str, actor: Identity, at: datetime, *,
            reason: str = "", position: tuple[float, float] | None = None, data: dict | None = None) -> None:
    point = None
    if position is not None:
        lon, lat = position
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ServiceError(f"position ({lon}, {lat}) is not a lon/lat in EPSG:4326")
        point = Point(lon, lat, srid=4326)
    event = CaseEvent.objects.create(case=case, at=at, action=action, from_state=before, to_state=after,
                                     actor=actor.username or actor.role, role=actor.role, reason=reason,
                                     position=point, data=data or {})
    announce(case, event)


def _start_stage(case: Case, stage: str, at: datetime) -> None:
    """The stage's clock from ``at``: its due and warning moments (handling keeps a first due time)."""
    limit = limit_for(case.category)
    minutes = limit.dispatch_minutes if stage == "dispatch" else limit.handle_minutes
    case.stage, case.stage_started_at = stage, at
    case.warned_at = case.breached_at = None
    if stage == "handle" and case.handle_due_at is not None:  # rework: the original due time is kept
        case.due_at, case.warn_at = case.handle_due_at, case.handle_warn_at
        return
    case.due_at = clock.due(at, minutes, case.category)
    case.warn_at = clock.due(at, minutes * WARN_SHARE, case.category)
    if stage == "handle":
        case.handle_due_at, case.handle_warn_at = case.due_at, case.warn_at


def _stop_clock(case: Case) -> None:
    case.stage, case.due_at, case.warn_at = "", None, None


def _pause(case: Case, at: datetime) -> None:
    """Keep the working minutes the stage has left; the sweep ignores a case without a due time."""
    if case.due_at is not None:
        case.remaining_minutes = max(0.0, clock.minutes_between(at, case.due_at, case.category))
    case.due_at = case.warn_at = case.ack_due_at = None


def _restart_acknowledgement(case: Case, state: str, at: datetime) -> None:
    """A case back to waiting for its worker's signature gets a fresh acknowledgement deadline."""
    if state == "dispatched":
        case.ack_due_at = clock.due(at, limit_for(case.category).acknowledge_minutes, case.category)


def _unpause(case: Case, at: datetime) -> None:
    if case.remaining_minutes is None or not case.stage:
        return
    limit = limit_for(case.category)
    full = limit.dispatch_minutes if case.stage == "dispatch" else limit.handle_minutes
    case.due_at = clock.due(at, case.remaining_minutes, case.category)
    warn_left = case.remaining_minutes - full * (1 - WARN_SHARE)
    case.warn_at = clock.due(at, max(0.0, warn_left), case.category) if case.warned_at is None else None
    if case.stage == "handle":
        case.handle_due_at, case.handle_warn_at = case.due_at, case.warn_at
    case.remaining_minutes = None


def _grid_at_tier(grid: Grid | None, tier: int) -> Grid | None:
    """The grid responsible at ``tier``: the incident's level-3 grid, or its ancestor at that level."""
    while grid is not None and tier and grid.level > tier:
        grid = grid.parent
    return grid if tier else None
