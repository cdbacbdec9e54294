"""``onemap serve`` as a child process, for the tests and the benchmarks that need a real server.

Not a test module: ``tests/conftest.py``, the browser tests and ``tests/bench/screen.py``
import it (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``onemap serve`` on one loopback port, in its own process group; it can be stopped and started again."""

    def __init__(self, *, root: Path, database_url: str, log_path: Path, port: int | None = None,
                 workers: int = 2, env: dict | None = None):
        self.root, self.database_url, self.log_path = root, database_url, log_path
        self.port = port or free_port()
        self.workers = workers
        self.extra_env = env or {}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self, *, timeout_s: float = 60) -> "ServerProcess":
        """Start the server and wait until ``/healthz`` answers."""
        env = dict(os.environ, ONEMAP_DATABASE_URL=self.database_url, ONEMAP_HTTP_PORT=str(self.port))
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for the test process only (see conftest_browser)
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "host.cli", "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited with {self._process.returncode}; see {self.log_path}")
            if self.answers():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not answer within {timeout_s:.0f} s; see {self.log_path}")
            time.sleep(0.2)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> float:
        """Stop the server's process group (SIGTERM, then SIGKILL); the seconds it took to exit (0 if not running)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return 0.0
        began = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        return time.monotonic() - began
