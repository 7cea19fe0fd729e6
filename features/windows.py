"""Sliding-window statistics of the signal step, computed by compiled kernels (numba) over nights in order.

Why not SQL windows: a night's baseline is the median and MAD of up to 60 earlier nights, for 11 features, and
DuckDB evaluates each windowed median and MAD separately per row; with the 28-night rolling features these
windows were ~70 % of the signal step (1k people x 365 nights: 6.9 s of 8.9 s). Here each window is a small
sorted buffer that the nights enter and leave as the window slides (insert and remove by binary search and a
shift: O(window) per night, no sort per window), one pass per person, for every statistic at once. The same
kernels serve a rebuild (every night) and a nightly run (the new nights, reading only the frames they need).

Values equal DuckDB's: a median of an even count is the mean of the two middle values ((lo + hi) / 2, as
DuckDB's median and mad compute it); counts, medians and MADs are exact; sums, means and standard deviations
agree to floating-point rounding (DuckDB sums windows through a segment tree, in another order).

Inputs are columns of one table sorted by group and night; NaN stands for NULL (a value that does not count);
`day` is the night as an integer day number; `group_start` marks the first row of each group (a person, or a
person's baseline of one kind and one device); statistics are written only for rows marked `wanted`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NAN = np.nan


@njit(cache=True, inline="always")
def _insert(buf, n, v):
    """Insert v into the sorted buf[:n] (n < len(buf)); returns the new length."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    for k in range(n, lo, -1):
        buf[k] = buf[k - 1]
    buf[lo] = v
    return n + 1


