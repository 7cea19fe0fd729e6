"""The alert rule (docs/signals.md, "How a night becomes an alert"), as a pure function of one person's night
signals and past alerts.

An alert needs: the person past warm-up; on the night itself both domains flagged (each deviating that night and
on >= 2 of the last 3 comparable nights), or, where the source measures no overnight HRV (no recovery domain),
sleep deviating tonight and on >= 3 of the last 5 (`sleep_alone_without_hrv`), or, when `single_domain_strong`
is on, one domain so for longer; no illness flag (breathing rate / temperature explain the pattern better); at most
one alert per 14 days; and, after an alert, 3 in-range nights before the rule can fire again (hysteresis).
The backtest replays history through this same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Sequence


@dataclass(frozen=True)
class AlertRules:
    # Alert budget: at most one alert email per 14 days, re-armed after 3 in-range nights (hysteresis). Both
    # numbers are ours, no published source; NightSignal saw ~1.15 alert-days per person from everyday stressors
    # alone (Alavi et al., Nat Med 2022), and false alarms cost trust.
    cooldown_days: int = 14
    rearm_in_range_nights: int = 3
    # Both domains flagged (two domains changing together: Beiwe, Barnett et al. 2018), or, as a documented
    # setting with no published source, one domain strongly and persistently.
    # When True, one domain deviating on >= Thresholds.strong_min_nights of the last strong_window_nights
    # comparable nights may alert alone. Effect on the synthetic backtest: see docs/signals.md.
    single_domain_strong: bool = False
    # Where the source measures no overnight HRV (e.g. a Fitbit account export), the recovery domain does not
    # exist, so "both domains" could never hold and such a person would never hear from emberwatch. There, sleep
    # alone may alert when it deviates for longer (Thresholds.strong_*: tonight and >= 3 of the last 5 nights,
    # the frequency of clinical definitions of disturbed sleep), under the same illness hold, budget and re-arm.
    # Issue 16: on the 16 PMData exports this gives 0.19 alerts per person-month (docs/signals.md).
    sleep_alone_without_hrv: bool = True


@dataclass(frozen=True)
class NightSignal:
    night_date: date
    valid_night: bool
    warming_up: bool
    sleep_flag: bool
    recovery_flag: bool
    illness_flag: bool
    sleep_deviates: bool | None = None
    recovery_deviates: bool | None = None
    travel_context: bool = False
    sleep_strong_flag: bool = False  # one domain strongly and for longer (see AlertRules.single_domain_strong)
    recovery_strong_flag: bool = False

    @property
    def comparable(self) -> bool:
        return self.valid_night and not self.warming_up and not self.travel_context

    @property
    def in_range(self) -> bool:
        return self.comparable and not self.sleep_flag and not self.recovery_flag


class Outcome(StrEnum):
    ALERT = "alert"
    NO_DATA = "no comparable night"
    TRAVEL = "travelling or just back: not compared"
    WARMING_UP = "warming up"
    QUIET = "signals within the usual range"
    ONE_DOMAIN = "only one domain flagged"
    ILLNESS = "held back: looks more like illness"
    COOLDOWN = "held back: an alert was sent in the last 14 days"
    NOT_REARMED = "held back: not yet 3 in-range nights since the last alert"


def decide(
    night: date,
    history: Sequence[NightSignal],
    previous_alerts: Sequence[date],
    rules: AlertRules = AlertRules(),
) -> Outcome:
    """Decide for `night` from the person's signals (any order; nights after `night` are ignored) and the nights
    of earlier alerts (alerts on or after `night` are ignored, so re-deciding a night gives the same answer)."""
    by_night = {s.night_date: s for s in history if s.night_date <= night}
    today = by_night.get(night)
    if today is None or not today.valid_night:
        return Outcome.NO_DATA
    if today.travel_context:
        return Outcome.TRAVEL
    if today.warming_up:
        return Outcome.WARMING_UP
    if not (today.sleep_flag or today.recovery_flag):
        return Outcome.QUIET
    both = today.sleep_flag and today.recovery_flag
    strong_alone = rules.single_domain_strong and (today.sleep_strong_flag or today.recovery_strong_flag)
    strong_alone = strong_alone or (rules.sleep_alone_without_hrv and today.recovery_deviates is None
                                    and today.sleep_strong_flag)
    if not (both or strong_alone):
        return Outcome.ONE_DOMAIN
    if today.illness_flag:
        return Outcome.ILLNESS
    earlier = [a for a in previous_alerts if a < night]
    if earlier:
        last = max(earlier)
        if night - last < timedelta(days=rules.cooldown_days):
            return Outcome.COOLDOWN
        in_range = sum(1 for s in by_night.values() if last < s.night_date < night and s.in_range)
        if in_range < rules.rearm_in_range_nights:
            return Outcome.NOT_REARMED
    return Outcome.ALERT


def persisting_nights(night: date, history: Sequence[NightSignal]) -> int:
    """Comparable nights in a row, ending at `night`, with at least one domain flagged."""
    count = 0
    for s in sorted((s for s in history if s.night_date <= night and s.comparable), key=lambda s: s.night_date,
                    reverse=True):
        if not (s.sleep_flag or s.recovery_flag):
            break
        count += 1
    return count
