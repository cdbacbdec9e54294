"""Benchmark: ``recommend_workers`` (walking metres by pgRouting) against a straight-line KNN baseline.

    python tests/bench/dispatch.py [--calls 300] [--city-factor 1.0] [--no-city]

Each data set has a database of its own on the project's server:

- **demo**: ``onemap_bench_dispatch_demo``, recreated, migrated and loaded with the demo here;
  the places' moment is the demo's as-of time (stale after 10 min, the default).
- **city**: ``onemap_bench_city`` when it already holds the city (``tests/bench/city_generation.py``
  makes it; it is only read here), otherwise ``onemap_bench_dispatch_city``, made here with
  ``data.city.load_city(factor=--city-factor)``. The city's on-duty workers last reported up to
  8 h before its year's end, so the moment is that instant and positions count as known for 8 h.

For each data set, in one process, ``--calls`` seeded random places inside the level-3 grids:
the baseline (``routing.CANDIDATES_SQL`` alone, i.e. the same scope and KNN prefilter, ranked by
straight-line metres, no streets) and ``recommend_workers`` alternate call by call, so both meet
the same caches. Prints p50/p95 in ms and the ratio routed ÷ baseline. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEMO_DB = "onemap_bench_dispatch_demo"
SHARED_CITY_DB = "onemap_bench_city"
OWN_CITY_DB = "onemap_bench_dispatch_city"
WARM_UP = 20


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        print(json.dumps(_measure(args.child, calls=args.calls, seed=args.seed, load_factor=args.load_factor)))
        return 0
    from host.embedded_db import ensure_running, recreate_database

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    runs = [("demo", fresh_database(server_url, DEMO_DB, recreate_database), ["--load-factor", "0"])]
    if not args.no_city:
        url, load = city_database(server_url, recreate_database, args.city_factor)
        runs.append(("city", url, ["--load-factor", str(load)]))
    results = []
    for name, url, extra in runs:
        print(f"measuring {name} ({args.calls} calls each) ...", file=sys.stderr, flush=True)
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--calls", str(args.calls), "--seed", str(args.seed), *extra],
            env=dict(os.environ, ONEMAP_DATABASE_URL=url), cwd=ROOT, check=True, capture_output=True, text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(_report(results))
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=300, help="places per data set (each: one baseline, one routed)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--city-factor", type=float, default=1.0, help="size of the city made here when none is loaded")
    p.add_argument("--no-city", action="store_true", help="the demo only")
    p.add_argument("--child", choices=["demo", "city"], help=argparse.SUPPRESS)
    p.add_argument("--load-factor", type=float, default=0.0, help=argparse.SUPPRESS)
    return p


# -- the databases -----------------------------------------------------------------------------


def fresh_database(server_url: str, name: str, recreate_database) -> str:
    url = recreate_database(server_url, name)
    env = dict(os.environ, ONEMAP_DATABASE_URL=url)
    subprocess.run([sys.executable, "-m", "host.cli", "migrate"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return url


def city_database(server_url: str, recreate_database, factor: float) -> tuple[str, float]:
    """(url, factor to load there): the shared city, else ours of this factor from an earlier run, else a new one."""
    from core.settings import with_database_name

    for name, wanted in ((SHARED_CITY_DB, None), (OWN_CITY_DB, factor)):
        url = with_database_name(server_url, name)
        loaded = _city_factor(url)
        if loaded is not None and wanted in (None, loaded):
            print(f"using the city loaded in {name}", file=sys.stderr)
            return url, 0.0
    print(f"no city loaded: making one (factor {factor}) in {OWN_CITY_DB}", file=sys.stderr)
    return fresh_database(server_url, OWN_CITY_DB, recreate_database), factor


def _city_factor(url: str) -> float | None:
    """The factor of the city the database holds (its last load), or None: no such database, or no city in it."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT kind, parameters->>'factor' FROM data_loads ORDER BY finished_at DESC LIMIT 1")
            last = row.fetchone()
    except psycopg.Error:
        return None
    return float(last[1]) if last and last[0] == "city" and last[1] is not None else None


