"""Read-only: the nights a chart shows (a few weeks of one feature) and the person's usual band around them.

The band follows the baseline of features/sql/night_signals.sql as of the chart's last night: valid, non-travel
nights in the 60 days that end a week before it; median ± one robust SD (1.4826 × MAD, never below the feature's
floor from features/catalog.py). Charts are drawn by alerts.charts; this module only queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from features.catalog import FEATURES
from storage.store import Store
from features.thresholds import Thresholds

CHART_WEEKS = 6  # the issue asks for 4-8 weeks: long enough to show a usual, short enough to stay small
CHART_FEATURES = ("tst_min", "resting_hr_bpm", "ln_rmssd")
MIN_NIGHTS_TO_CHART = 7  # fewer points than this say nothing a sentence does not


@dataclass(frozen=True)
class ChartSeries:
    person_id: str
    feature: str
    first_night: date
    last_night: date
    nights: tuple[date, ...]  # valid nights with a value, oldest first
    values: tuple[float, ...]
    band_low: float | None  # None while the baseline is still warming up
    band_mid: float | None
    band_high: float | None
    baseline_nights: int


def load_series(
    store: Store,
    person_id: str,
    last_night: date,
    features: tuple[str, ...] = CHART_FEATURES,
    weeks: int = CHART_WEEKS,
    thresholds: Thresholds = Thresholds(),
) -> list[ChartSeries]:
    """One series per feature that has at least MIN_NIGHTS_TO_CHART valid nights in the chart's weeks."""
    first_night = last_night - timedelta(days=7 * weeks - 1)
    base_last = last_night - timedelta(days=thresholds.baseline_end_days)
    base_first = base_last - timedelta(days=thresholds.baseline_span_days - 1)
    out: list[ChartSeries] = []
    for feature in features:
        if feature not in FEATURES:
            raise ValueError(f"Unknown feature {feature!r}; charts know {', '.join(CHART_FEATURES)}.")
        # The feature name is checked against the catalog above, so it is safe as an identifier here.
        rows = store.query_rows(
            f"""
            SELECT f.night_date, f."{feature}" FROM nightly_features f
            LEFT JOIN night_signals s USING (person_id, night_date)
            WHERE f.person_id = ? AND f.night_date BETWEEN ? AND ? AND f.valid_night
              AND f."{feature}" IS NOT NULL AND NOT coalesce(s.travel_context, false)
            ORDER BY f.night_date
            """,
            [person_id, first_night, last_night],
        )
        if len(rows) < MIN_NIGHTS_TO_CHART:
            continue
        count, median, mad = store.query_rows(
            f"""
            SELECT count(f."{feature}"), median(f."{feature}"), mad(f."{feature}") FROM nightly_features f
            LEFT JOIN night_signals s USING (person_id, night_date)
            WHERE f.person_id = ? AND f.night_date BETWEEN ? AND ? AND f.valid_night
              AND NOT coalesce(f.day_sleep, false) AND NOT coalesce(s.travel_context, false)
            """,
            [person_id, base_first, base_last],
        )[0]
        if count >= thresholds.warmup_nights and median is not None:
            spread = max(1.4826 * float(mad or 0.0), FEATURES[feature].floor)
            low, mid, high = float(median) - spread, float(median), float(median) + spread
        else:
            low = mid = high = None
        out.append(
            ChartSeries(
                person_id=person_id,
                feature=feature,
                first_night=first_night,
                last_night=last_night,
                nights=tuple(r[0] for r in rows),
                values=tuple(float(r[1]) for r in rows),
                band_low=low,
                band_mid=mid,
                band_high=high,
                baseline_nights=int(count),
            )
        )
    return out
