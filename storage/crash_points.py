"""Named places where the crash campaign may kill a run (benchmarks/crash_campaign.py).

Off unless EMBERWATCH_CRASH_AT is set, so production pays one environment lookup per call. The value names a
point, optionally with the hit that should die: `send` (the first time), `upsert:2` (the second time). The
process kills itself with SIGKILL — no `finally`, no atexit, no flush — which is what a power cut or the OOM
killer does. The campaign also kills at seeded random moments, so these points add coverage of the narrow
windows (between an SMTP "250 OK" and the ledger's commit) rather than replace random timing.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

CRASH_AT_ENV = "EMBERWATCH_CRASH_AT"

# Where the nightly run can die, in the order it reaches them.
POINTS = (
    "fetch",       # a person's payloads fetched, nothing stored yet
    "archive",     # raw payloads archived, not parsed
    "upsert",      # inside the records transaction, after the sleep tables and before the daily tables
    "features",    # nightly features written, night signals not yet
    "queue",       # one alert or check-in queued, others not
    "send",        # the SMTP server said 250, the ledger does not know yet (the documented edge)
    "sent",        # one email recorded as sent, the rest still queued
    "retention",   # everything done except retention
)

_hits: Counter[str] = Counter()
_lock = threading.Lock()


def _target() -> tuple[str, int] | None:
    value = os.environ.get(CRASH_AT_ENV)
    if not value:
        return None
    name, _, nth = value.partition(":")
    return name, int(nth or 1)


def crash_point(name: str) -> None:
    """Die here if the campaign asked for this point (and this hit of it)."""
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _hits[name] += 1
        if _hits[name] == target[1]:
            os.kill(os.getpid(), signal.SIGKILL)
