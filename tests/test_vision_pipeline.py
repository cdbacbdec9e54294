"""The falling-object pipeline end to end: a drop rendered through a demo façade camera's calibration
becomes an event with the right floor and an incident in the right level-3 grid; broken videos give a
clear error and no incident; the real clips tree.avi and vtest.avi give no event.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import pytest

from vision.calibration import Calibration
from vision.falling_synthetic import FPS, HEIGHT, RELEASE_FRAME, WIDTH, render_drop
from vision.pipeline import analyze_video
from vision.sources import VideoSourceError, VideoTruncatedError

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get("ONEMAP_SAMPLES", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def facade_camera(demo_db):
    from gis.models import Camera

    return Camera.objects.filter(purpose="facade").select_related("building", "building__grid").order_by("code").first()


@pytest.fixture(scope="module")
def drop(facade_camera, tmp_path_factory):
    """A clip of a drop from a window a little above the middle of the façade's visible part."""
    folder = tmp_path_factory.mktemp("vision-drop")
    cal = Calibration.from_dict(facade_camera.calibration)
    u_lo, u_hi, v_lo, v_hi = cal.facade_extent_m()
    floor = cal.floor_at(v_lo + 0.45 * (v_hi - v_lo))
    u = (u_lo + u_hi) / 2
    path = folder / "drop.avi"
    render_drop(facade_camera.calibration, path, floor=floor, u=u)
    return {"path": path, "floor": floor, "u": u, "folder": folder}


@pytest.fixture(scope="module")
def analysed(drop, facade_camera):
    evidence = drop["folder"] / "evidence"
    result = analyze_video(drop["path"], calibration=facade_camera.calibration, camera_code=facade_camera.code,
                           evidence_dir=evidence)
    return result, evidence


def test_one_drop_one_event_on_its_floor(analysed, drop):
    result, _ = analysed
    assert result.frames_read == 100
    assert len(result.events) == 1, [e.to_json() for e in result.events]
    event = result.events[0]
    assert event.type == "falling_object"
    assert event.floor == drop["floor"]
    assert 0 <= event.frames[0] - RELEASE_FRAME <= 12  # it shows once it leaves its own footprint
    assert 0.5 <= event.confidence <= 1.0
    assert event.location is not None and event.evidence is not None


def test_event_lifecycle_is_start_updates_end(drop, facade_camera):
    from vision.config import DetectorConfig
    from vision.falling import FallingObjectDetector
    from vision.sources import VideoFileSource
    from vision.training import load_or_train

    cal = Calibration.from_dict(facade_camera.calibration).scaled_to(WIDTH, HEIGHT)
    detector = FallingObjectDetector(calibration=cal, width=WIDTH, height=HEIGHT, config=DetectorConfig(),
                                     classifier=load_or_train())
    steps = []
    for frame in VideoFileSource(drop["path"]).frames():
        steps += detector.process(frame)
    steps += detector.finish()
    kinds = [s.kind for s in steps]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert set(kinds[1:-1]) == {"update"} and len(kinds) > 5
    assert len({s.event_id for s in steps}) == 1
    assert steps[-1].event is not None and steps[-1].event.floor == drop["floor"]


def test_a_mask_over_the_fall_hides_it(drop, facade_camera):
    calibration = dict(facade_camera.calibration)
    cal = Calibration.from_dict(calibration)
    x, _ = cal.facade_to_image(drop["u"], 0.0)
    height = cal.image_size[1]
    calibration["masks"] = [[[x - 60, 0], [x + 60, 0], [x + 60, height], [x - 60, height]]]
    assert analyze_video(drop["path"], calibration=calibration).events == []


def test_event_json_follows_the_contract(analysed):
    line = analysed[0].events[0].to_json()
    for key in ("type", "t_start", "t_end", "confidence", "floor", "location", "evidence", "origin_image"):
        assert key in line
    assert set(line["location"]) == {"lon", "lat"}
    assert {"clip", "keyframe", "sha256"} <= set(line["evidence"])
    assert line["t_end"] > line["t_start"] >= 0


def test_evidence_clip_covers_two_seconds_either_side(analysed):
    result, evidence = analysed
    event = result.events[0]
    cap = cv2.VideoCapture(event.evidence["clip"])
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    before = min(event.frames[0], round(2.5 * FPS))  # the clip cannot start before the video does
    after = min(result.frames_read - 1 - event.frames[1], round(2.5 * FPS))
    assert frames == before + (event.frames[1] - event.frames[0] + 1) + after
    assert cv2.imread(event.evidence["keyframe"]) is not None


