"""Import a Google Takeout health export (today's Fitbit download) for one person: archive, parse, quarantine,
upsert, then features; the same path as `pipelines.import_fitbit_export`, over `connectors.google_takeout`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from connectors.base import PersonContext
from connectors.google_takeout import GoogleTakeoutSource, Skipped
from features.engine import FeatureRun
from features.thresholds import Thresholds
from pipelines import steps
from storage.retention import record_arrival
from storage.store import NightRange, Person, Store


@dataclass(frozen=True)
class TakeoutImportResult:
    sync: steps.SyncResult
    new_payloads: int
    features: FeatureRun
    arrived_on: date
    skipped: tuple[Skipped, ...]
    steps_origin: tuple[tuple[str, int], ...] = ()  # which source gave each day's steps: (origin, days)

    @property
    def nights(self) -> NightRange | None:
        return self.sync.touched


def import_takeout(store: Store, person: Person, path: Path, thresholds: Thresholds = Thresholds(),
                   arrived_on: date | None = None) -> TakeoutImportResult:
    source = GoogleTakeoutSource(path)  # reads the archive before the store is written: a refusal changes nothing
    ctx = PersonContext(person.person_id, person.tz_name)
    report = steps.ingest(store, [steps.Fetched(ctx, source, list(source.payloads(ctx)))])
    sync = report.people[person.person_id]
    arrived_on = arrived_on or datetime.now(timezone.utc).date()
    if sync.touched is not None:
        # History someone brought in to use: retention counts from today, not from its nights.
        record_arrival(store, person.person_id, sync.touched, arrived_on)
    return TakeoutImportResult(sync, report.new_payloads, steps.update_features(store, [sync], thresholds),
                               arrived_on, tuple(source.skipped), tuple(source.steps_origin.items()))