@njit(cache=True, inline="always")
def _remove(buf, n, v):
    """Remove one copy of v from the sorted buf[:n] (it is there: it entered the window earlier)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    for k in range(lo, n - 1):
        buf[k] = buf[k + 1]
    return n - 1


@njit(cache=True, inline="always")
def _median(buf, n):
    if n == 0:
        return NAN
    if n % 2 == 1:
        return buf[n // 2]
    return (buf[n // 2 - 1] + buf[n // 2]) / 2.0


@njit(cache=True)
def _mad(buf, n, med):
    """Median of |x - med| over the sorted buf[:n]: the deviations on each side of med are already in order,
    so the two middle ones come from merging the two sides outward (n / 2 steps, no sort)."""
    if n == 0:
        return NAN
    right = 0
    while right < n and buf[right] < med:
        right += 1
    left = right - 1
    want_hi = n // 2  # 0-based rank of the upper middle deviation
    prev = NAN
    cur = NAN
    for _ in range(want_hi + 1):
        if left >= 0 and (right >= n or med - buf[left] <= buf[right] - med):
            d = med - buf[left]
            left -= 1
        else:
            d = buf[right] - med
            right += 1
        prev, cur = cur, d
    if n % 2 == 1:
        return cur
    return (prev + cur) / 2.0


@njit(cache=True)
def baselines(group_start, day, values, mad_of, wanted, end_days, span_days):
    """Per row: over the same group's rows whose day lies in [day - end_days - span_days + 1, day - end_days]:
    the count of non-NULL values of column 0, the median of every column, and the MAD of the columns with
    mad_of[c]. Returns (count, medians (rows x columns), mads (rows x columns), NaN where not computed)."""
    n_rows, n_cols = values.shape
    count = np.full(n_rows, -1, np.int64)
    med = np.full((n_rows, n_cols), NAN)
    mad = np.full((n_rows, n_cols), NAN)
    buf = np.empty((n_cols, span_days + 1))
    size = np.zeros(n_cols, np.int64)
    g_end = 0
    enter = leave = 0  # rows [leave, enter) are inside the window
    for i in range(n_rows):
        if group_start[i]:
            g_end = i + 1
            while g_end < n_rows and not group_start[g_end]:
                g_end += 1
            enter = leave = i
            size[:] = 0
        if not wanted[i]:
            continue
        # slide to [day - end_days - span_days + 1, day - end_days]: rows that left go, rows never entered that
        # are already too old are skipped, new rows enter (so the buffer never holds more than the window)
        last_in = day[i] - end_days
        first_in = last_in - span_days + 1
        while leave < enter and day[leave] < first_in:
            for c in range(n_cols):
                v = values[leave, c]
                if v == v:
                    size[c] = _remove(buf[c], size[c], v)
            leave += 1
        if leave == enter:
            while enter < g_end and day[enter] < first_in:
                enter += 1
            leave = enter
        while enter < g_end and day[enter] <= last_in:
            for c in range(n_cols):
                v = values[enter, c]
                if v == v:
                    size[c] = _insert(buf[c], size[c], v)
            enter += 1
        count[i] = size[0]
        for c in range(n_cols):
            m = _median(buf[c], size[c])
            med[i, c] = m
            if mad_of[c]:
                mad[i, c] = _mad(buf[c], size[c], m)
    return count, med, mad


@njit(cache=True)
def _window_sum_sq(values, lo, hi):
    """count, sum, and sample SD of the non-NULL values[lo:hi] (two passes: mean, then squared deviations)."""
    n = 0
    s = 0.0
    for k in range(lo, hi):
        v = values[k]
        if v == v:
            n += 1
            s += v
    if n < 2:
        return n, s, NAN
    mean = s / n
    ss = 0.0
    for k in range(lo, hi):
        v = values[k]
        if v == v:
            ss += (v - mean) * (v - mean)
    return n, s, np.sqrt(ss / (n - 1))


@njit(cache=True)
def rolling(group_start, day, tst, bed, pair, mid_free, mid_work, waso_long, onset_long, ewma_valid, ewma_bed,
            ewma_mid, wanted, ewma_lambda, ewma_span_days):
    """Per wanted row, over the same person's rows in the last 7 / 14 / 28 / ewma_span_days calendar days
    (RANGE windows ending at the row): see night_signals.sql, `rolling`. Columns of the result, in order:
    var_nights, tst_sd_raw, bed_sd_raw, sri_pairs, sri_agreement, free_nights, work_nights, mid_free_med,
    mid_work_med, waso_long_nights_7n, onset_long_nights_7n, bedtime_ewma_min, midsleep_ewma_min."""
    n_rows = day.shape[0]
    out = np.full((n_rows, 13), NAN)
    free_buf = np.empty(29)
    work_buf = np.empty(29)
    n_free = n_work = 0
    g0 = 0
    enter28 = leave28 = 0
    decay = 1.0 - ewma_lambda
    for i in range(n_rows):
        if group_start[i]:
            g0 = i
            enter28 = leave28 = i
            n_free = n_work = 0
        if not wanted[i]:
            continue
        d = day[i]
        # 28-day medians: a sorted buffer slid along the person's nights (rows that left go first; rows never
        # entered that are already too old are skipped, so the buffer never holds more than the window)
        while leave28 < enter28 and day[leave28] < d - 27:
            v = mid_free[leave28]
            if v == v:
                n_free = _remove(free_buf, n_free, v)
            v = mid_work[leave28]
            if v == v:
                n_work = _remove(work_buf, n_work, v)
            leave28 += 1
        if leave28 == enter28:
            while enter28 < i and day[enter28] < d - 27:
                enter28 += 1
            leave28 = enter28
        while enter28 <= i:
            v = mid_free[enter28]
            if v == v:
                n_free = _insert(free_buf, n_free, v)
            v = mid_work[enter28]
            if v == v:
                n_work = _insert(work_buf, n_work, v)
            enter28 += 1
        out[i, 5] = n_free
        out[i, 6] = n_work
        out[i, 7] = _median(free_buf, n_free)
        out[i, 8] = _median(work_buf, n_work)
        # short windows: recomputed per row over <= 14 rows (exact counts, two-pass SD)
        lo14 = i
        while lo14 > g0 and day[lo14 - 1] >= d - 13:
            lo14 -= 1
        n, s, sd = _window_sum_sq(tst, lo14, i + 1)
        out[i, 0] = n
        out[i, 1] = sd
        n, s, sd = _window_sum_sq(bed, lo14, i + 1)
        out[i, 2] = sd
        n, s, sd = _window_sum_sq(pair, lo14, i + 1)
        out[i, 3] = n
        out[i, 4] = s / n if n > 0 else NAN
        lo7 = i
        while lo7 > g0 and day[lo7 - 1] >= d - 6:
            lo7 -= 1
        w = 0
        o = 0
        for k in range(lo7, i + 1):
            w += waso_long[k]
            o += onset_long[k]
        out[i, 9] = w
        out[i, 10] = o
        # EWMA over the valid nights of the last ewma_span_days days, weight decay ** (age in days), oldest first
        lo = i
        while lo > g0 and day[lo - 1] >= d - (ewma_span_days - 1):
            lo -= 1
        num_bed = num_mid = den = 0.0
        any_valid = False
        for k in range(lo, i + 1):
            if ewma_valid[k]:
                wk = decay ** float(d - day[k])  # a float power, as DuckDB's pow()
                num_bed += ewma_bed[k] * wk
                num_mid += ewma_mid[k] * wk
                den += wk
                any_valid = True
        if any_valid and den != 0.0:
            out[i, 11] = num_bed / den
            out[i, 12] = num_mid / den
    return out


@njit(cache=True)
def hrv_week(group_start, day, rmssd, ln_rmssd, wanted):
    """Per wanted row, over the same group's rows in the last 7 calendar days: count of RMSSD values, mean
    lnRMSSD, and the RMSSD coefficient of variation (100 * SD / mean)."""
    n_rows = day.shape[0]
    out = np.full((n_rows, 3), NAN)
    g0 = 0
    for i in range(n_rows):
        if group_start[i]:
            g0 = i
        if not wanted[i]:
            continue
        lo = i
        while lo > g0 and day[lo - 1] >= day[i] - 6:
            lo -= 1
        n, s, sd = _window_sum_sq(rmssd, lo, i + 1)
        n_ln, s_ln, sd_ln = _window_sum_sq(ln_rmssd, lo, i + 1)
        out[i, 0] = n
        out[i, 1] = s_ln / n_ln if n_ln > 0 else NAN
        out[i, 2] = 100.0 * sd / (s / n) if n > 0 else NAN
    return out


# ----------------------------------------------------------------------------------------------------------------
# Driver: read the inputs from the `signal_inputs` temporary table (night_signal_inputs.sql), run the kernels,
# and hand back Arrow tables of the target nights for night_signals.sql to join.

# The baseline's columns in kernel order: (input column, median's name, MAD's name or None).
BASELINE_COLUMNS = (
    ("b_tst", "tst_med", "tst_mad"), ("b_eff", "eff_med", "eff_mad"), ("b_waso", "waso_med", "waso_mad"),
    ("b_onset", "onset_med", "onset_mad"), ("b_awak", "awak_med", "awak_mad"), ("b_rhr", "rhr_med", None),
    ("b_lnrmssd", "lnrmssd_med", "lnrmssd_mad"), ("b_br", "br_med", None), ("b_spo2", "spo2_med", None),
    ("b_bed", "bed_med", None), ("b_mid", "mid_med", None),
)
# Each baseline value counts only toward the baseline of the device it came from ...
_BASELINE_SOURCE_OF = {"b_tst": "sleep_source", "b_eff": "sleep_source", "b_waso": "sleep_source",
                       "b_onset": "sleep_source", "b_awak": "sleep_source", "b_rhr": "resting_hr_source",
                       "b_lnrmssd": "hrv_source", "b_br": "breathing_rate_source", "b_spo2": "spo2_source",
                       "b_bed": "sleep_source", "b_mid": "sleep_source"}
# ... and tonight's statistic comes from the baseline of the device that gave tonight's value, or, with no value
# tonight, of the device whose sleep counts (baseline_valid_nights and warm-up follow the sleep source)
_STATISTIC_SOURCE = {"baseline_valid_nights": "sleep_source", "tst_med": "sleep_source",
                     "tst_mad": "sleep_source", "eff_med": "sleep_source", "eff_mad": "sleep_source",
                     "waso_med": "sleep_source", "waso_mad": "sleep_source", "onset_med": "sleep_source",
                     "onset_mad": "sleep_source", "awak_med": "sleep_source", "awak_mad": "sleep_source",
                     "bed_med": "sleep_source", "mid_med": "sleep_source",
                     "rhr_med": "coalesce(resting_hr_source, sleep_source)",
                     "lnrmssd_med": "coalesce(hrv_source, sleep_source)",
                     "lnrmssd_mad": "coalesce(hrv_source, sleep_source)",
                     "br_med": "coalesce(breathing_rate_source, sleep_source)",
                     "spo2_med": "coalesce(spo2_source, sleep_source)"}

ROLLING_COLUMNS = ("var_nights", "tst_sd_raw", "bed_sd_raw", "sri_pairs", "sri_agreement", "free_nights",
                   "work_nights", "mid_free_med", "mid_work_med", "waso_long_nights_7n", "onset_long_nights_7n",
                   "bedtime_ewma_min", "midsleep_ewma_min")
_COUNT_COLUMNS = {"var_nights", "sri_pairs", "free_nights", "work_nights", "waso_long_nights_7n",
                  "onset_long_nights_7n", "hrv_nights", "baseline_valid_nights"}


def _floats(table, name: str) -> np.ndarray:
    """An Arrow column as float64 with NaN for NULL."""
    import pyarrow.compute as pc

    return pc.fill_null(table.column(name).cast("double"), np.nan).to_numpy()


def _group_starts(table, key: str) -> np.ndarray:
    import pyarrow.compute as pc

    keys = table.column(key).combine_chunks() if table.num_rows else table.column(key)
    starts = np.ones(table.num_rows, dtype=np.bool_)
    if table.num_rows > 1:
        starts[1:] = pc.not_equal(keys.slice(1), keys.slice(0, table.num_rows - 1)).to_numpy(
            zero_copy_only=False)
    return starts


def _result(input_row: np.ndarray, columns: dict[str, np.ndarray]):
    """The rows' keys (signal_inputs.input_row) beside the computed columns, NaN as NULL, counts as integers."""
    import pyarrow as pa

    out = pa.table({"input_row": pa.array(input_row.astype(np.int64))})
    for name, v in columns.items():
        if name in _COUNT_COLUMNS:
            out = out.append_column(name, pa.array(v.astype(np.int64)))
        else:
            out = out.append_column(name, pa.array(v, mask=np.isnan(v)))
    return out


