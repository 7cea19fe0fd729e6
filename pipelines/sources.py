"""Which connector serves a person: the only place that maps a person's `source` to a connector object.

Live sources (google-health, fitbit-web, oura) need the person's encrypted token (in the token file beside the database,
storage.tokens) and their sync bookmarks. Fetching runs without the database (docs/architecture.md), so the
bookmarks are read before it: pass the open store (they are read at once) or a StoreSnapshot taken from it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from connectors.base import Source
from connectors.fitbit_export import FitbitExportSource
from connectors.synthetic import SyntheticCohort, SyntheticSource
from storage.store import Person, Store
from storage.sync_state import BookmarkSnapshot

log = logging.getLogger("emberwatch")

LIVE_SOURCES = ("google-health", "fitbit-web", "oura")
EXPORT_SOURCES = ("fitbit-export", "google-takeout", "apple-health")  # data arrives by import: nothing to fetch nightly
NEEDS_RECONSENT = "needs_reconsent"


@lru_cache(maxsize=8)
def _synthetic(config_json: str) -> SyntheticSource:
    config = json.loads(config_json)
    return SyntheticSource(SyntheticCohort(
        n_people=config["n_people"], n_nights=config["n_nights"], seed=config["seed"],
        device_wearers=config.get("device_wearers", False)))


@dataclass(frozen=True)
class StoreSnapshot:
    """What fetching needs from the store, read before the store is let go: the database's path (the token file
    lies beside it) and everyone's sync bookmarks."""

    path: Path
    bookmarks: BookmarkSnapshot

    @classmethod
    def read(cls, store: Store) -> "StoreSnapshot":
        return cls(store.path, BookmarkSnapshot.read(store))


def live_source(person: Person, store: Store | StoreSnapshot) -> Any:
    from connectors.token_vault import TokenCipher
    from storage.tokens import DbTokenStore

    tokens = DbTokenStore(store, TokenCipher())
    # Read now: the fetch itself never touches the database. The writer moves them once it stored the payloads.
    bookmarks = store.bookmarks if isinstance(store, StoreSnapshot) else BookmarkSnapshot.read(store, person.person_id)
    if person.source == "google-health":
        from connectors.google_health import GoogleHealthConfig, GoogleHealthSource

        return GoogleHealthSource(tokens, bookmarks, GoogleHealthConfig.from_env(person.config_for(person.source)))
    if person.source == "oura":
        from connectors.oura import OuraConfig, OuraSource

        return OuraSource(tokens, bookmarks, OuraConfig.from_env(person.config_for(person.source)))
    from connectors.fitbit_web import FitbitWebConfig, FitbitWebSource

    return FitbitWebSource(tokens, bookmarks, FitbitWebConfig.from_env(person.config_for(person.source)))


def source_for(person: Person, store: Store | StoreSnapshot | None = None) -> Source | None:
    """The live source to sync nightly, or None for people whose data arrives by import (Fitbit exports, Google
    Takeout) or who must reconnect first."""
    if person.source == "synthetic":
        return _synthetic(json.dumps(person.config_for(person.source), sort_keys=True))
    if person.source in EXPORT_SOURCES:
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
        "Known sources: synthetic, fitbit-export, google-takeout, apple-health, google-health, fitbit-web, oura."
    )


def sources_for(person: Person, store: Store | StoreSnapshot | None = None) -> list[Source]:
    """Every source of the person's to sync nightly (a watch and a ring both, each on its own connection and
    bookmarks): the primary, then each other live source they connected (one added but not yet connected waits
    for its consent, never asks for one); sources that arrive by import have none."""
    names = [person.source]
    others = [name for name in person.sources if name != person.source and name in LIVE_SOURCES]
    if others and store is not None and str(store.path) != ":memory:":
        # With several live devices each syncs while it is connected: one whose consent was lost waits for its
        # reconnection (its note is sent) and never stops the others. With none connected, the primary goes
        # on alone as for a person with one device (its lost consent is then the person's).
        if connected := connected_live_sources(store, person):
            names = [name for name in [person.source, *others] if name in connected or name not in LIVE_SOURCES]
    found = (source_for(replace(person, source=name), store) for name in names)
    return [source for source in found if source is not None]


def connected_live_sources(store: Store | StoreSnapshot, person: Person) -> set[str]:
    """The person's live sources that hold a token (connected, and not lost since)."""
    from storage.tokens import token_rows  # the token file beside the database, never DuckDB itself

    if str(store.path) == ":memory:":
        return set()  # an in-memory store keeps no token file
    held = {row[0] for row in token_rows(store, "SELECT source FROM oauth_tokens WHERE person_id = ?",
                                         (person.person_id,))}
    return held & {name for name in person.sources if name in LIVE_SOURCES}


def export_source(folder: Path) -> FitbitExportSource:
    return FitbitExportSource(folder)
