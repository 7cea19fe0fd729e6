"""Replay the stored night signals night by night through the production alert rule, and score the result.

The features are computed once for the whole history (incremental runs equal a full rebuild; tested), but the
alert decisions are replayed night by night through `alerts.rules.decide` with the same history window and the
same budget / re-arm state that the nightly run keeps, so the counts are what production would have sent.

Person-months: the nights from a person's first night past warm-up to their last night with data, / 30.44.
An alert cannot happen before warm-up, so counting warm-up time would flatter the rate.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Sequence

from alerts.nightly_alert import HISTORY_DAYS, load_signals
from alerts.rules import AlertRules, NightSignal, Outcome, decide
from storage.store import Store

DAYS_PER_MONTH = 30.44
# A scripted rough patch counts as caught when an alert falls within this many days of its onset (issue 4).
RECALL_WITHIN_DAYS = 7
# An alert this many days after an illness patch ends is still attributed to the illness.
ILLNESS_TAIL_DAYS = 7

@dataclass
class PersonBacktest:
    person_id: str
    nights: int  # nights with any data
    valid_nights: int
    comparable_nights: int
    flagged_nights: int  # comparable nights with either domain flagged
    months: float
    alerts: list[date] = field(default_factory=list)
    held_for_illness: int = 0  # nights where an alert was held back by an illness flag
    profile: str | None = None  # synthetic only: calm / rough / illness

    @property
    def alerts_per_month(self) -> float:
        return len(self.alerts) / self.months if self.months > 0 else 0.0

    @property
    def time_flagged(self) -> float:
        return self.flagged_nights / self.comparable_nights if self.comparable_nights else 0.0


@dataclass
class PatchScore:
    person_id: str
    kind: str
    onset_night: date
    end_night: date
    first_alert: date | None

    @property
    def lead_days(self) -> int | None:
        return (self.first_alert - self.onset_night).days if self.first_alert else None


@dataclass
class BacktestReport:
    people: list[PersonBacktest]
    patches: list[PatchScore] = field(default_factory=list)

    def _rate(self, people: Sequence[PersonBacktest]) -> float:
        months = sum(p.months for p in people)
        return sum(len(p.alerts) for p in people) / months if months else 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "people": len(self.people),
            "valid_nights": sum(p.valid_nights for p in self.people),
            "alerts": sum(len(p.alerts) for p in self.people),
            "person_months": round(sum(p.months for p in self.people), 2),
            "alerts_per_person_month": round(self._rate(self.people), 3),
            "time_flagged": round(
                sum(p.flagged_nights for p in self.people) / max(1, sum(p.comparable_nights for p in self.people)), 3),
        }
        if any(p.profile for p in self.people):
            calm = [p for p in self.people if p.profile == "calm"]
            rough = [s for s in self.patches if s.kind == "rough"]
            illness = [s for s in self.patches if s.kind == "illness"]
            caught = [s for s in rough if s.lead_days is not None and s.lead_days <= RECALL_WITHIN_DAYS]
            out |= {
                "rough_patches": len(rough),
                "rough_recall_within_7d": round(len(caught) / len(rough), 3) if rough else None,
                "median_lead_days": statistics.median([s.lead_days for s in caught]) if caught else None,
                "calm_people": len(calm),
                "calm_alerts": sum(len(p.alerts) for p in calm),
                "calm_alerts_per_person_month": round(self._rate(calm), 3),
                "illness_patches": len(illness),
                "illness_patches_alerted": sum(1 for s in illness if s.first_alert is not None),
            }
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.summary(),
            "people": [
                {"person_id": p.person_id, "profile": p.profile, "valid_nights": p.valid_nights,
                 "alerts": [d.isoformat() for d in p.alerts], "alerts_per_person_month": round(p.alerts_per_month, 3),
                 "months": round(p.months, 2), "time_flagged": round(p.time_flagged, 3),
                 "held_for_illness": p.held_for_illness}
                for p in self.people
            ],
            "patches": [
                {"person_id": s.person_id, "kind": s.kind, "onset_night": s.onset_night.isoformat(),
                 "first_alert": s.first_alert.isoformat() if s.first_alert else None, "lead_days": s.lead_days}
                for s in self.patches
            ],
        }


def replay_person(signals: Sequence[NightSignal], rules: AlertRules = AlertRules()) -> tuple[list[date], int]:
    """Decide every night in order, as the nightly run would, keeping the alerts already 'sent'.
    Returns the alert nights and how many nights were held back by an illness flag."""
    nights = [s.night_date for s in signals]
    alerts: list[date] = []
    held = 0
    for i, s in enumerate(signals):
        lo = bisect_left(nights, s.night_date - timedelta(days=HISTORY_DAYS))
        outcome = decide(s.night_date, signals[lo:i + 1], alerts, rules)
        if outcome is Outcome.ALERT:
            alerts.append(s.night_date)
        elif outcome is Outcome.ILLNESS:
            held += 1
    return alerts, held


def _synthetic_truth(store: Store) -> tuple[dict[str, str], list[Any]]:
    """Profiles and scripted patches, rebuilt from the persons' synthetic cohort settings."""
    from connectors.synthetic import SyntheticCohort

    profiles: dict[str, str] = {}
    patches: list[Any] = []
    seen: set[tuple] = set()
    for person in store.people(active_only=False):
        if person.source != "synthetic" or not person.source_config:
            continue
        cfg = person.source_config
        key = (cfg.get("n_people"), cfg.get("n_nights"), cfg.get("seed"), cfg.get("first_night"),
               cfg.get("device_wearers"))
        kwargs = {k: cfg[k] for k in ("n_people", "n_nights", "seed", "device_wearers") if k in cfg}
        if "first_night" in cfg:
            kwargs["first_night"] = date.fromisoformat(cfg["first_night"])
        cohort = SyntheticCohort(**kwargs)
        profiles[person.person_id] = cohort.person(person.person_id).profile
        if key not in seen:
            seen.add(key)
            patches.extend(cohort.ground_truth)
    return profiles, patches


