"""``onemap demo --cameras``: two demo cameras streaming rendered clips over RTSP, watched by ``onemap vision run``.

A façade camera sees a wall (drawn through its own calibration) from which an object falls once
every ``FACADE_LOOP_S``; a courtyard camera sees a yard where a fire flickers up once every
``COURTYARD_LOOP_S``. The clips are rendered once into ``.var/demo-streams`` (H.264 when GStreamer's
``gst-launch-1.0`` is there, so the RTSP server does not encode live), served in a loop by
``host/rtsp_server.py`` on the system Python, and the two cameras' ``stream_url`` point at them; the
camera service then writes each incident the moment its event ends, and the big screen shows it.
Both children end with the process that started them.

Everything here is synthetic: no recorded video, no person.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from core.settings import PROJECT_ROOT

SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_SERVER = PROJECT_ROOT / "host" / "rtsp_server.py"
FACADE_LOOP_S, FACADE_DROP_AT_S = 120.0, 100.0  # a drop every two minutes
COURTYARD_LOOP_S, COURTYARD_FIRE_AT_S = 180.0, 160.0  # a fire every three minutes, for 20 s
RECIPE_VERSION = 1  # bump when the clips change: they are rendered again


class DemoCamerasError(RuntimeError):
    """The demo cameras cannot run here; the message says what is missing."""


@dataclass
class DemoCameras:
    """The RTSP server and the camera service, and which cameras watch what."""

    rtsp: subprocess.Popen
    vision: subprocess.Popen
    cameras: dict[str, str]  # camera code -> stream URL

    def children(self) -> list[subprocess.Popen]:
        return [self.vision, self.rtsp]


def gstreamer_missing() -> str | None:
    """Why GStreamer's RTSP server cannot run on the system Python here, or None."""
    if not os.path.exists(SYSTEM_PYTHON):
        return f"no {SYSTEM_PYTHON}"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True, text=True)
    if probe.returncode:
        return ("GStreamer's RTSP server is not installed for the system Python (scripts/bootstrap.sh installs "
                "python3-gi, python3-gst-1.0, gir1.2-gst-rtsp-server-1.0 and the GStreamer plugins)")
    return None


def start_demo_cameras(*, folder: Path | None = None, facade: tuple[float, float] = (FACADE_LOOP_S, FACADE_DROP_AT_S),
                       courtyard: tuple[float, float] = (COURTYARD_LOOP_S, COURTYARD_FIRE_AT_S),
                       log=print) -> DemoCameras:
    """Render the clips if needed (into ``folder``, default ``.var/demo-streams``), serve them, point the
    cameras at them and start ``onemap vision run``. ``facade`` and ``courtyard`` are (loop length, moment
    of the drop or the fire) in seconds."""
    from core.children import PARENT_ENV
    from core.settings import settings
    from gis.models import Camera

    problem = gstreamer_missing()
    if problem:
        raise DemoCamerasError(problem)
    facade_camera = (Camera.objects.filter(purpose="facade", synthetic=True, calibration__has_key="facade")
              .order_by("code").first())
    courtyard_camera = Camera.objects.filter(purpose="courtyard", synthetic=True).order_by("code").first()
    if facade_camera is None or courtyard_camera is None:
        raise DemoCamerasError("the demo community has no synthetic façade camera with a calibration and courtyard "
                               "camera: load it with onemap load-demo")
    folder = folder or settings().var_dir / "demo-streams"
    clips = {"facade": _facade_clip(folder, facade_camera, *facade, log=log),
             "courtyard": _courtyard_clip(folder, courtyard_camera, *courtyard, log=log)}
    port = _free_port()
    with open(folder / "rtsp.log", "ab") as errors:
        rtsp = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_SERVER), "--port", str(port), "--loop",
                                 *(f"{name}={path}" for name, path in clips.items())],
                                stdout=subprocess.PIPE, stderr=errors)
    line = rtsp.stdout.readline().decode().strip()
    if line != "ready":
        rtsp.kill()
        raise DemoCamerasError(f"the RTSP server did not start on 127.0.0.1:{port}; see {folder / 'rtsp.log'}")
    urls = {facade_camera.code: f"rtsp://127.0.0.1:{port}/facade",
            courtyard_camera.code: f"rtsp://127.0.0.1:{port}/courtyard"}
    for code, url in urls.items():
        Camera.objects.filter(code=code).update(stream_url=url, status="online")
    env = dict(os.environ, **{PARENT_ENV: str(os.getpid())})
    command = [sys.executable, "-m", "host.cli", "vision", "run"]
    for code in urls:
        command += ["--camera", code]
    vision = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT)
    return DemoCameras(rtsp=rtsp, vision=vision, cameras=urls)


