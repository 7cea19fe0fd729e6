"""A long fuzzing campaign over every parser: the properties of tests/test_fuzz_parsers.py (imported, not
copied) with many more examples and a fresh random seed each run (printed, so a failure can be replayed).

Usage:  .venv/bin/python benchmarks/fuzz_campaign.py [--examples 20000] [--seed N] [--only SUBSTRING]
Prints one row per property (parser, property, examples run, failures, seconds) and the totals; exits 1 when
any property fails, after printing its shrunk falsifying example. About 6 ms an example on the 2-core build
machine: --examples 1400 (~73,000 payloads) takes 7-8 minutes, the default 20,000 about an hour and a half.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import settings  # noqa: E402

from tests.test_fuzz_parsers import (  # noqa: E402
    CAMPAIGN_PROFILE, PROPERTIES, FuzzProperty, open_fuzz_store, run_property,
)

# Each quarantine example writes to DuckDB (~50 ms): they run this fraction of the count.
QUARANTINE_SHARE = 0.05


def run_one(prop: FuzzProperty, examples: int, run_seed: int, folder: Path) -> tuple[int, int, float, str]:
    """(examples run, failures, seconds, failure report) for one property."""
    count = 0

    def counted() -> None:
        nonlocal count
        count += 1

    wanted = max(1, int(examples * QUARANTINE_SHARE)) if prop.needs_store else examples
    run_settings = settings(settings.get_profile(CAMPAIGN_PROFILE), max_examples=wanted)
    store = open_fuzz_store(folder / prop.id.replace(":", "_")) if prop.needs_store else None
    started = time.perf_counter()
    try:
        hypothesis_seed(run_seed)(lambda: run_property(prop, run_settings, store, counted))()
        return count, 0, time.perf_counter() - started, ""
    except Exception:  # a failing property: hypothesis raises the shrunk example's error
        return count, 1, time.perf_counter() - started, traceback.format_exc(limit=6)
    finally:
        if store is not None:
            store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20_000, help="examples per property")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    ap.add_argument("--only", default="", help="run only properties whose id contains this")
    args = ap.parse_args()
    run_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {run_seed}  (replay: --seed {run_seed} --examples {args.examples})", flush=True)
    selected = [p for p in PROPERTIES if args.only in p.id]
    print(f"{'parser':<44}{'property':<17}{'examples':>10}{'failures':>10}{'seconds':>9}", flush=True)
    total_examples = total_failures = 0
    reports = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ew-fuzz-") as tmp:
        for prop in selected:
            examples, failures, seconds, report = run_one(prop, args.examples, run_seed, Path(tmp))
            print(f"{prop.parser:<44}{prop.name:<17}{examples:>10}{failures:>10}{seconds:>9.1f}", flush=True)
            total_examples += examples
            total_failures += failures
            if report:
                reports.append(f"--- {prop.id} ---\n{report}")
    print(f"{'total':<61}{total_examples:>10}{total_failures:>10}{time.perf_counter() - started:>9.1f}")
    for report in reports:
        print(report)
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
