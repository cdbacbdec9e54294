"""GeoDjango models for every feature type of the community.

Geometry is stored in EPSG:4326; the geometry column type carries the SRID, so
PostGIS itself rejects a wrong SRID or geometry type. Validity, ranges, the grid
hierarchy and unique codes are database constraints too (see the migrations for
the triggers Django cannot express). Every row made by a generator has
``synthetic = true``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.gis.db.models.functions import IsValid
from django.db.models import CheckConstraint, F, Q, UniqueConstraint
from django.db.models.functions import Now

from core import roles, vocabulary

SRID = 4326


def _valid(name: str, field: str = "geom") -> CheckConstraint:
    return CheckConstraint(condition=IsValid(field), name=f"{name}_{field}_valid")


class Synthetic(models.Model):
    """Fields every feature table shares."""

    code = models.CharField(max_length=40, unique=True, help_text="Stable natural key")
    synthetic = models.BooleanField(default=False, help_text="Made by a generator; no real person or place")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    class Meta:
        abstract = True


class Grid(Synthetic):
    """A governance grid: level 1 (subdistrict), 2 (community) or 3 (grid cell)."""

    LEVELS = [(1, "level 1 (subdistrict)"), (2, "level 2 (community)"), (3, "level 3 (grid)")]

    level = models.PositiveSmallIntegerField(choices=LEVELS)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    name = models.CharField(max_length=100)
    responsible_unit = models.CharField(max_length=200, blank=True, default="")
    population = models.PositiveIntegerField(null=True, blank=True)
    geom = models.MultiPolygonField(srid=SRID)

    class Meta:
        db_table = "grids"
        ordering = ["code"]
        constraints = [
            CheckConstraint(condition=Q(level__in=[1, 2, 3]), name="grids_level_range"),
            CheckConstraint(
                condition=(Q(level=1, parent__isnull=True) | Q(level__gt=1, parent__isnull=False)),
                name="grids_parent_iff_not_level1",
            ),
            CheckConstraint(condition=Q(code__regex=r"^[0-9]{6,24}$"), name="grids_code_digits"),
            _valid("grids"),
        ]
        indexes = [models.Index(fields=["level"], name="grids_level_idx")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class StreetNode(Synthetic):
    """A junction of the street network."""

    geom = models.PointField(srid=SRID)

    class Meta:
        db_table = "street_nodes"


class Street(Synthetic):
    """One edge of the routable street network (pgRouting's source/target/cost shape)."""

    KINDS = [("primary", "primary"), ("secondary", "secondary"), ("lane", "lane")]

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=KINDS, default="lane")
    source = models.ForeignKey(StreetNode, on_delete=models.PROTECT, related_name="+", db_column="source")
    target = models.ForeignKey(StreetNode, on_delete=models.PROTECT, related_name="+", db_column="target")
    length_m = models.FloatField()
    cost = models.FloatField(help_text="Traversal cost source→target (metres); negative if closed")
    reverse_cost = models.FloatField(help_text="Traversal cost target→source (metres); negative if one-way")
    geom = models.LineStringField(srid=SRID)

    class Meta:
        db_table = "streets"
        constraints = [
            CheckConstraint(condition=Q(length_m__gt=0), name="streets_length_positive"),
            CheckConstraint(condition=~Q(source=F("target")), name="streets_no_loops"),
            _valid("streets"),
        ]


class Building(Synthetic):
    name = models.CharField(max_length=100, blank=True, default="")
    address = models.CharField(max_length=200)
    floors = models.PositiveSmallIntegerField()
    height_m = models.FloatField()
    units = models.PositiveSmallIntegerField(default=1, help_text="Entrances (单元)")
    households = models.PositiveIntegerField(null=True, blank=True)
    use = models.CharField(max_length=30, default="residential")
    built_year = models.PositiveSmallIntegerField(null=True, blank=True)
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="buildings")
    geom = models.MultiPolygonField(srid=SRID)

    class Meta:
        db_table = "buildings"
        constraints = [
            CheckConstraint(condition=Q(floors__gte=1, floors__lte=200), name="buildings_floors_range"),
            CheckConstraint(condition=Q(height_m__gt=0, height_m__lte=700), name="buildings_height_range"),
            CheckConstraint(condition=Q(units__gte=1), name="buildings_units_positive"),
            _valid("buildings"),
        ]


