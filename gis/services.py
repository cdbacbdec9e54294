"""Writes to the spatial domain: keyword-only functions, each one transaction."""

from __future__ import annotations

from datetime import datetime

from django.contrib.gis.geos import Point
from django.db import transaction
from django.utils import timezone

from gis.models import Incident
from gis.selectors import grid_for_point


class ServiceError(ValueError):
    """A write was refused; the message says which value and why."""


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
    _check_choice("category", category, Incident.CATEGORIES)
    _check_choice("source", source, Incident.SOURCES)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ServiceError(f"location ({lon}, {lat}) is not a lon/lat in EPSG:4326")
    if not 1 <= severity <= 4:
        raise ServiceError(f"severity must be 1 (low) to 4 (critical), got {severity}")
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
