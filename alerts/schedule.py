"""When an email may go out: inside the person's delivery window, on their working days, in their own zone.

docs/messages.md, "Delivery windows": inside the person's chosen window (default 07:30–08:30 local, working
days), never at night, never on a day off; an alert a nightly run finds at 03:00 waits for the window.

Everything here is pure: the clock comes in as an argument, so tests can freeze it across a DST change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_WINDOW = "07:30-08:30"
DEFAULT_WORKING_DAYS = "Mon-Fri"
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # index + 1 == isoweekday()
# Windows are mornings and daytimes: one that starts before 06:00 or ends after 22:00 would put email "at night".
EARLIEST_START = time(6, 0)
LATEST_END = time(22, 0)
# the widest a window may be, every day: mail an operator sends by hand keeps to it (pipelines/steps.py)
DAYTIME, EVERY_DAY = f"{EARLIEST_START:%H:%M}-{LATEST_END:%H:%M}", "Mon-Sun"
MIN_WINDOW = timedelta(minutes=15)  # a delivery run every 15 min must land inside at least once

_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleError(ValueError):
    pass


def parse_window(text: str) -> tuple[time, time]:
    """"07:30-08:30" -> (07:30, 08:30). The window is [start, end) on the local clock."""
    match = _WINDOW_RE.match(text or "")
    if not match:
        raise ScheduleError(f"A delivery window looks like 07:30-08:30 (local time, start-end); got {text!r}.")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ScheduleError(f"{text!r} is not a time of day; use 24-hour times such as 07:30-08:30.")
    start, end = time(h1, m1), time(h2, m2)
    if start < EARLIEST_START or end > LATEST_END:
        raise ScheduleError(
            f"The window {text!r} reaches into the night; emberwatch delivers between "
            f"{EARLIEST_START:%H:%M} and {LATEST_END:%H:%M} local time."
        )
    span = datetime.combine(date.min, end) - datetime.combine(date.min, start)
    if span < MIN_WINDOW:
        raise ScheduleError(f"The window {text!r} must end at least 15 minutes after it starts.")
    return start, end


def parse_working_days(text: str) -> frozenset[int]:
    """"Mon-Fri", "Sun-Thu", "Mon,Wed,Fri" or "Mon-Wed,Fri" -> ISO weekdays (1 = Monday)."""
    days: set[int] = set()
    for chunk in (text or "").split(","):
        chunk = chunk.strip()
        if not chunk:
            continue
        ends = [part.strip() for part in chunk.split("-")]
        if len(ends) > 2:
            raise ScheduleError(f"Could not read {chunk!r}; write days like Mon-Fri or Mon,Wed,Fri.")
        first, last = (_day_index(ends[0]), _day_index(ends[-1]))
        i = first
        while True:  # a range may wrap the week end (Sun-Thu)
            days.add(i + 1)
            if i == last:
                break
            i = (i + 1) % 7
    if not days:
        raise ScheduleError("At least one working day is needed, e.g. Mon-Fri.")
    return frozenset(days)


def _day_index(name: str) -> int:
    key = name[:3].title()
    if key not in DAY_NAMES or len(name) < 3:
        raise ScheduleError(f"{name!r} is not a day; use Mon, Tue, Wed, Thu, Fri, Sat or Sun.")
    return DAY_NAMES.index(key)


def zone(tz_name: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"{tz_name!r} is not an IANA time zone name (for example Europe/Oslo).") from None


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """`at` on `day` in `tz`, as UTC. A clock time that happens twice in autumn is its first occurrence; one
    skipped in spring maps (by the offset before the change) to just after the gap. Windows start at 06:00 or
    later, after every zone's change, so the second case is only a guard."""
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def next_delivery_utc(
    now_utc: datetime,
    tz_name: str,
    window_start: time | str = DEFAULT_WINDOW,
    window_end: time | None = None,
    working_days: Iterable[int] | str = DEFAULT_WORKING_DAYS,
) -> datetime:
    """The first instant at or after `now_utc` inside the person's window on one of their working days (UTC).

    Returns `now_utc` itself when it already falls inside a window. `window_start` may be the whole window as
    text ("07:30-08:30"), and `working_days` text ("Mon-Fri") or ISO weekdays.
    """
    if now_utc.tzinfo is None:
        raise ValueError("now_utc must be timezone-aware (UTC).")
    if isinstance(window_start, str):
        start, end = parse_window(window_start)
    else:
        if window_end is None:
            raise ValueError("window_end is needed when window_start is a time.")
        start, end = window_start, window_end
    days = parse_working_days(working_days) if isinstance(working_days, str) else frozenset(working_days)
    if not days:
        raise ScheduleError("At least one working day is needed, e.g. Mon-Fri.")
    tz = zone(tz_name)
    now_utc = now_utc.astimezone(timezone.utc)
    today = now_utc.astimezone(tz).date()
    for offset in range(0, 8):
        day = today + timedelta(days=offset)
        if day.isoweekday() not in days:
            continue
        opens, closes = local_instant(day, start, tz), local_instant(day, end, tz)
        if now_utc < opens:
            return opens
        if now_utc < closes:
            return now_utc
    raise AssertionError("unreachable: a working day falls within every 8 days")  # pragma: no cover


def in_window(now_utc: datetime, tz_name: str, window: str = DEFAULT_WINDOW,
              working_days: str = DEFAULT_WORKING_DAYS) -> bool:
    return next_delivery_utc(now_utc, tz_name, window, working_days=working_days) == now_utc.astimezone(timezone.utc)
