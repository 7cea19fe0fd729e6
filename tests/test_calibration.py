"""Per-person sleep calibration (features/calibration.py, pipelines/calibrate.py): the person's own check-ins,
when they repeatedly disagree with the default sleep threshold, widen it by one bounded step, from the night after
the evidence was complete; a rebuild gives the same nights; the digest says so in one sentence."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from alerts.compose import calibration_sentence, compose_digest
from alerts.digest import build_week_summary
from alerts.message_types import MessageSettings, Recipient
from alerts.signed_links import LinkSigner, person_links
from features.calibration import CalibrationRules, Evidence, evidence_as_of, steps_over_history
from features.engine import compute_features, rebuild_all
from pipelines.import_check_ins import import_check_ins
from storage.calibration import load_steps
from tests.helpers import calm_history

RULES = CalibrationRules()
START = date(2026, 1, 1)
FIRST_SHORT = date(2026, 3, 2)  # after 60 calm nights
SHORT_EVERY_DAYS = 3
SHORT_TST_MIN = 385  # ~35 min under a ~420 min usual with a 20-min robust SD: z ~ -1.7, between 1.5 and 2.0
CLEARLY_SHORT_NIGHT, CLEARLY_SHORT_TST_MIN = FIRST_SHORT + timedelta(days=50), 330  # z ~ -4.5, after the step


def _reports(rows):
    return pd.DataFrame(rows, columns=["report_date", "scale", "value", "source"])


# --- the decision, as plain functions ------------------------------------------------------------------------


def test_ten_checks_mostly_felt_as_usual_widen_by_one_step_and_fewer_change_nothing():
    assert Evidence(10, 8).widening(RULES) == 0.5  # 80 % >= 75 %
    assert Evidence(10, 7).widening(RULES) == 0.0  # 70 %: not enough
    assert Evidence(9, 9).widening(RULES) == 0.0  # too few checks: nothing changes ...
    assert Evidence(9, 0).widening(RULES, current=0.5) == 0.5  # ... either way
    assert Evidence(12, 7).widening(RULES, current=0.5) == 0.5  # 58 %: still mostly disagreeing, keep
    assert Evidence(12, 5).widening(RULES, current=0.5) == 0.0  # under half: the flags are felt again
    assert max(Evidence(n, n).widening(RULES, current=0.5) for n in range(30)) == RULES.widen_sd  # the limit


def test_evidence_counts_short_nights_with_a_morning_report_and_weeks_with_two_short_nights():
    mornings = [(START + timedelta(days=i), "fatigue", 3.0, "pmsys") for i in range(20)]
    mornings[5] = (START + timedelta(days=5), "fatigue", 4.0, "pmsys")  # felt better than their mean
    mornings[6] = (START + timedelta(days=6), "fatigue", 2.0, "pmsys")  # felt worse
    weekly = [(date(2026, 1, 18), "week_drained", 1.0, "weekly-email"),  # Sunday; 2 short nights in its week
              (date(2026, 1, 25), "week_drained", 4.0, "weekly-email")]  # one short night only: not a check
    short = [START + timedelta(days=5), START + timedelta(days=6), START + timedelta(days=30),  # no report
             date(2026, 1, 13), date(2026, 1, 15), date(2026, 1, 22)]
    e = evidence_as_of(short, _reports(mornings + weekly), date(2026, 1, 31))
    # mornings 5 (as usual or better), 6 (worse), 13 and 15 (3.0 >= the mean 2.95: as usual); week of 18th: 1
    assert (e.checks, e.disagreements) == (5, 4)
    # the mean is the person's own up to the day decided: before the 6th, the 5th has too few reports for a z
    assert evidence_as_of(short, _reports(mornings), START + timedelta(days=5)) == Evidence(0, 0)


def test_history_replay_gives_one_step_on_the_day_after_the_evidence_is_complete():
    short = [FIRST_SHORT + timedelta(days=k) for k in range(0, 60, SHORT_EVERY_DAYS)]
    rows = [(START + timedelta(days=i), s, 4.0 if START + timedelta(days=i) in short else 3.0, "csv")
            for i in range(120) for s in ("fatigue", "sleep_quality")]
    steps = steps_over_history(short, _reports(rows), START, START + timedelta(days=119))
    tenth = short[9]
    assert [(d, w, (e.checks, e.disagreements)) for d, w, e in steps] == [(tenth + timedelta(days=1), 0.5, (10, 10))]


# --- end to end: a real store, a real CSV of reports, the feature engine ------------------------------------------


def _jitter(i: int):
    return (int(12 * math.sin(i * 1.7)), 0.5 * math.sin(i * 2.3), 0.05 * math.sin(i * 0.9))


def _history(person: str) -> tuple[list, list[date]]:
    records = calm_history(person, START, 60, jitter=_jitter)
    short: list[date] = []
    for k in range(60):
        night = FIRST_SHORT + timedelta(days=k)
        if k % SHORT_EVERY_DAYS == 0 or night == CLEARLY_SHORT_NIGHT:
            records += calm_history(person, night, 1,
                                    tst_min=CLEARLY_SHORT_TST_MIN if night == CLEARLY_SHORT_NIGHT else SHORT_TST_MIN)
            short.append(night)
        else:
            records += calm_history(person, night, 1, jitter=lambda _i, k=k: _jitter(60 + k))
    return records, short


def _report_file(tmp_path, short: list[date]):
    lines = ["date,scale,value"]
    for i in range(120):
        day = START + timedelta(days=i)
        felt = 4 if day in short else 3  # after the short nights: as usual or better
        lines += [f"{day},fatigue,{felt}", f"{day},sleep_quality,{felt}"]
    path = tmp_path / "mornings.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def calibrated(store, tmp_path):
    store.add_person("k", "k@example.org", "Europe/London", "synthetic", {})
    records, short = _history("k")
    compute_features(store, store.upsert_records(records))
    before = store.query_df("SELECT night_date, tst_z, sleep_deviates FROM night_signals WHERE person_id = 'k' "
                            "ORDER BY night_date")
    result = import_check_ins(store, store.person("k"), _report_file(tmp_path, short), "csv")
    return store, short, before, result, tmp_path


def test_disagreeing_check_ins_widen_the_threshold_from_the_next_night_only(calibrated):
    store, short, before, result, _ = calibrated
    steps = load_steps(store, "k")
    assert len(steps) == 1
    step = steps[0]
    assert (step.z_sleep_extra, step.checks, step.disagreements) == (0.5, 10, 10)
    assert step.applies_from == short[9] + timedelta(days=1)
    assert result.recalibrated_from == step.applies_from
    after = store.query_df("SELECT night_date, tst_z, sleep_deviates FROM night_signals WHERE person_id = 'k' "
                           "ORDER BY night_date").set_index("night_date")
    between = [n for n in short if -2.0 < after.loc[pd.Timestamp(n), "tst_z"] <= -1.5]  # the two thresholds
    assert sum(n < step.applies_from for n in between) >= 8 and sum(n >= step.applies_from for n in between) >= 4
    for night in between:
        deviates = bool(after.loc[pd.Timestamp(night), "sleep_deviates"])
        assert deviates is (night < step.applies_from), night
    # a clearer change still shows: a night below the widened threshold deviates after the step too
    assert CLEARLY_SHORT_NIGHT > step.applies_from
    assert after.loc[pd.Timestamp(CLEARLY_SHORT_NIGHT), "tst_z"] <= -2.0
    assert bool(after.loc[pd.Timestamp(CLEARLY_SHORT_NIGHT), "sleep_deviates"]) is True
    # nights before the step are as they were
    old = before.set_index("night_date")
    early = [pd.Timestamp(n) for n in short if n < step.applies_from]
    assert list(old.loc[early, "sleep_deviates"]) == list(after.loc[early, "sleep_deviates"])


def test_a_rebuild_gives_the_same_nights_and_importing_again_changes_nothing(calibrated):
    store, short, _, _, tmp_path = calibrated
    query = "SELECT * FROM night_signals WHERE person_id = 'k' ORDER BY night_date"
    stored = store.query_df(query)
    rebuild_all(store)
    pd.testing.assert_frame_equal(store.query_df(query), stored)
    steps = load_steps(store, "k")
    again = import_check_ins(store, store.person("k"), _report_file(tmp_path, short), "csv")
    assert again.recalibrated_from is None
    assert load_steps(store, "k") == steps


def test_the_weekly_email_says_so_in_one_kind_sentence_that_week_only(calibrated):
    store, _, _, _, _ = calibrated
    applies_from = load_steps(store, "k")[0].applies_from
    decided_on = applies_from - timedelta(days=1)
    week_start = decided_on - timedelta(days=decided_on.weekday())
    summary = build_week_summary(store, "k", week_start)
    assert summary.sleep_calibration_now == 0.5
    assert build_week_summary(store, "k", week_start + timedelta(days=7)).sleep_calibration_now is None
    links = person_links("https://emberwatch.example.org", LinkSigner(["test-link-key-0123456789"]), "k",
                         datetime(2026, 4, 6, 6, 45, tzinfo=UTC))
    recipient = Recipient(person_id="k", email="k@example.org", tz_name="Europe/London", detail_level="minimal",
                          links=links)
    text = " ".join(compose_digest(recipient, summary, MessageSettings()).text.split())
    assert calibration_sentence(0.5) in text
    assert "waits for a clearer change in your sleep" in text


def test_the_nightly_run_decides_as_of_the_newest_night_for_the_nights_to_come(calibrated):
    store, _, _, _, _ = calibrated
    from pipelines.calibrate import calibrate_tonight
    from storage.calibration import replace_steps

    replace_steps(store, "k", [])  # as if the reports had come one by one, through the weekly question
    stored = store.query_df("SELECT * FROM night_signals WHERE person_id = 'k' ORDER BY night_date")
    newest = stored.night_date.max().date()
    assert calibrate_tonight(store, ["k", "nobody"]) == {"k": 0.5}
    [step] = load_steps(store, "k")
    assert step.applies_from == newest + timedelta(days=1)  # no stored night changes
    pd.testing.assert_frame_equal(
        store.query_df("SELECT * FROM night_signals WHERE person_id = 'k' ORDER BY night_date"), stored)
    assert calibrate_tonight(store, ["k"]) == {}  # decided again: the same, nothing written


def test_a_run_that_died_between_storing_steps_and_recomputing_the_nights_finishes_the_work(calibrated):
    store, _, _, _, _ = calibrated
    from pipelines.calibrate import recalibrate_history
    from storage.calibration import pending_recompute, replace_steps

    query = "SELECT night_date, sleep_deviates, sleep_flag FROM night_signals WHERE person_id = 'k' ORDER BY 1"
    expected = store.query_df(query)
    steps = load_steps(store, "k")
    replace_steps(store, "k", [])
    rebuild_all(store)  # the nights as they were before the step
    stale = store.query_df(query)
    assert not stale.equals(expected)
    # the crash: the new steps are stored (with the note of what is left to do), the nights are not recomputed
    replace_steps(store, "k", steps, recompute_from=steps[0].applies_from)
    assert pending_recompute(store, "k") == steps[0].applies_from
    assert recalibrate_history(store, "k") == steps[0].applies_from
    pd.testing.assert_frame_equal(store.query_df(query), expected)
    assert pending_recompute(store, "k") is None
    assert recalibrate_history(store, "k") is None  # done: nothing left to do
