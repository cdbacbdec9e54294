"""Benchmark: our OGC API on the ``city`` data against pygeoapi's stock provider and PostGIS alone.

    python tests/bench/ogc.py [--seconds 10] [--warmup 2] [--quick] [--connections 8]
                              [--case bbox --case item ...] [--target ours --target stock ...] [--no-docs]

Three targets answer the same requests on the same ``onemap_bench_city`` views:

- ``ours``: ``onemap serve --workers 2`` (gunicorn, gthread), asked as an analyst with a personal
  access token over HTTP Basic (anonymous while the ``user``/``token`` commands do not exist);
- ``stock``: pygeoapi's own ``pygeoapi.provider.sql.PostgreSQLProvider`` behind a tiny WSGI
  function (``ogc_stock_app.py``), served by gunicorn the same way;
- ``PostGIS alone``: the same GeoJSON text built the simplest way, ``string_agg(ST_AsGeoJSON(t.*), ',')``
  over the page of the plain table (the tile engine's statement for tiles), run by ``pgbench -n -c C -j 2``
  with as many clients C as wrk's connections, no HTTP and no Python: the limit any server can reach.

Cases, on ``buildings``: a bbox with ``limit=1000`` (50 boxes holding more than 1,000 buildings
each), the first page with ``limit=100``, item by id (100 random ids), a CQL2 filter on ``floors``
with ``limit=100``, and one z16 vector tile (ours and PostGIS alone; the stock provider has no
tiles). The first-page and bbox cases are run once more as a grid worker (row-level security
narrowing every answer to one level-3 grid) and printed as extra rows.

HTTP load is ``wrk`` (2 threads, ``--connections`` connections) with ``ogc_wrk.lua`` cycling through
the request paths; every case gets a warm-up run and then a measured run. A response that is not a
200 with a body counts as a failure, and a case with failures is reported as failed, not as fast.
The table (requests/s, p50/p95 latency, ratios, and the goals of issues 3 and 18 marked met/missed) is
printed and written into the OGC section of ``docs/performance.md``. Missed goals do not change the
exit status; a broken set-up does.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _cpu import CpuMeter, children_cpu  # noqa: E402
from _docs import DOCS, write_results  # noqa: E402

BENCH_DB = "onemap_bench_city"
LAYER = "buildings"
WORK_DIR = ROOT / ".var" / "bench"
WRK_SCRIPT = HERE / "ogc_wrk.lua"
STOCK_APP = "ogc_stock_app:application"
ACCEPT = "application/geo+json, application/json"
DEFAULT_SEED = 20261126

CASES = ("bbox", "first_page", "item", "filter", "tile")
TARGETS = ("ours", "stock", "postgis")
TARGET_TITLES = {"ours": "ours", "stock": "stock pygeoapi", "postgis": "PostGIS alone"}
BOXES, ITEM_IDS, TILES = 50, 100, 50
BOX_WIDTH, BOX_HEIGHT = 0.018, 0.0135  # degrees: about 1.6 × 1.5 km at 34.75° N
BOX_MIN_BUILDINGS = 1200  # more than the 1,000 a page returns, so every page is full
TILE_ZOOM = 16
ANALYST, WORKER = "bench_analyst", "bench_worker"
SERVER_START_SECONDS = 240


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _run_settings(args)
    _require_tools()
    url = _bench_database()
    plan = _plan(url, seed=args.seed, cases=settings.cases)
    print(_plan_summary(plan), flush=True)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        servers = {}
        if "ours" in settings.targets:
            servers["ours"] = stack.enter_context(_our_server(url))
        if "stock" in settings.targets:
            servers["stock"] = stack.enter_context(_stock_server(url))
        identities = _identities(url, plan, ours=servers.get("ours"))
        for note in identities.notes:
            print(note, flush=True)
        for case in plan.cases:
            for target in settings.targets:
                result = _measure(target, case, plan=plan, url=url, servers=servers,
                                  identity=identities.analyst, settings=settings)
                results.append(result)
                print(f"  {case.title:<30} {TARGET_TITLES[target]:<15} {result.summary()}", flush=True)
        if "ours" in settings.targets and identities.worker.authorization:  # anonymous is no grid worker
            for case in plan.worker_cases:
                result = _measure("ours", case, plan=plan, url=url, servers=servers,
                                  identity=identities.worker, settings=settings)
                results.append(result)
                print(f"  {case.title:<30} {'ours':<15} {result.summary()}", flush=True)
    report = _report(plan, results, settings=settings, identities=identities, command=_command_line(argv))
    print()
    print(report)
    if not args.no_docs:
        write_results(report, begin=DOCS_BEGIN, end=DOCS_END)
        print(f"\n(written into {DOCS.relative_to(ROOT)})")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per case and target (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds before each measured run (default 2)")
    p.add_argument("--quick", action="store_true", help="a short trial: 2 s per case after a 1 s warm-up")
    p.add_argument("--connections", type=int, default=8, help="wrk connections (default 8; 2 threads)")
    p.add_argument("--case", action="append", choices=CASES, help="only these cases (repeatable; default all)")
    p.add_argument("--target", action="append", choices=TARGETS, help="only these targets (repeatable; default all)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed for the boxes, ids and tiles asked for")
    p.add_argument("--no-docs", action="store_true", help=f"do not write the table into {DOCS.relative_to(ROOT)}")
    return p


@dataclass(frozen=True)
class RunSettings:
    seconds: int
    warmup: int
    connections: int
    cases: tuple[str, ...]
    targets: tuple[str, ...]


def _run_settings(args) -> RunSettings:
    seconds, warmup = (2.0, 1.0) if args.quick else (args.seconds, args.warmup)
    if seconds < 1 or warmup < 0:
        raise SystemExit("ogc.py: --seconds must be at least 1 and --warmup at least 0")
    if args.connections < 2:
        raise SystemExit("ogc.py: --connections must be at least 2 (wrk runs 2 threads)")
    return RunSettings(
        seconds=max(1, round(seconds)),  # pgbench and wrk both take whole seconds
        warmup=max(0, round(warmup)),
        connections=args.connections,
        cases=tuple(c for c in CASES if not args.case or c in args.case),
        targets=tuple(t for t in TARGETS if not args.target or t in args.target),
    )


def _require_tools() -> None:
    missing = [name for name, path in (("wrk", shutil.which("wrk")), ("pgbench", _pgbench())) if path is None]
    if missing:
        raise SystemExit(
            f"ogc.py: {' and '.join(missing)} not found; install them (Debian: apt-get install wrk postgresql), "
            "or run `make setup`, which installs both"
        )


def _pgbench() -> str | None:
    from host.embedded_db import EmbeddedDatabaseError, find_postgres_bindir

    try:
        candidate = find_postgres_bindir() / "pgbench"
    except EmbeddedDatabaseError:
        candidate = None
    if candidate is not None and candidate.exists():
        return str(candidate)
    return shutil.which("pgbench")


# -- the data set ------------------------------------------------------------------------------


def _bench_database() -> str:
    """The URL of ``onemap_bench_city``: migrated, holding the full city (generated when absent or incomplete)."""
    import city_generation
    import psycopg

    from host.embedded_db import ensure_running
    from core.settings import with_database_name

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    url = with_database_name(server_url, BENCH_DB)
    problem = _city_problem(url)
    if problem is None:
        print(f"migrating {BENCH_DB} ...", flush=True)
        try:
            city_generation._migrate(url)
        except subprocess.CalledProcessError:
            raise SystemExit(f"ogc.py: `onemap migrate` failed on {BENCH_DB} (its error is above); fix the "
                             "migration, or drop the database to have it generated afresh") from None
        problem = _city_problem(url)  # a migration may have emptied or replaced a table
    if problem is not None:
        print(f"{BENCH_DB}: {problem}; generating the city (tests/bench/city_generation.py) ...", flush=True)
        if city_generation.main(["--quiet"]) != 0:
            raise SystemExit("ogc.py: generating the city failed; see the output above")
        # city_generation set ONEMAP_DATABASE_URL and set up Django for itself; later steps pass URLs explicitly
    with psycopg.connect(url) as conn:  # fail here, clearly, rather than inside a server
        conn.execute("SELECT 1 FROM ogc_buildings LIMIT 1")
    city_generation._setup_django(url)  # the lead's SQL builders (layers.features) may read Django's settings
    return url


def _city_problem(url: str) -> str | None:
    """Why the database at ``url`` cannot be benchmarked as it is, or None when it holds the full city."""
    import psycopg

    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError:
        return "the database does not exist"
    with conn:
        if conn.execute("SELECT to_regclass('data_loads') IS NULL OR to_regclass('ogc_buildings') IS NULL").fetchone()[0]:
            return "not migrated or not loaded"
        row = conn.execute(
            "SELECT parameters, counts FROM data_loads WHERE kind = 'city' ORDER BY finished_at DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return "no city was loaded into it"
        parameters, counts = row
        if float(parameters.get("factor", 0)) != 1.0:
            return f"it holds a city of factor {parameters.get('factor')}, not the full city"
        buildings = conn.execute("SELECT count(*) FROM buildings").fetchone()[0]
        if buildings != counts.get("buildings"):
            return f"it holds {buildings:,} buildings, the load recorded {counts.get('buildings'):,}"
    return None


# -- what is asked for -------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One benchmark case: the request paths, and for each path the SQL that PostGIS alone runs."""

    key: str
    title: str
    paths: tuple[str, ...]
    sql: tuple[str, ...]
    stock_paths: tuple[str, ...] | None  # None: the stock provider cannot answer it
    sql_source: str
    for_worker: bool = False