def test_incident_lands_in_the_buildings_grid_with_its_floor(rollback, facade_camera, drop):
    from django.contrib.gis.geos import Point
    from pyproj import Transformer

    from host.cli import main
    from gis.models import Incident

    before = Incident.objects.count()
    code = main(["vision", "analyze", str(drop["path"]), "--camera", facade_camera.code,
                 "--evidence-dir", str(drop["folder"] / "cli-evidence"), "--json"])
    assert code == 0
    incident = Incident.objects.exclude(code__startswith="INC-DEMO").order_by("-id").first()
    assert Incident.objects.count() == before + 1
    assert incident.category == "falling_object" and incident.source == "camera"
    assert incident.floor == drop["floor"]
    assert incident.camera_id == facade_camera.id
    assert incident.grid_id == facade_camera.building.grid_id
    assert incident.grid.level == 3
    # the point is on the watched building's outline, about where the object was released
    to_metric = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    metric = Point(*to_metric.transform(incident.geom.x, incident.geom.y), srid=4547)
    assert facade_camera.building.geom.transform(4547, clone=True).boundary.distance(metric) < 1.0
    assert incident.evidence["sha256"]["clip"]
    # ... it is a case from its first moment, waiting for the command centre
    assert incident.case.state == "reported" and incident.case.events.get().action == "report"
    # ... and it is published in the incidents layer
    from django.db import connection
    from psycopg import sql

    from layers.catalogue import LAYERS

    view = next(layer for layer in LAYERS if layer.id == "incidents").view
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT floor FROM {} WHERE code = %s").format(sql.Identifier(view)), [incident.code])
        assert cursor.fetchall() == [(drop["floor"],)]


@pytest.mark.parametrize("damage", ["truncated", "empty", "not-a-video"])
def test_broken_video_gives_a_clear_error_and_no_incident(rollback, facade_camera, drop, tmp_path, capsys, damage):
    from host.cli import main
    from gis.models import Incident

    path = tmp_path / f"{damage}.avi"
    data = drop["path"].read_bytes()
    path.write_bytes({"truncated": data[: int(len(data) * 0.7)], "empty": b"",
                      "not-a-video": b"RIFF" + bytes(range(256)) * 40}[damage])
    before = Incident.objects.count()
    code = main(["vision", "analyze", str(path), "--camera", facade_camera.code,
                 "--evidence-dir", str(tmp_path / "evidence")])
    assert code == 1
    message = capsys.readouterr().err
    assert str(path) in message
    assert {"truncated": "truncated", "empty": "empty", "not-a-video": "cannot be opened"}[damage] in message
    assert Incident.objects.count() == before


def test_truncated_video_still_reports_what_it_saw(drop, facade_camera, tmp_path):
    data = drop["path"].read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: int(len(data) * 0.8)])
    with pytest.raises(VideoTruncatedError, match="decoding stopped after") as caught:
        analyze_video(path, calibration=facade_camera.calibration)
    assert 60 <= caught.value.result.frames_read < 100


def test_unknown_camera_is_a_clear_error(demo_db, drop, capsys):
    from host.cli import main

    assert main(["vision", "analyze", str(drop["path"]), "--camera", "CAM-NOPE"]) == 1
    assert "no camera with code 'CAM-NOPE'" in capsys.readouterr().err


def test_missing_file_is_a_clear_error():
    with pytest.raises(VideoSourceError, match="no such file"):
        analyze_video("/nonexistent/clip.avi")


def test_tree_avi_stops_cleanly_with_no_event():
    path = SAMPLES / "tree.avi"
    if not path.exists():
        pytest.skip(f"{path} is absent (set ONEMAP_SAMPLES to the folder with the OpenCV sample clips)")
    with pytest.raises(VideoTruncatedError) as caught:
        analyze_video(path)
    result = caught.value.result
    assert 60 <= result.frames_read <= 80  # its header claims 444 frames; about 68 decode
    assert result.events == []


def test_vtest_avi_has_no_falling_object():
    path = SAMPLES / "vtest.avi"
    if not path.exists():
        pytest.skip(f"{path} is absent (set ONEMAP_SAMPLES to the folder with the OpenCV sample clips)")
    result = analyze_video(path)
    assert result.frames_read == 795
    assert result.events == [], [e.to_json() for e in result.events]


def test_detector_config_rejects_unknown_keys():
    from vision.config import VisionConfigError

    with pytest.raises(VisionConfigError, match="diff_treshold"):
        analyze_video("/nonexistent.avi", config={"diff_treshold": 10})
