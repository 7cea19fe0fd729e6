"""The stored per-person sleep calibration steps (migration 010; decided by features/calibration.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from storage.store import Store, utc_now


@dataclass(frozen=True)
class CalibrationStep:
    person_id: str
    applies_from: date  # the first night this widening applies to
    z_sleep_extra: float  # robust SDs added to the default sleep threshold (0 = back to the default)
    checks: int
    disagreements: int


def load_steps(store: Store, person_id: str) -> list[CalibrationStep]:
    return load_all_steps(store, [person_id])


def load_all_steps(store: Store, person_ids: list[str]) -> list[CalibrationStep]:
    return [CalibrationStep(*r) for r in store.query_rows(
        "SELECT person_id, applies_from, z_sleep_extra, checks, disagreements FROM sleep_calibration "
        "WHERE list_contains(?, person_id) ORDER BY person_id, applies_from", [person_ids])]


def replace_steps(store: Store, person_id: str, steps: list[CalibrationStep],
                  recompute_from: date | None = None) -> None:
    """The person's steps become exactly `steps` (one transaction: a rebuild never sees half of them). With
    `recompute_from`, the same transaction records that their nights from then on are still to be recomputed
    (`pending_recompute` / `recomputed`)."""
    with store.transaction() as cur:
        if recompute_from is not None:
            cur.execute("INSERT INTO sleep_calibration_pending VALUES (?, ?) ON CONFLICT (person_id) DO UPDATE SET "
                        "recompute_from = least(recompute_from, excluded.recompute_from)", [person_id, recompute_from])
        cur.execute("DELETE FROM sleep_calibration WHERE person_id = ?", [person_id])
        now = utc_now()
        for s in steps:
            cur.execute("INSERT INTO sleep_calibration VALUES (?, ?, ?, ?, ?, ?)",
                        [s.person_id, s.applies_from, s.z_sleep_extra, s.checks, s.disagreements, now])


def pending_recompute(store: Store, person_id: str) -> date | None:
    rows = store.query_rows("SELECT recompute_from FROM sleep_calibration_pending WHERE person_id = ?", [person_id])
    return rows[0][0] if rows else None


def recomputed(store: Store, person_id: str) -> None:
    with store.cursor() as cur:
        cur.execute("DELETE FROM sleep_calibration_pending WHERE person_id = ?", [person_id])


def widening_on(steps: list[CalibrationStep], night: date) -> float:
    """The widening in force on `night` (0 before the first step)."""
    current = 0.0
    for s in steps:
        if s.applies_from <= night:
            current = s.z_sleep_extra
    return current
