"""Apple Health export (`export.zip` from the Health app, or its `export.xml`) → records.

Shapes from the research note `shared/research/google-health-oura.md` §5 and Apple's HealthKit identifiers: one
`<Record type=… sourceName=… device=… unit=… startDate=… endDate=… value=…>` per reading, dates as
`2024-03-02 23:14:05 +0100` (local time with its own offset, parsed explicitly: `%Y-%m-%d %H:%M:%S ±hhmm`). A
local date is always taken in the record's own offset, so nights spent abroad or across a clock change land on the
date the person lived them.

Reading: the file can be gigabytes. The `export.xml` member of the zip is opened as a stream and read with
`lxml.etree.iterparse(tag="Record")`, each element cleared (and its earlier siblings dropped) once read, so memory
stays flat. Only the record types below are kept, and they are archived in bounded chunks: one payload per data
type and month (resource `"<kind>/<YYYY-MM>"`, the `<Record>` elements serialised back as XML in file order), so
every record is archived before it is parsed and a bad one can be parsed again. Each chunk is archived
zlib-compressed (CHUNK_ZLIB_LEVEL, why there); a plain XML chunk, as archived before, parses the same. While the file
is read, the kept records wait in a temporary file, not in memory; the import stores and parses a few chunks at a
time. The month of a sleep or vitals
record is that of its night (the local date of its start + 12 h: noon to noon ends on the wake date); a continuous
sleep crossing local noon on a month's last day would be split in two (not seen in practice).

A file cut off or broken mid-way: every record before the break is imported; the rest cannot be read, and a
payload `unreadable/<line>` says where and why, quarantined with that reason. Re-importing the same file yields the
same bytes, so nothing changes.

Types read:
- `HKCategoryTypeIdentifierSleepAnalysis` → `SleepSession`s with stage segments (AsleepCore → light, AsleepDeep →
  deep, AsleepREM → rem, Awake → wake; the older `Asleep` and `AsleepUnspecified` → classic asleep; `InBed`
  widens the session, never counted as asleep unless it is all the night has, see below).
- `HKQuantityTypeIdentifierRestingHeartRate` → daily resting heart rate (local date of the reading).
- `HKQuantityTypeIdentifierRespiratoryRate` and `…OxygenSaturation` (a fraction 0–1, stored as %) →
  `NightlyVitals`, the mean of the night's readings (noon to noon ending on the wake date).
- `HKQuantityTypeIdentifierStepCount` → daily steps (local date of the reading's start).
- `HKQuantityTypeIdentifierHeartRateVariabilitySDNN` → `NightlyHrv.sdnn_ms`, the mean of the night's readings
  (noon to noon). SDNN over ~1-minute readings is not comparable with the nightly RMSSD of other sources: it is
  never put in the RMSSD field, and the features give it a baseline of its own.
- `HKQuantityTypeIdentifierAppleSleepingWristTemperature` (absolute °C, one a night) → `NightlyVitals`'
  `skin_temp_deviation_c`, the night's value minus the median of the 30 days before it (from 5 nights on), as
  the other devices give a deviation from the person's baseline. The whole history is one chunk for this.

Not read (named in the import summary, `skipped`): record types emberwatch does not use.

Several apps and devices write the same things (`sourceName`, `device`). They are resolved by priority, one
writer per night or day, never summed:
- Sleep, per night: (1) a writer with staged sleep (AsleepCore/Deep/REM: the watch), (2) one with unstaged
  `Asleep`/`AsleepUnspecified` (an app), (3) one with only `InBed` (the phone's bedtime schedule; its in-bed time
  is then the night's only estimate and is counted as asleep, with no stages). Ties: a writer whose device is a
  watch, then the more minutes asleep, then the writer's name.
- Steps, per day: (1) the watch, (2) the phone, (3) any other app; a writer whose day totals 0 gives way.
- Resting heart rate and vitals, per day/night: the watch first, then any other writer (the latest reading of
  the day for resting heart rate, the mean of the night for vitals).
Within a writer, a reading repeated exactly (same start, end and value) counts once.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import statistics
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any, Iterator

from lxml import etree

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected
from connectors.records import (DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, RecordError,
                                SleepSession)
from connectors.parse_helpers import zone_unknown
from connectors.records import SleepStage, StageSegment, build_record, storable_text

__all__ = ["AppleHealthSource", "SOURCE_NAME", "apple_time", "chunk_xml", "parse_chunk", "Skipped", "SESSION_GAP"]

SOURCE_NAME = "apple-health"

SLEEP, RESTING_HR, VITALS, STEPS, HRV_SDNN, WRIST_TEMP = (
    "sleep", "resting_hr", "vitals", "steps", "hrv_sdnn", "wrist_temperature")
UNREADABLE = "unreadable"

HK = "HKQuantityTypeIdentifier"
KIND_OF_TYPE = {
    "HKCategoryTypeIdentifierSleepAnalysis": SLEEP,
    f"{HK}RestingHeartRate": RESTING_HR,
    f"{HK}RespiratoryRate": VITALS,
    f"{HK}OxygenSaturation": VITALS,
    f"{HK}StepCount": STEPS,
    f"{HK}HeartRateVariabilitySDNN": HRV_SDNN,
    f"{HK}AppleSleepingWristTemperature": WRIST_TEMP,
}
NIGHT_KINDS = (SLEEP, VITALS, WRIST_TEMP, HRV_SDNN)  # binned by the night (noon to noon), the others by the day
SKIP_REASONS: dict[str, str] = {}  # kinds archived but not imported, with why (none today)

# A gap of 60 min or more between one writer's sleep records starts a new session. Within a night the watch
# writes short wakes as Awake segments and leaves only brief holes (a few minutes of lost contact); an hour with
# nothing recorded means the person was up (a call, a night shift), and what follows is another sleep. Joining
# them would count the hour up as time in bed and wake after sleep onset.
SESSION_GAP = timedelta(minutes=60)

# Elements cleared as they end: `Record`, and the other top-level elements of an export (a `Correlation` holds
# `Record`s of its own, blood pressure, food), which would otherwise pile up under the root.
CLEARED_TAGS = ("Record", "Correlation", "Workout", "ActivitySummary", "ClinicalRecord", "Audiogram",
                "VisionPrescription")

STAGE_OF_VALUE = {
    "HKCategoryValueSleepAnalysisAsleepCore": SleepStage.LIGHT,
    "HKCategoryValueSleepAnalysisAsleepDeep": SleepStage.DEEP,
    "HKCategoryValueSleepAnalysisAsleepREM": SleepStage.REM,
    "HKCategoryValueSleepAnalysisAwake": SleepStage.WAKE,
    "HKCategoryValueSleepAnalysisAsleep": SleepStage.ASLEEP,
    "HKCategoryValueSleepAnalysisAsleepUnspecified": SleepStage.ASLEEP,
}
IN_BED = "HKCategoryValueSleepAnalysisInBed"
STAGED = {SleepStage.LIGHT, SleepStage.DEEP, SleepStage.REM}

# Chunks are archived zlib-compressed, at the fastest level. DuckDB (2.0.1) appends to a table's last row group and
# rewrites that whole row group at every checkpoint (every 16 MB of WAL), so each checkpoint of `raw_payloads` holds
# every archived byte in memory at once: 283 MB of chunk XML from a 1 GB export made the import peak at 908 MB.
# The chunk XML compresses about 20 times at level 1 (283 -> 14 MB) for less CPU than DuckDB's own ZSTD of it.
CHUNK_ZLIB_LEVEL = 1

_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})")


@dataclass
class Skipped:
    folder: str
    reason: str


def apple_time(text: Any) -> datetime:
    """`2024-03-02 23:14:05 +0100` → an aware datetime in that offset. Anything else raises ValueError.
    The shape is checked by `_TIME`; the conversion is `datetime.fromisoformat` (C) of the same text without the space
    before the offset, 12x faster per date than building it from the match's groups in Python (every kept record's
    dates go through here: 200 MB import 28.9-29.4 -> 30.3-30.5 MB/s)."""
    if not isinstance(text, str) or not _TIME.fullmatch(text := text.strip()):
        raise ValueError(f"{storable_text(repr(text))} is not a date like 2024-03-02 23:14:05 +0100")
    if text[21:23] > "14" or text[23:25] > "59":
        raise ValueError(f"{storable_text(repr(text))} has an impossible UTC offset")
    return datetime.fromisoformat(text[:19] + text[20:])


def _night_of(local: datetime) -> date:
    return (local + timedelta(hours=12)).date()


def _writer_class(source_name: str, device: str) -> str:
    """'watch', 'phone' or 'app', from the record's `device` (`…, model:Watch, …`) or its `sourceName`."""
    text = f"{device} {source_name}".lower()
    if "watch" in text:
        return "watch"
    if "iphone" in text or "model:iphone" in text:
        return "phone"
    return "app"


