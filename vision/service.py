"""``onemap vision run``: the long-running camera service, one worker process per camera, and its health.

The supervisor (:func:`run_service`) reads the cameras to run from the database (a
stream URL, not under maintenance), forks one worker per camera, restarts a worker that
dies after a growing pause (its watchdog), starts workers for cameras added later and
stops those of cameras removed, disabled or re-pointed. A worker (:func:`camera_worker`)
reads its stream through the streaming core: the source reconnects with backoff and
drops (and counts) frames the detector cannot keep up with; every accepted event becomes
an incident and its case in a transaction of its own the moment the detector ends it,
and its evidence is attached when its clip has its post-roll. A person passing is no
incident: a peephole camera's becomes a sighting of its door's sensor (the care subject's
activity), a courtyard camera's is added to the hourly people counts; neither keeps an
image. A thread of the worker writes the camera's health every few seconds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

HEALTH_INTERVAL_S = 2.0
POLL_SECONDS = 10.0  # how often the supervisor looks for added, removed or changed cameras
RESTART_MAX_SECONDS = 60.0
ORPHAN_POLL_S, ORPHAN_GRACE_S = 0.5, 10.0  # a worker whose service died: noticed within, ended after
LIVE_QUEUE_FRAMES = 25  # a live camera buffers at most this many frames (1 s at 25 fps); older ones are dropped


@dataclass
class ServiceOptions:
    evidence_dir: Path | None
    health_interval: float = HEALTH_INTERVAL_S
    queue_size: int = LIVE_QUEUE_FRAMES
    reconnect_max_seconds: float = 10.0
    poll_seconds: float = POLL_SECONDS


# -- the supervisor ------------------------------------------------------------------------


@dataclass
class _Worker:
    code: str
    url: str
    process: object = None
    stop: object = None  # a multiprocessing Event
    restarts: int = 0
    next_start: float = 0.0


def run_service(*, codes: list[str] | None, options: ServiceOptions, stop: threading.Event,
                log: Callable[[str], None] = print) -> int:
    """Run a worker per camera until ``stop`` is set; returns the number of cameras run at the end."""
    import multiprocessing

    from django.db import connections

    from gis.spatial.selectors import cameras_to_run

    ctx = multiprocessing.get_context("fork")  # the parent has Django set up and no torch; children inherit it
    workers: dict[str, _Worker] = {}
    next_poll = 0.0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_poll:
                wanted = {c.code: c.stream_url for c in cameras_to_run(codes=codes)}
                connections.close_all()  # never share a connection with a forked child
                for code in [c for c, w in workers.items() if wanted.get(c) != w.url]:
                    log(f"camera {code}: removed, disabled or re-pointed; stopping its worker")
                    _stop_worker(workers.pop(code))
                for code, url in wanted.items():
                    workers.setdefault(code, _Worker(code=code, url=url))
                if not workers and next_poll == 0.0:
                    log("no camera has a stream URL (or all are under maintenance); waiting for one")
                next_poll = now + options.poll_seconds
            for w in workers.values():
                _watch(ctx, w, options, log)
            stop.wait(0.5)
    finally:
        for w in workers.values():
            if w.stop is not None:
                w.stop.set()
        for w in workers.values():
            _stop_worker(w)
    return len(workers)


def _watch(ctx, w: _Worker, options: ServiceOptions, log) -> None:
    """Start the worker when it is due; a dead one is restarted after a pause that doubles each time."""
    now = time.monotonic()
    if w.process is not None and w.process.is_alive():
        return
    if w.process is not None:  # it died
        code = w.process.exitcode
        w.process = None
        w.restarts += 1
        pause = min(2.0 ** min(w.restarts, 6), RESTART_MAX_SECONDS)
        w.next_start = now + pause
        log(f"camera {w.code}: worker exited with code {code}; restarting in {pause:.0f} s")
        _note_exit(w.code, f"worker exited with code {code}; restart {w.restarts} in {pause:.0f} s")
        return
    if now < w.next_start:
        return
    from django.db import connections

    connections.close_all()
    w.stop = ctx.Event()
    w.process = ctx.Process(target=_worker_main, name=f"onemap-vision-{w.code}",
                            args=(w.code, options, w.stop), daemon=False)
    w.process.start()
    log(f"camera {w.code}: worker {w.process.pid} reading {w.url}")


def _stop_worker(w: _Worker, timeout: float = 10.0) -> None:
    if w.process is None:
        return
    w.stop.set()
    w.process.join(timeout)
    if w.process.is_alive():
        w.process.terminate()
        w.process.join(5)


def _note_exit(code: str, message: str) -> None:
    from gis.spatial.models import Camera
    from gis.spatial.services import camera_health_write

    camera = Camera.objects.filter(code=code).first()
    if camera is not None:
        camera_health_write(camera_id=camera.id, values={"state": "failed", "connected": False, "last_error": message,
                                                         "last_error_at": datetime.now(timezone.utc)})


def _worker_main(code: str, options: ServiceOptions, stop) -> None:
    """A worker process: stop on SIGTERM or SIGINT, run the camera, exit 1 on an error (the watchdog restarts it)."""
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=_end_with_the_service, args=(os.getppid(), stop), name="service watcher",
                     daemon=True).start()
    try:
        camera_worker(code, options=options, stop=stop)
    except Exception:  # noqa: BLE001 - written to the health row and the log; the supervisor restarts us
        import traceback

        traceback.print_exc()
        os._exit(1)


def _end_with_the_service(service_pid: int, stop) -> None:
    """A worker whose service is gone (killed outright: nothing told us) stops, and is ended if it hangs."""
    while os.getppid() == service_pid:
        time.sleep(ORPHAN_POLL_S)
    stop.set()
    time.sleep(ORPHAN_GRACE_S)
    os._exit(1)


# -- one camera ------------------------------------------------------------------------------


def camera_worker(code: str, *, options: ServiceOptions, stop) -> None:
    """Read one camera until ``stop`` is set: incidents as events end, health every few seconds."""
    import cv2

    from vision.config import DetectorConfig
    from vision.sink import SinkError, camera_for_code, incident_evidence_add, incidents_write
    from vision.sources import StreamSource
    from vision.streaming import StreamingCore

    cv2.setNumThreads(1)  # one camera, one core
    camera = camera_for_code(code)
    config = DetectorConfig()
    source = StreamSource(camera.stream_url, queue_size=options.queue_size,
                          reconnect_max_seconds=options.reconnect_max_seconds)
    health = HealthReporter(camera_id=camera.id, source=source, interval=options.health_interval)
    passes = _PeoplePasses(camera=camera, health=health)

    def ended(event, timing):
        # reported at the arrival of the event's first frame: incidents_write adds t_start to started_at
        started_at = (timing.started_at or datetime.now(timezone.utc)) - timedelta(seconds=event.t_start)
        if event.type == "person":  # a sighting at the door or a courtyard count, never an incident
            passes.write(event, started_at)
            return None
        try:
            written = incidents_write(events=[event], camera=camera, started_at=started_at)
        except SinkError as exc:
            health.error(str(exc))
            return None
        health.event(timing.latency_s)
        return written[0].id

    def sealed(event, incident_id):
        if incident_id is not None and event.evidence:
            incident_evidence_add(incident_id=incident_id, event=event)

    stages = stages_for(camera, config=config, fps=source.fps, on_occupancy=occupancy_writer(on_error=health.error),
                        note=health.error)
    core = StreamingCore(source=source, stages=stages, config=config,
                         evidence_dir=options.evidence_dir, camera_code=camera.code, on_ended=ended, on_sealed=sealed)
    health.frames_out = lambda: core.frames_out
    threading.Thread(target=lambda: (stop.wait(), source.stop()), name="stop watcher", daemon=True).start()
    health.start()
    try:
        core.run()
    except Exception as exc:
        health.error(f"{type(exc).__name__}: {exc}")
        health.finish("failed")
        raise
    health.finish("stopped")


@dataclass
class _PeoplePasses:
    """A worker's people passing: a peephole's to its door's sensor (an unbound one is reported in the
    camera's health, and the worker goes on), a courtyard's to the hourly counts."""

    camera: object
    health: "HealthReporter"
    sensor: object = None
    unbound: str | None = None

    def __post_init__(self):
        from vision.sink import UnboundPeephole, door_sensor_for

        if self.camera.purpose == "peephole":
            try:
                self.sensor = door_sensor_for(self.camera)
            except UnboundPeephole as exc:
                self.unbound = str(exc)
                self.health.error(self.unbound)
                print(f"camera {self.camera.code}: {self.unbound}", flush=True)

    def write(self, event, started_at: datetime) -> None:
        from vision.sink import SinkError, people_passes_write

        if self.unbound:
            self.health.error(self.unbound)
            return
        try:
            people_passes_write(events=[event], camera=self.camera, started_at=started_at, sensor=self.sensor)
        except SinkError as exc:
            self.health.error(str(exc))


def occupancy_writer(*, on_error: Callable[[str], None]) -> Callable:
    """What a parking stage calls on each spot's change: the ``parking_spots`` row, in a transaction of its own,
    stamped with the moment the change was decided; a failed write is reported, never raised."""

    def write(change) -> None:
        from django.db import DatabaseError, connection

        from gis.services import ServiceError
        from gis.spatial.services import parking_occupancy_set

        if change.spot_id is None:
            return
        try:
            parking_occupancy_set(spot_id=change.spot_id, occupancy=change.occupancy, at=datetime.now(timezone.utc))
        except ServiceError as exc:
            on_error(f"occupancy of spot {change.code} not written: {exc}")
        except DatabaseError as exc:  # the database may be restarting: the next change tries afresh
            on_error(f"occupancy of spot {change.code} not written: {exc}")
            connection.close()

    return write


def stages_for(camera, *, config, fps: float, on_occupancy=None, note: Callable[[str], None] = print) -> list:
    """The detector stages a camera runs, by its purpose (:func:`vision.streaming.detect_for`): façade cameras
    look for falling objects, courtyard cameras for fire and smoke and people passing, car-park cameras for
    fire and smoke and parking (spot occupancy to ``on_occupancy``, illegal parking as incidents), peephole
    cameras for people passing their door; a camera with no stage still has its stream read and its health
    reported. A car-park camera that cannot watch parking (no ground calibration) keeps its fire stage, and
    ``note`` says why parking was skipped."""
    from vision.parking import ParkingSetupError, parking_layout_for
    from vision.streaming import detect_for, detector_stages

    detect = detect_for(camera)
    calibration = camera.calibration or None
    if "illegal_parking" in detect:
        try:
            return detector_stages(detect, calibration=calibration, config=config, fps=fps,
                                   parking_layout=parking_layout_for(camera), on_occupancy=on_occupancy)
        except ParkingSetupError as exc:
            note(f"parking skipped for camera {camera.code}: {exc}")
            detect = tuple(d for d in detect if d != "illegal_parking")
    return detector_stages(detect, calibration=calibration, config=config, fps=fps)


@dataclass
class HealthReporter:
    """Writes a camera's health row every ``interval`` seconds from a thread of the worker."""

    camera_id: int
    source: object  # a StreamSource
    interval: float
    frames_out: Callable[[], int] = lambda: 0
    events: int = 0
    last_event_at: datetime | None = None
    last_event_latency_s: float | None = None
    _error: tuple[str, datetime] | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last: tuple[float, int, int] | None = None  # (monotonic, frames in, frames out) at the last write
    _started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def start(self) -> None:
        self._write("starting")
        self._thread = threading.Thread(target=self._loop, name="camera health", daemon=True)
        self._thread.start()

    def event(self, latency: float | None) -> None:
        with self._lock:
            self.events += 1
            self.last_event_at = datetime.now(timezone.utc)
            self.last_event_latency_s = latency
        self._write()  # the screen shows the event now, not at the next tick

    def error(self, message: str) -> None:
        with self._lock:
            self._error = (message, datetime.now(timezone.utc))

    def finish(self, state: str) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)
        self._write(state)
        from django.db import connection

        connection.close()

    def _loop(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.interval):
                try:
                    self._write()
                except Exception as exc:  # noqa: BLE001 - the database may be restarting; try again next tick
                    print(f"camera health: {exc}", flush=True)
                    connection.close()
        finally:
            connection.close()

    def _write(self, state: str | None = None) -> None:
        from gis.spatial.services import camera_health_write

        src = self.source
        now = time.monotonic()
        frames_in, frames_out = src.frames_received, self.frames_out()
        fps_in = fps_out = 0.0
        with self._lock:
            if self._last is not None and now > self._last[0]:
                dt = now - self._last[0]
                fps_in, fps_out = (frames_in - self._last[1]) / dt, (frames_out - self._last[2]) / dt
            if state is None or self._last is None:
                self._last = (now, frames_in, frames_out)
            error = self._error
        if error is None and src.last_error:
            error = (src.last_error, datetime.fromtimestamp(src.last_error_at, timezone.utc))
        elif error is not None and src.last_error and src.last_error_at > error[1].timestamp():
            error = (src.last_error, datetime.fromtimestamp(src.last_error_at, timezone.utc))
        if state is None:
            state = "connected" if src.connected else ("reconnecting" if src.frames_received else "starting")
        camera_health_write(camera_id=self.camera_id, values={
            "state": state, "connected": bool(src.connected) and state == "connected",
            "fps_in": round(fps_in, 2), "fps_out": round(fps_out, 2), "frames_in": frames_in,
            "frames_out": frames_out, "frames_dropped": src.frames_dropped, "reconnects": src.reconnects,
            "gaps": src.gaps, "gap_seconds": round(src.gap_seconds, 3), "last_gap_seconds": src.last_gap_seconds,
            "events": self.events, "last_event_at": self.last_event_at,
            "last_event_latency_s": self.last_event_latency_s,
            "last_error": error[0] if error else "", "last_error_at": error[1] if error else None,
            "worker_pid": os.getpid(), "started_at": self._started_at,
        })
