"""Reads of cases: the GB/T 30428 indicators, computed from the audit log.

For a period [start, end) and a grouping (the incident's level-3 grid, the assigned worker,
the department), over the cases **filed** (立案) in the period:

- 立案数 ``filed``: the cases whose first ``file`` is in the period.
- 应结案数 ``due``: those, less the ones suspended at the end of the period and the ones
  deferred (an approved 延期) to a due time after it and not closed by then — the bulletins
  leave both out until they fall due.
- 结案数 ``closed``: due cases whose last close-or-reopen before the end is a ``pass``.
- 按期结案数 ``on_time``: closed ones whose last ``pass`` says on time (handled by the due
  time in force, never breached).
- 结案率 = closed / due; 按期结案率 = on_time / due; 返工率 = closed cases with a failed
  check (返工) / closed; 延期率 = filed cases with an approved deferral / filed.
- Times in minutes (wall clock): filing to the first dispatch, and filing to the closing
  ``pass``; median and 90th percentile.

Rates are None where their denominator is 0. Everything comes from ``case_events`` (and the
case's incident for its grid), so an indicator can be recomputed for any past period.

Beside them, the cases as they stand now (the big screen): open, overdue and escalated,
each defined once here (``CASE_OPEN_SQL`` …) and counted per level-3 grid.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from core.vocabulary import OPEN_CASE_STATES, sql_list

# What "open", "overdue" and "escalated" mean, once, as conditions on a case ``c`` (the screen's counts, its
# table by grid and the incidents' overdue markers all use these).
CASE_OPEN_SQL = "c.state IN " + sql_list(OPEN_CASE_STATES)
# overdue: open and past a time limit at least once (the sweep's breach row): escalation gives the next tier a
# fresh limit, the case stays late
CASE_OVERDUE_SQL = ("(" + CASE_OPEN_SQL + " AND EXISTS (SELECT 1 FROM case_events e"
                    " WHERE e.case_id = c.id AND e.action = 'breach'))")
# escalated: open and climbed at least one tier (by the sweep or by the command centre); a category that starts
# above the level-3 grid (fire, smoke) is not escalated by starting there
CASE_ESCALATED_SQL = "(" + CASE_OPEN_SQL + " AND c.escalation_count > 0)"

# {start} and {end}: SQL expressions of the period; {key}: the grouping expression over cases c, incidents i,
# the incident's grid g and the assigned worker w
INDICATORS_SQL = """
WITH facts AS (
    SELECT e.case_id AS id,
           min(e.at) FILTER (WHERE e.action = 'file') AS filed_at,
           min(e.at) FILTER (WHERE e.action = 'dispatch') AS dispatched_at,
           bool_or(e.action = 'fail') AS reworked,
           (array_agg(e.to_state ORDER BY e.at DESC, e.id DESC))[1] AS state_at_end,
           (array_agg(e.action ORDER BY e.at DESC, e.id DESC)
                FILTER (WHERE e.action IN ('pass', 'reopen')))[1] = 'pass' AS closed,
           (array_agg(e.at ORDER BY e.at DESC, e.id DESC) FILTER (WHERE e.action IN ('pass', 'reopen')))[1]
               AS closed_at,
           (array_agg((e.data ->> 'on_time')::boolean ORDER BY e.at DESC, e.id DESC)
                FILTER (WHERE e.action IN ('pass', 'reopen')))[1] AS on_time_flag,
           (array_agg((e.data ->> 'until')::timestamptz ORDER BY e.at DESC, e.id DESC)
                FILTER (WHERE e.action = 'approve_deferral' AND (e.data ->> 'approved')::boolean))[1]
               AS deferred_until
    FROM case_events e
    WHERE e.at < {end}
      AND e.case_id IN (SELECT f.case_id FROM case_events f
                        WHERE f.action = 'file' AND f.at >= {start} AND f.at < {end})
    GROUP BY e.case_id
    HAVING min(e.at) FILTER (WHERE e.action = 'file') >= {start}
), keyed AS (
    SELECT facts.*, {key} AS key, coalesce(facts.closed AND facts.on_time_flag, false) AS on_time
    FROM facts JOIN cases c ON c.id = facts.id JOIN incidents i ON i.id = c.incident_id
    LEFT JOIN grids g ON g.id = i.grid_id LEFT JOIN grid_workers w ON w.id = c.assignee_id
), counted AS (
    SELECT *, NOT (state_at_end = 'suspended'
                   OR (deferred_until IS NOT NULL AND deferred_until >= {end} AND NOT coalesce(closed, false)))
              AS due
    FROM keyed
)
SELECT key,
       count(*) AS filed,
       count(*) FILTER (WHERE due) AS due,
       count(*) FILTER (WHERE due AND closed) AS closed,
       count(*) FILTER (WHERE due AND closed AND on_time) AS on_time,
       count(*) FILTER (WHERE due AND closed AND reworked) AS reworked,
       count(*) FILTER (WHERE deferred_until IS NOT NULL) AS deferred,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM dispatched_at - filed_at) / 60)
           AS dispatch_median_min,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM dispatched_at - filed_at) / 60)
           AS dispatch_p90_min,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - filed_at) / 60)
           FILTER (WHERE due AND closed) AS close_median_min,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM closed_at - filed_at) / 60)
           FILTER (WHERE due AND closed) AS close_p90_min
