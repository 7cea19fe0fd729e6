"""Google Takeout "Google Health" / "Fitbit" archive (today's Fitbit "download your data") → records.

Shapes from the research note `shared/research/google-takeout-health-export.md` (an October 2026 export). The archive
holds two layouts side by side, and emberwatch reads both:

- layout A, `Global Export Data/*.json`, local times without a zone (read in the person's IANA zone):
  `sleep-YYYY-MM-DD.json` (the old export's sleep-log shape: parsed by `connectors.fitbit_sleep_log`, shared
  with the account export and the Web API) and `steps-YYYY-MM-DD.json` (one entry per minute, `value` a string,
  `dateTime` as `MM/dd/yy HH:mm:ss`);
- layout B, UTC CSVs: `Sleep Score/sleep_score.csv` (per-night resting heart rate at the wake time) and
  `Physical Activity_GoogleData/Steps/steps_YYYY-MM-01.csv` (`timestamp,steps,data source`, the tracker and the
  phone side by side).

File-name dates are the export's or month's start, not the data's: every file of a pattern is read, and files that
overlap are merged by natural key (a log's `logId`; a CSV row's time stamp and data source; a night's wake date).

Payloads, one per data type, each a bundle `{"<path from the layout folder>": "<the file's exact text>", ...}`
(sorted, so the same files always make the same bytes, whether read from a folder, a .zip or a .tgz):
`sleep_logs`, `sleep_score`, `steps`, `hrv`, `vitals`. One damaged file costs only itself: it is quarantined with
its reason.

Steps: one source per day, never a sum (the phone counts the same walk again). Priority, highest first:
1. the tracker/watch rows of the steps CSVs (a `data source` that does not name a phone; with two trackers on one
   day, the one with more steps that day);
2. the per-minute `steps-*.json` of layout A (the tracker's own minutes);
3. the phone rows of the steps CSVs (`data source` naming a phone, e.g. `Phone Health Kit`).
A source whose total for a day is 0 counts as not worn that day and gives way to the next. A day with no entries
at all has no value (missing is not zero).

Overnight vitals: the research note names the folders but not their files, so their shapes come from a public
catalogue of a real 2026 export (`tests/fixtures/google_takeout/SOURCE.md` names it): the nightly summaries are
read, the per-minute and per-reading detail beside them is not (a night's summary is what the features use).
- `Heart Rate Variability/Daily Heart Rate Variability Summary - YYYY-MM-(DD).csv` (the day in brackets, or not):
  `timestamp,rmssd,nremhr,entropy`, one row a night → `NightlyHrv` (RMSSD of the main sleep, as the Google Health
  API gives it).
- `Heart Rate Variability/Daily Respiratory Rate Summary - *.csv`: `timestamp,daily_respiratory_rate` (breaths a
  minute) → `NightlyVitals.breathing_rate_brpm`.
- `Oxygen Saturation (SpO2)/Daily SpO2 - <start>-<end>.csv`: `timestamp,average_value,lower_bound,upper_bound` →
  `NightlyVitals.spo2_avg_pct`. 50.0 is the floor Fitbit writes for a reading it could not make, not a value.
- `Temperature/Computed Temperature - *.csv`: one row per sleep, local `sleep_start`/`sleep_end`, and
  `baseline_relative_sample_sum` over `temperature_samples` → `NightlyVitals.skin_temp_deviation_c` (the mean
  deviation from the person's own temperature baseline, what the Web API called `nightlyRelative`). The absolute
  `nightly_temperature` is not a deviation and is not stored; `NaN` (no baseline yet) gives no value.
A summary's `timestamp` names its night by the wake date: naive, it is already local; at exactly midnight with a
`Z` it is a day label (moving it into a zone west of UTC would put it on the day before); any other zoned time is
moved into the person's zone. Overlapping files merge by night: the first value kept, a different second one
rejected with its reason.

Folders read in part or not at all are named in `skipped` with why, for the import summary: `Heart Rate`
(intraday, shape not described), `Daily Readiness` and `Stress Score` (Fitbit's composite scores: emberwatch
compares the measures they are made from with the person's own usual). `Health Fitness Data_GoogleData/
UserSleeps_*.csv` and `UserSleepScores_*.csv` are not read either (the same nights as `sleep-*.json` and
`sleep_score.csv`, with columns the note only sketches).
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected
from connectors.fitbit_sleep_log import sleep_session
from connectors.parse_helpers import FieldsByDay, add, load_json_list, shown, zone_unknown
from connectors.records import EARLIEST_PLAUSIBLE_DATE, LATEST_PLAUSIBLE_DATE, DailyActivity
from connectors.records import DailyRestingHeartRate, NightlyHrv, NightlyVitals, RecordError, SleepSession
from connectors.records import build_record
from connectors.records import storable_text

__all__ = ["GoogleTakeoutSource", "UnsafeArchive", "takeout_time", "bundle_files", "SOURCE_NAME"]

SOURCE_NAME = "google-takeout"

SLEEP_LOGS = "sleep_logs"
SLEEP_SCORE = "sleep_score"
STEPS = "steps"
HRV = "hrv"
VITALS = "vitals"

HRV_SUMMARY = "Heart Rate Variability/Daily Heart Rate Variability Summary - "
BREATHING_SUMMARY = "Heart Rate Variability/Daily Respiratory Rate Summary - "
SPO2_SUMMARY = "Oxygen Saturation (SpO2)/Daily SpO2 - "
TEMPERATURE_SUMMARY = "Temperature/Computed Temperature - "

# Path patterns, matched against the end of a member's path (the archive's top folders vary: `Takeout/Fitbit/…`,
# `Takeout/Google Health/…`). The key kept for a file starts at its layout folder.
PATTERNS: dict[str, re.Pattern[str]] = {
    SLEEP_LOGS: re.compile(r"(?:^|/)(Global Export Data/sleep-\d{4}-\d{2}-\d{2}\.json)$"),
    SLEEP_SCORE: re.compile(r"(?:^|/)(Sleep Score/sleep_score\.csv)$"),
    STEPS: re.compile(
        r"(?:^|/)(Global Export Data/steps-\d{4}-\d{2}-\d{2}\.json"
        r"|Physical Activity_GoogleData/Steps/steps_\d{4}-\d{2}-\d{2}\.csv)$"),
    HRV: re.compile(r"(?:^|/)(" + re.escape(HRV_SUMMARY) + r"[^/]*\.csv)$"),
    VITALS: re.compile(r"(?:^|/)((?:" + "|".join(re.escape(prefix) for prefix in (
        BREATHING_SUMMARY, SPO2_SUMMARY, TEMPERATURE_SUMMARY)) + r")[^/]*\.csv)$"),
}

# What is left unread in each health folder, and why (the import summary says it, per folder).
DETAIL_REASON = "per-minute or per-reading detail; the nightly summaries in this folder are what the features use"
UNREAD_FOLDERS: dict[str, str] = {
    "Heart Rate Variability": DETAIL_REASON,
    "Oxygen Saturation (SpO2)": DETAIL_REASON,
    "Temperature": DETAIL_REASON,
    "Heart Rate": ("the shape of its files is not described in the research notes this importer was built from, "
                   "so emberwatch does not guess at it (resting heart rate comes from Sleep Score)"),
    "Daily Readiness": ("Fitbit's composite score; emberwatch compares the measures it is made from (sleep, HRV, "
                        "resting heart rate) with the person's own usual instead"),
    "Stress Score": ("Fitbit's composite score; emberwatch compares the measures it is made from with the "
                     "person's own usual instead"),
}

# Fitbit writes 50.0 for an SpO2 it could not measure (every sub-70 value in a real export is exactly 50.0).
SPO2_FLOOR_PCT = 50.0

# No Takeout file emberwatch reads is near this; a larger member is skipped rather than read into memory.
MAX_MEMBER_BYTES = 512 * 1024 * 1024

PHONE_WORDS = ("phone",)  # `data source` values naming a phone (`Phone Health Kit`); anything else is a tracker


class UnsafeArchive(ValueError):
    """An archive member that could land outside where it is read (absolute path, `..`): the archive is refused."""


@dataclass
class Skipped:
    folder: str
    reason: str


# --- reading the folder or archive ---------------------------------------------------------------------------


def _safe_member_name(name: str) -> str:
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise UnsafeArchive(f"the archive member {name!r} has an absolute path; a Google Takeout archive never "
                            "does, so nothing from this archive was imported.")
    if ".." in PurePosixPath(posix).parts:
        raise UnsafeArchive(f"the archive member {name!r} climbs out of the archive with '..'; a Google Takeout "
                            "archive never does, so nothing from this archive was imported.")
    return posix


def _members(path: Path) -> Iterator[tuple[str, Any]]:
    """(posix name, reader) for every regular file, member by member. `reader()` returns the bytes. Names are
    checked before anything is read; nothing is ever written to disk."""
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            yield file.relative_to(path).as_posix(), file.read_bytes
        return
    lower = path.name.lower()
    if lower.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = _safe_member_name(info.filename)
                if info.is_dir():
                    continue
                if info.file_size > MAX_MEMBER_BYTES:
                    continue
                yield name, (lambda info=info: archive.read(info))
        return
    if lower.endswith((".tgz", ".tar.gz", ".tar")):
        # Streaming mode ("r|*"): one pass, member by member, as the archive is read.
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                name = _safe_member_name(member.name)
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    continue  # links, devices and folders are never read
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                # Read only if wanted, and only before the stream moves on (the caller reads before next()).
                yield name, handle.read
        return
    raise FileNotFoundError(f"{path} is neither a folder nor a .zip, .tgz or .tar.gz archive; point to the "
                            "Google Takeout folder or the archive as downloaded.")


def collect(path: Path) -> tuple[dict[str, dict[str, bytes]], list[Skipped]]:
    """Every file emberwatch reads, by data type and layout path, and what was left unread and why."""
    found: dict[str, dict[str, bytes]] = {kind: {} for kind in PATTERNS}
    unread: dict[str, int] = {}
    for name, read in _members(Path(path)):
        for kind, pattern in PATTERNS.items():
            if match := pattern.search(name):
                key = match.group(1)
                body = read()
                if key in found[kind] and found[kind][key] != body:
                    # Two archive parts holding one layout path with different contents: keep both.
                    n = 2
                    while f"{key}#{n}" in found[kind]:
                        n += 1
                    key = f"{key}#{n}"
                found[kind][key] = body
                break
        else:
            parts = PurePosixPath(name).parts[:-1]
            for folder in UNREAD_FOLDERS:
                if folder in parts:
                    unread[folder] = unread.get(folder, 0) + 1
    skipped = [Skipped(folder, f"{count} file(s) not read: {UNREAD_FOLDERS[folder]}.")
               for folder, count in sorted(unread.items())]
    if not any(found.values()):
        raise FileNotFoundError(
            f"No Google Takeout health files in {path} (looked for Global Export Data/sleep-*.json, "
            "Sleep Score/sleep_score.csv, Physical Activity_GoogleData/Steps/steps_*.csv and the nightly HRV, "
            "breathing, SpO2 and temperature summaries); point to the Takeout folder or the .zip/.tgz as "
            "downloaded.")
    return found, skipped


def bundle_files(files: dict[str, bytes]) -> bytes:
    """The files' exact bytes as one JSON object; ensure_ascii keeps any undecodable byte as a \\udcXX escape."""
    texts = {key: files[key].decode("utf-8", errors="surrogateescape") for key in sorted(files)}
    return json.dumps(texts, ensure_ascii=True).encode("ascii")


