"""OAuth tokens at rest: Fernet encryption, and the small interface a live connector uses to load and save them.

The key comes from EMBERWATCH_SECRET_KEY (a Fernet key) or, failing that, a Prefect Secret block named
`emberwatch-secret-key`. Where the ciphertext lives (a small SQLite file beside the database) is storage.tokens's
business, not ours.

Key rotation: the setting may hold several keys separated by commas, newest first. Tokens are sealed with the
first and opened with any, so a new key can be put in front while `emberwatch rotate-key` re-seals every stored
token with it; after that the old key is removed from the setting (docs/privacy.md, "Rotating the key").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SECRET_KEY_ENV = "EMBERWATCH_SECRET_KEY"
SECRET_BLOCK = "emberwatch-secret-key"


class MissingSecretKey(RuntimeError):
    pass


class ConsentRequired(RuntimeError):
    """The person's authorisation is gone (revoked, or expired after 7 days in Testing mode): only a new
    consent helps. Never retried."""

    def __init__(self, person_id: str, source: str, reason: str) -> None:
        super().__init__(
            f"The {source} connection for person {person_id} no longer works ({reason}). "
            f"Ask them to reconnect: `emberwatch enroll {person_id} --source {source}`."
        )
        self.person_id, self.source, self.reason = person_id, source, reason


def load_key() -> str:
    value = os.environ.get(SECRET_KEY_ENV)
    if not value:
        try:  # a Prefect Secret block, for deployments that keep secrets in Prefect
            from prefect.blocks.system import Secret

            value = Secret.load(SECRET_BLOCK, _sync=True).get()  # type: ignore[call-arg]
        except Exception:
            value = None
    if not value:
        raise MissingSecretKey(
            f"No token-encryption key: set {SECRET_KEY_ENV} to a Fernet key (make one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`) "
            f"or create a Prefect Secret block named '{SECRET_BLOCK}'."
        )
    return value.decode() if isinstance(value, bytes) else value


def parse_keys(value: str | bytes) -> list[Fernet]:
    """Comma-separated Fernet keys, newest first; a key that is not a Fernet key is named by position only."""
    text = value.decode() if isinstance(value, bytes) else value
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise MissingSecretKey(f"{SECRET_KEY_ENV} is empty.")
    keys = []
    for position, part in enumerate(parts, start=1):
        try:
            keys.append(Fernet(part.encode()))
        except ValueError:
            raise MissingSecretKey(
                f"Key {position} in {SECRET_KEY_ENV} is not a Fernet key (32 url-safe base64-encoded bytes)."
            ) from None
    return keys


class TokenCipher:
    """Seals with the newest key; opens with any key in the setting (so rotation never locks anyone out)."""

    def __init__(self, key: str | bytes | None = None) -> None:
        self._keys = parse_keys(key or load_key())
        self._fernet = MultiFernet(self._keys)

    @property
    def key_count(self) -> int:
        return len(self._keys)

    def reseal(self, ciphertext: bytes) -> bytes:
        """The same token sealed with the newest key (MultiFernet.rotate keeps the original timestamp)."""
        try:
            return self._fernet.rotate(ciphertext)
        except InvalidToken:
            raise MissingSecretKey(
                f"A stored token cannot be decrypted with any key in {SECRET_KEY_ENV}: keep the old key in the "
                "list (after the new one) until rotation has finished."
            ) from None

    def seal(self, token: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(token, sort_keys=True).encode())

    def open(self, ciphertext: bytes) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(ciphertext))
        except InvalidToken:
            raise MissingSecretKey(
                f"Stored tokens cannot be decrypted with any key in {SECRET_KEY_ENV}: the key changed. "
                "Put the old key back after the new one (comma-separated) and run `emberwatch rotate-key`, "
                "or re-enrol the people concerned."
            ) from None

    def __repr__(self) -> str:
        return "TokenCipher(<key hidden>)"


@dataclass(frozen=True)
class StoredToken:
    token: dict[str, Any]
    granted_scopes: tuple[str, ...]
    consented_at: datetime


class TokenStore(Protocol):
    """Where a connector reads and writes one person's token. `save` must be atomic and durable before it
    returns: Fitbit refresh tokens are single-use, so a new one that is lost locks the person out."""

    def load(self, person_id: str, source: str) -> StoredToken | None: ...

    def save(self, person_id: str, source: str, token: dict[str, Any], granted_scopes: tuple[str, ...] | None = None,
             *, new_consent: bool = False) -> None: ...

    def lock(self, person_id: str, source: str) -> Any:
        """A re-entrant context manager held around a fetch and its refresh-and-save, so two threads never spend
        one refresh token. (A lost consent is not reported here: the fetch returns it, connectors.live.)"""
        ...


class SyncBookmarks(Protocol):
    """Read before fetching; the writer moves them once the payloads are stored (pipelines.steps.ingest)."""

    def synced_through(self, person_id: str, source: str, data_type: str) -> Any: ...
