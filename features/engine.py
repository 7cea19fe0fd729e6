"""Compute nightly features and night signals for the nights that changed, plus the lookback they need.

The nightly cost grows with the new nights, not with the history: each step reads only the target nights
(and, for signals, the baseline lookback) and replaces exactly the target rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources

import pandas as pd

from features.crash_points import crash_point
from features.store import NightRange, Store
from features.thresholds import Thresholds

_PARAM = re.compile(r"\$([a-z][a-z0-9_]*)")


def load_sql(name: str) -> str:
    return resources.files("features").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def _params_for(sql: str, values: dict[str, object]) -> dict[str, object]:
    wanted = set(_PARAM.findall(sql))
    missing = wanted - values.keys()
    if missing:
        raise KeyError(f"feature SQL needs parameters that are not set: {sorted(missing)}")
    return {k: values[k] for k in wanted}


@dataclass(frozen=True)
class FeatureRun:
    people: int
    feature_rows: int
    signal_rows: int


def _targets_df(ranges: dict[str, NightRange]) -> pd.DataFrame:
    return pd.DataFrame(
        [(pid, r.first, r.last) for pid, r in sorted(ranges.items())],
        columns=["person_id", "first_night", "last_night"],
    ).astype({"first_night": "datetime64[us]", "last_night": "datetime64[us]"})


def _replace_rows(store: Store, table: str, targets_name: str, targets: pd.DataFrame, sql: str,
                  params: dict[str, object]) -> int:
    with store.transaction() as cur:
        cur.register(targets_name, targets)
        try:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE computed_{table} AS {sql}", _params_for(sql, params))
            cur.execute(
                f"DELETE FROM {table} x USING {targets_name} t WHERE x.person_id = t.person_id "
                f"AND x.night_date BETWEEN t.first_night AND t.last_night"
            )
            cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM computed_{table}")
            n = cur.execute(f"SELECT count(*) FROM computed_{table}").fetchone()[0]
            cur.execute(f"DROP TABLE computed_{table}")
        finally:
            cur.unregister(targets_name)
    return int(n)


def latest_nights(store: Store, person_ids: list[str]) -> dict[str, date]:
    rows = store.query_rows(
        "SELECT person_id, max(night_date) FROM nightly_features WHERE list_contains(?, person_id) GROUP BY 1",
        [person_ids],
    )
    return {r[0]: r[1] for r in rows}


def compute_features(
    store: Store, touched: dict[str, NightRange], thresholds: Thresholds = Thresholds()
) -> FeatureRun:
    """Recompute features for the touched nights, then signals from the first touched night to each person's
    latest night (later nights' baselines include the touched ones)."""
    if not touched:
        return FeatureRun(0, 0, 0)
    params = thresholds.sql_params() | {"read_from_days": thresholds.signal_lookback_days}
    # A night's noon-to-noon sleep-state window (SRI) holds the afternoon of the night before, so a touched
    # night also changes the next night's features.
    feature_ranges = {pid: NightRange(r.first, r.last + timedelta(days=1)) for pid, r in touched.items()}
    feature_rows = _replace_rows(
        store, "nightly_features", "feature_targets", _targets_df(feature_ranges), load_sql("nightly_features"),
        params,
    )
    crash_point("features")  # features written, signals not yet: a rerun must recompute both
    latest = latest_nights(store, list(touched))
    signal_ranges = {
        pid: NightRange(r.first, max(r.last, latest.get(pid, r.last))) for pid, r in touched.items()
    }
    signal_rows = _replace_rows(
        store, "night_signals", "signal_targets", _targets_df(signal_ranges), load_sql("night_signals"), params
    )
    return FeatureRun(len(touched), feature_rows, signal_rows)


def rebuild_all(store: Store, thresholds: Thresholds = Thresholds()) -> FeatureRun:
    """Recompute every night of every person from the normalized tables (the `rebuild` path)."""
    rows = store.query_rows(
        """
        SELECT person_id, min(d), max(d) FROM (
            SELECT person_id, night_date AS d FROM sleep_sessions
            UNION ALL SELECT person_id, day FROM daily_resting_hr
            UNION ALL SELECT person_id, night_date FROM nightly_hrv
            UNION ALL SELECT person_id, night_date FROM nightly_vitals
            UNION ALL SELECT person_id, day FROM daily_activity
        ) GROUP BY person_id
        """
    )
    return compute_features(store, {r[0]: NightRange(r[1], r[2]) for r in rows}, thresholds)
