"""Property-based fuzzing of every parser: Fitbit export, Fitbit Web API, Google Health API v4 ("Nothing lost,
nothing leaked").

Valid payloads are built from generated records, rendered into each API's shape by the test fakes' own
renderers (tests/fake_fitbit_api.py `sleep_log`, `FakeFitbit.load_records`/`body_for`;
tests/fake_google_health.py `load_records`/`sleep_point`, every point checked against the discovery schema),
then mutated. The properties, each defined once here (benchmarks/fuzz_campaign.py runs the same ones with
many more examples):

- roundtrip: a valid payload parses into exactly the records it was rendered from (durations, minutes, stages,
  nights on the wake date), with nothing rejected.
- rejects_invalid: one item made invalid with a known bad value (missing, null, wrong type, NaN/inf, huge,
  negative, end before start, 40-hour sleep, far past/future, bad offset...) yields no record and a `Rejected`
  whose locator names the item and whose reason names the field; every other item parses exactly as without
  it.
- isolation: any mutation of one item (hostile values at any path, deleted keys, shifted times, a replaced
  item) never raises, never costs or changes what the untouched items give, and every record meets the record
  contract (connectors/records.py).
- garbage: damage to the whole payload (truncated, non-UTF-8, a list for an object, deep nesting, pages of the
  wrong shape, unknown data types, a person with a bad time zone) never raises; when it must lose data it says
  so in at least one `Rejected`.
- quarantine (end to end): through `pipelines.steps.ingest` into a real DuckDB `Store`, every rejection lands
  in the quarantine table with its reason and the payload is archived byte for byte.

CI runs the "fuzz-ci" hypothesis profile (fixed example counts, derandomized); the campaign runs
"fuzz-campaign".
"""

from __future__ import annotations

import copy
import json
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected
from connectors.fitbit_export import ACTIVITY_FILES, FitbitExportSource, local_to_utc
from connectors.fitbit_web import FitbitWebSource
from connectors.google_health import GoogleHealthSource
from connectors.records import (
    AnyRecord, DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, SleepSession, SleepStage,
    StageSegment, night_date_of_wake,
)
from connectors.synthetic import record_civil_date
from tests.fake_fitbit_api import ACTIVITY as WEB_ACTIVITY
from tests.fake_fitbit_api import FakeFitbit, sleep_log
from tests.fake_google_health import check_schema, load_records, schema

# --- hypothesis profiles ----------------------------------------------------------------------------------

CI_PROFILE = "fuzz-ci"
CAMPAIGN_PROFILE = "fuzz-campaign"
CI_EXAMPLES = 60            # per property: 52 of them, so about 3,100 payloads per CI run
CI_QUARANTINE_EXAMPLES = 15  # each one writes to DuckDB

settings.register_profile(
    CI_PROFILE, max_examples=CI_EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
    # Payload generation is deliberately large and slow-ish (rendered records), and filtering by `assume` is
    # part of the design (ambiguous local times are skipped), so these health checks would only be noise.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example],
)
settings.register_profile(CAMPAIGN_PROFILE, parent=settings.get_profile(CI_PROFILE), derandomize=False,
                          max_examples=20_000)

PERSON_ID = "fz1"
MAX_REASON_CHARS = 600  # a reason is a sentence for a person, never a dump of the payload

# --- valid records ----------------------------------------------------------------------------------------

# DST in both hemispheres, half-hour and 45-minute offsets, and a zone without DST.
ZONES = ("Europe/Oslo", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham",
         "America/St_Johns", "UTC")
FIRST_DAY, LAST_DAY = date(2001, 1, 1), date(2098, 12, 1)  # far dates, but inside the plausible range
STAGES = {"stages": (SleepStage.WAKE, SleepStage.LIGHT, SleepStage.DEEP, SleepStage.REM),
          "classic": (SleepStage.ASLEEP, SleepStage.RESTLESS, SleepStage.AWAKE)}


def _unambiguous(local_utc: datetime, tz_name: str) -> bool:
    """Fitbit writes local wall-clock times without an offset: a time in the repeated autumn hour reads back
    as its first pass (fold=0, see fitbit_export.local_to_utc), so such instants cannot round-trip."""
    local = local_utc.astimezone(ZoneInfo(tz_name)).replace(tzinfo=None)
    return local_to_utc(local, ZoneInfo(tz_name)) == local_utc


@st.composite
def sleep_sessions(draw: st.DrawFn, tz_name: str) -> list[SleepSession]:
    """1-4 sessions (main sleeps and naps, sometimes overlapping) with contiguous stage segments."""
    base = datetime.combine(draw(st.dates(FIRST_DAY, LAST_DAY)), time(0), timezone.utc)
    sessions = []
    for k in range(draw(st.integers(1, 4))):
        start = base + timedelta(minutes=draw(st.integers(0, 4 * 1440)))
        log_type = draw(st.sampled_from(("stages", "classic")))
        parts = draw(st.lists(st.tuples(st.sampled_from(STAGES[log_type]), st.integers(1, 120)),
                              min_size=1, max_size=8))  # (stage, 30-second units): up to 8 hours
        segments, at = [], start
        for stage, units in parts:
            segments.append(StageSegment(start_utc=at, duration_s=30 * units, stage=stage))
            at += timedelta(seconds=30 * units)
        end = at
        assume(_unambiguous(start, tz_name) and _unambiguous(end, tz_name))
        wake_s = sum(s.duration_s for s in segments if s.stage.is_wake)
        total_s = int((end - start).total_seconds())
        time_in_bed_min = total_s // 60
        sessions.append(SleepSession(
            person_id=PERSON_ID, source="generated", source_session_id=f"s{k}-{draw(st.integers(0, 99999))}",
            night_date=night_date_of_wake(end, tz_name), start_utc=start, end_utc=end, tz_name=tz_name,
            is_main_sleep=draw(st.booleans()), log_type=log_type,
            minutes_asleep=(total_s - wake_s) // 60, minutes_awake=min(wake_s // 60, time_in_bed_min),
            minutes_to_fall_asleep=draw(st.integers(0, min(30, time_in_bed_min))),
            time_in_bed_min=time_in_bed_min, segments=tuple(segments)))
    return sessions


