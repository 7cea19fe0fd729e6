"""The clinician's door over real HTTP (uvicorn on loopback): signed links, forms, one-click unsubscribe,
taking and erasing data behind emailed single-use links, and the "email me a link" form."""

from __future__ import annotations

import email
import email.policy
import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests

from pipelines.settings import load_settings
from pipelines.steps import links_for
from storage.clicks import ClickLog
from storage.store import Store
from tests.web_server import serve
from web.app import create_app

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LINK_KEY = "web-test-link-key-0123456789"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def door(tmp_path):
    """A home with two people and the door serving it; emails go to the outbox folder."""
    home = tmp_path / "home"
    settings = load_settings(home=home, link_key=LINK_KEY, public_url="http://door.test")
    with Store(settings.db_path) as store:
        store.add_person("c01", "ana@example.org", "Europe/London", "synthetic")
        store.add_person("c02", "ben@example.org", "Europe/Oslo", "synthetic")
    clock = Clock(NOW)
    with serve(create_app(settings, clock=clock)) as base:
        yield Door(settings, base, clock)


class Door:
    def __init__(self, settings, base: str, clock: Clock) -> None:
        self.settings, self.base, self.clock = settings, base, clock
        self.http = requests.Session()

    def link(self, person_id: str = "c01"):
        with Store(self.settings.db_path) as store:
            person = store.person(person_id)
        links = links_for(person, self.settings, self.clock.now)
        return type(links)(*(u.replace(self.settings.public_url, self.base) for u in vars(links).values()))

    def person(self, person_id: str = "c01"):
        with Store(self.settings.db_path) as store:
            return store.person(person_id)

    def rows(self) -> dict[str, int]:
        with Store(self.settings.db_path) as store:
            return store.table_counts()

    def form_token(self, html: str) -> str:
        return re.search(r'name="form_token" value="([^"]+)"', html).group(1)

    def page(self, person_id: str = "c01") -> tuple[str, str]:
        page_url = self.link(person_id).page
        response = self.http.get(page_url)
        assert response.status_code == 200, response.text
        return page_url, response.text

    def emails(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                for p in sorted(self.settings.outbox_dir.glob("*.eml"))]

    def link_in_last_email(self, pattern: str) -> str:
        text = self.emails()[-1].get_body(("plain",)).get_content()
        url = re.search(rf"{re.escape(self.settings.public_url)}({pattern}\S+)", text).group(1)
        return self.base + url


def visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_page_opens_from_an_email_link_and_says_where_things_stand(door):
    response = door.http.get(door.link().page)
    assert response.status_code == 200
    text = visible(response.text)
    assert "Your emberwatch page" in text
    assert "Still learning your usual" in text
    assert "On: minimal detail, 07:30-08:30 on Mon-Fri, your time (Europe/London)." in text
    assert "ana@example.org" not in response.text  # the page never shows (or leaks) the address


def test_every_page_carries_the_safety_headers(door):
    for response in (door.http.get(door.link().page), door.http.get(door.base + "/"),
                     door.http.get(door.base + "/me/forged")):
        headers = response.headers
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Cache-Control"] == "no-store"


def test_changing_the_detail_and_window_takes_effect_at_once(door):
    page_url, html = door.page()
    response = door.http.post(page_url + "/emails", data={
        "form_token": door.form_token(html), "detail_level": "numbers", "window_start": "08:00",
        "window_end": "09:00", "days": "Sun-Thu"}, allow_redirects=False)
    assert response.status_code == 303
    after = door.http.get(door.base + response.headers["Location"])
    assert "Saved. Your next email follows these choices." in visible(after.text)
    assert door.person().detail_level == "numbers"
    with Store(door.settings.db_path) as store:
        assert store.delivery_preferences("c01") == ("08:00-09:00", "Sun-Thu")
    assert door.person("c02").detail_level == "minimal"


