"""The feature tables' columns, each described once: type, unit, meaning and source, and which are compared.

SQL computes them (features/sql/, one file per table); everything that tells about them reads them from here:
the data dictionary (docs/signals.md, `python -m alerts.data_dictionary`), the export's column order, the
explanations in emails, and tests/test_catalog.py, which holds the migrated tables to exactly these columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Table = Literal["nightly_features", "night_signals", "export"]
Domain = Literal["sleep", "recovery", "timing", "illness"]
Worse = Literal["up", "down"] | None  # None: neither direction is worse in itself (timing)


@dataclass(frozen=True)
class Column:
    """A column as a reader meets it in the data dictionary and the export."""

    name: str
    table: Table  # the table that computes it (night_signals repeats the night's key and validity)
    sql_type: str  # DuckDB type as the migrations create it, NOT NULL included ("" for the export's own)
    unit: str
    description: str
    source: str


@dataclass(frozen=True)
class Feature:
    """A nightly feature compared with the person's own usual (its column, plus how it is compared)."""

    name: str
    unit: str
    domain: Domain
    worse: Worse
    floor: float  # smallest robust SD in comparisons (ours, no published source): noise must not look large
    description: str
    source: str


# Each table's columns in the order the migrations create them: name, DuckDB type, unit, source; then the
# definition. The maths is in features/sql/<table>.sql.
_Row = tuple[str, str, str, str, str]
_NIGHTLY_FEATURES: tuple[_Row, ...] = (
    ("person_id", "VARCHAR NOT NULL", "id", "—",
     "The person's opaque id"),
    ("night_date", "DATE NOT NULL", "date", "docs/architecture.md (The data path); Fitbit dateOfSleep",
     "The night: the local date of waking (Fitbit dateOfSleep)"),
    ("sleep_source", "VARCHAR", "text", "features/devices.py (default order, the person's choice)",
     "The device whose sleep counts tonight: the main sleep, naps and sleep regularity all come from it"),
    ("log_type", "VARCHAR", "text", "Fitbit",
     "stages (segments with stages) or classic"),
    ("tst_min", "DOUBLE", "min", "Fang et al., npj Digit Med 2021 (Intern Health Study)",
     "Total sleep time of the main sleep"),
    ("time_in_bed_min", "DOUBLE", "min", "—",
     "Start to end of the main sleep log"),
    ("efficiency_pct", "DOUBLE", "%",
     "< 85 % is a common clinical cut-off (REST project summary; no primary source)",
     "Minutes asleep / minutes in bed"),
    ("waso_min", "DOUBLE", "min", "Lichstein et al. 2003 (>= 31 min continuity cut-off)",
     "Wake after sleep onset"),
    ("onset_latency_min", "DOUBLE", "min", "Lichstein et al. 2003 (>= 31 min continuity cut-off)",
     "Minutes to fall asleep"),
    ("awakenings_count", "INTEGER", "count",
     "Fitbit stage logs; the 5-min minimum is ours, no published source",
     "Wake segments of 5 min or more"),
    ("bedtime_min", "DOUBLE", "min from midnight",
     "Fang et al., npj Digit Med 2021 (Intern Health Study: bedtime)",
     "Local start of the main sleep, minutes from the midnight that begins the wake date (23:30 = -30)"),
    ("wake_min", "DOUBLE", "min from midnight",
     "Fang et al., npj Digit Med 2021 (Intern Health Study: wake time)",
     "Local end of the main sleep, same origin"),
    ("midsleep_min", "DOUBLE", "min after midnight", "Roenneberg et al. 2019 (mid-sleep, social jetlag)",
     "Middle of the main sleep, minutes from the midnight that begins the wake date"),
    ("midsleep_clock_min", "DOUBLE", "min of day", "—",
     "Mid-sleep as a clock time 0..1439 (display)"),
    ("nap_min", "DOUBLE", "min", "ours (naps kept apart from the main sleep), no published source",
     "Minutes asleep in naps attributed to the same date"),
    ("resting_hr_bpm", "DOUBLE", "bpm", "NightSignal (Alavi et al., Nat Med 2022)",
     "Daily resting heart rate"),
    ("ln_rmssd", "DOUBLE", "ln(ms)", "Plews et al., IJSPP 2014",
     "Natural log of overnight RMSSD"),
    ("rmssd_ms", "DOUBLE", "ms", "Plews 2014",
     "Overnight RMSSD (for the coefficient of variation)"),
    ("breathing_rate_brpm", "DOUBLE", "breaths/min",
     "illness context, as Oura and WHOOP use it (their help pages)",
     "Overnight breathing rate"),
    ("skin_temp_deviation_c", "DOUBLE", "°C", "illness context, as Oura and WHOOP use it (their help pages)",
     "Skin temperature deviation from the device's own baseline"),
    ("spo2_avg_pct", "DOUBLE", "%", "illness context: ours, no published source",
     "Average overnight SpO2"),
    ("steps_count", "INTEGER", "steps", "Fitbit daily summary; context only, no published threshold",
     "Steps on the wake date"),
    ("active_min", "DOUBLE", "min", "WHO MVPA convention",
     "Moderately + very active minutes on the wake date"),
    ("sedentary_min", "DOUBLE", "min", "Fitbit daily summary; context only, no published threshold",
     "Sedentary minutes on the wake date"),
    ("valid_activity_day", "BOOLEAN", "bool", "Troiano 2008; All of Us",
     ">= 100 steps and not a whole day sedentary (no wear-time data: the 10 h rule is not applied)"),
    ("sleep_state_bits", "BIT", "1 bit a minute", "Phillips 2017 (SRI input)",
     "Per minute of the noon-to-noon window ending on the wake date: 1 asleep in any log; valid nights"),
    ("tag_illness", "BOOLEAN NOT NULL", "bool", "ours (kept out of baselines), no published source",
     "Tagged illness: an illness sign, kept out of baselines"),
    ("tag_travel", "BOOLEAN NOT NULL", "bool", "ours (kept out of baselines), no published source",
     "Tagged travel: not compared, kept out of baselines"),
    ("tag_on_call", "BOOLEAN NOT NULL", "bool", "ours (kept out of baselines), no published source",
     "Tagged on-call: compared, kept out of baselines"),
    ("tag_night_shift", "BOOLEAN NOT NULL", "bool", "ours",
     "Tagged night shift: compared with shift sleep only"),
    ("tag_day_off", "BOOLEAN NOT NULL", "bool",
     "ours (a roster's free days for social jetlag), no published source",
     "Tagged day off (a roster's free day)"),
    ("free_day", "BOOLEAN NOT NULL", "bool",
     "Roenneberg et al. 2019 (free days vs workdays); roster tags are ours",
     "Free day for social jetlag: tagged day-off if the person keeps a roster, else Saturday/Sunday"),
    ("day_sleep", "BOOLEAN", "bool", "ours",
     "Main sleep centred 10:00-18:00 local, or tagged night-shift: shift sleep, own baseline"),
    ("away_from_home", "BOOLEAN NOT NULL", "bool", "ours, no published source",
     "Main sleep in another zone than home (travel)"),
    ("valid_night", "BOOLEAN NOT NULL", "bool",
     "Fitbit computes HRV only on a long enough main sleep (~3 h, not verified in a primary source)",
     "A main sleep of >= 3 h exists"),
    # provenance: one source per data type and night (features/devices.py); never a sum or mean of two devices
    ("resting_hr_source", "VARCHAR", "text", "features/devices.py", "The device whose resting heart rate counts"),
    ("hrv_source", "VARCHAR", "text", "features/devices.py", "The device whose overnight HRV counts"),
    ("breathing_rate_source", "VARCHAR", "text", "features/devices.py", "The device whose breathing rate counts"),
    ("spo2_source", "VARCHAR", "text", "features/devices.py", "The device whose SpO2 counts"),
    ("skin_temp_source", "VARCHAR", "text", "features/devices.py", "The device whose skin temperature counts"),
    ("steps_source", "VARCHAR", "text", "features/devices.py",
     "The device whose steps and active minutes count for the day"),
    ("sdnn_ms", "DOUBLE", "ms", "Hirten et al., JMIR 2021 (Warrior Watch, Apple Watch SDNN)",
     ("HRV as SDNN, for a device that measures SDNN (Apple Watch): the mean of the night's ~1-minute readings; "
      "never compared with RMSSD")),
    ("ln_sdnn", "DOUBLE", "ln(ms)", "Hirten 2021; the log as for lnRMSSD (Plews 2014)",
     "Natural log of the night's SDNN"),
)

