"""The email ledger: one row per person, kind and period, so every email is composed and sent exactly once.

The Message-ID is derived from (person, kind, period), so a message re-sent after a crash between SMTP's
"250 OK" and our commit carries the same Message-ID, and many mail systems drop the duplicate. That window
(send succeeded, commit lost) is the one edge left; `attempts > 1` on a sent row and in `email_audit` makes it
visible (docs/email.md, "The remaining edge").

Queued mail waits for `deliver_after_utc` (the start of the person's delivery window, alerts.schedule) and for
the person to be active: a paused or stopped person's mail is held, not sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage

from alerts.schedule import next_delivery_utc
from storage.crash_points import crash_point
from storage.store import Person, Store


def _naive_utc(value: datetime | None) -> datetime | None:
    # DuckDB TIMESTAMP columns hold naive UTC.
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def message_id_for(person_id: str, kind: str, period_key: str, domain: str = "emberwatch.local") -> str:
    digest = hashlib.sha256(f"{person_id}|{kind}|{period_key}".encode()).hexdigest()[:32]
    return f"<{kind}.{digest}@{domain}>"


@dataclass(frozen=True)
class QueuedEmail:
    person_id: str
    kind: str
    period_key: str
    message_id: str
    message_bytes: bytes
    attempts: int
    last_error: str | None


def already_queued(store: Store, person_id: str, kind: str, period_key: str) -> bool:
    return bool(store.query_rows(
        "SELECT 1 FROM email_ledger WHERE person_id = ? AND kind = ? AND period_key = ?",
        [person_id, kind, period_key]))


def enqueue(store: Store, person_id: str, kind: str, period_key: str, message_id: str, message_bytes: bytes,
            now_utc: datetime, deliver_after_utc: datetime | None = None) -> bool:
    """Queue a composed message, to go out from `deliver_after_utc` (default: now). Returns False (and changes
    nothing) when this person/kind/period exists."""
    with store.cursor() as cur:
        inserted = cur.execute(
            "INSERT INTO email_ledger (person_id, kind, period_key, message_id, status, message_bytes, queued_at, "
            "deliver_after_utc) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?) ON CONFLICT DO NOTHING",
            [person_id, kind, period_key, message_id, message_bytes, _naive_utc(now_utc),
             _naive_utc(deliver_after_utc or now_utc)],
        ).fetchone()[0]
        return inserted == 1


def deliver_after(store: Store, person: Person, now_utc: datetime) -> datetime:
    """The start of the person's next delivery window (their zone, their working days), or now inside one."""
    window, days = store.delivery_preferences(person.person_id)
    return next_delivery_utc(now_utc, person.tz_name, window, working_days=days)


def queue_email(store: Store, person: Person, kind: str, period_key: str,
                build_message: Callable[[str], EmailMessage], now_utc: datetime,
                deliver_after_utc: datetime | None = None) -> bool:
    """The one way an email is queued (alerts, weekly check-ins, reconnect notes): once per person, kind and
    period, with the Message-ID derived from them, to go out from the start of the person's next delivery window
    (like every note, it waits for their window rather than arriving at 3 a.m.).

    `build_message` turns the Message-ID into the message; it runs only when nothing is queued yet for this
    key, so charts are not drawn for an email that already exists. False when it was already queued.
    """
    if already_queued(store, person.person_id, kind, period_key):
        return False
    message_id = message_id_for(person.person_id, kind, period_key)
    message = build_message(message_id)
    when = deliver_after_utc or deliver_after(store, person, now_utc)
    added = enqueue(store, person.person_id, kind, period_key, message_id, bytes(message), now_utc, when)
    crash_point("queue")
    return added


def replace_queued(store: Store, message_id: str, message_bytes: bytes) -> None:
    """A message not sent yet, composed again (a changed detail level): same key, same Message-ID."""
    with store.cursor() as cur:
        cur.execute("UPDATE email_ledger SET message_bytes = ? WHERE message_id = ? AND status = 'queued'",
                    [message_bytes, message_id])


def queued(store: Store, due_at: datetime | None = None) -> list[QueuedEmail]:
    """Queued mail of active people; with `due_at`, only what is due by then (deliver_after_utc <= due_at)."""
    rows = store.query_rows(
        "SELECT e.person_id, e.kind, e.period_key, e.message_id, e.message_bytes, e.attempts, e.last_error "
        "FROM email_ledger e JOIN persons p USING (person_id) "
        "WHERE e.status = 'queued' AND p.status = 'active' "
        "AND (CAST(? AS TIMESTAMP) IS NULL OR e.deliver_after_utc IS NULL OR e.deliver_after_utc <= ?) "
        "ORDER BY e.deliver_after_utc NULLS FIRST, e.queued_at, e.person_id",
        [_naive_utc(due_at), _naive_utc(due_at)])
    return [QueuedEmail(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6]) for r in rows]


def waiting(store: Store) -> int:
    """Queued mail not sent yet, whatever the reason (not due, person paused, a transient failure)."""
    return store.query_rows("SELECT count(*) FROM email_ledger WHERE status = 'queued'")[0][0]


def reschedule(store: Store, person_id: str, deliver_after_utc: datetime) -> int:
    """Move a person's queued mail to a new start (after they change their window or days)."""
    with store.cursor() as cur:
        return cur.execute(
            "UPDATE email_ledger SET deliver_after_utc = ? WHERE person_id = ? AND status = 'queued'",
            [_naive_utc(deliver_after_utc), person_id]).fetchone()[0]


def postpone(store: Store, message_id: str, deliver_after_utc: datetime) -> None:
    """One queued message moved to a later start (due, but its person's window had closed when the run came)."""
    with store.cursor() as cur:
        cur.execute("UPDATE email_ledger SET deliver_after_utc = ? WHERE message_id = ? AND status = 'queued'",
                    [_naive_utc(deliver_after_utc), message_id])


def mark_attempt(store: Store, message_id: str) -> None:
    """Counted *before* sending: a crash after the send leaves attempts ahead of the status, which is how the
    send/commit edge is detected."""
    with store.cursor() as cur:
        cur.execute("UPDATE email_ledger SET attempts = attempts + 1 WHERE message_id = ?", [message_id])


def mark_sent(store: Store, message_id: str, now_utc: datetime) -> None:
    """Record the send in the ledger and in the audit table, in one transaction.

    The body is dropped once delivered: the ledger keeps only that it was sent (minimum necessary), and the
    audit row holds who, kind, period, when and the Message-ID — never content.
    """
    with store.transaction() as cur:
        cur.execute(
            "UPDATE email_ledger SET status = 'sent', sent_at = ?, message_bytes = NULL, last_error = NULL "
            "WHERE message_id = ?", [_naive_utc(now_utc), message_id])
        cur.execute(
            "INSERT INTO email_audit (person_id, kind, period_key, message_id, sent_at, attempts) "
            "SELECT person_id, kind, period_key, message_id, sent_at, attempts FROM email_ledger "
            "WHERE message_id = ?", [message_id])


def mark_failed(store: Store, message_id: str, reason: str, *, permanent: bool) -> None:
    with store.cursor() as cur:
        cur.execute(
            "UPDATE email_ledger SET status = CASE WHEN ? THEN 'failed' ELSE status END, last_error = ? "
            "WHERE message_id = ?", [permanent, reason[:500], message_id])
