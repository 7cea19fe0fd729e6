"""Encrypted OAuth tokens and granted scopes in DuckDB (table `oauth_tokens`): the TokenStore connectors use."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

from connectors.token_vault import StoredToken, TokenCipher
from storage.store import Store, utc_now

_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class DbTokenStore:
    def __init__(self, store: Store, cipher: TokenCipher,
                 on_consent_lost: Callable[[str, str, str], None] | None = None) -> None:
        self.store, self.cipher, self._on_consent_lost = store, cipher, on_consent_lost

    def load(self, person_id: str, source: str) -> StoredToken | None:
        rows = self.store.query_rows(
            "SELECT token_ciphertext, granted_scopes, consented_at FROM oauth_tokens "
            "WHERE person_id = ? AND source = ?",
            [person_id, source])
        if not rows:
            return None
        blob, scopes, consented_at = rows[0]
        return StoredToken(self.cipher.open(bytes(blob)), tuple(scopes.split()), consented_at)

    def save(self, person_id: str, source: str, token: dict[str, Any],
             granted_scopes: tuple[str, ...] | None = None, *, new_consent: bool = False) -> None:
        # One statement, committed when it returns: the new (single-use) refresh token is durable before use.
        sealed = self.cipher.seal(token)
        scopes = " ".join(granted_scopes) if granted_scopes is not None else None
        now = utc_now()
        with self.store.cursor() as cur:
            cur.execute(
                """
                INSERT INTO oauth_tokens VALUES (?, ?, ?, coalesce(?, ''), ?, ?)
                ON CONFLICT (person_id, source) DO UPDATE SET token_ciphertext = excluded.token_ciphertext,
                    granted_scopes = coalesce(?, oauth_tokens.granted_scopes),
                    consented_at = CASE WHEN ? THEN excluded.consented_at ELSE oauth_tokens.consented_at END,
                    updated_at = excluded.updated_at
                """,
                [person_id, source, sealed, scopes, now, now, scopes, new_consent],
            )

    def reseal_all(self) -> int:
        """Re-encrypt every stored token with the newest key, in one transaction: a failure (a token no key
        opens) changes nothing, and a crash half-way leaves every row readable with the old key still listed."""
        with self.store.transaction() as cur:
            rows = cur.execute(
                "SELECT person_id, source, token_ciphertext FROM oauth_tokens ORDER BY person_id, source").fetchall()
            for person_id, source, blob in rows:
                cur.execute("UPDATE oauth_tokens SET token_ciphertext = ? WHERE person_id = ? AND source = ?",
                            [self.cipher.reseal(bytes(blob)), person_id, source])
        return len(rows)

    def delete(self, person_id: str, source: str) -> None:
        with self.store.cursor() as cur:
            cur.execute("DELETE FROM oauth_tokens WHERE person_id = ? AND source = ?", [person_id, source])

    @contextmanager
    def lock(self, person_id: str, source: str) -> Iterator[None]:
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault((person_id, source), threading.Lock())
        with lock:
            yield

    def consent_lost(self, person_id: str, source: str, reason: str) -> None:
        self.delete(person_id, source)  # a dead token is no use, and keeping it keeps nothing safer
        if self._on_consent_lost is not None:
            self._on_consent_lost(person_id, source, reason)
