"""Parking: spot occupancy with dwell, illegal parking in a fire lane, on short clips rendered from the demo's
layout; occupancy written to parking_spots; cameras without a ground calibration; bad spot geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vision.calibration import Calibration
from vision.config import ParkingConfig
from vision.parking import ParkingDetector, ParkingLayout, ParkingSetupError, Place
from vision.parking_synthetic import WIDTH, HEIGHT, Car, Script, frames, plan, render_clip, scene_from_demo
from vision.sources import Frame

FPS = 5.0
SHORT_LIMIT = ParkingConfig(fire_lane_limit_seconds=10.0)  # the rule's limit is 60 s; the tests are short


@pytest.fixture(scope="module")
def scene():
    """The first demo parking camera that sees spots and a fire lane."""
    from data.parking_clips import demo_parking_cameras

    for camera in demo_parking_cameras():
        s = scene_from_demo(camera)
        if s.fire_lane is not None and len(judged_spots(s)) >= 3:
            return s
    pytest.fail("no demo parking camera sees three spots and a fire lane")


def detector_for(scene, config=None, on_occupancy=None) -> ParkingDetector:
    cal = Calibration.from_dict(scene.calibration).scaled_to(WIDTH, HEIGHT)
    return ParkingDetector(calibration=cal, width=WIDTH, height=HEIGHT, layout=scene.layout, config=config,
                           fps=FPS, on_occupancy=on_occupancy)


def judged_spots(scene) -> list[str]:
    """Codes of the spots the detector judges, nearest the camera first."""
    d = detector_for(scene)
    return [c.place.code for c in sorted((c for c in d.cells if not c.zone), key=lambda c: c.distance)]


def run(scene, script, config=None, on_occupancy=None):
    """The detector over the rendered frames: (detector, [(t, step)], truth per frame)."""
    detector = detector_for(scene, config, on_occupancy)
    steps, truth = [], []
    for k, (image, occupied) in enumerate(frames(scene, script)):
        t = k / script.fps
        steps += [(t, s) for s in detector.process(Frame(index=k, t=t, image=image))]
        truth.append(occupied)
    return detector, steps, truth


def centre(scene, code):
    poly = dict(scene.spots)[code]
    return np.asarray(poly.centroid.coords[0])


def lane_at(scene, s):
    p0, d = scene.lane
    return p0 + d * s


def along(scene, point):
    p0, d = scene.lane
    return float(np.dot(np.asarray(point) - p0, d))


def arrival(scene, code, at: float) -> Car:
    """A car that drives in along the lane and turns into spot ``code``, at rest from ``at``."""
    c, s = centre(scene, code), along(scene, centre(scene, code))
    return Car(keys=[(at - 7.5, *lane_at(scene, s - 45)), (at - 2.5, *lane_at(scene, s + 1)), (at, *c),
                     (999.0, *c)], colour=(40, 40, 170))


def changes_of(detector, code):
    return [(c.t, c.occupancy) for c in detector.changes if c.code == code]


# -- occupancy -------------------------------------------------------------------------------


def test_an_arrival_turns_its_spot_occupied_after_the_dwell(scene):
    target = judged_spots(scene)[1]
    script = Script(seconds=14.0, fps=FPS, night=False, shadows=False, seed=1, cars=[arrival(scene, target, 6.0)])
    detector, _, truth = run(scene, script)
    seen = changes_of(detector, target)
    assert seen[0][1] == "free" and seen[0][0] <= 2.0  # first judged from the empty spot
    occupied_at = [t for t, state in seen if state == "occupied"]
    assert len(occupied_at) == 1, seen
    became = next(k for k, occ in enumerate(truth) if target in occ) / FPS  # a car covers it from here
    dwell = detector.config.occupy_seconds
    # not a per-frame vote: it waits for the dwell, and then turns without much delay
    assert became + dwell - 1.0 <= occupied_at[0] <= became + dwell + 2.0, (became, seen)
    assert detector.occupancy()[target] == "occupied"


def test_a_car_driving_past_flips_no_spot(scene):
    passing = Car(keys=[(2.0, *lane_at(scene, -30)), (2.0 + 140 / 7.0, *lane_at(scene, 110))], colour=(235, 235, 235))
    script = Script(seconds=16.0, fps=FPS, night=False, shadows=False, seed=2, cars=[passing])
    detector, _, _ = run(scene, script)
    assert all(state == "free" for _, state in ((c.t, c.occupancy) for c in detector.changes)), detector.changes
    assert set(detector.occupancy().values()) == {"free"}


def test_moving_shadows_flip_no_spot(scene):
    spots = judged_spots(scene)
    parked = [Car(keys=[(-1.0, *centre(scene, spots[0])), (99.0, *centre(scene, spots[0]))], colour=(35, 35, 38))]
    script = Script(seconds=20.0, fps=FPS, night=False, shadows=True, seed=3, cars=parked,
                    shadow_edge=(-3.0, 0.25, 0.7),  # a building's shadow edge: 5 m across the spots in 20 s
                    clouds=[(scene.camera.x - 30, scene.camera.y - 30, 3.0, 3.0, 8.0)])
    detector, _, _ = run(scene, script)
    for code in spots:
        states = [state for _, state in changes_of(detector, code)]
        assert states == (["occupied"] if code == spots[0] else ["free"]), (code, states)


GREY, SILVER = (110, 110, 115), (170, 172, 175)  # BGR: the colours nearest the asphalt's (98, 100, 102)


@pytest.mark.parametrize("colour, night, seed", [(GREY, False, 11), (SILVER, False, 12), (GREY, True, 13)],
                         ids=["grey by day", "silver by day", "grey at night"])
def test_a_car_parked_before_the_camera_started_is_judged_occupied_at_once(scene, colour, night, seed):
    """The first judgement: a grey car on grey asphalt used to be judged free and learnt as the empty road."""
    spots = judged_spots(scene)
    target = spots[1]  # the nearest spot stays empty, so nothing hides this one
    parked = Car(keys=[(-60.0, *centre(scene, target)), (99.0, *centre(scene, target))], colour=colour)
    script = Script(seconds=8.0, fps=FPS, night=night, shadows=not night, seed=seed, cars=[parked],
                    shadow_edge=(-8.0, 0.1, 0.7))
    detector, _, _ = run(scene, script)
    seen = changes_of(detector, target)
    # judged occupied after the usual dwell from the start, and not judged anything else before or after
    assert [state for _, state in seen] == ["occupied"], seen
    assert seen[0][0] <= detector.config.occupy_seconds + 1.0, seen
    assert [state for _, state in changes_of(detector, spots[0])] == ["free"]


def test_an_occupied_spot_is_judged_on_its_own_view_when_its_car_leaves(scene):
    """A car parked at the start leaves: the spot turns free after the dwell (no empty view was ever learnt)."""
    spots = judged_spots(scene)
    target = spots[0]
    c = centre(scene, target)
    way = lane_at(scene, along(scene, c) + 4)
    leaving = Car(keys=[(-60.0, *c), (6.0, *c), (8.5, *way), (14.0, *lane_at(scene, along(scene, c) + 60))],
                  colour=GREY)
    script = Script(seconds=16.0, fps=FPS, night=False, shadows=False, seed=14, cars=[leaving])
    detector, _, truth = run(scene, script)
    seen = changes_of(detector, target)
    assert [state for _, state in seen] == ["occupied", "free"], seen
    left = next(k for k, occ in enumerate(truth) if target not in occ) / FPS
    assert left <= seen[1][0] <= left + detector.config.vacate_seconds + 1.5, (left, seen)


def test_a_night_arrival_is_seen_and_headlights_flip_nothing_else(scene):
    spots = judged_spots(scene)
    script = Script(seconds=16.0, fps=FPS, night=True, shadows=False, seed=4, cars=[arrival(scene, spots[1], 6.0)])
    script.cars[0].lights = True
    detector, _, _ = run(scene, script)
    assert detector.occupancy()[spots[1]] == "occupied"
    for code in spots:
        if code != spots[1]:
            assert [s for _, s in changes_of(detector, code)] == ["free"], (code, changes_of(detector, code))


# -- hidden spots ------------------------------------------------------------------------------


def parked(scene, code, colour=(35, 35, 38)) -> Car:
    return Car(keys=[(-60.0, *centre(scene, code)), (999.0, *centre(scene, code))], colour=colour)


def truly_visible(detector, code, occupied) -> bool:
    """Whether the true occupancy leaves the spot visible, by the detector's own occlusion model."""
    cell = next(c for c in detector.cells if c.place.code == code)
    truly = {k for k, c in enumerate(detector.cells) if not c.zone and c.place.code in occupied}
    seen = int(detector.visible_mask(cell, truly).sum())
    config = detector.config
    return seen >= config.min_visible_share * int(cell.inner.sum()) and seen >= config.min_spot_pixels // 2


