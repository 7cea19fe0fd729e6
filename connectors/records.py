"""The typed records every source yields: the one contract between connectors and the store.

Every record carries `person_id`, `source`, a natural key (the source's own id or a stable key built from
person, source and civil date) and the civil date it belongs to. Instants are UTC (naive `datetime` in UTC is
rejected: we want the zone to be explicit at the edge); the IANA zone in force travels with them.

Night attribution (docs/architecture.md, "The data path"): a night belongs to the local calendar date on which
the person woke, Fitbit's `dateOfSleep`. `night_date_of_wake` is the one place that rule lives.
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


def is_iana_zone(name: object) -> bool:
    """Whether `name` opens as an IANA zone. ZoneInfo answers a bad name with one of several errors: a
    directory ("America") or an over-long name comes back as OSError, not ZoneInfoNotFoundError."""
    if not isinstance(name, str):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _require_zone(value: str) -> str:
    if not is_iana_zone(value):
        raise ValueError(f"{value!r} is not an IANA time zone name")
    return value


# Plausible civil dates for any record. Consumer sleep trackers date from 2009 (the first Fitbit), so nothing
# real is older than 2000; the upper bound is fixed rather than "today + n" so that an archived payload parses
# the same way whenever it is re-parsed (and synthetic cohorts may run a year or more ahead). A date outside
# is a device clock reset (1970, year 1) or a corrupted field, never a night to compare.
EARLIEST_PLAUSIBLE_DATE = date(2000, 1, 1)
LATEST_PLAUSIBLE_DATE = date(2099, 12, 31)


def _require_plausible_date(value: date) -> date:
    if not EARLIEST_PLAUSIBLE_DATE <= value <= LATEST_PLAUSIBLE_DATE:
        raise ValueError(
            f"{value.isoformat()} is outside the plausible dates {EARLIEST_PLAUSIBLE_DATE.isoformat()} to "
            f"{LATEST_PLAUSIBLE_DATE.isoformat()}"
        )
    return value


def _require_plausible_instant(value: datetime) -> datetime:
    value = _require_utc(value)
    _require_plausible_date(value.date())
    return value


def _no_bool_for_numbers(model: type[BaseModel], data: object) -> object:
    # pydantic's lax mode reads true/false as 1/0, so `"minutesAsleep": true` would become one minute asleep.
    # A true/false is a wrong type everywhere except in a bool field.
    if isinstance(data, dict):
        for name, value in data.items():
            field_info = model.model_fields.get(name) if isinstance(name, str) else None
            if isinstance(value, bool) and field_info is not None and field_info.annotation is not bool:
                raise ValueError(f"field '{name}' should be a number or text, not true/false")
    return data


def storable_text(text: str, limit: int = 40) -> str:
    """A piece of payload text (a log id, a date, a key) for a locator or reason: cut to `limit` characters
    and safe to store. JSON may carry a lone surrogate ("\\udcff") that UTF-8 cannot encode, and one such
    character in a locator made the quarantine insert itself fail; it is written as its escape instead."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


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

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: object) -> object:
        return _no_bool_for_numbers(cls, data)


class StageSegment(BaseModel):
    """One contiguous stretch of a single sleep stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_utc: datetime
    duration_s: Annotated[int, Field(gt=0, le=24 * 3600)]
    stage: SleepStage

    _utc = field_validator("start_utc")(_require_plausible_instant)

    @model_validator(mode="before")
    @classmethod
    def _no_bools(cls, data: object) -> object:
        return _no_bool_for_numbers(cls, data)

    @property
    def end_utc(self) -> datetime:
        return self.start_utc + timedelta(seconds=self.duration_s)


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

    _utc = field_validator("start_utc", "end_utc")(_require_plausible_instant)
    _zone = field_validator("tz_name")(_require_zone)
    _date = field_validator("night_date")(_require_plausible_date)

    @model_validator(mode="after")
    def _consistent(self) -> "SleepSession":
        if self.end_utc <= self.start_utc:
            raise ValueError("end_utc must be after start_utc")
        if self.end_utc - self.start_utc > timedelta(hours=24):
            raise ValueError("a sleep session cannot last longer than 24 hours")
        if self.minutes_asleep > self.time_in_bed_min:
            raise ValueError("minutes_asleep cannot exceed time_in_bed_min")
        # Minutes awake or falling asleep are minutes in bed too: more of them than time in bed is corrupt.
        if self.minutes_awake > self.time_in_bed_min:
            raise ValueError("minutes_awake cannot exceed time_in_bed_min")
        if self.minutes_to_fall_asleep > self.time_in_bed_min:
            raise ValueError("minutes_to_fall_asleep cannot exceed time_in_bed_min")
        # Time in bed is at most the real time from start to end (+1 for a partial minute).
        if self.time_in_bed_min > (self.end_utc - self.start_utc).total_seconds() // 60 + 1:
            raise ValueError("time_in_bed_min cannot exceed the minutes from start_utc to end_utc")
        # A stage outside its own session would be counted in another night's WASO, latency and regularity.
        for index, segment in enumerate(self.segments):
            if segment.start_utc < self.start_utc or segment.end_utc > self.end_utc:
                raise ValueError(f"segments[{index}] lies outside the session (start_utc to end_utc)")
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

    _date = field_validator("day")(_require_plausible_date)


class DailyRestingHeartRate(Record):
    """Resting heart rate the source computed for one civil day (Fitbit: mostly from the night before)."""

    kind: Literal["daily_resting_hr"] = "daily_resting_hr"
    day: date
    resting_hr_bpm: Annotated[float, Field(gt=20, lt=150)]

    _date = field_validator("day")(_require_plausible_date)


class NightlyHrv(Record):
    """Heart-rate variability of a night, in the metric its source measures: RMSSD over the main sleep (Fitbit,
    Google, Oura), or SDNN from Apple's ~1-minute readings (Apple Health). The two are not comparable (SDNN holds
    slower variation as well as beat-to-beat), so a night carries one or the other and each has its own baseline."""

    kind: Literal["nightly_hrv"] = "nightly_hrv"
    night_date: date
    rmssd_ms: Annotated[float, Field(gt=0, lt=400)] | None = None
    deep_rmssd_ms: Annotated[float, Field(gt=0, lt=400)] | None = None
    sdnn_ms: Annotated[float, Field(gt=0, lt=400)] | None = None

    _date = field_validator("night_date")(_require_plausible_date)

    @model_validator(mode="after")
    def _one_metric(self) -> "NightlyHrv":
        if (self.rmssd_ms is None) == (self.sdnn_ms is None):
            raise ValueError("a night's HRV is either rmssd_ms or sdnn_ms, exactly one of them")
        if self.deep_rmssd_ms is not None and self.rmssd_ms is None:
            raise ValueError("deep_rmssd_ms comes only with rmssd_ms")
        return self


class NightlyVitals(Record):
    """Overnight vitals: used as illness/confounder context, never as an alert trigger (docs/signals.md)."""

    kind: Literal["nightly_vitals"] = "nightly_vitals"
    night_date: date
    spo2_avg_pct: Annotated[float, Field(ge=50, le=100)] | None = None
    breathing_rate_brpm: Annotated[float, Field(gt=2, lt=60)] | None = None
    skin_temp_deviation_c: Annotated[float, Field(ge=-10, le=10)] | None = None

    _date = field_validator("night_date")(_require_plausible_date)


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
