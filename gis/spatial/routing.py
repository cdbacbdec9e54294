"""Which grid worker to send to a place: on-duty workers ranked by walking distance over the streets (a read).

One query does it all (docs/dispatch.md): the on-duty workers in scope, the nearest ``knn``
fresh positions by straight line (``ORDER BY geom <-> point LIMIT knn``), each place put on
its nearest open street (``ST_LineLocatePoint``), then one ``pgr_withPointsCost`` from the
incident to every candidate over ``streets.cost`` / ``reverse_cost`` (metres; negative =
closed that way), on the streets within ``search_margin_m`` of the places. Python only ranks
the rows and says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

KNN_CANDIDATES = 20  # fresh positions routed per call: the nearest by straight line
MAX_SNAP_M = 300.0  # a place farther than this from every open street is not routed
SEARCH_MARGIN_M = 1000.0  # routes may run this far outside the box around the incident and the workers
WALKING_SPEED_M_S = 1.2
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class WorkerCandidate:
    """One on-duty worker and how far they are from the incident."""

    worker_id: int
    code: str
    name: str
    role: str
    grid_id: int
    grid_code: str
    grid_name: str
    walk_m: float | None  # incident → street → streets → street → worker; None when not routed
    walk_min: float | None
    straight_m: float | None
    last_seen_at: datetime | None
    position_age: timedelta | None
    position_known: bool  # a position no older than stale_after
    reachable: bool | None  # None when the incident itself could not be routed
    reason: str | None  # why the worker is ranked below the workers with a known, reachable position

    @property
    def why(self) -> str:
        parts = []
        if self.walk_m is not None:
            parts.append(f"{self.walk_m:,.0f} m by street, {self.walk_min:.1f} min on foot")
        if self.straight_m is not None:
            parts.append(f"{self.straight_m:,.0f} m in a straight line")
        if self.position_age is not None:
            parts.append(f"position {_duration(self.position_age)} old")
        if self.reason:
            parts.append(self.reason)
        return "; ".join(parts)

    def as_json(self, rank: int) -> dict:
        return {
            "rank": rank,
            "worker_id": self.worker_id,
            "code": self.code,
            "name": self.name,
            "role": self.role,
            "grid": {"id": self.grid_id, "code": self.grid_code, "name": self.grid_name},
            "walk_m": _round(self.walk_m),
            "walk_min": _round(self.walk_min),
            "straight_m": _round(self.straight_m),
            "last_seen_at": timezone.localtime(self.last_seen_at).isoformat() if self.last_seen_at else None,
            "position_age_s": round(self.position_age.total_seconds()) if self.position_age is not None else None,
            "position_known": self.position_known,
            "reachable": self.reachable,
            "why": self.why,
        }


@dataclass(frozen=True)
class Recommendation:
    """The ranked candidates for one place at one moment, and the rule that chose them."""

    lon: float
    lat: float
    as_of: datetime
    grid_code: str | None  # the level-3 grid holding the place
    rule: str
    scope: tuple[str, ...]  # codes of the grids whose workers were considered
    routed: bool
    note: str | None
    street_m: float | None  # from the place to its nearest open street
    stale_after: timedelta
    walking_speed_m_s: float
    candidates: tuple[WorkerCandidate, ...]

    @property
    def recommended(self) -> WorkerCandidate | None:
        """The first candidate whose position is known and who can be reached (or any known one, unrouted)."""
        first = self.candidates[0] if self.candidates else None
        return first if first is not None and first.position_known and first.reachable is not False else None

    def as_json(self) -> dict:
        """What the cases' audit log stores: who, and why (metres, minutes, position age)."""
        best = self.recommended
        return {
            "incident": {"lon": self.lon, "lat": self.lat, "grid": self.grid_code, "street_m": _round(self.street_m)},
            "as_of": timezone.localtime(self.as_of).isoformat(),
            "rule": self.rule,
            "scope": list(self.scope),
            "routed": self.routed,
            "note": self.note,
            "stale_after_s": round(self.stale_after.total_seconds()),
            "walking_speed_m_s": self.walking_speed_m_s,
            "recommended": best.worker_id if best else None,
            "candidates": [c.as_json(rank) for rank, c in enumerate(self.candidates, start=1)],
        }


