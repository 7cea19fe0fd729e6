"""Import a Fitbit account export for one person: archive, parse, quarantine, upsert, then features."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from connectors.base import PersonContext
from features.engine import FeatureRun
from storage.retention import record_arrival
from storage.store import NightRange, Person, Store
from features.thresholds import Thresholds
from pipelines import steps
from pipelines.sources import export_source


@dataclass(frozen=True)
class ImportResult:
    sync: steps.SyncResult
    new_payloads: int
    features: FeatureRun
    arrived_on: date

    @property
    def nights(self) -> NightRange | None:
        """The civil dates the export covers (None when nothing in it could be read)."""
        return self.sync.touched


def import_export(store: Store, person: Person, folder: Path, thresholds: Thresholds = Thresholds(),
                  arrived_on: date | None = None) -> ImportResult:
    source = export_source(folder)
    ctx = PersonContext(person.person_id, person.tz_name)
    report = steps.ingest(store, [steps.Fetched(ctx, source, list(source.payloads(ctx)))])
    sync = report.people[person.person_id]
    arrived_on = arrived_on or datetime.now(timezone.utc).date()
    if sync.touched is not None:
        # An export is history someone brought in to use: retention counts from today, not from its nights.
        record_arrival(store, person.person_id, sync.touched, arrived_on)
    return ImportResult(sync, report.new_payloads, steps.update_features(store, [sync], thresholds), arrived_on)