class Camera(Synthetic):
    PURPOSES = [("facade", "façade"), ("courtyard", "courtyard"), ("parking", "parking"), ("peephole", "peephole")]
    STATUSES = [("online", "online"), ("offline", "offline"), ("maintenance", "maintenance")]

    name = models.CharField(max_length=100)
    purpose = models.CharField(max_length=20, choices=PURPOSES)
    height_m = models.FloatField(help_text="Mounting height above ground")
    heading_deg = models.FloatField(help_text="Viewing direction, degrees clockwise from north")
    fov_deg = models.FloatField(help_text="Horizontal field of view")
    calibration = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=STATUSES, default="online")
    stream_url = models.CharField(max_length=300, blank=True, default="")
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="cameras")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="cameras")
    geom = models.PointField(srid=SRID)

    class Meta:
        db_table = "cameras"
        constraints = [
            CheckConstraint(condition=Q(heading_deg__gte=0, heading_deg__lt=360), name="cameras_heading_range"),
            CheckConstraint(condition=Q(fov_deg__gt=0, fov_deg__lte=180), name="cameras_fov_range"),
            CheckConstraint(condition=Q(height_m__gte=0, height_m__lte=300), name="cameras_height_range"),
            CheckConstraint(
                condition=Q(purpose__in=["facade", "courtyard", "parking", "peephole"]), name="cameras_purpose_known"
            ),
            CheckConstraint(condition=Q(status__in=["online", "offline", "maintenance"]), name="cameras_status_known"),
        ]


class ParkingSpot(Synthetic):
    KINDS = [("public", "public"), ("residential", "residential"), ("disabled", "disabled"), ("ev", "EV charging")]
    OCCUPANCY = [("free", "free"), ("occupied", "occupied"), ("unknown", "unknown")]

    kind = models.CharField(max_length=20, choices=KINDS, default="residential")
    occupancy = models.CharField(max_length=10, choices=OCCUPANCY, default="unknown")
    occupancy_updated_at = models.DateTimeField(null=True, blank=True)
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="parking_spots")
    geom = models.PolygonField(srid=SRID)

    class Meta:
        db_table = "parking_spots"
        constraints = [
            CheckConstraint(condition=Q(occupancy__in=["free", "occupied", "unknown"]), name="parking_occupancy_known"),
            _valid("parking_spots"),
        ]


class NoParkingZone(Synthetic):
    REASONS = [("fire_lane", "fire lane"), ("hydrant", "hydrant"), ("entrance", "entrance"), ("other", "other")]

    name = models.CharField(max_length=100, blank=True, default="")
    reason = models.CharField(max_length=20, choices=REASONS, default="fire_lane")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="no_parking_zones")
    geom = models.PolygonField(srid=SRID)

    class Meta:
        db_table = "no_parking_zones"
        constraints = [_valid("no_parking_zones")]


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

    class Meta:
        db_table = "care_subjects"
        constraints = [
            CheckConstraint(condition=Q(care_level__gte=1, care_level__lte=4), name="care_level_range"),
        ]


class CareSubjectPrivate(models.Model):
    """Sensitive personal information, kept apart: never published, every read logged."""

    subject = models.OneToOneField(CareSubject, on_delete=models.CASCADE, primary_key=True, related_name="private")
    full_name = models.CharField(max_length=50)
    gender = models.CharField(max_length=1, choices=[("F", "female"), ("M", "male")])
    birth_date = models.DateField()
    phone = models.CharField(max_length=20, blank=True, default="")
    unit = models.PositiveSmallIntegerField(help_text="Entrance (单元) of the home building")
    floor = models.SmallIntegerField()
    room = models.CharField(max_length=10)
    contacts = models.JSONField(default=list, blank=True, help_text="[{name, relation, phone}]")
    health_notes = models.TextField(blank=True, default="")

    class Meta:
        db_table = "care_subject_private"


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
        indexes = [models.Index(fields=["sensor", "-ts"], name="sensor_events_sensor_ts_idx")]


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

    ``kind`` is ``incident`` (one row of ``incidents`` changed: ``op`` insert/update/delete)
    or ``reset`` (many rows at once, or a truncation: clients reload). Ids only grow and
    are taken under a lock held to commit, so they become visible in order.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_default=Now())
    kind = models.CharField(max_length=20)
    op = models.CharField(max_length=10)
    incident_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "live_events"
        indexes = [models.Index(fields=["at"], name="live_events_at_idx")]


