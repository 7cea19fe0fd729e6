"""Delivery windows: the person's own zone, window and working days, across DST changes (alerts.schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from alerts.schedule import ScheduleError, in_window, next_delivery_utc, parse_window, parse_working_days


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_an_alert_found_at_three_in_the_morning_waits_for_the_window():
    # Friday 23 Oct 2026, 03:00 in London (BST, UTC+1) -> 07:30 BST the same day.
    assert next_delivery_utc(utc(2026, 10, 23, 2, 0), "Europe/London") == utc(2026, 10, 23, 6, 30)


def test_inside_the_window_means_now_and_the_window_end_is_exclusive():
    assert next_delivery_utc(utc(2026, 10, 23, 7, 0), "Europe/London") == utc(2026, 10, 23, 7, 0)
    # 08:30 BST is the end of the window: the next one is Monday (the 24th and 25th are a weekend).
    assert next_delivery_utc(utc(2026, 10, 23, 7, 30), "Europe/London") == utc(2026, 10, 26, 7, 30)


def test_a_digest_for_a_day_off_waits_for_the_next_working_day_across_the_autumn_change():
    # Sunday 25 Oct 2026 is the day London leaves BST; Monday 07:30 is then GMT, i.e. 07:30 UTC.
    assert next_delivery_utc(utc(2026, 10, 25, 6, 30), "Europe/London") == utc(2026, 10, 26, 7, 30)


def test_the_spring_change_keeps_the_local_clock_time():
    # London springs forward on Sunday 29 Mar 2026: Friday's window is 07:30 GMT, Monday's 07:30 BST.
    assert next_delivery_utc(utc(2026, 3, 27, 3, 0), "Europe/London") == utc(2026, 3, 27, 7, 30)
    assert next_delivery_utc(utc(2026, 3, 27, 9, 0), "Europe/London") == utc(2026, 3, 30, 6, 30)
    # New York changes three weeks earlier than Europe (8 Mar 2026).
    assert next_delivery_utc(utc(2026, 3, 6, 20, 0), "America/New_York") == utc(2026, 3, 9, 11, 30)


@pytest.mark.parametrize(
    ("tz", "now", "expected"),
    [
        ("Europe/Oslo", utc(2026, 6, 1, 4, 0), utc(2026, 6, 1, 5, 30)),  # CEST, UTC+2
        ("Australia/Sydney", utc(2026, 6, 1, 4, 0), utc(2026, 6, 1, 21, 30)),  # 14:00 Mon -> Tue 07:30 AEST
        ("Asia/Kolkata", utc(2026, 6, 1, 1, 0), utc(2026, 6, 1, 2, 0)),  # UTC+5:30, no DST
        ("America/New_York", utc(2026, 6, 1, 4, 0), utc(2026, 6, 1, 11, 30)),  # EDT
    ],
)
def test_each_person_is_served_in_their_own_zone(tz, now, expected):
    assert next_delivery_utc(now, tz) == expected


def test_custom_window_and_days():
    # Sun-Thu working week, window 09:00-10:00 in Kolkata; Friday 30 Oct 2026 -> Sunday 1 Nov 09:00 IST.
    got = next_delivery_utc(utc(2026, 10, 30, 5, 0), "Asia/Kolkata", "09:00-10:00", working_days="Sun-Thu")
    assert got == utc(2026, 11, 1, 3, 30)
    assert next_delivery_utc(utc(2026, 10, 30, 5, 0), "Asia/Kolkata", time(9), time(10), {7}) == got


def test_in_window():
    assert in_window(utc(2026, 10, 23, 6, 45), "Europe/London")
    assert not in_window(utc(2026, 10, 24, 6, 45), "Europe/London")  # Saturday


def test_parsing_days_and_windows():
    assert parse_working_days("Mon-Fri") == {1, 2, 3, 4, 5}
    assert parse_working_days("Sun-Tue") == {7, 1, 2}
    assert parse_working_days("mon, wed,Fri") == {1, 3, 5}
    assert parse_window("7:30-8:30") == (time(7, 30), time(8, 30))


@pytest.mark.parametrize("bad", ["", "07:30", "08:30-07:30", "02:00-03:00", "21:00-23:30", "07:30-07:40", "25:00-26:00"])
def test_windows_that_reach_into_the_night_or_make_no_sense_are_refused(bad):
    with pytest.raises(ScheduleError):
        parse_window(bad)


@pytest.mark.parametrize("bad", ["", "Funday", "Mon-Tue-Wed", "M"])
def test_unreadable_days_are_refused(bad):
    with pytest.raises(ScheduleError):
        parse_working_days(bad)


def test_naive_clock_and_unknown_zone_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_delivery_utc(datetime(2026, 10, 23, 2, 0), "Europe/London")
    with pytest.raises(ScheduleError, match="IANA"):
        next_delivery_utc(utc(2026, 10, 23, 2, 0), "Mars/Olympus")
