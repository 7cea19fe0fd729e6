"""The person's own reports of how they felt (table `check_ins`): what the signals answer to.

Reports are kept beside the signals to check them against (`emberwatch validate`) and, in the person's own words,
beside the signals in their weekly check-in; they never trigger an email by themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from storage.store import Store


@dataclass(frozen=True)
class Scale:
    low: float
    high: float
    higher_is_better: bool
    words: str  # what the scale asks, for people reading a table of their own reports


# The PMsys morning report (Thambawita et al. 2020, PMData): 1-5, higher = better (5 = very fresh, very relaxed,
# very good sleep); readiness 0-10. The weekly email asks two questions of its own.
SCALES: dict[str, Scale] = {
    "fatigue": Scale(1, 5, True, "fatigue (5 = very fresh)"),
    "mood": Scale(1, 5, True, "mood (5 = very good)"),
    "readiness": Scale(0, 10, True, "readiness to work (10 = fully ready)"),
    "sleep_quality": Scale(1, 5, True, "sleep quality (5 = very good)"),
    "soreness": Scale(1, 5, True, "soreness (5 = none)"),
    "stress": Scale(1, 5, True, "stress (5 = very relaxed)"),
    "week_drained": Scale(1, 5, False, "how drained the week left them (5 = completely)"),
    "week_sleep": Scale(1, 5, True, "how they slept this week (5 = very well)"),
}
SOURCES = ("pmsys", "csv", "weekly-email")


@dataclass(frozen=True)
class CheckIn:
    person_id: str
    report_date: date
    scale: str
    value: float
    source: str
    recorded_at: datetime  # naive UTC

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"'{self.scale}' is not a check-in scale; known: {', '.join(SCALES)}.")
        scale = SCALES[self.scale]
        if not scale.low <= self.value <= scale.high:
            raise ValueError(f"{self.scale} runs from {scale.low:g} to {scale.high:g}; {self.value:g} is outside it.")
        if self.source not in SOURCES:
            raise ValueError(f"'{self.source}' is not a check-in source; known: {', '.join(SOURCES)}.")


def upsert_check_ins(store: Store, check_ins: list[CheckIn]) -> int:
    """Insert or replace by (person, date, scale, source); a batch is de-duplicated first (the last wins), since
    DuckDB keeps the first row of a key repeated within one statement. Returns the rows written."""
    if not check_ins:
        return 0
    latest = {(c.person_id, c.report_date, c.scale, c.source): c for c in check_ins}
    df = pd.DataFrame([vars(c) for c in latest.values()])
    with store.transaction() as cur:
        cur.register("incoming_check_ins", df)
        cur.execute(
            "INSERT INTO check_ins SELECT person_id, report_date, scale, value, source, recorded_at "
            "FROM incoming_check_ins ON CONFLICT (person_id, report_date, scale, source) DO UPDATE SET "
            "value = excluded.value, recorded_at = excluded.recorded_at")
        cur.unregister("incoming_check_ins")
    return len(df)


def load_check_ins(store: Store, person_id: str | None = None, first: date | None = None,
                   last: date | None = None) -> pd.DataFrame:
    return store.query_df(
        "SELECT person_id, report_date, scale, value, source, recorded_at FROM check_ins "
        "WHERE (CAST(? AS VARCHAR) IS NULL OR person_id = ?) AND (CAST(? AS DATE) IS NULL OR report_date >= ?) "
        "AND (CAST(? AS DATE) IS NULL OR report_date <= ?) ORDER BY person_id, report_date, scale",
        [person_id, person_id, first, first, last, last])