class GridWorker(Synthetic):
    ROLES = [("grid_leader", "grid leader (网格长)"), ("full_time", "full-time (专职)"), ("part_time", "part-time (兼职)")]

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="grid_worker"
    )
    name = models.CharField(max_length=50)
    role = models.CharField(max_length=20, choices=ROLES, default="full_time")
    grid = models.ForeignKey(Grid, on_delete=models.PROTECT, related_name="workers")
    phone = models.CharField(max_length=20, blank=True, default="")
    on_duty = models.BooleanField(default=False)
    last_position = models.PointField(srid=SRID, null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "grid_workers"


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


class ServicePoint(Synthetic):
    CATEGORIES = [("service", "community service"), ("commerce", "commerce"), ("culture", "culture")]

    name = models.CharField(max_length=100)
    category = models.CharField(max_length=20, choices=CATEGORIES)
    subcategory = models.CharField(max_length=50, blank=True, default="")
    address = models.CharField(max_length=200, blank=True, default="")
    opening_hours = models.CharField(max_length=100, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="", help_text="The business's public number")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="service_points")
    geom = models.PointField(srid=SRID)

    class Meta:
        db_table = "service_points"
        constraints = [
            CheckConstraint(condition=Q(category__in=["service", "commerce", "culture"]), name="service_category_known")
        ]


class DataLoad(models.Model):
    """One run of a generator or importer: what was loaded, when, how."""

    kind = models.CharField(max_length=30, help_text="demo | city | import")
    layer = models.CharField(max_length=50, blank=True, default="")
    parameters = models.JSONField(default=dict)
    counts = models.JSONField(default=dict)
    checksum = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "data_loads"
        ordering = ["-finished_at"]


# -- who may see what: roles, tokens, failed logins, the access log (api/auth.py) ------

ACCESS_ROLES = roles.ROLES


class AccessProfile(models.Model):
    """A user's role; a grid worker is bound to exactly one level-3 grid (a trigger checks the level)."""

    ROLES = [(role, role.replace("_", " ")) for role in ACCESS_ROLES]

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="access_profile"
    )
    role = models.CharField(max_length=20, choices=ROLES)
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.PROTECT, related_name="access_profiles")
    department = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())

    class Meta:
        db_table = "access_profiles"
        constraints = [
            CheckConstraint(condition=Q(role__in=ACCESS_ROLES), name="access_profiles_role_known"),
            CheckConstraint(
                condition=(Q(role=roles.GRID_WORKER, grid__isnull=False)
                           | (~Q(role=roles.GRID_WORKER) & Q(grid__isnull=True))),
                name="access_profiles_grid_iff_grid_worker",
            ),
        ]


class AccessToken(models.Model):
    """A personal access token; only the SHA-256 digest of the secret is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. qgis-laptop")
    digest = models.CharField(max_length=64, help_text="hex SHA-256 of the token")
    hint = models.CharField(max_length=12, help_text="The token's first characters, to tell tokens apart")
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Updated at most once a minute")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "access_tokens"
        constraints = [
            # a constraint, not unique=True: no second (LIKE) index on a column only ever matched exactly
            UniqueConstraint(fields=["digest"], name="access_tokens_digest_unique"),
            CheckConstraint(condition=Q(digest__regex=r"^[0-9a-f]{64}$"), name="access_tokens_digest_hex"),
        ]


class LoginFailure(models.Model):
    """One rejected credential, kept for the rate limit shared by every server process."""

    at = models.DateTimeField(db_default=Now())
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    username = models.CharField(max_length=150, blank=True, default="", help_text="Lower-cased; empty for Bearer")

    class Meta:
        db_table = "login_failures"
        indexes = [
            models.Index(fields=["remote_addr", "at"], name="login_failures_addr_at_idx"),
            models.Index(fields=["username", "at"], name="login_failures_user_at_idx"),
            models.Index(fields=["at"], name="login_failures_at_idx"),
        ]


class AccessLogEntry(models.Model):
    """One read of personal data; the table is append-only (triggers refuse UPDATE, DELETE, TRUNCATE).

    A read writes a row per record it returned and, for a query, one row with no
    ``record_id`` that keeps what was asked (``query``) and how many records matched
    (``matched``): a count is personal data too (a filter on a name with ``offset`` past
    the end returns no record, but its ``numberMatched`` says whether the name is there).
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(db_default=Now())
    # plain columns, not keys: the log must outlive the users it names
    user_id = models.BigIntegerField(null=True, blank=True)
    username = models.TextField(null=True, blank=True)
    role = models.TextField()
    route = models.TextField(help_text="e.g. /ogc/collections/care_subjects/items")
    collection = models.TextField()
    record_id = models.TextField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    query = models.TextField(null=True, blank=True, help_text="the query's parameters (query rows only)")
    matched = models.BigIntegerField(null=True, blank=True, help_text="records the query matched (query rows only)")

    class Meta:
        db_table = "access_log"
        indexes = [
            models.Index(fields=["at"], name="access_log_at_idx"),
            models.Index(fields=["collection", "record_id"], name="access_log_record_idx"),
        ]
