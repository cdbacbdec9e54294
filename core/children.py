"""Child processes that end with their parent: the server's workers and what ``onemap demo`` starts beside it.

A process started with ``ONEMAP_SERVER_PID`` in its environment calls :func:`die_with_parent` and
ends soon after that process is gone, however it went (SIGKILL and the OOM killer tell no child).
"""

from __future__ import annotations

import os

PARENT_ENV = "ONEMAP_SERVER_PID"
PARENT_POLL_S = 0.5


def die_with_parent(on_orphan=None) -> None:
    """In a server worker (or the job worker ``onemap demo`` starts beside the server): end this
    process as soon as the server's main process is gone.

    granian's workers are child processes; when the main process is killed outright
    (SIGKILL, the OOM killer) nothing tells them, and they would go on serving the port
    as orphans beside a newly started server. A daemon thread polls the parent's pid and
    then calls ``on_orphan`` (default: exit at once). Outside ``onemap serve`` (no
    ``ONEMAP_SERVER_PID``), or in the main process itself, it does nothing.
    """
    import threading
    import time

    orphaned = on_orphan or (lambda: os._exit(1))
    raw = os.environ.get(PARENT_ENV)
    if not raw or not raw.isdigit() or int(raw) == os.getpid():
        return
    parent = int(raw)
    if os.getppid() != parent:
        return orphaned()  # the parent died before we got here

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent:
                return orphaned()

    threading.Thread(target=watch, name="onemap-parent-watch", daemon=True).start()