def recommend_workers(
    *,
    lon: float,
    lat: float,
    grid_id: int | None = None,
    now: datetime | None = None,
    limit: int = 5,
    stale_after: timedelta = STALE_AFTER,
    walking_speed_m_s: float = WALKING_SPEED_M_S,
    knn: int = KNN_CANDIDATES,
    max_snap_m: float = MAX_SNAP_M,
    search_margin_m: float = SEARCH_MARGIN_M,
) -> Recommendation:
    """On-duty workers for a place, best first: known positions by walking metres, then unreachable, then unknown.

    Scope: with ``grid_id``, the workers of that grid and every grid under it; otherwise the
    level-3 grid holding the place and the level-3 grids touching it (an edge or a corner)
    inside the same level-2 grid; a place in no grid considers every on-duty worker.
    """
    _check_arguments(lon=lon, lat=lat, limit=limit, stale_after=stale_after, speed=walking_speed_m_s, knn=knn,
                     max_snap_m=max_snap_m, search_margin_m=search_margin_m)
    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError(f"now must carry a time zone; got {now.isoformat()}")
    with connection.cursor() as cursor:
        cursor.execute(_RECOMMEND_SQL, {
            "lon": lon, "lat": lat, "grid_id": grid_id, "fresh_since": now - stale_after, "knn": knn,
            "max_snap_m": max_snap_m, "margin_m": search_margin_m,
        })
        rows = cursor.fetchall()
    head = rows[0]
    street_m, home_code, scope, incident_routed = head[:4]
    candidates = [
        _candidate(row[4:], now=now, stale_after=stale_after, speed=walking_speed_m_s, street_m=street_m,
                   routed=incident_routed, max_snap_m=max_snap_m)
        for row in rows if row[4] is not None
    ]
    candidates.sort(key=_rank_key)
    return Recommendation(
        lon=lon, lat=lat, as_of=now, grid_code=home_code, rule=_rule(grid_id, home_code), scope=tuple(scope or ()),
        routed=incident_routed, note=_note(incident_routed, street_m, max_snap_m, candidates),
        street_m=street_m, stale_after=stale_after, walking_speed_m_s=walking_speed_m_s,
        candidates=tuple(candidates[:limit]),
    )


def dispatch_recommendation(*, lon: float, lat: float, grid_id: int | None = None, now: datetime | None = None) -> dict:
    """The one call the cases code makes: the recommendation as the JSON its audit log keeps."""
    return recommend_workers(lon=lon, lat=lat, grid_id=grid_id, now=now).as_json()


# -- the query ---------------------------------------------------------------------------------

# The first half of the query: the place, its grid, the scope, and the candidates (fresh
# positions: the knn nearest by straight line; unknown ones after). The benchmark's straight-line
# baseline is this half alone.
CANDIDATES_SQL = """
WITH RECURSIVE
pt AS (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS geom),
home AS (
    SELECT g.id, g.code, g.parent_id, g.geom FROM grids g, pt
    WHERE g.level = 3 AND ST_Intersects(g.geom, pt.geom)
    ORDER BY ST_Contains(g.geom, pt.geom) DESC, g.code
    LIMIT 1
),
below(id) AS (
    SELECT id FROM grids WHERE id = %(grid_id)s
    UNION ALL
    SELECT g.id FROM grids g JOIN below b ON g.parent_id = b.id
),
scope AS (
    SELECT id FROM below
    UNION
    SELECT n.id FROM home h
    JOIN grids n ON n.level = 3 AND n.parent_id = h.parent_id AND ST_Intersects(n.geom, h.geom)
    WHERE %(grid_id)s::bigint IS NULL
    UNION
    SELECT id FROM grids WHERE %(grid_id)s::bigint IS NULL AND NOT EXISTS (SELECT 1 FROM home)
),
-- the scope's on-duty workers first (by grid, a few dozen), so that the KNN below sorts those
-- rather than walking the position index through every worker of the city
on_duty AS MATERIALIZED (
    SELECT w.id, w.last_position AS geom,
           w.last_position IS NOT NULL AND w.last_seen_at >= %(fresh_since)s AS fresh
    FROM grid_workers w
    WHERE w.on_duty AND w.grid_id = ANY ((SELECT array_agg(id) FROM scope)::bigint[])
),
candidates AS (
    (SELECT id, geom FROM on_duty WHERE fresh ORDER BY geom <-> (SELECT geom FROM pt), id LIMIT %(knn)s)
    UNION ALL
    (SELECT id, geom FROM on_duty WHERE NOT fresh ORDER BY geom <-> (SELECT geom FROM pt) NULLS LAST, id LIMIT %(knn)s)
)
"""

