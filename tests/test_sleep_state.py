"""The sleep detail kernel (features/sleep_state.py): a night's 1,440-minute sleep state by hand, and the kernel's
time arithmetic against DuckDB's, which the SQL it replaced used."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np

from features import sleep_state
from features.engine import compute_features
from storage.store import NightRange
from tests.helpers import local, session


def _state_of(store, person, night):
    rows = store.query_rows("SELECT sleep_state_bits::VARCHAR FROM nightly_features WHERE person_id = ? "
                            "AND night_date = ?", [person, night])
    assert len(rows) == 1
    return rows[0][0]


def _minutes(*ranges: tuple[int, int]) -> str:
    bits = ["0"] * 1440
    for first, end in ranges:
        bits[first:end] = ["1"] * (end - first)
    return "".join(bits)


def test_a_nights_state_holds_its_devices_logs_from_noon_to_noon(store):
    # London in January is UTC: the window of the night of 10 January runs from 9 January 12:00 UTC (minute 0).
    # The main sleep starts 30 s after 23:00: a minute touched by sleep counts, so each run gains a minute.
    main = session("a", local("Europe/London", 2026, 1, 9, 23, 0) + timedelta(seconds=30),
                   [("light", 120), ("wake", 30), ("deep", 100), ("restless", 10), ("rem", 130)], sid="main")
    # the afternoon nap before belongs to the night of 9 January, and still falls in the window
    nap = session("a", local("Europe/London", 2026, 1, 9, 14, 0), [("light", 40)], sid="nap", main=False)
    # another device's nap the same afternoon: this night's sleep comes from the first device alone
    other = session("a", local("Europe/London", 2026, 1, 9, 16, 0), [("light", 30)], sid="other", main=False)
    store.upsert_records([main, nap, other.model_copy(update={"source": "other"})])
    compute_features(store, {"a": NightRange(date(2026, 1, 9), date(2026, 1, 10))})

    assert _state_of(store, "a", date(2026, 1, 10)) == _minutes(
        (120, 160),  # the nap, 14:00-14:40
        (660, 781),  # light, 23:00:30-01:00:30
        (810, 911),  # deep, after the wake: 01:30:30-03:10:30
        (920, 1051),  # rem, after the restless stretch (not asleep): 03:20:30-05:30:30
    )
    # the night of 9 January has only naps: no main sleep, no window
    assert _state_of(store, "a", date(2026, 1, 9)) is None


def test_time_arithmetic_rounds_as_duckdb_does():
    # spans of microseconds across days, negative and positive, with and without a fraction of a second
    rng = np.random.default_rng(17)
    day_us = 86_400_000_000
    spans = np.concatenate([
        [0, 1, -1, 59_999_999, 60_000_000, -60_000_000, day_us, -day_us, day_us + 1, -day_us - 1],
        rng.integers(-3 * day_us, 3 * day_us, 5000),
        rng.integers(-3 * 86_400, 3 * 86_400, 5000) * 1_000_000 + rng.integers(-2, 3, 5000),
    ]).astype(np.int64)
    theirs = duckdb.connect().execute(
        "SELECT epoch(TIMESTAMP '2026-01-10' + to_microseconds(s) - TIMESTAMP '2026-01-10') "
        "FROM unnest(?::BIGINT[]) t(s)", [spans.tolist()]).fetchnumpy()
    ours = np.array([sleep_state._epoch_s(s) for s in spans])
    assert np.array_equal(ours, next(iter(theirs.values())))


def test_segments_in_any_order_give_the_same_detail():
    # two logs of one device on consecutive nights (a nap, then a main sleep), segments of 10-30 min
    rng = np.random.default_rng(3)
    minute_us = 60_000_000
    day = np.array([20_000, 20_001], np.int64)
    start_us = np.array([(20_000 * 1440 + 780) * minute_us, (20_000 * 1440 + 1380) * minute_us], np.int64)
    kinds = np.array([0, 0, 1, 0, 2, 0, 0, 1, 1, 0, 0, 0], np.uint8)
    durations_s = rng.integers(10, 31, len(kinds)).astype(np.int32) * 60
    seg_log = np.array([0, 0, 0] + [1] * 9, np.int32)
    seg_start_us = np.empty(len(kinds), np.int64)
    for log in (0, 1):
        mine = np.flatnonzero(seg_log == log)
        seg_start_us[mine] = start_us[log] + np.r_[0, np.cumsum(durations_s[mine][:-1])].astype(np.int64) * 1_000_000
    logs = (np.array([True, False]), day, start_us, start_us - 600 * minute_us, np.array([False, True]),
            np.array([True, True]))

    in_order = sleep_state.sleep_detail(*logs, seg_log, seg_start_us, durations_s, kinds)
    shuffled = rng.permutation(len(kinds))[::-1].copy()
    in_any_order = sleep_state.sleep_detail(*logs, seg_log[shuffled], seg_start_us[shuffled],
                                            durations_s[shuffled], kinds[shuffled])
    for ours, theirs in zip(in_order, in_any_order):
        np.testing.assert_array_equal(ours, theirs)
    assert in_order[3][1].any()  # the night's state holds something to compare
