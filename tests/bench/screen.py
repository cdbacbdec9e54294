"""Benchmark: the big screen on the ``city`` data set: insert-to-marker latency and page load time.

    python tests/bench/screen.py [--incidents 100] [--loads 5] [--no-docs]

- **Insert-to-marker latency**: one page on ``/screen/`` (headless Chromium, a commander's token)
  stays open while ``--incidents`` incidents are inserted one by one through
  ``gis.incidents.services.incident_create`` in this process. For each, the time the transaction committed
  (``time.time()`` right after the service returns) is compared with ``onemapScreen.markerSeenAt[id]``
  (``Date.now()`` in the page when its marker was added): the same machine clock. Goal of issue 5:
  p95 < 1 s. The incidents are deleted again, one by one, at the end.
- **Page load time**: navigation start to ``onemapScreen.ready`` (stamped by a 5 ms poll installed
  before the page's own scripts), each load in a fresh browser context (cold cache), on the city
  database and, as the baseline in the same run, on the demo community (Pingdeng Street, in a
  database of its own, ``onemap_bench_screen_demo``); the OGC landing page's load event is a
  second, data-free reference. (An empty database is no baseline: the page needs a level-1 grid.)

``onemap_bench_city`` must exist and hold the city (``tests/bench/city_generation.py`` makes it;
this script never reloads it). Each server is ``onemap serve --workers 2`` on a free loopback
port. Prints a table, writes ``.var/bench/screen.json`` and the table into the "Big screen"
section of ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _docs import DOCS, write_results  # noqa: E402  (tests/bench, the script's own folder)
from browser import BrowserUnavailable, launch_chromium, open_page, start_playwright  # noqa: E402
from servers import ServerProcess  # noqa: E402

BENCH_DB = "onemap_bench_city"
DEMO_DB = "onemap_bench_screen_demo"
WORK_DIR = ROOT / ".var" / "bench"
COMMANDER = "bench_commander"
CODE_PREFIX = "BENCH-SCREEN-"
CATEGORIES = ("falling_object", "fire_smoke", "illegal_parking", "resident_report", "sanitation",
              "facility_damage", "neighbour_dispute", "epidemic")
READY_TIMEOUT_S = 120
MARKER_TIMEOUT_S = 10
GOAL_P95_MS = 1000
# stamps the moment the page turns ready, finer than polling from Python could
READY_STAMP = """(() => {
  const poll = setInterval(() => {
    if (window.onemapScreen && window.onemapScreen.ready === true) {
      window.__benchReadyAt = performance.now();
      clearInterval(poll);
    }
  }, 5);
})();"""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    city_url, demo_url = _databases()
    _setup_django(city_url)
    try:
        playwright = start_playwright()
    except BrowserUnavailable as exc:
        raise SystemExit(f"screen.py: {exc}") from None
    browser = launch_chromium(playwright)
    city = ServerProcess(root=ROOT, database_url=city_url, log_path=WORK_DIR / "screen_city_server.log")
    demo = ServerProcess(root=ROOT, database_url=demo_url, log_path=WORK_DIR / "screen_demo_server.log")
    try:
        for server in (city, demo):
            server.start(timeout_s=240)
            print(f"serving {server.database_url.rsplit('/', 1)[-1]} on {server.base_url}", flush=True)
        tokens = {city.base_url: _commander_token(city_url), demo.base_url: _commander_token(demo_url)}
        loads = _page_loads(browser, city, demo, tokens, rounds=args.loads)
        latency = _latency(browser, city, tokens[city.base_url], count=args.incidents)
    finally:
        _delete_bench_incidents()
        city.stop()
        demo.stop()
        browser.close()
        playwright.stop()
    result = Result(loads=loads, latency=latency, incidents=args.incidents, rounds=args.loads,
                    machine=f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    report = _report(result)
    print("\n" + report)
    (WORK_DIR / "screen.json").write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
    if not args.no_docs:
        write_results(report, begin=DOCS_BEGIN, end=DOCS_END)
        print(f"\n(written into {DOCS.relative_to(ROOT)})")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--incidents", type=int, default=100, help="incidents inserted one by one (default 100)")
    p.add_argument("--loads", type=int, default=5, help="page loads per database (default 5)")
    p.add_argument("--no-docs", action="store_true", help=f"do not write the table into {DOCS.relative_to(ROOT)}")
    return p


# -- databases and accounts --------------------------------------------------------------------


def _databases() -> tuple[str, str]:
    """The city database (which must be loaded) and the demo community's (loaded here once) for the baseline."""
    import psycopg

    from host.embedded_db import ensure_running, prepare_database
    from core.settings import with_database_name

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    city_url = with_database_name(server_url, BENCH_DB)
    try:
        with psycopg.connect(city_url) as conn:
            buildings = conn.execute("SELECT count(*) FROM buildings").fetchone()[0]
    except psycopg.Error as exc:
        raise SystemExit(f"screen.py: {BENCH_DB} cannot be read ({str(exc).strip()}); "
                         "make it with .venv/bin/python tests/bench/city_generation.py") from None
    if buildings < 100_000:
        raise SystemExit(f"screen.py: {BENCH_DB} holds {buildings:,} buildings, not the city; "
                         "load it with .venv/bin/python tests/bench/city_generation.py")
    prepare_database(server_url, DEMO_DB)
    demo_url = with_database_name(server_url, DEMO_DB)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    loaded = _onemap(["load-demo", "--quiet"], env={**env, "ONEMAP_DATABASE_URL": demo_url})  # once; then a no-op
    if loaded.returncode != 0:
        raise SystemExit(f"screen.py: loading the demo into {DEMO_DB} failed: {loaded.stderr.strip()[-500:]}")
    return city_url, demo_url


