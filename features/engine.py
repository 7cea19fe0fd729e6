"""Compute nightly features and night signals for the nights that changed, plus the lookback they need.

The nightly cost grows with the new nights, not with the history: each step reads only the target nights
(and, for signals, the baseline lookback) and replaces exactly the target rows.
"""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager, suppress
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.crash_points import crash_point
from storage.store import NightRange, Store
from features.devices import default_ranks
from features.thresholds import Thresholds

_PARAM = re.compile(r"\$([a-z][a-z0-9_]*)")


def load_sql(name: str) -> str:
    return resources.files("features").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def _params_for(sql: str, values: dict[str, object]) -> dict[str, object]:
    wanted = set(_PARAM.findall(sql))
    missing = wanted - values.keys()
    if missing:
        raise KeyError(f"feature SQL needs parameters that are not set: {sorted(missing)}")
    return {k: values[k] for k in wanted}


@dataclass(frozen=True)
class FeatureRun:
    people: int
    feature_rows: int
    signal_rows: int
    # nightly-feature rows the signal step read (targets and their lookback): a nightly run's stays bounded by
    # people x (Thresholds.signal_lookback_days + new nights), however long the history
    signal_nights_read: int = 0


def _targets_df(ranges: dict[str, NightRange]):
    """The targets as an Arrow table (person_id, first_night, last_night as dates, person_index), sorted by
    person; person_index is a person's place in it (the signal step's kernels name people by it, not by their id
    strings). Arrow, not pandas: built and registered in a fraction of the time (~1 ms against ~4 at 10k people)."""
    items = sorted(ranges.items())
    return pa.table({
        "person_id": pa.array([pid for pid, _ in items], pa.string()),
        "first_night": pa.array([r.first for _, r in items], pa.date32()),
        "last_night": pa.array([r.last for _, r in items], pa.date32()),
        "person_index": pa.array(np.arange(len(items), dtype=np.int32)),
    })


def _replace_rows(store: Store, table: str, targets_name: str, targets, sql: str,
                  params: dict[str, object], lookups: dict[str, object] | None = None,
                  prepare: Callable[[duckdb.DuckDBPyConnection, dict[str, object]], dict[str, object]] | None = None
                  ) -> int:
    """Compute `sql` for the targets (a _targets_df table) and replace exactly their rows of `table`. `lookups`:
    small tables the SQL reads by name, registered for the statement only; `prepare`: an earlier stage run in the
    same transaction, returning more such tables."""
    # The targets' overall span as constants: the SQL repeats its joins on the targets as plain range filters,
    # and so does the DELETE, so DuckDB skips row groups by their min/max instead of reading the history.
    first, last = pc.min(targets["first_night"]).as_py(), pc.max(targets["last_night"]).as_py()
    params = params | {"first_target_night": first, "last_target_night": last}
    with store.transaction() as cur:
        frames = {targets_name: targets} | (lookups or {})
        for name, frame in frames.items():
            cur.register(name, frame)
        try:
            if prepare is not None:
                staged = prepare(cur, params)
                for name, frame in staged.items():
                    cur.register(name, frame)
                frames |= staged
            cur.execute(
                f"DELETE FROM {table} x USING {targets_name} t WHERE x.person_id = t.person_id "
                f"AND x.night_date BETWEEN t.first_night AND t.last_night AND x.night_date BETWEEN ? AND ?",
                [first, last],
            )
            # Computed straight into the table, after the DELETE (no copy in a temp table: a 10k-person nightly
            # run spent ~15 ms writing, reading back, counting and dropping one): the feature SQL reads only the
            # normalized tables, the signal SQL only stored signals from before the targets, never a row it
            # replaces. In date order: a rebuild then leaves the table laid out by night, as nightly appends do,
            # so a nightly run's date filters skip the row groups of older nights (ordered by person, every row
            # group held every date and each run scanned the whole table).
            n = cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM (\n{sql}\n) ORDER BY night_date, person_id",
                            _params_for(sql, params)).fetchone()[0]
        finally:
            # after a failed statement the transaction is aborted and unregistering fails too: that error
            # must not hide the first one (the cursor closes with the transaction, registrations with it)
            with suppress(duckdb.Error):
                for name in frames:
                    cur.unregister(name)
    return int(n)


