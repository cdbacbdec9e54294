"""The HTTP access log of ``onemap serve``: one line per request, written by the ASGI app on its event loop.

granian can write this log itself, but it does so by calling Python's ``logging`` from its
Rust threads for every response: a date format, a log record, a filter and a flushed
write, with the interpreter's lock taken from another thread each time. Measured from
``/proc`` under ``wrk -c8`` (docs/performance.md), that cost about 0.13 ms of CPU per
request, more than PostgreSQL spends on an item by id. Here the line is formatted where the
request ends, kept in a buffer and written with one ``write`` every half second (or sooner
when the buffer fills); a worker that stops writes what it holds. A worker killed outright
loses at most the last half second of lines; the personal-data read log is a table
(``access_log``, written in the request's own transaction) and loses nothing.

Secrets never reach it: the path and query string go through :func:`api.auth.redact_secrets`
as before. Static files, which granian serves without the app, are not in this log.
"""

from __future__ import annotations

import asyncio
import os
import select
import time

FLUSH_S = 0.5
FLUSH_BYTES = 64 * 1024
ENV = "ONEMAP_ACCESS_LOG"  # "1": the workers write the log (set by host.server for its workers)
# control characters in a decoded path (``%0A``) would start a forged line: written as \xNN
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(32), 127)}


def enabled() -> bool:
    return os.environ.get(ENV) == "1"


class AccessLog:
    """``[time] client "METHOD path?query HTTP/1.1" status duration ms`` lines, written to ``fd`` in batches."""

    def __init__(self, fd: int = 1):
        self.fd = fd
        self._lines: list[bytes] = []
        self._size = 0
        self._pending: asyncio.TimerHandle | None = None
        self._second = -1
        self._stamp = ""

    def record(self, scope: dict, status: int, started: float) -> None:
        """Keep the line of one finished request (call on the event loop)."""
        from api.auth import redact_secrets

        now = time.time()
        second = int(now)
        if second != self._second:  # the timestamp changes once a second; format it once
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(now))
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        line = (
            f'[{self._stamp}] {client[0] if client else "-"} "{scope["method"]} '
            f'{redact_secrets(scope["path"]).translate(_CONTROL)}?{redact_secrets(query).translate(_CONTROL)} HTTP/{scope.get("http_version", "1.1")}" '
            f"{status} {(time.perf_counter() - started) * 1000:.1f} ms\n"
        ).encode("utf-8", "backslashreplace")
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        """Write every kept line now."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if not self._lines:
            return
        lines, self._lines, self._size = self._lines, [], 0
        for chunk in _chunks(lines):
            view = memoryview(chunk)
            while view:
                try:
                    written = os.write(self.fd, view)
                except InterruptedError:
                    continue
                except OSError:
                    return  # the log's reader is gone (a closed pipe): requests go on without it
                view = view[written:]


def _chunks(lines: list[bytes]):
    """The lines joined into writes of at most ``select.PIPE_BUF`` bytes, cut only between lines.

    The server's workers share one standard output; a pipe keeps a write of up to PIPE_BUF
    bytes whole, so no worker's line is cut into another's.
    """
    chunk, size = [], 0
    for line in lines:
        if chunk and size + len(line) > select.PIPE_BUF:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield b"".join(chunk)
