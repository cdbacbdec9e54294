"""``onemap load-demo``, ``import``, ``export``, ``grid-for-point``, ``check-grids``, ``density``: data in and out.
"""

from __future__ import annotations

import sys

from core.cli import CommandError, setup_django
from host.cli.database import migrate_quietly


def register(sub) -> None:
    """Add this group's commands to the ``onemap`` parser."""
    load = sub.add_parser("load-demo", help="generate and load the synthetic demo community")
    load.add_argument("--seed", type=int, default=20261126, help="random seed (same seed, same data)")
    load.add_argument(
        "--scale", choices=["demo", "city"], default="demo",
        help="demo: Pingdeng Street; city: a Zhengzhou-sized data set for benchmarks",
    )
    load.add_argument(
        "--factor", type=float, default=1.0,
        help="city scale only: size relative to the full city (e.g. 0.01 for a quick trial)",
    )
    load.add_argument("--as-of", default=None, metavar="ISO|now",
                      help="demo scale: the moment the demo is generated for (default its fixed date; 'now' for today)")
    load.add_argument("--no-cases", action="store_true", help="demo scale: no cases for the demo's incidents")
    load.add_argument("--quiet", action="store_true", help="no progress output")
    load.set_defaults(func=cmd_load_demo)

    imp = sub.add_parser("import", help="import a GeoPackage, GeoJSON or Shapefile into a layer (all or nothing)")
    imp.add_argument("layer", help="target layer, e.g. grids, buildings, cameras")
    imp.add_argument("path", help="file to read")
    imp.add_argument("--crs", help="CRS of the file when it declares none, e.g. EPSG:4547")
    imp.add_argument("--source-layer", help="layer inside a multi-layer file (GeoPackage)")
    imp.add_argument("--tolerance", type=float, default=0.5, help="grid topology tolerance in metres (default 0.5)")
    imp.add_argument("--dry-run", action="store_true", help="check everything, write nothing")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="export a layer to GeoPackage, GeoJSON or Shapefile (by extension)")
    exp.add_argument("layer")
    exp.add_argument("path")
    exp.add_argument("--crs", help="target CRS (default EPSG:4326)")
    exp.set_defaults(func=cmd_export)

    gfp = sub.add_parser("grid-for-point", help="which level-3 grid (and parents) holds a point")
    gfp.add_argument("lon", type=float)
    gfp.add_argument("lat", type=float)
    gfp.set_defaults(func=cmd_grid_for_point)

    chk = sub.add_parser("check-grids", help="check that every grid's children tile it exactly")
    chk.add_argument("--tolerance", type=float, default=0.01, help="metres (default 0.01)")
    chk.set_defaults(func=cmd_check_grids)

    dens = sub.add_parser("density", help="write daily incident kernel-density GeoTIFFs (EPSG:4547) for QGIS")
    dens.add_argument("--date", help="the local day YYYY-MM-DD (default today, Asia/Shanghai); with --days, the last")
    dens.add_argument("--days", type=int, default=1, help="this many days ending at --date (default 1)")
    dens.add_argument("--grid", metavar="CODE", help="only this grid and the grids in it (default the level-1 grids)")
    dens.add_argument("--category", action="append", metavar="NAME",
                      help="only these incident categories (repeat it, or separate them with commas)")
    dens.add_argument("--out", help="also copy the GeoTIFF here: a file for one day, a folder for several")
    dens.set_defaults(func=cmd_density)


def cmd_load_demo(args) -> int:
    setup_django()
    migrate_quietly()
    progress = not args.quiet
    if args.scale == "city":
        from data.city import CityLoadRefused, load_city

        try:
            summary = load_city(seed=args.seed, progress=progress, factor=args.factor)
        except CityLoadRefused as exc:
            raise CommandError(str(exc)) from None
    else:
        summary = load_demo_and_cases(seed=args.seed, progress=progress, as_of=demo_moment(args.as_of),
                                      cases=not args.no_cases)
    print(summary.describe())
    return 0


