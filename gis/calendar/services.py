"""Writes of the working calendar: set or clear the operator's override of a day; keyword-only, one transaction each."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction

from gis.calendar.models import CalendarOverride
from gis.services import ServiceError, check_values


@transaction.atomic
def calendar_override_set(*, day: date, working: bool, reason: str) -> CalendarOverride:
    """Make ``day`` a working day (``working`` true) or a day off, saying why; replaces the day's earlier override."""
    _check_day(day)
    if not isinstance(working, bool):
        raise ServiceError(f"working must be true or false; got {working!r}")
    if not isinstance(reason, str) or not reason.strip():
        raise ServiceError("reason cannot be empty: say why the day changes (a typhoon, a make-up working day)")
    reason = reason.strip()
    check_values(CalendarOverride, {"reason": reason})
    override, _ = CalendarOverride.objects.update_or_create(day=day, defaults={"working": working, "reason": reason})
    return override


@transaction.atomic
def calendar_override_clear(*, day: date) -> bool:
    """Give ``day`` back to the public calendar; whether there was an override to clear."""
    _check_day(day)
    deleted, _ = CalendarOverride.objects.filter(day=day).delete()
    return deleted > 0


def _check_day(day) -> None:
    # a datetime is a date too, but which day it names depends on its zone: refuse it
    if not isinstance(day, date) or isinstance(day, datetime):
        raise ServiceError(f"day must be a date (the local day, without a time); got {day!r}")
