"""Issue 16, the measurement half: check today's rules against how the 8 PMData people with morning reports
(p01-p08) said they felt, exactly as a user would, through the `emberwatch` command line into a temporary home:

    person add pNN --timezone Europe/Oslo
    import fitbit-export ../shared/data/pmdata/pNN/fitbit --person pNN
    import check-ins ../shared/data/pmdata/pNN/pmsys/wellness.csv --person pNN --format pmsys
    validate [--json]

    .venv/bin/python benchmarks/validate_pmdata.py [--json] [--keep HOME]

PMData: Thambawita et al., MMSys '20 (CC BY 4.0); the copy and its provenance: ../shared/data/pmdata/PROVENANCE.md.
Nothing here is tuned to these people: the rules are the defaults of the commit you run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PMDATA = ROOT.parent / "shared" / "data" / "pmdata"
PEOPLE = [f"p{n:02d}" for n in range(1, 9)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print validate's JSON instead of its table")
    parser.add_argument("--keep", type=Path, help="use (and keep) this home instead of a temporary one")
    args = parser.parse_args()
    if not all((PMDATA / p / "pmsys" / "wellness.csv").exists() for p in PEOPLE):
        print(f"Skipped: the PMData copy with p01-p08's morning reports is not at {PMDATA} "
              "(see ../shared/data/pmdata/PROVENANCE.md).")
        return 0
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from typer.testing import CliRunner

    from pipelines.cli import app

    with tempfile.TemporaryDirectory(prefix="emberwatch-validate-") as tmp:
        home = args.keep or Path(tmp) / "home"
        os.environ["EMBERWATCH_HOME"] = str(home)
        os.environ.pop("EMBERWATCH_CONFIG", None)
        os.environ.pop("EMBERWATCH_SMTP_HOST", None)
        runner = CliRunner()
        started = time.perf_counter()

        def run(*words: str) -> str:
            done = runner.invoke(app, list(words))
            if done.exit_code != 0:
                raise SystemExit(f"`emberwatch {' '.join(words)}` failed ({done.exit_code}): {done.output}")
            return done.output

        for p in PEOPLE:
            if not (home / "emberwatch.duckdb").exists() or p not in run("person", "list"):
                run("person", "add", p, "--email", f"{p}@example.org", "--timezone", "Europe/Oslo")
            run("import", "fitbit-export", str(PMDATA / p / "fitbit"), "--person", p)
            said = run("import", "check-ins", str(PMDATA / p / "pmsys" / "wellness.csv"), "--person", p,
                       "--format", "pmsys")
            print(said.splitlines()[0], file=sys.stderr)
        out = run("validate", *(["--json"] if args.json else []))
        print(out.rstrip())
        print(f"({time.perf_counter() - started:.0f} s, home {home if args.keep else 'temporary'})",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
