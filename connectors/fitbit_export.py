"""Fitbit account export (the `fitbit/` folder of a "download your data" archive, as in PMData) → records.

The export differs from the Web API: `mainSleep` not `isMainSleep`, daily values as strings,
`"YYYY-MM-DD 00:00:00"` dates, and local times with no zone, which are read in the person's zone
(`PersonContext.tz_name`). An export is one zone's view: a night slept abroad is read as if at home,
because the export does not say where the watch was.

Payloads, one per data concept, so that each one parses on its own into complete records:
- `sleep`: `sleep.json` byte for byte → `SleepSession` (one per log, naps included).
- `resting_heart_rate`: `resting_heart_rate.json` byte for byte → `DailyRestingHeartRate`.
- `activity_minutes`: the four `*_minutes.json` files bundled as
  `{"<file stem>": "<the file's exact text>", ...}` → one complete `DailyActivity` per day. Each file's text
  is kept verbatim (so nothing is lost) and parsed separately (so one damaged file costs only its own field).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator, cast
from zoneinfo import ZoneInfo

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected
from connectors.records import (
    EARLIEST_PLAUSIBLE_DATE,
    LATEST_PLAUSIBLE_DATE,
    DailyActivity,
    DailyRestingHeartRate,
    Record,
    RecordError,
    SleepSession,
    StageSegment,
    build_record,
    is_iana_zone,
    night_date_of_wake,
    storable_text,
)

SOURCE_NAME = "fitbit-export"

SLEEP = "sleep"
RESTING_HR = "resting_heart_rate"
ACTIVITY_MINUTES = "activity_minutes"

# Activity file stem → DailyActivity field. The export copy has no daily steps file, so `steps` stays None.
ACTIVITY_FILES: dict[str, str] = {
    "sedentary_minutes": "sedentary_min",
    "lightly_active_minutes": "lightly_active_min",
    "moderately_active_minutes": "moderately_active_min",
    "very_active_minutes": "very_active_min",
}

MINUTES_PER_DAY = 1440

# The largest clock change in use (one hour; Lord Howe's is 30 min): how far a wall-clock timeInBed may run
# past the real time in bed on a spring-forward night (see _sleep_session).
DST_GAP_MIN = 60

# Fitbit's level for stretches it could not score. Not a stage: such segments are left out (see _segments).
UNSCORED_LEVEL = "unknown"

_SLEEP_LOG_KEYS = (
    "logId", "dateOfSleep", "startTime", "endTime", "mainSleep", "type",
    "minutesAsleep", "minutesAwake", "timeInBed", "levels",
)


class FitbitExportSource:
    """Reads one person's Fitbit account export folder (`pNN/fitbit/` or its parent `pNN/`)."""

    name = SOURCE_NAME

    def __init__(self, export_folder: Path) -> None:
        folder = Path(export_folder)
        if (folder / "fitbit").is_dir():
            folder = folder / "fitbit"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"Fitbit export folder {folder} does not exist; point to the export's fitbit/ folder."
            )
        known = [f"{SLEEP}.json", f"{RESTING_HR}.json", *(f"{stem}.json" for stem in ACTIVITY_FILES)]
        if not any((folder / file_name).is_file() for file_name in known):
            raise FileNotFoundError(
                f"No Fitbit export files ({', '.join(known)}) in {folder}; "
                "point to the export's fitbit/ folder."
            )
        self.folder = folder

    def payloads(self, person: PersonContext) -> Iterator[RawPayload]:
        """One payload per data concept present in the folder (see the module docstring). Never parses."""
        fetched_at = datetime.now(timezone.utc)

        def payload(resource: str, body: bytes) -> RawPayload:
            # No window: an export is not a request for dates; it holds whatever the person downloaded.
            return RawPayload(person.person_id, SOURCE_NAME, resource, body, fetched_at)

        for resource in (SLEEP, RESTING_HR):
            path = self.folder / f"{resource}.json"
            if path.is_file():
                yield payload(resource, path.read_bytes())
        texts = {
            stem: (self.folder / f"{stem}.json").read_bytes().decode("utf-8", errors="surrogateescape")
            for stem in ACTIVITY_FILES
            if (self.folder / f"{stem}.json").is_file()
        }
        if texts:
            # ensure_ascii keeps an undecodable byte as a \udcXX escape: the bytes can be recovered exactly.
            yield payload(ACTIVITY_MINUTES, json.dumps(texts, ensure_ascii=True).encode("ascii"))

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        """All payloads of the export, whatever [start, end]: an export is not windowed, and re-importing the
        same nights is harmless (records are upserted by natural key)."""
        return self.payloads(person)

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        """Records from one payload. Bad content never raises: a bad file or item comes back in `rejected`."""
        result = ParseResult()
        if raw.resource == SLEEP:
            items = _load_list(raw.body, "sleep.json", "sleep logs", result)
            if items is not None:
                _parse_sleep_logs(items, person, result)
        elif raw.resource == RESTING_HR:
            items = _load_list(raw.body, "resting_heart_rate.json", "daily resting heart rates", result)
            if items is not None:
                _parse_resting_hr(items, person, result)
        elif raw.resource == ACTIVITY_MINUTES:
            _parse_activity_minutes(raw.body, person, result)
        else:
            reason = f"'{raw.resource}' is not a resource of {SOURCE_NAME}; nothing was imported."
            result.rejected.append(Rejected(raw.resource, reason))
        return result