class GoogleTakeoutSource:
    """Reads one person's Google Takeout health export: the folder, or the .zip / .tgz as downloaded."""

    name = SOURCE_NAME

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"There is no {path}; point to the Google Takeout folder or its .zip/.tgz.")
        self.path = path
        self.files, self.skipped = collect(path)
        # Which source gave each day's steps, by origin, from the last parse of the steps (for the import summary;
        # the record itself has no column for it).
        self.steps_origin: dict[str, int] = {}
        for kind, label in ((SLEEP_LOGS, "Global Export Data/sleep-*.json"),
                            (SLEEP_SCORE, "Sleep Score/sleep_score.csv"),
                            (STEPS, "steps files"),
                            (HRV, "Heart Rate Variability summaries")):
            if not self.files[kind]:
                self.skipped.append(Skipped(label, "not in this archive; nothing to read."))

    def payloads(self, person: PersonContext) -> Iterator[RawPayload]:
        fetched_at = datetime.now(timezone.utc)
        for kind in PATTERNS:
            if self.files[kind]:
                yield RawPayload(person.person_id, SOURCE_NAME, kind, bundle_files(self.files[kind]), fetched_at)

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        """All payloads of the archive whatever [start, end]: an export is not windowed."""
        return self.payloads(person)

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        """Records from one payload. Bad content never raises: a bad file or item comes back in `rejected`."""
        result = ParseResult()
        texts = _bundle(raw, result)
        if texts is None:
            return result
        if zone_unknown(SOURCE_NAME, person, result, "the archive's times cannot be placed on local dates",
                        locator=raw.resource, again="re-import"):
            return result
        tz = ZoneInfo(person.tz_name)
        if raw.resource == SLEEP_LOGS:
            _parse_sleep_logs(texts, person, tz, result)
        elif raw.resource == SLEEP_SCORE:
            _parse_sleep_score(texts, person, tz, result)
        elif raw.resource == STEPS:
            self.steps_origin = _parse_steps(texts, person, tz, result)
        elif raw.resource == HRV:
            _parse_hrv(texts, person, tz, result)
        elif raw.resource == VITALS:
            _parse_vitals(texts, person, tz, result)
        else:
            result.rejected.append(Rejected(raw.resource, (
                f"'{storable_text(raw.resource)}' is not a resource of {SOURCE_NAME}; nothing was imported.")))
        return result


