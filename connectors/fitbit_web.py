"""Legacy Fitbit Web API → records, through python-fitbit 0.3.1 (the library is unmaintained; we use only its
OAuth2 client and `make_request`). Google retired this API and Fitbit OAuth on 2026-11-02: requests now get
410 Gone, which we turn into one clear error. New enrolments should use google-health.

Each data type is declared once in DATA_TYPES (URL template, maximum range, scope, payload group). Payload
groups mirror google_health: `{"<data type>": ["<response text, verbatim>", ...]}` per group and window.

Library traps handled here (research/fitbit-api.md §1): `get_sleep` builds unpadded dates, so sleep goes through
`make_request` with an explicit v1.2 URL; HRV, SpO2, breathing rate and temperature have no methods at all; a
429 without Retry-After raises KeyError inside the library; without `refresh_cb` a refreshed (single-use)
token is lost. Rate-limit headers are read by a response hook.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import fitbit
import requests
from fitbit import exceptions as fitbit_errors
from oauthlib.oauth2 import InvalidGrantError

from connectors.base import (ParseResult, PersonContext, RawPayload, Rejected, TransientSourceError,
                             mark_synced_all)
from connectors.fitbit_export import _not_worn, _shown, _sleep_session
from connectors.google_health import chunks
from connectors.http import (INCOMPLETE_BODY, ApiError, RateLimiter, RetryPolicy, describe_failure, is_json,
                             limiter_for, rate_limit_outlasts_run)
from connectors.oauth import OAuthApp, allow_loopback_http, client_credentials
from connectors.records import (
    DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, Record, RecordError, build_record,
    is_iana_zone, storable_text,
)
from connectors.token_vault import ConsentRequired, SyncBookmarks, TokenStore

log = logging.getLogger("emberwatch.connectors")

SOURCE_NAME = "fitbit-web"
API_BASE = "https://api.fitbit.com"
AUTHORIZE_URL = "https://www.fitbit.com/oauth2/authorize"
TOKEN_URL = "https://api.fitbit.com/oauth2/token"
SCOPES = ("sleep", "activity", "heartrate", "oxygen_saturation", "respiratory_rate", "temperature", "profile")
RETIRED = ("the Fitbit Web API was retired by Google on 2026-11-02 (it answers 410 Gone) — "
           "connect this person via google-health: `emberwatch enroll {person} --source google-health`")
REQUESTS_PER_HOUR = 150  # Fitbit's per-user quota; the reset header is the real authority


@dataclass(frozen=True)
class FitbitDataType:
    name: str
    group: str
    path: str              # with {start} and {end}, yyyy-MM-dd (always zero-padded)
    max_window_days: int
    scope: str


DATA_TYPES: tuple[FitbitDataType, ...] = (
    FitbitDataType("sleep", "sleep", "/1.2/user/-/sleep/date/{start}/{end}.json", 100, "sleep"),
    FitbitDataType("heart", "heart", "/1/user/-/activities/heart/date/{start}/{end}.json", 365, "heartrate"),
    FitbitDataType("hrv", "hrv", "/1/user/-/hrv/date/{start}/{end}.json", 30, "heartrate"),
    FitbitDataType("br", "vitals", "/1/user/-/br/date/{start}/{end}.json", 30, "respiratory_rate"),
    FitbitDataType("spo2", "vitals", "/1/user/-/spo2/date/{start}/{end}.json", 30, "oxygen_saturation"),
    FitbitDataType("temp", "vitals", "/1/user/-/temp/skin/date/{start}/{end}.json", 30, "temperature"),
    *(FitbitDataType(resource, "activity", f"/1/user/-/activities/{resource}/date/{{start}}/{{end}}.json", 1095,
                     "activity")
      for resource in ("steps", "minutesSedentary", "minutesLightlyActive", "minutesFairlyActive",
                       "minutesVeryActive")),
)
GROUPS = tuple(dict.fromkeys(t.group for t in DATA_TYPES))
_ACTIVITY_FIELD = {"steps": "steps", "minutesSedentary": "sedentary_min",
                   "minutesLightlyActive": "lightly_active_min",
                   "minutesFairlyActive": "moderately_active_min", "minutesVeryActive": "very_active_min"}


@dataclass(frozen=True)
class FitbitWebConfig:
    api_base: str = API_BASE
    authorize_url: str = AUTHORIZE_URL
    token_url: str = TOKEN_URL
    trailing_days: int = 3

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> "FitbitWebConfig":
        o = overrides or {}
        return cls(
            api_base=o.get("api_base") or os.environ.get("EMBERWATCH_FITBIT_BASE_URL", API_BASE),
            authorize_url=o.get("authorize_url") or os.environ.get("EMBERWATCH_FITBIT_AUTH_URL", AUTHORIZE_URL),
            token_url=o.get("token_url") or os.environ.get("EMBERWATCH_FITBIT_TOKEN_URL", TOKEN_URL),
        )

    def oauth_app(self) -> OAuthApp:
        client_id, secret = client_credentials("FITBIT")
        # Fitbit wants the client's credentials in a Basic header on the token endpoint.
        return OAuthApp(SOURCE_NAME, client_id, secret, self.authorize_url, self.token_url, SCOPES, basic_auth=True)


class FitbitWebSource:
    name = SOURCE_NAME
    # Backfill checkpoint size: six 30-day vitals windows, two sleep windows, one call for each long series.
    backfill_slice_days = 180

    def __init__(self, tokens: TokenStore, bookmarks: SyncBookmarks | None = None,
                 config: FitbitWebConfig | None = None, policy: RetryPolicy | None = None) -> None:
        self.tokens, self.bookmarks = tokens, bookmarks
        self.config = config or FitbitWebConfig.from_env()
        self.policy = policy or RetryPolicy()
        self.requests_sent = 0

    def time_zone(self, person_id: str) -> str | None:
        body = self._session(person_id).get(f"{self.config.api_base}/1/user/-/profile.json")
        return json.loads(body).get("user", {}).get("timezone") or None

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        session = self._session(person.person_id)
        granted = set(session.granted_scopes)
        # One person's fetch holds their lock: a refresh (single-use token) is never raced by a second worker.
        with self.tokens.lock(person.person_id, SOURCE_NAME):
            fetched_types: list[FitbitDataType] = []
            try:
                for group in GROUPS:
                    types = [t for t in DATA_TYPES if t.group == group and (not granted or t.scope in granted)]
                    if not types:
                        continue
                    starts = {t.name: self._incremental_start(person.person_id, t, start) for t in types}
                    pages: dict[str, list[str]] = {}
                    for t in types:
                        url = self.config.api_base + t.path
                        pages[t.name] = [session.get(url.format(start=a.isoformat(), end=b.isoformat()))
                                         for a, b in chunks(starts[t.name], end, t.max_window_days)]
                    yield RawPayload(person.person_id, SOURCE_NAME, group, json.dumps(pages).encode(),
                                     datetime.now(timezone.utc), min(starts.values()), end)
                    fetched_types.extend(types)
                # Bookmarks move only once every group is in hand (as in google_health): a fetch that fails
                # half-way is not stored, so an earlier bookmark would make the next run skip unstored nights.
                if self.bookmarks is not None:
                    mark_synced_all(self.bookmarks, person.person_id, SOURCE_NAME, [t.name for t in fetched_types],
                                    end)
            finally:
                self.requests_sent += session.requests_sent

    def _incremental_start(self, person_id: str, t: FitbitDataType, start: date) -> date:
        if self.bookmarks is None:
            return start
        through = self.bookmarks.synced_through(person_id, SOURCE_NAME, t.name)
        return start if through is None else min(start, through + timedelta(days=1 - self.config.trailing_days))

    def _session(self, person_id: str) -> "_FitbitSession":
        return _FitbitSession(self, person_id)

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        result = ParseResult()
        try:
            bundle = json.loads(raw.body)
            # Each data type holds a list of page texts (a bare string would be read letter by letter).
            if not isinstance(bundle, dict) or not all(isinstance(texts, list) for texts in bundle.values()):
                raise ValueError
            docs = {name: [json.loads(text) for text in texts] for name, texts in bundle.items()}
        except (ValueError, TypeError, AttributeError, RecursionError):  # RecursionError: absurd nesting
            result.rejected.append(Rejected(raw.resource, (
                f"the {raw.resource} payload is not the bundle {SOURCE_NAME} writes or a page is not JSON; "
                "nothing from it was imported.")))
            return result
        parser = {"sleep": _parse_sleep, "heart": _parse_heart, "hrv": _parse_hrv, "vitals": _parse_vitals,
                  "activity": _parse_activity}.get(raw.resource)
        if parser is None:
            result.rejected.append(Rejected(raw.resource, f"'{raw.resource}' is not a resource of {SOURCE_NAME}."))
        else:
            # A data type this group does not read would otherwise be dropped without a word.
            known = {t.name for t in DATA_TYPES if t.group == raw.resource}
            for name in sorted(set(docs) - known):
                shown = storable_text(name)
                # Quoted in the locator: a bundle key may be "" and a locator must still point somewhere.
                result.rejected.append(Rejected(f"data type '{shown}'", (
                    f"{SOURCE_NAME}: '{shown}' is not a data type of the {raw.resource} payload; "
                    "it was not imported.")))
            parser(docs, person, result)
        return result


class _FitbitSession:
    """python-fitbit's client for one person, with our token persistence, rate-limit hook and error mapping."""

    def __init__(self, source: FitbitWebSource, person_id: str) -> None:
        self.source, self.person_id = source, person_id
        stored = source.tokens.load(person_id, SOURCE_NAME)
        if stored is None:
            raise ConsentRequired(person_id, SOURCE_NAME, "no stored authorisation")
        self.granted_scopes = stored.granted_scopes
        cfg = source.config
        allow_loopback_http(cfg.token_url, cfg.api_base)
        app = cfg.oauth_app()
        token = stored.token
        self.fb = fitbit.Fitbit(app.client_id, app.client_secret, access_token=token.get("access_token"),
                                refresh_token=token.get("refresh_token"), expires_at=token.get("expires_at"),
                                refresh_cb=self._persist, timeout=source.policy.timeout_s)
        # The library's endpoints are class attributes; ours may point at a local server.
        self.fb.client.refresh_token_url = cfg.token_url
        self.fb.client.session.auto_refresh_url = cfg.token_url
        self.fb.client.session.hooks["response"].append(self._read_rate_headers)
        # A local guard only: Fitbit's quota is 150 an hour per person, and its reset header is the authority.
        self.limiter: RateLimiter = limiter_for(SOURCE_NAME, cfg.api_base, person_id, REQUESTS_PER_HOUR)
        self.reset_s: float | None = None
        self.last_status = 0
        self.requests_sent = 0

    def _persist(self, token: dict[str, Any]) -> None:
        # Called by the library right after a refresh, before the retried request: Fitbit refresh tokens are
        # single-use, so the new pair is written (atomically, one statement) before anything else happens.
        self.source.tokens.save(self.person_id, SOURCE_NAME, dict(token))

    def _read_rate_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_status = response.status_code  # python-fitbit's exceptions do not keep the status
        try:
            remaining = int(response.headers.get("Fitbit-Rate-Limit-Remaining", "1"))
            self.reset_s = float(response.headers["Fitbit-Rate-Limit-Reset"])
        except (KeyError, ValueError):
            return
        if remaining <= 0:
            self.limiter.pause(self.reset_s)

    def get(self, url: str) -> str:
        policy = self.source.policy
        problem = "no answer"
        for attempt in range(policy.max_attempts):
            if (paused_s := self.limiter.pause_left_s()) > policy.max_wait_s:
                raise rate_limit_outlasts_run(SOURCE_NAME, paused_s)  # Fitbit's reset header said so
            self.limiter.acquire()
            self.requests_sent += 1
            try:
                response = self.fb.client.make_request(url, headers={"Accept-Language": self.fb.system})
                if is_json(response.content):
                    return response.text
                # A 200 cut off on the way: retried like a 5xx, never archived as half a page.
                problem = INCOMPLETE_BODY
                time.sleep(policy.backoff(attempt))
                continue
            except InvalidGrantError:
                reason = "the authorisation was revoked or has expired"
                self.source.tokens.consent_lost(self.person_id, SOURCE_NAME, reason)
                raise ConsentRequired(self.person_id, SOURCE_NAME, reason) from None
            except fitbit_errors.HTTPTooManyRequests as exc:
                wait = float(getattr(exc, "retry_after_secs", self.reset_s or policy.backoff(attempt)))
            except KeyError as exc:
                if str(exc).strip("'\"").lower() != "retry-after":
                    raise
                # python-fitbit reads Retry-After unconditionally; Fitbit's reset header is the real authority.
                wait = self.reset_s if self.reset_s is not None else policy.backoff(attempt)
            except fitbit_errors.HTTPServerError:
                problem = "HTTP 5xx"
                time.sleep(policy.backoff(attempt))
                continue
            except fitbit_errors.HTTPUnauthorized:
                reason = "the access token was refused after a refresh"
                self.source.tokens.consent_lost(self.person_id, SOURCE_NAME, reason)
                raise ConsentRequired(self.person_id, SOURCE_NAME, reason) from None
            except fitbit_errors.HTTPBadRequest:
                raise _api_error(self.last_status or 400, self.person_id) from None
            except (fitbit_errors.HTTPForbidden, fitbit_errors.HTTPNotFound) as exc:
                status = 403 if isinstance(exc, fitbit_errors.HTTPForbidden) else 404
                raise _api_error(status, self.person_id) from None
            except (requests.ConnectionError, requests.Timeout, fitbit_errors.Timeout) as exc:
                # python-fitbit turns requests' Timeout into its own, which says nothing: name it ourselves.
                timed_out = isinstance(exc, (requests.Timeout, fitbit_errors.Timeout))
                problem = f"no answer within {policy.timeout_s:g} s" if timed_out else describe_failure(exc, policy)
                time.sleep(policy.backoff(attempt))
                continue
            problem = "429 Too Many Requests"
            if wait > policy.max_wait_s:
                raise rate_limit_outlasts_run(SOURCE_NAME, wait)
            log.info("Fitbit asked us to slow down; waiting %.1f s", wait)
            self.limiter.pause(wait)
        raise TransientSourceError(
            f"{SOURCE_NAME} kept failing ({problem}) after {policy.max_attempts} attempts; "
            "the next run will try again.")


