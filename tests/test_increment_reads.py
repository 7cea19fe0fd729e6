"""A nightly run reads only what its new night needs: the same number of stored nights whether a person has 90
or 730 nights of history (issue 17), and the night it writes equals a rebuild's."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from features.engine import compute_features, rebuild_all
from features.thresholds import Thresholds
from storage.store import Store
from tests.helpers import calm_history

PEOPLE = ("r1", "r2", "r3")


def _history_then_one_night(tmp_path, nights: int):
    first = date(2024, 1, 1)
    jitter = lambda i: ((i * 37) % 61 - 30, ((i * 13) % 7) / 2.0, ((i * 29) % 11 - 5) / 50.0)  # noqa: E731
    with Store(tmp_path / f"h{nights}.duckdb") as store:
        for p in PEOPLE:
            store.add_person(p, f"{p}@example.org", "Europe/London", "synthetic", {})
        store.upsert_records([r for p in PEOPLE for r in calm_history(p, first, nights, jitter=jitter)])
        rebuild_all(store)
        new_night = first + timedelta(days=nights)
        touched = store.upsert_records([r for p in PEOPLE for r in calm_history(p, new_night, 1, jitter=jitter)])
        run = compute_features(store, touched)
        nightly = store.query_df("SELECT * FROM night_signals WHERE night_date = ? ORDER BY person_id", [new_night])
        rebuild_all(store)
        rebuilt = store.query_df("SELECT * FROM night_signals WHERE night_date = ? ORDER BY person_id", [new_night])
    return run, nightly, rebuilt


def test_a_nightly_run_reads_the_same_nights_with_90_or_730_nights_of_history(tmp_path):
    lookback = Thresholds().signal_lookback_days
    short_run, short_nightly, short_rebuilt = _history_then_one_night(tmp_path, 90)
    long_run, long_nightly, long_rebuilt = _history_then_one_night(tmp_path, 730)
    # each person: the new night and the lookback before it (70 nights), not the history
    assert long_run.signal_nights_read == len(PEOPLE) * (lookback + 1)
    assert long_run.signal_nights_read == short_run.signal_nights_read
    assert long_run.signal_rows == len(PEOPLE)
    # and what it wrote is what a rebuild over the whole history writes for that night
    pd.testing.assert_frame_equal(long_nightly, long_rebuilt, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(short_nightly, short_rebuilt, check_exact=False, rtol=1e-12)
    assert long_nightly["baseline_valid_nights"].tolist() == [60] * len(PEOPLE)


def test_a_rebuild_in_chunks_of_dates_and_of_people_equals_one_in_a_single_chunk(tmp_path, monkeypatch):
    """A big run computes features in windows of dates and signals in groups of people; the cuts change
    nothing (features read only their night and the night before; signals a person's own earlier nights)."""
    from features import engine

    first = date(2024, 1, 1)
    jitter = lambda i: ((i * 37) % 61 - 30, ((i * 13) % 7) / 2.0, ((i * 29) % 11 - 5) / 50.0)  # noqa: E731
    tables = {}
    for chunk_nights in (10_000_000, 97):
        monkeypatch.setattr(engine, "CHUNK_NIGHTS", chunk_nights)
        monkeypatch.setattr(engine, "FEATURE_CHUNK_NIGHTS", chunk_nights)
        with Store(tmp_path / f"c{chunk_nights}.duckdb") as store:
            for p in PEOPLE:
                store.add_person(p, f"{p}@example.org", "Europe/London", "synthetic", {})
            # the people's histories start on different days, so the date windows cut them at different nights
            store.upsert_records([r for k, p in enumerate(PEOPLE)
                                  for r in calm_history(p, first + timedelta(days=11 * k), 150, jitter=jitter)])
            assert len(engine._date_chunks({p: engine.NightRange(first, first + timedelta(days=160))
                                            for p in PEOPLE})) == (1 if chunk_nights > 1000 else 5)
            rebuild_all(store)
            tables[chunk_nights] = {t: store.query_df(f"SELECT * FROM {t} ORDER BY person_id, night_date")
                                    for t in ("nightly_features", "night_signals")}
    for t in ("nightly_features", "night_signals"):
        pd.testing.assert_frame_equal(tables[97][t], tables[10_000_000][t], check_exact=False, rtol=1e-12)
    assert len(tables[97]["night_signals"]) == 3 * 150
