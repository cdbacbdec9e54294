"""``onemap``: the one command-line entry point of Community One Map.

One module per command group, each with a ``register(sub)`` that adds its commands:
:mod:`host.cli.database` (db, migrate, manage), :mod:`host.cli.data` (load-demo,
import, export, grid-for-point, check-grids, density), :mod:`host.cli.web` (serve,
demo, vendor), :mod:`host.cli.accounts` (user, token), :mod:`host.cli.open311`
(open311-key), :mod:`host.cli.positions` (worker-position), :mod:`host.cli.sensors` (sensors),
:mod:`host.cli.worker` (worker), :mod:`host.cli.broker` (broker, ingest) and ``vision.cli`` (vision).
Their shared base, ``CommandError`` and Django's set-up, is :mod:`core.cli`.

Every subcommand that needs the database starts the embedded PostGIS first
(unless ``ONEMAP_DATABASE_URL`` points elsewhere), so ``onemap demo`` on a fresh
checkout needs nothing else.
"""

from __future__ import annotations

import argparse
import sys

from core.cli import CommandError, before_setup
from host.cli import accounts, broker, data, database, open311, positions, sensors, web, worker

before_setup(database.start_database)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from core.settings import ConfigError
    from host.embedded_db import EmbeddedDatabaseError

    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except (CommandError, ConfigError, EmbeddedDatabaseError) as exc:
        print(f"onemap: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__name__ == "OperationalError":  # the database cannot be reached
            print(f"onemap: error: cannot use the database: {exc}".rstrip(), file=sys.stderr)
            print("  check ONEMAP_DATABASE_URL, or unset it to use the embedded PostGIS", file=sys.stderr)
            return 1
        raise


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="onemap",
        description="Community One Map (社区一张图): grid-based community governance on PostGIS.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    from vision.cli import register as register_vision

    for register in (database.register, data.register, web.register, accounts.register, positions.register,
                     sensors.register, worker.register, broker.register, open311.register, register_vision):
        register(sub)
    return p


if __name__ == "__main__":
    sys.exit(main())
