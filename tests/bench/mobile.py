"""Benchmark: the phone's task list (``GET /m/api/tasks``) for a grid worker with 200 open tasks, over HTTP.

    python tests/bench/mobile.py [--tasks 200] [--calls 300] [--no-docs]

Runs in a database of its own (``onemap_bench_mobile``: migrated, the demo loaded without its
cases), where ``--tasks`` cases in one level-3 grid are dispatched through the case services to
the worker bound to a bench user (a tenth acknowledged, a tenth overdue), and a real server
(``onemap serve``, 2 workers) answers. Each request is timed from the client, one at a time,
interleaved with its baselines in the same run on the same server:

- **floor**: ``GET /healthz`` (one trivial query): what any request costs here;
- **generic list**: ``GET /api/cases/?state=dispatched&limit=200`` as the same worker (the
  cases API the phone would otherwise page through, without due-time order or allowed actions).

The table is printed and written into ``docs/performance.md`` (unless ``--no-docs``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DATABASE = "onemap_bench_mobile"
USERNAME = "bench_phone"
BEGIN, END = "<!-- bench:mobile:begin -->", "<!-- bench:mobile:end -->"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from host.embedded_db import ensure_running, recreate_database

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    url = recreate_database(server_url, DATABASE)
    env = dict(os.environ, ONEMAP_DATABASE_URL=url)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    print("migrating and loading the demo (no cases) ...", file=sys.stderr, flush=True)
    for command in (["migrate"], ["load-demo", "--no-cases"]):
        subprocess.run([sys.executable, "-m", "host.cli", *command], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    os.environ["ONEMAP_DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
    import django

    django.setup()
    token = _tasks_for_one_worker(args.tasks)
    from servers import ServerProcess

    server = ServerProcess(root=ROOT, database_url=url, log_path=ROOT / ".var" / "bench-mobile-server.log").start()
    try:
        rows = _measure(server.base_url, (USERNAME, token), calls=args.calls, tasks=args.tasks)
    finally:
        server.stop()
    report = _report(rows, tasks=args.tasks, calls=args.calls)
    print(report)
    if not args.no_docs:
        from _docs import write_results

        write_results(f"```\n{report}\n```", begin=BEGIN, end=END)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=200, help="open tasks of the worker")
    p.add_argument("--calls", type=int, default=300, help="requests per route")
    p.add_argument("--no-docs", action="store_true", help="print only; leave docs/performance.md alone")
    return p


def _tasks_for_one_worker(count: int) -> str:
    """A bench user bound to the first worker of the first level-3 grid, with ``count`` cases dispatched to it."""
    from django.utils import timezone

    from core.identity import Identity
    from gis import models as m
    from gis.accounts.services import grid_worker_bind, token_create, user_create
    from gis.cases import services as cases
    from gis.incidents.services import incident_create

    grid = m.Grid.objects.filter(level=3).order_by("code").first()
    worker = m.GridWorker.objects.filter(grid=grid).order_by("code").first()
    user_create(username=USERNAME, role="grid_worker", grid_code=grid.code)
    grid_worker_bind(username=USERNAME, worker_code=worker.code)
    _, token = token_create(username=USERNAME, name="bench")
    commander = Identity(role="commander", username="bench.commander")
    handler = Identity(role="grid_worker", username=USERNAME, grid_id=grid.id)
    categories = ("sanitation", "facility_damage", "illegal_parking", "resident_report", "neighbour_dispute")
    started = time.perf_counter()
    for n in range(count):
        point = grid.geom.point_on_surface
        incident = incident_create(lon=point.x, lat=point.y, category=categories[n % len(categories)],
                                   source="staff", code=f"INC-BENCH-PHONE-{n:04d}", title=f"任务 {n}")
        case = cases.case_open(incident_id=incident.id)
        cases.case_accept(case_id=case.id, actor=commander)
        cases.case_file(case_id=case.id, actor=commander)
        cases.case_dispatch(case_id=case.id, actor=commander, worker_id=worker.id, recommendation={"skipped": True})
        if n % 10 == 1:
            cases.case_acknowledge(case_id=case.id, actor=handler)
        if n % 10 == 2:
            m.Case.objects.filter(pk=case.id).update(breached_at=timezone.now())
    print(f"{count} tasks dispatched to {worker.code} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return token


def _measure(base_url: str, auth, *, calls: int, tasks: int) -> list[dict]:
    import requests

    routes = [("phone task list", "/m/api/tasks"), ("floor: /healthz", "/healthz"),
              ("generic list", "/api/cases/?state=dispatched&limit=200")]
    session = requests.Session()
    session.auth = auth
    first = session.get(base_url + "/m/api/tasks", timeout=30)
    assert first.status_code == 200 and len(first.json()["tasks"]) == tasks, first.text[:300]
    sizes = {}
    for _, path in routes:  # warm: tokens cached, statements planned
        for _ in range(10):
            sizes[path] = len(session.get(base_url + path, timeout=30).content)
    times = {path: [] for _, path in routes}
    for _ in range(calls):
        for _, path in routes:
            began = time.perf_counter()
            response = session.get(base_url + path, timeout=30)
            times[path].append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (path, response.status_code)
    return [{"name": name, "path": path, "bytes": sizes[path], "p50": statistics.median(times[path]),
             "p95": statistics.quantiles(times[path], n=20)[18]} for name, path in routes]


def _report(rows: list[dict], *, tasks: int, calls: int) -> str:
    phone = rows[0]
    lines = [f"GET /m/api/tasks, a worker with {tasks} open tasks, {calls} calls per route (ms, client side)",
             f"{'route':<18} {'bytes':>8} {'p50':>7} {'p95':>7} {'phone/route p95':>16}"]
    for row in rows:
        lines.append(f"{row['name']:<18} {row['bytes']:>8,} {row['p50']:>7.2f} {row['p95']:>7.2f} "
                     f"{phone['p95'] / row['p95']:>16.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
