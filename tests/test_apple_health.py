"""Apple Health export (export.zip / export.xml): each pitfall of the research note (§5) a test.

Fixtures: tests/fixtures/apple_health/ (built by hand from the note's shapes and HealthKit identifiers, see its
SOURCE.md)."""

from __future__ import annotations

import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from connectors.apple_health import SESSION_GAP, AppleHealthSource, apple_time, chunk_xml
from connectors.base import PersonContext, RawPayload
from connectors.records import DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, SleepSession
from pipelines.import_apple_health import import_apple_health
from pipelines.sources import source_for

FIXTURE = Path(__file__).resolve().parent / "fixtures/apple_health"
ZIP = FIXTURE / "export.zip"
XML = FIXTURE / "apple_health_export/export.xml"
OSLO = "Europe/Oslo"
CTX = PersonContext("t1", OSLO)
DATA_TABLES = ("raw_payloads", "sleep_sessions", "sleep_segments", "daily_activity", "daily_resting_hr",
               "nightly_vitals", "nightly_hrv", "quarantine", "nightly_features", "history_arrivals")


def parsed(path: Path = ZIP, ctx: PersonContext = CTX):
    source = AppleHealthSource(path)
    records, rejected = [], []
    for raw in source.payloads(ctx):
        result = source.parse(raw, ctx)
        records += result.records
        rejected += result.rejected
    return records, rejected, source


def sessions(records) -> list[SleepSession]:
    return sorted((r for r in records if isinstance(r, SleepSession)), key=lambda s: s.start_utc)


def steps_by_day(records) -> dict[date, int]:
    return {r.day: r.steps for r in records if isinstance(r, DailyActivity)}


def enrol(store, person_id: str = "t1"):
    store.add_person(person_id, f"{person_id}@example.org", OSLO, "apple-health")
    return store.person(person_id)


def data_rows(store) -> dict[str, int]:
    counts = store.table_counts()
    return {table: counts[table] for table in DATA_TABLES}


def zipped(xml: bytes, out: Path) -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("apple_health_export/export.xml", xml)
    return out


# --- the pitfalls, one test each ------------------------------------------------------------------------------


def test_the_zip_and_the_bare_export_xml_give_the_same_records() -> None:
    with zipfile.ZipFile(ZIP) as archive:
        assert archive.read("apple_health_export/export.xml") == XML.read_bytes()
    assert parsed(ZIP)[0] == parsed(XML)[0]


def test_dates_are_parsed_with_their_own_offset_never_guessed() -> None:
    assert apple_time("2024-03-02 23:14:05 +0100") == datetime(2024, 3, 2, 22, 14, 5, tzinfo=timezone.utc)
    assert apple_time("2026-04-21 06:00:00 +0900").utcoffset() == timedelta(hours=9)
    for bad in ("03/05/2026 09:00", "2024-03-02T23:14:05+01:00", "2024-03-02 23:14:05", "2024-03-02 23:14:05 +2500"):
        with pytest.raises(ValueError):
            apple_time(bad)
    _, rejected, _ = parsed()
    assert [r.locator for r in rejected] == ["steps/undated[0]"]  # archived, then refused with its reason
    assert "is not a date like 2024-03-02 23:14:05 +0100" in rejected[0].reason


def test_watch_staged_sleep_wins_over_an_apps_asleep_and_the_phones_in_bed() -> None:
    records, _, source = parsed()
    by_night = {}
    for s in sessions(records):
        by_night.setdefault(s.night_date, []).append(s)
    night = by_night[date(2026, 3, 2)]  # watch, Pillow and iPhone all wrote this night: one session, the watch's
    assert len(night) == 1 and night[0].log_type == "stages"
    assert [seg.stage.value for seg in night[0].segments] == ["light", "deep", "light", "wake", "rem", "light"]
    assert night[0].minutes_awake == 10 and night[0].minutes_asleep == 445  # the repeated Deep counts once
    assert night[0].start_utc == datetime(2026, 3, 1, 22, 14, 5, tzinfo=timezone.utc)  # not the phone's 22:50
    app_night, = by_night[date(2026, 3, 3)]  # no watch: Pillow's asleep over the phone's in bed
    assert app_night.log_type == "classic" and app_night.minutes_asleep == 420
    assert app_night.start_utc == datetime(2026, 3, 2, 22, 30, tzinfo=timezone.utc)
    phone_night, = by_night[date(2026, 3, 4)]  # only the phone: its in-bed time, no stages
    assert phone_night.time_in_bed_min == 450 and phone_night.segments == ()
    assert source.sleep_origin == {"staged sleep (watch)": 4, "unstaged asleep (app)": 1, "in bed only (phone)": 1}


