"""The spatial core: grids, the street network, buildings, cameras, parking, grid workers, service points.

Geometry is stored in EPSG:4326; the geometry column type carries the SRID, so
PostGIS itself rejects a wrong SRID or geometry type. Validity, ranges, the grid
hierarchy and unique codes are database constraints too (see the migrations for
the triggers Django cannot express). Every row made by a generator has
``synthetic = true``. The other domains' models build on :class:`Synthetic`,
:data:`SRID` and the features here.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.gis.db.models.functions import IsValid
from django.db.models import CheckConstraint, F, Q, UniqueConstraint
from django.db.models.functions import Now

SRID = 4326


def geometry_valid(name: str, field: str = "geom") -> CheckConstraint:
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
            geometry_valid("grids"),
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
            geometry_valid("streets"),
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
            geometry_valid("buildings"),
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


class CameraHealth(models.Model):
    """How a camera's live pipeline (``onemap vision run``) is doing, written by its worker every few seconds."""

    STATES = [("starting", "starting"), ("connected", "connected"), ("reconnecting", "reconnecting"),
              ("stopped", "stopped"), ("failed", "failed")]
    # what a worker reports (everything but the camera and the time of writing)
    REPORTED = ("state", "connected", "fps_in", "fps_out", "frames_in", "frames_out", "frames_dropped", "reconnects",
                "gaps", "gap_seconds", "last_gap_seconds", "events", "last_event_at", "last_event_latency_s",
                "last_error", "last_error_at", "worker_pid", "started_at")

    camera = models.OneToOneField(Camera, primary_key=True, on_delete=models.CASCADE, related_name="health")
    state = models.CharField(max_length=20, choices=STATES, default="starting")
    connected = models.BooleanField(default=False)
    fps_in = models.FloatField(default=0.0, help_text="Frames per second received from the stream (last interval)")
    fps_out = models.FloatField(default=0.0, help_text="Frames per second analysed (last interval)")
    frames_in = models.BigIntegerField(default=0, help_text="Frames received since the worker started")
    frames_out = models.BigIntegerField(default=0, help_text="Frames analysed since the worker started")
    frames_dropped = models.BigIntegerField(default=0, help_text="Frames dropped because analysis fell behind")
    reconnects = models.IntegerField(default=0, help_text="Times the stream was opened again after losing it")
    gaps = models.IntegerField(default=0, help_text="Times the stream stopped delivering frames after it had")
    gap_seconds = models.FloatField(default=0.0, help_text="Seconds without frames, over all gaps")
    last_gap_seconds = models.FloatField(null=True, blank=True)
    events = models.IntegerField(default=0, help_text="Incidents written since the worker started")
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_event_latency_s = models.FloatField(null=True, blank=True,
                                             help_text="Seconds from the event's last frame to its incident's commit")
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "camera_health"
        constraints = [
            CheckConstraint(condition=Q(state__in=["starting", "connected", "reconnecting", "stopped", "failed"]),
                            name="camera_health_state_known"),
            CheckConstraint(condition=Q(frames_dropped__gte=0, frames_in__gte=0, frames_out__gte=0),
                            name="camera_health_counts_nonnegative"),
        ]


class PeopleCount(models.Model):
    """People seen passing a courtyard camera in one hour: a number, no identity, no image (issue 17)."""

    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="people_counts")
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="people_counts",
                                 help_text="the camera's building, or the nearest one within 100 m of it")
    hour = models.DateTimeField(help_text="start of the hour (UTC), date_trunc('hour', ...)")
    count = models.PositiveIntegerField(default=0)
    last_pass_at = models.DateTimeField(help_text="the latest pass counted: an older one is not counted again")
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "people_counts"
        constraints = [UniqueConstraint(fields=["camera", "hour"], name="people_counts_camera_hour_unique")]


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
            geometry_valid("parking_spots"),
        ]


class NoParkingZone(Synthetic):
    REASONS = [("fire_lane", "fire lane"), ("hydrant", "hydrant"), ("entrance", "entrance"), ("other", "other")]

    name = models.CharField(max_length=100, blank=True, default="")
    reason = models.CharField(max_length=20, choices=REASONS, default="fire_lane")
    grid = models.ForeignKey(Grid, null=True, blank=True, on_delete=models.SET_NULL, related_name="no_parking_zones")
    geom = models.PolygonField(srid=SRID)

    class Meta:
        db_table = "no_parking_zones"
        constraints = [geometry_valid("no_parking_zones")]


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
