"""A live camera's incident on the big screen while its stream still runs (issue 17's browser acceptance).

GStreamer's RTSP server streams a rendered drop; ``onemap vision run`` reads it and writes the incident;
the big screen, open in headless Chromium as a commander before the drop, shows the incident's live
marker while the RTSP server is still streaming the clip. The time from the event's last frame to the
incident's commit is what the worker reports (printed here; ``tests/bench/vision_run.py`` measures it).
"""

from __future__ import annotations

import time

import pytest
from browser import wait_for
from servers import free_port
from test_screen_browser import LIVE_TIMEOUT_S, OPEN, _marker, _open_ready
from test_vision_run import RtspServer, Service, _wait_for, drops, facade_camera, live_camera, needs_gstreamer  # noqa: F401

pytestmark = pytest.mark.slow


@needs_gstreamer
def test_a_live_cameras_incident_reaches_the_open_screen_while_the_stream_runs(screen_page, live_camera, drops,
                                                                              database_url, tmp_path):
    from gis.models import Camera, CameraHealth, Incident

    page, log = _open_ready(screen_page)
    wait_for(page, OPEN, timeout_s=LIVE_TIMEOUT_S)
    rtsp = RtspServer(free_port(), tmp_path / "rtsp.log")
    Camera.objects.filter(pk=live_camera.pk).update(stream_url=rtsp.url("cam"))
    last_id = Incident.objects.order_by("-id").values_list("id", flat=True).first() or 0
    new = Incident.objects.filter(camera=live_camera, category="falling_object", source="camera", id__gt=last_id)
    rtsp.start({"cam": drops[0]["path"]})
    service = Service(database_url=database_url, cameras=[live_camera.code], evidence=tmp_path / "evidence",
                      log=tmp_path / "service.log")
    try:
        incident = _wait_for("the incident from the live stream", lambda: new.first(), timeout=60, service=service)
        committed = time.monotonic()
        marker = page.wait_for_selector(_marker(incident.id), timeout=LIVE_TIMEOUT_S * 1000)
        on_screen_s = time.monotonic() - committed
        # still streaming: the RTSP server runs and the worker has not yet received the clip's last frame
        assert rtsp.process.poll() is None, "the marker should appear while the camera's stream still runs"
        frames = CameraHealth.objects.get(camera=live_camera).frames_in
        assert frames < drops[0]["frames"], f"the clip had ended ({frames} of {drops[0]['frames']} frames)"
        assert "om-cat-falling_object" in marker.get_attribute("class").split()
        health = _wait_for("health after the event", lambda: CameraHealth.objects.filter(
            camera=live_camera, events=1).first(), timeout=10, service=service)
    finally:
        service.stop()
        rtsp.kill()
    print(f"\n[vision run → screen] event's last frame → commit {health.last_event_latency_s:.2f} s; "
          f"commit → marker on the open screen ≤ {on_screen_s:.2f} s (polled)")
    assert log.errors() == [], log.describe()
