"""vision.calibration: homographies image ↔ façade ↔ world, checked against the demo's façade cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Transformer

from vision.calibration import Calibration, CalibrationError

TO_METRIC = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)


@pytest.fixture
def facade_camera(demo_db):
    from gis.models import Camera

    camera = Camera.objects.filter(purpose="facade").select_related("building").order_by("code").first()
    assert camera is not None, "the demo has façade cameras"
    return camera


def test_image_facade_round_trip(facade_camera):
    cal = Calibration.from_dict(facade_camera.calibration)
    width, height = cal.image_size
    rng = np.random.default_rng(7)
    for x, y in rng.uniform([0.1 * width, 0.1 * height], [0.9 * width, 0.9 * height], size=(25, 2)):
        u, v = cal.image_to_facade(x, y)
        back = cal.facade_to_image(u, v)
        assert math.dist(back, (x, y)) < 1e-6


def test_calibration_points_map_onto_their_facade_points(facade_camera):
    data = facade_camera.calibration["facade"]
    cal = Calibration.from_dict(facade_camera.calibration)
    for (x, y), (u, v) in zip(data["image_points"], data["facade_points"]):
        got = cal.image_to_facade(x, y)
        assert math.dist(got, (u, v)) < 0.05, (x, y, got, (u, v))


def test_facade_origin_is_the_calibrated_origin(facade_camera):
    cal = Calibration.from_dict(facade_camera.calibration)
    x, y = cal.facade_to_image(0.0, 0.0)
    point = cal.facade_to_world(x, y)
    origin = facade_camera.calibration["facade"]["origin"]
    ox, oy = TO_METRIC.transform(*origin)
    px, py = TO_METRIC.transform(point.lon, point.lat)
    assert math.hypot(px - ox, py - oy) < 0.05
    assert point.floor == facade_camera.calibration["facade"]["ground_floor"]


def test_facade_points_lie_on_the_building_footprint(facade_camera):
    """Points along the façade at any height land on the outline of the building the camera watches."""
    from django.contrib.gis.geos import Point

    cal = Calibration.from_dict(facade_camera.calibration)
    footprint = facade_camera.building.geom.transform(4547, clone=True)
    u_lo, u_hi, v_lo, v_hi = cal.facade_extent_m()
    for u in np.linspace(u_lo, u_hi, 5):
        v = (v_lo + v_hi) / 2
        point = cal.facade_to_world(*cal.facade_to_image(u, v))
        metric = Point(*TO_METRIC.transform(point.lon, point.lat), srid=4547)
        assert footprint.boundary.distance(metric) < 0.1, (u, footprint.boundary.distance(metric))


@pytest.mark.parametrize("v, floor", [(0.0, 1), (2.99, 1), (3.0, 2), (30.5, 11), (-1.0, 1)])
def test_floor_at(v, floor):
    cal = Calibration.from_dict(_simple(floor_height_m=3.0))
    assert cal.floor_at(v) == floor


def test_column_needs_the_bay_width():
    assert Calibration.from_dict(_simple()).column_at(10.0) is None
    cal = Calibration.from_dict(_simple(column_width_m=3.5))
    assert [cal.column_at(u) for u in (0.1, 3.4, 3.6, 10.0)] == [1, 1, 2, 3]


def test_column_from_window_centres():
    cal = Calibration.from_dict(_simple(window_columns_m=[2.5, 6.1, 9.7]))
    assert [cal.column_at(u) for u in (0.0, 4.2, 4.4, 30.0)] == [1, 1, 2, 3]
    with pytest.raises(CalibrationError, match="window_columns_m"):
        Calibration.from_dict(_simple(window_columns_m=[6.1, 2.5]))


def test_scaled_calibration_maps_the_same_points():
    cal = Calibration.from_dict(_simple())
    half = cal.scaled_to(640, 360)
    assert half.image_to_facade(320, 180) == pytest.approx(cal.image_to_facade(640, 360), abs=1e-9)
    with pytest.raises(CalibrationError, match="aspect ratio"):
        cal.scaled_to(640, 480)


def test_ground_homography(demo_db):
    from gis.models import Camera

    camera = Camera.objects.filter(purpose="courtyard").order_by("code").first()
    cal = Calibration.from_dict(camera.calibration)
    ground = camera.calibration["ground"]
    for (x, y), (lon, lat) in zip(ground["image_points"], ground["world_points"]):
        got = cal.image_to_ground(x, y)
        gx, gy = TO_METRIC.transform(*got)
        ex, ey = TO_METRIC.transform(lon, lat)
        assert math.hypot(gx - ex, gy - ey) < 0.05
    with pytest.raises(CalibrationError, match='no "facade" block'):
        cal.image_to_facade(10, 10)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lens": "wide"}, "unknown key.*lens"),
        ({"image_size": [0, 720]}, "image_size"),
        ({"facade": "north"}, '"facade" must be an object'),
        ({"masks": [[[0, 0], [1, 1]]]}, "masks"),
    ],
)
def test_bad_calibrations_are_refused(change, message):
    data = _simple()
    data.update(change)
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict(data)


@pytest.mark.parametrize(
    "facade_change, message",
    [
        ({"pitch": 3}, "unknown key.*facade.*pitch"),
        ({"floor_height_m": 0.5}, "floor_height_m"),
        ({"origin": [200, 34]}, "origin"),
        ({"image_points": [[0, 0], [1, 1]]}, "at least 4"),
        ({"facade_points": [[0, 0], [1, 0], [2, 0], [3, 0]]}, "degenerate"),
    ],
)
def test_bad_facade_blocks_are_refused(facade_change, message):
    data = _simple()
    data["facade"].update(facade_change)
    with pytest.raises(CalibrationError, match=message):
        Calibration.from_dict(data)


def test_missing_facade_key_is_named():
    data = _simple()
    del data["facade"]["azimuth_deg"]
    with pytest.raises(CalibrationError, match="missing azimuth_deg"):
        Calibration.from_dict(data)


def _simple(**facade) -> dict:
    """A 1280×720 view of a 40 m × 60 m façade, square on."""
    return {
        "image_size": [1280, 720],
        "facade": {
            "building": "BLD-T", "origin": [113.66, 34.757], "azimuth_deg": 90.0, "floor_height_m": 3.0,
            "ground_floor": 1,
            "image_points": [[440, 0], [840, 0], [840, 600], [440, 600]],
            "facade_points": [[0, 60], [40, 60], [40, 0], [0, 0]],
            **facade,
        },
    }
