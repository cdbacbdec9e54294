"""``onemap``: the one command-line entry point of Community One Map.

Every subcommand that needs the database starts the embedded PostGIS first
(unless ``ONEMAP_DATABASE_URL`` points elsewhere), so ``onemap demo`` on a fresh
checkout needs nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from api.embedded_db import EmbeddedDatabaseError
    from core.settings import ConfigError

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


class CommandError(RuntimeError):
    """A failure the user can act on; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="onemap",
        description="Community One Map (社区一张图): grid-based community governance on PostGIS.",
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    db = sub.add_parser("db", help="the embedded PostgreSQL/PostGIS under .var/")
    db.add_argument("action", choices=["start", "stop", "status", "url"], help="what to do")
    db.set_defaults(func=cmd_db)

    mig = sub.add_parser("migrate", help="create or update the database schema")
    mig.set_defaults(func=cmd_migrate)

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

    srv = sub.add_parser("serve", help="serve the web application and the OGC API")
    srv.add_argument("--host", default=None, help="default ONEMAP_HTTP_HOST or 127.0.0.1")
    srv.add_argument("--port", type=int, default=None, help="default ONEMAP_HTTP_PORT or 8000")
    srv.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    srv.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    srv.add_argument(
        "--no-access-log", action="store_true",
        help="do not log each request to stdout (reads of personal records are still logged in the database)",
    )
    srv.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="start the database, migrate, load the demo (once) and serve it")
    demo.add_argument("--port", type=int, default=None)
    demo.add_argument("--reload-demo", action="store_true", help="load the demo again even if it is there")
    demo.set_defaults(func=cmd_demo)

    user = sub.add_parser("user", help="users and their roles (who may see what)")
    user_sub = user.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    user_add = user_sub.add_parser("add", help="add a user with a role (no password: they sign in with tokens)")
    user_add.add_argument("username")
    user_add.add_argument(
        "--role", required=True, help="administrator | commander | analyst | grid_worker | department"
    )
    user_add.add_argument("--grid", help="grid workers only: code of their level-3 grid")
    user_add.add_argument("--department", default="", help="the user's department, e.g. civil affairs")
    user_sub.add_parser("list", help="list the users, their roles and grids")
    for action, what in (("disable", "refuse all of a user's tokens"), ("enable", "accept a user's tokens again")):
        toggle = user_sub.add_parser(action, help=what)
        toggle.add_argument("username")
    user.set_defaults(func=cmd_user)

    token = sub.add_parser("token", help="personal access tokens (for QGIS, GDAL, scripts)")
    token_sub = token.add_subparsers(title="actions", metavar="ACTION", dest="action", required=True)
    token_new = token_sub.add_parser("create", help="create a token for a user and print it once")
    token_new.add_argument("username")
    token_new.add_argument("--name", default="personal", help="what the token is for, e.g. qgis-laptop")
    token_new.add_argument("--expires-days", type=int, default=None, help="days until it expires (default never)")
    token_ls = token_sub.add_parser("list", help="list tokens (never their secrets)")
    token_ls.add_argument("username", nargs="?", default=None, help="only this user's tokens")
    token_rm = token_sub.add_parser("revoke", help="revoke a token by id (see token list)")
    token_rm.add_argument("id", type=int)
    token.set_defaults(func=cmd_token)

    vendor = sub.add_parser(
        "vendor", help="fetch the big screen's pinned browser assets (Leaflet, VectorGrid) and build its CJK font"
    )
    vendor.add_argument("--force", action="store_true", help="fetch and build everything again, even if up to date")
    vendor.add_argument("--font", help="the Noto Sans CJK font to subset (default Debian's fonts-noto-cjk .ttc)")
    vendor.set_defaults(func=cmd_vendor)

    dens = sub.add_parser("density", help="write daily incident kernel-density GeoTIFFs (EPSG:4547) for QGIS")
    dens.add_argument("--date", help="the local day YYYY-MM-DD (default today, Asia/Shanghai); with --days, the last")
    dens.add_argument("--days", type=int, default=1, help="this many days ending at --date (default 1)")
    dens.add_argument("--grid", metavar="CODE", help="only this grid and the grids in it (default the level-1 grids)")
    dens.add_argument("--category", action="append", metavar="NAME",
                      help="only these incident categories (repeat it, or separate them with commas)")
    dens.add_argument("--out", help="also copy the GeoTIFF here: a file for one day, a folder for several")
    dens.set_defaults(func=cmd_density)

    manage = sub.add_parser("manage", help="run a Django management command", add_help=False)
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)

    from vision.cli import register as register_vision

    register_vision(sub)
    return p


# -- commands ------------------------------------------------------------------


