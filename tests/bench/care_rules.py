"""Benchmark: one full evaluation of the elder-care rules over the city's 100,000 people under care.

    python tests/bench/care_rules.py [--city-factor 1.0] [--alerts 30]

Runs on a city database of its own (``onemap_bench_care``, loaded here when missing, migrated
first), so the care tables never reach a database others share; everything it writes is rolled
back at the end. The state ingest keeps is made in bulk: every sensor heard from within the last
hours (0.5% silent for more than 6 h, 1% with a low battery), one gateway per 40 sensors (1% of them
offline), each person's last activity spread over the last day (0.3% between 24 and 48 h ago), with
``--alerts`` of them past 48 h. Each figure beside a baseline measured in the same run on the same rows:

- **first sweep**: faults, every person's deadlines written (100,000 rows), warnings and alerts
  raised, without opening their cases; baseline: one count of the people under care.
- **sweep a minute later** (the steady state: the worker's every minute): goal under 1 s.
- **alerts into cases**: each raised alert opened, accepted, filed and dispatched (with the
  walking-time recommendation); baseline: the same number of incident rows made by the ORM alone.
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

CITY_DB = "onemap_bench_care"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        return _measure(alerts=args.alerts)
    from dispatch import _city_factor, fresh_database

    from core.settings import with_database_name
    from host.embedded_db import ensure_running, recreate_database

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    url = with_database_name(server_url, CITY_DB)
    load = 0.0
    if _city_factor(url) != args.city_factor:
        print(f"no city loaded: making one (factor {args.city_factor}) in {CITY_DB}", file=sys.stderr)
        url, load = fresh_database(server_url, CITY_DB, recreate_database), args.city_factor
    env = dict(os.environ, ONEMAP_DATABASE_URL=url, ONEMAP_BENCH_LOAD_FACTOR=str(load))
    return subprocess.run([sys.executable, __file__, "--child", "--alerts", str(args.alerts)],
                          env=env, cwd=ROOT).returncode


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--city-factor", type=float, default=1.0, help="size of the city made when none is loaded")
    p.add_argument("--alerts", type=int, default=100, help="people silent past 48 h (their alerts become cases; only those with a sensor are watched)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p


class _Undo(Exception):
    pass


def _measure(*, alerts: int) -> int:
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
            with connection.cursor() as cursor:
                people = _state(cursor, now, alerts)
                for table in ("sensors", "gateways", "care_subjects"):
                    cursor.execute(f"ANALYZE {table}")
            rows += _sweeps(now, people)
            raise _Undo
    except _Undo:
        pass
    print(f"{'measure':<64} {'baseline':>12} {'care':>12} {'ratio':>7}  goal")
    for name, base, value, unit, goal in rows:
        print(f"{name:<64} {base:>10.4f} s {value:>10.4f} s {value / base:>6.1f}x  {goal}  ({unit})")
    return 0


def _state(cursor, now: datetime, alerts: int) -> int:
    """What ingest would have written by ``now``: heartbeats, batteries, gateways, last activities."""
    cursor.execute("DELETE FROM care_alerts; DELETE FROM care_rule_states; DELETE FROM care_faults;")
    cursor.execute("""
        INSERT INTO gateways (code, synthetic, created_at, updated_at, name, building_id, status, last_seen_at, geom)
        SELECT 'GW-BENCH-' || g, true, %(now)s - interval '30 days', %(now)s, '', NULL,
               CASE WHEN g %% 100 = 0 THEN 'offline' ELSE 'online' END, %(now)s - interval '1 minute',
               ST_SetSRID(ST_MakePoint(113.66, 34.75), 4326)
        FROM generate_series(1, (SELECT count(*) / 40 + 1 FROM sensors)) g
    """, {"now": now})
    cursor.execute("""
        WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM sensors)
        UPDATE sensors s SET
            gateway_id = (SELECT id FROM gateways WHERE code = 'GW-BENCH-' || (n.k / 40 + 1)),
            created_at = %(now)s - interval '30 days',
            last_heartbeat_at = CASE WHEN n.k %% 200 = 0 THEN %(now)s - interval '8 hours'
                                     ELSE %(now)s - (n.k %% 300) * interval '1 second' END,
            last_seen_at = %(now)s - (n.k %% 300) * interval '1 second',
            battery_pct = CASE WHEN n.k %% 100 = 1 THEN 12 ELSE 40 + n.k %% 60 END
        FROM numbered n WHERE n.id = s.id
    """, {"now": now})
    cursor.execute("""
        WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS k FROM care_subjects)
        UPDATE care_subjects s SET
            created_at = %(now)s - interval '90 days', active = true,
            last_activity_at = CASE WHEN n.k <= %(alerts)s THEN %(now)s - interval '49 hours'
                                    WHEN n.k %% 300 = 0 THEN %(now)s - interval '24 hours' - (n.k %% 1440) * interval '1 minute'
                                    ELSE %(now)s - (n.k %% 1430) * interval '1 minute' END
        FROM numbered n WHERE n.id = s.id
    """, {"now": now, "alerts": alerts})
    cursor.execute("SELECT count(*) FROM care_subjects")
    return cursor.fetchone()[0]


def _sweeps(now: datetime, people: int):
    from django.db import connection

    from gis.care.rules import care_rules_sweep
    from gis.care.services import care_alert_cases

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM care_subjects WHERE active")
        cursor.fetchone()
    base = time.perf_counter() - started
    started = time.perf_counter()
    first = care_rules_sweep(now=now, open_cases=False)
    took_first = time.perf_counter() - started
    later = now + timedelta(minutes=1)
    started = time.perf_counter()
    steady = care_rules_sweep(now=later, open_cases=False)
    took_steady = time.perf_counter() - started
    raised = len([a for a in first.alerts]) + len(steady.alerts)
    from django.contrib.gis.geos import Point

    from gis.incidents.models import Incident

    started = time.perf_counter()
    for n in range(max(raised, 1)):
        Incident.objects.create(code=f"BENCH-CARE-{n}", category="sanitation", source="staff", reported_at=later,
                                geom=Point(113.66, 34.75, srid=4326))
    base_cases = time.perf_counter() - started
    started = time.perf_counter()
    cases = care_alert_cases(at=later)
    took_cases = time.perf_counter() - started
    return [
        (f"first sweep over {people:,} people ({len(first.faults_opened)} faults, {first.states_changed:,} "
         f"deadlines, {len(first.warnings)} warnings, {len(first.alerts)} alerts)", base, took_first, "one sweep",
         "-"),
        (f"sweep a minute later ({steady.states_changed:,} deadlines changed, {len(steady.warnings)} warnings, "
         f"{len(steady.alerts)} alerts)", base, took_steady, "one sweep", "< 1 s"),
        (f"{len(cases)} alerts into dispatched cases ({took_cases / max(len(cases), 1) * 1000:.0f} ms each)",
         base_cases, took_cases, "all", "-"),
    ]


if __name__ == "__main__":
    sys.exit(main())
