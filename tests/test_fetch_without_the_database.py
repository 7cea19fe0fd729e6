"""A fetch returns what happened and never touches the database; the writer acts on it. While a nightly run fetches,
another process can write to the database, and a token rotated mid-fetch is saved the moment it arrives
(docs/architecture.md, "Who holds the database, and when")."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from connectors.base import PersonContext
from connectors.google_health import GoogleHealthSource
from connectors.token_vault import ConsentRequired, TokenCipher
from pipelines import steps
from pipelines.cli_connectors import enroll_person
from pipelines.sources import StoreSnapshot, source_for
from storage.store import Store
from storage.tokens import DbTokenStore, token_rows, tokens_path
from tests.fake_fitbit_api import FakeFitbit
from tests.fake_google_health import FakeGoogleHealth
from tests.test_live_nightly import live_env  # noqa: F401  (the same settings: keys and OAuth clients)

NIGHT = date(2026, 11, 20)
EMBERWATCH = str(Path(sys.executable).with_name("emberwatch"))


def enrol(db_path: Path, person_id: str, fake, source: str) -> None:
    base = fake.base_url
    config = ({"api_base": base, "authorize_url": base + "/o/oauth2/v2/auth", "token_url": base + "/token"}
              if source == "google-health" else
              {"api_base": base, "authorize_url": base + "/oauth2/authorize", "token_url": base + "/oauth2/token"})
    with Store(db_path) as store:
        store.add_person(person_id, f"{person_id}@example.org", "Europe/London", source, config)
        enroll_person(store, person_id, source, lambda url: requests.get(url, timeout=10), timeout_s=20)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_revoked_grant_comes_back_from_the_fetch_and_the_writer_queues_one_email(live_env, tmp_path):
    db_path = tmp_path / "emberwatch.duckdb"
    with FakeGoogleHealth() as fake:
        enrol(db_path, "gh", fake, "google-health")
        with Store(db_path) as store:
            person, snapshot = store.person("gh"), StoreSnapshot.read(store)
        fake.revoke_refresh_tokens()
        fake.expire_access_tokens()
        before = sha256(db_path)
        source = source_for(person, snapshot)  # the store is closed: the fetch could not use it if it tried
        assert isinstance(source, GoogleHealthSource)
        outcome = source.fetch_outcome(PersonContext("gh", person.tz_name), NIGHT, NIGHT)
        assert isinstance(outcome.consent_lost, ConsentRequired) and outcome.payloads == []
        assert sha256(db_path) == before  # nothing written, nothing queued, by the fetch

        fetched = steps.fetch_person(person, source_for(person, snapshot), NIGHT, 3)
        assert fetched.consent_lost is not None
        for _ in range(2):  # the writer, twice over the same outcome: still exactly one email
            with Store(db_path) as store:
                report = steps.ingest(store, [fetched])
                assert set(report.consent_lost) == {"gh"}
        with Store(db_path) as store:
            assert store.person("gh").status == "needs_reconsent"
            kinds = [r[0] for r in store.query_rows("SELECT kind FROM email_ledger WHERE person_id = 'gh'")]
            assert kinds == ["reconnect"]
            assert token_rows(store, "SELECT count(*) FROM oauth_tokens")[0][0] == 0
            assert source_for(store.person("gh"), store) is None  # nothing more is tried


@pytest.mark.flow
def test_the_nightly_flow_queues_one_reconnect_email_for_a_revoked_grant(prefect_harness, live_env, ew_home):
    from pipelines import flows
    from pipelines.settings import load_settings

    settings = load_settings()
    with FakeGoogleHealth() as fake:
        enrol(settings.db_path, "gh", fake, "google-health")
        fake.revoke_refresh_tokens()
        fake.expire_access_tokens()
        for night in (NIGHT, date(2026, 11, 21)):
            report = flows.nightly(flows.NightlyParams(night_date=night, now_utc=flows.morning_of(night, settings)))
            assert report.failures == (["gh"] if night == NIGHT else [])
    with Store(settings.db_path) as store:
        assert store.person("gh").status == "needs_reconsent"
        assert [r[0] for r in store.query_rows("SELECT kind FROM email_ledger")] == ["reconnect"]
        assert store.query_rows("SELECT stage FROM run_failures WHERE person_id = 'gh'") == [("fetch",)]


def nightly_process(log_path: Path, env: dict[str, str], **extra: str) -> subprocess.Popen:
    """The nightly run as the scheduler starts it. Its output goes to a file, not a pipe: a SIGKILLed run leaves
    Prefect's server child behind holding a pipe open (the group is killed once the run has ended)."""
    with open(log_path, "w") as log:
        return subprocess.Popen([EMBERWATCH, "nightly", "--date", NIGHT.isoformat()], env={**env, **extra},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc: subprocess.Popen, log_path: Path, timeout_s: float) -> str:
    try:
        proc.wait(timeout=timeout_s)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the run's process group
        except ProcessLookupError:
            pass
    return log_path.read_text()


