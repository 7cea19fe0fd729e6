"""Nothing lost, nothing leaked: each dependency failing, with real parts.

A real SMTP server on loopback (aiosmtpd, or a raw socket for what aiosmtpd cannot be told to do), the local fake
Google Health v4 and Fitbit Web servers over HTTP, DuckDB files in tmp_path, and the `emberwatch` CLI in a
subprocess. Each failure must give an operator a sentence (no token, address or health value in it), keep what
was already archived or queued, and clear up on the next run.

Already covered elsewhere, not repeated here: SMTP connection refused and a later delivery, a server that never
greets, 5xx recorded and not retried (tests/test_delivery.py, tests/test_smtp.py); two writers queueing and the
StoreError sentence of the Store itself (tests/test_writer.py).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

from alerts.transport import SmtpConfig, send_smtp, with_retries
from connectors.base import PersonContext, RawPayload, TransientSourceError
from connectors.synthetic import SyntheticCohort
from storage.store import Store
from pipelines import steps
from pipelines.cli_connectors import enroll_person
from pipelines.settings import load_settings
from pipelines.sources import source_for
from tests.fake_fitbit_api import FakeFitbit
from tests.fake_google_health import FakeGoogleHealth, load_records
from tests.smtp_server import RecordingHandler, free_port, smtp_server  # noqa: F401 (fixture)
from tests.test_delivery import enrol, queue
from tests.test_writer import hold, wait_until_holding

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 10, 23, 6, 45, tzinfo=UTC)  # inside c01's delivery window (07:45 BST)


# ------------------------------------------------------------------------------------------------ helpers


def plain_smtp(port: int, timeout_s: float = 5.0) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, security="none", timeout_s=timeout_s)


def ledger_row(store: Store) -> tuple[str, int, str | None]:
    return store.query_rows("SELECT status, attempts, last_error FROM email_ledger")[0]


def audit_rows(store: Store) -> list[tuple]:
    return store.query_rows("SELECT person_id, kind, message_id, attempts FROM email_audit")


def received_ids(handler: RecordingHandler) -> list[str]:
    return [message_from_bytes(e.original_content, policy=policy.default)["Message-ID"] for e in handler.envelopes]


def assert_operator_sentence(text: str, *secrets: str) -> None:
    """Readable by an operator, and nothing in it that identifies or describes a person's body."""
    assert text.strip().endswith("."), f"not a finished sentence: {text}"
    assert "Traceback" not in text and "JSONDecodeError" not in text, text
    assert "@" not in text, f"an address in: {text}"
    for secret in secrets:
        assert secret not in text, "a token or secret in the message"


