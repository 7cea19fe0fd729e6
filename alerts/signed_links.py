"""Signed links in emails: each names one person and one purpose, expires, and cannot be altered (itsdangerous).

A link is the clinician's only key to their page, so it is bound to its purpose (a different salt each: a
"your page" link cannot be replayed as an "erase my data" confirmation) and carries when it was issued. The
issue time is the email's own clock rather than the wall clock, so an email composed again after a crash is
byte-for-byte the same one (alerts.compose derives everything else from the Message-ID for the same reason).

Keys (pipelines.settings.link_keys): newest first, `NEW,OLD` while rotating: links are signed with the first key
and accepted under any, so links already in inboxes keep working until they expire.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer

# How long each kind of link works. Long for links that sit in an inbox (a page link in last month's check-in
# should still open the page); short and single-use for the two that hand over or delete data.
MAX_AGE: dict[str, timedelta] = {
    "page": timedelta(days=60),
    "unsubscribe": timedelta(days=180),  # RFC 8058 links are clicked from old mail too
    "connect": timedelta(days=14),       # an invitation to connect a watch
    "form": timedelta(hours=12),         # CSRF token of a form on a page
    "confirm-export": timedelta(minutes=30),
    "confirm-erase": timedelta(minutes=30),
    "oauth-state": timedelta(minutes=20),
    "check-in": timedelta(days=14),      # the weekly question, answered any time before the next but one
}
SINGLE_USE = frozenset({"confirm-export", "confirm-erase", "oauth-state"})


class LinkError(ValueError):
    """A link that cannot be honoured; the message is a sentence a clinician can read."""


@dataclass(frozen=True)
class SignedLink:
    person_id: str
    purpose: str
    issued_at: datetime
    nonce: str  # identifies a single-use link once it has been used
    extra: dict[str, Any]


class LinkSigner:
    def __init__(self, keys: list[str]) -> None:
        if not keys or any(len(k) < 16 for k in keys):
            raise ValueError("Email links need signing keys of at least 16 characters each.")
        # itsdangerous signs with the last key and accepts any of them: oldest first.
        self._keys = list(reversed(keys))

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        if purpose not in MAX_AGE:
            raise ValueError(f"Unknown link purpose {purpose!r}; known: {', '.join(MAX_AGE)}.")
        return URLSafeSerializer(self._keys, salt=f"emberwatch.link.{purpose}")

    def sign(self, purpose: str, person_id: str, issued_at: datetime, **extra: Any) -> str:
        issued_s = int(issued_at.astimezone(timezone.utc).timestamp())
        payload = {"p": person_id, "t": issued_s, **({"x": extra} if extra else {})}
        return self._serializer(purpose).dumps(payload)

    def verify(self, purpose: str, token: str, now_utc: datetime) -> SignedLink:
        try:
            payload = self._serializer(purpose).loads(token)
        except BadSignature:
            raise LinkError("This link is not valid: it may have been cut short or changed. "
                            "Please use the link from your most recent email.") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("p"), str) \
                or not isinstance(payload.get("t"), int):
            raise LinkError("This link is not valid. Please use the link from your most recent email.")
        issued_at = datetime.fromtimestamp(payload["t"], timezone.utc)
        if now_utc - issued_at > MAX_AGE[purpose] or issued_at - now_utc > timedelta(minutes=5):
            raise LinkError("This link has expired. The link in your most recent email will work, or you can "
                            "ask for a fresh one.")
        nonce = hashlib.sha256(f"{purpose}|{token}".encode()).hexdigest()[:32]
        return SignedLink(payload["p"], purpose, issued_at, nonce, dict(payload.get("x") or {}))


@dataclass(frozen=True)
class PersonLinks:
    """The links every email carries in its footer, for one person."""

    page: str
    pause: str
    stop: str
    unsubscribe: str  # RFC 8058 one-click: POST stops at once; GET shows a confirm button


def person_links(public_url: str, signer: LinkSigner, person_id: str, issued_at: datetime) -> PersonLinks:
    base = public_url.rstrip("/")
    page = quote(signer.sign("page", person_id, issued_at), safe="")
    unsubscribe = quote(signer.sign("unsubscribe", person_id, issued_at), safe="")
    return PersonLinks(
        page=f"{base}/me/{page}",
        pause=f"{base}/me/{page}/pause",
        stop=f"{base}/me/{page}/stop",
        unsubscribe=f"{base}/unsubscribe/{unsubscribe}",
    )