@dataclass(frozen=True)
class Plan:
    cases: tuple[Case, ...]
    worker_cases: tuple[Case, ...]
    worker_grid: str
    worker_grid_buildings: int
    buildings: int
    boxes_min_buildings: int
    sql_notes: tuple[str, ...] = ()
    scope_sql: str | None = None  # run first in each PostGIS-alone transaction: the analyst's role and settings


def _plan(url: str, *, seed: int, cases: tuple[str, ...]) -> Plan:
    """Choose the boxes, ids, filter values and tiles (seeded), and compose each request's SQL."""
    import psycopg

    rng = random.Random(seed)
    with psycopg.connect(url) as conn:
        sql_for = _SqlSource(conn)
        buildings = conn.execute("SELECT count(*) FROM ogc_buildings").fetchone()[0]
        extent = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM ogc_buildings) x"
        ).fetchone()
        boxes, box_min = _dense_boxes(conn, extent, rng)
        grid_code, grid_buildings, grid_extent = _worker_grid(conn)
        worker_boxes = [_box_around(rng.uniform(grid_extent[0], grid_extent[2]),
                                    rng.uniform(grid_extent[1], grid_extent[3])) for _ in range(BOXES)]
        planned = []
        worker = []
        if "bbox" in cases:
            planned.append(_items_case("bbox", "bbox, limit=1000", [_bbox_query(b) for b in boxes], sql_for))
            worker.append(_items_case("bbox", "bbox, limit=1000 (grid worker)",
                                      [_bbox_query(b) for b in worker_boxes], sql_for, for_worker=True))
        if "first_page" in cases:
            planned.append(_items_case("first_page", "first page, limit=100", ["limit=100"], sql_for))
            worker.append(_items_case("first_page", "first page (grid worker)", ["limit=100"], sql_for, for_worker=True))
        if "item" in cases:
            ids = [row[0] for row in conn.execute("SELECT id FROM ogc_buildings ORDER BY id")]
            chosen = rng.sample(ids, min(ITEM_IDS, len(ids)))
            planned.append(Case(
                key="item", title="item by id",
                paths=tuple(f"/ogc/collections/{LAYER}/items/{i}" for i in chosen),
                sql=tuple(sql_for.item(i) for i in chosen),
                stock_paths=tuple(f"/ogc/collections/{LAYER}/items/{i}" for i in chosen),
                sql_source=sql_for.item_source,
            ))
        if "filter" in cases:
            floors = [row[0] for row in conn.execute(
                "SELECT DISTINCT floors FROM ogc_buildings WHERE floors IS NOT NULL ORDER BY 1")]
            queries = [f"filter=floors={n}&filter-lang=cql2-text&limit=100" for n in floors]
            # pygeoapi 0.21 knows the language as `cql-text` and refuses `cql2-text`; the filter text is the same
            stock = [f"filter=floors={n}&limit=100" for n in floors]
            planned.append(replace(
                _items_case("filter", "CQL2 filter, limit=100", queries, sql_for),
                stock_paths=tuple(f"/ogc/collections/{LAYER}/items?{q}" for q in stock),
            ))
        if "tile" in cases:
            tiles = _tiles_in_city(conn, rng)
            planned.append(Case(
                key="tile", title=f"one z{TILE_ZOOM} tile",
                paths=tuple(f"/ogc/collections/{LAYER}/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt" for z, x, y in tiles),
                sql=tuple(sql_for.tile(z, x, y) for z, x, y in tiles),
                stock_paths=None,
                sql_source=sql_for.tile_source,
            ))
    return Plan(
        cases=tuple(planned), worker_cases=tuple(worker), worker_grid=grid_code,
        worker_grid_buildings=grid_buildings, buildings=buildings, boxes_min_buildings=box_min,
        sql_notes=sql_for.notes(),
        scope_sql=sql_for.scope_sql,
    )


