"""`emberwatch import check-ins`: PMsys and plain CSV files are archived as received, read into the person's own
local dates, unanswered questions are never stored as 0, bad rows are quarantined with a reason, and a second
import changes nothing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from connectors.check_in_files import read_plain_csv, read_pmsys
from pipelines.import_check_ins import import_check_ins
from storage.check_ins import load_check_ins

FIXTURE = Path(__file__).parent / "fixtures" / "pmdata_p01_pmsys_excerpt" / "wellness.csv"
HEADER = "effective_time_frame,fatigue,mood,readiness,sleep_duration_h,sleep_quality,soreness,soreness_area,stress\n"


def test_a_report_belongs_to_its_local_date_in_the_persons_zone():
    # 23:10 UTC in January is 00:10 the next day in Oslo: that date is the night's wake date.
    body = (HEADER + "2020-01-14T23:10:00.000Z,3,3,5,7,3,3,[],3\n").encode()
    read = read_pmsys(body, "Europe/Oslo")
    assert {a.report_date for a in read.answers} == {date(2020, 1, 15)}
    assert {a.recorded_at for a in read.answers} == {datetime(2020, 1, 14, 23, 10)}
    assert read_pmsys(body, "America/New_York").answers[0].report_date == date(2020, 1, 14)


def test_unanswered_questions_are_skipped_and_sleep_duration_is_not_a_feeling():
    body = (HEADER + "2020-01-14T07:00:00.000Z,0,,5,7,3,3,[],3\n").encode()
    read = read_pmsys(body, "Europe/Oslo")
    assert sorted(a.scale for a in read.answers) == ["readiness", "sleep_quality", "soreness", "stress"]
    assert read.skipped_unanswered == 2 and not read.rejected


def test_two_reports_on_one_local_date_the_later_one_wins(store, tmp_path):
    store.add_person("p01", "p01@example.org", "Europe/Oslo", "fitbit-export")
    # Written out of order on purpose: the later moment wins, not the later line; an unanswered question in the
    # earlier report leaves nothing behind.
    path = tmp_path / "two.csv"
    path.write_text(HEADER + "2020-01-14T18:00:00.000Z,4,4,8,7,4,4,[],4\n"
                    "2020-01-14T06:00:00.000Z,2,2,3,7,2,0,[],2\n")
    result = import_check_ins(store, store.person("p01"), path, "pmsys")
    rows = load_check_ins(store, "p01")
    assert dict(zip(rows.scale, rows.value)) == {"fatigue": 4, "mood": 4, "readiness": 8, "sleep_quality": 4,
                                                 "soreness": 4, "stress": 4}
    assert result.answers == 6


def test_bad_rows_are_quarantined_with_a_reason_and_the_rest_imported(store, tmp_path):
    store.add_person("p01", "p01@example.org", "Europe/Oslo", "fitbit-export")
    path = tmp_path / "wellness.csv"
    path.write_text(HEADER + "2020-01-13T07:00:00.000Z,3,3,5,7,3,3,[],3\n"
                    "yesterday,3,3,5,7,3,3,[],3\n"
                    "2020-01-14T07:00:00.000Z,3,lots,5,7,9,3,[],3\n")
    result = import_check_ins(store, store.person("p01"), path, "pmsys")
    reasons = {r.locator: r.reason for r in result.rejected}
    assert set(reasons) == {"row 2", "row 3, mood", "row 3, sleep_quality"}
    assert "not a UTC time stamp" in reasons["row 2"] and "not a number" in reasons["row 3, mood"]
    assert "runs from 1 to 5" in reasons["row 3, sleep_quality"]
    assert result.answers == 6 + 4
    quarantined = store.query_rows("SELECT locator, source FROM quarantine WHERE person_id = 'p01' ORDER BY 1")
    assert quarantined == [("row 2", "pmsys"), ("row 3, mood", "pmsys"), ("row 3, sleep_quality", "pmsys")]
    raw = store.query_rows("SELECT source, resource, body FROM raw_payloads WHERE person_id = 'p01'")
    assert raw == [("pmsys", "check-ins/wellness.csv", path.read_bytes())]


def test_importing_the_same_file_again_changes_nothing(store):
    store.add_person("p01", "p01@example.org", "Europe/Oslo", "fitbit-export")
    first = import_check_ins(store, store.person("p01"), FIXTURE, "pmsys")
    tables = ("check_ins", "raw_payloads", "quarantine", "history_arrivals")
    before = {t: store.query_rows(f"SELECT * FROM {t} ORDER BY ALL") for t in tables}
    again = import_check_ins(store, store.person("p01"), FIXTURE, "pmsys", arrived_on=first.arrived_on)
    assert {t: store.query_rows(f"SELECT * FROM {t} ORDER BY ALL") for t in tables} == before
    assert first.new_file and not again.new_file
    # 28 reports of March 2020, 6 scales each, every one answered.
    assert first.answers == 28 * 6 and first.dates.first == date(2020, 3, 1) and first.dates.last == date(2020, 3, 30)


def test_a_plain_csv_reads_date_scale_value_and_refuses_what_is_not_on_a_scale(store, tmp_path):
    store.add_person("p01", "p01@example.org", "Europe/Oslo", "fitbit-export")
    path = tmp_path / "mine.csv"
    path.write_text("date,scale,value\n2026-11-30,fatigue,2\n2026-12-01,readiness,0\n20261202,stress,3\n"
                    "2026-12-02,happiness,4\n2026-12-02,stress,\n2026-12-03,mood,4.5\n")
    result = import_check_ins(store, store.person("p01"), path, "csv")
    rows = load_check_ins(store, "p01")
    assert list(zip(rows.report_date.astype(str), rows.scale, rows.value)) == [
        ("2026-11-30", "fatigue", 2.0), ("2026-12-01", "readiness", 0.0), ("2026-12-03", "mood", 4.5)]
    assert set(rows.source) == {"csv"}
    assert sorted(r.locator for r in result.rejected) == ["row 3", "row 4", "row 5"]
    assert "not a check-in scale" in next(r.reason for r in result.rejected if r.locator == "row 4")
    assert read_plain_csv(b"when,what\n").rejected[0].locator == ""
