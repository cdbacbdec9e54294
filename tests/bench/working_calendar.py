"""Benchmark: the working calendar's ``add`` and ``elapsed`` against plain timedelta arithmetic.

    python tests/bench/working_calendar.py [--cases 100000] [--repeat 5] [--seed 20261126]

An SLA sweep over ``--cases`` open cases (opened at random moments in the 120 days
before "now", 2026-09-15 10:00 Asia/Shanghai, in UTC as the database gives them; time
limits from one hour to five working days; one case in ten around the clock, one in
five suspended once) asks each case its due time (``add``) and its working minutes so far
(``elapsed``). Each operation is timed over all cases, best of ``--repeat``, beside its
baseline in the same run: ``start + timedelta(minutes=m)`` for ``add`` and
``(end - start).total_seconds() / 60`` for ``elapsed``. The goal of the cases issue is the
whole sweep (both calls for every case) in under a second for 100,000 cases. No
database: the calendar is built once, as ``calendar_for_now`` would, with no overrides.

Named ``working_calendar.py``, not ``calendar.py``: run as a script, this folder comes
first on ``sys.path`` and a ``calendar.py`` here would stand in for the standard
library's ``calendar`` (which ``datetime.strptime`` and Django import).
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gis.calendar.calendar import WorkingCalendar  # noqa: E402  (after the path is set)

NOW = datetime(2026, 9, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LIMITS_MINUTES = (60, 240, 450, 1440, 2250)  # one hour to five working days (7.5 h each)
GOAL_SWEEP_S = 1.0


@dataclass(frozen=True)
class Case:
    opened_at: datetime
    limit: float
    around_the_clock: bool
    paused: tuple[tuple[datetime, datetime], ...]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()

    cases = make_cases(args.cases, random.Random(args.seed))
    calendar = WorkingCalendar()
    started = time.perf_counter()
    calendar.elapsed(cases[0].opened_at, NOW, around_the_clock=False)  # builds the running totals for 2026
    first_year_ms = (time.perf_counter() - started) * 1000
    calendar.add(min(c.opened_at for c in cases), 0, around_the_clock=False)  # and for every year the cases reach

    rows = [
        ("add (due time)", best(args.repeat, add_baseline, cases), best(args.repeat, add_calendar, calendar, cases)),
        ("elapsed (minutes so far)", best(args.repeat, elapsed_baseline, cases),
         best(args.repeat, elapsed_calendar, calendar, cases)),
    ]
    sweep = best(args.repeat, sweep_calendar, calendar, cases)
    print_table(rows, sweep, n=len(cases), first_year_ms=first_year_ms)
    return 0


def make_cases(n: int, rng: random.Random) -> list[Case]:
    cases = []
    for _ in range(n):
        opened = (NOW - timedelta(seconds=rng.uniform(0, 120 * 86400))).astimezone(timezone.utc)
        paused = ()
        if rng.random() < 0.2:
            pause_start = opened + (NOW - opened) * rng.random()
            paused = ((pause_start, pause_start + timedelta(hours=rng.uniform(1, 72))),)
        cases.append(Case(opened, float(rng.choice(LIMITS_MINUTES)), rng.random() < 0.1, paused))
    return cases


def best(repeat: int, run, *args) -> float:
    """The fastest of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def add_baseline(cases) -> None:
    for case in cases:
        case.opened_at + timedelta(minutes=case.limit)


def add_calendar(calendar: WorkingCalendar, cases) -> None:
    add = calendar.add
    for case in cases:
        add(case.opened_at, case.limit, around_the_clock=case.around_the_clock)


def elapsed_baseline(cases) -> None:
    for case in cases:
        (NOW - case.opened_at).total_seconds() / 60


def elapsed_calendar(calendar: WorkingCalendar, cases) -> None:
    elapsed = calendar.elapsed
    for case in cases:
        elapsed(case.opened_at, NOW, around_the_clock=case.around_the_clock, paused=case.paused)


def sweep_calendar(calendar: WorkingCalendar, cases) -> None:
    """Each case's due time and its working minutes so far: what an SLA sweep asks of the calendar."""
    add, elapsed = calendar.add, calendar.elapsed
    for case in cases:
        add(case.opened_at, case.limit, around_the_clock=case.around_the_clock)
        elapsed(case.opened_at, NOW, around_the_clock=case.around_the_clock, paused=case.paused)


def print_table(rows, sweep: float, *, n: int, first_year_ms: float) -> None:
    print(f"working calendar, {n:,} cases, Python {platform.python_version()} on {platform.machine()}")
    print(f"{'operation':<26} {'baseline calls/s':>17} {'calendar calls/s':>17} {'µs/call':>8} {'ratio':>6}")
    for name, baseline, measured in rows:
        print(f"{name:<26} {n / baseline:>17,.0f} {n / measured:>17,.0f} {measured / n * 1e6:>8.2f} "
              f"{measured / baseline:>5.1f}x")
    verdict = "meets" if sweep < GOAL_SWEEP_S else "MISSES"
    print(f"sweep (add + elapsed per case): {sweep:.3f} s for {n:,} cases; {verdict} the goal of "
          f"< {GOAL_SWEEP_S:.0f} s for 100,000 ({sweep * 100_000 / n:.3f} s scaled)")
    print(f"a fresh calendar's first call (one year of running totals): {first_year_ms:.1f} ms")


if __name__ == "__main__":
    sys.exit(main())
