"""Which connector serves a person: the only place that maps a person's `source` to a connector object.

Live sources (google-health, fitbit-web) need the person's encrypted token and sync bookmarks, both in the
database: the caller passes the store it holds (the flow's, or the CLI's). A second Store cannot be opened on the
same file, not even in the same process (the writer lock), so none is opened here.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from connectors.base import Source
from connectors.fitbit_export import FitbitExportSource
from connectors.synthetic import SyntheticCohort, SyntheticSource
from storage.store import Person, Store

log = logging.getLogger("emberwatch")

LIVE_SOURCES = ("google-health", "fitbit-web")
NEEDS_RECONSENT = "needs_reconsent"

@lru_cache(maxsize=8)
def _synthetic(config_json: str) -> SyntheticSource:
    config = json.loads(config_json)
    return SyntheticSource(SyntheticCohort(
        n_people=config["n_people"], n_nights=config["n_nights"], seed=config["seed"]))


def consent_lost_handler(store: Store):
    """Mark the person needs_reconsent and queue exactly one kind "please reconnect" email."""

    def handle(person_id: str, source: str, reason: str) -> None:
        from pipelines.settings import load_settings
        from pipelines.steps import queue_door_note

        person = store.set_person(person_id, status=NEEDS_RECONSENT)
        now = datetime.now(timezone.utc)
        queue_door_note(store, person, "reconnect", now.date().isoformat(), load_settings(), now, to_connect=True)
        log.warning("Person %s must reconnect %s; a reconnect email is queued.", person_id, source)

    return handle


def live_source(person: Person, store: Store) -> Any:
    from connectors.token_vault import TokenCipher
    from storage.sync_state import BookmarksAfterStore
    from storage.tokens import DbTokenStore

    tokens = DbTokenStore(store, TokenCipher(), consent_lost_handler(store))
    # Bookmarks move when the writer has stored the payloads (steps.ingest), not when the fetch ends.
    bookmarks = BookmarksAfterStore(store)
    if person.source == "google-health":
        from connectors.google_health import GoogleHealthConfig, GoogleHealthSource

        return GoogleHealthSource(tokens, bookmarks, GoogleHealthConfig.from_env(person.source_config))
    from connectors.fitbit_web import FitbitWebConfig, FitbitWebSource

    return FitbitWebSource(tokens, bookmarks, FitbitWebConfig.from_env(person.source_config))


def source_for(person: Person, store: Store | None = None) -> Source | None:
    """The live source to sync nightly, or None for people whose data arrives by import (Fitbit exports) or who
    must reconnect first."""
    if person.source == "synthetic":
        return _synthetic(json.dumps(person.source_config, sort_keys=True))
    if person.source == "fitbit-export":
        return None
    if person.source in LIVE_SOURCES:
        if person.status == NEEDS_RECONSENT:
            return None  # nothing can be fetched until they reconnect; they have had their one email
        if store is None:
            raise ValueError(
                f"Person {person.person_id} syncs live from {person.source}, which needs the run's database store "
                "for their tokens and bookmarks; call source_for(person, store)."
            )
        return live_source(person, store)
    raise ValueError(
        f"Person {person.person_id} has source '{person.source}', which this version cannot sync. "
        "Known sources: synthetic, fitbit-export, google-health, fitbit-web."
    )


def export_source(folder: Path) -> FitbitExportSource:
    return FitbitExportSource(folder)
