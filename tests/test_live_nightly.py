"""Acceptance: `emberwatch nightly` (the real Prefect flow) with one google-health person and one fitbit-web person,
each against its local fake server, produces the same features and the same alert on a scripted rough patch as the
same nights delivered straight as records (the synthetic source), and stays within one request per data type."""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from datetime import timedelta

import pytest
import requests
from cryptography.fernet import Fernet

from connectors import fitbit_web, google_health
from connectors.synthetic import SyntheticCohort
from storage.store import Store
from pipelines import flows, steps
from pipelines.cli_connectors import backfill_person, enroll_person
from pipelines.settings import load_settings
from pipelines.sources import source_for
from tests.fake_fitbit_api import FakeFitbit
from tests.fake_google_health import FakeGoogleHealth, load_records
from tests.test_pipeline import replay

pytestmark = pytest.mark.flow

SLEEP_COLUMNS = ("tst_min", "time_in_bed_min", "efficiency_pct", "waso_min", "onset_latency_min", "awakenings_count",
                 "bedtime_min", "wake_min", "midsleep_min", "nap_min", "ln_rmssd", "breathing_rate_brpm",
                 "skin_temp_deviation_c", "spo2_avg_pct", "day_sleep", "valid_night")


def features(store: Store, person_id: str) -> dict:
    cols = ", ".join(SLEEP_COLUMNS + ("resting_hr_bpm",))
    rows = store.query_rows(f"SELECT night_date, {cols} FROM nightly_features WHERE person_id = ? ORDER BY 1",
                            [person_id])
    return {r[0]: r[1:] for r in rows}


def same(a: tuple, b: tuple) -> bool:
    *sleep_a, rhr_a = a
    *sleep_b, rhr_b = b
    close = all(x == y or (isinstance(x, float) and isinstance(y, float) and abs(x - y) < 1e-6)
                for x, y in zip(sleep_a, sleep_b))
    # int64 / integer resting heart rates on the wire: the live sources see the value rounded to the beat.
    return close and (rhr_a is None) == (rhr_b is None) and (rhr_a is None or abs(rhr_a - rhr_b) <= 0.5)


@pytest.fixture
def live_env(monkeypatch):
    monkeypatch.setenv("EMBERWATCH_SECRET_KEY", Fernet.generate_key().decode())
    for prefix in ("GOOGLE", "FITBIT"):
        monkeypatch.setenv(f"EMBERWATCH_{prefix}_CLIENT_ID", f"{prefix.lower()}-client")
        monkeypatch.setenv(f"EMBERWATCH_{prefix}_CLIENT_SECRET", f"{prefix.lower()}-secret")
    monkeypatch.setenv("EMBERWATCH_HTTP_BACKOFF_S", "0.01")


@contextmanager
def three_people(settings):
    """The same rough-patch person three times: straight from records (reference), via google-health and via
    fitbit-web, with history up to the patch already in (reference replayed, live people backfilled)."""
    spec = {"n_people": 6, "n_nights": 100, "seed": 7}
    cohort = SyntheticCohort(**spec)
    travellers = {t.person_id for t in cohort.trips}
    rough = next(g for g in cohort.ground_truth if g.kind == "rough" and g.person_id not in travellers)
    ref = cohort.person(rough.person_id)
    records = cohort.records(ref.person_id)
    with FakeGoogleHealth() as gfake, FakeFitbit(tz_name=ref.tz_name) as ffake:
        gfake.timezone_name = ref.tz_name
        load_records(gfake, [r.model_copy(update={"person_id": "gh"}) for r in records])
        ffake.load_records([r.model_copy(update={"person_id": "fb"}) for r in records])
        with Store(settings.db_path) as store:
            store.add_person(ref.person_id, ref.email, ref.tz_name, "synthetic", spec)
            store.add_person("gh", "gh@example.org", ref.tz_name, "google-health", {
                "api_base": gfake.base_url, "authorize_url": gfake.base_url + "/o/oauth2/v2/auth",
                "token_url": gfake.base_url + "/token"})
            store.add_person("fb", "fb@example.org", ref.tz_name, "fitbit-web", {
                "api_base": ffake.base_url, "authorize_url": ffake.base_url + "/oauth2/authorize",
                "token_url": ffake.base_url + "/oauth2/token"})
            for pid, source in (("gh", "google-health"), ("fb", "fitbit-web")):
                enroll_person(store, pid, source, lambda url: requests.get(url, timeout=10), timeout_s=20)
            history = [n for n in cohort.nights if n < rough.onset_night]
            replay(store, cohort, settings, history)
            for pid in ("gh", "fb"):
                backfill_person(store, pid, len(history), today=history[-1])
        yield ref, rough, gfake, ffake


