"""Draws one person's nights from their plan: sleep, naps, heart, vitals and movement, as records."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

from connectors.records import AnyRecord, SleepSession
from connectors.synthetic import payloads
from connectors.synthetic.payloads import Wear
from connectors.synthetic.profiles import (
    SHIFT_BLOCK,
    SHIFT_CYCLE_DAYS,
    STREAM_NIGHTS,
    TRIP_NIGHTS,
    PatchEffect,
    Plan,
    person_rng,
)
from connectors.synthetic.sleep_logs import STAGES_MIN_SLEEP_MIN, SleepShape, layout, wake_bouts

_NOTHING_SCRIPTED = PatchEffect(0, 0, 0, 0, 0, 0, 0, 0)  # calm people's nights: noise only


def _utc_offset_h(tz_name: str, day: date) -> float:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz_name))
    offset = noon.utcoffset() or timedelta(0)
    return offset.total_seconds() / 3600


def _local_to_utc(night: date, minutes_from_midnight: float, tz_name: str) -> datetime:
    """Wall-clock minutes from local midnight of `night` (negative = the evening before) to a UTC instant."""
    local_midnight = datetime(night.year, night.month, night.day, tzinfo=ZoneInfo(tz_name))
    # Aware + timedelta is wall-clock arithmetic in Python, which is what a bedtime on a DST night means.
    return (local_midnight + timedelta(minutes=float(minutes_from_midnight))).astimezone(timezone.utc)


def _ar1(rng: np.random.Generator, n: int, phi: float = 0.3) -> np.ndarray:
    """Unit-variance AR(1) noise: recovery markers drift a little from night to night rather than jump."""
    z = rng.standard_normal(n)
    out = np.empty(n)
    scale = np.sqrt(1 - phi**2)
    previous = rng.standard_normal()
    for i in range(n):
        previous = phi * previous + scale * z[i]
        out[i] = previous
    return out


def _patch_strength(plan: Plan, n: int) -> tuple[np.ndarray, np.ndarray]:
    rough = np.zeros(n)
    illness = np.zeros(n)
    if plan.patch_index is None:
        return rough, illness
    first, last = plan.patch_index
    length = last - first + 1
    if plan.person.profile == "rough":
        # Ramps in over a few nights, holds, then eases off over two nights after the patch.
        ramp = np.minimum(1.0, (np.arange(length) + 1) / plan.patch_ramp_nights)
        rough[first : last + 1] = ramp
        tail = [0.5, 0.25]
        rough[last + 1 : last + 1 + len(tail)] = tail[: max(0, min(len(tail), n - last - 1))]
    else:
        shape = np.ones(length)
        shape[0] = 0.7
        shape[-1] = 0.7
        illness[first : last + 1] = shape
    return rough, illness


def generate(plan: Plan, seed: int, nights: list[date]) -> list[AnyRecord]:
    rng = person_rng(seed, plan.k, STREAM_NIGHTS)
    usual = plan.usual
    person = plan.person
    pid = person.person_id
    n = len(nights)
    idx = np.arange(n)
    eff = plan.effect or _NOTHING_SCRIPTED
    s_rough, s_ill = _patch_strength(plan, n)
    s_patch = s_rough + s_ill  # at most one is non-zero for a person

    # Where the person is and what the night is.
    zones = [person.tz_name] * n
    jetlag_h = np.zeros(n)
    if plan.trip is not None and plan.trip_index is not None:
        t0 = plan.trip_index
        for i in range(t0, min(n, t0 + TRIP_NIGHTS)):
            zones[i] = plan.trip.tz_name
        diff = _utc_offset_h(plan.trip.tz_name, nights[t0]) - _utc_offset_h(person.tz_name, nights[t0])
        diff = (diff + 12) % 24 - 12  # the short way round the clock
        # The body clock lags the wall clock and catches up by about half the gap each night.
        for j in range(TRIP_NIGHTS):
            if t0 + j < n:
                jetlag_h[t0 + j] = np.clip(diff * 0.5 ** (j + 1), -4, 4)
        for j in range(3):
            if t0 + TRIP_NIGHTS + j < n:
                jetlag_h[t0 + TRIP_NIGHTS + j] = np.clip(-diff * 0.5 ** (j + 1), -4, 4)
    free = np.array([night.weekday() >= 5 for night in nights])  # woke on Saturday or Sunday
    shift_pos = (idx + plan.shift_phase) % SHIFT_CYCLE_DAYS
    shift_sleep = person.night_shift & (shift_pos >= 1) & (shift_pos <= SHIFT_BLOCK)
    preshift_nap_day = person.night_shift & (shift_pos == 0)

    not_worn = np.zeros(n, dtype=bool)
    not_worn[list(plan.not_worn)] = True
    missing = not_worn | (rng.random(n) < usual.missing_rate)
    classic = rng.random(n) < 0.10
    blip = rng.random(n) < 0.04  # a late dinner, a glass of wine, a hard day: one night, then gone

    # Main sleep, in minutes.
    weekend_share = 2 / 7
    tst = (
        usual.tst_min
        + np.where(free, (1 - weekend_share), -weekend_share) * usual.weekend_tst_extra_min
        + rng.normal(0, usual.tst_sd_min, n)
        + eff.tst_min * s_patch
        - 20 * (np.abs(jetlag_h) > 1)
    )
    bed = (
        usual.bed_work_min
        + free * usual.weekend_bed_delay_min
        + rng.normal(0, 1, n) * usual.bed_sd_min * (1 + 0.5 * s_rough)
        + eff.bed_shift_min * s_patch
        + 60 * jetlag_h
    )
    # Night shifts: the main sleep is in the day after the shift, shorter and more broken.
    # Day sleep after a night shift is typically 1-2 h shorter than night sleep, with no weekend lie-in.
    day_tst = usual.tst_min - usual.shift_tst_loss_min + rng.normal(0, 30, n) + eff.tst_min * s_patch
    bed = np.where(shift_sleep, 510 + rng.normal(0, 20, n), bed)
    tst = np.where(shift_sleep, np.minimum(day_tst, 420), tst)
    tst = np.clip(np.round(tst), 120, 720).astype(int)
    bed = np.round(bed).astype(int)

    wake_total = usual.tst_min * (1 / usual.efficiency - 1)
    waso_usual = max(5.0, wake_total - usual.sol_min - usual.trailing_wake_min)
    sol = np.round(usual.sol_min * rng.lognormal(0, 0.45, n) + eff.sol_min * s_patch).astype(int)
    trailing = rng.integers(0, int(2 * usual.trailing_wake_min) + 2, n)
    waso = waso_usual * rng.lognormal(0, 0.3, n) + eff.waso_min * s_patch + 15 * shift_sleep
    long_wakes = rng.poisson(usual.long_wakes_per_night + eff.extra_long_wakes * s_patch + shift_sleep)

    # Recovery and vitals.
    rhr = (
        usual.rhr_bpm
        + usual.rhr_sd_bpm * _ar1(rng, n)
        + eff.rhr_bpm * s_patch
        + 1.5 * shift_sleep
        + blip * rng.uniform(2, 4, n)
    )
    ln_rmssd = (
        usual.ln_rmssd
        + usual.ln_rmssd_sd * _ar1(rng, n)
        + eff.ln_rmssd * s_patch
        - 0.1 * shift_sleep
        - blip * rng.uniform(0.15, 0.3, n)
    )
    deep_ratio = rng.uniform(1.02, 1.15, n)
    breathing = usual.breathing_rate_brpm + rng.normal(0, 0.4, n) + eff.breathing_rate_brpm * s_ill
    skin = rng.normal(0, 0.2, n) + eff.skin_temp_c * s_ill
    spo2 = np.minimum(99.5, usual.spo2_pct + rng.normal(0, 0.5, n) + eff.spo2_pct * s_ill)
    vitals_present = rng.random(n) < 0.93
    vitals_fields = rng.random((n, 3)) >= 0.03
    rhr_present = np.where(missing, rng.random(n) < 0.7, rng.random(n) < 0.97)

    # Movement.
    move = (1 - eff.activity_factor * s_patch) * np.where(free, usual.weekend_steps_factor, 1.0)
    move = move * np.where(shift_sleep, 0.8, 1.0)
    steps = usual.steps * move * rng.lognormal(0, 0.25, n)
    very = usual.very_active_min * move * rng.lognormal(0, 0.5, n)
    moderate = usual.moderately_active_min * move * rng.lognormal(0, 0.4, n)
    light = usual.lightly_active_min * np.sqrt(move) * rng.lognormal(0, 0.15, n)
    low_wear = rng.random(n) < 0.02  # worn for an hour or two: fewer than 100 steps, an invalid day

    nap_draw = rng.random(n)
    nap_start = rng.integers(13 * 60, 17 * 60, n)
    nap_length = rng.integers(20, 61, n)

    def sleep_log(
        night: date, tz_name: str, start_utc: datetime, shape: SleepShape, classic: bool, *, is_main_sleep: bool
    ) -> SleepSession:
        timeline = layout(rng, shape, classic, usual)  # draws from the nights stream: keep it in this order
        return payloads.session(
            person_id=pid,
            night=night,
            tz_name=tz_name,
            start_utc=start_utc,
            timeline=timeline,
            is_main_sleep=is_main_sleep,
            classic=classic,
        )

    records: list[AnyRecord] = []
    last_end: datetime | None = None
    for i, night in enumerate(nights):
        tz_name = zones[i]
        main: SleepSession | None = None
        if not missing[i]:
            is_classic = bool(classic[i])
            shape = SleepShape(
                asleep_min=int(tst[i]),
                sol_min=int(sol[i]),
                trailing_min=int(trailing[i]),
                inner_wakes_epochs=wake_bouts(rng, float(waso[i]), int(long_wakes[i]), is_classic),
            )
            start = _local_to_utc(night, bed[i], tz_name)
            # Sleep runs to a wall-clock wake time, so a DST night is an hour longer or shorter in real time.
            planned_end = _local_to_utc(night, bed[i] + shape.in_bed_epochs / 2, tz_name)
            dst_shift_min = round((planned_end - start).total_seconds() / 60 - shape.in_bed_epochs / 2)
            if dst_shift_min:
                shape = SleepShape(
                    asleep_min=max(60, shape.asleep_min + dst_shift_min),
                    sol_min=shape.sol_min,
                    trailing_min=shape.trailing_min,
                    inner_wakes_epochs=shape.inner_wakes_epochs,
                )
            if shape.asleep_min < STAGES_MIN_SLEEP_MIN:
                is_classic = True
                shape = SleepShape(
                    shape.asleep_min,
                    shape.sol_min,
                    shape.trailing_min,
                    tuple(b + (b % 2) for b in shape.inner_wakes_epochs),
                )
            # Flying home across the date line can leave no night to sleep in: nothing is logged then.
            if last_end is None or start >= last_end + timedelta(hours=2):
                main = sleep_log(night, tz_name, start, shape, is_classic, is_main_sleep=True)
                records.append(main)
                last_end = main.end_utc

        nap_wanted = (nap_draw[i] < usual.nap_rate * (2.0 if free[i] else 1.0)) or (
            preshift_nap_day[i] and nap_draw[i] < 0.7
        )
        next_zone_same = i + 1 >= n or zones[i + 1] == tz_name
        if nap_wanted and not not_worn[i] and not shift_sleep[i] and next_zone_same:
            minute = 16 * 60 + 20 if preshift_nap_day[i] else int(nap_start[i])
            nap_start_utc = _local_to_utc(night, minute, tz_name)
            next_bed_ok = i + 1 >= n or _local_to_utc(nights[i + 1], bed[i + 1], zones[i + 1]) > (
                nap_start_utc + timedelta(hours=2)
            )
            if (last_end is None or nap_start_utc > last_end + timedelta(hours=1)) and next_bed_ok:
                length = int(nap_length[i])
                nap_sol = int(rng.integers(0, 6))
                nap_shape = SleepShape(
                    asleep_min=length - nap_sol, sol_min=nap_sol, trailing_min=0, inner_wakes_epochs=()
                )
                nap = sleep_log(night, tz_name, nap_start_utc, nap_shape, True, is_main_sleep=False)
                records.append(nap)
                last_end = nap.end_utc

        if main is not None:
            if main.log_type == "stages" and main.minutes_asleep >= STAGES_MIN_SLEEP_MIN:
                records.append(payloads.hrv(pid, night, float(np.exp(ln_rmssd[i])), deep_ratio[i]))
            if vitals_present[i] and main.minutes_asleep >= STAGES_MIN_SLEEP_MIN:
                has_spo2, has_br, has_skin = vitals_fields[i]
                records.append(
                    payloads.vitals(
                        pid,
                        night,
                        spo2=float(spo2[i]) if has_spo2 else None,
                        breathing=float(breathing[i]) if has_br else None,
                        skin=float(skin[i]) if has_skin else None,
                    )
                )

        if not not_worn[i] and rhr_present[i]:
            records.append(payloads.resting_hr(pid, night, rhr[i]))

        wear: Wear = "none" if not_worn[i] else "brief" if low_wear[i] else "day"
        records.append(payloads.activity(pid, night, main, wear, steps[i], very[i], moderate[i], light[i]))
    return records

