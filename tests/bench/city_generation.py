"""Benchmark: generate and load the ``city`` scale into its own database, ``onemap_bench_city``.

    python tests/bench/city_generation.py [--factor 1.0] [--seed N] [--baseline-rows 20000]

Recreates ``onemap_bench_city`` on the project's database server (the embedded
cluster, or the server of ``ONEMAP_DATABASE_URL``), migrates it, measures a
baseline in the same run (the same incident rows loaded with psycopg's
``executemany`` INSERT and with COPY, into scratch copies of the incidents
table), then loads the city and prints rows, seconds and rows/s per table with
the ratio to the INSERT baseline. No timing is asserted. The database stays
loaded afterwards for the OGC benchmarks; the last lines say how to reuse it.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

BENCH_DB = "onemap_bench_city"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = _recreate_bench_database()
    _migrate(url)
    _setup_django(url)
    if not args.quiet:  # the per-table split: generate + COPY, then indexes + keys + ANALYZE (on stderr)
        logging.getLogger("data.city").setLevel(logging.INFO)
    from data.city import load_city

    baseline = _measure_baseline(seed=args.seed, rows=args.baseline_rows)
    print(f"loading the city (factor {args.factor}, seed {args.seed}) into {BENCH_DB} ...", flush=True)
    summary = load_city(seed=args.seed, progress=not args.quiet, factor=args.factor)
    print()
    print(_report(summary, baseline, factor=args.factor))
    print()
    print(_reuse_hint(url))
    return 0


def _parser() -> argparse.ArgumentParser:
    from data.city import DEFAULT_SEED

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--factor", type=float, default=1.0, help="size of the city (1.0: the full city; 0.01: tiny)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--baseline-rows", type=int, default=20_000, help="incident rows for the INSERT/COPY baseline")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-table phase lines")
    return p


# -- set-up ------------------------------------------------------------------------------------


def _recreate_bench_database() -> str:
    """Drop and create ``onemap_bench_city`` (with PostGIS) on the project's server; return its URL."""
    from host.embedded_db import ensure_running, recreate_database

    server_url = ensure_running(log=lambda msg: print(msg, file=sys.stderr))
    return recreate_database(server_url, BENCH_DB)


def _migrate(url: str) -> None:
    env = dict(os.environ, ONEMAP_DATABASE_URL=url)
    command = [sys.executable, "-m", "host.cli", "migrate"]
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def _setup_django(url: str) -> None:
    os.environ["ONEMAP_DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "host.settings")
    import django

    django.setup()


# -- baseline: the same rows by INSERT and by COPY ---------------------------------------------


@dataclass(frozen=True)
class Baseline:
    rows: int
    insert_seconds: float
    copy_seconds: float

    @property
    def insert_rate(self) -> float:
        return self.rows / self.insert_seconds

    @property
    def copy_rate(self) -> float:
        return self.rows / self.copy_seconds


def _measure_baseline(*, seed: int, rows: int) -> Baseline:
    """Load one sample of incidents twice, into two scratch tables shaped like ``incidents`` (indexes included)."""
    import psycopg
    from django.db import connection, transaction
    from psycopg import sql

    from data.city import incident_sample

    sample = incident_sample(seed=seed, rows=rows)
    columns = sql.SQL(", ").join(map(sql.Identifier, sample.columns))
    params = sample.rows()
    payload = sample.copy_payload()
    with transaction.atomic():
        connection.ensure_connection()
        # a plain psycopg cursor: server-side binding, executemany pipelined (Django's own is a ClientCursor)
        with psycopg.Cursor(connection.connection) as cursor:
            for name in ("bench_insert", "bench_copy"):
                cursor.execute(
                    sql.SQL("CREATE TEMP TABLE {} (LIKE incidents INCLUDING ALL) ON COMMIT DROP").format(
                        sql.Identifier(name)
                    )
                )
            insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier("bench_insert"), columns, sql.SQL(", ").join([sql.Placeholder()] * len(sample.columns))
            )
            started = time.perf_counter()
            cursor.executemany(insert, params)
            insert_seconds = time.perf_counter() - started

            copy = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier("bench_copy"), columns)
            started = time.perf_counter()
            with cursor.copy(copy) as stream:
                stream.write(payload)
            copy_seconds = time.perf_counter() - started
            for name in ("bench_insert", "bench_copy"):
                loaded = cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()[0]
                if loaded != len(params):
                    raise RuntimeError(f"baseline: {name} holds {loaded} rows, expected {len(params)}")
        transaction.set_rollback(True)
    return Baseline(rows=len(params), insert_seconds=insert_seconds, copy_seconds=copy_seconds)


# -- report ------------------------------------------------------------------------------------


def _report(summary, baseline: Baseline, *, factor: float) -> str:
    lines = [
        f"city generation, factor {factor}, seed {summary.seed}: {sum(summary.counts.values()):,} rows "
        f"in {summary.total_seconds:.1f} s (checksum {summary.checksum[:16]}…)",
        "seconds per table: generating the rows + COPY + rebuilding indexes and foreign keys + ANALYZE",
        "",
        f"{'table':<22} {'rows':>11} {'seconds':>9} {'rows/s':>11} {'× INSERT':>9}",
        f"{'-' * 22} {'-' * 11} {'-' * 9} {'-' * 11} {'-' * 9}",
    ]
    for table, rows in summary.counts.items():
        seconds = summary.seconds[table]
        rate = rows / seconds if seconds > 0 else float("nan")
        lines.append(f"{table:<22} {rows:>11,} {seconds:>9.2f} {rate:>11,.0f} {rate / baseline.insert_rate:>8.1f}×")
    total_rows = sum(summary.counts.values())
    total_rate = total_rows / summary.total_seconds
    lines += [
        f"{'-' * 22} {'-' * 11} {'-' * 9} {'-' * 11} {'-' * 9}",
        f"{'total (wall clock)':<22} {total_rows:>11,} {summary.total_seconds:>9.2f} {total_rate:>11,.0f} "
        f"{total_rate / baseline.insert_rate:>8.1f}×",
        "",
        f"baseline, measured in this run: {baseline.rows:,} incident rows into a scratch copy of `incidents` "
        f"(all its indexes):",
        f"  executemany INSERT  {baseline.insert_seconds:7.2f} s  {baseline.insert_rate:>10,.0f} rows/s",
        f"  COPY                {baseline.copy_seconds:7.2f} s  {baseline.copy_rate:>10,.0f} rows/s",
        f"  COPY is {baseline.insert_seconds / baseline.copy_seconds:.1f}× the INSERT baseline",
    ]
    return "\n".join(lines)


def _reuse_hint(url: str) -> str:
    parts = urlsplit(url)
    shown = url
    if parts.password:  # the password stays out of logs and docs
        shown = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()
    return "\n".join([
        f"The database {BENCH_DB} stays loaded ({shown}). Reuse it, e.g. for the OGC benchmarks:",
        f"  export ONEMAP_DATABASE_URL=\"$(.venv/bin/onemap db url | sed 's#/[^/]*$#/{BENCH_DB}#')\"",
        "  .venv/bin/onemap serve",
        "Running this benchmark again recreates it.",
    ])


if __name__ == "__main__":
    sys.exit(main())
