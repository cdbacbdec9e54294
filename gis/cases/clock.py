"""A case's clock: due moments and elapsed minutes in the working time of its category.

Working-hours categories count working minutes of ``gis.calendar`` (its hours, China's
holidays and make-up days, the operator's overrides); around-the-clock ones count plain
minutes. The calendar is built once per process and its overrides re-read every
``OVERRIDES_TTL_S`` seconds, so an operator's change reaches the sweep within a minute.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from gis.calendar.calendar import WorkingCalendar
from gis.calendar.selectors import calendar_for_now
from gis.cases.limits import limit_for

OVERRIDES_TTL_S = 60.0
_lock = threading.Lock()
_cached: tuple[float, WorkingCalendar] | None = None


def working_calendar() -> WorkingCalendar:
    global _cached
    with _lock:
        if _cached is None or time.monotonic() - _cached[0] > OVERRIDES_TTL_S:
            _cached = (time.monotonic(), calendar_for_now())
        return _cached[1]


def forget_calendar() -> None:
    """Read the overrides again on the next use (after an operator changed them)."""
    global _cached
    with _lock:
        _cached = None


def due(start: datetime, minutes: float, category: str) -> datetime:
    return working_calendar().add(start, minutes, around_the_clock=limit_for(category).around_the_clock)


def minutes_between(start: datetime, end: datetime, category: str) -> float:
    return working_calendar().elapsed(start, end, around_the_clock=limit_for(category).around_the_clock)
