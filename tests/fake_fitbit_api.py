"""A local legacy Fitbit Web API + Fitbit OAuth server for tests: real HTTP on 127.0.0.1. Response shapes are
built from the recorded samples in tests/fixtures/fitbit_api_samples (licences and provenance beside them):
every sleep log carries exactly the keys of the recorded v1.2 stage log, time series follow the recorded files.

Behaviour modelled on research/fitbit-api.md: single-use refresh tokens, 401 `expired_token`, `invalid_grant` on a
revoked refresh token (Fitbit's {"errors": [...]} body), rate-limit headers on every answer, 429 with or without
Retry-After, range limits (sleep <= 100 days, HRV/BR/SpO2/temperature <= 30), and 410 Gone once retired.
Faults also include a 200 whose body is cut off and an answer that comes only after a delay; for benchmarks,
every answer can carry a latency and a seeded share of 429s, and the quota can be counted per access token (as
Fitbit counts it per user).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse
from zoneinfo import ZoneInfo

from tests.loopback_fake import JsonHandler, LoopbackFake

SAMPLES = Path(__file__).parent / "fixtures" / "fitbit_api_samples"
_STAGE_LOG = json.loads((SAMPLES / "sleep-v1.2-stages-1-item.slack-health-bot.json").read_text())["sleep"][0]
_HEART_TEMPLATE = json.loads((SAMPLES / "heart-rate-timeseries.fitbit-net.json").read_text(encoding="utf-8-sig"))
SLEEP_LOG_KEYS = frozenset(_STAGE_LOG)
RANGE_LIMIT = {"sleep": 100, "hrv": 30, "br": 30, "spo2": 30, "temp": 30, "heart": 366}
ACTIVITY = ("steps", "minutesSedentary", "minutesLightlyActive", "minutesFairlyActive", "minutesVeryActive")


def _errors(error_type: str, message: str) -> dict[str, Any]:
    return {"errors": [{"errorType": error_type, "message": message}], "success": False}


@dataclass
class FakeFitbit(LoopbackFake):
    tz_name: str = "Europe/London"
    sleep: dict[date, list[dict]] = field(default_factory=dict)      # dateOfSleep -> logs
    heart: dict[date, int] = field(default_factory=dict)
    hrv: dict[date, dict] = field(default_factory=dict)
    br: dict[date, float] = field(default_factory=dict)
    spo2: dict[date, float] = field(default_factory=dict)
    temp: dict[date, float] = field(default_factory=dict)
    activity: dict[str, dict[date, int]] = field(default_factory=lambda: {r: {} for r in ACTIVITY})
    faults: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)
    retired: bool = False
    requests: list[str] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    remaining: int = 150
    truncations: list[str] = field(default_factory=list)  # path parts: a 200 with half its body, once each
    stalls: list[tuple[str, float]] = field(default_factory=list)  # (path part, seconds before answering)
    # Benchmarks (with LoopbackFake's latency and seeded 429s): Fitbit counts its quota per user.
    quota_per_token: bool = False
    remaining_by_token: dict[str, int] = field(default_factory=dict)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    def fail_next(self, path_part: str, status: int, headers: dict[str, str] | None = None, times: int = 1) -> None:
        self.faults.extend((path_part, status, headers or {}) for _ in range(times))

    def truncate_next(self, path_part: str, times: int = 1) -> None:
        self.truncations.extend(path_part for _ in range(times))

    def stall_next(self, path_part: str, delay_s: float, times: int = 1) -> None:
        self.stalls.extend((path_part, delay_s) for _ in range(times))

    def _take(self, scripted: list, path: str) -> Any:
        """The first scripted entry whose path part is in `path`, used up (under the lock: fetches overlap)."""
        with self._lock:
            for i, entry in enumerate(scripted):
                if (entry if isinstance(entry, str) else entry[0]) in path:
                    return scripted.pop(i)
        return None

    def quota_left(self, token: str) -> int:
        """One request off the quota: per access token when asked (each person is their own Fitbit user)."""
        with self._lock:
            if not self.quota_per_token:
                self.remaining = max(self.remaining - 1, 0)
                return self.remaining
            left = max(self.remaining_by_token.get(token, 150) - 1, 0)
            self.remaining_by_token[token] = left
            return left

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def revoke(self) -> None:
        self.access_tokens.clear()
        self.refresh_tokens.clear()

    def issue(self, scope: str) -> dict[str, Any]:
        access, refresh = "eyJ" + secrets.token_urlsafe(16), secrets.token_hex(32)
        with self._lock:
            self.access_tokens.add(access)
            self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": 28800, "token_type": "Bearer",
                "scope": scope, "user_id": "ABC123"}

    # --- data, rendered from our records into the recorded shapes ----------------------------------------------

    def load_records(self, records: list[Any]) -> None:
        from connectors.records import DailyActivity, DailyRestingHeartRate, NightlyHrv, NightlyVitals, SleepSession

        for r in records:
            if isinstance(r, SleepSession):
                self.sleep.setdefault(r.night_date, []).append(sleep_log(r, self.tz_name))
            elif isinstance(r, DailyRestingHeartRate):
                self.heart[r.day] = round(r.resting_hr_bpm)
            elif isinstance(r, NightlyHrv):
                self.hrv[r.night_date] = {"dailyRmssd": r.rmssd_ms, "deepRmssd": r.deep_rmssd_ms or r.rmssd_ms}
            elif isinstance(r, NightlyVitals):
                if r.breathing_rate_brpm is not None:
                    self.br[r.night_date] = r.breathing_rate_brpm
                if r.spo2_avg_pct is not None:
                    self.spo2[r.night_date] = r.spo2_avg_pct
                if r.skin_temp_deviation_c is not None:
                    self.temp[r.night_date] = r.skin_temp_deviation_c
            elif isinstance(r, DailyActivity):
                for resource, value in zip(ACTIVITY, (r.steps, r.sedentary_min, r.lightly_active_min,
                                                      r.moderately_active_min, r.very_active_min)):
                    if value is not None:
                        self.activity[resource][r.day] = value

    def body_for(self, kind: str, start: date, end: date) -> Any:
        days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
        if kind == "sleep":  # newest logs last within the range, as the recorded range samples
            return {"sleep": [log for d in days for log in self.sleep.get(d, [])][::-1]}
        if kind == "heart":
            zones = _HEART_TEMPLATE["activities-heart"][0]["value"]["heartRateZones"]
            out = []
            for d in days:
                value: dict[str, Any] = {"customHeartRateZones": [], "heartRateZones": zones}
                if d in self.heart:
                    value["restingHeartRate"] = self.heart[d]
                out.append({"dateTime": d.isoformat(), "value": value})
            return {"activities-heart": out}
        if kind == "hrv":
            return {"hrv": [{"value": self.hrv[d], "dateTime": d.isoformat()} for d in days if d in self.hrv]}
        if kind == "br":
            return {"br": [{"value": {"breathingRate": self.br[d]}, "dateTime": d.isoformat()}
                           for d in days if d in self.br]}
        if kind == "spo2":  # a bare array, as the recorded interval sample
            return [{"dateTime": d.isoformat(), "value": {"avg": v, "min": v - 2, "max": min(v + 2, 100.0)}}
                    for d in days if (v := self.spo2.get(d)) is not None]
        if kind == "temp":
            return {"tempSkin": [{"dateTime": d.isoformat(), "value": {"nightlyRelative": self.temp[d]},
                                  "logType": "dedicated_temp_sensor"} for d in days if d in self.temp]}
        # activity time series: every day in the range, values as strings; an unworn day is 1,440 sedentary
        default = "1440" if kind == "minutesSedentary" else "0"
        return {f"activities-{kind}": [
            {"dateTime": d.isoformat(), "value": str(self.activity[kind].get(d, default))} for d in days]}


def sleep_log(session: Any, tz_name: str) -> dict[str, Any]:
    """A v1.2 sleep log with exactly the recorded sample's keys. Local times are the watch's clock: stage times
    run on from the start reading (so a DST night's stamps are contiguous), endTime is the wall clock at waking."""
    tz = ZoneInfo(tz_name)
    start_local = session.start_utc.astimezone(tz).replace(tzinfo=None)
    end_local = session.end_utc.astimezone(tz).replace(tzinfo=None)
    stage_names = {"wake": "wake", "awake": "awake", "light": "light", "deep": "deep", "rem": "rem",
                   "asleep": "asleep", "restless": "restless"}
    data, summary = [], {}
    for g in session.segments:
        at = start_local + (g.start_utc - session.start_utc)
        data.append({"dateTime": at.strftime("%Y-%m-%dT%H:%M:%S.000"), "level": stage_names[g.stage.value],
                     "seconds": g.duration_s})
        s = summary.setdefault(stage_names[g.stage.value], {"count": 0, "minutes": 0})
        s["count"] += 1
        s["minutes"] += g.duration_s // 60
    log_id = zlib.crc32(session.source_session_id.encode()) + 40_000_000_000
    log = {
        "dateOfSleep": session.night_date.isoformat(),
        "duration": int((session.end_utc - session.start_utc).total_seconds() * 1000),
        "efficiency": round(100 * session.minutes_asleep / max(session.time_in_bed_min, 1)),
        "endTime": end_local.strftime("%Y-%m-%dT%H:%M:%S.000"),
        "infoCode": 0,
        "isMainSleep": session.is_main_sleep,
        "levels": {"data": data, "shortData": [], "summary": summary},
        "logId": log_id,
        "logType": "auto_detected",
        "minutesAfterWakeup": 0,
        "minutesAsleep": session.minutes_asleep,
        "minutesAwake": session.minutes_awake,
        "minutesToFallAsleep": session.minutes_to_fall_asleep,
        "startTime": start_local.strftime("%Y-%m-%dT%H:%M:%S.000"),
        "timeInBed": session.time_in_bed_min,
        "type": session.log_type,
    }
    assert set(log) == SLEEP_LOG_KEYS, "the fake's sleep log must have the recorded sample's keys"
    return log


_PATH = re.compile(r"^/(?P<v>1|1\.2)/user/-/(?P<res>sleep|activities/heart|hrv|br|spo2|temp/skin|activities/"
                   r"(?:steps|minutesSedentary|minutesLightlyActive|minutesFairlyActive|minutesVeryActive))"
                   r"/date/(?P<a>\d{4}-\d{2}-\d{2})/(?P<b>\d{4}-\d{2}-\d{2})\.json$")


def _handler(fake: FakeFitbit) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        content_type = "application/json;charset=UTF-8"

        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/oauth2/authorize":
                assert q["code_challenge_method"] == "S256" and q["response_type"] == "code"
                code = secrets.token_hex(20)
                fake.codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q["redirect_uri"],
                                    "scope": q["scope"]}
                self._send(302, b"", {"Location": q["redirect_uri"] + "?" + urlencode({"code": code,
                                                                                       "state": q["state"]})})
                return
            self._api(url.path)

        def do_POST(self) -> None:  # noqa: N802
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers.get("Content-Length") or 0))
                                                 .decode()).items()}
            fake.token_requests.append(form.get("grant_type", ""))
            if not self.headers.get("Authorization", "").startswith("Basic "):
                self._send(401, _errors("invalid_client", "Client credentials missing from the Basic header."))
                return
            if fake.retired:
                self._send(410, _errors("gone", "This API has been retired."))
                return
            if form.get("grant_type") == "authorization_code":
                grant = fake.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "").encode()
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                if grant is None or grant["challenge"] != challenge:
                    self._send(400, _errors("invalid_grant", "Authorization code invalid or PKCE mismatch."))
                    return
                self._send(200, fake.issue(grant["scope"]))
            elif form.get("grant_type") == "refresh_token":
                token = form.get("refresh_token", "")
                with fake._lock:
                    valid = token in fake.refresh_tokens
                    fake.refresh_tokens.discard(token)  # single-use
                if not valid:
                    self._send(400, _errors("invalid_grant", "Refresh token invalid: " + token[:4] + "…"))
                    return
                self._send(200, fake.issue("sleep activity heartrate oxygen_saturation respiratory_rate "
                                           "temperature profile"))
            else:
                self._send(400, _errors("unsupported_grant_type", "Unsupported grant type."))

        def _api(self, path: str) -> None:
            fake.requests.append(path)
            fake.api_call_arrived()
            remaining = fake.quota_left(self.headers.get("Authorization", "")[7:])
            rate = {"Fitbit-Rate-Limit-Limit": "150", "Fitbit-Rate-Limit-Remaining": str(remaining),
                    "Fitbit-Rate-Limit-Reset": "1"}
            fake.wait_latency()
            if fake.should_throttle():
                self._send(429, _errors("system", "Too Many Requests (seeded)"),
                           {**rate, "Retry-After": fake.retry_after_429})
                return
            if fake.retired:
                self._send(410, b"", rate)
                return
            auth = self.headers.get("Authorization", "")
            if auth[7:] not in fake.access_tokens:
                self._send(401, _errors("expired_token", "Access token expired: " + auth[7:11] + "…"), rate)
                return
            if (fault := fake._take(fake.faults, path)) is not None:
                _, status, headers = fault
                if status == 429:
                    rate = {**rate, "Fitbit-Rate-Limit-Remaining": "0"}
                self._send(status, _errors("system", "Too Many Requests" if status == 429 else "Error"),
                           {**rate, **headers})
                return
            if (stall := fake._take(fake.stalls, path)) is not None:
                time.sleep(stall[1])  # then the real answer, too late for a client with a shorter timeout
            self.truncate = fake._take(fake.truncations, path) is not None
            if path == "/1/user/-/profile.json":
                self._send(200, {"user": {"timezone": fake.tz_name, "offsetFromUTCMillis": 0}}, rate)
                return
            m = _PATH.match(path)
            if not m:
                self._send(404, _errors("not_found", "The API you are requesting could not be found."), rate)
                return
            res = m["res"]
            kind = {"activities/heart": "heart", "temp/skin": "temp"}.get(res, res.split("/")[-1])
            if kind == "sleep" and m["v"] != "1.2":
                self._send(400, _errors("validation", "Use the v1.2 sleep endpoint in this fake."), rate)
                return
            a, b = date.fromisoformat(m["a"]), date.fromisoformat(m["b"])
            if b < a or (b - a).days + 1 > RANGE_LIMIT.get(kind, 1095):
                self._send(400, _errors("validation", "The date range is too long."), rate)
                return
            self._send(200, fake.body_for(kind, a, b), rate)

    return Handler