def check_same_alert_and_features(settings, ref, alert_night) -> None:
    assert alert_night is not None, "the rough patch raised no alert within 7 nights of onset"
    with Store(settings.db_path) as store:
        alerted = {r[0] for r in store.query_rows("SELECT person_id FROM alerts WHERE night_date = ?", [alert_night])}
        assert alerted == {ref.person_id, "gh", "fb"}
        reference = features(store, ref.person_id)
        for pid in ("gh", "fb"):
            live = features(store, pid)
            assert live.keys() == reference.keys()
            differing = [n for n in reference if not same(live[n], reference[n])]
            assert not differing, f"{pid} features differ from the records path on {differing[:3]}"


FLOW_PASSES_STORE = "store" in inspect.signature(flows.fetch_person.fn).parameters


@pytest.mark.skipif(FLOW_PASSES_STORE, reason="the Prefect flow test below covers the same ground")
def test_nightly_steps_with_live_sources_match_the_records_path(live_env, ew_home):
    """What the nightly flow does, as plain steps, with source_for(person, store)."""
    settings = load_settings()
    with three_people(settings) as (ref, rough, gfake, ffake):
        alert_night = None
        for night in [rough.onset_night + timedelta(days=i) for i in range(8)]:
            gfake.requests.clear()
            ffake.requests.clear()
            with Store(settings.db_path) as store:
                people = store.people()
                fetched = [steps.fetch_person(p, source_for(p, store), night, settings.refetch_nights) for p in people]
                report = steps.ingest(store, fetched)
                steps.update_features(store, report.people.values())
                queued = steps.queue_alerts(store, people, night, settings,
                                                       flows.morning_of(night, settings)).queued
            assert len(gfake.requests) <= len(google_health.DATA_TYPES)
            assert len(ffake.requests) <= len(fitbit_web.DATA_TYPES)
            if queued:
                alert_night = night
                break
        print(f"\nsteady-state requests per person-night: google-health {len(gfake.requests)}, "
              f"fitbit-web {len(ffake.requests)}")
    check_same_alert_and_features(settings, ref, alert_night)


@pytest.mark.skipif(not FLOW_PASSES_STORE,
                    reason="pipelines/flows.py does not pass its store to source_for yet (see the connectors report)")
def test_nightly_flow_with_live_sources_matches_the_records_path(prefect_harness, live_env, ew_home):
    settings = load_settings()
    with three_people(settings) as (ref, rough, gfake, ffake):
        alert_night = None
        for night in [rough.onset_night + timedelta(days=i) for i in range(8)]:
            gfake.requests.clear()
            ffake.requests.clear()
            report = flows.nightly(flows.NightlyParams(night_date=night, now_utc=flows.morning_of(night, settings)))
            assert report.failures == []
            assert len(gfake.requests) <= len(google_health.DATA_TYPES)
            assert len(ffake.requests) <= len(fitbit_web.DATA_TYPES)
            if report.alerts_queued:
                alert_night = night
                break
    check_same_alert_and_features(settings, ref, alert_night)