def test_a_visible_parked_car_behind_a_hidden_spot_is_judged_occupied(scene):
    """A spot never seen (hidden behind a parked car since the start) no longer hides the spots behind it.

    It used to count as a vehicle in every spot behind it: the spot behind it stayed 'unknown',
    so did the one behind that, and a car parked in plain view there was never judged.
    """
    spots = judged_spots(scene)
    assert len(spots) >= 5
    cars = [parked(scene, spots[1]), parked(scene, spots[4], colour=(40, 40, 170))]
    script = Script(seconds=10.0, fps=FPS, night=False, shadows=False, seed=21, cars=cars)
    detector, _, truth = run(scene, script)
    # the geometry the test is about: spots[2] hidden behind the car in spots[1], spots[3] and spots[4] in view
    assert not truly_visible(detector, spots[2], truth[-1])
    assert truly_visible(detector, spots[3], truth[-1]) and truly_visible(detector, spots[4], truth[-1])
    assert [s for _, s in changes_of(detector, spots[4])] == ["occupied"], changes_of(detector, spots[4])
    assert changes_of(detector, spots[4])[0][0] <= 2.0  # the first judgement, not the arrival dwell
    assert [s for _, s in changes_of(detector, spots[3])] == ["free"]
    # what no one can see is not guessed
    assert changes_of(detector, spots[2]) == [] and detector.occupancy()[spots[2]] == "unknown"


