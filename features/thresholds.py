"""Named defaults for validity, baselines and per-night deviation (SIGNALS.md), passed to the feature SQL.

Each value says where it comes from. Values marked "ours" have no published source: they are starting points,
and `emberwatch backtest` (later) states the effect of changing them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from features.catalog import FEATURES


@dataclass(frozen=True)
class Thresholds:
    min_main_sleep_min: int = 180  # valid night: main sleep >= 3 h (Fitbit computes HRV only on such nights)
    # Daytime main sleep (mid-sleep 10:00-18:00 local) is shift sleep: typically shorter and lighter than night
    # sleep, so it gets its own baseline instead of looking like a rough patch (ours, after shift-work research).
    day_sleep_from_min: int = 600
    day_sleep_to_min: int = 1080
    jet_lag_nights: int = 3  # nights after coming home still treated as travel (ours; ~1 day per zone, capped)
    warmup_nights: int = 14  # >= 14 valid nights before any comparison (Oura ~2 weeks, Garmin ~3 weeks)
    baseline_span_days: int = 60  # rolling 60 nights of baseline (SIGNALS.md)
    baseline_end_days: int = 7  # the baseline ends a week before the night (ours: keeps a patch out of its baseline)
    z_sleep: float = 1.5  # robust z for a sleep feature to count as moved (ours)
    z_hrv: float = 1.0  # lnRMSSD below the -1 within-person SD band (Plews 2014: band -0.5..-1 SD)
    rhr_delta_bpm: float = 4.0  # resting HR >= baseline + 4 bpm (NightSignal, Alavi 2022)
    skin_temp_delta_c: float = 0.5  # ours: Fitbit/Oura temperature deviations of this size accompany fever
    br_delta_brpm: float = 1.5  # ours
    flag_window_nights: int = 5  # domain flagged on >= 3 of the last 5 valid nights (SIGNALS.md)
    flag_min_nights: int = 3
    illness_window_nights: int = 3  # ours

    def sql_params(self) -> dict[str, float | int]:
        # The robust-SD floors live with the features (features/catalog.py), one definition each.
        floors = {f"floor_{f.name}": f.floor for f in FEATURES.values()}
        return asdict(self) | floors

    @property
    def signal_lookback_days(self) -> int:
        """How far back a night's signals read: the baseline plus the flag window's own history."""
        return self.baseline_end_days + self.baseline_span_days + 4 * self.flag_window_nights
