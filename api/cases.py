"""The cases API at ``/api/cases/``: the list with filters and paging, one case with its history, and
every workflow action as a POST.

Signed-in case handlers only (administrators, commanders, grid workers, departments); an
anonymous caller gets 401 with a challenge. Which cases a caller may see is decided under
their row-level security (``layers.access.scoped_django``): a grid worker sees the cases of
their own grid and nothing else — any other case is a 404 for every method, as for a
missing one — and an elder's alert is never a department's. What is shown of the visible
ones (worker and grid names) is read afterwards. A refused action is a 409 naming the
allowed ones; nothing changes. See ``docs/cases.md``.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from api.responses import json_answer, json_error
from core.roles import ADMINISTRATOR, CASE_ROLES, COMMANDER, FIGURE_ROLES, SCREEN_ROLES
from core.vocabulary import CARE_CATEGORY, CASE_STATE_CODES, CATEGORY_CODES
from gis.cases import selectors as case_reads

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_BODY = 64 * 1024
# who sees an elder's alert as a case: those who act on the person
_CARE_READERS = frozenset({ADMINISTRATOR, COMMANDER, "grid_worker"})


class _Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def _view(*methods: str, roles: frozenset[str] = CASE_ROLES, what: str = "the cases"):
    """The caller's identity for ``roles``; errors as JSON; only ``methods`` (405 otherwise).

    A case the caller may not see is a 404 whatever the method: the case is looked up under
    the caller's scope (``_check_visible``) before the method is (``_allow``).
    """

    def decorate(view):
        @csrf_exempt
        def wrapper(request: HttpRequest, **kwargs):
            from api.auth import AuthError, require_role
            from gis.services import ServiceError

            try:
                identity = require_role(request, roles, what=what)
                if "case_id" in kwargs:
                    _check_visible(identity, _number(kwargs["case_id"]))
                _allow(request, methods)
                return view(request, identity, **kwargs)
            except (AuthError, _Refusal, ServiceError) as exc:
                return _answer(exc)

        return wrapper

    return decorate


def _answer(exc: Exception) -> JsonResponse | None:
    """The error answer of a refusal (sign-in, a bad request, a refused action), or None for anything else."""
    from api.auth import AuthError
    from gis.cases.services import CaseRefused
    from gis.services import ServiceError

    if isinstance(exc, (AuthError, _Refusal)):
        return json_error(exc.status, str(exc), exc.headers)
    if isinstance(exc, ServiceError):
        return json_error(409 if isinstance(exc, CaseRefused) else 400, str(exc))
    return None


# -- reads ----------------------------------------------------------------------------------


@_view("GET", "HEAD")
def case_list(request: HttpRequest, identity) -> JsonResponse:
    """Cases the caller may see, newest first: ``state``, ``category``, ``grid`` (a code), ``overdue``, paging."""
    from layers.access import scoped_django

    query = request.GET
    limit = _int(query.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int(query.get("offset"), "offset", 0, 0, 10**9)
    with scoped_django(identity):
        cases = _visible(identity).order_by("-created_at", "-id")
        if query.get("state"):
            cases = cases.filter(state=_choice(query["state"], "state", CASE_STATE_CODES))
        if query.get("category"):
            cases = cases.filter(category=_choice(query["category"], "category", CATEGORY_CODES))
        if query.get("grid"):
            cases = cases.filter(incident__grid__code=_code(query["grid"], "grid"))
        if query.get("overdue"):
            if _bool(query["overdue"], "overdue"):
                cases = cases.exclude(breached_at=None)
            else:
                cases = cases.filter(breached_at=None)
        matched = cases.count()
        ids = list(cases.values_list("id", flat=True)[offset:offset + limit])
    rows = [case_reads.case_summary(case) for case in case_reads.cases_by_id(ids)]
    return json_answer({"cases": rows, "numberMatched": matched, "numberReturned": len(rows),
                  "limit": limit, "offset": offset})


@_view("GET", "HEAD")
def case_detail(request: HttpRequest, identity, case_id: str) -> JsonResponse:
    """One case with its history and the actions the caller may take now."""
    return json_answer(_detail(identity, _number(case_id)))


@_view("POST")
def case_action(request: HttpRequest, identity, case_id: str, action: str) -> HttpResponse:
    """Take ``action`` on the case (body: JSON with what the action needs); the case as it is afterwards.

    With an ``Idempotency-Key`` header the action is taken once per key and a replay gets the
    first answer (``api.idempotency``): phones send what they queued offline this way.
    """
    from api.idempotency import replayable

    return replayable(request, identity, lambda: _take_action(request, identity, case_id, action), answer=_answer)


def _take_action(request: HttpRequest, identity, case_id: str, action: str) -> JsonResponse:
    from gis.cases import services
    from gis.cases.workflow import ACTIONS

    number = _number(case_id)
    if action == "visit":  # an elder-care alert's visit: check-in, outcome, note (gis.care.services)
        return _visit(request, identity, number)
    if action not in ACTIONS:
        raise _Refusal(404, f"there is no case action {action!r}; the actions are {', '.join(ACTIONS)}")
    body = _body(request)
    arguments = {"case_id": number, "actor": identity}
    for name, convert in _ARGUMENTS.get(action, {}).items():
        if name in body:
            arguments[name] = convert(body[name], name)
    for name in ("reason",):
        if name in _NEEDS.get(action, ()) or name in body:
            arguments[name] = _text(body.get(name, ""), name)
    missing = [name for name in _REQUIRED.get(action, ()) if name not in arguments]
    if missing:
        raise _Refusal(400, f"'{action}' needs {', '.join(missing)} in the JSON body")
    getattr(services, f"case_{action}")(**arguments)
    return json_answer(_detail(identity, number))


@_view("GET", "HEAD", roles=FIGURE_ROLES, what="the case indicators")
def case_indicators(request: HttpRequest, identity) -> HttpResponse:
    """The indicators of the cases filed in [start, end) by grid, worker or department, as JSON or CSV."""
    from gis.cases.selectors import GROUPINGS
    from gis.cases.selectors import case_indicators as indicators

    query = request.GET
    end = _moment(query["end"], "end") if query.get("end") else timezone.now()
    start = _moment(query["start"], "start") if query.get("start") else end - timedelta(days=30)
    if not start < end or end - start > timedelta(days=3700):
        raise _Refusal(400, "start must come before end, at most ten years apart")
    by = _choice(query.get("by") or "grid", "by", tuple(GROUPINGS))
    form = _choice(query.get("f") or "json", "f", ("json", "csv"))
    rows = indicators(start=start, end=end, by=by)
    if form == "json":
        return json_answer({"start": start.isoformat(), "end": end.isoformat(), "by": by, "indicators": rows})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [by], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="case-indicators-{by}-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
    return response


def _visit(request: HttpRequest, identity, number: int) -> JsonResponse:
    """走访: the outcome of an elder-care alert's visit (body: outcome, note, position [lon, lat], until)."""
    from gis.care.models import CareVisit
    from gis.care.services import care_visit_record

    body = _body(request)
    outcomes = tuple(code for code, _ in CareVisit.OUTCOMES)
    if "outcome" not in body:
        raise _Refusal(400, f"'visit' needs outcome in the JSON body: one of {', '.join(outcomes)}")
    care_visit_record(case_id=number, actor=identity, outcome=_choice(_text(body["outcome"], "outcome"), "outcome",
                                                                       outcomes),
                      note=_text(body.get("note", ""), "note"),
                      position=_position(body["position"], "position") if "position" in body else None,
                      until=_moment(body["until"], "until") if "until" in body else None)
    return json_answer(_detail(identity, number))


