"""Google Health API v4 connector end to end over real HTTP against tests/fake_google_health.py (responses checked
against the discovery document's schemas), plus parsing of the recorded samples (tests/fixtures/google_health_samples,
MIT, see PROVENANCE.md and the licence beside them)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from connectors.base import PersonContext, RawPayload, TransientSourceError
from connectors.google_health import DATA_TYPES, GoogleHealthSource
from connectors.http import ApiError
from connectors.token_vault import ConsentRequired
from storage.store import Store
from storage.tokens import token_rows
from pipelines import steps
from pipelines.cli_connectors import backfill_person, enroll_person
from pipelines.sources import source_for
from tests.fake_google_health import FakeGoogleHealth, check_schema, load_records, pb_date, schema

SAMPLES = Path(__file__).parent / "fixtures" / "google_health_samples"
PERSON = "gh1"


@pytest.fixture
def live_env(monkeypatch):
    monkeypatch.setenv("EMBERWATCH_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("EMBERWATCH_GOOGLE_CLIENT_ID", "test-client.apps.googleusercontent.com")
    monkeypatch.setenv("EMBERWATCH_GOOGLE_CLIENT_SECRET", "test-secret")
    monkeypatch.setenv("EMBERWATCH_HTTP_BACKOFF_S", "0.01")


@pytest.fixture
def fake():
    with FakeGoogleHealth() as server:
        yield server


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())["body"]


def enrolled(store: Store, fake: FakeGoogleHealth, tz: str = "Europe/London") -> None:
    config = {"api_base": fake.base_url, "authorize_url": fake.base_url + "/o/oauth2/v2/auth",
              "token_url": fake.base_url + "/token"}
    store.add_person(PERSON, "gh1@example.org", tz, "google-health", config)
    enroll_person(store, PERSON, "google-health", lambda url: requests.get(url, timeout=10), timeout_s=20)


def sync(store: Store, night: date, refetch: int = 3) -> tuple[steps.IngestReport, GoogleHealthSource]:
    person = store.person(PERSON)
    source = source_for(person, store)
    assert isinstance(source, GoogleHealthSource)
    fetched = steps.fetch_person(person, source, night, refetch)
    report = steps.ingest(store, [fetched])
    report.raise_consent_lost()  # the writer acted on it (marked, one email); the caller hears of it
    return report, source


# --- recorded samples ---------------------------------------------------------------------------------------


def test_recorded_samples_fit_the_discovery_schema_and_parse():
    for name, schema_name in (("list_sleep.json", "ListDataPointsResponse"),
                              ("filter_daily-resting-heart-rate__date.json", "ListDataPointsResponse"),
                              ("filter_daily-heart-rate-variability__date.json", "ListDataPointsResponse")):
        check_schema(sample(name), schema(schema_name))
    source = GoogleHealthSource(tokens=None)  # type: ignore[arg-type]  # parsing needs no tokens
    ctx = PersonContext("p", "America/New_York")

    def parse(group: str, data_type: str, name: str):
        body = json.dumps({data_type: [(SAMPLES / name).read_text() and json.dumps(sample(name))]}).encode()
        return source.parse(RawPayload("p", "google-health", group, body, datetime.now(timezone.utc)), ctx)

    sleep = parse("sleep", "sleep", "list_sleep.json")
    assert not sleep.rejected and len(sleep.records) == 4
    nights = sorted(r.night_date for r in sleep.records)
    assert nights == [date(2026, 1, 3), date(2026, 1, 4), date(2026, 1, 5), date(2026, 1, 6)]
    newest = max(sleep.records, key=lambda r: r.night_date)
    assert newest.is_main_sleep and newest.log_type == "stages" and newest.minutes_asleep == 390
    assert newest.time_in_bed_min == 439  # 07:31Z -> 14:50Z, derived (the API has no time in bed)
    assert newest.segments[0].stage.value == "wake" and newest.segments[0].duration_s == 360
    rhr = parse("daily-resting-heart-rate", "daily-resting-heart-rate", "filter_daily-resting-heart-rate__date.json")
    assert [r.resting_hr_bpm for r in rhr.records] == [60.0] * 4  # "60" on the wire: an int64 string
    hrv = parse("daily-heart-rate-variability", "daily-heart-rate-variability",
                "filter_daily-heart-rate-variability__date.json")
    assert {r.night_date for r in hrv.records} == set(nights)  # daily dates match the wake dates


def test_omitted_zero_fields_string_int64_and_a_dst_night_parse_right():
    source = GoogleHealthSource(tokens=None)  # type: ignore[arg-type]
    ctx = PersonContext("p", "America/New_York")
    # 2026-11-01: New York falls back at 02:00. In bed 22:30 EDT (-4 h), up 07:00 EST (-5 h): 9.5 real hours.
    point = {"name": "users/1/dataTypes/sleep/dataPoints/777", "sleep": {
        "interval": {"startTime": "2026-11-01T02:30:00Z", "startUtcOffset": "-14400s",
                     "endTime": "2026-11-01T12:00:00Z", "endUtcOffset": "-18000s"},
        "type": "CLASSIC", "metadata": {"mainSleep": True, "processed": True},
        "stages": [{"startTime": "2026-11-01T02:30:00Z", "endTime": "2026-11-01T12:00:00Z", "type": "ASLEEP"}],
        "summary": {"minutesAsleep": "570"}}}  # minutesAwake, minutesToFallAsleep omitted: zero
    check_schema(point, schema("DataPoint"))
    page = json.dumps({"dataPoints": [point]})
    raw = RawPayload("p", "google-health", "sleep", json.dumps({"sleep": [page]}).encode(), datetime.now(timezone.utc))
    (session,) = source.parse(raw, ctx).records
    assert session.night_date == date(2026, 11, 1)
    assert session.time_in_bed_min == 570 and session.minutes_awake == 0 and session.minutes_to_fall_asleep == 0
    assert session.source_session_id == "777"
    # Activity: a day whose steps were zero has an empty steps object, and a missing level is zero minutes.
    rollup = {"civilStartTime": {"date": pb_date(date(2026, 11, 1))}, "steps": {},
              "activeMinutes": {"activeMinutesRollupByActivityLevel": [{"activityLevel": "VIGOROUS",
                                                                        "activeMinutesSum": "12"}]}}
    check_schema(rollup, schema("DailyRollupDataPoint"))
    body = {"steps": [json.dumps({"rollupDataPoints": [rollup]})],
            "active-minutes": [json.dumps({"rollupDataPoints": [rollup]})]}
    (activity,) = source.parse(RawPayload("p", "google-health", "activity", json.dumps(body).encode(),
                                          datetime.now(timezone.utc)), ctx).records
    assert (activity.steps, activity.lightly_active_min, activity.very_active_min) == (0, 0, 12)


# --- live, over HTTP ----------------------------------------------------------------------------------------


def test_consent_with_pkce_stores_encrypted_tokens_then_syncs_first_and_nightly(live_env, fake, store):
    from connectors.synthetic import SyntheticCohort

    cohort = SyntheticCohort(n_people=1, n_nights=30, seed=3)
    person = cohort.people[0]
    load_records(fake, [r.model_copy(update={"person_id": PERSON}) for r in cohort.records(person.person_id)])
    fake.timezone_name = "America/New_York"
    enrolled(store, fake)

    (blob, scopes), = token_rows(store, "SELECT token_ciphertext, granted_scopes FROM oauth_tokens")
    assert b"ya29." not in bytes(blob) and b"1//" not in bytes(blob)  # encrypted at rest
    assert "googlehealth.sleep.readonly" in scopes and "settings.readonly" in scopes
    assert store.person(PERSON).tz_name == "America/New_York"  # from settings.readonly
    assert fake.token_requests == [{"grant_type": "authorization_code"}]  # PKCE verified by the fake

    night = cohort.nights[-10]
    fake.requests.clear()
    report, _ = sync(store, night)
    assert report.people[PERSON].records > 0 and report.people[PERSON].rejected == 0
    assert len(fake.requests) == len(DATA_TYPES)  # 8 requests for 4 nights of 8 data types

    fake.requests.clear()
    report, _ = sync(store, night + timedelta(days=1))
    assert len(fake.requests) == len(DATA_TYPES), "steady state: at most one request per data type per night"
    rows = store.query_rows("SELECT count(*) FROM sleep_sessions WHERE source = 'google-health'")[0][0]
    expected = sum(1 for r in cohort.records(person.person_id)
                   if type(r).__name__ == "SleepSession" and r.night_date <= night + timedelta(days=1))
    assert rows == min(expected, rows) and rows > 0
    again, _ = sync(store, night + timedelta(days=1))
    assert again.new_payloads == 0  # an identical re-fetch is archived once


def test_401_refreshes_and_429_5xx_are_waited_out(live_env, fake, store):
    enrolled(store, fake)
    fake.expire_access_tokens()  # the stored access token is now refused: 401 -> refresh -> retry
    fake.fail_next("/v4/users/me/dataTypes/sleep", 429, retry_after="0")
    fake.fail_next("/v4/users/me/dataTypes/steps", 429)  # no Retry-After: our own backoff
    fake.fail_next("/v4/users/me/dataTypes/daily-resting-heart-rate", 503)
    fake.fail_next("/v4/users/me/dataTypes/active-minutes", 500)
    before = token_rows(store, "SELECT token_ciphertext FROM oauth_tokens")[0][0]
    report, _ = sync(store, date(2026, 11, 20))
    assert len(report.people[PERSON].__dict__) and not fake.faults
    assert {"grant_type": "refresh_token"} in fake.token_requests
    assert token_rows(store, "SELECT token_ciphertext FROM oauth_tokens")[0][0] != before  # new token saved


def test_persistent_5xx_is_transient_and_account_errors_are_sentences(live_env, fake, store):
    enrolled(store, fake)
    for _ in range(5):
        fake.fail_next("/v4/users/me/dataTypes/sleep", 503)
    with pytest.raises(TransientSourceError):
        sync(store, date(2026, 11, 20))
    fake.account_error = (400, "FAILED_PRECONDITION", "ACCOUNT_NOT_LINKED")
    with pytest.raises(ApiError, match="no Fitbit or Pixel Watch data linked"):
        sync(store, date(2026, 11, 20))


def test_revoked_refresh_token_marks_needs_reconsent_and_queues_exactly_one_email(live_env, fake, store):
    enrolled(store, fake)
    fake.revoke_refresh_tokens()
    with pytest.raises(ConsentRequired, match="reconnect"):
        sync(store, date(2026, 11, 20))
    assert store.person(PERSON).status == "needs_reconsent"
    assert source_for(store.person(PERSON), store) is None  # nothing more is tried, so no second email
    rows = store.query_rows("SELECT kind, message_bytes FROM email_ledger WHERE person_id = ?", [PERSON])
    assert [r[0] for r in rows] == ["reconnect"]
    text = bytes(rows[0][1]).decode()
    assert "Please reconnect your watch to emberwatch" in text and "multipart/alternative" in text
    assert token_rows(store, "SELECT count(*) FROM oauth_tokens")[0][0] == 0
    # Reconnecting makes the person active again.
    enroll_person(store, PERSON, "google-health", lambda url: requests.get(url, timeout=10), timeout_s=20)
    assert store.person(PERSON).status == "active"


def test_backfill_resumes_from_its_checkpoint_after_an_outage(live_env, fake, store):
    from connectors.synthetic import SyntheticCohort

    cohort = SyntheticCohort(n_people=1, n_nights=200, seed=5)
    person = cohort.people[0]
    load_records(fake, [r.model_copy(update={"person_id": PERSON}) for r in cohort.records(person.person_id)])
    enrolled(store, fake)
    last = cohort.nights[-1]
    fake.requests.clear()
    fake.outage_after = 20  # the API goes down during the second 90-day slice
    with pytest.raises(TransientSourceError):
        backfill_person(store, PERSON, 200, today=last)
    checkpoint = store.query_rows("SELECT backfilled_from FROM sync_state WHERE data_type = '*backfill'")[0][0]
    assert checkpoint == last - timedelta(days=89)
    fake.outage_after = None
    progress: list[int] = []
    report = backfill_person(store, PERSON, 200, today=last, progress=progress.append)
    assert report.resumed_from == checkpoint and progress == [90, 90, 20] and report.slices == 2
    sessions = store.query_rows("SELECT count(*) FROM sleep_sessions")[0][0]
    assert sessions == sum(1 for r in cohort.records(person.person_id) if type(r).__name__ == "SleepSession")
    nights = store.query_rows("SELECT count(*) FROM nightly_features WHERE person_id = ?", [PERSON])[0][0]
    assert nights >= 190  # features cover the slices stored by the interrupted run too
    assert backfill_person(store, PERSON, 200, today=last).slices == 0  # nothing left to do


def test_backfill_request_count_for_365_days(live_env, fake, store):
    from connectors.synthetic import SyntheticCohort

    cohort = SyntheticCohort(n_people=1, n_nights=365, seed=5)
    load_records(fake, [r.model_copy(update={"person_id": PERSON}) for r in cohort.records(cohort.people[0].person_id)])
    enrolled(store, fake)
    fake.requests.clear()
    report = backfill_person(store, PERSON, 365, today=cohort.nights[-1])
    sleep_calls = sum(1 for _, path in fake.requests if path.endswith("/sleep/dataPoints"))
    print(f"\ngoogle-health backfill 365 days: {len(fake.requests)} API requests ({sleep_calls} for sleep pages)")
    assert report.requests == len(fake.requests) <= 80
    assert sleep_calls > 365 // 25  # sleep pages of at most 25 were followed


def test_a_dst_night_over_http_lands_on_the_wake_date(live_env, fake, store):
    # New York falls back at 02:00 on 2026-11-01: in bed 22:30 EDT, up 07:00 EST, 9.5 real hours.
    point = {"name": "users/1/dataTypes/sleep/dataPoints/dst1", "sleep": {
        "interval": {"startTime": "2026-11-01T02:30:00Z", "startUtcOffset": "-14400s",
                     "endTime": "2026-11-01T12:00:00Z", "endUtcOffset": "-18000s"},
        "type": "CLASSIC", "metadata": {"mainSleep": True, "processed": True},
        "stages": [{"startTime": "2026-11-01T02:30:00Z", "endTime": "2026-11-01T12:00:00Z", "type": "ASLEEP"}],
        "summary": {"minutesAsleep": "570", "minutesInSleepPeriod": "570"}}}
    fake.add_point("sleep", datetime(2026, 11, 1, 2, 30, tzinfo=timezone.utc), date(2026, 11, 1), point)
    enrolled(store, fake, tz="America/New_York")
    sync(store, date(2026, 11, 1))
    rows = store.query_rows("SELECT night_date, time_in_bed_min, start_utc_offset_min, end_utc_offset_min "
                            "FROM sleep_sessions")
    assert rows == [(date(2026, 11, 1), 570, -240, -300)]


def test_no_token_code_or_health_value_reaches_the_logs(live_env, fake, store, caplog):
    import logging

    enrolled(store, fake)  # (its simulated browser, not emberwatch, is what fetches the redirect with the code)
    caplog.set_level(logging.DEBUG)
    fake.add_point("daily-resting-heart-rate", datetime(2026, 11, 19, tzinfo=timezone.utc), date(2026, 11, 19),
                   {"dailyRestingHeartRate": {"date": pb_date(date(2026, 11, 19)), "beatsPerMinute": "47"}})
    fake.expire_access_tokens()
    fake.fail_next("/v4/users/me/dataTypes/sleep", 429)
    sync(store, date(2026, 11, 20))
    text = "\n".join(r.getMessage() for r in caplog.records)
    secrets_seen = [t for t in [*fake.access_tokens, *fake.refresh_tokens] if t in text]
    assert not secrets_seen and "code=" not in text and "beatsPerMinute" not in text


def test_unticked_scopes_are_recorded_and_their_data_types_skipped(live_env, fake, store):
    from connectors.google_health import SCOPE_SETTINGS, SCOPE_SLEEP

    fake.granted_scopes = f"{SCOPE_SLEEP} {SCOPE_SETTINGS}"  # the person unticked activity and health metrics
    enrolled(store, fake)
    assert token_rows(store, "SELECT granted_scopes FROM oauth_tokens")[0][0] == fake.granted_scopes
    fake.requests.clear()
    sync(store, date(2026, 11, 20))
    assert [path for _, path in fake.requests] == ["/v4/users/me/dataTypes/sleep/dataPoints"]


def test_a_legacy_fitbit_login_is_told_to_use_a_google_account(live_env, fake, store):
    enrolled(store, fake)
    fake.account_error = (403, "PERMISSION_DENIED", "")
    fake.faults.clear()
    from tests.fake_google_health import Fault, status_body

    fake.faults.append(("/v4/users/me/dataTypes/sleep", Fault(403, body=status_body(
        403, "PERMISSION_DENIED", "Could not mint UberMint from GaiaMint"))))
    with pytest.raises(ApiError, match="legacy Fitbit account"):
        sync(store, date(2026, 11, 20))


def test_bookmarks_move_only_after_the_payloads_are_stored(live_env, fake, store):
    """A run that dies between fetch and store must not let the next run start after nights it never kept."""
    from connectors.synthetic import SyntheticCohort
    from storage.sync_state import SyncState

    cohort = SyntheticCohort(n_people=1, n_nights=20, seed=3)
    records = cohort.records(cohort.people[0].person_id)
    load_records(fake, [r.model_copy(update={"person_id": PERSON}) for r in records])
    enrolled(store, fake)
    person, night = store.person(PERSON), cohort.nights[-5]
    bookmarks = SyncState(store)

    def synced() -> set:
        return {bookmarks.synced_through(PERSON, "google-health", t.name) for t in DATA_TYPES}

    fetched = steps.fetch_person(person, source_for(person, store), night, 3)
    assert fetched.payloads and synced() == {None}  # fetched, not stored: nothing moved
    # the run "dies" here; the next run fetches the same nights again and stores them
    again = steps.fetch_person(person, source_for(person, store), night, 3)
    assert synced() == {None}
    steps.ingest(store, [again])
    assert synced() == {night}
