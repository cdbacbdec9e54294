"""The working calendar (gis.calendar): due times and elapsed working minutes for case time limits.

The arithmetic is pure and tested without the database; the overrides' table, its
services and ``calendar_for_now`` are tested on the test PostGIS.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gis.calendar.calendar import DEFAULT_HOURS, ChinaHolidays, WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkingCalendar()
WORKING_HOURS = {"around_the_clock": False}
AROUND_THE_CLOCK = {"around_the_clock": True}


def at(text: str) -> datetime:
    """A moment in Asia/Shanghai, written ``2026-03-13 17:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def in_working_hours(moment: datetime, *, closing_allowed: bool) -> bool:
    local = moment.astimezone(SHANGHAI)
    if not CALENDAR.is_working_day(local.date()):
        return False
    clock = local.time()
    return any(opening <= clock < closing or (closing_allowed and clock == closing) for opening, closing in DEFAULT_HOURS)


# -- working days: weekends, National Day 2026 and its 调休 days ------------------------


@pytest.mark.parametrize("day, working", [
    ("2026-03-13", True),    # Friday
    ("2026-03-14", False),   # Saturday
    ("2026-03-15", False),   # Sunday
    ("2026-09-19", False),   # Saturday before the holiday
    ("2026-09-20", True),    # Sunday, 调休: worked for National Day
    ("2026-09-30", True),
    ("2026-10-01", False),   # National Day, Thursday
    ("2026-10-05", False),   # Monday within the holiday
    ("2026-10-07", False),
    ("2026-10-08", True),
    ("2026-10-10", True),    # Saturday, 调休
    ("2026-10-11", False),   # Sunday
    ("2026-09-25", False),   # Friday, Mid-Autumn Festival (中秋)
])
def test_working_days_follow_the_public_calendar(day, working):
    assert CALENDAR.is_working_day(date.fromisoformat(day)) is working


@pytest.mark.parametrize("start, minutes, due", [
    ("2026-03-13 17:00", 120, "2026-03-16 09:30"),   # Friday's last hour, Monday's first
    ("2026-03-14 10:00", 30, "2026-03-16 09:00"),    # reported on Saturday: counts from Monday's opening
    ("2026-03-13 10:00", 450, "2026-03-16 10:00"),   # one working day (7.5 h) over the weekend
])
def test_due_time_skips_the_weekend(start, minutes, due):
    assert CALENDAR.add(at(start), minutes, **WORKING_HOURS) == at(due)
    assert CALENDAR.elapsed(at(start), at(due), **WORKING_HOURS) == pytest.approx(minutes)


@pytest.mark.parametrize("start, minutes, due", [
    ("2026-09-30 17:00", 120, "2026-10-08 09:30"),   # eve of National Day: 1-7 October off
    ("2026-10-09 17:00", 120, "2026-10-10 09:30"),   # Friday into the make-up Saturday
    ("2026-10-10 17:00", 120, "2026-10-12 09:30"),   # the make-up Saturday into Monday, Sunday off
    ("2026-09-19 10:00", 60, "2026-09-20 09:30"),    # Saturday into the make-up Sunday
    ("2026-10-03 03:00", 60, "2026-10-08 09:30"),    # in the middle of the holiday
])
def test_due_time_across_national_day_2026(start, minutes, due):
    assert CALENDAR.add(at(start), minutes, **WORKING_HOURS) == at(due)


def test_national_day_week_has_no_working_time():
    # 30 September is worked, 1-7 October are not, 8 October is: one working day between
    assert CALENDAR.elapsed(at("2026-09-30 08:30"), at("2026-10-08 08:30"), **WORKING_HOURS) == 450
    # the week from the make-up Sunday: 20 (Sun) and 21-24 (Mon-Thu); 25 is Mid-Autumn (中秋), 26 a Saturday
    assert CALENDAR.elapsed(at("2026-09-20 00:00"), at("2026-09-27 00:00"), **WORKING_HOURS) == 5 * 450