# The second half: each place on its nearest open street, one pgr_withPointsCost from the
# incident to every candidate. pgRouting 3.4 returns nothing for a point at fraction 0 or 1
# (pgRouting issue #2689), so a place that snaps onto a street's end is routed as that vertex;
# every other place is a point (pid = -node). Places at the same spot share one node; a worker
# at the incident's node is 0 m.
_RECOMMEND_SQL = CANDIDATES_SQL + """,
places AS (
    SELECT NULL::bigint AS worker_id, geom FROM pt
    UNION ALL
    SELECT id, geom FROM candidates WHERE geom IS NOT NULL
),
snapped AS (
    SELECT p.worker_id, s.edge_id, s.source, s.target, s.fraction, s.snap_m
    FROM places p
    LEFT JOIN LATERAL (
        SELECT near.*, ST_DistanceSpheroid(p.geom, ST_LineInterpolatePoint(near.geom, near.fraction)) AS snap_m
        FROM (SELECT e.id AS edge_id, e.source, e.target, e.geom, ST_LineLocatePoint(e.geom, p.geom) AS fraction
              FROM streets e WHERE e.cost >= 0 OR e.reverse_cost >= 0
              ORDER BY e.geom <-> p.geom
              LIMIT 8) near
        ORDER BY snap_m, near.edge_id
        LIMIT 1
    ) s ON true
),
located AS (
    SELECT worker_id, snap_m,
           CASE WHEN snap_m IS NULL OR snap_m > %(max_snap_m)s THEN NULL
                WHEN fraction <= 0 THEN source
                WHEN fraction >= 1 THEN target
                ELSE -dense_rank() OVER (ORDER BY edge_id, fraction) END AS node,
           edge_id, fraction
    FROM snapped
),
incident AS (SELECT * FROM located WHERE worker_id IS NULL),
-- the streets pgRouting reads: those within margin_m of the box around the places
edges_sql AS (
    SELECT format('SELECT id, source, target, cost, reverse_cost FROM streets '
                  'WHERE geom && ST_MakeEnvelope(%%s, %%s, %%s, %%s, 4326)',
                  ST_XMin(box) - dx, ST_YMin(box) - dy, ST_XMax(box) + dx, ST_YMax(box) + dy) AS text
    FROM (SELECT ST_Extent(geom) AS box,
                 %(margin_m)s / (111320 * cos(radians(%(lat)s))) AS dx, %(margin_m)s / 110574.0 AS dy
          FROM places) b
),
points_sql AS (
    SELECT CASE WHEN count(*) = 0
                THEN 'SELECT 1::bigint AS pid, 1::bigint AS edge_id, 0.5::float8 AS fraction WHERE false'
                ELSE format('SELECT * FROM (VALUES %%s) AS p(pid, edge_id, fraction)',
                            string_agg(DISTINCT format('(%%s::bigint, %%s::bigint, %%s::float8)',
                                                       -node, edge_id, fraction), ', ')) END AS text
    FROM located WHERE node < 0
),
costs AS (
    SELECT c.end_pid AS node, c.agg_cost
    FROM edges_sql, points_sql, pgr_withPointsCost(
        edges_sql.text, points_sql.text,
        (SELECT node FROM incident),
        (SELECT array_agg(DISTINCT l.node) FROM located l, incident i WHERE l.worker_id IS NOT NULL AND l.node <> i.node),
        true, 'b') c
)
SELECT i.snap_m,
       (SELECT code FROM home),
       (SELECT array_agg(g.code ORDER BY g.code) FROM grids g WHERE g.id IN (SELECT id FROM scope)),
       i.node IS NOT NULL,
       w.id, w.code, w.name, w.role, g.id, g.code, g.name, w.last_position IS NOT NULL, w.last_seen_at,
       ST_DistanceSpheroid(w.last_position, pt.geom),
       l.snap_m,
       CASE WHEN l.node = i.node THEN 0 ELSE k.agg_cost END
FROM pt CROSS JOIN incident i
LEFT JOIN candidates c ON true
LEFT JOIN grid_workers w ON w.id = c.id
LEFT JOIN grids g ON g.id = w.grid_id
LEFT JOIN located l ON l.worker_id = c.id
LEFT JOIN costs k ON k.node = l.node
"""


