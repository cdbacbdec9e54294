"""People at the door: a rendered pass is one person event (no evidence), a peephole's pass is one sighting of
its door's sensor (the elder's activity), once however often the clip is analysed, and live through
``onemap vision run`` from an RTSP stream; nuisance gives none; courtyard passes are hourly counts; an
unbound peephole camera is reported, not a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from vision.people_synthetic import render_clip
from vision.pipeline import analyze_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("people-clips")
    return {kind: render_clip(kind, folder / f"{kind}.avi", seed=seed)
            for kind, seed in (("pass", 7), ("stand", 7), ("door", 7), ("light", 7), ("pet", 7))}


@pytest.mark.parametrize("kind", ["pass", "stand"])
def test_a_person_is_one_pass_without_evidence(clips, kind, tmp_path):
    clip = clips[kind]
    result = analyze_video(clip.path, detect="person", evidence_dir=tmp_path / "evidence")
    assert len(result.events) == 1, [e.to_json() for e in result.events]
    event, truth = result.events[0], clip.passes[0]
    assert event.type == "person" and event.t_start < truth.t_out and event.t_end > truth.t_in
    assert event.evidence is None and not (tmp_path / "evidence").exists()  # no clip, no keyframe of a person


@pytest.mark.parametrize("kind", ["door", "light", "pet"])
def test_nuisance_is_no_pass(clips, kind):
    assert analyze_video(clips[kind].path, detect="person").events == []


def test_a_fire_is_not_people_passing_and_an_orange_shirt_still_is(tmp_path):
    """A flame flickers upright in one place, person-shaped to a motion test; a courtyard camera runs both stages,
    so without the colour veto every fire added passes to the hourly counts."""
    from vision.fire_synthetic import render_clip

    flame = render_clip("flame", tmp_path / "flame.avi", seconds=20, seed=7, flame_from=4, size=(640, 360))
    assert analyze_video(flame, detect="person").events == []
    shirt = render_clip("orange_shirt", tmp_path / "shirt.avi", seconds=20, seed=3)
    assert len(analyze_video(shirt, detect="person").events) == 1


@pytest.mark.parametrize("purpose, detect", [("peephole", ("person",)), ("courtyard", ("fire_smoke", "person")),
                                             ("parking", ("fire_smoke", "illegal_parking")), ("facade", ("falling_object",))])
def test_what_a_camera_looks_for(purpose, detect):
    from vision.streaming import detect_for

    assert detect_for(SimpleNamespace(purpose=purpose)) == detect


def _door():
    from gis.models import Sensor

    sensor = (Sensor.objects.filter(kind="peephole_camera", camera__purpose="peephole", care_subject__isnull=False)
              .select_related("camera", "care_subject").order_by("code").first())
    assert sensor is not None, "the demo has peephole cameras bound to a care subject's sensor"
    return sensor


def test_a_pass_at_the_door_is_one_sighting_once(rollback, clips, tmp_path):
    from gis.models import CareSubject, SensorEvent
    from host.cli import main

    sensor = _door()
    long_ago = datetime.now(UTC) - timedelta(days=3)
    CareSubject.objects.filter(pk=sensor.care_subject_id).update(last_activity_at=long_ago)
    recorded = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    args = ["vision", "analyze", str(clips["pass"].path), "--camera", sensor.camera.code, "--json",
            "--recorded-at", recorded.isoformat(), "--evidence-dir", str(tmp_path / "evidence")]
    sightings = SensorEvent.objects.filter(sensor=sensor, type="sighting", payload__camera=sensor.camera.code)
    assert sightings.count() == 0
    assert main(args) == 0
    assert sightings.count() == 1
    seen = sightings.get()
    assert recorded < seen.ts < recorded + timedelta(seconds=clips["pass"].seconds)
    assert CareSubject.objects.get(pk=sensor.care_subject_id).last_activity_at == seen.ts  # the 48-hour rule's input
    assert main(args) == 0  # the same clip again: the same seq, no second event
    assert sightings.count() == 1
    assert main(["vision", "analyze", str(clips["door"].path), "--camera", sensor.camera.code,
                 "--recorded-at", (recorded + timedelta(minutes=1)).isoformat()]) == 0
    assert sightings.count() == 1  # a door opening opposite is nobody passing
    assert not (tmp_path / "evidence").exists()


def test_courtyard_passes_are_counted_per_hour_once(rollback, capsys):
    from gis.models import Camera, PeopleCount
    from host.cli import main
    from gis.spatial.selectors import camera_building_id
    from vision.events import VisionEvent
    from vision.sink import people_passes_write

    camera = Camera.objects.filter(purpose="courtyard").order_by("code").first()
    start = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)

    def passes(*seconds):
        return [VisionEvent(type="person", t_start=s, t_end=s + 5, confidence=0.9, frames=(0, 1), trajectory=(),
                            origin_image=(0.0, 0.0), floor=None, column=None, location=None, evidence=None)
                for s in seconds]

    assert people_passes_write(events=passes(10, 20, 3700), camera=camera, started_at=start).counted == 3
    assert people_passes_write(events=passes(10, 20, 3700), camera=camera, started_at=start).counted == 0
    assert people_passes_write(events=passes(3800), camera=camera, started_at=start).counted == 1
    rows = {r.hour: r for r in PeopleCount.objects.filter(camera=camera)}
    assert {h: r.count for h, r in rows.items()} == {datetime(2026, 12, 1, 8, tzinfo=UTC): 2,
                                                     datetime(2026, 12, 1, 9, tzinfo=UTC): 2}
    assert {r.building_id for r in rows.values()} == {camera_building_id(camera_id=camera.id)}
    assert main(["vision", "counts", "--camera", camera.code, "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["hour"][:16], r["count"]) for r in printed] == [("2026-12-01 09:00", 2), ("2026-12-01 08:00", 2)]


def test_an_unbound_peephole_camera_is_reported_not_a_crash(rollback, clips, capsys):
    from gis.models import Sensor, SensorEvent
    from host.cli import main
    from vision.service import HealthReporter, _PeoplePasses

    camera = _door().camera
    Sensor.objects.filter(camera=camera).update(camera=None)
    before = SensorEvent.objects.filter(type="sighting").count()
    assert main(["vision", "analyze", str(clips["pass"].path), "--camera", camera.code]) == 1
    err = capsys.readouterr().err
    assert f"peephole camera {camera.code} is bound to no peephole sensor" in err and "Traceback" not in err
    # the live worker goes on, with the problem in the camera's health
    health = HealthReporter(camera_id=camera.id, source=None, interval=60)
    passes = _PeoplePasses(camera=camera, health=health)
    passes.write(analyze_video(clips["pass"].path, detect="person").events[0], datetime.now(UTC))
    assert "bound to no peephole sensor" in health._error[0]
    assert SensorEvent.objects.filter(type="sighting").count() == before


@pytest.fixture
def live_door(demo_db):
    """A demo peephole camera (bound to its door's sensor) pointed at a local RTSP mount; all put back after."""
    from gis.models import Camera, CameraHealth, CareSubject, SensorEvent

    sensor = _door()
    camera, subject = sensor.camera, sensor.care_subject
    url, activity = camera.stream_url, subject.last_activity_at
    yield sensor
    Camera.objects.filter(pk=camera.pk).update(stream_url=url)
    CameraHealth.objects.filter(camera=camera).delete()
    SensorEvent.objects.filter(sensor=sensor, payload__camera=camera.code).delete()
    CareSubject.objects.filter(pk=subject.pk).update(last_activity_at=activity)


def test_vision_run_turns_a_pass_at_a_live_door_into_a_sighting(live_door, clips, database_url, tmp_path):
    from servers import free_port
    from test_vision_run import RtspServer, Service, _gstreamer_missing, _wait_for

    from gis.models import Camera, CameraHealth, CareSubject, SensorEvent

    if _gstreamer_missing():
        pytest.skip(_gstreamer_missing())
    camera = live_door.camera
    rtsp = RtspServer(free_port(), tmp_path / "rtsp.log")
    Camera.objects.filter(pk=camera.pk).update(stream_url=rtsp.url("door"))
    sightings = SensorEvent.objects.filter(sensor=live_door, type="sighting", payload__camera=camera.code)
    rtsp.start({"door": clips["pass"].path})
    service = Service(database_url=database_url, cameras=[camera.code], evidence=tmp_path / "evidence",
                      log=tmp_path / "service.log")
    try:
        seen = _wait_for("a sighting from the live door", lambda: sightings.first(), timeout=60, service=service)
        _wait_for("the stream read", lambda: CameraHealth.objects.filter(camera=camera, frames_in__gt=0).exists(),
                  timeout=10, service=service)
    finally:
        assert service.stop() == 0
        rtsp.kill()
    assert sightings.count() == 1
    assert datetime.now(UTC) - timedelta(minutes=5) < seen.ts < datetime.now(UTC)  # when it was streamed
    assert CareSubject.objects.get(pk=live_door.care_subject_id).last_activity_at >= seen.ts
    assert not (tmp_path / "evidence" / camera.code).exists()  # nothing of the door on disk
