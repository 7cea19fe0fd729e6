"""Delivery through a real SMTP server on loopback (aiosmtpd): windows with a frozen clock across a DST change,
outages, permanent refusals, in-run retries, the audit table, and the send/commit edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from alerts import ledger
from alerts.compose import compose_alert, compose_digest, to_email_message
from alerts.ledger import deliver_after, enqueue, message_id_for
from alerts.message_types import MessageSettings
from alerts.transport import SmtpConfig, TransientDeliveryError, send_smtp, with_retries
from pipelines import steps
from tests.smtp_server import free_port, smtp_server  # noqa: F401  (fixture)
from tests.test_compose import ALERTS, DIGESTS

SETTINGS = MessageSettings()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def enrol(store, person_id: str = "c01", tz: str = "Europe/London", detail: str = "minimal"):
    store.add_person(person_id, f"{person_id}@example.org", tz, "test", detail_level=detail)
    return store.person(person_id)


def queue(store, person, kind: str, period: str, now_utc: datetime) -> str:
    """What steps.queue_alerts / queue_digests do once they have an explanation or a summary."""
    recipient = steps.recipient(person)
    if kind == "alert":
        explanation = ALERTS["both"][0]
        composed = compose_alert(recipient, _for(explanation, person.person_id), SETTINGS)
    else:
        composed = compose_digest(recipient, _for(DIGESTS["week_steady"][0], person.person_id), SETTINGS)
    message_id = message_id_for(person.person_id, kind, period)
    msg = to_email_message(composed, recipient, SETTINGS, message_id, now_utc)
    assert enqueue(store, person.person_id, kind, period, message_id, bytes(msg), now_utc,
                   deliver_after(store, person, now_utc))
    return message_id


def _for(obj, person_id: str):
    from dataclasses import replace

    return replace(obj, person_id=person_id)


def smtp(port: int) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=port, security="none", timeout_s=5)


def test_window_is_honoured_with_a_frozen_clock_across_the_autumn_dst_change(store, smtp_server):
    handler, port = smtp_server
    london = enrol(store, "c01", "Europe/London")
    new_york = enrol(store, "c02", "America/New_York")
    # Friday 23 Oct 2026, 03:00 BST: the nightly run finds an alert for each.
    found = utc(2026, 10, 23, 2, 0)
    alert_london = queue(store, london, "alert", "2026-10-22", found)
    alert_ny = queue(store, new_york, "alert", "2026-10-22", found)
    # Sunday 25 Oct (a day off; London leaves BST at 01:00 UTC that day): the weekly digest is queued.
    digest_london = queue(store, london, "digest", "2026-W43", utc(2026, 10, 25, 6, 30))

    sent_at: dict[str, datetime] = {}
    clock = found
    while clock <= utc(2026, 10, 26, 18, 0):  # a delivery run every 15 minutes, Friday to Monday
        def send(msg, when=clock):
            send_smtp(msg, smtp(port))
            sent_at[msg["Message-ID"]] = when
        steps.deliver_queued(store, send, clock)
        clock += timedelta(minutes=15)

    assert sent_at[alert_london] == utc(2026, 10, 23, 6, 30)  # 07:30 BST
    assert sent_at[alert_ny] == utc(2026, 10, 23, 11, 30)  # 07:30 EDT
    assert sent_at[digest_london] == utc(2026, 10, 26, 7, 30)  # Monday 07:30 GMT, after the change
    assert len(handler.envelopes) == 3  # each exactly once, in 340 runs
    audit = store.query_rows("SELECT person_id, kind, period_key, message_id, sent_at, attempts FROM email_audit "
                             "ORDER BY sent_at")
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in audit] == [
        ("c01", "alert", "2026-10-22", alert_london, 1),
        ("c02", "alert", "2026-10-22", alert_ny, 1),
        ("c01", "digest", "2026-W43", digest_london, 1),
    ]
    assert audit[0][4] == datetime(2026, 10, 23, 6, 30)  # naive UTC in the database


def test_the_audit_table_holds_no_content():
    from storage.store import Store

    with Store(":memory:") as store:
        columns = {r[0] for r in store.query_rows(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'email_audit'")}
    assert columns == {"person_id", "kind", "period_key", "message_id", "sent_at", "attempts"}


def test_an_outage_keeps_mail_queued_and_a_later_run_delivers_it_exactly_once(store, smtp_server):
    handler, port = smtp_server
    person = enrol(store)
    now = utc(2026, 10, 23, 6, 45)  # inside the window
    message_ids = [queue(store, person, "alert", "2026-10-22", now), queue(store, person, "digest", "2026-W43", now)]
    slept: list[float] = []
    down = with_retries(lambda m: send_smtp(m, smtp(free_port())), delays_s=(0.01, 0.02, 0.04), sleep=slept.append)

    first = steps.deliver_queued(store, down, now)
    assert (first.sent, first.deferred, first.failed) == (0, 2, 0)
    # The first message used its retries with backoff; the second, once the server was known to be down, one try.
    assert slept == [0.01, 0.02, 0.04] and down.attempts == 5
    rows = store.query_rows("SELECT status, attempts, last_error FROM email_ledger ORDER BY kind")
    assert all(r[0] == "queued" and r[1] == 1 and "try again later" in r[2] for r in rows)

    up = with_retries(lambda m: send_smtp(m, smtp(port)), delays_s=(0.01,), sleep=slept.append)
    second = steps.deliver_queued(store, up, now + timedelta(minutes=15))
    third = steps.deliver_queued(store, up, now + timedelta(minutes=30))
    assert (second.sent, third.sent) == (2, 0)
    received = sorted(message_from_bytes(e.original_content, policy=policy.default)["Message-ID"]
                      for e in handler.envelopes)
    assert received == sorted(message_ids)


def test_a_transient_failure_that_clears_within_the_run_is_retried_with_backoff(store, smtp_server):
    handler, port = smtp_server
    person = enrol(store)
    now = utc(2026, 10, 23, 6, 45)
    queue(store, person, "alert", "2026-10-22", now)
    calls = []

    def flaky(msg):
        calls.append(1)
        if len(calls) < 3:
            raise TransientDeliveryError("the mail server is busy (SMTP 451)", 451)
        send_smtp(msg, smtp(port))

    slept: list[float] = []
    result = steps.deliver_queued(store, with_retries(flaky, sleep=slept.append), now)
    assert result.sent == 1 and slept == [1.0, 2.0]  # production delays, injected sleep
    assert len(handler.envelopes) == 1


def test_a_5xx_is_recorded_with_its_reason_and_not_retried(store, smtp_server):
    handler, port = smtp_server
    handler.data_reply = "550 5.7.1 Message rejected as spam"
    person = enrol(store)
    now = utc(2026, 10, 23, 6, 45)
    queue(store, person, "alert", "2026-10-22", now)
    slept: list[float] = []
    send = with_retries(lambda m: send_smtp(m, smtp(port)), sleep=slept.append)

    first = steps.deliver_queued(store, send, now)
    later = steps.deliver_queued(store, send, now + timedelta(days=1))
    assert (first.failed, first.sent, later.failed, later.sent) == (1, 0, 0, 0)
    assert slept == []  # a permanent refusal is never retried, not even within the run
    status, attempts, reason = store.query_rows("SELECT status, attempts, last_error FROM email_ledger")[0]
    assert (status, attempts) == ("failed", 1)
    assert "SMTP 550" in reason and "Message rejected as spam" in reason and "@" not in reason
    assert store.query_rows("SELECT count(*) FROM email_audit")[0][0] == 0


def test_mail_of_a_paused_person_is_held_and_goes_out_after_resuming(store, smtp_server):
    handler, port = smtp_server
    person = enrol(store)
    now = utc(2026, 10, 23, 6, 45)
    queue(store, person, "alert", "2026-10-22", now)
    store.set_person("c01", status="paused")
    held = steps.deliver_queued(store, lambda m: send_smtp(m, smtp(port)), now)
    assert (held.sent, held.waiting) == (0, 1)
    store.set_person("c01", status="active")
    assert steps.deliver_queued(store, lambda m: send_smtp(m, smtp(port)), now).sent == 1


def test_a_run_that_comes_after_the_window_closed_holds_the_mail_for_the_next_window(store, smtp_server):
    """A late run (a pause that ended, a server that was down, no 15-minute schedule) never sends at night or on a
    day off: due mail waits for the next opening, and goes out dated then, not when it was queued."""
    handler, port = smtp_server
    person = enrol(store, "c01", "Europe/London")  # default window 07:30-08:30, Mon-Fri
    queued_at = utc(2026, 10, 22, 3, 0)  # Thursday, found by the nightly run at 04:00 London (BST)
    queue(store, person, "alert", "2026-10-21", queued_at)
    send = lambda m: send_smtp(m, smtp(port))  # noqa: E731

    evening = steps.deliver_queued(store, send, utc(2026, 10, 22, 21, 30))  # 22:30 London, window long closed
    assert (evening.sent, evening.postponed, evening.waiting) == (0, 1, 1) and handler.envelopes == []
    [(held_until,)] = store.query_rows("SELECT deliver_after_utc FROM email_ledger")
    assert held_until == datetime(2026, 10, 23, 6, 30)  # Friday 07:30 BST
    assert steps.deliver_queued(store, send, utc(2026, 10, 23, 6, 15)).sent == 0  # 07:15: not open yet

    opened = steps.deliver_queued(store, send, utc(2026, 10, 23, 6, 30))
    assert (opened.sent, opened.postponed) == (1, 0)
    [envelope] = handler.envelopes
    assert message_from_bytes(envelope.original_content, policy=policy.default)["Date"].datetime == \
        utc(2026, 10, 23, 6, 30)

    # Friday's window missed as well: the weekend is skipped, Monday 07:30 GMT (after the change to winter time)
    queue(store, person, "digest", "2026-W43", utc(2026, 10, 23, 6, 0))
    late = steps.deliver_queued(store, send, utc(2026, 10, 23, 12, 0))
    assert (late.sent, late.postponed) == (0, 1)
    assert store.query_rows("SELECT deliver_after_utc FROM email_ledger WHERE status = 'queued'") == [
        (datetime(2026, 10, 26, 7, 30),)]


def test_an_invite_goes_out_at_once_by_day_and_waits_for_the_morning_at_night(store, smtp_server):
    """`emberwatch invite` is sent by hand while enrolling someone: at once outside their window, but not at night
    where they live."""
    handler, port = smtp_server
    person = enrol(store, "c02", "America/New_York")
    send = lambda m: send_smtp(m, smtp(port))  # noqa: E731

    def invite(at: datetime) -> None:
        msg = to_email_message(compose_alert(steps.recipient(person), _for(ALERTS["both"][0], "c02"), SETTINGS),
                               steps.recipient(person), SETTINGS, message_id_for("c02", "invite", at.isoformat()), at)
        enqueue(store, "c02", "invite", at.isoformat(), message_id_for("c02", "invite", at.isoformat()), bytes(msg),
                at, at)

    saturday_afternoon = utc(2026, 10, 24, 18, 0)  # 14:00 in New York, a Saturday, outside the alert window
    invite(saturday_afternoon)
    assert steps.deliver_queued(store, send, saturday_afternoon).sent == 1

    late_evening = utc(2026, 10, 27, 3, 9)  # Monday 23:09 in New York
    invite(late_evening)
    night = steps.deliver_queued(store, send, late_evening)
    assert (night.sent, night.postponed) == (0, 1) and len(handler.envelopes) == 1
    assert store.query_rows("SELECT deliver_after_utc FROM email_ledger WHERE status = 'queued'") == [
        (datetime(2026, 10, 27, 10, 0),)]  # 06:00 in New York (EDT)


def test_a_run_that_dies_between_send_and_commit_resends_with_the_same_message_id(store, smtp_server, monkeypatch):
    """The remaining edge (docs/email.md): the server has the mail, our ledger does not know. The next run sends
    it again with the same Message-ID, and the audit row shows attempts = 2."""
    handler, port = smtp_server
    person = enrol(store)
    now = utc(2026, 10, 23, 6, 45)
    message_id = queue(store, person, "alert", "2026-10-22", now)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("the run died after the server said 250")

    monkeypatch.setattr(steps, "mark_sent", crash)
    with pytest.raises(KeyboardInterrupt):
        steps.deliver_queued(store, lambda m: send_smtp(m, smtp(port)), now)
    monkeypatch.setattr(steps, "mark_sent", ledger.mark_sent)
    assert steps.deliver_queued(store, lambda m: send_smtp(m, smtp(port)), now).sent == 1

    ids = [message_from_bytes(e.original_content, policy=policy.default)["Message-ID"] for e in handler.envelopes]
    assert ids == [message_id, message_id]  # duplicate detectable by Message-ID
    assert store.query_rows("SELECT attempts FROM email_audit") == [(2,)]


def test_changing_the_window_moves_mail_already_queued(store):
    from alerts.ledger import reschedule

    person = enrol(store)
    queue(store, person, "alert", "2026-10-22", utc(2026, 10, 23, 2, 0))
    store.set_delivery_preferences("c01", window="09:00-10:00", days="Mon-Fri")
    assert reschedule(store, "c01", deliver_after(store, person, utc(2026, 10, 23, 2, 0))) == 1
    assert store.query_rows("SELECT deliver_after_utc FROM email_ledger") == [(datetime(2026, 10, 23, 8, 0),)]
    assert store.delivery_preferences("c01") == ("09:00-10:00", "Mon-Fri")


def test_queued_before_the_window_migration_means_due_now(store):
    person = enrol(store)
    queue(store, person, "alert", "2026-10-22", utc(2026, 10, 23, 2, 0))
    with store.cursor() as cur:
        cur.execute("UPDATE email_ledger SET deliver_after_utc = NULL")
    assert len(ledger.queued(store, due_at=utc(2026, 10, 23, 2, 0))) == 1


def test_person_set_takes_a_window_and_days_and_refuses_night_hours(ew_home):
    from typer.testing import CliRunner

    from storage.store import Store
    from pipelines.cli import app

    runner = CliRunner()
    assert runner.invoke(app, ["person", "add", "c01", "--email", "a@example.org", "--timezone", "Europe/Oslo"]).exit_code == 0
    done = runner.invoke(app, ["person", "set", "c01", "--window", "8:00-9:00", "--days", "Sun-Thu"])
    assert done.exit_code == 0, done.output
    assert "delivered 08:00-09:00 on Sun-Thu (Europe/Oslo)" in done.output
    refused = runner.invoke(app, ["person", "set", "c01", "--window", "01:00-02:00", "--detail", "charts"])
    assert refused.exit_code == 1 and "reaches into the night" in refused.output
    with Store(ew_home / "emberwatch.duckdb") as store:
        assert store.delivery_preferences("c01") == ("08:00-09:00", "Sun-Thu")
        assert store.person("c01").detail_level == "minimal"  # nothing changed by the refused command
    delivered = runner.invoke(app, ["deliver"])
    assert delivered.exit_code == 0 and "0 sent" in delivered.output
