"""Real Prefect flow runs (under one session-scoped test harness): the nightly and weekly flows and the demo."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from alerts.ledger import deliver_after
from connectors.synthetic import SyntheticCohort
from storage.store import Store
from pipelines import flows
from pipelines.demo import DemoCohort, deliver_until, run_demo
from pipelines.settings import load_settings
from tests.test_pipeline import replay

pytestmark = pytest.mark.flow


def test_nightly_flow_alerts_a_rough_patch_and_survives_a_broken_person(prefect_harness, ew_home):
    settings = load_settings()
    spec = {"n_people": 6, "n_nights": 100, "seed": 7}
    cohort = SyntheticCohort(**spec)
    rough = next(g for g in cohort.ground_truth if g.kind == "rough")
    with Store(settings.db_path) as store:
        for p in cohort.people:
            store.add_person(p.person_id, p.email, p.tz_name, "synthetic", spec)
        store.add_person("zz", "zz@example.org", "Europe/London", "no-such-source")
        # History up to the patch is replayed with the plain steps (fast); the patch itself runs through Prefect.
        replay(store, cohort, settings, [n for n in cohort.nights if n < rough.onset_night])
    alert_night = None
    for night in [rough.onset_night + timedelta(days=i) for i in range(8)]:
        report = flows.nightly(flows.NightlyParams(night_date=night, now_utc=flows.morning_of(night, settings)))
        assert report.failures == ["zz"]  # the broken person is recorded, everyone else goes on
        assert report.people["zz"].failed_stage == "fetch"
        assert sum(1 for p in report.people.values() if p.records > 0) == len(cohort.people)
        if report.alerts_queued:
            alert_night = night
            break
    assert alert_night is not None, "the rough patch raised no alert within 7 nights of onset"
    # The alert waits for the person's window (07:30-08:30 local, working days): delivered at that instant, with
    # any earlier mail at its own person's window, as a 15-minute `deliver` schedule would
    with Store(settings.db_path) as store:
        [(due,)] = store.query_rows(
            "SELECT deliver_after_utc FROM email_ledger WHERE kind = 'alert' AND person_id = ? AND period_key = ?",
            [rough.person_id, alert_night.isoformat()])
        assert due >= flows.morning_of(alert_night, settings).replace(tzinfo=None)
        assert deliver_after(store, store.person(rough.person_id), due.replace(tzinfo=timezone.utc)) == \
            due.replace(tzinfo=timezone.utc)  # inside their window
    assert deliver_until(settings, due.replace(tzinfo=timezone.utc) + timedelta(days=7)) >= report.alerts_queued
    with Store(settings.db_path) as store:
        alerted = store.query_rows("SELECT person_id FROM alerts WHERE night_date = ?", [alert_night])
        failures = store.query_rows("SELECT DISTINCT person_id, stage FROM run_failures")
        counts = store.table_counts()
        # every alert queued so far (a calm person may have had one earlier: ~0.05 a month) left exactly once
        alert_emails = store.query_rows("SELECT count(*) FROM email_ledger WHERE kind = 'alert'")[0][0]
    assert (rough.person_id,) in alerted
    assert failures == [("zz", "fetch")]
    emls = sorted(settings.outbox_dir.glob("alert.*.eml"))
    assert len(emls) == alert_emails >= report.alerts_queued

    again = flows.nightly(flows.NightlyParams(night_date=alert_night, now_utc=flows.morning_of(alert_night, settings)))
    assert (again.alerts_queued, again.sent) == (0, 0)
    assert sorted(settings.outbox_dir.glob("alert.*.eml")) == emls
    with Store(settings.db_path) as store:
        after = store.table_counts()
    assert {k: v for k, v in after.items() if k != "run_failures"} == \
        {k: v for k, v in counts.items() if k != "run_failures"}

    weekly = flows.weekly(flows.WeeklyParams(run_date=alert_night + timedelta(days=7),
                                             now_utc=flows.morning_of(alert_night, settings)))
    assert weekly.digests_queued == len(cohort.people)
    # the rest go out in each person's window, within the next days
    later = deliver_until(settings, flows.morning_of(alert_night, settings) + timedelta(days=4))
    assert weekly.sent + later == weekly.digests_queued


def test_demo_twice_adds_no_email_and_no_row(prefect_harness, ew_home):
    settings = load_settings()
    spec = DemoCohort(n_people=3, n_nights=24, seed=7)
    run_demo(settings, spec)
    with Store(settings.db_path) as store:
        counts = store.table_counts()
    files = sorted(p.name for p in settings.outbox_dir.iterdir())
    with Store(settings.db_path) as store:
        sent = store.query_rows("SELECT count(*) FROM email_ledger WHERE status = 'sent'")[0][0]
    assert counts["nightly_features"] > 60 and sent == len(files) // 2 > 0  # the last mail may still be queued
    run_demo(settings, spec)
    with Store(settings.db_path) as store:
        assert store.table_counts() == counts
    assert sorted(p.name for p in settings.outbox_dir.iterdir()) == files


def test_each_run_publishes_a_markdown_artifact_with_person_ids_only(prefect_harness, ew_home):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    settings = load_settings()
    with Store(settings.db_path) as store:
        store.add_person("a1", "secret-address@example.org", "Europe/London", "fitbit-export")
    night = flows.nightly(flows.NightlyParams(night_date=__import__("datetime").date(2026, 2, 3)))
    assert night.people["a1"].outcome == "no comparable night"

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["emberwatch-nightly-2026-02-03"])))

    import asyncio

    artifacts = asyncio.run(read())
    assert artifacts, "the nightly run published no artifact"
    body = artifacts[0].data
    assert "| a1 | 0 | 0 | no comparable night | - |" in body
    assert "| fetch |" in body and "| features |" in body
    assert "secret-address" not in body and "@" not in body


class FlakySource:
    """A Source that fails the first `transient_failures` fetches with a transient error, or always with a
    permanent one; it counts attempts."""

    name = "flaky"

    def __init__(self, transient_failures: int = 0, permanent: bool = False) -> None:
        self.attempts, self.transient_failures, self.permanent = 0, transient_failures, permanent

    def fetch(self, person, start, end):
        from connectors.base import TransientSourceError

        self.attempts += 1
        if self.permanent:
            raise ValueError("this source is misconfigured")
        if self.attempts <= self.transient_failures:
            raise TransientSourceError("the API answered 503")
        return iter(())

    def parse(self, raw, person):  # pragma: no cover - nothing is fetched
        raise AssertionError


@pytest.mark.parametrize("flaky, attempts, failed", [(FlakySource(transient_failures=2), 3, []),
                                                      (FlakySource(permanent=True), 1, ["f1"])])
def test_transient_fetch_errors_are_retried_and_permanent_ones_are_not(prefect_harness, ew_home, monkeypatch,
                                                                       flaky, attempts, failed):
    import datetime as dt

    settings = load_settings()
    with Store(settings.db_path) as store:
        store.add_person("f1", "f1@example.org", "Europe/London", "flaky")
    monkeypatch.setattr(flows, "sources_for", lambda person, store=None: [flaky])
    monkeypatch.setattr(flows, "fetch_person", flows.fetch_person.with_options(retry_delay_seconds=0))
    report = flows.nightly(flows.NightlyParams(night_date=dt.date(2026, 2, 3)))
    assert flaky.attempts == attempts
    assert report.failures == failed