def _bundle(raw: RawPayload, result: ParseResult) -> dict[str, str] | None:
    try:
        texts = json.loads(raw.body)
        if not isinstance(texts, dict) or not all(isinstance(t, str) for t in texts.values()):
            raise ValueError
    except (ValueError, RecursionError):
        result.rejected.append(Rejected(raw.resource, (
            f"the {storable_text(raw.resource)} payload is not the bundle {SOURCE_NAME} writes "
            '({"<file path>": "<file text>", ...}); nothing from it was imported.')))
        return None
    return texts


# --- time stamps ------------------------------------------------------------------------------------------

_MDY = re.compile(r"(\d{2})/(\d{2})/(\d{2})(?: (\d{2}):(\d{2}):(\d{2}))?")
_ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def takeout_time(value: Any) -> datetime:
    """A Takeout time stamp, parsed by its explicit shape, never guessed: `MM/dd/yy[ HH:mm:ss]` (month first,
    two-digit year in 2000-2099), or ISO `yyyy-MM-dd[THH:mm:ss[.SSS]][Z|±hh:mm]`. Naive when the text has no zone.
    Raises ValueError for anything else (e.g. `13/02/26`, or `2026/02/13`)."""
    if not isinstance(value, str):
        raise ValueError(f"{shown(value)} is not a time stamp")
    text = value.strip()
    if m := _MDY.fullmatch(text):
        month, day, yy = int(m.group(1)), int(m.group(2)), int(m.group(3))
        hms = [int(g) for g in m.group(4, 5, 6)] if m.group(4) else [0, 0, 0]
        return datetime(2000 + yy, month, day, *hms)  # ValueError for month 13 or day 32: never swapped
    if _ISO_START.match(text):
        reading = datetime.fromisoformat(text)
        if not EARLIEST_PLAUSIBLE_DATE <= reading.date() <= LATEST_PLAUSIBLE_DATE:
            raise ValueError(f"{shown(value)} is outside the plausible dates")
        return reading
    raise ValueError(f"{shown(value)} is neither MM/dd/yy HH:mm:ss nor yyyy-MM-ddTHH:mm:ss")


