"""Oura API v2 connector end to end over real HTTP against tests/fake_oura.py: consent, fetch, parse; `next_token`
paging read to the end; a revoked grant returned by the fetch (no database touched) and acted on by the writer;
requests per person-night."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from cryptography.fernet import Fernet

from connectors.base import PersonContext, RawPayload
from connectors.oura import DATA_TYPES, OuraSource
from connectors.token_vault import ConsentRequired
from pipelines import steps
from pipelines.cli_connectors import enroll_person
from pipelines.sources import StoreSnapshot, source_for
from storage.store import Store
from storage.tokens import token_rows
from tests.fake_oura import FakeOura, load_nights, sleep_document, spo2_document
from web.app import shared_in_words

PERSON = "oura1"
NIGHT = date(2026, 11, 20)


@pytest.fixture
def live_env(monkeypatch):
    monkeypatch.setenv("EMBERWATCH_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("EMBERWATCH_OURA_CLIENT_ID", "oura-client")
    monkeypatch.setenv("EMBERWATCH_OURA_CLIENT_SECRET", "oura-secret")
    monkeypatch.setenv("EMBERWATCH_HTTP_BACKOFF_S", "0.01")


@pytest.fixture
def fake():
    with FakeOura() as server:
        yield server


def config(fake: FakeOura) -> dict[str, str]:
    return {"api_base": fake.base_url, "authorize_url": fake.base_url + "/oauth/authorize",
            "token_url": fake.base_url + "/oauth/token"}


def enrolled(store: Store, fake: FakeOura, tz: str = "Europe/London") -> None:
    store.add_person(PERSON, "oura1@example.org", tz, "oura", config(fake))
    enroll_person(store, PERSON, "oura", lambda url: requests.get(url, timeout=10), timeout_s=20)


def sync(store: Store, night: date, refetch: int = 3) -> steps.IngestReport:
    person = store.person(PERSON)
    source = source_for(person, store)
    assert isinstance(source, OuraSource)
    report = steps.ingest(store, [steps.fetch_person(person, source, night, refetch)])
    report.raise_consent_lost()
    return report


def test_oura_enrol_fetch_and_parse_a_few_nights_end_to_end(live_env, fake, store):
    nights = [NIGHT - timedelta(days=n) for n in range(3, -1, -1)]
    load_nights(fake, nights)
    fake.add("sleep", sleep_document(NIGHT, bed="11:00", minutes=40, kind="sleep", doc_id="nap"))  # a nap
    fake.add("sleep", {**sleep_document(NIGHT, doc_id="rested"), "type": "rest"})  # rejected by Oura: not sleep
    enrolled(store, fake)
    (blob, scopes), = token_rows(store, "SELECT token_ciphertext, granted_scopes FROM oauth_tokens")
    assert "daily" in scopes and "spo2Daily" in scopes
    assert fake.token_requests == ["authorization_code"]

    report = sync(store, NIGHT)
    assert report.people[PERSON].rejected == 0 and report.people[PERSON].records > 0
    rows = store.query_rows("SELECT night_date, is_main_sleep, minutes_asleep, time_in_bed_min FROM sleep_sessions "
                            "WHERE person_id = ? ORDER BY night_date, is_main_sleep", [PERSON])
    assert [(r[0], r[1]) for r in rows] == [(n, True) for n in nights[:-1]] + [(NIGHT, False), (NIGHT, True)]
    assert all(r[2] <= r[3] for r in rows)
    # Stages from sleep_phase_5_min: the main sleep's segments tile it (awake, light, deep, light, REM, ...).
    segs = store.query_rows("SELECT stage, duration_s FROM sleep_segments WHERE person_id = ? AND source = 'oura' "
                            "AND source_session_id = ? "
                            "ORDER BY seg_start_utc", [PERSON, f"sleep-{NIGHT}-long_sleep"])
    assert [s[0] for s in segs[:5]] == ["wake", "light", "deep", "light", "rem"]
    assert sum(s[1] for s in segs) == 460 * 60
    hrv = store.query_rows("SELECT night_date, rmssd_ms FROM nightly_hrv WHERE person_id = ? ORDER BY 1", [PERSON])
    assert hrv == [(n, 40.0 + i) for i, n in enumerate(nights)]
    rhr = store.query_rows("SELECT day, resting_hr_bpm FROM daily_resting_hr WHERE person_id = ? ORDER BY 1",
                           [PERSON])
    assert rhr == [(n, 50.0 + i) for i, n in enumerate(nights)]  # the overnight lowest, on the wake date
    vitals = store.query_rows("SELECT night_date, spo2_avg_pct, breathing_rate_brpm, skin_temp_deviation_c "
                              "FROM nightly_vitals WHERE person_id = ? ORDER BY 1", [PERSON])
    assert vitals[-1] == (NIGHT, pytest.approx(96.3), 14.5, pytest.approx(0.1))
    activity = store.query_rows("SELECT day, steps, very_active_min, sedentary_min FROM daily_activity "
                                "WHERE person_id = ? ORDER BY 1", [PERSON])
    assert activity[-1] == (NIGHT, 8300, 20, 500)


def test_oura_next_token_paging_reads_a_multi_page_answer_completely(live_env, fake, store):
    nights = [NIGHT - timedelta(days=n) for n in range(6, -1, -1)]
    load_nights(fake, nights)
    fake.page_size = 2  # seven documents per collection: four pages each
    enrolled(store, fake)
    sync(store, NIGHT, refetch=6)
    tokens = [q.get("next_token") for path, q in fake.requests if path.endswith("/sleep")]
    assert tokens == [None, "2", "4", "6"]  # followed until Oura sent null
    for table, column in (("sleep_sessions", "night_date"), ("nightly_hrv", "night_date"),
                          ("nightly_vitals", "night_date"), ("daily_activity", "day")):
        got = [r[0] for r in store.query_rows(f"SELECT DISTINCT {column} FROM {table} WHERE person_id = ? "
                                              "ORDER BY 1", [PERSON])]
        assert got == nights, table
    assert store.query_rows("SELECT count(*) FROM nightly_vitals WHERE spo2_avg_pct IS NOT NULL")[0][0] == 7


def test_oura_requests_per_person_night_at_most_the_data_types(live_env, fake, store):
    load_nights(fake, [NIGHT - timedelta(days=n) for n in range(5)])
    enrolled(store, fake)
    fake.requests.clear()
    sync(store, NIGHT)  # four nights (refetch 3) in one window per data type
    assert len(fake.requests) == len(DATA_TYPES) == 4
    fake.requests.clear()
    sync(store, NIGHT + timedelta(days=1))
    assert len(fake.requests) <= len(DATA_TYPES), "steady state: one request per data type per person-night"
    assert {q["start_date"] for _, q in fake.requests} == {(NIGHT - timedelta(days=2)).isoformat()}


def test_oura_429_is_waited_out_and_a_401_refreshes_the_single_use_token(live_env, fake, store):
    load_nights(fake, [NIGHT])
    enrolled(store, fake)
    fake.expire_access_tokens()
    fake.fail_next("/v2/usercollection/sleep", 429, {"Retry-After": "0", "X-RateLimit-Tier": "token"})
    fake.fail_next("/v2/usercollection/daily_spo2", 429, {"X-RateLimit-Reset": "0"})  # no Retry-After
    before = token_rows(store, "SELECT token_ciphertext FROM oauth_tokens")[0][0]
    report = sync(store, NIGHT)
    assert not fake.faults and report.people[PERSON].records > 0
    assert fake.token_requests.count("refresh_token") == 1
    assert token_rows(store, "SELECT token_ciphertext FROM oauth_tokens")[0][0] != before  # saved at once


def test_oura_revoked_grant_comes_back_from_the_fetch_and_the_writer_queues_one_email(live_env, fake, tmp_path):
    db_path = tmp_path / "emberwatch.duckdb"
    with Store(db_path) as store:
        enrolled(store, fake)
        person, snapshot = store.person(PERSON), StoreSnapshot.read(store)
    fake.revoke_refresh_tokens()
    before = hashlib.sha256(db_path.read_bytes()).hexdigest()
    source = source_for(person, snapshot)  # the store is closed: the fetch could not use it if it tried
    assert isinstance(source, OuraSource)
    outcome = source.fetch_outcome(PersonContext(PERSON, person.tz_name), NIGHT, NIGHT)
    assert isinstance(outcome.consent_lost, ConsentRequired) and outcome.payloads == []
    assert "single-use refresh token" in str(outcome.consent_lost)
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == before  # nothing written by the fetch

    fetched = steps.fetch_person(person, source_for(person, snapshot), NIGHT, 3)
    for _ in range(2):  # the writer, twice over the same outcome: still exactly one email
        with Store(db_path) as store:
            assert set(steps.ingest(store, [fetched]).consent_lost) == {PERSON}
    with Store(db_path) as store:
        assert store.person(PERSON).status == "needs_reconsent"
        assert [r[0] for r in store.query_rows("SELECT kind FROM email_ledger WHERE person_id = ?", [PERSON])] \
            == ["reconnect"]
        assert source_for(store.person(PERSON), store) is None


def test_oura_bad_documents_are_quarantined_one_by_one():
    source = OuraSource.__new__(OuraSource)
    bundle = {"sleep": [json.dumps({"data": [sleep_document(NIGHT), {"id": "x", "day": "nope"}],
                                    "next_token": None})],
              "daily_spo2": [json.dumps({"data": [spo2_document(NIGHT, None), spo2_document(NIGHT, 140.0)]})],
              "daily_readiness": [json.dumps({"detail": "not a page"})]}
    raw = RawPayload(PERSON, "oura", "night", json.dumps(bundle).encode(), datetime.now(timezone.utc), NIGHT, NIGHT)
    result = source.parse(raw, PersonContext(PERSON, "Europe/London"))
    kinds = sorted(type(r).__name__ for r in result.records)
    assert kinds == ["DailyRestingHeartRate", "NightlyHrv", "NightlyVitals", "SleepSession"]
    assert len(result.rejected) == 3  # the bad day, the impossible SpO2, the page of another shape


def test_oura_scopes_read_as_plain_words():
    assert dict(shared_in_words(("daily", "spo2Daily"))) == {
        "Sleep": True, "Heart": True, "Activity": True, "Breathing and temperature": True}


def test_oura_person_connects_through_oura_at_the_web_door(live_env, fake, tmp_path, monkeypatch, cli_at_noon):
    import email
    import email.policy
    import re

    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.settings import load_settings
    from tests.smtp_server import free_port
    from tests.web_server import serve
    from web.app import create_app

    home, port = tmp_path / "home", free_port()
    for name, value in {"EMBERWATCH_HOME": str(home), "EMBERWATCH_LINK_KEY": "oura-door-link-key-0123456789",
                        "EMBERWATCH_PUBLIC_URL": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EMBERWATCH_SMTP_HOST", raising=False)
    settings = load_settings()
    with Store(settings.db_path) as store:
        store.add_person(PERSON, "oura1@example.org", "Europe/London", "oura", config(fake))
    invited = CliRunner().invoke(app, ["invite", PERSON])
    assert invited.exit_code == 0, invited.output
    [eml] = (home / "outbox").glob("*.eml")
    note = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    connect = re.search(r"http://127\.0\.0\.1:\d+/me/\S+/connect", note.get_body(("plain",)).get_content())[0]
    with serve(create_app(settings), port=port):
        answer = requests.get(connect, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.history[0].headers["Location"].startswith(fake.base_url + "/oauth/authorize?")
    page = " ".join(re.sub(r"<[^>]+>", " ", answer.text).split())
    assert "Sleep shared Heart shared Activity shared" in page
    [(scopes,)] = token_rows(settings.db_path, "SELECT granted_scopes FROM oauth_tokens "
                             "WHERE person_id = ? AND source = 'oura'", [PERSON])
    assert "daily" in scopes


def test_oura_backfill_request_count_for_365_days(live_env, fake, store):
    from pipelines.cli_connectors import backfill_person

    load_nights(fake, [NIGHT - timedelta(days=n) for n in range(365)])
    enrolled(store, fake)
    fake.requests.clear()
    report = backfill_person(store, PERSON, 365, today=NIGHT)
    print(f"\noura backfill 365 days: {len(fake.requests)} API requests")
    assert report.requests == len(fake.requests) <= 13 * len(DATA_TYPES)  # 30-day windows, one page each
    assert store.query_rows("SELECT count(*) FROM sleep_sessions WHERE person_id = ?", [PERSON])[0][0] == 365
