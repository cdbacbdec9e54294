"""Benchmark: cases on the city data — transitions through the services, the SLA sweep, the indicators.

    python tests/bench/cases.py [--open 100000] [--walks 100] [--city-factor 1.0]

Runs on the city database of ``tests/bench/dispatch.py`` (the shared ``onemap_bench_city`` when
it is loaded, else that script's own, made here when missing), migrated first; everything it
writes is rolled back at the end. Each figure is printed beside a baseline measured in the
same run on the same rows:

- **transitions**: ``--walks`` cases walked through accept → file → dispatch (with the walking-time
  recommendation) → acknowledge → handle → pass by the services; baseline: the same number of
  bare ``UPDATE cases SET state`` statements.
- **SLA sweep**: ``--open`` open cases made in bulk with due and warning moments spread over the
  next days, 0.1% of them falling due now; one ``sla_sweep`` (marking, audit rows, escalation of
  the breached); baseline: one count of the open cases. Goal: under 1 s.
- **indicators**: a year of audit rows for those cases (file, dispatch, pass), then
  ``case_indicators`` by grid over the year; baseline: one count of the year's audit rows. Goal:
  under 2 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        return _measure(open_cases=args.open, walks=args.walks)
    from dispatch import city_database

    from host.embedded_db import ensure_running, recreate_database

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    url, load = city_database(server_url, recreate_database, args.city_factor)
    env = dict(os.environ, ONEMAP_DATABASE_URL=url, ONEMAP_BENCH_LOAD_FACTOR=str(load))
    return subprocess.run([sys.executable, __file__, "--child", "--open", str(args.open), "--walks", str(args.walks)],
                          env=env, cwd=ROOT).returncode


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--open", type=int, default=100_000, help="open cases for the sweep and the indicators")
    p.add_argument("--walks", type=int, default=100, help="cases walked through the services")
    p.add_argument("--city-factor", type=float, default=1.0, help="size of the city made when none is loaded")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p


class _Undo(Exception):
    pass


def _measure(*, open_cases: int, walks: int) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from data.city import YEAR_END, load_city

    call_command("migrate", verbosity=0)
    factor = float(os.environ.get("ONEMAP_BENCH_LOAD_FACTOR") or 0)
    if factor:
        load_city(factor=factor)
    now = datetime.fromtimestamp(YEAR_END, tz=UTC)
    rows = []
    try:
        with transaction.atomic():
            rows.append(_transitions(walks, now))
            with connection.cursor() as cursor:
                _bulk_cases(cursor, open_cases, now)
                cursor.execute("ANALYZE cases")
                cursor.execute("ANALYZE case_events")
            rows.append(_sweep(now))
            rows.append(_indicators(now))
            raise _Undo
    except _Undo:
        pass
    print(f"{'measure':<44} {'baseline':>12} {'cases':>12} {'ratio':>7}  goal")
    for name, base, value, unit, goal in rows:
        print(f"{name:<44} {base:>10.4f} s {value:>10.4f} s {value / base:>6.1f}x  {goal}  ({unit})")
    return 0


def _transitions(walks: int, now: datetime):
    from core.identity import Identity
    from gis.cases import services as cases
    from gis.cases.models import Case
    from gis.incidents.models import Incident
    from gis.spatial.models import GridWorker

    commander = Identity(role="commander", username="bench")
    incidents = list(Incident.objects.filter(case__isnull=True).exclude(grid=None).order_by("-reported_at")[:walks])
    workers = {w.grid_id: w for w in GridWorker.objects.order_by("id")}
    opened = [cases.case_open(incident_id=i.id, at=now) for i in incidents]
    started = time.perf_counter()
    steps = 0
    for case, incident in zip(opened, incidents):
        worker = workers.get(incident.grid_id) or next(iter(workers.values()))
        handler = Identity(role="grid_worker", username=worker.code)
        cases.case_accept(case_id=case.id, actor=commander, at=now)
        cases.case_file(case_id=case.id, actor=commander, at=now)
        cases.case_dispatch(case_id=case.id, actor=commander, worker_id=worker.id, at=now)
        cases.case_acknowledge(case_id=case.id, actor=handler, at=now)
        cases.case_handle(case_id=case.id, actor=handler, note="bench", at=now)
        cases.case_pass(case_id=case.id, actor=commander, at=now)
        steps += 6
    services_s = time.perf_counter() - started
    started = time.perf_counter()
    for case in opened:
        for state in ("accepted", "filed", "dispatched", "acknowledged", "handled", "closed"):
            Case.objects.filter(pk=case.id).update(state=state)
    bare_s = time.perf_counter() - started
    return (f"{steps} transitions ({steps / services_s:,.0f}/s)", bare_s, services_s, "per walk set", "-")


def _bulk_cases(cursor, n: int, now: datetime) -> None:
    """``n`` open dispatched cases over the city's incidents: due moments over the next 5 days, 0.1% due now."""
    cursor.execute("""
        WITH picked AS (
            SELECT i.id, i.code, i.category, i.grid_id, row_number() OVER (ORDER BY i.id) AS k
            FROM incidents i
            WHERE NOT EXISTS (SELECT 1 FROM cases c WHERE c.incident_id = i.id) AND i.grid_id IS NOT NULL
            LIMIT %(n)s
        )
        INSERT INTO cases (code, incident_id, category, state, tier, grid_id, department, stage, stage_started_at,
                           warn_at, due_at, handle_due_at, resume_state, deferred, rework_count, reopen_count,
                           escalation_count, created_at, updated_at)
        SELECT 'BENCH-' || p.code, p.id, p.category, 'dispatched', 3, p.grid_id, '', 'handle',
               %(now)s - interval '1 hour',
               %(now)s + (CASE WHEN p.k %% 1000 = 0 THEN interval '-2 minutes' ELSE (p.k %% 7200) * interval '1 minute' END),
               %(now)s + (CASE WHEN p.k %% 1000 = 0 THEN interval '-1 minute' ELSE (p.k %% 7200 + 60) * interval '1 minute' END),
               %(now)s + (p.k %% 7200 + 60) * interval '1 minute', '', false, 0, 0, 0, %(now)s, %(now)s
        FROM picked p
    """, {"n": n, "now": now})
    # a year of audit rows for them: filed and dispatched over the year, two in three closed
    cursor.execute("""
        INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role, reason, data)
        SELECT c.id, t.at, t.action, t.from_state, t.to_state, 'bench', 'commander', '', t.data
        FROM cases c
        CROSS JOIN LATERAL (SELECT %(now)s - (c.id %% 365) * interval '1 day' - (c.id %% 600) * interval '1 minute'
                            AS filed_at) f
        CROSS JOIN LATERAL (VALUES
            (f.filed_at, 'file', 'accepted', 'filed', '{}'::jsonb),
            (f.filed_at + (c.id %% 90) * interval '1 minute', 'dispatch', 'filed', 'dispatched', '{}'::jsonb),
            (f.filed_at + (c.id %% 900 + 60) * interval '1 minute', 'pass', 'handled', 'closed',
             jsonb_build_object('on_time', c.id %% 5 <> 0))
        ) AS t(at, action, from_state, to_state, data)
        WHERE c.code LIKE 'BENCH-%%' AND (t.action <> 'pass' OR c.id %% 3 <> 0)
    """, {"now": now})


def _sweep(now: datetime):
    from django.db import connection

    from gis.cases.sla import sla_sweep

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cases WHERE state <> 'closed' AND state <> 'rejected'")
        open_cases = cursor.fetchone()[0]
    base = time.perf_counter() - started
    started = time.perf_counter()
    report = sla_sweep(now=now)
    took = time.perf_counter() - started
    return (f"SLA sweep over {open_cases:,} open ({len(report.warned)} warned, {len(report.breached)} breached)",
            base, took, "one sweep", "< 1 s")


def _indicators(now: datetime):
    from django.db import connection

    from gis.cases.selectors import case_indicators

    start = now - timedelta(days=365)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM case_events WHERE at >= %s AND at < %s", [start, now])
        events = cursor.fetchone()[0]
    base = time.perf_counter() - started
    started = time.perf_counter()
    rows = case_indicators(start=start, end=now, by="grid")
    took = time.perf_counter() - started
    return (f"indicators by grid for a year ({events:,} audit rows, {len(rows)} grids)", base, took, "one call",
            "< 2 s")


if __name__ == "__main__":
    sys.exit(main())