class GreetingRefuser:
    """A real TCP server that answers every connection with an SMTP 421 greeting and hangs up (a mail server
    shedding load or shutting down): aiosmtpd always greets 220, so this is a few lines of socket."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            with conn:
                conn.sendall(b"421 4.3.2 Service not available, closing transmission channel\r\n")

    def close(self) -> None:
        self.sock.close()


class StallingHandler(RecordingHandler):
    """Takes the whole message, then sits on it: the client's final '.' gets no answer while `stall_s` runs.
    After the stall this server gives the transaction up (451), so nothing was accepted: the retry is the one
    delivery. (A server that accepts after a stall is the documented duplicate edge, tests/test_delivery.py.)"""

    def __init__(self, stall_s: float) -> None:
        super().__init__()
        self.stall_s = stall_s

    async def handle_DATA(self, server, session, envelope):
        if self.stall_s:
            await asyncio.sleep(self.stall_s)
            return "451 4.4.2 Timeout while receiving the message; nothing was accepted"
        return await super().handle_DATA(server, session, envelope)


# ------------------------------------------------------------------------------------------------ SMTP


def test_a_server_stalling_mid_data_defers_the_mail_and_the_next_run_delivers_it_once(store):
    handler = StallingHandler(stall_s=3.0)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        person = enrol(store)
        message_id = queue(store, person, "alert", "2026-10-22", NOW)
        slept: list[float] = []
        stalled = with_retries(lambda m: send_smtp(m, plain_smtp(port, timeout_s=0.5)), delays_s=(0.01,),
                               sleep=slept.append)

        first = steps.deliver_queued(store, stalled, NOW)
        assert (first.sent, first.deferred, first.failed) == (0, 1, 0)
        status, attempts, reason = ledger_row(store)
        assert (status, attempts) == ("queued", 1)  # transient: still queued, body kept
        assert "did not answer within 0.5 s" in reason and "try again later" in reason
        assert_operator_sentence(reason, "c01@example.org")
        assert slept == [0.01]  # a stall is retried within the run too (it answered: not 'unreachable')

        handler.stall_s = 0.0  # the server recovers
        later = with_retries(lambda m: send_smtp(m, plain_smtp(port)), delays_s=(0.01,), sleep=slept.append)
        second = steps.deliver_queued(store, later, NOW + timedelta(minutes=15))
        third = steps.deliver_queued(store, later, NOW + timedelta(minutes=30))
    finally:
        controller.stop()
    assert (second.sent, third.sent) == (1, 0)
    assert received_ids(handler) == [message_id]  # exactly once
    assert audit_rows(store) == [("c01", "alert", message_id, 2)]
    assert ledger_row(store)[0] == "sent"


def test_421_at_the_greeting_keeps_mail_queued_and_a_later_run_delivers_it_once(store, smtp_server):
    handler, good_port = smtp_server
    refuser = GreetingRefuser()
    person = enrol(store)
    alert_id = queue(store, person, "alert", "2026-10-22", NOW)
    digest_id = queue(store, person, "digest", "2026-W43", NOW)
    slept: list[float] = []
    try:
        busy = with_retries(lambda m: send_smtp(m, plain_smtp(refuser.port)), delays_s=(0.01, 0.02),
                            sleep=slept.append)
        first = steps.deliver_queued(store, busy, NOW)
    finally:
        refuser.close()
    assert (first.sent, first.deferred, first.failed) == (0, 2, 0)
    # 421 is a reply (the server is there, just busy): each message keeps its in-run retries.
    assert refuser.connections == 6 and slept == [0.01, 0.02, 0.01, 0.02]
    rows = store.query_rows("SELECT status, attempts, last_error FROM email_ledger ORDER BY kind")
    for status, attempts, reason in rows:
        assert (status, attempts) == ("queued", 1)
        assert "SMTP 421" in reason and "Service not available" in reason and "try again later" in reason
        assert_operator_sentence(reason, "c01@example.org")
    assert audit_rows(store) == []

    up = with_retries(lambda m: send_smtp(m, plain_smtp(good_port)), delays_s=(0.01,), sleep=slept.append)
    second = steps.deliver_queued(store, up, NOW + timedelta(minutes=15))
    third = steps.deliver_queued(store, up, NOW + timedelta(minutes=30))
    assert (second.sent, third.sent) == (2, 0)
    assert sorted(received_ids(handler)) == sorted([alert_id, digest_id])
    assert sorted(audit_rows(store)) == sorted([("c01", "alert", alert_id, 2), ("c01", "digest", digest_id, 2)])


def test_a_4xx_reply_stays_queued_and_is_delivered_exactly_once_on_a_later_run(store, smtp_server):
    handler, port = smtp_server
    handler.data_reply = "452 4.3.1 Insufficient system storage"
    person = enrol(store)
    message_id = queue(store, person, "alert", "2026-10-22", NOW)
    send = with_retries(lambda m: send_smtp(m, plain_smtp(port)), delays_s=(0.01,), sleep=lambda s: None)

    first = steps.deliver_queued(store, send, NOW)
    assert (first.sent, first.deferred) == (0, 1) and handler.envelopes == []
    status, attempts, reason = ledger_row(store)
    assert (status, attempts) == ("queued", 1) and "SMTP 452" in reason
    assert_operator_sentence(reason, "c01@example.org")

    handler.data_reply = "250 Message accepted for delivery"
    assert steps.deliver_queued(store, send, NOW + timedelta(minutes=15)).sent == 1
    assert steps.deliver_queued(store, send, NOW + timedelta(minutes=30)).sent == 0
    assert received_ids(handler) == [message_id]
    assert audit_rows(store) == [("c01", "alert", message_id, 2)]


# ------------------------------------------------------------------------------------------------ outbox


def test_a_full_disk_leaves_no_partial_email_keeps_it_queued_and_the_next_run_writes_it_once(ew_home, monkeypatch):
    """ENOSPC injected at the OS-call boundary: no small filesystem can be mounted here. fsync is where a full
    disk shows on filesystems with delayed allocation; the .html is written, the .eml (written last) fails."""
    settings = load_settings()
    real_fsync = os.fsync
    calls: list[int] = []

    def fsync_on_a_full_disk(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with Store(settings.db_path) as store:
        person = enrol(store)
        message_id = queue(store, person, "alert", "2026-10-22", NOW)
        monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
        first = steps.deliver_queued(store, steps.transport_for(settings), NOW)
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert (first.sent, first.deferred, first.failed) == (0, 1, 0)
        assert sorted(p.name for p in settings.outbox_dir.iterdir()) == []  # no .eml, no lone .html, no .tmp
        status, attempts, reason = ledger_row(store)
        assert (status, attempts) == ("queued", 1)
        assert "No space left on device" in reason and "stays queued" in reason
        assert str(settings.outbox_dir) in reason
        assert_operator_sentence(reason, "c01@example.org")

        second = steps.deliver_queued(store, steps.transport_for(settings), NOW + timedelta(minutes=15))
        third = steps.deliver_queued(store, steps.transport_for(settings), NOW + timedelta(minutes=30))
        assert (second.sent, third.sent) == (1, 0)
        assert audit_rows(store) == [("c01", "alert", message_id, 2)]
    emls = list(settings.outbox_dir.glob("*.eml"))
    assert len(emls) == 1 and len(list(settings.outbox_dir.glob("*.html"))) == 1
    assert message_from_bytes(emls[0].read_bytes(), policy=policy.default)["Message-ID"] == message_id


# ------------------------------------------------------------------------------------------------ APIs


@pytest.fixture
def live_env(monkeypatch):
    monkeypatch.setenv("EMBERWATCH_SECRET_KEY", Fernet.generate_key().decode())
    for prefix in ("GOOGLE", "FITBIT"):
        monkeypatch.setenv(f"EMBERWATCH_{prefix}_CLIENT_ID", f"{prefix.lower()}-client")
        monkeypatch.setenv(f"EMBERWATCH_{prefix}_CLIENT_SECRET", f"{prefix.lower()}-secret")
    monkeypatch.setenv("EMBERWATCH_HTTP_BACKOFF_S", "0.01")
    monkeypatch.setenv("EMBERWATCH_HTTP_TIMEOUT_S", "0.5")  # a stall of 2 s is a timeout


COHORT = SyntheticCohort(n_people=1, n_nights=40, seed=3)
FIRST_NIGHT = COHORT.nights[20]
# A data type of a *later* payload group: the earlier groups of the same fetch have succeeded by then.
FAULT_PATH = {"google-health": "/v4/users/me/dataTypes/daily-oxygen-saturation", "fitbit-web": "/1/user/-/spo2/"}


class LiveSource:
    """One person's own fake API server (so a fault scripted for them cannot reach anyone else)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        records = COHORT.records(COHORT.people[0].person_id)
        if kind == "google-health":
            self.fake = FakeGoogleHealth()
            self.fake.timezone_name = COHORT.people[0].tz_name
            self.fake.__enter__()
            load_records(self.fake, records)
        else:
            self.fake = FakeFitbit(tz_name=COHORT.people[0].tz_name)
            self.fake.__enter__()
            self.fake.load_records(records)

    def config(self) -> dict[str, str]:
        base = self.fake.base_url
        if self.kind == "google-health":
            return {"api_base": base, "authorize_url": base + "/o/oauth2/v2/auth", "token_url": base + "/token"}
        return {"api_base": base, "authorize_url": base + "/oauth2/authorize", "token_url": base + "/oauth2/token"}

    def secrets(self) -> list[str]:
        tokens = getattr(self.fake, "access_tokens", {})
        return [*tokens, *self.fake.refresh_tokens]

    def script(self, fault: str, times: int) -> None:
        path, fake = FAULT_PATH[self.kind], self.fake
        if fault == "5xx":
            fake.fail_next(path, 503, times=times)
        elif fault == "timeout":
            fake.stall_next(path, 2.0, times=times)
        elif fault == "truncated":
            fake.truncate_next(path, times=times)
        elif fault == "429 storm" and self.kind == "google-health":
            fake.fail_next(path, 429, retry_after="0", times=times)
        elif fault == "429 storm":
            fake.fail_next(path, 429, {"Retry-After": "0", "Fitbit-Rate-Limit-Reset": "0"}, times=times)
        else:  # pragma: no cover
            raise ValueError(fault)

    def close(self) -> None:
        self.fake.__exit__(None, None, None)


