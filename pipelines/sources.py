"""Which connector serves a person: the only place that maps a person's `source` to a connector object."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from connectors.base import Source
from connectors.fitbit_export import FitbitExportSource
from connectors.synthetic import SyntheticCohort, SyntheticSource
from features.store import Person


@lru_cache(maxsize=8)
def _synthetic(config_json: str) -> SyntheticSource:
    config = json.loads(config_json)
    return SyntheticSource(SyntheticCohort(
        n_people=config["n_people"], n_nights=config["n_nights"], seed=config["seed"]))


def source_for(person: Person) -> Source | None:
    """The live source to sync nightly, or None for people whose data arrives by import (Fitbit exports)."""
    if person.source == "synthetic":
        return _synthetic(json.dumps(person.source_config, sort_keys=True))
    if person.source == "fitbit-export":
        return None
    raise ValueError(
        f"Person {person.person_id} has source '{person.source}', which this version cannot sync. "
        "Known sources: synthetic, fitbit-export."
    )


def export_source(folder: Path) -> FitbitExportSource:
    return FitbitExportSource(folder)