# --- reading the export ----------------------------------------------------------------------------------------


def open_export(path: Path) -> tuple[Any, IO[bytes]]:
    """(the open zip or None, a binary stream of export.xml). Raises FileNotFoundError with a sentence."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"There is no {path}; point to export.zip as downloaded, or its export.xml.")
    if path.suffix.lower() == ".xml":
        return None, open(path, "rb")
    if path.suffix.lower() != ".zip":
        raise FileNotFoundError(f"{path} is neither export.zip nor export.xml; point to the Apple Health export as "
                                "downloaded.")
    archive = zipfile.ZipFile(path)
    names = [n for n in archive.namelist() if re.fullmatch(r"(?:[^/]+/)?export\.xml", n.replace("\\", "/"))]
    if not names:
        archive.close()
        raise FileNotFoundError(f"{path} holds no apple_health_export/export.xml; is it the zip the Health app "
                                "exports (profile → Export All Health Data)?")
    return archive, archive.open(sorted(names)[0])


class AppleHealthSource:
    """Reads one person's Apple Health export: `export.zip` as downloaded, or `export.xml`."""

    name = SOURCE_NAME

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        archive, stream = open_export(self.path)  # fails now, before anything is written
        stream.close()
        if archive is not None:
            archive.close()
        self.skipped: list[Skipped] = []
        self.sleep_origin: dict[str, int] = {}
        self.steps_origin: dict[str, int] = {}
        self.records_read = 0

    def payloads(self, person: PersonContext) -> Iterator[RawPayload]:
        """One payload per (type, month), built once the whole file is read (the export is not in date order).
        The records kept are spilled to a temporary file as they are read, by runs of one (type, month), so memory
        holds one payload at a time, however large the export."""
        fetched_at = datetime.now(timezone.utc)
        runs: dict[tuple[str, str], list[list[int]]] = {}  # key → [[offset, length], ...] in the spill file
        counts: dict[str, int] = {}
        other = 0
        broken: tuple[str, bytes] | None = None
        with tempfile.TemporaryFile(prefix="emberwatch-apple-") as spill:
            archive, stream = open_export(self.path)
            try:
                context = etree.iterparse(stream, events=("end",), tag=CLEARED_TAGS, huge_tree=True,
                                          resolve_entities=False, no_network=True, load_dtd=False)
                offset = 0
                try:
                    for _, element in context:
                        kind = KIND_OF_TYPE.get(element.get("type", "")) if element.tag == "Record" else None
                        if element.tag != "Record":
                            pass  # a workout, activity summary, ...: only cleared, so memory stays flat
                        elif kind is None:
                            self.records_read += 1
                            other += 1
                        else:
                            self.records_read += 1
                            counts[kind] = counts.get(kind, 0) + 1
                            key = (kind, _month_key(kind, element.get("startDate")))
                            text = etree.tostring(element, with_tail=False) + b"\n"
                            spill.write(text)
                            key_runs = runs.setdefault(key, [])
                            if key_runs and key_runs[-1][0] + key_runs[-1][1] == offset:
                                key_runs[-1][1] += len(text)  # the same run goes on
                            else:
                                key_runs.append([offset, len(text)])
                            offset += len(text)
                        element.clear(keep_tail=False)
                        parent = element.getparent()
                        if parent is not None:
                            while element.getprevious() is not None:
                                del parent[0]
                except etree.XMLSyntaxError as exc:
                    line = exc.lineno or 0
                    broken = (f"{UNREADABLE}/{line}", json.dumps({
                        "error": str(exc), "line": line, "column": exc.offset,
                        "records_read_before": self.records_read}, sort_keys=True).encode())
                except (zipfile.BadZipFile, EOFError, OSError) as exc:  # the zip member itself is cut off
                    broken = (f"{UNREADABLE}/archive", json.dumps({
                        "error": str(exc), "records_read_before": self.records_read}, sort_keys=True).encode())
            finally:
                stream.close()
                if archive is not None:
                    archive.close()
            for key in sorted(runs):
                parts = [b"<Records>\n"]
                for start, length in runs.pop(key):
                    spill.seek(start)
                    parts.append(spill.read(length))
                parts.append(b"</Records>\n")
                body = zlib.compress(b"".join(parts), CHUNK_ZLIB_LEVEL)
                yield RawPayload(person.person_id, SOURCE_NAME, f"{key[0]}/{key[1]}", body, fetched_at)
        if broken is not None:
            yield RawPayload(person.person_id, SOURCE_NAME, broken[0], broken[1], fetched_at)
        for kind in SKIP_REASONS:
            if counts.get(kind):
                self.skipped.append(Skipped(kind, f"{counts[kind]} reading(s) not imported: {SKIP_REASONS[kind]}."))
        if other:
            self.skipped.append(Skipped("other record types", (
                f"{other} record(s) of types emberwatch does not use (heart rate, energy, distance, …) were not "
                "read or archived.")))

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        """All payloads of the export whatever [start, end]: an export is not windowed."""
        return self.payloads(person)

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        """Records from one chunk. Bad content never raises: a bad record comes back in `rejected`."""
        return parse_chunk(raw, person, self.sleep_origin, self.steps_origin)