def cmd_db(args) -> int:
    from api.embedded_db import EmbeddedDatabaseError, cluster_from_settings
    from core.settings import settings as current_settings

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
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=1)
    return 0


def cmd_load_demo(args) -> int:
    _setup_django()
    _migrate_quietly()
    progress = not args.quiet
    if args.scale == "city":
        from data.city import CityLoadRefused, load_city

        try:
            summary = load_city(seed=args.seed, progress=progress, factor=args.factor)
        except CityLoadRefused as exc:
            raise CommandError(str(exc)) from None
    else:
        from data.demo import load_demo

        summary = load_demo(seed=args.seed, progress=progress)
    print(summary.describe())
    return 0


def cmd_import(args) -> int:
    _setup_django()
    _migrate_quietly()
    from gis.io import ImportRejected, import_layer

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
    _setup_django()
    from gis.io import ExportError, export_layer

    try:
        report = export_layer(args.layer, args.path, crs=args.crs)
    except ExportError as exc:
        raise CommandError(str(exc)) from None
    print(report.describe())
    return 0


def cmd_grid_for_point(args) -> int:
    _setup_django()
    from gis.selectors import grid_for_point

    path = grid_for_point(lon=args.lon, lat=args.lat)
    if path is None:
        print(f"({args.lon}, {args.lat}) lies in no level-3 grid")
        return 1
    for grid in path.chain():
        print(f"level {grid.level}  {grid.code}  {grid.name}")
    return 0


def cmd_check_grids(args) -> int:
    _setup_django()
    from gis.topology import grid_tiling_problems

    problems = grid_tiling_problems(tolerance_m=args.tolerance)
    for problem in problems:
        print(problem.message)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


def cmd_serve(args) -> int:
    from core.settings import settings as current_settings

    settings = current_settings()
    host = args.host or settings.http_host
    port = args.port or settings.http_port
    # the OGC API builds its links from these; workers inherit them
    os.environ["ONEMAP_HTTP_HOST"], os.environ["ONEMAP_HTTP_PORT"] = host, str(port)
    _setup_django()
    _migrate_quietly()
    from django.db import connections

    connections.close_all()  # no connection may be shared by the forked workers
    _print_urls(host, port)
    from api.server import OnemapServer

    OnemapServer(
        host=host, port=port, workers=args.workers, threads=args.threads,
        access_log=not getattr(args, "no_access_log", False),
    ).run()
    return 0


def cmd_demo(args) -> int:
    started = time.monotonic()
    _setup_django(log_progress=True)
    print("[2/4] migrating the schema ...", flush=True)
    _migrate_quietly()
    from data.demo import demo_is_loaded, load_demo

    if args.reload_demo or not demo_is_loaded():
        print("[3/4] generating and loading the demo community (Pingdeng Street) ...", flush=True)
        print(load_demo(progress=True).describe())
    else:
        print("[3/4] demo community already loaded (use --reload-demo to load it again)")
    username, token = _demo_screen_login()
    print(f"[4/4] serving (ready after {time.monotonic() - started:.1f} s)", flush=True)
    print(f"  the big screen /screen/ asks for a login: user {username}, password {token}"
          " (kept in .var/demo-screen-token)", flush=True)
    return cmd_serve(argparse.Namespace(host=None, port=args.port, workers=2, threads=4))


DEMO_COMMANDER = "demo_commander"


def _demo_screen_login() -> tuple[str, str]:
    """A commander for the demo's big screen, and a token kept in ``.var/demo-screen-token`` (0600) for next time."""
    from api import auth
    from core.settings import settings as current_settings
    from gis.models import AccessProfile, AccessToken

    path = current_settings().var_dir / "demo-screen-token"
    if path.exists():
        token = path.read_text().strip()
        if AccessToken.objects.filter(digest=auth.token_digest(token), revoked_at__isnull=True,
                                      user__username=DEMO_COMMANDER, user__is_active=True).exists():
            return DEMO_COMMANDER, token
    if not AccessProfile.objects.filter(user__username=DEMO_COMMANDER).exists():
        auth.user_create(username=DEMO_COMMANDER, role="commander", department="demo command centre")
    _, token = auth.token_create(username=DEMO_COMMANDER, name="demo big screen")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return DEMO_COMMANDER, token


