"""The production HTTP server: granian (HTTP in Rust, the WSGI app in Python worker processes).

``onemap serve`` runs it. gunicorn's Python HTTP handling cost more CPU per request
than answering a feature does; granian parses, keeps connections alive and writes
responses outside the interpreter (measured in docs/performance.md).
"""

from __future__ import annotations


# granian's default leaves out the query string, which says what a client asked for
ACCESS_LOG_FORMAT = '[%(time)s] %(addr)s "%(method)s %(path)s?%(query_string)s %(protocol)s" %(status)d %(dt_ms).1f ms'


class OnemapServer:
    """granian configured from code: ``workers`` processes, each running the app on ``threads`` threads."""

    def __init__(self, *, host: str, port: int, workers: int, threads: int, access_log: bool = True):
        self.host, self.port, self.workers, self.threads, self.access_log = host, port, workers, threads, access_log

    def run(self) -> None:
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            "api.wsgi:application",
            address=self.host,
            port=self.port,
            interface=Interfaces.WSGI,
            websockets=False,  # WSGI has none; saying so keeps granian from logging it at start
            workers=self.workers,
            blocking_threads=self.threads,
            log_access=self.access_log,
            log_access_format=ACCESS_LOG_FORMAT,
            # a worker that dies (say, the database vanished at start) is started again
            respawn_failed_workers=True,
        ).serve()