# -- the hours: opening, lunch, closing --------------------------------------------------


def test_start_at_three_in_the_morning_counts_from_opening():
    due = CALENDAR.add(at("2026-03-16 03:00"), 30, **WORKING_HOURS)
    assert due == at("2026-03-16 09:00")
    assert CALENDAR.elapsed(at("2026-03-16 03:00"), at("2026-03-16 08:30"), **WORKING_HOURS) == 0


@pytest.mark.parametrize("start, minutes, due", [
    ("2026-03-16 11:30", 60, "2026-03-16 14:30"),    # half an hour before lunch, half an hour after
    ("2026-03-16 12:30", 10, "2026-03-16 14:10"),    # reported during lunch: counts from 14:00
    ("2026-03-16 11:00", 60, "2026-03-16 12:00"),    # runs out at the lunch closing: due then, not at 14:00
    ("2026-03-16 17:00", 60, "2026-03-16 18:00"),    # runs out at closing time
    ("2026-03-16 18:00", 1, "2026-03-17 08:31"),     # at closing: the next morning
])
def test_lunch_break_and_closing(start, minutes, due):
    assert CALENDAR.add(at(start), minutes, **WORKING_HOURS) == at(due)


def test_lunch_break_is_not_working_time():
    assert CALENDAR.elapsed(at("2026-03-16 11:30"), at("2026-03-16 14:30"), **WORKING_HOURS) == 60
    assert CALENDAR.elapsed(at("2026-03-16 00:00"), at("2026-03-17 00:00"), **WORKING_HOURS) == 450


@pytest.mark.parametrize("moment, expected", [
    ("2026-03-16 10:00", "2026-03-16 10:00"),   # in working hours: itself
    ("2026-03-16 08:30", "2026-03-16 08:30"),   # an opening is working time
    ("2026-03-16 03:00", "2026-03-16 08:30"),
    ("2026-03-16 12:00", "2026-03-16 14:00"),   # a closing is not
    ("2026-03-13 18:00", "2026-03-16 08:30"),   # Friday evening: Monday morning
    ("2026-09-30 18:30", "2026-10-08 08:30"),   # before National Day
    ("2026-10-09 19:00", "2026-10-10 08:30"),   # before the make-up Saturday
])
def test_next_working_moment(moment, expected):
    assert CALENDAR.next_working_moment(at(moment)) == at(expected)


def test_no_minutes_is_the_next_working_moment():
    assert CALENDAR.add(at("2026-03-14 03:00"), 0, **WORKING_HOURS) == at("2026-03-16 08:30")
    assert CALENDAR.add(at("2026-03-16 10:00"), 0, **WORKING_HOURS) == at("2026-03-16 10:00")


def test_hours_are_a_parameter():
    nine_to_five = WorkingCalendar(hours=[(time(9), time(17))])
    assert nine_to_five.minutes_per_day == 480
    assert nine_to_five.add(at("2026-03-13 16:00"), 120, **WORKING_HOURS) == at("2026-03-16 10:00")
    assert nine_to_five.elapsed(at("2026-03-16 08:00"), at("2026-03-16 13:00"), **WORKING_HOURS) == 240


@pytest.mark.parametrize("hours, message", [
    ([], "at least one"),
    ([(time(12), time(8, 30))], "close after it opens"),
    ([(time(8, 30), time(12)), (time(11), time(18))], "in order and not overlap"),
    ([(time(8, 30, tzinfo=timezone.utc), time(12))], "without a zone"),
])
def test_bad_hours_are_refused(hours, message):
    with pytest.raises(ValueError, match=message):
        WorkingCalendar(hours=hours)


# -- around the clock ---------------------------------------------------------------------


