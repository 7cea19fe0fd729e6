"""Feature-engine benchmark: full rebuild, one nightly increment, peak RSS — against a pandas reference and
against the floors (a bare scan of the segments, grouping them into nights, and writing both tables' rows).

Usage:  .venv/bin/python benchmarks/feature_engine.py --people 1000 --nights 365 [--pandas] [--keep DIR]
        .venv/bin/python benchmarks/feature_engine.py --check-sql-against COMMIT   (50 people x 200 nights)
        .venv/bin/python benchmarks/feature_engine.py --check-sql-against COMMIT --db HOME/emberwatch.duckdb

Data are generated in numpy (stage segments for every night: ~30 a night) and appended from Arrow to a
file-backed database in date order, like nightly ingestion; then each measurement runs in a fresh subprocess
so peak RSS is that step's own (the kernel's high-water mark of that process, VmHWM: getrusage's ru_maxrss
would also count the parent's size at fork).

`--check-sql-against COMMIT` is the guard for rewrites of the feature SQL: on a synthetic cohort with every
kind of night (night shifts, travel across zones and DST, naps, classic logs, missing nights, tags) it
computes both tables with the SQL of COMMIT (`git show COMMIT:features/sql/...`) and with the working tree's,
and compares them row for row (floating point within 1e-9); then nightly runs on top must leave them equal.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIRST_NIGHT = date(2025, 1, 1)
SEGMENTS_PER_NIGHT = 30
GENERATE_NIGHTS = 30
GENERATE_SEED = 42
STAGES = ("wake", "light", "deep", "rem")  # codes 0-3
_EPOCH_DAY = (FIRST_NIGHT - date(1970, 1, 1)).days


def _generate_batch(rng: np.random.Generator, person_ids, lo: int, hi: int) -> dict:
    """Nights lo..hi-1 (0 = FIRST_NIGHT) for everyone, as Arrow tables ready to append. Rows are in nightly
    ingestion order: night by night, everyone's night in person order, a night's segments in time order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    people, k = len(person_ids), SEGMENTS_PER_NIGHT
    night = np.repeat(np.arange(lo, hi, dtype=np.int32), people)
    person = np.tile(np.arange(people, dtype=np.int32), hi - lo)
    n = len(night)
    night_date = pa.array(night + np.int32(_EPOCH_DAY)).cast(pa.date32())
    pid = pa.DictionaryArray.from_arrays(pa.array(person), person_ids)
    # person_id || '-' || night_date
    session_id = pc.binary_join_element_wise(person_ids.take(pa.array(person)),
                                             pc.cast(night_date, pa.string()), "-")
    # bedtime 22:00-00:30 (UTC here) the evening before night_date, in seconds since the epoch
    start_s = (_EPOCH_DAY + night.astype(np.int64) - 1) * 86400 \
        + (1320 + np.rint(rng.random(n) * 150).astype(np.int64)) * 60
    # 30 segments of 14-18 min tiling the night: a segment starts where the ones before it end
    duration_s = (840 + np.rint(rng.random((n, k)) * 240)).astype(np.int32)
    wake = rng.random((n, k)) < 0.08
    wake[:, 0] = True
    pos = np.arange(k) % 6
    stage = np.where(wake, np.int8(0), np.where(pos == 1, 2, np.where(pos == 4, 3, 1)).astype(np.int8))
    ends = np.cumsum(duration_s, axis=1, dtype=np.int64)
    seg_start_us = (start_s[:, None] + ends - duration_s) * 1_000_000
    in_bed_s, awake_s = ends[:, -1], np.where(wake, duration_s, 0).sum(axis=1)
    resting_hr_bpm = 55 + (person % 15) + rng.random(n) * 4
    rmssd_ms = 35 + (person % 30) + rng.random(n) * 10
    has_hrv = pa.array(rng.random(n) > 0.05)  # ~95 % of nights

    def minutes(seconds):  # as DuckDB's (sum(duration_s) / 60)::INTEGER (half to even)
        return pa.array(np.rint(seconds / 60).astype(np.int32))

    def dictionary(codes, values):
        return pa.DictionaryArray.from_arrays(pa.array(codes), values)

    return {
        "sessions": pa.table({
            "person_id": pid, "source_session_id": session_id, "night_date": night_date,
            "start_utc": pa.array(start_s * 1_000_000, pa.timestamp("us")),
            "end_utc": pa.array((start_s + in_bed_s) * 1_000_000, pa.timestamp("us")),
            "minutes_asleep": minutes(in_bed_s - awake_s), "minutes_awake": minutes(awake_s),
            "time_in_bed_min": minutes(in_bed_s)}),
        "segments": pa.table({
            "person_id": dictionary(np.repeat(person, k), person_ids),
            "source_session_id": dictionary(np.repeat(np.arange(n, dtype=np.int32), k), session_id),
            "seg_start_utc": pa.array(seg_start_us.ravel(), pa.timestamp("us")),
            "duration_s": pa.array(duration_s.ravel()),
            "stage": dictionary(stage.ravel(), pa.array(STAGES))}),
        "resting_hr": pa.table({"person_id": pid, "day": night_date, "bpm": resting_hr_bpm}),
        "hrv": pa.table({"person_id": pid, "night_date": night_date, "rmssd_ms": rmssd_ms}).filter(has_hrv),
    }