_NIGHT_SIGNALS: tuple[_Row | str, ...] = (
    "person_id", "night_date", "valid_night",  # the night's key and validity: described in nightly_features
    ("travel_context", "BOOLEAN NOT NULL", "bool", "ours (3 nights of jet lag), no published source",
     "Away, tagged travel, or back for < 3 nights: not compared"),
    ("baseline_excluded", "BOOLEAN NOT NULL", "bool", "ours, no published source",
     "Kept out of baselines (travel/jet lag, tagged illness/travel/on-call)"),
    ("baseline_valid_nights", "INTEGER NOT NULL", "nights",
     "Oura help pages (long-term baseline ~2 months); 60 days is ours",
     "Usable nights in this night's 60-day baseline"),
    ("warming_up", "BOOLEAN NOT NULL", "bool", "Oura ~2 weeks, Garmin ~3 weeks",
     "Fewer than 14 baseline nights: 'not enough data yet', no comparison (a state, not a zero)"),
    ("tst_z", "DOUBLE", "robust z", "robust z (median/MAD); the cut-off is ours, no published source",
     "TST against the baseline, (x - median) / (1.4826 MAD, floored)"),
    ("efficiency_z", "DOUBLE", "robust z", "robust z (median/MAD); the cut-off is ours, no published source",
     "Sleep efficiency against the baseline"),
    ("waso_z", "DOUBLE", "robust z", "robust z (median/MAD); the cut-off is ours, no published source",
     "WASO against the baseline"),
    ("onset_latency_z", "DOUBLE", "robust z",
     "robust z (median/MAD); the cut-off is ours, no published source",
     "Onset latency against the baseline"),
    ("awakenings_z", "DOUBLE", "robust z", "robust z (median/MAD); the cut-off is ours, no published source",
     "Awakenings against the baseline"),
    ("resting_hr_delta_bpm", "DOUBLE", "bpm", "NightSignal, Alavi 2022",
     "Resting HR minus the baseline median"),
    ("ln_rmssd_z", "DOUBLE", "robust z", "Plews 2014",
     "lnRMSSD against the baseline"),
    ("breathing_rate_delta_brpm", "DOUBLE", "breaths/min",
     "illness context, as Oura and WHOOP use it (their help pages); threshold ours",
     "Breathing rate minus the baseline median"),
    ("spo2_delta_pct", "DOUBLE", "%", "illness context: ours, no published source",
     "SpO2 minus the baseline median"),
    ("tst_sd_14n_min", "DOUBLE", "min", "MESA, Huang 2020",
     "SD of TST over the last 14 days (>= 10 valid nights, of the device whose sleep counts tonight)"),
    ("tst_sd_band", "INTEGER", "band 0-3", "Huang 2020",
     "0: < 60, 1: 60-90, 2: 90-120, 3: >= 120 min"),
    ("onset_sd_14n_min", "DOUBLE", "min", "Huang 2020",
     "SD of sleep-onset clock time over the last 14 days"),
    ("onset_sd_band", "INTEGER", "band 0-3", "Huang 2020",
     "0: < 30, 1: 30-60, 2: 60-90, 3: >= 90 min"),
    ("sri_14n", "DOUBLE", "index -100..100", "Phillips 2017; Fischer 2021",
     "Sleep Regularity Index over the last 14 days from stage segments (needs >= 13 day pairs of one device)"),
    ("social_jetlag_28n_min", "DOUBLE", "min", "Wittmann 2006; Roenneberg et al. 2019",
     "|median mid-sleep on free days - on workdays| over the last 28 days (night sleep only, one device)"),
    ("short_sleep_run_nights", "INTEGER", "nights", "Oberleitner 2024",
     "Consecutive nights < 6 h ending here (>= 3 is notable)"),
    ("waso_long_nights_7n", "INTEGER", "nights", "Lichstein 2003",
     "Nights with WASO >= 31 min in the last 7 days"),
    ("onset_long_nights_7n", "INTEGER", "nights", "Lichstein 2003",
     "Nights with onset latency >= 31 min in the last 7 days"),
    ("continuity_flag", "BOOLEAN", "bool", "Lichstein 2003",
     "Either count >= 3 (trend flag only)"),
    ("rhr_elevated_2n", "BOOLEAN", "bool", "NightSignal, Alavi 2022",
     "Resting HR >= baseline + 4 bpm on this and the night before"),
    ("ln_rmssd_7n_mean", "DOUBLE", "ln(ms)", "Plews 2014",
     "7-day mean lnRMSSD (>= 4 valid nights of the same kind, else not enough data)"),
    ("ln_rmssd_7n_nights", "INTEGER", "nights", "Plews 2014",
     "Valid HRV nights in that 7-day window"),
    ("hrv_below_band", "BOOLEAN", "bool", "Plews 2014",
     "7-day mean below baseline median - 1 within-person SD (the band's lower edge)"),
    ("rmssd_cv_7n_pct", "DOUBLE", "%", "Plews 2014",
     "7-day coefficient of variation of RMSSD (rising = less stable)"),
    ("bedtime_ewma_min", "DOUBLE", "min from midnight",
     "EWMA for slow drift; lambda 0.25 is ours, no published source",
     "EWMA (lambda 0.25) of bedtime, 28 days"),
    ("bedtime_drift_min", "DOUBLE", "min", "ours",
     "bedtime EWMA - baseline median (bedtime creep)"),
    ("midsleep_ewma_min", "DOUBLE", "min from midnight",
     "EWMA for slow drift; lambda 0.25 is ours, no published source",
     "EWMA of mid-sleep"),
    ("midsleep_drift_min", "DOUBLE", "min", "ours",
     "mid-sleep EWMA - baseline median"),
    ("sleep_deviates", "BOOLEAN", "bool", "ours, no published source",
     "This night's sleep deviates the worse way (rule in features/sql/night_signals.sql)"),
    ("recovery_deviates", "BOOLEAN", "bool", "Alavi 2022; Plews 2014",
     ("RHR rule, lnRMSSD or lnSDNN z <= -1.5, or RMSSD below the band; measured only where the baseline holds "
      "HRV (without HRV, e.g. account exports, empty: a daily resting HR alone does not make the domain)")),
    ("illness_deviates", "BOOLEAN", "bool", "ours, no published source",
     "Skin temp / breathing rate / SpO2 deviation or tagged illness"),
    ("sleep_flag", "BOOLEAN NOT NULL", "bool",
     "Van Dongen 2003, Banks 2010 (debt builds from the second short night); persistence after Alavi 2022",
     "Sleep deviates tonight and on >= 2 of the last 3 comparable nights"),
    ("recovery_flag", "BOOLEAN NOT NULL", "bool",
     "Van Dongen 2003, Banks 2010 (debt builds from the second short night); persistence after Alavi 2022",
     "Recovery deviates tonight and on >= 2 of the last 3 comparable nights"),
    ("sleep_strong_flag", "BOOLEAN NOT NULL", "bool", "DSM-5 / Lichstein 2003 frequency (>= 3 nights a week)",
     "Sleep deviates tonight and on >= 3 of the last 5 comparable nights (alerts alone where HRV is not measured)"),
    ("recovery_strong_flag", "BOOLEAN NOT NULL", "bool", "ours",
     "Recovery deviates tonight and on >= 3 of the last 5"),
    ("illness_flag", "BOOLEAN NOT NULL", "bool", "ours, no published source",
     ("Illness signs on >= 2 nights, or two signs on one night, or a tagged illness, in the last 7 "
      "days: holds an alert back")),
    ("ln_sdnn_z", "DOUBLE", "robust z", "Hirten 2021; the z rule as for lnRMSSD",
     "lnSDNN against the baseline of the same device's SDNN (never RMSSD's)"),
)

