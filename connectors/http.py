"""Our thin HTTP layer for live sources: per-person rate limits, retries with backoff, and errors as sentences.

What is retried here, briefly, inside one fetch: 429 (after Retry-After, or a backoff when there is none),
5xx and connection trouble. When those persist, TransientSourceError lets the flow retry the person later.
Anything else is not retried. Nothing here logs a URL query, a header or a body: they carry tokens and health data.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from connectors.base import TransientSourceError

log = logging.getLogger("emberwatch.connectors")


class ApiError(RuntimeError):
    """A request the source refused for a reason retrying will not fix (400, 403, 404, 410…)."""

    def __init__(self, message: str, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


class RateLimiter:
    """At most `per_minute` requests in any 60 s, for one person at one source (Google: 300/user/min)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        self.paused_until = 0.0  # set from a source's own signal (429, Fitbit's reset header)

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= 60:
                    self._sent.popleft()
                wait = max(self.paused_until - now, 0.0)
                if not wait and len(self._sent) < self.per_minute:
                    self._sent.append(now)
                    return
                if not wait:
                    wait = 60 - (now - self._sent[0])
            time.sleep(wait)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def pause_left_s(self) -> float:
        """How long the source has asked us to stay quiet from now (0 when it has not)."""
        with self._lock:
            return max(self.paused_until - time.monotonic(), 0.0)


_LIMITERS: dict[tuple[str, str, str], RateLimiter] = {}
_LIMITERS_GUARD = threading.Lock()


def limiter_for(source: str, api_base: str, person_id: str, per_minute: int) -> RateLimiter:
    """One limiter per (source, API server, person) for the whole process, shared by every client built for them
    (a nightly run and a backfill in one process draw on the same budget)."""
    with _LIMITERS_GUARD:
        return _LIMITERS.setdefault((source, api_base, person_id), RateLimiter(per_minute))


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    # Tests shorten these with EMBERWATCH_HTTP_BACKOFF_S; production keeps seconds-scale waits.
    backoff_s: float = field(default_factory=lambda: env_float("EMBERWATCH_HTTP_BACKOFF_S", 1.0))
    max_wait_s: float = 120.0
    # How long one request may go without an answer. Tests shorten it to meet a stalled server quickly.
    timeout_s: float = field(default_factory=lambda: env_float("EMBERWATCH_HTTP_TIMEOUT_S", 30.0))

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2 ** attempt, self.max_wait_s)


def describe_failure(exc: BaseException, policy: RetryPolicy) -> str:
    """Connection trouble as words an operator reads in a run report (never the URL: its query has dates)."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {policy.timeout_s:g} s"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed or was cut"
    return type(exc).__name__


def is_json(body: bytes | str) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


INCOMPLETE_BODY = "an answer whose body was not complete JSON"


def rate_limit_outlasts_run(source: str, wait_s: float) -> TransientSourceError:
    """A wait longer than a fetch may block a worker: the person is left for the next run instead."""
    return TransientSourceError(
        f"{source} asked us to pause this person's requests for {wait_s:.0f} s (its rate limit); "
        "the next run will carry on.")


def retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


class ApiClient:
    """Sends requests for one person at one source and counts them (acceptance: requests per person-night)."""

    def __init__(
        self,
        session: requests.Session,
        *,
        source: str,
        limiter: RateLimiter,
        refresh: Callable[[], None],
        describe_error: Callable[[requests.Response], tuple[str, str]],
        policy: RetryPolicy | None = None,
        retry_after: Callable[[requests.Response], float | None] = retry_after_s,
    ) -> None:
        self.session, self.source, self.limiter = session, source, limiter
        self.refresh, self.describe_error, self.retry_after = refresh, describe_error, retry_after
        self.policy = policy or RetryPolicy()
        self.requests_sent = 0

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The answer to one request, retried as the module says. A success always has a complete JSON body
        (every source behind this client speaks JSON), so callers may decode it and archive its text."""
        refreshed = False
        problem = "no answer"
        for attempt in range(self.policy.max_attempts):
            if (paused_s := self.limiter.pause_left_s()) > self.policy.max_wait_s:
                raise rate_limit_outlasts_run(self.source, paused_s)
            self.limiter.acquire()
            try:
                self.requests_sent += 1
                response = self.session.request(method, url, timeout=self.policy.timeout_s, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = describe_failure(exc, self.policy)
                time.sleep(self.policy.backoff(attempt))
                continue
            status = response.status_code
            if status == 401 and not refreshed:
                refreshed = True
                self.refresh()  # raises ConsentRequired when the refresh token is gone
                continue
            if status == 429:
                wait = self.retry_after(response)  # Retry-After, or the source's own hint
                if wait is not None and wait > self.policy.max_wait_s:
                    raise rate_limit_outlasts_run(self.source, wait)
                wait = self.policy.backoff(attempt) if wait is None else wait
                log.info("%s asked us to slow down; waiting %.1f s", self.source, wait)
                self.limiter.pause(wait)
                problem = "429 Too Many Requests"
                continue
            if status >= 500:
                problem = f"HTTP {status}"
                time.sleep(self.policy.backoff(attempt))
                continue
            if status >= 400:
                message, reason = self.describe_error(response)
                raise ApiError(message, status, reason)
            if not is_json(response.content):
                # A 200 cut off on the way (a proxy, a dropped connection that still looked complete): like a
                # 5xx it is retried, and it is never handed on, so half a page is neither archived nor paged from.
                problem = INCOMPLETE_BODY
                time.sleep(self.policy.backoff(attempt))
                continue
            return response
        raise TransientSourceError(
            f"{self.source} kept failing ({problem}) after {self.policy.max_attempts} attempts; "
            "the next run will try again."
        )
