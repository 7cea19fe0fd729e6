"""Google Health API v4 → records: Fitbit and Pixel Watch data since the Fitbit Web API was retired (2026-11-02).

Each data type is declared once in DATA_TYPES (endpoint, filter member, maximum window, page size, scope,
payload group); one engine chunks date ranges, pages, refreshes tokens and honours rate limits (connectors.http).

Payloads: one per group and requested window, so each parses on its own into complete records (as the export's
activity bundle does): `{"<data type>": ["<response page text, verbatim>", ...], ...}`. Groups: `sleep`,
`daily-resting-heart-rate`, `daily-heart-rate-variability`, `vitals` (SpO2, breathing rate, sleep temperature)
and `activity` (steps, active minutes). Merging steps and active minutes inside one payload keeps the two
halves of a day's DailyActivity together.

Wire traps (discovery document health.v4.json, and the recorded samples): int64 values arrive as strings,
durations and offsets as "-14400s", dates as {year, month, day}, and zero/false/empty fields are omitted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator, Literal, cast

import requests
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error
from requests_oauthlib import OAuth2Session

from connectors.base import (ParseResult, PersonContext, RawPayload, Rejected, TransientSourceError,
                             mark_synced_all)
from connectors.http import ApiClient, ApiError, RetryPolicy, limiter_for
from connectors.oauth import OAuthApp, allow_loopback_http, client_credentials
from connectors.records import (
    EARLIEST_PLAUSIBLE_DATE, LATEST_PLAUSIBLE_DATE, DailyActivity, DailyRestingHeartRate, NightlyHrv,
    NightlyVitals, Record, RecordError, SleepSession, SleepStage, StageSegment, build_record, is_iana_zone,
    night_date_of_wake, storable_text,
)
from connectors.token_vault import ConsentRequired, SyncBookmarks, TokenStore

log = logging.getLogger("emberwatch.connectors")

SOURCE_NAME = "google-health"

AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"
API_BASE = "https://health.googleapis.com"

_SCOPE = "https://www.googleapis.com/auth/googlehealth."
SCOPE_SLEEP = _SCOPE + "sleep.readonly"
SCOPE_ACTIVITY = _SCOPE + "activity_and_fitness.readonly"
SCOPE_METRICS = _SCOPE + "health_metrics_and_measurements.readonly"
SCOPE_SETTINGS = _SCOPE + "settings.readonly"  # the person's time zone
SCOPES = (SCOPE_SLEEP, SCOPE_ACTIVITY, SCOPE_METRICS, SCOPE_SETTINGS)

REQUESTS_PER_USER_PER_MINUTE = 300
TRAILING_REFETCH_DAYS = 3


@dataclass(frozen=True)
class DataType:
    """One Google Health data type as we read it."""

    name: str                       # the path segment: dataTypes/{name}/dataPoints
    group: str                      # the payload (RawPayload.resource) it travels in
    method: Literal["list", "dailyRollUp"]
    # AIP-160 member. It differs by type and a wrong one can answer 200 with nothing, so it is declared here.
    filter_member: str | None
    max_window_days: int
    page_size: int
    scope: str


DATA_TYPES: tuple[DataType, ...] = (
    # Sleep is filtered on its civil *end*: the night is the local date of waking. pageSize is at most 25.
    DataType("sleep", "sleep", "list", "sleep.interval.civil_end_time", 90, 25, SCOPE_SLEEP),
    DataType("daily-resting-heart-rate", "daily-resting-heart-rate", "list", "daily_resting_heart_rate.date",
             90, 100, SCOPE_METRICS),
    DataType("daily-heart-rate-variability", "daily-heart-rate-variability", "list",
             "daily_heart_rate_variability.date", 90, 100, SCOPE_METRICS),
    DataType("daily-oxygen-saturation", "vitals", "list", "daily_oxygen_saturation.date", 90, 100, SCOPE_METRICS),
    DataType("daily-respiratory-rate", "vitals", "list", "daily_respiratory_rate.date", 90, 100, SCOPE_METRICS),
    DataType("daily-sleep-temperature-derivations", "vitals", "list", "daily_sleep_temperature_derivations.date",
             90, 100, SCOPE_METRICS),
    # Steps as a civil daily roll-up: one number per local day, computed by Google across the day's intervals
    # (a UTC `steps.interval.start_time` list would return ~1,440 points per day). Range <= 90 days.
    DataType("steps", "activity", "dailyRollUp", None, 90, 90, SCOPE_ACTIVITY),
    DataType("active-minutes", "activity", "dailyRollUp", None, 14, 14, SCOPE_ACTIVITY),  # range <= 14 days
)
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(t.group for t in DATA_TYPES))


@dataclass(frozen=True)
class GoogleHealthConfig:
    api_base: str = API_BASE
    authorize_url: str = AUTHORIZE_URL
    token_url: str = TOKEN_URL
    trailing_days: int = TRAILING_REFETCH_DAYS

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> "GoogleHealthConfig":
        o = overrides or {}
        return cls(
            api_base=o.get("api_base") or os.environ.get("EMBERWATCH_GOOGLE_HEALTH_BASE_URL", API_BASE),
            authorize_url=o.get("authorize_url") or os.environ.get("EMBERWATCH_GOOGLE_AUTH_URL", AUTHORIZE_URL),
            token_url=o.get("token_url") or os.environ.get("EMBERWATCH_GOOGLE_TOKEN_URL", TOKEN_URL),
        )

    def oauth_app(self) -> OAuthApp:
        client_id, secret = client_credentials("GOOGLE")
        # access_type=offline gives a refresh token; prompt=consent makes Google issue a fresh one each time.
        return OAuthApp(SOURCE_NAME, client_id, secret, self.authorize_url, self.token_url, SCOPES,
                        (("access_type", "offline"), ("prompt", "consent")))


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


def chunks(start: date, end: date, days: int) -> Iterator[tuple[date, date]]:
    """[start, end] (inclusive) in pieces of at most `days` days, oldest first."""
    while start <= end:
        last = min(start + timedelta(days=days - 1), end)
        yield start, last
        start = last + timedelta(days=1)


class GoogleHealthSource:
    name = SOURCE_NAME
    backfill_slice_days = 90  # the longest window sleep, the daily types and steps accept: one call each per slice

    def __init__(self, tokens: TokenStore, bookmarks: SyncBookmarks | None = None,
                 config: GoogleHealthConfig | None = None, policy: RetryPolicy | None = None) -> None:
        self.tokens, self.bookmarks = tokens, bookmarks
        self.config = config or GoogleHealthConfig.from_env()
        self.policy = policy
        self.requests_sent = 0  # across fetches, for the request-count acceptance

    # --- fetching -------------------------------------------------------------------------------------------

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        session = _PersonSession(self, person.person_id)
        granted = set(session.granted_scopes)
        fetched_types: list[DataType] = []
        try:
            for group in GROUPS:
                types = [t for t in DATA_TYPES if t.group == group and (not granted or t.scope in granted)]
                if not types:
                    continue
                starts = {t.name: self._incremental_start(person.person_id, t, start) for t in types}
                window_start = min(starts.values())
                pages: dict[str, list[str]] = {}
                for t in types:
                    pages[t.name] = [r.text for r in self._pages(session.client, t, starts[t.name], end)]
                yield RawPayload(person.person_id, SOURCE_NAME, group, json.dumps(pages).encode(),
                                 datetime.now(timezone.utc), window_start, end)
                fetched_types.extend(types)
            # Bookmarks move only once every group is in hand: callers store a person's payloads only when the
            # whole fetch succeeded, so a bookmark moved after the first group of a fetch that then failed would
            # make the next run skip nights that were never stored.
            if self.bookmarks is not None:
                mark_synced_all(self.bookmarks, person.person_id, SOURCE_NAME, [t.name for t in fetched_types], end)
        finally:
            self.requests_sent += session.client.requests_sent

    def _incremental_start(self, person_id: str, data_type: DataType, start: date) -> date:
        """From the bookmark less a trailing window when the bookmark is older than `start` (a missed night);
        late watch syncs are covered because the flow asks for the last few nights anyway."""
        if self.bookmarks is None:
            return start
        through = self.bookmarks.synced_through(person_id, SOURCE_NAME, data_type.name)
        if through is None:
            return start
        # The day after the bookmark, less the trailing window for late watch syncs (steady state: == start).
        return min(start, through + timedelta(days=1 - self.config.trailing_days))

    def _pages(self, client: ApiClient, t: DataType, start: date, end: date) -> Iterator[requests.Response]:
        url = f"{self.config.api_base}/v4/users/me/dataTypes/{t.name}/dataPoints"
        for first, last in chunks(start, end, t.max_window_days):
            token: str | None = None
            while True:
                if t.method == "list":
                    params: dict[str, Any] = {
                        "filter": f'{t.filter_member} >= "{first.isoformat()}" AND '
                                  f'{t.filter_member} < "{(last + timedelta(days=1)).isoformat()}"',
                        "pageSize": t.page_size,
                    }
                    if token:
                        params["pageToken"] = token
                    response = client.request("GET", url, params=params)
                else:
                    body: dict[str, Any] = {
                        # CivilTimeInterval: dates wrapped as {"date": {...}}, end exclusive.
                        "range": {"start": {"date": _date_json(first)},
                                  "end": {"date": _date_json(last + timedelta(days=1))}},
                        "windowSizeDays": 1,
                        "pageSize": t.page_size,
                    }
                    if token:
                        body["pageToken"] = token
                    response = client.request("POST", url + ":dailyRollUp", json=body)
                yield response
                token = _json_object(response, f"a {t.name} page").get("nextPageToken") or None
                if not token:
                    break

    def identity(self, person_id: str) -> dict[str, Any]:
        session = _PersonSession(self, person_id)
        return _json_object(session.client.request("GET", f"{self.config.api_base}/v4/users/me/identity"),
                            "the identity request")

    def settings(self, person_id: str) -> dict[str, Any]:
        session = _PersonSession(self, person_id)
        return _json_object(session.client.request("GET", f"{self.config.api_base}/v4/users/me/settings"),
                            "the settings request")

    def time_zone(self, person_id: str) -> str | None:
        """The person's IANA zone from Google Health settings (scope settings.readonly)."""
        return self.settings(person_id).get("timeZone") or None

    # --- parsing --------------------------------------------------------------------------------------------

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        result = ParseResult()
        try:
            bundle = json.loads(raw.body)
            # Each data type holds a list of page texts (a bare string would be read letter by letter).
            if not isinstance(bundle, dict) or not all(isinstance(texts, list) for texts in bundle.values()):
                raise ValueError
            points = {name: [p for text in texts for p in _page_points(text)] for name, texts in bundle.items()}
        except (ValueError, TypeError, AttributeError, RecursionError):  # RecursionError: absurd nesting
            result.rejected.append(Rejected(raw.resource, (
                f"the {raw.resource} payload is not the bundle {SOURCE_NAME} writes "
                '({"<data type>": ["<page>", ...]}) or a page is not JSON; nothing from it was imported.')))
            return result
        parser = _GROUP_PARSERS.get(raw.resource)
        if parser is None:
            result.rejected.append(Rejected(raw.resource, f"'{raw.resource}' is not a resource of {SOURCE_NAME}."))
            return result
        # A data type this group does not read would otherwise be dropped without a word.
        known = {t.name for t in DATA_TYPES if t.group == raw.resource}
        for name in sorted(set(points) - known):
            shown = storable_text(name)
            # Quoted in the locator: a bundle key may be "" and a locator must still point somewhere.
            result.rejected.append(Rejected(f"data type '{shown}'", (
                f"{SOURCE_NAME}: '{shown}' is not a data type of the {raw.resource} payload; "
                "it was not imported.")))
        parser(points, person, result)
        return result