def _offset(text: str) -> timedelta | None:
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text.strip())
    if not m:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    if minutes > 14 * 60:
        return None
    return timedelta(minutes=minutes if m.group(1) == "+" else -minutes)


def _local_date(stamp: datetime, tz: ZoneInfo, utc_offset: str | None) -> date:
    """The local calendar date of a time stamp: a zoned one moved by the row's `utc_offset` when it has one (the
    offset the watch was at), else into the person's zone; a naive one is already local."""
    if stamp.tzinfo is None:
        return stamp.date()
    if utc_offset:
        offset = _offset(utc_offset)
        if offset is None:
            raise ValueError(f"utc_offset {shown(utc_offset)} is not an offset like +02:00")
        return (stamp.astimezone(timezone.utc) + offset).date()
    return stamp.astimezone(tz).date()


# --- sleep logs (layout A) ----------------------------------------------------------------------------------

_LOG_TIME_FIELDS = ("dateOfSleep", "startTime", "endTime")


def _iso_times(log: Any) -> Any:
    """The shared parser reads ISO times; a Takeout `MM/dd/yy HH:mm:ss` is rewritten to ISO first, explicitly
    (never guessed). Anything else is left as it is for the shared parser to judge."""
    if not isinstance(log, dict):
        return log

    def iso(value: Any, date_only: bool) -> Any:
        if isinstance(value, str) and _MDY.fullmatch(value.strip()):
            try:
                reading = takeout_time(value)
            except ValueError:
                return value
            return reading.date().isoformat() if date_only else reading.isoformat()
        return value

    log = dict(log)
    for key in _LOG_TIME_FIELDS:
        if key in log:
            log[key] = iso(log[key], key == "dateOfSleep")
    levels = log.get("levels")
    if isinstance(levels, dict) and isinstance(levels.get("data"), list):
        log["levels"] = {**levels, "data": [
            {**seg, "dateTime": iso(seg.get("dateTime"), False)} if isinstance(seg, dict) and "dateTime" in seg
            else seg for seg in levels["data"]]}
    return log


