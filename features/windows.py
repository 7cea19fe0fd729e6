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
person's baseline of one kind and one device); statistics are written only for rows marked `wanted` (for the
baselines: nights with an output slot). The baselines read the nights through an index (a night holding values
from two devices is in two baselines), so no per-baseline copy of the nights is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from features.kernels import decorators

njit, prange = decorators()  # numba's, or the functions left as they are (features/kernels.py)
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
def _add(buf, n, v):
    """_insert, where NaN (NULL) does not count."""
    return _insert(buf, n, v) if v == v else n


@njit(cache=True, inline="always")
def _drop(buf, n, v):
    """_remove, where NaN (NULL) was never in."""
    return _remove(buf, n, v) if v == v else n


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
def last_device(group_start, source):
    """Each row's source code or, where it has none (-1), the last earlier one in its group (-1 before any)."""
    device = np.empty(source.shape[0], np.int64)
    last = -1
    for i in range(source.shape[0]):
        if group_start[i]:
            last = -1
        if source[i] >= 0:
            last = source[i]
        device[i] = last
    return device


@njit(cache=True)
def runs_are_groups(group_start, run_start, key):
    """Whether, within each group, every value of `key` (>= -1) lies in one run (runs start at run_start): then
    the rows as they are form the (group, key) groups, with no reordering."""
    if key.shape[0] == 0:
        return True
    seen = np.zeros(max(key.max(), -1) + 2, np.bool_)
    for i in range(key.shape[0]):
        if group_start[i]:
            seen[:] = False
        if run_start[i]:
            if seen[key[i] + 1]:
                return False
            seen[key[i] + 1] = True
    return True


# A night's kind of sleep, as the baselines and the HRV week group it: night sleep, daytime (shift) sleep, or no
# main sleep to tell (such a night is in no baseline, and its own baseline is empty).
NIGHT_SLEEP, DAY_SLEEP, NO_MAIN_SLEEP = 0, 1, 2


@njit(cache=True, inline="always")
def _gives_new_device(sources, s, i):
    """Whether data type s of night i has a device that no earlier data type of the night had."""
    code = sources[s, i]
    if code < 0:
        return False
    for earlier in range(s):
        if sources[earlier, i] == code:
            return False
    return True


@njit(cache=True)
def baseline_rows(person_start, kind, sources):
    """The baselines' input rows: one per night and device the night holds a value from (`sources`: data types x
    nights, device codes, -1 for none), for nights with a main sleep (kind NIGHT_SLEEP or DAY_SLEEP). Grouped by
    person, kind and device, nights in order within a group: each group is one baseline. Returns (night row,
    device, group_start) per input row; built here rather than with a global sort, one person at a time."""
    n_types, n_rows = sources.shape
    n_devices = 0
    total = 0
    for i in range(n_rows):
        for s in range(n_types):
            n_devices = max(n_devices, sources[s, i] + 1)
            if kind[i] != NO_MAIN_SLEEP and _gives_new_device(sources, s, i):
                total += 1
    night = np.empty(total, np.int64)
    device = np.empty(total, np.int64)
    group_start = np.zeros(total, np.bool_)
    present = np.zeros(2 * n_devices, np.bool_)  # (kind, device) pairs of the person at hand
    j = 0
    first = 0
    while first < n_rows:
        stop = first + 1
        while stop < n_rows and not person_start[stop]:
            stop += 1
        for i in range(first, stop):
            if kind[i] != NO_MAIN_SLEEP:
                for s in range(n_types):
                    if sources[s, i] >= 0:
                        present[kind[i] * n_devices + sources[s, i]] = True
        for key in range(2 * n_devices):
            if not present[key]:
                continue
            present[key] = False
            key_kind, key_device = key // n_devices, key % n_devices
            opens = True
            for i in range(first, stop):
                if kind[i] != key_kind:
                    continue
                for s in range(n_types):
                    if sources[s, i] == key_device:
                        night[j] = i
                        device[j] = key_device
                        group_start[j] = opens
                        opens = False
                        j += 1
                        break
        first = stop
    return night, device, group_start


