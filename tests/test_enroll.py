"""`emberwatch backfill` through the CLI, against the local Google Health server (enrolment as in the connector tests)."""

from __future__ import annotations

import requests
from typer.testing import CliRunner

from storage.store import Store
from pipelines.cli import app
from pipelines.cli_connectors import enroll_person
from pipelines.settings import load_settings
from tests.fake_google_health import FakeGoogleHealth, load_records
from tests.test_google_health import live_env  # noqa: F401  (fixture)


def test_backfill_command_shows_progress_and_counts_requests(live_env, ew_home):  # noqa: F811
    from connectors.synthetic import SyntheticCohort

    cohort = SyntheticCohort(n_people=1, n_nights=30, seed=2)
    with FakeGoogleHealth() as fake:
        load_records(fake, [r.model_copy(update={"person_id": "cli1"}) for r in cohort.records(cohort.people[0].person_id)])
        with Store(load_settings().db_path) as store:
            store.add_person("cli1", "cli1@example.org", "Europe/London", "google-health", {
                "api_base": fake.base_url, "authorize_url": fake.base_url + "/o/oauth2/v2/auth",
                "token_url": fake.base_url + "/token"})
            enroll_person(store, "cli1", "google-health", lambda url: requests.get(url, timeout=10), timeout_s=20)
        result = CliRunner().invoke(app, ["backfill", "cli1", "--days", "10"])
        assert result.exit_code == 0, result.output
        assert "Backfilled" in result.output and "requests" in result.output
        assert "Retention keeps these nights" in result.output  # a backfill is history arriving today
        assert "ya29." not in result.output  # no token ever printed
        result = CliRunner().invoke(app, ["enroll", "nobody", "--source", "google-health", "--no-browser"])
        assert result.exit_code == 1 and "No person with id 'nobody'" in result.output
