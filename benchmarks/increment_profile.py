"""Where a warm nightly increment's time goes: each statement, kernel and the Python between them, over repeated
runs in one process; or two checkouts side by side, in alternating processes (the fair comparison while other work
shares the cores).

Usage:  .venv/bin/python benchmarks/increment_profile.py DB [--repeats 5]
        .venv/bin/python benchmarks/increment_profile.py DB --compare OTHER_CHECKOUT [--rounds 4] [--repeats 5]

DB is a benchmark cohort (feature_engine.py --keep DIR leaves one); each run recomputes every person's last night,
so use a copy. The first run in each process (loading the compiled kernels) is left out. Not a timed test.
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# statement label: a phrase that names it in the SQL text
_STATEMENTS = ("DELETE FROM nightly_features", "DELETE FROM night_signals", "INSERT INTO nightly_features",
               "INSERT INTO night_signals", "CREATE OR REPLACE TEMP TABLE computed_nightly_features",
               "CREATE OR REPLACE TEMP TABLE computed_night_signals", "min(start_utc)", "count(*) FROM computed",
               "DROP TABLE", "sri_day_pairs:", "night_signal_inputs:")


def _label(sql: str) -> str:
    flat = " ".join(sql.split())
    return next((f"sql: {s.rstrip(':')}" for s in _STATEMENTS if s in flat), f"sql: {flat[:40]}")


def profile(repo: Path, db: Path, repeats: int) -> list[dict[str, float]]:
    """Time `repeats` warm increments with the engine of `repo`; one dict of seconds per stage and run."""
    sys.path.insert(0, str(repo))
    from features import engine, windows
    from storage.store import NightRange, Store

    stages: dict[str, float] = collections.defaultdict(float)

    class TimedCursor:
        def __init__(self, cur):
            self._cur = cur

        def execute(self, sql, *args):
            started = time.perf_counter()
            result = self._cur.execute(sql, *args)
            stages[_label(sql)] += time.perf_counter() - started
            return result

        def sql(self, sql, params=None):
            relation = self._cur.sql(sql, params=params)
            cursor_stages = stages

            class TimedRelation:
                def to_arrow_table(self):
                    started = time.perf_counter()
                    table = relation.to_arrow_table()
                    cursor_stages[_label(sql)] += time.perf_counter() - started
                    return table

            return TimedRelation()

        def __getattr__(self, name):
            return getattr(self._cur, name)

    def timed(name, function):
        def run(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                stages[name] += time.perf_counter() - started
        return run

    for kernel in ("context", "rolling", "hrv_week", "baselines", "baselines_parallel", "baseline_rows",
                   "last_device"):
        if hasattr(windows, kernel):
            setattr(windows, kernel, timed(f"kernel {kernel}", getattr(windows, kernel)))
    windows.signal_windows = timed("signal_windows (all)", windows.signal_windows)
    engine.latest_nights = timed("latest_nights", engine.latest_nights)

    runs = []
    with Store(db) as store:
        last = store.query_rows("SELECT max(night_date) FROM sleep_sessions")[0][0]
        ids = [r[0] for r in store.query_rows("SELECT person_id FROM persons")]
        engine.compute_features(store, {pid: NightRange(last, last) for pid in ids})  # loads the kernels
        transaction = store.transaction

        @contextmanager
        def timed_transaction():
            with transaction() as cur:
                yield TimedCursor(cur)
                committing = time.perf_counter()
            stages["commit"] += time.perf_counter() - committing

        store.transaction = timed_transaction
        for _ in range(repeats):
            stages.clear()
            touched = {pid: NightRange(last, last) for pid in ids}
            usage = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            engine.compute_features(store, touched)
            stages["TOTAL"] = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
            stages["TOTAL CPU"] = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
            kernels = sum(v for k, v in stages.items() if k.startswith("kernel"))
            # the older engine read its nights inside signal_windows; this one before it
            reads_inside = 0.0 if "sql: sri_day_pairs" in stages else stages.get("sql: night_signal_inputs", 0.0)
            stages["numpy and Python in signal_windows"] = stages["signal_windows (all)"] - kernels - reads_inside
            counted = ("TOTAL", "numpy", "kernel") + (() if reads_inside == 0.0 else ("sql: night_signal_inputs",))
            stages["Python between statements"] = stages["TOTAL"] - sum(
                v for k, v in stages.items() if not k.startswith(counted))
            runs.append(dict(stages))
    return runs


def _table(columns: dict[str, list[dict[str, float]]]) -> str:
    names = sorted({k for runs in columns.values() for run in runs for k in run},
                   key=lambda k: -max(statistics.median([r.get(k, 0.0) for r in runs]) for runs in columns.values()))
    lines = [f"{'stage (median seconds)':<44}" + "".join(f"{c:>14}" for c in columns)]
    for name in names:
        lines.append(f"{name:<44}" + "".join(
            f"{statistics.median([r.get(name, 0.0) for r in runs]):14.3f}" for runs in columns.values()))
    for column, runs in columns.items():
        totals = sorted(r["TOTAL"] for r in runs)
        lines.append(f"{column}: TOTAL p25 {totals[len(totals) // 4]:.3f}, median {statistics.median(totals):.3f}, "
                     f"p75 {totals[3 * len(totals) // 4]:.3f} s over {len(totals)} runs")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("db", type=Path)
    ap.add_argument("--repeats", type=int, default=5, help="warm runs per process")
    ap.add_argument("--compare", type=Path, metavar="OTHER_CHECKOUT",
                    help="alternate processes between this checkout and OTHER_CHECKOUT (its engine)")
    ap.add_argument("--rounds", type=int, default=4, help="with --compare: processes per checkout")
    ap.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.compare is None:
        runs = profile(args.repo, args.db, args.repeats)
        print(json.dumps(runs) if args.json else _table({args.repo.name: runs}))
        return
    checkouts = {"other": args.compare.resolve(), "this": REPO}
    columns: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
    for _ in range(args.rounds):
        for name, repo in checkouts.items():
            out = subprocess.run([sys.executable, __file__, str(args.db), "--repeats", str(args.repeats),
                                  "--repo", str(repo), "--json"], capture_output=True, text=True, check=True)
            columns[name] += json.loads(out.stdout.strip().splitlines()[-1])
    print(_table(columns))


if __name__ == "__main__":
    main()
