"""The signal step's compiled window kernels give DuckDB's own numbers: medians and MADs bit for bit, counts
exactly, on groups with missing days and NULLs, whether every night is wanted (a rebuild) or only the last few
after a long lookback (a nightly run, where a buffer that took every earlier row first would overflow)."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from features import windows


def _random_groups(seed: int, groups: int = 12, nights: int = 150):
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        days = np.sort(rng.choice(np.arange(nights), size=int(nights * rng.uniform(0.5, 1.0)), replace=False))
        for d in days:
            # integer-valued and continuous columns, ~20 % NULL, ties on purpose
            a = float(rng.integers(300, 480)) if rng.random() > 0.2 else np.nan
            b = float(rng.normal(60, 9)) if rng.random() > 0.2 else np.nan
            rows.append((g, int(d), a, b))
    return rows


@pytest.mark.parametrize("wanted_from", [0, 120])
def test_baseline_medians_and_mads_equal_duckdb(wanted_from):
    rows = _random_groups(seed=wanted_from + 3)
    group = np.array([r[0] for r in rows])
    day = np.array([r[1] for r in rows], dtype=np.int32)
    values = np.array([[r[2], r[3]] for r in rows])
    starts = np.r_[True, group[1:] != group[:-1]]
    wanted = day >= wanted_from
    # one device, every night in baselines: each row is its own night, and every value counts
    n = len(rows)
    slot = np.where(wanted, np.cumsum(wanted) - 1, -1)
    inputs = (starts, np.arange(n), np.zeros(n, np.int64), day.astype(np.int64),
              (values[:, 0].copy(), values[:, 1].copy()), np.zeros(2, np.int64), np.zeros((1, n), np.int64),
              np.ones(n, np.bool_), np.array([True, True]), slot, int(wanted.sum()), 7, 60)
    count, med, mad = windows.baselines(*inputs)
    # the same on all cores (blocks of groups), result for result
    for serial, parallel in zip((count, med, mad), windows.baselines_parallel(*inputs)):
        np.testing.assert_array_equal(parallel, serial)

    con = duckdb.connect()
    con.execute("CREATE TABLE t (g INTEGER, d INTEGER, a DOUBLE, b DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                    [(g, d, None if np.isnan(a) else a, None if np.isnan(b) else b) for g, d, a, b in rows])
    expected = con.execute("""
        SELECT count(a) OVER w, median(a) OVER w, mad(a) OVER w, median(b) OVER w, mad(b) OVER w FROM t
        WINDOW w AS (PARTITION BY g ORDER BY d RANGE BETWEEN 66 PRECEDING AND 7 PRECEDING)
        ORDER BY g, d""").fetchall()
    checked = 0
    assert len(count) == wanted.sum()  # one result per wanted row, in order
    for i, (n, med_a, mad_a, med_b, mad_b) in enumerate(expected):
        if not wanted[i]:
            continue
        j = checked
        checked += 1
        assert count[j] == n
        for got, want in ((med[j, 0], med_a), (mad[j, 0], mad_a), (med[j, 1], med_b), (mad[j, 1], mad_b)):
            if want is None:
                assert np.isnan(got)
            else:
                assert got == want  # bit for bit: the same interpolation as DuckDB's median and mad
    assert checked > 100


def test_rolling_windows_equal_duckdb():
    rows = _random_groups(seed=11, groups=6, nights=90)
    group = np.array([r[0] for r in rows])
    day = np.array([r[1] for r in rows], dtype=np.int32)
    a = np.array([r[2] for r in rows])
    b = np.array([r[3] for r in rows])
    starts = np.r_[True, group[1:] != group[:-1]]
    wanted = day >= 40
    flags = (np.nan_to_num(a) > 400).astype(np.int64)
    valid = ~np.isnan(a)
    out = windows.rolling(starts, day, a, b, b / 100.0, np.where(day % 7 >= 5, a, np.nan),
                          np.where(day % 7 < 5, a, np.nan), flags, flags, valid, b, a, wanted, 0.25, 28)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (g INTEGER, d INTEGER, a DOUBLE, b DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?)",
                    [(g, d, None if np.isnan(x) else x, None if np.isnan(y) else y) for g, d, x, y in rows])
    expected = con.execute("""
        SELECT count(a) OVER w14, stddev_samp(a) OVER w14, median(CASE WHEN d % 7 >= 5 THEN a END) OVER w28,
               count(CASE WHEN a > 400 THEN 1 END) OVER w7
        FROM t
        WINDOW w14 AS (PARTITION BY g ORDER BY d RANGE BETWEEN 13 PRECEDING AND CURRENT ROW),
               w28 AS (PARTITION BY g ORDER BY d RANGE BETWEEN 27 PRECEDING AND CURRENT ROW),
               w7 AS (PARTITION BY g ORDER BY d RANGE BETWEEN 6 PRECEDING AND CURRENT ROW)
        ORDER BY g, d""").fetchall()
    assert len(out) == wanted.sum()  # one result per wanted row, in order
    at = np.cumsum(wanted) - 1
    for i, (n14, sd14, med28, n7) in enumerate(expected):
        if not wanted[i]:
            continue
        j = at[i]
        assert out[j, 0] == n14
        assert (np.isnan(out[j, 1]) if sd14 is None else out[j, 1] == pytest.approx(sd14, rel=1e-12))
        assert (np.isnan(out[j, 7]) if med28 is None else out[j, 7] == med28)
        assert out[j, 9] == n7


def test_baseline_rows_group_each_device_and_kind_and_a_night_takes_each_value_from_its_own_device():
    """One person, nights alternating between two devices (sleep from device 0 or 1, HRV always from device 1),
    one daytime sleep and one night without a main sleep: each (kind, device) pair is one baseline, and a night's
    statistics come from the baseline of the device that gave that value."""
    kind = np.array([0, 0, 0, 1, 2, 0, 0, 0])
    sleep = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    hrv = np.full(8, 1)
    sources = np.stack([sleep, hrv])
    night, device, group_start = windows.baseline_rows(np.r_[True, np.zeros(7, np.bool_)], kind, sources)
    # night sleep from device 0, night sleep from device 1, daytime sleep from device 1; the night without a
    # main sleep (row 4) is in none
    groups = np.split(np.c_[night, device], np.flatnonzero(group_start)[1:])
    assert [g.tolist() for g in groups] == [
        [[0, 0], [2, 0], [6, 0]],
        [[0, 1], [1, 1], [2, 1], [5, 1], [6, 1], [7, 1]],
        [[3, 1]],
    ]
    # features: sleep time (data type 0) and lnRMSSD (data type 1); a one-night frame ending the night before
    day = np.arange(8, dtype=np.int64)
    features = (100.0 + day, 1.0 + day / 10)
    slot = np.where(day == 7, 0, -1)
    count, med, _ = windows.baselines(group_start, night, device, day, features, np.array([0, 1]), sources,
                                      np.ones(8, np.bool_), np.array([False, False]), slot, 1, 1, 2)
    # night 7 (sleep from device 1): sleep time over device 1's nights 5-6 -> only night 5 (night 6 is device
    # 0's); lnRMSSD over device 1's nights 5 and 6
    assert count.tolist() == [1]
    assert med[0].tolist() == [105.0, (1.5 + 1.6) / 2]
