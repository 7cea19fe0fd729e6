"""Feature-engine benchmark: full rebuild, one nightly increment, peak RSS — against a pandas reference and
against the floor (a bare scan of the segments, and grouping them into nights).

Usage:  .venv/bin/python benchmarks/feature_engine.py --people 1000 --nights 365 [--pandas] [--keep DIR]

Data are generated inside DuckDB (stage segments for every night: ~30 a night), written to a file-backed
database, then each measurement runs in a fresh subprocess so peak RSS is that step's own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIRST_NIGHT = date(2025, 1, 1)
SEGMENTS_PER_NIGHT = 30


def generate(db: Path, people: int, nights: int) -> dict[str, float]:
    """Normalized tables as the connectors would fill them: one main sleep a night with stage segments,
    daily resting HR and nightly HRV. Deterministic (setseed)."""
    sys.path.insert(0, str(REPO))
    from features.store import Store

    started = time.perf_counter()
    with Store(db) as store, store.cursor() as cur:
        cur.execute("SELECT setseed(0.42)")
        cur.execute(f"""
            CREATE TEMP TABLE nights AS
            SELECT 'b' || lpad(p::VARCHAR, 5, '0') AS person_id, p, n,
                   DATE '{FIRST_NIGHT}' + n::INTEGER AS night_date,
                   -- bedtime 22:00-00:30 local (UTC here), 30 segments of 14-18 min
                   TIMESTAMP '{FIRST_NIGHT}' + to_days(n::INTEGER - 1) + to_minutes((1320 + (random() * 150))::INTEGER)
                       AS start_utc
            FROM range({people}) a(p), range({nights}) b(n)
        """)
        cur.execute(f"""
            CREATE TEMP TABLE segs AS
            SELECT person_id, night_date, k,
                   (840 + (random() * 240)::INTEGER) AS duration_s,
                   CASE WHEN k = 0 THEN 'wake'
                        WHEN random() < 0.08 THEN 'wake'
                        WHEN k % 6 = 1 THEN 'deep' WHEN k % 6 = 4 THEN 'rem' ELSE 'light' END AS stage,
                   start_utc
            FROM nights, range({SEGMENTS_PER_NIGHT}) s(k)
        """)
        cur.execute("""
            CREATE TEMP TABLE segs_t AS
            SELECT person_id, night_date, stage, duration_s,
                   start_utc + to_seconds(coalesce(sum(duration_s) OVER (PARTITION BY person_id, night_date ORDER BY k
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS seg_start_utc
            FROM segs
        """)
        cur.execute("""
            INSERT INTO persons (person_id, email, tz_name, source, source_config, enrolled_at)
            SELECT DISTINCT person_id, person_id || '@example.org', 'UTC', 'bench', '{}', now()::TIMESTAMP FROM nights
        """)
        cur.execute("""
            INSERT INTO sleep_sessions
            SELECT s.person_id, 'bench', s.person_id || '-' || s.night_date, s.night_date, min(seg_start_utc),
                   max(seg_start_utc + to_seconds(duration_s)), 'UTC', 0, 0, true, 'stages',
                   (sum(duration_s) FILTER (WHERE stage <> 'wake') / 60)::INTEGER,
                   (sum(duration_s) FILTER (WHERE stage = 'wake') / 60)::INTEGER, 0,
                   (sum(duration_s) / 60)::INTEGER
            FROM segs_t s GROUP BY s.person_id, s.night_date
        """)
        cur.execute("""
            INSERT INTO sleep_segments SELECT person_id, 'bench', person_id || '-' || night_date, seg_start_utc,
                duration_s, stage FROM segs_t
        """)
        cur.execute("""
            INSERT INTO daily_resting_hr SELECT person_id, 'bench', night_date, 55 + (p % 15) + random() * 4 FROM nights
        """)
        cur.execute("""
            INSERT INTO nightly_hrv SELECT person_id, 'bench', night_date, 35 + (p % 30) + random() * 10, NULL
            FROM nights WHERE random() > 0.05
        """)
        counts = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("sleep_sessions", "sleep_segments")}
    return {"generate_s": time.perf_counter() - started, **counts}


STEP = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
from datetime import date, timedelta
from features.store import Store, NightRange
from features import engine
step, db = {step!r}, {db!r}
with Store(db) as store:
    started = time.perf_counter()
    if step == "rebuild":
        run = engine.rebuild_all(store); out = {{"feature_rows": run.feature_rows, "signal_rows": run.signal_rows}}
    elif step == "increment":
        last = store.query_rows("SELECT max(night_date) FROM sleep_sessions")[0][0]
        ids = [r[0] for r in store.query_rows("SELECT person_id FROM persons")]
        run = engine.compute_features(store, {{pid: NightRange(last, last) for pid in ids}})
        out = {{"feature_rows": run.feature_rows, "signal_rows": run.signal_rows}}
    elif step == "scan":
        out = {{"rows": store.query_rows("SELECT count(*), sum(duration_s) FROM sleep_segments")[0][0]}}
    elif step == "group":
        out = {{"nights": store.query_rows(
            "SELECT count(*) FROM (SELECT person_id, source_session_id, sum(duration_s) FILTER (WHERE stage = 'wake') "
            "AS wake_s, min(seg_start_utc), max(seg_start_utc) FROM sleep_segments GROUP BY ALL)")[0][0]}}
    elif step == "pandas":
        sys.path.insert(0, {bench!r})
        from pandas_reference import nightly_features_pandas, compare_with_duckdb
        feats = nightly_features_pandas(store)
        out = {{"rows": len(feats)}}
        elapsed = time.perf_counter() - started
        out["max_abs_diff"] = compare_with_duckdb(store, feats)
        started = time.perf_counter() - elapsed
    out["seconds"] = time.perf_counter() - started
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_step(step: str, db: Path) -> dict:
    code = STEP.format(repo=str(REPO), step=step, db=str(db), bench=str(REPO / "benchmarks"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"step {step} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--nights", type=int, default=365)
    ap.add_argument("--pandas", action="store_true", help="also run the pandas reference (and check equality)")
    ap.add_argument("--keep", type=Path, help="folder for the database (default: a temp folder)")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="ew-bench-"))
    db = folder / f"bench-{args.people}x{args.nights}.duckdb"
    if not db.exists():
        gen = generate(db, args.people, args.nights)
        print(f"generated {args.people} people x {args.nights} nights: {gen['sleep_sessions']:,} nights, "
              f"{gen['sleep_segments']:,} segments in {gen['generate_s']:.1f} s -> {db}")
    results = {step: run_step(step, db) for step in ("scan", "group", "rebuild", "increment")}
    if args.pandas:
        results["pandas"] = run_step("pandas", db)
    rebuild = results["rebuild"]["seconds"]
    print(f"\n{'step':<28}{'seconds':>10}{'peak RSS MB':>13}")
    for step, label in (("scan", "floor: scan segments"), ("group", "floor: segments -> nights"),
                        ("rebuild", "full rebuild (features+signals)"), ("increment", "one nightly increment"),
                        ("pandas", "pandas reference (nightly)")):
        if step in results:
            r = results[step]
            print(f"{label:<28}{r['seconds']:>10.2f}{r['peak_rss_mb']:>13.0f}")
    print(f"\nrebuild / scan floor: {rebuild / results['scan']['seconds']:.1f}x; "
          f"rebuild / group-by floor: {rebuild / results['group']['seconds']:.1f}x")
    if "pandas" in results:
        p = results["pandas"]
        print(f"pandas nightly features alone: {p['seconds']:.2f} s = {p['seconds'] / rebuild:.1f}x the DuckDB "
              f"full rebuild (which also computes baselines and signals); max |difference| {p['max_abs_diff']:.2e}")
    print(json.dumps({"people": args.people, "nights": args.nights, **results}))


if __name__ == "__main__":
    main()