def parse_chunk(raw: RawPayload, person: PersonContext, sleep_origin: dict[str, int] | None = None,
                steps_origin: dict[str, int] | None = None) -> ParseResult:
    """Records from one archived chunk, without the export file (the synthetic demo's Apple wearer is parsed here
    too). `sleep_origin` and `steps_origin`, when given, count the nights and days by the writer chosen."""
    sleep_origin = {} if sleep_origin is None else sleep_origin
    steps_origin = {} if steps_origin is None else steps_origin
    result = ParseResult()
    kind = raw.resource.split("/", 1)[0]
    if kind == UNREADABLE:
        try:
            note = json.loads(raw.body)
            detail = f"{note.get('error')}; {note.get('records_read_before')} record(s) before it were read"
        except ValueError:
            detail = "the note about the break is unreadable too"
        result.rejected.append(Rejected(raw.resource, (
            f"{SOURCE_NAME}: export.xml breaks off or is malformed ({storable_text(detail, 300)}). Everything "
            "before the break was imported; the rest could not be read. Export again from the Health app.")))
        return result
    if zone_unknown(SOURCE_NAME, person, result, "this chunk's times cannot be placed on local dates",
                    locator=raw.resource, again="re-import"):
        return result
    try:
        elements = list(etree.fromstring(chunk_xml(raw.body), etree.XMLParser(
            resolve_entities=False, no_network=True, huge_tree=True)))
    except (etree.XMLSyntaxError, ValueError) as exc:
        result.rejected.append(Rejected(raw.resource, (
            f"the {storable_text(raw.resource)} chunk is not the XML {SOURCE_NAME} writes ({exc}); nothing "
            "from it was imported.")))
        return result
    readings = _readings(raw.resource, elements, result)
    if kind == SLEEP:
        _parse_sleep(readings, person, result, sleep_origin)
    elif kind == STEPS:
        _parse_steps(readings, person, result, steps_origin)
    elif kind == RESTING_HR:
        _parse_resting(readings, person, result)
    elif kind == VITALS:
        _parse_vitals(readings, person, result)
    elif kind == HRV_SDNN:
        _parse_sdnn(readings, person, result)
    elif kind == WRIST_TEMP:
        _parse_wrist_temperature(readings, person, result)
    elif kind not in SKIP_REASONS:  # archived on purpose, not imported (see `skipped`)
        result.rejected.append(Rejected(raw.resource, (
            f"'{storable_text(raw.resource)}' is not a resource of {SOURCE_NAME}; nothing was imported.")))
    return result


