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
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected
from connectors.fitbit_sleep_log import invalid, local_day, local_to_utc, required, sleep_session
from connectors.parse_helpers import load_json_list, not_worn, zone_unknown
from connectors.records import DailyActivity, DailyRestingHeartRate, RecordError, SleepSession, build_record
from connectors.records import storable_text

__all__ = ["FitbitExportSource", "read_export", "activity_file_bytes", "local_to_utc", "ACTIVITY_FILES"]

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
            items = load_json_list(raw.body, "sleep.json", "sleep logs", result)
            if items is not None:
                _parse_sleep_logs(items, person, result)
        elif raw.resource == RESTING_HR:
            items = load_json_list(raw.body, "resting_heart_rate.json", "daily resting heart rates", result)
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


# --- whole-file checks ------------------------------------------------------------------------------------


def _parse_sleep_logs(logs: list[Any], person: PersonContext, result: ParseResult) -> None:
    # Export times carry no zone: without the person's zone no log can be placed in time.
    if zone_unknown(SOURCE_NAME, person, result, "the local times in sleep.json cannot be read",
                    locator="sleep.json", again="re-import"):
        return
    tz = ZoneInfo(person.tz_name)
    first_seen: dict[str, tuple[str, SleepSession]] = {}
    for index, log in enumerate(logs):
        log_id = log.get("logId") if isinstance(log, dict) else None
        shown_id = f" (logId {storable_text(str(log_id))})" if log_id is not None else ""
        locator = f"sleep.json[{index}]{shown_id}"
        try:
            session = sleep_session(log, person, tz, locator, source=SOURCE_NAME)
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


# --- resting heart rate -----------------------------------------------------------------------------------


def _parse_resting_hr(items: list[Any], person: PersonContext, result: ParseResult) -> None:
    for index, item in enumerate(items):
        locator = f"resting_heart_rate.json[{index}]" + _day_suffix(item)
        try:
            item = required(SOURCE_NAME, item, ("dateTime", "value"), locator)
            day = local_day(SOURCE_NAME, item["dateTime"], "dateTime", locator)
            value = item["value"]
            if not isinstance(value, dict) or "value" not in value:
                raise invalid(SOURCE_NAME, locator, "value", 'expected an object like {"value": 52.9, "error": 6.8}')
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
        items = load_json_list(text, f"{stem}.json", "daily minutes", result)
        for index, item in enumerate(items or []):
            locator = f"{stem}.json[{index}]" + _day_suffix(item)
            try:
                item = required(SOURCE_NAME, item, ("dateTime", "value"), locator)
                day = local_day(SOURCE_NAME, item["dateTime"], "dateTime", locator)
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
        if not_worn(fields):
            continue
        result.records.append(build_record(DailyActivity, {
            "person_id": person.person_id, "source": SOURCE_NAME, "day": day, **fields,
        }, source=SOURCE_NAME, locator=f"{ACTIVITY_MINUTES} ({day})"))

