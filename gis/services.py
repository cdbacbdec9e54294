"""Writes to the spatial domain: keyword-only functions, each one transaction."""

from __future__ import annotations

from datetime import datetime

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from core.vocabulary import CLOSED_STATUSES
from gis.models import Incident
from gis.selectors import grid_for_point


class ServiceError(ValueError):
    """A write was refused; the message says which value and why."""


# integer ranges of the column types, for values that must fit before any SQL runs
_INTEGER_RANGES = {
    "SmallIntegerField": (-32768, 32767),
    "PositiveSmallIntegerField": (0, 32767),
    "IntegerField": (-2**31, 2**31 - 1),
    "PositiveIntegerField": (0, 2**31 - 1),
    "BigIntegerField": (-2**63, 2**63 - 1),
}
# domain ranges narrower than the column's (they match the tables' check constraints)
_RANGES = {("incidents", "floor"): (-5, 200), ("incidents", "severity"): (1, 4)}


def check_values(model, values: dict) -> None:
    """Every value fits its column of ``model``: text length and no NUL, integer range, choices; else ServiceError.

    Run before any SQL, so a value the database would refuse is a clear message rather
    than a database error.
    """
    for name, value in values.items():
        field = model._meta.get_field(name)
        if value is None:
            if not field.null:
                raise ServiceError(f"{name} cannot be empty (null)")
            continue
        kind = field.get_internal_type()
        if isinstance(value, str):
            if "\x00" in value:
                raise ServiceError(f"{name} contains a NUL character (\\u0000), which text cannot hold")
            if field.max_length is not None and len(value) > field.max_length:
                raise ServiceError(f"{name} is {len(value):,} characters long; at most {field.max_length:,} are allowed")
        elif kind in _INTEGER_RANGES:
            low, high = _RANGES.get((model._meta.db_table, name), _INTEGER_RANGES[kind])
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ServiceError(f"{name} must be {low} to {high} (a whole number); got {value!r}")
        if field.choices:
            _check_choice(name, value, field.choices)


@transaction.atomic
def incident_create(
    *,
    lon: float,
    lat: float,
    category: str,
    source: str,
    code: str,
    severity: int = 2,
    title: str = "",
    description: str = "",
    floor: int | None = None,
    reported_at: datetime | None = None,
    evidence: dict | None = None,
    camera=None,
    sensor=None,
    building=None,
) -> Incident:
    """Record an incident at (lon, lat) in EPSG:4326; its grid is found by ``grid_for_point``."""
    check_values(Incident, {"category": category, "source": source, "code": code, "severity": severity,
                            "title": title, "description": description, "floor": floor})
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ServiceError(f"location ({lon}, {lat}) is not a lon/lat in EPSG:4326")
    path = grid_for_point(lon=lon, lat=lat)
    return Incident.objects.create(
        code=code,
        category=category,
        source=source,
        severity=severity,
        title=title,
        description=description,
        floor=floor,
        reported_at=reported_at or timezone.now(),
        evidence=evidence or {},
        camera=camera,
        sensor=sensor,
        building=building,
        grid_id=path.level3.id if path else None,
        geom=Point(lon, lat, srid=4326),
    )


def _check_choice(name: str, value: str, choices) -> None:
    known = [c[0] for c in choices]
    if value not in known:
        raise ServiceError(f"{name} must be one of {', '.join(known)}; got {value!r}")


@transaction.atomic
def incident_update(
    *,
    incident_id: int,
    status: str | None = None,
    notes: str | None = None,
    severity: int | None = None,
    lon: float | None = None,
    lat: float | None = None,
) -> Incident:
    """Change an incident's case fields or move it; a move re-routes it to the grid of its new point."""
    changes = {"status": status, "notes": notes, "severity": severity}
    check_values(Incident, {name: value for name, value in changes.items() if value is not None})
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    if status is not None:
        if status in CLOSED_STATUSES and incident.resolved_at is None:
            incident.resolved_at = timezone.now()
        elif status not in CLOSED_STATUSES:
            incident.resolved_at = None
        incident.status = status
    if notes is not None:
        incident.notes = notes
    if severity is not None:
        incident.severity = severity
    if lon is not None and lat is not None:
        path = grid_for_point(lon=lon, lat=lat)
        incident.geom = Point(lon, lat, srid=4326)
        incident.grid_id = path.level3.id if path else None
    incident.save()
    return incident


@transaction.atomic
def incident_delete(*, incident_id: int) -> None:
    """Remove an incident (administrators correcting mistakes; cases are normally closed, not deleted)."""
    Incident.objects.get(pk=incident_id).delete()


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