def signal_windows(cur, params: dict[str, object]) -> dict[str, object]:
    """Compute the target nights' windows from `signal_inputs`; returns the tables night_signals.sql reads:
    night_rolling and night_hrv_week (a row per target night) and night_baselines (a row per target night and
    device with a value that night)."""
    lookback = max(27, int(params["ewma_span_days"]) - 1)
    # rolling windows over a person's nights; only the last `lookback` days before the first target are read
    t = cur.sql(f"""
        SELECT person_id, input_row, day_number, is_target, v_tst, v_bed, pair_agreement, v_mid_free,
               v_mid_work, waso_long, onset_long, coalesce(valid_night, false) AS ewma_valid, bedtime_min,
               midsleep_min
        FROM signal_inputs WHERE night_date >= first_target - {lookback}
        ORDER BY person_id, night_date""").to_arrow_table()
    wanted = t.column("is_target").to_numpy(zero_copy_only=False)
    out = rolling(_group_starts(t, "person_id"), t.column("day_number").to_numpy(), _floats(t, "v_tst"),
                  _floats(t, "v_bed"), _floats(t, "pair_agreement"), _floats(t, "v_mid_free"),
                  _floats(t, "v_mid_work"), t.column("waso_long").to_numpy().astype(np.int64),
                  t.column("onset_long").to_numpy().astype(np.int64),
                  t.column("ewma_valid").to_numpy(zero_copy_only=False), _floats(t, "bedtime_min"),
                  _floats(t, "midsleep_min"), wanted, float(params["ewma_lambda"]),
                  int(params["ewma_span_days"]))
    rows = t.column("input_row").to_numpy()[wanted]
    night_rolling = _result(rows, {name: out[wanted, k] for k, name in enumerate(ROLLING_COLUMNS)})

    # the HRV week: one kind of sleep from one device, like the baseline it meets
    t = cur.sql(f"""
        SELECT input_row, day_number, is_target, v_rmssd, v_lnrmssd,
               person_id || chr(31) || coalesce(day_sleep::VARCHAR, '') || chr(31)
                   || coalesce(hrv_source, sleep_source, '') AS hrv_group
        FROM signal_inputs WHERE night_date >= first_target - {lookback}
        ORDER BY person_id, day_sleep NULLS FIRST, coalesce(hrv_source, sleep_source) NULLS FIRST, night_date
        """).to_arrow_table()
    wanted = t.column("is_target").to_numpy(zero_copy_only=False)
    out = hrv_week(_group_starts(t, "hrv_group"), t.column("day_number").to_numpy(), _floats(t, "v_rmssd"),
                   _floats(t, "v_lnrmssd"), wanted)
    rows = t.column("input_row").to_numpy()[wanted]
    night_hrv_week = _result(rows, {"hrv_nights": out[wanted, 0], "lnrmssd_7n_raw": out[wanted, 1],
                                    "rmssd_cv_raw": out[wanted, 2]})

    # baselines: one input row per night and device it holds values from; nights with no kind of sleep (no main
    # sleep) are in no baseline, and their own baseline is empty
    values = ", ".join(f"CASE WHEN {_BASELINE_SOURCE_OF[c]} = baseline_source THEN {c} END AS {c}"
                       for c, _, _ in BASELINE_COLUMNS)
    sources = sorted(set(_STATISTIC_SOURCE.values()))
    serves = ", ".join(f"is_target AND baseline_source = {src} AS serves_{k}" for k, src in enumerate(sources))
    t = cur.sql(f"""
        SELECT input_row, day_number, is_target, {values}, {serves},
               person_id || chr(31) || day_sleep::VARCHAR || chr(31) || baseline_source AS baseline_group
        FROM (
            SELECT *, unnest(list_distinct([sleep_source, resting_hr_source, hrv_source, breathing_rate_source,
                                            spo2_source])) AS baseline_source
            FROM signal_inputs WHERE day_sleep IS NOT NULL
        )
        ORDER BY person_id, day_sleep, baseline_source, night_date""").to_arrow_table()
    wanted = t.column("is_target").to_numpy(zero_copy_only=False)
    matrix = np.column_stack([_floats(t, c) for c, _, _ in BASELINE_COLUMNS]) if t.num_rows else \
        np.empty((0, len(BASELINE_COLUMNS)))
    count, med, mad = baselines(
        _group_starts(t, "baseline_group"), t.column("day_number").to_numpy(), np.ascontiguousarray(matrix),
        np.array([m is not None for _, _, m in BASELINE_COLUMNS]), wanted, int(params["baseline_end_days"]),
        int(params["baseline_span_days"]))
    computed: dict[str, np.ndarray] = {"baseline_valid_nights": count.astype(np.float64)}
    for k, (_, med_name, mad_name) in enumerate(BASELINE_COLUMNS):
        computed[med_name] = med[:, k]
        if mad_name:
            computed[mad_name] = mad[:, k]
    # one row per target night with a kind of sleep: each statistic taken from the row of the device it
    # follows (exactly one per night: the device is among the night's own, so it has a row)
    input_row = t.column("input_row").to_numpy()
    sleep_rows = t.column(f"serves_{sources.index('sleep_source')}").to_numpy(zero_copy_only=False)
    night_rows = input_row[sleep_rows]
    slot = np.full(int(input_row.max()) + 1 if len(input_row) else 0, -1, dtype=np.int64)
    slot[night_rows] = np.arange(len(night_rows))
    stats = {}
    for name, src in _STATISTIC_SOURCE.items():
        serving = t.column(f"serves_{sources.index(src)}").to_numpy(zero_copy_only=False)
        column = np.full(len(night_rows), np.nan)
        column[slot[input_row[serving]]] = computed[name][serving]
        stats[name] = column
    night_baselines = _result(night_rows, stats)
    return {"night_rolling": night_rolling, "night_hrv_week": night_hrv_week, "night_baselines": night_baselines}
