"""Retention: how long raw payloads and derived data are kept (docs/privacy.md). 0 keeps forever.

Everything is kept for a fixed time after it *arrived*. Raw payloads carry their arrival (`fetched_at`). A night
fetched live arrives the morning after it, so its night date stands for its arrival. History that arrives in bulk
— a Fitbit export imported today, a 365-night backfill — is recorded in `history_arrivals`, and its nights are
kept for the feature retention counted from that day: an old export imported to be used is not erased by the
first nightly run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from storage.store import NightRange, Store

# table -> the date column retention reads (tables not listed are people, ledgers and logs: kept)
DATED_TABLES = {
    "sleep_sessions": "night_date",
    "daily_activity": "day",
    "daily_resting_hr": "day",
    "nightly_hrv": "night_date",
    "nightly_vitals": "night_date",
    "nightly_features": "night_date",
    "night_signals": "night_date",
    "check_ins": "report_date",
}


@dataclass(frozen=True)
class RetentionResult:
    raw_payloads: int
    rows: int


def record_arrival(store: Store, person_id: str, nights: NightRange, arrived_on: date) -> None:
    """Nights first..last of this person arrived today in bulk; retention counts their age from `arrived_on`."""
    with store.cursor() as cur:
        cur.execute(
            "INSERT INTO history_arrivals VALUES (?, ?, ?, ?) ON CONFLICT (person_id, first_night, last_night) "
            "DO UPDATE SET arrived_on = greatest(history_arrivals.arrived_on, excluded.arrived_on)",
            [person_id, nights.first, nights.last, arrived_on])


def kept_until(arrived_on: date, keep_days: int) -> date | None:
    """The last day data that arrived on `arrived_on` is kept (None: kept until the person is forgotten)."""
    return arrived_on + timedelta(days=keep_days) if keep_days > 0 else None


def _not_recently_arrived(alias: str, column: str) -> str:
    """SQL: the row's night is not covered by a bulk arrival younger than the cutoff (parameter 2)."""
    return (f"NOT EXISTS (SELECT 1 FROM history_arrivals h WHERE h.person_id = {alias}.person_id "
            f"AND {alias}.\"{column}\" BETWEEN h.first_night AND h.last_night AND h.arrived_on >= ?)")


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
                "AND g.source = s.source AND g.source_session_id = s.source_session_id AND s.night_date < ? "
                f"AND {_not_recently_arrived('s', 'night_date')}",
                [cutoff_day, cutoff_day]).fetchall()
            for table, column in DATED_TABLES.items():
                rows_removed += cur.execute(
                    f'DELETE FROM "{table}" t WHERE t."{column}" < ? AND {_not_recently_arrived("t", column)}',
                    [cutoff_day, cutoff_day]).fetchone()[0]
            cur.execute("DELETE FROM history_arrivals WHERE arrived_on < ?", [cutoff_day]).fetchall()
    return RetentionResult(raw_removed, rows_removed)
