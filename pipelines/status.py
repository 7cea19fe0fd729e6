"""What `emberwatch status` shows: where each person stands, without any health value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from storage.store import Store


@dataclass(frozen=True)
class PersonStatus:
    person_id: str
    sources: str  # every device and export the person has, in the order they were added ("fitbit-export+oura")
    status: str
    last_night: date | None
    valid_nights: int
    warming_up: bool
    last_alert: date | None
    quarantined: int


def status_rows(store: Store) -> list[PersonStatus]:
    rows = store.query_rows(
        """
        SELECT p.person_id,
            coalesce((SELECT string_agg(s.source, '+' ORDER BY s.added_at, s.source) FROM person_sources s
                      WHERE s.person_id = p.person_id), p.source),
            p.status,
            (SELECT max(night_date) FROM nightly_features f WHERE f.person_id = p.person_id),
            (SELECT count(*) FROM nightly_features f WHERE f.person_id = p.person_id AND f.valid_night),
            -- the latest valid night's: a missed night has no baseline and would read as warming up again
            coalesce((SELECT s.warming_up FROM night_signals s WHERE s.person_id = p.person_id AND s.valid_night
                      ORDER BY s.night_date DESC LIMIT 1), true),
            (SELECT max(night_date) FROM alerts a WHERE a.person_id = p.person_id),
            (SELECT count(*) FROM quarantine q WHERE q.person_id = p.person_id)
        FROM persons p ORDER BY p.person_id
        """
    )
    return [PersonStatus(*r) for r in rows]
