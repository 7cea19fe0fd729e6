"""Oura API v2 → records, declared on the engine (connectors.live): one data type per endpoint, its LiveConfig, and
what is Oura's own — its error bodies, its rate-limit headers, its `next_token` paging, the reason a grant is lost,
and the parsers (research/google-health-oura.md §4).

Payload groups: `night` (the `sleep` periods, `daily_readiness` for the temperature deviation, `daily_spo2`) and
`activity` (`daily_activity`). The night's measures travel together so that one parser builds the night's
NightlyVitals from all three (breathing from the sleep period, temperature from readiness, SpO2 from daily_spo2).

The night is the local date of waking (connectors.records): a sleep period's night is the civil date of its
`bedtime_end` in the offset the ring recorded there (travel-proof), not its `day`. Oura's `day` is "the day the
sleep belongs to" and is the wake date for a night's long_sleep, but a `late_nap` (after 6 pm) is moved to the next
day, which is not our rule. The daily documents (`daily_readiness`, `daily_spo2`) are summaries of the night that
ended on their `day`, so that `day` is the night date; `daily_activity.day` is the civil day (Oura's day starts at
4 a.m.).

Overnight heart rate: Oura has no daytime resting heart rate; its app calls the night's lowest heart rate
"resting heart rate". The main sleep's `lowest_heart_rate` becomes DailyRestingHeartRate on the wake date (it reads
lower than Fitbit's; signals compare a person with their own baseline, so the level does not cross sources).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from typing import Any, Iterator, cast

import requests

from connectors.base import ParseResult, PersonContext, Rejected
from connectors.live import DataType, LiveConfig, LiveSource, Session, groups, json_object, page_items
from connectors.parse_helpers import FieldsByDay, add, bad, finite_number, rfc3339_instant, shown, valid
from connectors.records import (DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, Record,
                                SleepSession, SleepStage, StageSegment, build_record, storable_text)
from connectors.token_vault import ConsentRequired, StoredToken

SOURCE_NAME = "oura"
# Spec scope names: `daily` covers sleep, readiness and activity; SpO2 has its own. `personal` is not needed.
SCOPE_DAILY, SCOPE_SPO2 = "daily", "spo2Daily"
SCOPES = (SCOPE_DAILY, SCOPE_SPO2)
# No window limit is documented for the daily collections; 30 days is the one Oura limit known (heart rate).
WINDOW_DAYS = 30
PHASE_S = 300  # sleep_phase_5_min: one character per five minutes from bedtime_start
REVOKED_OURA = ("the authorisation was revoked (in the Oura app or on Oura's website), or its single-use refresh "
                "token had already been used")
_bad, _instant, _number, _add = (partial(f, SOURCE_NAME) for f in (bad, rfc3339_instant, finite_number, add))


@dataclass(frozen=True)
class OuraDataType(DataType):
    path: str = ""


def _collection(name: str, group: str, scope: str = SCOPE_DAILY) -> OuraDataType:
    return OuraDataType(name, group, scope, WINDOW_DAYS, f"/v2/usercollection/{name}")


DATA_TYPES: tuple[OuraDataType, ...] = (
    _collection("sleep", "night"),
    _collection("daily_readiness", "night"),
    _collection("daily_spo2", "night", SCOPE_SPO2),
    _collection("daily_activity", "activity"),
)
GROUPS = groups(DATA_TYPES)


class OuraConfig(LiveConfig):
    source, credentials, scopes = SOURCE_NAME, "OURA", SCOPES
    urls = (("https://api.ouraring.com", "EMBERWATCH_OURA_BASE_URL"),
            ("https://cloud.ouraring.com/oauth/authorize", "EMBERWATCH_OURA_AUTH_URL"),
            ("https://api.ouraring.com/oauth/token", "EMBERWATCH_OURA_TOKEN_URL"))


def oura_error(response: requests.Response) -> tuple[str, str]:
    """An Oura error body ({status, title, detail}, or FastAPI's {detail: [...]}) as a sentence plus a short reason;
    never the raw body (it may echo data)."""
    title = ""
    try:
        body = response.json()
        if isinstance(body, dict):
            title = str(body.get("title") or (body.get("detail") if isinstance(body.get("detail"), str) else ""))
    except ValueError:
        pass
    title = storable_text(title, 80)
    code = response.status_code
    if code == 403:
        return ("Oura refused access (403): the person's Oura membership may have expired, or a permission was "
                "not granted. Ask them to check their membership, then connect again and share every item.",
                "FORBIDDEN")
    if code == 422:
        return "Oura did not accept the request's dates (422).", "VALIDATION"
    return f"Oura answered HTTP {code}" + (f" ({title})." if title else "."), title


# --- parsing ------------------------------------------------------------------------------------------------


def _documents(pages: dict[str, list[Any]], name: str, result: ParseResult) -> Iterator[tuple[str, Any]]:
    """(locator, document) for every document of a data type's pages (Oura's pages hold them under `data`)."""
    return page_items(SOURCE_NAME, pages, name, "data", result, name)


def _day(document: Any, locator: str) -> date:
    if not isinstance(document, dict):
        raise _bad(locator, f"expected a document object, found {shown(document)}")
    try:
        return date.fromisoformat(str(document["day"]))
    except (KeyError, ValueError):
        raise _bad(locator, "field 'day' is missing or not yyyy-MM-dd") from None


def _seconds(document: dict[str, Any], key: str, locator: str) -> int:
    value = document.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _bad(locator, f"field '{key}' should be a number of seconds, found {shown(value)}")
    return int(value)


_PHASE = {"1": SleepStage.DEEP, "2": SleepStage.LIGHT, "3": SleepStage.REM, "4": SleepStage.WAKE}


def _segments(phases: str, start: Any, end: Any, locator: str) -> tuple[StageSegment, ...]:
    """Runs of one character of `sleep_phase_5_min`, each five minutes from bedtime_start, the last cut at
    bedtime_end. An unknown character is not a stage (a gap)."""
    segments, offset = [], 0
    while offset < len(phases):
        run = len(phases[offset:]) - len(phases[offset:].lstrip(phases[offset]))
        seg_start = start + timedelta(seconds=offset * PHASE_S)
        seconds = min(run * PHASE_S, int((end - seg_start).total_seconds()))
        if phases[offset] in _PHASE and seconds > 0:
            segments.append(build_record(cast(type[Record], StageSegment), {
                "start_utc": seg_start, "duration_s": seconds, "stage": _PHASE[phases[offset]]},
                source=SOURCE_NAME, locator=f"{locator} sleep_phase_5_min[{offset}]"))
        offset += run
    return cast(tuple[StageSegment, ...], tuple(segments))


def _sleep_period(document: Any, person: PersonContext, locator: str) -> tuple[SleepSession, dict[str, Any]]:
    _day(document, locator)
    start_utc = _instant(document.get("bedtime_start"), locator, "bedtime_start")
    end_utc = _instant(document.get("bedtime_end"), locator, "bedtime_end")
    if end_utc <= start_utc:
        raise _bad(locator, "field 'bedtime_end' is not after 'bedtime_start'")
    # The wake date in the offset written in bedtime_end ("2026-11-20T07:05:14.000+01:00" → 2026-11-20).
    night = date.fromisoformat(document["bedtime_end"][:10])
    phases = document.get("sleep_phase_5_min") or ""
    if not isinstance(phases, str):
        raise _bad(locator, f"field 'sleep_phase_5_min' should be text, found {shown(phases)}")
    period_id = document.get("id")
    if not isinstance(period_id, str) or not period_id:
        raise _bad(locator, "field 'id' is missing")
    # Time in bed as the real elapsed time (Oura's own `time_in_bed` is the same span, in seconds).
    time_in_bed_min = int((end_utc - start_utc).total_seconds() // 60)
    session = cast(SleepSession, build_record(SleepSession, {
        "person_id": person.person_id,
        "source": SOURCE_NAME,
        "source_session_id": storable_text(period_id, 64),
        "night_date": night,
        "start_utc": start_utc,
        "end_utc": end_utc,
        "tz_name": person.tz_name,
        "is_main_sleep": document.get("type") == "long_sleep",
        "log_type": "stages" if phases else "classic",
        "minutes_asleep": min(_seconds(document, "total_sleep_duration", locator) // 60, time_in_bed_min),
        "minutes_awake": _seconds(document, "awake_time", locator) // 60,
        "minutes_to_fall_asleep": _seconds(document, "latency", locator) // 60,
        "time_in_bed_min": time_in_bed_min,
        "segments": _segments(phases, start_utc, end_utc, locator),
    }, source=SOURCE_NAME, locator=locator))
    return session, document


def _parse_night(pages: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    nights = FieldsByDay(SOURCE_NAME, NightlyVitals, person.person_id, "night_date")
    if person.tz_name:
        main: dict[date, tuple[str, SleepSession, dict[str, Any]]] = {}
        seen: set[str] = set()
        periods = ((loc, doc) for loc, doc in _documents(pages, "sleep", result)
                   # rest (rejected by Oura) and deleted periods are not sleep
                   if not (isinstance(doc, dict) and doc.get("type") in ("rest", "deleted")))
        for locator, (session, document) in valid(result, periods,
                                                  lambda loc, doc: _sleep_period(doc, person, loc)):
            if session.source_session_id in seen:  # the same period on two pages (data changed meanwhile)
                continue
            seen.add(session.source_session_id)
            result.records.append(session)
            kept = main.get(session.night_date)
            if session.is_main_sleep and (kept is None or session.time_in_bed_min > kept[1].time_in_bed_min):
                main[session.night_date] = (locator, session, document)
        # The night's heart measures come from its main sleep (the longest long_sleep when there are two).
        for night, (locator, session, document) in sorted(main.items()):
            if document.get("average_hrv"):  # RMSSD in ms (Oura's spec; open-wearables relabelled it from SDNN)
                _add(result, NightlyHrv, {"person_id": person.person_id, "night_date": night,
                                          "rmssd_ms": document["average_hrv"]}, locator)
            if document.get("lowest_heart_rate"):
                _add(result, DailyRestingHeartRate, {"person_id": person.person_id, "day": night,
                                                     "resting_hr_bpm": document["lowest_heart_rate"]}, locator)
            if document.get("average_breath") is not None:
                nights.keep(result, night, "breathing_rate_brpm", document["average_breath"], locator)
    else:
        result.rejected.append(Rejected("sleep", f"{SOURCE_NAME}: the person has no time zone; no sleep period "
                                                 "can be recorded (the daily vitals still are)."))

    for locator, (night, document) in valid(result, _documents(pages, "daily_readiness", result),
                                            lambda loc, doc: (_day(doc, loc), doc)):
        if document.get("temperature_deviation") is not None:
            value = _number(document["temperature_deviation"], locator, "temperature_deviation")
            nights.keep(result, night, "skin_temp_deviation_c", value, locator)
    for locator, (night, document) in valid(result, _documents(pages, "daily_spo2", result),
                                            lambda loc, doc: (_day(doc, loc), doc)):
        spo2 = document.get("spo2_percentage")
        if isinstance(spo2, dict) and spo2.get("average"):  # null or 0 when the ring measured nothing
            nights.keep(result, night, "spo2_avg_pct", spo2["average"], locator)
        elif spo2 is not None and not isinstance(spo2, dict):
            result.rejected.append(Rejected(locator, f"{SOURCE_NAME} at {locator}: field 'spo2_percentage' should "
                                                     f"be an object, found {shown(spo2)}"))
    nights.add_all(result, "vitals")


_ACTIVITY_FIELD = {"steps": None, "sedentary_time": "sedentary_min", "low_activity_time": "lightly_active_min",
                   "medium_activity_time": "moderately_active_min", "high_activity_time": "very_active_min"}


def _parse_activity(pages: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    days = FieldsByDay(SOURCE_NAME, DailyActivity, person.person_id, "day")
    for locator, (day, document) in valid(result, _documents(pages, "daily_activity", result),
                                          lambda loc, doc: (_day(doc, loc), doc)):
        for wire, field_name in _ACTIVITY_FIELD.items():
            value = document.get(wire)
            if value is None:
                continue
            if field_name is None:
                days.keep(result, day, "steps", value, locator)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                days.keep(result, day, field_name, int(value) // 60, locator)  # seconds → minutes
            else:
                days.keep(result, day, field_name, value, locator)  # the record contract names the problem
    days.add_all(result, "activity")


class OuraSource(LiveSource):
    name, provider = SOURCE_NAME, "Oura"
    data_types, config_type = DATA_TYPES, OuraConfig
    requests_per_minute = 300  # a local guard; Oura's limits are per token and per app, its 429s the authority
    backfill_slice_days = WINDOW_DAYS  # one request per data type per slice (more only when Oura pages)
    group_parsers = {"night": _parse_night, "activity": _parse_activity}

    def on_session(self, session: Session) -> None:
        def read_rate_headers(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            # A 429 without Retry-After: X-RateLimit-Reset (epoch seconds) says when the window opens again.
            if response.status_code == 429 and "Retry-After" not in response.headers:
                try:
                    session.retry_after_s = max(float(response.headers["X-RateLimit-Reset"]) - time.time(), 0.0)
                except (KeyError, ValueError):
                    session.retry_after_s = None
        session.oauth.hooks["response"].append(read_rate_headers)

    def consent_lost_reason(self, current: StoredToken) -> str:
        return REVOKED_OURA

    def describe_error(self, response: requests.Response, person_id: str) -> tuple[str, str]:
        if response.status_code == 401:  # still refused after a refresh: the grant is gone
            raise ConsentRequired(person_id, SOURCE_NAME, "the access token was refused after a refresh")
        return oura_error(response)

    def time_zone(self, person_id: str) -> str | None:
        """Oura tells no zone (personal_info has none; each document carries its own UTC offset): the zone the
        clinician entered stands."""
        return None

    def pages(self, session: Session, t: Any, first: date, last: date) -> Iterator[str]:
        """Every page of one window: `next_token` is followed until Oura leaves it out (or sends null); an
        ignored token silently drops the rest. end_date is sent one day past the window: whether Oura's end_date
        is inclusive is not documented, and a night too many is stored like any other."""
        params: dict[str, str] = {"start_date": first.isoformat(),
                                  "end_date": (last + timedelta(days=1)).isoformat()}
        while True:
            response = session.client.request("GET", self.config.api_base + t.path, params=params)
            yield response.text
            token = json_object(SOURCE_NAME, response, f"a {t.name} page").get("next_token")
            if not token:
                return
            params = {**params, "next_token": str(token)}