def test_a_gap_of_an_hour_or_more_starts_a_new_session() -> None:
    assert SESSION_GAP == timedelta(minutes=60)
    night = [s for s in sessions(parsed()[0]) if s.night_date == date(2026, 3, 5)]
    assert [(s.time_in_bed_min, s.minutes_asleep, s.is_main_sleep) for s in night] == [
        (240, 210, True),  # 22:00-01:00 and 01:30-02:00: a 30 min hole stays one session
        (210, 210, False)]  # after the 90 min hole: a second session, not the main sleep


def test_dst_night_lasts_its_real_hours_and_travel_lands_on_the_local_wake_date() -> None:
    by_night = {s.night_date: s for s in sessions(parsed()[0])}
    spring = by_night[date(2026, 3, 29)]  # 23:00 CET → 07:00 CEST: 7 real hours, not 8
    assert (spring.end_utc - spring.start_utc) == timedelta(hours=7) and spring.minutes_asleep == 420
    tokyo = by_night[date(2026, 4, 21)]  # woke 06:00 +0900 on the 21st (still the 20th in Oslo)
    assert tokyo.end_utc == datetime(2026, 4, 20, 21, 0, tzinfo=timezone.utc)
    assert date(2026, 4, 20) not in by_night
    assert steps_by_day(parsed()[0])[date(2026, 4, 21)] == 800  # 06:30 +0900, the 20th in Oslo


def test_watch_and_phone_steps_are_never_summed() -> None:
    records, _, source = parsed()
    steps = steps_by_day(records)
    assert steps[date(2026, 3, 2)] == 4000  # watch 3000 + 1000 (its repeat once), not + the phone's 3900
    assert steps[date(2026, 3, 3)] == 2222  # only the phone that day
    assert steps[date(2026, 3, 4)] == 1500  # the watch says 0: not worn, the phone's count
    assert source.steps_origin == {"the watch": 2, "the phone": 2}


def test_sdnn_is_stored_as_sdnn_never_as_rmssd() -> None:
    records, _, source = parsed()
    hrv = {r.night_date: (r.rmssd_ms, r.sdnn_ms) for r in records if isinstance(r, NightlyHrv)}
    # the night's readings averaged (48.2 at 02:00 and 52.0 at 04:00), each night its own; RMSSD stays empty
    assert hrv == {date(2026, 3, 2): (None, 50.1), date(2026, 3, 3): (None, 51.0)}
    reasons = {s.folder: s.reason for s in source.skipped}
    assert set(reasons) == {"other record types"} and "1 record(s)" in reasons["other record types"]


