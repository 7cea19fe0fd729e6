"""Run the alert rule (alerts.rules) for a person-night against the store, and keep each alert with its explanation."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date, timedelta

from alerts.message_types import AlertExplanation, FeatureMove
from alerts.rules import AlertRules, NightSignal, Outcome, decide, persisting_nights
from alerts.strategies import choose_strategy
from features.catalog import FEATURES
from features.recent_vs_usual import Comparison, compare_nights
from storage.store import Store, utc_now
from features.thresholds import Thresholds


# The rule reads this many days of signals before deciding a night (the backtest replays with the same window).
HISTORY_DAYS = 120
_SIGNAL_COLUMNS = ", ".join(f.name for f in fields(NightSignal))


def load_signals(store: Store, person_id: str, through: date | None = None,
                 days_back: int = HISTORY_DAYS) -> list[NightSignal]:
    """The person's night signals in date order: the `days_back` days up to `through`, or all of them."""
    if through is None:
        rows = store.query_rows(
            f"SELECT {_SIGNAL_COLUMNS} FROM night_signals WHERE person_id = ? ORDER BY night_date", [person_id])
    else:
        rows = store.query_rows(
            f"SELECT {_SIGNAL_COLUMNS} FROM night_signals WHERE person_id = ? AND night_date BETWEEN ? AND ? "
            "ORDER BY night_date", [person_id, through - timedelta(days=days_back), through])
    return [NightSignal(*r) for r in rows]


def previous_alert_nights(store: Store, person_id: str) -> list[date]:
    return [r[0] for r in store.query_rows(
        "SELECT night_date FROM alerts WHERE person_id = ? ORDER BY night_date", [person_id])]


def to_move(c: Comparison) -> FeatureMove:
    feature = FEATURES[c.feature]
    direction = "up" if c.recent_median >= c.baseline_median else "down"
    return FeatureMove(
        feature=c.feature, direction=direction, worse=feature.worse == direction, robust_z=round(c.robust_z, 3),
        baseline_median=round(c.baseline_median, 3), recent_median=round(c.recent_median, 3), unit=feature.unit,
    )


def explain(
    store: Store, person_id: str, night: date, history: list[NightSignal], thresholds: Thresholds
) -> AlertExplanation:
    today = next(s for s in history if s.night_date == night)
    # the longer of the two persistence windows, so a sleep-alone alert (3 of 5) shows all the nights it rests on
    span = max(thresholds.flag_window_nights, thresholds.strong_window_nights)
    window = [s for s in history if s.comparable and s.night_date <= night][-span:]
    flagged = [s.night_date for s in window if s.sleep_deviates or s.recovery_deviates]
    domains = tuple(d for d, on in (("sleep", today.sleep_flag), ("recovery", today.recovery_flag)) if on)
    comparisons = compare_nights(store, person_id, [s.night_date for s in window], night, thresholds)
    # Only what moved noticeably goes into the explanation (and so into the words of the email).
    moves = tuple(to_move(c) for c in comparisons if abs(c.robust_z) >= 1.0)
    persisting = persisting_nights(night, history)
    return AlertExplanation(
        person_id=person_id, night_date=night, domains=domains,  # type: ignore[arg-type]
        window_nights=tuple(s.night_date for s in window), flagged_nights=tuple(flagged), moves=moves,
        baseline_nights=max((c.baseline_nights for c in comparisons), default=0),
        persisting_nights=persisting,
        strategy=choose_strategy(domains, persisting, rotation_key=f"{person_id}:{night}"),
    )


def explanation_to_json(e: AlertExplanation) -> str:
    return json.dumps(asdict(e), default=str, sort_keys=True)


def explanation_from_json(text: str) -> AlertExplanation:
    d = json.loads(text)
    return AlertExplanation(
        person_id=d["person_id"], night_date=date.fromisoformat(d["night_date"]), domains=tuple(d["domains"]),
        window_nights=tuple(date.fromisoformat(x) for x in d["window_nights"]),
        flagged_nights=tuple(date.fromisoformat(x) for x in d["flagged_nights"]),
        moves=tuple(FeatureMove(**m) for m in d["moves"]), baseline_nights=d["baseline_nights"],
        persisting_nights=d["persisting_nights"], strategy=d["strategy"],
    )


def alert_for_night(
    store: Store, person_id: str, night: date,
    thresholds: Thresholds = Thresholds(), rules: AlertRules = AlertRules(),
) -> tuple[Outcome, AlertExplanation | None]:
    """Decide once; a night already decided as an alert returns the stored explanation (re-runs are safe)."""
    stored = store.query_rows(
        "SELECT explanation_json FROM alerts WHERE person_id = ? AND night_date = ?", [person_id, night])
    if stored:
        return Outcome.ALERT, explanation_from_json(stored[0][0])
    history = load_signals(store, person_id, night)
    outcome = decide(night, history, previous_alert_nights(store, person_id), rules)
    if outcome is not Outcome.ALERT:
        return outcome, None
    explanation = explain(store, person_id, night, history, thresholds)
    with store.cursor() as cur:
        cur.execute(
            "INSERT INTO alerts VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [person_id, night, ",".join(explanation.domains), explanation_to_json(explanation), utc_now()],
        )
    return outcome, explanation
