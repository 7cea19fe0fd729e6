"""Read-only: the nights a chart shows (a few weeks of one feature) and the person's usual band around them.

The band is the usual the words use (features.recent_vs_usual) as of the chart's last night: valid, non-travel,
untagged nights of the same kind of sleep in the 60 days that end a week before it; median ± one robust SD
(1.4826 × MAD, never below the feature's floor from features/catalog.py). Charts are drawn by alerts.charts; this
module only queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from features.catalog import FEATURES
from features.recent_vs_usual import baseline_frame, night_kind, usual_of
from storage.store import Store
from features.thresholds import Thresholds

CHART_WEEKS = 6  # the issue asks for 4-8 weeks: long enough to show a usual, short enough to stay small
# HRV is drawn in the metric the person's device measures: RMSSD, or SDNN from an Apple Watch (a chart needs
# MIN_NIGHTS_TO_CHART nights of its own metric, so one device draws one of the two)
CHART_FEATURES = ("tst_min", "resting_hr_bpm", "ln_rmssd", "ln_sdnn")
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
    """One series per feature that has at least MIN_NIGHTS_TO_CHART valid nights in the chart's weeks. The band
    is the usual the words use (features.recent_vs_usual, anchored on the chart's last night): a sentence and
    the chart beside it describe the same nights against the same usual."""
    for feature in features:
        if feature not in FEATURES:
            raise ValueError(f"Unknown feature {feature!r}; charts know {', '.join(CHART_FEATURES)}.")
    first_night = last_night - timedelta(days=7 * weeks - 1)
    shown = [first_night + timedelta(days=i) for i in range(7 * weeks)]
    frame, base_first, base_last = baseline_frame(store, person_id, last_night, shown, thresholds)
    in_chart = frame[(frame["night_date"] >= first_night) & (frame["night_date"] <= last_night)]
    # The kind of sleep of the last week decides what is drawn and compared, as in the weekly words.
    kind = night_kind(in_chart[in_chart["night_date"] > last_night - timedelta(days=7)])
    in_chart = in_chart[in_chart["day_sleep"] == kind].sort_values("night_date")
    out: list[ChartSeries] = []
    for feature in features:
        rows = in_chart[["night_date", feature]].dropna()
        if len(rows) < MIN_NIGHTS_TO_CHART:
            continue
        usual = usual_of(frame, base_first, base_last, feature, kind, thresholds)
        low = mid = high = None
        if usual is not None:
            low, mid, high = usual.median - usual.spread, usual.median, usual.median + usual.spread
        out.append(
            ChartSeries(
                person_id=person_id,
                feature=feature,
                first_night=first_night,
                last_night=last_night,
                nights=tuple(rows["night_date"]),
                values=tuple(float(v) for v in rows[feature]),
                band_low=low,
                band_mid=mid,
                band_high=high,
                baseline_nights=usual.nights if usual is not None else int(
                    frame[(frame["night_date"] >= base_first) & (frame["night_date"] <= base_last)][feature]
                    .notna().sum()),
            )
        )
    return out
