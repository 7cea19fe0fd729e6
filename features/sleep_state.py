"""The feature step's sleep detail from stage segments, computed by a compiled kernel (numba): per sleep log, the
continuity features (WASO, awakenings, onset latency) and the 1,440-minute noon-to-noon sleep state (SRI input).

Why not SQL: every night's sleep state needs its logs' segments in time order, cut into asleep runs and OR-ed into
a 1,440-bit mask. In DuckDB that took a list aggregation of every log's segments, a second join of all segments on
the three strings that name a log, and a join and bit_or per run: ~75 % of the feature SQL's time
(1k people x 365 nights: ~9 of ~12.6 operator seconds). Here the segments are read once, with an integer log key,
grouped by a counting sort, and each night is a few passes over its ~30 segments.

Values equal the SQL's, bit for bit: times are integer microseconds, and the minute offsets and onset latency
repeat DuckDB's epoch(interval) rounding (`_epoch_s`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from features.kernels import decorators

njit, _ = decorators()  # numba's, or the function left as it is (features/kernels.py)
NAN = np.nan
# stage_kind in sleep_log_segments.sql
ASLEEP, AWAKE, RESTLESS = 0, 1, 2
# an awakening is a wake segment of at least 5 minutes inside the sleep period
AWAKENING_MIN_S = 300
STATE_MINUTES = 1440
STATE_BYTES = STATE_MINUTES // 8
DAY_US = 86_400_000_000
MINUTE_S = 60.0


@njit(cache=True, inline="always")
def _epoch_s(span_us):
    """Seconds in a span of microseconds, rounded as DuckDB's epoch(timestamp - timestamp): the span is whole days
    and a remainder (truncated toward zero), each converted on its own and then added."""
    days = span_us // DAY_US if span_us >= 0 else -((-span_us) // DAY_US)
    return float(days * 86_400) + float(span_us - days * DAY_US) / 1e6


@njit(cache=True, inline="always")
def _set_minutes(state, row, first_min, end_min):
    """Set minutes [first_min, end_min) of state[row]. Minute m is bit 7 - m % 8 of byte m // 8 (most significant
    first: the order of DuckDB's BLOB -> BIT cast, so the first minute is the BIT string's first character)."""
    m = first_min
    while m < end_min and m & 7:
        state[row, m >> 3] |= 0x80 >> (m & 7)
        m += 1
    while m + 8 <= end_min:
        state[row, m >> 3] = 0xFF
        m += 8
    while m < end_min:
        state[row, m >> 3] |= 0x80 >> (m & 7)
        m += 1


@njit(cache=True, inline="always")
def _end_us(seg_start_us, seg_duration_s, i):
    return seg_start_us[i] + np.int64(seg_duration_s[i]) * 1_000_000


@njit(cache=True)
def _mark_runs(state, row, window_start_us, segments, seg_start_us, seg_duration_s, seg_kind):
    """OR into state[row] the asleep runs of one log, whose segments in time order are `segments`. A run is a
    stretch of consecutive segments that are neither awake nor restless; it covers [its first start, its latest
    end), and a minute of the window touched by it counts as asleep."""
    k = 0
    while k < len(segments):
        i = segments[k]
        k += 1
        if seg_kind[i] != ASLEEP:
            continue
        run_start = seg_start_us[i]
        run_end = _end_us(seg_start_us, seg_duration_s, i)
        while k < len(segments) and seg_kind[segments[k]] == ASLEEP:
            run_end = max(run_end, _end_us(seg_start_us, seg_duration_s, segments[k]))
            k += 1
        first_min = max(0.0, np.floor(_epoch_s(run_start - window_start_us) / MINUTE_S))
        end_min = min(float(STATE_MINUTES), np.ceil(_epoch_s(run_end - window_start_us) / MINUTE_S))
        if end_min > first_min:
            _set_minutes(state, row, int(first_min), int(end_min))


@njit(cache=True)
def _segments_by_log(n_logs, seg_log, seg_start_us):
    """The order that groups the segments by log (a counting sort), each log's in time order: log k's segments
    are order[first[k]:first[k + 1]]. A log's segments arrive in time order as a rule (they are stored as the
    source lists them), so a log is sorted only when a pass finds it out of order."""
    first = np.zeros(n_logs + 1, np.int64)
    for k in seg_log:
        first[k + 1] += 1
    for k in range(n_logs):
        first[k + 1] += first[k]
    fill = first[:-1].copy()
    order = np.empty(len(seg_log), np.int32)  # a chunk holds far fewer than 2**31 segments (sleep_log_detail)
    for i in range(len(seg_log)):
        order[fill[seg_log[i]]] = i
        fill[seg_log[i]] += 1
    for k in range(n_logs):
        segments = order[first[k]:first[k + 1]]
        for a in range(1, len(segments)):
            if seg_start_us[segments[a]] < seg_start_us[segments[a - 1]]:
                segments[:] = segments[np.argsort(seg_start_us[segments])]
                break
    return first, order


@njit(cache=True, inline="always")
def _continuity(segments, log_start_us, seg_start_us, seg_duration_s, seg_kind):
    """WASO (minutes), awakenings and onset latency (minutes; NaN without an asleep segment) of one log, whose
    segments are `segments`. The sleep period runs from the first asleep segment's start to the latest asleep
    end; wake segments starting inside it are WASO, and those of 5 minutes or more awakenings."""
    asleep = False
    sleep_from = sleep_to = 0
    for i in segments:
        if seg_kind[i] == ASLEEP:
            end_us = _end_us(seg_start_us, seg_duration_s, i)
            sleep_from = seg_start_us[i] if not asleep else min(sleep_from, seg_start_us[i])
            sleep_to = end_us if not asleep else max(sleep_to, end_us)
            asleep = True
    if not asleep:  # no sleep period, so no wake inside one
        return 0.0, 0, NAN
    awake_s = 0
    awakenings = 0
    for i in segments:
        if seg_kind[i] == AWAKE and sleep_from <= seg_start_us[i] < sleep_to:
            awake_s += seg_duration_s[i]
            if seg_duration_s[i] >= AWAKENING_MIN_S:
                awakenings += 1
    return awake_s / MINUTE_S, awakenings, _epoch_s(sleep_from - log_start_us) / MINUTE_S


@njit(cache=True, inline="always")
def _window_logs(device_start, day, k):
    """The logs [a, b) whose asleep runs log k's sleep-state window holds: its device's logs of its night and of
    the night before, which are its neighbours in the sort by device and night."""
    a = k
    while a > 0 and not device_start[a] and day[a - 1] >= day[k] - 1:
        a -= 1
    b = k + 1
    while b < len(day) and not device_start[b] and day[b] == day[k]:
        b += 1
    return a, b


@njit(cache=True)
def sleep_detail(device_start, day, start_us, state_window_start_us, opens_state_window, wanted,
                 seg_log, seg_start_us, seg_duration_s, seg_kind):
    """Per wanted log, in order: WASO (minutes), awakenings, onset latency (minutes) and the sleep state of the
    noon-to-noon window the log opens as its night's main sleep (rows x 180 bytes; has_state says which rows have
    one). Logs are sorted by device (person and source; device_start marks the first log of each) and night (`day`);
    segments name their log by its place in that order (seg_log).

    Continuity is NaN / -1 for a log without segments; onset latency NaN also for one without an asleep segment.
    A state counts the asleep runs of the device's logs of the night and of the night before."""
    n_logs = len(day)
    first, order = _segments_by_log(n_logs, seg_log, seg_start_us)
    n_out = np.count_nonzero(wanted)
    waso_min = np.full(n_out, NAN)
    awakenings = np.full(n_out, -1, np.int64)
    onset_latency_min = np.full(n_out, NAN)
    state = np.zeros((n_out, STATE_BYTES), np.uint8)
    has_state = np.zeros(n_out, np.bool_)
    row = -1
    for k in range(n_logs):
        if not wanted[k]:
            continue
        row += 1
        segments = order[first[k]:first[k + 1]]
        if len(segments):
            waso_min[row], awakenings[row], onset_latency_min[row] = _continuity(
                segments, start_us[k], seg_start_us, seg_duration_s, seg_kind)
        if opens_state_window[k]:
            has_state[row] = True
            a, b = _window_logs(device_start, day, k)
            for j in range(a, b):
                _mark_runs(state, row, state_window_start_us[k], order[first[j]:first[j + 1]], seg_start_us,
                           seg_duration_s, seg_kind)
    return waso_min, awakenings, onset_latency_min, state, has_state


