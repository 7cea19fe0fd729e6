"""Every sentence of a weekly check-in is true of the nights its charts draw: on replayed synthetic weeks, a feature
the words say went well sits inside its usual band or on its better side, and a move the words name lies on the
side of the usual they say."""

from __future__ import annotations

import statistics
from datetime import timedelta

from alerts.chart_data import CHART_FEATURES, load_series
from alerts.digest import build_week_summary
from features.catalog import FEATURES
from storage.store import Store
from tests.test_pipeline import replayed  # noqa: F401  (fixture: 6 people x 100 nights, replayed night by night)


def test_the_words_and_the_charts_of_every_replayed_week_agree(replayed):  # noqa: F811
    path, cohort, _ = replayed
    checked = {"went well": 0, "moved": 0}
    with Store(path) as store:
        for person in cohort.people:
            mondays = [n for n in cohort.nights if n.isoweekday() == 1][1:]
            for monday in mondays:
                summary = build_week_summary(store, person.person_id, monday - timedelta(days=7))
                if summary.warming_up:
                    continue
                week = (summary.week_start, summary.week_end)
                for series in load_series(store, person.person_id, summary.week_end):
                    if series.band_mid is None:
                        continue
                    values = [v for n, v in zip(series.nights, series.values) if week[0] <= n <= week[1]]
                    if not values:
                        continue
                    week_median = statistics.median(values)
                    worse = FEATURES[series.feature].worse
                    if series.feature in summary.went_well:
                        # "went well": steady (within half a band) or the better way: never past the worse edge.
                        beyond = week_median < series.band_low if worse == "down" else week_median > series.band_high
                        assert not beyond, (person.person_id, week, series.feature, week_median, series.band_low,
                                            series.band_high)
                        checked["went well"] += 1
                    for move in summary.moves:
                        if move.feature == series.feature:
                            side = "up" if week_median >= series.band_mid else "down"
                            assert side == move.direction, (person.person_id, week, move)
                            checked["moved"] += 1
    assert set(CHART_FEATURES) >= {"tst_min", "resting_hr_bpm", "ln_rmssd"}
    assert checked["went well"] > 20 and checked["moved"] > 5, checked  # the check saw many real weeks


def test_a_week_with_signs_of_illness_is_never_told_as_a_heavy_week(replayed):  # noqa: F811
    """Illness signs explain worse nights (SIGNALS.md): a week whose sleep or recovery got worse (nights that deviate,
    or medians the words name as worse) with them reads as the body fighting something off, whether or not they
    held an alert back."""
    from alerts.compose import compose_digest
    from alerts.message_types import MessageSettings, Recipient

    path, cohort, _ = replayed
    ill_weeks = 0
    with Store(path) as store:
        for person in cohort.people:
            for monday in [n for n in cohort.nights if n.isoweekday() == 1][1:]:
                week_start = monday - timedelta(days=7)
                [(ill_nights, worse_nights)] = store.query_rows(
                    "SELECT count(*) FILTER (WHERE illness_flag), count(*) FILTER (WHERE sleep_deviates "
                    "OR recovery_deviates) FROM night_signals WHERE person_id = ? AND night_date BETWEEN ? AND ?",
                    [person.person_id, week_start, week_start + timedelta(days=6)])
                summary = build_week_summary(store, person.person_id, week_start)
                worse = worse_nights or any(m.worse for m in summary.moves)
                if summary.warming_up or not (ill_nights and worse):
                    continue
                ill_weeks += 1
                text = " ".join(compose_digest(Recipient(person.person_id, person.email, person.tz_name), summary,
                                               MessageSettings()).text.split())
                assert "your body may be fighting something off" in text, (person.person_id, week_start)
                assert "Many clinicians see this pattern" not in text
    assert ill_weeks >= 1  # the cohort's illness patch was seen
