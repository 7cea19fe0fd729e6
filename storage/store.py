"""The DuckDB store: schema migrations, raw archive, quarantine, idempotent upserts, and reads.

One `Store` per process; it is the only thing in emberwatch that opens the database file. DuckDB allows one
writing process per file, so the store is also where "one writer" is enforced: inside the process all access
is serialised by a lock (writes are bulk and short; fetching happens outside it).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from connectors.base import Rejected, RawPayload
from connectors.records import (
    AnyRecord,
    DailyActivity,
    DailyRestingHeartRate,
    NightlyHrv,
    NightlyVitals,
    SleepSession,
)
from storage.crash_points import crash_point
from storage.migrate import MIGRATIONS
from storage.tokens import TokenFile, tokens_path

# Migration 007 drops DuckDB's `oauth_tokens`; its rows are copied to the token file just before.
TOKENS_MOVED_OUT = 7
# Store.fresh_tables sets a table's old rows aside under this name (table + suffix) until its refill is complete.
SET_ASIDE_SUFFIX = "__before_rebuild"


class StoreError(RuntimeError):
    pass


class DatabaseBusy(StoreError):
    """Another process held the database for longer than this one would wait."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class Person:
    person_id: str
    email: str
    tz_name: str
    source: str
    source_config: dict[str, Any]
    status: str
    detail_level: str
    paused_until: date | None = None  # a pause with an end: emails resume after this local date
    sources: tuple[str, ...] = ()  # every source the person has, in the order added (`source` among them)
    source_configs: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # per source, where one was given

    def config_for(self, source: str) -> dict[str, Any]:
        """The endpoint settings of one of the person's sources: its own, else the person's shared one (a watch and
        a ring each reach their own API; one setting for both would send one to the other's)."""
        return self.source_configs.get(source) or self.source_config


@dataclass(frozen=True)
class NightRange:
    """The civil dates a batch of records touched for one person (inclusive)."""

    first: date
    last: date

    def union(self, other: "NightRange | None") -> "NightRange":
        if other is None:
            return self
        return NightRange(min(self.first, other.first), max(self.last, other.last))


def _take_writer_lock(db_path: Path):
    """An advisory lock beside the database file, so emberwatch processes queue for it instead of meeting
    DuckDB's lock error (which also hits read-only opens). Raises BlockingIOError when another holds it."""
    handle = open(db_path.with_name(db_path.name + ".lock"), "a+")
    try:
        os.chmod(handle.name, 0o600)
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        handle.close()
        raise
    return handle


