"""Import a Google Takeout health export (today's Fitbit download) for one person: archive, parse, quarantine,
upsert, then features; the same path as `pipelines.import_fitbit_export`, over `connectors.google_takeout`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from connectors.google_takeout import GoogleTakeoutSource, Skipped
from features.thresholds import Thresholds
from pipelines.import_fitbit_export import ImportResult, import_history
from storage.store import Person, Store


@dataclass(frozen=True)
class TakeoutImportResult(ImportResult):
    skipped: tuple[Skipped, ...] = ()
    steps_origin: tuple[tuple[str, int], ...] = ()  # which source gave each day's steps: (origin, days)


def import_takeout(store: Store, person: Person, path: Path, thresholds: Thresholds = Thresholds(),
                   arrived_on: date | None = None) -> TakeoutImportResult:
    source = GoogleTakeoutSource(path)  # reads the archive before the store is written: a refusal changes nothing
    result = import_history(store, person, source, thresholds, arrived_on)
    return TakeoutImportResult(*vars(result).values(), skipped=tuple(source.skipped),
                               steps_origin=tuple(source.steps_origin.items()))