@pytest.mark.parametrize("form_token", ["", "forged", "other-person"])
def test_a_form_without_its_own_token_changes_nothing(door, form_token):
    page_url, html = door.page()
    if form_token == "other-person":
        form_token = door.form_token(door.page("c02")[1])
    before = door.rows()
    response = door.http.post(page_url + "/stop", data={"form_token": form_token})
    assert response.status_code == 403
    assert "nothing was changed" in visible(response.text)
    assert door.person().status == "active" and door.rows() == before


@pytest.mark.parametrize("change", ["tampered", "wrong purpose", "cut short", "expired"])
def test_a_bad_link_gets_a_plain_4xx_page_and_changes_nothing(door, change):
    links = door.link()
    token = links.page.rsplit("/", 1)[1]
    if change == "tampered":
        url = links.page[:-2] + ("AA" if not links.page.endswith("AA") else "BB")
    elif change == "wrong purpose":
        url = door.base + "/me/" + links.unsubscribe.rsplit("/", 1)[1]
    elif change == "cut short":
        url = door.base + "/me/" + token[: len(token) // 2]
    else:
        door.clock.now = NOW + timedelta(days=61)
        url = links.page
    before = door.rows()
    response = door.http.get(url)
    assert response.status_code == (410 if change == "expired" else 403)
    assert "Traceback" not in response.text and "This link cannot be used" in response.text
    stop = door.http.post(url + "/stop", data={"form_token": "x"})
    assert stop.status_code in (403, 410)
    assert door.person().status == "active" and door.rows() == before


def test_one_click_unsubscribe_stops_at_once_but_a_get_only_asks(door):
    unsubscribe = door.link().unsubscribe
    shown = door.http.get(unsubscribe)  # what a mail scanner does
    assert shown.status_code == 200 and "Stop my emails" in shown.text
    assert door.person().status == "active"
    # What a mail client sends for RFC 8058: a POST with exactly this body, no cookies, no form token.
    response = requests.post(unsubscribe, data="List-Unsubscribe=One-Click",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert door.person().status == "stopped"
    assert door.person("c02").status == "active"


def test_a_post_to_the_unsubscribe_link_without_the_one_click_body_changes_nothing(door):
    response = door.http.post(door.link().unsubscribe, data={"something": "else"})
    assert response.status_code == 400
    assert door.person().status == "active"


def test_pause_until_a_date_then_emails_resume_after_it_by_themselves(door):
    from pipelines.people import resume_ended_pauses

    page_url, html = door.page()
    pause_page = door.http.get(page_url + "/pause")
    assert pause_page.status_code == 200 and door.person().status == "active"  # a GET changes nothing
    response = door.http.post(page_url + "/pause", data={"form_token": door.form_token(pause_page.text),
                                                        "until": "2026-12-20"})
    assert response.status_code == 200 and "Your emails are paused." in visible(response.text)
    assert (door.person().status, door.person().paused_until) == ("paused", date(2026, 12, 20))
    assert "Paused until Sunday 20 December 2026" in visible(door.page()[1])
    with Store(door.settings.db_path) as store:
        assert resume_ended_pauses(store, datetime(2026, 12, 20, 23, 0, tzinfo=UTC)) == []
        assert resume_ended_pauses(store, datetime(2026, 12, 21, 0, 30, tzinfo=UTC)) == ["c01"]
    assert (door.person().status, door.person().paused_until) == ("active", None)


def test_taking_your_data_needs_a_fresh_single_use_link_sent_to_your_own_address(door):
    page_url, html = door.page()
    response = door.http.post(page_url + "/data/export", data={"form_token": door.form_token(html)})
    assert "We have emailed you a link to download your data" in visible(response.text)
    [note] = door.emails()
    assert note["To"] == "ana@example.org" and note["Subject"] == "Your data from emberwatch"
    confirm_url = door.link_in_last_email("/confirm/export/")
    confirm_page = door.http.get(confirm_url)
    assert confirm_page.status_code == 200 and "Download my data" in confirm_page.text
    download = door.http.post(confirm_url, data={"form_token": door.form_token(confirm_page.text)})
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert "emberwatch-my-data/README.md" in names and "emberwatch-my-data/persons.csv" in names
    persons = zipfile.ZipFile(io.BytesIO(download.content)).read("emberwatch-my-data/persons.csv").decode()
    assert "c01" in persons and "c02" not in persons
    again = door.http.post(confirm_url, data={"form_token": door.form_token(confirm_page.text)})
    assert again.status_code == 410  # single use
    door.clock.now = NOW + timedelta(minutes=31)
    assert door.http.get(confirm_url).status_code == 410  # and short-lived


def test_a_page_link_alone_cannot_download_or_erase(door):
    page_token = door.link().page.rsplit("/", 1)[1]
    for kind in ("export", "erase"):
        response = door.http.get(f"{door.base}/confirm/{kind}/{page_token}")
        assert response.status_code == 403
    assert door.person().status == "active"


def test_erasing_your_data_deletes_everything_after_a_second_yes(door):
    old_links = door.link()
    page_url, html = door.page()
    door.http.post(page_url + "/data/erase", data={"form_token": door.form_token(html)})
    confirm_url = door.link_in_last_email("/confirm/erase/")
    confirm_page = door.http.get(confirm_url)
    assert "Delete all my data" in confirm_page.text and door.person().status == "active"
    response = door.http.post(confirm_url, data={"form_token": door.form_token(confirm_page.text)})
    assert response.status_code == 200 and "Your data is deleted" in response.text
    with Store(door.settings.db_path) as store:
        assert [p.person_id for p in store.people(active_only=False)] == ["c02"]
        assert store.query_rows("SELECT count(*) FROM deletions")[0][0] == 1
    assert ClickLog(door.settings.db_path).pending() == []
    assert door.http.get(page_url).status_code == 410  # the old page link leads nowhere now
    # opening the used link again says the deletion happened, never offers it afresh
    again = door.http.get(confirm_url)
    assert again.status_code == 410 and "Your data is deleted" in again.text and "Delete all my data" not in again.text
    # the other links of their old emails lead nowhere either, and nothing about them is recorded any more
    assert door.http.get(old_links.unsubscribe).status_code == 410
    assert door.http.post(old_links.unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 410
    assert ClickLog(door.settings.db_path).pending() == []
    # the confirmation note the door sent them (outside the ledger) left the outbox with everything else
    assert door.emails() == []


def test_a_stopped_person_can_still_ask_for_their_page_and_an_old_pause_link_does_not_restart_emails(door):
    page_url, html = door.page()
    door.http.post(page_url + "/stop", data={"form_token": door.form_token(html)})
    assert door.person().status == "stopped"

    pause_page = door.http.get(page_url + "/pause")
    assert "Your emails are stopped, so there is nothing to pause" in visible(pause_page.text)
    assert 'name="until"' not in pause_page.text
    posted = door.http.post(page_url + "/pause", data={"form_token": door.form_token(html), "until": ""})
    assert "nothing to pause" in visible(posted.text) and door.person().status == "stopped"

    # once every link they hold has expired, the door's form still reaches their page
    home = door.http.get(door.base + "/")
    door.http.post(door.base + "/link", data={"form_token": door.form_token(home.text), "email": "ana@example.org"})
    [note] = door.emails()
    assert note["Subject"] == "Your emberwatch page"
    assert door.http.get(door.link_in_last_email("/me/")).status_code == 200


def test_a_pause_until_a_day_that_has_passed_is_refused_with_a_way_back(door):
    page_url, html = door.page()
    refused = door.http.post(page_url + "/pause", data={"form_token": door.form_token(html), "until": "2026-12-01"})
    assert refused.status_code == 400 and "That date has already passed, so nothing was paused" in visible(refused.text)
    assert f'href="/me/{page_url.rsplit("/", 1)[1]}/pause"' in refused.text
    assert door.person().status == "active"


def test_a_link_that_no_longer_works_leads_to_asking_for_a_fresh_one_and_a_window_error_says_why(door):
    page_url, html = door.page()
    door.clock.now = NOW + timedelta(days=61)  # page links last 60 days
    expired = door.http.get(page_url)
    assert expired.status_code == 410 and "ask for a fresh one" in visible(expired.text)
    assert '<a href="/">Ask for a fresh link to your page</a>' in expired.text
    door.clock.now = NOW
    wrong = door.http.post(page_url + "/emails", data={
        "form_token": door.form_token(html), "detail_level": "minimal", "window_start": "05:30",
        "window_end": "06:30", "days": "Mon-Fri"})
    assert wrong.status_code == 400
    assert "emberwatch delivers between 06:00 and 22:00 local time" in visible(wrong.text)


def test_asking_for_a_link_answers_the_same_for_any_address_and_emails_only_the_enrolled(door):
    home = door.http.get(door.base + "/")
    token = door.form_token(home.text)
    known = door.http.post(door.base + "/link", data={"form_token": token, "email": "Ana@Example.org "})
    unknown = door.http.post(door.base + "/link", data={"form_token": token, "email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 200
    assert visible(known.text) == visible(unknown.text)
    [note] = door.emails()
    assert note["To"] == "ana@example.org" and note["Subject"] == "Your emberwatch page"
    assert door.http.get(door.link_in_last_email("/me/")).status_code == 200


def test_asking_for_links_is_rate_limited(door):
    token = door.form_token(door.http.get(door.base + "/").text)
    answers = [door.http.post(door.base + "/link", data={"form_token": token, "email": f"x{i}@example.org"})
               .status_code for i in range(7)]
    assert answers == [200] * 5 + [429] * 2


def test_a_click_while_the_database_is_held_is_kept_and_applied_before_the_next_send(door):
    from tests.test_writer import hold, wait_until_holding

    page_url, html = door.page()
    holder = hold(door.settings.db_path, "z01", 4)  # another process holds the database (the nightly run)
    wait_until_holding(holder)
    try:
        response = door.http.post(page_url + "/emails", data={
            "form_token": door.form_token(html), "detail_level": "charts", "window_start": "07:30",
            "window_end": "08:30", "days": "Mon-Fri"})
        assert response.status_code == 200
        assert "your choices apply before your next email" in visible(response.text)
    finally:
        assert holder.wait(timeout=60) == 0
    assert door.person().detail_level == "minimal"  # not applied yet: the database was busy
    assert len(ClickLog(door.settings.db_path).pending("c01")) == 1
    from pipelines.steps import apply_recorded_choices

    with Store(door.settings.db_path) as store:
        assert apply_recorded_choices(store, door.settings, NOW) == 1
    assert door.person().detail_level == "charts"
    assert ClickLog(door.settings.db_path).pending() == []


def test_a_choice_saved_while_the_database_was_held_shows_as_made_when_the_page_opens_again(door):
    from tests.test_writer import hold, wait_until_holding

    page_url, html = door.page()
    holder = hold(door.settings.db_path, "z01", 3)
    wait_until_holding(holder)
    try:
        saved = door.http.post(page_url + "/pause", data={"form_token": door.form_token(html), "until": ""})
        assert saved.status_code == 200 and "Saved" in visible(saved.text)
    finally:
        assert holder.wait(timeout=60) == 0
    assert door.person().status == "active"  # recorded, not applied yet
    _, after = door.page()
    assert "Paused until you start them again." in visible(after)
    assert door.person().status == "paused" and ClickLog(door.settings.db_path).pending() == []


def test_no_address_or_token_reaches_a_log_line(door, caplog):
    caplog.set_level("DEBUG")
    page_url, html = door.page()
    door.http.post(page_url + "/data/export", data={"form_token": door.form_token(html)})
    home = door.http.get(door.base + "/").text
    asked = door.http.post(door.base + "/link", data={"form_token": door.form_token(home), "email": "ana@example.org"})
    assert asked.status_code == 200 and len(door.emails()) == 2
    token = page_url.rsplit("/", 1)[1]
    # The server's side: everything but the test's own HTTP client (urllib3 logs the URLs it requests).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    assert caplog.records
    assert "ana@example.org" not in logged and token not in logged


def test_every_page_passes_the_language_check(door):
    from alerts.language import check_message, check_template_sources, visible_text

    assert len(check_template_sources(Path(__file__).resolve().parents[1] / "web" / "templates")) >= 7
    page_url, html = door.page()
    door.http.post(page_url + "/data/export", data={"form_token": door.form_token(html)})
    confirm = door.link_in_last_email("/confirm/export/")
    pages = [door.http.get(url) for url in (
        page_url, page_url + "/pause", door.base + "/", door.link().unsubscribe, confirm, door.base + "/nowhere",
        page_url[:-2] + "xx")]
    pages.append(door.http.post(door.link().unsubscribe, data={"List-Unsubscribe": "One-Click"}))
    for response in pages:
        check_message(visible_text(response.text), source=response.url)
    for note in door.emails():
        check_message(note.get_body(("plain",)).get_content(), source=note["Subject"])


def test_invite_emails_the_welcome_with_a_link_to_connect(tmp_path, monkeypatch, cli_at_noon):
    import json

    from typer.testing import CliRunner

    from pipelines.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("EMBERWATCH_HOME", str(home))
    monkeypatch.setenv("EMBERWATCH_LINK_KEY", LINK_KEY)
    monkeypatch.setenv("EMBERWATCH_PUBLIC_URL", "https://door.example.org")
    monkeypatch.delenv("EMBERWATCH_SMTP_HOST", raising=False)
    with Store(home / "emberwatch.duckdb") as store:
        store.add_person("g01", "gia@example.org", "Europe/Oslo", "google-health")
        store.add_person("p01", "pia@example.org", "Europe/Oslo", "fitbit-export")
    runner = CliRunner()
    first = runner.invoke(app, ["invite", "g01"])
    assert first.exit_code == 0 and "Invited g01" in first.output
    again = runner.invoke(app, ["invite", "g01"])
    assert again.exit_code == 0 and "already invited today" in again.output
    assert runner.invoke(app, ["invite", "p01"]).exit_code == 0
    notes = {m["To"]: m.get_body(("plain",)).get_content() for m in (
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in (home / "outbox").glob("*.eml"))}
    assert set(notes) == {"gia@example.org", "pia@example.org"}
    assert re.search(r"https://door\.example\.org/me/\S+/connect\b", notes["gia@example.org"])
    assert not re.search(r"/connect\b", notes["pia@example.org"])  # an export person has no watch to connect
    assert "Connect your watch" in notes["gia@example.org"]
    assert "Open your page" in notes["pia@example.org"]
    assert not re.search(r"\byour watch\b", notes["pia@example.org"])
    listed = json.loads(runner.invoke(app, ["person", "list", "--json"]).output)
    assert [(p["person_id"], p["emails"], p["source"]) for p in listed] == [
        ("g01", "active", "google-health"), ("p01", "active", "fitbit-export")]
    unknown = runner.invoke(app, ["person", "show", "nobody"])
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output


def test_a_silent_watch_gets_one_kind_note_until_data_comes_back(tmp_path):
    from connectors.records import SleepSession
    from pipelines.steps import NO_DATA_AFTER_NIGHTS, queue_no_data_notes

    settings = load_settings(home=tmp_path / "home", link_key=LINK_KEY, public_url="https://door.example.org")

    def sleep_on(store, night: date) -> None:
        start = datetime(night.year, night.month, night.day, 0, 0, tzinfo=UTC) - timedelta(hours=1)
        store.upsert_records([SleepSession(
            person_id="g01", source="google-health", source_session_id=f"s-{night}", night_date=night,
            start_utc=start, end_utc=start + timedelta(hours=7), tz_name="Europe/London", is_main_sleep=True,
            minutes_asleep=400, minutes_awake=20, time_in_bed_min=420, log_type="stages")])

    with Store(settings.db_path) as store:
        store.add_person("g01", "gia@example.org", "Europe/London", "google-health")
        store.add_person("x01", "xia@example.org", "Europe/London", "fitbit-export")
        sleep_on(store, date(2026, 12, 1))
        people = store.people()
        night = date(2026, 12, 1) + timedelta(days=NO_DATA_AFTER_NIGHTS - 1)
        assert queue_no_data_notes(store, people, night, settings, NOW) == 0  # three quiet nights: nothing yet
        night += timedelta(days=1)
        assert queue_no_data_notes(store, people, night, settings, NOW) == 1
        assert queue_no_data_notes(store, people, night + timedelta(days=3), settings, NOW) == 0  # no second note
        sleep_on(store, date(2026, 12, 9))  # data came back, then went quiet again
        assert queue_no_data_notes(store, people, date(2026, 12, 13), settings, NOW) == 1
        rows = store.query_rows("SELECT person_id, kind, period_key FROM email_ledger ORDER BY period_key")
    assert rows == [("g01", "no-data", "2026-12-01"), ("g01", "no-data", "2026-12-09")]


def test_a_click_survives_the_web_process_being_killed_right_after_it_answered(tmp_path):
    """`emberwatch web` as its own process; another process holds the database (as the nightly run does); the
    click is answered, the web process is SIGKILLed, and the next delivery run applies the click."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from pipelines.steps import apply_recorded_choices
    from tests.smtp_server import free_port
    from tests.test_writer import hold, wait_until_holding

    home, port = tmp_path / "home", free_port()
    settings = load_settings(home=home, link_key=LINK_KEY, public_url=f"http://127.0.0.1:{port}")
    with Store(settings.db_path) as store:
        store.add_person("c01", "ana@example.org", "Europe/London", "synthetic")
        person = store.person("c01")
    env = {**os.environ, "EMBERWATCH_HOME": str(home), "EMBERWATCH_LINK_KEY": LINK_KEY,
           "EMBERWATCH_PUBLIC_URL": settings.public_url}
    web = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "web", "--port", str(port)], env=env,
                           cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        page_url = links_for(person, settings, datetime.now(UTC)).page
        deadline = time.monotonic() + 60
        while True:
            try:
                html = requests.get(page_url, timeout=5).text
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and web.poll() is None, web.stderr.read()
                time.sleep(0.2)
        token = re.search(r'name="form_token" value="([^"]+)"', html).group(1)
        holder = hold(settings.db_path, "z01", 3)
        wait_until_holding(holder)
        answer = requests.post(page_url + "/stop", data={"form_token": token}, timeout=30)
        assert answer.status_code == 200 and "stopped" in answer.text
        os.kill(web.pid, signal.SIGKILL)  # right after answering: no shutdown, no flush
        web.wait(timeout=10)
        assert holder.wait(timeout=60) == 0
    finally:
        if web.poll() is None:
            web.kill()
    with Store(settings.db_path) as store:
        assert store.person("c01").status == "active"
        assert apply_recorded_choices(store, settings, datetime.now(UTC)) == 1
        assert store.person("c01").status == "stopped"


def test_a_new_detail_level_recomposes_the_email_still_waiting_to_go(door):
    from alerts.compose import compose_alert
    from alerts.nightly_alert import explanation_to_json
    from pipelines.steps import queue_composed
    from tests.test_compose import ALERTS

    explanation = ALERTS["both"][0]  # c01's alert for 2024-05-03
    with Store(door.settings.db_path) as store:
        with store.cursor() as cur:
            cur.execute("INSERT INTO alerts VALUES (?, ?, ?, ?, now())", [
                "c01", explanation.night_date, "sleep,recovery", explanation_to_json(explanation)])
        assert queue_composed(store, store.person("c01"), "alert", explanation.night_date.isoformat(),
                              door.settings, NOW, lambda to, ms: compose_alert(to, explanation, ms))
        [(message_id, before)] = store.query_rows("SELECT message_id, message_bytes FROM email_ledger")
    page_url, html = door.page()
    door.http.post(page_url + "/emails", data={"form_token": door.form_token(html), "detail_level": "numbers",
                                               "window_start": "07:30", "window_end": "08:30", "days": "Mon-Fri"})
    with Store(door.settings.db_path) as store:
        [(same_id, after)] = store.query_rows("SELECT message_id, message_bytes FROM email_ledger")
    text = lambda raw: email.message_from_bytes(bytes(raw), policy=email.policy.default).get_body(
        ("plain",)).get_content()
    assert same_id == message_id
    assert "What the numbers say" not in text(before) and "What the numbers say" in text(after)