def _api_error(status: int, person_id: str) -> ApiError:
    if status == 410:
        text = RETIRED.format(person=person_id)
        return ApiError(text[0].upper() + text[1:] + ".", 410, "GONE")
    if status == 403:
        return ApiError("Fitbit refused access (403): a permission may not have been granted. "
                        "Ask the person to enroll again and tick every box.", 403, "FORBIDDEN")
    return ApiError(f"Fitbit answered HTTP {status}; the request was not accepted.", status, "")


# --- parsing ------------------------------------------------------------------------------------------------


def _items(docs: dict[str, list[Any]], name: str, key: str | None,
           result: ParseResult) -> Iterator[tuple[int, Any]]:
    index = 0
    for page_index, doc in enumerate(docs.get(name, [])):
        # A page without its key is not an empty answer (Fitbit sends "sleep": [] then) but another shape.
        items = doc if key is None else (doc.get(key) if isinstance(doc, dict) else None)
        if not isinstance(items, list):
            # A page of another shape (an error body, a single day's object) would otherwise vanish silently.
            where = f"{name} page {page_index}"
            expected = "a list" if key is None else f"an object with a '{key}' list"
            result.rejected.append(Rejected(where, f"{SOURCE_NAME} at {where}: expected {expected}; "
                                                   "nothing from this page was imported."))
            continue
        for item in items:
            yield index, item
            index += 1