def _days(draw: st.DrawFn) -> list[date]:
    base = draw(st.dates(FIRST_DAY, LAST_DAY))
    offsets = draw(st.lists(st.integers(0, 9), min_size=1, max_size=5, unique=True))
    return [base + timedelta(days=offset) for offset in offsets]


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def daily_records(draw: st.DrawFn, kind: str) -> list[AnyRecord]:
    """Records of one daily kind on 1-5 distinct days within ten days, with values in the plausible ranges."""
    out: list[AnyRecord] = []
    for day in _days(draw):
        common = {"person_id": PERSON_ID, "source": "generated"}
        if kind == "rhr":  # whole bpm: both APIs send an integer
            bpm = float(draw(st.integers(35, 120)))
            out.append(DailyRestingHeartRate(**common, day=day, resting_hr_bpm=bpm))
        elif kind == "hrv":
            rmssd_ms = st.integers(5_000, 200_000).map(lambda v: v / 1000)
            out.append(NightlyHrv(**common, night_date=day, rmssd_ms=draw(rmssd_ms),
                                  deep_rmssd_ms=draw(_maybe(rmssd_ms))))
        elif kind == "vitals":
            values = {"spo2_avg_pct": draw(_maybe(st.integers(850, 1000).map(lambda v: v / 10))),
                      "breathing_rate_brpm": draw(_maybe(st.integers(80, 300).map(lambda v: v / 10))),
                      "skin_temp_deviation_c": draw(_maybe(st.integers(-300, 300).map(lambda v: v / 100)))}
            assume(any(v is not None for v in values.values()))
            out.append(NightlyVitals(**common, night_date=day, **values))
        else:  # activity; fewer than 1,440 sedentary minutes, so never an "unworn" day
            out.append(DailyActivity(**common, day=day, steps=draw(st.integers(100, 40_000)),
                                     sedentary_min=draw(st.integers(0, 1200)),
                                     lightly_active_min=draw(st.integers(1, 600)),
                                     moderately_active_min=draw(st.integers(0, 200)),
                                     very_active_min=draw(st.integers(0, 200))))
    return out


# --- shapes: how each parser's payload is laid out ----------------------------------------------------------

DELETE = object()  # a mutation value: remove the key


@dataclass(frozen=True)
class Invalid:
    """A known bad value for one field of an item, and the words its reason must contain (any of them).
    `value` may be a function of the item (e.g. an end time before the item's own start)."""

    path: tuple[Any, ...]
    value: Any
    mentions: tuple[str, ...]


@dataclass(frozen=True)
class Stream:
    """One list of items in a payload: a file, or one data type's pages."""

    name: str                 # bundle key (data type or file stem)
    locator: str              # item i is rejected at f"{locator}[{i}]" (optionally followed by " (...)")
    invalid: tuple[Invalid, ...]
    page_key: str | None = None   # Web API / Google pages: where the item list sits in a page
    sleep: bool = False           # items are sleep logs (small time shifts are fair game)
    has_data: Callable[[Any], bool] = lambda item: True  # items without a value are never rejected


@dataclass(frozen=True)
class Shape:
    source_name: str
    resource: str
    streams: tuple[Stream, ...]
    kind: str                                          # "sleep", "rhr", "hrv", "vitals", "activity"
    render: Callable[[list[AnyRecord], str], dict[str, list[Any]]]
    encode: Callable[["Shape", dict[str, list[Any]], bool], bytes]
    expect: Callable[[AnyRecord], AnyRecord | None]     # the record the source can carry back, or None

    @property
    def key(self) -> str:
        return f"{self.source_name}:{self.resource}"

    def parse(self, body: bytes, person: PersonContext) -> ParseResult:
        raw = RawPayload(person.person_id, self.source_name, self.resource, body, datetime.now(timezone.utc))
        return parser_for(self.source_name).parse(raw, person)


# Parsing needs no folder and no tokens: the export source's constructor only checks its folder (skipped).
_PARSERS = {"fitbit-export": FitbitExportSource.__new__(FitbitExportSource),
            "fitbit-web": FitbitWebSource(tokens=None),  # type: ignore[arg-type]
            "google-health": GoogleHealthSource(tokens=None)}  # type: ignore[arg-type]


def parser_for(source_name: str) -> Any:
    return _PARSERS[source_name]


