"""grid_for_point: every point in the subdistrict maps to exactly one level-3 grid, others to none."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from shapely import wkb
from shapely.geometry import Point

from gis import models as m
from gis.spatial.selectors import grid_for_point, grid_ids_for_points


@pytest.fixture(scope="module")
def level1(demo_db):
    grid = m.Grid.objects.get(level=1)
    return wkb.loads(bytes(grid.geom.wkb))


def _random_points(polygon, n, *, inside: bool, seed: int):
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = polygon.bounds
    pad = 0.01 if not inside else 0.0
    points = []
    while len(points) < n:
        x = rng.uniform(minx - pad, maxx + pad)
        y = rng.uniform(miny - pad, maxy + pad)
        if polygon.contains(Point(x, y)) == inside and (inside or polygon.distance(Point(x, y)) > 1e-6):
            points.append((x, y))
    return points


def test_every_point_inside_maps_to_exactly_one_level3_grid(level1):
    points = _random_points(level1, 1000, inside=True, seed=1)
    ids = grid_ids_for_points(points)
    assert None not in ids
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY p(x, y, k)
               JOIN grids g ON g.level = 3 AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(x, y), 4326))""",
            [[p[0] for p in points], [p[1] for p in points]],
        )
        assert cursor.fetchone()[0] == len(points)  # no random point lies in two grids
    grids = {g.id: g for g in m.Grid.objects.filter(level=3).select_related("parent__parent")}
    for (lon, lat), grid_id in list(zip(points, ids))[:100]:
        path = grid_for_point(lon=lon, lat=lat)
        assert path.level3.id == grid_id
        assert path.level2.id == grids[grid_id].parent_id
        assert path.level1.id == grids[grid_id].parent.parent_id
        assert [g.level for g in path.chain()] == [1, 2, 3]


def test_points_outside_map_to_none(level1):
    points = _random_points(level1, 300, inside=False, seed=2)
    assert grid_ids_for_points(points) == [None] * len(points)
    assert grid_for_point(lon=points[0][0], lat=points[0][1]) is None
    assert grid_for_point(lon=0.0, lat=0.0) is None


def test_a_point_on_a_shared_edge_gets_one_grid_deterministically(demo_db):
    a, b = m.Grid.objects.filter(level=3).order_by("code")[:2]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_LineInterpolatePoint("
            "(ST_Dump(ST_LineMerge(ST_Intersection(%s::geometry, %s::geometry)))).geom, 0.5) p) x",
            [a.geom.ewkt, b.geom.ewkt],
        )
        lon, lat = cursor.fetchone()
    first = grid_for_point(lon=lon, lat=lat)
    assert first is not None
    assert all(grid_for_point(lon=lon, lat=lat) == first for _ in range(3))


def test_routing_uses_the_spatial_index(demo_db):
    from django.db import transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM grids WHERE level = 3 AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(113.66, 34.757), 4326))"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Cond: (geom && " in plan, plan