def test_a_car_arriving_in_a_hidden_spot_makes_it_unknown_not_the_spot_behind_occupied(scene):
    """The car shows above the one in front, where the spot behind is: that spot is not judged occupied from it.

    The hidden spot was seen free before it was hidden, and its roof band (where a car in it
    shows above the car in front) changes for good when a car arrives there: it turns 'unknown'
    instead of staying 'free' (stale), and the spot behind it stays free.
    """
    spots = judged_spots(scene)
    cars = [arrival(scene, spots[1], 6.0), arrival(scene, spots[2], 24.0)]
    cars[1].colour = (235, 235, 235)
    script = Script(seconds=40.0, fps=FPS, night=False, shadows=False, seed=22, cars=cars)
    detector, _, truth = run(scene, script)
    assert not truly_visible(detector, spots[2], truth[-1])  # hidden behind the car in spots[1] at the end
    assert [s for _, s in changes_of(detector, spots[1])] == ["free", "occupied"]
    hidden = changes_of(detector, spots[2])
    assert [s for _, s in hidden] == ["free", "unknown"], hidden
    assert 24.0 <= hidden[1][0] <= 24.0 + detector.config.hidden_change_seconds + 4.0, hidden
    # the spot behind sees the car above the one in front: it cannot tell whose it is, and does not guess
    assert "occupied" not in [s for _, s in changes_of(detector, spots[3])], changes_of(detector, spots[3])


# -- illegal parking ---------------------------------------------------------------------------


def test_a_car_in_the_fire_lane_past_its_limit_raises_exactly_one_event(scene):
    script = plan(scene, seconds=40.0, seed=5, illegal=1, short_stops=0, limit_s=10.0, mean_stay=10_000.0,
                  occupied_share=0.0, passing_every=1e9)
    stop = script.stops[0]
    assert stop["illegal"] and stop["leave_t"] - stop["rest_t"] >= 30.0
    detector, steps, _ = run(scene, script, config=SHORT_LIMIT)
    ends = [(t, s) for t, s in steps if s.kind == "end"]
    assert [s.kind for _, s in steps] == ["start", "end"]
    t, step = ends[0]
    due = stop["rest_t"] + 10.0
    assert due <= t <= due + 10.0, (stop, t)
    event = step.event
    assert event.type == "illegal_parking" and event.zone["code"] == stop["zone"] and event.zone["reason"] == "fire_lane"
    # located at the zone on the ground
    from shapely.geometry import Point

    zone = next(p for c, _, p in scene.zones if c == stop["zone"])
    from vision.calibration import METRIC_CRS, _transformer

    x, y = _transformer("EPSG:4326", METRIC_CRS).transform(event.location["lon"], event.location["lat"])
    assert zone.buffer(0.5).contains(Point(x, y))