def _value_object(item: Any, locator: str) -> dict[str, Any]:
    """The item's `value` object ({} when absent), or a RecordError naming the field."""
    value = item.get("value") if isinstance(item, dict) else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"{SOURCE_NAME} at {locator}: field 'value' should be an object, "
                          f"found {_shown(value)}")
    return value


def _one_field(model: type[Record], field: str, value: Any, base: dict[str, Any], locator: str) -> Any:
    """`value` validated as `field` of `model` on its own, so that a bad value costs only its own field (as in
    the export's activity files) and never the other measures of the same day."""
    return getattr(build_record(model, {"source": SOURCE_NAME, **base, field: value}, source=SOURCE_NAME,
                                locator=locator), field)


def _day(item: Any, locator: str) -> date:
    try:
        return date.fromisoformat(str(item["dateTime"])[:10])
    except (KeyError, TypeError, ValueError):
        raise RecordError(f"{SOURCE_NAME} at {locator}: field 'dateTime' is missing or not yyyy-MM-dd") from None


def _parse_sleep(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    if not is_iana_zone(person.tz_name):
        # Fitbit's sleep times are local with no zone: without the person's zone no log can be placed in time.
        result.rejected.append(Rejected("sleep", (
            f"{SOURCE_NAME}: the person's time zone {_shown(person.tz_name)} is not an IANA zone name, so no "
            "sleep log can be read; nothing was imported. Correct the person's zone and re-parse.")))
        return
    tz = ZoneInfo(person.tz_name)
    seen: set[str] = set()
    for index, log_item in _items(docs, "sleep", "sleep", result):
        locator = f"sleep[{index}]" + (f" (logId {storable_text(str(log_item.get('logId')))})"
                                       if isinstance(log_item, dict) else "")
        try:
            if not isinstance(log_item, dict):
                raise RecordError(f"{SOURCE_NAME} at {locator}: expected an object")
            # The Web API says isMainSleep where the export says mainSleep; otherwise v1.2 logs are the same
            # shape, so the export's parser (with its DST handling of local stage times) is reused.
            session = _sleep_session({**log_item, "mainSleep": log_item.get("isMainSleep")}, person, tz, locator)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc).replace("fitbit-export", SOURCE_NAME)))
            continue
        if session.source_session_id not in seen:
            seen.add(session.source_session_id)
            result.records.append(session.model_copy(update={"source": SOURCE_NAME}))


