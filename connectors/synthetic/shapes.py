"""The demo's Oura and Apple nights in each device's own documented shapes, read back by that device's own parser.

Oura: a fetch window becomes the two payloads OuraSource archives (connectors/oura.py, research note §4): `night`
(`sleep` periods with `sleep_phase_5_min`, lowest heart rate, average HRV and breathing; `daily_readiness` with the
temperature deviation; `daily_spo2`) and `activity` (`daily_activity`), each data type a list of page texts
{"data": [...], "next_token": null}. They are parsed by OuraSource's own engine and parsers, without HTTP.

Apple: a fetch window becomes an `export.xml` (`<Record>`s of HKCategoryTypeIdentifierSleepAnalysis with stage
values, RestingHeartRate, RespiratoryRate, OxygenSaturation, StepCount; dates in their own offsets), read by
AppleHealthSource into the chunks it archives (one per data type and month), each parsed by its parse_chunk.

What a device cannot say is lost on the way, as with real data: Oura's stages come in five-minute phases, so the
parsed segments are the synthetic 30-second ones at that resolution (the minutes asleep, awake and to fall asleep
travel as Oura's own totals, exactly); a ring's session carries the person's zone, not the trip's.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import quoteattr
from zoneinfo import ZoneInfo

from connectors.base import ParseResult, PersonContext, RawPayload
from connectors.records import (AnyRecord, DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals,
                                SleepSession, SleepStage)

OURA, APPLE = "oura", "apple-health"
SHAPED = frozenset((OURA, APPLE))

# --- Oura ------------------------------------------------------------------------------------------------------

_PHASE_OF = {SleepStage.DEEP: "1", SleepStage.LIGHT: "2", SleepStage.ASLEEP: "2", SleepStage.RESTLESS: "2",
             SleepStage.REM: "3", SleepStage.WAKE: "4", SleepStage.AWAKE: "4"}
PHASE_S = 300


def _stage_at(session: SleepSession, instant: datetime) -> SleepStage | None:
    for segment in session.segments:
        if segment.start_utc <= instant < segment.start_utc + timedelta(seconds=segment.duration_s):
            return segment.stage
    return None


def sleep_phases(session: SleepSession) -> str:
    """`sleep_phase_5_min`: the stage at the middle of each five minutes from bedtime_start (the last, cut at
    bedtime_end, at the middle of what is left); a ring stages every sleep, so classic minutes read as light."""
    total = int((session.end_utc - session.start_utc).total_seconds())
    phases = []
    for offset in range(0, total, PHASE_S):
        middle = offset + min(PHASE_S, total - offset) // 2
        stage = _stage_at(session, session.start_utc + timedelta(seconds=middle))
        phases.append(_PHASE_OF[stage] if stage is not None else "4")
    return "".join(phases)


def _local(instant: datetime, tz_name: str) -> str:
    return instant.astimezone(ZoneInfo(tz_name)).isoformat(timespec="milliseconds")


def oura_documents(records: Sequence[AnyRecord]) -> dict[str, list[dict]]:
    """The Oura API v2 documents of these records, by collection (research note §4)."""
    hrv = {r.night_date: r for r in records if isinstance(r, NightlyHrv)}
    resting = {r.day: r for r in records if isinstance(r, DailyRestingHeartRate)}
    vitals = {r.night_date: r for r in records if isinstance(r, NightlyVitals)}
    docs: dict[str, list[dict]] = {"sleep": [], "daily_readiness": [], "daily_spo2": [], "daily_activity": []}
    for s in (r for r in records if isinstance(r, SleepSession)):
        main = s.is_main_sleep
        night_hrv, night_hr, night_vitals = (hrv.get(s.night_date), resting.get(s.night_date),
                                             vitals.get(s.night_date))
        phases = sleep_phases(s)
        docs["sleep"].append({
            "id": s.source_session_id, "day": s.night_date.isoformat(), "period": 0 if main else 1,
            "type": "long_sleep" if main else "sleep", "low_battery_alert": False,
            "bedtime_start": _local(s.start_utc, s.tz_name), "bedtime_end": _local(s.end_utc, s.tz_name),
            "time_in_bed": s.time_in_bed_min * 60, "total_sleep_duration": s.minutes_asleep * 60,
            "awake_time": s.minutes_awake * 60, "latency": s.minutes_to_fall_asleep * 60,
            "deep_sleep_duration": phases.count("1") * PHASE_S, "light_sleep_duration": phases.count("2") * PHASE_S,
            "rem_sleep_duration": phases.count("3") * PHASE_S, "sleep_phase_5_min": phases,
            "lowest_heart_rate": int(night_hr.resting_hr_bpm) if main and night_hr else None,
            "average_heart_rate": night_hr.resting_hr_bpm + 6.5 if main and night_hr else None,
            "average_hrv": night_hrv.rmssd_ms if main and night_hrv else None,
            "average_breath": night_vitals.breathing_rate_brpm if main and night_vitals else None,
        })
    for night, v in sorted(vitals.items()):
        if v.skin_temp_deviation_c is not None:
            docs["daily_readiness"].append({"id": f"readiness-{night}", "day": night.isoformat(),
                                            "temperature_deviation": v.skin_temp_deviation_c, "contributors": {}})
        if v.spo2_avg_pct is not None:
            docs["daily_spo2"].append({"id": f"spo2-{night}", "day": night.isoformat(),
                                       "spo2_percentage": {"average": v.spo2_avg_pct}})
    for a in (r for r in records if isinstance(r, DailyActivity)):
        minutes = {"sedentary_time": a.sedentary_min, "low_activity_time": a.lightly_active_min,
                   "medium_activity_time": a.moderately_active_min, "high_activity_time": a.very_active_min}
        docs["daily_activity"].append({"id": f"activity-{a.day}", "day": a.day.isoformat(), "steps": a.steps,
                                       **{k: None if m is None else m * 60 for k, m in minutes.items()}})
    return docs


def _bundle(documents: dict[str, list[dict]], names: tuple[str, ...]) -> bytes:
    page = {name: [json.dumps({"data": documents[name], "next_token": None}, sort_keys=True)] for name in names}
    return json.dumps(page, sort_keys=True).encode()


def oura_payloads(person_id: str, records: Sequence[AnyRecord], start: date, end: date,
                  fetched_at: datetime) -> Iterator[RawPayload]:
    from connectors.oura import DATA_TYPES, GROUPS

    documents = oura_documents(records)
    for group in GROUPS:
        names = tuple(t.name for t in DATA_TYPES if t.group == group)
        yield RawPayload(person_id, OURA, group, _bundle(documents, names), fetched_at, start, end)


@lru_cache(maxsize=1)
def _oura_reader():
    from connectors.oura import OuraSource

    # Only its parse is used: no tokens, no bookmarks, no request is ever sent.
    return OuraSource(None)  # type: ignore[arg-type]


# --- Apple Health ----------------------------------------------------------------------------------------------

_APPLE_STAGE = {SleepStage.DEEP: "AsleepDeep", SleepStage.LIGHT: "AsleepCore", SleepStage.REM: "AsleepREM",
                SleepStage.WAKE: "Awake", SleepStage.AWAKE: "Awake", SleepStage.ASLEEP: "AsleepUnspecified",
                SleepStage.RESTLESS: "AsleepUnspecified"}
_WATCH = ('sourceName="Apple Watch" sourceVersion="10.1" '
          'device="&lt;&lt;HKDevice: 0x0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch, '
          'hardware:Watch6,1, software:10.1&gt;"')
_HK = "HKQuantityTypeIdentifier"


def _apple(instant: datetime, tz_name: str) -> str:
    return instant.astimezone(ZoneInfo(tz_name)).strftime("%Y-%m-%d %H:%M:%S %z")


def _record(type_: str, start: str, end: str, value: str, unit: str | None = None) -> str:
    unit_attr = f' unit="{unit}"' if unit else ""
    return (f'<Record type="{type_}" {_WATCH}{unit_attr} creationDate={quoteattr(end)} startDate={quoteattr(start)} '
            f'endDate={quoteattr(end)} value={quoteattr(value)}/>')


def apple_export(records: Sequence[AnyRecord], home_tz: str) -> bytes:
    """These records as an Apple Health `export.xml`, each date in the offset of the zone the person was in."""
    sessions = [r for r in records if isinstance(r, SleepSession)]
    zone_of = {s.night_date: s.tz_name for s in sessions}
    main_of = {s.night_date: s for s in sessions if s.is_main_sleep}
    lines = []
    for s in sessions:
        for seg in s.segments:
            seg_end = seg.start_utc + timedelta(seconds=seg.duration_s)
            lines.append(_record("HKCategoryTypeIdentifierSleepAnalysis", _apple(seg.start_utc, s.tz_name),
                                 _apple(seg_end, s.tz_name), f"HKCategoryValueSleepAnalysis{_APPLE_STAGE[seg.stage]}"))
    for r in records:
        if isinstance(r, DailyRestingHeartRate):
            zone = ZoneInfo(zone_of.get(r.day, home_tz))
            at = datetime.combine(r.day, time(8), zone)
            lines.append(_record(f"{_HK}RestingHeartRate", _apple(at, zone.key), _apple(at, zone.key),
                                 f"{r.resting_hr_bpm:g}", "count/min"))
        elif isinstance(r, DailyActivity) and r.steps:
            zone = ZoneInfo(zone_of.get(r.day, home_tz))
            start = datetime.combine(r.day, time(9), zone)
            lines.append(_record(f"{_HK}StepCount", _apple(start, zone.key),
                                 _apple(start + timedelta(hours=12), zone.key), str(r.steps), "count"))
        elif isinstance(r, NightlyVitals):
            # One reading of each during the night's sleep, inside noon to noon ending on the wake date (the
            # importer's night), whatever the hour the person slept.
            zone = ZoneInfo(zone_of.get(r.night_date, home_tz))
            earliest = datetime.combine(r.night_date - timedelta(days=1), time(12), zone)
            latest = datetime.combine(r.night_date, time(11), zone)
            main = main_of.get(r.night_date)
            at = latest if main is None else max(earliest, min(main.start_utc + timedelta(hours=1), latest))
            stamp = _apple(at, zone.key)
            if r.breathing_rate_brpm is not None:
                lines.append(_record(f"{_HK}RespiratoryRate", stamp, stamp, f"{r.breathing_rate_brpm:g}",
                                     "count/min"))
            if r.spo2_avg_pct is not None:
                lines.append(_record(f"{_HK}OxygenSaturation", stamp, stamp, f"{r.spo2_avg_pct / 100:g}", "%"))
        elif isinstance(r, NightlyHrv) and r.sdnn_ms is not None:
            # two ~1-minute readings an hour and three hours into the night's sleep, whose mean is the night's SDNN
            # (inside noon to noon ending on the wake date, as the vitals above)
            zone = ZoneInfo(zone_of.get(r.night_date, home_tz))
            earliest = datetime.combine(r.night_date - timedelta(days=1), time(12), zone)
            latest = datetime.combine(r.night_date, time(11), zone)
            main = main_of.get(r.night_date)
            asleep = datetime.combine(r.night_date, time(1), zone) if main is None else main.start_utc
            for hours, value in ((1, r.sdnn_ms * 0.9), (3, r.sdnn_ms * 1.1)):
                at = max(earliest, min(asleep + timedelta(hours=hours), latest))
                lines.append(_record(f"{_HK}HeartRateVariabilitySDNN", _apple(at, zone.key),
                                     _apple(at + timedelta(minutes=1), zone.key), f"{value:.4f}", "ms"))
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_GB">\n'
    return (head + "\n".join(lines) + "\n</HealthData>\n").encode()


def apple_payloads(person: PersonContext, records: Sequence[AnyRecord]) -> list[RawPayload]:
    """The chunks AppleHealthSource archives from this window's export.xml (read by its own reader)."""
    from connectors.apple_health import AppleHealthSource

    with tempfile.TemporaryDirectory(prefix="emberwatch-demo-apple-") as folder:
        path = Path(folder) / "export.xml"
        path.write_bytes(apple_export(records, person.tz_name))
        return list(AppleHealthSource(path).payloads(person))


# --- parsing ---------------------------------------------------------------------------------------------------


def parse_shaped(raw: RawPayload, person: PersonContext) -> ParseResult:
    """A shaped payload parsed by its device's own connector."""
    if raw.source == OURA:
        return _oura_reader().parse(raw, person)
    from connectors.apple_health import parse_chunk

    return parse_chunk(raw, person)