FROM counted
GROUP BY key
ORDER BY key
"""

GROUPINGS = {
    "grid": "g.code",
    "worker": "w.code",
    "department": "nullif(c.department, '')",
}
_COUNTS = ("filed", "due", "closed", "on_time", "reworked", "deferred")
_TIMES = ("dispatch_median_min", "dispatch_p90_min", "close_median_min", "close_p90_min")


def case_indicators(*, start: datetime, end: datetime, by: str = "grid") -> list[dict]:
    """The indicators of the cases filed in [start, end), one row per ``by`` (grid | worker | department)."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}; got {by!r}")
    if end <= start:
        raise ValueError("the period's end must come after its start")
    statement = INDICATORS_SQL.format(start="%(start)s", end="%(end)s", key=GROUPINGS[by])
    with connection.cursor() as cursor:
        cursor.execute(statement, {"start": start, "end": end})
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
    return [_with_rates(row, by) for row in rows]


def _with_rates(row: dict, by: str) -> dict:
    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 4) if whole else None

    out = {by: row["key"], **{name: row[name] for name in _COUNTS}}
    out.update(closure_rate=share(row["closed"], row["due"]), on_time_rate=share(row["on_time"], row["due"]),
               rework_rate=share(row["reworked"], row["closed"]), deferral_rate=share(row["deferred"], row["filed"]))
    out.update({name: None if row[name] is None else round(float(row[name]), 1) for name in _TIMES})
    return out


# Open cases by the level-3 grid of their incident, within a grid and every grid below it, and their total
# (GROUPING SETS: one statement). Rows follow the caller's row-level security: run it in their scope.
_BY_GRID_SQL = """
WITH RECURSIVE scope(id) AS (
    SELECT id FROM grids WHERE id = %(grid_id)s
    UNION ALL
    SELECT g.id FROM grids g JOIN scope s ON g.parent_id = s.id
), leaves AS (
    SELECT g.id, g.code, g.name, ST_XMin(g.geom) AS west, ST_YMin(g.geom) AS south,
           ST_XMax(g.geom) AS east, ST_YMax(g.geom) AS north
    FROM grids g WHERE g.id IN (SELECT id FROM scope) AND g.level = 3
), open_cases AS (
    SELECT i.grid_id, """ + CASE_OVERDUE_SQL + """ AS overdue, """ + CASE_ESCALATED_SQL + """ AS escalated
    FROM cases c JOIN incidents i ON i.id = c.incident_id
    WHERE """ + CASE_OPEN_SQL + """ AND i.grid_id IN (SELECT id FROM leaves)
)
SELECT GROUPING(l.code) = 1 AS total, l.code, l.name, l.west, l.south, l.east, l.north,
       count(o.grid_id) AS open, count(o.grid_id) FILTER (WHERE o.overdue) AS overdue,
       count(o.grid_id) FILTER (WHERE o.escalated) AS escalated
FROM leaves l LEFT JOIN open_cases o ON o.grid_id = l.id
GROUP BY GROUPING SETS ((l.code, l.name, l.west, l.south, l.east, l.north), ())
ORDER BY GROUPING(l.code), l.code
"""