def _fill_main_sleep(logs: list[Any]) -> None:
    """The note lists the old export's fields without saying `mainSleep` is kept. Where a log lacks it, the
    longest log (timeInBed) of its `dateOfSleep` is the main sleep and the others are naps. Logs that carry
    `mainSleep` are left as they are."""
    longest: dict[Any, tuple[Any, int]] = {}
    lacking = [log for log in logs if isinstance(log, dict) and "mainSleep" not in log]
    for log in lacking:
        minutes = log.get("timeInBed")
        minutes = minutes if type(minutes) is int else -1
        key = str(log.get("dateOfSleep"))
        if key not in longest or minutes > longest[key][1]:
            longest[key] = (log.get("logId"), minutes)
    for log in lacking:
        log["mainSleep"] = longest[str(log.get("dateOfSleep"))][0] == log.get("logId")


def _parse_sleep_logs(texts: dict[str, str], person: PersonContext, tz: ZoneInfo, result: ParseResult) -> None:
    first_seen: dict[str, tuple[str, SleepSession]] = {}
    files = {name: load_json_list(texts[name], name, "sleep logs", result) or [] for name in sorted(texts)}
    _fill_main_sleep([log for logs in files.values() for log in logs])
    for file_name, logs in files.items():
        for index, log in enumerate(logs):
            log_id = log.get("logId") if isinstance(log, dict) else None
            shown_id = f" (logId {storable_text(str(log_id))})" if log_id is not None else ""
            locator = f"{file_name}[{index}]{shown_id}"
            try:
                session = sleep_session(_iso_times(log), person, tz, locator, source=SOURCE_NAME)
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
                continue
            # Export-start files overlap: the same log in two files is one night (merged by logId).
            if previous := first_seen.get(session.source_session_id):
                earlier_locator, earlier = previous
                if (session.start_utc, session.end_utc, session.minutes_asleep, session.segments) != (
                        earlier.start_utc, earlier.end_utc, earlier.minutes_asleep, earlier.segments):
                    result.rejected.append(Rejected(locator, (
                        f"{SOURCE_NAME} at {locator}: logId {storable_text(str(log_id))} already appeared at "
                        f"{earlier_locator} with different times or minutes; the first one was kept.")))
                continue
            first_seen[session.source_session_id] = (locator, session)
            result.records.append(session)


# --- CSV (layout B) -----------------------------------------------------------------------------------------


def _csv_rows(file_name: str, text: str, needed: tuple[str, ...],
              result: ParseResult) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header, read by a real CSV parser (quoted commas). A file without the
    needed columns is rejected whole."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        result.rejected.append(Rejected(file_name, f"{file_name} is not a readable CSV ({exc}); nothing from it "
                                                   "was imported."))
        return
    missing = [column for column in needed if column not in header]
    if missing:
        result.rejected.append(Rejected(file_name, (
            f"{file_name} lacks the column(s) {', '.join(missing)} (its header is "
            f"{storable_text(','.join(header), 200)!r}); nothing from it was imported.")))
        return
    reader.fieldnames = header
    try:
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
    except csv.Error as exc:
        result.rejected.append(Rejected(file_name, (
            f"{file_name} stops being readable CSV at line {reader.line_num} ({exc}); the rows after it were "
            "not imported.")))