def _items_case(key: str, title: str, queries: list[str], sql_for: "_SqlSource", *, for_worker: bool = False) -> Case:
    paths = tuple(f"/ogc/collections/{LAYER}/items?{q}" for q in queries)
    return Case(  # PostGIS alone runs as the analyst only, so a grid worker's case needs no SQL
        key=key, title=title, paths=paths, sql=() if for_worker else tuple(sql_for.items(q) for q in queries),
        stock_paths=None if for_worker else paths, sql_source=sql_for.items_source, for_worker=for_worker,
    )


def _box_around(lon: float, lat: float) -> tuple[float, float, float, float]:
    return (lon - BOX_WIDTH / 2, lat - BOX_HEIGHT / 2, lon + BOX_WIDTH / 2, lat + BOX_HEIGHT / 2)


def _bbox_query(box: tuple[float, float, float, float]) -> str:
    return "bbox=" + ",".join(f"{v:.6f}" for v in box) + "&limit=1000"


def _dense_boxes(conn, extent, rng: random.Random) -> tuple[list[tuple[float, ...]], int]:
    """``BOXES`` boxes inside the city, each holding at least ``BOX_MIN_BUILDINGS`` buildings."""
    xmin, ymin, xmax, ymax = extent
    boxes, fewest = [], None
    for _ in range(BOXES * 20):
        box = _box_around(rng.uniform(xmin + BOX_WIDTH, xmax - BOX_WIDTH), rng.uniform(ymin + BOX_HEIGHT, ymax - BOX_HEIGHT))
        count = conn.execute(
            "SELECT count(*) FROM ogc_buildings WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", box
        ).fetchone()[0]
        if count >= BOX_MIN_BUILDINGS:
            boxes.append(box)
            fewest = count if fewest is None else min(fewest, count)
            if len(boxes) == BOXES:
                return boxes, fewest
    raise SystemExit(
        f"ogc.py: found only {len(boxes)} boxes of {BOX_WIDTH}° × {BOX_HEIGHT}° holding ≥ {BOX_MIN_BUILDINGS} "
        f"buildings in {BENCH_DB}; it needs the full city (tests/bench/city_generation.py with --factor 1.0)"
    )


def _worker_grid(conn) -> tuple[str, int, tuple[float, float, float, float]]:
    """The level-3 grid with the most buildings (ties: lowest code), its building count and its extent."""
    row = conn.execute(
        "SELECT g.code, count(b.id), ST_XMin(g.geom), ST_YMin(g.geom), ST_XMax(g.geom), ST_YMax(g.geom) "
        "FROM grids g JOIN buildings b ON b.grid_id = g.id WHERE g.level = 3 "
        "GROUP BY g.id ORDER BY count(b.id) DESC, g.code LIMIT 1"
    ).fetchone()
    if row is None:
        raise SystemExit(f"ogc.py: {BENCH_DB} has no level-3 grid holding buildings")
    return row[0], row[1], tuple(row[2:])


def _tiles_in_city(conn, rng: random.Random) -> list[tuple[int, int, int]]:
    """``TILES`` distinct z16 tiles, each under a building chosen at random."""
    points = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM ogc_buildings "
        "WHERE id = ANY(%s)) x",
        [rng.sample(range(1, _max_id(conn) + 1), TILES * 4)],
    ).fetchall()
    tiles = []
    for lon, lat in points:
        tile = (TILE_ZOOM, *_tile_of(lon, lat, TILE_ZOOM))
        if tile not in tiles:
            tiles.append(tile)
    if not tiles:
        raise SystemExit(f"ogc.py: no building found to place the z{TILE_ZOOM} tiles on")
    return tiles[:TILES]


def _max_id(conn) -> int:
    return conn.execute("SELECT max(id) FROM ogc_buildings").fetchone()[0]


