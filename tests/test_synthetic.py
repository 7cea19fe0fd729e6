"""The synthetic cohort: deterministic, valid, realistic enough to exercise every rule, honest about truth."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from statistics import mean, median
from zoneinfo import ZoneInfo

import pytest

from connectors.base import PersonContext, RawPayload, Source
from connectors.records import (
    DailyActivity,
    DailyRestingHeartRate,
    NightlyHrv,
    NightlyVitals,
    SleepSession,
    night_date_of_wake,
)
from connectors.synthetic import (
    Patch,
    SyntheticCohort,
    SyntheticSource,
    record_civil_date,
)


@pytest.fixture(scope="module")
def cohort() -> SyntheticCohort:
    return SyntheticCohort()


@pytest.fixture(scope="module")
def source(cohort: SyntheticCohort) -> SyntheticSource:
    return SyntheticSource(cohort)


def ctx(cohort: SyntheticCohort, person_id: str) -> PersonContext:
    return PersonContext(person_id=person_id, tz_name=cohort.person(person_id).tz_name)


def main_sleeps(cohort: SyntheticCohort, person_id: str) -> list[SleepSession]:
    return [r for r in cohort.records(person_id) if isinstance(r, SleepSession) and r.is_main_sleep]


def all_sessions(cohort: SyntheticCohort) -> list[SleepSession]:
    return [r for p in cohort.people for r in cohort.records(p.person_id) if isinstance(r, SleepSession)]


def local_minutes(instant: datetime, tz_name: str) -> int:
    local = instant.astimezone(ZoneInfo(tz_name))
    return local.hour * 60 + local.minute


def patch_of(cohort: SyntheticCohort, person_id: str) -> Patch:
    (patch,) = [p for p in cohort.ground_truth if p.person_id == person_id]
    return patch


def before_and_during(values: dict[date, float], patch: Patch) -> tuple[float, float]:
    before = [v for night, v in values.items() if night < patch.onset_night]
    during = [v for night, v in values.items() if patch.contains(night)]
    assert len(before) >= 30 and len(during) >= 3
    return mean(before), mean(during)


# --- shape of the cohort ------------------------------------------------------------------------------------


def test_default_cohort_is_twelve_people_over_120_nights(cohort: SyntheticCohort) -> None:
    assert [p.person_id for p in cohort.people] == [f"c{k:02d}" for k in range(1, 13)]
    assert cohort.people[0].email == "c01@clinic.example"
    assert cohort.nights[0] == date(2026, 7, 1)
    assert cohort.nights[-1] == date(2026, 10, 28)
    assert len(cohort.nights) == 120


def test_default_window_contains_dst_changes_in_europe_and_sydney(cohort: SyntheticCohort) -> None:
    def changes(tz_name: str) -> list[date]:
        zone = ZoneInfo(tz_name)
        return [
            night
            for night in cohort.nights
            if datetime(night.year, night.month, night.day, tzinfo=zone).utcoffset()
            != datetime(night.year, night.month, night.day, 12, tzinfo=zone).utcoffset()
        ]

    assert changes("Europe/London") == [date(2026, 10, 25)]
    assert changes("Europe/Oslo") == [date(2026, 10, 25)]
    assert changes("Australia/Sydney") == [date(2026, 10, 4)]
    zones = {p.tz_name for p in cohort.people}
    assert {"Europe/London", "Australia/Sydney"} <= zones


def test_default_cohort_roles(cohort: SyntheticCohort) -> None:
    by_profile = {
        kind: [p.person_id for p in cohort.people if p.profile == kind]
        for kind in ("calm", "rough", "illness")
    }
    assert by_profile["rough"] == ["c02", "c04", "c08", "c12"]
    assert by_profile["illness"] == ["c06"]
    assert [p.person_id for p in cohort.people if p.night_shift] == ["c03", "c08"]
    assert [p.person_id for p in cohort.people if p.traveller] == ["c05", "c09"]


@pytest.mark.parametrize("n_people", [1, 2, 3, 6, 8, 10, 25])
def test_every_cohort_size_gets_the_people_it_promises(n_people: int) -> None:
    people = SyntheticCohort(n_people=n_people, n_nights=5).people
    profiles = {p.profile for p in people}
    assert len(people) == n_people
    assert "calm" in profiles
    if n_people >= 2:
        assert "rough" in profiles
    if n_people >= 6:
        assert any(p.night_shift for p in people)
        assert any(p.traveller for p in people)
    if n_people >= 8:
        assert "illness" in profiles


def test_rough_share_is_about_thirty_percent_and_illness_ten() -> None:
    counts = Counter(p.profile for p in SyntheticCohort(n_people=50, n_nights=5).people)
    assert counts == {"calm": 30, "rough": 15, "illness": 5}


def test_small_cohorts_and_short_windows_still_generate() -> None:
    for n_nights in (1, 2, 30):
        tiny = SyntheticCohort(n_people=9, n_nights=n_nights)
        assert tiny.ground_truth == []  # no room for a patch after a 40-night baseline
        for person in tiny.people:
            assert all(record_civil_date(r) in tiny.nights for r in tiny.records(person.person_id))


def test_bad_sizes_and_unknown_people_are_refused_with_a_sentence(cohort: SyntheticCohort) -> None:
    with pytest.raises(ValueError, match="at least one person"):
        SyntheticCohort(n_people=0)
    with pytest.raises(ValueError, match="at least one night"):
        SyntheticCohort(n_nights=0)
    with pytest.raises(KeyError, match="not in this synthetic cohort"):
        cohort.records("c99")


# --- determinism --------------------------------------------------------------------------------------------


def full_body(c: SyntheticCohort, person_id: str) -> bytes:
    (raw,) = SyntheticSource(c).fetch(ctx(c, person_id), c.nights[0], c.nights[-1])
    return raw.body


def test_same_seed_gives_identical_bytes() -> None:
    a, b = SyntheticCohort(n_people=5, n_nights=60), SyntheticCohort(n_people=5, n_nights=60)
    for person in a.people:
        assert full_body(a, person.person_id) == full_body(b, person.person_id)
    assert a.ground_truth == b.ground_truth


def test_another_seed_gives_other_data() -> None:
    a, b = SyntheticCohort(n_people=2, n_nights=60, seed=7), SyntheticCohort(n_people=2, n_nights=60, seed=8)
    assert full_body(a, "c01") != full_body(b, "c01")


def test_a_persons_data_does_not_change_with_cohort_size() -> None:
    small, large = SyntheticCohort(n_people=3), SyntheticCohort(n_people=30)
    for person_id in ("c01", "c02", "c03"):
        assert small.records(person_id) == large.records(person_id)
        assert small.person(person_id) == large.person(person_id)
    assert [p for p in large.ground_truth if p.person_id in ("c01", "c02", "c03")] == small.ground_truth


def test_records_are_cached_and_callers_cannot_mutate_the_cache(cohort: SyntheticCohort) -> None:
    first = cohort.records("c01")
    first.clear()
    assert cohort.records("c01")
    assert cohort.records("c01")[0] is cohort.records("c01")[0]


# --- every record meets the contract ------------------------------------------------------------------------


def test_every_record_revalidates_from_its_json(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        for record in cohort.records(person.person_id):
            assert record.person_id == person.person_id
            assert record.source == "synthetic"
            assert type(record).model_validate(record.model_dump(mode="json")) == record


def test_records_come_in_night_order_within_the_window(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        dates = [record_civil_date(r) for r in cohort.records(person.person_id)]
        assert dates == sorted(dates)
        assert dates[0] >= cohort.nights[0] and dates[-1] <= cohort.nights[-1]


def test_natural_keys_are_unique(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        keys: Counter[tuple[str, object]] = Counter()
        for r in cohort.records(person.person_id):
            key = r.source_session_id if isinstance(r, SleepSession) else record_civil_date(r)
            keys[(r.kind, key)] += 1
        assert max(keys.values()) == 1
        mains = Counter(s.night_date for s in main_sleeps(cohort, person.person_id))
        assert max(mains.values()) == 1


def test_segments_tile_each_session_exactly(cohort: SyntheticCohort) -> None:
    for session in all_sessions(cohort):
        segments = session.segments
        assert segments, session.source_session_id
        assert segments[0].start_utc == session.start_utc
        for before, after in zip(segments, segments[1:], strict=False):
            assert before.start_utc + timedelta(seconds=before.duration_s) == after.start_utc
            assert before.stage != after.stage  # neighbours are merged
        assert sum(s.duration_s for s in segments) == (session.end_utc - session.start_utc).total_seconds()
        assert all(s.duration_s % 30 == 0 for s in segments)


def test_minute_fields_follow_from_the_segments(cohort: SyntheticCohort) -> None:
    for session in all_sessions(cohort):
        wake_s = sum(s.duration_s for s in session.segments if s.stage.is_wake)
        asleep_s = sum(s.duration_s for s in session.segments if not s.stage.is_wake)
        assert session.minutes_awake * 60 == wake_s
        assert session.minutes_asleep * 60 == asleep_s
        assert session.time_in_bed_min * 60 == (session.end_utc - session.start_utc).total_seconds()
        first = session.segments[0]
        expected_latency = first.duration_s // 60 if first.stage.is_wake else 0
        assert session.minutes_to_fall_asleep == expected_latency


def test_stage_logs_use_stages_and_classic_logs_use_classic_levels(cohort: SyntheticCohort) -> None:
    sessions = all_sessions(cohort)
    for session in sessions:
        levels = {s.stage.value for s in session.segments}
        if session.log_type == "stages":
            assert levels <= {"wake", "light", "deep", "rem"} and {"light", "rem"} <= levels
            assert session.minutes_asleep >= 180
        else:
            assert levels <= {"asleep", "restless", "awake"}
            assert all(s.duration_s % 60 == 0 for s in session.segments)
    mains = [s for s in sessions if s.is_main_sleep]
    classic_share = sum(s.log_type == "classic" for s in mains) / len(mains)
    assert 0.05 <= classic_share <= 0.15


def test_stage_nights_look_like_real_nights(cohort: SyntheticCohort) -> None:
    stage_nights = [s for s in all_sessions(cohort) if s.log_type == "stages"]
    share: Counter[str] = Counter()
    for session in stage_nights:
        for segment in session.segments:
            share[segment.stage.value] += segment.duration_s
    total = sum(share.values())
    assert 0.45 <= share["light"] / total <= 0.65
    assert 0.10 <= share["deep"] / total <= 0.22
    assert 0.15 <= share["rem"] / total <= 0.28
    assert 0.05 <= share["wake"] / total <= 0.16
    # Deep sleep sits in the first half of the night, REM in the second.
    early_deep = late_deep = early_rem = late_rem = 0
    for session in stage_nights:
        middle = session.start_utc + (session.end_utc - session.start_utc) / 2
        for segment in session.segments:
            early = segment.start_utc < middle
            if segment.stage.value == "deep":
                early_deep, late_deep = (
                    early_deep + early * segment.duration_s,
                    late_deep + (not early) * segment.duration_s,
                )
            if segment.stage.value == "rem":
                early_rem, late_rem = (
                    early_rem + early * segment.duration_s,
                    late_rem + (not early) * segment.duration_s,
                )
    assert early_deep > 2 * late_deep
    assert late_rem > 1.5 * early_rem


def test_usual_values_are_in_realistic_ranges(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        records = cohort.records(person.person_id)
        mains = main_sleeps(cohort, person.person_id)
        tst = mean(s.minutes_asleep for s in mains)
        efficiency = mean(s.minutes_asleep / s.time_in_bed_min for s in mains)
        rhr = median(r.resting_hr_bpm for r in records if isinstance(r, DailyRestingHeartRate))
        rmssd = median(r.rmssd_ms for r in records if isinstance(r, NightlyHrv))
        assert 330 <= tst <= 500, person.person_id  # night shifts and patches pull some means below 6.5 h
        assert 0.82 <= efficiency <= 0.96, person.person_id
        assert 50 <= rhr <= 73, person.person_id
        assert 22 <= rmssd <= 75, person.person_id


# --- night attribution: DST, travel, night shifts -----------------------------------------------------------


def test_every_session_belongs_to_its_wake_date(cohort: SyntheticCohort) -> None:
    for session in all_sessions(cohort):
        assert session.night_date == night_date_of_wake(session.end_utc, session.tz_name)


def test_dst_nights_are_present_and_attributed_to_the_wake_date(cohort: SyntheticCohort) -> None:
    dst_sessions = [s for s in all_sessions(cohort) if s.start_utc_offset_min != s.end_utc_offset_min]
    nights = {(s.tz_name, s.night_date) for s in dst_sessions}
    assert ("Europe/London", date(2026, 10, 25)) in nights
    assert ("Europe/Oslo", date(2026, 10, 25)) in nights
    assert ("Australia/Sydney", date(2026, 10, 4)) in nights
    for session in dst_sessions:
        assert session.night_date == night_date_of_wake(session.end_utc, session.tz_name)
        # Sleep runs to a wall-clock wake time: clocks going back give an hour more in bed, forward one less.
        change = session.end_utc_offset_min - session.start_utc_offset_min
        assert change in (-60, 60)
        wake_local = local_minutes(session.end_utc, session.tz_name)
        assert 4 * 60 <= wake_local <= 12 * 60


def test_travellers_records_carry_the_zone_in_force(cohort: SyntheticCohort) -> None:
    assert {t.person_id: t.tz_name for t in cohort.trips} == {
        "c05": "America/New_York",
        "c09": "America/Los_Angeles",
    }
    for trip in cohort.trips:
        home = cohort.person(trip.person_id).tz_name
        assert (trip.last_night - trip.first_night).days == 6
        sessions = [r for r in cohort.records(trip.person_id) if isinstance(r, SleepSession)]
        away = [s for s in sessions if trip.first_night <= s.night_date <= trip.last_night]
        assert len(away) >= 5
        assert all(s.tz_name == trip.tz_name for s in away)
        assert all(s.tz_name == home for s in sessions if s not in away)
        for session in away:
            assert session.night_date == night_date_of_wake(session.end_utc, session.tz_name)
        ordered = sorted(sessions, key=lambda s: s.start_utc)
        for before, after in zip(ordered, ordered[1:], strict=False):
            assert after.start_utc >= before.end_utc


def test_across_the_date_line_the_zone_in_force_decides_the_night(cohort: SyntheticCohort) -> None:
    trip = next(t for t in cohort.trips if t.person_id == "c09")  # Sydney -> Los Angeles
    away = [s for s in main_sleeps(cohort, "c09") if trip.first_night <= s.night_date <= trip.last_night]
    # Read in the home zone, most of these wake-ups would land on the next date.
    next_date = [
        night_date_of_wake(s.end_utc, "Australia/Sydney") == s.night_date + timedelta(days=1) for s in away
    ]
    assert len(away) >= 5 and sum(next_date) > len(away) / 2
    # Flying home loses a night: none is logged for the date spent in the air.
    nights = {s.night_date for s in main_sleeps(cohort, "c09")}
    assert trip.last_night + timedelta(days=1) not in nights


def test_jet_lag_moves_bedtime_on_the_first_nights_away(cohort: SyntheticCohort) -> None:
    # London -> New York: the body clock runs ahead of the wall clock for a few nights.
    trip = next(t for t in cohort.trips if t.person_id == "c05")
    first_nights = [
        s
        for s in main_sleeps(cohort, "c05")
        if trip.first_night <= s.night_date <= trip.first_night + timedelta(days=1)
    ]
    usual = [s for s in main_sleeps(cohort, "c05") if s.night_date < trip.first_night - timedelta(days=3)]

    def bedtime(s: SleepSession) -> int:
        minutes = local_minutes(s.start_utc, s.tz_name)
        return minutes - 1440 if minutes > 12 * 60 else minutes

    assert first_nights
    assert max(bedtime(s) for s in first_nights) < mean(bedtime(s) for s in usual) - 45


def test_night_shift_main_sleep_is_in_the_day(cohort: SyntheticCohort) -> None:
    for person_id in ("c03", "c08"):
        roster = set(cohort.shift_sleep_nights(person_id))
        assert 0.25 <= len(roster) / len(cohort.nights) <= 0.32
        day_sleeps = [s for s in main_sleeps(cohort, person_id) if s.night_date in roster]
        night_sleeps = [s for s in main_sleeps(cohort, person_id) if s.night_date not in roster]
        assert len(day_sleeps) >= 20
        for session in day_sleeps:
            start = local_minutes(session.start_utc, session.tz_name)
            end = local_minutes(session.end_utc, session.tz_name)
            assert 7 * 60 <= start <= 10 * 60 and end <= 18 * 60
            assert session.start_utc.astimezone(ZoneInfo(session.tz_name)).date() == session.night_date
        for session in night_sleeps:
            start = local_minutes(session.start_utc, session.tz_name)
            assert start >= 20 * 60 or start <= 3 * 60
    assert cohort.shift_sleep_nights("c01") == []


def test_weekends_start_later_and_last_longer(cohort: SyntheticCohort) -> None:
    later, longer = [], []
    for person in cohort.people:
        if person.night_shift or person.traveller:
            continue
        mains = main_sleeps(cohort, person.person_id)
        patch = [p for p in cohort.ground_truth if p.person_id == person.person_id]
        mains = [s for s in mains if not any(p.contains(s.night_date) for p in patch)]

        def onset(s: SleepSession) -> int:
            minutes = local_minutes(s.start_utc, s.tz_name)
            return minutes - 1440 if minutes > 12 * 60 else minutes

        free = [s for s in mains if s.night_date.weekday() >= 5]
        work = [s for s in mains if s.night_date.weekday() < 5]
        later.append(mean(onset(s) for s in free) - mean(onset(s) for s in work))
        longer.append(mean(s.minutes_asleep for s in free) - mean(s.minutes_asleep for s in work))
    assert min(later) > 15 and mean(later) > 40
    assert mean(longer) > 15


def test_night_to_night_noise_is_realistic(cohort: SyntheticCohort) -> None:
    person_id = "c01"  # calm, day worker, no trip
    workdays = [s for s in main_sleeps(cohort, person_id) if s.night_date.weekday() < 5]
    tst = [s.minutes_asleep for s in workdays]
    sd = (sum((x - mean(tst)) ** 2 for x in tst) / (len(tst) - 1)) ** 0.5
    assert 25 <= sd <= 50
    rhr = [r.resting_hr_bpm for r in cohort.records(person_id) if isinstance(r, DailyRestingHeartRate)]
    rhr_sd = (sum((x - mean(rhr)) ** 2 for x in rhr) / (len(rhr) - 1)) ** 0.5
    assert 1.2 <= rhr_sd <= 2.8


# --- gaps, naps, HRV, vitals, activity ----------------------------------------------------------------------


def test_missing_nights_exist_at_a_realistic_rate(cohort: SyntheticCohort) -> None:
    missing = 0
    for person in cohort.people:
        missing += len(cohort.nights) - len(main_sleeps(cohort, person.person_id))
    rate = missing / (len(cohort.people) * len(cohort.nights))
    assert 0.04 <= rate <= 0.10


def test_some_people_leave_the_watch_off_for_days(cohort: SyntheticCohort) -> None:
    runs = 0
    for person in cohort.people:
        records = cohort.records(person.person_id)
        off = {
            r.day
            for r in records
            if isinstance(r, DailyActivity) and r.steps == 0 and r.sedentary_min == 1440
        }
        worn = {record_civil_date(r) for r in records if not isinstance(r, DailyActivity)}
        assert not off & worn  # nothing but an empty activity day while the watch is in a drawer
        ordered = sorted(off)
        if len(ordered) >= 3 and any(
            ordered[i + 2] - ordered[i] == timedelta(days=2) for i in range(len(ordered) - 2)
        ):
            runs += 1
    assert runs >= 2


def test_every_day_has_an_activity_record_and_some_are_invalid(cohort: SyntheticCohort) -> None:
    below_100 = 0
    for person in cohort.people:
        activity = [r for r in cohort.records(person.person_id) if isinstance(r, DailyActivity)]
        assert [a.day for a in activity] == cohort.nights
        steps = []
        for a in activity:
            parts = (
                a.steps,
                a.sedentary_min,
                a.lightly_active_min,
                a.moderately_active_min,
                a.very_active_min,
            )
            assert None not in parts  # the synthetic source always reports every measure
            assert sum(p for p in parts[1:] if p is not None) <= 1440
            steps.append(a.steps or 0)
        below_100 += sum(x < 100 for x in steps)
        assert 4000 <= mean(x for x in steps if x >= 100) <= 13000
    assert below_100 > 0


def test_naps_are_short_afternoon_classic_logs(cohort: SyntheticCohort) -> None:
    naps = [s for s in all_sessions(cohort) if not s.is_main_sleep]
    assert len(naps) >= 20
    for nap in naps:
        assert 20 <= nap.time_in_bed_min <= 60
        assert nap.log_type == "classic"
        assert 13 * 60 <= local_minutes(nap.start_utc, nap.tz_name) <= 17 * 60
        assert nap.source_session_id.endswith("-nap")


def test_hrv_only_on_long_enough_stage_nights(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        records = cohort.records(person.person_id)
        mains = {s.night_date: s for s in main_sleeps(cohort, person.person_id)}
        hrv = [r for r in records if isinstance(r, NightlyHrv)]
        assert len(hrv) >= 0.7 * len(cohort.nights)
        for r in hrv:
            session = mains[r.night_date]
            assert session.log_type == "stages" and session.minutes_asleep >= 180
            assert r.deep_rmssd_ms is not None and r.deep_rmssd_ms > r.rmssd_ms
        eligible = [s for s in mains.values() if s.log_type == "stages"]
        assert {r.night_date for r in hrv} == {s.night_date for s in eligible}


def test_vitals_most_nights_with_plausible_values(cohort: SyntheticCohort) -> None:
    vitals = [r for p in cohort.people for r in cohort.records(p.person_id) if isinstance(r, NightlyVitals)]
    mains = sum(len(main_sleeps(cohort, p.person_id)) for p in cohort.people)
    assert 0.85 * mains <= len(vitals) <= mains
    calm = {p.person_id for p in cohort.people if p.profile == "calm"}
    calm_vitals = [v for v in vitals if v.person_id in calm]
    breathing = [v.breathing_rate_brpm for v in calm_vitals if v.breathing_rate_brpm is not None]
    skin = [v.skin_temp_deviation_c for v in calm_vitals if v.skin_temp_deviation_c is not None]
    spo2 = [v.spo2_avg_pct for v in calm_vitals if v.spo2_avg_pct is not None]
    assert 13 <= mean(breathing) <= 17
    assert abs(mean(skin)) <= 0.05 and max(abs(x) for x in skin) < 1.0
    assert 94.5 <= mean(spo2) <= 97.5
    assert any(v.spo2_avg_pct is None for v in vitals)  # some fields go missing, and stay None


def test_resting_hr_most_days(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        days = [r.day for r in cohort.records(person.person_id) if isinstance(r, DailyRestingHeartRate)]
        assert len(days) == len(set(days)) >= 0.85 * len(cohort.nights)


# --- ground truth -------------------------------------------------------------------------------------------


def test_ground_truth_matches_profiles_and_sits_inside_the_window(cohort: SyntheticCohort) -> None:
    patches = {p.person_id: p for p in cohort.ground_truth}
    assert len(patches) == len(cohort.ground_truth)  # one patch per person at most
    for person in cohort.people:
        if person.profile == "calm":
            assert person.person_id not in patches
            continue
        patch = patches[person.person_id]
        assert patch.kind == person.profile
        assert (patch.onset_night - cohort.nights[0]).days >= 40
        assert patch.end_night <= cohort.nights[-1]
        length = (patch.end_night - patch.onset_night).days + 1
        assert (7 <= length <= 21) if patch.kind == "rough" else (3 <= length <= 6)


def test_default_patch_dates(cohort: SyntheticCohort) -> None:
    assert cohort.ground_truth == [
        Patch("c02", "rough", date(2026, 8, 25), date(2026, 9, 3)),
        Patch("c04", "rough", date(2026, 8, 28), date(2026, 9, 16)),
        Patch("c06", "illness", date(2026, 9, 21), date(2026, 9, 25)),
        Patch("c08", "rough", date(2026, 9, 3), date(2026, 9, 12)),
        Patch("c12", "rough", date(2026, 9, 17), date(2026, 10, 2)),
    ]


@pytest.mark.parametrize("person_id", ["c02", "c04", "c08", "c12"])
def test_rough_patch_shortens_and_breaks_sleep_and_strains_recovery(
    cohort: SyntheticCohort, person_id: str
) -> None:
    patch = patch_of(cohort, person_id)
    records = cohort.records(person_id)
    mains = main_sleeps(cohort, person_id)
    tst_before, tst_during = before_and_during({s.night_date: s.minutes_asleep for s in mains}, patch)
    awake_before, awake_during = before_and_during({s.night_date: s.minutes_awake for s in mains}, patch)
    rhr_before, rhr_during = before_and_during(
        {r.day: r.resting_hr_bpm for r in records if isinstance(r, DailyRestingHeartRate)}, patch
    )
    ln_before, ln_during = before_and_during(
        {r.night_date: math.log(r.rmssd_ms) for r in records if isinstance(r, NightlyHrv)}, patch
    )
    assert tst_during <= tst_before - 30
    assert awake_during >= awake_before + 15
    assert rhr_during >= rhr_before + 3
    assert ln_during <= ln_before - 0.15


def test_rough_patch_ramps_in_and_recovers(cohort: SyntheticCohort) -> None:
    patch = patch_of(cohort, "c04")  # 20 nights
    rhr = {r.day: r.resting_hr_bpm for r in cohort.records("c04") if isinstance(r, DailyRestingHeartRate)}
    first_two = [rhr[d] for d in (patch.onset_night, patch.onset_night + timedelta(days=1)) if d in rhr]
    late = [v for d, v in rhr.items() if patch.onset_night + timedelta(days=6) <= d <= patch.end_night]
    after = [
        v
        for d, v in rhr.items()
        if patch.end_night + timedelta(days=4) <= d <= patch.end_night + timedelta(days=20)
    ]
    before = [v for d, v in rhr.items() if d < patch.onset_night]
    assert mean(late) > mean(first_two)
    assert abs(mean(after) - mean(before)) < 1.5


def test_illness_patch_raises_temperature_and_breathing_rate(cohort: SyntheticCohort) -> None:
    patch = patch_of(cohort, "c06")
    vitals = [r for r in cohort.records("c06") if isinstance(r, NightlyVitals)]
    skin_before, skin_during = before_and_during(
        {v.night_date: v.skin_temp_deviation_c for v in vitals if v.skin_temp_deviation_c is not None}, patch
    )
    br_before, br_during = before_and_during(
        {v.night_date: v.breathing_rate_brpm for v in vitals if v.breathing_rate_brpm is not None}, patch
    )
    tst_before, tst_during = before_and_during(
        {s.night_date: s.minutes_asleep for s in main_sleeps(cohort, "c06")}, patch
    )
    assert skin_during >= skin_before + 0.5
    assert br_during >= br_before + 1.0
    assert tst_during >= tst_before + 15  # ill people sleep longer


def test_only_the_ill_get_fever_like_nights(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        if person.profile == "illness":
            continue
        skin = [
            r.skin_temp_deviation_c for r in cohort.records(person.person_id) if isinstance(r, NightlyVitals)
        ]
        assert max(x for x in skin if x is not None) < 0.7


def test_calm_people_stay_near_their_usual(cohort: SyntheticCohort) -> None:
    for person in cohort.people:
        if person.profile != "calm":
            continue
        rhr = {
            r.day: r.resting_hr_bpm
            for r in cohort.records(person.person_id)
            if isinstance(r, DailyRestingHeartRate)
        }
        usual = median(rhr.values())
        for start in cohort.nights[:-6]:
            week = [rhr[d] for d in (start + timedelta(days=i) for i in range(7)) if d in rhr]
            if len(week) >= 4:
                assert mean(week) < usual + 4, (person.person_id, start)


# --- the Source ---------------------------------------------------------------------------------------------


def test_source_meets_the_protocol(source: SyntheticSource) -> None:
    as_source: Source = source
    assert as_source.name == "synthetic"


def test_fetch_gives_one_stable_payload_for_a_window(
    cohort: SyntheticCohort, source: SyntheticSource
) -> None:
    person = ctx(cohort, "c02")
    start, end = date(2026, 8, 20), date(2026, 8, 27)
    (raw,) = list(source.fetch(person, start, end))
    (again,) = list(source.fetch(person, start, end))
    assert raw.body == again.body and raw.sha256 == again.sha256
    assert (raw.person_id, raw.source, raw.resource) == ("c02", "synthetic", "nights")
    assert (raw.window_start, raw.window_end) == (start, end)
    assert raw.fetched_at.tzinfo is not None and raw.fetched_at <= datetime.now(timezone.utc)
    document = json.loads(raw.body)
    assert raw.body == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    (other,) = list(source.fetch(person, start, end + timedelta(days=1)))
    assert other.sha256 != raw.sha256


def test_fetch_then_parse_gives_back_exactly_the_window(
    cohort: SyntheticCohort, source: SyntheticSource
) -> None:
    for person_id, start, end in [
        ("c02", date(2026, 8, 20), date(2026, 8, 27)),
        (
            "c05",
            cohort.trips[0].first_night - timedelta(days=1),
            cohort.trips[0].last_night + timedelta(days=1),
        ),
        ("c01", date(2026, 10, 24), date(2026, 10, 26)),
        ("c03", cohort.nights[0], cohort.nights[-1]),
    ]:
        person = ctx(cohort, person_id)
        (raw,) = list(source.fetch(person, start, end))
        result = source.parse(raw, person)
        expected = [r for r in cohort.records(person_id) if start <= record_civil_date(r) <= end]
        assert result.rejected == []
        assert result.records == expected
        assert expected


def test_fetch_outside_the_cohort_is_an_empty_payload(
    cohort: SyntheticCohort, source: SyntheticSource
) -> None:
    person = ctx(cohort, "c01")
    (raw,) = list(source.fetch(person, date(2027, 1, 1), date(2027, 1, 7)))
    result = source.parse(raw, person)
    assert result.records == [] and result.rejected == []


def test_fetch_refuses_a_backwards_window_and_strangers(
    cohort: SyntheticCohort, source: SyntheticSource
) -> None:
    with pytest.raises(ValueError, match="before it starts"):
        list(source.fetch(ctx(cohort, "c01"), date(2026, 8, 2), date(2026, 8, 1)))
    with pytest.raises(KeyError):
        list(source.fetch(PersonContext("c99", "Europe/London"), date(2026, 8, 1), date(2026, 8, 2)))


def corrupt(raw: RawPayload, body: bytes) -> RawPayload:
    return RawPayload(
        person_id=raw.person_id,
        source=raw.source,
        resource=raw.resource,
        body=body,
        fetched_at=raw.fetched_at,
        window_start=raw.window_start,
        window_end=raw.window_end,
    )


@pytest.fixture()
def window(cohort: SyntheticCohort, source: SyntheticSource) -> tuple[PersonContext, RawPayload]:
    person = ctx(cohort, "c01")
    (raw,) = list(source.fetch(person, date(2026, 7, 10), date(2026, 7, 12)))
    return person, raw


def test_a_corrupted_body_is_rejected_whole_with_a_reason(
    source: SyntheticSource, window: tuple[PersonContext, RawPayload]
) -> None:
    person, raw = window
    for body in (raw.body[: len(raw.body) // 2], b"\xff\xfe not utf-8", b"[]", b'{"nights": 3}'):
        result = source.parse(corrupt(raw, body), person)
        assert result.records == []
        (rejected,) = result.rejected
        assert rejected.locator == "payload"
        assert "c01" in rejected.reason and rejected.reason.endswith(".")


def test_a_payload_for_someone_else_is_refused(
    cohort: SyntheticCohort, source: SyntheticSource, window: tuple[PersonContext, RawPayload]
) -> None:
    _, raw = window
    result = source.parse(raw, ctx(cohort, "c02"))
    assert result.records == []
    assert result.rejected[0].locator == "payload" and "'c01'" in result.rejected[0].reason


def test_a_bad_item_is_rejected_alone(
    source: SyntheticSource, window: tuple[PersonContext, RawPayload]
) -> None:
    person, raw = window
    document = json.loads(raw.body)
    items = document["nights"]
    sleep_at = next(i for i, item in enumerate(items) if item["kind"] == "sleep_session")
    items[sleep_at]["minutes_asleep"] = -5
    items.append({"kind": "mood_rating", "person_id": "c01"})
    items.append(dict(items[-2], person_id="c02"))
    result = source.parse(corrupt(raw, json.dumps(document).encode()), person)
    assert len(result.records) == len(items) - 3
    by_locator = {r.locator: r.reason for r in result.rejected}
    assert set(by_locator) == {
        f"nights[{sleep_at}] (kind sleep_session)",
        f"nights[{len(items) - 2}] (kind mood_rating)",
        f"nights[{len(items) - 1}] (kind {items[-1]['kind']})",
    }
    assert "minutes_asleep" in by_locator[f"nights[{sleep_at}] (kind sleep_session)"]
    assert "unknown kind" in by_locator[f"nights[{len(items) - 2}] (kind mood_rating)"]
