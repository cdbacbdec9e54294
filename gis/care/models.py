"""People under care and the sensors in their homes; the personal fields are kept apart."""

from __future__ import annotations

from django.contrib.gis.db import models
from django.db.models import CheckConstraint, Q, UniqueConstraint
from django.db.models.functions import Now

from gis.spatial.models import SRID, Building, Camera, Grid, Synthetic


class CareSubject(Synthetic):
    """A person under care; only non-identifying fields live here (see :class:`CareSubjectPrivate`)."""

    KINDS = [("elder", "elder"), ("home_monitoring", "home monitoring")]

    kind = models.CharField(max_length=20, choices=KINDS, default="elder")
    age_band = models.CharField(max_length=10, help_text="e.g. 80-84; never the birth date")
    lives_alone = models.BooleanField(default=False)
    monitoring_rule = models.JSONField(default=dict, blank=True, help_text='e.g. {"no_activity_hours": 48}')
    care_level = models.PositiveSmallIntegerField(default=1, help_text="1 (self-reliant) … 4 (bedridden)")
    active = models.BooleanField(default=True)
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="care_subjects")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="care_subjects")
    geom = models.PointField(srid=SRID, help_text="The home building's position, not the flat")
    # the rules' state (issue: elder care): the latest sign of life from any of the person's sensors,
    # kept by ingest in the event's own transaction, so a rule sweep reads one row per person
    last_activity_at = models.DateTimeField(null=True, blank=True,
                                            help_text="latest door opening, motion or sighting (by its timestamp)")

    class Meta:
        db_table = "care_subjects"
        constraints = [
            CheckConstraint(condition=Q(care_level__gte=1, care_level__lte=4), name="care_level_range"),
        ]


class CareSubjectPrivate(models.Model):
    """Sensitive personal information, kept apart and sealed: never published, every read logged.

    ``sealed`` is one AES-GCM blob of the name, ID number, birth date, phone, flat (unit, floor,
    room), emergency contacts and health notes, bound to the subject's id (``gis.care.private``);
    only ``gender`` stays in clear. Write with ``care_private_set``, read with ``care_private_read``.
    """

    subject = models.OneToOneField(CareSubject, on_delete=models.CASCADE, primary_key=True, related_name="private")
    gender = models.CharField(max_length=1, choices=[("F", "female"), ("M", "male")])
    sealed = models.BinaryField(help_text="AES-GCM of the personal fields under ONEMAP_PII_KEY (gis.care.private)")

    class Meta:
        db_table = "care_subject_private"


class Gateway(Synthetic):
    """A home or building gateway the sensors talk through; its heartbeats and MQTT last-will say it is alive."""

    name = models.CharField(max_length=100, blank=True, default="")
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="gateways")
    status = models.CharField(max_length=20, default="online", help_text="online | offline (its last-will arrived)")
    last_seen_at = models.DateTimeField(null=True, blank=True, help_text="its latest heartbeat")
    geom = models.PointField(srid=SRID)

    class Meta:
        db_table = "gateways"


class Sensor(Synthetic):
    KINDS = [("door_magnet", "door magnet"), ("peephole_camera", "peephole camera"), ("motion", "motion")]

    kind = models.CharField(max_length=20, choices=KINDS)
    care_subject = models.ForeignKey(CareSubject, null=True, blank=True, on_delete=models.SET_NULL, related_name="sensors")
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="sensors")
    camera = models.ForeignKey(Camera, null=True, blank=True, on_delete=models.SET_NULL, related_name="sensors")
    status = models.CharField(max_length=20, default="online")
    battery_pct = models.PositiveSmallIntegerField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    gateway = models.ForeignKey(Gateway, null=True, blank=True, on_delete=models.SET_NULL, related_name="sensors")
    last_heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="the device's own latest heartbeat")
    geom = models.PointField(srid=SRID)

    class Meta:
        db_table = "sensors"