def _tile_of(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """WebMercatorQuad column and row of the tile holding (lon, lat)."""
    n = 2**zoom
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def _plan_summary(plan: Plan) -> str:
    lines = [f"{BENCH_DB}: {plan.buildings:,} buildings; each bbox holds ≥ {plan.boxes_min_buildings:,} of them; "
             f"grid worker bound to {plan.worker_grid} ({plan.worker_grid_buildings} buildings)"]
    for case in plan.cases:
        lines.append(f"  {case.title:<22} {len(case.paths):>3} paths; PostGIS alone: {case.sql_source}")
    return "\n".join(lines)


# -- the SQL that PostGIS alone runs ------------------------------------------------------------


INLINED = " (its literals inlined by tests/bench/sql_text.py)"  # how the server's statements become pgbench text


class _SqlSource:
    """Each request's SQL as text with its literals inlined: the server's statements (``sql_text.py``), else ours."""

    def __init__(self, conn):
        self._conn = conn
        self._sql_text = _optional_module("sql_text")
        self._tiles = _optional_module("layers.tiles")
        self.broken: dict[str, str] = {}  # the lead's builders that raised, and why
        # items and item by id: the same text built the simplest way, string_agg(ST_AsGeoJSON(t.*)) over the plain
        # table (no view, no row-level security, no count); the server's own statement is not the limit
        self.columns = _plain_columns(conn)
        self.items_source = ("the simplest SQL: string_agg(ST_AsGeoJSON(t.*), ',') over the page of the plain "
                             f"table {LAYER} (its published columns), ordered by id, no count")
        self.item_source = f"the simplest SQL: ST_AsGeoJSON(t.*) of the one row of the plain table {LAYER}"
        self.tile_source = ("layers.tiles.tile_query (the statement tile_render runs)" if self._lead_tile(16, 0, 0)
                            else "the harness's own ST_AsMVT query over the view")
        self.scope_sql = self._analyst_scope()
        for name, error in self.broken.items():
            print(f"{name} raised {error}; PostGIS alone runs the harness's own SQL instead", file=sys.stderr)

    def _analyst_scope(self) -> str | None:
        """What our server runs first in an analyst's transaction (``SET LOCAL`` of role and settings)."""
        access = _optional_module("layers.access")
        scope_statements = getattr(access, "scope_statements", None) if access else None
        if scope_statements is None:
            return None
        from api.auth import Identity

        return scope_statements(Identity(role="analyst", username=ANALYST)).rstrip(";")

    def notes(self) -> tuple[str, ...]:
        """Which SQL PostGIS alone runs, and which of the lead's builders were skipped because they raised."""
        scope = self.scope_sql
        lines = [f"PostGIS alone runs, for items: {self.items_source}; for item by id: {self.item_source}; "
                 f"both as the table's owner; for tiles: {self.tile_source}"
                 + (f", in a transaction under the analyst's database role, as our server does ({scope})."
                    if scope else ".")]
        lines += [f"The lead's {name} raised {error}, so it was not used." for name, error in self.broken.items()]
        return tuple(lines)

    def _lead(self, name: str, probe: str | None = None):
        """The lead's SQL builder ``name`` when it exists and answers ``probe``; None otherwise."""
        function = getattr(self._sql_text, name, None) if self._sql_text else None
        if function is None or name in self.broken:
            return None
        if probe is not None:
            try:
                function(LAYER, probe)
            except Exception as exc:  # a builder still being written must not stop the other targets
                self.broken[name] = f"{type(exc).__name__}: {exc}"
                return None
        return function

    def items(self, query: str) -> str:
        return _as_text(_baseline_items_sql(query, self.columns), self._conn)

    def item(self, item_id: int) -> str:
        return _as_text(_baseline_item_sql(item_id, self.columns), self._conn)

    def tile(self, z: int, x: int, y: int) -> str:
        return self._lead_tile(z, x, y) or _as_text(_own_tile_sql(z, x, y), self._conn)

    def _lead_tile(self, z: int, x: int, y: int) -> str | None:
        """The tile engine's own statement with its parameters inlined, when ``layers.tiles`` offers it."""
        import psycopg

        names = ("tile_layer", "tile_query", "tile_parameters")
        if self._tiles is None or "tile_query" in self.broken or not all(hasattr(self._tiles, n) for n in names):
            return None
        try:
            spec = self._tiles.tile_layer(LAYER)
            statement = self._tiles.tile_query(spec, z=z)
            return psycopg.ClientCursor(self._conn).mogrify(statement, self._tiles.tile_parameters(spec, z=z, x=x, y=y))
        except Exception as exc:  # an engine still being written must not stop the other targets
            self.broken["tile_query"] = f"{type(exc).__name__}: {exc}"
            return None


def _optional_module(name: str):
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists but is broken: say so rather than measure something else
            raise
        return None


def _layer():
    from layers.catalogue import layer

    return layer(LAYER)


def _as_text(query, conn) -> str:
    return query.as_string(conn)


def _properties_object():
    from psycopg import sql

    pairs = [sql.SQL("{}, t.{}").format(sql.Literal(c.name), sql.Identifier(c.name)) for c in _layer().columns]
    return sql.SQL("json_build_object({})").format(sql.SQL(", ").join(pairs))


def _feature_json():
    from psycopg import sql

    return sql.SQL(
        "json_build_object('type', 'Feature', 'id', t.id, 'geometry', ST_AsGeoJSON(t.geom, 9)::json, 'properties', {})"
    ).format(_properties_object())


def _plain_columns(conn) -> tuple[str, ...]:
    """The layer's published columns that the plain table has (the view adds the rest from its joins)."""
    have = {row[0] for row in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [LAYER])}
    return tuple(c.name for c in _layer().columns if c.name in have and c.name != "id")


def _baseline_items_sql(query: str, columns: tuple[str, ...]):
    """The page as GeoJSON text the simplest way: string_agg(ST_AsGeoJSON(t.*)) over the plain table."""
    from psycopg import sql

    where, limit = _own_where(query)
    return sql.SQL(
        "SELECT '{{\"type\":\"FeatureCollection\",\"features\":[' || coalesce(string_agg(ST_AsGeoJSON(t.*), ','), '') "
        "|| ']}}' FROM (SELECT t.id, {columns}, t.geom FROM {table} t WHERE {where} ORDER BY t.id LIMIT {limit}) t"
    ).format(columns=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns), table=sql.Identifier(LAYER),
             where=where, limit=sql.Literal(limit))


def _baseline_item_sql(item_id: int, columns: tuple[str, ...]):
    from psycopg import sql

    return sql.SQL("SELECT ST_AsGeoJSON(t.*) FROM (SELECT t.id, {columns}, t.geom FROM {table} t WHERE t.id = {id}) t"
                   ).format(columns=sql.SQL(", ").join(sql.Identifier("t", c) for c in columns),
                            table=sql.Identifier(LAYER), id=sql.Literal(item_id))


def _own_items_sql(query: str):
    """A FeatureCollection as one text value: an exact count and a page ordered by id (what an honest server sends)."""
    from psycopg import sql

    where, limit = _own_where(query)
    return sql.SQL(
        "SELECT '{{\"type\":\"FeatureCollection\",\"numberMatched\":' || (SELECT count(*) FROM {view} t WHERE {where}) "
        "|| ',\"numberReturned\":' || count(*) || ',\"features\":[' || coalesce(string_agg(p.feature, ','), '') || ']}}' "
        "FROM (SELECT {feature}::text AS feature FROM {view} t WHERE {where} ORDER BY t.id LIMIT {limit}) p"
    ).format(view=sql.Identifier(_layer().view), where=where, feature=_feature_json(), limit=sql.Literal(limit))


def _own_where(query: str):
    """The WHERE clause and limit for the few query strings this benchmark sends."""
    from urllib.parse import parse_qs

    from psycopg import sql

    params = {k: v[-1] for k, v in parse_qs(query).items()}
    limit = int(params.get("limit", 10))
    if "bbox" in params:
        box = [float(v) for v in params["bbox"].split(",")]
        return sql.SQL("ST_Intersects(t.geom, ST_MakeEnvelope({}, {}, {}, {}, 4326))").format(*map(sql.Literal, box)), limit
    if "filter" in params:
        name, value = params["filter"].split("=")
        return sql.SQL("t.{} = {}").format(sql.Identifier(name), sql.Literal(int(value))), limit
    return sql.SQL("TRUE"), limit


