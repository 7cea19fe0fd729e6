"""The Fitbit export importer: the real PMData exports, a hand-checked excerpt, DST nights, damaged files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.base import ParseResult, PersonContext, RawPayload
from connectors.fitbit_export import (
    ACTIVITY_MINUTES,
    FitbitExportSource,
    activity_file_bytes,
    local_to_utc,
    read_export,
)
from connectors.records import DailyActivity, DailyRestingHeartRate, SleepSession, SleepStage

OSLO = "Europe/Oslo"
PMDATA = Path(__file__).resolve().parents[2] / "shared/data/pmdata"
EXCERPT = Path(__file__).resolve().parent / "fixtures/pmdata_p03_excerpt"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def sessions(result: ParseResult) -> dict[str, SleepSession]:
    return {r.source_session_id: r for r in result.records if isinstance(r, SleepSession)}


def of_type(result: ParseResult, model: type) -> list:
    return [r for r in result.records if isinstance(r, model)]


def minutes(day: DailyActivity) -> tuple[int | None, ...]:
    return (day.sedentary_min, day.lightly_active_min, day.moderately_active_min, day.very_active_min)


def segment_end(session: SleepSession) -> datetime:
    last = session.segments[-1]
    return last.start_utc + timedelta(seconds=last.duration_s)


def assert_segments_contiguous_within(session: SleepSession) -> None:
    for earlier, later in zip(session.segments, session.segments[1:]):
        assert earlier.start_utc + timedelta(seconds=earlier.duration_s) == later.start_utc
    if session.segments:
        assert session.segments[0].start_utc >= session.start_utc
        assert segment_end(session) <= session.end_utc


# --- all 16 PMData participants ---------------------------------------------------------------------------

needs_pmdata = pytest.mark.skipif(
    not PMDATA.is_dir(), reason=f"PMData copy not found at {PMDATA} (shared/data/pmdata next to the repo)"
)


@pytest.fixture(scope="module")
def pmdata() -> dict[str, tuple[list[RawPayload], ParseResult]]:
    if not PMDATA.is_dir():
        pytest.skip(f"PMData copy not found at {PMDATA} (shared/data/pmdata next to the repo)")
    return {
        folder.name: read_export(folder, PersonContext(folder.name, OSLO))
        for folder in sorted(PMDATA.glob("p[0-9][0-9]"))
    }


@needs_pmdata
def test_pmdata_raw_sleep_logs_match_the_readme() -> None:
    logs = [log for f in sorted(PMDATA.glob("p*/fitbit/sleep.json")) for log in json.loads(f.read_bytes())]
    assert len(logs) == 2064
    assert sum(log["mainSleep"] for log in logs) == 1942


@needs_pmdata
def test_pmdata_all_16_parse_without_rejections_and_repeated_log_ids_count_once(pmdata) -> None:
    assert len(pmdata) == 16
    assert [r for _, result in pmdata.values() for r in result.rejected] == []
    all_sessions = [s for _, result in pmdata.values() for s in of_type(result, SleepSession)]
    # 63 logs appear twice (30-day chunk boundaries of the export): 2,064 logs are 2,001 nights and naps.
    assert len(all_sessions) == 2001
    assert sum(s.is_main_sleep for s in all_sessions) == 1881
    assert len({(s.person_id, s.source_session_id) for s in all_sessions}) == 2001
    assert Counter(s.log_type for s in all_sessions) == {"stages": 1850, "classic": 151}


@needs_pmdata
def test_pmdata_p12_has_eight_nights_and_p12_p13_no_resting_hr(pmdata) -> None:
    p12_payloads, p12 = pmdata["p12"]
    assert len(of_type(p12, SleepSession)) == 8
    assert [p.resource for p in p12_payloads] == ["sleep", ACTIVITY_MINUTES]
    assert of_type(p12, DailyRestingHeartRate) == []
    assert of_type(pmdata["p13"][1], DailyRestingHeartRate) == []
    # p12 has no lightly_active_minutes.json: that field stays missing, never 0.
    assert {a.lightly_active_min for a in of_type(p12, DailyActivity)} == {None}


@needs_pmdata
def test_pmdata_resting_hr_of_zero_is_skipped_not_rejected(pmdata) -> None:
    rhr = [r for _, result in pmdata.values() for r in of_type(result, DailyRestingHeartRate)]
    assert len(rhr) == 1658  # 1,815 daily entries in 14 files, 157 of them 0
    assert min(r.resting_hr_bpm for r in rhr) > 40
    assert len(of_type(pmdata["p03"][1], DailyRestingHeartRate)) == 101  # 152 days, 51 zeros
    p04_days = sorted(r.day for r in of_type(pmdata["p04"][1], DailyRestingHeartRate))
    assert p04_days[0] == date(2020, 2, 26) and len(p04_days) == 35


@needs_pmdata
def test_pmdata_activity_minutes_become_ints_and_unworn_days_are_gaps(pmdata) -> None:
    activity = [a for _, result in pmdata.values() for a in of_type(result, DailyActivity)]
    # 2,396 person-days in the files; 223 read "1,440 sedentary, nothing else": the watch was not worn.
    assert len(activity) == 2173
    assert all(a.steps is None for a in activity)
    assert all(type(a.sedentary_min) is int for a in activity)
    first = next(a for a in of_type(pmdata["p01"][1], DailyActivity) if a.day == date(2019, 11, 1))
    assert minutes(first) == (636, 245, 58, 72)  # from "636", "245", "58", "72"


@needs_pmdata
def test_pmdata_stage_segments_never_overlap_and_stay_inside_their_session(pmdata) -> None:
    for _, result in pmdata.values():
        for session in of_type(result, SleepSession):
            assert_segments_contiguous_within(session)
            assert session.night_date == session.end_utc.astimezone(ZoneInfo(OSLO)).date()


@needs_pmdata
def test_pmdata_spring_forward_night_counts_real_time_in_bed(pmdata) -> None:
    change = utc("2020-03-29 01:00:00")  # 02:00 CET → 03:00 CEST
    nights = [
        s for _, result in pmdata.values() for s in of_type(result, SleepSession)
        if s.night_date == date(2020, 3, 29)
    ]
    assert len(nights) == 11
    assert sum(s.start_utc < change < s.end_utc for s in nights) == 8
    assert all(s.time_in_bed_min == s.minutes_asleep + s.minutes_awake for s in nights)
    p01 = sessions(pmdata["p01"][1])["26516647751"]
    # Fitbit says 474 min in bed (wall clock 00:46:30 → 08:40:30); the real span is 414 = asleep + awake.
    assert (p01.start_utc, p01.end_utc) == (utc("2020-03-28 23:46:30"), utc("2020-03-29 06:40:30"))
    assert p01.time_in_bed_min == 414 == p01.minutes_asleep + p01.minutes_awake
    assert segment_end(p01) == p01.end_utc


# --- the hand-checked excerpt (p03, 2020-03-22 … 2020-03-31) ----------------------------------------------


@pytest.fixture
def excerpt() -> tuple[list[RawPayload], ParseResult]:
    return read_export(EXCERPT, PersonContext("p03", OSLO))


def test_excerpt_payloads_keep_every_file_byte_for_byte(excerpt) -> None:
    payloads, result = excerpt
    by_resource = {p.resource: p for p in payloads}
    assert list(by_resource) == ["sleep", "resting_heart_rate", ACTIVITY_MINUTES]
    assert by_resource["sleep"].body == (EXCERPT / "sleep.json").read_bytes()
    assert by_resource["resting_heart_rate"].body == (EXCERPT / "resting_heart_rate.json").read_bytes()
    bundled = activity_file_bytes(by_resource[ACTIVITY_MINUTES].body)
    assert bundled == {name: (EXCERPT / name).read_bytes() for name in bundled}
    assert len(bundled) == 4
    assert all(p.source == "fitbit-export" and p.person_id == "p03" for p in payloads)
    assert all(p.fetched_at.tzinfo is not None for p in payloads)
    assert result.rejected == []


def test_excerpt_winter_night_hand_checked(excerpt) -> None:
    night = sessions(excerpt[1])["26509000922"]
    # startTime 2020-03-22 00:38:00, endTime 06:36:00, Oslo winter time = UTC+1
    assert night.start_utc == utc("2020-03-21 23:38:00")
    assert night.end_utc == utc("2020-03-22 05:36:00")
    assert night.night_date == date(2020, 3, 22)  # starts on the 21st in UTC, belongs to the wake date
    assert (night.minutes_asleep, night.minutes_awake, night.time_in_bed_min) == (303, 55, 358)
    assert (night.is_main_sleep, night.log_type, night.start_utc_offset_min) == (True, "stages", 60)
    assert len(night.segments) == 23  # levels.data only; the 13 shortData wakes are not segments
    assert night.segments[0].start_utc == night.start_utc and night.segments[0].stage is SleepStage.WAKE
    assert segment_end(night) == night.end_utc


def test_excerpt_daytime_classic_main_sleep_and_classic_nap(excerpt) -> None:
    by_id = sessions(excerpt[1])
    main, nap = by_id["26509000926"], by_id["26509000927"]
    assert (main.is_main_sleep, main.log_type, main.night_date) == (True, "classic", date(2020, 3, 27))
    assert (main.start_utc, main.end_utc) == (utc("2020-03-27 09:07:00"), utc("2020-03-27 11:59:30"))
    assert {s.stage for s in main.segments} == {SleepStage.ASLEEP, SleepStage.RESTLESS, SleepStage.AWAKE}
    assert len(main.segments) == 12
    assert (nap.is_main_sleep, nap.log_type, nap.night_date) == (False, "classic", date(2020, 3, 27))
    assert (nap.minutes_asleep, len(nap.segments)) == (126, 8)
    assert len(by_id) == 9


def test_excerpt_real_spring_forward_night(excerpt) -> None:
    night = sessions(excerpt[1])["26516780913"]
    # 01:06:00 CET → 08:25:30 CEST: 379.5 real minutes; Fitbit's timeInBed (439) counts the skipped hour.
    assert (night.start_utc, night.end_utc) == (utc("2020-03-29 00:06:00"), utc("2020-03-29 06:25:30"))
    assert (night.start_utc_offset_min, night.end_utc_offset_min) == (60, 120)
    assert night.time_in_bed_min == 379 == night.minutes_asleep + night.minutes_awake
    assert len(night.segments) == 17  # the trailing 'unknown' hour is not a stage
    assert_segments_contiguous_within(night)
    # The watch stamped this deep segment 03:18:00 on its unchanged clock: 2 h 12 min after 01:06 = 02:18 UTC.
    deep = next(s for s in night.segments if s.start_utc == utc("2020-03-29 02:18:00"))
    assert (deep.stage, deep.duration_s) == (SleepStage.DEEP, 840)


def test_excerpt_resting_hr_and_activity(excerpt) -> None:
    result = excerpt[1]
    rhr = {r.day: r.resting_hr_bpm for r in of_type(result, DailyRestingHeartRate)}
    assert len(rhr) == 8 and date(2020, 3, 25) not in rhr and date(2020, 3, 28) not in rhr  # 0 = missing
    assert rhr[date(2020, 3, 22)] == pytest.approx(52.2989, abs=1e-4)
    activity = {a.day: a for a in of_type(result, DailyActivity)}
    assert len(activity) == 9 and date(2020, 3, 28) not in activity  # 1,440 sedentary minutes: not worn
    day = activity[date(2020, 3, 24)]
    assert minutes(day) == (920, 78, 10, 1)
    assert day.steps is None and day.person_id == "p03" and day.source == "fitbit-export"


def test_source_accepts_the_fitbit_folder_or_its_parent(tmp_path: Path) -> None:
    shutil.copytree(EXCERPT, tmp_path / "p03" / "fitbit")
    person = PersonContext("p03", OSLO)
    from_parent = FitbitExportSource(tmp_path / "p03")
    from_fitbit = FitbitExportSource(tmp_path / "p03" / "fitbit")
    assert [p.body for p in from_parent.payloads(person)] == [p.body for p in from_fitbit.payloads(person)]
    fetched = list(from_parent.fetch(person, date(2030, 1, 1), date(2030, 1, 2)))  # exports are not windowed
    assert len(fetched) == 3 and fetched[0].window_start is None
    with pytest.raises(FileNotFoundError, match="No Fitbit export files"):
        FitbitExportSource(tmp_path)


# --- DST nights (synthetic, in the shape Fitbit writes them) ----------------------------------------------


def fitbit_log(log_id: int, start: str, stages: list[tuple[str, int]], end: str, *, date_of_sleep: str,
               time_in_bed_min: int, main_sleep: bool = True) -> dict:
    """A stage log as the watch writes it: segments chained on one device clock from startTime."""
    clock = datetime.fromisoformat(start)
    data = []
    for level, seconds in stages:
        data.append({"dateTime": clock.strftime("%Y-%m-%dT%H:%M:%S.000"), "level": level, "seconds": seconds})
        clock += timedelta(seconds=seconds)
    return {
        "logId": log_id, "dateOfSleep": date_of_sleep,
        "startTime": start, "endTime": end.replace(" ", "T") + ".000",
        "duration": time_in_bed_min * 60_000, "minutesToFallAsleep": 0,
        "minutesAsleep": sum(s for lvl, s in stages if lvl not in ("wake", "unknown")) // 60,
        "minutesAwake": sum(s for lvl, s in stages if lvl == "wake") // 60, "minutesAfterWakeup": 0,
        "timeInBed": time_in_bed_min, "efficiency": 95, "type": "stages", "infoCode": 0,
        "mainSleep": main_sleep,
        "levels": {"summary": {}, "data": data, "shortData": []},
    }


def parse_sleep(logs: list | bytes, person: PersonContext = PersonContext("x", OSLO)) -> ParseResult:
    body = logs if isinstance(logs, bytes) else json.dumps(logs).encode()
    raw = RawPayload(person.person_id, "fitbit-export", "sleep", body, datetime.now(timezone.utc))
    return FitbitExportSource(EXCERPT).parse(raw, person)


def test_night_across_spring_forward_lasts_its_real_length() -> None:
    # In bed 23:00 CET, up at 07:00 CEST: 7 real hours. The watch stamps segments on its winter clock
    # (so one starts at the non-existent 02:00) and Fitbit pads the 8 wall-clock hours with an 'unknown' hour.
    log = fitbit_log(1, "2020-03-28 23:00:00",
                     [("light", 10_800), ("deep", 3_600), ("rem", 3_600), ("light", 6_600), ("wake", 600),
                      ("unknown", 3_600)],
                     "2020-03-29 07:00:00", date_of_sleep="2020-03-29", time_in_bed_min=480)
    night = sessions(parse_sleep([log]))["1"]
    assert night.end_utc - night.start_utc == timedelta(hours=7)
    assert (night.start_utc, night.end_utc) == (utc("2020-03-28 22:00:00"), utc("2020-03-29 05:00:00"))
    assert night.night_date == date(2020, 3, 29)
    assert night.time_in_bed_min == 420
    assert night.segments[1].start_utc == utc("2020-03-29 01:00:00")  # stamped 02:00 on the winter clock
    assert segment_end(night) == night.end_utc and len(night.segments) == 5


def test_night_across_autumn_change_lasts_its_real_length() -> None:
    # In bed 23:00 CEST, up at 06:00 CET: 8 real hours, though the wall clock moved only 7.
    log = fitbit_log(2, "2020-10-24 23:00:00",
                     [("light", 14_400), ("deep", 3_600), ("rem", 7_200), ("wake", 3_600)],
                     "2020-10-25 06:00:00", date_of_sleep="2020-10-25", time_in_bed_min=480)
    night = sessions(parse_sleep([log]))["2"]
    assert night.end_utc - night.start_utc == timedelta(hours=8)
    assert night.night_date == date(2020, 10, 25)
    assert (night.start_utc_offset_min, night.end_utc_offset_min) == (120, 60)
    assert night.time_in_bed_min == 480
    assert_segments_contiguous_within(night)
    assert segment_end(night) == night.end_utc


def test_local_times_in_the_dst_gaps_and_overlaps() -> None:
    oslo = ZoneInfo(OSLO)
    # Repeated autumn hour: the first pass (summer time, UTC+2).
    assert local_to_utc(datetime(2020, 10, 25, 2, 30), oslo) == utc("2020-10-25 00:30:00")
    # Skipped spring hour: shifted forward by the gap, 02:30 → 03:30 CEST.
    instant = local_to_utc(datetime(2020, 3, 29, 2, 30), oslo)
    assert instant == utc("2020-03-29 01:30:00")
    assert instant.astimezone(oslo).replace(tzinfo=None) == datetime(2020, 3, 29, 3, 30)


def test_nap_inside_the_repeated_autumn_hour_is_read_as_summer_time() -> None:
    log = fitbit_log(3, "2020-10-25 02:10:00", [("light", 1_800)], "2020-10-25 02:40:00",
                     date_of_sleep="2020-10-25", time_in_bed_min=30, main_sleep=False)
    nap = sessions(parse_sleep([log]))["3"]
    assert (nap.start_utc, nap.end_utc) == (utc("2020-10-25 00:10:00"), utc("2020-10-25 00:40:00"))
    assert not nap.is_main_sleep


def test_wake_date_wins_when_date_of_sleep_disagrees() -> None:
    log = fitbit_log(4, "2020-01-09 23:00:00", [("light", 25_200)], "2020-01-10 06:00:00",
                     date_of_sleep="2020-01-09", time_in_bed_min=420)
    assert sessions(parse_sleep([log]))["4"].night_date == date(2020, 1, 10)


# --- damaged files ----------------------------------------------------------------------------------------


def test_truncated_sleep_file_is_rejected_whole_and_the_other_files_still_import(tmp_path: Path) -> None:
    shutil.copytree(EXCERPT, tmp_path / "fitbit")
    sleep_file = tmp_path / "fitbit" / "sleep.json"
    sleep_file.write_bytes(sleep_file.read_bytes()[:5_000])
    payloads, result = read_export(tmp_path, PersonContext("p03", OSLO))
    assert len(payloads) == 3  # the damaged file is still handed over, so it is archived
    [rejected] = result.rejected
    assert rejected.locator == "sleep.json"
    assert rejected.reason.startswith("sleep.json is not valid JSON: ")
    assert "truncated" in rejected.reason and "nothing from it was imported" in rejected.reason
    assert of_type(result, SleepSession) == []
    assert len(of_type(result, DailyRestingHeartRate)) == 8 and len(of_type(result, DailyActivity)) == 9


def test_sleep_file_of_the_wrong_shape_is_rejected_whole() -> None:
    [rejected] = parse_sleep(b'{"sleep": []}').rejected
    assert rejected.reason == (
        "sleep.json should hold a list of sleep logs but holds an object; nothing from it was imported."
    )


def test_one_bad_sleep_log_is_rejected_alone_with_locator_and_field() -> None:
    logs = json.loads((EXCERPT / "sleep.json").read_bytes())
    logs[1]["endTime"] = "2020-03-23T00:30:00.000"  # before its startTime 01:05:30
    del logs[2]["startTime"]
    logs[3]["levels"]["data"][4]["level"] = "dozing"
    logs[4]["minutesAsleep"] = "lots"
    result = parse_sleep(logs)
    assert len(sessions(result)) == 5
    reasons = {r.locator: r.reason for r in result.rejected}
    assert list(reasons) == [
        "sleep.json[1] (logId 26509000923)", "sleep.json[2] (logId 26509000924)",
        "sleep.json[3] (logId 26509000925)", "sleep.json[4] (logId 26509000926)",
    ]
    assert "end_utc must be after start_utc" in reasons["sleep.json[1] (logId 26509000923)"]
    assert "field 'startTime' is missing" in reasons["sleep.json[2] (logId 26509000924)"]
    assert "levels.data[4]: field 'stage' is invalid" in reasons["sleep.json[3] (logId 26509000925)"]
    assert "field 'minutes_asleep' is invalid" in reasons["sleep.json[4] (logId 26509000926)"]
    assert all(reason.startswith("fitbit-export at sleep.json[") for reason in reasons.values())


def test_repeated_log_id_with_different_content_keeps_the_first() -> None:
    log = json.loads((EXCERPT / "sleep.json").read_bytes())[0]
    same, changed = json.loads(json.dumps(log)), json.loads(json.dumps(log))
    same["levels"]["summary"] = {"note": "30-day averages differ"}
    changed["minutesAsleep"] = 1
    result = parse_sleep([log, same, changed])
    assert [s.minutes_asleep for s in sessions(result).values()] == [303]
    [rejected] = result.rejected
    assert rejected.locator == "sleep.json[2] (logId 26509000922)"
    assert "already appeared at sleep.json[0]" in rejected.reason


def test_damaged_activity_file_costs_only_its_own_field(tmp_path: Path) -> None:
    shutil.copytree(EXCERPT, tmp_path / "fitbit")
    light = tmp_path / "fitbit" / "lightly_active_minutes.json"
    light.write_bytes(light.read_bytes()[:-40])
    very = tmp_path / "fitbit" / "very_active_minutes.json"
    items = json.loads(very.read_bytes())
    items[2]["value"] = "-5"
    very.write_text(json.dumps(items))
    _, result = read_export(tmp_path, PersonContext("p03", OSLO))
    reasons = {r.locator: r.reason for r in result.rejected}
    assert list(reasons) == ["lightly_active_minutes.json", "very_active_minutes.json[2] (2020-03-24)"]
    assert "truncated" in reasons["lightly_active_minutes.json"]
    assert "field 'very_active_min' is invalid" in reasons["very_active_minutes.json[2] (2020-03-24)"]
    activity = {a.day: a for a in of_type(result, DailyActivity)}
    day = activity[date(2020, 3, 24)]
    assert minutes(day) == (920, None, 10, None)
    assert len(of_type(result, SleepSession)) == 9


def test_bad_resting_hr_item_is_rejected_alone(tmp_path: Path) -> None:
    shutil.copytree(EXCERPT, tmp_path / "fitbit")
    rhr_file = tmp_path / "fitbit" / "resting_heart_rate.json"
    items = json.loads(rhr_file.read_bytes())
    items[0]["value"]["value"] = 300.0
    items[1]["value"] = 55
    rhr_file.write_text(json.dumps(items))
    _, result = read_export(tmp_path, PersonContext("p03", OSLO))
    reasons = {r.locator: r.reason for r in result.rejected}
    assert list(reasons) == [
        "resting_heart_rate.json[0] (2020-03-22)", "resting_heart_rate.json[1] (2020-03-23)",
    ]
    assert "field 'resting_hr_bpm' is invalid" in reasons["resting_heart_rate.json[0] (2020-03-22)"]
    assert "field 'value' is invalid" in reasons["resting_heart_rate.json[1] (2020-03-23)"]
    assert len(of_type(result, DailyRestingHeartRate)) == 6


def test_unknown_resource_is_rejected_not_raised() -> None:
    raw = RawPayload("x", "fitbit-export", "exercise", b"[]", datetime.now(timezone.utc))
    [rejected] = FitbitExportSource(EXCERPT).parse(raw, PersonContext("x", OSLO)).rejected
    assert "not a resource of fitbit-export" in rejected.reason
