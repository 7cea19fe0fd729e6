"""The email ledger: one row per person, kind and period, so every email is composed and sent exactly once.

The Message-ID is derived from (person, kind, period), so a message re-sent after a crash between SMTP's
"250 OK" and our commit carries the same Message-ID, and most mail systems drop the duplicate. That window
(send succeeded, commit lost) is the one edge left; `attempts > 1` on a sent row makes it visible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from features.store import Store


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
            now_utc: datetime) -> bool:
    """Queue a composed message. Returns False (and changes nothing) when this person/kind/period exists."""
    with store.cursor() as cur:
        inserted = cur.execute(
            "INSERT INTO email_ledger (person_id, kind, period_key, message_id, status, message_bytes, queued_at) "
            "VALUES (?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT DO NOTHING",
            [person_id, kind, period_key, message_id, message_bytes, now_utc.replace(tzinfo=None)],
        ).fetchone()[0]
        return inserted == 1


def queued(store: Store) -> list[QueuedEmail]:
    rows = store.query_rows(
        "SELECT person_id, kind, period_key, message_id, message_bytes, attempts, last_error FROM email_ledger "
        "WHERE status = 'queued' ORDER BY queued_at, person_id")
    return [QueuedEmail(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6]) for r in rows]


def mark_attempt(store: Store, message_id: str) -> None:
    """Counted *before* sending: a crash after the send leaves attempts ahead of the status, which is how the
    send/commit edge is detected."""
    with store.cursor() as cur:
        cur.execute("UPDATE email_ledger SET attempts = attempts + 1 WHERE message_id = ?", [message_id])


def mark_sent(store: Store, message_id: str, now_utc: datetime) -> None:
    # The body is dropped once delivered: the ledger keeps only that it was sent (minimum necessary).
    with store.cursor() as cur:
        cur.execute(
            "UPDATE email_ledger SET status = 'sent', sent_at = ?, message_bytes = NULL, last_error = NULL "
            "WHERE message_id = ?", [now_utc.replace(tzinfo=None), message_id])


def mark_failed(store: Store, message_id: str, reason: str, *, permanent: bool) -> None:
    with store.cursor() as cur:
        cur.execute(
            "UPDATE email_ledger SET status = CASE WHEN ? THEN 'failed' ELSE status END, last_error = ? "
            "WHERE message_id = ?", [permanent, reason[:500], message_id])
