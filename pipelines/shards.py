"""People spread over several DuckDB files ("shards") by a stable hash, so several workers can write at once.

DuckDB allows one writing process per file; with N files, N nightly runs (one per shard) can run side by side
on a Prefect process work pool. A person's shard never changes while `shard_count` stays the same.
"""

from __future__ import annotations

import hashlib

from pipelines.settings import Settings


def shard_of(person_id: str, shard_count: int) -> int:
    """Stable across processes and versions (Python's own hash() is salted per process)."""
    digest = hashlib.sha256(person_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def for_shard(settings: Settings, shard: int | None) -> Settings:
    if shard is None:
        return settings
    if not 0 <= shard < settings.shard_count:
        raise ValueError(f"Shard {shard} does not exist: EMBERWATCH_SHARD_COUNT is {settings.shard_count}.")
    return settings.model_copy(update={"shard": shard})


def for_person(settings: Settings, person_id: str) -> Settings:
    """The settings whose database holds this person (unsharded when shard_count is 1)."""
    if settings.shard_count == 1:
        return settings
    return settings.model_copy(update={"shard": shard_of(person_id, settings.shard_count)})
