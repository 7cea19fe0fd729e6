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
def baselines(group_start, day, values, mad_of, wanted, end_days, span_days):
    """Per row: over the same group's rows whose day lies in [day - end_days - span_days + 1, day - end_days]:
    the count of non-NULL values of column 0, the median of every column, and the MAD of the columns with
    mad_of[c]. Returns (count, medians (rows x columns), mads (rows x columns)) for the wanted rows, in order
    (NaN: no value, or a column without a MAD)."""
    n_rows, n_cols = values.shape
    n_out = np.count_nonzero(wanted)
    count = np.zeros(n_out, np.int64)
    med = np.full((n_out, n_cols), NAN)
    mad = np.full((n_out, n_cols), NAN)
    j = -1
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
                size[c] = _drop(buf[c], size[c], values[leave, c])
            leave += 1
        if leave == enter:
            # an empty window (a group's first wanted night): skip what is too old, then load the frame in one
            # pass per column
            while enter < g_end and day[enter] < first_in:
                enter += 1
            leave = enter
            stop = enter
            while stop < g_end and day[stop] <= last_in:
                stop += 1
            for c in range(n_cols):
                m = 0
                for k in range(enter, stop):
                    v = values[k, c]
                    if v == v:
                        # insertion into the sorted prefix: the frame is <= span_days values, mostly in order
                        p = m
                        while p > 0 and buf[c, p - 1] > v:
                            buf[c, p] = buf[c, p - 1]
                            p -= 1
                        buf[c, p] = v
                        m += 1
                size[c] = m
            enter = stop
        while enter < g_end and day[enter] <= last_in:
            for c in range(n_cols):
                size[c] = _add(buf[c], size[c], values[enter, c])
            enter += 1
        j += 1
        count[j] = size[0]
        for c in range(n_cols):
            m = _median(buf[c], size[c])
            med[j, c] = m
            if mad_of[c]:
                mad[j, c] = _mad(buf[c], size[c], m)
    return count, med, mad


_POPCOUNT = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)


@njit(cache=True)
def context(group_start, day, travel_tonight, short_tonight, state, has_state, jet_lag_nights, popcount):
    """Per row, person by person in night order: travel context (away from home or tagged travel tonight or
    on one of the jet_lag_nights calendar nights before, among the rows read), the SRI day-pair agreement with
    the calendar night before (share of the 1,440 minutes in the same state: 1 - popcount(xor) / 1440; NaN
    without both states), and the first night of the short-sleep run the night belongs to (else its own)."""
    n_rows = day.shape[0]
    travel = np.zeros(n_rows, np.bool_)
    pair = np.full(n_rows, NAN)
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
        if consecutive and has_state[i] and has_state[i - 1]:
            differ = 0
            for k in range(state.shape[1]):
                differ += popcount[state[i, k] ^ state[i - 1, k]]
            pair[i] = 1.0 - differ / 1440.0
        if not (short_tonight[i] and consecutive and short_tonight[i - 1]):
            start = day[i]
        run_start[i] = start
    return travel, pair, run_start


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
    (calendar-day windows ending at the row; SDs need 2 values, the EWMA a valid night). Columns, in order:
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
# Driver: read the nights (night_signal_inputs.sql), derive what each window reads, run the kernels, and hand
# back one Arrow table, a row per target night, for night_signals.sql to join.

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
    ("breathing_rate_brpm", "breathing_rate_source", "br_med", None),
    ("spo2_avg_pct", "spo2_source", "spo2_med", None),
    ("bedtime_min", "sleep_source", "bed_med", None),
    ("midsleep_min", "sleep_source", "mid_med", None),
)
SOURCE_COLUMNS = ("sleep_source", "resting_hr_source", "hrv_source", "breathing_rate_source", "spo2_source")
# Tonight's statistic comes from the baseline of the device that gave tonight's value, or, with no value
# tonight, of the device whose sleep counts (baseline_valid_nights and warm-up follow the sleep source).
_STATISTIC_SOURCE = {"baseline_valid_nights": "sleep_source"} | {
    name: src for _, src, med, mad in BASELINE_COLUMNS for name in (med, mad) if name}