def _signal_stages(cur: duckdb.DuckDBPyConnection, params: dict[str, object],
                   read: list[int] | None = None) -> dict[str, object]:
    """The signal step's first stages: read the nights the targets need (night_signal_inputs.sql) and their SRI
    day pairs (sri_day_pairs.sql), and compute their context, sliding windows and baselines in compiled kernels
    (features/windows.py). The number of nights read is appended to `read`."""
    from features import windows  # numba loads its compiled kernels on first use: only the signal step pays

    def query(name: str):
        sql = load_sql(name)
        return cur.sql(sql, params=_params_for(sql, params)).to_arrow_table()

    nights = query("night_signal_inputs")
    if read is not None:
        read.append(nights.num_rows)
    return windows.signal_windows(nights, query("sri_day_pairs"), params)


def segment_bounds(cur: duckdb.DuckDBPyConnection, first_night: date, last_night: date) -> dict[str, object]:
    """$segments_from_utc / $segments_to_utc for target nights first_night..last_night: a log's segments lie inside
    it (connectors.records checks; a day of margin for rows stored before it did), so none starts before the
    earliest log the features can read (the night before the first target's) or after the latest one ends.
    Constant bounds let the segment scan skip the row groups of other dates."""
    from_utc, to_utc = cur.execute(
        "SELECT min(start_utc) - INTERVAL 1 DAY, max(end_utc) + INTERVAL 1 DAY FROM sleep_sessions "
        "WHERE night_date BETWEEN ? AND ?", [first_night - timedelta(days=1), last_night]).fetchall()[0]
    return {"segments_from_utc": from_utc, "segments_to_utc": to_utc}


def _sleep_stage(cur: duckdb.DuckDBPyConnection, params: dict[str, object]) -> dict[str, object]:
    """The feature step's first stage: the continuity and sleep state of every sleep log of the target nights (and
    the night before), from their segments read once, in a compiled kernel (features/sleep_state.py); registered
    as `sleep_log_detail` for nightly_features.sql."""
    from features import sleep_state  # numba loads its compiled kernel on first use

    params = params | segment_bounds(cur, params["first_target_night"], params["last_target_night"])

    def query(name: str):
        sql = load_sql(name)
        return cur.sql(sql, params=_params_for(sql, params)).to_arrow_table()

    return {"sleep_log_detail": sleep_state.sleep_log_detail(cur, query)}


@contextmanager
def _engine_settings(store: Store, settings: dict[str, str]):
    """Run with DuckDB settings for big feature runs, then put the previous values back (the store's
    connection is shared with the rest of the process)."""
    with store.cursor() as cur:
        before = {k: cur.execute("SELECT current_setting(?)", [k]).fetchone()[0] for k in settings}
        for k, v in settings.items():
            cur.execute(f"SET {k} = '{v}'")
    try:
        yield
    finally:
        with store.cursor() as cur:
            for k, v in before.items():
                cur.execute(f"SET {k} = '{v}'")


# Memory: without a cap DuckDB may take 80 % of RAM (a 1k-person rebuild peaked at 4.1 GB, 10k would not fit);
# with one it spills sorts and joins to the database's temp folder (1k x 365: 1.2 GB instead of 2.3 GB at a 6 GB
# cap, for ~25 % more CPU). Feature rows are keyed (person, night), so their order inside a statement does not
# matter, and not keeping it lets DuckDB stream instead of buffering. DuckDB's allocator keeps the pages a big
# statement freed until later allocations purge them; its background threads purge them meanwhile, so the numpy
# and Arrow arrays of the kernels that follow can use that memory (1k x 365 rebuild: peak 1.31 GB -> 1.16-1.19 GB,
# time unchanged).
ENGINE_SETTINGS = {"memory_limit": "1GB", "preserve_insertion_order": "false",
                   "allocator_background_threads": "true"}
