"""A local Oura API v2 + Oura OAuth server for tests: real HTTP on 127.0.0.1, speaking the documented shapes
(research/google-health-oura.md §4): GET /oauth/authorize (redirects straight back with a code: the person
"consents"), POST /oauth/token (authorization_code; refresh_token, single-use: the old refresh token dies when a new
pair is issued; a revoked one answers `invalid_grant`), and GET /v2/usercollection/{sleep, daily_readiness,
daily_spo2, daily_activity} with start_date/end_date (inclusive, on `day`) and `next_token` paging
({"data": [...], "next_token": str|null}). Errors are Oura's {status, title, detail}; a scripted 429 carries
Retry-After and the X-RateLimit-* headers.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse
from zoneinfo import ZoneInfo

from tests.loopback_fake import JsonHandler, LoopbackFake

COLLECTIONS = ("sleep", "daily_readiness", "daily_spo2", "daily_activity")
SLEEP_REQUIRED = ("id", "day", "bedtime_start", "bedtime_end", "period", "time_in_bed", "low_battery_alert")


def error_body(status: int, title: str, detail: str = "") -> dict[str, Any]:
    return {"status": status, "title": title, "detail": detail or title}


@dataclass
class FakeOura(LoopbackFake):
    documents: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {c: [] for c in COLLECTIONS})
    page_size: int = 50
    faults: list[tuple[str, int, dict[str, str]]] = field(default_factory=list)  # (path prefix, status, headers)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, query) of API calls
    token_requests: list[str] = field(default_factory=list)  # grant types
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    codes: dict[str, str] = field(default_factory=dict)  # code -> scope
    granted_scopes: str | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler(self)

    # --- scripting ----------------------------------------------------------------------------------------

    def add(self, collection: str, document: dict[str, Any]) -> None:
        if collection == "sleep":
            missing = [k for k in SLEEP_REQUIRED if k not in document]
            assert not missing, f"a sleep document needs {missing}"
        assert isinstance(document.get("id"), str) and date.fromisoformat(document["day"])
        self.documents[collection].append(document)

    def fail_next(self, path_prefix: str, status: int, headers: dict[str, str] | None = None) -> None:
        self.faults.append((path_prefix, status, headers or {}))

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
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        with self._lock:
            self.access_tokens.add(access)
            self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": 86400, "token_type": "bearer",
                "scope": self.granted_scopes or scope}


def _handler(fake: FakeOura) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/oauth/authorize":
                assert query["response_type"] == "code" and query["client_id"]
                code = secrets.token_urlsafe(12)
                fake.codes[code] = query["scope"]
                target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
                self._send(302, b"", {"Location": target})
                return
            self._api(url.path, query)

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if url.path != "/oauth/token":
                self._send(404, error_body(404, "Not Found"))
                return
            fake.token_requests.append(form.get("grant_type", ""))
            if not form.get("client_id") or not form.get("client_secret"):
                self._send(401, {"error": "invalid_client"})
            elif form.get("grant_type") == "authorization_code":
                scope = fake.codes.pop(form.get("code", ""), None)
                if scope is None:
                    self._send(400, {"error": "invalid_grant", "error_description": "Invalid authorization code."})
                else:
                    self._send(200, fake.issue_tokens(scope))
            elif form.get("grant_type") == "refresh_token":
                with fake._lock:
                    alive = form.get("refresh_token") in fake.refresh_tokens
                    fake.refresh_tokens.discard(form.get("refresh_token", ""))  # single use
                if not alive:
                    self._send(400, {"error": "invalid_grant",
                                     "error_description": "Token Already Used Or Revoked."})
                else:
                    self._send(200, fake.issue_tokens(fake.granted_scopes or "daily spo2Daily"))
            else:
                self._send(400, {"error": "unsupported_grant_type"})

        def _api(self, path: str, query: dict[str, str]) -> None:
            fake.requests.append((path, query))
            fake.api_call_arrived()
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in fake.access_tokens:
                self._send(401, error_body(401, "Unauthorized", "Invalid or expired access token."))
                return
            fake.wait_latency()
            if fake.should_throttle():
                self._send(429, error_body(429, "Too Many Requests"), {"Retry-After": fake.retry_after_429})
                return
            with fake._lock:
                fault = next((f for f in fake.faults if path.startswith(f[0])), None)
                if fault is not None:
                    fake.faults.remove(fault)
            if fault is not None:
                self._send(fault[1], error_body(fault[1], "Scripted fault."), fault[2])
                return
            collection = path.removeprefix("/v2/usercollection/")
            if collection not in COLLECTIONS:
                self._send(404, error_body(404, "Not Found"))
                return
            try:
                lo, hi = date.fromisoformat(query["start_date"]), date.fromisoformat(query["end_date"])
            except (KeyError, ValueError):
                self._send(400, error_body(400, "Bad Request", "start_date and end_date are required here."))
                return
            hits = sorted((d for d in fake.documents[collection] if lo <= date.fromisoformat(d["day"]) <= hi),
                          key=lambda d: (d["day"], d["id"]))
            offset = int(query.get("next_token") or 0)
            more = offset + fake.page_size < len(hits)
            self._send(200, {"data": hits[offset:offset + fake.page_size],
                             "next_token": str(offset + fake.page_size) if more else None})

    return Handler


# --- documents as Oura sends them ---------------------------------------------------------------------------


def sleep_document(wake_day: date, tz_name: str = "Europe/London", *, bed: str = "23:10", minutes: int = 460,
                   kind: str = "long_sleep", hrv: int = 48, lowest_hr: int = 52, breath: float = 14.5,
                   doc_id: str | None = None) -> dict[str, Any]:
    """A sleep period ending on `wake_day` (local), with a sleep_phase_5_min string covering it."""
    zone = ZoneInfo(tz_name)
    hour, minute = map(int, bed.split(":"))
    start = datetime.combine(wake_day - timedelta(days=1 if hour >= 12 else 0), datetime.min.time(), zone).replace(
        hour=hour, minute=minute)
    end = start + timedelta(minutes=minutes)
    slots = minutes // 5
    phases = ("4" + "2" * 10 + "1" * 12 + "2" * 8 + "3" * 6) * (slots // 37 + 1)
    phases = phases[:slots]
    seconds = {c: phases.count(c) * 300 for c in "1234"}
    return {
        "id": doc_id or f"sleep-{wake_day.isoformat()}-{kind}",
        "day": wake_day.isoformat(),
        "bedtime_start": start.isoformat(timespec="milliseconds"),
        "bedtime_end": end.isoformat(timespec="milliseconds"),
        "period": 0, "type": kind, "low_battery_alert": False,
        "time_in_bed": minutes * 60,
        "total_sleep_duration": seconds["1"] + seconds["2"] + seconds["3"],
        "awake_time": seconds["4"], "deep_sleep_duration": seconds["1"], "light_sleep_duration": seconds["2"],
        "rem_sleep_duration": seconds["3"], "latency": 300, "efficiency": 90,
        "average_heart_rate": lowest_hr + 6.5, "lowest_heart_rate": lowest_hr, "average_hrv": hrv,
        "average_breath": breath, "restless_periods": 120, "sleep_phase_5_min": phases,
        "readiness": {"score": 80, "temperature_deviation": 0.1, "temperature_trend_deviation": 0.0,
                      "contributors": {}},
    }


def readiness_document(day: date, temperature_deviation: float) -> dict[str, Any]:
    return {"id": f"readiness-{day}", "day": day.isoformat(), "score": 78,
            "temperature_deviation": temperature_deviation, "temperature_trend_deviation": 0.05,
            "timestamp": f"{day.isoformat()}T00:00:00+00:00", "contributors": {"hrv_balance": 80}}


def spo2_document(day: date, average: float | None) -> dict[str, Any]:
    return {"id": f"spo2-{day}", "day": day.isoformat(), "spo2_percentage": {"average": average},
            "breathing_disturbance_index": 3}


def activity_document(day: date, steps: int) -> dict[str, Any]:
    return {"id": f"activity-{day}", "day": day.isoformat(), "steps": steps, "active_calories": 400,
            "total_calories": 2300, "equivalent_walking_distance": steps * 0.7, "high_activity_time": 1200,
            "medium_activity_time": 2400, "low_activity_time": 12000, "sedentary_time": 30000,
            "resting_time": 28000, "non_wear_time": 0, "score": 80, "timestamp": f"{day.isoformat()}T04:00:00+00:00"}


def load_nights(fake: FakeOura, nights: list[date], tz_name: str = "Europe/London") -> None:
    for i, night in enumerate(nights):
        fake.add("sleep", sleep_document(night, tz_name, hrv=40 + i, lowest_hr=50 + i))
        fake.add("daily_readiness", readiness_document(night, round(-0.2 + 0.1 * i, 2)))
        fake.add("daily_spo2", spo2_document(night, 96.0 + i / 10))
        fake.add("daily_activity", activity_document(night, 8000 + 100 * i))
