"""Retention: how long raw payloads and derived data are kept (docs/privacy.md). 0 keeps forever.

Raw payloads are dated by when they were fetched; everything else by the civil date it describes, so an old
export imported today is kept for as long as its nights are within the feature retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from storage.store import Store

# table -> the date column retention reads (tables not listed are people, ledgers and logs: kept)
DATED_TABLES = {
    "sleep_sessions": "night_date",
    "daily_activity": "day",
    "daily_resting_hr": "day",
    "nightly_hrv": "night_date",
    "nightly_vitals": "night_date",
    "nightly_features": "night_date",
    "night_signals": "night_date",
}


@dataclass(frozen=True)
class RetentionResult:
    raw_payloads: int
    rows: int


def apply_retention(store: Store, now_utc: datetime, raw_days: int, feature_days: int) -> RetentionResult:
    raw_removed = rows_removed = 0
    with store.transaction() as cur:
        if raw_days > 0:
            cutoff = now_utc.replace(tzinfo=None) - timedelta(days=raw_days)
            raw_removed = cur.execute("DELETE FROM raw_payloads WHERE fetched_at < ?", [cutoff]).fetchone()[0]
            cur.execute("DELETE FROM quarantine WHERE quarantined_at < ?", [cutoff]).fetchall()
        if feature_days > 0:
            cutoff_day: date = now_utc.date() - timedelta(days=feature_days)
            # segments go with their session
            cur.execute(
                "DELETE FROM sleep_segments g USING sleep_sessions s WHERE g.person_id = s.person_id "
                "AND g.source = s.source AND g.source_session_id = s.source_session_id AND s.night_date < ?",
                [cutoff_day]).fetchall()
            for table, column in DATED_TABLES.items():
                rows_removed += cur.execute(f'DELETE FROM "{table}" WHERE "{column}" < ?', [cutoff_day]).fetchone()[0]
    return RetentionResult(raw_removed, rows_removed)