def cmd_user(args) -> int:
    _setup_django()
    from api import auth
    from gis.services import ServiceError

    try:
        if args.action == "add":
            user = auth.user_create(
                username=args.username, role=args.role, grid_code=args.grid, department=args.department
            )
            grid = f" bound to grid {args.grid}" if args.grid else ""
            print(f"user {user.username} added as {args.role}{grid}")
            print(f"  give them a token: onemap token create {user.username} --name qgis")
        elif args.action == "list":
            profiles = auth.user_list()
            print(f"{'username':<20} {'role':<14} {'grid':<24} {'active':<7} department")
            for p in profiles:
                grid = p.grid.code if p.grid else "-"
                active = "yes" if p.user.is_active else "no"
                print(f"{p.user.username:<20} {p.role:<14} {grid:<24} {active:<7} {p.department or '-'}")
            print(f"{len(profiles)} user(s)")
        else:
            user = auth.user_set_active(username=args.username, active=args.action == "enable")
            within = f"running servers refuse its tokens within {auth.CACHE_TTL:.0f} s"
            state = "enabled" if user.is_active else f"disabled ({within})"
            print(f"user {user.username} {state}")
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_token(args) -> int:
    _setup_django()
    from datetime import timedelta

    from django.utils import timezone

    from api import auth
    from core.settings import settings as current_settings
    from gis.services import ServiceError

    try:
        if args.action == "create":
            expires_at = None
            if args.expires_days is not None:
                if args.expires_days < 1:
                    raise CommandError(f"--expires-days must be 1 or more, got {args.expires_days}")
                expires_at = timezone.now() + timedelta(days=args.expires_days)
            row, secret = auth.token_create(username=args.username, name=args.name, expires_at=expires_at)
            settings = current_settings()
            base = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
            ogc_url = base.rstrip("/") + "/ogc"
            until = f"expires {timezone.localtime(expires_at):%Y-%m-%d %H:%M}" if expires_at else "does not expire"
            print(f"token {row.id} for {args.username} ({row.name}, {until}):")
            print()
            print(f"  {secret}")
            print()
            print("It is shown only this once; keep it like a password (`onemap token revoke ID` ends it).")
            print(f"QGIS: new OGC API - Features connection to {ogc_url}, Authentication ▸ Basic:")
            print(f"  username {args.username}, password the token above.")
            print('curl/GDAL: send the header "Authorization: Bearer <token>".')
        elif args.action == "list":
            tokens = auth.token_list(username=args.username)
            now = timezone.now()
            print(f"{'id':>5} {'username':<20} {'name':<20} {'token':<10} {'created':<16} {'last used':<16} state")
            for t in tokens:
                print(
                    f"{t.id:>5} {t.user.username:<20} {t.name[:20]:<20} {t.hint + '…':<10} {_when(t.created_at):<16} "
                    f"{_when(t.last_used_at):<16} {_token_state(t, now)}"
                )
            print(f"{len(tokens)} token(s)")
        else:
            from gis.models import AccessToken

            already = AccessToken.objects.filter(pk=args.id, revoked_at__isnull=False).exists()
            auth.token_revoke(token_id=args.id)
            if already:
                print(f"token {args.id} was already revoked")
            else:
                print(f"token {args.id} revoked (running servers refuse it within {auth.CACHE_TTL:.0f} s)")
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_vendor(args) -> int:
    from pathlib import Path

    from api.vendor import FontSpec, VendorError, vendor_install

    font = FontSpec(source=Path(args.font)) if args.font else FontSpec()
    try:
        report = vendor_install(force=args.force, font=font, log=lambda msg: print(msg, flush=True))
    except VendorError as exc:
        raise CommandError(str(exc)) from None
    print(report.describe())
    return 0


def cmd_density(args) -> int:
    _setup_django()
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


def cmd_manage(args) -> int:
    _setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["onemap manage", *args.rest])
    return 0


# -- helpers -------------------------------------------------------------------


def _setup_django(*, log_progress: bool = False) -> None:
    from api.embedded_db import EmbeddedDatabaseError, ensure_running

    if log_progress:
        print("[1/4] starting the database ...", flush=True)
    try:
        ensure_running(log=lambda msg: print("  " + msg, flush=True))
    except EmbeddedDatabaseError as exc:
        raise CommandError(str(exc)) from None
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.settings")
    import django

    django.setup()


def _migrate_quietly() -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def _when(moment) -> str:
    from django.utils import timezone

    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}" if moment else "-"


def _token_state(token, now) -> str:
    if token.revoked_at:
        return f"revoked {_when(token.revoked_at)}"
    if token.expires_at and token.expires_at <= now:
        return f"expired {_when(token.expires_at)}"
    if not token.user.is_active:
        return "user disabled"
    return f"active until {_when(token.expires_at)}" if token.expires_at else "active"


def _print_urls(host: str, port: int) -> None:
    base = f"http://{host}:{port}"
    print("Community One Map is being served:")
    print(f"  {base}/                       landing page")
    print(f"  {base}/ogc/                   OGC API (add it in QGIS: Layer ▸ Add WFS / OGC API - Features)")
    print(f"  {base}/ogc/collections        the published layers", flush=True)
    print(f"  {base}/screen/                the command-centre big screen (administrators and commanders)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
