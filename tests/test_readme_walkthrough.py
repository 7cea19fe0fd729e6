"""The README's "Fitbit account exports" walkthrough, run exactly as written against a PMData export: the
nightly run keeps the history that was just imported, says what retention keeps, and prints no Prefect noise."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from storage.store import Store
from tests.conftest import PMDATA, REPO

README = REPO / "README.md"


def walkthrough_commands() -> list[list[str]]:
    """The `emberwatch …` lines of the first sh block under "### Fitbit account exports", comments dropped."""
    section = README.read_text(encoding="utf-8").split("### Fitbit account exports", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.startswith("emberwatch ")]


def emberwatch_bin() -> str:
    beside = Path(sys.executable).parent / "emberwatch"
    return str(beside) if beside.exists() else shutil.which("emberwatch") or "emberwatch"


def test_the_walkthrough_is_the_one_this_test_runs():
    verbs = [c[1] for c in walkthrough_commands()]
    assert verbs == ["person", "import", "status", "nightly", "status"]
    assert "../shared/data/pmdata/p01/fitbit" in walkthrough_commands()[1]


@pytest.mark.skipif(not (PMDATA / "p01" / "fitbit").is_dir(), reason="shared/data/pmdata is not beside the checkout")
def test_the_readme_walkthrough_keeps_the_history_it_imports(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBERWATCH_")}
    env.pop("PREFECT_LOGGING_LEVEL", None)  # the level the CLI itself chooses
    env["EMBERWATCH_HOME"] = str(tmp_path / "home")
    outputs = []
    for args in walkthrough_commands():
        done = subprocess.run([emberwatch_bin(), *args[1:]], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        # A good night prints its summary and nothing else: no ERROR line, no Prefect noise, no traceback.
        assert done.stderr == "", (args, done.stderr)
        outputs.append(done.stdout)
    _, imported, status_before, nightly, status_after = outputs

    assert "152 nights of features" in imported
    assert re.search(r"Retention keeps these nights \(2019-11-01 to 2020-03-31\) until \d{4}-\d{2}-\d{2} "
                     r"\(730 days from today", imported), imported
    assert "night 2020-03-01: 1/1 people synced" in nightly
    p01 = [line for line in status_before.splitlines() if line.startswith("p01")]
    assert p01 and "2020-03-31" in p01[0]
    assert status_after == status_before  # last night, valid nights and warm-up as imported
    with Store(tmp_path / "home" / "emberwatch.duckdb") as store:
        nights = store.query_rows("SELECT count(*), min(night_date), max(night_date) FROM nightly_features "
                                  "WHERE person_id = 'p01'")[0]
        raw_files = store.query_rows("SELECT count(*) FROM raw_payloads WHERE person_id = 'p01'")[0][0]
    assert nights[0] == 152 and str(nights[2]) == "2020-03-31"
    assert raw_files == 3
