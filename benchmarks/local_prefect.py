"""A throwaway Prefect server on loopback for the benchmark scripts (scale-out demo, crash campaign).

Production runs against a long-lived server (`prefect server start` or Prefect Cloud via PREFECT_API_URL);
these scripts start their own in a temp folder so they touch nothing of the operator's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f} s")


@contextmanager
def prefect_server(work: Path) -> Iterator[dict[str, str]]:
    """Start `prefect server start` with its home under `work`; yield the environment that points clients at it."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    work.mkdir(parents=True, exist_ok=True)
    with open(work / "server.log", "w") as log:
        server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(f"http://127.0.0.1:{port}/api/health")
            yield env
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
