"""``onemap vision run`` against a real RTSP stream: GStreamer's RTSP server (a child process on the system
Python) streams a rendered drop; the service's incident appears while the stream still runs; the server is
killed and started again mid-stream and the service reconnects, counts the gap and loses no event after
it. Also: two evidence writers for one camera make one chain; ``onemap vision status``; the screen's
camera markers carry the health.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from servers import free_port
from vision.falling_synthetic import FPS, render_drop

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = ROOT / "host" / "rtsp_server.py"
SAMPLES = Path(os.environ.get("ONEMAP_SAMPLES", ROOT.parent / "shared" / "data"))


def _gstreamer_missing() -> str | None:
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True, text=True)
    if probe.returncode:
        return ("GStreamer's RTSP server is not installed for the system Python (apt-get install python3-gi "
                "python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-{good,bad,ugly}; "
                f"see scripts/bootstrap.sh): {probe.stderr.strip().splitlines()[-1] if probe.stderr else ''}")
    return None


needs_gstreamer = pytest.mark.skipif(os.path.exists(SYSTEM_PYTHON) is False or _gstreamer_missing() is not None,
                                     reason=_gstreamer_missing() or "no /usr/bin/python3")


class RtspServer:
    """host/rtsp_server.py in a process of its own: start, kill (SIGKILL, as a crash) and start again."""

    def __init__(self, port: int, log: Path):
        self.port, self.log = port, log
        self.process: subprocess.Popen | None = None

    def url(self, name: str) -> str:
        return f"rtsp://127.0.0.1:{self.port}/{name}"

    def start(self, mounts: dict[str, Path], *, loop: bool = False) -> "RtspServer":
        args = [SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(self.port)] + (["--loop"] if loop else [])
        args += [f"{name}={path}" for name, path in mounts.items()]
        with open(self.log, "ab") as err:
            self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
        line = self.process.stdout.readline().decode().strip()
        assert line == "ready", f"the RTSP server did not start ({line!r}); see {self.log}"
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None


class Service:
    """``onemap vision run`` as a child process on the test database."""

    def __init__(self, *, database_url: str, cameras: list[str], evidence: Path, log: Path):
        env = dict(os.environ, ONEMAP_DATABASE_URL=database_url)
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        args = [sys.executable, "-m", "host.cli", "vision", "run", "--evidence-dir", str(evidence),
                "--health-interval", "0.5", "--reconnect-max", "1"]
        for code in cameras:
            args += ["--camera", code]
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


def _wait_for(what: str, check, *, timeout: float, service: Service | None = None, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if service is not None and not service.alive():
            pytest.fail(f"the service exited while waiting for {what}:\n{service.log.read_text()[-3000:]}")
        time.sleep(step)
    log = service.log.read_text()[-3000:] if service is not None else ""
    pytest.fail(f"no {what} within {timeout:.0f} s\n{log}")


@pytest.fixture(scope="module")
def facade_camera(demo_db):
    from gis.models import Camera

    return Camera.objects.filter(purpose="facade").select_related("building").order_by("code").first()


@pytest.fixture(scope="module")
def drops(facade_camera, tmp_path_factory):
    """Two 12-second clips, each with one drop released at 3 s, from two different floors."""
    from vision.calibration import Calibration

    folder = tmp_path_factory.mktemp("vision-run")
    cal = Calibration.from_dict(facade_camera.calibration)
    u_lo, u_hi, v_lo, v_hi = cal.facade_extent_m()
    clips = []
    for n, share in enumerate((0.45, 0.7)):
        floor = cal.floor_at(v_lo + share * (v_hi - v_lo))
        path = folder / f"drop{n}.avi"
        render_drop(facade_camera.calibration, path, floor=floor, u=(u_lo + u_hi) / 2, seconds=12.0,
                    release_frame=int(3 * FPS), seed=n)
        clips.append({"path": path, "floor": floor, "frames": int(12 * FPS)})
    assert clips[0]["floor"] != clips[1]["floor"]
    return clips


@pytest.fixture
def live_camera(facade_camera, database_url):
    """The façade camera pointed at a local RTSP mount for the test; its URL, health and incidents put back."""
    from gis.models import Camera, CameraHealth, Incident

    before = set(Incident.objects.filter(camera=facade_camera).values_list("id", flat=True))
    original = Camera.objects.values("stream_url", "calibration").get(pk=facade_camera.pk)
    yield facade_camera
    Camera.objects.filter(pk=facade_camera.pk).update(**original)
    CameraHealth.objects.filter(camera=facade_camera).delete()
    Incident.objects.filter(camera=facade_camera).exclude(id__in=before).delete()


@needs_gstreamer
def test_live_incidents_through_a_server_crash(live_camera, drops, database_url, tmp_path):
    from gis.models import Camera, CameraHealth, Incident
    from vision.evidence import verify

    rtsp = RtspServer(free_port(), tmp_path / "rtsp.log")
    Camera.objects.filter(pk=live_camera.pk).update(stream_url=rtsp.url("cam"))
    evidence = tmp_path / "evidence"
    last_id = Incident.objects.order_by("-id").values_list("id", flat=True).first() or 0
    new = Incident.objects.filter(camera=live_camera, category="falling_object", source="camera", id__gt=last_id)
    rtsp.start({"cam": drops[0]["path"]})
    service = Service(database_url=database_url, cameras=[live_camera.code], evidence=evidence,
                      log=tmp_path / "service.log")
    try:
        # 1. the drop in the first clip becomes an incident while the clip is still streaming
        first = _wait_for("incident from the first stream", lambda: new.order_by("id").first(), timeout=60,
                          service=service)
        frames_then = CameraHealth.objects.get(camera=live_camera).frames_in
        assert frames_then < drops[0]["frames"], (
            f"the incident should appear before the stream ends ({frames_then} frames received)")
        assert rtsp.process.poll() is None
        assert first.floor == drops[0]["floor"]
        assert first.case is not None
        # the worker writes its health right after the incident's commit
        health = _wait_for("health after the first event", lambda: CameraHealth.objects.filter(
            camera=live_camera, events=1).first(), timeout=10, service=service)
        latency_1 = health.last_event_latency_s
        # 2. the server crashes mid-stream; nothing arrives for a while; it comes back with the second clip
        rtsp.kill()
        killed_at = time.monotonic()
        _wait_for("the worker noticing the lost stream",
                  lambda: CameraHealth.objects.filter(camera=live_camera, gaps__gte=1, connected=False).exists(),
                  timeout=30, service=service)
        time.sleep(max(0.0, 3.0 - (time.monotonic() - killed_at)))
        rtsp.start({"cam": drops[1]["path"]})
        second = _wait_for("incident after the reconnection",
                           lambda: new.exclude(pk=first.pk).order_by("id").first(), timeout=60, service=service)
        health = _wait_for("health after the second event", lambda: CameraHealth.objects.filter(
            camera=live_camera, events=2).first(), timeout=10, service=service)
        assert second.floor == drops[1]["floor"]
        assert rtsp.process.poll() is None, "the second incident should appear before its stream ends"
        assert health.gaps == 1 and health.reconnects >= 1, (health.gaps, health.reconnects, health.last_error)
        assert health.gap_seconds >= 2.5, health.gap_seconds  # the server was away three seconds at least
        latency_2 = health.last_event_latency_s
        # the first incident's clip was sealed with what arrived before the crash, and attached
        _wait_for("evidence on the first incident",
                  lambda: Incident.objects.get(pk=first.pk).evidence.get("record"), timeout=10, service=service)
    finally:
        code = service.stop()
        rtsp.kill()
    print(f"\n[vision run] latency from the event's last frame to its incident's commit: "
          f"{latency_1:.2f} s (first stream), {latency_2:.2f} s (after the reconnection); "
          f"gap {health.gap_seconds:.1f} s, {health.reconnects} reconnection attempt(s), "
          f"{health.frames_dropped} of {health.frames_in} frames dropped")
    assert code == 0, service.log.read_text()[-3000:]
    assert CameraHealth.objects.get(camera=live_camera).state == "stopped"
    assert len(new) == 2, [(i.code, i.floor) for i in new]
    report = verify(evidence)
    assert report.ok and report.records == 2, report.problems


@needs_gstreamer
@pytest.mark.skipif(not (SAMPLES / "vtest.avi").exists(), reason=f"vtest.avi not found in {SAMPLES}: set ONEMAP_SAMPLES")
def test_a_real_clip_over_rtsp_gives_health_and_no_incident(live_camera, database_url, tmp_path):
    """vtest.avi (pedestrians, no drop) streamed live: frames flow, health is written, nothing is reported.

    The clip is not of the camera's façade, so its calibration is taken away for the test (the detector
    then works on the whole view)."""
    from gis.models import Camera, CameraHealth, Incident

    rtsp = RtspServer(free_port(), tmp_path / "rtsp.log").start({"real": SAMPLES / "vtest.avi"})
    Camera.objects.filter(pk=live_camera.pk).update(stream_url=rtsp.url("real"), calibration={})
    before = Incident.objects.filter(camera=live_camera).count()
    service = Service(database_url=database_url, cameras=[live_camera.code], evidence=tmp_path / "ev",
                      log=tmp_path / "service.log")
    try:
        # the first interval holds FFmpeg's probing burst (seconds of frames at once); later ones the file's pace
        health = _wait_for("health at the stream's 10 fps", lambda: CameraHealth.objects.filter(
            camera=live_camera, connected=True, frames_out__gte=50, fps_in__gte=5, fps_in__lte=15).first(),
            timeout=60, service=service)
    finally:
        service.stop()
        rtsp.kill()
    assert health.state == "connected" and health.fps_out > 0
    assert health.last_error == "" and health.events == 0
    assert Incident.objects.filter(camera=live_camera).count() == before


@needs_gstreamer
def test_a_worker_ends_when_its_service_is_killed_outright(live_camera, drops, database_url, tmp_path):
    """SIGKILL of the service (the OOM killer, a crash) tells its forked camera workers nothing: each notices
    its parent is gone and ends, instead of reading the camera for ever beside the next service."""
    from gis.models import Camera, CameraHealth
    from vision.service import ORPHAN_GRACE_S, ORPHAN_POLL_S

    rtsp = RtspServer(free_port(), tmp_path / "rtsp.log").start({"cam": drops[0]["path"]}, loop=True)
    Camera.objects.filter(pk=live_camera.pk).update(stream_url=rtsp.url("cam"))
    service = Service(database_url=database_url, cameras=[live_camera.code], evidence=tmp_path / "ev",
                      log=tmp_path / "service.log")
    try:
        health = _wait_for("the worker connected", lambda: CameraHealth.objects.filter(
            camera=live_camera, connected=True, worker_pid__isnull=False).first(), timeout=60, service=service)
        worker = health.worker_pid
        assert worker != service.process.pid and _alive(worker)
        os.kill(service.process.pid, signal.SIGKILL)  # the service only: its worker is not told
        service.process.wait(10)
        deadline = time.monotonic() + ORPHAN_POLL_S + ORPHAN_GRACE_S + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(worker), f"camera worker {worker} still runs after its service was killed"
    finally:
        os.killpg(service.process.pid, signal.SIGKILL) if _alive(service.process.pid) else None
        rtsp.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


# -- evidence: two writers for one camera ----------------------------------------------------


def _write_records(root: str, n: int, seed: int) -> None:
    from vision.events import VisionEvent
    from vision.evidence import EvidenceRecorder

    rng = np.random.default_rng(seed)
    recorder = EvidenceRecorder(root=Path(root), camera_code="CAM-SHARED", fps=10.0, pre_seconds=2.0,
                                post_seconds=2.0)
    index = 0
    for k in range(n):
        event = VisionEvent(type="falling_object", t_start=index / 10, t_end=index / 10 + 0.5, confidence=0.9,
                            frames=(index, index + 5), trajectory=((10.0, 10.0), (12.0, 30.0)),
                            origin_image=(10.0, 5.0), floor=None, column=None, location=None, evidence=None)
        recorder.push(index, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        recorder.start(k + 1, index)
        recorder.end(k + 1, index, index + 1, event)
        for _ in range(25):  # the post-roll: the clip is sealed on one of these
            index += 1
            recorder.push(index, rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    recorder.flush()


def test_two_writers_for_one_camera_make_one_chain(tmp_path):
    from vision.evidence import verify

    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_records, args=(str(tmp_path), 12, seed)) for seed in (1, 2)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
        assert w.exitcode == 0
    report = verify(tmp_path)
    assert report.ok, report.problems
    assert report.records == 24
    chain = tmp_path / "CAM-SHARED"
    assert json.loads((chain / "HEAD").read_text())["seq"] == 24
    assert not list(chain.glob(".pending-*"))


# -- status and the screen -------------------------------------------------------------------------


@pytest.fixture
def camera_with_health(live_camera):
    from django.utils import timezone

    from gis.spatial.services import camera_health_write

    camera_health_write(camera_id=live_camera.id, values={
        "state": "reconnecting", "connected": False, "fps_in": 24.5, "fps_out": 20.0, "frames_in": 1000,
        "frames_out": 900, "frames_dropped": 100, "reconnects": 3, "gaps": 2, "gap_seconds": 7.5,
        "events": 1, "last_event_at": timezone.now(), "last_event_latency_s": 0.8,
        "last_error": "<b>rtsp://x</b>: cannot connect", "last_error_at": timezone.now(), "worker_pid": 1,
    })
    return live_camera


def test_status_prints_each_cameras_health(camera_with_health, database_url):
    env = dict(os.environ, ONEMAP_DATABASE_URL=database_url)
    out = subprocess.run([sys.executable, "-m", "host.cli", "vision", "status", "--camera", camera_with_health.code],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(row for row in out.stdout.splitlines() if row.startswith(camera_with_health.code))
    assert "reconnecting" in line and "24.5/20.0" in line and "100 ( 10%)" in line and "2 (7.5 s)" in line
    as_json = subprocess.run([sys.executable, "-m", "host.cli", "vision", "status", "--json", "--camera",
                              camera_with_health.code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    row = json.loads(as_json.stdout.splitlines()[0])
    assert row["health"]["gaps"] == 2 and row["health"]["frames_dropped"] == 100


def test_screen_camera_markers_carry_health(camera_with_health, accounts):
    import base64

    from django.test import Client

    account = accounts["commander"]
    raw = base64.b64encode(f"{account.username}:{account.token}".encode()).decode()
    body = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Basic {raw}").get("/screen/api/cameras").json()
    props = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    health = props[camera_with_health.code]["health"]
    assert health["state"] == "reconnecting" and health["connected"] is False
    assert health["fps_in"] == 24.5 and health["frames_dropped"] == 100 and health["gaps"] == 2
    assert health["last_error"].startswith("<b>")  # as stored; the page puts it in as text
    assert "stream_url" not in props[camera_with_health.code]  # the URL may carry credentials
    others = [p for code, p in props.items() if code != camera_with_health.code]
    assert others and all(p["health"] is None for p in others)
