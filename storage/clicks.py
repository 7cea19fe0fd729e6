"""Clicks from the clinician's web door, recorded durably before they are answered, applied when DuckDB is free.

DuckDB has one writer, and the nightly run may hold it. A click must never wait for that run nor be lost if the
web process dies right after saying "done": so it is first committed here (a small SQLite file beside the
database, one short transaction), then applied to DuckDB at once if the database is free, or by the next
process that opens it to send email (pipelines.steps.deliver_queued applies recorded clicks before sending).
Applying is idempotent (a preference set twice is the same preference), so a crash between applying and marking
applied costs nothing.

Single-use links (confirm export, confirm erase, OAuth state) are marked used here too, for the same reasons.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from storage.side_file import SideFile, side_path

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS clicks (
        click_id INTEGER PRIMARY KEY AUTOINCREMENT,
        person_id TEXT NOT NULL,
        action TEXT NOT NULL,            -- e.g. 'emails' (a change of EmailChoices), 'erase'
        params TEXT NOT NULL,            -- JSON: the choices made; never an address or a health value
        recorded_at TIMESTAMP NOT NULL,  -- UTC
        applied_at TIMESTAMP             -- UTC; NULL until applied to the database
    )""",
    """CREATE TABLE IF NOT EXISTS consents_in_progress (
        nonce TEXT PRIMARY KEY,          -- of the signed OAuth `state` the consent began with
        code_verifier TEXT NOT NULL,     -- PKCE: never leaves the server, used once at the callback
        started_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS used_links (
        nonce TEXT PRIMARY KEY,          -- alerts.signed_links.SignedLink.nonce of a single-use link
        purpose TEXT NOT NULL,
        used_at TIMESTAMP NOT NULL
    )""",
)


@dataclass(frozen=True)
class Click:
    click_id: int
    person_id: str
    action: str
    params: dict[str, Any]
    recorded_at: datetime


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class ClickLog:
    def __init__(self, db_path: Path | str) -> None:
        path = side_path(db_path, "clicks")
        if path is None:
            raise ValueError("An in-memory database has no clicks file.")
        self.file = SideFile(path, _SCHEMA)

    def record(self, person_id: str, action: str, params: dict[str, Any]) -> int:
        with self.file.transaction() as con:
            cur = con.execute("INSERT INTO clicks (person_id, action, params, recorded_at) VALUES (?, ?, ?, ?)",
                              [person_id, action, json.dumps(params, sort_keys=True, default=str), _utc_now()])
            return int(cur.lastrowid)

    def pending(self, person_id: str | None = None) -> list[Click]:
        with self.file.connect() as con:
            rows = con.execute(
                "SELECT click_id, person_id, action, params, recorded_at FROM clicks WHERE applied_at IS NULL "
                "AND (? IS NULL OR person_id = ?) ORDER BY click_id", [person_id, person_id]).fetchall()
        return [Click(r[0], r[1], r[2], json.loads(r[3]), datetime.fromisoformat(str(r[4]))) for r in rows]

    def mark_applied(self, click_id: int) -> None:
        with self.file.transaction() as con:
            con.execute("UPDATE clicks SET applied_at = ? WHERE click_id = ?", [_utc_now(), click_id])

    def use_once(self, nonce: str, purpose: str) -> bool:
        """True the first time a single-use link is used, False ever after."""
        with self.file.transaction() as con:
            try:
                con.execute("INSERT INTO used_links VALUES (?, ?, ?)", [nonce, purpose, _utc_now()])
            except sqlite3.IntegrityError:
                return False
        return True

    def was_used(self, nonce: str, purpose: str) -> bool:
        """Whether a single-use link has been used (its page then says so instead of offering it again)."""
        with self.file.transaction() as con:
            return con.execute("SELECT count(*) FROM used_links WHERE nonce = ? AND purpose = ?",
                               [nonce, purpose]).fetchone()[0] > 0

    def begin_consent(self, nonce: str, code_verifier: str) -> None:
        with self.file.transaction() as con:
            # Abandoned consents are dropped as new ones begin: a verifier is useless after its state expires.
            con.execute("DELETE FROM consents_in_progress WHERE started_at < datetime('now', '-1 day')")
            con.execute("INSERT OR REPLACE INTO consents_in_progress VALUES (?, ?, ?)",
                        [nonce, code_verifier, _utc_now()])

    def take_consent(self, nonce: str) -> str | None:
        """The consent's code verifier, once: a second callback with the same state finds nothing."""
        with self.file.transaction() as con:
            row = con.execute("SELECT code_verifier FROM consents_in_progress WHERE nonce = ?", [nonce]).fetchone()
            con.execute("DELETE FROM consents_in_progress WHERE nonce = ?", [nonce])
        return row[0] if row else None

    def forget(self, person_id: str) -> int:
        """Erasure covers this file too: the person's recorded clicks go with everything else."""
        with self.file.transaction() as con:
            removed = con.execute("DELETE FROM clicks WHERE person_id = ?", [person_id]).rowcount
        self.file.checkpoint()
        return removed
