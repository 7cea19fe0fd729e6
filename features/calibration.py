"""Per-person calibration of the sleep threshold, bounded and explained (issue 16).

The rules are set once for everyone, from physiology and the literature, never fitted to a person. But the signals
answer to the people who wear them: where a person's own check-ins say, again and again, that they felt as usual
after nights emberwatch counts as short, their sleep threshold widens, so emberwatch speaks only of a clearer
change. It never narrows below the default (the reports are evidence that a flag was not felt, not that a smaller
change would have been), it widens by one documented step only, and it steps back when the evidence goes.

Evidence, as of a day D (only what was known on D, so replaying history gives what the nightly run decided):
- a *check* is a short night in the 90 days up to D (comparable, total sleep robust z <= -Thresholds.z_sleep, the
  default whatever the person's widening, so the evidence does not depend on its own result) with the person's
  own report beside it: a morning report that morning (fatigue or sleep quality, z-scored on the person's own
  reports up to D), or a weekly answer for a week holding >= 2 such nights;
- it *disagrees* when the person felt as usual or better: every reported morning scale at or above their own
  mean, or the week left them "not at all" or "a little" drained.
Decision (with >= 10 checks; fewer change nothing): >= 75 % disagreeing -> widen by 0.5 robust SD (1.5 -> 2.0: a night then has to be
in about the person's shortest 2 % of usual nights rather than 7 %). Both numbers are ours: if flags and
reports were unrelated, a short night's morning would be as-usual-or-better about half the time, and 8 or more
of 10 happens by chance about 5 % of the time. Back to the default when under half of >= 10 checks disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

MORNING_SCALES = ("fatigue", "sleep_quality")  # both: higher = better (storage.check_ins.SCALES)
MORNING_SOURCES = ("pmsys", "csv")
MIN_REPORTS_FOR_Z = 10  # a person's own mean and SD need this many reports of a scale
WEEK_NOT_DRAINED = 2.0  # week_drained answers 1-2: "not at all", "a little"
WEEK_MIN_SHORT_NIGHTS = 2


@dataclass(frozen=True)
class CalibrationRules:
    look_back_days: int = 90
    min_checks: int = 10
    disagree_share: float = 0.75
    widen_sd: float = 0.5  # the one step, and so the limit
    agree_again_share: float = 0.5  # back to the default once fewer than half of >= min_checks disagree


@dataclass(frozen=True)
class Evidence:
    checks: int
    disagreements: int

    def widening(self, rules: CalibrationRules, current: float = 0.0) -> float:
        """The widening to hold, given the one in force. Too little evidence changes nothing either way: a
        widening stays until enough checks say the flags are felt again (under half disagreeing), so it does not
        flicker as old nights leave the look-back."""
        if self.checks < rules.min_checks:
            return current
        share = self.disagreements / self.checks
        if share >= rules.disagree_share:
            return rules.widen_sd
        if share < rules.agree_again_share:
            return 0.0
        return current


def _morning_agreement(reports: pd.DataFrame, as_of: date) -> dict[date, bool]:
    """Reported mornings up to `as_of` -> True when the person felt as usual or better on every reported scale
    (z on their own reports up to `as_of`)."""
    known = reports[(reports["report_date"] <= as_of) & reports["scale"].isin(MORNING_SCALES)
                    & reports["source"].isin(MORNING_SOURCES)]
    felt_ok: dict[date, bool] = {}
    for _, rows in known.groupby("scale"):
        values = rows["value"].to_numpy(dtype=float)
        if len(values) < MIN_REPORTS_FOR_Z or np.std(values) == 0:
            continue
        mean = values.mean()
        for day, value in zip(rows["report_date"], values):
            felt_ok[day] = felt_ok.get(day, True) and bool(value >= mean)
    return felt_ok


def evidence_as_of(short_nights: list[date], reports: pd.DataFrame, as_of: date,
                   rules: CalibrationRules = CalibrationRules()) -> Evidence:
    """`short_nights`: the person's comparable nights whose total sleep was short at the default threshold;
    `reports`: their check-ins (report_date, scale, value, source)."""
    since = as_of - timedelta(days=rules.look_back_days - 1)
    recent_short = sorted(d for d in short_nights if since <= d <= as_of)
    mornings = _morning_agreement(reports, as_of)
    checks = [mornings[d] for d in recent_short if d in mornings]
    weekly = reports[(reports["scale"] == "week_drained") & (reports["source"] == "weekly-email")
                     & (reports["report_date"] >= since) & (reports["report_date"] <= as_of)]
    for sunday, drained in zip(weekly["report_date"], weekly["value"]):
        in_week = sum(1 for d in recent_short if sunday - timedelta(days=6) <= d <= sunday)
        if in_week >= WEEK_MIN_SHORT_NIGHTS:
            checks.append(float(drained) <= WEEK_NOT_DRAINED)
    return Evidence(len(checks), sum(1 for c in checks if c))


def steps_over_history(short_nights: list[date], reports: pd.DataFrame, first_day: date, last_day: date,
                       rules: CalibrationRules = CalibrationRules()) -> list[tuple[date, float, Evidence]]:
    """Decide as of every day from `first_day` to `last_day`, as the nightly run would have (`reports` as for
    `evidence_as_of`, report_date a datetime.date); one step
    (applies_from = the day after, widening, evidence) wherever the widening changes."""
    steps: list[tuple[date, float, Evidence]] = []
    current = 0.0
    day = first_day
    while day <= last_day:
        evidence = evidence_as_of(short_nights, reports, day, rules)
        widening = evidence.widening(rules, current)
        if widening != current:
            steps.append((day + timedelta(days=1), widening, evidence))
            current = widening
        day += timedelta(days=1)
    return steps
