"""Context tags a person gives their nights (illness, travel, on-call, night-shift, day-off), and what they do.

- illness: the night counts as an illness sign (holds an alert back) and stays out of baselines;
- travel: the night (and the jet-lag nights after) is not compared, and stays out of baselines;
- on-call: compared, but kept out of baselines (a broken on-call night is not the person's usual);
- night-shift: the main sleep is shift sleep, compared only with the person's other shift sleep;
- day-off: a free day for social jetlag; a person who tags days off keeps a roster, so weekends stop counting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from features.engine import FeatureRun, compute_features
from storage.store import NightRange, Store, utc_now
from features.thresholds import Thresholds

TAGS = ("illness", "travel", "on-call", "night-shift", "day-off")


class TagError(ValueError):
    pass


@dataclass(frozen=True)
class Tag:
    person_id: str
    tag: str
    first_night: date
    last_night: date


def _person_range(store: Store, person_id: str) -> NightRange | None:
    rows = store.query_rows(
        """
        SELECT min(d), max(d) FROM (
            SELECT night_date AS d FROM sleep_sessions WHERE person_id = $p
            UNION ALL SELECT day FROM daily_resting_hr WHERE person_id = $p
            UNION ALL SELECT night_date FROM nightly_hrv WHERE person_id = $p
            UNION ALL SELECT night_date FROM nightly_vitals WHERE person_id = $p
            UNION ALL SELECT day FROM daily_activity WHERE person_id = $p
        )
        """, {"p": person_id})
    first, last = rows[0]
    return NightRange(first, last) if first is not None else None


def add_tag(store: Store, person_id: str, tag: str, first_night: date, last_night: date,
            thresholds: Thresholds = Thresholds()) -> FeatureRun:
    """Tag the nights (wake dates) first..last, then recompute the person's features and signals.

    The whole history is recomputed, not just the tagged nights: a first day-off tag turns weekends into
    ordinary days for social jetlag, and a tagged night leaves the baselines of the 60 nights after it."""
    if tag not in TAGS:
        raise TagError(f"'{tag}' is not a tag emberwatch knows; use one of: {', '.join(TAGS)}.")
    if last_night < first_night:
        raise TagError(f"The tag ends ({last_night}) before it starts ({first_night}); swap --from and --to.")
    store.person(person_id)  # a clear error for an unknown id
    with store.cursor() as cur:
        cur.execute(
            "INSERT INTO tags VALUES (?, ?, ?, ?, ?) ON CONFLICT (person_id, tag, first_night) "
            "DO UPDATE SET last_night = excluded.last_night, tagged_at = excluded.tagged_at",
            [person_id, tag, first_night, last_night, utc_now()])
    span = _person_range(store, person_id)
    if span is None:
        return FeatureRun(0, 0, 0)
    return compute_features(store, {person_id: span}, thresholds)


def list_tags(store: Store, person_id: str) -> list[Tag]:
    store.person(person_id)  # a clear error for an unknown id
    rows = store.query_rows(
        "SELECT person_id, tag, first_night, last_night FROM tags WHERE person_id = ? ORDER BY first_night, tag",
        [person_id])
    return [Tag(*r) for r in rows]
