"""The one writer's step, apart from the nightly and weekly steps (`pipelines.steps`, which re-exports it): archive,
parse, quarantine and upsert what was fetched, then features. It loads only the store, the features and the
sources' own modules, not the emails, links and live connectors the steps also need, so a file import stays light
(`python -X importtime -m pipelines.cli import apple-health …`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Iterable

from connectors.base import PersonContext, RawPayload, Source
from connectors.token_vault import ConsentRequired
from features.engine import FeatureRun, compute_features
from features.thresholds import Thresholds
from pipelines.calibrate import calibrate_tonight
from storage.crash_points import crash_point
from storage.store import NightRange, Store
from storage.sync_state import BookmarkSnapshot, SyncState

log = logging.getLogger("emberwatch")


@dataclass
class SyncResult:
    person_id: str
    payloads: int = 0
    records: int = 0
    rejected: int = 0
    touched: NightRange | None = None


@dataclass(frozen=True)
class Fetched:
    """What one person's fetch came back with, waiting for the single writer: payloads (and, from a live source,
    the bookmarks they justify once stored), or that the person's consent is gone."""

    person: PersonContext
    source: Source
    payloads: list[RawPayload]
    synced_types: tuple[str, ...] = ()
    synced_through: date | None = None
    consent_lost: ConsentRequired | None = None


@dataclass
class IngestReport:
    people: dict[str, SyncResult]
    new_payloads: int  # payloads not archived before (an identical re-fetch is kept once)
    consent_lost: dict[str, ConsentRequired] = field(default_factory=dict)  # acted on: marked, one email queued

    def raise_consent_lost(self) -> None:
        """For one person's sync (a backfill, a test): their lost consent as the error it is, once acted on."""
        for lost in self.consent_lost.values():
            raise lost


def ingest(store: Store, batch: Iterable[Fetched]) -> IngestReport:
    """The one writer: archive every payload as received, then parse; bad items go to quarantine with their
    reason, good records are upserted in bulk (one statement per table for the whole batch). A lost consent is
    acted on here (ask_to_reconnect), never in the fetch."""
    batch = list(batch)
    lost_consents = [f.consent_lost for f in batch if f.consent_lost is not None]
    if lost_consents:
        # Emails, settings and links are loaded only when a consent is lost: an import never pays for them.
        from pipelines.steps import ask_to_reconnect

        for consent in lost_consents:  # each device's, when a person lost two in one run
            ask_to_reconnect(store, consent)
    lost = {consent.person_id: consent for consent in lost_consents}
    batch = [f for f in batch if f.consent_lost is None]
    results = {f.person.person_id: SyncResult(f.person.person_id) for f in batch}
    raws = [raw for f in batch for raw in f.payloads]
    new = store.archive(raws)
    crash_point("archive")
    records = []
    for f in batch:
        result = results[f.person.person_id]
        for raw in f.payloads:
            result.payloads += 1
            parsed = f.source.parse(raw, f.person)
            result.rejected += store.quarantine(raw, parsed.rejected)
            result.records += len(parsed.records)
            records.extend(parsed.records)
    for person_id, touched in store.upsert_records(records).items():
        if person_id in results:
            results[person_id].touched = touched
    state = SyncState(store)
    for f in batch:  # stored: now, and only now, the live sources' bookmarks may move past these nights
        if f.synced_types and f.synced_through is not None:
            state.mark_synced_many(f.person.person_id, f.source.name, list(f.synced_types), f.synced_through)
            if isinstance(bookmarks := getattr(f.source, "bookmarks", None), BookmarkSnapshot):
                bookmarks.advance(f.person.person_id, f.source.name, f.synced_types, f.synced_through)
    for result in results.values():  # ids and counts only: never values, addresses or tokens
        log.debug("Person %s: %d payload(s), %d record(s), %d quarantined", result.person_id, result.payloads,
                  result.records, result.rejected)
    return IngestReport(results, new, lost)


def update_features(store: Store, results: Iterable[SyncResult], thresholds: Thresholds = Thresholds()) -> FeatureRun:
    touched = {r.person_id: r.touched for r in results if r.touched is not None}
    run = compute_features(store, touched, thresholds)
    # the sleep calibration decided as of the newest night, for the nights to come (pipelines/calibrate.py)
    calibrate_tonight(store, list(touched), thresholds)
    return run