def _own_item_sql(item_id: int):
    from psycopg import sql

    return sql.SQL("SELECT {feature}::text FROM {view} t WHERE t.id = {id}").format(
        feature=_feature_json(), view=sql.Identifier(_layer().view), id=sql.Literal(item_id)
    )


def _own_tile_sql(z: int, x: int, y: int):
    from psycopg import sql

    properties = [c.name for c in _layer().columns]
    envelope = sql.SQL("ST_TileEnvelope({}, {}, {})").format(sql.Literal(z), sql.Literal(x), sql.Literal(y))
    return sql.SQL(
        "SELECT ST_AsMVT(m, {name}, 4096, 'geom', 'id') FROM ("
        "SELECT t.id, {props}, ST_AsMVTGeom(ST_Transform(t.geom, 3857), {env}, 4096, 64, true) AS geom "
        "FROM {view} t WHERE t.geom && ST_Transform({env}, 4326)) m"
    ).format(
        name=sql.Literal(LAYER), props=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(p)) for p in properties),
        env=envelope, view=sql.Identifier(_layer().view),
    )


# -- the servers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    base_url: str
    log: Path
    pid: int = 0  # the server's first process; its workers are below it


@contextlib.contextmanager
def _our_server(url: str):
    """``onemap serve --workers 2`` on a free port, against the bench database."""
    port = _free_port()
    env = dict(os.environ, ONEMAP_DATABASE_URL=url, ONEMAP_HTTP_HOST="127.0.0.1", ONEMAP_HTTP_PORT=str(port))
    env.pop("ONEMAP_PUBLIC_URL", None)
    command = [sys.executable, "-m", "host.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    with _served("ours", command, env=env, port=port) as server:
        yield server


@contextlib.contextmanager
def _stock_server(url: str):
    """pygeoapi's stock PostgreSQL provider, served like ours: granian, 2 workers, 4 threads each, access log on."""
    port = _free_port()
    config_path = WORK_DIR / "ogc_stock_config.json"
    config_path.write_text(json.dumps(_stock_config(url, base_url=f"http://127.0.0.1:{port}/ogc")), encoding="utf-8")
    config_path.chmod(0o600)  # it holds the database password
    env = dict(os.environ, OGC_STOCK_CONFIG=str(config_path))
    command = [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "2", "--blocking-threads", "4", "--access-log", "--working-dir", str(HERE), STOCK_APP,
    ]
    with _served("stock", command, env=env, port=port) as server:
        yield server


def _stock_config(url: str, *, base_url: str) -> dict:
    """A minimal pygeoapi configuration: ``buildings`` from the ``ogc_buildings`` view with the stock provider."""
    parts = urlsplit(url)
    connection = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "dbname": unquote(parts.path.lstrip("/")),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "search_path": ["public"],
    }
    layer = _layer()
    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": int(urlsplit(base_url).port or 80)},
            "url": base_url,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "pretty_print": False,
            "limits": {"default_items": 100, "max_items": 10000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OpenStreetMap"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {"title": "stock baseline", "description": "pygeoapi's PostgreSQL provider",
                               "keywords": ["benchmark"], "keywords_type": "theme", "terms_of_service": "",
                               "url": base_url},
            "license": {"name": "n/a", "url": base_url},
            "provider": {"name": "benchmark", "url": base_url},
            "contact": {"name": "benchmark", "email": "bench@example.invalid", "url": base_url},
        },
        "resources": {
            LAYER: {
                "type": "collection",
                "title": layer.title,
                "description": layer.description,
                "keywords": list(layer.keywords),
                "links": [],
                "extents": {"spatial": {"bbox": [-180, -90, 180, 90], "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84"}},
                "providers": [{
                    "type": "feature",
                    "name": "pygeoapi.provider.sql.PostgreSQLProvider",
                    "data": connection,
                    "id_field": "id",
                    "table": layer.view,
                    "geom_field": "geom",
                }],
            }
        },
    }


@contextlib.contextmanager
def _served(name: str, command: list[str], *, env: dict, port: int):
    """Run ``command`` in its own process group until the block ends; wait until it answers on ``port``."""
    log = WORK_DIR / f"ogc_{name}_server.log"
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        server = Server(name=name, base_url=f"http://127.0.0.1:{port}", log=log, pid=process.pid)
        _wait_until_up(server, process)
        print(f"{name}: serving on {server.base_url} (pid {process.pid}, log {log.relative_to(ROOT)})", flush=True)
        yield server
    finally:
        _stop(process)


def _wait_until_up(server: Server, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    probe = f"{server.base_url}/ogc/collections/{LAYER}/items?limit=1"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"ogc.py: the {server.name} server exited ({process.returncode}); see {server.log}")
        try:
            with urllib.request.urlopen(urllib.request.Request(probe, headers={"Accept": ACCEPT}), timeout=30):
                return
        except urllib.error.HTTPError:
            return  # it answers; the checks before each case say whether the answers are right
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            time.sleep(0.5)
    raise SystemExit(f"ogc.py: the {server.name} server did not answer within {SERVER_START_SECONDS} s; see {server.log}")


def _stop(process: subprocess.Popen) -> None:
    """End the server this benchmark started: its own process group, by id."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- who asks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Whom requests are sent as: an Authorization header (None: anonymous) and how it was obtained."""

    label: str
    authorization: str | None


@dataclass(frozen=True)
class Identities:
    analyst: Identity
    worker: Identity
    notes: tuple[str, ...] = ()


def _identities(url: str, plan: Plan, *, ours: Server | None) -> Identities:
    """An analyst's and a grid worker's token (``onemap user add`` / ``onemap token create``), else anonymous."""
    notes = []
    if ours is None:  # only our server checks tokens; make none
        nobody = Identity(label="nobody (ours not run)", authorization=None)
        return Identities(analyst=nobody, worker=nobody)
    analyst = _token_identity(url, ANALYST, ["--role", "analyst"], notes)
    worker = _token_identity(url, WORKER, ["--role", "grid_worker", "--grid", plan.worker_grid], notes)
    if analyst.authorization:
        enforced = _server_checks_tokens(ours)
        notes.append(f"ours: a wrong token is {'refused' if enforced else 'NOT refused (credentials ignored)'}")
    return Identities(analyst=analyst, worker=worker, notes=tuple(notes))