def wrist_export(path: Path, nights: list[tuple[date, str, str]]) -> Path:
    """An export.xml of sleeping wrist temperatures: (wake date, value °C, writer's device) a night, each over the
    night's sleep (23:30 to 06:30 local)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<HealthData locale="en_GB">']
    for wake, value, device in nights:
        start = datetime(wake.year, wake.month, wake.day, 6, 30) - timedelta(hours=7)
        stamp = "%Y-%m-%d %H:%M:%S +0100"
        lines.append(f'<Record type="HKQuantityTypeIdentifierAppleSleepingWristTemperature" sourceName="{device}" '
                     f'device="&lt;&lt;HKDevice&gt;, name:{device}, model:{device}&gt;" unit="degC" '
                     f'startDate="{start:{stamp}}" endDate="{start + timedelta(hours=7):{stamp}}" value="{value}"/>')
    path.write_text("\n".join(lines + ["</HealthData>"]), encoding="utf-8")
    return path


def test_wrist_temperature_becomes_a_deviation_from_the_30_days_before_once_five_nights_make_a_baseline(tmp_path):
    first = date(2026, 2, 25)
    values = ["35.40", "35.50", "35.40", "35.50", "35.40",  # five nights: a baseline (median 35.40) from here
              "36.10",                                       # a warm night: +0.70 against the five before
              "45.0",                                        # a sensor fault: quarantined, not a fever
              "35.50"]                                       # median of the six plausible nights before: 35.45
    nights = [(first + timedelta(days=i), v, "Watch") for i, v in enumerate(values)]
    nights.append((first + timedelta(days=5), "38.0", "Phone"))  # another writer that night: the watch wins
    source = AppleHealthSource(wrist_export(tmp_path / "export.xml", nights))
    raws = list(source.payloads(CTX))
    # one chunk for the whole history, across the month boundary: a night needs the nights before it
    assert [raw.resource for raw in raws] == ["wrist_temperature/all"]
    result = source.parse(raws[0], CTX)
    deviations = {r.night_date: r.skin_temp_deviation_c for r in result.records if isinstance(r, NightlyVitals)}
    assert deviations == {date(2026, 3, 2): 0.7, date(2026, 3, 4): 0.05}
    reasons = [r.reason for r in result.rejected]
    assert len(reasons) == 1 and "wrist temperature of 45.0 °C is outside 30–42 °C" in reasons[0]


def test_an_implausible_sdnn_reading_is_quarantined_and_the_nights_others_kept(tmp_path) -> None:
    xml = XML.read_text(encoding="utf-8").replace('value="52.0"', 'value="0"')
    records, rejected, _ = parsed(zipped(xml.encode("utf-8"), tmp_path / "export.zip"))
    hrv = {r.night_date: r.sdnn_ms for r in records if isinstance(r, NightlyHrv)}
    assert hrv[date(2026, 3, 2)] == 48.2
    assert any("SDNN) of 0.0 ms is outside 0–400 ms" in r.reason for r in rejected)


def test_spo2_fraction_becomes_percent_with_breathing_rate_in_one_nightly_vitals() -> None:
    vitals, = [r for r in parsed()[0] if isinstance(r, NightlyVitals)]
    assert (vitals.night_date, vitals.spo2_avg_pct, vitals.breathing_rate_brpm) == (date(2026, 3, 2), 97.0, 14.5)
    assert vitals.skin_temp_deviation_c is None  # one wrist temperature: no baseline yet, so no deviation
    resting = {r.day: r.resting_hr_bpm for r in parsed()[0] if isinstance(r, DailyRestingHeartRate)}
    assert resting == {date(2026, 3, 2): 55, date(2026, 3, 3): 57}


def test_payloads_are_bounded_chunks_per_type_and_month_holding_the_records_as_read() -> None:
    source = AppleHealthSource(ZIP)
    raws = list(source.payloads(CTX))
    assert [r.resource for r in raws] == [
        "hrv_sdnn/2026-03", "resting_hr/2026-03", "sleep/2026-03", "sleep/2026-04", "steps/2026-03",
        "steps/2026-04", "steps/undated", "vitals/2026-03", "wrist_temperature/all"]
    xml = [chunk_xml(r.body) for r in raws]  # archived compressed (CHUNK_ZLIB_LEVEL)
    assert all(r.body != text and len(r.body) < len(text) for r, text in zip(raws, xml))
    assert b"HKQuantityTypeIdentifierHeartRate\"" not in b"".join(xml)  # unread types unarchived
    assert b'value="48.2"' in xml[0] and b"InstantaneousBeatsPerMinute" in xml[0]
    assert [r.sha256 for r in raws] == [r.sha256 for r in AppleHealthSource(XML).payloads(CTX)]  # stable bytes


def test_truncated_export_imports_what_came_before_and_quarantines_the_rest(store, tmp_path: Path) -> None:
    text = XML.read_bytes()
    cut = text.index(b"<!-- resting heart rate")
    archive = zipped(text[: cut + 60], tmp_path / "export.zip")  # cut off mid-record, as a broken download
    result = import_apple_health(store, enrol(store), archive, arrived_on=date(2026, 5, 1))
    assert result.sync.rejected == 2  # the undated steps row, and the break
    rows = dict(store.query_rows("SELECT locator, reason FROM quarantine"))
    (locator, reason), = [(k, v) for k, v in rows.items() if k.startswith("unreadable/")]
    assert "breaks off or is malformed" in reason and "Everything before the break was imported" in reason
    assert store.query_rows("SELECT count(*) FROM sleep_sessions")[0][0] == 7  # every night before the break
    assert store.query_rows("SELECT count(*) FROM daily_activity")[0][0] == 4
    assert store.query_rows("SELECT count(*) FROM daily_resting_hr")[0][0] == 0  # after the break


def test_reimporting_the_same_export_changes_nothing(store) -> None:
    person = enrol(store)
    first = import_apple_health(store, person, ZIP, arrived_on=date(2026, 5, 1))
    before = data_rows(store)
    again = import_apple_health(store, person, ZIP, arrived_on=date(2026, 5, 1))
    assert first.new_payloads == 9 and again.new_payloads == 0
    assert data_rows(store) == before
    assert (before["sleep_sessions"], before["daily_activity"], before["daily_resting_hr"],
            before["nightly_vitals"], before["nightly_hrv"]) == (7, 4, 2, 1, 2)


def test_apple_health_person_has_nothing_to_fetch_nightly(store) -> None:
    assert source_for(enrol(store)) is None


def test_cli_import_prints_counts_priority_skips_and_refuses_wrong_inputs(tmp_path: Path, monkeypatch) -> None:
    from pipelines.cli import app

    monkeypatch.setenv("EMBERWATCH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    added = runner.invoke(app, ["person", "add", "t1", "--email", "t1@example.org", "--timezone", OSLO,
                                "--source", "apple-health"])
    assert added.exit_code == 0, added.output
    done = runner.invoke(app, ["import", "apple-health", str(ZIP), "--person", "t1"])
    assert done.exit_code == 0, done.output
    assert "Imported 16 records from 9 chunks" in done.output
    assert "Sleep, one writer a night and never a sum: 1 nights from in bed only (phone)" in done.output
    assert "Steps, one writer a day and never a sum: 2 days from the phone, 2 days from the watch." in done.output
    skipped = [line.split(":")[0] for line in done.output.splitlines() if line.startswith("Skipped")]
    assert skipped == ["Skipped other record types"] and "1 item(s) could not be read" in done.output
    (tmp_path / "export.txt").write_text("not an export")
    (tmp_path / "damaged.zip").write_bytes(ZIP.read_bytes()[:200])
    for wrong in (tmp_path / "missing.zip", tmp_path / "export.txt", tmp_path / "damaged.zip"):
        refused = runner.invoke(app, ["import", "apple-health", str(wrong), "--person", "t1"])
        assert refused.exit_code == 1 and "Traceback" not in refused.output
    no_export = tmp_path / "no-export.zip"
    with zipfile.ZipFile(no_export, "w") as archive:
        archive.writestr("apple_health_export/export_cda.xml", "<x/>")
    refused = runner.invoke(app, ["import", "apple-health", str(no_export), "--person", "t1"])
    assert refused.exit_code == 1 and "holds no apple_health_export/export.xml" in refused.output


@settings(max_examples=120, deadline=None, derandomize=True)
@given(resource=st.sampled_from(["sleep/2026-03", "steps/2026-03", "resting_hr/2026-03", "vitals/2026-03",
                                 "hrv_sdnn/2026-03", "unreadable/3", "other/2026-03"]),
       cut=st.integers(0, 7000), tail=st.binary(max_size=40), zone=st.sampled_from([OSLO, "Not/AZone"]),
       compressed=st.booleans())
def test_parse_never_raises_for_damaged_chunks(resource: str, cut: int, tail: bytes, zone: str,
                                               compressed: bool) -> None:
    source = AppleHealthSource(XML)
    # Damaged as archived (compressed), or as the plain XML chunks archived before compression still parse.
    bodies = {raw.resource: raw.body if compressed else chunk_xml(raw.body) for raw in source.payloads(CTX)}
    body = bodies.get(resource, bodies["sleep/2026-03"])[:cut] + tail
    result = source.parse(RawPayload("t1", "apple-health", resource, body, datetime.now(timezone.utc)),
                          PersonContext("t1", zone))
    assert all(record.source == "apple-health" for record in result.records)


def test_workouts_summaries_and_correlations_are_passed_over_and_cleared(tmp_path: Path) -> None:
    text = XML.read_text(encoding="utf-8")
    extra = (' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="Omron" '
             'startDate="2026-03-02 08:00:00 +0100" endDate="2026-03-02 08:00:00 +0100">\n'
             '  <Record type="HKQuantityTypeIdentifierBloodPressureSystolic" sourceName="Omron" unit="mmHg" '
             'startDate="2026-03-02 08:00:00 +0100" endDate="2026-03-02 08:00:00 +0100" value="118"/>\n'
             ' </Correlation>\n'
             ' <Workout workoutActivityType="HKWorkoutActivityTypeRunning" duration="30" sourceName="Ana’s Apple '
             'Watch" startDate="2026-03-02 18:00:00 +0100" endDate="2026-03-02 18:30:00 +0100"/>\n'
             ' <ActivitySummary dateComponents="2026-03-02" activeEnergyBurned="420"/>\n')
    xml = tmp_path / "export.xml"
    xml.write_text(text.replace(" <!-- steps:", extra + " <!-- steps:"), encoding="utf-8")
    records, rejected, source = parsed(xml)
    assert records == parsed()[0] and len(rejected) == 1
    assert "2 record(s)" in {s.folder: s.reason for s in source.skipped}["other record types"]


def test_the_import_hands_the_writer_bounded_batches_and_batching_changes_no_result(store, tmp_path: Path,
                                                                                     monkeypatch) -> None:
    import pipelines.import_apple_health as importer
    from storage.store import Store

    batches: list[list[str]] = []  # the chunks (resources) of each batch the writer was handed

    def counting_ingest(store_, fetched):
        fetched = list(fetched)
        batches.append([raw.resource for f in fetched for raw in f.payloads])
        return ingest(store_, fetched)

    ingest = importer.ingest
    monkeypatch.setattr(importer, "ingest", counting_ingest)
    small = import_apple_health(store, enrol(store), ZIP, arrived_on=date(2026, 5, 1), batch_chunks=2)
    assert batches == [  # two chunks at a time, in file-key order; nothing is held past its batch
        ["hrv_sdnn/2026-03", "resting_hr/2026-03"], ["sleep/2026-03", "sleep/2026-04"],
        ["steps/2026-03", "steps/2026-04"], ["steps/undated", "vitals/2026-03"], ["wrist_temperature/all"]]
    with Store(tmp_path / "one-batch.duckdb") as whole_store:
        whole = import_apple_health(whole_store, enrol(whole_store), ZIP, arrived_on=date(2026, 5, 1))
        assert [len(batch) for batch in batches[5:]] == [8, 1]  # BATCH_CHUNKS
        assert data_rows(whole_store) == data_rows(store)
    assert (small.sync.records, small.sync.rejected, small.new_payloads) == (whole.sync.records,
                                                                             whole.sync.rejected, 9) == (16, 1, 9)
    assert (small.sleep_origin, small.steps_origin) == (whole.sleep_origin, whole.steps_origin)
