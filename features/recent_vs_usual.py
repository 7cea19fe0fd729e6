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


@dataclass(frozen=True)
class Usual:
    """A person's usual for one feature as of a night: the median and one robust SD of their baseline nights."""

    median: float
    spread: float  # max(1.4826 * MAD, the feature's floor)
    nights: int


def baseline_frame(store: Store, person_id: str, anchor_night: date, extra_nights: Sequence[date] = (),
                   thresholds: Thresholds = Thresholds()) -> tuple[pd.DataFrame, date, date]:
    """Every valid, non-travel night of the baseline window that `anchor_night` uses (60 days ending a week
    before it, as the SQL), plus `extra_nights`; with `day_sleep` and `baseline_excluded`. One selection for the
    words (explanations, digests) and the pictures (charts), so they can never disagree."""
    base_last = anchor_night - timedelta(days=thresholds.baseline_end_days)
    base_first = base_last - timedelta(days=thresholds.baseline_span_days - 1)
    cols = ", ".join(f"f.{name}" for name in FEATURES)
    # Same nights as the SQL baseline: valid, not travel, not tagged illness/travel/on-call (night_signals knows).
    df = store.query_df(
        f"SELECT night_date, coalesce(f.day_sleep, false) AS day_sleep, "
        f"coalesce(s.baseline_excluded, false) AS baseline_excluded, {cols} FROM nightly_features f "
        "LEFT JOIN night_signals s USING (person_id, night_date) WHERE person_id = ? AND f.valid_night "
        "AND NOT coalesce(s.travel_context, false) AND (night_date BETWEEN ? AND ? OR list_contains(?, night_date))",
        [person_id, base_first, base_last, list(extra_nights)],
    )
    df["night_date"] = pd.to_datetime(df["night_date"]).dt.date
    return df, base_first, base_last


def night_kind(nights: pd.DataFrame) -> bool:
    """Compare like with like: the baseline holds the same kind of sleep (night, or daytime shift sleep) as most
    of the nights compared, as the night signals do. True for daytime sleep."""
    return bool(nights["day_sleep"].mode().iloc[0]) if not nights.empty else False


def usual_of(frame: pd.DataFrame, base_first: date, base_last: date, name: str, day_sleep: bool,
             thresholds: Thresholds = Thresholds()) -> Usual | None:
    baseline = frame[(frame["night_date"] >= base_first) & (frame["night_date"] <= base_last)
                     & (frame["day_sleep"] == day_sleep) & ~frame["baseline_excluded"].astype(bool)][name].dropna()
    if len(baseline) < thresholds.warmup_nights:
        return None
    med = float(baseline.median())
    mad = float((baseline - med).abs().median())
    return Usual(med, max(1.4826 * mad, FEATURES[name].floor), len(baseline))


def compare_nights(
    store: Store, person_id: str, recent_nights: Sequence[date], anchor_night: date,
    thresholds: Thresholds = Thresholds(),
) -> list[Comparison]:
    """Median of `recent_nights` against the baseline that `anchor_night` uses (same window as the SQL)."""
    if not recent_nights:
        return []
    frame, base_first, base_last = baseline_frame(store, person_id, anchor_night, recent_nights, thresholds)
    if frame.empty:
        return []
    recent = frame[frame["night_date"].isin(set(recent_nights))]
    kind = night_kind(recent)
    recent = recent[recent["day_sleep"] == kind]
    out: list[Comparison] = []
    for name in FEATURES:
        usual, r = usual_of(frame, base_first, base_last, name, kind, thresholds), recent[name].dropna()
        if usual is None or r.empty:
            continue
        out.append(Comparison(name, usual.median, float(r.median()), (float(r.median()) - usual.median) /
                              usual.spread, usual.nights))
    return out
