"""`emberwatch features export`: one row per person-night with every nightly feature, the rolling features, the
flags, and whether the backtest replay alerts that night. Columns and their order: features/catalog.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alerts.backtest import replay_person
from alerts.nightly_alert import load_signals
from alerts.rules import AlertRules
from features.catalog import COLUMNS, EXPORT_ORDER
from storage.store import Store

# Each column is read from the table that computes it (the night's key and validity: nightly_features).
_TABLE_ALIAS = {"nightly_features": "f", "night_signals": "s"}


def features_frame(store: Store, rules: AlertRules = AlertRules()) -> pd.DataFrame:
    stored = [f"{_TABLE_ALIAS[COLUMNS[c].table]}.{c}" for c in EXPORT_ORDER if COLUMNS[c].table in _TABLE_ALIAS]
    df = store.query_df(
        f"SELECT {', '.join(stored)} "
        "FROM nightly_features f LEFT JOIN night_signals s USING (person_id, night_date) "
        "ORDER BY f.person_id, f.night_date")
    alerts: set[tuple[str, object]] = set()
    for person_id in df["person_id"].unique():
        nights, _ = replay_person(load_signals(store, person_id), rules)
        alerts.update((person_id, pd.Timestamp(d)) for d in nights)
    df["night_date"] = pd.to_datetime(df["night_date"])
    df["alert"] = [(p, d) in alerts for p, d in zip(df["person_id"], df["night_date"])]
    df["night_date"] = df["night_date"].dt.date
    # Flags are booleans; "not enough data" stays missing (NA), never 0 or False.
    for col in ("sleep_flag", "recovery_flag", "illness_flag", "warming_up"):
        df[col] = df[col].astype("boolean")
    return df


def export_features(store: Store, out: Path, rules: AlertRules = AlertRules()) -> int:
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"'{out.name}' should end in .csv or .parquet; those are the formats the export writes.")
    df = features_frame(store, rules)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        df.to_csv(out, index=False)
    else:
        store_df = df.copy()
        store_df["night_date"] = pd.to_datetime(store_df["night_date"])
        with store.cursor() as cur:
            cur.register("export_df", store_df)
            cur.execute(f"COPY export_df TO '{str(out).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")
            cur.unregister("export_df")
    return len(df)