def _add(result: ParseResult, model: type[Record], data: dict[str, Any], locator: str) -> None:
    try:
        result.records.append(build_record(model, {"source": SOURCE_NAME, **data}, source=SOURCE_NAME,
                                           locator=locator))
    except RecordError as exc:
        result.rejected.append(Rejected(locator, str(exc)))


def _parse_heart(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    for index, item in _items(docs, "heart", "activities-heart", result):
        locator = f"activities-heart[{index}]"
        try:
            day = _day(item, locator)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            continue
        try:
            rhr = _value_object(item, locator).get("restingHeartRate")
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            continue
        if rhr:  # absent on days without enough data
            _add(result, DailyRestingHeartRate, {"person_id": person.person_id, "day": day, "resting_hr_bpm": rhr},
                 locator)


def _parse_hrv(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    for index, item in _items(docs, "hrv", "hrv", result):
        locator = f"hrv[{index}]"
        try:
            night = _day(item, locator)
            value = _value_object(item, locator)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            continue
        if value.get("dailyRmssd"):
            _add(result, NightlyHrv, {"person_id": person.person_id, "night_date": night,
                                      "rmssd_ms": value["dailyRmssd"],
                                      "deep_rmssd_ms": value.get("deepRmssd") or None},
                 locator)


def _parse_vitals(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    by_night: dict[date, dict[str, Any]] = {}
    for name, key, field, pick in (
        ("br", "br", "breathing_rate_brpm", lambda v: v.get("breathingRate")),
        ("spo2", None, "spo2_avg_pct", lambda v: v.get("avg")),  # the interval endpoint answers a bare array
        ("temp", "tempSkin", "skin_temp_deviation_c", lambda v: v.get("nightlyRelative")),
    ):
        for index, item in _items(docs, name, key, result):
            locator = f"{name}[{index}]"
            try:
                night = _day(item, locator)
                value = pick(_value_object(item, locator))
                if value is None:
                    continue
                base = {"person_id": person.person_id, "night_date": night}
                value = _one_field(NightlyVitals, field, value, base, locator)
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
                continue
            by_night.setdefault(night, {})[field] = value
    for night in sorted(by_night):
        _add(result, NightlyVitals, {"person_id": person.person_id, "night_date": night, **by_night[night]},
             f"vitals ({night})")


def _parse_activity(docs: dict[str, list[Any]], person: PersonContext, result: ParseResult) -> None:
    by_day: dict[date, dict[str, int]] = {}
    for resource, field in _ACTIVITY_FIELD.items():
        for index, item in _items(docs, resource, f"activities-{resource}", result):
            locator = f"activities-{resource}[{index}]"
            try:
                day = _day(item, locator)
                value = _one_field(DailyActivity, field, _whole_number(item.get("value"), locator),
                                   {"person_id": person.person_id, "day": day}, locator)
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
                continue
            by_day.setdefault(day, {})[field] = value
    for day in sorted(by_day):
        fields = by_day[day]
        if _not_worn(fields) and not fields.get("steps"):
            continue  # 1,440 sedentary minutes and nothing else: the watch was off, not a day in a chair
        _add(result, DailyActivity, {"person_id": person.person_id, "day": day, **fields}, f"activity ({day})")


def _whole_number(value: Any, locator: str) -> Any:
    """An activity value ("1234" on the wire) as a number for the record to range-check. Fitbit writes whole
    numbers; a fraction is truncated as before. Text that is no finite number is refused naming the field
    (int(float("inf")) would raise OverflowError, not a reason)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            problem = f"field 'value' is not a number: {_shown(value)}"
            raise RecordError(f"{SOURCE_NAME} at {locator}: {problem}") from None
        if not math.isfinite(number):
            problem = f"field 'value' is not a finite number: {_shown(value)}"
            raise RecordError(f"{SOURCE_NAME} at {locator}: {problem}")
        return int(number)
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if value is None:
        raise RecordError(f"{SOURCE_NAME} at {locator}: field 'value' is missing")
    return value  # ints pass; any other type is refused by the record with the field's name