def _setup_django(url: str) -> None:
    os.environ["ONEMAP_DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
    # Playwright's sync API keeps an asyncio loop on this thread; the ORM calls here never overlap it
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    import django

    django.setup()


def _commander_token(url: str) -> tuple[str, str]:
    """A commander and a fresh one-day token in the database at ``url`` (``onemap user`` / ``onemap token``)."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env["ONEMAP_DATABASE_URL"] = url
    added = _onemap(["user", "add", COMMANDER, "--role", "commander"], env=env)
    if added.returncode != 0 and "exist" not in (added.stdout + added.stderr).lower():
        raise SystemExit(f"screen.py: `onemap user add` failed: {added.stderr.strip() or added.stdout.strip()}")
    created = _onemap(["token", "create", COMMANDER, "--name", "screen-bench", "--expires-days", "1"], env=env)
    token = re.search(r"\bom_[A-Za-z0-9_\-]+", created.stdout)
    if created.returncode != 0 or token is None:
        raise SystemExit(f"screen.py: `onemap token create` gave no token: {created.stderr.strip()}")
    return COMMANDER, token.group(0)


def _onemap(args: list[str], *, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


# -- page load ---------------------------------------------------------------------------------


@dataclass
class Loads:
    city_ms: list[float] = field(default_factory=list)
    demo_ms: list[float] = field(default_factory=list)
    ogc_landing_ms: list[float] = field(default_factory=list)
    city_requests: int = 0
    city_kib: float = 0.0
    city_live_markers: int = 0
    demo_requests: int = 0
    demo_kib: float = 0.0
    errors: list[str] = field(default_factory=list)


def _page_loads(browser, city: ServerProcess, demo: ServerProcess, tokens: dict, *, rounds: int) -> Loads:
    """Cold loads of /screen/, alternating between the city and the demo database; the OGC landing page too."""
    loads = Loads()
    print(f"page load: a warm-up, then {rounds} cold loads per database ...", flush=True)
    for server in (city, demo):  # the servers' first answers (pools, prepared statements) are not counted
        _one_load(browser, server, tokens[server.base_url])
    for _ in range(rounds):
        for server, into in ((city, loads.city_ms), (demo, loads.demo_ms)):
            ms, details = _one_load(browser, server, tokens[server.base_url])
            loads.errors += details[3]
            if ms is None:
                continue
            into.append(ms)
            if server is city:
                loads.city_requests, loads.city_kib, loads.city_live_markers = details[:3]
            else:
                loads.demo_requests, loads.demo_kib = details[:2]
        loads.ogc_landing_ms.append(_landing_load(browser, city, tokens[city.base_url]))
    return loads


def _one_load(browser, server: ServerProcess, credentials) -> tuple[float | None, tuple]:
    """One cold load: (ms to ready or None, (requests, KiB transferred, live markers, problems))."""
    page, log = open_page(browser, base_url=server.base_url, credentials=credentials)
    try:
        page.add_init_script(READY_STAMP)
        page.goto("/screen/", wait_until="commit")
        try:
            page.wait_for_function("window.__benchReadyAt !== undefined", timeout=READY_TIMEOUT_S * 1000, polling=20)
        except Exception:
            problem = f"{server.base_url}: not ready after {READY_TIMEOUT_S} s; {log.describe() or 'no error logged'}"
            return None, (len(log.requests), 0.0, 0, [problem])
        ready_ms = page.evaluate("window.__benchReadyAt")
        transferred = page.evaluate(
            "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
            ".reduce((sum, e) => sum + (e.transferSize || 0), 0)"
        )
        markers = page.evaluate("window.onemapScreen.incidents ? window.onemapScreen.incidents.size : 0")
        problems = [f"{server.base_url}: {line}" for line in log.errors()]
        problems += [f"{server.base_url}: left the server: {url}" for url in log.foreign_requests()]
        return ready_ms, (len(log.requests), transferred / 1024, markers, problems)
    finally:
        page.context.close()


def _landing_load(browser, server: ServerProcess, credentials) -> float:
    page, _ = open_page(browser, base_url=server.base_url, credentials=credentials)
    try:
        page.goto("/ogc/", wait_until="load")
        return page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    finally:
        page.context.close()


# -- insert-to-marker latency ------------------------------------------------------------------


@dataclass
class Latency:
    ms: list[float] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    insert_ms: list[float] = field(default_factory=list)


def _latency(browser, server: ServerProcess, credentials, *, count: int) -> Latency:
    from gis.incidents.services import incident_create

    points = _incident_points(count)
    latency = Latency()
    page, log = open_page(browser, base_url=server.base_url, credentials=credentials)
    try:
        page.goto("/screen/", wait_until="commit")
        page.wait_for_function("window.onemapScreen && onemapScreen.ready === true && onemapScreen.connection === 'open'",
                               timeout=READY_TIMEOUT_S * 1000, polling=50)
        print(f"latency: inserting {count} incidents one by one ...", flush=True)
        run = time.strftime("%Y%m%d%H%M%S")
        for i, (lon, lat) in enumerate(points):
            started = time.time()
            incident = incident_create(lon=lon, lat=lat, category=CATEGORIES[i % len(CATEGORIES)], source="staff",
                                       code=f"{CODE_PREFIX}{run}-{i:04d}", title="基准测试 benchmark")
            committed_ms = time.time() * 1000  # the service's transaction has committed when it returns
            latency.insert_ms.append(committed_ms - started * 1000)
            try:
                page.wait_for_function("id => onemapScreen.markerSeenAt[id] !== undefined", arg=incident.id,
                                       timeout=MARKER_TIMEOUT_S * 1000, polling="raf")
            except Exception:
                latency.missed.append(incident.id)
                continue
            seen_ms = page.evaluate("id => onemapScreen.markerSeenAt[id]", incident.id)
            latency.ms.append(seen_ms - committed_ms)
            page.wait_for_timeout(50 + (i * 37) % 200)  # spread the inserts over the feed's cycles
        if log.page_errors:
            print("page errors during the latency run:\n  " + "\n  ".join(log.page_errors), file=sys.stderr)
    finally:
        page.context.close()
    return latency


def _incident_points(count: int) -> list[tuple[float, float]]:
    """``count`` points spread over the city's level-3 grids (one inside each chosen grid)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p, row_number() OVER (ORDER BY code) AS n,"
            " count(*) OVER () AS total FROM grids WHERE level = 3) g WHERE n %% greatest(total / %s, 1) = 0"
            " ORDER BY n LIMIT %s",
            [count, count],
        )
        points = cursor.fetchall()
    if len(points) < count:
        raise SystemExit(f"screen.py: {BENCH_DB} has too few level-3 grids ({len(points)}) to spread {count} incidents")
    return points