_APPEND = {
    "sessions": "INSERT INTO sleep_sessions SELECT person_id, 'bench', source_session_id, night_date, "
                "start_utc, end_utc, 'UTC', 0, 0, true, 'stages', minutes_asleep, minutes_awake, 0, "
                "time_in_bed_min FROM batch",
    "segments": "INSERT INTO sleep_segments SELECT person_id, 'bench', source_session_id, seg_start_utc, "
                "duration_s, stage FROM batch",
    "resting_hr": "INSERT INTO daily_resting_hr SELECT person_id, 'bench', day, bpm FROM batch",
    "hrv": "INSERT INTO nightly_hrv (person_id, source, night_date, rmssd_ms) SELECT person_id, 'bench', night_date, "
           "rmssd_ms FROM batch",
}


def _append(cur, tables: dict, names) -> None:
    for name in names:
        cur.register("batch", tables[name])
        cur.execute(_APPEND[name])
        cur.unregister("batch")


def generate(db: Path, people: int, nights: int) -> dict[str, float]:
    """Normalized tables as the connectors would fill them: one main sleep a night with stage segments,
    daily resting HR and nightly HRV. Deterministic (seeded numpy generator).

    Built in numpy and appended from Arrow, GENERATE_NIGHTS nights for everyone at a time, in date order: the
    file is laid out as nightly ingestion lays it out (the engine's date filters skip row groups by min/max).
    Nearly all the time is DuckDB maintaining sleep_segments' primary-key index, on one core (1-1.5 us a row,
    ~10x the append itself), so batch i's segments are appended on one cursor while, on the other core, the
    other tables of batch i are appended and batch i+1 is built."""
    import threading

    import pyarrow as pa

    sys.path.insert(0, str(REPO))
    from storage.store import Store

    started = time.perf_counter()
    rng = np.random.default_rng(GENERATE_SEED)
    person_ids = pa.array([f"b{p:05d}" for p in range(people)])
    with Store(db) as store, store.cursor() as cur:
        cur.execute(f"""
            INSERT INTO persons (person_id, email, tz_name, source, source_config, enrolled_at)
            SELECT 'b' || lpad(p::VARCHAR, 5, '0'), 'b' || lpad(p::VARCHAR, 5, '0') || '@example.org', 'UTC',
                   'bench', '{{}}', now()::TIMESTAMP
            FROM range({people}) a(p)
        """)
        seg_cur, failed = cur.cursor(), []

        def append_segments(tables):
            try:
                _append(seg_cur, tables, ["segments"])
            except BaseException as exc:  # re-raised in the caller's thread
                failed.append(exc)

        def batch_from(lo):
            if lo >= nights:
                return None
            return _generate_batch(rng, person_ids, lo, min(nights, lo + GENERATE_NIGHTS))

        lo, batch = 0, batch_from(0)
        while batch is not None:
            segments = threading.Thread(target=append_segments, args=(batch,))
            segments.start()
            try:
                _append(cur, batch, ["sessions", "resting_hr", "hrv"])
                lo += GENERATE_NIGHTS
                batch = batch_from(lo)
            finally:
                segments.join()
            if failed:
                raise failed[0]
        seg_cur.close()
        counts = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("sleep_sessions", "sleep_segments")}
    return {"generate_s": time.perf_counter() - started, **counts}