class Store:
    """The emberwatch database. `wait_s` > 0 waits that long for another process's run to finish instead of
    failing at once: a manual `emberwatch nightly` during the scheduled one queues behind it."""

    def __init__(self, path: Path | str, *, read_only: bool = False, wait_s: float = 0.0) -> None:
        self.path = Path(path)
        self._read_only = read_only
        self._lock_file = None
        self._in_memory = in_memory = str(path) == ":memory:"
        if not in_memory:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        deadline = time.monotonic() + wait_s
        delay_s = 0.1
        while True:
            try:
                if not in_memory:
                    self._lock_file = _take_writer_lock(self.path)
                self._con = duckdb.connect(str(path), read_only=read_only)
                break
            except (BlockingIOError, duckdb.IOException) as exc:
                self._release_writer_lock()
                if isinstance(exc, duckdb.IOException) and "lock" not in str(exc).lower():
                    raise
                if time.monotonic() + delay_s > deadline:
                    # Named file, how long we waited and what to do: the operator reads this at a terminal.
                    raise DatabaseBusy(
                        f"The database {self.path} is in use by another emberwatch process (DuckDB allows one "
                        f"writer); waited {wait_s:g} s for it. Wait for that run to finish, or close the program "
                        "holding it, then try again (EMBERWATCH_WRITER_WAIT_S sets how long a run waits). "
                        "Nothing was changed."
                    ) from None
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 2.0)
        if not in_memory and not read_only:
            os.chmod(self.path, 0o600)  # health data: owner only
        self._lock = threading.RLock()
        if not read_only:
            self._restore_set_aside()  # before the migrations: they may alter the tables it puts back
            self.migrate()

    def _release_writer_lock(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # --- plumbing -------------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._con.close()
            self._release_writer_lock()

    def release_memory(self) -> None:
        """Give back the memory DuckDB kept from a long run of writes: checkpoint, close the connection and open
        it again (the writer lock stays held, so no other process gets in between). DuckDB keeps the buffers and
        allocator pages of what it wrote until its connection closes; at the end of a 1 GB Apple Health import
        that is ~55 MB the features step can use instead. Waits for a cursor in use (the store lock); a no-op for
        an in-memory database (closing it would lose it)."""
        if self._in_memory:
            return
        with self._lock:
            if not self._read_only:
                self._con.execute("CHECKPOINT")
            self._con.close()
            self._con = duckdb.connect(str(self.path), read_only=self._read_only)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor under the store lock. Results must be fetched inside the block (DuckDB 2 streams them)."""
        with self._lock:
            cur = self._con.cursor()
            try:
                yield cur
            finally:
                cur.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def query_df(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        with self.cursor() as cur:
            return cur.execute(sql, params or []).df()

    def query_rows(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple]:
        with self.cursor() as cur:
            return cur.execute(sql, params or []).fetchall()

    def schema_version(self) -> int:
        return self.query_rows("SELECT coalesce(max(version), 0) FROM schema_version")[0][0]

    @contextmanager
    def fresh_tables(self, tables: Sequence[str]) -> Iterator[None]:
        """Refill derived `tables` from nothing, in as many transactions as the caller likes: each is set aside
        (renamed, rows and key intact) and replaced by an empty copy with the same columns, NOT NULLs and defaults
        but no primary key; at the end the new tables are keyed and the old ones dropped, in one transaction. If the
        refill fails, the old tables are put back at once; if the process dies, at the next open
        (_restore_set_aside). So no run ever sees half a refill, nor a table without its key.

        Why without the key while filling: DuckDB checked and indexed every row of every chunk against the key
        (all the rows before it, and the old rows deleted in the same transaction). A full feature rebuild took
        5.7-5.9 s keyed against 4.1 s (1k people x 365 nights) and 102 s against 45 s (10k x 365); building the
        key in one pass at the end takes 0.14 s at 1k."""
        with self.transaction() as cur:
            keys = {table: self._set_aside(cur, table) for table in tables}
        try:
            yield
            with self.transaction() as cur:
                for table, columns in keys.items():
                    cur.execute(f'ALTER TABLE "{table}" ADD PRIMARY KEY ({", ".join(columns)})')
                    cur.execute(f'DROP TABLE "{table}{SET_ASIDE_SUFFIX}"')
        except BaseException:
            self._restore_set_aside()
            raise

    @staticmethod
    def _set_aside(cur: duckdb.DuckDBPyConnection, table: str) -> list[str]:
        """Rename `table` to table + SET_ASIDE_SUFFIX and create an empty, unkeyed copy under its name (read from
        the catalog, so a later migration's columns come along); return the key's columns."""
        (key,) = cur.execute("SELECT constraint_column_names FROM duckdb_constraints() "
                             "WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'", [table]).fetchone()
        columns = cur.execute("SELECT column_name, is_nullable, column_default FROM duckdb_columns() "
                              "WHERE table_name = ? ORDER BY column_index", [table]).fetchall()
        aside = f"{table}{SET_ASIDE_SUFFIX}"
        cur.execute(f'ALTER TABLE "{table}" RENAME TO "{aside}"')
        cur.execute(f'CREATE TABLE "{table}" AS SELECT * FROM "{aside}" LIMIT 0')
        for name, nullable, default in columns:
            if not nullable and name not in key:  # the key's columns get theirs with the key
                cur.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{name}" SET NOT NULL')
            if default is not None:
                cur.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{name}" SET DEFAULT {default}')
        return list(key)

    def _restore_set_aside(self) -> None:
        """Put back every table a refill set aside (Store.fresh_tables) and did not finish, dropping its partial
        replacement: the database is then exactly as it was before the refill began."""
        with self.transaction() as cur:
            aside = [r[0] for r in cur.execute("SELECT table_name FROM duckdb_tables() WHERE suffix(table_name, ?)",
                                                [SET_ASIDE_SUFFIX]).fetchall()]
            for name in aside:
                table = name.removesuffix(SET_ASIDE_SUFFIX)
                cur.execute(f'DROP TABLE IF EXISTS "{table}"')
                cur.execute(f'ALTER TABLE "{name}" RENAME TO "{table}"')

    def migrate(self) -> None:
        with self.cursor() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description VARCHAR, "
                "applied_at TIMESTAMP)"
            )
            current = cur.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
        for version, description, sql in MIGRATIONS:
            if version <= current:
                continue
            if version == TOKENS_MOVED_OUT:
                self._move_tokens_out()
            with self.transaction() as cur:
                cur.execute(sql)
                cur.execute("INSERT INTO schema_version VALUES (?, ?, ?)", [version, description, utc_now()])

    def _move_tokens_out(self) -> None:
        rows = self.query_rows("SELECT * FROM oauth_tokens")
        path = tokens_path(self.path)
        if rows and path is not None:
            TokenFile(path).adopt(rows)  # committed (and synced) before the drop below is

    @property
    def tokens_path(self) -> Path | None:
        """The token file beside this database (storage.tokens): tokens live apart from DuckDB."""
        return tokens_path(self.path) if str(self.path) != ":memory:" else None

    def table_counts(self) -> dict[str, int]:
        """Rows per table, the token file's tables included."""
        tables = [r[0] for r in self.query_rows("SELECT table_name FROM duckdb_tables() ORDER BY table_name")]
        counts = {t: self.query_rows(f'SELECT count(*) FROM "{t}"')[0][0] for t in tables}
        if self.tokens_path is not None:
            counts.update(TokenFile(self.tokens_path).table_counts())
        return dict(sorted(counts.items()))

    # --- people ---------------------------------------------------------------------------------------------

    def add_person(
        self,
        person_id: str,
        email: str,
        tz_name: str,
        source: str,
        source_config: dict[str, Any] | None = None,
        detail_level: str = "minimal",
    ) -> None:
        """Enrol or update a person. Re-adding keeps their status (a paused person stays paused)."""
        with self.cursor() as cur:
            cur.execute(
                """
                INSERT INTO persons (person_id, email, tz_name, source, source_config, status, detail_level, enrolled_at)
                VALUES (?, ?, ?, ?, ?, 'active', ?, ?)
                ON CONFLICT (person_id) DO UPDATE SET email = excluded.email, tz_name = excluded.tz_name,
                    source = excluded.source, source_config = excluded.source_config
                """,
                [person_id, email, tz_name, source, json.dumps(source_config or {}, sort_keys=True), detail_level,
                 utc_now()],
            )
        self.add_source(person_id, source)

    def add_source(self, person_id: str, source: str, source_config: dict[str, Any] | None = None) -> bool:
        """Give a person one more source (a second device, or a new brand), with its own endpoint settings if
        given (for a source they had already, those replace its settings). False if they had it already."""
        config = json.dumps(source_config or {}, sort_keys=True)
        with self.cursor() as cur:
            added = cur.execute(
                "INSERT INTO person_sources (person_id, source, added_at, source_config) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING source",
                [person_id, source, utc_now(), config]).fetchall()
            if not added and source_config:
                cur.execute("UPDATE person_sources SET source_config = ? WHERE person_id = ? AND source = ?",
                            [config, person_id, source])
        return bool(added)

    def source_choices(self, person_id: str) -> dict[str, str]:
        """{data type: source} the person chose over the default order (features/devices.py)."""
        return dict(self.query_rows(
            "SELECT data_type, source FROM source_choices WHERE person_id = ? ORDER BY data_type", [person_id]))

    def set_source_choice(self, person_id: str, data_type: str, source: str) -> None:
        with self.cursor() as cur:
            cur.execute(
                "INSERT INTO source_choices VALUES (?, ?, ?, ?) ON CONFLICT (person_id, data_type) DO UPDATE "
                "SET source = excluded.source, chosen_at = excluded.chosen_at",
                [person_id, data_type, source, utc_now()])

    def people(self, *, active_only: bool = True) -> list[Person]:
        where = "WHERE status = 'active'" if active_only else ""
        rows = self.query_rows(
            "SELECT person_id, email, tz_name, source, source_config, status, detail_level, paused_until, "
            "(SELECT list(s.source ORDER BY s.added_at, s.source) FROM person_sources s "
            " WHERE s.person_id = persons.person_id), "
            "(SELECT list(struct_pack(source := s.source, config := s.source_config)) FROM person_sources s "
            " WHERE s.person_id = persons.person_id AND s.source_config NOT IN ('', '{}')) "
            f"FROM persons {where} ORDER BY person_id"
        )
        return [Person(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}"), r[5], r[6], r[7], tuple(r[8] or ()),
                       {own["source"]: json.loads(own["config"]) for own in r[9] or ()})
                for r in rows]

    def set_person(self, person_id: str, *, status: str | None = None, detail_level: str | None = None,
                   email: str | None = None, tz_name: str | None = None,
                   paused_until: date | None = None) -> Person:
        """Change what is given, in one transaction. A status change clears any pause end unless one is given."""
        self.person(person_id)  # a clear error for an unknown id
        changes: dict[str, object] = {"status": status, "detail_level": detail_level, "email": email,
                                      "tz_name": tz_name}
        with self.transaction() as cur:
            for column, value in changes.items():
                if value is not None:
                    cur.execute(f'UPDATE persons SET "{column}" = ? WHERE person_id = ?', [value, person_id])
            if status is not None:
                cur.execute("UPDATE persons SET paused_until = ? WHERE person_id = ?",
                            [paused_until if status == "paused" else None, person_id])
        return self.person(person_id)

    def delivery_preferences(self, person_id: str) -> tuple[str, str]:
        """(delivery window, working days) as stored, e.g. ("07:30-08:30", "Mon-Fri"); alerts.schedule reads them."""
        rows = self.query_rows("SELECT delivery_window, working_days FROM persons WHERE person_id = ?", [person_id])
        if not rows:
            self.person(person_id)  # raises the usual clear error
        window, days = rows[0]
        return window or "07:30-08:30", days or "Mon-Fri"

    def set_delivery_preferences(self, person_id: str, *, window: str | None = None, days: str | None = None) -> None:
        self.person(person_id)
        with self.cursor() as cur:
            if window is not None:
                cur.execute("UPDATE persons SET delivery_window = ? WHERE person_id = ?", [window, person_id])
            if days is not None:
                cur.execute("UPDATE persons SET working_days = ? WHERE person_id = ?", [days, person_id])

    def forget_person(self, person_id: str, files_removed: int = 0) -> int:
        """Delete every row about the person in every table; keep only that a deletion happened."""
        tables = [r[0] for r in self.query_rows(
            "SELECT DISTINCT table_name FROM duckdb_columns() WHERE column_name = 'person_id'")]
        # Tokens live in their own file (storage.tokens); they go first, and a failure below can be re-run.
        removed = TokenFile(self.tokens_path).delete_person(person_id) if self.tokens_path is not None else 0
        with self.transaction() as cur:
            for table in tables:
                removed += cur.execute(f'DELETE FROM "{table}" WHERE person_id = ?', [person_id]).fetchone()[0]
            cur.execute("INSERT INTO deletions VALUES (?, ?, ?)", [utc_now(), removed, files_removed])
        with self.cursor() as cur:
            cur.execute("CHECKPOINT")  # deleted rows must not linger in the write-ahead log
        return removed

    def person(self, person_id: str) -> Person:
        for p in self.people(active_only=False):
            if p.person_id == person_id:
                return p
        raise StoreError(f"No person with id '{person_id}' is enrolled. `emberwatch person add` enrols one.")

    # --- raw archive and quarantine -------------------------------------------------------------------------

    def archive(self, raws: Sequence[RawPayload]) -> int:
        """Keep payloads exactly as received. Returns how many were new (an identical payload is kept once)."""
        if not raws:
            return 0
        df = pd.DataFrame(
            [(r.person_id, r.source, r.resource, r.sha256, r.window_start, r.window_end, _naive_utc(r.fetched_at),
              r.body) for r in raws],
            columns=["person_id", "source", "resource", "payload_sha256", "window_start", "window_end",
                     "fetched_at", "body"],
        ).drop_duplicates(["person_id", "source", "resource", "payload_sha256"], keep="first")
        with self.cursor() as cur:
            cur.register("raw_batch", df)
            try:
                # DuckDB answers an INSERT with the number of rows it inserted (conflicts skipped).
                return cur.execute("INSERT INTO raw_payloads SELECT * FROM raw_batch ON CONFLICT DO NOTHING").fetchone()[0]
            finally:
                cur.unregister("raw_batch")

    def quarantine(self, raw: RawPayload, rejected: Iterable[Rejected]) -> int:
        rows = [
            (raw.person_id, raw.source, raw.resource, raw.sha256, r.locator, r.reason, utc_now()) for r in rejected
        ]
        if not rows:
            return 0
        df = pd.DataFrame(rows, columns=["person_id", "source", "resource", "payload_sha256", "locator", "reason",
                                         "quarantined_at"]).drop_duplicates(["payload_sha256", "locator"], keep="last")
        with self.cursor() as cur:
            cur.register("q_batch", df)
            cur.execute(
                "INSERT INTO quarantine SELECT * FROM q_batch ON CONFLICT (person_id, payload_sha256, locator) "
                "DO UPDATE SET reason = excluded.reason"
            )
            cur.unregister("q_batch")
        return len(df)

    def raw_payloads(self, person_id: str, source: str | None = None) -> list[RawPayload]:
        """Archived payloads, oldest first, for re-parsing after a parser fix."""
        rows = self.query_rows(
            "SELECT person_id, source, resource, body, fetched_at, window_start, window_end FROM raw_payloads "
            "WHERE person_id = ? AND (? IS NULL OR source = ?) ORDER BY fetched_at",
            [person_id, source, source],
        )
        return [
            RawPayload(r[0], r[1], r[2], bytes(r[3]), r[4].replace(tzinfo=timezone.utc), r[5], r[6]) for r in rows
        ]

    # --- normalized records ---------------------------------------------------------------------------------

    def upsert_records(self, records: Sequence[AnyRecord]) -> dict[str, NightRange]:
        """Insert or update records by natural key. Returns, per person, the civil dates touched."""
        touched: dict[str, NightRange] = {}

        def touch(person_id: str, day: date) -> None:
            touched[person_id] = NightRange(day, day).union(touched.get(person_id))

        by_kind: dict[type, list[AnyRecord]] = {}
        for rec in records:
            by_kind.setdefault(type(rec), []).append(rec)
            touch(rec.person_id, getattr(rec, "night_date", None) or getattr(rec, "day"))

        with self.transaction() as cur:
            if sessions := by_kind.get(SleepSession):
                self._upsert_sessions(cur, sessions)  # type: ignore[arg-type]
            crash_point("upsert")
            for model, table, keys, day_col in (
                (DailyActivity, "daily_activity", ["person_id", "source", "day"], "day"),
                (DailyRestingHeartRate, "daily_resting_hr", ["person_id", "source", "day"], "day"),
                (NightlyHrv, "nightly_hrv", ["person_id", "source", "night_date"], "night_date"),
                (NightlyVitals, "nightly_vitals", ["person_id", "source", "night_date"], "night_date"),
            ):
                if batch := by_kind.get(model):
                    df = pd.DataFrame([r.model_dump(exclude={"kind"}) for r in batch])
                    # Partial rows (one activity file at a time) merge field by field instead of erasing.
                    _upsert_df(cur, table, df, keys, merge_nulls=True)
        return touched

    @staticmethod
    def _upsert_sessions(cur: duckdb.DuckDBPyConnection, sessions: list[SleepSession]) -> None:
        keys = ["person_id", "source", "source_session_id"]
        df = pd.DataFrame(
            [
                {
                    **s.model_dump(exclude={"kind", "segments"}),
                    "start_utc": _naive_utc(s.start_utc),
                    "end_utc": _naive_utc(s.end_utc),
                    "start_utc_offset_min": s.start_utc_offset_min,
                    "end_utc_offset_min": s.end_utc_offset_min,
                }
                for s in sessions
            ]
        )
        df = df.drop_duplicates(keys, keep="last")
        _upsert_df(cur, "sleep_sessions", df, keys)
        # A re-sent session replaces its segments wholesale: the source may have re-scored the night.
        seg_rows = [
            (s.person_id, s.source, s.source_session_id, _naive_utc(g.start_utc), g.duration_s, g.stage.value)
            for s in {(s.person_id, s.source, s.source_session_id): s for s in sessions}.values()
            for g in s.segments
        ]
        cur.register("sess_keys", df[keys])
        cur.execute(
            "DELETE FROM sleep_segments s USING sess_keys k WHERE s.person_id = k.person_id "
            "AND s.source = k.source AND s.source_session_id = k.source_session_id"
        )
        cur.unregister("sess_keys")
        if seg_rows:
            seg = pd.DataFrame(seg_rows, columns=keys + ["seg_start_utc", "duration_s", "stage"])
            seg = seg.drop_duplicates(keys + ["seg_start_utc"], keep="last")
            cur.register("seg_batch", seg)
            cur.execute("INSERT INTO sleep_segments SELECT * FROM seg_batch")
            cur.unregister("seg_batch")


def _upsert_df(
    cur: duckdb.DuckDBPyConnection, table: str, df: pd.DataFrame, keys: list[str], *, merge_nulls: bool = False
) -> None:
    """Upsert a DataFrame by key. DuckDB keeps the *first* row of a key repeated within one statement, so the
    batch is de-duplicated here first (last one wins, as the latest fetch is the freshest)."""
    if df.empty:
        return
    if merge_nulls:
        # Partial rows for one key inside the batch merge too: the last non-null value of each column wins.
        df = df.groupby(keys, sort=False, dropna=False).last().reset_index()
    else:
        df = df.drop_duplicates(keys, keep="last")
    cols = list(df.columns)
    updates = ", ".join(
        f'"{c}" = coalesce(excluded."{c}", "{table}"."{c}")' if merge_nulls else f'"{c}" = excluded."{c}"'
        for c in cols
        if c not in keys
    )
    col_list = ", ".join(f'"{c}"' for c in cols)
    cur.register("upsert_batch", df)
    try:
        cur.execute(
            f'INSERT INTO "{table}" ({col_list}) SELECT {col_list} FROM upsert_batch '
            f'ON CONFLICT ({", ".join(keys)}) DO UPDATE SET {updates}'
        )
    finally:
        cur.unregister("upsert_batch")
