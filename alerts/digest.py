"""Build one person's weekly summary (Monday..Sunday of wake dates) from their features and signals."""

from __future__ import annotations

from datetime import date, timedelta

from alerts.nightly_alert import to_move
from alerts.message_types import WeekSummary
from alerts.strategies import choose_strategy
from features.catalog import FEATURES
from features.recent_vs_usual import compare_nights
from storage.store import Store
from features.thresholds import Thresholds

# A feature "went well" when it was steady (within half a robust SD of the usual) or moved the better way.
STEADY_Z = 0.5
# What the week says in words: only features that moved at least this far (robust SDs).
NOTABLE_Z = 1.0


def week_of(day: date) -> tuple[date, date]:
    """The last complete Monday..Sunday week that ends before `day`."""
    last_sunday = day - timedelta(days=day.isoweekday() % 7 or 7)
    return last_sunday - timedelta(days=6), last_sunday


def period_key(week_start: date) -> str:
    year, week, _ = week_start.isocalendar()
    return f"{year}-W{week:02d}"


def build_week_summary(
    store: Store, person_id: str, week_start: date, thresholds: Thresholds = Thresholds()
) -> WeekSummary:
    week_end = week_start + timedelta(days=6)
    rows = store.query_rows(
        "SELECT night_date, valid_night, warming_up, sleep_deviates, recovery_deviates, illness_flag, "
        "sleep_flag, recovery_flag FROM night_signals WHERE person_id = ? AND night_date BETWEEN ? AND ? "
        "ORDER BY night_date", [person_id, week_start, week_end])
    valid_total = store.query_rows(
        "SELECT count(*) FROM nightly_features WHERE person_id = ? AND valid_night AND night_date <= ?",
        [person_id, week_end])[0][0]
    valid_week = [r for r in rows if r[1]]
    warming_up = not any(r[1] and not r[2] for r in rows)
    alerts_this_week = store.query_rows(
        "SELECT count(*) FROM alerts WHERE person_id = ? AND night_date BETWEEN ? AND ?",
        [person_id, week_start, week_end])[0][0]
    # Their own answers to last week's question, to show beside this week's signals in their words.
    told_us = tuple((r[0], float(r[1])) for r in store.query_rows(
        "SELECT scale, value FROM check_ins WHERE person_id = ? AND report_date = ? AND source = 'weekly-email' "
        "ORDER BY scale", [person_id, week_start - timedelta(days=1)]))
    # A calibration step decided during this week applies from the night after it was decided.
    calibration = store.query_rows(
        "SELECT z_sleep_extra FROM sleep_calibration WHERE person_id = ? AND applies_from BETWEEN ? AND ? "
        "ORDER BY applies_from DESC LIMIT 1", [person_id, week_start + timedelta(days=1), week_end + timedelta(days=1)])
    if warming_up:
        # Comparisons need a baseline of `warmup_nights` valid nights that ends a week before the night.
        nights_left = max(thresholds.warmup_nights + thresholds.baseline_end_days - valid_total, 1)
        [(earlier,)] = store.query_rows(
            "SELECT count(*) FROM email_ledger WHERE person_id = ? AND kind = 'digest' AND period_key < ?",
            [person_id, period_key(week_start)])
        return WeekSummary(person_id, week_start, week_end, True, valid_total, nights_left, len(valid_week),
                           told_us=told_us, had_check_in_before=earlier > 0)
    comparisons = compare_nights(store, person_id, [r[0] for r in valid_week], week_end, thresholds)
    moves = tuple(to_move(c) for c in comparisons if abs(c.robust_z) >= NOTABLE_Z)
    went_well = tuple(
        c.feature for c in comparisons
        if FEATURES[c.feature].worse is not None and (
            abs(c.robust_z) < STEADY_Z
            or (FEATURES[c.feature].worse == "down" and c.robust_z > 0)
            or (FEATURES[c.feature].worse == "up" and c.robust_z < 0))
    )
    sleep_nights = sum(1 for r in valid_week if r[3])
    recovery_nights = sum(1 for r in valid_week if r[4])
    # illness signs in a week whose sleep or recovery got worse (a night deviating or flagged, or a week's median
    # the words name as worse): not only the nights where they held an alert back (sleep and recovery flagged
    # together), or an ill week reads as a heavy one
    worse_week = any(m.worse for m in moves) or any(r[3] or r[4] or r[6] or r[7] for r in rows)
    illness_explains = worse_week and any(r[5] for r in rows)
    domains = tuple(d for d, n in (("sleep", sleep_nights), ("recovery", recovery_nights)) if n >= 3)
    return WeekSummary(
        person_id=person_id, week_start=week_start, week_end=week_end, warming_up=False,
        valid_nights_total=valid_total, nights_until_comparisons=0, valid_nights_this_week=len(valid_week),
        moves=moves, went_well=went_well, sleep_flag_nights=sleep_nights, recovery_flag_nights=recovery_nights,
        illness_explains_week=illness_explains, alert_sent_this_week=alerts_this_week > 0,
        strategy=choose_strategy(domains, 0),  # type: ignore[arg-type]
        told_us=told_us,
        recovery_measured=any(r[4] is not None for r in valid_week),
        sleep_calibration_now=calibration[0][0] if calibration else None,
    )
