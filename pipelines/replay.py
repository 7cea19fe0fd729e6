"""Replay nights through the nightly steps in-process, without Prefect: what the nightly flow does, night by
night, for backfills, tests, and checking a sharded run against a single-process one."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Iterable

from connectors.base import Source
from storage.store import Store
from pipelines import steps
from pipelines.settings import Settings


def replay_nights(store: Store, source: Source, settings: Settings, nights: Iterable[date],
                  now_utc: datetime | None = None) -> None:
    people = [p for p in store.people() if p.source == source.name]
    for night in nights:
        fetched = [steps.fetch_person(p, source, night, settings.refetch_nights) for p in people]
        report = steps.ingest(store, fetched)
        steps.update_features(store, report.people.values())
        steps.queue_alerts(store, people, night, settings,
                                      now_utc or datetime(2026, 1, 1, tzinfo=timezone.utc))
