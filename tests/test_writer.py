"""One writer: overlapping runs queue for the database instead of crashing on DuckDB's lock."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date

import pytest

from storage.store import Store, StoreError

HOLD = """
import sys, time
from storage.store import Store
with Store(sys.argv[1], wait_s=60) as s:
    s.add_person(sys.argv[2], sys.argv[2] + "@example.org", "Europe/London", "fitbit-export")
    print("holding", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold(path, person: str, seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLD, str(path), person, str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_holding(proc: subprocess.Popen) -> None:
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read()


def test_two_overlapping_writers_both_finish_one_after_the_other(tmp_path):
    path = tmp_path / "e.duckdb"
    first = hold(path, "a", 1.5)
    wait_until_holding(first)
    second = hold(path, "b", 0.0)
    assert second.wait(timeout=60) == 0, second.stderr.read()
    assert first.wait(timeout=60) == 0
    with Store(path) as s:
        assert [p.person_id for p in s.people()] == ["a", "b"]


def test_without_waiting_the_second_writer_gets_a_sentence_not_a_traceback(tmp_path):
    path = tmp_path / "e.duckdb"
    first = hold(path, "a", 3)
    wait_until_holding(first)
    started = time.monotonic()
    with pytest.raises(StoreError, match="in use by another emberwatch process"):
        Store(path, wait_s=0.5)
    assert time.monotonic() - started > 0.3  # it waited before giving up (how fast is for benchmarks)
    first.wait(timeout=60)


@pytest.mark.flow
def test_a_manual_nightly_run_during_another_waits_and_succeeds(prefect_harness, ew_home, monkeypatch):
    from pipelines import flows
    from pipelines.settings import load_settings

    settings = load_settings()
    with Store(settings.db_path) as s:
        s.add_person("a", "a@example.org", "Europe/London", "fitbit-export")
    holder = hold(settings.db_path, "b", 4)
    wait_until_holding(holder)
    started = time.monotonic()
    report = flows.nightly(flows.NightlyParams(night_date=date(2026, 3, 1)))
    waited = time.monotonic() - started
    assert holder.wait(timeout=60) == 0
    assert sorted(report.people) == ["a", "b"] and report.failures == []  # saw the other run's person: it ran after it
    assert waited > 2
