"""Google Health API v4 → records: Fitbit and Pixel Watch data since the Fitbit Web API was retired (2026-11-02).
On the engine (connectors.live), each data type is declared once in DATA_TYPES; Google's own are the two request
shapes (an AIP-160 filtered list, a civil daily roll-up) with their page tokens, its errors, and the parsers.

Payload groups: `sleep`, `daily-resting-heart-rate`, `daily-heart-rate-variability`, `vitals` (SpO2, breathing
rate, sleep temperature) and `activity` (steps, active minutes): merging steps and active minutes inside one
payload keeps the two halves of a day's DailyActivity together.

Wire traps (discovery document health.v4.json, and the recorded samples): int64 values arrive as strings,
durations and offsets as "-14400s", dates as {year, month, day}, and zero/false/empty fields are omitted.
"""

from __future__ import annotations

import json
from functools import partial
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator, Literal, cast

import requests

from connectors.base import ParseResult, PersonContext
from connectors.live import REVOKED, DataType, LiveConfig, LiveSource, Session, groups, json_object
from connectors.parse_helpers import (FieldsByDay, add, bad, duration_offset, finite_number, int64, json_object_field,
                                      one_field, rfc3339_instant, shown, valid, ymd_date, zone_unknown)
from connectors.records import (DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, Record,
                                SleepSession, SleepStage, StageSegment, build_record, night_date_of_wake)
from connectors.token_vault import StoredToken

SOURCE_NAME = "google-health"
_SCOPE = "https://www.googleapis.com/auth/googlehealth."
SCOPE_SLEEP = _SCOPE + "sleep.readonly"
SCOPE_ACTIVITY = _SCOPE + "activity_and_fitness.readonly"
SCOPE_METRICS = _SCOPE + "health_metrics_and_measurements.readonly"
SCOPE_SETTINGS = _SCOPE + "settings.readonly"  # the person's time zone
SCOPES = (SCOPE_SLEEP, SCOPE_ACTIVITY, SCOPE_METRICS, SCOPE_SETTINGS)
TESTING_MODE_REFRESH_TOKEN_LIFETIME = timedelta(days=7)
_bad, _object, _instant, _offset, _int64, _date, _number, _one_field, _add = (partial(f, SOURCE_NAME) for f in (
    bad, json_object_field, rfc3339_instant, duration_offset, int64, ymd_date, finite_number, one_field, add))


@dataclass(frozen=True)
class GoogleDataType(DataType):
    method: Literal["list", "dailyRollUp"] = "list"
    # AIP-160 member. It differs by type and a wrong one can answer 200 with nothing, so it is declared here.
    filter_member: str | None = None
    page_size: int = 100


def _daily_type(name: str, group: str, member: str) -> GoogleDataType:
    return GoogleDataType(name, group, SCOPE_METRICS, 90, filter_member=member + ".date")


DATA_TYPES: tuple[GoogleDataType, ...] = (
    # Sleep is filtered on its civil *end*: the night is the local date of waking. pageSize is at most 25.
    GoogleDataType("sleep", "sleep", SCOPE_SLEEP, 90, filter_member="sleep.interval.civil_end_time", page_size=25),
    _daily_type("daily-resting-heart-rate", "daily-resting-heart-rate", "daily_resting_heart_rate"),
    _daily_type("daily-heart-rate-variability", "daily-heart-rate-variability", "daily_heart_rate_variability"),
    _daily_type("daily-oxygen-saturation", "vitals", "daily_oxygen_saturation"),
    _daily_type("daily-respiratory-rate", "vitals", "daily_respiratory_rate"),
    _daily_type("daily-sleep-temperature-derivations", "vitals", "daily_sleep_temperature_derivations"),
    # Steps as a civil daily roll-up: one number per local day, computed by Google across the day's intervals
    # (a UTC `steps.interval.start_time` list would return ~1,440 points per day). Range <= 90 days.
    GoogleDataType("steps", "activity", SCOPE_ACTIVITY, 90, "dailyRollUp", page_size=90),
    GoogleDataType("active-minutes", "activity", SCOPE_ACTIVITY, 14, "dailyRollUp", page_size=14),  # <= 14 days
)
GROUPS: tuple[str, ...] = groups(DATA_TYPES)