def read_export(folder: Path, person: PersonContext) -> tuple[list[RawPayload], ParseResult]:
    """Every payload of an export folder and everything parsed from them, merged into one result."""
    source = FitbitExportSource(folder)
    payloads = list(source.payloads(person))
    merged = ParseResult()
    for raw in payloads:
        parsed = source.parse(raw, person)
        merged.records.extend(parsed.records)
        merged.rejected.extend(parsed.rejected)
    return payloads, merged


def activity_file_bytes(body: bytes) -> dict[str, bytes]:
    """The original files inside an `activity_minutes` payload, byte for byte (for audits and re-exports)."""
    texts: dict[str, str] = json.loads(body)
    return {f"{stem}.json": text.encode("utf-8", errors="surrogateescape") for stem, text in texts.items()}


def local_to_utc(local: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock reading in `tz` as a UTC instant.

    fold=0 settles the two DST edge cases: in the repeated autumn hour the first pass (summer time) is taken;
    a reading inside the skipped spring hour (02:30 on 2020-03-29 in Oslo) is read with the offset before the
    jump, i.e. shifted forward by the gap (= 03:30 summer time).
    """
    if local.tzinfo is not None:
        return local.astimezone(timezone.utc)
    return local.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)


# --- whole-file checks ------------------------------------------------------------------------------------


def _load_list(body: bytes | str, file_name: str, what: str, result: ParseResult) -> list[Any] | None:
    """The file's top-level list, or None after rejecting the whole file with a reason a person can act on."""
    try:
        data = json.loads(body)
    except RecursionError:
        # Nesting deeper than Python's recursion limit: no export file is shaped like that.
        result.rejected.append(Rejected(file_name, (
            f"{file_name} is nested too deeply to be a Fitbit export file; nothing from it was imported."
        )))
        return None
    except json.JSONDecodeError as exc:
        # A file that opens a list or object but does not close it was cut off mid-copy.
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        text = text.strip()
        cut_off = text[:1] in ("[", "{") and text[-1:] not in ("]", "}") and not exc.msg.startswith("Extra data")
        hint = "the file is empty" if not text else (
            "the file looks cut off (truncated)" if cut_off else "the file looks damaged"
        )
        result.rejected.append(Rejected(file_name, (
            f"{file_name} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} — {hint}; "
            "nothing from it was imported. Download the export again and re-import it."
        )))
        return None
    except UnicodeDecodeError:  # bytes that are not UTF-8 text at all
        result.rejected.append(Rejected(file_name, (
            f"{file_name} is not UTF-8 text, so it cannot be a Fitbit export file; "
            "nothing from it was imported."
        )))
        return None
    except ValueError as exc:  # valid JSON syntax Python still refuses, e.g. an integer of over 4,300 digits
        result.rejected.append(Rejected(file_name, (
            f"{file_name} could not be read ({exc}); nothing from it was imported."
        )))
        return None
    if not isinstance(data, list):
        result.rejected.append(Rejected(file_name, (
            f"{file_name} should hold a list of {what} but holds {_kind(data)}; nothing from it was imported."
        )))
        return None
    return data


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _bad(locator: str, field: str, problem: str) -> RecordError:
    # Same sentence shape as connectors.records.build_record, so quarantine reasons read alike.
    return RecordError(f"{SOURCE_NAME} at {locator}: field '{field}' is invalid: {problem}")


def _required(item: Any, keys: tuple[str, ...], locator: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise RecordError(f"{SOURCE_NAME} at {locator}: expected an object, found {_kind(item)}")
    for key in keys:
        if key not in item:
            raise RecordError(f"{SOURCE_NAME} at {locator}: field '{key}' is missing")
    return item


def _local_datetime(value: Any, field: str, locator: str) -> datetime:
    # Fitbit writes both "2019-11-02 00:09:30" and "2019-11-02T07:19:30.000"; fromisoformat reads both.
    try:
        if not isinstance(value, str):
            raise ValueError
        reading = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(locator, field, f"{_shown(value)} is not a date-time like '2020-03-29 00:46:30'") from None
    # Checked here, before any zone arithmetic: a reading in year 1 or 9999 overflows when moved to UTC.
    if not EARLIEST_PLAUSIBLE_DATE <= reading.date() <= LATEST_PLAUSIBLE_DATE:
        raise _bad(locator, field, (
            f"{_shown(value)} is outside the plausible dates "
            f"{EARLIEST_PLAUSIBLE_DATE} to {LATEST_PLAUSIBLE_DATE}"
        ))
    return reading


def _shown(value: Any) -> str:
    """A value for a reason sentence: its repr, cut short so a huge corrupt field cannot flood quarantine."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _day(value: Any, field: str, locator: str) -> date:
    return _local_datetime(value, field, locator).date()


# --- sleep ------------------------------------------------------------------------------------------------


def _parse_sleep_logs(logs: list[Any], person: PersonContext, result: ParseResult) -> None:
    if not is_iana_zone(person.tz_name):
        # Export times carry no zone: without the person's zone no log can be placed in time.
        result.rejected.append(Rejected("sleep.json", (
            f"the person's time zone {_shown(person.tz_name)} is not an IANA zone name, so the local times "
            "in sleep.json cannot be read; nothing from it was imported. Correct the person's zone and "
            "re-import."
        )))
        return
    tz = ZoneInfo(person.tz_name)
    first_seen: dict[str, tuple[str, SleepSession]] = {}
    for index, log in enumerate(logs):
        log_id = log.get("logId") if isinstance(log, dict) else None
        shown_id = f" (logId {storable_text(str(log_id))})" if log_id is not None else ""
        locator = f"sleep.json[{index}]{shown_id}"
        try:
            session = _sleep_session(log, person, tz, locator)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            continue
        # Fitbit's export is written in 30-day chunks and the night on a chunk boundary appears in both,
        # differing only in the 30-day averages of `levels.summary` (63 of 2,064 logs in PMData).
        if previous := first_seen.get(session.source_session_id):
            earlier_locator, earlier = previous
            if session != earlier:
                result.rejected.append(Rejected(locator, (
                    f"{SOURCE_NAME} at {locator}: logId {log_id} already appeared at {earlier_locator} "
                    "with different times or minutes; the first one was kept."
                )))
            continue
        first_seen[session.source_session_id] = (locator, session)
        result.records.append(session)


def _sleep_session(log: Any, person: PersonContext, tz: ZoneInfo, locator: str) -> SleepSession:
    log = _required(log, _SLEEP_LOG_KEYS, locator)
    # logId is the session's key: str(None) or str([...]) would make a key that collides or means nothing.
    log_id = log["logId"]
    if isinstance(log_id, bool) or not isinstance(log_id, (int, str)) or str(log_id).strip() == "":
        raise _bad(locator, "logId", f"{_shown(log_id)} is not a log id (a number)")
    start_local = _local_datetime(log["startTime"], "startTime", locator)
    end_local = _local_datetime(log["endTime"], "endTime", locator)
    start_utc = local_to_utc(start_local, tz)
    end_utc = local_to_utc(end_local, tz)

    # dateOfSleep is Fitbit's wake date, from the same device clock as endTime, so they agree (all 2,064 logs
    # in PMData). Should they ever differ, the wake date of end_utc wins: it is the one night rule
    # (connectors.records.night_date_of_wake) every source follows, and endTime is the more precise reading.
    _day(log["dateOfSleep"], "dateOfSleep", locator)
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
        raise _bad(locator, "levels", "expected an object with a 'data' list of stage segments")

    return cast(SleepSession, build_record(SleepSession, {
        "person_id": person.person_id,
        "source": SOURCE_NAME,
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
        "segments": _segments(levels.get("data", []), start_local, start_utc, locator),
    }, source=SOURCE_NAME, locator=locator))


def _segments(
    data: list[Any], start_local: datetime, start_utc: datetime, locator: str
) -> tuple[StageSegment, ...]:
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
    segments: list[StageSegment] = []
    for index, segment in enumerate(data):
        where = f"{locator} levels.data[{index}]"
        segment = _required(segment, ("dateTime", "level", "seconds"), where)
        if segment["level"] == UNSCORED_LEVEL:
            continue
        reading = _local_datetime(segment["dateTime"], "dateTime", where)
        elapsed = reading.replace(tzinfo=None) - start_local.replace(tzinfo=None)
        # build_record is typed for Record but only needs model_validate; it words segment errors alike.
        segments.append(cast(StageSegment, build_record(cast(type[Record], StageSegment), {
            "start_utc": start_utc + elapsed,
            "duration_s": segment["seconds"],
            "stage": segment["level"],
        }, source=SOURCE_NAME, locator=where)))
    return tuple(segments)


# --- resting heart rate -----------------------------------------------------------------------------------


def _parse_resting_hr(items: list[Any], person: PersonContext, result: ParseResult) -> None:
    for index, item in enumerate(items):
        locator = f"resting_heart_rate.json[{index}]" + _day_suffix(item)
        try:
            item = _required(item, ("dateTime", "value"), locator)
            day = _day(item["dateTime"], "dateTime", locator)
            value = item["value"]
            if not isinstance(value, dict) or "value" not in value:
                raise _bad(locator, "value", 'expected an object like {"value": 52.9, "error": 6.8}')
            if value["value"] == 0:
                continue  # Fitbit writes 0 for a day without a resting heart rate: missing, not zero.
            result.records.append(build_record(DailyRestingHeartRate, {
                "person_id": person.person_id,
                "source": SOURCE_NAME,
                "day": day,
                "resting_hr_bpm": value["value"],
            }, source=SOURCE_NAME, locator=locator))
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))


def _day_suffix(item: Any) -> str:
    when = item.get("dateTime") if isinstance(item, dict) else None
    return f" ({storable_text(when, 10)})" if isinstance(when, str) else ""


# --- activity minutes -------------------------------------------------------------------------------------


def _parse_activity_minutes(body: bytes, person: PersonContext, result: ParseResult) -> None:
    try:
        texts = json.loads(body)
        if not isinstance(texts, dict) or not all(isinstance(text, str) for text in texts.values()):
            raise ValueError
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any bundle we write
        result.rejected.append(Rejected(ACTIVITY_MINUTES, (
            f"the {ACTIVITY_MINUTES} payload is not the bundle {SOURCE_NAME} writes "
            '({"<file stem>": "<file text>", ...}); nothing from it was imported.'
        )))
        return

    fields_by_day: dict[date, dict[str, int]] = {}
    for stem, text in texts.items():
        field = ACTIVITY_FILES.get(stem)
        if field is None:
            stem = storable_text(stem)  # any text can be a key of a damaged bundle
            reason = f"{stem}.json is not an activity file {SOURCE_NAME} knows; it was not imported."
            result.rejected.append(Rejected(f"{stem}.json", reason))
            continue
        items = _load_list(text, f"{stem}.json", "daily minutes", result)
        for index, item in enumerate(items or []):
            locator = f"{stem}.json[{index}]" + _day_suffix(item)
            try:
                item = _required(item, ("dateTime", "value"), locator)
                day = _day(item["dateTime"], "dateTime", locator)
                # Each value is validated on its own: a bad one names its file and costs only its field.
                partial = build_record(DailyActivity, {
                    "person_id": person.person_id, "source": SOURCE_NAME, "day": day, field: item["value"],
                }, source=SOURCE_NAME, locator=locator)
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
                continue
            fields = fields_by_day.setdefault(day, {})
            minutes = getattr(partial, field)
            if field in fields and fields[field] != minutes:
                result.rejected.append(Rejected(locator, (
                    f"{SOURCE_NAME} at {locator}: {day} appears twice in {stem}.json with different minutes; "
                    "the first was kept."
                )))
                continue
            fields.setdefault(field, minutes)

    for day in sorted(fields_by_day):
        fields = fields_by_day[day]
        if _not_worn(fields):
            continue
        result.records.append(build_record(DailyActivity, {
            "person_id": person.person_id, "source": SOURCE_NAME, "day": day, **fields,
        }, source=SOURCE_NAME, locator=f"{ACTIVITY_MINUTES} ({day})"))


def _not_worn(fields: dict[str, int]) -> bool:
    # A day the watch was not worn reads as 1,440 sedentary minutes and no activity (223 of 2,396 person-days
    # in PMData; 127 of the 128 such days of people with a resting-HR file have no resting HR either). That
    # is a gap, not a sedentary day: recording it would tell the features the person sat still for 24 hours.
    return fields.get("sedentary_min") == MINUTES_PER_DAY and not any(
        minutes for field, minutes in fields.items() if field != "sedentary_min"
    )