_EXPORT_OWN: tuple[_Row, ...] = (
    ("alert", "", "bool",
     "budget sized on NightSignal's false-alarm rate (Alavi et al., Nat Med 2022); rule ours",
     ("The backtest replay (alerts.rules.decide, night by night, with budget and re-arm) "
      "alerts on this night")),
)

# Inputs to other columns that a person does not read: kept out of the export and the data dictionary.
INTERNAL_COLUMNS = frozenset({"sleep_state_bits"})

# Compared night by night with the person's own usual: domain, which direction is worse, robust-SD floor.
_COMPARED: tuple[tuple[str, Domain, Worse, float], ...] = (
    ("tst_min", "sleep", "down", 20.0),
    ("efficiency_pct", "sleep", "down", 2.0),
    ("waso_min", "sleep", "up", 8.0),
    ("onset_latency_min", "sleep", "up", 5.0),
    ("awakenings_count", "sleep", "up", 1.0),
    ("midsleep_min", "timing", None, 20.0),
    ("resting_hr_bpm", "recovery", "up", 1.5),
    ("ln_rmssd", "recovery", "down", 0.08),
    ("ln_sdnn", "recovery", "down", 0.08),  # a ratio in ln units, as lnRMSSD's: 8 % is within a reading's noise
)


def _columns(table: Table, rows: tuple[_Row | str, ...]) -> dict[str, Column]:
    """The columns described in `rows`; a bare name is a column described in an earlier table."""
    return {
        name: Column(name, table, sql_type, unit, description, source)
        for name, sql_type, unit, source, description in (row for row in rows if not isinstance(row, str))
    }


def _names(rows: tuple[_Row | str, ...]) -> tuple[str, ...]:
    return tuple(row if isinstance(row, str) else row[0] for row in rows)


# Every column, once: each table's own, in table order.
COLUMNS: dict[str, Column] = (
    _columns("nightly_features", _NIGHTLY_FEATURES)
    | _columns("night_signals", _NIGHT_SIGNALS)
    | _columns("export", _EXPORT_OWN)
)

# What each table holds, in order: what tests/test_catalog.py compares with the migrated store.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "nightly_features": _names(_NIGHTLY_FEATURES),
    "night_signals": _names(_NIGHT_SIGNALS),
}

# `emberwatch features export`: the night's features, then its signals, then whether the replay alerts on it.
EXPORT_ORDER: tuple[str, ...] = tuple(name for name in COLUMNS if name not in INTERNAL_COLUMNS)



def _feature(name: str, domain: Domain, worse: Worse, floor: float) -> Feature:
    column = COLUMNS[name]
    return Feature(name, column.unit, domain, worse, floor, column.description, column.source)


FEATURES: dict[str, Feature] = {row[0]: _feature(*row) for row in _COMPARED}
