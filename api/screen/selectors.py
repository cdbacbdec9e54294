"""Read-only selectors for the command-centre screen: the six scene panels, live markers, care alerts.

Every function is keyword-only and runs one SQL statement over a grid and the grids
below it (rows carry their level-3 grid). The database builds the JSON. Nothing
here returns a person's data: people under care appear only as counts and as the
buildings that hold an open alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from core.settings import settings
from core.vocabulary import (
    CARE_CATEGORY,
    OPEN_STATUSES,
    PARKING_CATEGORY,
    SAFETY_CATEGORIES,
    sql_list,
    sql_literal,
)
from gis.cases.selectors import CASE_ESCALATED_SQL, CASE_OPEN_SQL, CASE_OVERDUE_SQL
from gis.incidents.selectors import INCIDENT_FEATURE_JSON

# alerts about one elder (CARE_CATEGORY) are shown only as counts and highlighted buildings
LOCAL_TZ = ZoneInfo(settings().time_zone)  # "today" on every panel (ONEMAP_TIME_ZONE)
LIVE_WINDOW = timedelta(hours=24)
LIVE_LIMIT = 500  # initial live markers; the page keeps at most 2,000
WEDGE_LENGTH_M = 40.0
WEDGE_STEPS = 8  # arc segments of a camera's field-of-view wedge


@dataclass(frozen=True)
class SceneGrid:
    """The grid a screen looks at, with its extent in EPSG:4326."""

    id: int
    code: str
    name: str
    level: int
    parent_code: str | None
    bounds: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat
    outline: dict  # GeoJSON geometry of the grid's boundary

    def as_json(self) -> dict:
        return {"id": self.id, "code": self.code, "name": self.name, "level": self.level,
                "parent_code": self.parent_code, "bounds": list(self.bounds)}


def _vocabulary(text: str) -> str:
    """The SQL with the vocabulary's codes written in: open statuses, the care and safety categories."""
    return (text.replace("{OPEN}", sql_list(OPEN_STATUSES)).replace("{CARE}", sql_literal(CARE_CATEGORY))
            .replace("{SAFETY}", sql_list(SAFETY_CATEGORIES)).replace("{PARKING}", sql_literal(PARKING_CATEGORY)))


# The grid and every grid below it; rows point at their level-3 grid, so membership is by id.
_SCOPE = """
WITH RECURSIVE scope(id) AS (
    SELECT id FROM grids WHERE id = %(grid_id)s
    UNION ALL
    SELECT g.id FROM grids g JOIN scope s ON g.parent_id = s.id
)
"""


_SCENE_GRID = """
SELECT g.id, g.code, g.name, g.level, p.code,
       ST_XMin(g.geom), ST_YMin(g.geom), ST_XMax(g.geom), ST_YMax(g.geom),
       ST_AsGeoJSON(ST_Boundary(g.geom), 7)
FROM grids g LEFT JOIN grids p ON p.id = g.parent_id
WHERE g.code = %(code)s OR (%(code)s::text IS NULL AND g.level = 1)
ORDER BY g.code LIMIT 1
"""


def scene_grid(*, code: str | None = None) -> SceneGrid | None:
    """The grid with ``code``; with no code the first level-1 grid; None when there is no such grid."""
    row = _fetchone(_SCENE_GRID, {"code": code})
    if row is None:
        return None
    return SceneGrid(id=row[0], code=row[1], name=row[2], level=row[3], parent_code=row[4],
                     bounds=tuple(row[5:9]), outline=json.loads(row[9]))


def scenes_for_grid(*, grid: SceneGrid, now: datetime | None = None) -> dict:
    """Every scene panel for a grid, keyed by panel name."""
    now = now or timezone.now()
    return {
        "grid": grid.as_json(),
        "as_of": now.isoformat(timespec="seconds"),
        "party": scene_party(grid_id=grid.id, now=now),
        "governance": scene_governance(grid_id=grid.id),
        "safety": scene_safety(grid_id=grid.id, now=now),
        "elder_care": scene_elder_care(grid_id=grid.id),
        "parking": scene_parking(grid_id=grid.id),
        "services": scene_services(grid_id=grid.id),
        "cases": scene_cases(grid_id=grid.id),
    }


# -- the six panels ------------------------------------------------------------------

