"""Logs carry no email address, token or health value — checked on a whole demo run at DEBUG."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# What must never appear: addresses; OAuth material; a health measure next to a number.
LEAKS = {
    "email address": re.compile(r"[\w.+-]+@(?!emberwatch\.local)[\w-]+\.[\w.]+"),
    "token": re.compile(r"(access_token|refresh_token|Bearer\s+[\w-]{8,}|client_secret)", re.I),
    "health value": re.compile(
        r"\b(bpm|rmssd|resting_hr\w*|tst_min|minutes_asleep|efficiency_pct|waso_min|breathing_rate\w*|spo2\w*)"
        r"\W{0,4}[=:]?\s*\d", re.I),
}


def scan(text: str) -> dict[str, list[str]]:
    return {name: sorted(set(m.group(0) for m in rx.finditer(text)))[:5] for name, rx in LEAKS.items()
            if rx.search(text)}


def test_the_scanner_catches_each_kind_of_leak():
    planted = "sent to ana@example.org; refresh_token=abc; resting_hr_bpm: 61.2"
    assert set(scan(planted)) == {"email address", "token", "health value"}
    assert scan("Message-ID <alert.1f@emberwatch.local> for person c01, 12 nights updated") == {}


@pytest.mark.flow
def test_a_demo_run_at_debug_logs_nothing_private(tmp_path):
    env = {**os.environ, "EMBERWATCH_HOME": str(tmp_path / "home"), "PREFECT_LOGGING_LEVEL": "DEBUG",
           "PREFECT_LOGGING_LOGGERS_ROOT_LEVEL": "DEBUG", "PREFECT_HOME": str(tmp_path / "prefect")}
    env.pop("PREFECT_API_URL", None)
    exe = Path(sys.executable).with_name("emberwatch")
    out = subprocess.run([str(exe), "demo", "--people", "3", "--nights", "24"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout + out.stderr
    assert len(text.splitlines()) > 500  # DEBUG really was on: Prefect narrates every run
    # Our own loggers were in the scan too (PREFECT_LOGGING_EXTRA_LOGGERS), not only Prefect's narration.
    assert "Sent digest" in text and "record(s)" in text
    assert scan(text) == {}
