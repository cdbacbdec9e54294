"""``onemap db``, ``migrate``, ``manage``: the database and its schema.

:func:`start_database` is the step the host registers to run before Django is set up
(:func:`core.cli.before_setup`), so every command that needs the database starts the
embedded PostGIS first, unless ``ONEMAP_DATABASE_URL`` points elsewhere.
"""

from __future__ import annotations

import argparse

from core.cli import CommandError, setup_django


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    db = sub.add_parser("db", help="the embedded PostgreSQL/PostGIS under .var/")
    db.add_argument("action", choices=["start", "stop", "status", "url"], help="what to do")
    db.set_defaults(func=cmd_db)

    mig = sub.add_parser("migrate", help="create or update the database schema")
    mig.set_defaults(func=cmd_migrate)

    manage = sub.add_parser("manage", help="run a Django management command", add_help=False)
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)


def cmd_db(args) -> int:
    from core.settings import settings as current_settings
    from host.embedded_db import EmbeddedDatabaseError, cluster_from_settings

    settings = current_settings()
    if settings.database_url and args.action in {"start", "stop"}:
        print("ONEMAP_DATABASE_URL is set; the project uses that database, not the embedded one.")
        return 0
    cluster = cluster_from_settings(settings)
    try:
        if args.action == "start":
            status = cluster.start()
        elif args.action == "stop":
            status = cluster.stop()
        elif args.action == "url":
            print(settings.database_url or cluster.url())
            return 0
        else:
            status = cluster.status()
    except EmbeddedDatabaseError as exc:
        raise CommandError(str(exc)) from None
    state = "running" if status.running else ("stopped" if status.initialised else "not initialised")
    print(f"embedded PostGIS: {state}  port {status.port}  data {status.data_dir}")
    if status.running:
        print(f"  pid {status.pid}; psql -h {cluster.socket_dir} -p {status.port} -U onemap onemap")
    return 0 if (status.running or args.action in {"stop", "status"}) else 1


def cmd_migrate(args) -> int:
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)
    return 0


def cmd_manage(args) -> int:
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["onemap manage", *args.rest])
    return 0


def migrate_quietly() -> None:
    """Apply pending migrations without their progress lines."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def start_database(*, log_progress: bool = False) -> None:
    """Start the embedded PostGIS when it is the configured database (run before Django is set up)."""
    from host.embedded_db import EmbeddedDatabaseError, ensure_running

    if log_progress:
        print("[1/4] starting the database ...", flush=True)
    try:
        ensure_running(log=lambda msg: print("  " + msg, flush=True))
    except EmbeddedDatabaseError as exc:
        raise CommandError(str(exc)) from None