_PARTY = _SCOPE + """
, orgs AS (SELECT o.* FROM party_orgs o WHERE o.grid_id IN (SELECT id FROM scope))
SELECT json_build_object(
    'organizations', (SELECT count(*) FROM orgs),
    'members', (SELECT coalesce(sum(members), 0) FROM orgs),
    'by_kind', (SELECT coalesce(json_object_agg(kind, n ORDER BY kind), '{}')
                FROM (SELECT kind, count(*) AS n FROM orgs GROUP BY kind) k),
    'branches_by_grid', (
        SELECT coalesce(json_agg(json_build_object('code', g.code, 'name', g.name, 'branches', b.n,
                                                   'members', b.members) ORDER BY g.code), '[]')
        FROM (SELECT grid_id, count(*) AS n, sum(members) AS members FROM orgs
              WHERE kind <> 'party_committee' GROUP BY grid_id) b
        JOIN grids g ON g.id = b.grid_id AND g.level = 3),
    'activities_30d', (SELECT count(*) FROM party_activities a JOIN orgs o ON o.id = a.organization_id
                       WHERE a.starts_at >= %(since)s AND a.starts_at < %(now)s),
    'participants_30d', (SELECT coalesce(sum(a.participants), 0) FROM party_activities a
                         JOIN orgs o ON o.id = a.organization_id
                         WHERE a.starts_at >= %(since)s AND a.starts_at < %(now)s),
    'recent_activities', (
        SELECT coalesce(json_agg(json_build_object('title', r.title, 'starts_at', r.starts_at,
                                                   'participants', r.participants) ORDER BY r.starts_at DESC), '[]')
        FROM (SELECT a.title, a.starts_at, a.participants FROM party_activities a
              JOIN orgs o ON o.id = a.organization_id
              WHERE a.starts_at < %(now)s ORDER BY a.starts_at DESC LIMIT 5) r)
)
"""


def scene_party(*, grid_id: int, now: datetime | None = None) -> dict:
    """Party-building: organizations and members, branches per level-3 grid, activities of the last 30 days."""
    now = now or timezone.now()
    return _fetch_json(_PARTY, {"grid_id": grid_id, "now": now, "since": now - timedelta(days=30)})


# Incidents by category and status, and by the grid one level below (or the grid itself at level 3).
_GOVERNANCE = _vocabulary(_SCOPE + """
, inc AS (
    SELECT i.category, i.status IN {OPEN} AS open, i.grid_id
    FROM incidents i
    WHERE i.grid_id IN (SELECT id FROM scope) AND i.category <> {CARE}
), parts AS (  -- the grids one level below, each with the level-3 grids it holds (itself, or its children)
    SELECT c.code, c.name, d.id AS leaf_id
    FROM grids c JOIN grids d ON d.id = c.id OR d.parent_id = c.id
    WHERE c.parent_id = %(grid_id)s OR (c.id = %(grid_id)s AND c.level = 3)
)
SELECT json_build_object(
    'open', (SELECT count(*) FILTER (WHERE open) FROM inc),
    'closed', (SELECT count(*) FILTER (WHERE NOT open) FROM inc),
    'by_category', (
        SELECT coalesce(json_agg(json_build_object('category', category, 'open', o, 'closed', c)
                                 ORDER BY category), '[]')
        FROM (SELECT category, count(*) FILTER (WHERE open) AS o, count(*) FILTER (WHERE NOT open) AS c
              FROM inc GROUP BY category) k),
    'by_grid', (
        SELECT coalesce(json_agg(json_build_object('code', code, 'name', name, 'open', o, 'closed', c)
                                 ORDER BY code), '[]')
        FROM (SELECT p.code, p.name, count(r.grid_id) FILTER (WHERE r.open) AS o,
                     count(r.grid_id) FILTER (WHERE NOT r.open) AS c
              FROM parts p LEFT JOIN inc r ON r.grid_id = p.leaf_id GROUP BY p.code, p.name) g)
)
""")


def scene_governance(*, grid_id: int) -> dict:
    """Governance: open and closed incidents by category and by the grids one level below (care alerts apart)."""
    return _fetch_json(_GOVERNANCE, {"grid_id": grid_id})


