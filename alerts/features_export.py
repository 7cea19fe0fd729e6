"""`emberwatch features export`: one row per person-night with every nightly feature, the rolling features, the
flags, and whether the backtest replay alerts that night. Columns: docs/signals.md (generated from the catalog)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alerts.rules import AlertRules
from alerts.backtest import replay_person
from alerts.nightly_alert import load_signals
from storage.store import Store

# The per-minute sleep state is an SRI input, not a feature a person reads.
INTERNAL_COLUMNS = frozenset({"sleep_state_bits"})


def _columns(store: Store, table: str) -> list[str]:
    rows = store.query_rows(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table])
    return [r[0] for r in rows if r[0] not in INTERNAL_COLUMNS]


def export_columns(store: Store) -> list[str]:
    nightly = _columns(store, "nightly_features")
    signals = [c for c in _columns(store, "night_signals") if c not in nightly]
    return nightly + signals + ["alert"]


def features_frame(store: Store, rules: AlertRules = AlertRules()) -> pd.DataFrame:
    nightly = _columns(store, "nightly_features")
    signals = [c for c in _columns(store, "night_signals") if c not in nightly]
    df = store.query_df(
        f"SELECT {', '.join('f.' + c for c in nightly)}, {', '.join('s.' + c for c in signals)} "
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