def _json_object(response: requests.Response, what: str) -> dict[str, Any]:
    """A response body as a JSON object, or a sentence: a bare JSONDecodeError would tell an operator nothing.
    (ApiClient already retries bodies that are not JSON at all; this catches JSON of the wrong shape too.)"""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TransientSourceError(
            f"{SOURCE_NAME} answered {what} with something other than a complete JSON object; "
            "the next run will try again.")
    return body


class _PersonSession:
    """An authorised session for one person: loads the token, refreshes it under the person's lock and saves
    the new one before anything else uses it."""

    def __init__(self, source: GoogleHealthSource, person_id: str) -> None:
        self.source, self.person_id = source, person_id
        stored = source.tokens.load(person_id, SOURCE_NAME)
        if stored is None:
            raise ConsentRequired(person_id, SOURCE_NAME, "no stored authorisation")
        self.granted_scopes = stored.granted_scopes
        cfg = source.config
        allow_loopback_http(cfg.token_url, cfg.api_base)
        self.app = cfg.oauth_app()
        self.session = OAuth2Session(self.app.client_id, token=stored.token)
        self.client = ApiClient(self.session, source=SOURCE_NAME,
                                limiter=limiter_for(SOURCE_NAME, cfg.api_base, person_id,
                                                    REQUESTS_PER_USER_PER_MINUTE),
                                refresh=self.refresh, describe_error=google_error, policy=source.policy)
        if float(stored.token.get("expires_at", 0) or 0) < time.time() + 60:
            self.refresh(stale=stored.token)

    def refresh(self, stale: dict[str, Any] | None = None) -> None:
        stale = stale or dict(self.session.token)
        with self.source.tokens.lock(self.person_id, SOURCE_NAME):
            current = self.source.tokens.load(self.person_id, SOURCE_NAME)
            if current is None:
                raise ConsentRequired(self.person_id, SOURCE_NAME, "no stored authorisation")
            if current.token.get("access_token") != stale.get("access_token"):
                self.session.token = current.token  # another worker refreshed already
                return
            try:
                token = self.session.refresh_token(
                    self.app.token_url, refresh_token=current.token.get("refresh_token"),
                    client_id=self.app.client_id, client_secret=self.app.client_secret)
            except InvalidGrantError:
                # Revoked, or 7 days old while the app is in Testing mode: only a new consent helps.
                reason = "the authorisation was revoked or has expired"
                if _consent_age(current.consented_at) >= TESTING_MODE_REFRESH_TOKEN_LIFETIME:
                    reason = ("the authorisation expired 7 days after consent, as Google does for apps whose "
                              "OAuth consent screen is in Testing status")
                self.source.tokens.consent_lost(self.person_id, SOURCE_NAME, reason)
                raise ConsentRequired(self.person_id, SOURCE_NAME, reason) from None
            except OAuth2Error as exc:
                raise ApiError(f"Google's token endpoint refused the refresh ({exc.error}).", 400,
                               exc.error) from None
            self.source.tokens.save(self.person_id, SOURCE_NAME, dict(token))