def _facade_clip(folder: Path, camera, loop_s: float, drop_at_s: float, *, log) -> Path:
    from vision.calibration import Calibration
    from vision.falling_synthetic import FPS, render_drop

    cal = Calibration.from_dict(camera.calibration)
    u_lo, u_hi, v_lo, v_hi = cal.facade_extent_m()
    floor = cal.floor_at(v_lo + 0.6 * (v_hi - v_lo))
    recipe = {"version": RECIPE_VERSION, "camera": camera.code, "calibration": camera.calibration, "floor": floor,
              "loop_s": loop_s, "drop_at_s": drop_at_s}

    def render(path: Path) -> None:
        render_drop(camera.calibration, path, floor=floor, u=(u_lo + u_hi) / 2, seconds=loop_s, radius_px=4.0,
                    seed=1, release_frame=int(drop_at_s * FPS))

    return _cached(folder / "facade", recipe, render, log=log,
                   what=f"a drop from floor {floor} every {loop_s:.0f} s for camera {camera.code}")


def _courtyard_clip(folder: Path, camera, loop_s: float, fire_at_s: float, *, log) -> Path:
    from vision.fire_synthetic import render_clip

    size = _frame_size(camera.calibration)  # the camera's calibration, if any, holds for the clip's frames
    recipe = {"version": RECIPE_VERSION, "loop_s": loop_s, "fire_at_s": fire_at_s, "size": size}

    def render(path: Path) -> None:
        render_clip("flame", path, seconds=loop_s, seed=7, flame_from=fire_at_s, size=size)

    return _cached(folder / "courtyard", recipe, render, log=log,
                   what=f"a fire in a yard every {loop_s:.0f} s")


def _frame_size(calibration: dict, width: int = 640) -> list[int] | None:
    """A frame size ``width`` wide with the aspect ratio of the calibration's image (None without one)."""
    size = (calibration or {}).get("image_size")
    if not size:
        return None
    return [width, round(width * size[1] / size[0])]


def _cached(stem: Path, recipe: dict, render, *, log, what: str) -> Path:
    """The clip made by ``render`` for ``recipe``: from the cache when the recipe matches, else made afresh."""
    manifest = stem.with_suffix(".json")
    if manifest.exists():
        kept = json.loads(manifest.read_text())
        if kept.get("recipe") == recipe and Path(kept.get("path", "")).exists():
            return Path(kept["path"])
    stem.parent.mkdir(parents=True, exist_ok=True)
    log(f"  rendering the demo camera clip: {what} ...")
    raw = stem.with_suffix(".avi")
    render(raw)
    path = _h264(raw) or raw
    manifest.write_text(json.dumps({"recipe": recipe, "path": str(path)}))
    return path


def _h264(raw: Path) -> Path | None:
    """The clip as H.264 in MP4 (served as it is), or None when GStreamer's tools are not there."""
    launcher = shutil.which("gst-launch-1.0")
    if launcher is None:
        return None
    out = raw.with_suffix(".h264.mp4")
    done = subprocess.run([launcher, "-q", "filesrc", f"location={raw}", "!", "decodebin", "!", "videoconvert", "!",
                           "x264enc", "speed-preset=veryfast", "bitrate=1500", "key-int-max=25", "!", "h264parse", "!",
                           "mp4mux", "!", "filesink", f"location={out}"], capture_output=True)
    if done.returncode or not out.exists():
        out.unlink(missing_ok=True)
        return None
    raw.unlink()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