class GoogleHealthConfig(LiveConfig):
    source, credentials, scopes = SOURCE_NAME, "GOOGLE", SCOPES
    urls = (("https://health.googleapis.com", "EMBERWATCH_GOOGLE_HEALTH_BASE_URL"),
            ("https://accounts.google.com/o/oauth2/v2/auth", "EMBERWATCH_GOOGLE_AUTH_URL"),
            ("https://oauth2.googleapis.com/token", "EMBERWATCH_GOOGLE_TOKEN_URL"))
    # access_type=offline gives a refresh token; prompt=consent makes Google issue a fresh one each time.
    authorize_params = (("access_type", "offline"), ("prompt", "consent"))


def google_error(response: requests.Response) -> tuple[str, str]:
    """A google.rpc.Status body as a sentence, plus its ErrorInfo reason (never the raw body: it may echo data)."""
    status, reason, message = "", "", ""
    try:
        error = response.json().get("error", {})
        status, message = error.get("status", ""), str(error.get("message", ""))
        for detail in error.get("details", []) or []:
            if detail.get("@type", "").endswith("ErrorInfo"):
                reason = detail.get("reason", "")
    except (ValueError, AttributeError):
        pass
    code = response.status_code
    if reason == "ACCOUNT_NOT_LINKED":
        text = ("The Google account has no Fitbit or Pixel Watch data linked to Google Health yet; "
                "ask the person to finish moving their Fitbit account to Google, then sync again.")
    elif code == 403 and ("UberMint" in message or "legacy" in reason.lower()):
        # Google's troubleshooting page: 403 "Could not mint UberMint from GaiaMint" = a legacy Fitbit login.
        text = ("The account is still a legacy Fitbit account, which Google Health does not serve; "
                "ask the person to move it to a Google account, then enroll again.")
    elif code == 403:
        text = (f"Google Health refused access ({reason or status or 'forbidden'}); a scope may not have been "
                "granted. Ask the person to enroll again and tick every box.")
    else:
        text = f"Google Health answered HTTP {code} ({reason or status or 'no reason given'})."
    return text, reason or status


