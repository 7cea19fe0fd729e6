"""Encrypted OAuth tokens in a small SQLite file of their own beside the database (`<name>.tokens.sqlite`): the
TokenStore connectors use.

Why not DuckDB: a nightly run fetches without holding the database (docs/architecture.md), yet a refresh token
that arrives mid-fetch must be durable at once (Fitbit's and Google's may be single-use), and DuckDB allows one
writing process per file. SQLite's own lock is held for one short transaction per save (WAL, synchronous=FULL,
busy_timeout), so the fetch, a CLI command and (later) a web click can all write here whoever holds DuckDB.
The file is owner-only, like the database; tables beyond `oauth_tokens` may join it later (recorded clicks).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from connectors.token_vault import StoredToken, TokenCipher
from storage.crash_points import crash_point
from storage.side_file import SideFile, side_path

# The columns of migration 003's `oauth_tokens` (documented there), kept with them when the table moved here.
_SCHEMA = ("CREATE TABLE IF NOT EXISTS oauth_tokens (person_id TEXT NOT NULL, source TEXT NOT NULL, "
           "token_ciphertext BLOB NOT NULL, granted_scopes TEXT NOT NULL, consented_at TIMESTAMP NOT NULL, "
           "updated_at TIMESTAMP NOT NULL, PRIMARY KEY (person_id, source))")

_LOCKS: dict[tuple[str, str], threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def tokens_path(db_path: Path | str) -> Path | None:
    """The token file beside a database file (None for an in-memory database: it has no tokens)."""
    return side_path(db_path, "tokens")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _timestamp(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


class TokenFile(SideFile):
    """The token file: `oauth_tokens` in a SQLite file of its own (storage.side_file)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, (_SCHEMA,))

    def adopt(self, rows: list[tuple]) -> None:
        """Rows of DuckDB's former `oauth_tokens` table (migration 007), in its column order. A row already here
        wins: it can only be newer (a copy interrupted before the drop is repeated at the next open)."""
        with self.transaction() as con:
            con.executemany("INSERT OR IGNORE INTO oauth_tokens VALUES (?, ?, ?, ?, ?, ?)",
                            [(r[0], r[1], bytes(r[2]), r[3], _timestamp(r[4]).isoformat(" "),
                              _timestamp(r[5]).isoformat(" ")) for r in rows])

    def delete_person(self, person_id: str) -> int:
        """`forget`: the person's tokens, and their trace in the write-ahead log."""
        with self.transaction() as con:
            removed = con.execute("DELETE FROM oauth_tokens WHERE person_id = ?", [person_id]).rowcount
        self.checkpoint()
        return removed


class DbTokenStore:
    """The TokenStore of the database `store` (anything with a `.path`, or the path itself): its token file."""

    def __init__(self, store: Any, cipher: TokenCipher | None) -> None:
        path = tokens_path(getattr(store, "path", store))
        if path is None:
            raise ValueError("An in-memory database has no token file; live sources need a database on disk.")
        self.file, self.cipher = TokenFile(path), cipher

    def load(self, person_id: str, source: str) -> StoredToken | None:
        rows = self.file.query_rows(
            "SELECT token_ciphertext, granted_scopes, consented_at FROM oauth_tokens WHERE person_id = ? AND source = ?",
            (person_id, source))
        if not rows:
            return None
        blob, scopes, consented_at = rows[0]
        assert self.cipher is not None
        return StoredToken(self.cipher.open(bytes(blob)), tuple(scopes.split()), _timestamp(consented_at))

    def save(self, person_id: str, source: str, token: dict[str, Any],
             granted_scopes: tuple[str, ...] | None = None, *, new_consent: bool = False) -> None:
        # One statement in one short transaction, synced when it returns: the new (single-use) refresh token is
        # durable before anyone uses it.
        assert self.cipher is not None
        sealed = self.cipher.seal(token)
        scopes = " ".join(granted_scopes) if granted_scopes is not None else None
        now = _utc_now().isoformat(" ")
        with self.file.transaction() as con:
            con.execute(
                """
                INSERT INTO oauth_tokens VALUES (?, ?, ?, coalesce(?, ''), ?, ?)
                ON CONFLICT (person_id, source) DO UPDATE SET token_ciphertext = excluded.token_ciphertext,
                    granted_scopes = coalesce(?, oauth_tokens.granted_scopes),
                    consented_at = CASE WHEN ? THEN excluded.consented_at ELSE oauth_tokens.consented_at END,
                    updated_at = excluded.updated_at
                """,
                (person_id, source, sealed, scopes, now, now, scopes, new_consent))
        crash_point("token-saved")  # the new (maybe single-use) refresh token is durable; nothing used it yet

    def reseal_all(self) -> int:
        """Re-encrypt every stored token with the newest key, in one transaction: a failure (a token no key
        opens) changes nothing, and a crash half-way leaves every row readable with the old key still listed."""
        assert self.cipher is not None
        with self.file.transaction() as con:
            rows = con.execute(
                "SELECT person_id, source, token_ciphertext FROM oauth_tokens ORDER BY person_id, source").fetchall()
            for person_id, source, blob in rows:
                con.execute("UPDATE oauth_tokens SET token_ciphertext = ? WHERE person_id = ? AND source = ?",
                            (self.cipher.reseal(bytes(blob)), person_id, source))
        return len(rows)

    def delete(self, person_id: str, source: str) -> None:
        with self.file.transaction() as con:
            con.execute("DELETE FROM oauth_tokens WHERE person_id = ? AND source = ?", (person_id, source))

    @contextmanager
    def lock(self, person_id: str, source: str) -> Iterator[None]:
        """Held around a person's fetch and any refresh in it (re-entrant: the refresh runs inside the fetch)."""
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault((person_id, source), threading.RLock())
        with lock:
            yield


def token_rows(store: Any, sql: str, params: tuple | list = ()) -> list[tuple]:
    """A query over the token file of `store` (tests and audits)."""
    return DbTokenStore(store, None).file.query_rows(sql, params)