def _token_identity(url: str, username: str, role_args: list[str], notes: list[str]) -> Identity:
    env = dict(os.environ, ONEMAP_DATABASE_URL=url)
    added = _onemap(["user", "add", username, *role_args], env=env)
    if added.returncode != 0 and "invalid choice" in added.stderr:
        notes.append(f"{username}: `onemap user` does not exist yet; asking anonymously (public layers)")
        return Identity(label="anonymous", authorization=None)
    if added.returncode != 0 and "exist" not in (added.stderr + added.stdout).lower():
        notes.append(f"{username}: `onemap user add` failed ({_last_line(added)}); asking anonymously")
        return Identity(label="anonymous", authorization=None)
    created = _onemap(["token", "create", username, "--name", "ogc-bench", "--expires-days", "1"], env=env)
    token = _token_in(created.stdout) if created.returncode == 0 else None
    if token is None:
        notes.append(f"{username}: `onemap token create` gave no token ({_last_line(created)}); asking anonymously")
        return Identity(label="anonymous", authorization=None)
    basic = base64.b64encode(f"{username}:{token}".encode()).decode()
    return Identity(label=f"{username} (token, HTTP Basic)", authorization=f"Basic {basic}")


def _onemap(args: list[str], *, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _token_in(output: str) -> str | None:
    """The token printed by ``onemap token create``: the longest token-shaped word in its output."""
    words = re.findall(r"(?<![\w./:-])[A-Za-z0-9_\-]{24,}(?![\w./:-])", output)
    return max(words, key=len) if words else None


def _last_line(result: subprocess.CompletedProcess) -> str:
    lines = (result.stderr or result.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit {result.returncode}"


def _server_checks_tokens(server: Server) -> bool:
    wrong = "Basic " + base64.b64encode(f"{ANALYST}:not-a-token-0000000000000000".encode()).decode()
    status, _ = _get(server.base_url + f"/ogc/collections/{LAYER}/items?limit=1", wrong)
    return status in (401, 403)


# -- measuring ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    target: str
    case: Case
    requests_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    requests: int = 0
    failures: int = 0
    failure: str = ""  # why the case failed; empty when it did not
    applicable: bool = True
    checks: dict = field(default_factory=dict)
    cpu_ms: float | None = None  # CPU per answer: the answering processes, PostgreSQL's backends and the load generator

    @property
    def ok(self) -> bool:
        return self.applicable and not self.failure and self.failures == 0 and self.requests > 0

    def summary(self) -> str:
        if not self.applicable:
            return "n/a"
        if not self.ok:
            return f"FAILED: {self.failure or f'{self.failures} bad answers of {self.requests}'}"
        return f"{self.requests_per_s:9,.1f} req/s  p50 {self.p50_ms:7.2f} ms  p95 {self.p95_ms:7.2f} ms"


def _measure(target: str, case: Case, *, plan: Plan, url: str, servers: dict, identity: Identity,
             settings: RunSettings) -> Result:
    """One case against one target: checked answers first, then a warm-up and the measured run."""
    if target == "postgis":
        if case.for_worker:
            return Result(target, case, applicable=False)
        # items and item by id: the plain table as its owner (the simplest way); tiles: the tile engine's statement
        # under the analyst's role, as before
        scope = plan.scope_sql if case.key == "tile" else None
        return _measure_pgbench(case, url=url, settings=settings, scope_sql=scope, clients=settings.connections)
    paths = case.stock_paths if target == "stock" else case.paths
    if paths is None:
        return Result(target, case, applicable=False)
    server = servers[target]
    failure, checks = _check_answers(server, case, paths, identity, plan=plan)
    if failure:
        return Result(target, case, failure=failure, checks=checks)
    return _measure_wrk(target, case, server, paths, identity, settings=settings, checks=checks, url=url)


def _check_answers(server: Server, case: Case, paths: tuple[str, ...], identity: Identity, *,
                   plan: Plan) -> tuple[str, dict]:
    """Ask the first few paths once (a grid worker's: all): a 200 with a body; items hold features, none leaked."""
    checks: dict = {}
    for path in paths if case.for_worker else paths[:3]:
        status, body = _get(server.base_url + path, identity.authorization)
        if status != 200:
            return f"HTTP {status} for {path}", checks
        if not body:
            return f"empty answer for {path}", checks
        if case.key == "tile":
            problem = _tile_problem(body)
            if problem:
                return f"{problem} for {path}", checks
            continue
        try:
            document = json.loads(body)
        except ValueError:
            return f"not JSON for {path}", checks
        features = document.get("features") if case.key != "item" else [document]
        if not features:
            return f"no features for {path}", checks
        if case.key == "bbox" and not case.for_worker and len(features) != 1000:
            return f"{len(features)} features for {path}, expected 1000", checks
        if case.for_worker:  # row-level security: nothing from another grid may come back
            leaked = [f.get("id") for f in features if (f.get("properties") or {}).get("grid_code") != plan.worker_grid]
            if leaked:
                return f"LEAK: features {leaked[:5]} of other grids for the grid worker at {path}", checks
        if case.key == "first_page":
            checks["numberMatched"] = document.get("numberMatched")
    return "", checks


def _tile_problem(body: bytes) -> str:
    """Why a tile is not a vector tile holding buildings ('' when it is); unchecked without mapbox-vector-tile."""
    try:
        import mapbox_vector_tile
    except ImportError:
        return ""
    try:
        layers = mapbox_vector_tile.decode(body)
    except Exception as exc:  # whatever the decoder raises, the bytes are not a tile
        return f"not a vector tile ({type(exc).__name__})"
    if not layers.get(LAYER, {}).get("features"):
        return f"a tile without {LAYER} features (layers: {', '.join(layers) or 'none'})"
    return ""


def _get(url: str, authorization: str | None) -> tuple[int, bytes]:
    headers = {"Accept": ACCEPT}
    if authorization:
        headers["Authorization"] = authorization
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _measure_wrk(target: str, case: Case, server: Server, paths: tuple[str, ...], identity: Identity, *,
                 settings: RunSettings, checks: dict, url: str) -> Result:
    label = f"{target}_{case.key}" + ("_worker" if case.for_worker else "")
    paths_file = WORK_DIR / f"ogc_paths_{label}.txt"
    paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    if settings.warmup:
        _wrk(server, paths_file, identity, seconds=settings.warmup, connections=settings.connections)
    meter, client_cpu = CpuMeter(url, root_pid=server.pid).start(), children_cpu()
    numbers = _wrk(server, paths_file, identity, seconds=settings.seconds, connections=settings.connections)
    cpu = meter.stop() + children_cpu() - client_cpu
    requests = numbers["requests"]
    failures = (numbers["bad_status"] + numbers["empty_body"] + numbers["connect_errors"] + numbers["read_errors"]
                + numbers["write_errors"] + numbers["timeouts"])
    failure = ""
    if failures:
        failure = (f"{failures} bad answers of {requests} (non-200: {numbers['bad_status']}, last "
                   f"{numbers['last_bad_status']}; empty: {numbers['empty_body']}; socket errors/timeouts: "
                   f"{failures - numbers['bad_status'] - numbers['empty_body']})")
    return Result(
        target=target, case=case, checks=checks,
        requests_per_s=requests / (numbers["duration_us"] / 1e6) if numbers["duration_us"] else 0.0,
        p50_ms=numbers["p50_us"] / 1000, p95_ms=numbers["p95_us"] / 1000,
        requests=requests, failures=failures, failure=failure, cpu_ms=1000 * cpu / requests if requests else None,
    )


def _wrk(server: Server, paths_file: Path, identity: Identity, *, seconds: int, connections: int) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(WRK_SCRIPT),
               server.base_url, "--", str(paths_file), identity.authorization or ""]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise SystemExit(f"ogc.py: wrk failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return json.loads(lines[-1])


def _measure_pgbench(case: Case, *, url: str, settings: RunSettings, scope_sql: str | None, clients: int) -> Result:
    """The case's SQL, one pgbench script per request, as many clients as wrk's connections (2 threads);
    latencies from pgbench's log."""
    import psycopg

    with psycopg.connect(url) as conn:  # each statement once: it must answer, and not with nothing
        for statement in case.sql[:3]:
            with conn.transaction():
                if scope_sql:
                    conn.execute(scope_sql)
                value = conn.execute(statement).fetchone()
            if value is None or not value[0] or '"numberReturned":0,' in str(value[0])[:200]:
                return Result("postgis", case, failure=f"no features from {statement[:120]}…")
    with tempfile.TemporaryDirectory(prefix="ogc_pgbench_", dir=WORK_DIR) as scratch:
        scripts = []
        for i, statement in enumerate(case.sql[:100]):  # pgbench takes at most 128 scripts
            script = Path(scratch) / f"{case.key}_{i:03d}.sql"
            lines = [statement.replace("\n", " ") + ";"]
            if scope_sql:
                lines = ["BEGIN;", scope_sql + ";", *lines, "COMMIT;"]
            script.write_text("\n".join(lines) + "\n", encoding="utf-8")
            scripts += ["-f", f"{script}@1"]
        # pgbench reads `:name` as a variable in prepared mode (a time literal such as '12:00' would be one)
        mode = "simple" if any(_PGBENCH_VARIABLE.search(s) for s in case.sql) else "prepared"
        if settings.warmup:
            _pgbench_run(scripts, url, seconds=settings.warmup, mode=mode, log_prefix=None, clients=clients)
        log_prefix = Path(scratch) / "latency"
        meter, client_cpu = CpuMeter(url).start(), children_cpu()
        output = _pgbench_run(scripts, url, seconds=settings.seconds, mode=mode, log_prefix=log_prefix,
                              clients=clients)
        cpu = meter.stop() + children_cpu() - client_cpu
        latencies = sorted(
            int(line.split()[2])
            for log in Path(scratch).glob("latency.*")
            for line in log.read_text().splitlines()
            if line.strip()
        )
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    failures = int(failed.group(1)) if failed else 0
    if tps is None or not latencies:
        return Result("postgis", case, failure="pgbench printed no tps")
    return Result(
        "postgis", case, requests_per_s=float(tps.group(1)), p50_ms=_percentile(latencies, 50) / 1000,
        p95_ms=_percentile(latencies, 95) / 1000, requests=len(latencies), failures=failures,
        failure=f"{failures} failed transactions" if failures else "", cpu_ms=1000 * cpu / len(latencies),
    )


_PGBENCH_VARIABLE = re.compile(r"(?<!:):[A-Za-z0-9_]")


def _pgbench_run(scripts: list[str], url: str, *, seconds: int, mode: str, log_prefix: Path | None,
                 clients: int) -> str:
    # prepared, as our server runs its statements (psycopg's prepare=True): parsed and planned once per client
    command = [_pgbench(), "-n", "-M", mode, "-c", str(clients), "-j", "2", "-T", str(seconds), *scripts]
    if log_prefix is not None:
        command += ["-l", "--log-prefix", str(log_prefix)]
    result = subprocess.run([*command, url], capture_output=True, text=True, timeout=seconds + 120)
    if result.returncode != 0:
        raise SystemExit(f"ogc.py: pgbench failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def _percentile(sorted_values: list[int], percent: float) -> float:
    index = min(len(sorted_values) - 1, max(0, math.ceil(percent / 100 * len(sorted_values)) - 1))
    return float(sorted_values[index])


# -- report ------------------------------------------------------------------------------------


def _report(plan: Plan, results: list[Result], *, settings: RunSettings, identities: Identities, command: str) -> str:
    by = {(r.target, r.case.title): r for r in results}
    header = [
        f"Command: `{command}`",
        f"OGC API on the city data ({plan.buildings:,} buildings in `{BENCH_DB}`), "
        f"{settings.seconds} s per case and target after a {settings.warmup} s warm-up; HTTP: wrk 2 threads × "
        f"{settings.connections} connections; PostGIS alone: pgbench {settings.connections} clients × 2 threads.",
        f"Ours asked as {identities.analyst.label}; grid-worker rows as {identities.worker.label}, bound to grid "
        f"{plan.worker_grid} ({plan.worker_grid_buildings} buildings).",
        *plan.sql_notes,
    ]
    lines = [
        *(line for note in header for line in (note, "")),  # one paragraph each, in Markdown too
        "| case | ours req/s | ours p50 / p95 ms | stock req/s | stock p50 / p95 ms | PostGIS alone req/s "
        "| PostGIS p50 / p95 ms | ours ÷ stock | ours ÷ PostGIS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cases = [*plan.cases, *(c for c in plan.worker_cases if ("ours", c.title) in by)]
    for case in cases:
        cells = [case.title]
        for target in TARGETS:
            result = by.get((target, case.title))
            cells += _cells(result)
        ours = by.get(("ours", case.title))
        cells.append(_ratio(ours, by.get(("stock", case.title))))
        cells.append(_ratio(ours, by.get(("postgis", case.title))))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "CPU per answer (server processes + PostgreSQL's backends + wrk or pgbench, from /proc; "
                  "the machine's other load does not change it; see `tests/bench/_cpu.py`):", "",
              "| case | ours CPU ms | stock CPU ms | PostGIS alone CPU ms | ours ÷ PostGIS by CPU |",
              "|---|---:|---:|---:|---:|"]
    for case in cases:
        cells = [case.title]
        for target in TARGETS:
            result = by.get((target, case.title))
            cells.append(f"{result.cpu_ms:.3f}" if result is not None and result.ok and result.cpu_ms else "–")
        cells.append(_cpu_ratio(by.get(("ours", case.title)), by.get(("postgis", case.title))))
        lines.append("| " + " | ".join(cells) + " |")
    worker_page = by.get(("ours", next((c.title for c in plan.worker_cases if c.key == "first_page"), "")))
    if worker_page is not None and worker_page.checks:
        lines += ["", f"Grid worker's first page: numberMatched {worker_page.checks.get('numberMatched')} "
                      f"(the grid holds {plan.worker_grid_buildings} buildings); no feature of another grid came back."]
    failures = [r for r in results if r.applicable and not r.ok]
    if failures:
        lines += ["", "Failed (not measured as fast):"]
        lines += [f"- {r.case.title}, {TARGET_TITLES[r.target]}: {r.failure or r.summary()}" for r in failures]
    lines += ["", "Goals (issue 18: ratios to PostGIS alone; issue 3: throughput floors), row-level security on:", ""]
    lines += [f"- {goal}" for goal in _goals(plan, by)]
    return "\n".join(lines)


def _cells(result: Result | None) -> list[str]:
    if result is None:
        return ["–", "–"]
    if not result.applicable:
        return ["n/a", "n/a"]
    if not result.ok:
        return ["failed", "–"]
    return [f"{result.requests_per_s:,.0f}", f"{_ms(result.p50_ms)} / {_ms(result.p95_ms)}"]


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def _ratio(ours: Result | None, other: Result | None) -> str:
    if ours is None or other is None or not ours.ok or not other.ok or not other.requests_per_s:
        return "–"
    return f"{ours.requests_per_s / other.requests_per_s:.2f}×"


def _cpu_share(ours: Result | None, other: Result | None) -> float | None:
    """ours' throughput as a share of other's where both are CPU-bound: the inverse ratio of CPU per answer."""
    if ours is None or other is None or not ours.ok or not other.ok or not ours.cpu_ms or not other.cpu_ms:
        return None
    return other.cpu_ms / ours.cpu_ms


def _cpu_ratio(ours: Result | None, other: Result | None) -> str:
    share = _cpu_share(ours, other)
    return "–" if share is None else f"{share:.2f}×"


def _goals(plan: Plan, by: dict) -> list[str]:
    def rate(target: str, key: str) -> Result | None:
        for case in plan.cases:
            if case.key == key:
                result = by.get((target, case.title))
                return result if result is not None and result.ok else None
        return None

    def verdict(met: bool | None) -> str:
        return "**met**" if met else ("**missed**" if met is False else "not measured")

    goals = []
    # the clients' issue: ours as a share of PostGIS alone (the simplest SQL, as many clients as connections)
    for key, floor in (("bbox", 0.5), ("first_page", 0.5), ("filter", 0.5), ("item", 0.25)):
        ours, alone = rate("ours", key), rate("postgis", key)
        share = ours.requests_per_s / alone.requests_per_s if ours and alone else None
        by_cpu = _cpu_share(ours, alone)
        goals.append(f"{key} ≥ {floor:.0%} of PostGIS alone: {f'{share:.0%} of it' if share is not None else 'n/a'} — "
                     f"{verdict(None if share is None else share >= floor)}; by CPU per answer: "
                     f"{f'{by_cpu:.0%}' if by_cpu is not None else 'n/a'} — "
                     f"{verdict(None if by_cpu is None else by_cpu >= floor)}")
    first = rate("ours", "first_page")
    honesty = _honesty(plan, by)
    goals.append(f"first page ≥ 1,000 req/s with an honest numberMatched: "
                 f"{f'{first.requests_per_s:,.0f} req/s' if first else 'n/a'}, numberMatched {honesty[0]} — "
                 f"{verdict(None if first is None else first.requests_per_s >= 1000 and honesty[1])}")
    for key, floor, label in (("item", 2000, "item"), ("filter", 200, "filter")):
        result = rate("ours", key)
        goals.append(f"{label} ≥ {floor:,} req/s: {f'{result.requests_per_s:,.0f} req/s' if result else 'n/a'} — "
                     f"{verdict(None if result is None else result.requests_per_s >= floor)}")
    ratios, all_met = [], True
    for case in plan.cases:
        ours, stock = rate("ours", case.key), rate("stock", case.key)
        if case.stock_paths is None:
            continue
        if ours is None or stock is None:
            ratios.append(f"{case.key} n/a")
            all_met = False if ours is None and stock is not None else all_met
            continue
        ratio = ours.requests_per_s / stock.requests_per_s
        ratios.append(f"{case.key} {ratio:.1f}×")
        all_met = all_met and ratio >= 5
    measured = any("×" in r for r in ratios)
    goals.append(f"every case ≥ 5× the stock provider: {', '.join(ratios) or 'n/a'} — "
                 f"{verdict(all_met if measured else None)}")
    return goals


def _honesty(plan: Plan, by: dict) -> tuple[str, bool]:
    """How numberMatched on our first page compares with the exact count (within 5%: an honest estimate)."""
    for case in plan.cases:
        if case.key == "first_page":
            result = by.get(("ours", case.title))
            matched = result.checks.get("numberMatched") if result else None
            if matched is None:
                return "absent", False
            if matched == plan.buildings:
                return f"exact ({matched:,})", True
            close = abs(matched - plan.buildings) <= 0.05 * plan.buildings
            return f"{matched:,} vs exact {plan.buildings:,} ({'estimate' if close else 'wrong'})", close
    return "not checked", False


def _command_line(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return " ".join([".venv/bin/python tests/bench/ogc.py", *args])


# -- docs/performance.md -----------------------------------------------------------------------

DOCS_BEGIN = "<!-- ogc-bench results: written by tests/bench/ogc.py; replaced on each run -->"
DOCS_END = "<!-- /ogc-bench results -->"


if __name__ == "__main__":
    sys.exit(main())
