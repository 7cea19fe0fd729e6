"""Legacy Fitbit Web API connector (python-fitbit) end to end over real HTTP against tests/fake_fitbit_api.py, whose
shapes come from the recorded samples in tests/fixtures/fitbit_api_samples (licences in licenses/, PROVENANCE.md)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from connectors.base import PersonContext, RawPayload, TransientSourceError
from connectors.fitbit_web import DATA_TYPES, FitbitWebSource
from connectors.http import ApiError
from connectors.token_vault import ConsentRequired
from storage.store import Store
from storage.tokens import token_rows
from pipelines import steps
from pipelines.cli_connectors import backfill_person, enroll_person
from pipelines.sources import source_for
from tests.fake_fitbit_api import FakeFitbit

SAMPLES = Path(__file__).parent / "fixtures" / "fitbit_api_samples"
PERSON = "fb1"


@pytest.fixture
def live_env(monkeypatch):
    monkeypatch.setenv("EMBERWATCH_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("EMBERWATCH_FITBIT_CLIENT_ID", "23ABCD")
    monkeypatch.setenv("EMBERWATCH_FITBIT_CLIENT_SECRET", "fitbit-test-secret")
    monkeypatch.setenv("EMBERWATCH_HTTP_BACKOFF_S", "0.01")


@pytest.fixture
def fake():
    with FakeFitbit() as server:
        yield server


def enrolled(store: Store, fake: FakeFitbit) -> None:
    config = {"api_base": fake.base_url, "authorize_url": fake.base_url + "/oauth2/authorize",
              "token_url": fake.base_url + "/oauth2/token"}
    store.add_person(PERSON, "fb1@example.org", "Europe/London", "fitbit-web", config)
    enroll_person(store, PERSON, "fitbit-web", lambda url: requests.get(url, timeout=10), timeout_s=20)


def sync(store: Store, night: date) -> steps.IngestReport:
    person = store.person(PERSON)
    source = source_for(person, store)
    assert isinstance(source, FitbitWebSource)
    report = steps.ingest(store, [steps.fetch_person(person, source, night, 3)])
    report.raise_consent_lost()  # the writer acted on it (marked, one email); the caller hears of it
    return report


def raw(group: str, bundle: dict) -> RawPayload:
    return RawPayload("p", "fitbit-web", group, json.dumps(bundle).encode(), datetime.now(timezone.utc))


def test_recorded_samples_parse_into_records():
    source = FitbitWebSource(tokens=None)  # type: ignore[arg-type]
    ctx = PersonContext("p", "Europe/London")
    text = lambda name: (SAMPLES / name).read_text(encoding="utf-8-sig")  # noqa: E731
    sleep = source.parse(raw("sleep", {"sleep": [text("sleep-v1.2-stages-2-items.slack-health-bot.json"),
                                                 text("sleep-v1.2-classic.slack-health-bot.json")]}), ctx)
    assert not sleep.rejected and len(sleep.records) == 3
    assert {r.log_type for r in sleep.records} == {"stages", "classic"}
    assert all(r.source == "fitbit-web" for r in sleep.records)
    vitals = source.parse(raw("vitals", {"br": [text("br-summary-interval.fitbit-net.json")],
                                         "spo2": [text("spo2-summary-interval.fitbit-net.json")]}), ctx)
    assert not vitals.rejected and {r.night_date for r in vitals.records} >= {date(2021, 10, 25)}
    hrv = source.parse(raw("hrv", {"hrv": [text("hrv-summary-interval.fitbit-net.json")]}), ctx)
    assert [r.rmssd_ms for r in hrv.records] == [62.887, 61.887, 60.887]
    heart = source.parse(raw("heart", {"heart": [text("heart-rate-timeseries.fitbit-net.json")]}), ctx)
    assert heart.records and not heart.rejected


def test_consent_first_sync_refresh_persisted_and_rate_limits(live_env, fake, store):
    from connectors.synthetic import SyntheticCohort

    cohort = SyntheticCohort(n_people=1, n_nights=20, seed=11)
    fake.tz_name = cohort.people[0].tz_name
    fake.load_records([r.model_copy(update={"person_id": PERSON}) for r in cohort.records(cohort.people[0].person_id)])
    enrolled(store, fake)
    assert fake.token_requests == ["authorization_code"]  # PKCE verified by the fake, Basic client auth
    assert store.person(PERSON).tz_name == cohort.people[0].tz_name  # from the profile
    night = cohort.nights[-3]
    fake.requests.clear()
    report = sync(store, night)
    assert report.people[PERSON].records > 0 and report.people[PERSON].rejected == 0
    assert len(fake.requests) == len(DATA_TYPES)  # steady state: one request per data type

    before = token_rows(store, "SELECT token_ciphertext FROM oauth_tokens")[0][0]
    fake.expire_access_tokens()  # 401 expired_token -> python-fitbit refreshes -> refresh_cb persists
    fake.fail_next("/sleep/", 429, {"Retry-After": "0"})
    fake.fail_next("/hrv/", 429)  # no Retry-After: python-fitbit raises KeyError; we wait for the reset header
    fake.fail_next("/br/", 503)
    sync(store, night + timedelta(days=1))
    assert fake.token_requests.count("refresh_token") == 1 and not fake.faults
    assert token_rows(store, "SELECT token_ciphertext FROM oauth_tokens")[0][0] != before
    # The single-use refresh token that was spent is gone; the persisted one still works for the next run.
    fake.expire_access_tokens()
    sync(store, night + timedelta(days=1))
    assert fake.token_requests.count("refresh_token") == 2


def test_revoked_token_needs_reconsent_and_410_says_connect_via_google_health(live_env, fake, store):
    enrolled(store, fake)
    fake.retired = True
    with pytest.raises(ApiError, match="retired by Google on 2026-11-02.*google-health"):
        sync(store, date(2026, 11, 20))
    fake.retired = False
    for _ in range(5):
        fake.fail_next("/sleep/", 500)
    with pytest.raises(TransientSourceError):
        sync(store, date(2026, 11, 20))
    fake.revoke()
    with pytest.raises(ConsentRequired):
        sync(store, date(2026, 11, 20))
    assert store.person(PERSON).status == "needs_reconsent"
    assert [r[0] for r in store.query_rows("SELECT kind FROM email_ledger")] == ["reconnect"]


def test_backfill_365_days_respects_range_limits(live_env, fake, store):
    from connectors.synthetic import SyntheticCohort

    cohort = SyntheticCohort(n_people=1, n_nights=365, seed=5)
    fake.tz_name = cohort.people[0].tz_name
    fake.load_records([r.model_copy(update={"person_id": PERSON}) for r in cohort.records(cohort.people[0].person_id)])
    enrolled(store, fake)
    fake.requests.clear()
    report = backfill_person(store, PERSON, 365, today=cohort.nights[-1])
    print(f"\nfitbit-web backfill 365 days: {len(fake.requests)} API requests")
    assert report.requests == len(fake.requests) <= 80
    sessions = store.query_rows("SELECT count(*) FROM sleep_sessions")[0][0]
    assert sessions == sum(1 for r in cohort.records(cohort.people[0].person_id) if type(r).__name__ == "SleepSession")


def test_dst_nights_land_on_the_wake_date_with_real_minutes(live_env, fake, store):
    from connectors.records import SleepSession, SleepStage, StageSegment

    def night(start: datetime, hours: float, sid: str) -> SleepSession:
        minutes = int(hours * 60)
        return SleepSession(person_id=PERSON, source="synthetic", source_session_id=sid,
                            night_date=(start + timedelta(minutes=minutes)).date(), start_utc=start,
                            end_utc=start + timedelta(minutes=minutes), tz_name="Europe/London", is_main_sleep=True,
                            log_type="classic", minutes_asleep=minutes, minutes_awake=0, time_in_bed_min=minutes,
                            segments=(StageSegment(start_utc=start, duration_s=minutes * 60,
                                                   stage=SleepStage.ASLEEP),))

    # London: clocks go back at 02:00 BST on 2026-10-25 and forward at 01:00 GMT on 2027-03-28.
    fake.load_records([night(datetime(2026, 10, 24, 22, 0, tzinfo=timezone.utc), 8.5, "autumn"),
                       night(datetime(2027, 3, 28, 0, 0, tzinfo=timezone.utc), 7.0, "spring")])
    enrolled(store, fake)
    sync(store, date(2026, 10, 25))
    sync(store, date(2027, 3, 28))
    rows = store.query_rows("SELECT night_date, time_in_bed_min, minutes_asleep, end_utc FROM sleep_sessions "
                            "ORDER BY night_date")
    assert [(r[0], r[1], r[2]) for r in rows] == [(date(2026, 10, 25), 510, 510), (date(2027, 3, 28), 420, 420)]
    assert rows[1][3] == datetime(2027, 3, 28, 7, 0)  # 08:00 BST on the watch = 07:00 UTC
