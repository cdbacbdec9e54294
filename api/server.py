"""The production-style HTTP server: gunicorn with threaded workers, run in-process by ``onemap serve``."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


class OnemapServer(BaseApplication):
    """gunicorn configured from code; each worker builds the OGC API once, after it forks."""

    def __init__(self, *, host: str, port: int, workers: int, threads: int, access_log: bool = True):
        self.options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 120,
            "graceful_timeout": 10,
            "accesslog": "-" if access_log else None,
            "post_worker_init": _warm_worker,
            # no control socket in $HOME: several servers (tests, demo) may run side by side
            "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self):
        from api.wsgi import application

        return application


def _warm_worker(worker) -> None:
    from api.ogc import warm_up

    warm_up()