def _parse_sleep_score(texts: dict[str, str], person: PersonContext, tz: ZoneInfo, result: ParseResult) -> None:
    """Resting heart rate per night, on the local date of the wake time (`timestamp`, UTC)."""
    by_entry: dict[str, tuple[str, date, float]] = {}
    for file_name in sorted(texts):
        for line, row in _csv_rows(file_name, texts[file_name], ("sleep_log_entry_id", "timestamp",
                                                                  "resting_heart_rate"), result):
            locator = f"{file_name}:{line}"
            try:
                value = row["resting_heart_rate"]
                if value in ("", "0", "0.0", "-1"):
                    continue  # missing, not zero
                day = _local_date(takeout_time(row["timestamp"]), tz, row.get("utc_offset"))
                bpm = float(value)
            except ValueError as exc:
                result.rejected.append(Rejected(locator, f"{SOURCE_NAME} at {locator}: {exc}"))
                continue
            entry = row["sleep_log_entry_id"] or f"{day}"
            if entry in by_entry:
                continue  # the same night again (overlapping files): merged by its entry id
            by_entry[entry] = (locator, day, bpm)
    by_day: dict[date, tuple[str, float]] = {}
    for locator, day, bpm in by_entry.values():
        if day in by_day:
            if by_day[day][1] != bpm:
                result.rejected.append(Rejected(locator, (
                    f"{SOURCE_NAME} at {locator}: a second sleep on {day} with another resting heart rate; the "
                    f"one at {by_day[day][0]} was kept.")))
            continue
        by_day[day] = (locator, bpm)
    for day in sorted(by_day):
        locator, bpm = by_day[day]
        add(SOURCE_NAME, result, DailyRestingHeartRate,
            {"person_id": person.person_id, "day": day, "resting_hr_bpm": bpm}, locator)


# --- nightly HRV and vitals (the summary CSVs) --------------------------------------------------------------


def _summary_night(stamp: datetime, tz: ZoneInfo) -> date:
    """The night (wake date) a nightly summary's `timestamp` names; see the module docstring."""
    if stamp.tzinfo is None or stamp.astimezone(timezone.utc).time() == datetime.min.time():
        return stamp.date()
    return stamp.astimezone(tz).date()


def _finite(text: str, column: str) -> float | None:
    """A number, or None for empty/NaN (missing is not zero); ValueError for anything else."""
    if text == "" or text.lower() == "nan":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {shown(text)} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value


class _FirstByNight:
    """One value per night and measure across overlapping files: the first kept; a different second value is
    rejected with where the kept one came from (an equal one is the same row again)."""

    def __init__(self) -> None:
        self.kept: dict[date, tuple[str, float]] = {}

    def offer(self, result: ParseResult, night: date, value: float, locator: str, what: str) -> None:
        if night not in self.kept:
            self.kept[night] = (locator, value)
        elif self.kept[night][1] != value:
            result.rejected.append(Rejected(locator, (
                f"{SOURCE_NAME} at {locator}: a second {what} for the night of {night} ({value:g}); the one at "
                f"{self.kept[night][0]} was kept.")))


def _summary_rows(texts: dict[str, str], prefix: str, value_column: str, tz: ZoneInfo,
                  result: ParseResult) -> Iterator[tuple[str, date, float]]:
    """(locator, night, value) of each row with a value, from every file of one nightly summary."""
    for file_name in sorted(name for name in texts if name.startswith(prefix)):
        for line, row in _csv_rows(file_name, texts[file_name], ("timestamp", value_column), result):
            locator = f"{file_name}:{line}"
            try:
                value = _finite(row[value_column], value_column)
                if value is None or value == 0:
                    continue  # no reading that night: missing, not zero
                yield locator, _summary_night(takeout_time(row["timestamp"]), tz), value
            except ValueError as exc:
                result.rejected.append(Rejected(locator, f"{SOURCE_NAME} at {locator}: {exc}"))