@pytest.fixture
def two_people(live_env, store, request):
    """'bad' and 'ok' on the same source, each with their own server holding the same 40 synthetic nights."""
    kind = request.param
    servers = {"bad": LiveSource(kind), "ok": LiveSource(kind)}
    try:
        for pid, server in servers.items():
            store.add_person(pid, f"{pid}@example.org", COHORT.people[0].tz_name, kind, server.config())
            enroll_person(store, pid, kind, lambda url: requests.get(url, timeout=10), timeout_s=20)
        yield store, servers
    finally:
        for server in servers.values():
            server.close()


def nightly_fetch(store: Store, night: date, refetch_nights: int = 3) -> tuple[steps.IngestReport, dict]:
    """What the nightly flow does, as plain steps: fetch everyone on a bounded pool (no database writes), record
    each failure for that person only, then one writer stores what came back."""
    people = [p for p in store.people(active_only=False) if p.status != "stopped"]

    def fetch(person):
        return steps.fetch_person(person, source_for(person, store), night, refetch_nights)

    fetched, failures = [], {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {p.person_id: pool.submit(fetch, p) for p in people}
    for person_id, future in futures.items():
        if future.exception() is not None:
            failures[person_id] = future.exception()
            steps.record_failure(store, f"nightly {night}", person_id, "fetch", future.exception())
        else:
            fetched.append(future.result())
    return steps.ingest(store, fetched), failures


def stored(store: Store, person_id: str) -> dict[str, int]:
    return {
        "payloads": store.query_rows("SELECT count(*) FROM raw_payloads WHERE person_id = ?", [person_id])[0][0],
        "sleep": store.query_rows("SELECT count(*) FROM sleep_sessions WHERE person_id = ?", [person_id])[0][0],
        "vitals": store.query_rows("SELECT count(*) FROM nightly_vitals WHERE person_id = ?", [person_id])[0][0],
    }


def sleep_nights(store: Store, person_id: str) -> list[date]:
    return [r[0] for r in store.query_rows(
        "SELECT DISTINCT night_date FROM sleep_sessions WHERE person_id = ? ORDER BY 1", [person_id])]


SOURCES = ["google-health", "fitbit-web"]
PERSISTENT = 5  # RetryPolicy.max_attempts: every attempt of the fetch meets the fault


@pytest.mark.parametrize("two_people", SOURCES, indirect=True)
@pytest.mark.parametrize("fault, expected", [
    ("5xx", "HTTP 5"),
    ("timeout", "no answer within 0.5 s"),
    ("truncated", "an answer whose body was not complete JSON"),
    ("429 storm", "429 Too Many Requests"),
])
def test_an_api_failure_fails_only_that_person_keeps_their_data_and_the_next_run_catches_up(two_people, fault,
                                                                                              expected):
    store, servers = two_people
    nightly_fetch(store, FIRST_NIGHT)
    before = stored(store, "bad")
    assert before["sleep"] > 0 and before["vitals"] > 0

    servers["bad"].script(fault, PERSISTENT)
    report, failures = nightly_fetch(store, FIRST_NIGHT + timedelta(days=1))
    assert list(failures) == ["bad"]
    error = failures["bad"]
    assert isinstance(error, TransientSourceError)  # the flow's retry condition: tried again later
    message = str(error)
    assert expected in message and "the next run will try again" in message
    assert_operator_sentence(message, *servers["bad"].secrets())
    recorded = store.query_rows("SELECT person_id, stage, error FROM run_failures")
    assert recorded == [("bad", "fetch", f"TransientSourceError: {message}")]
    assert report.people["ok"].records > 0 and report.people["ok"].rejected == 0  # unaffected
    assert "bad" not in report.people
    assert stored(store, "bad") == before  # nothing already stored was lost
    assert store.query_rows("SELECT count(*) FROM quarantine")[0][0] == 0  # no half page reached the archive

    catch_up_night = FIRST_NIGHT + timedelta(days=2)
    report, failures = nightly_fetch(store, catch_up_night)
    assert failures == {} and report.people["bad"].rejected == 0
    assert sleep_nights(store, "bad") == sleep_nights(store, "ok")  # the missed night is in
    assert stored(store, "bad")["vitals"] == stored(store, "ok")["vitals"]


@pytest.mark.parametrize("two_people", SOURCES, indirect=True)
def test_one_cut_off_body_or_a_short_429_storm_is_waited_out_within_the_fetch(two_people):
    store, servers = two_people
    servers["bad"].script("truncated", 1)
    servers["bad"].script("429 storm", 2)  # shorter than the fetch's attempts: waited out (Retry-After 0)
    report, failures = nightly_fetch(store, FIRST_NIGHT)
    assert failures == {}
    assert stored(store, "bad") == stored(store, "ok")
    assert store.query_rows("SELECT count(*) FROM quarantine")[0][0] == 0


@pytest.mark.parametrize("two_people", SOURCES, indirect=True)
def test_a_rate_limit_longer_than_a_fetch_may_wait_leaves_the_person_for_the_next_run(two_people):
    """The API's own headers are the rate limit: Google's Retry-After, Fitbit's Fitbit-Rate-Limit-Reset (with
    Remaining 0). A wait beyond RetryPolicy.max_wait_s is not slept through inside a worker."""
    store, servers = two_people
    kind, fake = servers["bad"].kind, servers["bad"].fake
    if kind == "google-health":
        fake.fail_next(FAULT_PATH[kind], 429, retry_after="3600")
    else:
        fake.fail_next(FAULT_PATH[kind], 429, {"Retry-After": "0", "Fitbit-Rate-Limit-Reset": "3600"})
    _, failures = nightly_fetch(store, FIRST_NIGHT)
    assert list(failures) == ["bad"] and isinstance(failures["bad"], TransientSourceError)
    assert "asked us to pause this person's requests for 3600 s" in str(failures["bad"])
    assert_operator_sentence(str(failures["bad"]), *servers["bad"].secrets())
    paths = [p if isinstance(p, str) else p[1] for p in fake.requests]
    assert len([p for p in paths if p.startswith(FAULT_PATH[kind])]) == 1  # asked once, then left alone


@pytest.mark.parametrize("two_people", SOURCES, indirect=True)
def test_an_outage_longer_than_the_refetch_window_loses_no_night(two_people):
    """Four failed nightly runs in a row, and the refetch window is 0 nights. Each fetch fails in a later
    payload group, after the earlier groups succeeded: their bookmarks must not move, because nothing of that
    fetch was stored (before the fix they did, and the next run skipped the outage's nights)."""
    store, servers = two_people
    nightly_fetch(store, FIRST_NIGHT, refetch_nights=0)
    outage = [FIRST_NIGHT + timedelta(days=i) for i in range(1, 5)]
    for night in outage:
        servers["bad"].script("5xx", PERSISTENT)
        _, failures = nightly_fetch(store, night, refetch_nights=0)
        assert list(failures) == ["bad"]
    _, failures = nightly_fetch(store, outage[-1] + timedelta(days=1), refetch_nights=0)
    assert failures == {}
    expected = sleep_nights(store, "ok")
    assert len(set(outage) & set(expected)) >= 3  # the synthetic cohort has a few nights without sleep
    assert sleep_nights(store, "bad") == expected


def test_a_cut_off_payload_that_reaches_the_archive_is_quarantined_with_a_reason(live_env, store):
    """Fetching never hands a half page on (above); a payload archived cut off anyway (an older version, a disk
    hiccup on import) is kept and quarantined whole, with a sentence, and the rest of the batch goes in."""
    from connectors.google_health import GoogleHealthSource

    body = b'{"sleep": ["{\\"dataPoints\\": [{\\"name\\": \\"users/1/dataTypes/sleep/dataPoi'
    cut = RawPayload("p1", "google-health", "sleep", body, datetime.now(UTC), FIRST_NIGHT, FIRST_NIGHT)
    store.add_person("p1", "p1@example.org", "Europe/London", "google-health")
    source = GoogleHealthSource(tokens=None)  # type: ignore[arg-type]  # parsing needs no tokens
    report = steps.ingest(store, [steps.Fetched(PersonContext("p1", "Europe/London"), source, [cut])])
    assert report.people["p1"].rejected == 1 and report.new_payloads == 1
    (reason,) = store.query_rows("SELECT reason FROM quarantine WHERE person_id = 'p1'")[0]
    assert reason.startswith("the sleep payload") and "not" in reason  # a sentence naming what was set aside
    assert store.query_rows("SELECT count(*) FROM raw_payloads WHERE person_id = 'p1'")[0][0] == 1  # kept


@pytest.mark.flow
@pytest.mark.parametrize("two_people", ["google-health"], indirect=True)
def test_the_nightly_cli_names_the_failed_person_with_a_sentence(prefect_harness, two_people, ew_home,
                                                                   monkeypatch):
    """The real flow through `emberwatch nightly`: exit code 2, the person and the reason on stderr."""
    from typer.testing import CliRunner

    from pipelines import flows
    from pipelines.cli import app

    _, servers = two_people
    settings = load_settings()
    with Store(settings.db_path) as target:  # the CLI works on EMBERWATCH_HOME: the same two people there
        for pid, server in servers.items():
            target.add_person(pid, f"{pid}@example.org", COHORT.people[0].tz_name, "google-health", server.config())
            enroll_person(target, pid, "google-health", lambda url: requests.get(url, timeout=10), timeout_s=20)
    servers["bad"].script("5xx", PERSISTENT * 4)  # the first try and Prefect's three retries
    monkeypatch.setattr(flows, "fetch_person", flows.fetch_person.with_options(retry_delay_seconds=0))
    result = CliRunner().invoke(app, ["nightly", "--date", FIRST_NIGHT.isoformat()])
    assert result.exit_code == 2, result.output
    assert "1/2 people synced" in result.output and "failures: bad" in result.output
    assert "bad (fetch): TransientSourceError: google-health kept failing (HTTP 503)" in result.output
    assert_operator_sentence(result.output.split("bad (fetch): ")[1], *servers["bad"].secrets())


# ------------------------------------------------------------------------------------------------ DuckDB lock


def cli(home: Path, *args: str, wait_s: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "EMBERWATCH_HOME": str(home), "EMBERWATCH_WRITER_WAIT_S": str(wait_s),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("EMBERWATCH_SMTP_HOST", None)
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.flow
def test_a_locked_database_gives_the_nightly_cli_a_sentence_not_a_traceback_and_the_next_run_works(tmp_path):
    home = tmp_path / "home"
    db = home / "emberwatch.duckdb"
    with Store(db) as store:
        store.add_person("a", "a@example.org", "Europe/London", "fitbit-export")
    holder = hold(db, "b", 600)  # another emberwatch process, mid-run
    try:
        wait_until_holding(holder)
        blocked = cli(home, "nightly", "--date", "2026-03-01", wait_s=1)
    finally:
        holder.terminate()
        holder.wait(timeout=60)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "Traceback" not in blocked.stderr and "╭" not in blocked.stderr
    assert f"The database {db} is in use by another emberwatch process" in blocked.stderr
    assert "waited 1 s" in blocked.stderr and "EMBERWATCH_WRITER_WAIT_S" in blocked.stderr
    with Store(db) as store:
        assert store.query_rows("SELECT count(*) FROM run_failures")[0][0] == 0  # nothing changed by it
        assert store.query_rows("SELECT count(*) FROM email_ledger")[0][0] == 0

    after = cli(home, "nightly", "--date", "2026-03-01", wait_s=1)
    assert after.returncode == 0, after.stderr
    assert "night 2026-03-01: 2/2 people synced" in after.stdout


def test_a_locked_database_gives_the_deliver_cli_a_sentence_not_a_traceback(tmp_path):
    home = tmp_path / "home"
    db = home / "emberwatch.duckdb"
    with Store(db) as store:
        store.add_person("a", "a@example.org", "Europe/London", "fitbit-export")
    holder = hold(db, "b", 600)
    try:
        wait_until_holding(holder)
        blocked = cli(home, "deliver", wait_s=1)
    finally:
        holder.terminate()
        holder.wait(timeout=60)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "Traceback" not in blocked.stderr
    assert f"The database {db} is in use by another emberwatch process" in blocked.stderr
    assert cli(home, "deliver", wait_s=1).stdout.startswith("0 sent")
