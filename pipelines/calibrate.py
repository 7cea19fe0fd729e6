"""Keep each person's sleep calibration (features/calibration.py) in step with their check-ins.

- `calibrate_tonight`: in the nightly run, after the features: decide as of each person's latest night; a change
  applies from the next night, so no stored night changes.
- `recalibrate_history`: after check-ins are imported (reports about past mornings), decide again as of every
  day, as the nightly run would have; where the steps change, the signals are recomputed from the first night
  they change, so history reads as if the reports had been there all along.
Only people with check-ins have evidence; everyone else keeps the default thresholds and costs one query.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from features.calibration import CalibrationRules, evidence_as_of, steps_over_history
from features.engine import compute_features
from features.thresholds import Thresholds
from storage.calibration import (CalibrationStep, load_all_steps, load_steps, pending_recompute, recomputed,
                                 replace_steps, widening_on)
from storage.check_ins import load_check_ins
from storage.store import NightRange, Store


_SHORT_NIGHTS = ("SELECT person_id, night_date FROM night_signals WHERE {who} AND valid_night AND NOT travel_context "
                 "AND NOT warming_up AND tst_z <= ? ORDER BY person_id, night_date")


def _short_nights(store: Store, person_id: str, thresholds: Thresholds) -> list[date]:
    """Comparable nights short at the *default* threshold: the evidence must not depend on its own result."""
    return [r[1] for r in store.query_rows(_SHORT_NIGHTS.format(who="person_id = ?"),
                                           [person_id, -thresholds.z_sleep])]


def _reports(store: Store, person_id: str | None = None) -> pd.DataFrame:
    df = load_check_ins(store, person_id)
    return df.assign(report_date=pd.to_datetime(df["report_date"]).dt.date)


def calibrate_tonight(store: Store, person_ids: list[str], thresholds: Thresholds = Thresholds(),
                      rules: CalibrationRules = CalibrationRules()) -> dict[str, float]:
    """Returns the people whose widening changed, and to what. Everything is read in four queries for the whole
    run (a nightly run touches every person), then decided person by person in memory."""
    with_reports = [r[0] for r in store.query_rows(
        "SELECT DISTINCT person_id FROM check_ins WHERE list_contains(?, person_id) ORDER BY 1", [person_ids])]
    if not with_reports:
        return {}
    latest = dict(store.query_rows(
        "SELECT person_id, max(night_date) FROM night_signals WHERE list_contains(?, person_id) GROUP BY 1",
        [with_reports]))
    short: dict[str, list[date]] = {}
    for pid, night in store.query_rows(_SHORT_NIGHTS.format(who="list_contains(?, person_id)"),
                                       [with_reports, -thresholds.z_sleep]):
        short.setdefault(pid, []).append(night)
    reports = _reports(store)
    steps_of: dict[str, list[CalibrationStep]] = {}
    for step in load_all_steps(store, with_reports):
        steps_of.setdefault(step.person_id, []).append(step)
    changed: dict[str, float] = {}
    for pid, mine in reports[reports["person_id"].isin(with_reports)].groupby("person_id"):
        if latest.get(pid) is None:
            continue
        steps = steps_of.get(pid, [])
        evidence = evidence_as_of(short.get(pid, []), mine, latest[pid], rules)
        applies_from = latest[pid] + timedelta(days=1)
        in_force = widening_on(steps, applies_from)
        widening = evidence.widening(rules, in_force)
        if widening != in_force:
            kept = [s for s in steps if s.applies_from < applies_from]
            replace_steps(store, pid, kept + [CalibrationStep(pid, applies_from, widening, evidence.checks,
                                                               evidence.disagreements)])
            changed[pid] = widening
    return changed


def recalibrate_history(store: Store, person_id: str, thresholds: Thresholds = Thresholds(),
                        rules: CalibrationRules = CalibrationRules()) -> date | None:
    """Returns the first night whose signals were recomputed, or None when nothing changed."""
    reports = _reports(store, person_id)
    span = store.query_rows("SELECT min(night_date), max(night_date) FROM night_signals WHERE person_id = ?",
                            [person_id])[0]
    if reports.empty or span[0] is None:
        return None
    first_day = max(min(reports["report_date"]), span[0])
    decided = [CalibrationStep(person_id, day, widening, e.checks, e.disagreements)
               for day, widening, e in steps_over_history(_short_nights(store, person_id, thresholds), reports,
                                                          first_day, span[1], rules)]
    stored = load_steps(store, person_id)
    pending = pending_recompute(store, person_id)  # left by a run that died before recomputing
    if decided == stored and pending is None:
        return None
    changed_from = min([s.applies_from for s in set(decided) ^ set(stored)] + ([pending] if pending else []))
    if decided != stored:
        replace_steps(store, person_id, decided, recompute_from=changed_from)
    if changed_from <= span[1]:
        compute_features(store, {person_id: NightRange(changed_from, span[1])}, thresholds)
    recomputed(store, person_id)
    return changed_from
