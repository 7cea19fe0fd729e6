"""Which device counts when a person has several: for each data type and night exactly one source, by the order
below unless the person chose otherwise on their page (table `source_choices`). Values from two devices are never
summed or averaged. features/sql/nightly_features.sql applies this order (one CTE, `chosen`); a person's
baselines and rolling windows then hold only nights from the same source (features/windows.py), so a switch of
device starts afresh.
"""

from __future__ import annotations

import pandas as pd

# The data types the features read, each with the nightly_features column that names its source.
DATA_TYPES: dict[str, str] = {
    "sleep": "sleep_source",
    "resting_hr": "resting_hr_source",
    "hrv": "hrv_source",
    "breathing_rate": "breathing_rate_source",
    "spo2": "spo2_source",
    "skin_temp": "skin_temp_source",
    "steps": "steps_source",
}

# What a person reads on their page for each data type and source.
DATA_TYPE_WORDS: dict[str, str] = {
    "sleep": "Sleep", "resting_hr": "Resting heart rate", "hrv": "Heart-rate variability",
    "breathing_rate": "Breathing rate", "spo2": "Blood oxygen", "skin_temp": "Skin temperature", "steps": "Steps",
}
SOURCE_WORDS: dict[str, str] = {
    "oura": "Oura ring", "apple-health": "Apple Watch (Apple Health)", "google-health": "Fitbit or Pixel Watch",
    "fitbit-web": "Fitbit", "google-takeout": "Fitbit (Google Takeout)", "fitbit-export": "Fitbit (account export)",
    "synthetic": "Demo device",
}

# Fitbit's own sources, newest way in first: the same watch, and a live sync holds the nights the device re-scored.
_FITBIT = ("google-health", "fitbit-web", "google-takeout", "fitbit-export")

# Night-time measures: a ring first. It is worn on the finger, where the pulse wave is strong and moves little in
# sleep, and Oura reports HRV, breathing rate and temperature from the whole night's sleep; then a watch that
# stages sleep (Fitbit, Apple Watch: its importer already keeps the watch's staged sleep over the phone's).
_NIGHT_ORDER = ("oura", *_FITBIT, "apple-health", "synthetic")
# Steps happen by day: the wrist device worn all day first, the ring (often off for washing and work) after.
_DAY_ORDER = ("apple-health", *_FITBIT, "oura", "synthetic")

DEFAULT_PRIORITY: dict[str, tuple[str, ...]] = {
    "sleep": _NIGHT_ORDER,
    "resting_hr": _NIGHT_ORDER,  # the overnight low is the resting HR the +4 bpm rule was made for (NightSignal)
    "hrv": _NIGHT_ORDER,         # only RMSSD is stored (Apple's SDNN never is), so any source here is comparable
    "breathing_rate": _NIGHT_ORDER,
    "spo2": _NIGHT_ORDER,
    "skin_temp": _NIGHT_ORDER,
    "steps": _DAY_ORDER,
}


def default_ranks() -> pd.DataFrame:
    """(data_type, source, rank): the default order as a table for the feature SQL; lower rank counts first.
    A source not listed ranks after every listed one."""
    return pd.DataFrame(
        [(data_type, source, rank) for data_type, order in DEFAULT_PRIORITY.items()
         for rank, source in enumerate(order, start=1)],
        columns=["data_type", "source", "rank"],
    )


def default_source(data_type: str, sources: list[str]) -> str:
    """Which of `sources` counts for `data_type` when the person has not chosen."""
    order = DEFAULT_PRIORITY[data_type]
    return min(sources, key=lambda s: (order.index(s) if s in order else len(order), s))