def case_counts_by_grid(*, grid_id: int) -> dict:
    """Open, overdue and escalated cases per level-3 grid in the grid (itself or below it), and their total.

    ``{"grids": [{code, name, bounds: [west, south, east, north], open, overdue, escalated}], "total": {…}}``,
    every level-3 grid by code (those with nothing open too). The caller's row-level security decides which
    cases count: call it under their scope (``layers.access.scoped_django``).
    """
    with connection.cursor() as cursor:
        cursor.execute(_BY_GRID_SQL, {"grid_id": grid_id})
        rows = cursor.fetchall()
    grids, total = [], {"open": 0, "overdue": 0, "escalated": 0}
    for is_total, code, name, west, south, east, north, open_, overdue, escalated in rows:
        counts = {"open": open_, "overdue": overdue, "escalated": escalated}
        if is_total:
            total = counts
        else:
            grids.append({"code": code, "name": name, "bounds": [west, south, east, north], **counts})
    return {"grids": grids, "total": total}


def case_codes(ids) -> dict[int, str]:
    """The code of each case of ``ids`` that exists (the caller decided they may be seen)."""
    from gis.cases.models import Case

    return dict(Case.objects.filter(pk__in=list(ids)).values_list("id", "code"))


def cases_by_id(ids: list[int]) -> list:
    """The cases of ``ids`` in that order, with what a summary shows (the caller decided they may be seen)."""
    from gis.cases.models import Case

    by_id = Case.objects.select_related("grid", "assignee", "incident").in_bulk(ids)
    return [by_id[i] for i in ids if i in by_id]


def case_summary(case) -> dict:
    """A case as a list row: state, clock, who has it, where, and its counts."""
    point = case.incident.geom
    return {
        "id": case.id, "code": case.code, "state": case.state, "category": case.category, "tier": case.tier,
        "grid": case.grid.code if case.grid else None, "grid_name": case.grid.name if case.grid else None,
        "incident": case.incident.code, "location": [point.x, point.y],
        "assignee": case.assignee.name if case.assignee else None, "stage": case.stage or None,
        "due_at": _moment(case.due_at), "warn_at": _moment(case.warn_at), "warned": case.warned_at is not None,
        "breached": case.breached_at is not None, "deferred": case.deferred, "rework": case.rework_count,
        "reopened": case.reopen_count, "escalations": case.escalation_count, "rating": case.rating,
        "closed_at": _moment(case.closed_at), "closed_on_time": case.closed_on_time,
        "created_at": _moment(case.created_at),
    }


def case_detail(case) -> dict:
    """A case with its joint parts and every step of its audit log."""
    tasks = [{"department": t.department.name, "department_id": t.department_id, "state": t.state,
              "due_at": _moment(t.due_at), "done_at": _moment(t.done_at)}
             for t in case.tasks.select_related("department").order_by("id")]
    history = [
        {"at": e.at.isoformat(), "action": e.action, "from": e.from_state, "to": e.to_state, "actor": e.actor,
         "role": e.role, "reason": e.reason, "position": [e.position.x, e.position.y] if e.position else None,
         "data": e.data}
        for e in case.events.order_by("at", "id")
    ]
    return {**case_summary(case), "tasks": tasks, "history": history}


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def departments_for(*, category: str, lon: float, lat: float) -> list:
    """The departments that handle ``category`` with a jurisdiction covering the point, by code."""
    from django.contrib.gis.geos import Point

    from gis.cases.models import Department

    point = Point(lon, lat, srid=4326)
    return list(Department.objects.filter(categories__contains=[category], geom__covers=point).order_by("code"))
