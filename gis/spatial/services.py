"""Writes to the spatial core: features, grid workers' positions; keyword-only functions, each one transaction."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from gis.services import ServiceError, check_values
from gis.spatial.models import SRID, GridWorker
from gis.spatial.selectors import grid_for_point


@transaction.atomic
def area_feature_save(*, model, values: dict, geom=None, feature_id: int | None = None):
    """Create or update a parking spot or no-parking zone; its grid follows its geometry."""
    check_values(model, values)
    feature = model() if feature_id is None else model.objects.select_for_update().get(pk=feature_id)
    for name, value in values.items():
        setattr(feature, name, value)
    if geom is not None:
        inside = geom.point_on_surface
        path = grid_for_point(lon=inside.x, lat=inside.y)
        feature.geom = geom
        feature.grid_id = path.level3.id if path else None
    if feature_id is None and not feature.code:
        feature.code = f"{model._meta.db_table.upper()}-{timezone.now():%Y%m%d%H%M%S}-{_suffix()}"
    feature.save()
    return feature


def _suffix() -> str:
    import secrets

    return secrets.token_hex(3)


@transaction.atomic
def area_feature_delete(*, model, feature_id: int) -> None:
    """Remove a parking spot or no-parking zone."""
    model.objects.get(pk=feature_id).delete()


# a phone's clock may run a little ahead of the server's; a report further ahead is a mistake
_CLOCK_SKEW = timedelta(minutes=2)


@transaction.atomic
def worker_position_set(*, worker_id: int, lon: float, lat: float, at: datetime | None = None):
    """Record where a grid worker is (EPSG:4326) and when; a report older than the one kept is refused."""
    _check_lonlat(lon, lat)
    now = timezone.now()
    at = at or now
    if timezone.is_naive(at):
        raise ServiceError(f"the time {at.isoformat()} has no time zone; give one, e.g. +08:00")
    if at > now + _CLOCK_SKEW:
        raise ServiceError(f"the time {at.isoformat()} is in the future")
    worker = GridWorker.objects.select_for_update().filter(pk=worker_id).first()
    if worker is None:
        raise ServiceError(f"no grid worker with id {worker_id}")
    if worker.last_seen_at is not None and at < worker.last_seen_at:
        raise ServiceError(
            f"worker {worker.code} already has a newer position (from {worker.last_seen_at.isoformat()}); "
            f"an older report ({at.isoformat()}) does not replace it"
        )
    worker.last_position = Point(lon, lat, srid=SRID)
    worker.last_seen_at = at
    worker.save(update_fields=["last_position", "last_seen_at", "updated_at"])
    return worker


class WorkerUnavailable(ServiceError):
    """The user has no grid worker, or the worker is off duty: the position is not taken (HTTP 409)."""


def worker_position_share(*, user_id: int, lon: float, lat: float, at: datetime | None = None):
    """A phone shares its worker's position: only for a worker bound to the user and on duty."""
    worker = GridWorker.objects.filter(user_id=user_id).first()
    if worker is None:
        raise WorkerUnavailable("your account is not bound to a grid worker; an administrator binds it "
                           "(onemap user bind USERNAME WORKER_CODE)")
    if not worker.on_duty:
        raise WorkerUnavailable(f"worker {worker.code} is off duty; positions are shared only on duty")
    return worker_position_set(worker_id=worker.id, lon=lon, lat=lat, at=at)


def _check_lonlat(lon, lat) -> None:
    for name, value, low, high in (("longitude", lon, -180, 180), ("latitude", lat, -90, 90)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ServiceError(f"{name} must be a number; got {value!r}")
        if not low <= value <= high:
            raise ServiceError(f"{name} must be from {low} to {high}; got {value}")


def camera_health_write(*, camera_id: int, values: dict) -> None:
    """Upsert a camera's live-pipeline health (one row per camera); unknown fields are refused."""
    from gis.spatial.models import CameraHealth

    unknown = set(values) - set(CameraHealth.REPORTED)
    if unknown:
        raise ValueError(f"unknown camera health field(s): {', '.join(sorted(unknown))}")
    CameraHealth.objects.update_or_create(camera_id=camera_id,
                                          defaults={**values, "updated_at": timezone.now()})


# one pass: counted in its hour unless that hour already counted a pass at or after it (a re-run of the
# same video counts nothing twice; a restarted worker goes on adding)
_PEOPLE_PASS = """
INSERT INTO people_counts (camera_id, building_id, hour, count, last_pass_at, updated_at)
VALUES (%(camera)s, %(building)s, date_trunc('hour', %(ts)s::timestamptz AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
        1, %(ts)s, now())
ON CONFLICT (camera_id, hour) DO UPDATE
   SET count = people_counts.count + 1, last_pass_at = excluded.last_pass_at, updated_at = now(),
       building_id = excluded.building_id
 WHERE people_counts.last_pass_at < excluded.last_pass_at
"""


@transaction.atomic
def people_passes_count(*, camera_id: int, building_id: int | None, passes: list[datetime]) -> int:
    """Add people passing a camera to its hourly counts (``people_counts``); returns how many were counted."""
    from django.db import connection

    if any(ts.tzinfo is None for ts in passes):
        raise ServiceError("a pass's time needs a time zone")
    counted = 0
    with connection.cursor() as cursor:
        for ts in sorted(passes):
            cursor.execute(_PEOPLE_PASS, {"camera": camera_id, "building": building_id, "ts": ts})
            counted += cursor.rowcount
    return counted
@transaction.atomic
def parking_occupancy_set(*, spot_id: int, occupancy: str, at: datetime) -> bool:
    """Record a spot's occupancy as a camera saw it at ``at``; a report older than the one kept changes nothing.

    Returns whether the row changed. Each call is its own small transaction, so a camera's worker
    never holds a lock on the layer longer than one row's update.
    """
    from django.db.models import Q

    from gis.spatial.models import ParkingSpot

    known = {value for value, _ in ParkingSpot.OCCUPANCY}
    if occupancy not in known:
        raise ServiceError(f"occupancy must be one of {', '.join(sorted(known))}; got {occupancy!r}")
    if timezone.is_naive(at):
        raise ServiceError(f"the time {at.isoformat()} has no time zone; give one")
    newer = Q(occupancy_updated_at__isnull=True) | Q(occupancy_updated_at__lte=at)
    return bool(ParkingSpot.objects.filter(newer, pk=spot_id).update(occupancy=occupancy, occupancy_updated_at=at))
