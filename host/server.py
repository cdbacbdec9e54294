"""The production HTTP server: granian (HTTP in Rust, the ASGI app in Python worker processes).

``onemap serve`` runs it. gunicorn's Python HTTP handling cost more CPU per request
than answering a feature does; granian parses, keeps connections alive and writes
responses outside the interpreter (measured in docs/performance.md). The app is
ASGI (:mod:`host.asgi`) so the big screen's live feed can hold many streams open on
one event loop; other requests run on ``threads`` threads per worker. Static files
(our own under ``api/static``, third-party ones under ``.var/vendor``) are served by
granian itself. The access log is written by the app's workers
(:mod:`host.access_log`), not by granian.
"""

from __future__ import annotations

import os

from core.children import PARENT_ENV
from core.settings import PROJECT_ROOT
from host.access_log import ENV as ACCESS_LOG_ENV

STOP_TIMEOUT_S = 3

STATIC_DIR = PROJECT_ROOT / "api" / "static"  # the faces' own assets


class OnemapServer:
    """granian configured from code: ``workers`` processes, each running the app on ``threads`` threads."""

    def __init__(self, *, host: str, port: int, workers: int, threads: int, access_log: bool = True):
        self.host, self.port, self.workers, self.threads, self.access_log = host, port, workers, threads, access_log

    def run(self) -> None:
        from granian import Granian
        from granian.constants import Interfaces

        from host.vendor import vendor_dir

        os.environ["ONEMAP_HTTP_THREADS"] = str(self.threads)  # read by host.asgi in each worker
        # the workers write the access log themselves (host.access_log: granian's costs 0.13 ms a request)
        os.environ[ACCESS_LOG_ENV] = "1" if self.access_log else "0"
        os.environ[PARENT_ENV] = str(os.getpid())  # each worker watches this process (die_with_parent)
        vendor = vendor_dir()
        vendor.mkdir(parents=True, exist_ok=True)
        STATIC_DIR.mkdir(exist_ok=True)
        Granian(
            "host.asgi:application",
            address=self.host,
            port=self.port,
            interface=Interfaces.ASGI,
            websockets=False,
            workers=self.workers,
            log_access=False,
            static_path_route=["/static", "/vendor"],
            static_path_mount=[STATIC_DIR, vendor],
            # a worker that dies (say, the database vanished at start) is started again
            respawn_failed_workers=True,
            # open live-feed streams never end by themselves: a stopping worker is ended after this
            # (browsers reconnect and replay what they missed)
            workers_kill_timeout=STOP_TIMEOUT_S,
        ).serve()
