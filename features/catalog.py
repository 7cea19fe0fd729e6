"""The nightly features in one place: unit, which direction is worse, domain, and where the idea comes from.

SQL computes them (features/sql/); this catalog is what explanations, emails and docs read about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    domain: Literal["sleep", "recovery", "timing", "illness"]
    worse: Literal["up", "down"] | None  # None: neither direction is worse in itself (timing)
    floor: float  # smallest robust SD used in comparisons (ours, no published source): noise must not look large
    description: str
    source: str


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("tst_min", "min", "sleep", "down", 20.0, "Total sleep time of the main sleep", "SIGNALS.md (TST)"),
        Feature("efficiency_pct", "%", "sleep", "down", 2.0, "Minutes asleep / minutes in bed",
                "SIGNALS.md; < 85 % is a common clinical cut-off"),
        Feature("waso_min", "min", "sleep", "up", 8.0, "Wake after sleep onset", "SIGNALS.md (WASO)"),
        Feature("onset_latency_min", "min", "sleep", "up", 5.0, "Minutes to fall asleep", "SIGNALS.md"),
        Feature("awakenings_count", "count", "sleep", "up", 1.0, "Wake segments of 5 min or more",
                "SIGNALS.md (stage logs)"),
        Feature("midsleep_min", "min after midnight", "timing", None, 20.0,
                "Middle of the main sleep, minutes from the midnight that begins the wake date", "SIGNALS.md"),
        Feature("resting_hr_bpm", "bpm", "recovery", "up", 1.5, "Daily resting heart rate",
                "NightSignal (Alavi et al., Nat Med 2022)"),
        Feature("ln_rmssd", "ln(ms)", "recovery", "down", 0.08, "Natural log of overnight RMSSD",
                "Plews et al., IJSPP 2014"),
    )
}


@dataclass(frozen=True)
class Column:
    """A column of the feature tables that is not compared night by night (context, rolling, flags)."""

    name: str
    table: Literal["nightly_features", "night_signals", "export"]
    unit: str
    description: str
    source: str


# Every other exported column, defined once. The compared features above are not repeated here.
COLUMNS: dict[str, Column] = {
    c.name: c
    for c in (
        Column("person_id", "nightly_features", "id", "The person's opaque id", "—"),
        Column("night_date", "nightly_features", "date", "The night: the local date of waking (Fitbit dateOfSleep)",
               "ARCHITECTURE.md"),
        Column("source", "nightly_features", "text", "Where the main sleep came from", "—"),
        Column("log_type", "nightly_features", "text", "stages (segments with stages) or classic", "Fitbit"),
        Column("time_in_bed_min", "nightly_features", "min", "Start to end of the main sleep log", "—"),
        Column("bedtime_min", "nightly_features", "min from midnight",
               "Local start of the main sleep, minutes from the midnight that begins the wake date (23:30 = -30)",
               "SIGNALS.md (timing, circular-safe)"),
        Column("wake_min", "nightly_features", "min from midnight", "Local end of the main sleep, same origin",
               "SIGNALS.md (timing)"),
        Column("midsleep_clock_min", "nightly_features", "min of day", "Mid-sleep as a clock time 0..1439 (display)",
               "—"),
        Column("nap_min", "nightly_features", "min", "Minutes asleep in naps attributed to the same date",
               "SIGNALS.md (naps kept apart)"),
        Column("rmssd_ms", "nightly_features", "ms", "Overnight RMSSD (for the coefficient of variation)",
               "Plews 2014"),
        Column("breathing_rate_brpm", "nightly_features", "breaths/min", "Overnight breathing rate",
               "SIGNALS.md (illness context)"),
        Column("skin_temp_deviation_c", "nightly_features", "°C", "Skin temperature deviation from the device's own "
               "baseline", "SIGNALS.md (illness context)"),
        Column("spo2_avg_pct", "nightly_features", "%", "Average overnight SpO2", "SIGNALS.md (illness context)"),
        Column("steps_count", "nightly_features", "steps", "Steps on the wake date", "SIGNALS.md (activity)"),
        Column("active_min", "nightly_features", "min", "Moderately + very active minutes on the wake date",
               "WHO MVPA convention"),
        Column("sedentary_min", "nightly_features", "min", "Sedentary minutes on the wake date",
               "SIGNALS.md (activity)"),
        Column("valid_activity_day", "nightly_features", "bool",
               ">= 100 steps and not a whole day sedentary (no wear-time data: the 10 h rule is not applied)",
               "Troiano 2008; All of Us"),
        Column("tag_illness", "nightly_features", "bool", "Tagged illness: an illness sign, kept out of baselines",
               "SIGNALS.md (tags)"),
        Column("tag_travel", "nightly_features", "bool", "Tagged travel: not compared, kept out of baselines",
               "SIGNALS.md (tags)"),
        Column("tag_on_call", "nightly_features", "bool", "Tagged on-call: compared, kept out of baselines",
               "SIGNALS.md (tags)"),
        Column("tag_night_shift", "nightly_features", "bool", "Tagged night shift: compared with shift sleep only",
               "ours"),
        Column("tag_day_off", "nightly_features", "bool", "Tagged day off (a roster's free day)", "SIGNALS.md"),
        Column("free_day", "nightly_features", "bool",
               "Free day for social jetlag: tagged day-off if the person keeps a roster, else Saturday/Sunday",
               "SIGNALS.md (social jetlag)"),
        Column("day_sleep", "nightly_features", "bool",
               "Main sleep centred 10:00-18:00 local, or tagged night-shift: shift sleep, own baseline", "ours"),
        Column("away_from_home", "nightly_features", "bool", "Main sleep in another zone than home (travel)",
               "SIGNALS.md"),
        Column("valid_night", "nightly_features", "bool", "A main sleep of >= 3 h exists", "SIGNALS.md (validity)"),
        Column("travel_context", "night_signals", "bool", "Away, tagged travel, or back for < 3 nights: not compared",
               "SIGNALS.md"),
        Column("baseline_excluded", "night_signals", "bool",
               "Kept out of baselines (travel/jet lag, tagged illness/travel/on-call)", "SIGNALS.md"),
        Column("baseline_valid_nights", "night_signals", "nights", "Usable nights in this night's 60-day baseline",
               "SIGNALS.md"),
        Column("warming_up", "night_signals", "bool", "Fewer than 14 baseline nights: 'not enough data yet', "
               "no comparison (a state, not a zero)", "Oura ~2 weeks, Garmin ~3 weeks"),
        Column("tst_z", "night_signals", "robust z", "TST against the baseline, (x - median) / (1.4826 MAD, floored)",
               "SIGNALS.md"),
        Column("efficiency_z", "night_signals", "robust z", "Sleep efficiency against the baseline", "SIGNALS.md"),
        Column("waso_z", "night_signals", "robust z", "WASO against the baseline", "SIGNALS.md"),
        Column("onset_latency_z", "night_signals", "robust z", "Onset latency against the baseline", "SIGNALS.md"),
        Column("awakenings_z", "night_signals", "robust z", "Awakenings against the baseline", "SIGNALS.md"),
        Column("resting_hr_delta_bpm", "night_signals", "bpm", "Resting HR minus the baseline median",
               "NightSignal, Alavi 2022"),
        Column("ln_rmssd_z", "night_signals", "robust z", "lnRMSSD against the baseline", "Plews 2014"),
        Column("breathing_rate_delta_brpm", "night_signals", "breaths/min", "Breathing rate minus the baseline median",
               "SIGNALS.md (illness context)"),
        Column("spo2_delta_pct", "night_signals", "%", "SpO2 minus the baseline median", "SIGNALS.md (illness)"),
        Column("tst_sd_14n_min", "night_signals", "min", "SD of TST over the last 14 days (>= 10 valid nights)",
               "MESA, Huang 2020"),
        Column("tst_sd_band", "night_signals", "band 0-3", "0: < 60, 1: 60-90, 2: 90-120, 3: >= 120 min",
               "Huang 2020"),
        Column("onset_sd_14n_min", "night_signals", "min", "SD of sleep-onset clock time over the last 14 days",
               "Huang 2020"),
        Column("onset_sd_band", "night_signals", "band 0-3", "0: < 30, 1: 30-60, 2: 60-90, 3: >= 90 min",
               "Huang 2020"),
        Column("sri_14n", "night_signals", "index -100..100",
               "Sleep Regularity Index over the last 14 days from stage segments (needs >= 13 day pairs)",
               "Phillips 2017; Fischer 2021"),
        Column("social_jetlag_28n_min", "night_signals", "min",
               "|median mid-sleep on free days - on workdays| over the last 28 days (night sleep only)",
               "Wittmann 2006; SIGNALS.md"),
        Column("short_sleep_run_nights", "night_signals", "nights", "Consecutive nights < 6 h ending here "
               "(>= 3 is notable)", "Oberleitner 2024"),
        Column("waso_long_nights_7n", "night_signals", "nights", "Nights with WASO >= 31 min in the last 7 days",
               "Lichstein 2003"),
        Column("onset_long_nights_7n", "night_signals", "nights", "Nights with onset latency >= 31 min in the last 7 "
               "days", "Lichstein 2003"),
        Column("continuity_flag", "night_signals", "bool", "Either count >= 3 (trend flag only)", "Lichstein 2003"),
        Column("rhr_elevated_2n", "night_signals", "bool", "Resting HR >= baseline + 4 bpm on this and the night "
               "before", "NightSignal, Alavi 2022"),
        Column("ln_rmssd_7n_mean", "night_signals", "ln(ms)", "7-day mean lnRMSSD (>= 4 valid nights of the same "
               "kind, else not enough data)", "Plews 2014"),
        Column("ln_rmssd_7n_nights", "night_signals", "nights", "Valid HRV nights in that 7-day window", "Plews 2014"),
        Column("hrv_below_band", "night_signals", "bool",
               "7-day mean below baseline median - 1 within-person SD (the band's lower edge)",
               "Plews 2014"),
        Column("rmssd_cv_7n_pct", "night_signals", "%", "7-day coefficient of variation of RMSSD (rising = less "
               "stable)", "Plews 2014"),
        Column("bedtime_ewma_min", "night_signals", "min from midnight", "EWMA (lambda 0.25) of bedtime, 28 days",
               "SIGNALS.md (drift)"),
        Column("bedtime_drift_min", "night_signals", "min", "bedtime EWMA - baseline median (bedtime creep)", "ours"),
        Column("midsleep_ewma_min", "night_signals", "min from midnight", "EWMA of mid-sleep", "SIGNALS.md"),
        Column("midsleep_drift_min", "night_signals", "min", "mid-sleep EWMA - baseline median", "ours"),
        Column("sleep_deviates", "night_signals", "bool", "This night's sleep deviates the worse way (rule in "
               "features/sql/night_signals.sql)", "SIGNALS.md"),
        Column("recovery_deviates", "night_signals", "bool", "RHR rule, lnRMSSD z <= -1 or HRV below the band",
               "Alavi 2022; Plews 2014"),
        Column("illness_deviates", "night_signals", "bool", "Skin temp / breathing rate / SpO2 deviation or tagged "
               "illness", "SIGNALS.md"),
        Column("sleep_flag", "night_signals", "bool", "Sleep deviates on >= 3 of the last 5 comparable nights",
               "SIGNALS.md"),
        Column("recovery_flag", "night_signals", "bool", "Recovery deviates on >= 3 of the last 5 comparable nights",
               "SIGNALS.md"),
        Column("sleep_strong_flag", "night_signals", "bool", "Sleep deviates on >= 6 of the last 7 comparable nights",
               "ours"),
        Column("recovery_strong_flag", "night_signals", "bool", "Recovery deviates on >= 6 of the last 7", "ours"),
        Column("illness_flag", "night_signals", "bool",
               "Illness signs on >= 2 nights, or two signs on one night, or a tagged illness, in the last 7 days: "
               "holds an alert back",
               "SIGNALS.md"),
        Column("alert", "export", "bool", "The backtest replay (alerts.rules.decide, night by night, with budget and "
               "re-arm) alerts on this night", "SIGNALS.md"),
    )
}
