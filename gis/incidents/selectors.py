"""Reads of incidents: the GeoJSON Feature the big screen shows, and an incident's status history."""

from __future__ import annotations

from django.db import connection

from gis.cases.selectors import CASE_OVERDUE_SQL

# One incident as the GeoJSON Feature the big screen shows (the live feed's messages, the
# first markers, the incident panel): what a marker and a list row need, with no description,
# notes or evidence paths. An expression over ``incidents i`` joined to its ``grids g``.
INCIDENT_FEATURE_JSON = """
json_build_object(
    'type', 'Feature', 'id', i.id,
    'geometry', ST_AsGeoJSON(i.geom, 7)::json,
    'properties', json_build_object(
        'code', i.code, 'category', i.category, 'source', i.source, 'severity', i.severity,
        'status', i.status, 'title', i.title, 'floor', i.floor,
        'reported_at', i.reported_at, 'resolved_at', i.resolved_at, 'updated_at', i.updated_at,
        'grid_id', i.grid_id, 'grid_code', g.code, 'grid_name', g.name,
        'building_id', i.building_id, 'camera_id', i.camera_id,
        'has_evidence', coalesce(i.evidence ? 'keyframe' OR i.evidence ? 'clip', false),
        'overdue', EXISTS (SELECT 1 FROM cases c WHERE c.incident_id = i.id AND """ + CASE_OVERDUE_SQL + """)
    )
)
"""

# The Feature of each incident whose id is in the array ``%s``, as (id, JSON text).
INCIDENT_FEATURES_SQL = (
    "SELECT i.id, " + INCIDENT_FEATURE_JSON + "::text "
    "FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id WHERE i.id = ANY(%s::bigint[])"
)


def incident_history(incident_id: int) -> list[dict]:
    """An incident's statuses, oldest first: the report, then every change (see ``IncidentStatusChange``).

    Each entry is ``{"at", "from_status", "to_status", "actor"}`` with ``at`` in ISO 8601;
    the first has ``from_status`` None and is the report itself. Empty when there is no such incident.
    """
    sql = """
    SELECT at, from_status, to_status, actor FROM (
        SELECT 0 AS ord, i.reported_at AS at, NULL AS from_status,
               coalesce(first.from_status, i.status) AS to_status, '' AS actor
        FROM incidents i
        LEFT JOIN LATERAL (
            SELECT c.from_status FROM incident_status_changes c
            WHERE c.incident_id = i.id ORDER BY c.id LIMIT 1
        ) first ON true
        WHERE i.id = %s
        UNION ALL
        SELECT row_number() OVER (ORDER BY c.id), c.at, c.from_status, c.to_status, c.actor
        FROM incident_status_changes c WHERE c.incident_id = %s
    ) history ORDER BY ord
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [incident_id, incident_id])
        rows = cursor.fetchall()
    return [
        {"at": at.isoformat(), "from_status": from_status, "to_status": to_status, "actor": actor}
        for at, from_status, to_status, actor in rows
    ]