def chunk_xml(body: bytes) -> bytes:
    """The XML of an archived chunk: compressed (CHUNK_ZLIB_LEVEL), or plain as archived before. ValueError when
    it is neither, or its compressed data is cut off or followed by other bytes (a damaged chunk is refused whole,
    as damaged XML is)."""
    if body.lstrip()[:1] == b"<":
        return body
    inflater = zlib.decompressobj()
    try:
        xml = inflater.decompress(body)
    except zlib.error as exc:
        raise ValueError(f"neither XML nor compressed XML: {exc}") from None
    if not inflater.eof or inflater.unused_data:
        raise ValueError("its compressed XML is cut off or followed by other bytes")
    return xml


def _month_key(kind: str, start: str | None) -> str:
    try:
        local = apple_time(start)
    except ValueError:
        return "undated"  # archived all the same; parse rejects it with its reason
    if kind == WRIST_TEMP:
        return "all"  # a night's deviation is read against the nights before it (_parse_wrist_temperature)
    day = _night_of(local) if kind in NIGHT_KINDS else local.date()
    return f"{day.year:04d}-{day.month:02d}"


# --- parsing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    locator: str
    type: str
    writer: str
    writer_class: str
    start: datetime  # aware, in the record's own offset
    end: datetime
    value: str


def _readings(resource: str, elements: list[Any], result: ParseResult) -> list[_Reading]:
    """Every well-formed record, repeats (same writer, type, start, end and value) once."""
    seen: set[tuple] = set()
    out: list[_Reading] = []
    for index, element in enumerate(elements):
        locator = f"{storable_text(resource)}[{index}]"
        try:
            start, end = apple_time(element.get("startDate")), apple_time(element.get("endDate"))
            if end < start:
                raise ValueError("endDate is before startDate")
            value = element.get("value")
            if value is None:
                raise ValueError("the record has no value")
        except ValueError as exc:
            result.rejected.append(Rejected(locator, f"{SOURCE_NAME} at {locator}: {exc}"))
            continue
        writer = element.get("sourceName") or "(unnamed)"
        reading = _Reading(locator, element.get("type", ""), writer,
                           _writer_class(writer, element.get("device") or ""), start, end, value)
        key = (reading.writer, reading.type, start, end, value)
        if key in seen:
            continue
        seen.add(key)
        out.append(reading)
    return out