# -- the outbox's dead letters, for the command centre ----------------------------------------


@_view("GET", "HEAD", roles=SCREEN_ROLES, what="the dead notifications")
def dead_notices(request: HttpRequest, identity) -> JsonResponse:
    """Notifications that failed every attempt (newest first), each with what it was, its last error and its case."""
    from gis.cases.notices import SUBJECT
    from gis.notifications.selectors import dead_notifications

    limit = _int(request.GET.get("limit"), "limit", 100, 1, MAX_LIMIT)
    rows = dead_notifications(limit=limit)
    about_cases = [row["subject"]["id"] for row in rows if row["subject"]["kind"] == SUBJECT]
    codes = case_reads.case_codes(i for i in about_cases if i is not None)
    for row in rows:
        row["case_code"] = codes.get(row["subject"]["id"]) if row["subject"]["kind"] == SUBJECT else None
    return json_answer({"notifications": rows})


@_view("POST", roles=SCREEN_ROLES, what="the dead notifications")
def replay_notice(request: HttpRequest, identity, notification_id: str) -> JsonResponse:
    """A dead letter back to the outbox with a fresh set of attempts (the replay button); 409 unless dead."""
    from gis.notifications.models import Notification
    from gis.notifications.services import notification_replay
    from gis.services import ServiceError

    number = _number(notification_id)
    if not Notification.objects.filter(pk=number).exists():
        raise _Refusal(404, f"there is no notification {number}")
    try:
        replayed = notification_replay(notification_id=number)
    except ServiceError as exc:
        raise _Refusal(409, str(exc)) from None
    return json_answer({"id": replayed.id, "state": replayed.state, "attempts": replayed.attempts})


# -- helpers --------------------------------------------------------------------------------