TESTING_MODE_REFRESH_TOKEN_LIFETIME = timedelta(days=7)


def _consent_age(consented_at: datetime) -> timedelta:
    at = consented_at if consented_at.tzinfo else consented_at.replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) - at


# --- parsing helpers ----------------------------------------------------------------------------------------


def _page_points(text: str) -> list[dict[str, Any]]:
    page = json.loads(text)
    items = page.get("dataPoints", page.get("rollupDataPoints", []))
    if not isinstance(items, list):
        raise ValueError
    return items


def _bad(locator: str, problem: str) -> RecordError:
    return RecordError(f"{SOURCE_NAME} at {locator}: {problem}")


def _shown(value: Any) -> str:
    """A value for a reason sentence: its repr, cut short so a huge corrupt field cannot flood quarantine."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(value: Any, locator: str, field: str) -> dict[str, Any]:
    """A nested message ({} when absent, as proto3 omits empty ones), or a RecordError naming the field."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(locator, f"field '{field}' should be an object, found {_shown(value)}")
    return value


# RFC 3339 fraction: only the digits right after the dot (the offset's digits are not part of it).
_FRACTION = re.compile(r"\.(\d+)")
# The widest UTC offsets in use are -12:00 and +14:00; protobuf and RFC 3339 allow up to 18 hours.
MAX_UTC_OFFSET = timedelta(hours=18)


