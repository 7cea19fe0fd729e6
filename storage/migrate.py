"""The DuckDB schema, as numbered migration files in storage/migrations/ (`NNN_name.sql`, first line a `--`
comment that describes it). Add a file; never edit one that has shipped.

Tables, by layer:
- people and their preferences: `persons`
- raw: `raw_payloads` (every payload as received, before parsing), `quarantine` (what failed to parse, and why)
- normalized (one row per natural key): `sleep_sessions`, `sleep_segments`, `daily_activity`, `daily_resting_hr`,
  `nightly_hrv`, `nightly_vitals`
- features: `nightly_features` (one row per person-night), `night_signals` (baseline comparison and domain flags)
- alerts: `alerts` (decisions with their explanation), `email_ledger` (exactly-once delivery), `run_failures`
- rights: `deletions` (that a deletion happened, nothing else)
- retention: `history_arrivals` (nights that arrived in bulk by import or backfill, and the day they arrived)
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def _load() -> list[tuple[int, str, str]]:
    out = []
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        sql = entry.read_text(encoding="utf-8")
        first = sql.splitlines()[0] if sql else ""
        description = first[2:].strip() if first.startswith("--") else match.group(2).replace("_", " ")
        out.append((int(match.group(1)), description, sql))
    out.sort()
    versions = [v for v, _, _ in out]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"storage/migrations must be numbered 001, 002, … without gaps; found {versions}")
    return out


MIGRATIONS: list[tuple[int, str, str]] = _load()