def _parse_hrv(texts: dict[str, str], person: PersonContext, tz: ZoneInfo, result: ParseResult) -> None:
    nights = _FirstByNight()
    for locator, night, rmssd_ms in _summary_rows(texts, HRV_SUMMARY, "rmssd", tz, result):
        nights.offer(result, night, rmssd_ms, locator, "RMSSD")
    for night, (locator, rmssd_ms) in sorted(nights.kept.items()):
        add(SOURCE_NAME, result, NightlyHrv, {"person_id": person.person_id, "night_date": night,
                                             "rmssd_ms": rmssd_ms}, locator)


def _parse_vitals(texts: dict[str, str], person: PersonContext, tz: ZoneInfo, result: ParseResult) -> None:
    by_field: dict[str, _FirstByNight] = {}
    for field, prefix, column, what in (
            ("breathing_rate_brpm", BREATHING_SUMMARY, "daily_respiratory_rate", "breathing rate"),
            ("spo2_avg_pct", SPO2_SUMMARY, "average_value", "SpO2")):
        nights = by_field.setdefault(field, _FirstByNight())
        for locator, night, value in _summary_rows(texts, prefix, column, tz, result):
            if field == "spo2_avg_pct" and value == SPO2_FLOOR_PCT:
                continue  # no reading that night: missing, as an empty cell is
            nights.offer(result, night, value, locator, what)
    by_field["skin_temp_deviation_c"] = _skin_temperature(texts, result)

    vitals = FieldsByDay(SOURCE_NAME, NightlyVitals, person.person_id, "night_date")
    for field, nights in by_field.items():
        for night, (locator, value) in sorted(nights.kept.items()):
            vitals.keep(result, night, field, value, locator)
    vitals.add_all(result, "vitals")


def _skin_temperature(texts: dict[str, str], result: ParseResult) -> _FirstByNight:
    """Each night's mean deviation from the person's temperature baseline, from its main sleep: of the night's
    rows (one per sleep, naps too), the one with the most samples. A nap's afternoon skin temperature is not the
    night's, so a main sleep without a deviation (no baseline yet) leaves the night without one."""
    main: dict[date, tuple[int, str, float | None]] = {}
    seen: set[tuple[str, str]] = set()  # (sleep_start, sleep_end): the same sleep in two files
    needed = ("sleep_start", "sleep_end", "temperature_samples", "baseline_relative_sample_sum")
    for file_name in sorted(name for name in texts if name.startswith(TEMPERATURE_SUMMARY)):
        for line, row in _csv_rows(file_name, texts[file_name], needed, result):
            locator = f"{file_name}:{line}"
            if (row["sleep_start"], row["sleep_end"]) in seen:
                continue
            try:
                end = takeout_time(row["sleep_end"])
                if end.tzinfo is not None:
                    raise ValueError(f"sleep_end {shown(row['sleep_end'])} has a zone; this file's times are local")
                samples = int(row["temperature_samples"] or 0)
                total = _finite(row["baseline_relative_sample_sum"], "baseline_relative_sample_sum")
            except ValueError as exc:
                result.rejected.append(Rejected(locator, f"{SOURCE_NAME} at {locator}: {exc}"))
                continue
            seen.add((row["sleep_start"], row["sleep_end"]))
            deviation = round(total / samples, 3) if total is not None and samples > 0 else None
            night = end.date()
            if night not in main or samples > main[night][0]:
                main[night] = (samples, locator, deviation)
    nights = _FirstByNight()
    for night, (_, locator, deviation) in main.items():
        if deviation is not None:
            nights.offer(result, night, deviation, locator, "skin temperature")
    return nights


# --- steps (both layouts) -----------------------------------------------------------------------------------

TRACKER_CSV, TRACKER_JSON, PHONE_CSV = 0, 1, 2  # priority, highest first (see the module docstring)


@dataclass
class _StepTotals:
    # (priority, device) → day → steps; rows merged by natural key before they are summed
    by_origin: dict[tuple[int, str], dict[date, int]] = field(default_factory=dict)

    def add(self, origin: tuple[int, str], day: date, steps: int) -> None:
        days = self.by_origin.setdefault(origin, {})
        days[day] = days.get(day, 0) + steps


ORIGIN_NAMES = {TRACKER_CSV: "the watch's CSV rows", TRACKER_JSON: "the watch's per-minute JSON",
                PHONE_CSV: "the phone's CSV rows"}