def _instant(value: Any, locator: str, field: str) -> datetime:
    if not isinstance(value, str):
        raise _bad(locator, f"field '{field}' is missing")
    # RFC 3339 allows nanoseconds; Python reads at most microseconds. Cutting the digits of the fraction only
    # keeps the offset: "00.5+01:00" once lost its "+01:00" to the cut and was read an hour off.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value.replace("Z", "+00:00"), count=1)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(locator, f"field '{field}' is not an RFC 3339 instant: {_shown(value)}") from None
    if instant.tzinfo is None:
        # Without an offset astimezone() would read it in this machine's zone: RFC 3339 requires one.
        raise _bad(locator, f"field '{field}' has no UTC offset: {_shown(value)}")
    # Checked before conversion: year 1 at +01:00 overflows when moved to UTC.
    if not EARLIEST_PLAUSIBLE_DATE <= instant.date() <= LATEST_PLAUSIBLE_DATE:
        raise _bad(locator, f"field '{field}' is outside the plausible dates {EARLIEST_PLAUSIBLE_DATE} to "
                            f"{LATEST_PLAUSIBLE_DATE}: {_shown(value)}")
    return instant.astimezone(timezone.utc)


def _offset(value: Any, locator: str, field: str) -> timedelta | None:
    """A google.protobuf.Duration string like "-14400s"; None when absent. A malformed or impossible offset is
    refused rather than ignored: it is the one clue to the wake date when the watch was in another zone."""
    if value is None:
        return None
    try:
        if not isinstance(value, str) or not value.endswith("s"):
            raise ValueError
        seconds = float(value[:-1])
        if not math.isfinite(seconds) or abs(seconds) > MAX_UTC_OFFSET.total_seconds():
            raise ValueError
        return timedelta(seconds=seconds)
    except ValueError:
        raise _bad(locator, f"field '{field}' is not a UTC offset like '-14400s' within 18 hours: "
                            f"{_shown(value)}") from None