@njit(cache=True)
def _group_values(features, column_source, sources, in_baseline, night, device, first, stop, values):
    """The columns of input rows [first, stop) (one group) as they count in the group's baseline, into
    values[:stop - first]: NaN (does not count) unless the night is in baselines and the column's data type came
    from the group's device. Gathered once per group: a helper called per value cost more than the windows."""
    for c in range(len(features)):
        column = features[c]
        data_type = column_source[c]
        for k in range(first, stop):
            r = night[k]
            values[k - first, c] = column[r] if in_baseline[r] and sources[data_type, r] == device[k] else NAN


@njit(cache=True)
def _baseline_group(g0, g_end, night, device, day, features, column_source, sources, in_baseline, mad_of, slot,
                    end_days, span_days, buf, size, values, count, med, mad):
    """baselines for one group, input rows [g0, g_end): `buf`, `size` and `values` are scratch space (values holds
    >= g_end - g0 rows)."""
    n_cols = len(features)
    size[:] = 0
    gathered = False
    enter = leave = g0  # rows [leave, enter) are inside the window
    for i in range(g0, g_end):
        out = slot[night[i]]
        if out < 0:
            continue
        if not gathered:  # a group without a wanted night is never gathered
            _group_values(features, column_source, sources, in_baseline, night, device, g0, g_end, values)
            gathered = True
        # slide to [day - end_days - span_days + 1, day - end_days]: rows that left go, rows never entered that
        # are already too old are skipped, new rows enter (so the buffer never holds more than the window)
        last_in = day[night[i]] - end_days
        first_in = last_in - span_days + 1
        while leave < enter and day[night[leave]] < first_in:
            for c in range(n_cols):
                size[c] = _drop(buf[c], size[c], values[leave - g0, c])
            leave += 1
        if leave == enter:
            # an empty window (a group's first wanted night): skip what is too old, then load the frame in one
            # pass per column
            while enter < g_end and day[night[enter]] < first_in:
                enter += 1
            leave = enter
            stop = enter
            while stop < g_end and day[night[stop]] <= last_in:
                stop += 1
            for c in range(n_cols):
                m = 0
                for k in range(enter, stop):
                    v = values[k - g0, c]
                    if v == v:
                        # insertion into the sorted prefix (<= span_days values: at that size it beats numba's
                        # sort and a quickselect, measured)
                        p = m
                        while p > 0 and buf[c, p - 1] > v:
                            buf[c, p] = buf[c, p - 1]
                            p -= 1
                        buf[c, p] = v
                        m += 1
                size[c] = m
            enter = stop
        while enter < g_end and day[night[enter]] <= last_in:
            for c in range(n_cols):
                size[c] = _add(buf[c], size[c], values[enter - g0, c])
            enter += 1
        # only the statistics this night takes from this device's baseline
        sleep_device = sources[0, night[i]]
        if sleep_device == device[i]:
            count[out] = size[0]
        for c in range(n_cols):
            follows = sources[column_source[c], night[i]]
            if follows < 0:
                follows = sleep_device
            if follows != device[i]:
                continue
            m = _median(buf[c], size[c])
            med[out, c] = m
            if mad_of[c]:
                mad[out, c] = _mad(buf[c], size[c], m)


@njit(cache=True)
def _baseline_groups(group_start, n_rows):
    """Each group's first row and end, and the longest group's length."""
    firsts = np.flatnonzero(group_start)
    ends = np.empty(firsts.shape[0], np.int64)
    ends[:-1] = firsts[1:]
    if firsts.shape[0]:
        ends[-1] = n_rows
    longest = 0
    for g in range(firsts.shape[0]):
        longest = max(longest, ends[g] - firsts[g])
    return firsts, ends, longest


