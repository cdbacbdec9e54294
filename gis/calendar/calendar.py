"""The working calendar: the due time after so many working minutes, and the working minutes between two moments.

Working time is the working hours (``DEFAULT_HOURS``, in ``TIME_ZONE``) on working days. A
working day is what China's State Council calendar says (weekends and public holidays off,
the 调休 make-up days on), as the package ``chinese_calendar`` knows it, unless an
operator's override (the table ``calendar_overrides``) says otherwise. Around-the-clock
categories count plain wall-clock minutes. No database here:
``gis.calendar.selectors.calendar_for_now`` builds a calendar with the table's overrides.

The arithmetic never walks minutes or days: each calendar keeps the running total of
working minutes at the start of every day of the years it has met (one list per
calendar, grown a year at a time), so ``add`` is a binary search and ``elapsed`` a
subtraction.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from types import MappingProxyType
from typing import Protocol
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

TIME_ZONE = "Asia/Shanghai"
# a street office's (街道办事处) hours: the morning, a two-hour lunch break, the afternoon; 7.5 h a day
DEFAULT_HOURS: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(14, 0), time(18, 0)))


class HolidaySource(Protocol):
    """Whether a day is a working day before any override; ``ChinaHolidays`` is the one in use."""

    def is_workday(self, day: date) -> bool: ...


class ChinaHolidays:
    """China's working days from ``chinese_calendar``; for a year it does not know, Monday to Friday.

    ``chinese_calendar`` learns each year's holidays when the State Council announces them
    (late in the year before) and raises NotImplementedError for any other year. A case's
    clock must keep running then, so such a year has only weekends off, and a warning is
    logged once per year (per instance: the module's ``CHINA_HOLIDAYS`` is shared by every
    calendar, so once per process). Upgrading ``chinese_calendar`` ends the fallback.
    """

    def __init__(self) -> None:
        self._warned: set[int] = set()
        self._lock = threading.Lock()

    def is_workday(self, day: date) -> bool:
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            self._warn_once(day.year)
            return day.weekday() < 5

    def _warn_once(self, year: int) -> None:
        with self._lock:
            if year in self._warned:
                return
            self._warned.add(year)
        log.warning("chinese_calendar %s has no holidays for %d: counting Monday to Friday as working days "
                    "(upgrade chinese_calendar, or enter the year's holidays as calendar overrides)",
                    getattr(chinese_calendar, "__version__", "?"), year)


CHINA_HOLIDAYS = ChinaHolidays()


class WorkingCalendar:
    """Working time: ``hours`` (local times, in ``time_zone``) on working days; immutable once built.

    A day is a working day if ``overrides`` says so (day -> working), else if ``holidays``
    does. ``hours`` are (opening, closing) pairs in order, not overlapping. Moments in are
    aware datetimes in any zone; moments out are in ``time_zone``. The hours are wall-clock
    times: in a zone with summer time they must not span its change (Asia/Shanghai has none).
    """

    def __init__(
        self,
        *,
        hours: Iterable[tuple[time, time]] = DEFAULT_HOURS,
        time_zone: str | tzinfo = TIME_ZONE,
        overrides: Mapping[date, bool] | None = None,
        holidays: HolidaySource = CHINA_HOLIDAYS,
    ) -> None:
        self.hours = _checked_hours(hours)
        self.time_zone = ZoneInfo(time_zone) if isinstance(time_zone, str) else time_zone
        self.overrides = MappingProxyType(dict(overrides or {}))
        self._holidays = holidays
        self._periods = tuple((_minute_of(opening), _minute_of(closing)) for opening, closing in self.hours)
        self.minutes_per_day = sum(closing - opening for opening, closing in self._periods)
        # (ordinal of the first day, running working minutes at the start of each day and after the last)
        self._table: tuple[int, list[float]] | None = None
        self._midnights: dict[int, datetime] = {}  # day ordinal -> its local midnight, for building results
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        hours = ", ".join(f"{o:%H:%M}-{c:%H:%M}" for o, c in self.hours)
        return f"WorkingCalendar(hours={hours}, time_zone={self.time_zone}, overrides={len(self.overrides)})"

    # -- the public arithmetic ---------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` has working hours: the override if there is one, else the public calendar."""
        if isinstance(day, datetime):
            day = self._local(day).date()
        working = self.overrides.get(day)
        return self._holidays.is_workday(day) if working is None else working

    def add(self, start: datetime, minutes: float, *, around_the_clock: bool) -> datetime:
        """The due time: the first moment by which ``minutes`` of working time have passed since ``start``.

        A start outside working hours counts from the next opening. For a working-hours
        category the result is inside working hours, or exactly at a closing time when the
        minutes run out there; ``minutes`` = 0 gives ``next_working_moment(start)``.
        """
        minutes = _checked_minutes(minutes)
        if around_the_clock:
            _check_aware(start)
            return (start.astimezone(timezone.utc) + timedelta(minutes=minutes)).astimezone(self.time_zone)
        position = self._position(start)
        if position + minutes <= position:  # no minutes, or too few to move a float: no later than the opening
            return self.next_working_moment(start)
        return self._moment_at(position + minutes)

    def elapsed(
        self,
        start: datetime,
        end: datetime,
        *,
        around_the_clock: bool,
        paused: Iterable[tuple[datetime, datetime | None]] = (),
    ) -> float:
        """Working minutes from ``start`` to ``end``, less the ``paused`` intervals (the clock stops while suspended).

        A pause (a, None) lasts until ``end``; pauses may overlap and reach outside
        ``start``..``end`` (only what lies inside counts once). ``end`` before ``start`` gives 0.
        """
        position = _wall_minutes if around_the_clock else self._position
        total = position(end) - position(start)
        if total <= 0:
            return 0.0
        if paused:
            for pause_start, pause_end in _merged_pauses(paused, start, end):
                total -= position(pause_end) - position(pause_start)
        return max(total, 0.0)

    def next_working_moment(self, moment: datetime) -> datetime:
        """``moment`` itself if it lies in working hours (a closing time does not), else the next opening."""
        local = self._local(moment)
        ordinal, minute = local.toordinal(), _minute_of(local)
        base, running = self._table_for(ordinal)
        index = ordinal - base
        if running[index + 1] > running[index]:
            for opening, closing in self._periods:
                if minute < closing:
                    return local if minute >= opening else self._moment(ordinal, opening)
        base, day = self._first_day_after(running[index + 1])
        return self._moment(base + day, self._periods[0][0])

    # -- positions on the running total of working minutes ------------------------------

    def _position(self, moment: datetime) -> float:
        """``moment`` on the running total: working minutes since the first day the table was made for."""
        local = self._local(moment)
        ordinal, minute = local.toordinal(), _minute_of(local)
        base, running = self._table_for(ordinal)
        index = ordinal - base
        position = running[index]
        if running[index + 1] > position:  # a working day
            for opening, closing in self._periods:
                if minute <= opening:
                    break
                position += (minute if minute < closing else closing) - opening  # not min(): the hot path
        return position

    def _moment_at(self, position: float) -> datetime:
        """The first moment at which the running total reaches ``position`` (beyond the table's start)."""
        base, running = self._table
        while running[-1] < position:
            base, running = self._grow(toward=base + len(running) - 1)
        day = bisect.bisect_left(running, position) - 1
        left = position - running[day]
        for opening, closing in self._periods:
            if left <= closing - opening:
                return self._moment(base + day, min(opening + left, closing))
            left -= closing - opening
        return self._moment(base + day, self._periods[-1][1])  # rounding left a hair over: the closing

    def _first_day_after(self, position: float) -> tuple[int, int]:
        """(table start, index) of the first working day whose running total starts at ``position`` or later."""
        base, running = self._table
        while running[-1] <= position:
            base, running = self._grow(toward=base + len(running) - 1)
        return base, bisect.bisect_right(running, position) - 1

    def _moment(self, ordinal: int, minute: float) -> datetime:
        midnight = self._midnights.get(ordinal)
        if midnight is None:
            midnight = self._midnights[ordinal] = datetime.fromordinal(ordinal).replace(tzinfo=self.time_zone)
        return midnight + timedelta(minutes=minute)  # wall-clock arithmetic in the calendar's zone

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            _check_aware(moment)
        return moment.astimezone(self.time_zone)

    # -- the table: running working minutes per day, a whole year at a time --------------

    def _table_for(self, ordinal: int) -> tuple[int, list[float]]:
        """The table, grown until it holds the day ``ordinal``."""
        table = self._table
        while table is None or not 0 <= ordinal - table[0] < len(table[1]) - 1:
            table = self._grow(toward=ordinal)
        return table

    def _grow(self, *, toward: int) -> tuple[int, list[float]]:
        """The table with one more year on the side of the day ``toward`` (or first made with its year).

        Growing never changes a value already there (a year before the start gets running
        totals below the old start's), so positions taken before stay comparable.
        """
        with self._lock:
            if self._table is None:
                year = date.fromordinal(toward).year
                start = date(year, 1, 1).toordinal()
                self._table = (start, self._running(start, date(year + 1, 1, 1).toordinal(), 0.0))
                return self._table
            base, running = self._table
            end = base + len(running) - 1
            if toward < base:
                start = date(date.fromordinal(base - 1).year, 1, 1).toordinal()
                before = self._running(start, base, 0.0)
                shift = running[0] - before[-1]
                self._table = (start, [value + shift for value in before[:-1]] + running)
            elif toward >= end:
                year = date.fromordinal(end).year
                if year >= date.max.year:
                    raise OverflowError("the working calendar ends with the year 9999")
                self._table = (base, running + self._running(end, date(year + 1, 1, 1).toordinal(), running[-1])[1:])
            return self._table

    def _running(self, start: int, end: int, total: float) -> list[float]:
        """Running working minutes at the start of each day from ``start`` to ``end`` (both ordinals), then at ``end``."""
        running = [total]
        for ordinal in range(start, end):
            total += self.minutes_per_day if self.is_working_day(date.fromordinal(ordinal)) else 0.0
            running.append(total)
        return running


