"""Connecting a watch with no operator at the keyboard, over real HTTP: `emberwatch invite` → the link in the email
→ Google's consent (the local fake, speaking its documented shapes) → our callback → tokens stored encrypted →
the next `emberwatch nightly` syncs that person."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
from pathlib import Path

import requests
from typer.testing import CliRunner

from connectors.synthetic import SyntheticCohort
from connectors.token_vault import TokenCipher
from pipelines.cli import app
from pipelines.settings import load_settings
from storage.store import Store
from storage.tokens import DbTokenStore, token_rows
from tests.fake_google_health import FakeGoogleHealth, load_records
from tests.smtp_server import free_port
from tests.test_google_health import live_env  # noqa: F401  (fixture)
from tests.web_server import serve
from web.app import create_app

REPO = Path(__file__).resolve().parents[1]
LINK_KEY = "enrol-e2e-link-key-0123456789"


def test_invite_link_consent_callback_then_the_nightly_run_syncs_them(live_env, tmp_path, monkeypatch,  # noqa: F811
                                                                        cli_at_noon):
    cohort = SyntheticCohort(n_people=1, n_nights=20, seed=5)
    night = cohort.nights[-1]
    home, port = tmp_path / "home", free_port()
    for name, value in {"EMBERWATCH_HOME": str(home), "EMBERWATCH_LINK_KEY": LINK_KEY,
                        "EMBERWATCH_PUBLIC_URL": f"http://127.0.0.1:{port}"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("EMBERWATCH_SMTP_HOST", raising=False)
    settings = load_settings()
    with FakeGoogleHealth() as fake:
        load_records(fake, [r.model_copy(update={"person_id": "g01"})
                            for r in cohort.records(cohort.people[0].person_id)])
        with Store(settings.db_path) as store:
            store.add_person("g01", "gia@example.org", "Europe/London", "google-health", {
                "api_base": fake.base_url, "authorize_url": fake.base_url + "/o/oauth2/v2/auth",
                "token_url": fake.base_url + "/token"})

        invited = CliRunner().invoke(app, ["invite", "g01"])
        assert invited.exit_code == 0, invited.output
        [eml] = (home / "outbox").glob("*.eml")
        note = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert note["Subject"] == "Welcome to emberwatch"
        connect = re.search(r"http://127\.0\.0\.1:\d+/me/\S+/connect", note.get_body(("plain",)).get_content())[0]

        with serve(create_app(settings), port=port):
            # The browser's path: our redirect to the consent page, its redirect back to our callback.
            answer = requests.get(connect, timeout=30)
            assert answer.status_code == 200, answer.text
            assert [r.status_code for r in answer.history] == [303, 302]
            assert answer.history[0].headers["Location"].startswith(fake.base_url + "/o/oauth2/v2/auth?")
            page = " ".join(re.sub(r"<[^>]+>", " ", answer.text).split())
            assert "Your watch is connected" in page
            assert "Sleep shared Heart shared Activity shared" in page
            # The callback's state works once: a replay changes nothing.
            replayed = requests.get(answer.history[-1].headers["Location"], timeout=30)
            assert replayed.status_code == 410

        [(blob, scopes)] = token_rows(settings.db_path, "SELECT token_ciphertext, granted_scopes FROM oauth_tokens "
                                      "WHERE person_id = 'g01' AND source = 'google-health'")
        stored = DbTokenStore(settings.db_path, TokenCipher()).load("g01", "google-health")
        assert stored is not None and stored.token["refresh_token"].encode() not in bytes(blob)  # encrypted at rest
        assert "sleep.readonly" in scopes

        env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        nightly = subprocess.run([sys.executable, "-m", "pipelines.cli", "nightly", "--date", night.isoformat()],
                                 cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    with Store(settings.db_path) as store:
        synced = store.query_rows("SELECT count(*), max(night_date) FROM sleep_sessions WHERE person_id = 'g01'")[0]
        assert synced[0] >= 3 and synced[1] == night
        assert store.person("g01").status == "active"
