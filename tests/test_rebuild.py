"""A rebuild of everyone refills the derived tables from nothing (Store.fresh_tables): they come back exactly as
the migrations define them, keyed, with the rows the per-chunk path gives; a rebuild that fails part-way, or whose
process is killed, leaves them as they were."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from connectors.synthetic import SyntheticCohort
from features import engine
from storage.store import SET_ASIDE_SUFFIX, Store

TABLES = engine.DERIVED_TABLES
PEOPLE = ["c01", "c02", "c03"]
REPO = Path(__file__).resolve().parents[1]


def enrol(store: Store) -> None:
    cohort = SyntheticCohort(n_people=3, n_nights=40, seed=5)
    for pid in PEOPLE:
        p = cohort.person(pid)
        store.add_person(pid, p.email, p.tz_name, "synthetic")
    store.upsert_records([r for pid in PEOPLE for r in cohort.records(pid)])


def table_sql(store: Store) -> dict[str, str]:
    """Each table's DDL as DuckDB's catalog gives it back: columns, NOT NULLs, defaults and the key."""
    return dict(store.query_rows("SELECT table_name, sql FROM duckdb_tables() ORDER BY 1"))


def fingerprint(store: Store, table: str) -> tuple:
    """Row count and an order-free hash of every value: equal only if the rows are."""
    return store.query_rows(f"SELECT count(*), bit_xor(hash(t)) FROM {table} t")[0]


def fingerprints(store: Store) -> dict[str, tuple]:
    return {t: fingerprint(store, t) for t in TABLES}


@pytest.fixture
def cohort_store(store):
    enrol(store)
    return store


def test_a_rebuild_leaves_the_tables_as_the_migrations_define_them_keyed_and_filled(cohort_store, tmp_path):
    with Store(tmp_path / "fresh.duckdb") as fresh:
        migrated = table_sql(fresh)
    engine.rebuild_all(cohort_store)
    assert table_sql(cohort_store) == migrated  # nothing set aside is left, every table's DDL as declared
    assert cohort_store.query_rows("SELECT count(*) FROM nightly_features")[0][0] == 3 * 40
    assert cohort_store.query_rows("SELECT count(*) FROM night_signals")[0][0] == 3 * 40
    for table in TABLES:
        with pytest.raises(duckdb.ConstraintException):  # the key is enforced again
            cohort_store.query_rows(f"INSERT INTO {table} SELECT * FROM {table} LIMIT 1")


def test_a_rebuild_of_everyone_gives_the_rows_of_the_per_person_path(cohort_store):
    engine.rebuild_all(cohort_store)
    everyone = fingerprints(cohort_store)
    for table in TABLES:
        cohort_store.query_rows(f"DELETE FROM {table}")
    for pid in PEOPLE:  # the chunked path: rows replaced in place, the key kept throughout
        engine.rebuild_all(cohort_store, person_ids=[pid])
    assert fingerprints(cohort_store) == everyone
    engine.rebuild_all(cohort_store)  # and again: a rebuild is repeatable
    assert fingerprints(cohort_store) == everyone


def drop_resting_hr(store: Store, person_id: str) -> None:
    """Change what a rebuild would compute: one person's resting heart rate is gone."""
    assert store.query_rows("DELETE FROM daily_resting_hr WHERE person_id = ?", [person_id])[0][0] > 0


def test_a_rebuild_that_fails_part_way_leaves_the_tables_as_they_were(cohort_store, monkeypatch):
    engine.rebuild_all(cohort_store)
    before, sql_before = fingerprints(cohort_store), table_sql(cohort_store)
    drop_resting_hr(cohort_store, "c02")

    def fail(*args, **kwargs):  # the signal step breaks after every feature row is written
        raise RuntimeError("signal step failed")

    monkeypatch.setattr(engine, "_signal_stages", fail)
    with pytest.raises(RuntimeError, match="signal step failed"):
        engine.rebuild_all(cohort_store)
    assert fingerprints(cohort_store) == before
    assert table_sql(cohort_store) == sql_before
    monkeypatch.undo()
    engine.rebuild_all(cohort_store)  # the same rebuild, unbroken, does change both tables
    after = fingerprints(cohort_store)
    assert all(after[t] != before[t] for t in TABLES)


def test_a_rebuild_killed_part_way_is_undone_when_the_database_next_opens(tmp_path):
    db = tmp_path / "emberwatch.duckdb"
    with Store(db) as store:
        enrol(store)
        engine.rebuild_all(store)
        before, sql_before = fingerprints(store), table_sql(store)
        drop_resting_hr(store, "c02")
    # SIGKILL once the features are written and the signals not (storage.crash_points), in a process of its own
    env = os.environ | {"EMBERWATCH_CRASH_AT": "features"}
    killed = subprocess.run(
        [sys.executable, "-c", "import sys; from storage.store import Store; from features.engine import rebuild_all\n"
         "with Store(sys.argv[1]) as s: rebuild_all(s)", str(db)], cwd=REPO, env=env, capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    with duckdb.connect(str(db)) as raw:  # as the crash left it: the old tables set aside, half a refill
        left = {r[0] for r in raw.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert {f"{t}{SET_ASIDE_SUFFIX}" for t in TABLES} <= left
        assert raw.execute("SELECT count(*) FROM night_signals").fetchone()[0] == 0
    with Store(db) as store:
        assert fingerprints(store) == before
        assert table_sql(store) == sql_before