STEP = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
from datetime import date, timedelta
from storage.store import Store, NightRange
from features import engine
step, db = {step!r}, {db!r}
with Store(db) as store:
    started, cpu_started = time.perf_counter(), cpu_s()
    if step == "rebuild":
        run = engine.rebuild_all(store); out = {{"feature_rows": run.feature_rows, "signal_rows": run.signal_rows}}
    elif step == "increment":
        last = store.query_rows("SELECT max(night_date) FROM sleep_sessions")[0][0]
        ids = [r[0] for r in store.query_rows("SELECT person_id FROM persons")]
        run = engine.compute_features(store, {{pid: NightRange(last, last) for pid in ids}})
        # the first run in a process also loads the compiled window kernels (numba's cache, once per process);
        # the same night again shows the run itself
        cold = time.perf_counter() - started
        started, cpu_started = time.perf_counter(), cpu_s()
        run = engine.compute_features(store, {{pid: NightRange(last, last) for pid in ids}})
        out = {{"feature_rows": run.feature_rows, "signal_rows": run.signal_rows,
               "signal_nights_read": run.signal_nights_read, "first_in_process_seconds": cold}}
    elif step == "scan":
        out = {{"rows": store.query_rows("SELECT count(*), sum(duration_s) FROM sleep_segments")[0][0]}}
    elif step == "group":
        out = {{"nights": store.query_rows(
            "SELECT count(*) FROM (SELECT person_id, source_session_id, sum(duration_s) FILTER (WHERE stage = 'wake') "
            "AS wake_s, min(seg_start_utc), max(seg_start_utc) FROM sleep_segments GROUP BY ALL)")[0][0]}}
    elif step == "write":
        # a floor no engine of these tables goes below: the rebuild's own rows, already computed, inserted from
        # Arrow in the layout the engine leaves (date order) and committed; the copies are dropped afterwards
        tables = ("nightly_features", "night_signals")
        with store.cursor() as cur:
            frames = {{t: cur.sql(f"SELECT * FROM {{t}}").to_arrow_table() for t in tables}}
            for t in tables:
                cur.execute(f"CREATE OR REPLACE TABLE floor_{{t}} AS SELECT * FROM {{t}} LIMIT 0")
            cur.execute("SET preserve_insertion_order = false")
        started, cpu_started = time.perf_counter(), cpu_s()
        with store.transaction() as cur:
            for t, frame in frames.items():
                cur.register("frame", frame)
                cur.execute(f"INSERT INTO floor_{{t}} SELECT * FROM frame ORDER BY night_date, person_id")
                cur.unregister("frame")
        out = {{"rows": sum(f.num_rows for f in frames.values())}}
        elapsed, cpu_elapsed = time.perf_counter() - started, cpu_s() - cpu_started
        with store.cursor() as cur:
            for t in tables:
                cur.execute(f"DROP TABLE floor_{{t}}")
            cur.execute("CHECKPOINT")
        started, cpu_started = time.perf_counter() - elapsed, cpu_s() - cpu_elapsed
    elif step == "pandas":
        # both tables in pandas (timed), then every column compared with DuckDB's (not timed; raises, naming the
        # column, at the first difference)
        sys.path.insert(0, {bench!r})
        import pandas_reference
        ref = pandas_reference.compute(store)
        out = {{"rows": len(ref.features), "signal_rows": len(ref.signals)}}
        elapsed, cpu_elapsed = time.perf_counter() - started, cpu_s() - cpu_started
        hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
        out["peak_rss_compute_mb"] = int(hwm.split()[1]) / 1024  # before the comparison reads DuckDB's tables
        out.update(pandas_reference.compare_with_duckdb(store, ref))
        started, cpu_started = time.perf_counter() - elapsed, cpu_s() - cpu_elapsed
    out["seconds"] = time.perf_counter() - started
    out["cpu_seconds"] = cpu_s() - cpu_started  # all DuckDB threads: steadier than wall time when shared
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
out["peak_rss_mb"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""


def run_step(step: str, db: Path) -> dict:
    code = STEP.format(repo=str(REPO), step=step, db=str(db), bench=str(REPO / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"step {step} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fill_check_cohort(store, cohort, source, nights: int) -> None:
    from connectors.base import PersonContext
    from features.tags import add_tag
    from pipelines import steps

    for p in cohort.people:
        store.add_person(p.person_id, p.email, p.tz_name, "synthetic", {})
    steps.ingest(store, [steps.Fetched(PersonContext(p.person_id, p.tz_name), source,
                                       list(source.fetch(PersonContext(p.person_id, p.tz_name),
                                                         cohort.nights[0], cohort.nights[-1])))
                         for p in cohort.people])
    # tags of every kind; people 0-3 keep a roster (day-off tags), so their free days are not weekends
    first = cohort.nights[0]
    for k, p in enumerate(cohort.people[:12]):
        for j, tag in enumerate(("illness", "travel", "on-call", "night-shift", "day-off")):
            if tag == "day-off" and k >= 4:
                continue
            start = first + timedelta(days=(20 + 17 * k + 31 * j) % max(nights - 5, 1))
            add_tag(store, p.person_id, tag, start, start + timedelta(days=j % 3))


def check_sql_against(commit: str, people: int, nights: int, folder: Path, real_db: Path | None = None) -> None:
    """Compute nightly_features and night_signals with COMMIT's SQL and with the working tree's on one
    synthetic cohort, or on a copy of `real_db` (a home with real exports imported); raise on any difference
    (floating point within 1e-9)."""
    sys.path.insert(0, str(REPO))
    from connectors.synthetic import SyntheticCohort, SyntheticSource
    from features import engine
    from storage.store import NightRange, Store
    from features.devices import default_ranks
    from features.thresholds import Thresholds

    old_sql = {name: subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:features/sql/{name}.sql"],
                                    check=True, capture_output=True, text=True).stdout
               for name in ("nightly_features", "night_signals")}
    if real_db is not None:
        import shutil

        db = folder / f"check-copy-of-{real_db.stem}.duckdb"
        shutil.copyfile(real_db, db)  # the original is never written
        fresh = False
    else:
        cohort = SyntheticCohort(n_people=people, n_nights=nights, seed=7)
        source = SyntheticSource(cohort)
        db = folder / f"check-{people}x{nights}.duckdb"
        fresh = not db.exists()
    with Store(db) as store:
        if fresh:
            _fill_check_cohort(store, cohort, source, nights)
        started = time.perf_counter()
        engine.rebuild_all(store)
        new_s = time.perf_counter() - started
        new = {t: store.query_df(f"SELECT * FROM {t} ORDER BY person_id, night_date")
               for t in ("nightly_features", "night_signals")}
        # the same rebuild with COMMIT's SQL
        ranges = {r[0]: NightRange(r[1], r[2]) for r in store.query_rows(
            "SELECT person_id, min(night_date), max(night_date) FROM nightly_features GROUP BY 1")}
        th = Thresholds()
        params = th.sql_params() | {"read_from_days": th.signal_lookback_days, "flag_reach_days": th.flag_reach_days}
        started = time.perf_counter()
        feature_ranges = {pid: NightRange(r.first, r.last + timedelta(days=1)) for pid, r in ranges.items()}
        feature_params = params
        if "$segments_from_utc" in old_sql["nightly_features"]:
            # COMMIT's SQL reads the segments itself (before features/sleep_state.py), within these bounds
            with store.cursor() as cur:
                feature_params = params | engine.segment_bounds(
                    cur, min(r.first for r in feature_ranges.values()), max(r.last for r in feature_ranges.values()))
        # COMMIT's SQL with the stages it reads, when it reads them: the sleep kernel's `sleep_log_detail` and the
        # signal kernels' `night_windows` (the working tree's stages: this check compares SQL, not kernels).
        # Before the kernels, night_signals.sql ran as one statement, its baselines by window.
        reads_sleep_detail = "sleep_log_detail" in old_sql["nightly_features"]
        reads_windows = "night_windows" in old_sql["night_signals"]
        engine._replace_rows(store, "nightly_features", "feature_targets", engine._targets_df(feature_ranges),
                             old_sql["nightly_features"], feature_params,
                             lookups={"default_source_rank": default_ranks()},
                             prepare=engine._sleep_stage if reads_sleep_detail else None)
        engine._replace_rows(store, "night_signals", "signal_targets", engine._targets_df(ranges),
                             old_sql["night_signals"], params | {"baseline_by_window": True},
                             prepare=engine._signal_stages if reads_windows else None)
        old_s = time.perf_counter() - started
        old = {t: store.query_df(f"SELECT * FROM {t} ORDER BY person_id, night_date")
               for t in ("nightly_features", "night_signals")}
        # nightly runs on top of that, with the working tree's engine (they read stored signals of earlier
        # nights): the last 3 nights of everyone, then 3 nights in the middle of the history of a few
        started = time.perf_counter()
        engine.compute_features(store, {pid: NightRange(r.last - timedelta(days=2), r.last)
                                        for pid, r in ranges.items()})
        increment_s = time.perf_counter() - started
        middle = {pid: r.first + (r.last - r.first) // 2 for pid, r in list(ranges.items())[:8]}
        engine.compute_features(store, {pid: NightRange(m, m + timedelta(days=2)) for pid, m in middle.items()})
        incremental = {t: store.query_df(f"SELECT * FROM {t} ORDER BY person_id, night_date")
                       for t in ("nightly_features", "night_signals")}
    worst = max(_assert_tables_equal(new, old, f"{commit}'s SQL"),
                _assert_tables_equal(incremental, old, f"nightly runs after {commit}'s rebuild"))
    where = f"a copy of {real_db}" if real_db else f"{people} people x {nights} nights"
    print(f"SQL of the working tree equals {commit}'s on {where} "
          f"({len(new['nightly_features']):,} feature rows, {len(new['night_signals']):,} signal rows; "
          f"largest floating-point difference {worst:.1e}), and so do nightly runs on top; "
          f"rebuild {new_s:.2f} s, "
          f"with {commit}'s SQL {old_s:.2f} s; a 3-night run for everyone {increment_s:.2f} s")


def _assert_tables_equal(new: dict, old: dict, what: str) -> float:
    import pandas as pd

    worst = 0.0
    for table in new:
        a, b = new[table], old[table]
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            raise SystemExit(f"{table}: shape differs: {a.shape} vs {what} {b.shape}")
        for col in a.columns:
            x, y = a[col], b[col]
            if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
                xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
                if not (np.isnan(xv) == np.isnan(yv)).all():
                    raise SystemExit(f"{table}.{col}: missing values differ from {what}")
                d = np.nanmax(np.abs(xv - yv)) if (~np.isnan(xv)).any() else 0.0
                if d > 1e-9:
                    raise SystemExit(f"{table}.{col}: differs from {what} by up to {d}")
                worst = max(worst, float(d))
            elif not x.astype(object).where(x.notna(), None).equals(y.astype(object).where(y.notna(), None)):
                raise SystemExit(f"{table}.{col}: values differ from {what}")
    return worst


def feature_columns(db: Path) -> int:
    """How many feature and signal columns the engine writes: the columns of nightly_features and night_signals
    other than the keys (person_id, night_date), each name once (valid_night, which night_signals repeats from
    nightly_features, counts once; the pandas check compares it in both tables)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        names = {r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name IN ('nightly_features', 'night_signals')").fetchall()}
    finally:
        con.close()
    return len(names - {"person_id", "night_date"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # defaults: 1000 x 365 for the benchmark, 50 x 200 for --check-sql-against (its synthetic cohort is built from
    # pydantic records: 1000 x 365 of them took 24 GB and was killed)
    ap.add_argument("--people", type=int, help="people in the cohort (default 1000; 50 with --check-sql-against)")
    ap.add_argument("--nights", type=int, help="nights of each (default 365; 200 with --check-sql-against)")
    ap.add_argument("--pandas", action="store_true", help="also run the pandas reference (and check equality)")
    ap.add_argument("--keep", type=Path, help="folder for the database (default: a temp folder)")
    ap.add_argument("--check-sql-against", metavar="COMMIT",
                    help="only compare the feature tables computed by COMMIT's SQL and the working tree's")
    ap.add_argument("--db", type=Path, help="with --check-sql-against: compare on a copy of this database "
                                           "(e.g. a home with real exports imported), not the synthetic cohort")
    args = ap.parse_args()
    if args.keep:
        run(args, args.keep)
        return
    # removed afterwards: a 10k x 365 cohort is ~13 GB, and left behind they filled the disk
    with tempfile.TemporaryDirectory(prefix="ew-bench-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, folder: Path) -> None:
    checking = bool(args.check_sql_against)
    args.people = args.people or (50 if checking else 1000)
    args.nights = args.nights or (200 if checking else 365)
    if checking:
        check_sql_against(args.check_sql_against, args.people, args.nights, folder, args.db)
        return
    db = folder / f"bench-{args.people}x{args.nights}.duckdb"
    if not db.exists():
        gen = generate(db, args.people, args.nights)
        print(f"generated {args.people} people x {args.nights} nights: {gen['sleep_sessions']:,} nights, "
              f"{gen['sleep_segments']:,} segments in {gen['generate_s']:.1f} s -> {db}")
    # "write" reads the rebuild's tables: after it
    results = {step: run_step(step, db) for step in ("scan", "group", "rebuild", "write", "increment")}
    columns = feature_columns(db)
    if args.pandas:
        results["pandas"] = run_step("pandas", db)
        if results["pandas"]["columns_compared"] != columns:
            raise SystemExit(f"the pandas reference compared {results['pandas']['columns_compared']} columns, "
                             f"the engine writes {columns}")
    rebuild = results["rebuild"]["seconds"]
    print(f"\n{'step':<40}{'seconds':>10}{'CPU s':>8}{'peak RSS MB':>13}")
    for step, label in (("scan", "floor: scan segments"), ("group", "floor: segments -> nights"),
                        ("write", "floor: write both tables from Arrow"),
                        ("rebuild", "full rebuild (features+signals)"), ("increment", "one nightly increment"),
                        ("pandas", "pandas reference (same full set)")):
        if step in results:
            r = results[step]
            print(f"{label:<40}{r['seconds']:>10.2f}{r['cpu_seconds']:>8.1f}{r['peak_rss_mb']:>13.0f}")
    print(f"\nrebuild / scan floor: {rebuild / results['scan']['seconds']:.1f}x; "
          f"rebuild / group-by floor: {rebuild / results['group']['seconds']:.1f}x")
    write = results["write"]["seconds"]
    print(f"writing the rows alone: {write:.2f} s = {write / results['group']['seconds']:.1f}x the group-by floor, "
          f"{write / rebuild:.0%} of the rebuild")
    if "pandas" in results:
        p = results["pandas"]
        ratio = p["seconds"] / rebuild
        faster = f"DuckDB {ratio:.1f}x faster" if ratio >= 1 else f"pandas {1 / ratio:.1f}x faster"
        print(f"pandas reference (same full set, equal) / DuckDB rebuild: {ratio:.2f}x, {faster} "
              f"(wall {p['seconds']:.2f} s / {rebuild:.2f} s; CPU {p['cpu_seconds']:.1f} s / "
              f"{results['rebuild']['cpu_seconds']:.1f} s); {p['columns_compared']} of {columns} feature and signal "
              f"columns compared, max |difference| {p['max_abs_diff']:.2e}")
    print(json.dumps({"people": args.people, "nights": args.nights, "feature_columns": columns, **results}))


if __name__ == "__main__":
    main()