def _date_json(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def _page_points(text: str) -> list[dict[str, Any]]:
    page = json.loads(text)
    items = page.get("dataPoints", page.get("rollupDataPoints", []))
    if not isinstance(items, list):
        raise ValueError
    return items


_STAGE = {"LIGHT": SleepStage.LIGHT, "DEEP": SleepStage.DEEP, "REM": SleepStage.REM,
          "ASLEEP": SleepStage.ASLEEP, "RESTLESS": SleepStage.RESTLESS}


def _parse_sleep(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    # Every session record carries the person's zone, and a session without a civil end is dated in it.
    if zone_unknown(SOURCE_NAME, person, result, "no sleep can be dated"):
        return
    seen: set[str] = set()
    located = ((f"sleep[{index}]", point) for index, point in enumerate(points.get("sleep", [])))
    for _, session in valid(result, located, lambda locator, point: _sleep_session(point, person, locator)):
        if session.source_session_id not in seen:  # else the same session on two pages (data changed meanwhile)
            seen.add(session.source_session_id)
            result.records.append(session)


def _sleep_session(point: dict[str, Any], person: PersonContext, locator: str) -> SleepSession:
    if not isinstance(point, dict):
        raise _bad(locator, f"expected a data point object, found {shown(point)}")
    sleep = point.get("sleep")
    if not isinstance(sleep, dict):
        raise _bad(locator, "field 'sleep' is missing")
    interval = _object(sleep.get("interval"), locator, "interval")
    start_utc = _instant(interval.get("startTime"), locator, "interval.startTime")
    end_utc = _instant(interval.get("endTime"), locator, "interval.endTime")
    if end_utc <= start_utc:
        # Said here in wire terms: otherwise the negative time in bed derived below is reported first.
        raise _bad(locator, "field 'interval.endTime' is not after 'interval.startTime' "
                            "(end_utc must be after start_utc)")
    # The night is the local date of waking, in the offset the watch recorded at waking (travel-proof),
    # or the server's own civil end when it sends one.
    end_offset = _offset(interval.get("endUtcOffset"), locator, "interval.endUtcOffset")
    civil_end = _object(interval.get("civilEndTime"), locator, "interval.civilEndTime")
    if "date" in civil_end:
        night = _date(civil_end["date"], locator, "interval.civilEndTime.date")
        # A civil date more than a day from the UTC end is no zone's view of that instant (offsets < 18 h).
        if abs((night - end_utc.date()).days) > 1:
            raise _bad(locator, f"field 'interval.civilEndTime.date' ({night}) is not the wake date of "
                                f"interval.endTime ({end_utc:%Y-%m-%dT%H:%M:%SZ})")
    elif end_offset is not None:
        night = (end_utc + end_offset).date()
    else:
        night = night_date_of_wake(end_utc, person.tz_name)
    name = point.get("name") or point.get("dataPointName") or ""
    if not isinstance(name, str):
        raise _bad(locator, f"field 'name' should be text, found {shown(name)}")
    # Real names are users/{id}/dataTypes/sleep/dataPoints/{id}; without one, the start instant is the key.
    session_id = (name.rsplit("/", 1)[-1] if "/dataPoints/" in name
                  else "start-" + start_utc.strftime("%Y%m%dT%H%M%SZ"))

    is_stages = sleep.get("type") == "STAGES"
    segments = []
    asleep_s = awake_s = 0
    stages = sleep.get("stages") or []
    if not isinstance(stages, list):
        raise _bad(locator, f"field 'stages' should be a list, found {shown(stages)}")
    for s_index, stage in enumerate(stages):
        where = f"{locator} stages[{s_index}]"
        if not isinstance(stage, dict):
            raise _bad(where, f"expected a stage object, found {shown(stage)}")
        s_start = _instant(stage.get("startTime"), where, "startTime")
        s_end = _instant(stage.get("endTime"), where, "endTime")
        if s_end < s_start:
            # A negative stretch is a corrupt stage, not an empty one: it would be dropped without a word.
            raise _bad(where, "field 'endTime' is before 'startTime'")
        seconds = int((s_end - s_start).total_seconds())
        kind = stage.get("type")
        if seconds <= 0 or not isinstance(kind, str) or kind not in (*_STAGE, "AWAKE"):
            continue  # unspecified stage: not a stage, like Fitbit's 'unknown'
        value = (SleepStage.WAKE if is_stages else SleepStage.AWAKE) if kind == "AWAKE" else _STAGE[kind]
        if value.is_wake:
            awake_s += seconds
        else:
            asleep_s += seconds
        segments.append(build_record(cast(type[Record], StageSegment), {
            "start_utc": s_start, "duration_s": seconds, "stage": value}, source=SOURCE_NAME, locator=where))

    # No efficiency and no time in bed on the wire: time in bed is the real elapsed time (DST-proof), and
    # efficiency follows downstream from minutes asleep / time in bed.
    time_in_bed_min = int((end_utc - start_utc).total_seconds() // 60)
    summary = sleep.get("summary")
    if isinstance(summary, dict):
        minutes_asleep = _int64(summary.get("minutesAsleep"), locator, "summary.minutesAsleep")
        minutes_awake = _int64(summary.get("minutesAwake"), locator, "summary.minutesAwake")
        to_fall_asleep = _int64(summary.get("minutesToFallAsleep"), locator, "summary.minutesToFallAsleep")
    elif summary is not None:
        raise _bad(locator, f"field 'summary' should be an object, found {shown(summary)}")
    else:  # not processed yet: derive from the stages
        minutes_asleep, minutes_awake, to_fall_asleep = asleep_s // 60, awake_s // 60, 0
    metadata = _object(sleep.get("metadata"), locator, "metadata")
    main_sleep = metadata.get("mainSleep", False)
    if not isinstance(main_sleep, bool):  # bool("false") is True: text here is a wrong type, not a yes
        raise _bad(locator, f"field 'metadata.mainSleep' should be true or false, found {shown(main_sleep)}")
    return cast(SleepSession, build_record(SleepSession, {
        "person_id": person.person_id,
        "source": SOURCE_NAME,
        "source_session_id": session_id,
        "night_date": night,
        "start_utc": start_utc,
        "end_utc": end_utc,
        "tz_name": person.tz_name,
        "is_main_sleep": main_sleep,
        "log_type": "stages" if is_stages else "classic",
        "minutes_asleep": _asleep_within_bed(cast(int, minutes_asleep), time_in_bed_min),
        "minutes_awake": minutes_awake,
        "minutes_to_fall_asleep": to_fall_asleep,
        "time_in_bed_min": time_in_bed_min,
        "segments": tuple(segments),
    }, source=SOURCE_NAME, locator=locator))


# Google's minutes are rounded on its side while time in bed is derived here from whole seconds, so minutes
# asleep may run a little past it; more than this is a corrupt summary, left for the record contract to
# refuse.
ASLEEP_ROUNDING_MIN = 5


def _asleep_within_bed(minutes_asleep: int, time_in_bed_min: int) -> int:
    if time_in_bed_min < minutes_asleep <= time_in_bed_min + ASLEEP_ROUNDING_MIN:
        return time_in_bed_min
    return minutes_asleep


def _daily(points: dict[str, list[dict]], name: str, member: str,
           result: ParseResult) -> Iterator[tuple[str, tuple[date, dict]]]:
    """(locator, (day, body)) for each well-formed daily point of a data type."""
    def check(locator: str, point: Any) -> tuple[date, dict]:
        if not isinstance(point, dict):
            raise _bad(locator, f"expected a data point object, found {shown(point)}")
        if not isinstance(body := point.get(member), dict):
            raise _bad(locator, f"field '{member}' is missing")
        return _date(body.get("date"), locator), body
    return valid(result, ((f"{name}[{index}]", p) for index, p in enumerate(points.get(name, []))), check)


def _parse_resting_hr(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    days = _daily(points, "daily-resting-heart-rate", "dailyRestingHeartRate", result)
    bpms = valid(result, days, lambda loc, day_body: (day_body[0], _int64(day_body[1].get("beatsPerMinute"), loc,
                                                                          "beatsPerMinute", None)))
    for locator, (day, bpm) in bpms:
        if bpm:  # absent (proto3's zero) means no value that day: missing, not 0
            _add(result, DailyRestingHeartRate, {"person_id": person.person_id, "day": day,
                                                 "resting_hr_bpm": float(bpm)}, locator)


def _parse_hrv(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    for locator, (day, body) in _daily(points, "daily-heart-rate-variability", "dailyHeartRateVariability", result):
        if rmssd := body.get("averageHeartRateVariabilityMilliseconds"):
            deep = body.get("deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds") or None
            _add(result, NightlyHrv, {"person_id": person.person_id, "night_date": day, "rmssd_ms": rmssd,
                                      "deep_rmssd_ms": deep}, locator)


def _parse_vitals(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    # The daily vitals are computed for the main sleep and dated with its wake date (the night).
    nights = FieldsByDay(SOURCE_NAME, NightlyVitals, person.person_id, "night_date")
    for name, member, field_name, wire in (
        ("daily-oxygen-saturation", "dailyOxygenSaturation", "spo2_avg_pct", "averagePercentage"),
        ("daily-respiratory-rate", "dailyRespiratoryRate", "breathing_rate_brpm", "breathsPerMinute"),
    ):
        for locator, (day, body) in _daily(points, name, member, result):
            if body.get(wire):
                nights.keep(result, day, field_name, body[wire], locator)

    def deviation(locator: str, day_body: tuple[date, dict]) -> tuple[date, float | None]:
        nightly, baseline = (day_body[1].get(f"{k}TemperatureCelsius") for k in ("nightly", "baseline"))
        if nightly is None or baseline is None:
            return day_body[0], None
        # Text or NaN here would make the subtraction raise, or a NaN deviation.
        return day_body[0], round(_number(nightly, locator, "nightlyTemperatureCelsius")
                                  - _number(baseline, locator, "baselineTemperatureCelsius"), 3)
    temperatures = _daily(points, "daily-sleep-temperature-derivations", "dailySleepTemperatureDerivations", result)
    for locator, (day, value) in valid(result, temperatures, deviation):
        if value is not None:
            nights.keep(result, day, "skin_temp_deviation_c", value, locator)
    nights.add_all(result, "vitals")


_LEVEL_FIELD = {"LIGHT": "lightly_active_min", "MODERATE": "moderately_active_min", "VIGOROUS": "very_active_min"}


def _parse_activity(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    days = FieldsByDay(SOURCE_NAME, DailyActivity, person.person_id, "day")

    def check(locator: str, point: Any) -> tuple[date, dict[str, Any]]:
        if not isinstance(point, dict):
            raise _bad(locator, f"expected a roll-up data point object, found {shown(point)}")
        day = _date(_object(point.get("civilStartTime"), locator, "civilStartTime").get("date"), locator,
                    "civilStartTime.date")
        # Each point is checked on its own: a bad step count never costs the day's active minutes.
        return day, {field: _one_field(DailyActivity, field, value, {"person_id": person.person_id, "day": day},
                                       locator) for field, value in _rollup_values(name, point, locator).items()}
    for name in ("steps", "active-minutes"):
        located = ((f"{name}[{index}]", point) for index, point in enumerate(points.get(name, [])))
        for _, (day, checked) in valid(result, located, check):
            days.by_day.setdefault(day, {}).update(checked)
    days.add_all(result, "activity")


def _rollup_values(name: str, point: dict[str, Any], locator: str) -> dict[str, int | None]:
    """DailyActivity fields from one roll-up point: steps, or the three active-minute levels."""
    if name == "steps" and isinstance(point.get("steps"), dict):
        return {"steps": _int64(point["steps"].get("countSum"), locator, "steps.countSum")}
    if name == "active-minutes" and isinstance(point.get("activeMinutes"), dict):
        levels = point["activeMinutes"].get("activeMinutesRollupByActivityLevel") or []
        if not isinstance(levels, list):
            raise _bad(locator, "field 'activeMinutesRollupByActivityLevel' should be a list, "
                                f"found {shown(levels)}")
        # A level left out is zero minutes.
        values: dict[str, int | None] = {field_name: 0 for field_name in _LEVEL_FIELD.values()}
        for l_index, level in enumerate(levels):
            field = f"activeMinutesRollupByActivityLevel[{l_index}]"
            if not isinstance(level, dict):
                raise _bad(locator, f"field '{field}' should be an object, found {shown(level)}")
            activity_level = level.get("activityLevel")
            if isinstance(activity_level, str) and activity_level in _LEVEL_FIELD:
                values[_LEVEL_FIELD[activity_level]] = _int64(level.get("activeMinutesSum"), locator,
                                                              f"{field}.activeMinutesSum")
        return values
    return {}


class GoogleHealthSource(LiveSource):
    name = provider = SOURCE_NAME
    data_types, config_type = DATA_TYPES, GoogleHealthConfig
    requests_per_minute = 300  # Google's quota per user
    backfill_slice_days = 90  # the longest window sleep, the daily types and steps accept: one call each per slice
    group_parsers = {"sleep": _parse_sleep, "daily-resting-heart-rate": _parse_resting_hr,
                     "daily-heart-rate-variability": _parse_hrv, "vitals": _parse_vitals,
                     "activity": _parse_activity}

    def describe_error(self, response: requests.Response, person_id: str) -> tuple[str, str]:
        return google_error(response)

    def consent_lost_reason(self, current: StoredToken) -> str:
        at = current.consented_at if current.consented_at.tzinfo else current.consented_at.replace(tzinfo=timezone.utc)
        if datetime.now(timezone.utc) - at >= TESTING_MODE_REFRESH_TOKEN_LIFETIME:
            return ("the authorisation expired 7 days after consent, as Google does for apps whose "
                    "OAuth consent screen is in Testing status")
        return REVOKED

    def pages(self, session: Session, t: Any, first: date, last: date) -> Iterator[str]:
        url = f"{self.config.api_base}/v4/users/me/dataTypes/{t.name}/dataPoints"
        token: str | None = None
        while True:
            if t.method == "list":
                params: dict[str, Any] = {
                    "filter": f'{t.filter_member} >= "{first.isoformat()}" AND '
                              f'{t.filter_member} < "{(last + timedelta(days=1)).isoformat()}"',
                    "pageSize": t.page_size, **({"pageToken": token} if token else {})}
                response = session.client.request("GET", url, params=params)
            else:
                body: dict[str, Any] = {
                    # CivilTimeInterval: dates wrapped as {"date": {...}}, end exclusive.
                    "range": {"start": {"date": _date_json(first)},
                              "end": {"date": _date_json(last + timedelta(days=1))}},
                    "windowSizeDays": 1, "pageSize": t.page_size, **({"pageToken": token} if token else {})}
                response = session.client.request("POST", url + ":dailyRollUp", json=body)
            yield response.text
            token = json_object(SOURCE_NAME, response, f"a {t.name} page").get("nextPageToken") or None
            if not token:
                return

    def read_pages(self, texts: list[str]) -> list[dict[str, Any]]:
        return [point for text in texts for point in _page_points(text)]

    def time_zone(self, person_id: str) -> str | None:
        """The person's IANA zone from Google Health settings (scope settings.readonly)."""
        response = self.session(person_id).client.request("GET", f"{self.config.api_base}/v4/users/me/settings")
        return json_object(SOURCE_NAME, response, "the settings request").get("timeZone") or None
