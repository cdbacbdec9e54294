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
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

# {start} and {end}: SQL expressions of the period; {key}: the grouping expression over cases c / incidents i
INDICATORS_SQL = """
WITH filed AS (
    SELECT c.id, min(e.at) AS filed_at
    FROM cases c JOIN case_events e ON e.case_id = c.id AND e.action = 'file'
    GROUP BY c.id
    HAVING min(e.at) >= {start} AND min(e.at) < {end}
), facts AS (
    SELECT f.id, f.filed_at, {key} AS key,
           (SELECT min(e.at) FROM case_events e
            WHERE e.case_id = f.id AND e.action = 'dispatch' AND e.at < {end}) AS dispatched_at,
           last_state.to_state AS state_at_end,
           last_close.action = 'pass' AS closed,
           CASE WHEN last_close.action = 'pass' THEN last_close.at END AS closed_at,
           coalesce(last_close.action = 'pass' AND (last_close.data ->> 'on_time')::boolean, false) AS on_time,
           EXISTS (SELECT 1 FROM case_events e
                   WHERE e.case_id = f.id AND e.action = 'fail' AND e.at < {end}) AS reworked,
           deferral.until AS deferred_until
    FROM filed f
    JOIN cases c ON c.id = f.id
    JOIN incidents i ON i.id = c.incident_id
    LEFT JOIN LATERAL (SELECT e.to_state FROM case_events e WHERE e.case_id = f.id AND e.at < {end}
                       ORDER BY e.at DESC, e.id DESC LIMIT 1) last_state ON true
    LEFT JOIN LATERAL (SELECT e.action, e.at, e.data FROM case_events e
                       WHERE e.case_id = f.id AND e.action IN ('pass', 'reopen') AND e.at < {end}
                       ORDER BY e.at DESC, e.id DESC LIMIT 1) last_close ON true
    LEFT JOIN LATERAL (SELECT (e.data ->> 'until')::timestamptz AS until FROM case_events e
                       WHERE e.case_id = f.id AND e.action = 'approve_deferral'
                         AND (e.data ->> 'approved')::boolean AND e.at < {end}
                       ORDER BY e.at DESC, e.id DESC LIMIT 1) deferral ON true
), counted AS (
    SELECT *, NOT (state_at_end = 'suspended'
                   OR (deferred_until IS NOT NULL AND deferred_until >= {end} AND NOT coalesce(closed, false)))
              AS due
    FROM facts
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
    "grid": "(SELECT g.code FROM grids g WHERE g.id = i.grid_id)",
    "worker": "(SELECT w.code FROM grid_workers w WHERE w.id = c.assignee_id)",
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