# -- one data set, in its own process ----------------------------------------------------------


def _measure(name: str, *, calls: int, seed: int, load_factor: float) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
    import django

    django.setup()
    from django.db import connection

    if name == "demo":
        from data.demo import DEMO_AS_OF, load_demo

        load_demo()
        now, stale_after = DEMO_AS_OF, timedelta(minutes=10)
    else:
        from data.city import YEAR_END, load_city

        if load_factor:
            load_city(factor=load_factor)
        now, stale_after = datetime.fromtimestamp(YEAR_END, tz=UTC), timedelta(hours=8)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SELECT (SELECT count(*) FROM streets), (SELECT count(*) FROM grid_workers), "
                       "(SELECT count(*) FROM grids WHERE level = 3)")
        streets, workers, grids = cursor.fetchone()
    places = _places(calls + WARM_UP, seed)
    base, routed, reached = _time_both(places, now=now, stale_after=stale_after)
    return {
        "name": name, "streets": streets, "workers": workers, "grids": grids, "calls": calls,
        "baseline_ms": base[WARM_UP:], "routed_ms": routed[WARM_UP:], "candidates_routed": reached,
    }


def _places(n: int, seed: int) -> list[tuple[float, float]]:
    """Seeded random points, each inside a level-3 grid (a random grid, then a random point in it)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_X(p), ST_Y(p) FROM generate_series(1, %s) i CROSS JOIN LATERAL ("
            "  SELECT ST_GeometryN(ST_GeneratePoints(geom, 1, %s * 100000 + i), 1) AS p FROM grids"
            "  WHERE level = 3 ORDER BY md5(code || ':' || i) LIMIT 1) g ORDER BY i",
            [n, seed],
        )
        return cursor.fetchall()


def _time_both(places, *, now, stale_after) -> tuple[list[float], list[float], int]:
    from django.db import connection

    from gis.spatial.routing import CANDIDATES_SQL, KNN_CANDIDATES, recommend_workers

    baseline_sql = CANDIDATES_SQL + (
        "SELECT c.id, ST_Distance(c.geom::geography, (SELECT geom FROM pt)::geography) AS m "
        "FROM candidates c ORDER BY c.geom IS NULL, m"
    )
    base, routed, reached = [], [], 0
    for lon, lat in places:
        params = {"lon": lon, "lat": lat, "grid_id": None, "fresh_since": now - stale_after, "knn": KNN_CANDIDATES}
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(baseline_sql, params)
            cursor.fetchall()
        base.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        got = recommend_workers(lon=lon, lat=lat, now=now, stale_after=stale_after)
        routed.append((time.perf_counter() - started) * 1000)
        reached += sum(1 for c in got.candidates if c.walk_m is not None)
    return base, routed, reached


# -- report ------------------------------------------------------------------------------------


def _report(results: list[dict]) -> str:
    lines = [
        "recommend_workers (snapping + one pgr_withPointsCost on the streets near the places) vs the straight-line",
        "KNN baseline (same scope and prefilter, no streets); ms per call, both measured in the same run",
        "",
        (f"{'data set':<8} {'streets':>8} {'workers':>8} {'calls':>6} {'base p50':>9} {'base p95':>9} "
         f"{'routed p50':>11} {'routed p95':>11} {'× p50':>6} {'× p95':>6}"),
    ]
    for r in results:
        b50, b95 = _percentiles(r["baseline_ms"])
        r50, r95 = _percentiles(r["routed_ms"])
        lines.append(
            f"{r['name']:<8} {r['streets']:>8,} {r['workers']:>8,} {r['calls']:>6} {b50:>9.2f} {b95:>9.2f} "
            f"{r50:>11.2f} {r95:>11.2f} {r50 / b50:>6.1f} {r95 / b95:>6.1f}"
        )
    return "\n".join(lines)


def _percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


if __name__ == "__main__":
    sys.exit(main())
