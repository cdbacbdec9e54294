"""Party organisations and their activities."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.db.models import CheckConstraint, F, Q

from gis.spatial.models import SRID, Grid, Synthetic


class PartyOrganization(Synthetic):
    KINDS = [
        ("party_committee", "community party committee (社区党委)"),
        ("grid_branch", "grid party branch (网格党支部)"),
        ("property_branch", "property-company party branch (物业党支部)"),
        ("enterprise_branch", "enterprise party branch"),
    ]

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=30, choices=KINDS)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    members = models.PositiveIntegerField(default=0)
    secretary = models.CharField(max_length=50, blank=True, default="", help_text="Role title, not a person's name")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="party_orgs")
    geom = models.PointField(srid=SRID)

    class Meta:
        db_table = "party_orgs"


class PartyActivity(Synthetic):
    organization = models.ForeignKey(PartyOrganization, on_delete=models.CASCADE, related_name="activities")
    title = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    participants = models.PositiveIntegerField(default=0)
    geom = models.PointField(srid=SRID)

    class Meta:
        db_table = "party_activities"
        constraints = [CheckConstraint(condition=Q(ends_at__gte=F("starts_at")), name="party_activity_ends_after_start")]