def _delete_bench_incidents() -> None:
    """Remove this benchmark's incidents one by one (a bulk delete would send the screens a reset)."""
    from gis.incidents.services import incident_delete
    from gis.models import Incident

    with contextlib.suppress(Exception):
        for incident_id in Incident.objects.filter(code__startswith=CODE_PREFIX).values_list("id", flat=True):
            incident_delete(incident_id=incident_id)


# -- report ------------------------------------------------------------------------------------


@dataclass
class Result:
    loads: Loads
    latency: Latency
    incidents: int
    rounds: int
    machine: str


def _report(result: Result) -> str:
    lat, loads = result.latency, result.loads
    lines = [
        f"Measured with `.venv/bin/python tests/bench/screen.py` on {result.machine}; headless Chromium "
        f"(Debian), `onemap serve --workers 2`, city data set (200,000 buildings, 1,000,000 incidents).",
        "",
        "| insert-to-marker latency | p50 | p95 | max | received | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    if lat.ms:
        p95 = _percentile(lat.ms, 95)
        verdict = "met" if p95 < GOAL_P95_MS and not lat.missed else "**missed**"
        lines.append(
            f"| commit in Python → `markerSeenAt` in the page | {_percentile(lat.ms, 50):,.0f} ms | {p95:,.0f} ms | "
            f"{max(lat.ms):,.0f} ms | {len(lat.ms)} of {result.incidents} | p95 < 1 s: {verdict} |"
        )
    else:
        lines.append(f"| commit → marker | – | – | – | 0 of {result.incidents} | **missed** |")
    if lat.insert_ms:
        lines.append(f"| (the insert itself, `incident_create`) | {_percentile(lat.insert_ms, 50):,.0f} ms | "
                     f"{_percentile(lat.insert_ms, 95):,.0f} ms | {max(lat.insert_ms):,.0f} ms | | |")
    lines += [
        "",
        f"| page load, navigation start → `onemapScreen.ready` ({result.rounds} cold loads) | median | max | ratio |",
        "|---|---:|---:|---:|",
    ]
    demo_median = statistics.median(loads.demo_ms) if loads.demo_ms else None
    for label, values in (
        (f"city data set ({loads.city_requests} requests, {loads.city_kib:,.0f} KiB, "
         f"{loads.city_live_markers} live markers at start)", loads.city_ms),
        (f"baseline: demo community (Pingdeng Street), same page ({loads.demo_requests} requests, "
         f"{loads.demo_kib:,.0f} KiB)", loads.demo_ms),
        ("reference: OGC landing page (load event)", loads.ogc_landing_ms),
    ):
        if not values:
            continue
        median = statistics.median(values)
        ratio = f"{median / demo_median:.2f}×" if demo_median else "–"
        lines.append(f"| {label} | {median:,.0f} ms | {max(values):,.0f} ms | {ratio} |")
    if loads.errors:
        lines += ["", "Errors seen while loading (the page must have none):", ""]
        lines += [f"- {error}" for error in sorted(set(loads.errors))[:10]]
    return "\n".join(lines)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


DOCS_BEGIN = "<!-- screen-bench results: written by tests/bench/screen.py; replaced on each run -->"
DOCS_END = "<!-- /screen-bench results -->"


if __name__ == "__main__":
    sys.exit(main())
