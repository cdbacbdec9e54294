"""Grid topology: every child inside its parent, siblings without overlaps or gaps.

Checked in PostGIS, in metres (EPSG:4547), so a check runs the same for the demo
generator, an import (inside its transaction, before commit) and ``onemap check-grids``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections

METRIC_SRID = 4547
# areas below this (m²) are floating-point noise of the overlay, not a real sliver
AREA_EPSILON_M2 = 0.01


@dataclass(frozen=True)
class TopologyProblem:
    kind: str  # outside_parent | overlap | gap
    grid: str  # code of the grid at fault (for a gap: the parent)
    other: str | None
    area_m2: float
    message: str


def grid_tiling_problems(*, tolerance_m: float = 0.5, using: str = "default") -> list[TopologyProblem]:
    """Every tiling problem among stored grids larger than ``tolerance_m`` (metres)."""
    if tolerance_m < 0:
        raise ValueError("tolerance_m must be ≥ 0")
    problems: list[TopologyProblem] = []
    with connections[using].cursor() as cursor:
        for kind, sql in (("outside_parent", _OUTSIDE_SQL), ("overlap", _OVERLAP_SQL), ("gap", _GAP_SQL)):
            cursor.execute(sql, {"srid": METRIC_SRID, "tol": tolerance_m, "eps": AREA_EPSILON_M2})
            for grid, other, area, x, y in cursor.fetchall():
                problems.append(TopologyProblem(kind, grid, other, area, _message(kind, grid, other, area, x, y, tolerance_m)))
    return problems


def _message(kind, grid, other, area, x, y, tol) -> str:
    where = f"near ({x:.6f}, {y:.6f})"
    if kind == "outside_parent":
        return f"grid {grid}: {area:.2f} m² lies outside its parent {other} (beyond {tol} m) {where}"
    if kind == "overlap":
        return f"grid {grid}: overlaps sibling {other} by {area:.2f} m² (beyond {tol} m) {where}"
    return f"grid {grid}: its children leave a gap of {area:.2f} m² (beyond {tol} m) {where}"



_OUTSIDE_SQL = """
WITH d AS (
    SELECT c.code AS grid, p.code AS other,
           ST_Difference(ST_Transform(c.geom, %(srid)s),
                         ST_Buffer(ST_Transform(p.geom, %(srid)s), %(tol)s)) AS g
    FROM grids c JOIN grids p ON p.id = c.parent_id
    WHERE NOT ST_CoveredBy(c.geom, p.geom)
)
SELECT grid, other, ST_Area(g), ST_X(ST_Transform(ST_PointOnSurface(g), 4326)),
       ST_Y(ST_Transform(ST_PointOnSurface(g), 4326))
FROM d WHERE NOT ST_IsEmpty(g) AND ST_Area(g) > %(eps)s
ORDER BY grid
"""

_OVERLAP_SQL = """
WITH d AS (
    SELECT a.code AS grid, b.code AS other,
           ST_Intersection(ST_Buffer(ST_Transform(a.geom, %(srid)s), -%(tol)s),
                           ST_Transform(b.geom, %(srid)s)) AS g
    FROM grids a JOIN grids b
      ON b.parent_id IS NOT DISTINCT FROM a.parent_id AND b.level = a.level AND a.id < b.id
     AND ST_Intersects(a.geom, b.geom)
)
SELECT grid, other, ST_Area(g), ST_X(ST_Transform(ST_PointOnSurface(g), 4326)),
       ST_Y(ST_Transform(ST_PointOnSurface(g), 4326))
FROM d WHERE NOT ST_IsEmpty(g) AND ST_Area(g) > %(eps)s
ORDER BY grid, other
"""

_GAP_SQL = """
WITH u AS (
    SELECT p.id, p.code, ST_Transform(p.geom, %(srid)s) AS pg,
           ST_Union(ST_Transform(c.geom, %(srid)s)) AS cu
    FROM grids p JOIN grids c ON c.parent_id = p.id
    GROUP BY p.id, p.code, p.geom
), d AS (
    SELECT code, (ST_Dump(ST_Difference(pg, ST_Buffer(cu, %(tol)s)))).geom AS g FROM u
)
SELECT code, NULL, ST_Area(g), ST_X(ST_Transform(ST_PointOnSurface(g), 4326)),
       ST_Y(ST_Transform(ST_PointOnSurface(g), 4326))
FROM d WHERE ST_Area(g) > %(eps)s
ORDER BY code
"""