def _parse_steps(texts: dict[str, str], person: PersonContext, tz: ZoneInfo,
                 result: ParseResult) -> dict[str, int]:
    """Daily steps into `result`; returns how many days each origin gave (ORIGIN_NAMES)."""
    origins: dict[str, int] = {}
    totals = _StepTotals()
    seen_csv: set[tuple[str, str]] = set()  # (timestamp, data source): the same row in two month files
    seen_json: set[str] = set()  # dateTime of a minute
    for file_name in sorted(texts):
        if file_name.endswith(".csv"):
            _steps_csv(file_name, texts[file_name], tz, totals, seen_csv, result)
        else:
            _steps_json(file_name, texts[file_name], totals, seen_json, result)

    days = sorted({day for per_day in totals.by_origin.values() for day in per_day})
    for day in days:
        chosen: int | None = None
        for priority in (TRACKER_CSV, TRACKER_JSON, PHONE_CSV):
            candidates = [per_day[day] for (p, _), per_day in totals.by_origin.items()
                          if p == priority and per_day.get(day)]
            if candidates:
                chosen = max(candidates)  # two trackers on one day: the fuller one, never their sum
                break
        if chosen is None:
            continue  # every source says 0: not worn, no value
        try:
            result.records.append(build_record(DailyActivity, {
                "person_id": person.person_id, "source": SOURCE_NAME, "day": day, "steps": chosen,
            }, source=SOURCE_NAME, locator=f"steps ({day})"))
        except RecordError as exc:
            result.rejected.append(Rejected(f"steps ({day})", str(exc)))
            continue
        origins[ORIGIN_NAMES[priority]] = origins.get(ORIGIN_NAMES[priority], 0) + 1
    return {name: origins[name] for name in ORIGIN_NAMES.values() if name in origins}  # in priority order


def _is_phone(device: str) -> bool:
    return any(word in device.lower() for word in PHONE_WORDS)


def _steps_csv(file_name: str, text: str, tz: ZoneInfo, totals: _StepTotals, seen: set[tuple[str, str]],
               result: ParseResult) -> None:
    for line, row in _csv_rows(file_name, text, ("timestamp", "steps", "data source"), result):
        locator = f"{file_name}:{line}"
        key = (row["timestamp"], row["data source"])
        if key in seen:
            continue
        try:
            day = _local_date(takeout_time(row["timestamp"]), tz, row.get("utc_offset"))
            steps = int(row["steps"])
            if steps < 0:
                raise ValueError(f"steps {shown(row['steps'])} is negative")
        except ValueError as exc:
            result.rejected.append(Rejected(locator, f"{SOURCE_NAME} at {locator}: {exc}"))
            continue
        seen.add(key)
        device = row["data source"]
        totals.add((PHONE_CSV if _is_phone(device) else TRACKER_CSV, device), day, steps)


def _steps_json(file_name: str, text: str, totals: _StepTotals, seen: set[str], result: ParseResult) -> None:
    items = load_json_list(text, file_name, "per-minute steps", result)
    dates: dict[str, date] = {}  # "MM/dd/yy" → date: parsed once per day, explicitly
    origin = (TRACKER_JSON, "Global Export Data")
    for index, item in enumerate(items or []):
        try:
            if not isinstance(item, dict) or "dateTime" not in item or "value" not in item:
                raise ValueError("expected an object with dateTime and value")
            when = item["dateTime"]
            if not isinstance(when, str) or not _MDY.fullmatch(when) and not _ISO_START.match(when):
                raise ValueError(f"dateTime {shown(when)} is neither MM/dd/yy HH:mm:ss nor ISO")
            if when in seen:
                continue  # the same minute in two overlapping files
            prefix = when[:8] if _MDY.fullmatch(when) else when[:10]
            day = dates.get(prefix)
            if day is None:
                day = takeout_time(when).date()
                dates[prefix] = day
            value = item["value"]
            steps = int(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
            if steps is None or steps < 0:
                raise ValueError(f"value {shown(value)} is not a count of steps")
        except ValueError as exc:
            locator = f"{file_name}[{index}]"
            result.rejected.append(Rejected(locator, f"{SOURCE_NAME} at {locator}: {exc}"))
            continue
        seen.add(when)
        totals.add(origin, day, steps)