def demo_moment(raw: str | None):
    """The demo's as-of moment: its fixed date, ``now`` (to the minute), or an ISO 8601 time with its offset."""
    from datetime import datetime

    from django.utils import timezone

    from data.demo import DEMO_AS_OF

    if raw is None:
        return DEMO_AS_OF
    if raw == "now":
        return timezone.localtime().replace(second=0, microsecond=0)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(f"--as-of must be 'now' or an ISO 8601 time such as 2026-12-07T12:00+08:00; got {raw!r}")
    if moment.tzinfo is None:
        raise CommandError("--as-of needs its UTC offset, e.g. 2026-12-07T12:00+08:00")
    return moment


def load_demo_and_cases(*, seed: int, progress: bool, as_of, cases: bool = True):
    """The demo community, then cases for its recent incidents walked through the services (both for ``as_of``)."""
    from data.cases import forget_demo_cases, load_demo_cases
    from data.demo import load_demo

    summary = load_demo(seed=seed, progress=progress, as_of=as_of)
    if cases:
        forget_demo_cases()  # an earlier load's cases belong to its own moment; walk them again for this one
        if progress:
            print("walking the recent incidents' cases through the services ...", flush=True)
        summary.counts["cases"] = sum(load_demo_cases(as_of=as_of, seed=seed).values())
    return summary


def cmd_import(args) -> int:
    setup_django()
    migrate_quietly()
    from gis.spatial.io import ImportRejected, import_layer

    try:
        report = import_layer(
            args.layer, args.path, crs=args.crs, source_layer=args.source_layer,
            tolerance_m=args.tolerance, dry_run=args.dry_run,
        )
    except ImportRejected as exc:
        print(exc.describe(), file=sys.stderr)
        return 1
    print(report.describe())
    return 0


def cmd_export(args) -> int:
    setup_django()
    from gis.spatial.io import ExportError, export_layer

    try:
        report = export_layer(args.layer, args.path, crs=args.crs)
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    print(report.describe())
    return 0


def cmd_grid_for_point(args) -> int:
    setup_django()
    from gis.spatial.selectors import grid_for_point

    path = grid_for_point(lon=args.lon, lat=args.lat)
    if path is None:
        print(f"({args.lon}, {args.lat}) lies in no level-3 grid")
        return 1
    for grid in path.chain():
        print(f"level {grid.level}  {grid.code}  {grid.name}")
    return 0


def cmd_check_grids(args) -> int:
    setup_django()
    from gis.spatial.topology import grid_tiling_problems

    problems = grid_tiling_problems(tolerance_m=args.tolerance)
    for problem in problems:
        print(problem.message)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_density(args) -> int:
    setup_django()
    import shutil
    from datetime import timedelta
    from pathlib import Path

    from tqdm import tqdm

    from layers.density import (
        DensityError,
        day_range,
        density_raster,
        density_request,
        parse_day,
        today,
    )

    if not 1 <= args.days <= 3660:
        raise CommandError(f"--days must be 1 to 3660, got {args.days}")
    out = Path(args.out) if args.out else None
    if out is not None and args.days > 1:
        if out.exists() and not out.is_dir():
            raise CommandError(f"--out {out} is a file; with --days {args.days} give a folder")
        out.mkdir(parents=True, exist_ok=True)
    try:
        last = parse_day(args.date) if args.date else today()
        categories = ",".join(args.category) if args.category else None
        days = [last - timedelta(days=n) for n in reversed(range(args.days))]
        first_day, last_day = day_range()
        outside = [day for day in days if not first_day <= day <= last_day]
        if outside and len(outside) == len(days):
            raise DensityError(f"no day asked for lies between {first_day} (the first incident) and {last_day}")
        if outside:
            print(f"skipping {len(outside)} day(s) outside {first_day} (the first incident) … {last_day}",
                  file=sys.stderr)
            days = [day for day in days if first_day <= day <= last_day]
        for day in tqdm(days, unit="day", file=sys.stderr, disable=args.days == 1 or not sys.stderr.isatty()):
            raster = density_raster(request=density_request(day=day, grid_code=args.grid, categories=categories))
            target = raster.path
            if out is not None:
                target = out / raster.path.name if out.is_dir() else out
                shutil.copyfile(raster.path, target)
            state = "computed" if raster.computed else "unchanged, cached"
            tqdm.write(f"{day}  {raster.count:>7,} incidents  peak {raster.max_density:>9,.1f}/km²  {target}  ({state})")
    except DensityError as exc:
        raise CommandError(str(exc)) from None
    return 0
