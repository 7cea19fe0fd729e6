"""The pandas reference of the feature engine (benchmarks/pandas_reference.py) computes every column of
nightly_features and night_signals equal to the engine's: on a small benchmark cohort (what the benchmark
times), and on a synthetic cohort with the branches the benchmark data lack (naps, classic logs, daytime sleep,
travel across zones, tags of every kind, vitals and activity, missing nights, logs without segments). When the
feature SQL changes, this test says the benchmark's pandas side no longer computes the same thing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import feature_engine  # noqa: E402
import pandas_reference  # noqa: E402
from features import engine  # noqa: E402
from storage.store import Store  # noqa: E402


def _check(store: Store, db: Path) -> dict:
    engine.rebuild_all(store)
    ref = pandas_reference.compute(store)
    result = pandas_reference.compare_with_duckdb(store, ref)
    assert result["max_abs_diff"] <= 1e-9
    assert len(ref.features) == len(ref.signals) == store.query_rows("SELECT count(*) FROM night_signals")[0][0]
    return result


def test_benchmark_cohort_every_column_equal(tmp_path):
    db = tmp_path / "bench.duckdb"
    feature_engine.generate(db, 30, 120)
    with Store(db) as store:
        result = _check(store, db)
        # the comparison looked at something: baselines warmed up, z-scores and the SRI exist
        assert store.query_rows("SELECT count(tst_z), count(sri_14n) FROM night_signals WHERE NOT warming_up")[0] \
            > (0, 0)
    assert result["columns_compared"] == feature_engine.feature_columns(db) == 82


def test_synthetic_cohort_with_every_kind_of_night(tmp_path, monkeypatch):
    from connectors.synthetic import SyntheticCohort, SyntheticSource
    from features import tags

    def tag_only(store, person_id, tag, first_night, last_night):
        # the rebuild below computes every night once (add_tag would recompute the person after each tag)
        with store.cursor() as cur:
            cur.execute("INSERT INTO tags VALUES (?, ?, ?, ?, now()::TIMESTAMP)", [person_id, tag, first_night,
                                                                                   last_night])

    monkeypatch.setattr(tags, "add_tag", tag_only)
    db = tmp_path / "synthetic.duckdb"
    nights = 120
    cohort = SyntheticCohort(n_people=12, n_nights=nights, seed=7)
    with Store(db) as store:
        feature_engine._fill_check_cohort(store, cohort, SyntheticSource(cohort), nights)
        with store.cursor() as cur:
            # missing nights (nothing at all on ~6 % of person-days), logs that lost their segments (the source's
            # totals count) and segments without a log (never read)
            cur.execute("CREATE TEMP TABLE gone AS SELECT DISTINCT person_id, night_date FROM sleep_sessions "
                        "WHERE hash(person_id || night_date) % 17 = 0")
            cur.execute("DELETE FROM sleep_segments g USING sleep_sessions s, gone "
                        "WHERE g.person_id = s.person_id AND g.source = s.source "
                        "AND g.source_session_id = s.source_session_id "
                        "AND s.person_id = gone.person_id AND s.night_date = gone.night_date")
            for table, date in (("sleep_sessions", "night_date"), ("daily_resting_hr", "day"),
                                ("nightly_hrv", "night_date"), ("nightly_vitals", "night_date"),
                                ("daily_activity", "day")):
                cur.execute(f"DELETE FROM {table} x USING gone WHERE x.person_id = gone.person_id "
                            f"AND x.{date} = gone.night_date")
            cur.execute("DELETE FROM sleep_segments WHERE (person_id, source, source_session_id) IN (SELECT "
                        "person_id, source, source_session_id FROM sleep_sessions WHERE hash(source_session_id) "
                        "% 29 = 0)")
            cur.execute("INSERT INTO sleep_segments SELECT person_id, source, 'orphan-' || source_session_id, "
                        "seg_start_utc, duration_s, stage FROM sleep_segments "
                        "WHERE hash(source_session_id) % 31 = 0")
            # a third of the people wear a device that measures SDNN (an Apple Watch): HRV of the other metric
            cur.execute("UPDATE nightly_hrv SET sdnn_ms = rmssd_ms * 1.25, rmssd_ms = NULL, deep_rmssd_ms = NULL "
                        "WHERE person_id IN (SELECT DISTINCT person_id FROM nightly_hrv ORDER BY 1 LIMIT 4)")
        result = _check(store, db)
        # both metrics were compared with real values, each against its own baseline
        rmssd_z, sdnn_z, both = store.query_rows(
            "SELECT count(ln_rmssd_z), count(ln_sdnn_z), count(*) FILTER (WHERE ln_rmssd_z IS NOT NULL "
            "AND ln_sdnn_z IS NOT NULL) FROM night_signals")[0]
        assert rmssd_z > 0 and sdnn_z > 0 and both == 0
        kinds = store.query_rows(
            "SELECT count(*) FILTER (WHERE day_sleep), count(*) FILTER (WHERE away_from_home), "
            "count(*) FILTER (WHERE nap_min > 0), count(*) FILTER (WHERE NOT valid_night), "
            "count(*) FILTER (WHERE tag_illness OR tag_night_shift OR tag_day_off), count(spo2_avg_pct), "
            "count(steps_count), count(*) FILTER (WHERE valid_night AND awakenings_count IS NULL), "
            "count(*) FILTER (WHERE night_date - 1 NOT IN (SELECT night_date FROM nightly_features g "
            "WHERE g.person_id = f.person_id) AND night_date > (SELECT min(night_date) FROM nightly_features)) "
            "FROM nightly_features f")[0]
        assert all(k > 0 for k in kinds), kinds
    assert result["columns_compared"] == feature_engine.feature_columns(db)


def test_a_difference_is_named(tmp_path):
    db = tmp_path / "bench.duckdb"
    feature_engine.generate(db, 4, 40)
    with Store(db) as store:
        engine.rebuild_all(store)
        ref = pandas_reference.compute(store)
        ref.signals["sri_14n"] = ref.signals["sri_14n"] + 1e-6
        with pytest.raises(pandas_reference.Mismatch, match="night_signals.sri_14n"):
            pandas_reference.compare_with_duckdb(store, ref)
        ref = pandas_reference.compute(store)
        ref.state_bits[np.flatnonzero(ref.state_valid)[0], 0] ^= 0x80
        with pytest.raises(pandas_reference.Mismatch, match="sleep_state_bits"):
            pandas_reference.compare_with_duckdb(store, ref)
