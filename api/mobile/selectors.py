"""What a grid worker's phone reads: their grid and its buildings, their tasks, the elder-care alerts in the grid.

Every statement runs under the worker's row-level security (``layers.access.scoped_django``),
so it cannot return another grid's row whatever it asks; the database builds the JSON.
"""

from __future__ import annotations

import json

from django.db import connection

from core.vocabulary import CARE_CATEGORY, OPEN_STATUSES, sql_list, sql_literal
from gis.cases.workflow import S

# what a phone lists: the cases dispatched to the worker until the command centre has checked them
TASK_STATES = (S.dispatched, S.acknowledged, S.handled)

_GRID = """
SELECT json_build_object(
    'id', g.id, 'code', g.code, 'name', g.name,
    'bounds', json_build_array(ST_XMin(g.geom), ST_YMin(g.geom), ST_XMax(g.geom), ST_YMax(g.geom)),
    'outline', ST_AsGeoJSON(g.geom, 6)::json,
    'buildings', json_build_object('type', 'FeatureCollection', 'features', coalesce((
        SELECT json_agg(json_build_object('type', 'Feature', 'id', b.id,
                                          'geometry', ST_AsGeoJSON(b.geom, 6)::json,
                                          'properties', json_build_object('name', b.name, 'floors', b.floors))
                        ORDER BY b.id)
        FROM buildings b WHERE b.grid_id = g.id), '[]'::json))
)::text
FROM grids g WHERE g.id = %(grid)s
"""

# most urgent first: past its due time, then the soonest due, then the most severe; handled ones (waiting
# for the check) last. ``arrived_at``: the last 到场 since the worker signed for the case.
TASKS_SQL = f"""
SELECT coalesce(json_agg(t ORDER BY t.state = {sql_literal(S.handled)}, t.breached DESC, t.due_at NULLS LAST,
                                    t.severity DESC, t.id), '[]'::json)::text
FROM (
    SELECT c.id, c.code, c.state, c.category, i.title, i.severity, i.floor, b.name AS building,
           json_build_array(round(ST_X(i.geom)::numeric, 6), round(ST_Y(i.geom)::numeric, 6)) AS location,
           c.due_at, c.ack_due_at, c.warned_at IS NOT NULL AS warned, c.breached_at IS NOT NULL AS breached,
           c.updated_at,
           (SELECT max(e.at) FROM case_events e
             WHERE e.case_id = c.id AND e.action = 'arrive'
               AND e.id > coalesce((SELECT max(a.id) FROM case_events a
                                     WHERE a.case_id = c.id AND a.action = 'acknowledge'), 0)) AS arrived_at
    FROM cases c JOIN incidents i ON i.id = c.incident_id LEFT JOIN buildings b ON b.id = i.building_id
    WHERE c.assignee_id = %(worker)s AND c.state IN {sql_list(TASK_STATES)}
) t
"""

_CARE_ALERTS = f"""
SELECT coalesce(json_agg(json_build_object(
    'incident_id', i.id, 'code', i.code, 'status', i.status, 'reported_at', i.reported_at, 'title', i.title,
    'building', b.name, 'building_id', b.id, 'sensor_id', i.sensor_id,
    'location', json_build_array(round(ST_X(i.geom)::numeric, 6), round(ST_Y(i.geom)::numeric, 6)),
    'case_id', c.id, 'case_state', c.state, 'mine', c.assignee_id IS NOT DISTINCT FROM %(worker)s::bigint
                                                  AND %(worker)s::bigint IS NOT NULL
) ORDER BY i.reported_at, i.id), '[]'::json)::text
FROM incidents i LEFT JOIN buildings b ON b.id = i.building_id LEFT JOIN cases c ON c.incident_id = i.id
WHERE i.category = {sql_literal(CARE_CATEGORY)} AND i.status IN {sql_list(OPEN_STATUSES)} AND i.grid_id = %(grid)s
"""

# the person behind an alert on the worker's own case: read as the owner (sensors are no layer), and
# only when the person lives in the worker's grid; their name and flat come from care_private_read
_PERSON = """
SELECT s.id, cs.id
FROM sensors s JOIN care_subjects cs ON cs.id = s.care_subject_id
WHERE s.id = ANY(%(sensors)s::bigint[]) AND cs.grid_id = %(grid)s
"""


def worker_home(*, identity) -> dict:
    """The worker (code, name, on duty; None when the account has none) and their grid with its buildings."""
    from layers.access import scoped_django

    worker = _worker(identity)
    with scoped_django(identity):
        with connection.cursor() as cursor:
            cursor.execute(_GRID, {"grid": identity.grid_id})
            row = cursor.fetchone()
    return {
        "username": identity.username,
        "worker": None if worker is None else {"id": worker.id, "code": worker.code, "name": worker.name,
                                               "on_duty": worker.on_duty},
        "grid": json.loads(row[0]) if row else None,
    }


def worker_tasks(*, identity) -> list[dict]:
    """The cases dispatched to the worker in their grid, most urgent first, each with the actions allowed now."""
    from gis.cases.workflow import allowed_actions
    from layers.access import scoped_django

    worker = _worker(identity)
    if worker is None:
        return []
    with scoped_django(identity):
        with connection.cursor() as cursor:
            cursor.execute(TASKS_SQL, {"worker": worker.id})
            rows = json.loads(cursor.fetchone()[0])
    allowed = {state: allowed_actions(state, identity.role) for state in TASK_STATES}
    for row in rows:
        row["allowed"] = allowed[row["state"]]
    return rows


def grid_care_alerts(*, identity, route: str, remote_addr: str | None) -> list[dict]:
    """Open elder-inactivity alerts in the worker's grid; on the worker's own case, the person's name and flat.

    Every person shown is written to the access log (one row each, this route).
    """
    from gis.care.private import flat
    from gis.care.selectors import care_private_read
    from layers.access import scoped_django

    worker = _worker(identity)
    with scoped_django(identity):
        with connection.cursor() as cursor:
            cursor.execute(_CARE_ALERTS, {"grid": identity.grid_id, "worker": worker.id if worker else None})
            alerts = json.loads(cursor.fetchone()[0])
    sensors = [a["sensor_id"] for a in alerts if a["mine"] and a["sensor_id"] is not None]
    subject_of = {}
    if sensors:
        with connection.cursor() as cursor:
            cursor.execute(_PERSON, {"sensors": sensors, "grid": identity.grid_id})
            subject_of = dict(cursor.fetchall())
    shown = {subject_of[a["sensor_id"]] for a in alerts if a["mine"] and a["sensor_id"] in subject_of}
    # opened and written to the access log (one row per person) in one call
    people = care_private_read(identity=identity, subject_ids=shown, route=route, remote_addr=remote_addr)
    for alert in alerts:
        person = people.get(subject_of.get(alert.pop("sensor_id"))) if alert["mine"] else None
        alert["person"] = None if person is None else {"name": person["full_name"], "flat": flat(person)}
    return alerts


def _worker(identity):
    """The grid worker bound to the signed-in user, in their grid, or None."""
    from gis.spatial.models import GridWorker

    return GridWorker.objects.filter(user_id=identity.user_id, grid_id=identity.grid_id).first()
