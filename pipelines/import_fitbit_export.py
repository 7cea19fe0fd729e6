"""Import an export for one person (a Fitbit account export here; `import_history` serves every file export):
archive, parse, quarantine, upsert, then features."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from connectors.base import PersonContext, Source
from features.engine import FeatureRun
from storage.retention import record_arrival
from storage.store import NightRange, Person, Store
from features.thresholds import Thresholds
from pipelines.calibrate import recalibrate_history
from pipelines.ingest import Fetched, SyncResult, ingest, update_features
from pipelines.sources import export_source


@dataclass(frozen=True)
class ImportResult:
    sync: SyncResult
    new_payloads: int
    features: FeatureRun
    arrived_on: date

    @property
    def nights(self) -> NightRange | None:
        """The civil dates the export covers (None when nothing in it could be read)."""
        return self.sync.touched


def import_history(store: Store, person: Person, source: Source, thresholds: Thresholds = Thresholds(),
                   arrived_on: date | None = None) -> ImportResult:
    """Any export a person brings (a Fitbit account export, a Google Takeout): archive, parse, quarantine, upsert,
    record when it arrived, then features."""
    ctx = PersonContext(person.person_id, person.tz_name)
    report = ingest(store, [Fetched(ctx, source, list(source.payloads(ctx)))])  # type: ignore[attr-defined]
    sync = report.people[person.person_id]
    arrived_on = arrived_on or datetime.now(timezone.utc).date()
    if sync.touched is not None:
        # History someone brought in to use: retention counts from today, not from its nights.
        record_arrival(store, person.person_id, sync.touched, arrived_on)
    features = update_features(store, [sync], thresholds)
    recalibrate_history(store, person.person_id, thresholds)  # reports imported before this history now have nights
    return ImportResult(sync, report.new_payloads, features, arrived_on)


def import_export(store: Store, person: Person, folder: Path, thresholds: Thresholds = Thresholds(),
                  arrived_on: date | None = None) -> ImportResult:
    return import_history(store, person, export_source(folder), thresholds, arrived_on)
