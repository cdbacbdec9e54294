"""Incidents, the history of their statuses and the live feed's change log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import CheckConstraint, Q
from django.db.models.functions import Now

from core import vocabulary
from gis.care.models import Sensor
from gis.spatial.models import SRID, Building, Camera, Grid, Synthetic


class Incident(Synthetic):
    CATEGORIES = vocabulary.category_choices()
    SOURCES = vocabulary.source_choices()
    STATUSES = vocabulary.status_choices()

    category = models.CharField(max_length=30, choices=CATEGORIES)
    source = models.CharField(max_length=10, choices=SOURCES)
    severity = models.PositiveSmallIntegerField(default=2, help_text="1 (low) … 4 (critical)")
    status = models.CharField(max_length=20, choices=STATUSES, default="new")
    title = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    notes = models.TextField(blank=True, default="")
    floor = models.SmallIntegerField(null=True, blank=True)
    reported_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    evidence = models.JSONField(default=dict, blank=True, help_text="{clip, keyframe, sha256}")
    camera = models.ForeignKey(Camera, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    sensor = models.ForeignKey(Sensor, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents")
    geom = models.PointField(srid=SRID)
    # who entered it by hand (OGC API, WFS-T): only they may withdraw it, while its case is new (migration 0026)
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", help_text="the signed-in user who entered it; none for "
                                                                "cameras, sensors and residents")

    class Meta:
        db_table = "incidents"
        constraints = [
            CheckConstraint(condition=Q(severity__gte=1, severity__lte=4), name="incidents_severity_range"),
            CheckConstraint(
                condition=Q(source__in=list(vocabulary.SOURCES)), name="incidents_source_known"
            ),
            CheckConstraint(
                condition=Q(status__in=list(vocabulary.STATUS_CODES)),
                name="incidents_status_known",
            ),
            CheckConstraint(condition=Q(floor__gte=-5, floor__lte=200), name="incidents_floor_range"),
        ]
        indexes = [
            models.Index(fields=["reported_at"], name="incidents_reported_idx"),
            models.Index(fields=["status", "category"], name="incidents_status_cat_idx"),
        ]


class IncidentStatusChange(models.Model):
    """One change of an incident's status, written by a trigger on ``incidents`` (migration 0006).

    Only changes are kept: an incident's first status is the ``from_status`` of its
    first change, or its current status when it never changed.
    """

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="status_changes")
    at = models.DateTimeField(db_default=Now())
    from_status = models.CharField(max_length=20)
    to_status = models.CharField(max_length=20)
    actor = models.CharField(max_length=150, blank=True, default="", help_text="Who changed it, when known")

    class Meta:
        db_table = "incident_status_changes"
        indexes = [models.Index(fields=["incident", "at"], name="incident_status_changes_idx")]


class LiveEvent(models.Model):
    """One change the big screen's live feed announces (``/screen/events``); written by triggers.

    ``kind`` is ``incident`` (one row of ``incidents`` changed: ``op`` insert/update/delete),
    ``reset`` (many rows at once, or a truncation: clients reload) or ``notification`` (an
    in-app notification delivered by the outbox: ``notification_id``). Ids only grow and
    are taken under a lock held to commit, so they become visible in order.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_default=Now())
    kind = models.CharField(max_length=20)
    op = models.CharField(max_length=10)
    incident_id = models.BigIntegerField(null=True, blank=True)
    notification_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "live_events"
        indexes = [models.Index(fields=["at"], name="live_events_at_idx")]