def _number(reading: _Reading, result: ParseResult) -> float | None:
    try:
        value = float(reading.value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError
        return value
    except ValueError:
        result.rejected.append(Rejected(reading.locator, (
            f"{SOURCE_NAME} at {reading.locator}: value {storable_text(repr(reading.value))} is not a number")))
        return None


CLASS_RANK = {"watch": 0, "phone": 1, "app": 2}


# sleep


@dataclass
class _Session:
    writer: str
    writer_class: str
    readings: list[_Reading]

    @property
    def stages(self) -> list[tuple[_Reading, SleepStage]]:
        return [(r, STAGE_OF_VALUE[r.value]) for r in self.readings if r.value in STAGE_OF_VALUE]

    @property
    def tier(self) -> int:
        stages = {stage for _, stage in self.stages}
        if stages & STAGED:
            return 0
        if SleepStage.ASLEEP in stages:
            return 1
        return 2

    @property
    def night(self) -> date:
        last = max(self.readings, key=lambda r: r.end)
        return last.end.date()  # the wake date, in the offset the person woke at


def _merged_seconds(intervals: list[tuple[datetime, datetime]]) -> int:
    total, current = 0.0, None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = [start, end]
        else:
            current[1] = max(current[1], end)
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return int(total)


TIER_NAMES = {0: "staged sleep (watch)", 1: "unstaged asleep (app)", 2: "in bed only (phone)"}


def _parse_sleep(readings: list[_Reading], person: PersonContext, result: ParseResult,
                 origin: dict[str, int]) -> None:
    sessions: list[_Session] = []
    by_writer: dict[str, list[_Reading]] = {}
    for reading in readings:
        if reading.value not in STAGE_OF_VALUE and reading.value != IN_BED:
            result.rejected.append(Rejected(reading.locator, (
                f"{SOURCE_NAME} at {reading.locator}: {storable_text(reading.value, 60)!r} is not a sleep value "
                "emberwatch knows")))
            continue
        if reading.end == reading.start:
            continue  # a zero-length segment holds no time
        by_writer.setdefault(reading.writer, []).append(reading)
    for writer, items in sorted(by_writer.items()):
        items.sort(key=lambda r: (r.start, r.end))
        current: list[_Reading] = []
        current_end: datetime | None = None
        for reading in items:
            if current and current_end is not None and reading.start - current_end >= SESSION_GAP:
                sessions.append(_Session(writer, current[0].writer_class, current))
                current = []
            current.append(reading)
            current_end = reading.end if current_end is None or len(current) == 1 else max(current_end, reading.end)
        if current:
            sessions.append(_Session(writer, current[0].writer_class, current))

    by_night: dict[date, list[_Session]] = {}
    for session in sessions:
        by_night.setdefault(session.night, []).append(session)
    for night in sorted(by_night):
        candidates = by_night[night]
        writers: dict[str, list[_Session]] = {}
        for session in candidates:
            writers.setdefault(session.writer, []).append(session)

        def rank(writer: str) -> tuple:
            group = writers[writer]
            asleep = sum(_merged_seconds([(r.start, r.end) for r, s in g.stages if not s.is_wake]) for g in group)
            return (min(g.tier for g in group), CLASS_RANK[group[0].writer_class] != 0, -asleep, writer)

        chosen = min(writers, key=rank)
        chosen_sessions = writers[chosen]
        tier = min(g.tier for g in chosen_sessions)
        built = []
        for session in chosen_sessions:
            try:
                built.append(_sleep_record(session, person, night))
            except RecordError as exc:
                result.rejected.append(Rejected(session.readings[0].locator, str(exc)))
        if not built:
            continue
        main = max(built, key=lambda s: (s.time_in_bed_min, s.start_utc))
        for record in built:
            result.records.append(record.model_copy(update={"is_main_sleep": record is main}))
        origin[TIER_NAMES[tier]] = origin.get(TIER_NAMES[tier], 0) + 1


def _sleep_record(session: _Session, person: PersonContext, night: date) -> SleepSession:
    start = min(r.start for r in session.readings).astimezone(timezone.utc)
    end = max(r.end for r in session.readings).astimezone(timezone.utc)
    stages = session.stages
    locator = session.readings[0].locator
    segments = []
    for reading, stage in sorted(stages, key=lambda item: item[0].start):
        seconds = int((reading.end - reading.start).total_seconds())
        if seconds > 0:
            segments.append(StageSegment(start_utc=reading.start.astimezone(timezone.utc), duration_s=seconds,
                                         stage=stage))
    time_in_bed = int((end - start).total_seconds() // 60)
    if stages:
        asleep = _merged_seconds([(r.start, r.end) for r, s in stages if not s.is_wake]) // 60
        awake = _merged_seconds([(r.start, r.end) for r, s in stages if s.is_wake]) // 60
        first_asleep = min((r.start for r, s in stages if not s.is_wake), default=None)
        latency = int((first_asleep.astimezone(timezone.utc) - start).total_seconds() // 60) if first_asleep else 0
        log_type = "stages" if session.tier == 0 else "classic"
        if log_type == "classic":
            segments = [s if s.stage != SleepStage.WAKE else s.model_copy(update={"stage": SleepStage.AWAKE})
                        for s in segments]
    else:  # in bed only: the night's only estimate, counted as asleep (module docstring)
        asleep, awake, latency, log_type = _merged_seconds(
            [(r.start, r.end) for r in session.readings]) // 60, 0, 0, "classic"
    slug = hashlib.sha256(session.writer.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return build_record(SleepSession, {
        "person_id": person.person_id, "source": SOURCE_NAME,
        "source_session_id": f"{slug}-{start:%Y%m%dT%H%M%SZ}", "night_date": night,
        "start_utc": start, "end_utc": end, "tz_name": person.tz_name, "is_main_sleep": True,
        "log_type": log_type, "minutes_asleep": min(asleep, time_in_bed), "minutes_awake": min(awake, time_in_bed),
        "minutes_to_fall_asleep": min(latency, time_in_bed), "time_in_bed_min": time_in_bed,
        "segments": tuple(segments),
    }, source=SOURCE_NAME, locator=locator)  # type: ignore[return-value]


# steps

STEP_RANK = {"watch": 0, "phone": 1, "app": 2}
STEP_NAMES = {0: "the watch", 1: "the phone", 2: "other apps"}


def _parse_steps(readings: list[_Reading], person: PersonContext, result: ParseResult,
                 origin: dict[str, int]) -> None:
    totals: dict[date, dict[tuple[int, str], float]] = {}
    for reading in readings:
        value = _number(reading, result)
        if value is None:
            continue
        if value < 0:
            result.rejected.append(Rejected(reading.locator, f"{SOURCE_NAME} at {reading.locator}: negative steps"))
            continue
        per_writer = totals.setdefault(reading.start.date(), {})
        key = (STEP_RANK[reading.writer_class], reading.writer)
        per_writer[key] = per_writer.get(key, 0) + value
    for day in sorted(totals):
        worn = [(key, steps) for key, steps in totals[day].items() if steps > 0]
        if not worn:
            continue  # every writer says 0: not worn, no value
        (rank, _), steps = min(worn, key=lambda item: (item[0][0], -item[1], item[0][1]))
        try:
            result.records.append(build_record(DailyActivity, {
                "person_id": person.person_id, "source": SOURCE_NAME, "day": day, "steps": round(steps),
            }, source=SOURCE_NAME, locator=f"steps ({day})"))
        except RecordError as exc:
            result.rejected.append(Rejected(f"steps ({day})", str(exc)))
            continue
        origin[STEP_NAMES[rank]] = origin.get(STEP_NAMES[rank], 0) + 1


# resting heart rate and vitals


def _best_writer(readings: list[_Reading]) -> str:
    return min({(CLASS_RANK[r.writer_class] != 0, r.writer) for r in readings})[1]


def _parse_resting(readings: list[_Reading], person: PersonContext, result: ParseResult) -> None:
    by_day: dict[date, list[_Reading]] = {}
    for reading in readings:
        by_day.setdefault(reading.start.date(), []).append(reading)
    for day in sorted(by_day):
        writer = _best_writer(by_day[day])
        latest = max((r for r in by_day[day] if r.writer == writer), key=lambda r: (r.start, r.end))
        value = _number(latest, result)
        if value is None:
            continue
        try:
            result.records.append(build_record(DailyRestingHeartRate, {
                "person_id": person.person_id, "source": SOURCE_NAME, "day": day, "resting_hr_bpm": value,
            }, source=SOURCE_NAME, locator=latest.locator))
        except RecordError as exc:
            result.rejected.append(Rejected(latest.locator, str(exc)))


def _best_writer_numbers(group: list[_Reading], result: ParseResult) -> list[tuple[_Reading, float]]:
    """The readings of one night (or day) by its best writer, each with its number; one that is not a number
    is quarantined with its reason."""
    writer = _best_writer(group)
    return [(reading, value) for reading in group
            if reading.writer == writer and (value := _number(reading, result)) is not None]


def _by_night(readings: list[_Reading]) -> dict[date, list[_Reading]]:
    by_night: dict[date, list[_Reading]] = {}
    for reading in readings:
        by_night.setdefault(_night_of(reading.start), []).append(reading)
    return by_night


def _parse_vitals(readings: list[_Reading], person: PersonContext, result: ParseResult) -> None:
    by_night: dict[tuple[date, str], list[_Reading]] = {}
    for reading in readings:
        by_night.setdefault((_night_of(reading.start), reading.type), []).append(reading)
    fields: dict[date, dict[str, float]] = {}
    for (night, type_), group in sorted(by_night.items()):
        values = []
        for reading, value in _best_writer_numbers(group, result):
            if type_.endswith("OxygenSaturation"):
                if not 0 < value <= 1:
                    result.rejected.append(Rejected(reading.locator, (
                        f"{SOURCE_NAME} at {reading.locator}: oxygen saturation {value} is not a fraction 0–1")))
                    continue
                value *= 100
            values.append(value)
        if values:
            name = "spo2_avg_pct" if type_.endswith("OxygenSaturation") else "breathing_rate_brpm"
            fields.setdefault(night, {})[name] = round(sum(values) / len(values), 2)
    for night in sorted(fields):
        try:
            result.records.append(build_record(NightlyVitals, {
                "person_id": person.person_id, "source": SOURCE_NAME, "night_date": night, **fields[night],
            }, source=SOURCE_NAME, locator=f"vitals ({night})"))
        except RecordError as exc:
            result.rejected.append(Rejected(f"vitals ({night})", str(exc)))


# heart-rate variability

# Apple's SDNN readings are ~1-minute recordings the watch takes when the wearer is still, several a day. A night's
# value is the mean of the readings of its noon-to-noon window from the best writer, binned as the other vitals
# are (the chunk holds no sleep, so the readings cannot be cut to the sleep itself). The Warrior Watch study
# (Hirten et al., JMIR 2021: 361 health-care workers) followed stress through these same Apple Watch SDNN readings.
# Stored as SDNN, never as RMSSD: the features give it a baseline of its own (docs/signals.md).
SDNN_PLAUSIBLE_MS = (0.0, 400.0)  # exclusive bounds, as NightlyHrv's


def _parse_sdnn(readings: list[_Reading], person: PersonContext, result: ParseResult) -> None:
    low, high = SDNN_PLAUSIBLE_MS
    for night, group in sorted(_by_night(readings).items()):
        values = []
        for reading, value in _best_writer_numbers(group, result):
            if not low < value < high:
                result.rejected.append(Rejected(reading.locator, (
                    f"{SOURCE_NAME} at {reading.locator}: an HRV (SDNN) of {value} ms is outside "
                    f"{low:.0f}–{high:.0f} ms")))
                continue
            values.append(value)
        if not values:
            continue
        try:
            result.records.append(build_record(NightlyHrv, {
                "person_id": person.person_id, "source": SOURCE_NAME, "night_date": night,
                "sdnn_ms": round(sum(values) / len(values), 2),
            }, source=SOURCE_NAME, locator=f"hrv ({night})"))
        except RecordError as exc:
            result.rejected.append(Rejected(f"hrv ({night})", str(exc)))


# wrist temperature

# Apple writes one absolute sleeping wrist temperature a night; emberwatch holds a deviation from the person's own
# baseline, as the other devices give it. The baseline is Google's for Fitbit's nightly skin temperature (the
# median of the nightly values over the past 30 days, research note §1.6.6), here of the 30 days before the night
# (tonight's value does not damp its own deviation), from at least WRIST_TEMP_MIN_NIGHTS nights (ours: a median of
# fewer is one or two nights' noise). The whole history is one chunk (_month_key), one reading a night.
WRIST_TEMP_BASELINE_DAYS = 30
WRIST_TEMP_MIN_NIGHTS = 5
WRIST_TEMP_PLAUSIBLE_C = (30.0, 42.0)  # a sleeping wrist outside this is a sensor fault, not a fever


def _parse_wrist_temperature(readings: list[_Reading], person: PersonContext, result: ParseResult) -> None:
    low, high = WRIST_TEMP_PLAUSIBLE_C
    nightly: dict[date, tuple[float, str]] = {}
    for night, group in sorted(_by_night(readings).items()):
        writer = _best_writer(group)
        # the night's main sleep: the longest reading of the writer (a nap has one of its own)
        reading = max((r for r in group if r.writer == writer), key=lambda r: (r.end - r.start, r.start))
        value = _number(reading, result)
        if value is None:
            continue
        if not low <= value <= high:
            result.rejected.append(Rejected(reading.locator, (
                f"{SOURCE_NAME} at {reading.locator}: a sleeping wrist temperature of {value} °C is outside "
                f"{low:.0f}–{high:.0f} °C")))
            continue
        nightly[night] = (value, reading.locator)
    nights = sorted(nightly)
    for index, night in enumerate(nights):
        first = bisect.bisect_left(nights, night - timedelta(days=WRIST_TEMP_BASELINE_DAYS))
        before = [nightly[d][0] for d in nights[first:index]]
        if len(before) < WRIST_TEMP_MIN_NIGHTS:
            continue  # no baseline yet: no deviation (never a deviation from nothing)
        value, locator = nightly[night]
        try:
            result.records.append(build_record(NightlyVitals, {
                "person_id": person.person_id, "source": SOURCE_NAME, "night_date": night,
                "skin_temp_deviation_c": round(value - statistics.median(before), 2),
            }, source=SOURCE_NAME, locator=locator))
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
