"""Residents' reports: what a resident said, where, with which photos; the case it opened or joined.

A report is kept apart from the incident and the case it feeds: the incident and the case
are the command centre's (they carry no personal data); the report holds what the resident
gave, the phone number only encrypted (``gis.reports.personal``), and a moderation state
that decides whether its words and photos may be shown to anyone but staff.
"""

from __future__ import annotations

from django.contrib.gis.db import models
from django.db.models import CheckConstraint, Q
from django.db.models.functions import Now

from core import vocabulary
from gis.cases.models import Case
from gis.incidents.models import Incident
from gis.spatial.models import SRID, Grid

MODERATION = [("pending", "waiting for a moderator"), ("public", "may be shown"), ("hidden", "hidden by staff")]
KINDS = [("report", "a new report"), ("me_too", "me too (附议): joined a case already open")]
CHANNELS = [("web", "the /report/ page"), ("open311", "Open311 GeoReport v2")]


class Report(models.Model):
    """One resident's report (or their "me too" to a case already open)."""

    code = models.CharField(max_length=16, unique=True,
                            help_text="the tracking code the resident keeps; it is also their key to rate and dispute")
    kind = models.CharField(max_length=10, choices=KINDS, default="report")
    channel = models.CharField(max_length=10, choices=CHANNELS, default="web")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports")
    incident = models.OneToOneField(Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="report",
                                    help_text="the incident this report opened (none for 'me too' or a banned sender)")
    category = models.CharField(max_length=30, choices=vocabulary.category_choices())
    description = models.TextField(max_length=4000, blank=True, default="")
    geom = models.PointField(srid=SRID)
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    photos = models.JSONField(default=list, blank=True, help_text="file names under the report's media folder")
    phone_cipher = models.BinaryField(null=True, blank=True, editable=False, help_text="AES-GCM; never shown")
    phone_digest = models.CharField(max_length=64, blank=True, default="",
                                    help_text="keyed hash of the phone number, for rate limits and bans")
    device_digest = models.CharField(max_length=64, blank=True, default="")
    ip_digest = models.CharField(max_length=64, blank=True, default="", help_text="keyed hash of the sender's address")
    api_key = models.CharField(max_length=64, blank=True, default="", help_text="Open311: the key's name")
    moderation = models.CharField(max_length=10, choices=MODERATION, default="pending")
    banned = models.BooleanField(default=False, help_text="from a banned sender: hidden, never dispatched")
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "reports"
        constraints = [
            CheckConstraint(condition=Q(moderation__in=[m[0] for m in MODERATION]), name="reports_moderation_known"),
            CheckConstraint(condition=Q(kind__in=[k[0] for k in KINDS]), name="reports_kind_known"),
            CheckConstraint(condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                            name="reports_rating_range"),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="reports_created_idx"),
            models.Index(fields=["phone_digest", "created_at"], name="reports_phone_idx"),
            models.Index(fields=["device_digest", "created_at"], name="reports_device_idx"),
            models.Index(fields=["ip_digest", "created_at"], name="reports_ip_idx"),
            models.Index(fields=["moderation", "created_at"], name="reports_moderation_idx"),
        ]


class ReportModeration(models.Model):
    """A moderator's step on a report (publish, hide, redact): seen by moderators only."""

    ACTIONS = [("publish", "publish"), ("hide", "hide"), ("redact", "redact the text"),
               ("remove_photo", "remove a photo")]

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="moderation_steps")
    at = models.DateTimeField(db_default=Now())
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=20, choices=ACTIONS)
    reason = models.TextField(blank=True, default="")
    before = models.TextField(blank=True, default="", help_text="the text as it was, for a redaction")

    class Meta:
        db_table = "report_moderation"


class ReporterBan(models.Model):
    """A device, address or phone whose reports are hidden and never dispatched."""

    KINDS = [("device", "device"), ("ip", "IP address"), ("phone", "phone number")]

    kind = models.CharField(max_length=10, choices=KINDS)
    digest = models.CharField(max_length=64, help_text="keyed hash of the value (the value itself is not kept)")
    reason = models.TextField(blank=True, default="")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(db_default=Now())
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "reporter_bans"
        constraints = [models.UniqueConstraint(fields=["kind", "digest"], name="reporter_bans_one_per_value",
                                               condition=Q(revoked_at__isnull=True))]
