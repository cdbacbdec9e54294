"""``onemap worker``: the background process for the notification outbox and the domains' timers.

It runs procrastinate's worker over the project's database (``core.settings.database_url``):
every job the domains register in their ``tasks.py`` (collected by ``gis.tasks``) and
their periodic timers. Several workers, on several machines, may run at once: a periodic
job is queued once per tick whatever the number of workers, and each job runs once.
Deadlines and outbox rows live in PostgreSQL, so a worker that is killed loses nothing.
SIGTERM or Ctrl-C stops it gracefully: running jobs get a few seconds to finish.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from core.cli import CommandError, setup_django

REQUIRED_TABLES = ("procrastinate_jobs", "notifications")


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    worker = sub.add_parser(
        "worker", help="run the background jobs: notification delivery, the outbox sweep, the domains' timers")
    worker.add_argument("--concurrency", type=int, default=4, help="jobs run at once (default 4)")
    worker.add_argument("--queue", action="append", dest="queues", metavar="QUEUE",
                        help="work only on this queue (repeat for more; default every queue: "
                             "notifications, sweeps and the domains' own)")
    worker.add_argument("--once", action="store_true",
                        help="queue every periodic job once, run the jobs queued (one at a time), then exit")
    worker.set_defaults(func=cmd_worker)


def cmd_worker(args) -> int:
    import asyncio

    if not 1 <= args.concurrency <= 100:
        raise CommandError(f"--concurrency must be 1 to 100, got {args.concurrency}")
    setup_django()
    _check_schema()
    from core.settings import settings
    from core.children import die_with_parent

    grace_s = settings().notifications.timeout_s + 2  # a request in flight may finish
    die_with_parent(on_orphan=lambda: _stop(grace_s))
    asyncio.run(_run(queues=args.queues, concurrency=1 if args.once else args.concurrency,
                     once=args.once, grace_s=grace_s))
    return 0


async def _run(*, queues: list[str] | None, concurrency: int, once: bool, grace_s: float) -> None:
    import asyncio
    import contextlib
    import socket

    from procrastinate import PsycopgConnector
    from procrastinate.contrib.django import app

    from core.settings import database_url

    connector = PsycopgConnector(conninfo=database_url(), min_size=1, max_size=concurrency + 4,
                                 kwargs={"application_name": "onemap-worker"})
    name = f"onemap-worker@{socket.gethostname()}:{os.getpid()}"
    stopping = asyncio.Event()  # our own handlers, from the start: a SIGTERM during start-up stops gracefully too
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    with app.replace_connector(connector):
        async with app.open_async():
            if once:
                await _defer_periodic_once(app)
            work = asyncio.create_task(app.run_worker_async(
                queues=queues, concurrency=concurrency, wait=not once, name=name, install_signal_handlers=False,
                delete_jobs="successful", shutdown_graceful_timeout=grace_s, listen_notify=True,
            ))
            print(f"{name}: working on {', '.join(queues) if queues else 'every queue'} "
                  f"({concurrency} at a time){'; until the queues are empty' if once else ''}", flush=True)
            stop = asyncio.create_task(stopping.wait())
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():  # cancelling procrastinate's worker stops it gracefully: running jobs may finish
                work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            stop.cancel()
    print(f"{name}: stopped", flush=True)


async def _defer_periodic_once(app) -> None:
    from procrastinate.exceptions import AlreadyEnqueued

    for periodic in app.periodic_registry.periodic_tasks.values():
        try:
            await periodic.task.configure().defer_async(timestamp=int(time.time()))
        except AlreadyEnqueued:
            pass


def _check_schema() -> None:
    from django.db import connection

    missing = set(REQUIRED_TABLES) - set(connection.introspection.table_names())
    connection.close()
    if missing:
        raise CommandError(f"the database has no {', '.join(sorted(missing))} yet: run `onemap migrate` first")


def _stop(grace_s: float) -> None:
    """The server this worker was started beside is gone: stop as on SIGTERM, and surely after the grace."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_s + 5)
    os._exit(1)


def start_beside_server() -> subprocess.Popen:
    """``onemap worker`` as a child of this process (the server's main one), ending when this process ends."""
    from core.children import PARENT_ENV

    env = dict(os.environ, **{PARENT_ENV: str(os.getpid())})
    return subprocess.Popen([sys.executable, "-m", "host.cli", "worker"], env=env)


def stop_child(process: subprocess.Popen, *, timeout_s: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended after ``timeout_s``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
