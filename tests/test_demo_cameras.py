"""``onemap demo``'s two cameras: rendered clips served in a loop over RTSP, ``onemap vision run`` writing
their incidents — a falling object from the façade camera, a fire from the courtyard camera — and both
children ending when told. Short loops here; the demo's are minutes long."""

from __future__ import annotations

import time

import pytest
from test_vision_run import needs_gstreamer

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_cameras_back(demo_db):
    """The demo's cameras, incidents and people counts as they were before the test (the courtyard camera
    also counts people passing)."""
    from gis.models import Camera, CameraHealth, Incident, PeopleCount

    before = set(Incident.objects.values_list("id", flat=True))
    counts = set(PeopleCount.objects.values_list("id", flat=True))
    cameras = {c["code"]: c for c in Camera.objects.values("code", "stream_url", "status")}
    yield
    Incident.objects.exclude(id__in=before).delete()
    PeopleCount.objects.exclude(id__in=counts).delete()
    for code, row in cameras.items():
        Camera.objects.filter(code=code).update(stream_url=row["stream_url"], status=row["status"])
    CameraHealth.objects.all().delete()


@needs_gstreamer
def test_the_demo_cameras_stream_a_drop_and_a_fire_that_become_incidents(demo_cameras_back, tmp_path):
    from gis.models import Camera, Incident
    from host.cli.worker import stop_child
    from host.demo_cameras import start_demo_cameras

    last_id = Incident.objects.order_by("-id").values_list("id", flat=True).first() or 0
    said = []
    cameras = start_demo_cameras(folder=tmp_path / "streams", facade=(14.0, 4.0), courtyard=(24.0, 6.0),
                                 log=said.append)
    try:
        assert any("rendering the demo camera clip" in line for line in said), said
        facade_code, courtyard_code = cameras.cameras
        assert Camera.objects.get(code=facade_code).purpose == "facade"
        assert Camera.objects.get(code=courtyard_code).purpose == "courtyard"
        assert all(Camera.objects.get(code=code).stream_url == url for code, url in cameras.cameras.items())
        new = Incident.objects.filter(id__gt=last_id, source="camera")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (new.filter(camera__code=facade_code, category="falling_object")
                                                   .exists() and new.filter(camera__code=courtyard_code,
                                                                            category="fire_smoke").exists()):
            assert cameras.vision.poll() is None, "onemap vision run exited"
            time.sleep(0.5)
        found = sorted(new.values_list("camera__code", "category"))
        assert (facade_code, "falling_object") in found and (courtyard_code, "fire_smoke") in found, found
    finally:
        for child in cameras.children():
            stop_child(child)
    assert cameras.vision.returncode == 0 and cameras.rtsp.returncode is not None
    # the clips are kept: a second start renders nothing
    again = []
    second = start_demo_cameras(folder=tmp_path / "streams", facade=(14.0, 4.0), courtyard=(24.0, 6.0),
                                log=again.append)
    for child in second.children():
        stop_child(child)
    assert not any("rendering" in line for line in again), again
