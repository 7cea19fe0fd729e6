"""Named defaults for validity, baselines and per-night deviation, passed to the feature SQL.

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
    baseline_span_days: int = 60  # rolling 60 nights of baseline (ours; Oura's long-term baseline is ~2 months)
    baseline_end_days: int = 7  # the baseline ends a week before the night (ours: keeps a patch out of its baseline)
    z_sleep: float = 1.5  # robust z for a sleep feature to count as moved (ours)
    # A fragmented night (>= 2 of efficiency, WASO, onset, awakenings moved) deviates only when it also cost sleep:
    # total sleep at or below the usual median (robust z <= -fragmented_tst_z; issue 16). Why: how rested people
    # feel tracks how long they slept far more than a wrist device's wake counts, which agree poorly with
    # polysomnography (de Zambotti et al., Sleep 2019; Chinoy et al., Sleep 2021: wide limits of agreement for
    # WASO and awakenings), and a restless night the person made up for by sleeping on is not a short night. On
    # PMData, fragmentation alone went with no worse mornings (benchmarks/signals_diagnosis.py). 0 = "shorter
    # than usual", no fitted value.
    fragmented_tst_z: float = 0.0
    # One night's lnRMSSD this far below usual counts as a recovery deviation (ours: 1.0 gave 0.054 calm alerts per
    # person-month, 1.5 gives 0.034 with recall 43/45 instead of 44/45; false alarms cost trust). The Plews 2014
    # band applies to the 7-night mean (hrv_band_sd).
    z_hrv: float = 1.5
    rhr_delta_bpm: float = 4.0  # resting HR >= baseline + 4 bpm (NightSignal, Alavi 2022)
    rhr_consecutive_nights: int = 2  # ... on >= 2 consecutive nights (NightSignal); 1 = single night (before)
    skin_temp_delta_c: float = 0.5  # ours: Fitbit/Oura temperature deviations of this size accompany fever
    br_delta_brpm: float = 1.5  # ours
    # A domain is flagged on >= 2 of the last 3 comparable nights (issue 16; before: 3 of 5). Why: the cost of
    # short sleep accumulates from the second restricted night on (Van Dongen et al., Sleep 2003; Belenky et al.,
    # J Sleep Res 2003), and one normal night largely repays one short night but not a run (Banks et al., Sleep
    # 2010), so "two of three" marks a debt being built now, while 3 of 5 kept flags on nights whose debt was
    # already repaid. Persistence as such after NightSignal (Alavi et al. 2022) and Beiwe (Barnett et al. 2018).
    flag_window_nights: int = 3
    flag_min_nights: int = 2
    # ... and only on a night that itself deviates (issue 16; ours, no published source). A flag describes the
    # present: a night back in range after a disturbed stretch is a recovery night, and how a person feels
    # follows the night just slept (on PMData, flagged nights that did not themselves deviate preceded slightly
    # better mornings). Persistence stays a precondition, not an afterglow. Synthetic backtest: recall 43/45
    # either way, calm alerts 0.034 -> 0.019 per person-month.
    flag_needs_tonight: bool = True
    # Illness/confounder context holds an alert back while any illness sign was seen in this many days (ours:
    # a cold's sleep and heart-rate effects outlast its fever by a few days, so a 3-night window let the tail
    # of an illness alert in the backtest).
    illness_window_days: int = 7
    # ... on >= 2 nights of it, or one night with two signs at once (ours): one noisy night of skin temperature
    # (SD ~0.2 C) must not hold back an alert for a week; a real illness shows for several nights, or with
    # temperature and breathing rate up together. A tagged illness night always counts.
    illness_min_nights: int = 2
    spo2_drop_pct: float = 2.0  # SpO2 >= 2 points under the baseline median (ours; Fitbit SpO2 SD ~0.5 point)
    # "One domain for longer": deviating tonight and on >= 3 of the last 5 comparable nights (issue 16; before:
    # 6 of 7). The alert for a source without overnight HRV rests on it (AlertRules.sleep_alone_without_hrv):
    # short sleep on most of a working week is the frequency clinical definitions of disturbed sleep use
    # (>= 3 nights a week: DSM-5 insomnia; Lichstein et al. 2003), kept over 5 nights so it can act within a week.
    # Whether it alone may alert where HRV is measured is AlertRules.single_domain_strong (off).
    strong_window_nights: int = 5
    strong_min_nights: int = 3
    # Recovery: the 7-night lnRMSSD mean needs >= 4 valid nights (Plews et al., IJSPP 2014: >= 3; 4 is ours)
    # and is compared with the lower edge of the baseline band, median - 1 within-person SD (Plews 2014;
    # Buchheit, Front Physiol 2014: band -0.5..-1 SD). Backtest: the -0.5 edge doubled calm alerts
    # (0.051 -> 0.092 per person-month) without catching one more patch.
    hrv_min_nights: int = 4
    hrv_band_sd: float = 1.0
    # Variability (MESA, Huang 2020): SD over the last 14 days, given >= 10 valid nights (ours).
    var_min_nights: int = 10
    # SRI (Phillips 2017) needs >= 14 nights (Fischer 2021): 13 consecutive-night pairs in the last 14 days.
    sri_min_pairs: int = 13
    short_sleep_min: int = 360  # a short night is < 6 h (Oberleitner 2024: >= 3 in a row is notable)
    continuity_long_min: int = 31  # WASO or onset latency >= 31 min (Lichstein 2003)
    continuity_min_nights: int = 3  # on >= 3 of 7 nights (Lichstein 2003)
    ewma_lambda: float = 0.25  # EWMA for timing drift (ours, no published source: a start in 0.2-0.3)
    ewma_span_days: int = 28  # the EWMA reads this many days (weights beyond are < 0.1 %)
    min_valid_steps: int = 100  # valid activity day: >= 100 steps (All of Us practice)

    def sql_params(self) -> dict[str, float | int]:
        # The robust-SD floors live with the features (features/catalog.py), one definition each.
        floors = {f"floor_{f.name}": f.floor for f in FEATURES.values()}
        return asdict(self) | floors

    @property
    def flag_reach_days(self) -> int:
        """How far back the rules over earlier nights' results read stored signals (row windows over comparable
        nights are assumed to fit in 4x their length in days; the illness window is in days)."""
        return max(4 * self.flag_window_nights, 4 * self.strong_window_nights, self.illness_window_days)

    @property
    def signal_lookback_days(self) -> int:
        """How far back a night's signals read nightly features: its baseline's first night, and that night's
        travel context (the jet-lag nights before it); the rolling windows (28 days, ewma_span_days) and the
        stored signals the flags read (flag_reach_days) lie inside that. Nights before the first target keep
        their stored results, so the read does not grow with the history."""
        return max(self.baseline_end_days + self.baseline_span_days - 1 + self.jet_lag_nights,
                   28 + 1, self.ewma_span_days + 1, self.flag_reach_days)
