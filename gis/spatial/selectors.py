"""Reads of the spatial core: which grid holds a point, which worker a name means; keyword-only, one query each.

Who to send to a place (walking distance over the streets) is :mod:`gis.spatial.routing`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from gis.spatial.models import GridWorker


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
# lowest code wins, so every point maps to exactly one grid. Both readers below use
# this one clause, over a relation ``p(ord, pt)`` of points.
_LEVEL3_HIT = """
LEFT JOIN LATERAL (
    SELECT g3.id FROM grids g3
    WHERE g3.level = 3 AND ST_Intersects(g3.geom, p.pt)
    ORDER BY ST_Contains(g3.geom, p.pt) DESC, g3.code
    LIMIT 1
) hit ON true
"""

_POINTS = """
FROM (SELECT ord, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt
      FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS q(lon, lat, ord)) p
"""


def grid_for_point(*, lon: float, lat: float) -> GridPath | None:
    """The level-3 grid holding (lon, lat) in EPSG:4326, with its parents; None outside every grid."""
    sql = (
        "SELECT g3.id, g3.code, g3.name, g3.level, g2.id, g2.code, g2.name, g2.level, "
        "g1.id, g1.code, g1.name, g1.level"
        + _POINTS + _LEVEL3_HIT
        + "JOIN grids g3 ON g3.id = hit.id "
        "LEFT JOIN grids g2 ON g2.id = g3.parent_id LEFT JOIN grids g1 ON g1.id = g2.parent_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[lon], [lat]])
        row = cursor.fetchone()
    if row is None:
        return None
    refs = [GridRef(*row[i : i + 4]) if row[i] is not None else None for i in (0, 4, 8)]
    return GridPath(level3=refs[0], level2=refs[1], level1=refs[2])


def grid_ids_for_points(points: list[tuple[float, float]]) -> list[int | None]:
    """The level-3 grid id of every (lon, lat), in one query (same rule as :func:`grid_for_point`)."""
    if not points:
        return []
    sql = "SELECT p.ord, hit.id" + _POINTS + _LEVEL3_HIT + "ORDER BY p.ord"
    with connection.cursor() as cursor:
        cursor.execute(sql, [[p[0] for p in points], [p[1] for p in points]])
        return [row[1] for row in cursor.fetchall()]


def grid_worker_for_key(*, key: str) -> GridWorker | None:
    """The grid worker whose code is ``key``, else the one whose user is named ``key``; None if neither."""
    found = sorted(GridWorker.objects.filter(Q(code=key) | Q(user__username=key)).select_related("grid"),
                   key=lambda worker: worker.code != key)  # a code beats a username
    return found[0] if found else None


def cameras_to_run(*, codes: list[str] | None = None):
    """Cameras the live service reads: a real stream URL, not under maintenance (``codes`` narrows them).

    A URL whose host is under ``.invalid`` (RFC 2606: never resolves) is a placeholder, as the demo's are.
    """
    from gis.spatial.models import Camera

    cameras = Camera.objects.exclude(stream_url="").exclude(status="maintenance")
    if codes:
        cameras = cameras.filter(code__in=codes)
    return [c for c in cameras.select_related("building").order_by("code") if not placeholder_url(c.stream_url)]


def placeholder_url(url: str) -> bool:
    """True for a stream URL at a reserved ``.invalid`` host (a stand-in, never a camera)."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").rstrip(".")
    return host == "invalid" or host.endswith(".invalid")


def camera_health_rows(*, codes: list[str] | None = None) -> list[dict]:
    """Every camera with a real stream URL or a health row, with its health (None where no worker ever wrote)."""
    from gis.spatial.models import Camera

    cameras = Camera.objects.filter(~Q(stream_url="") | Q(health__isnull=False)).select_related("health")
    if codes:
        cameras = cameras.filter(code__in=codes)
    rows = []
    for camera in cameras.order_by("code"):
        if not hasattr(camera, "health") and placeholder_url(camera.stream_url):
            continue
        health = getattr(camera, "health", None)
        rows.append({"code": camera.code, "name": camera.name, "status": camera.status,
                     "stream_url": camera.stream_url, "health": _health_dict(health) if health else None})
    return rows


def _health_dict(health) -> dict:
    out = {name: getattr(health, name) for name in health.REPORTED}
    out["updated_at"] = health.updated_at
    return out


COUNT_BUILDING_M = 100.0  # a courtyard camera's people count for the nearest building this close to it


def camera_building_id(*, camera_id: int) -> int | None:
    """The building a camera's people counts go to: its own, or the nearest within 100 m; None when none is."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT coalesce(c.building_id,
                              (SELECT b.id FROM buildings b
                                WHERE ST_DWithin(b.geom::geography, c.geom::geography, %(metres)s)
                                ORDER BY b.geom::geography <-> c.geom::geography, b.id LIMIT 1))
                 FROM cameras c WHERE c.id = %(camera)s""",
            {"camera": camera_id, "metres": COUNT_BUILDING_M},
        )
        row = cursor.fetchone()
    return row[0] if row else None


def people_counts_rows(*, camera_codes: list[str] | None = None) -> list[dict]:
    """People counted per hour, per camera and building (newest hour first): numbers only, no identity."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.code, b.code, p.hour, p.count FROM people_counts p
                 JOIN cameras c ON c.id = p.camera_id LEFT JOIN buildings b ON b.id = p.building_id
                WHERE %(codes)s::text[] IS NULL OR c.code = ANY(%(codes)s::text[])
                ORDER BY p.hour DESC, c.code""",
            {"codes": camera_codes},
        )
        return [{"camera": cam, "building": building, "hour": hour, "count": count}
                for cam, building, hour, count in cursor.fetchall()]
def parking_places_near(*, lon: float, lat: float, radius_m: float) -> dict[str, list[dict]]:
    """Parking spots and no-parking zones within ``radius_m`` of a point: id, code, exterior ring (lon/lat)."""
    import math

    from django.contrib.gis.geos import Point

    from gis.spatial.models import SRID, NoParkingZone, ParkingSpot

    here = Point(lon, lat, srid=SRID)
    # degrees of longitude are the shorter ones here: the radius in them covers the radius in metres
    degrees = radius_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
    near = {"geom__dwithin": (here, degrees)}
    spots = [{"id": s.id, "code": s.code, "ring": list(s.geom.exterior_ring.coords)}
             for s in ParkingSpot.objects.filter(**near).order_by("code")]
    zones = [{"id": z.id, "code": z.code, "reason": z.reason, "name": z.name, "ring": list(z.geom.exterior_ring.coords)}
             for z in NoParkingZone.objects.filter(**near).order_by("code")]
    return {"spots": spots, "zones": zones}
