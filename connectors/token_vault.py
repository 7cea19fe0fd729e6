"""OAuth tokens at rest: Fernet encryption, and the small interface a live connector uses to load and save them.

The key comes from EMBERWATCH_SECRET_KEY (a Fernet key) or, failing that, a Prefect Secret block named
`emberwatch-secret-key`. Where the ciphertext lives (DuckDB) is features.token_store's business, not ours.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken

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


def load_key() -> bytes:
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
    return value.encode() if isinstance(value, str) else value


class TokenCipher:
    def __init__(self, key: bytes | None = None) -> None:
        self._fernet = Fernet(key or load_key())

    def seal(self, token: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(token, sort_keys=True).encode())

    def open(self, ciphertext: bytes) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(ciphertext))
        except InvalidToken:
            raise MissingSecretKey(
                f"Stored tokens cannot be decrypted with the current {SECRET_KEY_ENV}: the key changed. "
                "Restore the old key, or re-enrol the people concerned."
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
        """A context manager held around refresh-and-save, so two threads never spend one refresh token."""
        ...

    def consent_lost(self, person_id: str, source: str, reason: str) -> None:
        """Called once when the authorisation is gone; the owner marks the person and tells them kindly."""
        ...


class SyncBookmarks(Protocol):
    def synced_through(self, person_id: str, source: str, data_type: str) -> Any: ...

    def mark_synced(self, person_id: str, source: str, data_type: str, through: Any) -> None: ...