@pytest.mark.parametrize("start, minutes, due", [
    ("2026-10-03 03:00", 60, "2026-10-03 04:00"),      # an elder's inactivity alert on a holiday night
    ("2026-09-30 17:00", 48 * 60, "2026-10-02 17:00"),  # 48 hours are two days, holiday or not
    ("2026-03-14 23:30", 45, "2026-03-15 00:15"),      # Saturday midnight
])
def test_around_the_clock_ignores_hours_weekends_and_holidays(start, minutes, due):
    assert CALENDAR.add(at(start), minutes, **AROUND_THE_CLOCK) == at(due)
    assert CALENDAR.elapsed(at(start), at(due), **AROUND_THE_CLOCK) == minutes


# -- time zones -----------------------------------------------------------------------------


def test_any_zone_in_asia_shanghai_out():
    utc_start = datetime(2026, 3, 13, 9, 0, tzinfo=timezone.utc)   # 17:00 in Shanghai, a Friday
    due = CALENDAR.add(utc_start, 120, **WORKING_HOURS)
    assert due == at("2026-03-16 09:30")
    assert due.tzinfo == SHANGHAI
    assert CALENDAR.add(utc_start, 60, **AROUND_THE_CLOCK).tzinfo == SHANGHAI
    new_york = utc_start.astimezone(ZoneInfo("America/New_York"))
    assert CALENDAR.add(new_york, 120, **WORKING_HOURS) == due


@pytest.mark.parametrize("call", [
    lambda: CALENDAR.add(datetime(2026, 3, 16, 10), 60, **WORKING_HOURS),
    lambda: CALENDAR.add(datetime(2026, 3, 16, 10), 60, **AROUND_THE_CLOCK),
    lambda: CALENDAR.elapsed(at("2026-03-16 10:00"), datetime(2026, 3, 17), **WORKING_HOURS),
    lambda: CALENDAR.next_working_moment(datetime(2026, 3, 16, 10)),
    lambda: CALENDAR.add(at("2026-03-16 10:00"), -1, **WORKING_HOURS),
    lambda: CALENDAR.add(at("2026-03-16 10:00"), float("nan"), **WORKING_HOURS),
])
def test_naive_moments_and_bad_minutes_are_refused(call):
    with pytest.raises(ValueError):
        call()


# -- overrides ----------------------------------------------------------------------------


def test_a_monday_made_a_day_off_moves_the_due_time():
    typhoon = WorkingCalendar(overrides={date(2026, 3, 16): False})
    assert not typhoon.is_working_day(date(2026, 3, 16))
    assert typhoon.add(at("2026-03-13 17:00"), 120, **WORKING_HOURS) == at("2026-03-17 09:30")
    assert typhoon.elapsed(at("2026-03-16 00:00"), at("2026-03-17 00:00"), **WORKING_HOURS) == 0


def test_a_saturday_made_working_moves_the_due_time():
    working_weekend = WorkingCalendar(overrides={date(2026, 3, 14): True})
    assert working_weekend.is_working_day(date(2026, 3, 14))
    assert working_weekend.add(at("2026-03-13 17:00"), 120, **WORKING_HOURS) == at("2026-03-14 09:30")
    assert working_weekend.elapsed(at("2026-03-14 00:00"), at("2026-03-15 00:00"), **WORKING_HOURS) == 450


def test_an_override_beats_a_public_holiday():
    on_duty = WorkingCalendar(overrides={date(2026, 10, 1): True})
    assert on_duty.add(at("2026-09-30 17:00"), 120, **WORKING_HOURS) == at("2026-10-01 09:30")