def _int64(value: Any, locator: str, field: str, default: int | None = 0) -> int | None:
    """int64 arrives as a JSON string; proto3 omits zero, so absent means 0 where the parent is present."""
    if value is None:
        return default
    # bool is an int in Python, and int(float("inf")) raises OverflowError: both are refused with a reason.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _bad(locator, f"field '{field}' is not a whole number: {_shown(value)}")
    try:
        return int(value)
    except ValueError:
        raise _bad(locator, f"field '{field}' is not a whole number: {_shown(value)}") from None


def _civil_date(value: Any, locator: str, field: str = "date") -> date:
    if not isinstance(value, dict):
        raise _bad(locator, f"field '{field}' is missing")
    try:
        parts = [value[part] for part in ("year", "month", "day")]
        # google.type.Date parts are JSON integers; int(True) or int(float("inf")) must not slip through.
        if any(isinstance(part, bool) or not isinstance(part, int) for part in parts):
            raise TypeError
        return date(*parts)
    except (KeyError, ValueError, TypeError, OverflowError):  # OverflowError: a year beyond a C long
        raise _bad(locator, f"field '{field}' is not a valid {{year, month, day}}: {_shown(value)}") from None


def _number(value: Any, locator: str, field: str) -> float:
    """A JSON number (a double on the wire), or a RecordError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(locator, f"field '{field}' is not a finite number: {_shown(value)}")
    return float(value)


def _one_field(model: type[Record], field: str, value: Any, base: dict[str, Any], locator: str) -> Any:
    """`value` validated as `field` of `model` on its own, so that a bad value costs only its own field (as in
    the export's activity files) and never the other measures of the same day."""
    return getattr(build_record(model, {"source": SOURCE_NAME, **base, field: value}, source=SOURCE_NAME,
                                locator=locator), field)


_STAGE = {"LIGHT": SleepStage.LIGHT, "DEEP": SleepStage.DEEP, "REM": SleepStage.REM,
          "ASLEEP": SleepStage.ASLEEP, "RESTLESS": SleepStage.RESTLESS}


def _parse_sleep(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    if not is_iana_zone(person.tz_name):
        # Every session record carries the person's zone, and a session without a civil end is dated in it.
        result.rejected.append(Rejected("sleep", (
            f"{SOURCE_NAME}: the person's time zone {_shown(person.tz_name)} is not an IANA zone name, so no "
            "sleep can be dated; nothing was imported. Correct the person's zone and re-parse.")))
        return
    seen: set[str] = set()
    for index, point in enumerate(points.get("sleep", [])):
        locator = f"sleep[{index}]"
        try:
            session = _sleep_session(point, person, locator)
        except (RecordError, ValueError, TypeError) as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            continue
        if session.source_session_id in seen:
            continue  # the same session on two pages (data changed between page requests)
        seen.add(session.source_session_id)
        result.records.append(session)


def _sleep_session(point: dict[str, Any], person: PersonContext, locator: str) -> SleepSession:
    if not isinstance(point, dict):
        raise _bad(locator, f"expected a data point object, found {_shown(point)}")
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
        night = _civil_date(civil_end["date"], locator, "interval.civilEndTime.date")
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
        raise _bad(locator, f"field 'name' should be text, found {_shown(name)}")
    # Real names are users/{id}/dataTypes/sleep/dataPoints/{id}; without one, the start instant is the key.
    session_id = (name.rsplit("/", 1)[-1] if "/dataPoints/" in name
                  else "start-" + start_utc.strftime("%Y%m%dT%H%M%SZ"))

    is_stages = sleep.get("type") == "STAGES"
    segments = []
    asleep_s = awake_s = 0
    stages = sleep.get("stages") or []
    if not isinstance(stages, list):
        raise _bad(locator, f"field 'stages' should be a list, found {_shown(stages)}")
    for s_index, stage in enumerate(stages):
        where = f"{locator} stages[{s_index}]"
        if not isinstance(stage, dict):
            raise _bad(where, f"expected a stage object, found {_shown(stage)}")
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
        raise _bad(locator, f"field 'summary' should be an object, found {_shown(summary)}")
    else:  # not processed yet: derive from the stages
        minutes_asleep, minutes_awake, to_fall_asleep = asleep_s // 60, awake_s // 60, 0
    metadata = _object(sleep.get("metadata"), locator, "metadata")
    main_sleep = metadata.get("mainSleep", False)
    if not isinstance(main_sleep, bool):  # bool("false") is True: text here is a wrong type, not a yes
        raise _bad(locator, f"field 'metadata.mainSleep' should be true or false, found {_shown(main_sleep)}")
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


def _daily(points: list[dict], member: str, result: ParseResult, name: str) -> Iterator[tuple[date, dict, str]]:
    for index, point in enumerate(points):
        locator = f"{name}[{index}]"
        try:
            if not isinstance(point, dict):
                raise _bad(locator, f"expected a data point object, found {_shown(point)}")
            body = point.get(member)
            if not isinstance(body, dict):
                raise _bad(locator, f"field '{member}' is missing")
            yield _civil_date(body.get("date"), locator), body, locator
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))


