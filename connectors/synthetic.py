"""A seeded synthetic cohort of clinicians' wearable nights, and the Source that serves it to the pipeline.

The cohort exists so that the demo, the tests and the backtest can run the real flows on data that looks
like a Fitbit's: a weekday/weekend rhythm, night shifts, time zones with a DST change and trips across
zones, missing nights, naps, classic and stage logs, HRV only where Fitbit computes it, and scripted "rough"
and "illness" patches with known dates (`SyntheticCohort.ground_truth`) so detection can be scored. Calm
people get noise only.

Determinism: everything comes from `np.random.default_rng([seed, k, stream])` for person k, so person k's
data does not change when the number of people changes (it does change with `n_nights`, which bounds where
patches fit). Who is calm, rough or ill, on night shifts or travelling is a fixed template of ten slots that
repeats, so every cohort of at least 8 people has each kind the tests and the demo need.

Numbers (starting points, see SIGNALS.md): TST 6.5-8 h with a night-to-night SD of ~35 min, sleep onset SD
~20 min, efficiency 85-95 %, resting HR 52-70 bpm (SD 1.5-2), RMSSD 25-70 ms (lnRMSSD SD ~0.15), breathing
rate 13.5-16.5, skin temperature deviation 0 +/- 0.2 C, SpO2 95-97 %. They are plausible population values,
not fitted to a data set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected
from connectors.records import (
    AnyRecord,
    DailyActivity,
    DailyRestingHeartRate,
    NightlyHrv,
    NightlyVitals,
    RecordError,
    SleepSession,
    SleepStage,
    build_record,
    night_date_of_wake,
)

SOURCE_NAME = "synthetic"
RESOURCE = "nights"

Profile = Literal["calm", "rough", "illness"]
PatchKind = Literal["rough", "illness"]
Wear = Literal["day", "brief", "none"]  # how long the watch was on the wrist that day

# Fitbit computes sleep stages (and so HRV) only for sleep of at least 3 hours; shorter logs are classic.
STAGES_MIN_SLEEP_MIN = 180
EPOCH_S = 30  # stage logs come in 30-second epochs
_WAKE_STAGES = frozenset(stage for stage in SleepStage if stage.is_wake)


@dataclass(frozen=True)
class SyntheticPerson:
    person_id: str
    email: str
    tz_name: str  # home zone
    profile: Profile
    night_shift: bool
    traveller: bool


@dataclass(frozen=True)
class Patch:
    """Ground truth: the nights (wake dates, inclusive) on which a scripted patch is in force."""

    person_id: str
    kind: PatchKind
    onset_night: date
    end_night: date

    def contains(self, night: date) -> bool:
        return self.onset_night <= night <= self.end_night


@dataclass(frozen=True)
class Trip:
    """The nights (wake dates, inclusive) a traveller spends in another zone; records carry that zone."""

    person_id: str
    tz_name: str
    first_night: date
    last_night: date


@dataclass(frozen=True)
class _Slot:
    profile: Profile
    tz_name: str
    night_shift: bool = False
    traveller: bool = False


# Ten slots, repeated. The first eight hold one of everything (calm, rough, illness, night shift, traveller)
# so small cohorts stay useful; c08 is rough *and* on night shifts, the hardest case for detection.
_TEMPLATE: tuple[_Slot, ...] = (
    _Slot("calm", "Europe/London"),
    _Slot("rough", "America/New_York"),
    _Slot("calm", "Europe/Oslo", night_shift=True),
    _Slot("rough", "Australia/Sydney"),
    _Slot("calm", "Europe/London", traveller=True),
    _Slot("illness", "Europe/Oslo"),
    _Slot("calm", "America/New_York"),
    _Slot("rough", "Europe/London", night_shift=True),
    _Slot("calm", "Australia/Sydney", traveller=True),
    _Slot("calm", "Asia/Kolkata"),
)
_ZONES = ("Europe/London", "America/New_York", "Europe/Oslo", "Australia/Sydney", "Asia/Kolkata")
# Westward, eastward, across the date line, and to a half-hour offset.
_TRIP_DESTINATION = {
    "Europe/London": "America/New_York",
    "America/New_York": "Europe/London",
    "Europe/Oslo": "Asia/Kolkata",
    "Australia/Sydney": "America/Los_Angeles",
    "Asia/Kolkata": "Europe/London",
}

TRIP_NIGHTS = 7
PATCH_EARLIEST_NIGHT = 40  # patches start after 40 nights so a baseline exists
SHIFT_CYCLE_DAYS = 14  # 4 night shifts, then 10 days on a normal rhythm
SHIFT_BLOCK = 4

_STREAM_PLAN = 0
_STREAM_NIGHTS = 1


def _person_slot(k: int) -> _Slot:
    slot = _TEMPLATE[(k - 1) % len(_TEMPLATE)]
    block = (k - 1) // len(_TEMPLATE)
    if block == 0:
        return slot
    # Later blocks repeat the profiles but move people round the zones, so combinations vary.
    zone = _ZONES[(k - 1 + block) % len(_ZONES)]
    return _Slot(slot.profile, zone, slot.night_shift, slot.traveller)


def _rng(seed: int, k: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, k, stream])


def _utc_offset_h(tz_name: str, day: date) -> float:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz_name))
    offset = noon.utcoffset() or timedelta(0)
    return offset.total_seconds() / 3600


def _local_to_utc(night: date, minutes_from_midnight: float, tz_name: str) -> datetime:
    """Wall-clock minutes from local midnight of `night` (negative = the evening before) to a UTC instant."""
    local_midnight = datetime(night.year, night.month, night.day, tzinfo=ZoneInfo(tz_name))
    # Aware + timedelta is wall-clock arithmetic in Python, which is what a bedtime on a DST night means.
    return (local_midnight + timedelta(minutes=float(minutes_from_midnight))).astimezone(timezone.utc)


def _split(total: int, weights: np.ndarray | list[float] | tuple[float, ...]) -> list[int]:
    """Non-negative integers proportional to `weights` that sum to exactly `total`."""
    w = [max(0.0, float(x)) for x in weights]
    norm = sum(w)
    if norm <= 0:
        w, norm = [1.0] * len(w), float(len(w))
    parts: list[int] = []
    cumulative = 0.0
    previous_cut = 0
    for x in w:
        cumulative += x
        cut = round(cumulative / norm * total)
        parts.append(cut - previous_cut)
        previous_cut = cut
    parts[-1] += total - previous_cut
    return parts


# ----------------------------------------------------------------------------------------------------
# Per-person plan: usual values and scripted events, drawn once from the plan stream.


@dataclass(frozen=True)
class _Usual:
    tst_min: float
    efficiency: float
    sol_min: float
    trailing_wake_min: float
    long_wakes_per_night: float
    bed_work_min: float  # minutes from local midnight of the wake date (negative = evening before)
    weekend_bed_delay_min: float
    weekend_tst_extra_min: float
    tst_sd_min: float
    bed_sd_min: float
    cycle_min: float
    deep_scale: float
    shift_tst_loss_min: float
    rhr_bpm: float
    rhr_sd_bpm: float
    ln_rmssd: float
    ln_rmssd_sd: float
    breathing_rate_brpm: float
    spo2_pct: float
    steps: float
    weekend_steps_factor: float
    very_active_min: float
    moderately_active_min: float
    lightly_active_min: float
    missing_rate: float
    nap_rate: float


@dataclass(frozen=True)
class _PatchEffect:
    """Full-strength changes for a patch; the nightly strength (0..1) scales them."""

    tst_min: float
    waso_min: float
    sol_min: float
    extra_long_wakes: float
    bed_shift_min: float
    rhr_bpm: float
    ln_rmssd: float
    skin_temp_c: float = 0.0
    breathing_rate_brpm: float = 0.0
    spo2_pct: float = 0.0
    activity_factor: float = 0.0  # fraction of usual movement lost


@dataclass(frozen=True)
class _Plan:
    k: int
    person: SyntheticPerson
    usual: _Usual
    patch: Patch | None
    patch_index: tuple[int, int] | None  # first and last night index, inclusive
    patch_ramp_nights: int
    effect: _PatchEffect | None
    trip: Trip | None
    trip_index: int | None
    shift_phase: int
    not_worn: tuple[int, ...]  # night indexes with the device not worn at all


def _draw_usual(rng: np.random.Generator) -> _Usual:
    u = rng.uniform
    tst = u(390, 480)
    efficiency = u(0.85, 0.95)
    sol = u(5, 16)
    trailing = u(1, 4)
    return _Usual(
        tst_min=tst,
        efficiency=efficiency,
        sol_min=sol,
        trailing_wake_min=trailing,
        long_wakes_per_night=u(0.5, 1.5),
        bed_work_min=u(-100, 10),
        weekend_bed_delay_min=u(30, 90),
        weekend_tst_extra_min=u(20, 60),
        tst_sd_min=u(30, 40),
        bed_sd_min=u(15, 25),
        cycle_min=u(85, 100),
        deep_scale=u(0.8, 1.2),
        shift_tst_loss_min=u(70, 120),
        rhr_bpm=u(52, 70),
        rhr_sd_bpm=u(1.5, 2.0),
        ln_rmssd=u(np.log(25), np.log(70)),
        ln_rmssd_sd=u(0.12, 0.18),
        breathing_rate_brpm=u(13.5, 16.5),
        spo2_pct=u(95.0, 97.0),
        steps=u(5500, 11000),
        weekend_steps_factor=u(0.8, 1.25),
        very_active_min=u(5, 35),
        moderately_active_min=u(10, 35),
        lightly_active_min=u(170, 290),
        missing_rate=u(0.04, 0.06),
        nap_rate=u(0.03, 0.10),
    )


def _plan_person(seed: int, k: int, first_night: date, n_nights: int) -> _Plan:
    rng = _rng(seed, k, _STREAM_PLAN)
    slot = _person_slot(k)
    person_id = f"c{k:02d}"
    person = SyntheticPerson(
        person_id=person_id,
        email=f"{person_id}@clinic.example",
        tz_name=slot.tz_name,
        profile=slot.profile,
        night_shift=slot.night_shift,
        traveller=slot.traveller,
    )
    usual = _draw_usual(rng)
    shift_phase = int(rng.integers(0, SHIFT_CYCLE_DAYS))

    patch = None
    patch_index = None
    effect = None
    ramp = int(rng.integers(3, 6))
    if slot.profile == "rough":
        length = int(rng.integers(7, 22))
        latest = n_nights - length - 4  # leave a few recovery nights inside the window
        if latest < PATCH_EARLIEST_NIGHT:
            length, latest = 7, n_nights - 7 - 4
        if latest >= PATCH_EARLIEST_NIGHT:
            onset = int(rng.integers(PATCH_EARLIEST_NIGHT, latest + 1))
            patch_index = (onset, onset + length - 1)
            loss = rng.uniform(40, 90)
            effect = _PatchEffect(
                tst_min=-loss,
                waso_min=rng.uniform(15, 35),
                sol_min=rng.uniform(8, 20),
                extra_long_wakes=rng.uniform(1.5, 3.0),
                bed_shift_min=0.3 * loss,
                rhr_bpm=rng.uniform(4, 8),
                ln_rmssd=-rng.uniform(0.25, 0.45),
                activity_factor=rng.uniform(0.1, 0.25),
            )
    elif slot.profile == "illness":
        length = int(rng.integers(3, 7))
        latest = n_nights - length - 4
        if latest >= PATCH_EARLIEST_NIGHT:
            onset = int(rng.integers(PATCH_EARLIEST_NIGHT, latest + 1))
            patch_index = (onset, onset + length - 1)
            effect = _PatchEffect(
                tst_min=rng.uniform(30, 60),
                waso_min=rng.uniform(15, 30),
                sol_min=rng.uniform(0, 8),
                extra_long_wakes=rng.uniform(1.0, 2.0),
                bed_shift_min=-20.0,
                rhr_bpm=rng.uniform(4, 7),
                ln_rmssd=-rng.uniform(0.15, 0.3),
                skin_temp_c=rng.uniform(0.6, 1.2),
                breathing_rate_brpm=rng.uniform(1.5, 3.0),
                spo2_pct=-rng.uniform(0.5, 1.5),
                activity_factor=rng.uniform(0.3, 0.5),
            )
    if patch_index is not None:
        assert slot.profile in ("rough", "illness")
        patch = Patch(
            person_id=person_id,
            kind=slot.profile,
            onset_night=first_night + timedelta(days=patch_index[0]),
            end_night=first_night + timedelta(days=patch_index[1]),
        )

    trip = None
    trip_index = None
    if slot.traveller and n_nights >= TRIP_NIGHTS + 20:
        trip_index = int(rng.integers(14, n_nights - TRIP_NIGHTS - 4 + 1))
        trip = Trip(
            person_id=person_id,
            tz_name=_TRIP_DESTINATION[slot.tz_name],
            first_night=first_night + timedelta(days=trip_index),
            last_night=first_night + timedelta(days=trip_index + TRIP_NIGHTS - 1),
        )

    # Now and then the watch stays in a drawer for a few days; kept clear of patches and trips so those stay
    # scorable.
    not_worn: tuple[int, ...] = ()
    if rng.random() < 0.5 and n_nights >= 20:
        run = int(rng.integers(3, 5))
        blocked: set[int] = set()
        if patch_index is not None:
            blocked.update(range(patch_index[0] - 2, patch_index[1] + 3))
        if trip_index is not None:
            blocked.update(range(trip_index - 2, trip_index + TRIP_NIGHTS + 3))
        starts = [s for s in range(3, n_nights - run) if not blocked.intersection(range(s, s + run))]
        if starts:
            start = starts[int(rng.integers(0, len(starts)))]
            not_worn = tuple(range(start, start + run))

    return _Plan(
        k=k,
        person=person,
        usual=usual,
        patch=patch,
        patch_index=patch_index,
        patch_ramp_nights=ramp,
        effect=effect,
        trip=trip,
        trip_index=trip_index,
        shift_phase=shift_phase,
        not_worn=not_worn,
    )


# ----------------------------------------------------------------------------------------------------
# Sleep logs: segments that tile the session exactly.


def _insert_wakes(
    timeline: list[tuple[SleepStage, int]], inserts: list[tuple[int, int]], wake: SleepStage
) -> list[tuple[SleepStage, int]]:
    """Insert wake bouts (position in asleep epochs, length in epochs) into a timeline of (stage, epochs)."""
    out: list[tuple[SleepStage, int]] = []
    j = 0
    position = 0
    for stage, n in timeline:
        cursor, end = position, position + n
        while j < len(inserts) and inserts[j][0] < end:
            at, length = inserts[j]
            if at > cursor:
                out.append((stage, at - cursor))
                cursor = at
            out.append((wake, length))
            j += 1
        if end > cursor:
            out.append((stage, end - cursor))
        position = end
    out.extend((wake, length) for _, length in inserts[j:])
    return out


def _merge(timeline: list[tuple[SleepStage, int]]) -> list[tuple[SleepStage, int]]:
    merged: list[tuple[SleepStage, int]] = []
    for stage, n in timeline:
        if n <= 0:
            continue
        if merged and merged[-1][0] == stage:
            merged[-1] = (stage, merged[-1][1] + n)
        else:
            merged.append((stage, n))
    return merged


def _stage_cycles(
    rng: np.random.Generator, asleep_epochs: int, usual: _Usual
) -> list[tuple[SleepStage, int]]:
    """~90-minute cycles: deep sleep early in the night, REM growing towards morning."""
    n_cycles = max(1, round(asleep_epochs * EPOCH_S / 60 / usual.cycle_min))
    timeline: list[tuple[SleepStage, int]] = []
    for i, cycle_epochs in enumerate(_split(asleep_epochs, rng.uniform(0.8, 1.2, n_cycles))):
        f = i / (n_cycles - 1) if n_cycles > 1 else 0.0
        deep = usual.deep_scale * 0.36 * (1 - f) ** 1.3 * rng.uniform(0.75, 1.25)
        rem = (0.08 + 0.30 * f) * rng.uniform(0.8, 1.2) * (0.5 if i == 0 else 1.0)
        light = max(0.3, 1 - deep - rem)
        parts = (
            (SleepStage.LIGHT, light * 0.55),
            (SleepStage.DEEP, deep),
            (SleepStage.LIGHT, light * 0.45),
            (SleepStage.REM, rem),
        )
        lengths = _split(cycle_epochs, [w for _, w in parts])
        timeline.extend((stage, n) for (stage, _), n in zip(parts, lengths, strict=True))
    return _merge(timeline)


def _classic_body(rng: np.random.Generator, asleep_epochs: int) -> list[tuple[SleepStage, int]]:
    """Asleep with restless bouts (whole minutes, as classic logs are minute-by-minute)."""
    minutes = asleep_epochs // 2
    n_restless = int(rng.poisson(minutes / 40)) if minutes > 10 else 0
    marks = np.zeros(minutes, dtype=bool)
    for start, length in zip(
        rng.integers(0, max(1, minutes), n_restless), rng.integers(1, 4, n_restless), strict=True
    ):
        marks[start : start + length] = True
    timeline = [(SleepStage.RESTLESS if m else SleepStage.ASLEEP, 2) for m in marks]
    return _merge(timeline)


@dataclass(frozen=True)
class _SleepShape:
    """What one log should look like before it is laid out in epochs (all minutes)."""

    asleep_min: int
    sol_min: int
    trailing_min: int
    inner_wakes_epochs: tuple[int, ...]

    @property
    def in_bed_epochs(self) -> int:
        return 2 * (self.asleep_min + self.sol_min + self.trailing_min) + sum(self.inner_wakes_epochs)


def _wake_bouts(rng: np.random.Generator, waso_min: float, long_wakes: int, classic: bool) -> tuple[int, ...]:
    """WASO as a few long awakenings (>= 5 min) and many brief ones, in epochs; the total is whole minutes."""
    bouts = [int(x) for x in rng.integers(10, 31, long_wakes)]  # 5-15 min
    remaining = max(0.0, waso_min * 2 - sum(bouts))
    if remaining > 0:
        brief = rng.integers(1, 8, int(remaining) // 2 + 4)  # 30 s to 3.5 min
        cut = int(np.searchsorted(np.cumsum(brief), remaining)) + 1
        bouts.extend(int(x) for x in brief[:cut])
    if classic:  # minute resolution
        bouts = [b + (b % 2) for b in bouts]
    elif sum(bouts) % 2 and bouts:
        i = int(np.argmax(bouts))
        bouts[i] += 1
    return tuple(bouts)


def _layout(
    rng: np.random.Generator, shape: _SleepShape, classic: bool, usual: _Usual
) -> list[tuple[SleepStage, int]]:
    asleep_epochs = 2 * shape.asleep_min
    body = _classic_body(rng, asleep_epochs) if classic else _stage_cycles(rng, asleep_epochs, usual)
    wake = SleepStage.AWAKE if classic else SleepStage.WAKE
    if shape.inner_wakes_epochs:
        # Not in the first 10 minutes of sleep nor the last 5, so onset latency and final wake stay separate.
        low, high = min(20, asleep_epochs), max(min(20, asleep_epochs), asleep_epochs - 10)
        positions = np.sort(rng.integers(low, high + 1, len(shape.inner_wakes_epochs)))
        if classic:
            positions = positions - positions % 2
        body = _insert_wakes(body, list(zip(positions.tolist(), shape.inner_wakes_epochs, strict=True)), wake)
    return _merge([(wake, 2 * shape.sol_min), *body, (wake, 2 * shape.trailing_min)])


def _session(
    *,
    person_id: str,
    night: date,
    tz_name: str,
    start_utc: datetime,
    timeline: list[tuple[SleepStage, int]],
    is_main_sleep: bool,
    classic: bool,
) -> SleepSession:
    segments = []
    cursor = start_utc
    wake_s = 0
    for stage, epochs in timeline:
        seconds = epochs * EPOCH_S
        # Plain dicts: the session validates them all in one pass, faster than one StageSegment(...) each.
        segments.append({"start_utc": cursor, "duration_s": seconds, "stage": stage})
        cursor += timedelta(seconds=seconds)
        if stage in _WAKE_STAGES:
            wake_s += seconds
    total_s = int((cursor - start_utc).total_seconds())
    first = timeline[0]
    session_night = night_date_of_wake(cursor, tz_name)
    if session_night != night:  # the generator's own contract; a failure here is a bug in this module
        raise AssertionError(f"{person_id} {night}: wake lands on {session_night} in {tz_name}")
    return SleepSession(
        person_id=person_id,
        source=SOURCE_NAME,
        source_session_id=f"{person_id}-{night:%Y%m%d}-{'main' if is_main_sleep else 'nap'}",
        night_date=night,
        start_utc=start_utc,
        end_utc=cursor,
        tz_name=tz_name,
        is_main_sleep=is_main_sleep,
        log_type="classic" if classic else "stages",
        minutes_asleep=(total_s - wake_s) // 60,
        minutes_awake=wake_s // 60,
        minutes_to_fall_asleep=first[1] * EPOCH_S // 60 if first[0].is_wake else 0,
        time_in_bed_min=total_s // 60,
        segments=segments,  # type: ignore[arg-type]  # validated into StageSegment
    )


# ----------------------------------------------------------------------------------------------------
# One person's nights.


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


def _patch_strength(plan: _Plan, n: int) -> tuple[np.ndarray, np.ndarray]:
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


def _generate(plan: _Plan, seed: int, nights: list[date]) -> list[AnyRecord]:
    rng = _rng(seed, plan.k, _STREAM_NIGHTS)
    usual = plan.usual
    person = plan.person
    pid = person.person_id
    n = len(nights)
    idx = np.arange(n)
    zero = _PatchEffect(0, 0, 0, 0, 0, 0, 0)
    eff = plan.effect or zero
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

    records: list[AnyRecord] = []
    last_end: datetime | None = None
    for i, night in enumerate(nights):
        tz_name = zones[i]
        main: SleepSession | None = None
        if not missing[i]:
            is_classic = bool(classic[i])
            shape = _SleepShape(
                asleep_min=int(tst[i]),
                sol_min=int(sol[i]),
                trailing_min=int(trailing[i]),
                inner_wakes_epochs=_wake_bouts(rng, float(waso[i]), int(long_wakes[i]), is_classic),
            )
            start = _local_to_utc(night, bed[i], tz_name)
            # Sleep runs to a wall-clock wake time, so a DST night is an hour longer or shorter in real time.
            planned_end = _local_to_utc(night, bed[i] + shape.in_bed_epochs / 2, tz_name)
            dst_shift_min = round((planned_end - start).total_seconds() / 60 - shape.in_bed_epochs / 2)
            if dst_shift_min:
                shape = _SleepShape(
                    asleep_min=max(60, shape.asleep_min + dst_shift_min),
                    sol_min=shape.sol_min,
                    trailing_min=shape.trailing_min,
                    inner_wakes_epochs=shape.inner_wakes_epochs,
                )
            if shape.asleep_min < STAGES_MIN_SLEEP_MIN:
                is_classic = True
                shape = _SleepShape(
                    shape.asleep_min,
                    shape.sol_min,
                    shape.trailing_min,
                    tuple(b + (b % 2) for b in shape.inner_wakes_epochs),
                )
            # Flying home across the date line can leave no night to sleep in: nothing is logged then.
            if last_end is None or start >= last_end + timedelta(hours=2):
                main = _session(
                    person_id=pid,
                    night=night,
                    tz_name=tz_name,
                    start_utc=start,
                    timeline=_layout(rng, shape, is_classic, usual),
                    is_main_sleep=True,
                    classic=is_classic,
                )
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
                nap_shape = _SleepShape(
                    asleep_min=length - nap_sol, sol_min=nap_sol, trailing_min=0, inner_wakes_epochs=()
                )
                nap = _session(
                    person_id=pid,
                    night=night,
                    tz_name=tz_name,
                    start_utc=nap_start_utc,
                    timeline=_layout(rng, nap_shape, True, usual),
                    is_main_sleep=False,
                    classic=True,
                )
                records.append(nap)
                last_end = nap.end_utc

        if main is not None:
            if main.log_type == "stages" and main.minutes_asleep >= STAGES_MIN_SLEEP_MIN:
                rmssd = float(np.exp(ln_rmssd[i]))
                records.append(
                    NightlyHrv(
                        person_id=pid,
                        source=SOURCE_NAME,
                        night_date=night,
                        rmssd_ms=round(rmssd, 1),
                        deep_rmssd_ms=round(rmssd * deep_ratio[i], 1),
                    )
                )
            if vitals_present[i] and main.minutes_asleep >= STAGES_MIN_SLEEP_MIN:
                has_spo2, has_br, has_skin = vitals_fields[i]
                records.append(
                    NightlyVitals(
                        person_id=pid,
                        source=SOURCE_NAME,
                        night_date=night,
                        spo2_avg_pct=round(float(spo2[i]), 1) if has_spo2 else None,
                        breathing_rate_brpm=round(float(breathing[i]), 1) if has_br else None,
                        skin_temp_deviation_c=round(float(skin[i]), 2) if has_skin else None,
                    )
                )

        if not not_worn[i] and rhr_present[i]:
            records.append(
                DailyRestingHeartRate(
                    person_id=pid, source=SOURCE_NAME, day=night, resting_hr_bpm=float(round(rhr[i]))
                )
            )

        wear: Wear = "none" if not_worn[i] else "brief" if low_wear[i] else "day"
        records.append(_activity(pid, night, main, wear, steps[i], very[i], moderate[i], light[i]))
    return records


def _activity(
    pid: str,
    day: date,
    main: SleepSession | None,
    wear: Wear,
    steps: float,
    very: float,
    moderate: float,
    light: float,
) -> DailyActivity:
    if wear != "day":
        # What Fitbit reports for a day the watch sat in a drawer (zero steps, the whole day sedentary) or was
        # worn for a moment: the activity validity rule (>= 100 steps) must drop these, not the connector.
        moved = 0 if wear == "none" else 5 + int(light) % 20
        return DailyActivity(
            person_id=pid,
            source=SOURCE_NAME,
            day=day,
            steps=0 if wear == "none" else int(steps) % 97,
            sedentary_min=1440 - moved,
            lightly_active_min=moved,
            moderately_active_min=0,
            very_active_min=0,
        )
    awake_min = 1440 - (main.time_in_bed_min if main is not None else 480)
    very_i, moderate_i = int(round(very)), int(round(moderate))
    light_i = int(round(light))
    return DailyActivity(
        person_id=pid,
        source=SOURCE_NAME,
        day=day,
        steps=int(round(steps)),
        sedentary_min=max(0, awake_min - very_i - moderate_i - light_i),
        lightly_active_min=light_i,
        moderately_active_min=moderate_i,
        very_active_min=very_i,
    )


# ----------------------------------------------------------------------------------------------------
# The cohort and the source.


def record_civil_date(record: AnyRecord) -> date:
    """The civil date a record belongs to: the night (wake date) for sleep, HRV and vitals, else the day."""
    if isinstance(record, (SleepSession, NightlyHrv, NightlyVitals)):
        return record.night_date
    return record.day


class SyntheticCohort:
    """N clinicians x D nights of wearable records, reproducible from `seed`."""

    def __init__(
        self,
        n_people: int = 12,
        n_nights: int = 120,
        seed: int = 7,
        first_night: date = date(2026, 7, 1),
    ) -> None:
        if n_people < 1:
            raise ValueError(f"A synthetic cohort needs at least one person; got n_people={n_people}.")
        if n_nights < 1:
            raise ValueError(f"A synthetic cohort needs at least one night; got n_nights={n_nights}.")
        self.n_people = n_people
        self.n_nights = n_nights
        self.seed = seed
        self.first_night = first_night
        self.nights: list[date] = [first_night + timedelta(days=i) for i in range(n_nights)]
        self._plans = {
            plan.person.person_id: plan
            for plan in (_plan_person(seed, k, first_night, n_nights) for k in range(1, n_people + 1))
        }
        self.people: list[SyntheticPerson] = [plan.person for plan in self._plans.values()]
        self.ground_truth: list[Patch] = [p.patch for p in self._plans.values() if p.patch is not None]
        self.trips: list[Trip] = [p.trip for p in self._plans.values() if p.trip is not None]
        self._records: dict[str, list[AnyRecord]] = {}

    def person(self, person_id: str) -> SyntheticPerson:
        return self._plan(person_id).person

    def shift_sleep_nights(self, person_id: str) -> list[date]:
        """Nights (wake dates) whose main sleep follows a night shift, in the day: the person's roster."""
        plan = self._plan(person_id)
        if not plan.person.night_shift:
            return []
        return [
            night
            for i, night in enumerate(self.nights)
            if 1 <= (i + plan.shift_phase) % SHIFT_CYCLE_DAYS <= SHIFT_BLOCK
        ]

    def records(self, person_id: str) -> list[AnyRecord]:
        """Every record of this person over the cohort's nights, in night order (generated once, cached)."""
        plan = self._plan(person_id)
        if person_id not in self._records:
            self._records[person_id] = _generate(plan, self.seed, self.nights)
        return list(self._records[person_id])

    def _plan(self, person_id: str) -> _Plan:
        try:
            return self._plans[person_id]
        except KeyError:
            raise KeyError(
                f"{person_id!r} is not in this synthetic cohort (people c01..c{self.n_people:02d})."
            ) from None


