"""Writes to incidents: keyword-only functions, each one transaction; a located incident gets its grid."""

from __future__ import annotations

from datetime import datetime

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from core.vocabulary import CLOSED_STATUSES
from gis.incidents.models import Incident
from gis.services import ServiceError, check_values
from gis.spatial.selectors import grid_for_point


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
    reported_by_id: int | None = None,
) -> Incident:
    """Record an incident at (lon, lat) in EPSG:4326; its grid is found by ``grid_for_point``.

    ``reported_by_id``: the signed-in user who entered it by hand, the one who may withdraw it.
    """
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
        reported_by_id=reported_by_id,
    )


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
def incident_evidence_attach(*, incident_id: int, evidence: dict) -> Incident:
    """Add evidence that was sealed after the incident was written (a live camera's clip after its post-roll)."""
    incident = Incident.objects.select_for_update().get(pk=incident_id)
    incident.evidence = {**(incident.evidence or {}), **evidence}
    incident.save(update_fields=["evidence"])
    return incident


@transaction.atomic
def incident_delete(*, incident_id: int) -> None:
    """Remove an incident (administrators correcting mistakes; cases are normally closed, not deleted)."""
    Incident.objects.get(pk=incident_id).delete()


class WithdrawRefused(ServiceError):
    """A withdrawal the database refused (HTTP 403), with why; nothing changed."""


_WITHDRAW_RULE = ("Only the person who reported an incident may withdraw it, inside their grid and while its case "
                  "is still new; ask the command centre to delete it")
_SOURCES = {"camera": "a camera", "sensor": "a sensor", "resident": "a resident's report"}


def incident_withdraw(*, incident_id: int) -> None:
    """Withdraw an incident its reporter entered by mistake: it goes with its case, as with an administrator's delete.

    Call it under the caller's scope (``layers.access.scoped_django``): the database decides
    (``onemap_incident_withdraw``, migration 0026) whether this caller reported it, in their
    grid, and whether its case is still new, and removes it only then; otherwise
    ``WithdrawRefused`` says why (``Incident.DoesNotExist`` when it is not there).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT onemap_incident_withdraw(%s)", [incident_id])
        refusal = cursor.fetchone()[0]
    if refusal is None:
        return
    if refusal == "missing":
        raise Incident.DoesNotExist(f"there is no incident {incident_id}")
    raise WithdrawRefused(f"you may not withdraw this incident: {withdraw_refusal_text(refusal)}. {_WITHDRAW_RULE}")


def withdraw_refusal_text(refusal: str) -> str:
    """Why not, in words, from the database's answer (``outside``, ``source:camera``, ``reporter``, ``case:…``)."""
    kind, _, detail = refusal.partition(":")
    if kind == "outside":
        return "it lies outside your grid"
    if kind == "source":
        return f"it came from {_SOURCES.get(detail, detail)}, not from you"
    if kind == "case":
        if detail == "reported":  # still reported, but escalated, joined or merged into: worked on
            return "its case has already been worked on"
        return f"its case has moved on (it is {detail})"
    return "someone else reported it"


# the advisory lock every writer of live_events takes to commit (migration 0006's triggers take the same),
# so ids become visible in order and "everything after N" stays a complete replay cursor
LIVE_LOCK = 7_240_501


def live_event_add(*, kind: str, notification_id: int | None = None) -> None:
    """One event on the big screen's live feed, in the caller's transaction; announced when it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise ServiceError("live_event_add belongs inside the transaction of the change it announces")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LIVE_LOCK])
        cursor.execute("INSERT INTO live_events (kind, op, notification_id) VALUES (%s, 'insert', %s)",
                       [kind, notification_id])
        cursor.execute("SELECT pg_notify('onemap_live', '')")
