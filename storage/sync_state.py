"""Sync bookmarks per person x source x data type (table `sync_state`): where incremental syncs resume and
where a backfill has got to."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from storage.store import Store, utc_now


class SyncState:
    def __init__(self, store: Store) -> None:
        self.store = store

    def synced_through(self, person_id: str, source: str, data_type: str) -> date | None:
        rows = self.store.query_rows(
            "SELECT synced_through FROM sync_state WHERE person_id = ? AND source = ? AND data_type = ?",
            [person_id, source, data_type])
        return rows[0][0] if rows else None

    def mark_synced(self, person_id: str, source: str, data_type: str, through: date) -> None:
        with self.store.cursor() as cur:
            cur.execute(
                """
                INSERT INTO sync_state VALUES (?, ?, ?, ?, NULL, ?)
                ON CONFLICT (person_id, source, data_type) DO UPDATE SET
                    synced_through = greatest(coalesce(sync_state.synced_through, excluded.synced_through),
                                              excluded.synced_through),
                    updated_at = excluded.updated_at
                """,
                [person_id, source, data_type, through, utc_now()])

    def mark_synced_many(self, person_id: str, source: str, data_types: list[str], through: date) -> None:
        """Several data types at once, in one statement: one commit per data type cost ~8 ms each (DuckDB syncs its
        log on every commit), taken under the store lock every fetch thread shares (benchmarks/ingestion.py)."""
        if not data_types:
            return
        now = utc_now()
        # One statement with a row per data type (executemany runs them one by one: no faster).
        rows = ", ".join(["(?, ?, ?, ?, NULL, ?)"] * len(data_types))
        params = [value for name in data_types for value in (person_id, source, name, through, now)]
        with self.store.cursor() as cur:
            cur.execute(
                f"""
                INSERT INTO sync_state VALUES {rows}
                ON CONFLICT (person_id, source, data_type) DO UPDATE SET
                    synced_through = greatest(coalesce(sync_state.synced_through, excluded.synced_through),
                                              excluded.synced_through),
                    updated_at = excluded.updated_at
                """,
                params)

    def backfilled_from(self, person_id: str, source: str) -> date | None:
        rows = self.store.query_rows(
            "SELECT min(backfilled_from) FROM sync_state "
            "WHERE person_id = ? AND source = ? AND data_type = '*backfill'",
            [person_id, source])
        return rows[0][0] if rows else None

    def mark_backfilled(self, person_id: str, source: str, reached: date) -> None:
        with self.store.cursor() as cur:
            cur.execute(
                """
                INSERT INTO sync_state VALUES (?, ?, '*backfill', NULL, ?, ?)
                ON CONFLICT (person_id, source, data_type) DO UPDATE SET
                    backfilled_from = least(coalesce(sync_state.backfilled_from, excluded.backfilled_from),
                                            excluded.backfilled_from),
                    updated_at = excluded.updated_at
                """,
                [person_id, source, reached, utc_now()])

    def reset_backfill(self, person_id: str, source: str) -> None:
        with self.store.cursor() as cur:
            cur.execute("DELETE FROM sync_state WHERE person_id = ? AND source = ? AND data_type = '*backfill'",
                        [person_id, source])


class BookmarkSnapshot:
    """Bookmarks read before fetching, so that fetches run without the database (docs/architecture.md). The
    writer moves the stored bookmarks once it has stored the payloads (pipelines.steps.ingest), and this copy
    with them, so a later fetch in the same process (a backfill's next slice) starts from where they stand."""

    def __init__(self, rows: dict[tuple[str, str, str], date]) -> None:
        self._rows = rows

    @classmethod
    def read(cls, store: Store, person_id: str | None = None) -> "BookmarkSnapshot":
        rows = store.query_rows(
            "SELECT person_id, source, data_type, synced_through FROM sync_state "
            "WHERE synced_through IS NOT NULL AND (? IS NULL OR person_id = ?)", [person_id, person_id])
        return cls({(r[0], r[1], r[2]): r[3] for r in rows})

    def synced_through(self, person_id: str, source: str, data_type: str) -> date | None:
        return self._rows.get((person_id, source, data_type))

    def advance(self, person_id: str, source: str, data_types: Iterable[str], through: date) -> None:
        for name in data_types:
            key = (person_id, source, name)
            self._rows[key] = max(self._rows.get(key, through), through)