# -- ranking and reasons -----------------------------------------------------------------------


def _candidate(row, *, now, stale_after, speed, street_m, routed, max_snap_m) -> WorkerCandidate:
    (worker_id, code, name, role, grid_id, grid_code, grid_name, has_position, last_seen_at, straight_m,
     worker_street_m, network_m) = row
    age = max(now - last_seen_at, timedelta(0)) if last_seen_at is not None else None
    known = has_position and age is not None and age <= stale_after
    walk_m = street_m + network_m + worker_street_m if routed and network_m is not None else None
    reason = None
    if not known:
        reason = (f"position unknown: last report {_duration(age)} old, more than {_duration(stale_after)}"
                  if has_position and age is not None else "position unknown: no position reported")
    elif routed and worker_street_m is None:
        reason = "not reachable: no open street near the worker"
    elif routed and worker_street_m > max_snap_m:
        reason = f"not reachable: the worker is {worker_street_m:,.0f} m from the nearest street"
    elif routed and walk_m is None:
        reason = "not reachable: no street route from the incident (not connected, one-way, or beyond the search margin)"
    return WorkerCandidate(
        worker_id=worker_id, code=code, name=name, role=role, grid_id=grid_id, grid_code=grid_code,
        grid_name=grid_name, walk_m=walk_m, walk_min=walk_m / speed / 60 if walk_m is not None else None,
        straight_m=straight_m if has_position else None, last_seen_at=last_seen_at, position_age=age,
        position_known=known, reachable=(walk_m is not None) if routed else None, reason=reason,
    )


def _rank_key(c: WorkerCandidate):
    """Known and reachable first (by walking metres), then known but unreachable, then position unknown."""
    tier = 2 if not c.position_known else 1 if c.reachable is False else 0
    return (tier, _or_inf(c.walk_m), _or_inf(c.straight_m), c.worker_id)


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def _rule(grid_id: int | None, home_code: str | None) -> str:
    if grid_id is not None:
        return "the given grid and every grid under it"
    if home_code is None:
        return "the place is in no grid: every on-duty worker"
    return "the level-3 grid holding the place and the level-3 grids touching it in the same level-2 grid"


def _note(routed: bool, street_m: float | None, max_snap_m: float, candidates: list[WorkerCandidate]) -> str | None:
    if not routed:
        where = "no open street" if street_m is None else f"the nearest open street is {street_m:,.0f} m away"
        return f"not routed ({where}, more than {max_snap_m:,.0f} m): ranked by straight line"
    if not candidates:
        return "no on-duty worker in scope"
    if not candidates[0].position_known or candidates[0].reachable is False:
        return "no on-duty worker with a known position can be reached: call the workers listed"
    return None


def _check_arguments(*, lon, lat, limit, stale_after, speed, knn, max_snap_m, search_margin_m) -> None:
    for name, value, low, high in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not low <= value <= high:
            raise ValueError(f"{name} must be a number from {low} to {high}; got {value!r}")
    if limit < 1 or knn < 1:
        raise ValueError(f"limit and knn must be 1 or more; got {limit} and {knn}")
    if stale_after <= timedelta(0) or speed <= 0 or max_snap_m < 0 or search_margin_m < 0:
        raise ValueError("stale_after and walking_speed_m_s must be positive, max_snap_m and search_margin_m not negative")


def _duration(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