# -- pauses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("paused, minutes", [
    ([], 900),                                                               # Monday and Tuesday
    ([("2026-03-16 10:00", "2026-03-17 10:00")], 450),                       # 360 on Monday, 90 on Tuesday
    ([("2026-03-16 10:00", "2026-03-16 11:00"), ("2026-03-16 10:30", "2026-03-16 11:30")], 810),  # overlap once
    ([("2026-03-16 12:00", "2026-03-16 14:00")], 900),                       # paused over lunch: nothing lost
    ([("2026-03-15 00:00", "2026-03-16 09:30")], 840),                       # begins before the start
    ([("2026-03-17 17:00", None)], 840),                                     # still suspended at the end
    ([("2026-03-18 08:30", "2026-03-18 18:00")], 900),                       # after the end
])
def test_elapsed_stops_while_paused(paused, minutes):
    pauses = [(at(a), at(b) if b else None) for a, b in paused]
    assert CALENDAR.elapsed(at("2026-03-16 08:30"), at("2026-03-17 18:00"), **WORKING_HOURS,
                            paused=pauses) == pytest.approx(minutes)


def test_elapsed_around_the_clock_with_a_pause():
    pause = [(at("2026-10-01 10:00"), at("2026-10-01 12:00"))]
    assert CALENDAR.elapsed(at("2026-10-01 00:00"), at("2026-10-02 00:00"), **AROUND_THE_CLOCK, paused=pause) == 1320


def test_elapsed_backwards_is_zero_and_a_backwards_pause_is_refused():
    assert CALENDAR.elapsed(at("2026-03-17 10:00"), at("2026-03-16 10:00"), **WORKING_HOURS) == 0
    with pytest.raises(ValueError, match="before it starts"):
        CALENDAR.elapsed(at("2026-03-16 08:30"), at("2026-03-17 18:00"), **WORKING_HOURS,
                         paused=[(at("2026-03-16 11:00"), at("2026-03-16 10:00"))])


# -- properties: add and elapsed are inverse; no due time outside working hours ---------------

ZONES = st.sampled_from([SHANGHAI, timezone.utc, ZoneInfo("America/New_York")])
STARTS = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 6, 30), timezones=ZONES)
MINUTES = st.one_of(st.integers(0, 30 * 450), st.floats(0, 30 * 450, allow_nan=False))


@settings(max_examples=500, deadline=None)
@given(start=STARTS, minutes=MINUTES, around_the_clock=st.booleans())
def test_elapsed_undoes_add(start, minutes, around_the_clock):
    due = CALENDAR.add(start, minutes, around_the_clock=around_the_clock)
    assert due >= start
    assert CALENDAR.elapsed(start, due, around_the_clock=around_the_clock) == pytest.approx(minutes, abs=1 / 60)


@settings(max_examples=500, deadline=None)
@given(start=STARTS, minutes=MINUTES.filter(lambda m: m > 0))
def test_no_due_time_outside_working_hours(start, minutes):
    due = CALENDAR.add(start, minutes, **WORKING_HOURS)
    assert in_working_hours(due, closing_allowed=True), f"due at {due:%A %Y-%m-%d %H:%M:%S}"


@settings(max_examples=200, deadline=None)
@given(start=STARTS, end=STARTS)
def test_elapsed_working_time_never_exceeds_wall_clock_time(start, end):
    working = CALENDAR.elapsed(start, end, **WORKING_HOURS)
    wall = CALENDAR.elapsed(start, end, **AROUND_THE_CLOCK)
    assert 0 <= working <= wall + 1e-6


def test_a_calendar_grows_both_ways_and_keeps_its_answers():
    calendar = WorkingCalendar()
    later = calendar.elapsed(at("2026-03-16 08:30"), at("2026-03-17 08:30"), **WORKING_HOURS)
    # the first call made the table for 2026; these reach back to 2024 and on into 2026 again
    assert calendar.elapsed(at("2024-12-31 08:30"), at("2026-03-17 08:30"), **WORKING_HOURS) > 250 * 450
    assert calendar.add(at("2024-03-15 17:00"), 120, **WORKING_HOURS) == at("2024-03-18 09:30")
    assert calendar.elapsed(at("2026-03-16 08:30"), at("2026-03-17 08:30"), **WORKING_HOURS) == later == 450


