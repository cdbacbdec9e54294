"""Open311 keys and what an Open311 request carried beyond the report itself."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.db.models import CheckConstraint, Q, UniqueConstraint
from django.db.models.functions import Now

from gis.reports.models import Report


class Open311Key(models.Model):
    """An app's Open311 api_key; only its SHA-256 digest is stored, the name goes on every report it sends."""

    name = models.CharField(max_length=64, help_text="who holds the key, e.g. the district's 12345 app")
    digest = models.CharField(max_length=64, help_text="hex SHA-256 of the key")
    hint = models.CharField(max_length=12, help_text="the key's first characters, to tell keys apart")
    created_at = models.DateTimeField(db_default=Now())
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "open311_keys"
        constraints = [
            UniqueConstraint(fields=["digest"], name="open311_keys_digest_unique"),
            CheckConstraint(condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="open311_keys_digest_hex"),
            # a name stays with its reports (and their rate limit) after its key is revoked: never reused
            UniqueConstraint(fields=["name"], name="open311_keys_name_unique"),
        ]


class Open311Request(models.Model):
    """What an Open311 POST gave beyond the report: its key, its answers to the service's questions, a media_url.

    The media_url is kept as given and never fetched by the server (no requests to addresses
    a client chose); it is for staff, not shown publicly.
    """

    report = models.OneToOneField(Report, primary_key=True, on_delete=models.CASCADE, related_name="open311")
    key = models.ForeignKey(Open311Key, on_delete=models.PROTECT, related_name="requests")
    attributes = models.JSONField(default=dict, blank=True, help_text="attribute code -> answer")
    media_url = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        db_table = "open311_requests"
