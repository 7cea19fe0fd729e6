"""A local Google Health API v4 + Google OAuth server for tests: real HTTP on 127.0.0.1, speaking the shapes of
the discovery document (every response body is checked against its schema before it is sent).

Serves: GET /o/oauth2/v2/auth (redirects straight back with a code: the person "consents"), POST /token
(authorization_code with PKCE S256 verified; refresh_token), GET /v4/users/me/identity and /settings,
GET .../dataTypes/{type}/dataPoints (filter checked against the type's member, pageSize, pageToken, newest
first) and POST .../dataPoints:dailyRollUp. Faults are scripted per path prefix (429 with or without
Retry-After, 5xx, a 200 whose body is cut off, an answer that comes only after a delay) and tokens can be expired
or revoked. For benchmarks, every API answer can carry a latency and a seeded share of 429s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import googleapiclient

from tests.loopback_fake import JsonHandler, LoopbackFake

DISCOVERY = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / "health.v4.json"
_SCHEMAS: dict[str, Any] = json.loads(DISCOVERY.read_text())["schemas"]

MEMBERS = {
    "sleep": "sleep.interval.civil_end_time",
    "daily-resting-heart-rate": "daily_resting_heart_rate.date",
    "daily-heart-rate-variability": "daily_heart_rate_variability.date",
    "daily-oxygen-saturation": "daily_oxygen_saturation.date",
    "daily-respiratory-rate": "daily_respiratory_rate.date",
    "daily-sleep-temperature-derivations": "daily_sleep_temperature_derivations.date",
}
MAX_PAGE = {"sleep": 25}
ROLLUP_MAX_DAYS = {"steps": 90, "active-minutes": 14}


def check_schema(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """Fail loudly when `value` does not fit the discovery schema: unknown fields, int64 not a string, etc."""
    if "$ref" in schema:
        schema = _SCHEMAS[schema["$ref"]]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        assert isinstance(value, dict), f"{where}: expected object"
        props = schema.get("properties", {})
        for key, item in value.items():
            if key == "@type":
                continue
            if key not in props and "additionalProperties" not in schema:
                raise AssertionError(f"{where}.{key}: not in the discovery schema")
            check_schema(item, props.get(key) or schema.get("additionalProperties", {}), f"{where}.{key}")
    elif kind == "array":
        assert isinstance(value, list), f"{where}: expected array"
        for i, item in enumerate(value):
            check_schema(item, schema.get("items", {}), f"{where}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), f"{where}: expected string (format {schema.get('format')})"
        if schema.get("format") == "int64":
            int(value)
        if "enum" in schema:
            assert value in schema["enum"], f"{where}: {value!r} not in enum"
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected integer"
    elif kind == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{where}: expected number"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: expected boolean"


def schema(name: str) -> dict[str, Any]:
    return {"$ref": name}


def pb_date(day: date) -> dict[str, int]:
    return {"year": day.year, "month": day.month, "day": day.day}


def rfc3339(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: float) -> str:
    return f"{int(seconds)}s"


def omit_zero(d: dict[str, Any]) -> dict[str, Any]:
    """proto3 JSON leaves out zero, false and empty fields."""
    return {k: v for k, v in d.items() if v not in (0, "0", False, None, [], {}, "")}


@dataclass
class Fault:
    """One scripted answer. Status 200 means the real answer, changed by `truncate` and/or `delay_s`."""

    status: int
    retry_after: str | None = None
    body: dict[str, Any] | None = None
    truncate: bool = False  # send only the first half of the body (Content-Length matching: a clean cut-off)
    delay_s: float = 0.0  # wait this long before answering (longer than the client's timeout: a stall)


@dataclass
class FakeGoogleHealth(LoopbackFake):
    """Data keyed by type: list types hold (sort instant, civil date, DataPoint dict); roll-ups hold per-day dicts."""

    points: dict[str, list[tuple[datetime, date, dict]]] = field(default_factory=lambda: defaultdict(list))
    rollups: dict[str, dict[date, dict]] = field(default_factory=lambda: defaultdict(dict))
    timezone_name: str = "America/New_York"
    faults: list[tuple[str, Fault]] = field(default_factory=list)  # (path prefix, fault), used once each
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of API calls
    token_requests: list[dict[str, str]] = field(default_factory=list)
    access_tokens: dict[str, str] = field(default_factory=dict)   # access token -> refresh token
    refresh_tokens: set[str] = field(default_factory=set)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    access_token_lifetime_s: int = 3600
    granted_scopes: str | None = None  # None: everything asked for
    account_error: tuple[int, str, str] | None = None  # (status, rpc status, ErrorInfo reason)
    outage_after: int | None = None  # answer 503 to every API call after this many (an interrupted backfill)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    # --- scripting ----------------------------------------------------------------------------------------

    def add_point(self, data_type: str, sort_key: datetime, civil: date, point: dict) -> None:
        check_schema(point, schema("DataPoint"))
        self.points[data_type].append((sort_key, civil, point))

    def add_rollup(self, data_type: str, day: date, point: dict) -> None:
        check_schema(point, schema("DailyRollupDataPoint"))
        self.rollups[data_type][day] = point

    def fail_next(self, path_prefix: str, status: int, retry_after: str | None = None, times: int = 1) -> None:
        self.faults.extend((path_prefix, Fault(status, retry_after)) for _ in range(times))

    def truncate_next(self, path_prefix: str, times: int = 1) -> None:
        """The next answers under this prefix are 200 with only the first half of their JSON body."""
        self.faults.extend((path_prefix, Fault(200, truncate=True)) for _ in range(times))

    def stall_next(self, path_prefix: str, delay_s: float, times: int = 1) -> None:
        """The next answers under this prefix come only after `delay_s` (beyond the client's timeout: a stall)."""
        self.faults.extend((path_prefix, Fault(200, delay_s=delay_s)) for _ in range(times))

    def take_fault(self, path: str) -> Fault | None:
        """The first scripted fault for this path, used up (under the lock: people are fetched concurrently)."""
        with self._lock:
            for i, (prefix, fault) in enumerate(self.faults):
                if path.startswith(prefix):
                    del self.faults[i]
                    return fault
        return None

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def api_calls(self) -> int:
        return len(self.requests)

    def issue_tokens(self, scope: str) -> dict[str, Any]:
        access, refresh = "ya29." + secrets.token_urlsafe(16), "1//" + secrets.token_urlsafe(16)
        with self._lock:
            self.access_tokens[access] = refresh
            self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.access_token_lifetime_s,
                "token_type": "Bearer", "scope": self.granted_scopes or scope}