# A step over fewer target nights than this runs without the memory cap. It stays far below it (a 10k-person
# nightly run, 20k feature and 10k signal target nights, peaks at ~0.9 GB RSS in all, with or without the cap), and
# each change of DuckDB's memory limit flushes its allocator, whose memory the run then faults back in: setting
# the cap and restoring the limit cost ~0.1 s of a 10k-person nightly run and ~45 ms of a 1k one (alternating
# runs, measured). Rebuilds and long backfills keep the cap.
UNCAPPED_STEP_NIGHTS = 50_000


def _step_settings(ranges: dict[str, NightRange]) -> dict[str, str]:
    """ENGINE_SETTINGS for a step over these ranges, without the memory cap if it is a small one."""
    nights = sum((r.last - r.first).days + 1 for r in ranges.values())
    if nights < UNCAPPED_STEP_NIGHTS:
        return {k: v for k, v in ENGINE_SETTINGS.items() if k != "memory_limit"}
    return ENGINE_SETTINGS


def latest_nights(store: Store, person_ids: list[str], since: date | None = None) -> dict[str, date]:
    """Each person's latest feature night (only people with one on or after `since`, when given: a constant
    bound lets DuckDB skip older row groups; a join on the ids, not a list test on every row)."""
    rows = store.query_rows(
        "SELECT f.person_id, max(f.night_date) FROM nightly_features f "
        "JOIN (SELECT unnest(?::VARCHAR[]) AS person_id) p USING (person_id) "
        "WHERE f.night_date >= coalesce(?::DATE, DATE '0001-01-01') GROUP BY 1",
        [person_ids, since],
    )
    return {r[0]: r[1] for r in rows}