# -- a year chinese_calendar does not know ------------------------------------------------------


def test_unknown_year_falls_back_to_weekends_with_one_warning_per_year(caplog):
    calendar = WorkingCalendar(holidays=ChinaHolidays())   # a source of its own: its warnings are fresh
    with caplog.at_level(logging.WARNING, logger="gis.calendar.calendar"):
        assert calendar.is_working_day(date(2099, 1, 5))        # Monday
        assert not calendar.is_working_day(date(2099, 1, 3))    # Saturday
        assert calendar.add(at("2099-01-02 17:00"), 120, **WORKING_HOURS) == at("2099-01-05 09:30")
        assert calendar.elapsed(at("2099-01-05 08:30"), at("2099-01-06 08:30"), **WORKING_HOURS) == 450
        warned = [r.getMessage() for r in caplog.records if r.name == "gis.calendar.calendar"]
        assert len(warned) == 1 and "2099" in warned[0]
        calendar.add(at("2098-12-31 17:00"), 120, **WORKING_HOURS)   # reaches into 2098: one more
        warned = [r.getMessage() for r in caplog.records if r.name == "gis.calendar.calendar"]
        assert len(warned) == 2 and "2098" in warned[1]


# -- the overrides' table (database) ------------------------------------------------------------


def test_overrides_set_and_clear(rollback):
    from gis.calendar.models import CalendarOverride
    from gis.calendar.selectors import calendar_for_now, calendar_overrides
    from gis.calendar.services import calendar_override_clear, calendar_override_set

    calendar_override_set(day=date(2026, 3, 16), working=True, reason="placeholder")
    calendar_override_set(day=date(2026, 3, 16), working=False, reason=" 台风停工 ")   # replaces it
    calendar_override_set(day=date(2026, 3, 21), working=True, reason="补班")
    assert CalendarOverride.objects.get(day=date(2026, 3, 16)).reason == "台风停工"
    assert calendar_overrides(start=date(2026, 3, 16), end=date(2026, 3, 20)) == {date(2026, 3, 16): False}
    assert calendar_overrides(start=date(2026, 3, 1), end=date(2026, 3, 31)) == {
        date(2026, 3, 16): False, date(2026, 3, 21): True}

    calendar = calendar_for_now()
    assert calendar.add(at("2026-03-13 17:00"), 120, **WORKING_HOURS) == at("2026-03-17 09:30")
    assert calendar.is_working_day(date(2026, 3, 21))

    assert calendar_override_clear(day=date(2026, 3, 16)) is True
    assert calendar_override_clear(day=date(2026, 3, 16)) is False
    assert calendar_for_now().add(at("2026-03-13 17:00"), 120, **WORKING_HOURS) == at("2026-03-16 09:30")


@pytest.mark.parametrize("values, message", [
    ({"day": datetime(2026, 3, 16, tzinfo=SHANGHAI)}, "day must be a date"),
    ({"day": "2026-03-16"}, "day must be a date"),
    ({"working": "yes"}, "working must be true or false"),
    ({"reason": "  "}, "reason cannot be empty"),
    ({"reason": "typhoon\x00"}, "NUL"),
])
def test_bad_overrides_are_refused(rollback, values, message):
    from gis.calendar.models import CalendarOverride
    from gis.calendar.services import calendar_override_set
    from gis.services import ServiceError

    arguments = {"day": date(2026, 3, 16), "working": False, "reason": "typhoon"} | values
    with pytest.raises(ServiceError, match=message):
        calendar_override_set(**arguments)
    assert not CalendarOverride.objects.exists()


def test_clearing_needs_a_date(rollback):
    from gis.calendar.services import calendar_override_clear
    from gis.services import ServiceError

    with pytest.raises(ServiceError, match="day must be a date"):
        calendar_override_clear(day=datetime(2026, 3, 16, tzinfo=SHANGHAI))
