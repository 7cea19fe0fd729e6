"""Legacy Fitbit Web API → records, on the engine (connectors.live) with python-fitbit 0.3.1's OAuth2 client
(unmaintained; we use its session, with Fitbit's compliance fix, and its refresh). Google retired this API and
Fitbit OAuth on 2026-11-02: requests now get 410 Gone, which reads as one clear error. Enrol with google-health.

What is Fitbit's own (research/fitbit-api.md §1): the URL per data type (sleep through an explicit, zero-padded
v1.2 URL: the library's `get_sleep` builds unpadded dates; HRV, SpO2, breathing rate and temperature have no
library methods), the rate-limit headers (a 429 may come without Retry-After: Fitbit's reset header is the
authority), and the parsers. Sleep logs are read by connectors.fitbit_sleep_log, as in the account export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import fitbit
import requests
from requests.auth import HTTPBasicAuth

from connectors.base import ParseResult, PersonContext
from connectors.fitbit_sleep_log import sleep_session
from connectors.live import DataType, LiveConfig, LiveSource, Session, groups, page_items
from connectors.oauth import OAuthApp
from connectors.parse_helpers import (FieldsByDay, add, bad, iso_day, not_worn, shown, valid, whole_number_text,
                                      zone_unknown)
from connectors.records import DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, storable_text
from connectors.token_vault import ConsentRequired

SOURCE_NAME = "fitbit-web"
SCOPES = ("sleep", "activity", "heartrate", "oxygen_saturation", "respiratory_rate", "temperature", "profile")
RETIRED = ("the Fitbit Web API was retired by Google on 2026-11-02 (it answers 410 Gone) — "
           "connect this person via google-health: `emberwatch enroll {person} --source google-health`")


@dataclass(frozen=True)
class FitbitDataType(DataType):
    path: str = ""  # with {start} and {end}, yyyy-MM-dd (always zero-padded)


def _series(name: str, group: str, scope: str, days: int, path: str) -> FitbitDataType:
    return FitbitDataType(name, group, scope, days, f"/1/user/-/{path}/date/{{start}}/{{end}}.json")


DATA_TYPES: tuple[FitbitDataType, ...] = (
    FitbitDataType("sleep", "sleep", "sleep", 100, "/1.2/user/-/sleep/date/{start}/{end}.json"),
    _series("heart", "heart", "heartrate", 365, "activities/heart"),
    _series("hrv", "hrv", "heartrate", 30, "hrv"),
    _series("br", "vitals", "respiratory_rate", 30, "br"),
    _series("spo2", "vitals", "oxygen_saturation", 30, "spo2"),
    _series("temp", "vitals", "temperature", 30, "temp/skin"),
    *(_series(resource, "activity", "activity", 1095, f"activities/{resource}")
      for resource in ("steps", "minutesSedentary", "minutesLightlyActive", "minutesFairlyActive",
                       "minutesVeryActive")),
)
GROUPS = groups(DATA_TYPES)
_ACTIVITY_FIELD = {"steps": "steps", "minutesSedentary": "sedentary_min",
                   "minutesLightlyActive": "lightly_active_min",
                   "minutesFairlyActive": "moderately_active_min", "minutesVeryActive": "very_active_min"}


class FitbitWebConfig(LiveConfig):
    source, credentials, scopes = SOURCE_NAME, "FITBIT", SCOPES
    urls = (("https://api.fitbit.com", "EMBERWATCH_FITBIT_BASE_URL"),
            ("https://www.fitbit.com/oauth2/authorize", "EMBERWATCH_FITBIT_AUTH_URL"),
            ("https://api.fitbit.com/oauth2/token", "EMBERWATCH_FITBIT_TOKEN_URL"))
    basic_auth = True  # Fitbit wants the client's credentials in a Basic header on the token endpoint


# --- parsing ------------------------------------------------------------------------------------------------


def _day_and_value(locator: str, item: Any) -> tuple[date, dict[str, Any]]:
    """The item's day and its `value` object ({} when absent), or a RecordError naming the field."""
    day = iso_day(SOURCE_NAME, item, locator)
    value = item.get("value") if isinstance(item, dict) else None
    if value is not None and not isinstance(value, dict):
        raise bad(SOURCE_NAME, locator, f"field 'value' should be an object, found {shown(value)}")
    return day, value or {}