# -- helpers ---------------------------------------------------------------------------


def _wall_minutes(moment: datetime) -> float:
    _check_aware(moment)
    return moment.timestamp() / 60.0


def _minute_of(moment: datetime | time) -> float:
    return moment.hour * 60 + moment.minute + (moment.second + moment.microsecond / 1e6) / 60


def _check_aware(moment: datetime) -> None:
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"an aware datetime (with its time zone) is needed; got {moment!r}")


def _checked_minutes(minutes: float) -> float:
    minutes = float(minutes)
    if not math.isfinite(minutes) or minutes < 0:
        raise ValueError(f"minutes must be a finite number, 0 or more; got {minutes!r}")
    return minutes


def _checked_hours(hours: Iterable[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    """The working periods as given, if each closes after it opens and after the one before closed."""
    hours = tuple((opening, closing) for opening, closing in hours)
    if not hours:
        raise ValueError("working hours need at least one (opening, closing) period")
    previous = None
    for opening, closing in hours:
        if opening.tzinfo is not None or closing.tzinfo is not None:
            raise ValueError("working hours are local times without a zone (the calendar has the zone)")
        if not opening < closing:
            raise ValueError(f"a working period must close after it opens; got {opening}-{closing}")
        if previous is not None and opening < previous:
            raise ValueError(f"working periods must be in order and not overlap; {opening} opens before {previous}")
        previous = closing
    return hours


def _merged_pauses(paused, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The pauses clipped to ``start``..``end``, sorted, overlapping ones merged."""
    clipped = []
    for pause_start, pause_end in paused:
        _check_aware(pause_start)
        if pause_end is None:
            pause_end = end
        _check_aware(pause_end)
        if pause_end < pause_start:
            raise ValueError(f"a pause ends ({pause_end}) before it starts ({pause_start})")
        pause_start, pause_end = max(pause_start, start), min(pause_end, end)
        if pause_start < pause_end:
            clipped.append((pause_start, pause_end))
    merged: list[tuple[datetime, datetime]] = []
    for pause_start, pause_end in sorted(clipped):
        if merged and pause_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], pause_end))
        else:
            merged.append((pause_start, pause_end))
    return merged
