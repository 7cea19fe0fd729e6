"""Retention removes what is older than the configured ages and nothing newer."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

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


def test_history_that_arrived_in_bulk_is_kept_from_its_arrival_then_goes(store):
    """An old export imported today is not erased by tonight's run; 730 days after the import it is."""
    from storage.retention import kept_until, record_arrival
    from storage.store import NightRange

    compute_features(store, store.upsert_records(calm_history("r", date(2020, 3, 1), 10)))
    imported_on = date(2026, 11, 25)
    record_arrival(store, "r", NightRange(date(2020, 3, 1), date(2020, 3, 10)), imported_on)
    before = store.table_counts()

    tonight = datetime(2026, 11, 26, 3, tzinfo=timezone.utc)
    assert apply_retention(store, tonight, raw_days=90, feature_days=730).rows == 0
    assert store.table_counts() == before

    last_day = kept_until(imported_on, 730)  # what the import told the person
    assert last_day == date(2028, 11, 24)  # 730 days, 2028 being a leap year
    at_3am = datetime(last_day.year, last_day.month, last_day.day, 3, tzinfo=timezone.utc)
    assert apply_retention(store, at_3am, raw_days=90, feature_days=730).rows == 0
    assert apply_retention(store, at_3am + timedelta(days=1), raw_days=90, feature_days=730).rows > 0
    for table in ("sleep_sessions", "sleep_segments", "nightly_features", "night_signals", "history_arrivals"):
        assert store.query_rows(f"SELECT count(*) FROM {table}")[0][0] == 0, table


def test_an_arrival_protects_only_its_own_person_and_nights(store):
    from storage.retention import record_arrival
    from storage.store import NightRange

    recs = calm_history("r", date(2020, 3, 1), 10) + calm_history("s", date(2020, 3, 1), 10)
    compute_features(store, store.upsert_records(recs))
    record_arrival(store, "r", NightRange(date(2020, 3, 1), date(2020, 3, 5)), date(2026, 11, 25))
    apply_retention(store, datetime(2026, 11, 26, tzinfo=timezone.utc), raw_days=90, feature_days=730)
    kept = store.query_rows("SELECT person_id, min(night_date), max(night_date) FROM nightly_features GROUP BY 1")
    assert kept == [("r", date(2020, 3, 1), date(2020, 3, 5))]
