"""Import an Apple Health export for one person: archive (in chunks per type and month), parse, quarantine,
upsert, record when it arrived, then features; the steps of every file export
(`pipelines.import_fitbit_export.import_history`), over `connectors.apple_health`. One difference: the chunks go to
the single writer (`pipelines.ingest.ingest`) a batch at a time (BATCH_CHUNKS), not all at once, so a multi-GB
export never sits in memory whole. Each chunk holds one data type and month entire, so the priority between writers
(per night or day) is decided within a chunk and batching changes no result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from connectors.apple_health import AppleHealthSource, Skipped
from connectors.base import PersonContext, RawPayload
from features.thresholds import Thresholds
from pipelines.calibrate import recalibrate_history
from pipelines.ingest import Fetched, SyncResult, ingest, update_features
from pipelines.import_fitbit_export import ImportResult
from storage.retention import record_arrival
from storage.store import Person, Store

# Chunks handed to the writer together. Counted in chunks, not archived bytes: a chunk is archived compressed, and
# what a batch costs in memory is its XML parsed and its records waiting for the upsert. A chunk is one type and month
# (at most ~2 MB of XML in the benchmark's export), so a batch stays around 4 MB of XML whatever the export's size.
BATCH_CHUNKS = 8


@dataclass(frozen=True)
class AppleImportResult(ImportResult):
    skipped: tuple[Skipped, ...] = ()
    sleep_origin: tuple[tuple[str, int], ...] = ()  # which kind of writer gave each night's sleep: (origin, nights)
    steps_origin: tuple[tuple[str, int], ...] = ()  # which writer gave each day's steps: (origin, days)


def import_apple_health(store: Store, person: Person, path: Path, thresholds: Thresholds = Thresholds(),
                        arrived_on: date | None = None, batch_chunks: int = BATCH_CHUNKS) -> AppleImportResult:
    source = AppleHealthSource(path)  # opens the export before the store is written: a refusal changes nothing
    ctx = PersonContext(person.person_id, person.tz_name)
    sync = SyncResult(person.person_id)
    new_payloads = 0

    def write(batch: list[RawPayload]) -> None:
        nonlocal new_payloads
        report = ingest(store, [Fetched(ctx, source, batch)])  # type: ignore[arg-type]
        part = report.people[person.person_id]
        new_payloads += report.new_payloads
        sync.payloads += part.payloads
        sync.records += part.records
        sync.rejected += part.rejected
        if part.touched is not None:
            sync.touched = part.touched.union(sync.touched)

    batch: list[RawPayload] = []
    for raw in source.payloads(ctx):
        batch.append(raw)
        if len(batch) == batch_chunks:
            write(batch)
            batch = []
    if batch:
        write(batch)
    arrived_on = arrived_on or datetime.now(timezone.utc).date()
    if sync.touched is not None:
        # History someone brought in to use: retention counts from today, not from its nights.
        record_arrival(store, person.person_id, sync.touched, arrived_on)
    store.release_memory()  # what DuckDB kept from the writes, given back before the features step needs memory
    features = update_features(store, [sync], thresholds)
    recalibrate_history(store, person.person_id, thresholds)  # reports imported before this history now have nights
    return AppleImportResult(sync, new_payloads, features, arrived_on, skipped=tuple(source.skipped),
                             sleep_origin=tuple(sorted(source.sleep_origin.items())),
                             steps_origin=tuple(sorted(source.steps_origin.items())))
