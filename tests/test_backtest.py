"""The backtest replays stored signals through the production rule and counts what production would have sent."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from alerts.rules import NightSignal
from connectors.synthetic import SyntheticCohort, SyntheticSource
from alerts.backtest import backtest, replay_person
from pipelines import steps
from pipelines.settings import Settings
from tests.test_pipeline import replay


def test_replay_keeps_the_budget_and_rearm_state_across_nights():
    d0 = date(2026, 3, 1)
    spec = "B" * 20 + "..." + "B" * 3
    signals = [NightSignal(d0 + timedelta(days=i), True, False, c == "B", c == "B", False) for i, c in enumerate(spec)]
    alerts, held = replay_person(signals)
    # night 0 alerts; nights 1-19 are within 14 days or not re-armed; after 3 in-range nights, night 23 alerts
    assert alerts == [d0, d0 + timedelta(days=23)] and held == 0


def test_backtest_finds_the_same_alerts_as_the_nightly_run_and_scores_ground_truth(tmp_path):
    from storage.store import Store

    cohort = SyntheticCohort(n_people=2, n_nights=62, seed=7)  # c01 calm, c02 rough
    settings = Settings(home=tmp_path)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with Store(tmp_path / "b.duckdb") as store:
        for p in cohort.people:
            store.add_person(p.person_id, p.email, p.tz_name, "synthetic", {"n_people": 2, "n_nights": 62, "seed": 7})
        # The first 30 nights in one sync (decided night by night, as the nightly run would), then night by night.
        people, early = store.people(), cohort.nights[:30]
        fetched = [steps.fetch_person(p, SyntheticSource(cohort), early[-1], len(early)) for p in people]
        steps.update_features(store, steps.ingest(store, fetched).people.values())
        for night in early:
            steps.queue_alerts(store, people, night, settings, now)
        replay(store, cohort, settings, cohort.nights[30:])
        nightly = store.query_rows("SELECT person_id, night_date FROM alerts ORDER BY 1, 2")
        report = backtest(store)
    replayed = sorted((p.person_id, a) for p in report.people for a in p.alerts)
    assert replayed == nightly and nightly  # same decision code, same state: same alerts
    patch = next(s for s in report.patches if s.kind == "rough")
    assert patch.lead_days is not None and 0 <= patch.lead_days <= 7
    summary = report.summary()
    assert summary["rough_recall_within_7d"] == 1.0 and summary["calm_alerts"] == 0
    assert {p.profile for p in report.people} == {"calm", "rough"}
