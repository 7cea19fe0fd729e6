"""The feature kernels interpreted (as `emberwatch import ...` runs them: features/kernels.py) give exactly what
the compiled ones give, on a cohort with every kind of night; and an import command's choice never overrides one
made outside or a process's kernels already loaded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

REPO = Path(__file__).resolve().parents[1]

# In a fresh process, as `emberwatch import ...` starts (pipelines/cli_apple.py): the engine loaded, then the
# choice, then the rebuild with interpreted kernels, numba never imported.
CHILD = """
import sys
from features import engine, kernels
from storage.store import Store
assert kernels.run_interpreted() and kernels.mode() == "interpreted"
from features import windows
windows.PARALLEL_BASELINES_FROM = int(sys.argv[2])  # 0: the baselines' parallel kernel (prange as range)
with Store(sys.argv[1]) as store:
    run = engine.rebuild_all(store)
print(run.feature_rows, run.signal_rows, "numba" in sys.modules)
"""


def _differences(compiled: Path, interpreted: Path, table: str) -> tuple[int, int, int]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{compiled}' AS c (READ_ONLY)")
    con.execute(f"ATTACH '{interpreted}' AS i (READ_ONLY)")
    rows = con.execute(f"SELECT count(*) FROM c.{table}").fetchone()[0]
    only_c = con.execute(f"SELECT count(*) FROM (FROM c.{table} EXCEPT ALL FROM i.{table})").fetchone()[0]
    only_i = con.execute(f"SELECT count(*) FROM (FROM i.{table} EXCEPT ALL FROM c.{table})").fetchone()[0]
    con.close()
    return rows, only_c, only_i


def test_interpreted_kernels_write_exactly_what_compiled_ones_write(tmp_path):
    import feature_engine
    from connectors.synthetic import SyntheticCohort, SyntheticSource
    from features import engine
    from storage.store import Store

    nights = 90
    cohort = SyntheticCohort(n_people=8, n_nights=nights, seed=11)
    compiled, interpreted = tmp_path / "compiled.duckdb", tmp_path / "interpreted.duckdb"
    with Store(compiled) as store:
        # naps, classic logs, day sleep, travel, tags of every kind, missing nights (benchmarks/feature_engine.py)
        feature_engine._fill_check_cohort(store, cohort, SyntheticSource(cohort), nights)
        engine.rebuild_all(store)
        warmed = store.query_rows("SELECT count(tst_z), count(sri_14n), count(*) FILTER (WHERE sleep_deviates) "
                                  "FROM night_signals")[0]
    assert min(warmed) > 0  # baselines and windows hold values: the comparison means something
    env = {k: v for k, v in os.environ.items() if k != "EMBERWATCH_KERNELS"}  # nothing chosen outside
    for parallel_from in ("5000", "0"):  # the baselines' serial kernel (these 728 nights), then the parallel one
        shutil.copy(compiled, interpreted)
        child = subprocess.run([sys.executable, "-c", CHILD, str(interpreted), parallel_from], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=600)
        assert child.returncode == 0, child.stderr
        feature_rows, signal_rows, numba_loaded = child.stdout.split()
        assert numba_loaded == "False"
        for table in ("nightly_features", "night_signals"):
            rows, only_compiled, only_interpreted = _differences(compiled, interpreted, table)
            assert rows == int(feature_rows if table == "nightly_features" else signal_rows) > 8 * (nights - 10)
            assert (only_compiled, only_interpreted) == (0, 0), (table, parallel_from)


def test_an_import_chooses_interpreted_only_when_nothing_else_has_chosen(monkeypatch):
    from features import kernels

    monkeypatch.delenv(kernels.ENV, raising=False)
    for name in kernels.KERNEL_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    assert kernels.run_interpreted() is True
    assert os.environ[kernels.ENV] == "interpreted"

    monkeypatch.setenv(kernels.ENV, "compiled")  # the operator's (or the test harness's) choice stands
    assert kernels.run_interpreted() is False
    assert os.environ[kernels.ENV] == "compiled"

    monkeypatch.delenv(kernels.ENV)
    monkeypatch.setitem(sys.modules, "features.windows", object())  # loaded (compiled): the process keeps them
    assert kernels.run_interpreted() is False
    assert kernels.ENV not in os.environ


def test_a_misspelt_choice_is_refused_with_the_two_words_that_work(monkeypatch):
    from features import kernels

    monkeypatch.setenv(kernels.ENV, "jit")
    with pytest.raises(ValueError, match="'compiled' or 'interpreted'"):
        kernels.mode()
