"""Does one nightly increment stay flat as history grows? 90, 365 and 730 nights of history, one new night.

Usage:  .venv/bin/python benchmarks/increment_flatness.py [--people 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_engine import generate, run_step  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1000)
    args = ap.parse_args()
    print(f"{'history (nights)':<18}{'increment s':>12}{'CPU s':>8}{'peak RSS MB':>13}{'rebuild s':>11}")
    for nights in (90, 365, 730):
        # one cohort at a time, removed once measured (the three together are ~4 GB at 1,000 people)
        with tempfile.TemporaryDirectory(prefix="ew-flat-") as tmp:
            db = Path(tmp) / f"flat-{args.people}x{nights}.duckdb"
            generate(db, args.people, nights)
            b = run_step("rebuild", db)
            r = run_step("increment", db)
        print(f"{nights:<18}{r['seconds']:>12.2f}{r['cpu_seconds']:>8.1f}{r['peak_rss_mb']:>13.0f}"
              f"{b['seconds']:>11.1f}", flush=True)


if __name__ == "__main__":
    main()