_SAFETY = _vocabulary(_SCOPE + """
, inc AS (
    SELECT i.category, i.reported_at, i.status IN {OPEN} AS open
    FROM incidents i
    WHERE i.grid_id IN (SELECT id FROM scope)
      AND i.category IN {SAFETY}
      AND i.reported_at >= %(week)s AND i.reported_at < %(now)s
    UNION ALL
    SELECT i.category, NULL, true FROM incidents i
    WHERE i.grid_id IN (SELECT id FROM scope)
      AND i.category IN {SAFETY}
      AND i.status IN {OPEN} AND i.reported_at < %(week)s
)
SELECT coalesce(json_object_agg(c.category, json_build_object(
    'today', (SELECT count(*) FROM inc r WHERE r.category = c.category AND r.reported_at >= %(today)s),
    'last_7_days', (SELECT count(*) FROM inc r WHERE r.category = c.category AND r.reported_at IS NOT NULL),
    'open', (SELECT count(*) FROM inc r WHERE r.category = c.category AND r.open)
)), '{}')
FROM unnest(%(categories)s::text[]) AS c(category)
""")


def scene_safety(*, grid_id: int, now: datetime | None = None) -> dict:
    """Safety: falling objects, fire/smoke and illegal parking — today (local day), last 7 days, still open."""
    now = now or timezone.now()
    today = now.astimezone(LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {"grid_id": grid_id, "now": now, "today": today, "week": now - timedelta(days=7),
              "categories": list(SAFETY_CATEGORIES)}
    return _fetch_json(_SAFETY, params)


_ELDER_CARE = _vocabulary(_SCOPE + """
SELECT json_build_object(
    'registered', (SELECT count(*) FROM care_subjects s WHERE s.active AND s.grid_id IN (SELECT id FROM scope)),
    'elders', (SELECT count(*) FROM care_subjects s
               WHERE s.active AND s.kind = 'elder' AND s.grid_id IN (SELECT id FROM scope)),
    'living_alone', (SELECT count(*) FROM care_subjects s
                     WHERE s.active AND s.lives_alone AND s.grid_id IN (SELECT id FROM scope)),
    'open_alerts', (SELECT count(*) FROM incidents i
                    WHERE i.category = {CARE} AND i.status IN {OPEN}
                      AND i.grid_id IN (SELECT id FROM scope)),
    'buildings_with_alerts', (SELECT count(DISTINCT i.building_id) FROM incidents i
                              WHERE i.category = {CARE}
                                AND i.status IN {OPEN}
                                AND i.grid_id IN (SELECT id FROM scope))
)
""")


def scene_elder_care(*, grid_id: int) -> dict:
    """Elder care as counts only: registered, elders, living alone, open alerts and the buildings they are in."""
    return _fetch_json(_ELDER_CARE, {"grid_id": grid_id})


_PARKING = _vocabulary(_SCOPE + """
SELECT json_build_object(
    'spots', count(*),
    'free', count(*) FILTER (WHERE p.occupancy = 'free'),
    'occupied', count(*) FILTER (WHERE p.occupancy = 'occupied'),
    'unknown', count(*) FILTER (WHERE p.occupancy = 'unknown'),
    'occupancy_rate', round(count(*) FILTER (WHERE p.occupancy = 'occupied')::numeric
                            / nullif(count(*) FILTER (WHERE p.occupancy <> 'unknown'), 0), 3),
    'no_parking_zones', (SELECT count(*) FROM no_parking_zones z WHERE z.grid_id IN (SELECT id FROM scope)),
    'illegal_parking_open', (SELECT count(*) FROM incidents i
                             WHERE i.category = {PARKING} AND i.status IN {OPEN}
                               AND i.grid_id IN (SELECT id FROM scope))
)
FROM parking_spots p WHERE p.grid_id IN (SELECT id FROM scope)
""")


def scene_parking(*, grid_id: int) -> dict:
    """Parking: spots by occupancy, the occupied share of known spots, no-parking zones, open illegal parking."""
    return _fetch_json(_PARKING, {"grid_id": grid_id})


_SERVICES = _SCOPE + """
, points AS (SELECT category, subcategory FROM service_points WHERE grid_id IN (SELECT id FROM scope))
SELECT json_build_object(
    'total', (SELECT count(*) FROM points),
    'by_category', (SELECT coalesce(json_object_agg(category, n ORDER BY category), '{}')
                    FROM (SELECT category, count(*) AS n FROM points GROUP BY category) c),
    'by_subcategory', (SELECT coalesce(json_agg(json_build_object('category', category, 'subcategory', subcategory,
                                                                  'count', n) ORDER BY n DESC, subcategory), '[]')
                       FROM (SELECT category, subcategory, count(*) AS n FROM points
                             GROUP BY category, subcategory) s)
)
"""


def scene_services(*, grid_id: int) -> dict:
    """Services: service, commerce and culture points, by category and kind."""
    return _fetch_json(_SERVICES, {"grid_id": grid_id})


# Cases whose incident lies in the grid: open, overdue, escalated (each as gis.cases.selectors defines it),
# closed in the last 30 days.
_CASES = _SCOPE + """
SELECT json_build_object(
    'open', count(*) FILTER (WHERE """ + CASE_OPEN_SQL + """),
    'overdue', count(*) FILTER (WHERE """ + CASE_OVERDUE_SQL + """),
    'escalated', count(*) FILTER (WHERE """ + CASE_ESCALATED_SQL + """),
    'closed_30d', count(*) FILTER (WHERE c.closed_at >= %(since)s)
)
FROM cases c JOIN incidents i ON i.id = c.incident_id
WHERE i.grid_id IN (SELECT id FROM scope)
"""


def scene_cases(*, grid_id: int, now: datetime | None = None) -> dict:
    """Cases in the grid: open, overdue, escalated, closed in the last 30 days."""
    now = now or timezone.now()
    return _fetch_json(_CASES, {"grid_id": grid_id, "since": now - timedelta(days=30)})


# -- map layers the screen draws itself -------------------------------------------------

_LIVE = _vocabulary(_SCOPE + """
SELECT coalesce(json_agg(f ORDER BY reported_at DESC), '[]') FROM (
    SELECT """ + INCIDENT_FEATURE_JSON + """ AS f, i.reported_at
    FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id
    WHERE i.reported_at >= %(since)s AND i.status IN {OPEN}
      AND i.category <> {CARE} AND i.grid_id IN (SELECT id FROM scope)
    ORDER BY i.reported_at DESC LIMIT %(limit)s
) recent
""")


def live_incidents(*, grid_id: int, now: datetime | None = None, limit: int = LIVE_LIMIT) -> list[dict]:
    """Open incidents of the last 24 hours in the grid, newest first, at most ``limit`` (care alerts apart)."""
    now = now or timezone.now()
    return _fetch_json(_LIVE, {"grid_id": grid_id, "since": now - LIVE_WINDOW, "limit": limit})


_CARE_ALERTS = _vocabulary(_SCOPE + """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', b.id, 'geometry', ST_AsGeoJSON(b.geom, 7)::json,
    'properties', json_build_object('building_id', b.id, 'code', b.code, 'name', b.name,
                                    'grid_code', g.code, 'open_alerts', a.n, 'since', a.since)
) ORDER BY b.code), '[]'))
FROM (SELECT i.building_id, count(*) AS n, min(i.reported_at) AS since FROM incidents i
      WHERE i.category = {CARE} AND i.status IN {OPEN}
        AND i.building_id IS NOT NULL AND i.grid_id IN (SELECT id FROM scope)
      GROUP BY i.building_id) a
JOIN buildings b ON b.id = a.building_id LEFT JOIN grids g ON g.id = b.grid_id
""")


def care_alert_buildings(*, grid_id: int) -> dict:
    """Buildings with open elder-inactivity alerts as a GeoJSON FeatureCollection: footprint and count only."""
    return _fetch_json(_CARE_ALERTS, {"grid_id": grid_id})


# A wedge: the camera, WEDGE_STEPS + 1 points on an arc of the field of view, the camera again.
# Metres to degrees on the local tangent plane: at 40 m the error is far below a centimetre.
_CAMERAS = _SCOPE + """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', c.id, 'geometry', ST_AsGeoJSON(c.geom, 7)::json,
    'properties', json_build_object('code', c.code, 'name', c.name, 'purpose', c.purpose, 'status', c.status,
                                    'heading_deg', c.heading_deg, 'fov_deg', c.fov_deg,
                                    'wedge', ST_AsGeoJSON(w.wedge, 7)::json,
                                    'health', CASE WHEN h.camera_id IS NULL THEN NULL ELSE json_build_object(
                                        'state', h.state, 'connected', h.connected, 'fps_in', h.fps_in,
                                        'fps_out', h.fps_out, 'frames_in', h.frames_in,
                                        'frames_dropped', h.frames_dropped, 'gaps', h.gaps,
                                        'gap_seconds', h.gap_seconds, 'events', h.events,
                                        'last_event_at', h.last_event_at, 'last_error', h.last_error,
                                        'last_error_at', h.last_error_at, 'updated_at', h.updated_at) END)
) ORDER BY c.code), '[]'))
FROM (SELECT * FROM cameras WHERE purpose <> 'peephole' AND grid_id IN (SELECT id FROM scope)
      ORDER BY code LIMIT %(limit)s) c
LEFT JOIN camera_health h ON h.camera_id = c.id
CROSS JOIN LATERAL (
    SELECT ST_MakePolygon(ST_MakeLine(
        ARRAY[c.geom]
        || array_agg(ST_SetSRID(ST_MakePoint(
               ST_X(c.geom) + %(length)s * sin(a) / (111320.0 * cos(radians(ST_Y(c.geom)))),
               ST_Y(c.geom) + %(length)s * cos(a) / 110574.0), 4326) ORDER BY k)
        || ARRAY[c.geom])) AS wedge
    FROM generate_series(0, %(steps)s) AS k,
         radians(c.heading_deg - c.fov_deg / 2 + c.fov_deg * k / %(steps)s) AS a
) w
"""


def cameras_with_wedges(*, grid_id: int, length_m: float = WEDGE_LENGTH_M, limit: int = 5000) -> dict:
    """Public-space cameras (no peepholes) with status, a field-of-view wedge polygon and the live pipeline's
    health (``None`` where ``onemap vision run`` never ran the camera), as GeoJSON."""
    return _fetch_json(_CAMERAS, {"grid_id": grid_id, "length": length_m, "steps": WEDGE_STEPS, "limit": limit})


_GRID_LABELS = _SCOPE + """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(json_build_object(
    'type', 'Feature', 'id', g.id, 'geometry', ST_AsGeoJSON(ST_PointOnSurface(g.geom), 7)::json,
    'properties', json_build_object('code', g.code, 'name', g.name, 'level', g.level)
) ORDER BY g.level, g.code), '[]'))
FROM grids g WHERE g.id IN (SELECT id FROM scope) AND g.level IN (2, 3)
"""


def grid_labels(*, grid_id: int) -> dict:
    """Label points (inside each polygon) of the level-2 and level-3 grids in the grid, as GeoJSON."""
    return _fetch_json(_GRID_LABELS, {"grid_id": grid_id})


_INCIDENT_DETAIL = """
SELECT json_build_object(
    'feature', """ + INCIDENT_FEATURE_JSON + """,
    'grid_path', (SELECT coalesce(json_agg(json_build_object('code', a.code, 'name', a.name, 'level', a.level)
                                           ORDER BY a.level), '[]')
                  FROM grids a WHERE g.code LIKE a.code || '%%' AND a.level <= g.level),
    'building', CASE WHEN b.id IS NULL THEN NULL
                     ELSE json_build_object('code', b.code, 'name', b.name, 'floors', b.floors) END,
    'camera', CASE WHEN c.id IS NULL THEN NULL
                   ELSE json_build_object('code', c.code, 'name', c.name, 'purpose', c.purpose) END,
    'evidence', json_build_object('keyframe', i.evidence ->> 'keyframe' IS NOT NULL,
                                  'clip', i.evidence ->> 'clip' IS NOT NULL)
)
FROM incidents i LEFT JOIN grids g ON g.id = i.grid_id LEFT JOIN buildings b ON b.id = i.building_id
LEFT JOIN cameras c ON c.id = i.camera_id AND c.purpose <> 'peephole'
WHERE i.id = %(id)s
"""


def incident_detail(*, incident_id: int) -> dict | None:
    """One incident for the screen's panel: its feature, grid path, building, camera, which evidence exists."""
    return _fetch_json(_INCIDENT_DETAIL, {"id": incident_id}, missing=None)


def incident_evidence_paths(*, incident_id: int) -> dict | None:
    """The incident's stored evidence paths ``{"clip", "keyframe"}`` (values may be None); None if no incident."""
    row = _fetchone("SELECT evidence ->> 'clip', evidence ->> 'keyframe' FROM incidents WHERE id = %(id)s",
                    {"id": incident_id})
    return None if row is None else {"clip": row[0], "keyframe": row[1]}


# -- helpers --------------------------------------------------------------------------


def _fetchone(sql: str, params: dict) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _fetch_json(sql: str, params: dict, *, missing=None):
    row = _fetchone(sql, params)
    if row is None:
        return missing
    value = row[0]
    return json.loads(value) if isinstance(value, str) else value