def backtest(store: Store, rules: AlertRules = AlertRules()) -> BacktestReport:
    profiles, truth = _synthetic_truth(store)
    people: list[PersonBacktest] = []
    alerts_of: dict[str, list[date]] = {}
    for person in store.people(active_only=False):
        signals = load_signals(store, person.person_id)
        if not signals:
            continue
        alerts, held = replay_person(signals, rules)
        alerts_of[person.person_id] = alerts
        past_warmup = [s.night_date for s in signals if s.valid_night and not s.warming_up]
        months = ((signals[-1].night_date - past_warmup[0]).days + 1) / DAYS_PER_MONTH if past_warmup else 0.0
        people.append(PersonBacktest(
            person_id=person.person_id, nights=len(signals),
            valid_nights=sum(1 for s in signals if s.valid_night),
            comparable_nights=sum(1 for s in signals if s.comparable),
            flagged_nights=sum(1 for s in signals if s.comparable and (s.sleep_flag or s.recovery_flag)),
            months=months, alerts=alerts, held_for_illness=held, profile=profiles.get(person.person_id),
        ))
    scores = []
    for patch in truth:
        alerts = alerts_of.get(patch.person_id, [])
        until = patch.onset_night + timedelta(days=RECALL_WITHIN_DAYS) if patch.kind == "rough" \
            else patch.end_night + timedelta(days=ILLNESS_TAIL_DAYS)
        inside = [a for a in alerts if patch.onset_night <= a <= until]
        if patch.kind == "rough" and not inside:  # a late catch still has a lead time worth reporting
            inside = [a for a in alerts if patch.onset_night <= a <= patch.end_night]
        scores.append(PatchScore(patch.person_id, patch.kind, patch.onset_night, patch.end_night,
                                 min(inside) if inside else None))
    return BacktestReport(people, scores)


def format_report(report: BacktestReport) -> str:
    lines = [f"{'person':<10}{'profile':<9}{'valid':>6}{'alerts':>7}{'per month':>10}{'flagged':>9}{'ill-held':>9}"]
    for p in report.people:
        lines.append(f"{p.person_id:<10}{(p.profile or '-'):<9}{p.valid_nights:>6}{len(p.alerts):>7}"
                     f"{p.alerts_per_month:>10.2f}{p.time_flagged:>9.0%}{p.held_for_illness:>9}")
    lines.append("")
    lines += [f"{k}: {v}" for k, v in report.summary().items()]
    return "\n".join(lines)
