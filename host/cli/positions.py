"""``onemap worker-position``: where a grid worker is (for operators and tests; phones will report themselves).
"""

from __future__ import annotations

import math

from core.cli import CommandError, setup_django


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    pos = sub.add_parser(
        "worker-position", help="record where a grid worker is now (dispatch ranks on-duty workers by it)"
    )
    pos.add_argument("worker", metavar="USERNAME_OR_WORKER_CODE", help="e.g. GW-001, or the worker's username")
    # text, not float: a bad number is this command's clear error (exit 1), not argparse's usage error
    pos.add_argument("lon", metavar="LON", help="longitude, EPSG:4326")
    pos.add_argument("lat", metavar="LAT", help="latitude, EPSG:4326")
    pos.add_argument("--at", metavar="ISO", help="when (ISO 8601; default now; no offset means Asia/Shanghai time)")
    pos.set_defaults(func=cmd_worker_position)


def cmd_worker_position(args) -> int:
    lon, lat = _number("LON", args.lon), _number("LAT", args.lat)
    setup_django()
    from django.utils import timezone

    from gis.services import ServiceError
    from gis.spatial.selectors import grid_worker_for_key
    from gis.spatial.services import worker_position_set

    at = _moment(args.at) if args.at else None
    worker = grid_worker_for_key(key=args.worker)
    if worker is None:
        raise CommandError(f"no grid worker with the code or username {args.worker!r}")
    try:
        worker = worker_position_set(worker_id=worker.id, lon=lon, lat=lat, at=at)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    seen = timezone.localtime(worker.last_seen_at)
    print(f"{worker.code} {worker.name} ({worker.grid.code}) at {lon}, {lat} as of {seen:%Y-%m-%d %H:%M:%S %z}")
    if not worker.on_duty:
        print("  off duty: not recommended for dispatch until on duty")
    return 0


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{name} must be a number in degrees, got {text!r}") from None
    if not math.isfinite(value):
        raise CommandError(f"{name} must be a finite number, got {text!r}")
    return value


def _moment(text: str):
    from datetime import datetime

    from django.utils import timezone

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--at must be an ISO 8601 time such as 2026-11-20T11:58:00+08:00, got {text!r}") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment
