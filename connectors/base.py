"""What a source is: something that fetches raw payloads for a person and parses them into records.

Fetching and parsing are separate on purpose: the pipeline archives every payload (storage.store) *before*
parsing it, so a payload that fails to parse is never lost and can be parsed again after a fix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterator, Protocol

from connectors.records import AnyRecord


@dataclass(frozen=True)
class PersonContext:
    """What a connector may know about a person: an opaque id and the IANA zone for local times without zone."""

    person_id: str
    tz_name: str


@dataclass(frozen=True)
class RawPayload:
    """One payload exactly as received (bytes), with where it came from and the window it answers."""

    person_id: str
    source: str
    resource: str
    body: bytes
    fetched_at: datetime
    window_start: date | None = None
    window_end: date | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True)
class Rejected:
    """An item (or a whole payload) that could not become a record, and why, in a sentence."""

    locator: str
    reason: str


@dataclass
class ParseResult:
    records: list[AnyRecord] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


class Source(Protocol):
    """A data source. `name` is stored with every record (e.g. 'fitbit-export', 'synthetic')."""

    name: str

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        """Payloads covering the civil dates [start, end] for this person."""
        ...

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        """Records from one payload. Never raises for bad content: bad items come back as `rejected`."""
        ...


class TransientSourceError(RuntimeError):
    """A failure worth retrying soon (timeouts, 5xx, 429 after its wait). Anything else is not retried."""

