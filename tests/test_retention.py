"""Retention removes what is older than the configured ages and nothing newer."""

from __future__ import annotations

from datetime import date, datetime, timezone

from connectors.base import RawPayload
from features.engine import compute_features
from storage.retention import apply_retention
from tests.helpers import calm_history


def test_old_rows_and_payloads_go_newer_ones_stay(store):
    recs = calm_history("r", date(2024, 1, 1), 10) + calm_history("r", date(2026, 11, 1), 10)
    compute_features(store, store.upsert_records(recs))
    store.archive([RawPayload("r", "t", "nights", b"old", datetime(2026, 6, 1, tzinfo=timezone.utc)),
                   RawPayload("r", "t", "nights", b"new", datetime(2026, 11, 20, tzinfo=timezone.utc))])
    now = datetime(2026, 11, 25, tzinfo=timezone.utc)
    result = apply_retention(store, now, raw_days=90, feature_days=730)
    assert result.raw_payloads == 1
    assert [r[0] for r in store.query_rows("SELECT body FROM raw_payloads")] == [b"new"]
    for table, col in (("sleep_sessions", "night_date"), ("nightly_features", "night_date"),
                       ("daily_resting_hr", "day"), ("night_signals", "night_date")):
        days = [r[0] for r in store.query_rows(f"SELECT DISTINCT {col} FROM {table} ORDER BY 1")]
        assert days and min(days) == date(2026, 11, 1), table
    assert store.query_rows("SELECT count(*) FROM sleep_segments")[0][0] == 10 * 4  # only the new nights'


def test_zero_keeps_everything(store):
    compute_features(store, store.upsert_records(calm_history("r", date(2019, 1, 1), 5)))
    store.archive([RawPayload("r", "t", "nights", b"old", datetime(2019, 1, 6, tzinfo=timezone.utc))])
    before = store.table_counts()
    assert apply_retention(store, datetime(2026, 11, 25, tzinfo=timezone.utc), 0, 0).rows == 0
    assert store.table_counts() == before
