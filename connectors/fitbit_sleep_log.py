"""Fitbit's v1.2 sleep log → SleepSession, shared by every reader of it: the account export (`sleep.json`), the
legacy Web API, and any other copy of the same log (a Google Takeout, say).

Times in a log are local with no zone, read in the person's IANA zone (DST-safe, see `local_to_utc`). Reasons
name the source that read the log, so a quarantine row says where the bad log came from.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, cast
from zoneinfo import ZoneInfo

from connectors.base import PersonContext
from connectors.parse_helpers import kind, shown
from connectors.records import (EARLIEST_PLAUSIBLE_DATE, LATEST_PLAUSIBLE_DATE, Record, RecordError, SleepSession,
                                StageSegment, build_record, night_date_of_wake)

# The largest clock change in use (one hour; Lord Howe's is 30 min): how far a wall-clock timeInBed may run
# past the real time in bed on a spring-forward night (see sleep_session).
DST_GAP_MIN = 60

# Fitbit's level for stretches it could not score. Not a stage: such segments are left out (see segments).
UNSCORED_LEVEL = "unknown"

SLEEP_LOG_KEYS = (
    "logId", "dateOfSleep", "startTime", "endTime", "mainSleep", "type",
    "minutesAsleep", "minutesAwake", "timeInBed", "levels",
)


def local_to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock reading in `tz` as a UTC instant.

    fold=0 settles the two DST edge cases: in the repeated autumn hour the first pass (summer time) is taken;
    a reading inside the skipped spring hour (02:30 on 2020-03-29 in Oslo) is read with the offset before the
    jump, i.e. shifted forward by the gap (= 03:30 summer time).
    """
    if local.tzinfo is not None:
        return local.astimezone(timezone.utc)
    return local.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


def invalid(source: str, locator: str, field: str, problem: str) -> RecordError:
    # Same sentence shape as connectors.records.build_record, so quarantine reasons read alike.
    return RecordError(f"{source} at {locator}: field '{field}' is invalid: {problem}")