def _device_starts(logs) -> np.ndarray:
    """Where a new (person, source) begins among logs sorted by them."""
    import pyarrow.compute as pc

    n = logs.num_rows
    starts = np.zeros(n, dtype=np.bool_)
    starts[:1] = True
    if n > 1:
        for name in ("person_id", "source"):
            column = logs.column(name)
            starts[1:] |= pc.not_equal(column.slice(1), column.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    return starts


def _numbers(table, name: str, dtype) -> np.ndarray:
    return table.column(name).to_numpy().astype(dtype, copy=False)


def _segment_arrays(segments) -> tuple[np.ndarray, ...]:
    """The kernel's segment inputs, as numpy arrays (the Arrow table can then be freed before the kernel runs:
    a chunk of 200,000 nights reads ~6 M segments)."""
    return (_numbers(segments, "log_key", np.int32), _numbers(segments, "start_us", np.int64),
            _numbers(segments, "duration_s", np.int32), _numbers(segments, "stage_kind", np.uint8))


def sleep_log_detail(cur, query: Callable[[str], object]) -> object:
    """The continuity and sleep state of every log on a target night, as an Arrow table keyed by the log's
    (person_id, source, source_session_id); nightly_features.sql takes the main sleep's. `query(name)` runs
    features/sql/<name>.sql on `cur` and returns an Arrow table; sleep_log_segments.sql reads the logs
    (sleep_logs.sql) registered under that name."""
    import pyarrow as pa

    logs = query("sleep_logs")
    log_key = pa.array(np.arange(logs.num_rows, dtype=np.int32))  # a log's place in the order of sleep_logs.sql
    cur.register("sleep_logs", logs.select(["person_id", "source", "source_session_id"]).append_column(
        "log_key", log_key))
    try:
        segments = _segment_arrays(query("sleep_log_segments"))
    finally:
        cur.unregister("sleep_logs")
    wanted = _numbers(logs, "on_target_night", np.bool_)
    waso_min, awakenings, onset_latency_min, state, has_state = sleep_detail(
        _device_starts(logs), _numbers(logs, "day_number", np.int64), _numbers(logs, "start_us", np.int64),
        _numbers(logs, "state_window_start_us", np.int64), _numbers(logs, "opens_state_window", np.bool_), wanted,
        *segments)
    del segments
    return _detail_table(logs.filter(pa.array(wanted)).select(["person_id", "source", "source_session_id"]),
                         waso_min, awakenings, onset_latency_min, state, has_state)


def _detail_table(keys, waso_min, awakenings, onset_latency_min, state, has_state):
    """The kernel's results beside the logs' keys, as an Arrow table (NaN and -1 become NULL)."""
    import pyarrow as pa

    # 180 bytes a row, back to back; NULL (an Arrow validity bit of 0) where the log opens no window
    state_column = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(STATE_BYTES), len(has_state),
        [pa.py_buffer(np.packbits(has_state, bitorder="little")), pa.py_buffer(state)])
    return keys.append_column("waso_min", pa.array(waso_min, from_pandas=True)) \
        .append_column("awakenings_count", pa.array(awakenings, mask=awakenings < 0)) \
        .append_column("onset_latency_min", pa.array(onset_latency_min, from_pandas=True)) \
        .append_column("sleep_state_bytes", state_column)