ROLLING_COLUMNS = ("var_nights", "tst_sd_raw", "bed_sd_raw", "sri_pairs", "sri_agreement", "free_nights",
                   "work_nights", "mid_free_med", "mid_work_med", "waso_long_nights_7n", "onset_long_nights_7n",
                   "bedtime_ewma_min", "midsleep_ewma_min")
_COUNT_COLUMNS = {"var_nights", "sri_pairs", "free_nights", "work_nights", "waso_long_nights_7n",
                  "onset_long_nights_7n", "hrv_nights", "baseline_valid_nights", "short_sleep_run_nights"}
_BOOL_COLUMNS = {"travel_context", "usable", "baseline_excluded"}


def _floats(table, name: str) -> np.ndarray:
    """An Arrow column as float64 with NaN for NULL."""
    import pyarrow.compute as pc

    return pc.fill_null(table.column(name).cast("double"), np.nan).to_numpy()


def _bools(table, name: str, null: bool = False) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.fill_null(table.column(name), null).to_numpy(zero_copy_only=False)


def _codes(table, names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The named string columns as integer codes over one shared dictionary (-1 for NULL)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    joined = pa.chunked_array([table.column(c).combine_chunks() for c in names]) if n else None
    if joined is None:
        return tuple(np.empty(0, np.int64) for _ in names)
    encoded = pc.dictionary_encode(joined).combine_chunks()
    codes = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
    return tuple(codes[k * n:(k + 1) * n] for k in range(len(names)))


def _starts(*keys: np.ndarray) -> np.ndarray:
    """Where a run of equal keys begins (the rows are sorted by them)."""
    n = len(keys[0])
    starts = np.ones(n, dtype=np.bool_)
    if n > 1:
        starts[1:] = np.zeros(n - 1, dtype=np.bool_)
        for k in keys:
            starts[1:] |= k[1:] != k[:-1]
    return starts


def _last_device(group_start: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each row's source code or, where it has none (-1), the last earlier one in its group (-1 before any)."""
    rows = np.arange(len(source))
    last_with_source = np.maximum.accumulate(np.where(source >= 0, rows, -1))
    group_first = np.maximum.accumulate(np.where(group_start, rows, 0))
    return np.where(last_with_source >= group_first, source[np.maximum(last_with_source, 0)], -1)


def _state_bytes(table) -> tuple[np.ndarray, np.ndarray]:
    """The 1,440-minute sleep states as a (rows x 180) byte matrix, and which rows have one (read from the
    Arrow buffers: a Python object per row costs more than the whole kernel)."""
    import pyarrow.compute as pc

    column = table.column("sleep_state_bytes").combine_chunks()
    has = pc.fill_null(pc.equal(pc.binary_length(column), 180), False).to_numpy(zero_copy_only=False)
    state = np.zeros((len(column), 180), dtype=np.uint8)
    if has.any():
        offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset:column.offset + len(column) + 1]
        data = np.frombuffer(column.buffers()[2], dtype=np.uint8)
        lengths = np.diff(offsets)
        if np.all((lengths == 0) | (lengths == 180)):
            # the states lie back to back in row order (a NULL takes no bytes)
            state[has] = data[offsets[0]:offsets[-1]].reshape(-1, 180)
        else:  # a state of another length (never written by nightly_features.sql) does not count
            for r in np.flatnonzero(has):
                state[r] = data[offsets[r]:offsets[r] + 180]
    return state, has


def signal_windows(cur, sql: str, sql_params: dict[str, object], params: dict[str, object],
                   read: list[int] | None = None) -> dict[str, object]:
    """Read the nights for the targets and compute their windows; returns {"night_windows": Arrow table}, a row
    per target night: its context (travel, short-sleep run), rolling windows, HRV week and baseline. `sql_params`:
    the SQL's own parameters; `params`: every threshold. The number of nights read is appended to `read`."""
    import pyarrow as pa

    t = cur.sql(sql, params=sql_params).to_arrow_table()
    n = t.num_rows
    if read is not None:
        read.append(n)
    person = _codes(t, ("person_id",))[0]
    day = t.column("day_number").to_numpy().astype(np.int64)
    target = _bools(t, "is_target")
    valid = _bools(t, "valid_night")
    tst = _floats(t, "tst_min")
    short = valid & (tst < float(params["short_sleep_min"]))
    state, has_state = _state_bytes(t)
    starts = _starts(person)
    travel, pair, run_start = context(starts, day, _bools(t, "travel_tonight"), short, state, has_state,
                                      int(params["jet_lag_nights"]), _POPCOUNT)

    # a run that was going before the first target began where the stored run of the night before says
    first_target = t.column("first_target_day").to_numpy().astype(np.int64)
    before = t.column("run_before_targets").to_numpy().astype(np.int64)
    carried = (run_start < first_target) & (before > 0)
    run_start = np.where(carried, first_target - before, run_start)
    short_run = np.where(short, day - run_start + 1, 0)

    # what each window reads (NaN: does not count)
    day_sleep_known = ~np.asarray(t.column("day_sleep").is_null().to_numpy(zero_copy_only=False))
    day_sleep = _bools(t, "day_sleep")
    usable = valid & ~travel
    excluded = travel | _bools(t, "tag_illness") | _bools(t, "tag_travel") | _bools(t, "tag_on_call")
    in_baseline = valid & ~excluded
    bed, mid = _floats(t, "bedtime_min"), _floats(t, "midsleep_min")
    night_sleep = valid & day_sleep_known & ~day_sleep
    free = _bools(t, "free_day")
    long_min = float(params["continuity_long_min"])
    sleep_src, rhr_src, hrv_src, br_src, spo2_src = _codes(t, SOURCE_COLUMNS)
    # results are kept for the target rows only: slot[r] is target row r's place among them
    targets = np.flatnonzero(target)
    slot = np.full(n, -1, dtype=np.int64)
    slot[targets] = np.arange(len(targets))

    # The rolling windows hold one device's nights, like the baselines: sleep time, timing and regularity are
    # measured by each device's own algorithm (a ring's night is not a watch's), so after a switch the spread, the
    # regularity and the drift start afresh rather than read the change of device as a change of sleep.
    # A night with no sleep follows the device of the person's last night with some.
    device = _last_device(starts, sleep_src)
    # the rolling windows reach 27 days back from a target (ewma_span_days - 1 at most): only those rows
    reach = max(27, int(params["ewma_span_days"]) - 1)
    near = np.flatnonzero(day >= first_target - reach)
    near = near[np.lexsort((day[near], device[near], person[near]))]
    # an SRI pair compares a night with the one before it: with two devices it compares their algorithms
    same_device_pair = np.where(np.r_[False, (person[1:] == person[:-1]) & (day[1:] == day[:-1] + 1)]
                                & (device != np.r_[-1, device[:-1]]), np.nan, pair)
    rolling_out = np.full((len(targets), len(ROLLING_COLUMNS)), np.nan)
    rolling_out[slot[near[target[near]]]] = rolling(
        _starts(person[near], device[near]), day[near], np.where(valid, tst, np.nan)[near],
        np.where(valid, bed, np.nan)[near], same_device_pair[near],
        np.where(night_sleep & free, mid, np.nan)[near], np.where(night_sleep & ~free, mid, np.nan)[near],
        (valid & (_floats(t, "waso_min") >= long_min)).astype(np.int64)[near],
        (valid & (_floats(t, "onset_latency_min") >= long_min)).astype(np.int64)[near],
        valid[near], bed[near], mid[near], target[near], float(params["ewma_lambda"]),
        int(params["ewma_span_days"]))

    # the HRV week: one kind of sleep from one device, like the baseline it meets (6 days back from a target)
    hrv_key = np.where(hrv_src >= 0, hrv_src, sleep_src)
    kind = np.where(day_sleep_known, day_sleep.astype(np.int64), 2)
    week = np.flatnonzero(day >= first_target - 6)
    order = week[np.lexsort((day[week], hrv_key[week], kind[week], person[week]))]
    hrv_out = np.full((len(targets), 3), np.nan)
    hrv_out[slot[order[target[order]]]] = hrv_week(
        _starts(person[order], kind[order], hrv_key[order]), day[order],
        np.where(usable, _floats(t, "rmssd_ms"), np.nan)[order],
        np.where(usable, _floats(t, "ln_rmssd"), np.nan)[order], target[order])

    # baselines: one input row per night and device it holds values from (nights with no kind of sleep, no
    # main sleep, are in no baseline and their own is empty), in order of person, kind, device and night
    source_of = dict(zip(SOURCE_COLUMNS, (sleep_src, rhr_src, hrv_src, br_src, spo2_src)))
    rows, devices = [], []
    for k, name in enumerate(SOURCE_COLUMNS):
        code = source_of[name]
        keep = day_sleep_known & (code >= 0)
        for earlier in SOURCE_COLUMNS[:k]:
            keep &= code != source_of[earlier]
        rows.append(np.flatnonzero(keep))
        devices.append(code[keep])
    row, device = np.concatenate(rows), np.concatenate(devices)
    order = np.lexsort((day[row], device, kind[row], person[row]))
    row, device = row[order], device[order]
    values = np.column_stack([
        np.where(in_baseline[row] & (source_of[src][row] == device), _floats(t, col)[row], np.nan)
        for col, src, _, _ in BASELINE_COLUMNS]) if len(row) else np.empty((0, len(BASELINE_COLUMNS)))
    count, med, mad = baselines(_starts(person[row], kind[row], device), day[row], np.ascontiguousarray(values),
                                np.array([m is not None for *_, m in BASELINE_COLUMNS]), target[row],
                                int(params["baseline_end_days"]), int(params["baseline_span_days"]))
    computed = {"baseline_valid_nights": count.astype(np.float64)}
    for k, (_, _, med_name, mad_name) in enumerate(BASELINE_COLUMNS):
        computed[med_name] = med[:, k]
        if mad_name:
            computed[mad_name] = mad[:, k]
    # each target night's statistic from the input row of (that night, the device it follows): the kernel gave
    # one result per target input row, in order; find each by its (night row, device) key
    n_devices = int(max(device.max(initial=-1), sleep_src.max(initial=-1))) + 2
    wanted_rows = target[row]
    keys = row[wanted_rows] * n_devices + device[wanted_rows]
    by_key = np.argsort(keys)
    sorted_keys = keys[by_key]
    nights = np.flatnonzero(target & day_sleep_known)
    stats = {name: np.full(len(targets), np.nan) for name in _STATISTIC_SOURCE}
    for name, src in _STATISTIC_SOURCE.items():
        wanted_device = np.where(source_of[src] >= 0, source_of[src], sleep_src)[nights]
        lookup = nights * n_devices + wanted_device
        pos = np.minimum(np.searchsorted(sorted_keys, lookup), max(len(sorted_keys) - 1, 0))
        found = (wanted_device >= 0) & (sorted_keys[pos] == lookup) if len(sorted_keys) else \
            np.zeros(len(nights), dtype=np.bool_)
        stats[name][slot[nights[found]]] = computed[name][by_key[pos[found]]]
    stats["baseline_valid_nights"] = np.nan_to_num(stats["baseline_valid_nights"], nan=0.0)

    columns = {"travel_context": travel[targets], "usable": usable[targets], "baseline_excluded": excluded[targets],
               "short_sleep_run_nights": short_run[targets].astype(np.float64)}
    columns |= {name: rolling_out[:, k] for k, name in enumerate(ROLLING_COLUMNS)}
    columns |= {"hrv_nights": hrv_out[:, 0], "lnrmssd_7n_raw": hrv_out[:, 1], "rmssd_cv_raw": hrv_out[:, 2]}
    columns |= stats
    out = t.select(["person_id", "night_date"]).filter(pa.array(target))
    for name, v in columns.items():
        if name in _BOOL_COLUMNS:
            out = out.append_column(name, pa.array(v.astype(np.bool_)))
        elif name in _COUNT_COLUMNS:
            out = out.append_column(name, pa.array(v.astype(np.int64)))
        else:
            out = out.append_column(name, pa.array(v, mask=np.isnan(v)))
    return {"night_windows": out}
