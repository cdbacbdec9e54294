"""``onemap serve``, ``demo``, ``vendor``: serving the web faces, and the demo in one command
(the server with ``onemap worker`` and ``onemap ingest`` beside it, the sensors' broker started).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timedelta

from core.cli import CommandError, setup_django
from host.cli.database import migrate_quietly


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    srv = sub.add_parser("serve", help="serve the web application and the OGC API")
    srv.add_argument("--host", default=None, help="default ONEMAP_HTTP_HOST or 127.0.0.1")
    srv.add_argument("--port", type=int, default=None, help="default ONEMAP_HTTP_PORT or 8000")
    srv.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    srv.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    srv.add_argument(
        "--no-access-log", action="store_true",
        help="do not log each request to stdout (reads of personal records are still logged in the database)",
    )
    srv.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="start the database and the broker, migrate, load the demo (once), serve it, "
                                      "run the worker and the ingest")
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument("--reload-demo", action="store_true", help="load the demo again even if it is there")
    demo.add_argument("--no-simulator", action="store_true",
                      help="do not start the simulated door magnets and peephole cameras (onemap sensors simulate)")
    demo.add_argument("--no-cameras", action="store_true",
                      help="do not stream the two demo cameras' rendered clips (a drop, a fire) to onemap vision run")
    demo.set_defaults(func=cmd_demo)

    vendor = sub.add_parser(
        "vendor", help="fetch the pinned browser assets (Leaflet, VectorGrid, Bootstrap CSS, Swagger UI) and build the CJK font"
    )
    vendor.add_argument("--force", action="store_true", help="fetch and build everything again, even if up to date")
    vendor.add_argument("--font", help="the Noto Sans CJK font to subset (default Debian's fonts-noto-cjk .ttc)")
    vendor.set_defaults(func=cmd_vendor)


DEMO_COMMANDER = "demo_commander"


def cmd_serve(args) -> int:
    from core.settings import settings as current_settings

    settings = current_settings()
    host = args.host or settings.http_host
    port = args.port or settings.http_port
    # the OGC API builds its links from these; workers inherit them
    os.environ["ONEMAP_HTTP_HOST"], os.environ["ONEMAP_HTTP_PORT"] = host, str(port)
    setup_django()
    migrate_quietly()
    from django.db import connections

    connections.close_all()  # no connection may be shared by the forked workers
    _print_urls(host, port)
    from host.server import OnemapServer

    OnemapServer(
        host=host, port=port, workers=args.workers, threads=args.threads,
        access_log=not getattr(args, "no_access_log", False),
    ).run()
    return 0


def cmd_demo(args) -> int:
    started = time.monotonic()
    setup_django(log_progress=True)
    print("[2/4] migrating the schema ...", flush=True)
    migrate_quietly()
    from data.demo import DEFAULT_SEED
    from host.cli.data import demo_moment, load_demo_and_cases

    now = demo_moment("now")
    why = demo_load_reason(now=now, reload=args.reload_demo)
    if why:
        print(f"[3/4] {why}: generating and loading the demo community (Pingdeng Street) as of "
              f"{now:%Y-%m-%d %H:%M %Z}, with its cases ...", flush=True)
        print(load_demo_and_cases(seed=DEFAULT_SEED, progress=True, as_of=now).describe())
    else:
        print("[3/4] demo community already loaded for today (use --reload-demo to load it again)")
    username, token = demo_screen_login()
    from host.cli.broker import start_broker, start_ingest_beside_server, start_simulator_beside_server
    from host.cli.worker import start_beside_server, stop_child

    start_broker()
    worker = start_beside_server()
    ingest = start_ingest_beside_server()
    simulator = start_simulator_beside_server() if not args.no_simulator else None
    cameras = _DemoCamerasBeside() if not args.no_cameras else None
    print(f"[4/4] serving (ready after {time.monotonic() - started:.1f} s)", flush=True)
    print(f"  the big screen /screen/ asks for a login: user {username}, password {token}"
          " (kept in .var/demo-screen-token)", flush=True)
    print(f"  the worker (notifications, timers) runs beside the server: pid {worker.pid}", flush=True)
    print(f"  the sensor ingest (MQTT, docs/sensors.md) runs beside it: pid {ingest.pid}", flush=True)
    if simulator is not None:
        print(f"  the demo's 310 sensors publish over MQTT, a day every 3 minutes (docs/care.md): pid {simulator.pid}",
              flush=True)
    try:
        return cmd_serve(argparse.Namespace(host=None, port=args.port, workers=2, threads=4))
    finally:
        if cameras is not None:
            cameras.stop()
        if simulator is not None:
            stop_child(simulator)
        stop_child(ingest)
        stop_child(worker)


class _DemoCamerasBeside:
    """The demo cameras (``host.demo_cameras``), started in a thread so that serving does not wait for their
    clips to be rendered (a minute, the first time); a machine without GStreamer gets a line saying so."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._stopped = False
        self._cameras = None
        threading.Thread(target=self._start, name="onemap-demo-cameras", daemon=True).start()

    def _start(self) -> None:
        from django.db import connection

        from host.demo_cameras import DemoCamerasError, start_demo_cameras

        try:
            cameras = start_demo_cameras(log=lambda msg: print(msg, flush=True))
        except DemoCamerasError as exc:
            print(f"  the demo cameras are not streaming: {exc}", flush=True)
            return
        except Exception as exc:  # noqa: BLE001 - the demo serves on without its cameras, and says why
            print(f"  the demo cameras could not start: {type(exc).__name__}: {exc}", flush=True)
            return
        finally:
            connection.close()
        with self._lock:
            self._cameras = cameras
            if self._stopped:
                return self._stop_children()
        print("  two demo cameras stream rendered clips to onemap vision run (a drop every 2 min, a fire every 3 min; "
              f"docs/vision.md): {', '.join(cameras.cameras)}; pid {cameras.vision.pid}", flush=True)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._cameras is not None:
                self._stop_children()

    def _stop_children(self) -> None:
        from host.cli.worker import stop_child

        for child in self._cameras.children():
            stop_child(child)