def test_a_short_stop_in_the_fire_lane_raises_nothing(scene):
    script = plan(scene, seconds=30.0, seed=6, illegal=0, short_stops=1, limit_s=30.0, mean_stay=10_000.0,
                  occupied_share=0.0, passing_every=1e9)
    detector, steps, _ = run(scene, script, config=ParkingConfig(fire_lane_limit_seconds=30.0))
    assert steps == []
    assert detector.rejections.get("left before the limit") == 1


# -- setup errors --------------------------------------------------------------------------------


def test_a_camera_without_ground_calibration_is_refused_clearly(scene):
    from vision.streaming import detector_stages, parking_stage

    for calibration in (None, {"image_size": [1920, 1080]}):
        with pytest.raises(ParkingSetupError, match="ground calibration"):
            parking_stage(calibration=calibration, layout=scene.layout, fps=FPS)
    with pytest.raises(ParkingSetupError, match="--camera"):
        detector_stages(("illegal_parking",), calibration=scene.calibration, config=None, fps=FPS)


def test_the_service_skips_parking_but_keeps_fire_for_an_uncalibrated_camera(rollback):
    from gis.models import Camera
    from vision.config import DetectorConfig
    from vision.fire import FireDetector
    from vision.service import stages_for

    camera = Camera.objects.filter(purpose="parking").order_by("code").first()
    camera.calibration = {}
    notes = []
    stages = stages_for(camera, config=DetectorConfig(), fps=FPS, note=notes.append)
    assert len(stages) == 1 and isinstance(stages[0](320, 180), FireDetector)
    assert len(notes) == 1 and "parking skipped" in notes[0] and camera.code in notes[0]


def test_bad_spot_geometry_is_reported_not_crashed(scene):
    good = scene.layout.spots
    (lon, lat) = good[0].ring[0]
    bad = (Place(code="PS-BOWTIE", ring=((lon, lat), (lon + 1e-4, lat + 1e-4), (lon + 1e-4, lat), (lon, lat + 1e-4),
                                          (lon, lat))),
           Place(code="PS-LINE", ring=((lon, lat), (lon + 1e-4, lat))),
           Place(code="PS-NAN", ring=((lon, lat), (float("nan"), lat), (lon, lat + 1e-4))),
           Place(code="PS-BEHIND", ring=_behind(scene)))
    layout = ParkingLayout(spots=good + bad, zones=scene.layout.zones, camera_lonlat=scene.layout.camera_lonlat,
                           camera_height_m=scene.layout.camera_height_m)
    cal = Calibration.from_dict(scene.calibration).scaled_to(WIDTH, HEIGHT)
    detector = ParkingDetector(calibration=cal, width=WIDTH, height=HEIGHT, layout=layout, fps=FPS)
    problems = "\n".join(detector.problems)
    for code in ("PS-BOWTIE", "PS-LINE", "PS-NAN"):
        assert code in problems, problems
    assert "PS-BEHIND" in detector.out_of_view and "PS-BEHIND" not in problems  # not bad, just not seen
    assert {c.place.code for c in detector.cells if not c.zone} == set(judged_spots(scene))
    image = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    assert detector.process(Frame(index=0, t=0.0, image=image)) == []


