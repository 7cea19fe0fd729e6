"""Sync bookmarks per person x source x data type (table `sync_state`): where incremental syncs resume and
where a backfill has got to."""

from __future__ import annotations

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


class BookmarksAfterStore(SyncState):
    """Sync bookmarks that move only once the fetched payloads are stored.

    A connector marks its data types synced when its fetch finishes; these marks are held until `commit()`, which
    the one writer calls after archiving and upserting the payloads (pipelines.steps.ingest). A run that dies, or
    whose store stage fails, between fetch and store leaves the bookmarks where they were, so the next run fetches
    those nights again instead of starting after them. One instance per person's fetch (not shared by threads).
    """

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._held: list[tuple[str, str, list[str], date]] = []

    def mark_synced(self, person_id: str, source: str, data_type: str, through: date) -> None:
        self._held.append((person_id, source, [data_type], through))

    def mark_synced_many(self, person_id: str, source: str, data_types: list[str], through: date) -> None:
        self._held.append((person_id, source, list(data_types), through))

    def commit(self) -> None:
        for person_id, source, data_types, through in self._held:
            super().mark_synced_many(person_id, source, data_types, through)
        self._held.clear()