DEMO_STALE_AFTER = timedelta(days=1)  # a demo loaded as of longer ago than this is loaded again for now


def demo_load_reason(*, now: datetime, reload: bool = False) -> str | None:
    """Why ``onemap demo`` must load the demo (for ``now``), or None when the one in place is alive today.

    Its incidents, cases and sensor events are dated relative to the moment it was loaded for; a day later
    the screen's "today" panels and its live list would be empty, so an older demo is loaded again."""
    from data.demo import demo_loaded_as_of

    if reload:
        return "--reload-demo"
    loaded = demo_loaded_as_of()
    if loaded is None:
        return "no demo loaded yet"
    if now - loaded > DEMO_STALE_AFTER or loaded > now + DEMO_STALE_AFTER:
        return f"the demo in place was loaded as of {loaded:%Y-%m-%d %H:%M}, more than a day from now"
    return None


def demo_screen_login() -> tuple[str, str]:
    """A commander for the demo's big screen, and a token kept in ``.var/demo-screen-token`` (0600) for next time."""
    from core.settings import settings as current_settings
    from gis.accounts import services as accounts
    from gis.models import AccessProfile, AccessToken

    path = current_settings().var_dir / "demo-screen-token"
    if path.exists():
        token = path.read_text().strip()
        if AccessToken.objects.filter(digest=accounts.token_digest(token), revoked_at__isnull=True,
                                      user__username=DEMO_COMMANDER, user__is_active=True).exists():
            return DEMO_COMMANDER, token
    if not AccessProfile.objects.filter(user__username=DEMO_COMMANDER).exists():
        accounts.user_create(username=DEMO_COMMANDER, role="commander", department="demo command centre")
    _, token = accounts.token_create(username=DEMO_COMMANDER, name="demo big screen")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return DEMO_COMMANDER, token


def cmd_vendor(args) -> int:
    from pathlib import Path

    from host.vendor import FontSpec, VendorError, vendor_install

    font = FontSpec(source=Path(args.font)) if args.font else FontSpec()
    try:
        report = vendor_install(force=args.force, font=font, log=lambda msg: print(msg, flush=True))
    except VendorError as exc:
        raise CommandError(str(exc)) from None
    print(report.describe())
    return 0


def _print_urls(host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    print("Community One Map is being served:")
    print(f"  {base}/                       landing page")
    print(f"  {base}/ogc/                   OGC API (add it in QGIS: Layer ▸ Add WFS / OGC API - Features)")
    print(f"  {base}/ogc/collections        the published layers", flush=True)
    print(f"  {base}/screen/                the command-centre big screen (administrators and commanders)", flush=True)
