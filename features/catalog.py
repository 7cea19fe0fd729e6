"""The nightly features in one place: unit, which direction is worse, domain, and where the idea comes from.

SQL computes them (features/sql/); this catalog is what explanations, emails and docs read about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Feature:
    name: str
    unit: str
    domain: Literal["sleep", "recovery", "timing", "illness"]
    worse: Literal["up", "down"] | None  # None: neither direction is worse in itself (timing)
    floor: float  # smallest robust SD used in comparisons (ours, no published source): noise must not look large
    description: str
    source: str


FEATURES: dict[str, Feature] = {
    f.name: f
    for f in (
        Feature("tst_min", "min", "sleep", "down", 20.0, "Total sleep time of the main sleep", "SIGNALS.md (TST)"),
        Feature("efficiency_pct", "%", "sleep", "down", 2.0, "Minutes asleep / minutes in bed",
                "SIGNALS.md; < 85 % is a common clinical cut-off"),
        Feature("waso_min", "min", "sleep", "up", 8.0, "Wake after sleep onset", "SIGNALS.md (WASO)"),
        Feature("onset_latency_min", "min", "sleep", "up", 5.0, "Minutes to fall asleep", "SIGNALS.md"),
        Feature("awakenings_count", "count", "sleep", "up", 1.0, "Wake segments of 5 min or more",
                "SIGNALS.md (stage logs)"),
        Feature("midsleep_min", "min after midnight", "timing", None, 20.0,
                "Middle of the main sleep, minutes from the midnight that begins the wake date", "SIGNALS.md"),
        Feature("resting_hr_bpm", "bpm", "recovery", "up", 1.5, "Daily resting heart rate",
                "NightSignal (Alavi et al., Nat Med 2022)"),
        Feature("ln_rmssd", "ln(ms)", "recovery", "down", 0.08, "Natural log of overnight RMSSD",
                "Plews et al., IJSPP 2014"),
    )
}
