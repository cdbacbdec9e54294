"""Reads of the working calendar: the operator's overrides, and a calendar built with them."""

from __future__ import annotations

from datetime import date

from gis.calendar.calendar import WorkingCalendar
from gis.calendar.models import CalendarOverride


def calendar_overrides(*, start: date, end: date) -> dict[date, bool]:
    """The overrides of the days from ``start`` to ``end``, both included: day -> working."""
    return dict(CalendarOverride.objects.filter(day__range=(start, end)).values_list("day", "working"))


def calendar_for_now(**options) -> WorkingCalendar:
    """A working calendar with every override in the table as it stands now (one query).

    Build one per sweep or request and use it for every case: the arithmetic then never
    touches the database, and an override entered later counts from the next build.
    ``options`` go to ``WorkingCalendar`` (``hours``, ``time_zone``, ``holidays``).
    """
    return WorkingCalendar(overrides=calendar_overrides(start=date.min, end=date.max), **options)
