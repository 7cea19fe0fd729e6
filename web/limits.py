"""A small in-process rate limit (sliding window per key), for the one form anyone can post: "email me a link".

In-process on purpose: `emberwatch web` runs as one process behind the reverse proxy; a proxy's own limit (README)
covers the rest.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from datetime import datetime, timedelta


class RateLimiter:
    def __init__(self, per_window: int, window: timedelta) -> None:
        self.per_window, self.window = per_window, window
        self._hits: dict[str, deque[datetime]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str, now: datetime) -> bool:
        with self._lock:
            hits = self._hits[key]
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.per_window:
                return False
            hits.append(now)
            return True