@njit(cache=True)
def _baseline_block(b, n_blocks, firsts, ends, longest, night, device, day, features, column_source, sources,
                    in_baseline, mad_of, slot, end_days, span_days, count, med, mad):
    """Block b of n_blocks of the groups, with scratch space of its own."""
    n_cols = len(features)
    buf = np.empty((n_cols, span_days + 1))
    size = np.zeros(n_cols, np.int64)
    values = np.empty((longest, n_cols))  # the group's values, row k at k - g0
    n_groups = firsts.shape[0]
    for g in range(b * n_groups // n_blocks, (b + 1) * n_groups // n_blocks):
        _baseline_group(firsts[g], ends[g], night, device, day, features, column_source, sources, in_baseline,
                        mad_of, slot, end_days, span_days, buf, size, values, count, med, mad)


@njit(cache=True)
def baselines(group_start, night, device, day, features, column_source, sources, in_baseline, mad_of, slot, n_out,
              end_days, span_days):
    """Per input row k (night[k] from device[k], rows as baseline_rows gives them) of a wanted night (slot[night]
    >= 0: its output row), over the same group's rows whose day lies in [day - end_days - span_days + 1,
    day - end_days]: the median of every column of `features` (a tuple of columns over the nights: no copy of
    them is made) and the MAD of the columns with mad_of[c], each value counted as _group_values says, and the
    count of column 0's values. A night takes each column's statistics from the baseline of the device its value
    came from (the column's data type: column_source[c], a row of `sources`), or with no value from the device of
    its sleep (data type 0), and the count from its sleep device. Returns (count (n_out), medians, MADs (n_out x
    columns); 0 or NaN where none)."""
    count = np.zeros(n_out, np.int64)
    med = np.full((n_out, len(features)), NAN)
    mad = np.full((n_out, len(features)), NAN)
    firsts, ends, longest = _baseline_groups(group_start, night.shape[0])
    _baseline_block(0, 1, firsts, ends, longest, night, device, day, features, column_source, sources, in_baseline,
                    mad_of, slot, end_days, span_days, count, med, mad)
    return count, med, mad


# Blocks of groups baselines_parallel shares out among the cores: enough to balance a few cores (a block's groups
# differ in size), few enough that each block's scratch space is allocated rarely.
_BASELINE_BLOCKS = 64


@njit(cache=True, parallel=True)
def baselines_parallel(group_start, night, device, day, features, column_source, sources, in_baseline, mad_of, slot,
                       n_out, end_days, span_days):
    """baselines on all cores: groups are independent and write disjoint results (a night with two devices gets
    each column from one of them), so blocks of them run in parallel. For big runs only: the sorts of the 60-night
    frames are most of a 10k-person nightly run's kernel time (0.09 s on one core, 0.05 s on two), but while
    other work holds a core the blocks wait for it, and a small run lost more than it gained (1k people: 3 ms
    serial, 7-27 ms in parallel under load)."""
    count = np.zeros(n_out, np.int64)
    med = np.full((n_out, len(features)), NAN)
    mad = np.full((n_out, len(features)), NAN)
    firsts, ends, longest = _baseline_groups(group_start, night.shape[0])
    n_blocks = min(firsts.shape[0], _BASELINE_BLOCKS)
    for b in prange(n_blocks):
        _baseline_block(b, n_blocks, firsts, ends, longest, night, device, day, features, column_source, sources,
                        in_baseline, mad_of, slot, end_days, span_days, count, med, mad)
    return count, med, mad


@njit(cache=True)
def context(group_start, day, travel_tonight, short_tonight, jet_lag_nights):
    """Per row, person by person in night order: travel context (away from home or tagged travel tonight or
    on one of the jet_lag_nights calendar nights before, among the rows read), and the first night of the
    short-sleep run the night belongs to (else its own)."""
    n_rows = day.shape[0]
    travel = np.zeros(n_rows, np.bool_)
    run_start = np.empty(n_rows, np.int64)
    last_travel = 0
    seen_travel = False
    start = 0
    for i in range(n_rows):
        if group_start[i]:
            seen_travel = False
        if travel_tonight[i]:
            last_travel = day[i]
            seen_travel = True
        travel[i] = seen_travel and day[i] - last_travel <= jet_lag_nights
        consecutive = (not group_start[i]) and day[i - 1] == day[i] - 1
        if not (short_tonight[i] and consecutive and short_tonight[i - 1]):
            start = day[i]
        run_start[i] = start
    return travel, run_start


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
    """Per wanted row, over the same group's rows (a person's nights from one device) in the last 7 / 14 / 28 /
    ewma_span_days calendar days (calendar-day windows ending at the row; SDs need 2 values, the EWMA a valid
    night). Columns, in order:
    var_nights, tst_sd_raw, bed_sd_raw, sri_pairs, sri_agreement, free_nights, work_nights, mid_free_med,
    mid_work_med, waso_long_nights_7n, onset_long_nights_7n, bedtime_ewma_min, midsleep_ewma_min; one row per
    wanted row, in order."""
    n_rows = day.shape[0]
    n_out = np.count_nonzero(wanted)
    out = np.full((n_out, 13), NAN)
    j = -1
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
        j += 1
        d = day[i]
        # 28-day medians: a sorted buffer slid along the person's nights (rows that left go first; rows never
        # entered that are already too old are skipped, so the buffer never holds more than the window)
        while leave28 < enter28 and day[leave28] < d - 27:
            n_free = _drop(free_buf, n_free, mid_free[leave28])
            n_work = _drop(work_buf, n_work, mid_work[leave28])
            leave28 += 1
        if leave28 == enter28:
            while enter28 < i and day[enter28] < d - 27:
                enter28 += 1
            leave28 = enter28
        while enter28 <= i:
            n_free = _add(free_buf, n_free, mid_free[enter28])
            n_work = _add(work_buf, n_work, mid_work[enter28])
            enter28 += 1
        out[j, 5] = n_free
        out[j, 6] = n_work
        out[j, 7] = _median(free_buf, n_free)
        out[j, 8] = _median(work_buf, n_work)
        # short windows: recomputed per row over <= 14 rows (exact counts, two-pass SD)
        lo14 = i
        while lo14 > g0 and day[lo14 - 1] >= d - 13:
            lo14 -= 1
        n, s, sd = _window_sum_sq(tst, lo14, i + 1)
        out[j, 0] = n
        out[j, 1] = sd
        n, s, sd = _window_sum_sq(bed, lo14, i + 1)
        out[j, 2] = sd
        n, s, sd = _window_sum_sq(pair, lo14, i + 1)
        out[j, 3] = n
        out[j, 4] = s / n if n > 0 else NAN
        lo7 = i
        while lo7 > g0 and day[lo7 - 1] >= d - 6:
            lo7 -= 1
        w = 0
        o = 0
        for k in range(lo7, i + 1):
            w += waso_long[k]
            o += onset_long[k]
        out[j, 9] = w
        out[j, 10] = o
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
            out[j, 11] = num_bed / den
            out[j, 12] = num_mid / den
    return out


@njit(cache=True)
def hrv_week(group_start, day, rmssd, ln_rmssd, wanted):
    """Per wanted row, over the same group's rows in the last 7 calendar days: count of RMSSD values, mean
    lnRMSSD, and the RMSSD coefficient of variation (100 * SD / mean); one row per wanted row, in order."""
    n_rows = day.shape[0]
    n_out = np.count_nonzero(wanted)
    out = np.full((n_out, 3), NAN)
    j = -1
    g0 = 0
    for i in range(n_rows):
        if group_start[i]:
            g0 = i
        if not wanted[i]:
            continue
        j += 1
        lo = i
        while lo > g0 and day[lo - 1] >= day[i] - 6:
            lo -= 1
        n, s, sd = _window_sum_sq(rmssd, lo, i + 1)
        n_ln, s_ln, sd_ln = _window_sum_sq(ln_rmssd, lo, i + 1)
        out[j, 0] = n
        out[j, 1] = s_ln / n_ln if n_ln > 0 else NAN
        out[j, 2] = 100.0 * sd / (s / n) if n > 0 else NAN
    return out


# ----------------------------------------------------------------------------------------------------------------
# Driver: from the nights read (night_signal_inputs.sql, sri_day_pairs.sql), derive what each window reads, run the
# kernels, and hand back one Arrow table, a row per target night, for night_signals.sql to join.

# The baseline's columns in kernel order: (feature, its source column, median's name, MAD's name or None). Each
# value counts only toward the baseline of the device it came from.
BASELINE_COLUMNS = (
    ("tst_min", "sleep_source", "tst_med", "tst_mad"),
    ("efficiency_pct", "sleep_source", "eff_med", "eff_mad"),
    ("waso_min", "sleep_source", "waso_med", "waso_mad"),
    ("onset_latency_min", "sleep_source", "onset_med", "onset_mad"),
    ("awakenings_count", "sleep_source", "awak_med", "awak_mad"),
    ("resting_hr_bpm", "resting_hr_source", "rhr_med", None),
    ("ln_rmssd", "hrv_source", "lnrmssd_med", "lnrmssd_mad"),
    ("ln_sdnn", "hrv_source", "lnsdnn_med", "lnsdnn_mad"),  # Apple's SDNN: a baseline of its own, never RMSSD's
    ("breathing_rate_brpm", "breathing_rate_source", "br_med", None),
    ("spo2_avg_pct", "spo2_source", "spo2_med", None),
    ("bedtime_min", "sleep_source", "bed_med", None),
    ("midsleep_min", "sleep_source", "mid_med", None),
)
# Each data type's device, read as a code (night_signal_inputs.sql: a device's place among those named in the
# span read; -1 for none): codes are only ever compared with each other.
SOURCE_COLUMNS = ("sleep_source", "resting_hr_source", "hrv_source", "breathing_rate_source", "spo2_source")
# Each column's data type (a row of the source codes), and which columns have a MAD: the baselines kernel's view
# of BASELINE_COLUMNS. Tonight's statistic comes from the baseline of the device that gave tonight's value, or,
# with no value tonight, of the device whose sleep counts (baseline_valid_nights and warm-up follow the sleep
# source).
_COLUMN_SOURCE = np.array([SOURCE_COLUMNS.index(src) for _, src, _, _ in BASELINE_COLUMNS], dtype=np.int64)
_HAS_MAD = np.array([mad is not None for *_, mad in BASELINE_COLUMNS])

ROLLING_COLUMNS = ("var_nights", "tst_sd_raw", "bed_sd_raw", "sri_pairs", "sri_agreement", "free_nights",
                   "work_nights", "mid_free_med", "mid_work_med", "waso_long_nights_7n", "onset_long_nights_7n",
                   "bedtime_ewma_min", "midsleep_ewma_min")
_COUNT_COLUMNS = {"var_nights", "sri_pairs", "free_nights", "work_nights", "waso_long_nights_7n",
                  "onset_long_nights_7n", "hrv_nights", "baseline_valid_nights", "short_sleep_run_nights"}
_BOOL_COLUMNS = {"travel_context", "usable", "baseline_excluded"}


# night_signal_inputs.sql numbers days from 2000-01-01, Arrow's dates count them from 1970-01-01
_DAY_NUMBER_EPOCH = (date(2000, 1, 1) - date(1970, 1, 1)).days
# Target nights from which the baselines run on all cores (baselines_parallel): a 10k-person nightly run, not 1k.
PARALLEL_BASELINES_FROM = 5_000


def _floats(table, name: str) -> np.ndarray:
    """An Arrow column as float64 with NaN for NULL (night_signal_inputs.sql writes NaN for NULL already: then
    only DuckDB's batches are joined)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(name)
    if column.null_count or column.type != pa.float64():
        column = pc.fill_null(column.cast(pa.float64()), np.nan)
    return column.to_numpy()


def _ints(table, name: str) -> np.ndarray:
    """An integer Arrow column without NULLs, in its own width."""
    return table.column(name).to_numpy()


def _float_columns(table, names) -> tuple[np.ndarray, ...]:
    """The named columns as a tuple of float64 arrays (NaN for NULL), all read-only, so that a kernel sees one
    array type (a tuple it can index by column) whether or not a column needed a copy. Not one 2-D array: a copy
    into it cost more (fresh pages for 11 x 700k values at 10k people) than the kernel that reads it."""
    columns = tuple(_floats(table, name) for name in names)
    for column in columns:
        column.flags.writeable = False
    return columns


def _bools(table, name: str, null: bool = False) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(table.column(name), null).to_numpy(zero_copy_only=False)


def _starts(*keys: np.ndarray) -> np.ndarray:
    """Where a run of equal keys begins (the rows are sorted by them)."""
    n = len(keys[0])
    starts = np.ones(n, dtype=np.bool_)
    if n > 1:
        starts[1:] = np.zeros(n - 1, dtype=np.bool_)
        for k in keys:
            starts[1:] |= k[1:] != k[:-1]
    return starts


def _pairs_by_row(day_pairs, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The SRI day pairs placed on the rows of the nights they belong to (rows sorted by person and day; every
    pair's night is among them), NaN elsewhere."""
    row_key = person.astype(np.int64) << 32 | day
    pair_key = _ints(day_pairs, "person_index").astype(np.int64) << 32 | _ints(day_pairs, "day_number")
    pair = np.full(len(day), np.nan)
    pair[np.searchsorted(row_key, pair_key)] = _floats(day_pairs, "sri_pair")
    return pair


@dataclass(frozen=True)
class _Nights:
    """The nights read (night_signal_inputs.sql, an Arrow table in person and night order) and the arrays every
    window needs: person, day, where each person's rows start, and the target rows. Results are kept for the
    target rows only: slot[r] is target row r's place among them (-1: not a target)."""

    table: object
    person: np.ndarray
    day: np.ndarray
    starts: np.ndarray
    target: np.ndarray
    targets: np.ndarray
    slot: np.ndarray

    @classmethod
    def of(cls, table) -> "_Nights":
        person, target = _ints(table, "person_index"), _bools(table, "is_target")
        targets = np.flatnonzero(target)
        slot = np.full(table.num_rows, -1, dtype=np.int64)
        slot[targets] = np.arange(len(targets))
        return cls(table, person, _ints(table, "day_number"), _starts(person), target, targets, slot)

    def floats(self, name: str) -> np.ndarray:
        return _floats(self.table, name)

    def bools(self, name: str) -> np.ndarray:
        return _bools(self.table, name)

    def ints(self, name: str) -> np.ndarray:
        return _ints(self.table, name)


def _short_sleep_runs(nights: _Nights, short: np.ndarray, run_start: np.ndarray) -> np.ndarray:
    """Each night's short-sleep run length (0 for a night that is not short). A run that was going before the
    first target began where the stored run of the night before says."""
    first_target, before = nights.ints("first_target_day"), nights.ints("run_before_targets")
    carried = (run_start < first_target) & (before > 0)
    run_start = np.where(carried, first_target - before, run_start)
    return np.where(short, nights.day - run_start + 1, 0)


def _rolling_windows(nights: _Nights, day_pairs, params: dict[str, object], valid: np.ndarray, tst: np.ndarray,
                     kind: np.ndarray, sleep_src: np.ndarray) -> np.ndarray:
    """The rolling windows of the target nights (ROLLING_COLUMNS), a row per target.

    The rolling windows hold one device's nights, like the baselines: sleep time, timing and regularity are
    measured by each device's own algorithm (a ring's night is not a watch's), so after a switch the spread, the
    regularity and the drift start afresh rather than read the change of device as a change of sleep. A night with
    no sleep follows the device of the person's last night with some."""
    person, day, starts = nights.person, nights.day, nights.starts
    sleep_device = last_device(starts, sleep_src)
    # an SRI pair compares a night with the one before it: with two devices it compares their algorithms
    pair = np.where(np.r_[False, (person[1:] == person[:-1]) & (day[1:] == day[:-1] + 1)]
                    & (sleep_device != np.r_[-1, sleep_device[:-1]]), np.nan, _pairs_by_row(day_pairs, person, day))
    bed, mid = nights.floats("bedtime_min"), nights.floats("midsleep_min")
    night_sleep, free = valid & (kind == NIGHT_SLEEP), nights.bools("free_day")
    long_min = float(params["continuity_long_min"])
    inputs = (day, np.where(valid, tst, np.nan), np.where(valid, bed, np.nan), pair,
              np.where(night_sleep & free, mid, np.nan), np.where(night_sleep & ~free, mid, np.nan),
              (valid & (nights.floats("waso_min") >= long_min)).astype(np.int64),
              (valid & (nights.floats("onset_latency_min") >= long_min)).astype(np.int64), valid, bed, mid,
              nights.target)
    ewma = (float(params["ewma_lambda"]), int(params["ewma_span_days"]))
    device_start = starts | np.r_[True, sleep_device[1:] != sleep_device[:-1]]
    if runs_are_groups(starts, device_start, sleep_device):
        # each device's nights lie in one run (the usual case: one device, or a switch for good): the rows as
        # read are grouped already, and the kernel skips those no target's window reaches (27 days back at most)
        return rolling(device_start, *inputs, *ewma)
    # a person went back to an earlier device: its nights are gathered into one group
    order = np.lexsort((day, sleep_device, person))
    out = np.full((len(nights.targets), len(ROLLING_COLUMNS)), np.nan)
    out[nights.slot[order[nights.target[order]]]] = rolling(
        _starts(person[order], sleep_device[order]), *(column[order] for column in inputs), *ewma)
    return out


def _hrv_weeks(nights: _Nights, usable: np.ndarray, kind: np.ndarray, sleep_src: np.ndarray,
               hrv_src: np.ndarray) -> np.ndarray:
    """The HRV week of the target nights (count, mean lnRMSSD, RMSSD CV), a row per target: one kind of sleep
    from one device, like the baseline it meets (6 days back from a target)."""
    person, day, target = nights.person, nights.day, nights.target
    hrv_key = np.where(hrv_src >= 0, hrv_src, sleep_src)
    week = np.flatnonzero(day >= nights.ints("first_target_day") - 6)
    order = week[np.lexsort((day[week], hrv_key[week], kind[week], person[week]))]
    out = np.full((len(nights.targets), 3), np.nan)
    out[nights.slot[order[target[order]]]] = hrv_week(
        _starts(person[order], kind[order], hrv_key[order]), day[order],
        np.where(usable, nights.floats("rmssd_ms"), np.nan)[order],
        np.where(usable, nights.floats("ln_rmssd"), np.nan)[order], target[order])
    return out


def _baseline_statistics(nights: _Nights, params: dict[str, object], kind: np.ndarray, sources: np.ndarray,
                         in_baseline: np.ndarray) -> dict[str, np.ndarray]:
    """The baseline statistics of the target nights by name (baseline_valid_nights, each median and MAD). One
    input row per night and device it holds values from, grouped by person, kind and device; the kernel hands each
    target night the statistics of the device each of its values came from."""
    night, device, group_start = baseline_rows(nights.starts, kind, sources)
    kernel = baselines_parallel if len(nights.targets) >= PARALLEL_BASELINES_FROM else baselines
    count, med, mad = kernel(group_start, night, device, nights.day,
                             _float_columns(nights.table, [col for col, *_ in BASELINE_COLUMNS]),
                             _COLUMN_SOURCE, sources, in_baseline, _HAS_MAD, nights.slot, len(nights.targets),
                             int(params["baseline_end_days"]), int(params["baseline_span_days"]))
    stats = {"baseline_valid_nights": count}
    for k, (_, _, med_name, mad_name) in enumerate(BASELINE_COLUMNS):
        stats[med_name] = med[:, k]
        if mad_name:
            stats[mad_name] = mad[:, k]
    return stats


def _night_windows_table(nights: _Nights, columns: dict[str, np.ndarray]):
    """The target nights' results as the Arrow table night_signals.sql joins (person_index, night_date, ...):
    counts as integers, flags as booleans, the rest as doubles with NULL for NaN."""
    import pyarrow as pa

    day = nights.day[nights.targets]
    out = {"person_index": pa.array(nights.person[nights.targets]),
           "night_date": pa.array((day + _DAY_NUMBER_EPOCH).astype(np.int32), type=pa.date32())}
    for name, v in columns.items():
        if name in _BOOL_COLUMNS:
            out[name] = pa.array(v.astype(np.bool_))
        elif name in _COUNT_COLUMNS:
            out[name] = pa.array(v.astype(np.int64))
        else:
            out[name] = pa.array(v, mask=np.isnan(v))
    return pa.table(out)


def signal_windows(table, day_pairs, params: dict[str, object]) -> dict[str, object]:
    """Compute the windows of the target nights from the nights read for them (`table`: night_signal_inputs.sql,
    in person and night order) and their SRI day pairs (sri_day_pairs.sql), both Arrow tables; returns
    {"night_windows": Arrow table}, a row per target night (person_index, night_date): its context (travel,
    short-sleep run), rolling windows, HRV week and baseline. `params`: every threshold."""
    nights = _Nights.of(table)
    valid, tst = nights.bools("valid_night"), nights.floats("tst_min")
    short = valid & (tst < float(params["short_sleep_min"]))
    travel, run_start = context(nights.starts, nights.day, nights.bools("travel_tonight"), short,
                                int(params["jet_lag_nights"]))
    day_sleep_known = ~np.asarray(table.column("day_sleep").is_null().to_numpy(zero_copy_only=False))
    kind = np.where(day_sleep_known, nights.bools("day_sleep").astype(np.int64), NO_MAIN_SLEEP)
    usable = valid & ~travel
    excluded = travel | nights.bools("tag_illness") | nights.bools("tag_travel") | nights.bools("tag_on_call")
    sources = np.stack([nights.ints(name) for name in SOURCE_COLUMNS])  # device codes, data types x nights
    sleep_src, hrv_src = sources[SOURCE_COLUMNS.index("sleep_source")], sources[SOURCE_COLUMNS.index("hrv_source")]

    targets = nights.targets
    columns = {"travel_context": travel[targets], "usable": usable[targets], "baseline_excluded": excluded[targets],
               "short_sleep_run_nights": _short_sleep_runs(nights, short, run_start)[targets]}
    rolling_out = _rolling_windows(nights, day_pairs, params, valid, tst, kind, sleep_src)
    columns |= {name: rolling_out[:, k] for k, name in enumerate(ROLLING_COLUMNS)}
    hrv_out = _hrv_weeks(nights, usable, kind, sleep_src, hrv_src)
    columns |= {"hrv_nights": hrv_out[:, 0], "lnrmssd_7n_raw": hrv_out[:, 1], "rmssd_cv_raw": hrv_out[:, 2]}
    columns |= _baseline_statistics(nights, params, kind, sources, valid & ~excluded)
    return {"night_windows": _night_windows_table(nights, columns)}