def wait_for(condition, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the nightly run ended early ({proc.returncode})")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the nightly run did not reach its fetch stage in time")
        time.sleep(0.05)


@pytest.mark.flow
def test_another_process_writes_a_preference_while_the_nightly_run_fetches(live_env, ew_home, tmp_path):
    from pipelines.settings import load_settings

    db_path = load_settings().db_path
    with FakeGoogleHealth() as fake:
        enrol(db_path, "gh", fake, "google-health")
        fake.latency_s = 2.0  # eight data types: the fetch stage lasts some 16 s
        fake.requests.clear()
        proc = nightly_process(tmp_path / "nightly.log", dict(os.environ))
        try:
            wait_for(lambda: len(fake.requests) >= 1, 120, proc)  # the run is inside its fetch stage
            started = time.monotonic()
            done = subprocess.run([EMBERWATCH, "person", "set", "gh", "--detail", "numbers"], env=dict(os.environ),
                                  capture_output=True, text=True, timeout=60)
            took_s = time.monotonic() - started
            assert done.returncode == 0, done.stdout + done.stderr
            assert proc.poll() is None and len(fake.requests) < 8, "the fetch should still be running"
            assert took_s < 12, f"the preference waited {took_s:.1f} s for the nightly run"
        finally:
            out = finish(proc, tmp_path / "nightly.log", 120)
        assert proc.returncode == 0, out
    with Store(db_path) as store:
        assert store.person("gh").detail_level == "numbers"  # the nightly writer did not undo it
        assert store.query_rows("SELECT count(*) FROM raw_payloads WHERE person_id = 'gh'")[0][0] > 0


@pytest.mark.flow
def test_a_token_rotated_during_the_fetch_survives_a_sigkill_right_after_it_arrived(live_env, ew_home, tmp_path):
    from pipelines.settings import load_settings

    db_path = load_settings().db_path
    with FakeFitbit(tz_name="Europe/London") as fake:
        enrol(db_path, "fb", fake, "fitbit-web")
        tokens = DbTokenStore(db_path, TokenCipher())
        spent = tokens.load("fb", "fitbit-web").token["refresh_token"]
        fake.expire_access_tokens()  # the first request meets 401: refresh, and Fitbit's refresh token is single-use
        proc = nightly_process(tmp_path / "nightly.log", dict(os.environ), EMBERWATCH_CRASH_AT="token-saved")
        out = finish(proc, tmp_path / "nightly.log", 180)
        assert proc.returncode == -signal.SIGKILL, out
        assert fake.token_requests.count("refresh_token") == 1
        rotated = tokens.load("fb", "fitbit-web").token["refresh_token"]
        assert rotated != spent and rotated in fake.refresh_tokens and spent not in fake.refresh_tokens

        with Store(db_path) as store:  # the next run works with what was saved
            person = store.person("fb")
            fetched = steps.fetch_person(person, source_for(person, store), NIGHT, 3)
            assert fetched.consent_lost is None and fetched.payloads
            steps.ingest(store, [fetched])
            assert store.person("fb").status == "active"


def test_tokens_kept_in_duckdb_before_migration_007_move_to_the_token_file(tmp_path, monkeypatch):
    """A database from before the token file: its `oauth_tokens` rows are copied out, then the table is dropped."""
    import storage.store

    db_path = tmp_path / "emberwatch.duckdb"
    cipher = TokenCipher(Fernet.generate_key())
    sealed = cipher.seal({"access_token": "a", "refresh_token": "r1"})
    every_migration = storage.store.MIGRATIONS
    monkeypatch.setattr(storage.store, "MIGRATIONS", [m for m in every_migration if m[0] < 7])
    with Store(db_path) as store:  # a database as version 6 left it, with one token in it
        with store.transaction() as cur:
            cur.execute("INSERT INTO oauth_tokens VALUES ('c01', 'fitbit-web', ?, 'sleep', now(), now())", [sealed])
    monkeypatch.setattr(storage.store, "MIGRATIONS", every_migration)
    with Store(db_path) as store:
        assert store.schema_version() == every_migration[-1][0]
        assert "oauth_tokens" not in [r[0] for r in store.query_rows("SELECT table_name FROM duckdb_tables()")]
        stored = DbTokenStore(store, cipher).load("c01", "fitbit-web")
        assert stored is not None and stored.token["refresh_token"] == "r1" and stored.granted_scopes == ("sleep",)
        assert store.table_counts()["oauth_tokens"] == 1
    assert oct(os.stat(tokens_path(db_path)).st_mode & 0o777) == "0o600"