def _split(items: list[Any], two_pages: bool) -> list[list[Any]]:
    return [items[: len(items) // 2], items[len(items) // 2:]] if two_pages and len(items) > 1 else [items]


def encode_export(shape: Shape, items: dict[str, list[Any]], two_pages: bool) -> bytes:
    if shape.resource == "activity_minutes":  # the bundle FitbitExportSource writes: {stem: file text}
        bundle = {stem: json.dumps(items[stem]) for stem in items}
        return json.dumps(bundle, ensure_ascii=True).encode("ascii")
    (only,) = items.values()
    return json.dumps(only).encode()


def encode_pages(shape: Shape, items: dict[str, list[Any]], two_pages: bool) -> bytes:
    """{"<data type>": ["<page text>", ...]}, as the Web API and Google Health sources archive."""
    bundle = {}
    for stream in shape.streams:
        pages = [part if stream.page_key is None else {stream.page_key: part}
                 for part in _split(items[stream.name], two_pages)]
        bundle[stream.name] = [json.dumps(page) for page in pages]
    return json.dumps(bundle).encode()


def render_export(records: list[AnyRecord], tz_name: str) -> dict[str, list[Any]]:
    """The export's files (PMData shapes, as in tests/fixtures/pmdata_p03_excerpt). Sleep logs are the Web
    API's v1.2 logs from the fake, with the one key the export names differently."""
    sleep, rhr, minutes = [], [], {stem: [] for stem in ACTIVITY_FILES}
    for r in records:
        if isinstance(r, SleepSession):
            log = sleep_log(r, tz_name)
            log["mainSleep"] = log.pop("isMainSleep")
            sleep.append(log)
        elif isinstance(r, DailyRestingHeartRate):
            value = {"date": r.day.strftime("%m/%d/%y"), "value": r.resting_hr_bpm, "error": 6.8}
            rhr.append({"dateTime": f"{r.day} 00:00:00", "value": value})
        elif isinstance(r, DailyActivity):
            for stem, field_name in ACTIVITY_FILES.items():
                minutes[stem].append({"dateTime": f"{r.day} 00:00:00", "value": str(getattr(r, field_name))})
    return {"sleep": sleep, "resting_heart_rate": rhr, **minutes}


_WEB_KINDS = {"sleep": ("sleep",), "heart": ("heart",), "hrv": ("hrv",), "vitals": ("br", "spo2", "temp"),
              "activity": WEB_ACTIVITY}


def render_web(records: list[AnyRecord], tz_name: str) -> dict[str, list[Any]]:
    """Items as the fake Web API serves them (FakeFitbit.body_for, called on a plain namespace: no server)."""
    fake = SimpleNamespace(tz_name=tz_name, sleep={}, heart={}, hrv={}, br={}, spo2={}, temp={},
                           activity={resource: {} for resource in WEB_ACTIVITY})
    FakeFitbit.load_records(fake, records)  # type: ignore[arg-type]
    first, last = min(map(record_civil_date, records)), max(map(record_civil_date, records))
    items = {}
    for kind in (k for kinds in _WEB_KINDS.values() for k in kinds):
        page = FakeFitbit.body_for(fake, kind, first, last)  # type: ignore[arg-type]
        items[kind] = page if isinstance(page, list) else next(iter(page.values()))
    return items


def render_google(records: list[AnyRecord], tz_name: str) -> dict[str, list[Any]]:
    """Data points as the fake Google Health serves them (fake_google_health.load_records, schema-checked)."""
    points: dict[str, list[Any]] = defaultdict(list)

    def add_point(data_type: str, sort_key: datetime, civil: date, point: dict) -> None:
        check_schema(point, schema("DataPoint"))
        points[data_type].append(point)

    def add_rollup(data_type: str, day: date, point: dict) -> None:
        check_schema(point, schema("DailyRollupDataPoint"))
        points[data_type].append(point)

    sink = SimpleNamespace(add_point=add_point, add_rollup=add_rollup)
    load_records(sink, records)  # type: ignore[arg-type]
    return points


def _same(r: AnyRecord) -> AnyRecord:
    return r


def _web_expect(r: AnyRecord) -> AnyRecord:
    if isinstance(r, NightlyHrv):  # the fake fills deepRmssd with the nightly value when there is none
        return r.model_copy(update={"deep_rmssd_ms": r.deep_rmssd_ms or r.rmssd_ms})
    return r


def _google_expect(r: AnyRecord) -> AnyRecord:
    if isinstance(r, DailyActivity):  # Google has no sedentary minutes
        return r.model_copy(update={"sedentary_min": None})
    return r


def _export_expect(r: AnyRecord) -> AnyRecord:
    if isinstance(r, DailyActivity):  # the export copy has no daily steps file
        return r.model_copy(update={"steps": None})
    return r


# Bad values shared by several fields; the mention is the record field (or wire field) the reason must name.
def _bad_numbers(path: tuple[Any, ...], *mentions: str, extra: tuple[Any, ...] = (),
                 negative: Any = -5) -> tuple[Invalid, ...]:
    values = (negative, "abc", math.nan, math.inf, -math.inf, 10**30, 1e300, True, [1], {"a": 1}, *extra)
    return tuple(Invalid(path, value, mentions) for value in values)


def _bad_datetime_texts(path: tuple[Any, ...], *mentions: str) -> tuple[Invalid, ...]:
    values = (DELETE, None, 12345, "yesterday", "2020-13-45T00:00:00", "0001-01-01T00:00:00",
              "\udcff2020-01-01",
              "9999-12-31T23:59:59", "2399-06-01T00:00:00.000", "1899-12-31 23:00:00", [], {})
    return tuple(Invalid(path, value, mentions) for value in values)


def _shift(key: str, base_key: str, delta: timedelta) -> Callable[[dict], str]:
    """A date-time text `delta` after another field's reading, in Fitbit's local reading format."""
    def value(item: dict) -> str:
        reading = datetime.fromisoformat(item[base_key]) + delta
        return reading.strftime("%Y-%m-%dT%H:%M:%S.000")
    return value


def _fitbit_sleep_invalid(main_key: str) -> tuple[Invalid, ...]:
    def shift_segment(days: int) -> Callable[[dict], dict]:
        def value(item: dict) -> dict:
            first = dict(item["levels"]["data"][0])
            first["dateTime"] = (datetime.fromisoformat(first["dateTime"]) + timedelta(days=days)).strftime(
                "%Y-%m-%dT%H:%M:%S.000")
            return first
        return value

    return (
        *_bad_datetime_texts(("startTime",), "startTime"),
        *_bad_datetime_texts(("endTime",), "endTime"),
        Invalid(("endTime",), _shift("endTime", "startTime", timedelta(minutes=-1)),
                ("end_utc must be after",)),
        Invalid(("endTime",), _shift("endTime", "startTime", timedelta(hours=40)), ("24 hours",)),  # 40 h
        Invalid(("endTime",), _shift("endTime", "endTime", timedelta(days=300 * 365)), ("endTime",)),
        *_bad_numbers(("minutesAsleep",), "minutes_asleep", extra=(None, 1441, "2000")),
        *_bad_numbers(("minutesAwake",), "minutes_awake", extra=(None, 100_000)),
        *_bad_numbers(("timeInBed",), "time_in_bed_min", extra=(None, -1)),
        *_bad_numbers(("minutesToFallAsleep",), "minutes_to_fall_asleep"),
        Invalid(("type",), "dreaming", ("log_type",)), Invalid(("type",), None, ("log_type",)),
        Invalid((main_key,), "perhaps", ("is_main_sleep", main_key)),
        Invalid((main_key,), [], ("is_main_sleep", main_key)),
        Invalid(("logId",), None, ("logId",)), Invalid(("logId",), [], ("logId",)),
        Invalid(("logId",), {"id": 1}, ("logId",)), Invalid(("logId",), True, ("logId",)),
        # a lone surrogate is valid JSON but not storable text: refused, and the locator must stay storable
        Invalid(("logId",), "\udcff", ("logId", "source_session_id")),
        Invalid(("levels",), None, ("levels",)), Invalid(("levels",), "x", ("levels",)),
        Invalid(("levels",), {"data": "x"}, ("levels",)),
        *_bad_numbers(("levels", "data", 0, "seconds"), "duration_s", extra=(0, 10**9)),
        Invalid(("levels", "data", 0, "level"), "sleepy", ("stage",)),
        Invalid(("levels", "data", 0, "dateTime"), "garbage", ("dateTime",)),
        Invalid(("levels", "data", 0, "dateTime"), "2399-01-01T00:00:00.000", ("dateTime",)),
        Invalid(("levels", "data", 0), shift_segment(3), ("segments[0] lies outside",)),
        Invalid(("levels", "data", 0), None, ("levels.data[0]",)),
        Invalid(("dateOfSleep",), "not a date", ("dateOfSleep",)),
        *(Invalid((), value, ("expected an object",)) for value in (None, 5, "log", [])),
    )


def _web_daily_invalid(value_path: tuple[Any, ...], record_field: str, *extra: Any,
                       negative: Any = -5) -> tuple[Invalid, ...]:
    return (
        *_bad_numbers(value_path, record_field, extra=extra, negative=negative),
        Invalid(("dateTime",), "garbage", ("dateTime",)), Invalid(("dateTime",), DELETE, ("dateTime",)),
        Invalid(("dateTime",), "\udcff", ("dateTime",)),
        Invalid(("dateTime",), "2399-01-01", ("plausible",)),
        Invalid(("dateTime",), "1970-01-01", ("plausible",)),
        Invalid(("value",), "x", ("value",)), Invalid(("value",), [1], ("value",)),
        *(Invalid((), value, ("dateTime",)) for value in (None, 5, "x", [])),
    )


def _web_activity_invalid(record_field: str) -> tuple[Invalid, ...]:
    return (
        *(Invalid(("value",), value, (record_field,)) for value in ("-5", "1e9", -5, 10**30, [1], {"a": 1})),
        *(Invalid(("value",), value, ("'value'",)) for value in ("abc", "inf", "NaN", "", None, DELETE)),
        Invalid(("dateTime",), "garbage", ("dateTime",)),
        Invalid(("dateTime",), "2399-01-01", ("plausible",)),
        *(Invalid((), value, ("dateTime",)) for value in (None, 5, "x", [])),
    )


def _google_date_invalid(path: tuple[Any, ...], field_name: str) -> tuple[Invalid, ...]:
    return (
        Invalid(path, {"year": 2026, "month": 2, "day": 30}, (field_name,)),
        Invalid(path, {"year": 2026, "month": 13}, (field_name,)),
        Invalid(path, {"year": math.inf, "month": 1, "day": 1}, (field_name,)),
        Invalid(path, {"year": True, "month": 1, "day": 1}, (field_name,)),
        Invalid(path, {"year": "2026", "month": 1, "day": 1}, (field_name,)),
        Invalid(path, "2026-01-01", (field_name,)), Invalid(path, DELETE, (field_name,)),
        Invalid(path, {"year": 2399, "month": 1, "day": 1}, ("plausible",)),
        Invalid(path, {"year": 1970, "month": 1, "day": 1}, ("plausible",)),
    )


def _google_daily_invalid(member: str, value_key: str, record_field: str, *extra: Any) -> tuple[Invalid, ...]:
    return (
        *_bad_numbers((member, value_key), record_field, value_key, extra=extra),
        *_google_date_invalid((member, "date"), "date"),
        Invalid((member,), None, (member,)), Invalid((member,), "x", (member,)),
        *(Invalid((), value, ("data point",)) for value in (None, 5, "x", [])),
    )


def _utc_text(at: datetime) -> str:
    """An instant as RFC 3339 in UTC (the items may carry any offset: see equivalent_instant)."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _google_sleep_invalid() -> tuple[Invalid, ...]:
    interval = ("sleep", "interval")

    def instant_shift(base: str, delta: timedelta) -> Callable[[dict], str]:
        def value(point: dict) -> str:
            at = datetime.fromisoformat(point["sleep"]["interval"][base].replace("Z", "+00:00")) + delta
            return _utc_text(at)
        return value

    def stage_shift(days: int) -> Callable[[dict], dict]:
        def value(point: dict) -> dict:
            stage = dict(point["sleep"]["stages"][0])
            for key in ("startTime", "endTime"):
                at = datetime.fromisoformat(stage[key].replace("Z", "+00:00")) + timedelta(days=days)
                stage[key] = _utc_text(at)
            return stage
        return value

    def stage_backwards(point: dict) -> dict:
        stage = dict(point["sleep"]["stages"][0])
        stage["startTime"], stage["endTime"] = stage["endTime"], stage["startTime"]
        return stage

    def civil_end_days(days: int) -> Callable[[dict], dict]:
        def value(point: dict) -> dict:
            end = datetime.fromisoformat(point["sleep"]["interval"]["endTime"].replace("Z", "+00:00"))
            day = end.astimezone(timezone.utc).date() + timedelta(days=days)
            return {"date": {"year": day.year, "month": day.month, "day": day.day}}
        return value

    bad_instants = (DELETE, None, 12, "garbage", "2026-01-01T00:00:00", "2399-01-01T00:00:00Z",
                    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", [], {})
    return (
        *(Invalid((*interval, "startTime"), v, ("interval.startTime",)) for v in bad_instants),
        *(Invalid((*interval, "endTime"), v, ("interval.endTime",)) for v in bad_instants),
        Invalid((*interval, "endTime"), instant_shift("startTime", timedelta(hours=-1)),
                ("end_utc must be after",)),
        Invalid((*interval, "endTime"), instant_shift("startTime", timedelta(0)), ("end_utc must be after",)),
        # 40 hours: time in bed is derived from the interval, so its 24-hour bound is what names it
        Invalid((*interval, "endTime"), instant_shift("startTime", timedelta(hours=40)),
                ("24 hours", "time_in_bed_min")),
        *(Invalid((*interval, "endUtcOffset"), v, ("interval.endUtcOffset",))
          for v in ("banana", "99999999s", "NaNs", "infs", "-1e400s", 3600, [])),
        Invalid((*interval, "civilEndTime"), civil_end_days(5), ("interval.civilEndTime.date",)),
        Invalid((*interval, "civilEndTime"), {"date": {"year": 2026, "month": 13, "day": 1}},
                ("interval.civilEndTime.date",)),
        Invalid((*interval, "civilEndTime"), "x", ("interval.civilEndTime",)),
        Invalid(interval, "x", ("interval",)),
        *_bad_numbers(("sleep", "summary", "minutesAsleep"), "minutesAsleep", "minutes_asleep",
                      extra=("-5",)),
        Invalid(("sleep", "summary", "minutesAwake"), "100000", ("minutes_awake",)),
        Invalid(("sleep", "summary", "minutesToFallAsleep"), "-3", ("minutes_to_fall_asleep",)),
        Invalid(("sleep", "summary"), "x", ("summary",)),
        Invalid(("sleep", "metadata", "mainSleep"), "false", ("metadata.mainSleep",)),
        Invalid(("sleep", "metadata"), [1], ("metadata",)),
        Invalid(("sleep", "stages", 0, "startTime"), "garbage", ("stages[0]",)),
        Invalid(("sleep", "stages", 0), stage_backwards, ("stages[0]",)),
        Invalid(("sleep", "stages", 0), stage_shift(3), ("segments[0] lies outside",)),
        Invalid(("sleep", "stages", 0), "x", ("stages[0]",)),
        Invalid(("sleep", "stages"), "x", ("stages",)),
        Invalid(("sleep",), None, ("sleep",)), Invalid(("sleep",), [], ("sleep",)),
        Invalid(("name",), 5, ("name",)),
        Invalid(("name",), "users/1/dataTypes/sleep/dataPoints/\udcff", ("source_session_id",)),
        *(Invalid((), value, ("data point",)) for value in (None, 5, "x", [])),
    )


def _google_activity_invalid(name: str) -> tuple[Invalid, ...]:
    common = (*_google_date_invalid(("civilStartTime", "date"), "civilStartTime.date"),
              Invalid(("civilStartTime",), "x", ("civilStartTime",)),
              *(Invalid((), value, ("data point",)) for value in (None, 5, "x", [])))
    if name == "steps":
        return (*common, *(Invalid(("steps", "countSum"), v, ("steps.countSum",))
                           for v in ("abc", 1.5, True, math.inf, [])),
                *(Invalid(("steps", "countSum"), v, ("steps",)) for v in ("-5", "1000000")))
    levels = ("activeMinutes", "activeMinutesRollupByActivityLevel")
    return (*common, *(Invalid((*levels, 0, "activeMinutesSum"), v, ("activeMinutesSum",))
                       for v in ("abc", 1.5, True, math.nan, [])),
            *(Invalid((*levels, 0, "activeMinutesSum"), v, ("active_min",)) for v in ("-5", "5000")),
            Invalid(levels, "x", ("activeMinutesRollupByActivityLevel",)),
            Invalid((*levels, 0), 5, ("activeMinutesRollupByActivityLevel[0]",)))


def _export_daily_invalid(record_field: str, value_path: tuple[Any, ...], *extra: Any) -> tuple[Invalid, ...]:
    return (
        *_bad_numbers(value_path, record_field, extra=extra),
        *(Invalid(("dateTime",), v, ("dateTime",))
          for v in (DELETE, None, 5, "garbage", "2399-01-01 00:00:00", "1970-01-01 00:00:00", "\udcff\x00")),
        *(Invalid((), value, ("expected an object",)) for value in (None, 5, "x", [])),
    )


def _has(path: tuple[Any, ...]) -> Callable[[Any], bool]:
    def check(item: Any) -> bool:
        return _get(item, path) is not _MISSING
    return check


SHAPES: tuple[Shape, ...] = (
    # Fitbit account export
    Shape("fitbit-export", "sleep",
          (Stream("sleep", "sleep.json", _fitbit_sleep_invalid("mainSleep"), sleep=True),),
          "sleep", render_export, encode_export, _same),
    Shape("fitbit-export", "resting_heart_rate",
          (Stream("resting_heart_rate", "resting_heart_rate.json",
                  (*_export_daily_invalid("resting_hr_bpm", ("value", "value"), 10_000, 5.0, None),
                   Invalid(("value",), "x", ("value",)), Invalid(("value",), DELETE, ("value",)))),),
          "rhr", render_export, encode_export, _same),
    Shape("fitbit-export", "activity_minutes",
          tuple(Stream(stem, f"{stem}.json", _export_daily_invalid(field_name, ("value",), "-5", "1441"))
                for stem, field_name in ACTIVITY_FILES.items()),
          "activity", render_export, encode_export, _export_expect),
    # Fitbit Web API (legacy)
    Shape("fitbit-web", "sleep", (Stream("sleep", "sleep", _fitbit_sleep_invalid("isMainSleep"), "sleep",
                                         sleep=True),), "sleep", render_web, encode_pages, _same),
    Shape("fitbit-web", "heart",
          (Stream("heart", "activities-heart",
                  _web_daily_invalid(("value", "restingHeartRate"), "resting_hr_bpm", 10_000, 5),
                  "activities-heart", has_data=_has(("value", "restingHeartRate"))),),
          "rhr", render_web, encode_pages, _same),
    Shape("fitbit-web", "hrv",
          (Stream("hrv", "hrv", _web_daily_invalid(("value", "dailyRmssd"), "rmssd_ms", 500), "hrv"),),
          "hrv", render_web, encode_pages, _web_expect),
    Shape("fitbit-web", "vitals", (
        Stream("br", "br", _web_daily_invalid(("value", "breathingRate"), "breathing_rate_brpm", 100), "br"),
        Stream("spo2", "spo2", _web_daily_invalid(("value", "avg"), "spo2_avg_pct", 20, 101)),
        Stream("temp", "temp", _web_daily_invalid(("value", "nightlyRelative"), "skin_temp_deviation_c", 50,
                                                 negative=-11),
               "tempSkin"),
    ), "vitals", render_web, encode_pages, _same),
    Shape("fitbit-web", "activity", tuple(
        Stream(resource, f"activities-{resource}",
               _web_activity_invalid({"steps": "steps", "minutesSedentary": "sedentary_min",
                                      "minutesLightlyActive": "lightly_active_min",
                                      "minutesFairlyActive": "moderately_active_min",
                                      "minutesVeryActive": "very_active_min"}[resource]),
               f"activities-{resource}") for resource in WEB_ACTIVITY),
          "activity", render_web, encode_pages, _same),
    # Google Health API v4
    Shape("google-health", "sleep",
          (Stream("sleep", "sleep", _google_sleep_invalid(), "dataPoints", sleep=True),),
          "sleep", render_google, encode_pages, _same),
    Shape("google-health", "daily-resting-heart-rate", (
        Stream("daily-resting-heart-rate", "daily-resting-heart-rate",
               _google_daily_invalid("dailyRestingHeartRate", "beatsPerMinute", "resting_hr_bpm", "10000",
                                     7.5),
               "dataPoints"),), "rhr", render_google, encode_pages, _same),
    Shape("google-health", "daily-heart-rate-variability", (
        Stream("daily-heart-rate-variability", "daily-heart-rate-variability",
               _google_daily_invalid("dailyHeartRateVariability", "averageHeartRateVariabilityMilliseconds",
                                     "rmssd_ms", 1000), "dataPoints"),),
          "hrv", render_google, encode_pages, _same),
    Shape("google-health", "vitals", (
        Stream("daily-oxygen-saturation", "daily-oxygen-saturation",
               _google_daily_invalid("dailyOxygenSaturation", "averagePercentage", "spo2_avg_pct", 20),
               "dataPoints"),
        Stream("daily-respiratory-rate", "daily-respiratory-rate",
               _google_daily_invalid("dailyRespiratoryRate", "breathsPerMinute", "breathing_rate_brpm", 100),
               "dataPoints"),
        Stream("daily-sleep-temperature-derivations", "daily-sleep-temperature-derivations",
               (*_google_daily_invalid("dailySleepTemperatureDerivations", "nightlyTemperatureCelsius",
                                       "skin_temp_deviation_c", 80.0),
                Invalid(("dailySleepTemperatureDerivations", "baselineTemperatureCelsius"), "x",
                        ("baselineTemperatureCelsius",))), "dataPoints"),
    ), "vitals", render_google, encode_pages, _same),
    Shape("google-health", "activity", (
        Stream("steps", "steps", _google_activity_invalid("steps"), "rollupDataPoints"),
        Stream("active-minutes", "active-minutes", _google_activity_invalid("active-minutes"),
               "rollupDataPoints", has_data=_has(("activeMinutes", "activeMinutesRollupByActivityLevel", 0))),
    ), "activity", render_google, encode_pages, _google_expect),
)
SHAPES_BY_KEY = {shape.key: shape for shape in SHAPES}


# --- cases ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A valid payload of one shape: its items per stream and the records it must parse into."""

    shape: Shape
    person: PersonContext
    items: dict[str, list[Any]]
    expected: tuple[AnyRecord, ...]
    two_pages: bool

    def body(self, items: dict[str, list[Any]] | None = None) -> bytes:
        return self.shape.encode(self.shape, self.items if items is None else items, self.two_pages)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer: keep reports short
        printer.text(repr(self))

    def __repr__(self) -> str:  # hypothesis prints falsifying examples with this
        return f"Case({self.shape.key}, tz={self.person.tz_name}, body={self.body()[:2000]!r})"


def equivalent_instant(text: str, offset_min: int, zero_digits: int) -> str:
    """The same instant written another RFC 3339 way: in another UTC offset, with a fraction of zeros (Google
    sends up to nanoseconds). Parsers must read it as the same instant."""
    zone = timezone(timedelta(minutes=offset_min))
    at = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone)
    sign, minutes = ("-" if offset_min < 0 else "+"), abs(offset_min)
    fraction = "." + "0" * zero_digits if zero_digits else ""
    return f"{at:%Y-%m-%dT%H:%M:%S}{fraction}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _rewrite_instants(point: Any, offset_min: int, zero_digits: int) -> Any:
    if isinstance(point, dict):
        return {key: equivalent_instant(value, offset_min, zero_digits)
                if key in ("startTime", "endTime") and isinstance(value, str)
                else _rewrite_instants(value, offset_min, zero_digits) for key, value in point.items()}
    if isinstance(point, list):
        return [_rewrite_instants(value, offset_min, zero_digits) for value in point]
    return point


@st.composite
def valid_cases(draw: st.DrawFn, shape: Shape) -> Case:
    tz_name = draw(st.sampled_from(ZONES))
    if shape.kind == "sleep":
        records: list[AnyRecord] = list(draw(sleep_sessions(tz_name)))
    else:
        records = draw(daily_records(shape.kind))
    rendered = shape.render(records, tz_name)
    items = {stream.name: rendered[stream.name] for stream in shape.streams}
    if shape.source_name == "google-health" and shape.kind == "sleep" and draw(st.booleans()):
        offset_min, zero_digits = draw(st.integers(-14 * 60, 14 * 60)), draw(st.integers(0, 9))
        items = {name: _rewrite_instants(points, offset_min, zero_digits) for name, points in items.items()}
    expected = tuple(e for e in map(shape.expect, records) if e is not None)
    return Case(shape, PersonContext(PERSON_ID, tz_name), items, expected, draw(st.booleans()))


# --- mutations --------------------------------------------------------------------------------------------

_MISSING = object()


def _get(item: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        if isinstance(step, int) and isinstance(item, list) and 0 <= step < len(item):
            item = item[step]
        elif isinstance(step, str) and isinstance(item, dict) and step in item:
            item = item[step]
        else:
            return _MISSING
    return item


def apply_mutation(item: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of `item` with `value` at `path` (DELETE removes the key; a callable gets the item), or
    _MISSING when the path's parent does not exist in this item."""
    if callable(value):
        value = value(item)
    if not path:
        return _MISSING if value is DELETE else copy.deepcopy(value)
    mutated = copy.deepcopy(item)
    parent = _get(mutated, path[:-1])
    last = path[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        if value is DELETE:
            if last not in parent:
                return _MISSING
            del parent[last]
        else:
            parent[last] = copy.deepcopy(value)
        return mutated
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent) and value is not DELETE:
        parent[last] = copy.deepcopy(value)
        return mutated
    return _MISSING


def _paths(item: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path inside a JSON value (the value itself first)."""
    out = [prefix]
    if isinstance(item, dict):
        for key, value in item.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(item, list):
        for index, value in enumerate(item[:4]):  # the first few entries of a list are enough
            out.extend(_paths(value, (*prefix, index)))
    return out


# Hostile values for any field: wrong types, NaN/inf, huge and negative numbers, far dates, bad zones and
# text that is not valid UTF-8 once encoded (a lone surrogate), deep nesting.
HOSTILE_VALUES = (
    None, True, False, 0, -1, -86_400, 2**63, -(2**63), 10**30, 1e308, -1e308, math.nan, math.inf, -math.inf,
    0.5, "", " ", "abc", "NaN", "Infinity", "-5", "1e999", "9" * 60, "0001-01-01T00:00:00",
    "9999-12-31T23:59:59.999Z",
    "2399-06-01T00:00:00Z", "1899-12-31 00:00:00", "2026-02-30", "\udcff\x00", "Mars/Olympus_Mons", [], {},
    [None], {"": None}, [[[[[[[[]]]]]]]], {"year": 10**20, "month": -1, "day": "x"},
)
# Time shifts: minutes to centuries, forwards and backwards. Small ones only on sleep items: moving a daily
# item onto another item's day is a relation between items, not damage to one.
SMALL_SHIFTS = (timedelta(minutes=-1), timedelta(hours=-2), timedelta(hours=40), timedelta(days=3))
HUGE_SHIFTS = (timedelta(days=300 * 365), -timedelta(days=300 * 365), timedelta(days=3_000_000))


def _shifted(text: str, delta: timedelta) -> Any:
    try:
        reading = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (reading + delta).isoformat()
    except (ValueError, OverflowError):
        return _MISSING


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)


def any_json(max_leaves: int) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values: any number (huge, NaN, inf), text, nesting."""
    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
    return st.recursive(leaves, _json_containers, max_leaves=max_leaves)


@st.composite
def hostile_mutation(draw: st.DrawFn, item: Any, sleep: bool) -> Any:
    """One item after one mutation: a hostile value at any path, a deleted key, or a shifted time."""
    paths = _paths(item)
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(("value", "value", "delete", "shift", "json")))
    target = _get(item, path)
    if op == "delete":
        value: Any = DELETE
    elif op == "shift" and isinstance(target, str):
        value = _shifted(target, draw(st.sampled_from(SMALL_SHIFTS + HUGE_SHIFTS if sleep else HUGE_SHIFTS)))
    elif op == "json":
        value = draw(any_json(max_leaves=6))
    else:
        value = draw(st.sampled_from(HOSTILE_VALUES))
    assume(value is not _MISSING)
    mutated = apply_mutation(item, path, value)
    assume(mutated is not _MISSING)
    return mutated


@dataclass(frozen=True)
class ItemMutation:
    """A valid case with item `index` of `stream` replaced by `mutated` (and, if curated, the Invalid)."""

    case: Case
    stream: Stream
    index: int
    mutated: Any
    invalid: Invalid | None

    def items(self, mutated: bool = True) -> dict[str, list[Any]]:
        items = {name: list(values) for name, values in self.case.items.items()}
        if mutated:
            items[self.stream.name][self.index] = self.mutated
        else:
            del items[self.stream.name][self.index]
        return items

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        what = f"{self.invalid.path}={self.invalid.value!r}" if self.invalid else repr(self.mutated)[:800]
        return f"ItemMutation({self.case!r}, {self.stream.name}[{self.index}] <- {what})"


@st.composite
def item_mutations(draw: st.DrawFn, shape: Shape, curated: bool) -> ItemMutation:
    case = draw(valid_cases(shape))
    stream = draw(st.sampled_from([s for s in shape.streams if case.items[s.name]] or [shape.streams[0]]))
    candidates = [i for i, item in enumerate(case.items[stream.name]) if not curated or stream.has_data(item)]
    assume(candidates)
    index = draw(st.sampled_from(candidates))
    item = case.items[stream.name][index]
    if curated:
        invalid = draw(st.sampled_from(stream.invalid))
        mutated = apply_mutation(item, invalid.path, invalid.value)
        assume(mutated is not _MISSING)
        return ItemMutation(case, stream, index, mutated, invalid)
    return ItemMutation(case, stream, index, draw(hostile_mutation(item, stream.sleep)), None)


# --- what a parse gives, as comparable facts ----------------------------------------------------------------


def facts(records: list[AnyRecord]) -> set[tuple[str, str, str, str]]:
    """Records as (kind, key, field, value) facts, so that "what the other items gave" can be compared even
    when several items feed one record (a day's activity, a night's vitals). Source names and Fitbit's log ids
    differ by source and are left out; the session's start instant keys a sleep."""
    out = set()
    for record in records:
        data = record.model_dump(mode="json", exclude={"source", "source_session_id"})
        key = str(data.get("start_utc") or data.get("night_date") or data.get("day"))
        for name, value in data.items():
            if value is not None:
                out.add((record.kind, key, name, json.dumps(value, sort_keys=True)))
    return out


def _is_item_locator(locator: str, stream: Stream, index: int) -> bool:
    prefix = f"{stream.locator}[{index}]"
    return locator == prefix or locator.startswith(prefix + " ")


def assert_well_formed(result: ParseResult) -> None:
    """Every rejection says where and why in a sentence; every record meets the record contract."""
    for rejected in result.rejected:
        assert isinstance(rejected, Rejected)
        assert isinstance(rejected.locator, str) and rejected.locator.strip(), rejected
        assert isinstance(rejected.reason, str) and len(rejected.reason) > 20, rejected
        assert len(rejected.reason) <= MAX_REASON_CHARS, rejected
        rejected.locator.encode("utf-8")  # both end up in DuckDB text columns
        rejected.reason.encode("utf-8")
    for record in result.records:
        type(record).model_validate(record.model_dump())  # model_copy skips validation: check again


# --- the properties ---------------------------------------------------------------------------------------


def prop_roundtrip(case: Case) -> None:
    """Valid payloads parse into exactly their records: values equal, sleeps on their wake date."""
    result = case.shape.parse(case.body(), case.person)
    assert result.rejected == []
    assert_well_formed(result)
    assert facts(result.records) == facts(list(case.expected))
    for record in result.records:
        assert record.person_id == PERSON_ID and record.source == case.shape.source_name
        if isinstance(record, SleepSession):
            assert record.night_date == record.end_utc.astimezone(ZoneInfo(case.person.tz_name)).date()
            assert record.time_in_bed_min == int((record.end_utc - record.start_utc).total_seconds() // 60)


def prop_rejects_invalid(m: ItemMutation) -> None:
    """A known-invalid item gives no record, a rejection naming the item and field, and costs nobody else."""
    mutated = m.case.shape.parse(m.case.body(m.items()), m.case.person)
    without = m.case.shape.parse(m.case.body(m.items(mutated=False)), m.case.person)
    assert_well_formed(mutated)
    assert facts(mutated.records) == facts(without.records)
    assert m.invalid is not None
    ours = [r for r in mutated.rejected if _is_item_locator(r.locator, m.stream, m.index)]
    assert ours, f"no rejection at {m.stream.locator}[{m.index}]: {mutated.rejected}"
    assert any(word in r.reason for r in ours for word in m.invalid.mentions), (m.invalid.mentions, ours)


def prop_isolation(m: ItemMutation) -> None:
    """Any damage to one item never raises and never costs or changes what the untouched items give.

    When the mutated item still parses into a record of its own (a changed but valid value), it may land on
    another item's day or night: two values for one day is a conflict between items, not damage to one, so
    the days and nights the mutated item claims by itself are left out of the comparison."""
    mutated = m.case.shape.parse(m.case.body(m.items()), m.case.person)
    without = m.case.shape.parse(m.case.body(m.items(mutated=False)), m.case.person)
    alone_items = {name: [] for name in m.case.items}
    alone_items[m.stream.name] = [m.mutated]
    alone = m.case.shape.parse(m.case.body(alone_items), m.case.person)
    assert_well_formed(mutated)
    assert_well_formed(alone)
    claimed = {fact[:2] for fact in facts(alone.records)}
    kept = {fact for fact in facts(without.records) if fact[:2] not in claimed}
    assert kept <= facts(mutated.records)


# Whole-payload damage. Each: (name, function of the body and the case, must the parse reject something?)
def _truncate(body: bytes, at: int) -> bytes:
    return body[: max(0, min(at, len(body) - 1))]


def _insert(body: bytes, at: int, junk: bytes) -> bytes:
    at = min(at, len(body))
    return body[:at] + junk + body[at:]


def _damage_pages(case: Case, page: Any) -> bytes:
    """Every page of the first stream replaced (Web API / Google bundles) or, for an export file, its text."""
    if case.shape.source_name == "fitbit-export" and case.shape.resource != "activity_minutes":
        return page.encode("utf-8", errors="surrogateescape")
    bundle = json.loads(case.body())
    first = case.shape.streams[0].name
    bundle[first] = [page for _ in bundle[first]] if isinstance(bundle[first], list) else page
    return json.dumps(bundle).encode()


@dataclass(frozen=True)
class PayloadDamage:
    case: Case
    name: str
    body: bytes
    person: PersonContext
    must_reject: bool

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        return (f"PayloadDamage({self.case.shape.key}, {self.name}, tz={self.person.tz_name!r}, "
                f"body={self.body[:600]!r})")


BAD_ZONES = ("", "Mars/Olympus_Mons", "America", "a" * 300, "../../etc/passwd", "UTC\x00", "Europe/Oslo ")
DEEP = 100_000


@st.composite
def payload_damage(draw: st.DrawFn, shape: Shape) -> PayloadDamage:
    case = draw(valid_cases(shape))
    body = case.body()
    at = draw(st.integers(0, max(0, len(body) - 1)))
    bundled = shape.source_name != "fitbit-export" or shape.resource == "activity_minutes"
    kind = draw(st.sampled_from((
        "truncate", "non-utf8", "empty", "null", "list-for-object", "deep-list", "deep-object", "random-json",
        "utf16", "nul-bytes", "page-truncated", "page-null", "page-list", "page-string", "page-deep",
        "page-wrong-key", "pages-not-a-list", "unknown-type", "bad-zone",
    )))
    person, must_reject = case.person, True
    if kind == "truncate":
        damaged = _truncate(body, at)
    elif kind == "non-utf8":
        junk = draw(st.sampled_from((b"\xff", b"\xc3\x28", b"\x80\x80", b"\xed\xa0\x80")))
        damaged = _insert(body, at, junk)
        # json.loads decodes with surrogatepass: an encoded lone surrogate inside a string is still JSON.
        must_reject = junk != b"\xed\xa0\x80"
    elif kind == "empty":
        damaged = b""
    elif kind == "null":
        damaged = b"null"
    elif kind == "list-for-object":
        damaged = b"[" + body + b"]"  # an export file is a list already: then a list holding one bad item
    elif kind == "deep-list":
        damaged = b"[" * DEEP + b"]" * DEEP
    elif kind == "deep-object":
        damaged = b'{"a":' * DEEP + b"1" + b"}" * DEEP
    elif kind == "random-json":
        value = draw(any_json(max_leaves=12))
        damaged = json.dumps(value).encode()
        must_reject = False  # may be a harmless empty payload by chance
    elif kind == "utf16":
        damaged = body.decode().encode("utf-16")
        must_reject = False  # json.loads detects UTF-16 from its BOM: the same payload, readable
    elif kind == "nul-bytes":
        damaged = b"\x00" * draw(st.integers(1, 64))
    elif kind.startswith("page") or kind == "pages-not-a-list":
        page = {"page-truncated": json.dumps(case.items[shape.streams[0].name])[:-1],
                "page-null": "null", "page-list": "[]", "page-string": '"x"',
                "page-deep": "[" * DEEP + "]" * DEEP, "page-wrong-key": '{"wrong": []}',
                "pages-not-a-list": "{}"}[kind]
        if kind == "pages-not-a-list" and bundled:
            bundle = json.loads(body)
            bundle[shape.streams[0].name] = "not a list of pages"
            damaged = json.dumps(bundle).encode()
        else:
            damaged = _damage_pages(case, page)
        # An empty list is a well-formed empty answer where a list is expected (an export file, the Web API's
        # bare SpO2 array); Google leaves empty lists out (proto3), so a page without its key is empty too.
        bare_list = shape.source_name == "fitbit-export" or shape.streams[0].page_key is None
        must_reject = not ((kind == "page-list" and bare_list)
                           or (kind == "page-wrong-key" and shape.source_name == "google-health"))
    elif kind == "unknown-type":
        if bundled:
            bundle = json.loads(body)
            unknown = draw(st.sampled_from(("surprise-type", "", "\udcff")))  # "" once made an empty locator
            bundle[unknown] = ["{}"] if shape.source_name != "fitbit-export" else "[]"
            damaged = json.dumps(bundle).encode()
        else:
            damaged = body + b" trailing words"
    else:  # bad-zone: the person's zone, not the payload
        damaged = body
        person = PersonContext(PERSON_ID, draw(st.sampled_from(BAD_ZONES)))
        must_reject = shape.kind == "sleep"
    return PayloadDamage(case, kind, damaged, person, must_reject)


def prop_garbage(d: PayloadDamage) -> None:
    """Damaged payloads never raise; when data cannot be read, at least one rejection says so."""
    result = d.case.shape.parse(d.body, d.person)
    assert_well_formed(result)
    if d.must_reject:
        assert result.rejected, f"{d.name}: nothing was rejected"
    try:
        json.loads(d.body)
    except (ValueError, RecursionError):
        assert result.records == [] and result.rejected, "a payload that is not JSON must be rejected whole"


@st.composite
def any_damage(draw: st.DrawFn, shape: Shape) -> tuple[bytes, PersonContext]:
    """A payload for the end-to-end check: valid, one item damaged, or the whole payload damaged."""
    how = draw(st.sampled_from(("valid", "item", "curated", "payload")))
    if how == "valid":
        case = draw(valid_cases(shape))
        return case.body(), case.person
    if how in ("item", "curated"):
        m = draw(item_mutations(shape, curated=how == "curated"))
        return m.case.body(m.items()), m.case.person
    d = draw(payload_damage(shape))
    return d.body, d.person


def prop_quarantine(store: Any, shape: Shape, drawn: tuple[bytes, PersonContext]) -> None:
    """End to end through the one writer: archived byte for byte, every rejection quarantined with its reason,
    every record upserted."""
    from pipelines import steps

    body, person = drawn
    raw = RawPayload(person.person_id, shape.source_name, shape.resource, body, datetime.now(timezone.utc))
    parsed = parser_for(shape.source_name).parse(raw, person)
    report = steps.ingest(store, [steps.Fetched(person, parser_for(shape.source_name), [raw])])
    archived = store.query_rows("SELECT body FROM raw_payloads WHERE payload_sha256 = ? AND resource = ?",
                                [raw.sha256, raw.resource])
    assert [bytes(row[0]) for row in archived] == [body]
    quarantined = store.query_rows("SELECT locator, reason FROM quarantine WHERE payload_sha256 = ?",
                                   [raw.sha256])
    # A superset: the same bytes parsed for a person with a bad zone earlier left their own row.
    assert {(r.locator, r.reason) for r in parsed.rejected} <= set(quarantined)
    assert report.people[person.person_id].records == len(parsed.records)


# --- the registry both the CI tests and the campaign run ---------------------------------------------------


@dataclass(frozen=True)
class FuzzProperty:
    parser: str
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[..., None]
    needs_store: bool = False
    ci_examples: int = CI_EXAMPLES

    @property
    def id(self) -> str:
        return f"{self.parser}-{self.name}"


def properties() -> list[FuzzProperty]:
    out = []
    for shape in SHAPES:
        out += [FuzzProperty(shape.key, "roundtrip", valid_cases(shape), prop_roundtrip),
                FuzzProperty(shape.key, "rejects_invalid", item_mutations(shape, curated=True),
                             prop_rejects_invalid),
                FuzzProperty(shape.key, "isolation", item_mutations(shape, curated=False), prop_isolation),
                FuzzProperty(shape.key, "garbage", payload_damage(shape), prop_garbage)]
    for key in ("fitbit-export:sleep", "fitbit-web:activity", "google-health:sleep", "google-health:vitals"):
        shape = SHAPES_BY_KEY[key]
        out.append(FuzzProperty(key, "quarantine", any_damage(shape),
                                lambda store, drawn, shape=shape: prop_quarantine(store, shape, drawn),
                                needs_store=True, ci_examples=CI_QUARANTINE_EXAMPLES))
    return out


PROPERTIES = properties()


def run_property(prop: FuzzProperty, run_settings: settings, store: Any = None,
                 on_example: Callable[[], None] | None = None) -> None:
    """Run one property under `run_settings` (hypothesis raises the shrunk failing example on failure)."""

    def check(drawn: Any) -> None:
        if on_example is not None:
            on_example()
        if prop.needs_store:
            prop.check(store, drawn)
        else:
            prop.check(drawn)

    settings(run_settings)(given(prop.strategy)(check))()


def open_fuzz_store(folder: Path) -> Any:
    """A real DuckDB store with the fuzz person enrolled (quarantine rows reference the person)."""
    from storage.store import Store

    store = Store(folder / "fuzz.duckdb")
    store.add_person(PERSON_ID, "fuzz@example.org", "Europe/Oslo", "synthetic", {})
    return store


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: p.id)
def test_parser_property(prop: FuzzProperty, tmp_path: Path) -> None:
    ci = settings(settings.get_profile(CI_PROFILE), max_examples=prop.ci_examples)
    if not prop.needs_store:
        run_property(prop, ci)
        return
    store = open_fuzz_store(tmp_path)
    try:
        run_property(prop, ci, store)
    finally:
        store.close()


def test_every_parser_and_resource_is_fuzzed() -> None:
    from connectors import fitbit_web, google_health

    covered = {shape.key for shape in SHAPES}
    assert covered >= {f"fitbit-web:{group}" for group in fitbit_web.GROUPS}
    assert covered >= {f"google-health:{group}" for group in google_health.GROUPS}
    assert covered >= {f"fitbit-export:{resource}"
                       for resource in ("sleep", "resting_heart_rate", "activity_minutes")}