def required(source: str, item: Any, keys: tuple[str, ...], locator: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RecordError(f"{source} at {locator}: expected an object, found {kind(item)}")
    for key in keys:
        if key not in item:
            raise RecordError(f"{source} at {locator}: field '{key}' is missing")
    return item


def local_datetime(source: str, value: Any, field: str, locator: str) -> datetime:
    # Fitbit writes both "2019-11-02 00:09:30" and "2019-11-02T07:19:30.000"; fromisoformat reads both.
    try:
        if not isinstance(value, str):
            raise ValueError
        reading = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(source, locator, field,
                      f"{shown(value)} is not a date-time like '2020-03-29 00:46:30'") from None
    # Checked here, before any zone arithmetic: a reading in year 1 or 9999 overflows when moved to UTC.
    if not EARLIEST_PLAUSIBLE_DATE <= reading.date() <= LATEST_PLAUSIBLE_DATE:
        raise invalid(source, locator, field, (
            f"{shown(value)} is outside the plausible dates "
            f"{EARLIEST_PLAUSIBLE_DATE} to {LATEST_PLAUSIBLE_DATE}"
        ))
    return reading


def local_day(source: str, value: Any, field: str, locator: str) -> date:
    return local_datetime(source, value, field, locator).date()


def sleep_session(log: Any, person: PersonContext, tz: ZoneInfo, locator: str, *, source: str) -> SleepSession:
    """One log as a session (the export's key names: `mainSleep`; the Web API's `isMainSleep` is renamed by
    its reader)."""
    log = required(source, log, SLEEP_LOG_KEYS, locator)
    # logId is the session's key: str(None) or str([...]) would make a key that collides or means nothing.
    log_id = log["logId"]
    if isinstance(log_id, bool) or not isinstance(log_id, (int, str)) or str(log_id).strip() == "":
        raise invalid(source, locator, "logId", f"{shown(log_id)} is not a log id (a number)")
    start_local = local_datetime(source, log["startTime"], "startTime", locator)
    end_local = local_datetime(source, log["endTime"], "endTime", locator)
    start_utc = local_to_utc(start_local, tz)
    end_utc = local_to_utc(end_local, tz)

    # dateOfSleep is Fitbit's wake date, from the same device clock as endTime, so they agree (all 2,064 logs
    # in PMData). Should they ever differ, the wake date of end_utc wins: it is the one night rule
    # (connectors.records.night_date_of_wake) every source follows, and endTime is the more precise reading.
    local_day(source, log["dateOfSleep"], "dateOfSleep", locator)
    night_date = night_date_of_wake(end_utc, person.tz_name)

    # On the spring-forward night Fitbit computes timeInBed from wall-clock readings, so it holds the skipped
    # hour (PMData p01, 2020-03-29: 474 min for 414 real minutes, padded by a 60-min 'unknown' segment).
    # Time in bed cannot exceed the real time between getting in and out of bed; left alone, sleep
    # efficiency would drop by ~10 points for everyone that night.
    time_in_bed_min = log["timeInBed"]
    real_min = int((end_utc - start_utc).total_seconds() // 60)
    # Only the skipped hour is forgiven: a timeInBed further beyond the real time is a corrupt log, and
    # capping it would turn e.g. 10**30 minutes into a plausible night (the record contract refuses it).
    if type(time_in_bed_min) is int and end_utc > start_utc and time_in_bed_min <= real_min + DST_GAP_MIN:
        time_in_bed_min = min(time_in_bed_min, real_min)

    levels = log["levels"]
    if not isinstance(levels, dict) or not isinstance(levels.get("data", []), list):
        raise invalid(source, locator, "levels", "expected an object with a 'data' list of stage segments")

    return cast(SleepSession, build_record(SleepSession, {
        "person_id": person.person_id,
        "source": source,
        "source_session_id": str(log_id),
        "night_date": night_date,
        "start_utc": start_utc,
        "end_utc": end_utc,
        "tz_name": person.tz_name,
        "is_main_sleep": log["mainSleep"],
        "log_type": log["type"],
        "minutes_asleep": log["minutesAsleep"],
        "minutes_awake": log["minutesAwake"],
        "minutes_to_fall_asleep": log.get("minutesToFallAsleep", 0),
        "time_in_bed_min": time_in_bed_min,
        "segments": segments(source, levels.get("data", []), start_local, start_utc, locator),
    }, source=source, locator=locator))


def segments(source: str, data: list[Any], start_local: datetime, start_utc: datetime,
             locator: str) -> tuple[StageSegment, ...]:
    """Stage segments from `levels.data`.

    `levels.shortData` (wakes under 3 min overlaid on stage logs) is ignored on purpose: Fitbit's own
    minutesAwake and stage summary come from `data` only, so adding the short wakes would count them twice.

    Each segment is placed at the session start plus its elapsed time on the watch's clock
    (start_utc + (segment reading - startTime reading)), not by reading each timestamp in the zone on its own.
    The watch keeps one clock for the whole night: on the spring-forward night in PMData (2020-03-29,
    8 people) segments are stamped inside the hour that does not exist (02:29) and run on contiguously past
    03:00, so a per-timestamp conversion would move everything after 03:00 an hour back onto earlier segments.
    Fitbit pads that night's wall-clock span with a trailing 'unknown' hour: not a stage, so left out.
    """
    found: list[StageSegment] = []
    for index, segment in enumerate(data):
        where = f"{locator} levels.data[{index}]"
        segment = required(source, segment, ("dateTime", "level", "seconds"), where)
        if segment["level"] == UNSCORED_LEVEL:
            continue
        reading = local_datetime(source, segment["dateTime"], "dateTime", where)
        elapsed = reading.replace(tzinfo=None) - start_local.replace(tzinfo=None)
        # build_record is typed for Record but only needs model_validate; it words segment errors alike.
        found.append(cast(StageSegment, build_record(cast(type[Record], StageSegment), {
            "start_utc": start_utc + elapsed,
            "duration_s": segment["seconds"],
            "stage": segment["level"],
        }, source=source, locator=where)))
    return tuple(found)