def _add(result: ParseResult, model: type[Record], data: dict[str, Any], locator: str) -> None:
    try:
        result.records.append(build_record(model, data, source=SOURCE_NAME, locator=locator))
    except RecordError as exc:
        result.rejected.append(Rejected(locator, str(exc)))


def _parse_resting_hr(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    for day, body, locator in _daily(points.get("daily-resting-heart-rate", []), "dailyRestingHeartRate", result,
                                     "daily-resting-heart-rate"):
        try:
            bpm = _int64(body.get("beatsPerMinute"), locator, "beatsPerMinute", None)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            continue
        if bpm:  # absent (proto3's zero) means no value that day: missing, not 0
            _add(result, DailyRestingHeartRate, {"person_id": person.person_id, "source": SOURCE_NAME,
                                                 "day": day, "resting_hr_bpm": float(bpm)}, locator)


def _parse_hrv(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    for day, body, locator in _daily(points.get("daily-heart-rate-variability", []), "dailyHeartRateVariability",
                                     result, "daily-heart-rate-variability"):
        rmssd = body.get("averageHeartRateVariabilityMilliseconds")
        deep = body.get("deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds") or None
        if rmssd:
            _add(result, NightlyHrv, {"person_id": person.person_id, "source": SOURCE_NAME, "night_date": day,
                                      "rmssd_ms": rmssd, "deep_rmssd_ms": deep}, locator)


def _parse_vitals(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    # The daily vitals are computed for the main sleep and dated with its wake date (the night).
    by_night: dict[date, dict[str, Any]] = {}

    def keep(day: date, field_name: str, value: Any, locator: str) -> None:
        # Each measure is checked on its own, at its own locator: a bad SpO2 costs only that night's SpO2.
        try:
            checked = _one_field(NightlyVitals, field_name, value,
                                 {"person_id": person.person_id, "night_date": day}, locator)
        except RecordError as exc:
            result.rejected.append(Rejected(locator, str(exc)))
            return
        by_night.setdefault(day, {})[field_name] = checked

    for day, body, locator in _daily(points.get("daily-oxygen-saturation", []), "dailyOxygenSaturation",
                                     result, "daily-oxygen-saturation"):
        if body.get("averagePercentage"):
            keep(day, "spo2_avg_pct", body["averagePercentage"], locator)
    for day, body, locator in _daily(points.get("daily-respiratory-rate", []), "dailyRespiratoryRate", result,
                                     "daily-respiratory-rate"):
        if body.get("breathsPerMinute"):
            keep(day, "breathing_rate_brpm", body["breathsPerMinute"], locator)
    for day, body, locator in _daily(points.get("daily-sleep-temperature-derivations", []),
                                     "dailySleepTemperatureDerivations", result,
                                     "daily-sleep-temperature-derivations"):
        nightly, baseline = body.get("nightlyTemperatureCelsius"), body.get("baselineTemperatureCelsius")
        if nightly is not None and baseline is not None:
            try:  # text or NaN here would make the subtraction raise, or a NaN deviation
                deviation = round(_number(nightly, locator, "nightlyTemperatureCelsius")
                                  - _number(baseline, locator, "baselineTemperatureCelsius"), 3)
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
                continue
            keep(day, "skin_temp_deviation_c", deviation, locator)
    for night in sorted(by_night):
        _add(result, NightlyVitals, {"person_id": person.person_id, "source": SOURCE_NAME, "night_date": night,
                                     **by_night[night]}, f"vitals ({night})")


_LEVEL_FIELD = {"LIGHT": "lightly_active_min", "MODERATE": "moderately_active_min", "VIGOROUS": "very_active_min"}


def _parse_activity(points: dict[str, list[dict]], person: PersonContext, result: ParseResult) -> None:
    by_day: dict[date, dict[str, Any]] = {}
    for name in ("steps", "active-minutes"):
        for index, point in enumerate(points.get(name, [])):
            locator = f"{name}[{index}]"
            try:
                if not isinstance(point, dict):
                    raise _bad(locator, f"expected a roll-up data point object, found {_shown(point)}")
                civil_start = _object(point.get("civilStartTime"), locator, "civilStartTime")
                day = _civil_date(civil_start.get("date"), locator, "civilStartTime.date")
                values = _rollup_values(name, point, locator)
                # Each value is checked on its own: a bad step count never costs the day's active minutes.
                checked = {field_name: _one_field(DailyActivity, field_name, value,
                                                  {"person_id": person.person_id, "day": day}, locator)
                           for field_name, value in values.items()}
            except RecordError as exc:
                result.rejected.append(Rejected(locator, str(exc)))
                continue
            by_day.setdefault(day, {}).update(checked)
    for day in sorted(by_day):
        if by_day[day]:
            _add(result, DailyActivity, {"person_id": person.person_id, "source": SOURCE_NAME, "day": day,
                                         **by_day[day]}, f"activity ({day})")


def _rollup_values(name: str, point: dict[str, Any], locator: str) -> dict[str, int | None]:
    """DailyActivity fields from one roll-up point: steps, or the three active-minute levels."""
    if name == "steps" and isinstance(point.get("steps"), dict):
        return {"steps": _int64(point["steps"].get("countSum"), locator, "steps.countSum")}
    if name == "active-minutes" and isinstance(point.get("activeMinutes"), dict):
        levels = point["activeMinutes"].get("activeMinutesRollupByActivityLevel") or []
        if not isinstance(levels, list):
            raise _bad(locator, "field 'activeMinutesRollupByActivityLevel' should be a list, "
                                f"found {_shown(levels)}")
        # A level left out is zero minutes.
        values: dict[str, int | None] = {field_name: 0 for field_name in _LEVEL_FIELD.values()}
        for l_index, level in enumerate(levels):
            field = f"activeMinutesRollupByActivityLevel[{l_index}]"
            if not isinstance(level, dict):
                raise _bad(locator, f"field '{field}' should be an object, found {_shown(level)}")
            activity_level = level.get("activityLevel")
            if isinstance(activity_level, str) and activity_level in _LEVEL_FIELD:
                values[_LEVEL_FIELD[activity_level]] = _int64(level.get("activeMinutesSum"), locator,
                                                              f"{field}.activeMinutesSum")
        return values
    return {}


_GROUP_PARSERS: dict[str, Callable[[dict[str, list[dict]], PersonContext, ParseResult], None]] = {
    "sleep": _parse_sleep,
    "daily-resting-heart-rate": _parse_resting_hr,
    "daily-heart-rate-variability": _parse_hrv,
    "vitals": _parse_vitals,
    "activity": _parse_activity,
}

