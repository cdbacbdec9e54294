"""What the database itself enforces: SRIDs, geometry validity, ranges, the grid hierarchy, unique codes."""

from __future__ import annotations

import pytest
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Point, Polygon
from django.db import IntegrityError, InternalError, DataError, ProgrammingError, connection, transaction
from django.utils import timezone

from gis import models as m

REJECTED = (IntegrityError, InternalError, DataError, ProgrammingError)


def _square(x, y, d=0.001, srid=4326):
    return MultiPolygon(Polygon(((x, y), (x + d, y), (x + d, y + d), (x, y + d), (x, y))), srid=srid)


def _rejected(fn):
    with pytest.raises(REJECTED) as info:
        with transaction.atomic():
            fn()
    return str(info.value)


@pytest.fixture
def level1(rollback):
    return m.Grid.objects.get(level=1)


def test_level2_grid_needs_a_parent(level1):
    assert "needs a parent" in _rejected(
        lambda: m.Grid.objects.create(code="999000001", level=2, name="orphan", geom=_square(113.0, 34.0))
    )


def test_level3_cannot_sit_under_level1(level1):
    message = _rejected(lambda: m.Grid.objects.create(
        code=level1.code + "999", level=3, parent=level1, name="skips a level", geom=_square(113.0, 34.0)))
    assert "cannot sit under a level-1 parent" in message


def test_child_code_must_extend_parent_code(level1):
    message = _rejected(lambda: m.Grid.objects.create(
        code="123456789001", level=2, parent=level1, name="bad code", geom=_square(113.0, 34.0)))
    assert "must extend its parent" in message


def test_grid_codes_are_unique_and_numeric(level1):
    _rejected(lambda: m.Grid.objects.create(code=level1.code, level=1, name="dup", geom=_square(113.0, 34.0)))
    assert "grids_code_digits" in _rejected(
        lambda: m.Grid.objects.create(code="ABC-1", level=1, name="letters", geom=_square(113.0, 34.0)))


def test_invalid_geometry_is_rejected(level1):
    bowtie = GEOSGeometry("MULTIPOLYGON(((113 34, 113.01 34.01, 113.01 34, 113 34.01, 113 34)))", srid=4326)
    assert "geom_valid" in _rejected(
        lambda: m.Building.objects.create(code="B-X", address="x", floors=5, height_m=15, geom=bowtie))


def test_wrong_srid_is_rejected(level1):
    def insert():
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO service_points (code, synthetic, created_at, updated_at, name, category, subcategory, "
                "address, opening_hours, phone, geom) VALUES ('SP-SRID', false, now(), now(), 'x', 'service', '', '', "
                "'', '', ST_SetSRID(ST_MakePoint(500000, 3800000), 4547))"
            )

    assert "SRID" in _rejected(insert)


@pytest.mark.parametrize(
    "field, value",
    [("heading_deg", 360.0), ("fov_deg", 0.0), ("purpose", "doorbell"), ("height_m", -1.0)],
)
def test_camera_ranges(level1, field, value):
    values = dict(code="CAM-T", name="t", purpose="courtyard", height_m=5, heading_deg=10, fov_deg=70,
                  geom=Point(113.66, 34.757, srid=4326))
    values[field] = value
    _rejected(lambda: m.Camera.objects.create(**values))


def test_building_floors_range(level1):
    _rejected(lambda: m.Building.objects.create(
        code="B-F", address="x", floors=0, height_m=3, geom=_square(113.66, 34.757, 0.0001)))


def test_sensor_message_twice_is_one_row(rollback):
    sensor = m.Sensor.objects.filter(kind="door_magnet").first()
    ts = timezone.now()
    m.SensorEvent.objects.create(sensor=sensor, seq=10_000, ts=ts, type="door_open")
    _rejected(lambda: m.SensorEvent.objects.create(sensor=sensor, seq=10_000, ts=ts, type="door_open"))
    assert m.SensorEvent.objects.filter(sensor=sensor, seq=10_000).count() == 1


def test_incident_severity_and_status(rollback):
    base = dict(code="INC-T", category="sanitation", source="staff", reported_at=timezone.now(),
                geom=Point(113.66, 34.757, srid=4326))
    _rejected(lambda: m.Incident.objects.create(**base, severity=9))
    _rejected(lambda: m.Incident.objects.create(**base, status="lost"))
