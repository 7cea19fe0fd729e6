"""Shared fixtures. Prefect runs offline and against a throwaway home; the harness is opt-in (flow tests only)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# Each test process gets its own Prefect home: under pytest-xdist the workers inherit the controller's environment,
# and two workers' ephemeral servers must not migrate and write one SQLite database at once.
if os.environ.get("PYTEST_XDIST_WORKER") or "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="emberwatch-prefect-")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# The kernels compiled in every test process and in the CLIs the tests start (an import command would otherwise
# choose interpreted ones for the rest of the process it runs in: features/kernels.py); tests of the interpreted
# ones set it themselves.
os.environ["EMBERWATCH_KERNELS"] = "compiled"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
# The harness's SQLite server: its task-run recorder collides with flow-run creation and each collision costs a
# 2 s client retry (measured; see pipelines/cli.py demo). Tests assert on our results, not on Prefect's task rows.
os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
PMDATA = REPO.parent / "shared" / "data" / "pmdata"


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


@pytest.fixture
def store(tmp_path):
    from storage.store import Store

    with Store(tmp_path / "emberwatch.duckdb") as s:
        yield s


@pytest.fixture
def ew_home(tmp_path, monkeypatch):
    """EMBERWATCH_HOME in a temp folder, with SMTP unset (so email goes to the outbox)."""
    home = tmp_path / "home"
    monkeypatch.setenv("EMBERWATCH_HOME", str(home))
    for var in ("EMBERWATCH_SMTP_HOST", "EMBERWATCH_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def cli_at_noon(monkeypatch):
    """The CLI's clock held at noon UTC yesterday: daytime in Europe (an invite then goes out at once, whatever the
    hour the tests run), in the past and recent (links signed then are valid now)."""
    from datetime import datetime, time, timedelta, timezone

    from pipelines import cli_web

    noon = datetime.combine(datetime.now(timezone.utc).date() - timedelta(days=1), time(12), tzinfo=timezone.utc)
    monkeypatch.setattr(cli_web, "now", lambda: noon)
    return noon
