"""Cases: what the command centre does about an incident, and every step of it in an audit log.

One case per incident. Its clock runs per stage (dispatch, then handling) in working time
for most categories (``gis.cases.limits``); the due, warning and breach moments are rows
here, not timers in a process, so a restart loses nothing and the SLA sweep is one query.
"""

from __future__ import annotations

from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.db.models import CheckConstraint, Q
from django.db.models.functions import Now

from core import vocabulary
from gis.incidents.models import Incident
from gis.spatial.models import SRID, Grid, GridWorker, Synthetic, geometry_valid

TIERS = [(3, "level-3 grid (社区网格)"), (2, "level-2 grid"), (1, "level-1 grid (街道)"), (0, "department (部门)")]


class Case(models.Model):
    STATES = vocabulary.case_state_choices()

    code = models.CharField(max_length=50, unique=True, help_text="CASE- and the incident's code (up to 40)")
    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="case")
    category = models.CharField(max_length=30, choices=vocabulary.category_choices())
    state = models.CharField(max_length=20, choices=STATES, default="reported")
    tier = models.PositiveSmallIntegerField(choices=TIERS, default=3, help_text="who is responsible: 3, 2, 1, 0")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases",
                             help_text="the responsible grid at the case's tier")
    near_grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  help_text="a neighbouring level-3 grid within 30 m of a reported pin: its worker "
                                            "sees the case too")
    department = models.CharField(max_length=100, blank=True, default="")
    assignee = models.ForeignKey(GridWorker, null=True, blank=True, on_delete=models.SET_NULL, related_name="cases")
    # the clock of the current stage (dispatch: from filing; handling: from dispatch)
    stage = models.CharField(max_length=10, blank=True, default="", help_text="dispatch | handle | ''")
    stage_started_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True, help_text="80% of the stage's limit")
    due_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    handle_due_at = models.DateTimeField(null=True, blank=True, help_text="kept through rework")
    handle_warn_at = models.DateTimeField(null=True, blank=True)
    # a dispatched case not signed for by this moment climbs a tier (once)
    ack_due_at = models.DateTimeField(null=True, blank=True)
    ack_breached_at = models.DateTimeField(null=True, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    # a suspended case: the state it will resume to and the working minutes its stage had left
    resume_state = models.CharField(max_length=20, blank=True, default="")
    remaining_minutes = models.FloatField(null=True, blank=True)
    deferral_requested_until = models.DateTimeField(null=True, blank=True)
    deferred = models.BooleanField(default=False)
    rework_count = models.PositiveSmallIntegerField(default=0)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    escalation_count = models.PositiveSmallIntegerField(default=0)
    rating = models.PositiveSmallIntegerField(null=True, blank=True, help_text="1 … 5, by the reporter")
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged",
                                    help_text="a duplicate closed into this case")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_on_time = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "cases"
        constraints = [
            CheckConstraint(condition=Q(state__in=list(vocabulary.CASE_STATE_CODES)), name="cases_state_known"),
            CheckConstraint(condition=Q(tier__gte=0, tier__lte=3), name="cases_tier_range"),
            CheckConstraint(condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                            name="cases_rating_range"),
        ]
        indexes = [
            models.Index(fields=["warn_at"], name="cases_warn_idx", condition=Q(warned_at__isnull=True)),
            models.Index(fields=["due_at"], name="cases_due_idx", condition=Q(breached_at__isnull=True)),
            models.Index(fields=["ack_due_at"], name="cases_ack_due_idx", condition=Q(ack_breached_at__isnull=True)),
            models.Index(fields=["grid", "state"], name="cases_grid_state_idx"),
        ]


class CaseEvent(models.Model):
    """One step of a case: who did what, when, from which state to which, why and where."""

    id = models.BigAutoField(primary_key=True)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    action = models.CharField(max_length=30)
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    actor = models.CharField(max_length=150, help_text="username, or 'system'")
    role = models.CharField(max_length=20)
    reason = models.TextField(blank=True, default="")
    position = models.PointField(srid=SRID, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "case_events"
        indexes = [models.Index(fields=["case", "id"], name="case_events_case_idx"),
                   models.Index(fields=["action", "at"], name="case_events_action_at_idx")]


class Department(Synthetic):
    """A unit beyond the grids (派出所, 市场监管所, 城管执法中队 …): the categories it handles, and where."""

    KINDS = [("police", "police station (派出所)"), ("market", "market supervision (市场监管所)"),
             ("enforcement", "city enforcement squad (执法中队)"), ("street_office", "subdistrict office (街道)"),
             ("other", "other")]

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=KINDS, default="other")
    categories = ArrayField(models.CharField(max_length=30), default=list, blank=True,
                            help_text="incident categories it handles")
    phone = models.CharField(max_length=20, blank=True, default="", help_text="the unit's duty number")
    geom = models.MultiPolygonField(srid=SRID, help_text="its jurisdiction; jurisdictions may overlap grids")

    class Meta:
        db_table = "departments"
        constraints = [geometry_valid("departments")]


class CaseTask(models.Model):
    """One unit's part of a joint case (联合执法): its own deadline; the case closes when every part is done."""

    STATES = [("open", "open"), ("done", "done")]

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="tasks")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="tasks")
    state = models.CharField(max_length=10, choices=STATES, default="open")
    due_at = models.DateTimeField()
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "case_tasks"
        constraints = [
            CheckConstraint(condition=Q(state__in=["open", "done"]), name="case_tasks_state_known"),
            models.UniqueConstraint(fields=["case", "department"], name="case_tasks_one_per_unit"),
        ]