def status_body(code: int, status: str, message: str, reason: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "health.googleapis.com"}]
    return {"error": error}


_FILTER = re.compile(r'^(?P<m>[a-z_.]+) >= "(?P<a>[0-9-]+)" AND (?P=m) < "(?P<b>[0-9-]+)"$')


def _handler(fake: FakeGoogleHealth) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/o/oauth2/v2/auth":
                assert query["code_challenge_method"] == "S256" and query["access_type"] == "offline"
                assert query["prompt"] == "consent" and query["response_type"] == "code"
                code = "4/" + secrets.token_urlsafe(12)
                fake.codes[code] = {"challenge": query["code_challenge"], "redirect_uri": query["redirect_uri"],
                                    "scope": query["scope"]}
                target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"],
                                                                  "scope": query["scope"]})
                self._send(302, b"", {"Location": target}, "text/plain")
                return
            self._api("GET", url.path, query, None)

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path == "/token":
                self._token({k: v[0] for k, v in parse_qs(self._body().decode()).items()})
                return
            self._api("POST", url.path, {}, json.loads(self._body() or b"{}"))

        def _token(self, form: dict[str, str]) -> None:
            fake.token_requests.append({k: v for k, v in form.items() if k == "grant_type"})
            if form.get("grant_type") == "authorization_code":
                grant = fake.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if grant is None or grant["challenge"] != challenge or grant["redirect_uri"] != form.get("redirect_uri"):
                    self._send(400, {"error": "invalid_grant", "error_description": "Bad code or PKCE verifier."})
                    return
                self._send(200, fake.issue_tokens(grant["scope"]))
            elif form.get("grant_type") == "refresh_token":
                if form.get("refresh_token") not in fake.refresh_tokens:
                    self._send(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
                    return
                access = "ya29." + secrets.token_urlsafe(16)
                fake.access_tokens[access] = form["refresh_token"]
                self._send(200, {"access_token": access, "expires_in": fake.access_token_lifetime_s,
                                 "token_type": "Bearer", "scope": fake.granted_scopes or " ".join([])})
            else:
                self._send(400, {"error": "unsupported_grant_type"})

        def _api(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
            fake.requests.append((method, path))
            fake.api_call_arrived()
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in fake.access_tokens:
                self._send(401, status_body(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
                           {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
                return
            fake.wait_latency()
            if fake.should_throttle():
                self._send(429, status_body(429, "RESOURCE_EXHAUSTED", "Quota exceeded (seeded)."),
                           {"Retry-After": fake.retry_after_429})
                return
            fault = fake.take_fault(path)
            if fault is not None:
                time.sleep(fault.delay_s)
                if fault.status == 200:  # the real answer, cut off or late
                    self.truncate = fault.truncate
                else:
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    rpc = {429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}.get(fault.status, "INTERNAL")
                    self._send(fault.status, fault.body or status_body(fault.status, rpc, "Scripted fault."), headers)
                    return
            if fake.outage_after is not None and len(fake.requests) > fake.outage_after:
                self._send(503, status_body(503, "UNAVAILABLE", "Scripted outage."))
                return
            if fake.account_error:
                code, rpc, reason = fake.account_error
                self._send(code, status_body(code, rpc, "Scripted account error.", reason))
                return
            if path == "/v4/users/me/identity":
                self._ok({"name": "users/me/identity", "healthUserId": "1234567890", "legacyUserId": "ABC123"},
                         "Identity")
                return
            if path == "/v4/users/me/settings":
                self._ok({"name": "users/me/settings", "timeZone": fake.timezone_name}, "Settings")
                return
            m = re.fullmatch(r"/v4/users/me/dataTypes/([a-z-]+)/dataPoints(:dailyRollUp)?", path)
            if not m:
                self._send(404, status_body(404, "NOT_FOUND", "Not found."))
                return
            data_type, rollup = m.group(1), m.group(2)
            if rollup:
                self._rollup(data_type, body)
            else:
                self._list(data_type, query)

        def _ok(self, body: dict[str, Any], schema_name: str) -> None:
            check_schema(body, schema(schema_name))
            self._send(200, body)

        def _bad_filter(self, message: str) -> None:
            self._send(400, status_body(400, "INVALID_ARGUMENT", message, "INVALID_DATA_POINT_FILTER"))

        def _list(self, data_type: str, query: dict[str, str]) -> None:
            match = _FILTER.match(query.get("filter", ""))
            if not match:
                self._bad_filter("Filter is required in this fake and must be 'member >= \"a\" AND member < \"b\"'.")
                return
            if match["m"] != MEMBERS.get(data_type):
                # The real API answers some wrong members with 200 and nothing; this fake is stricter on purpose.
                self._bad_filter(f"Invalid filter member {match['m']} for data type {data_type}.")
                return
            page_size = int(query.get("pageSize", 1440))
            if page_size > MAX_PAGE.get(data_type, 10000):
                self._send(400, status_body(400, "INVALID_ARGUMENT", "page_size too large"))
                return
            lo, hi = date.fromisoformat(match["a"]), date.fromisoformat(match["b"])
            hits = sorted((p for p in fake.points[data_type] if lo <= p[1] < hi), key=lambda p: p[0], reverse=True)
            offset = int(query.get("pageToken", "0") or 0)
            page = [p[2] for p in hits[offset:offset + page_size]]
            out: dict[str, Any] = {"dataPoints": page} if page else {}
            if offset + page_size < len(hits):
                out["nextPageToken"] = str(offset + page_size)
            self._ok(out, "ListDataPointsResponse")

        def _rollup(self, data_type: str, body: dict[str, Any]) -> None:
            check_schema(body, schema("DailyRollUpDataPointsRequest"))
            try:
                start = date(**body["range"]["start"]["date"])
                end = date(**body["range"]["end"]["date"])
            except (KeyError, TypeError):
                self._send(400, status_body(400, "INVALID_ARGUMENT", 'Unknown name "year" at \'range.start\''))
                return
            if (end - start).days > ROLLUP_MAX_DAYS.get(data_type, 90):
                self._send(400, status_body(400, "INVALID_ARGUMENT", "Range too long for this data type."))
                return
            page_size = int(body.get("pageSize", 90))
            days = [start + timedelta(days=i) for i in range((end - start).days)][::-1]  # newest first
            offset = int(body.get("pageToken", "0") or 0)
            points = []
            for day in days[offset:offset + page_size]:
                point = fake.rollups[data_type].get(day)
                if point is not None:
                    points.append(point)
            out: dict[str, Any] = {"rollupDataPoints": points} if points else {}
            if offset + page_size < len(days):
                out["nextPageToken"] = str(offset + page_size)
            self._ok(out, "DailyRollUpDataPointsResponse")

    return Handler


# --- rendering our records as the API would send them (for end-to-end tests) ------------------------------

_STAGE_OUT = {"wake": "AWAKE", "awake": "AWAKE", "light": "LIGHT", "deep": "DEEP", "rem": "REM",
              "asleep": "ASLEEP", "restless": "RESTLESS"}


def _offset_s(instant: datetime, tz_name: str) -> float:
    from zoneinfo import ZoneInfo

    return instant.astimezone(ZoneInfo(tz_name)).utcoffset().total_seconds()  # type: ignore[union-attr]


def sleep_point(session: Any, point_id: str | None = None) -> dict[str, Any]:
    tz = session.tz_name
    stages = [omit_zero({
        "startTime": rfc3339(g.start_utc), "startUtcOffset": duration(_offset_s(g.start_utc, tz)),
        "endTime": rfc3339(g.start_utc + timedelta(seconds=g.duration_s)),
        "endUtcOffset": duration(_offset_s(g.start_utc + timedelta(seconds=g.duration_s), tz)),
        "type": _STAGE_OUT[g.stage.value]}) for g in session.segments]
    summary = omit_zero({"minutesAsleep": str(session.minutes_asleep), "minutesAwake": str(session.minutes_awake),
                         "minutesToFallAsleep": str(session.minutes_to_fall_asleep),
                         "minutesInSleepPeriod": str(session.time_in_bed_min)})
    sleep = omit_zero({
        "interval": {"startTime": rfc3339(session.start_utc),
                     "startUtcOffset": duration(_offset_s(session.start_utc, tz)),
                     "endTime": rfc3339(session.end_utc), "endUtcOffset": duration(_offset_s(session.end_utc, tz))},
        "type": "STAGES" if session.log_type == "stages" else "CLASSIC",
        "metadata": omit_zero({"mainSleep": session.is_main_sleep, "nap": not session.is_main_sleep,
                               "processed": True}),
        "stages": stages, "summary": summary,
    })
    pid = point_id or session.source_session_id
    return {"name": f"users/1234567890/dataTypes/sleep/dataPoints/{pid}", "sleep": sleep,
            "dataSource": {"platform": "FITBIT", "recordingMethod": "DERIVED"}}


def load_records(fake: FakeGoogleHealth, records: list[Any]) -> None:
    """Serve synthetic (or any) records through the fake, in the API's shapes (int64 as strings, zeros omitted)."""
    from connectors.records import DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, SleepSession

    midnight = datetime.min.time()
    for r in records:
        if isinstance(r, SleepSession):
            fake.add_point("sleep", r.start_utc, r.night_date, sleep_point(r))
        elif isinstance(r, DailyRestingHeartRate):
            at = datetime.combine(r.day, midnight, timezone.utc)
            fake.add_point("daily-resting-heart-rate", at, r.day, {"dailyRestingHeartRate": {
                "date": pb_date(r.day), "beatsPerMinute": str(round(r.resting_hr_bpm))}})
        elif isinstance(r, NightlyHrv):
            at = datetime.combine(r.night_date, midnight, timezone.utc)
            fake.add_point("daily-heart-rate-variability", at, r.night_date, {"dailyHeartRateVariability": omit_zero({
                "date": pb_date(r.night_date), "averageHeartRateVariabilityMilliseconds": r.rmssd_ms,
                "deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds": r.deep_rmssd_ms})})
        elif isinstance(r, NightlyVitals):
            at = datetime.combine(r.night_date, midnight, timezone.utc)
            if r.spo2_avg_pct is not None:
                fake.add_point("daily-oxygen-saturation", at, r.night_date, {"dailyOxygenSaturation": {
                    "date": pb_date(r.night_date), "averagePercentage": r.spo2_avg_pct}})
            if r.breathing_rate_brpm is not None:
                fake.add_point("daily-respiratory-rate", at, r.night_date, {"dailyRespiratoryRate": {
                    "date": pb_date(r.night_date), "breathsPerMinute": r.breathing_rate_brpm}})
            if r.skin_temp_deviation_c is not None:
                fake.add_point("daily-sleep-temperature-derivations", at, r.night_date,
                               {"dailySleepTemperatureDerivations": {
                                   "date": pb_date(r.night_date), "baselineTemperatureCelsius": 34.0,
                                   "nightlyTemperatureCelsius": 34.0 + r.skin_temp_deviation_c}})
        elif isinstance(r, DailyActivity):
            civil = {"civilStartTime": {"date": pb_date(r.day)},
                     "civilEndTime": {"date": pb_date(r.day + timedelta(days=1))}}
            if r.steps is not None:
                fake.add_rollup("steps", r.day, {**civil, "steps": omit_zero({"countSum": str(r.steps)})})
            levels = [omit_zero({"activityLevel": level, "activeMinutesSum": str(minutes)})
                      for level, minutes in (("LIGHT", r.lightly_active_min), ("MODERATE", r.moderately_active_min),
                                             ("VIGOROUS", r.very_active_min)) if minutes]
            if any(m is not None for m in (r.lightly_active_min, r.moderately_active_min, r.very_active_min)):
                fake.add_rollup("active-minutes", r.day, {**civil, "activeMinutes": omit_zero(
                    {"activeMinutesRollupByActivityLevel": levels})})