_MODELS: dict[
    str, type[SleepSession | DailyActivity | DailyRestingHeartRate | NightlyHrv | NightlyVitals]
] = {
    "sleep_session": SleepSession,
    "daily_activity": DailyActivity,
    "daily_resting_hr": DailyRestingHeartRate,
    "nightly_hrv": NightlyHrv,
    "nightly_vitals": NightlyVitals,
}


class SyntheticSource:
    """Serves a SyntheticCohort through the Source protocol: one JSON payload per fetch, like a sync would."""

    name = SOURCE_NAME

    def __init__(self, cohort: SyntheticCohort) -> None:
        self.cohort = cohort

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        if end < start:
            raise ValueError(f"The window ends ({end}) before it starts ({start}); pass start <= end.")
        items = [
            record.model_dump(mode="json")
            for record in self.cohort.records(person.person_id)
            if start <= record_civil_date(record) <= end
        ]
        document = {
            "person_id": person.person_id,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            RESOURCE: items,
        }
        # Sorted keys and fixed separators: the same window always gives the same bytes, so the same sha256.
        body = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        yield RawPayload(
            person_id=person.person_id,
            source=self.name,
            resource=RESOURCE,
            body=body,
            fetched_at=datetime.now(timezone.utc),
            window_start=start,
            window_end=end,
        )

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        result = ParseResult()
        where = f"The synthetic '{raw.resource}' payload for {person.person_id}"
        try:
            document = json.loads(raw.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            result.rejected.append(
                Rejected(
                    "payload",
                    f"{where} is not valid JSON ({exc}); it stays archived and can be parsed again.",
                )
            )
            return result
        if not isinstance(document, dict) or not isinstance(document.get(RESOURCE), list):
            result.rejected.append(
                Rejected(
                    "payload", f"{where} has no '{RESOURCE}' list; it stays archived and can be parsed again."
                )
            )
            return result
        if document.get("person_id") != person.person_id:
            result.rejected.append(
                Rejected(
                    "payload",
                    f"{where} belongs to {document.get('person_id')!r}; nothing was taken from it.",
                )
            )
            return result
        for i, item in enumerate(document[RESOURCE]):
            kind = item.get("kind") if isinstance(item, dict) else None
            locator = f"{RESOURCE}[{i}] (kind {kind})"
            model = _MODELS.get(kind) if isinstance(kind, str) else None
            if model is None:
                result.rejected.append(
                    Rejected(locator, f"{self.name}: item {i} has an unknown kind {kind!r}; it was skipped.")
                )
                continue
            if item.get("person_id") != person.person_id:
                result.rejected.append(
                    Rejected(
                        locator,
                        f"{self.name}: item {i} belongs to {item.get('person_id')!r}; it was skipped.",
                    )
                )
                continue
            try:
                result.records.append(build_record(model, item, source=self.name, locator=locator))  # type: ignore[arg-type]
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
        return result
