"""What the fake API servers (tests/fake_google_health.py, tests/fake_fitbit_api.py, tests/fake_oura.py) share: a
quiet threaded HTTP server on loopback and its lifecycle, a handler that answers JSON, and the benchmark knobs —
latency on every API answer and a seeded share of 429s (benchmarks/ingestion.py)."""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """A client that timed out has closed its socket: the late answer's broken pipe is expected, not news."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler whose answers are JSON (or bytes as given), cut in half once when `truncate` is set."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's delayed ACK
    # (~40 ms a response on Linux), which real API servers do not add and benchmarks would measure.
    disable_nagle_algorithm = True
    content_type = "application/json"
    truncate = False  # set for one answer: only the first half of the body goes (a clean cut-off)

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
              content_type: str | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if self.truncate:
            self.truncate = False
            data = data[: len(data) // 2]
        self.send_response(status)
        self.send_header("Content-Type", content_type or self.content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


@dataclass
class LoopbackFake:
    """Base of a fake API: subclasses give `handler_class()`; use as a context manager (`with Fake() as f:`)."""

    latency_s: float = 0.0  # every API answer waits this long
    rate_429: float = 0.0  # this share of API calls (seeded) is answered 429 with Retry-After
    retry_after_429: str = "1"
    seed: int = 0
    throttled: int = 0  # 429s sent because of rate_429
    api_span_s: list[float] = field(default_factory=list)  # monotonic times of the first and the last API call

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self.server = QuietServer(("127.0.0.1", 0), self.handler_class())
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def api_call_arrived(self) -> None:
        now = time.monotonic()
        self.api_span_s[:] = [self.api_span_s[0] if self.api_span_s else now, now]

    def wait_latency(self) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)

    def should_throttle(self) -> bool:
        with self._lock:
            hit = self.rate_429 > 0 and self._random.random() < self.rate_429
            self.throttled += hit
            return hit
