"""The alert rule's edges: warm-up, both domains, illness, the 14-day budget and re-arming."""

from __future__ import annotations

from datetime import date, timedelta

from alerts.rules import AlertRules, NightSignal, Outcome, decide, persisting_nights

D0 = date(2026, 3, 1)


def nights(spec: str, start: date = D0) -> list[NightSignal]:
    """One character per night: '.' in range, 'B' both domains flagged, 'S' sleep only, 'I' both + illness,
    'W' warming up, '-' no valid night. Recovery is measured (the source has HRV) on every valid night."""
    out = []
    for i, c in enumerate(spec):
        out.append(NightSignal(
            night_date=start + timedelta(days=i), valid_night=c != "-", warming_up=c == "W",
            sleep_flag=c in "BSI", recovery_flag=c in "BI", illness_flag=c == "I",
            sleep_deviates=c in "BSI" if c != "-" else None,
            recovery_deviates=c in "BI" if c != "-" else None))
    return out


def without_hrv(history):
    """The same nights from a source without overnight HRV: the recovery domain is not measured."""
    return [NightSignal(**{**s.__dict__, "recovery_flag": False, "recovery_deviates": None}) for s in history]


def last(history):
    return history[-1].night_date


def test_both_domains_past_warm_up_alert():
    h = nights("....B")
    assert decide(last(h), h, []) is Outcome.ALERT


def test_warming_up_never_alerts_even_when_flags_are_set():
    h = [NightSignal(D0, True, True, True, True, False)]
    assert decide(D0, h, []) is Outcome.WARMING_UP


def test_one_domain_alone_does_not_alert():
    h = nights("....S")
    assert decide(last(h), h, []) is Outcome.ONE_DOMAIN


def test_illness_holds_the_alert_back():
    h = nights("....I")
    assert decide(last(h), h, []) is Outcome.ILLNESS


def test_missing_night_decides_nothing():
    h = nights("....-")
    assert decide(last(h), h, []) is Outcome.NO_DATA


def test_budget_is_one_alert_per_fourteen_days():
    h = nights("B" + "." * 5 + "B" * 8)  # night 0 alerted; night 13 is day 13 after it
    assert decide(h[13].night_date, h, [D0]) is Outcome.COOLDOWN
    h = nights("B" + "." * 5 + "B" * 9)  # night 14: budget allows, 5 in-range nights since: re-armed
    assert decide(h[14].night_date, h, [D0]) is Outcome.ALERT


def test_rearm_needs_three_in_range_nights_after_the_last_alert():
    h = nights("B" + "B" * 12 + ".." + "B" * 3)  # only 2 in-range nights since the alert
    assert decide(last(h), h, [D0]) is Outcome.NOT_REARMED
    h = nights("B" + "B" * 12 + "..." + "B" * 3)
    assert decide(last(h), h, [D0]) is Outcome.ALERT


def test_redeciding_a_night_ignores_its_own_alert_and_later_ones():
    h = nights("....B....")
    night = h[4].night_date
    assert decide(night, h, [night, night + timedelta(days=3)]) is Outcome.ALERT


def test_persisting_nights_counts_the_current_run_of_flagged_nights():
    h = nights("BB.SBB")
    assert persisting_nights(last(h), h) == 3
    assert AlertRules().cooldown_days == 14 and AlertRules().rearm_in_range_nights == 3


def test_one_domain_strongly_and_for_longer_alerts_only_when_the_setting_is_on():
    h = nights("....S")
    strong = [NightSignal(**{**s.__dict__, "sleep_strong_flag": s is h[-1]}) for s in h]
    assert decide(last(strong), strong, []) is Outcome.ONE_DOMAIN  # off by default (see docs/signals.md)
    assert decide(last(strong), strong, [], AlertRules(single_domain_strong=True)) is Outcome.ALERT
    ill = [NightSignal(**{**s.__dict__, "illness_flag": True}) for s in strong]
    assert decide(last(ill), ill, [], AlertRules(single_domain_strong=True)) is Outcome.ILLNESS


def test_without_hrv_sleep_for_longer_alerts_and_a_short_stretch_does_not():
    h = without_hrv(nights("....S"))
    assert decide(last(h), h, []) is Outcome.ONE_DOMAIN  # 2 of 3 nights: a flag, not yet an alert
    longer = [NightSignal(**{**s.__dict__, "sleep_strong_flag": s is h[-1]}) for s in h]
    assert decide(last(longer), longer, []) is Outcome.ALERT  # tonight and >= 3 of the last 5
    assert decide(last(longer), longer, [], AlertRules(sleep_alone_without_hrv=False)) is Outcome.ONE_DOMAIN
    ill = [NightSignal(**{**s.__dict__, "illness_flag": True}) for s in longer]
    assert decide(last(ill), ill, []) is Outcome.ILLNESS


def test_where_hrv_is_measured_sleep_for_longer_alone_does_not_alert():
    h = nights("....S")  # recovery measured and in range
    longer = [NightSignal(**{**s.__dict__, "sleep_strong_flag": s is h[-1]}) for s in h]
    assert decide(last(longer), longer, []) is Outcome.ONE_DOMAIN
