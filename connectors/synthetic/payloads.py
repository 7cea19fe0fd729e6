"""Renders generated values as the records every source delivers, and a fetch window as one JSON payload."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

from connectors.records import (
    DailyActivity,
    DailyRestingHeartRate,
    NightlyHrv,
    NightlyVitals,
    Record,
    SleepSession,
    SleepStage,
    night_date_of_wake,
)
from connectors.synthetic.sleep_logs import EPOCH_S

SOURCE_NAME = "synthetic"
RESOURCE = "nights"

Wear = Literal["day", "brief", "none"]  # how long the watch was on the wrist that day

_WAKE_STAGES = frozenset(stage for stage in SleepStage if stage.is_wake)

# What a payload's items may be, by their `kind`.
MODELS: dict[str, type[Record]] = {
    "sleep_session": SleepSession,
    "daily_activity": DailyActivity,
    "daily_resting_hr": DailyRestingHeartRate,
    "nightly_hrv": NightlyHrv,
    "nightly_vitals": NightlyVitals,
}


def session(
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



def hrv(pid: str, night: date, rmssd: float, deep_ratio: float) -> NightlyHrv:
    return NightlyHrv(
        person_id=pid,
        source=SOURCE_NAME,
        night_date=night,
        rmssd_ms=round(rmssd, 1),
        deep_rmssd_ms=round(rmssd * deep_ratio, 1),
    )


def vitals(
    pid: str, night: date, spo2: float | None, breathing: float | None, skin: float | None
) -> NightlyVitals:
    """A measure the watch did not report that night is None."""
    return NightlyVitals(
        person_id=pid,
        source=SOURCE_NAME,
        night_date=night,
        spo2_avg_pct=None if spo2 is None else round(spo2, 1),
        breathing_rate_brpm=None if breathing is None else round(breathing, 1),
        skin_temp_deviation_c=None if skin is None else round(skin, 2),
    )


def resting_hr(pid: str, day: date, bpm: float) -> DailyRestingHeartRate:
    return DailyRestingHeartRate(person_id=pid, source=SOURCE_NAME, day=day, resting_hr_bpm=float(round(bpm)))


def activity(
    pid: str,
    day: date,
    main: SleepSession | None,
    wear: Wear,
    steps: float,
    very: float,
    moderate: float,
    light: float,
) -> DailyActivity:
    if wear == "day":
        awake_min = 1440 - (main.time_in_bed_min if main is not None else 480)
        very_min, moderate_min, light_min = int(round(very)), int(round(moderate)), int(round(light))
        step_count = int(round(steps))
        sedentary_min = max(0, awake_min - very_min - moderate_min - light_min)
    else:
        # What Fitbit reports for a day the watch sat in a drawer (zero steps, the whole day sedentary) or was
        # worn for a moment: the activity validity rule (>= 100 steps) must drop these, not the connector.
        very_min = moderate_min = 0
        light_min = 0 if wear == "none" else 5 + int(light) % 20
        step_count = 0 if wear == "none" else int(steps) % 97
        sedentary_min = 1440 - light_min
    return DailyActivity(
        person_id=pid,
        source=SOURCE_NAME,
        day=day,
        steps=step_count,
        sedentary_min=sedentary_min,
        lightly_active_min=light_min,
        moderately_active_min=moderate_min,
        very_active_min=very_min,
    )


def window_body(person_id: str, start: date, end: date, records: Sequence[Record]) -> bytes:
    """One fetch window's records as the JSON document a synthetic sync returns."""
    items = [record.model_dump(mode="json") for record in records]
    document = {
        "person_id": person_id,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        RESOURCE: items,
    }
    # Sorted keys and fixed separators: the same window always gives the same bytes, so the same sha256.
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
