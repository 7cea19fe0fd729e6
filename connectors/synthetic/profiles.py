"""Who the synthetic people are: profile, zone, shifts and trips, each one's usual, and the scripted patches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import numpy as np

Profile = Literal["calm", "rough", "illness"]
PatchKind = Literal["rough", "illness"]


@dataclass(frozen=True)
class SyntheticPerson:
    person_id: str
    email: str
    tz_name: str  # home zone
    profile: Profile
    night_shift: bool
    traveller: bool
    devices: tuple[tuple[date, str], ...] = ()  # (first night, source) of each device worn; () = the demo's own


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

# Each person draws from two random streams of their own: the plan (here) and the nights (nights.py). So person
# k's data does not change when the number of people changes (it does with `n_nights`, which bounds where
# patches fit).
STREAM_PLAN = 0
STREAM_NIGHTS = 1


def _person_slot(k: int) -> _Slot:
    slot = _TEMPLATE[(k - 1) % len(_TEMPLATE)]
    block = (k - 1) // len(_TEMPLATE)
    if block == 0:
        return slot
    # Later blocks repeat the profiles but move people round the zones, so combinations vary.
    zone = _ZONES[(k - 1 + block) % len(_ZONES)]
    return _Slot(slot.profile, zone, slot.night_shift, slot.traveller)


def person_rng(seed: int, k: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, k, stream])


# ----------------------------------------------------------------------------------------------------
# Per-person plan: usual values and scripted events, drawn once from the plan stream.


@dataclass(frozen=True)
class Usual:
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
class PatchEffect:
    """Full-strength changes for a patch; the nightly strength (0..1) scales them."""

    tst_min: float
    waso_min: float
    sol_min: float
    extra_long_wakes: float
    bed_shift_min: float
    rhr_bpm: float
    ln_rmssd: float
    activity_factor: float  # fraction of usual movement lost
    # Illness signs: a rough patch has none of them.
    skin_temp_c: float = 0.0
    breathing_rate_brpm: float = 0.0
    spo2_pct: float = 0.0


@dataclass(frozen=True)
class Plan:
    k: int
    person: SyntheticPerson
    usual: Usual
    patch: Patch | None
    patch_index: tuple[int, int] | None  # first and last night index, inclusive
    patch_ramp_nights: int
    effect: PatchEffect | None
    trip: Trip | None
    trip_index: int | None
    shift_phase: int
    not_worn: tuple[int, ...]  # night indexes with the device not worn at all


# Starting points (ours, no published source): TST 6.5-8 h with a night-to-night SD of ~35 min, sleep onset
# SD ~20 min, efficiency 85-95 %, resting HR 52-70 bpm (SD 1.5-2), RMSSD 25-70 ms (lnRMSSD SD ~0.15),
# breathing rate 13.5-16.5, skin temperature deviation 0 +/- 0.2 C, SpO2 95-97 %. Plausible population values,
# not fitted to a data set.
def _draw_usual(rng: np.random.Generator) -> Usual:
    u = rng.uniform
    tst = u(390, 480)
    efficiency = u(0.85, 0.95)
    sol = u(5, 16)
    trailing = u(1, 4)
    return Usual(
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


def plan_person(seed: int, k: int, first_night: date, n_nights: int) -> Plan:
    rng = person_rng(seed, k, STREAM_PLAN)
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
            effect = PatchEffect(
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
            effect = PatchEffect(
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

    return Plan(
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

