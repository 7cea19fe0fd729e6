"""Google Takeout health export (today's Fitbit download): both layouts, each pitfall of the research note a test.

Fixtures: tests/fixtures/google_takeout/ (built by hand from the note's shapes, see its SOURCE.md)."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from connectors.base import PersonContext, RawPayload
from connectors.google_takeout import (GoogleTakeoutSource, UnsafeArchive, bundle_files, takeout_time)
from connectors.records import DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, SleepSession
from pipelines.import_google_takeout import import_takeout
from pipelines.sources import source_for

FIXTURE = Path(__file__).resolve().parent / "fixtures/google_takeout"
OSLO = "Europe/Oslo"
CTX = PersonContext("t1", OSLO)
DATA_TABLES = ("raw_payloads", "sleep_sessions", "sleep_segments", "daily_activity", "daily_resting_hr",
               "nightly_hrv", "nightly_vitals", "quarantine", "nightly_features", "history_arrivals")


def parsed(path: Path, ctx: PersonContext = CTX):
    source = GoogleTakeoutSource(path)
    records, rejected = [], []
    for raw in source.payloads(ctx):
        result = source.parse(raw, ctx)
        records += result.records
        rejected += result.rejected
    return records, rejected


def steps_by_day(records) -> dict[date, int]:
    return {r.day: r.steps for r in records if isinstance(r, DailyActivity)}


def resting_by_day(records) -> dict[date, float]:
    return {r.day: r.resting_hr_bpm for r in records if isinstance(r, DailyRestingHeartRate)}


def zip_folder(folder: Path, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(folder).as_posix())
    return out


def tgz_folder(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as archive:
        archive.add(folder, arcname=".")
    return out


def enrol(store, person_id: str = "t1"):
    store.add_person(person_id, f"{person_id}@example.org", OSLO, "google-takeout")
    return store.person(person_id)


def data_rows(store) -> dict[str, int]:
    counts = store.table_counts()
    return {table: counts[table] for table in DATA_TABLES}


# --- the pitfalls, one test each ------------------------------------------------------------------------------


def test_mm_dd_yy_is_read_month_first_never_guessed() -> None:
    assert takeout_time("10/12/26 07:15:00") == datetime(2026, 10, 12, 7, 15)
    assert takeout_time("02/03/26") == datetime(2026, 2, 3)
    with pytest.raises(ValueError):
        takeout_time("13/02/26 08:00:00")  # day-first text is refused, not swapped into 2 January... or 13 Feb
    with pytest.raises(ValueError):
        takeout_time("2026/02/13")  # no shape but the two documented ones
    steps = steps_by_day(parsed(FIXTURE)[0])
    assert steps[date(2026, 10, 12)] == 130  # "10/12/26" minutes: 12 October
    assert date(2026, 12, 10) not in steps


def test_utc_wake_time_near_midnight_lands_on_the_local_date_across_dst() -> None:
    resting = resting_by_day(parsed(FIXTURE)[0])
    # 2026-10-24T22:30Z is 00:30 CEST on 25 October in Oslo (read as UTC it would be the 24th)
    assert resting[date(2026, 10, 25)] == 58
    # 2026-10-26T22:50Z is 23:50 CET on the 26th, after the change (a fixed summer offset would say the 27th)
    assert resting[date(2026, 10, 26)] == 57
    assert date(2026, 10, 24) not in resting and date(2026, 10, 27) not in resting
    # The sleep log across the change lasts its 9 real hours and belongs to the wake date
    night = next(r for r in parsed(FIXTURE)[0] if isinstance(r, SleepSession) and r.source_session_id == "26102501")
    assert night.night_date == date(2026, 10, 25)
    assert (night.end_utc - night.start_utc).total_seconds() == 9 * 3600


def test_utc_offset_column_sets_the_local_date(tmp_path: Path) -> None:
    folder = tmp_path / "Takeout" / "Sleep Score"
    folder.mkdir(parents=True)
    (folder / "sleep_score.csv").write_text(
        "sleep_log_entry_id,timestamp,resting_heart_rate,utc_offset\n"
        "1,2026-10-24T23:30:00Z,55,-05:00\n"   # the watch was in New York: 18:30 on the 24th
        "2,2026-10-25T23:30:00Z,56,+02:00\n")  # 01:30 on the 26th at +02:00
    resting = resting_by_day(parsed(tmp_path, PersonContext("t1", OSLO))[0])
    assert resting == {date(2026, 10, 24): 55, date(2026, 10, 26): 56}


def test_tracker_and_phone_steps_are_never_summed() -> None:
    steps = steps_by_day(parsed(FIXTURE)[0])
    assert steps[date(2026, 9, 30)] == 3000  # tracker 3000, phone 2800: the tracker, not 5800
    assert steps[date(2026, 10, 1)] == 4500  # tracker 500 + 4000 (the phone's 450 + 3900 left out)
    assert steps[date(2026, 10, 5)] == 255  # the JSON tracker minutes win over the phone's 999
    assert steps[date(2026, 10, 6)] == 2222  # only the phone that day
    assert date(2026, 10, 13) not in steps  # tracker minutes all 0, no phone: not worn, no value (not 0)


def test_every_monthly_steps_file_is_read() -> None:
    # 00:15 on 1 October (local) is in steps_2026-09-01.csv, and the repeated row in steps_2026-10-01.csv is
    # merged by its time stamp and data source, not counted twice.
    records, rejected = parsed(FIXTURE)
    steps = steps_by_day(records)
    assert steps[date(2026, 9, 30)] == 3000 and steps[date(2026, 10, 1)] == 4500
    assert rejected == []
    # and every sleep file: the month file, the overlapping export-start file and its repeat
    sessions = {r.source_session_id for r in records if isinstance(r, SleepSession)}
    assert sessions == {"26100201", "26100202", "26101201", "26102501"}


def test_truncated_sleep_json_is_quarantined_with_a_reason_and_the_rest_imports(store, tmp_path: Path) -> None:
    folder = tmp_path / "takeout"
    shutil.copytree(FIXTURE, folder)
    exports = folder / "Takeout/Fitbit/Global Export Data"
    text = (exports / "sleep-2026-10-01.json").read_text()
    (exports / "sleep-2026-10-01.json").write_text(text[: len(text) // 2])  # cut off mid-copy
    result = import_takeout(store, enrol(store), folder)
    assert result.sync.rejected == 1
    (locator, reason), = store.query_rows("SELECT locator, reason FROM quarantine")
    assert locator == "Global Export Data/sleep-2026-10-01.json"
    assert "not valid JSON" in reason and "nothing from it was imported" in reason
    sessions = {row[0] for row in store.query_rows("SELECT source_session_id FROM sleep_sessions")}
    assert sessions == {"26101201", "26102501"}  # the other files still imported
    assert store.query_rows("SELECT count(*) FROM daily_activity")[0][0] == 5
    assert store.query_rows("SELECT count(*) FROM daily_resting_hr")[0][0] == 4


def test_reimporting_the_same_archive_changes_nothing(store, tmp_path: Path) -> None:
    archive = zip_folder(FIXTURE, tmp_path / "takeout-20261101T000000Z-001.zip")
    person = enrol(store)
    first = import_takeout(store, person, archive, arrived_on=date(2026, 11, 1))
    before = data_rows(store)
    again = import_takeout(store, person, archive, arrived_on=date(2026, 11, 1))
    assert first.new_payloads == 5 and again.new_payloads == 0
    assert data_rows(store) == before
    assert before["sleep_sessions"] == 4 and before["daily_activity"] == 5 and before["daily_resting_hr"] == 4
    assert before["nightly_hrv"] == 3 and before["nightly_vitals"] == 3


def test_zip_tgz_and_folder_give_the_same_rows(tmp_path: Path) -> None:
    from storage.store import Store

    def rows(path: Path, name: str):
        with Store(tmp_path / f"{name}.duckdb") as store:
            import_takeout(store, enrol(store), path, arrived_on=date(2026, 11, 1))
            return {table: store.query_rows(f"SELECT * EXCLUDE ({extra}) FROM {table} ORDER BY ALL")
                    for table, extra in (("sleep_sessions", "person_id"), ("sleep_segments", "person_id"),
                                         ("daily_activity", "person_id"), ("daily_resting_hr", "person_id"),
                                         ("nightly_hrv", "person_id"), ("nightly_vitals", "person_id"),
                                         ("raw_payloads", "fetched_at, body"))}

    folder = rows(FIXTURE, "folder")
    assert folder == rows(zip_folder(FIXTURE, tmp_path / "t.zip"), "zip")
    assert folder == rows(tgz_folder(FIXTURE, tmp_path / "t.tgz"), "tgz")


@pytest.mark.parametrize("name", ["../evil/Global Export Data/sleep-2026-10-01.json",
                                  "Takeout/../../Sleep Score/sleep_score.csv",
                                  "/etc/Sleep Score/sleep_score.csv"])
def test_zip_member_with_dotdot_or_absolute_path_is_refused(tmp_path: Path, name: str) -> None:
    archive = zip_folder(FIXTURE, tmp_path / "t.zip")
    with zipfile.ZipFile(archive, "a") as handle:
        handle.writestr(name, "[]")
    with pytest.raises(UnsafeArchive, match="nothing from this archive was imported"):
        GoogleTakeoutSource(archive)
    assert not (tmp_path.parent / "evil").exists()


def test_tgz_member_with_dotdot_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "t.tgz"
    with tarfile.open(out, "w:gz") as archive:
        info = tarfile.TarInfo("../Sleep Score/sleep_score.csv")
        body = b"sleep_log_entry_id,timestamp,resting_heart_rate\n"
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    with pytest.raises(UnsafeArchive):
        GoogleTakeoutSource(out)


# --- the rest of the contract ---------------------------------------------------------------------------------


def test_folders_read_in_part_or_not_at_all_are_named_with_why() -> None:
    skipped = {s.folder: s.reason for s in GoogleTakeoutSource(FIXTURE).skipped}
    assert skipped == {
        "Daily Readiness": "1 file(s) not read: Fitbit's composite score; emberwatch compares the measures it is "
                           "made from (sleep, HRV, resting heart rate) with the person's own usual instead.",
        "Heart Rate Variability": "1 file(s) not read: per-minute or per-reading detail; the nightly summaries in "
                                  "this folder are what the features use.",
        "Oxygen Saturation (SpO2)": "1 file(s) not read: per-minute or per-reading detail; the nightly summaries "
                                    "in this folder are what the features use.",
    }


def vitals_by_night(records) -> dict[date, tuple]:
    return {r.night_date: (r.spo2_avg_pct, r.breathing_rate_brpm, r.skin_temp_deviation_c)
            for r in records if isinstance(r, NightlyVitals)}


def test_nightly_hrv_is_read_from_every_summary_file_whatever_its_bracketed_day_and_merged_by_night() -> None:
    records, rejected = parsed(FIXTURE)
    hrv = {r.night_date: r.rmssd_ms for r in records if isinstance(r, NightlyHrv)}
    # 12 October is in both files (once); 13 October has no RMSSD: missing, not zero. Never the 5-minute detail.
    assert hrv == {date(2026, 10, 2): 41.2, date(2026, 10, 12): 38.7, date(2026, 10, 25): 36.9}
    assert {r.source for r in records if isinstance(r, NightlyHrv)} == {"google-takeout"}
    assert not [r for r in rejected if "Heart Rate Variability" in r.locator]


def test_breathing_spo2_and_skin_temperature_become_one_vitals_record_a_night() -> None:
    records, rejected = parsed(FIXTURE)
    assert vitals_by_night(records) == {
        date(2026, 10, 2): (95.9, 15.2, None),    # main sleep before a temperature baseline: NaN, not the nap's
        date(2026, 10, 12): (96.3, 15.8, 0.2),    # 92.0 / 460 samples
        date(2026, 10, 25): (None, None, -0.1),   # SpO2 50.0 is Fitbit's "could not measure"; -54.0 / 540
    }
    assert rejected == []


def test_a_midnight_utc_summary_names_its_day_in_any_zone_and_other_instants_move_into_the_zone() -> None:
    source = GoogleTakeoutSource(FIXTURE)
    spo2 = {"Oxygen Saturation (SpO2)/Daily SpO2 - 2026-10-01-2026-10-31.csv":
            b"timestamp,average_value,lower_bound,upper_bound\n2026-10-02T00:00:00Z,95.9,92,99\n"
            b"2026-10-03T05:00:00Z,96.1,92,99\n"}
    raw = RawPayload("t1", "google-takeout", "vitals", bundle_files(spo2), datetime.now(timezone.utc))
    for zone, wake_0300z_day in (("America/New_York", date(2026, 10, 3)), ("Pacific/Auckland", date(2026, 10, 3)),
                                 ("Pacific/Honolulu", date(2026, 10, 2))):
        nights = {r.night_date for r in source.parse(raw, PersonContext("t1", zone)).records}
        # The midnight stamp is the day label 2 October everywhere (New York would otherwise read 1 October);
        # 05:00Z on 3 October is 19:00 on the 2nd in Honolulu.
        assert nights == {date(2026, 10, 2), wake_0300z_day}, zone


def test_a_second_different_value_for_a_night_is_rejected_and_the_first_kept() -> None:
    source = GoogleTakeoutSource(FIXTURE)
    files = {"Heart Rate Variability/Daily Heart Rate Variability Summary - 2026-10-(1).csv":
             b"timestamp,rmssd,nremhr,entropy\n2026-10-02T00:00:00,41.2,55,2.8\n",
             "Heart Rate Variability/Daily Heart Rate Variability Summary - 2026-10-(2).csv":
             b"timestamp,rmssd,nremhr,entropy\n2026-10-02T00:00:00,44.0,55,2.8\n2026-10-03T00:00:00,abc,55,2.8\n"}
    result = source.parse(RawPayload("t1", "google-takeout", "hrv", bundle_files(files), datetime.now(timezone.utc)),
                          CTX)
    assert [(r.night_date, r.rmssd_ms) for r in result.records] == [(date(2026, 10, 2), 41.2)]
    reasons = {r.locator: r.reason for r in result.rejected}
    second = "Heart Rate Variability/Daily Heart Rate Variability Summary - 2026-10-(2).csv"
    assert set(reasons) == {f"{second}:2", f"{second}:3"}
    assert "a second RMSSD for the night of 2026-10-02 (44); the one at" in reasons[f"{second}:2"]
    assert reasons[f"{second}:3"].endswith("rmssd 'abc' is not a number")


def test_payloads_keep_every_file_byte_for_byte() -> None:
    source = GoogleTakeoutSource(FIXTURE)
    payloads = {raw.resource: raw for raw in source.payloads(CTX)}
    texts = json.loads(payloads["steps"].body)
    root = FIXTURE / "Takeout/Fitbit"
    for key, text in texts.items():
        assert (root / key).read_bytes() == text.encode("utf-8", errors="surrogateescape")
    assert set(texts) == {"Global Export Data/steps-2026-10-01.json",
                          "Physical Activity_GoogleData/Steps/steps_2026-09-01.csv",
                          "Physical Activity_GoogleData/Steps/steps_2026-10-01.csv"}


def test_bad_rows_are_rejected_alone_and_parse_never_raises() -> None:
    source = GoogleTakeoutSource(FIXTURE)
    bad = {"Physical Activity_GoogleData/Steps/steps_2026-11-01.csv":
           b"timestamp,steps,data source\n11/02/26 08:00:00,12,Google Fitbit Air\nnot a time,5,Google Fitbit Air\n"
           b"2026-11-03T08:00:00Z,-4,Google Fitbit Air\n",
           "Global Export Data/steps-2026-11-01.json": b'[{"dateTime": "31/12/26 08:00:00", "value": "7"}]'}
    raw = RawPayload("t1", "google-takeout", "steps", bundle_files(bad), datetime.now(timezone.utc))
    result = source.parse(raw, CTX)
    assert steps_by_day(result.records) == {date(2026, 11, 2): 12}
    assert len(result.rejected) == 3
    for junk in (b"", b"{", b'{"a": 1}'):
        out = source.parse(RawPayload("t1", "google-takeout", "steps", junk, datetime.now(timezone.utc)), CTX)
        assert out.records == [] and len(out.rejected) == 1


def test_sleep_logs_without_main_sleep_take_the_longest_of_the_night(tmp_path: Path) -> None:
    folder = tmp_path / "Global Export Data"
    folder.mkdir()
    logs = json.loads((FIXTURE / "Takeout/Fitbit/Global Export Data/sleep-2026-10-01.json").read_text())
    for log in logs:
        del log["mainSleep"]
    (folder / "sleep-2026-10-01.json").write_text(json.dumps(logs))
    sessions = {r.source_session_id: r.is_main_sleep for r in parsed(tmp_path)[0]}
    assert sessions == {"26100201": True, "26100202": False}


def test_google_takeout_person_has_nothing_to_fetch_nightly(store) -> None:
    assert source_for(enrol(store)) is None


def test_cli_import_prints_counts_skips_and_retention(tmp_path: Path, monkeypatch) -> None:
    from pipelines.cli import app

    monkeypatch.setenv("EMBERWATCH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    added = runner.invoke(app, ["person", "add", "t1", "--email", "t1@example.org", "--timezone", OSLO,
                                "--source", "google-takeout"])
    assert added.exit_code == 0, added.output
    archive = zip_folder(FIXTURE, tmp_path / "takeout.zip")
    done = runner.invoke(app, ["import", "google-takeout", str(archive), "--person", "t1"])
    assert done.exit_code == 0, done.output
    assert "Imported 19 records" in done.output
    assert "Skipped Heart Rate Variability" in done.output
    assert ("Steps for 5 days, one source a day and never a sum: 2 from the watch's CSV rows, 2 from the watch's "
            "per-minute JSON, 1 from the phone's CSV rows.") in done.output
    assert "Retention keeps these nights (2026-09-30 to 2026-10-26)" in done.output
    refused = runner.invoke(app, ["import", "google-takeout", str(tmp_path / "missing.zip"), "--person", "t1"])
    assert refused.exit_code == 1
    unsafe = zip_folder(FIXTURE, tmp_path / "unsafe.zip")
    with zipfile.ZipFile(unsafe, "a") as handle:
        handle.writestr("../Sleep Score/sleep_score.csv", "x")
    refused = runner.invoke(app, ["import", "google-takeout", str(unsafe), "--person", "t1"])
    assert refused.exit_code == 1 and "'..'" in refused.output and "Traceback" not in refused.output


FUZZ_KEYS = st.sampled_from(["Global Export Data/sleep-2026-10-01.json", "Global Export Data/steps-2026-10-01.json",
                             "Physical Activity_GoogleData/Steps/steps_2026-10-01.csv",
                             "Sleep Score/sleep_score.csv",
                             "Heart Rate Variability/Daily Heart Rate Variability Summary - 2026-10-(1).csv",
                             "Temperature/Computed Temperature - 2026-10-01.csv",
                             "Oxygen Saturation (SpO2)/Daily SpO2 - 2026-10-01-2026-10-31.csv"])


def fixture_texts() -> dict[str, str]:
    root = FIXTURE / "Takeout/Fitbit"
    return {f.relative_to(root).as_posix(): f.read_text() for f in root.rglob("*") if f.suffix in (".json", ".csv")}


@settings(max_examples=150, deadline=None, derandomize=True)
@given(resource=st.sampled_from(["sleep_logs", "sleep_score", "steps", "hrv", "vitals", "other"]),
       body=st.one_of(st.binary(max_size=200),
                      st.dictionaries(FUZZ_KEYS, st.text(max_size=200), max_size=3).map(
                          lambda d: json.dumps(d).encode()),
                      st.tuples(FUZZ_KEYS, st.integers(0, 4000), st.text(max_size=20)).map(
                          lambda t: json.dumps({t[0]: fixture_texts().get(t[0], "")[: t[1]] + t[2]}).encode())),
       zone=st.sampled_from([OSLO, "Australia/Sydney", "Not/AZone"]))
def test_parse_never_raises_for_damaged_payloads(resource: str, body: bytes, zone: str) -> None:
    result = GoogleTakeoutSource(FIXTURE).parse(
        RawPayload("t1", "google-takeout", resource, body, datetime.now(timezone.utc)), PersonContext("t1", zone))
    for record in result.records:
        assert record.source == "google-takeout"
    if resource == "other":
        assert result.records == [] and result.rejected  # an unknown resource is refused with a reason