def _allow(request: HttpRequest, methods) -> None:
    if request.method not in methods:
        raise _Refusal(405, f"{request.method} is not allowed here; use {' or '.join(methods)}",
                       {"Allow": ", ".join(methods)})


def _visible(identity):
    from gis.cases.models import Case

    cases = Case.objects.all()
    if identity.role not in _CARE_READERS:
        cases = cases.exclude(category=CARE_CATEGORY)
    return cases


def _check_visible(identity, number: int) -> None:
    """404 unless the caller's row-level security lets them see case ``number``."""
    from layers.access import scoped_django

    with scoped_django(identity):
        visible = _visible(identity).filter(pk=number).exists()
    if not visible:
        raise _Refusal(404, f"case {number} does not exist (or is not yours to see)")


def _detail(identity, number: int) -> dict:
    """A case the caller may see, with the actions they may take and, when it may be dispatched, whom to send."""
    from gis.cases.services import case_recommendation
    from gis.cases.workflow import allowed_actions

    case = case_reads.cases_by_id([number])[0]
    detail = {**case_reads.case_detail(case), "allowed": allowed_actions(case.state, identity.role)}
    if "dispatch" in detail["allowed"]:
        detail["recommendation"] = case_recommendation(case=case)
    return detail


def _body(request: HttpRequest) -> dict:
    raw = request.body
    if len(raw) > MAX_BODY:
        raise _Refusal(413, f"the body is {len(raw):,} bytes; at most {MAX_BODY:,} are taken")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Refusal(400, f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _Refusal(400, "the body must be a JSON object")
    return body


def _text(value, name: str) -> str:
    if not isinstance(value, str):
        raise _Refusal(400, f"{name} must be text")
    return value


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise _Refusal(400, f"{name} must be a positive whole number; got {value!r}")
    return value


def _moment(value, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_text(value, name))
    except ValueError:
        raise _Refusal(400, f"{name} must be an ISO 8601 date-time with its offset; got {value!r}") from None
    if moment.tzinfo is None:
        raise _Refusal(400, f"{name} must carry its UTC offset (e.g. 2026-12-09T17:00:00+08:00)")
    return moment


def _position(value, name: str) -> tuple[float, float]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise _Refusal(400, f"{name} must be [lon, lat]")
    return float(value[0]), float(value[1])


def _photos(value, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 20:
        raise _Refusal(400, f"{name} must be a list of at most 20 texts")
    return value


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise _Refusal(400, f"{name} must be true or false")
    return value


# what each action takes from the body, and what it must have
_ARGUMENTS = {
    "dispatch": {"worker_id": _whole},
    "acknowledge": {"position": _position},
    "arrive": {"position": _position},
    "handle": {"note": _text, "position": _position, "photos": _photos},
    "rate": {"rating": _whole},
    "request_deferral": {"until": _moment},
    "approve_deferral": {"approve": _flag},
    "add_task": {"department_id": _whole, "due_at": _moment, "note": _text},
    "complete_task": {"department_id": _whole, "note": _text},
    "merge": {"into_case_id": _whole},
}
_REQUIRED = {"dispatch": ("worker_id",), "arrive": ("position",), "handle": ("note",), "rate": ("rating",),
             "request_deferral": ("until",), "add_task": ("department_id", "due_at"),
             "complete_task": ("department_id",), "merge": ("into_case_id",)}
_NEEDS = {name: ("reason",) for name in ("reject", "return", "fail", "request_deferral", "suspend", "escalate",
                                          "reopen", "merge")}


def _number(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise _Refusal(404, f"the id must be a whole number, got {raw!r}")
    return int(raw)


def _int(raw, name: str, default: int, low: int, high: int) -> int:
    if raw in (None, ""):
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise _Refusal(400, f"{name} must be a whole number from {low} to {high}; got {raw!r}")
    return int(raw)


def _code(raw: str, name: str) -> str:
    """A code as a filter value: text the database can hold (no NUL), at most 100 characters."""
    if "\x00" in raw or len(raw) > 100:
        raise _Refusal(400, f"{name} must be a code of at most 100 characters without NUL")
    return raw


def _choice(raw: str, name: str, choices) -> str:
    if raw not in choices:
        raise _Refusal(400, f"{name} must be one of {', '.join(choices)}; got {raw[:60]!r}")
    return raw


def _bool(raw: str, name: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise _Refusal(400, f"{name} must be true or false; got {raw[:60]!r}")



urlpatterns = [
    path("", case_list, name="cases"),
    path("indicators", case_indicators, name="case-indicators"),
    path("notices/dead", dead_notices, name="case-notices-dead"),
    path("notices/<str:notification_id>/replay", replay_notice, name="case-notice-replay"),
    path("<str:case_id>", case_detail, name="case"),
    path("<str:case_id>/<str:action>", case_action, name="case-action"),
]
