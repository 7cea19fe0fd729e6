"""Import a Fitbit account export for one person: archive, parse, quarantine, upsert, then features."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connectors.base import PersonContext
from features.engine import FeatureRun
from storage.store import Person, Store
from features.thresholds import Thresholds
from pipelines import steps
from pipelines.sources import export_source


@dataclass(frozen=True)
class ImportResult:
    sync: steps.SyncResult
    new_payloads: int
    features: FeatureRun


def import_export(store: Store, person: Person, folder: Path, thresholds: Thresholds = Thresholds()) -> ImportResult:
    source = export_source(folder)
    ctx = PersonContext(person.person_id, person.tz_name)
    report = steps.ingest(store, [steps.Fetched(ctx, source, list(source.payloads(ctx)))])
    sync = report.people[person.person_id]
    return ImportResult(sync, report.new_payloads, steps.update_features(store, [sync], thresholds))
