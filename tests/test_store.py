"""The store: migrations, raw archive before parsing, quarantine, idempotent and de-duplicated upserts."""

from __future__ import annotations

import os
import stat
from datetime import date, datetime, timezone

import duckdb
import pytest

from connectors.base import RawPayload, Rejected
from connectors.records import DailyActivity, DailyRestingHeartRate
from storage.migrate import MIGRATIONS
from storage.store import Store, StoreError
from tests.helpers import calm_history


def test_schema_is_created_at_the_latest_version_and_file_is_owner_only(tmp_path):
    with Store(tmp_path / "db" / "e.duckdb") as s:
        assert s.schema_version() == MIGRATIONS[-1][0]
    mode = stat.S_IMODE(os.stat(tmp_path / "db" / "e.duckdb").st_mode)
    assert mode == 0o600
    # reopening does not re-apply migrations
    with Store(tmp_path / "db" / "e.duckdb") as s:
        assert s.query_rows("SELECT count(*) FROM schema_version")[0][0] == len(MIGRATIONS)


def test_archive_keeps_each_exact_payload_once(store):
    raw = RawPayload("p", "test", "sleep", b'{"a": 1}', datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert store.archive([raw, raw]) == 1  # the same payload twice in one batch is kept once
    assert store.archive([raw]) == 0
    assert store.archive([RawPayload("p", "test", "sleep", b'{"a": 2}', datetime.now(timezone.utc))]) == 1
    bodies = [r.body for r in store.raw_payloads("p")]
    assert bodies == [b'{"a": 1}', b'{"a": 2}']


def test_quarantine_records_reason_and_is_idempotent(store):
    raw = RawPayload("p", "test", "sleep", b"{oops", datetime.now(timezone.utc))
    store.archive([raw])
    store.quarantine(raw, [Rejected("", "sleep.json is not valid JSON")])
    store.quarantine(raw, [Rejected("", "sleep.json is not valid JSON")])
    rows = store.query_rows("SELECT locator, reason FROM quarantine")
    assert rows == [("", "sleep.json is not valid JSON")]


def test_upsert_deduplicates_within_a_batch_keeping_the_latest(store):
    a = DailyRestingHeartRate(person_id="p", source="t", day=date(2026, 1, 1), resting_hr_bpm=60)
    b = DailyRestingHeartRate(person_id="p", source="t", day=date(2026, 1, 1), resting_hr_bpm=62)
    store.upsert_records([a, b])
    assert store.query_rows("SELECT resting_hr_bpm FROM daily_resting_hr") == [(62.0,)]
    store.upsert_records([a])
    assert store.query_rows("SELECT resting_hr_bpm FROM daily_resting_hr") == [(60.0,)]


def test_partial_activity_rows_merge_field_by_field(store):
    store.upsert_records([DailyActivity(person_id="p", source="t", day=date(2026, 1, 1), sedentary_min=600)])
    store.upsert_records([DailyActivity(person_id="p", source="t", day=date(2026, 1, 1), very_active_min=20)])
    assert store.query_rows("SELECT sedentary_min, very_active_min FROM daily_activity") == [(600, 20)]


def test_partial_activity_rows_in_one_batch_merge_too(store):
    store.upsert_records([DailyActivity(person_id="p", source="t", day=date(2026, 1, 1), sedentary_min=600),
                          DailyActivity(person_id="p", source="t", day=date(2026, 1, 1), very_active_min=20)])
    assert store.query_rows("SELECT sedentary_min, very_active_min FROM daily_activity") == [(600, 20)]


def test_reupserting_sessions_leaves_the_same_rows(store):
    recs = calm_history("p", date(2026, 1, 1), 10)
    touched = store.upsert_records(recs)
    counts = store.table_counts()
    store.upsert_records(recs)
    assert store.table_counts() == counts
    assert counts["sleep_sessions"] == 10 and counts["sleep_segments"] == 40
    assert touched["p"].first == date(2026, 1, 1) and touched["p"].last == date(2026, 1, 10)


def _second_process_opens(path) -> str:
    """What another process prints when it opens the store at `path` (a StoreError's message, after 'CLEAR:')."""
    import subprocess
    import sys

    code = (
        "from storage.store import Store, StoreError\n"
        f"try:\n    Store({str(path)!r})\nexcept StoreError as e:\n    print('CLEAR:', e)\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout


def test_a_second_process_gets_a_clear_message_while_the_file_is_in_use(tmp_path):
    path = tmp_path / "e.duckdb"
    with Store(path):
        out = _second_process_opens(path)
    assert "CLEAR: The database" in out and "another emberwatch process" in out


def test_memory_given_back_keeps_the_data_the_connection_and_the_writer_lock(tmp_path):
    path = tmp_path / "e.duckdb"
    with Store(path) as store:
        store.add_person("p1", "p1@example.org", "Europe/Oslo", "apple-health")
        store.release_memory()
        # another process still finds the file taken: no moment without the lock
        assert "CLEAR: The database" in _second_process_opens(path)
        # what was written before is there, and writing goes on on the new connection
        store.add_person("p2", "p2@example.org", "Europe/London", "apple-health")
        assert [p.person_id for p in store.people()] == ["p1", "p2"]
    with Store(path) as store:
        assert [(p.person_id, p.tz_name) for p in store.people()] == [("p1", "Europe/Oslo"), ("p2", "Europe/London")]
    with Store(":memory:") as memory:  # nothing to reopen: the data would be lost, so it is left as it is
        memory.add_person("p3", "p3@example.org", "Europe/Oslo", "apple-health")
        memory.release_memory()
        assert [p.person_id for p in memory.people()] == ["p3"]
