"""A pandas reference for the feature engine's whole output, written for the benchmark: every column the engine
writes to `nightly_features` and `night_signals`, computed from the definitions in features/sql/ (not read from
DuckDB), then checked equal to DuckDB's tables column by column, so that "DuckDB is N x faster than pandas"
compares the same work.

Written as a pandas user would: read the normalized tables, then groupby, rolling windows over each person's
calendar and vectorised numpy; no Python loop over people, nights or segments (the loops below run over window
lengths, kinds of sleep, columns or chunks of rows).

Scope (the situations the benchmark data contain; anything else raises NotImplementedError rather than
computing something else):
  * one device per person (one `source` across all the person's data): the engine's `chosen` source is then that
    one for every data type and night, and every per-source baseline is the person's only one;
  * no rows in `source_choices` (no person's own choice of device) and none in `sleep_calibration` (so
    z_sleep_person = z_sleep);
  * a full rebuild: every night of every person is a target, no stored night_signals before a person's first
    night are read (`stored_before` is empty).
Within that, the general rules are implemented: several logs a night (the main sleep by rank, naps), logs without
segments, time-zone offsets and travel (away from home), tags (illness, travel, on-call, night shift, day off and
rosters), daytime sleep with its own baselines, vitals and activity, and missing nights (windows run over each
person's calendar). The benchmark data exercise only part of it (one main sleep a night, UTC, no tags, no vitals
or activity: those columns are NULL, false or constant there, by rule).

Memory: 1k people x 365 nights are ~11 M stage segments. They are read in Arrow batches and kept as four numeric
arrays (log number, start, duration, stage kind: ~17 bytes a segment) instead of a DataFrame with string ids;
the 1,440-minute sleep states are packed 8 minutes to a byte (180 bytes a night).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.catalog import FEATURES, TABLE_COLUMNS
from features.thresholds import Thresholds

KEYS = ("person_id", "night_date")
US_PER_S = 1_000_000
US_PER_DAY = 86_400 * US_PER_S
I64_MAX, I64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min
SLEEP, WAKE, RESTLESS = 0, 1, 2  # stage kinds: asleep (any stage), wake/awake, restless
MINUTES = 1440  # the SRI window: noon to noon
DAY_BITS = 21  # a (person, day) key is person << DAY_BITS | day offset
BATCH_ROWS = 1 << 20
CHUNK = 1 << 13  # nights at a time where each night holds an array (1,440 minutes, a 60-day window)


@dataclass
class Reference:
    """Both tables as pandas computes them, rows in (person_id, night_date) order. `sleep_state_bits` is not a
    DataFrame column: it is `state_bits` (one row of 180 bytes a night, minute 0 in the top bit of byte 0, as
    DuckDB stores a BIT) where `state_valid`, NULL elsewhere."""

    features: pd.DataFrame
    state_bits: np.ndarray
    state_valid: np.ndarray
    signals: pd.DataFrame


# --- reading -------------------------------------------------------------------------------------------------


def _day(values) -> np.ndarray:
    return np.asarray(values, dtype="datetime64[D]").astype(np.int64)


def _read_inputs(store) -> dict[str, pd.DataFrame]:
    q = store.query_df
    unsupported = {t: q(f"SELECT count(*) AS n FROM {t}")["n"].iloc[0]
                   for t in ("source_choices", "sleep_calibration")}
    if any(unsupported.values()):
        raise NotImplementedError(f"pandas reference: rows in {unsupported}; it covers the benchmark's situation "
                                  "(no device choices, no calibrated thresholds)")
    frames = {
        "sessions": q("SELECT person_id, source, source_session_id, night_date, start_utc, end_utc, tz_name, "
                      "start_utc_offset_min, end_utc_offset_min, is_main_sleep, log_type, minutes_asleep, "
                      "minutes_awake, minutes_to_fall_asleep, time_in_bed_min FROM sleep_sessions"),
        "rhr": q("SELECT person_id, source, day AS night_date, resting_hr_bpm FROM daily_resting_hr"),
        "hrv": q("SELECT person_id, source, night_date, rmssd_ms, sdnn_ms FROM nightly_hrv"),
        "vitals": q("SELECT person_id, source, night_date, breathing_rate_brpm, skin_temp_deviation_c, "
                    "spo2_avg_pct FROM nightly_vitals"),
        "activity": q("SELECT person_id, source, day AS night_date, steps, sedentary_min, moderately_active_min, "
                      "very_active_min FROM daily_activity"),
        "tags": q("SELECT person_id, tag, first_night, last_night FROM tags"),
        "persons": q("SELECT person_id, tz_name FROM persons"),
    }
    owners = pd.concat([frames[t][["person_id", "source"]].drop_duplicates()
                        for t in ("sessions", "rhr", "hrv", "vitals", "activity")]).drop_duplicates()
    several = owners["person_id"].duplicated()
    if several.any():
        first = owners.loc[several, "person_id"].iloc[0]
        raise NotImplementedError(f"pandas reference: people with several devices ({first}, ...); it covers one "
                                  "device a person")
    return frames


def _read_segments(store, session_keys: pd.Index) -> tuple[np.ndarray, ...]:
    """(log, start_us, duration_s, kind) of every segment of a known log, sorted by log then start. `log` is the
    row of the log in `session_keys` (person, source and log id joined), read batch by batch so the string ids
    never become 11 M Python objects."""
    n = int(store.query_df("SELECT count(*) AS n FROM sleep_segments")["n"].iloc[0])
    log = np.empty(n, np.int32)
    start = np.empty(n, np.int64)
    dur = np.empty(n, np.int32)
    kind = np.empty(n, np.int8)
    at = 0
    with store.cursor() as cur:
        reader = cur.sql("SELECT person_id, source, source_session_id, seg_start_utc, duration_s, stage "
                         "FROM sleep_segments").to_arrow_reader(BATCH_ROWS)
        for b in reader:
            k = b.num_rows
            key = pc.dictionary_encode(pc.binary_join_element_wise(
                b.column("person_id"), b.column("source"), b.column("source_session_id"), "\x1f"))
            log[at:at + k] = session_keys.get_indexer(key.dictionary.to_pandas())[key.indices.to_numpy()]
            stage = pc.dictionary_encode(b.column("stage"))
            words = stage.dictionary.to_pandas()
            kind_of = np.where(words.isin(["wake", "awake"]), WAKE, np.where(words == "restless", RESTLESS, SLEEP))
            kind[at:at + k] = kind_of[stage.indices.to_numpy()]
            start[at:at + k] = b.column("seg_start_utc").cast(pa.int64()).to_numpy()
            dur[at:at + k] = b.column("duration_s").to_numpy()
            at += k
    order = np.lexsort((start[:at], log[:at]))
    # a segment without its log is never read by the SQL (it joins the logs); sorted by log, those (-1) come first
    order = order[int((log[:at] < 0).sum()):]
    log = log[order]  # one array at a time: the unsorted one is freed before the next is copied
    start = start[order]
    dur = dur[order]
    kind = kind[order]
    return log, start, dur, kind


def _segment_summaries(log, start, dur, kind) -> tuple[pd.DataFrame, tuple[np.ndarray, ...]]:
    """From segments sorted by log then start: each log's continuity (WASO seconds, awakenings of >= 5 min,
    first asleep start; indexed by log), and its asleep runs (log, start, end): consecutive asleep segments in
    time order, which restless and wake segments break."""
    if not len(log):
        empty = np.zeros(0, np.int64)
        return pd.DataFrame({"waso_s": empty, "awakenings": empty, "first_sleep": empty.astype(float)}), \
            (empty, empty, empty)
    asleep = kind == SLEEP
    end = start + dur.astype(np.int64) * US_PER_S
    bounds = np.flatnonzero(np.r_[True, log[1:] != log[:-1]])
    per_log = np.diff(np.r_[bounds, len(log)])
    first_sleep = np.minimum.reduceat(np.where(asleep, start, I64_MAX), bounds)
    last_sleep_end = np.maximum.reduceat(np.where(asleep, end, I64_MIN), bounds)
    # wake inside the sleep bounds (a log without asleep segments has none: its bounds are +inf..-inf)
    inside = (kind == WAKE) & (start >= np.repeat(first_sleep, per_log))
    inside &= start < np.repeat(last_sleep_end, per_log)
    cont = pd.DataFrame({
        "waso_s": np.add.reduceat(np.where(inside, dur, 0).astype(np.int64), bounds),
        "awakenings": np.add.reduceat((inside & (dur >= 300)).astype(np.int32), bounds),
        "first_sleep": np.where(first_sleep == I64_MAX, np.nan, first_sleep.astype(float)),
    }, index=log[bounds])
    del inside
    run_first = np.flatnonzero(asleep & ~np.r_[False, asleep[:-1] & (log[1:] == log[:-1])])
    run_end = np.maximum.reduceat(np.where(asleep, end, I64_MIN), run_first) if len(run_first) else run_first
    return cont, (log[run_first], start[run_first], run_end)


def _sleep_states(n: int, window_row: np.ndarray, window_start: np.ndarray, window_keys: pd.Index,
                  run_key: np.ndarray, run_start: np.ndarray, run_end: np.ndarray) -> np.ndarray:
    """Packed 1,440-minute states of the windows (rows `window_row` of n nights, starting at `window_start`, UTC
    microseconds): a minute touched by an asleep run of a log of the window's night or of the night before is
    asleep. `window_keys` / `run_key`: the (device, person, night) of each window and each run's log."""
    parts = []
    for back in (0, 1):
        w = window_keys.get_indexer(run_key + back)  # the run's log's night is the window's night - back
        hit = w >= 0
        ws = window_start[w[hit]]
        s_min = np.maximum(0, np.floor((run_start[hit] - ws) / US_PER_S / 60))
        e_min = np.minimum(MINUTES, np.ceil((run_end[hit] - ws) / US_PER_S / 60))
        keep = e_min > s_min
        parts.append((window_row[w[hit][keep]], s_min[keep].astype(np.int64), e_min[keep].astype(np.int64)))
    rows = np.concatenate([p[0] for p in parts])
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    s_all = np.concatenate([p[1] for p in parts])[order]
    e_all = np.concatenate([p[2] for p in parts])[order]
    bits = np.zeros((n, MINUTES // 8), np.uint8)
    for lo in range(0, n, CHUNK):  # a +1/-1 per stretch, a running sum per minute; in chunks of nights
        a, b = np.searchsorted(rows, [lo, lo + CHUNK])
        delta = np.zeros((min(CHUNK, n - lo), MINUTES + 1), np.int16)
        np.add.at(delta, (rows[a:b] - lo, s_all[a:b]), 1)
        np.add.at(delta, (rows[a:b] - lo, e_all[a:b]), -1)
        bits[lo:lo + len(delta)] = np.packbits(np.cumsum(delta[:, :MINUTES], axis=1, dtype=np.int16) > 0, axis=1)
    return bits


# --- nightly_features ----------------------------------------------------------------------------------------


def nightly_features_pandas(store, th: Thresholds = Thresholds()) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """nightly_features (without sleep_state_bits), the packed sleep states and where they are not NULL."""
    f = _read_inputs(store)
    sessions = f["sessions"]
    people = pd.Index(sorted(set().union(*(f[t]["person_id"].unique()
                                          for t in ("sessions", "rhr", "hrv", "vitals", "activity")))))
    sources = pd.Index(sorted(set().union(*(f[t]["source"].unique()
                                           for t in ("sessions", "rhr", "hrv", "vitals", "activity")))))
    day0 = min((_day(f[t]["night_date"]).min() for t in ("sessions", "rhr", "hrv", "vitals", "activity")
                if len(f[t])), default=0) - 1

    def keys_of(frame: pd.DataFrame) -> np.ndarray:
        return ((people.get_indexer(frame["person_id"]).astype(np.int64) << DAY_BITS)
                | (_day(frame["night_date"]) - day0))

    # every night with any data: the union of the inputs' (person, date); rows in (person, night) order
    has_vital = f["vitals"][["breathing_rate_brpm", "skin_temp_deviation_c", "spo2_avg_pct"]].notna().any(axis=1)
    night_keys = np.unique(np.concatenate([keys_of(sessions), keys_of(f["rhr"]), keys_of(f["hrv"]),
                                           keys_of(f["vitals"][has_vital]), keys_of(f["activity"])]))
    n = len(night_keys)
    pcode = (night_keys >> DAY_BITS).astype(np.int32)
    day = (night_keys & ((1 << DAY_BITS) - 1)) + day0
    night_us = day * US_PER_DAY

    def rows_of(frame: pd.DataFrame) -> np.ndarray:
        return np.searchsorted(night_keys, keys_of(frame))

    # the main sleep: per night the first log by (main flag, time in bed, log id); a log not marked main stands
    # in only if it is long enough to be one; every other log of the night is a nap
    sessions["row"] = rows_of(sessions)
    ranked = sessions.sort_values(["row", "is_main_sleep", "time_in_bed_min", "source_session_id"],
                                  ascending=[True, False, False, True])
    first_in_night = ~ranked["row"].duplicated()
    is_main = (first_in_night & (ranked["is_main_sleep"] | (ranked["time_in_bed_min"] >= th.min_main_sleep_min))
               ).reindex(sessions.index).to_numpy()
    naps = sessions.loc[~is_main].groupby("row")["minutes_asleep"].sum()

    session_keys = pd.Index(sessions["person_id"] + "\x1f" + sessions["source"] + "\x1f"
                            + sessions["source_session_id"])
    cont, (run_log, run_start, run_end) = _segment_summaries(*_read_segments(store, session_keys))

    main = sessions.loc[is_main].copy()
    main = main.join(cont, how="left")
    main_row = main["row"].to_numpy()

    out = pd.DataFrame({"person_id": pd.Categorical.from_codes(pcode, categories=people),
                        "night_date": night_us.astype("datetime64[us]")})
    present = np.zeros(n, bool)
    present[main_row] = True

    def put(values, rows, dtype=float, fill=np.nan):
        col = np.full(n, fill, dtype=dtype)
        col[rows] = values
        return col

    def source_col(frame: pd.DataFrame, rows: np.ndarray) -> pd.Categorical:
        codes = np.full(n, -1, np.int32)
        codes[rows] = sources.get_indexer(frame["source"])
        return pd.Categorical.from_codes(codes, categories=sources)

    out["sleep_source"] = source_col(main, main_row)
    out["log_type"] = pd.Categorical(put(main["log_type"].to_numpy(object), main_row, object, None))
    tst = put(main["minutes_asleep"].to_numpy(float), main_row)
    tib = put(main["time_in_bed_min"].to_numpy(float), main_row)
    out["tst_min"] = tst
    out["time_in_bed_min"] = tib
    with np.errstate(divide="ignore", invalid="ignore"):
        out["efficiency_pct"] = np.where(tib == 0, np.nan, 100.0 * tst / tib)
    has_segments = main["waso_s"].notna().to_numpy()
    # a log without segments has only the source's own totals
    out["waso_min"] = put(np.where(has_segments, main["waso_s"].fillna(0).to_numpy(float) / 60.0,
                                   main["minutes_awake"].to_numpy(float)), main_row)
    start_us = main["start_utc"].to_numpy("datetime64[us]").astype(np.int64)
    onset = (main["first_sleep"].to_numpy(float) - start_us) / US_PER_S / 60.0
    onset = np.where(np.isnan(onset), main["minutes_to_fall_asleep"].to_numpy(float), onset)
    out["onset_latency_min"] = put(onset, main_row)
    out["awakenings_count"] = pd.array(put(main["awakenings"].to_numpy(float), main_row), dtype="Int32")
    local_start = start_us + main["start_utc_offset_min"].to_numpy(np.int64) * 60 * US_PER_S
    end_us = main["end_utc"].to_numpy("datetime64[us]").astype(np.int64)
    local_end = end_us + main["end_utc_offset_min"].to_numpy(np.int64) * 60 * US_PER_S
    bedtime = put((local_start - night_us[main_row]) / US_PER_S / 60.0, main_row)
    wake_min = put((local_end - night_us[main_row]) / US_PER_S / 60.0, main_row)
    midsleep = (bedtime + wake_min) / 2
    out["bedtime_min"] = bedtime
    out["wake_min"] = wake_min
    out["midsleep_min"] = midsleep
    out["midsleep_clock_min"] = np.fmod(midsleep + 1440, 1440)
    out["nap_min"] = put(naps.to_numpy(float), naps.index.to_numpy(), fill=0.0)

    rhr, rhr_row = f["rhr"], rows_of(f["rhr"])
    out["resting_hr_bpm"] = put(rhr["resting_hr_bpm"].to_numpy(float), rhr_row)
    hrv, hrv_row = f["hrv"], rows_of(f["hrv"])
    out["ln_rmssd"] = put(np.log(hrv["rmssd_ms"].to_numpy(float)), hrv_row)
    out["rmssd_ms"] = put(hrv["rmssd_ms"].to_numpy(float), hrv_row)
    out["ln_sdnn"] = put(np.log(hrv["sdnn_ms"].to_numpy(float)), hrv_row)
    out["sdnn_ms"] = put(hrv["sdnn_ms"].to_numpy(float), hrv_row)
    vitals = f["vitals"]
    vital_sources = {}
    for col, source_name in (("breathing_rate_brpm", "breathing_rate_source"),
                             ("skin_temp_deviation_c", "skin_temp_source"), ("spo2_avg_pct", "spo2_source")):
        measured = vitals[vitals[col].notna()]  # a vital's source counts only where it has a value
        rows = rows_of(measured)
        out[col] = put(measured[col].to_numpy(float), rows)
        vital_sources[source_name] = source_col(measured, rows)
    activity, act_row = f["activity"], rows_of(f["activity"])
    steps = put(activity["steps"].to_numpy(float, na_value=np.nan), act_row)
    sedentary = put(activity["sedentary_min"].to_numpy(float, na_value=np.nan), act_row)
    out["steps_count"] = pd.array(steps, dtype="Int32")
    out["active_min"] = put(activity["moderately_active_min"].fillna(0).to_numpy(float)
                            + activity["very_active_min"].fillna(0).to_numpy(float), act_row)
    out["sedentary_min"] = sedentary
    valid_activity = pd.array(np.full(n, pd.NA), dtype="boolean")
    with_steps = ~np.isnan(steps)
    valid_activity[with_steps] = ((steps[with_steps] >= th.min_valid_steps)
                                  & (np.nan_to_num(sedentary[with_steps]) < 1440))
    out["valid_activity_day"] = valid_activity

    # tags: each tag's nights first..last, on the nights that exist
    tags = f["tags"]
    spans = (_day(tags["last_night"]) - _day(tags["first_night"]) + 1).clip(min=0)
    tag_person = np.repeat(people.get_indexer(tags["person_id"]).astype(np.int64), spans)
    tag_day = np.repeat(_day(tags["first_night"]) - day0, spans) + _ramp(spans)
    tag_name = np.repeat(tags["tag"].to_numpy(object), spans)
    tag_key = (tag_person << DAY_BITS) | tag_day
    tag_key[(tag_person < 0) | (tag_day < 0)] = -1  # people or days without any night
    for tag in ("illness", "travel", "on-call", "night-shift", "day-off"):
        out[f"tag_{tag.replace('-', '_')}"] = np.isin(night_keys, tag_key[tag_name == tag])
    roster = np.isin(pcode, people.get_indexer(tags.loc[tags["tag"] == "day-off", "person_id"]))
    isodow = (day + 3) % 7 + 1  # 1970-01-01 was a Thursday
    out["free_day"] = np.where(roster, out["tag_day_off"], isodow >= 6)
    day_sleep = pd.array(np.full(n, pd.NA), dtype="boolean")
    centred = (midsleep >= th.day_sleep_from_min) & (midsleep <= th.day_sleep_to_min)
    day_sleep[present] = (out["tag_night_shift"].to_numpy() | centred)[present]
    out["day_sleep"] = day_sleep
    home = f["persons"].set_index("person_id")["tz_name"].reindex(main["person_id"]).to_numpy(object)
    away = np.zeros(n, bool)
    away[main_row] = pd.notna(home) & (main["tz_name"].to_numpy(object) != home)
    out["away_from_home"] = away
    out["valid_night"] = np.nan_to_num(tib) >= th.min_main_sleep_min
    out["resting_hr_source"] = source_col(rhr, rhr_row)
    out["hrv_source"] = source_col(hrv, hrv_row)
    for name in ("breathing_rate_source", "spo2_source", "skin_temp_source"):
        out[name] = vital_sources[name]
    out["steps_source"] = source_col(activity, act_row)

    # sleep state (SRI input): minutes of the night's noon-to-noon window touched by an asleep run of a log of
    # the night or of the night before (same device), for main sleeps of at least min_main_sleep_min
    windows = main[main["time_in_bed_min"] >= th.min_main_sleep_min]
    window_row = windows["row"].to_numpy()
    window_start = (night_us[window_row] - US_PER_DAY + 12 * 3600 * US_PER_S
                    - windows["end_utc_offset_min"].to_numpy(np.int64) * 60 * US_PER_S)
    source_code = sources.get_indexer(sessions["source"]).astype(np.int64)
    log_key = (source_code << 40) | keys_of(sessions)
    window_keys = pd.Index(log_key[windows.index.to_numpy()])
    state_bits = _sleep_states(n, window_row, window_start, window_keys, log_key[run_log], run_start, run_end)
    state_valid = np.zeros(n, bool)
    state_valid[window_row] = True
    columns = [c for c in TABLE_COLUMNS["nightly_features"] if c != "sleep_state_bits"]  # the catalog's order
    return out[columns], state_bits, state_valid


def _ramp(lengths: np.ndarray) -> np.ndarray:
    """0..k-1 for each length k, concatenated."""
    lengths = np.asarray(lengths, np.int64)
    total = int(lengths.sum())
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


# --- night_signals -------------------------------------------------------------------------------------------


class _Calendar:
    """Each person's nights laid on a calendar, one row a day, with `pad` empty days ahead of the first night:
    a window of N days is then N rows and never reaches into the previous person, and "the night before" is the
    row before."""

    def __init__(self, pcode: np.ndarray, day: np.ndarray, pad: int):
        starts = np.flatnonzero(np.r_[True, pcode[1:] != pcode[:-1]])
        first = day[starts]
        last = day[np.r_[starts[1:], len(day)] - 1]
        length = last - first + 1 + pad
        offset = np.cumsum(length) - length
        per_person = np.diff(np.r_[starts, len(day)])
        self.at = np.repeat(offset - first + pad, per_person) + day  # each row's place on the calendar
        self.size = int(length.sum())

    def lay(self, values, fill=np.nan) -> np.ndarray:
        g = np.full(self.size, fill, dtype=float)
        g[self.at] = np.asarray(values, dtype=float)
        return g

    def roll(self, values, days: int, how: str, back: int = 0) -> np.ndarray:
        """`how` of the values (NaN = none) in the `days` days ending `back` days before each night."""
        rolling = pd.Series(self.lay(values)).rolling(days, min_periods=0 if how == "count" else 1)
        return getattr(rolling, how)().to_numpy()[self.at - back]

    def median_and_mad(self, values, days: int, back: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Median (interpolated, as DuckDB's) and MAD (median of the absolute deviations from it) of the values
        (NaN = none) in the `days` days ending `back` days before each of the nights `rows`. pandas has no
        rolling MAD: each night's window is a row of a sliding-window view, sorted; in chunks of nights."""
        view = np.lib.stride_tricks.sliding_window_view(self.lay(values), days)
        first = self.at[rows] - back - days + 1
        med, mad = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
        for lo in range(0, len(rows), CHUNK):
            w = np.sort(view[first[lo:lo + CHUNK]], axis=1)  # NaN last
            m = _sorted_median(w)
            med[lo:lo + len(w)] = m
            mad[lo:lo + len(w)] = _sorted_median(np.sort(np.abs(w - m[:, None]), axis=1))
        return med, mad


def _sorted_median(w: np.ndarray) -> np.ndarray:
    k = (~np.isnan(w)).sum(axis=1)
    lo = np.take_along_axis(w, np.maximum(k - 1, 0)[:, None] // 2, axis=1)[:, 0]
    hi = np.take_along_axis(w, (k // 2)[:, None].clip(max=w.shape[1] - 1), axis=1)[:, 0]
    return np.where(k > 0, lo + (hi - lo) * 0.5, np.nan)


def _nullable(values: np.ndarray, known: np.ndarray, dtype: str) -> pd.arrays.BaseMaskedArray:
    arr = pd.array(np.where(known, values, 0).astype("int64" if dtype == "Int32" else bool), dtype=dtype)
    arr[~known] = pd.NA
    return arr


def night_signals_pandas(feats: pd.DataFrame, state_bits: np.ndarray, state_valid: np.ndarray,
                         th: Thresholds = Thresholds()) -> pd.DataFrame:
    """night_signals for every night of `feats` (a full rebuild), from the pandas nightly features."""
    floor = {name: feat.floor for name, feat in FEATURES.items()}
    pcode = feats["person_id"].cat.codes.to_numpy()
    day = feats["night_date"].to_numpy("datetime64[D]").astype(np.int64)
    n = len(feats)
    b_end, b_span = th.baseline_end_days, th.baseline_span_days
    cal = _Calendar(pcode, day, pad=max(b_end + b_span - 1, 27, th.ewma_span_days - 1, th.jet_lag_nights,
                                        th.illness_window_days))

    def col(name: str) -> np.ndarray:
        return feats[name].to_numpy(dtype=float, na_value=np.nan)

    def flag(name: str) -> np.ndarray:
        return feats[name].to_numpy(dtype=bool, na_value=False)

    valid = flag("valid_night")
    tst, eff, waso, onset, awak = col("tst_min"), col("efficiency_pct"), col("waso_min"), \
        col("onset_latency_min"), col("awakenings_count")
    rhr, ln_rmssd, rmssd, ln_sdnn = col("resting_hr_bpm"), col("ln_rmssd"), col("rmssd_ms"), col("ln_sdnn")
    br, spo2, skin = col("breathing_rate_brpm"), col("spo2_avg_pct"), col("skin_temp_deviation_c")
    bed, mid = col("bedtime_min"), col("midsleep_min")
    day_sleep = feats["day_sleep"].to_numpy(dtype=float, na_value=np.nan)  # 1.0, 0.0 or NaN (no main sleep)
    tag_illness, tag_travel, tag_on_call = flag("tag_illness"), flag("tag_travel"), flag("tag_on_call")
    nan = np.full(n, np.nan)

    # context: away or tagged travel in the last jet_lag_nights + 1 days
    travel = cal.roll((flag("away_from_home") | tag_travel).astype(float), th.jet_lag_nights + 1, "max") > 0
    usable = valid & ~travel
    excluded = travel | tag_illness | tag_travel | tag_on_call
    in_baseline = valid & ~excluded

    # SRI input: agreement of tonight's sleep state with the night before's, minute by minute
    before = np.r_[False, (pcode[1:] == pcode[:-1]) & (day[1:] == day[:-1] + 1)]
    paired = before & state_valid & np.r_[False, state_valid[:-1]]
    differ = np.bitwise_count(state_bits[1:] ^ state_bits[:-1]).sum(axis=1, dtype=np.int64)
    pair_agreement = np.where(paired, 1.0 - np.r_[0, differ] / 1440.0, np.nan)

    # rolling features over the last 7 / 14 / 28 days
    v_tst, v_bed = np.where(valid, tst, nan), np.where(valid, bed, nan)
    var_nights = cal.roll(v_tst, 14, "count")
    tst_sd = np.where(var_nights >= th.var_min_nights, cal.roll(v_tst, 14, "std"), np.nan)
    bed_sd = np.where(var_nights >= th.var_min_nights, cal.roll(v_bed, 14, "std"), np.nan)
    sri = np.where(cal.roll(pair_agreement, 14, "count") >= th.sri_min_pairs,
                   -100 + 200 * cal.roll(pair_agreement, 14, "mean"), np.nan)
    night_sleep = valid & (day_sleep == 0)
    free = flag("free_day")
    v_free, v_work = np.where(night_sleep & free, mid, nan), np.where(night_sleep & ~free, mid, nan)
    social_jetlag = np.where((cal.roll(v_free, 28, "count") >= 2) & (cal.roll(v_work, 28, "count") >= 4),
                             np.abs(cal.roll(v_free, 28, "median") - cal.roll(v_work, 28, "median")), np.nan)
    long = th.continuity_long_min
    waso_long = cal.roll((valid & (waso >= long)).astype(float), 7, "sum").astype(np.int64)
    onset_long = cal.roll((valid & (onset >= long)).astype(float), 7, "sum").astype(np.int64)
    continuity = (waso_long >= th.continuity_min_nights) | (onset_long >= th.continuity_min_nights)

    # EWMA of the valid nights in the last ewma_span_days days, weight (1 - lambda)^(age in days), normalised
    g_bed, g_mid = cal.lay(v_bed), cal.lay(np.where(valid, mid, nan))
    num_bed, num_mid, den = np.zeros(n), np.zeros(n), np.zeros(n)
    for age in range(th.ewma_span_days):
        x_bed, x_mid = g_bed[cal.at - age], g_mid[cal.at - age]
        w = np.where(np.isnan(x_bed), 0.0, (1 - th.ewma_lambda) ** age)
        num_bed += np.nan_to_num(x_bed) * w
        num_mid += np.nan_to_num(x_mid) * w
        den += w
    with np.errstate(invalid="ignore", divide="ignore"):
        bed_ewma = np.where(den == 0, np.nan, num_bed / den)
        mid_ewma = np.where(den == 0, np.nan, num_mid / den)

    # short-sleep runs: consecutive calendar nights with a valid main sleep under short_sleep_min
    short = cal.lay(valid & (tst < th.short_sleep_min), fill=0.0) > 0
    count = np.cumsum(short)
    run_nights = (count - np.maximum.accumulate(np.where(short, 0, count)))[cal.at]

    # HRV over 7 days, per kind of sleep (night / daytime); one device a person, so one source
    v_rmssd, v_ln = np.where(usable, rmssd, nan), np.where(usable, ln_rmssd, nan)
    hrv_nights, ln_7n, cv_7n = np.zeros(n), nan.copy(), nan.copy()
    # baselines: usable nights of the same kind in the days [night - 66, night - 7]; a night with no main sleep
    # has no kind and an empty baseline
    base = {k: nan.copy() for k in ("tst_med", "tst_mad", "eff_med", "eff_mad", "waso_med", "waso_mad",
                                    "onset_med", "onset_mad", "awak_med", "awak_mad", "rhr_med", "lnrmssd_med",
                                    "lnrmssd_mad", "lnsdnn_med", "lnsdnn_mad", "br_med", "spo2_med", "bed_med",
                                    "mid_med")}
    base_nights = np.zeros(n, np.int64)
    for kind in (0.0, 1.0):
        of_kind = day_sleep == kind
        if not of_kind.any():
            continue
        rows = np.flatnonzero(of_kind)
        hrv_nights[rows] = cal.roll(np.where(of_kind, v_rmssd, nan), 7, "count")[rows]
        ln_7n[rows] = cal.roll(np.where(of_kind, v_ln, nan), 7, "mean")[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            cv_7n[rows] = (100 * cal.roll(np.where(of_kind, v_rmssd, nan), 7, "std")
                           / cal.roll(np.where(of_kind, v_rmssd, nan), 7, "mean"))[rows]
        keep = of_kind & in_baseline
        base_nights[rows] = cal.roll(np.where(keep, tst, nan), b_span, "count", back=b_end)[rows]
        for name, values in (("tst", tst), ("eff", eff), ("waso", waso), ("onset", onset), ("awak", awak),
                             ("lnrmssd", ln_rmssd), ("lnsdnn", ln_sdnn)):
            med, mad = cal.median_and_mad(np.where(keep, values, nan), b_span, b_end, rows)
            base[f"{name}_med"][rows], base[f"{name}_mad"][rows] = med, mad
        for name, values in (("rhr", rhr), ("br", br), ("spo2", spo2), ("bed", bed), ("mid", mid)):
            base[f"{name}_med"][rows] = cal.roll(np.where(keep, values, nan), b_span, "median", back=b_end)[rows]

    def robust_z(x, name, feature):
        return (x - base[f"{name}_med"]) / np.fmax(1.4826 * base[f"{name}_mad"], floor[feature])

    warming_up = base_nights < th.warmup_nights
    tst_z = robust_z(tst, "tst", "tst_min")
    eff_z = robust_z(eff, "eff", "efficiency_pct")
    waso_z = robust_z(waso, "waso", "waso_min")
    onset_z = robust_z(onset, "onset", "onset_latency_min")
    awak_z = robust_z(awak, "awak", "awakenings_count")
    ln_z = robust_z(ln_rmssd, "lnrmssd", "ln_rmssd")
    ln_sdnn_z = robust_z(ln_sdnn, "lnsdnn", "ln_sdnn")
    rhr_delta = rhr - base["rhr_med"]
    br_delta = br - base["br_med"]
    spo2_delta = spo2 - base["spo2_med"]
    enough_hrv = hrv_nights >= th.hrv_min_nights
    ln_mean = np.where(enough_hrv, ln_7n, np.nan)

    # resting HR on this and the night before
    elevated = rhr_delta >= th.rhr_delta_bpm
    rhr_2n = elevated & ((th.rhr_consecutive_nights < 2) | (np.r_[False, elevated[:-1]] & before))
    band_edge = base["lnrmssd_med"] - th.hrv_band_sd * np.fmax(1.4826 * base["lnrmssd_mad"], floor["ln_rmssd"])
    below_band_known = ~np.isnan(ln_mean) & ~np.isnan(band_edge)
    below_band = ln_mean < band_edge

    # per-night deviations, worse direction only
    z_sleep = th.z_sleep  # sleep_calibration is empty: no person's threshold is widened
    comparable = usable & ~warming_up
    moved = ((eff_z <= -z_sleep).astype(int) + (waso_z >= z_sleep) + (onset_z >= z_sleep) + (awak_z >= z_sleep))
    sleep_dev = (tst_z <= -z_sleep) | ((tst_z <= -th.fragmented_tst_z) & (moved >= 2))
    recovery_known = comparable & (~np.isnan(base["lnrmssd_med"]) | ~np.isnan(base["lnsdnn_med"])) \
        & (~np.isnan(rhr_delta) | ~np.isnan(ln_z) | ~np.isnan(ln_sdnn_z))
    recovery_dev = rhr_2n | (ln_z <= -th.z_hrv) | (ln_sdnn_z <= -th.z_hrv) | (below_band & below_band_known)
    signs = (skin >= th.skin_temp_delta_c).astype(int) + (br_delta >= th.br_delta_brpm) \
        + (spo2_delta <= -th.spo2_drop_pct)
    illness_known = valid | tag_illness
    illness_dev = tag_illness | (signs > 0)
    two_signs = signs >= 2

    # domain flags: over the person's comparable nights (rows), the night itself deviating
    comp = pd.DataFrame({"p": pcode[comparable], "sleep": sleep_dev[comparable].astype(float),
                         "recovery": (recovery_dev & recovery_known)[comparable].astype(float)})

    def last_rows(column: str, rows: int) -> np.ndarray:
        out = np.zeros(n)
        out[comparable] = comp.groupby("p")[column].rolling(rows, min_periods=1).sum().to_numpy()
        return out

    tonight = {"sleep": comparable & sleep_dev, "recovery": recovery_known & recovery_dev}
    flags = {}
    for domain in ("sleep", "recovery"):
        need = tonight[domain] if th.flag_needs_tonight else comparable
        flags[f"{domain}_flag"] = need & (last_rows(domain, th.flag_window_nights) >= th.flag_min_nights)
        strong = last_rows(domain, th.strong_window_nights) >= th.strong_min_nights
        flags[f"{domain}_strong_flag"] = need & strong
    days = th.illness_window_days
    illness_flag = ((cal.roll((illness_known & illness_dev).astype(float), days, "sum") >= th.illness_min_nights)
                    | (cal.roll((two_signs | tag_illness).astype(float), days, "max") > 0))

    def band(x, edges):
        return _nullable(np.searchsorted(np.asarray(edges, float), np.nan_to_num(x), side="right"),
                         ~np.isnan(x), "Int32")

    out = pd.DataFrame({"person_id": feats["person_id"], "night_date": feats["night_date"]})
    out["valid_night"] = valid
    out["travel_context"] = travel
    out["baseline_excluded"] = excluded
    out["baseline_valid_nights"] = base_nights.astype(np.int32)
    out["warming_up"] = warming_up
    out["tst_z"], out["efficiency_z"], out["waso_z"] = tst_z, eff_z, waso_z
    out["onset_latency_z"], out["awakenings_z"] = onset_z, awak_z
    out["resting_hr_delta_bpm"], out["ln_rmssd_z"] = rhr_delta, ln_z
    out["breathing_rate_delta_brpm"], out["spo2_delta_pct"] = br_delta, spo2_delta
    out["tst_sd_14n_min"] = tst_sd
    out["tst_sd_band"] = band(tst_sd, (60, 90, 120))
    out["onset_sd_14n_min"] = bed_sd
    out["onset_sd_band"] = band(bed_sd, (30, 60, 90))
    out["sri_14n"] = sri
    out["social_jetlag_28n_min"] = social_jetlag
    out["short_sleep_run_nights"] = run_nights.astype(np.int32)
    out["waso_long_nights_7n"] = waso_long.astype(np.int32)
    out["onset_long_nights_7n"] = onset_long.astype(np.int32)
    out["continuity_flag"] = continuity
    out["rhr_elevated_2n"] = rhr_2n
    out["ln_rmssd_7n_mean"] = ln_mean
    out["ln_rmssd_7n_nights"] = hrv_nights.astype(np.int32)
    out["hrv_below_band"] = _nullable(below_band, below_band_known, "boolean")
    out["rmssd_cv_7n_pct"] = np.where(enough_hrv, cv_7n, np.nan)
    out["bedtime_ewma_min"] = bed_ewma
    out["bedtime_drift_min"] = bed_ewma - base["bed_med"]
    out["midsleep_ewma_min"] = mid_ewma
    out["midsleep_drift_min"] = mid_ewma - base["mid_med"]
    out["sleep_deviates"] = _nullable(sleep_dev, comparable, "boolean")
    out["recovery_deviates"] = _nullable(recovery_dev, recovery_known, "boolean")
    out["illness_deviates"] = _nullable(illness_dev, illness_known, "boolean")
    for name, value in flags.items():
        out[name] = value
    out["illness_flag"] = illness_flag
    out["ln_sdnn_z"] = ln_sdnn_z
    return out[list(TABLE_COLUMNS["night_signals"])]


def compute(store, th: Thresholds = Thresholds()) -> Reference:
    """Both tables, as a full rebuild computes them."""
    feats, bits, valid = nightly_features_pandas(store, th)
    return Reference(feats, bits, valid, night_signals_pandas(feats, bits, valid, th))


# --- checking against DuckDB ---------------------------------------------------------------------------------


def _kind(s: pd.Series) -> str:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "str"
    return str(dtype)


class Mismatch(AssertionError):
    pass


def _compare_column(table: str, name: str, mine: pd.Series, theirs: pd.Series) -> float:
    """Largest absolute difference (floats within 1e-9 count as equal); raises Mismatch on anything else."""
    what = f"{table}.{name}"
    kind = _kind(theirs)
    if _kind(mine) != kind:
        raise Mismatch(f"{what}: pandas gives {mine.dtype}, DuckDB {theirs.dtype}")
    mine_na, theirs_na = mine.isna().to_numpy(), theirs.isna().to_numpy()
    if not np.array_equal(mine_na, theirs_na):
        where = np.flatnonzero(mine_na != theirs_na)
        raise Mismatch(f"{what}: NULL in {len(where)} rows of one side only (first at row {where[0]}: "
                       f"pandas {mine.iloc[where[0]]!r}, DuckDB {theirs.iloc[where[0]]!r})")
    known = ~mine_na
    if kind == "datetime":
        if not np.array_equal(mine.to_numpy("datetime64[us]")[known], theirs.to_numpy("datetime64[us]")[known]):
            raise Mismatch(f"{what}: dates differ")
        return 0.0
    if kind == "float":
        a, b = mine.to_numpy(float)[known], theirs.to_numpy(float)[known]
        diff = float(np.max(np.abs(a - b))) if len(a) else 0.0
        if not diff <= 1e-9:
            i = int(np.argmax(np.abs(a - b)))
            raise Mismatch(f"{what}: differs by up to {diff} (pandas {a[i]!r}, DuckDB {b[i]!r})")
        return diff
    a, b = mine[known].astype(object).to_numpy(), theirs[known].astype(object).to_numpy()
    same = a == b
    if not np.all(same):
        i = int(np.flatnonzero(~same)[0])
        raise Mismatch(f"{what}: {int((~same).sum())} values differ (first: pandas {a[i]!r}, DuckDB {b[i]!r})")
    return 0.0


def _compare_bits(store, ref: Reference) -> None:
    """nightly_features.sleep_state_bits, byte for byte, read from DuckDB in Arrow batches (the bytes of a
    batch's non-NULL values lie back to back in one buffer: no Python object per night)."""
    what = "nightly_features.sleep_state_bits"
    at = 0
    with store.cursor() as cur:
        reader = cur.sql("SELECT sleep_state_bits::BLOB AS b FROM nightly_features "
                         "ORDER BY person_id, night_date").to_arrow_reader(BATCH_ROWS // 8)
        for batch in reader:
            col = batch.column("b").cast(pa.large_binary())
            k = len(col)
            known = col.is_valid().to_numpy(zero_copy_only=False)
            if not np.array_equal(known, ref.state_valid[at:at + k]):
                raise Mismatch(f"{what}: NULL in different rows")
            offsets = np.frombuffer(col.buffers()[1], np.int64)[col.offset:col.offset + k + 1]
            if not (np.diff(offsets)[known] == MINUTES // 8).all():
                raise Mismatch(f"{what}: DuckDB holds a state that is not {MINUTES} minutes long")
            theirs = np.frombuffer(col.buffers()[2], np.uint8)[offsets[0]:offsets[-1]].reshape(-1, MINUTES // 8)
            if not np.array_equal(theirs, ref.state_bits[at:at + k][known]):
                raise Mismatch(f"{what}: nights differ (in rows {at}..{at + k - 1})")
            at += k
    if at != len(ref.state_valid):
        raise Mismatch(f"{what}: DuckDB has {at} rows, pandas {len(ref.state_valid)}")


def compare_with_duckdb(store, ref: Reference) -> dict[str, float | int]:
    """Compare every column of DuckDB's nightly_features and night_signals with the reference's (keys first, row
    for row); raises Mismatch, naming the column, at the first difference. `columns_compared` counts column
    names (valid_night, in both tables, is compared in both and counted once), keys excluded."""
    compared: set[str] = set()
    worst = 0.0
    for table, mine in (("nightly_features", ref.features), ("night_signals", ref.signals)):
        columns = [c for c in store.query_df(
            f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' "
            "ORDER BY ordinal_position")["column_name"] if c != "sleep_state_bits"]
        missing = set(columns) - set(mine.columns)
        if missing:
            raise Mismatch(f"{table}: pandas reference lacks {sorted(missing)}")
        rows = store.query_df(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0]
        if rows != len(mine):
            raise Mismatch(f"{table}: DuckDB has {rows} rows, pandas {len(mine)}")
        for at in range(0, len(columns), 8):  # a few columns at a time: DuckDB's copy of the table stays small
            group = columns[at:at + 8]
            theirs = store.query_df(f"SELECT {', '.join(group)} FROM {table} ORDER BY person_id, night_date")
            for name in group:
                worst = max(worst, _compare_column(table, name, mine[name], theirs[name]))
                if name not in KEYS:
                    compared.add(name)
            del theirs
        if table == "nightly_features":
            _compare_bits(store, ref)
            compared.add("sleep_state_bits")
    return {"columns_compared": len(compared), "max_abs_diff": worst}
