"""The typed records every source yields: the one contract between connectors and the store.

Every record carries `person_id`, `source`, a natural key (the source's own id or a stable key built from
person, source and civil date) and the civil date it belongs to. Instants are UTC (naive `datetime` in UTC is
rejected: we want the zone to be explicit at the edge); the IANA zone in force travels with them.

Night attribution (ARCHITECTURE.md): a night belongs to the local calendar date on which the person woke,
Fitbit's `dateOfSleep`. `night_date_of_wake` is the one place that rule lives.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class RecordError(ValueError):
    """A payload item that does not meet the record contract. The message names the source and the field."""


class SleepStage(StrEnum):
    # Stage logs (Fitbit "stages", Google Health sleep stages)
    WAKE = "wake"
    LIGHT = "light"
    DEEP = "deep"
    REM = "rem"
    # Classic logs (older devices, or when stages could not be computed)
    ASLEEP = "asleep"
    RESTLESS = "restless"
    AWAKE = "awake"

    @property
    def is_wake(self) -> bool:
        return self in (SleepStage.WAKE, SleepStage.AWAKE)


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("instant has no time zone; connectors must convert local times to UTC first")
    return value.astimezone(timezone.utc)


def _require_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone name") from exc
    return value


def night_date_of_wake(end_utc: datetime, tz_name: str) -> date:
    """The civil date on which the person woke, in the zone in force at waking."""
    return _require_utc(end_utc).astimezone(ZoneInfo(tz_name)).date()


def utc_offset_minutes(instant_utc: datetime, tz_name: str) -> int:
    offset = _require_utc(instant_utc).astimezone(ZoneInfo(tz_name)).utcoffset() or timedelta(0)
    return int(offset.total_seconds() // 60)


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    person_id: Annotated[str, Field(min_length=1, max_length=64)]
    source: Annotated[str, Field(min_length=1, max_length=32)]


class StageSegment(BaseModel):
    """One contiguous stretch of a single sleep stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_utc: datetime
    duration_s: Annotated[int, Field(gt=0, le=24 * 3600)]
    stage: SleepStage

    _utc = field_validator("start_utc")(_require_utc)


class SleepSession(Record):
    """One sleep log: the main sleep of a night, or a nap."""

    kind: Literal["sleep_session"] = "sleep_session"
    source_session_id: Annotated[str, Field(min_length=1)]
    night_date: date
    start_utc: datetime
    end_utc: datetime
    tz_name: str
    is_main_sleep: bool
    log_type: Literal["stages", "classic"]
    minutes_asleep: Annotated[int, Field(ge=0, le=24 * 60)]
    minutes_awake: Annotated[int, Field(ge=0, le=24 * 60)]
    minutes_to_fall_asleep: Annotated[int, Field(ge=0, le=24 * 60)] = 0
    time_in_bed_min: Annotated[int, Field(ge=0, le=24 * 60)]
    segments: tuple[StageSegment, ...] = ()

    _utc = field_validator("start_utc", "end_utc")(_require_utc)
    _zone = field_validator("tz_name")(_require_zone)

    @model_validator(mode="after")
    def _consistent(self) -> "SleepSession":
        if self.end_utc <= self.start_utc:
            raise ValueError("end_utc must be after start_utc")
        if self.end_utc - self.start_utc > timedelta(hours=24):
            raise ValueError("a sleep session cannot last longer than 24 hours")
        if self.minutes_asleep > self.time_in_bed_min:
            raise ValueError("minutes_asleep cannot exceed time_in_bed_min")
        return self

    @property
    def start_utc_offset_min(self) -> int:
        return utc_offset_minutes(self.start_utc, self.tz_name)

    @property
    def end_utc_offset_min(self) -> int:
        return utc_offset_minutes(self.end_utc, self.tz_name)


class DailyActivity(Record):
    """Movement for one civil day, in the person's local zone. Missing measures stay None (never 0)."""

    kind: Literal["daily_activity"] = "daily_activity"
    day: date
    steps: Annotated[int, Field(ge=0, le=200_000)] | None = None
    sedentary_min: Annotated[int, Field(ge=0, le=1440)] | None = None
    lightly_active_min: Annotated[int, Field(ge=0, le=1440)] | None = None
    moderately_active_min: Annotated[int, Field(ge=0, le=1440)] | None = None
    very_active_min: Annotated[int, Field(ge=0, le=1440)] | None = None


class DailyRestingHeartRate(Record):
    """Resting heart rate the source computed for one civil day (Fitbit: mostly from the night before)."""

    kind: Literal["daily_resting_hr"] = "daily_resting_hr"
    day: date
    resting_hr_bpm: Annotated[float, Field(gt=20, lt=150)]


class NightlyHrv(Record):
    """Heart-rate variability over the main sleep of a night (RMSSD, milliseconds)."""

    kind: Literal["nightly_hrv"] = "nightly_hrv"
    night_date: date
    rmssd_ms: Annotated[float, Field(gt=0, lt=400)]
    deep_rmssd_ms: Annotated[float, Field(gt=0, lt=400)] | None = None


class NightlyVitals(Record):
    """Overnight vitals: used as illness/confounder context, never as an alert trigger (SIGNALS.md)."""

    kind: Literal["nightly_vitals"] = "nightly_vitals"
    night_date: date
    spo2_avg_pct: Annotated[float, Field(ge=50, le=100)] | None = None
    breathing_rate_brpm: Annotated[float, Field(gt=2, lt=60)] | None = None
    skin_temp_deviation_c: Annotated[float, Field(ge=-10, le=10)] | None = None


AnyRecord = SleepSession | DailyActivity | DailyRestingHeartRate | NightlyHrv | NightlyVitals


def build_record(model: type[Record], data: dict, *, source: str, locator: str = "") -> Record:
    """Validate `data` into `model`, turning pydantic's error into one sentence naming source and field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(record)"
        where = f" at {locator}" if locator else ""
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise RecordError(
            f"{source}{where}: field '{field}' is invalid: {first['msg']}{more}"
        ) from None
