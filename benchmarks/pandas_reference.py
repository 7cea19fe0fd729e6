"""A straightforward pandas implementation of the core nightly features and the TST baseline z, written for
the benchmark: the same definitions as features/sql, checked equal to DuckDB's output.

Covers: tst_min, time_in_bed_min, efficiency_pct, waso_min, onset_latency_min, awakenings_count, bedtime_min,
wake_min, midsleep_min, and tst_z (median/MAD of valid nights 66..7 days before, MAD floor 20 min).
Benchmark data have one main sleep a night, no naps, no travel and no daytime sleep, so those branches of the
SQL are not needed here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CORE = ["tst_min", "time_in_bed_min", "efficiency_pct", "waso_min", "onset_latency_min", "awakenings_count",
        "bedtime_min", "wake_min", "midsleep_min"]


def nightly_features_pandas(store) -> pd.DataFrame:
    sessions = store.query_df("SELECT * FROM sleep_sessions WHERE is_main_sleep")
    segs = store.query_df("SELECT person_id, source_session_id, seg_start_utc, duration_s, stage FROM sleep_segments")
    segs["is_wake"] = segs["stage"].isin(["wake", "awake"])
    segs["is_sleep"] = ~segs["is_wake"] & (segs["stage"] != "restless")
    segs["seg_end_utc"] = segs["seg_start_utc"] + pd.to_timedelta(segs["duration_s"], unit="s")
    key = ["person_id", "source_session_id"]
    sleep = segs[segs["is_sleep"]].groupby(key).agg(first_sleep=("seg_start_utc", "min"),
                                                    last_sleep_end=("seg_end_utc", "max"))
    segs = segs.join(sleep, on=key)
    inside = segs["is_wake"] & (segs["seg_start_utc"] >= segs["first_sleep"]) & \
        (segs["seg_start_utc"] < segs["last_sleep_end"])
    segs["waso_s"] = np.where(inside, segs["duration_s"], 0)
    segs["long_wake"] = inside & (segs["duration_s"] >= 300)
    cont = segs.groupby(key).agg(waso_s=("waso_s", "sum"), awakenings_count=("long_wake", "sum"))
    df = sessions.join(cont, on=key).join(sleep, on=key)
    midnight = pd.to_datetime(df["night_date"])
    local_start = df["start_utc"] + pd.to_timedelta(df["start_utc_offset_min"], unit="min")
    local_end = df["end_utc"] + pd.to_timedelta(df["end_utc_offset_min"], unit="min")
    out = pd.DataFrame({
        "person_id": df["person_id"],
        "night_date": midnight,
        "tst_min": df["minutes_asleep"].astype(float),
        "time_in_bed_min": df["time_in_bed_min"].astype(float),
        "efficiency_pct": 100.0 * df["minutes_asleep"] / df["time_in_bed_min"],
        "waso_min": df["waso_s"] / 60.0,
        "onset_latency_min": (df["first_sleep"] - df["start_utc"]).dt.total_seconds() / 60.0,
        "awakenings_count": df["awakenings_count"].astype(int),
        "bedtime_min": (local_start - midnight).dt.total_seconds() / 60.0,
        "wake_min": (local_end - midnight).dt.total_seconds() / 60.0,
        "valid_night": df["time_in_bed_min"] >= 180,
    })
    out["midsleep_min"] = (out["bedtime_min"] + out["wake_min"]) / 2
    out = out.sort_values(["person_id", "night_date"]).reset_index(drop=True)
    out["tst_z"] = _tst_z(out)
    return out


def _tst_z(df: pd.DataFrame) -> pd.Series:
    """Robust z of TST against the valid nights 66..7 days before each night (a 60-day window ending a week
    before), median and MAD, MAD floor 20 min; NaN while fewer than 14 baseline nights."""
    parts = []
    for _, g in df.groupby("person_id", sort=False):
        s = g.set_index("night_date")["tst_min"].where(g.set_index("night_date")["valid_night"])
        window = s.rolling("60D")
        med = window.median()
        mad = window.apply(lambda a: np.nanmedian(np.abs(a - np.nanmedian(a))) if np.isfinite(a).any() else np.nan,
                           raw=True)
        n = window.count()
        # the window ending at night d-7 serves night d
        shifted = pd.DataFrame({"med": med, "mad": mad, "n": n})
        shifted.index = shifted.index + pd.Timedelta(days=7)
        aligned = shifted.reindex(s.index)
        z = (g.set_index("night_date")["tst_min"] - aligned["med"]) / np.maximum(1.4826 * aligned["mad"], 20.0)
        parts.append(pd.Series(np.where(aligned["n"] >= 14, z, np.nan), index=g.index))
    return pd.concat(parts).sort_index()


def compare_with_duckdb(store, feats: pd.DataFrame) -> float:
    """Largest absolute difference between pandas and DuckDB over the core columns and tst_z (raises if the
    rows differ)."""
    cols = ", ".join(f"f.{c}" for c in CORE)
    db = store.query_df(
        f"SELECT f.person_id, f.night_date, {cols}, s.tst_z, s.warming_up FROM nightly_features f "
        "JOIN night_signals s USING (person_id, night_date) ORDER BY 1, 2")
    db["tst_z"] = db["tst_z"].where(~db["warming_up"].astype(bool))
    if len(db) != len(feats):
        raise AssertionError(f"row counts differ: DuckDB {len(db)}, pandas {len(feats)}")
    worst = 0.0
    for c in CORE + ["tst_z"]:
        a = pd.to_numeric(db[c], errors="coerce").to_numpy(dtype=float)
        b = feats[c].to_numpy(dtype=float)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            raise AssertionError(f"{c}: missing values differ")
        diff = np.nanmax(np.abs(a - b)) if np.isfinite(a).any() else 0.0
        worst = max(worst, float(diff))
    return worst
