"""Compare a set of recent nights with the person's baseline, feature by feature (for explanations and digests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Sequence

import pandas as pd

from features.catalog import FEATURES
from storage.store import Store
from features.thresholds import Thresholds


@dataclass(frozen=True)
class Comparison:
    feature: str
    baseline_median: float
    recent_median: float
    robust_z: float  # signed: (recent - baseline) / max(1.4826 * MAD, floor)
    baseline_nights: int


def compare_nights(
    store: Store, person_id: str, recent_nights: Sequence[date], anchor_night: date,
    thresholds: Thresholds = Thresholds(),
) -> list[Comparison]:
    """Median of `recent_nights` against the baseline that `anchor_night` uses (same window as the SQL)."""
    if not recent_nights:
        return []
    base_last = anchor_night - timedelta(days=thresholds.baseline_end_days)
    base_first = base_last - timedelta(days=thresholds.baseline_span_days - 1)
    cols = ", ".join(f"f.{name}" for name in FEATURES)
    # Same nights as the SQL baseline: valid, not travel, not tagged illness/travel/on-call (night_signals knows).
    df = store.query_df(
        f"SELECT night_date, day_sleep, s.baseline_excluded, {cols} FROM nightly_features f JOIN night_signals s "
        "USING (person_id, night_date) WHERE person_id = ? AND f.valid_night AND NOT s.travel_context "
        "AND (night_date BETWEEN ? AND ? OR list_contains(?, night_date))",
        [person_id, base_first, base_last, list(recent_nights)],
    )
    if df.empty:
        return []
    nights = pd.to_datetime(df["night_date"]).dt.date
    recent = df[nights.isin(set(recent_nights))]
    # Compare like with like: the baseline holds the same kind of sleep (night or daytime shift sleep) as
    # most of the recent nights, as the night signals do.
    kind = bool(recent["day_sleep"].mode().iloc[0]) if not recent.empty else False
    baseline = df[(nights >= base_first) & (nights <= base_last) & (df["day_sleep"] == kind)
                  & ~df["baseline_excluded"].astype(bool)]
    recent = recent[recent["day_sleep"] == kind]
    out: list[Comparison] = []
    for name, feature in FEATURES.items():
        b, r = baseline[name].dropna(), recent[name].dropna()
        if len(b) < thresholds.warmup_nights or r.empty:
            continue
        med = float(b.median())
        mad = float((b - med).abs().median())
        scale = max(1.4826 * mad, feature.floor)
        out.append(Comparison(name, med, float(r.median()), (float(r.median()) - med) / scale, len(b)))
    return out