def _parse_sleep(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    # Fitbit's sleep times are local with no zone: without the person's zone no log can be placed in time.
    if zone_unknown(SOURCE_NAME, person, result, "no sleep log can be read"):
        return
    tz, seen = ZoneInfo(person.tz_name), set()

    def read(locator: str, log_item: Any) -> Any:
        if not isinstance(log_item, dict):
            raise bad(SOURCE_NAME, locator, "expected an object")
        # The Web API says isMainSleep where the export says mainSleep; otherwise v1.2 logs are the same shape.
        return sleep_session({**log_item, "mainSleep": log_item.get("isMainSleep")}, person, tz, locator,
                             source=SOURCE_NAME)
    logs = ((locator + (f" (logId {storable_text(str(item.get('logId')))})" if isinstance(item, dict) else ""), item)
            for locator, item in page_items(SOURCE_NAME, docs, "sleep", "sleep", result))
    for _, session in valid(result, logs, read):
        if session.source_session_id not in seen:
            seen.add(session.source_session_id)
            result.records.append(session)


def _parse_heart(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    heart = page_items(SOURCE_NAME, docs, "heart", "activities-heart", result)
    for locator, (day, value) in valid(result, heart, _day_and_value):
        if value.get("restingHeartRate"):  # absent on days without enough data
            add(SOURCE_NAME, result, DailyRestingHeartRate, {"person_id": person.person_id, "day": day,
                                                             "resting_hr_bpm": value["restingHeartRate"]}, locator)


def _parse_hrv(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    for locator, (night, value) in valid(result, page_items(SOURCE_NAME, docs, "hrv", "hrv", result), _day_and_value):
        if value.get("dailyRmssd"):
            add(SOURCE_NAME, result, NightlyHrv, {"person_id": person.person_id, "night_date": night,
                                                  "rmssd_ms": value["dailyRmssd"],
                                                  "deep_rmssd_ms": value.get("deepRmssd") or None}, locator)


def _parse_vitals(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    nights = FieldsByDay(SOURCE_NAME, NightlyVitals, person.person_id, "night_date")
    for name, key, field, wire in (("br", "br", "breathing_rate_brpm", "breathingRate"),
                                   ("spo2", None, "spo2_avg_pct", "avg"),  # the interval endpoint: a bare array
                                   ("temp", "tempSkin", "skin_temp_deviation_c", "nightlyRelative")):
        items = page_items(SOURCE_NAME, docs, name, key, result, name)
        for locator, (night, value) in valid(result, items, _day_and_value):
            if value.get(wire) is not None:
                nights.keep(result, night, field, value[wire], locator)
    nights.add_all(result, "vitals")


def _parse_activity(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    days = FieldsByDay(SOURCE_NAME, DailyActivity, person.person_id, "day")
    for resource, field in _ACTIVITY_FIELD.items():
        items = page_items(SOURCE_NAME, docs, resource, f"activities-{resource}", result)
        for locator, (day, value) in valid(result, items, lambda locator, item: (
                iso_day(SOURCE_NAME, item, locator), whole_number_text(SOURCE_NAME, item.get("value"), locator))):
            days.keep(result, day, field, value, locator)
    # 1,440 sedentary minutes and nothing else: the watch was off, not a day in a chair
    days.add_all(result, "activity", skip=not_worn)


class FitbitWebSource(LiveSource):
    name, provider = SOURCE_NAME, "Fitbit"
    data_types, config_type = DATA_TYPES, FitbitWebConfig
    requests_per_minute = 150  # a local guard only: Fitbit's quota is 150 an hour, its reset header the authority
    # Backfill checkpoint size: six 30-day vitals windows, two sleep windows, one call for each long series.
    backfill_slice_days = 180
    group_parsers = {"sleep": _parse_sleep, "heart": _parse_heart, "hrv": _parse_hrv, "vitals": _parse_vitals,
                     "activity": _parse_activity}

    def open_oauth(self, app: OAuthApp, token: dict[str, Any]) -> Any:
        session = fitbit.Fitbit(app.client_id, app.client_secret, access_token=token.get("access_token"),
                                refresh_token=token.get("refresh_token"), expires_at=token.get("expires_at")).client.session
        session.auto_refresh_url = None  # the library's refresh URL is Fitbit's; ours may be local: the engine refreshes
        session.headers["Accept-Language"] = "en_US"  # python-fitbit's default units
        return session

    def on_session(self, session: Session) -> None:
        def read_rate_headers(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            try:
                remaining = int(response.headers.get("Fitbit-Rate-Limit-Remaining", "1"))
                session.retry_after_s = float(response.headers["Fitbit-Rate-Limit-Reset"])
            except (KeyError, ValueError):
                return
            if remaining <= 0:
                session.limiter.pause(session.retry_after_s)
        session.oauth.hooks["response"].append(read_rate_headers)

    def renew(self, session: Session, refresh_token: str | None) -> dict[str, Any]:
        return session.oauth.refresh_token(session.app.token_url, refresh_token=refresh_token,  # Basic auth, as Fitbit asks
                                           auth=HTTPBasicAuth(session.app.client_id, session.app.client_secret))

    def describe_error(self, response: requests.Response, person_id: str) -> tuple[str, str]:
        status = response.status_code
        if status == 401:  # still refused after a refresh
            raise ConsentRequired(person_id, SOURCE_NAME, "the access token was refused after a refresh")
        if status == 410:
            text = RETIRED.format(person=person_id)
            return text[0].upper() + text[1:] + ".", "GONE"
        if status == 403:
            return ("Fitbit refused access (403): a permission may not have been granted. "
                    "Ask the person to enroll again and tick every box.", "FORBIDDEN")
        return f"Fitbit answered HTTP {status}; the request was not accepted.", ""

    def pages(self, session: Session, t: Any, first: date, last: date) -> Iterator[str]:
        yield session.client.request("GET", self.config.api_base + t.path.format(
            start=first.isoformat(), end=last.isoformat())).text

    def time_zone(self, person_id: str) -> str | None:
        profile = self.session(person_id).get_json("/1/user/-/profile.json", "the profile request")
        return profile.get("user", {}).get("timezone") or None