@contextmanager
def _cyclic_gc_paused():
    """Pause Python's cycle collector, then restore it as it was. A run holds a few objects per person (ranges,
    target rows, result tuples) until it ends and makes no reference cycles; at 10k people they were enough to
    set off a full collection of every object in the process in every run (~90 ms of a 1.1 s nightly run, more in
    a bigger process), which freed nothing. Freed by reference counting as usual, they leave no debt behind."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def compute_features(
    store: Store, touched: dict[str, NightRange], thresholds: Thresholds = Thresholds()
) -> FeatureRun:
    """Recompute features for the touched nights, then signals from the first touched night to each person's
    latest night (later nights' baselines include the touched ones)."""
    if not touched:
        return FeatureRun(0, 0, 0)
    params = thresholds.sql_params() | {"read_from_days": thresholds.signal_lookback_days,
                                          "flag_reach_days": thresholds.flag_reach_days}
    with _cyclic_gc_paused():
        # A night's noon-to-noon sleep-state window (SRI) holds the afternoon of the night before, so a
        # touched night also changes the next night's features.
        feature_ranges = {pid: NightRange(r.first, r.last + timedelta(days=1)) for pid, r in touched.items()}
        feature_rows = 0
        with _engine_settings(store, _step_settings(feature_ranges)):
            for chunk in _date_chunks(feature_ranges):
                feature_rows += _replace_rows(
                    store, "nightly_features", "feature_targets", _targets_df(chunk),
                    load_sql("nightly_features"), params, lookups={"default_source_rank": default_ranks()},
                    prepare=_sleep_stage,
                )
        crash_point("features")  # features written, signals not yet: a rerun must recompute both
        # a night before the first touched one cannot extend a signal range
        latest = latest_nights(store, list(touched), since=min(r.first for r in touched.values()))
        signal_ranges = {
            pid: NightRange(r.first, max(r.last, latest.get(pid, r.last))) for pid, r in touched.items()
        }
        signal_rows = 0
        read: list[int] = []
        with _engine_settings(store, _step_settings(signal_ranges)):
            for chunk in _person_chunks(signal_ranges):
                signal_rows += _replace_rows(
                    store, "night_signals", "signal_targets", _targets_df(chunk), load_sql("night_signals"),
                    params, prepare=lambda cur, p: _signal_stages(cur, p, read),
                )
    return FeatureRun(len(touched), feature_rows, signal_rows, sum(read))


# A big run goes in chunks of about this many target nights, so each statement's sorts and the kernels' arrays
# fit in the memory cap (a 10k x 365 rebuild in one statement spilled 12 GB to disk). A nightly run for 10k
# people is one chunk.
CHUNK_NIGHTS = 400_000
# The feature step holds a window's segments in numpy for its kernel (features/sleep_state.py; ~30 a night, ~100 MB
# at 200,000 nights). Measured on 1k x 365: windows of 400,000 nights were no faster and peaked ~300 MB higher;
# of 100,000, ~1.6x slower (fewer rows than a row group per commit go through the WAL and its checkpoints).
FEATURE_CHUNK_NIGHTS = 200_000


def _date_chunks(ranges: dict[str, NightRange]) -> list[dict[str, NightRange]]:
    """Features in windows of dates: a night's features read only its own and the night before's logs, so
    any cut is exact, and a window's date bounds let the segment scan skip the row groups of other dates (stored
    in date order, as they arrive). Cut by person instead, every chunk of a 10k rebuild scanned all 110 M
    segments."""
    total = sum((r.last - r.first).days + 1 for r in ranges.values())
    if total <= FEATURE_CHUNK_NIGHTS:
        return [ranges]
    first, last = min(r.first for r in ranges.values()), max(r.last for r in ranges.values())
    days = (last - first).days + 1
    window = max(1, -(-days * FEATURE_CHUNK_NIGHTS // total))  # days holding about that many target nights
    chunks = []
    lo = first
    while lo <= last:
        hi = lo + timedelta(days=window - 1)
        chunk = {pid: NightRange(max(r.first, lo), min(r.last, hi))
                 for pid, r in ranges.items() if r.first <= hi and r.last >= lo}
        if chunk:
            chunks.append(chunk)
        lo = hi + timedelta(days=1)
    return chunks


def _person_chunks(ranges: dict[str, NightRange]) -> list[dict[str, NightRange]]:
    """Signals in groups of people: a night's signals read the person's earlier nights (their baselines and
    stored flags), and people are independent, so each group reads each of its people's history once."""
    chunks: list[dict[str, NightRange]] = [{}]
    nights = 0
    for pid, r in sorted(ranges.items()):
        span = (r.last - r.first).days + 1
        if chunks[-1] and nights + span > CHUNK_NIGHTS:
            chunks.append({})
            nights = 0
        chunks[-1][pid] = r
        nights += span
    return chunks


# What a rebuild writes: everything in them is computed from the normalized tables.
DERIVED_TABLES = ("nightly_features", "night_signals")


def rebuild_all(store: Store, thresholds: Thresholds = Thresholds(),
                person_ids: list[str] | None = None) -> FeatureRun:
    """Recompute every night of every person (or of `person_ids`) from the normalized tables (the `rebuild`
    path; also after a person changes which device counts). A rebuild of everyone refills DERIVED_TABLES from
    nothing, so a row no normalized data backs any more is not kept."""
    rows = store.query_rows(
        """
        SELECT person_id, min(d), max(d) FROM (
            SELECT person_id, night_date AS d FROM sleep_sessions
            UNION ALL SELECT person_id, day FROM daily_resting_hr
            UNION ALL SELECT person_id, night_date FROM nightly_hrv
            UNION ALL SELECT person_id, night_date FROM nightly_vitals
            UNION ALL SELECT person_id, day FROM daily_activity
        ) WHERE ?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], person_id) GROUP BY person_id
        """, [person_ids, person_ids]
    )
    targets = {r[0]: NightRange(r[1], r[2]) for r in rows}
    if person_ids is not None:
        return compute_features(store, targets, thresholds)
    # Everyone: the tables are refilled from nothing (no row is kept, so none needs deleting, and the primary
    # key is built once at the end instead of checked per row; Store.fresh_tables).
    with store.fresh_tables(DERIVED_TABLES):
        return compute_features(store, targets, thresholds)