def _behind(scene):
    """A spot 10 m behind the camera, in lon/lat."""
    from vision.calibration import METRIC_CRS, _transformer

    _, d = scene.lane
    back = np.array([scene.camera.x, scene.camera.y]) - d * 10
    n = np.array([-d[1], d[0]])
    corners = [back + a * d * 3 + b * n * 1.2 for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
    to = _transformer(METRIC_CRS, "EPSG:4326")
    return tuple(to.transform(*c) for c in corners)


# -- the database and the CLI ---------------------------------------------------------------------


@pytest.fixture
def db_scene(rollback):
    """A demo parking camera from the database, its layers, and a scene rendered from them."""
    from gis.models import Camera
    from vision.parking import parking_layout_for
    from vision.parking_synthetic import scene_for

    for camera in Camera.objects.filter(purpose="parking").order_by("code"):
        layout = parking_layout_for(camera)
        s = scene_for(camera_lonlat=(camera.geom.x, camera.geom.y), height_m=camera.height_m,
                      heading_deg=camera.heading_deg, fov_deg=camera.fov_deg, calibration=camera.calibration,
                      spots=layout.spots, zones=layout.zones)
        if s.fire_lane is not None and len(judged_spots(s)) >= 3:
            return camera, s
    pytest.fail("no demo parking camera in the database sees three spots and a fire lane")


def test_occupancy_changes_are_written_to_parking_spots(db_scene):
    from gis.models import ParkingSpot
    from vision.service import occupancy_writer

    camera, s = db_scene
    spots = judged_spots(s)
    ParkingSpot.objects.filter(code__in=spots).update(occupancy="unknown", occupancy_updated_at=None)
    errors = []
    script = Script(seconds=14.0, fps=FPS, night=False, shadows=False, seed=7, cars=[arrival(s, spots[1], 6.0)])
    detector, _, _ = run(s, script, on_occupancy=occupancy_writer(on_error=errors.append))
    assert errors == []
    rows = {r.code: r for r in ParkingSpot.objects.filter(code__in=spots)}
    assert rows[spots[1]].occupancy == "occupied" and rows[spots[1]].occupancy_updated_at is not None
    assert all(rows[c].occupancy == "free" for c in spots if c != spots[1])
    assert rows[spots[1]].occupancy_updated_at >= rows[spots[0]].occupancy_updated_at  # changed later


def test_an_older_occupancy_report_changes_nothing(rollback):
    from datetime import datetime, timedelta, timezone

    from gis.models import ParkingSpot
    from gis.services import ServiceError
    from gis.spatial.services import parking_occupancy_set

    spot = ParkingSpot.objects.order_by("code").first()
    now = datetime.now(timezone.utc)
    assert parking_occupancy_set(spot_id=spot.id, occupancy="occupied", at=now)
    assert not parking_occupancy_set(spot_id=spot.id, occupancy="free", at=now - timedelta(seconds=5))
    spot.refresh_from_db()
    assert spot.occupancy == "occupied"
    with pytest.raises(ServiceError, match="occupancy must be one of"):
        parking_occupancy_set(spot_id=spot.id, occupancy="full", at=now)


def test_analyze_json_and_the_incident(db_scene, tmp_path, capsys):
    """``onemap vision analyze --camera --json``: one illegal_parking line; the incident is a case."""
    from gis.models import Incident
    from host.cli import main

    camera, s = db_scene
    script = plan(s, seconds=80.0, seed=8, illegal=1, short_stops=0, limit_s=60.0, mean_stay=10_000.0,
                  occupied_share=0.3, passing_every=30.0)
    clip = tmp_path / "parking.avi"
    render_clip(s, script, clip)
    before = Incident.objects.count()
    code = main(["vision", "analyze", str(clip), "--camera", camera.code, "--detect", "illegal_parking", "--json",
                 "--evidence-dir", str(tmp_path / "evidence")])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [line["type"] for line in lines] == ["illegal_parking"], lines
    line = lines[0]
    assert line["zone"]["reason"] == "fire_lane" and line["location"] and {"clip", "keyframe", "sha256"} <= set(line["evidence"])
    assert Incident.objects.count() == before + 1
    incident = Incident.objects.exclude(code__startswith="INC-DEMO").order_by("-id").first()
    assert incident.category == "illegal_parking" and incident.camera_id == camera.id
    assert incident.title.startswith("违章停车") and incident.evidence["zone"]["code"] == line["zone"]["code"]
    assert incident.case.state == "reported"


def test_analyze_needs_a_camera_for_parking(tmp_path, capsys):
    from host.cli import main

    cal = tmp_path / "cal.json"
    cal.write_text(json.dumps({"image_size": [640, 360]}))
    clip = tmp_path / "empty.avi"
    import cv2

    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (640, 360))
    for _ in range(5):
        writer.write(np.full((360, 640, 3), 100, np.uint8))
    writer.release()
    code = main(["vision", "analyze", str(clip), "--calibration", str(cal), "--detect", "illegal_parking"])
    assert code != 0
    assert "--camera" in capsys.readouterr().err