class SensorEvent(models.Model):
    """One message from a sensor; ``(sensor, seq)`` is unique so a repeated message is ignored."""

    TYPES = [(t, t) for t in ("door_open", "door_close", "motion", "sighting", "heartbeat", "battery")]

    sensor = models.ForeignKey(Sensor, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    ts = models.DateTimeField()
    type = models.CharField(max_length=20, choices=TYPES)
    payload = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "sensor_events"
        constraints = [
            UniqueConstraint(fields=["sensor", "seq"], name="sensor_events_sensor_seq_unique"),
            CheckConstraint(
                condition=Q(type__in=["door_open", "door_close", "motion", "sighting", "heartbeat", "battery"]),
                name="sensor_events_type_known",
            ),
        ]
        indexes = [
            models.Index(fields=["sensor", "-ts"], name="sensor_events_sensor_ts_idx"),
            # a sensor's latest battery reading, found at once however many door events it has
            models.Index(fields=["sensor", "-ts"], condition=Q(type="battery"), name="sensor_events_battery_idx"),
        ]


class DeviceCredential(models.Model):
    """A sensor's or a gateway's password for the broker and the HTTP ingest; only its digest is kept.

    The digest is Mosquitto's own password-file form (PBKDF2-SHA512, ``$7$``), so the password file
    is written from these rows and the HTTP ingest checks the same password.
    """

    KINDS = [("sensor", "sensor"), ("gateway", "gateway")]

    username = models.CharField(max_length=40, unique=True, help_text="the sensor's or the gateway's code")
    kind = models.CharField(max_length=10, choices=KINDS)
    digest = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    rotated_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "device_credentials"


class SensorReject(models.Model):
    """A device message that was not stored, and why (malformed, unknown sensor, rate-limited: counted)."""

    at = models.DateTimeField(auto_now_add=True, db_default=Now())
    source = models.CharField(max_length=10, help_text="mqtt | http")
    code = models.CharField(max_length=100, blank=True, default="", help_text="the device named by the topic or URL")
    reason = models.CharField(max_length=300)
    excerpt = models.CharField(max_length=300, blank=True, default="", help_text="the message's first characters")
    count = models.PositiveIntegerField(default=1, help_text="messages this row stands for (rate-limited ones add up)")

    class Meta:
        db_table = "sensor_rejects"
        indexes = [models.Index(fields=["-at"], name="sensor_rejects_at_idx")]



# -- the rules' rows (docs/care.md): periods that suspend a rule, each person's deadlines, what was raised ---------


class CarePeriod(models.Model):
    """外出报备 / 住院 (the inactivity rule is suspended) or 居家隔离 (a door opening raises an alert)."""

    KINDS = [("away", "away (外出报备)"), ("hospital", "in hospital (住院)"), ("isolation", "home isolation (居家隔离)")]

    subject = models.ForeignKey(CareSubject, on_delete=models.CASCADE, related_name="periods")
    kind = models.CharField(max_length=20, choices=KINDS)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="open-ended when empty")
    note = models.CharField(max_length=200, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "care_periods"
        constraints = [
            CheckConstraint(condition=Q(kind__in=["away", "hospital", "isolation"]), name="care_periods_kind_known"),
            CheckConstraint(condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                            name="care_periods_end_after_start"),
        ]
        indexes = [models.Index(fields=["subject", "starts_at"], name="care_periods_subject_idx")]


class CareRuleState(models.Model):
    """One person's inactivity deadlines as the last sweep computed them (rows, not timers: a restart loses nothing).

    ``basis_at`` is the start of the current silence (the episode); a warning or alert is raised
    once per basis (``CareAlert``'s unique key). ``suspended`` says why no deadline runs.
    """

    subject = models.OneToOneField(CareSubject, on_delete=models.CASCADE, primary_key=True, related_name="rule_state")
    basis_at = models.DateTimeField(null=True, blank=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    alert_at = models.DateTimeField(null=True, blank=True)
    suspended = models.CharField(max_length=20, blank=True, default="",
                                 help_text="'' | away | hospital | device_fault | network_fault | unmonitored")
    evaluated_at = models.DateTimeField()

    class Meta:
        db_table = "care_rule_states"
        indexes = [models.Index(fields=["warn_at"], name="care_rule_states_warn_idx")]


class CareAlert(models.Model):
    """A warning (soft, 24 h), an alert (48 h, a case) or an isolation breach, raised once per episode.

    Links the person to the incident and its case; never published (the layers show incidents,
    never this table).
    """

    KINDS = [("warning", "warning"), ("alert", "alert"), ("isolation", "isolation breach")]

    subject = models.ForeignKey(CareSubject, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=KINDS)
    basis_at = models.DateTimeField(help_text="the episode: the start of the silence, or the door opening")
    raised_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True, help_text="activity resumed")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # DO_NOTHING: an incident deleted through the OGC API (under a role that may not read this table)
    # must not make Django look here; an alert's incident is never published, so never deleted there
    incident = models.ForeignKey("onemap.Incident", null=True, blank=True, on_delete=models.DO_NOTHING,
                                 related_name="care_alerts")

    class Meta:
        db_table = "care_alerts"
        constraints = [
            UniqueConstraint(fields=["subject", "kind", "basis_at"], name="care_alerts_once_per_episode"),
            CheckConstraint(condition=Q(kind__in=["warning", "alert", "isolation"]), name="care_alerts_kind_known"),
        ]
        indexes = [models.Index(fields=["raised_at"], name="care_alerts_raised_idx")]


class CareFault(models.Model):
    """A maintenance task: a sensor gone silent or low on battery (device), or a gateway gone (network).

    Names the device and its building, never the person. One open fault per sensor or gateway.
    """

    KINDS = [("device", "device fault (设备故障)"), ("network", "network fault (网络故障)")]

    kind = models.CharField(max_length=10, choices=KINDS)
    reason = models.CharField(max_length=30, help_text="heartbeat_lost | battery_low | gateway_offline | gateway_silent")
    sensor = models.ForeignKey(Sensor, null=True, blank=True, on_delete=models.CASCADE, related_name="faults")
    gateway = models.ForeignKey(Gateway, null=True, blank=True, on_delete=models.CASCADE, related_name="faults")
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    opened_at = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "care_faults"
        constraints = [
            UniqueConstraint(fields=["sensor"], condition=Q(kind="device", cleared_at__isnull=True),
                             name="care_faults_one_open_per_sensor"),
            UniqueConstraint(fields=["gateway"], condition=Q(kind="network", cleared_at__isnull=True),
                             name="care_faults_one_open_per_gateway"),
            CheckConstraint(condition=(Q(kind="device", sensor__isnull=False) | Q(kind="network", gateway__isnull=False)),
                            name="care_faults_names_its_device"),
        ]


class CareVisit(models.Model):
    """A grid worker's visit for an alert: where and when they checked in, what they found."""

    OUTCOMES = [("fine", "fine (平安)"), ("emergency", "genuine emergency (紧急情况)"),
                ("false_alarm", "false alarm (误报)"), ("away", "away (外出)"), ("hospitalised", "hospitalised (住院)")]

    case = models.ForeignKey("onemap.Case", on_delete=models.DO_NOTHING, related_name="care_visits")  # as CareAlert
    subject = models.ForeignKey(CareSubject, on_delete=models.CASCADE, related_name="visits")
    worker = models.ForeignKey("onemap.GridWorker", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.CharField(max_length=150)
    checked_in_at = models.DateTimeField(null=True, blank=True, help_text="到场: at the address")
    at = models.DateTimeField(help_text="the outcome recorded")
    position = models.PointField(srid=SRID, null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=OUTCOMES)
    note = models.TextField(blank=True, default="")

    class Meta:
        db_table = "care_visits"
        constraints = [
            CheckConstraint(condition=Q(outcome__in=["fine", "emergency", "false_alarm", "away", "hospitalised"]),
                            name="care_visits_outcome_known"),
        ]
