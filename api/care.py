"""The elder-care API at ``/api/care/``: the alerts' indicators per level-3 grid and month (counts only).

Administrators, commanders and analysts (the figure roles); anonymous → 401, others → 403. No
person is named: the rows count alerts, visits and people per grid. A visit's outcome is a case
action (``POST /api/cases/{id}/visit``, ``api.cases``). See ``docs/care.md``.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone

from api.responses import json_answer
from core.roles import FIGURE_ROLES

MAX_SPAN = timedelta(days=3700)


class _Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.headers = status, headers or {}


def care_indicators(request: HttpRequest) -> HttpResponse:
    """Per grid and month of [start, end) (default: the last 90 days): alerts, visits, false-alarm share,
    median minutes from alert to visit, alerts per person-month; JSON or CSV (``f``)."""
    from api.auth import AuthError, require_role
    from gis.care.selectors import FALSE_ALARM_BASELINE
    from gis.care.selectors import care_indicators as indicators

    try:
        require_role(request, FIGURE_ROLES, what="the care indicators")
        if request.method not in ("GET", "HEAD"):
            raise _Refusal(405, f"{request.method} is not allowed here; use GET", {"Allow": "GET, HEAD"})
        query = request.GET
        end = _moment(query["end"], "end") if query.get("end") else timezone.now()
        start = _moment(query["start"], "start") if query.get("start") else end - timedelta(days=90)
        if not start < end or end - start > MAX_SPAN:
            raise _Refusal(400, "start must come before end, at most ten years apart")
        form = query.get("f") or "json"
        if form not in ("json", "csv"):
            raise _Refusal(400, f"f must be json or csv; got {form[:20]!r}")
    except (AuthError, _Refusal) as exc:
        return json_answer({"status": exc.status, "error": str(exc)}, exc.status, exc.headers)
    rows = indicators(start=start, end=end)
    if form == "json":
        return json_answer({"start": start.isoformat(), "end": end.isoformat(), "false_alarm_baseline": FALSE_ALARM_BASELINE,
                      "indicators": rows})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["grid"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="care-indicators-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
    return response


def _moment(raw: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _Refusal(400, f"{name} must be an ISO 8601 time with its UTC offset; got {raw[:40]!r}") from None
    if moment.tzinfo is None:
        raise _Refusal(400, f"{name} must carry its UTC offset (e.g. 2026-12-01T00:00:00+08:00)")
    if not 1970 <= moment.year <= 2200:  # and a default start 90 days before stays a date
        raise _Refusal(400, f"{name} must lie between the years 1970 and 2200; got {raw[:40]!r}")
    return moment



urlpatterns = [
    path("indicators", care_indicators, name="care-indicators"),
]
