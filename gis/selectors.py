"""Reads of the spatial domain: plain keyword-only functions, one query each."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class GridRef:
    id: int
    code: str
    name: str
    level: int


@dataclass(frozen=True)
class GridPath:
    """A level-3 grid and the grids above it."""

    level3: GridRef
    level2: GridRef | None
    level1: GridRef | None

    def chain(self) -> list[GridRef]:
        return [g for g in (self.level1, self.level2, self.level3) if g is not None]


# A point on a shared edge touches two grids: interior beats boundary, then the
# lowest code wins, so every point maps to exactly one grid.
_GRID_FOR_POINT_SQL = """
SELECT g3.id, g3.code, g3.name, g3.level,
       g2.id, g2.code, g2.name, g2.level,
       g1.id, g1.code, g1.name, g1.level
FROM grids g3
LEFT JOIN grids g2 ON g2.id = g3.parent_id
LEFT JOIN grids g1 ON g1.id = g2.parent_id
WHERE g3.level = 3 AND ST_Intersects(g3.geom, p.pt)
ORDER BY ST_Contains(g3.geom, p.pt) DESC, g3.code
LIMIT 1
"""


def grid_for_point(*, lon: float, lat: float) -> GridPath | None:
    """The level-3 grid holding (lon, lat) in EPSG:4326, with its parents; None outside every grid."""
    sql = "WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS pt) " + _GRID_FOR_POINT_SQL.replace(
        "FROM grids g3", "FROM p, grids g3"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [lon, lat])
        row = cursor.fetchone()
    if row is None:
        return None
    refs = [GridRef(*row[i : i + 4]) if row[i] is not None else None for i in (0, 4, 8)]
    return GridPath(level3=refs[0], level2=refs[1], level1=refs[2])


def grid_ids_for_points(points: list[tuple[float, float]]) -> list[int | None]:
    """The level-3 grid id of every (lon, lat), in one query (same tie rule as :func:`grid_for_point`)."""
    if not points:
        return []
    sql = """
    SELECT p.ord, g.id
    FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS p(lon, lat, ord)
    LEFT JOIN LATERAL (
        SELECT g3.id FROM grids g3
        WHERE g3.level = 3 AND ST_Intersects(g3.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
        ORDER BY ST_Contains(g3.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)) DESC, g3.code
        LIMIT 1
    ) g ON true
    ORDER BY p.ord
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [[p[0] for p in points], [p[1] for p in points]])
        return [row[1] for row in cursor.fetchall()]
