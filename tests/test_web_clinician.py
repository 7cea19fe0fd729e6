"""As a clinician would: the demo's real emails link to a live door on loopback; in headless Chromium the person
opens their page from a real .eml, changes the detail, and the next email follows; one-click unsubscribe stops
the emails; a tampered link changes nothing. Also writes the README's screenshots of the page
(`python -m tests.test_web_clinician` rewrites only those)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests

from pipelines.settings import load_settings
from storage.store import Store
from tests.smtp_server import free_port
from tests.test_compose import SHELL_COMMAND
from tests.test_email_browser import SCREENSHOT_DIR, chromium
from tests.web_server import serve
from web.app import create_app

REPO = Path(__file__).resolve().parents[1]
LINK_KEY = "clinician-e2e-link-key-0123456789"
PEOPLE, NIGHTS = 2, 35  # the cohort starts 2026-07-01: the last night is 2026-08-04, a Tuesday
AFTER_THE_DEMO = datetime(2026, 8, 5, 9, 0, tzinfo=UTC)  # the door's clock: the morning after the last night
PAGE_SHOTS = {"page-375": 375, "page-800": 800}


def emberwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def read_eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def ledger(home: Path, person_id: str) -> list[tuple[str, str, bytes | None]]:
    with Store(home / "emberwatch.duckdb") as store:
        return [(r[0], r[1], bytes(r[2]) if r[2] is not None else None) for r in store.query_rows(
            "SELECT kind, period_key, message_bytes FROM email_ledger WHERE person_id = ? ORDER BY queued_at",
            [person_id])]


def run_demo(folder: Path, people: int, nights: int) -> tuple[Path, int, dict[str, str]]:
    """The real demo (nightly and weekly flows) into `folder`, its email links pointing at a door on `port`."""
    home, port = folder / "home", free_port()
    env = {**os.environ, "EMBERWATCH_HOME": str(home), "EMBERWATCH_PUBLIC_URL": f"http://127.0.0.1:{port}",
           "EMBERWATCH_LINK_KEY": LINK_KEY, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("EMBERWATCH_SMTP_HOST", None)
    emberwatch(env, "demo", "--people", str(people), "--nights", str(nights))
    return home, port, env


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("clinician"), PEOPLE, NIGHTS)


def test_a_clinician_shapes_their_emails_from_a_real_email(demo_home):
    from playwright.sync_api import sync_playwright

    binary = chromium()
    home, port, env = demo_home
    settings = load_settings(home=home, public_url=f"http://127.0.0.1:{port}", link_key=LINK_KEY)
    digests = sorted(p for p in (home / "outbox").glob("*.eml")
                     if read_eml(p)["To"] == "c01@clinic.example" and read_eml(p)["Subject"] == "Your weekly check-in")
    latest = read_eml(digests[-1])
    text = latest.get_body(("plain",)).get_content()
    assert not SHELL_COMMAND.search(text)  # links, not commands
    page_url = re.search(rf"http://127\.0\.0\.1:{port}/me/\S+", text).group(0)
    unsubscribe_url = latest["List-Unsubscribe"].strip("<>")
    assert latest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "What the numbers say" not in text  # minimal until the person says otherwise

    with serve(create_app(settings, clock=lambda: AFTER_THE_DEMO), port=port):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 375, "height": 900})
            page.goto(page_url)
            assert page.title() == "Your emberwatch page · emberwatch"
            page.get_by_label("Numbers: your values against your usual").check()
            page.get_by_role("button", name="Save my choices").click()
            assert "Saved. Your next email follows these choices." in page.inner_text("main")
            assert page.get_by_label("Numbers: your values against your usual").is_checked()
            browser.close()

        # The next check-in (the real weekly flow) shows the numbers the person asked for.
        emberwatch(env, "weekly", "--date", "2026-08-10")
        kind, period, body = ledger(home, "c01")[-1]
        assert (kind, period) == ("digest", "2026-W32")
        new_digest = email.message_from_bytes(body, policy=email.policy.default)
        assert "What the numbers say, compared with your usual" in new_digest.get_body(("plain",)).get_content()

        # A tampered link: a plain 4xx page, nothing changed.
        with Store(home / "emberwatch.duckdb") as store:
            before = store.table_counts()
        tampered = requests.get(page_url[:-3] + "xyz", timeout=10)
        assert tampered.status_code == 403 and "Traceback" not in tampered.text
        with Store(home / "emberwatch.duckdb") as store:
            assert store.table_counts() == before

        # What a mail client's unsubscribe button sends (RFC 8058).
        stopped = requests.post(unsubscribe_url, data="List-Unsubscribe=One-Click", timeout=10,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert stopped.status_code == 200

    shown = json.loads(emberwatch(env, "person", "show", "c01", "--json").stdout)
    assert (shown["person_id"], shown["email"], shown["emails"]) == ("c01", "c01@clinic.example", "stopped")
    assert {"timezone", "source"} <= shown.keys()
    emberwatch(env, "weekly", "--date", "2026-08-17")
    assert [row[:2] for row in ledger(home, "c01")][-1] == ("digest", "2026-W32")  # nothing further for c01
    assert ("digest", "2026-W33") in [row[:2] for row in ledger(home, "c02")]  # the other person still gets theirs


def write_page_screenshots(binary: str, home: Path, port: int, out_dir: Path = SCREENSHOT_DIR) -> list[Path]:
    """The person's page at phone and desktop widths, from the demo's data."""
    from playwright.sync_api import sync_playwright

    settings = load_settings(home=home, public_url=f"http://127.0.0.1:{port}", link_key=LINK_KEY)
    text = read_eml(sorted((home / "outbox").glob("*.eml"))[-1]).get_body(("plain",)).get_content()
    page_url = re.search(rf"http://127\.0\.0\.1:{port}/me/\S+", text).group(0)
    written = []
    with serve(create_app(settings, clock=lambda: AFTER_THE_DEMO), port=port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        for name, width in PAGE_SHOTS.items():
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(page_url)
            target = out_dir / f"{name}.png"
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
        browser.close()
    return written


def test_the_page_reads_at_375_px_without_sideways_scrolling_and_by_keyboard(demo_home):
    from playwright.sync_api import sync_playwright

    binary = chromium()
    home, port, _ = demo_home
    settings = load_settings(home=home, public_url=f"http://127.0.0.1:{port}", link_key=LINK_KEY)
    text = read_eml(sorted((home / "outbox").glob("*.eml"))[-1]).get_body(("plain",)).get_content()
    page_url = re.search(rf"http://127\.0\.0\.1:{port}/me/\S+", text).group(0)
    with serve(create_app(settings, clock=lambda: AFTER_THE_DEMO), port=port), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 375, "height": 800})
        page.goto(page_url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        # Every form control has a label a screen reader announces.
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select')]
            .filter(el => !el.labels || el.labels.length === 0).map(el => el.name)""")
        assert unlabelled == []
        # Tab through the page: every control is reached, in order, without a mouse.
        reached = []
        for _ in range(40):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.textContent.trim() || document.activeElement.name"))
        assert "Save my choices" in reached and "Email me a link to delete all my data" in reached
        # Text contrast (WCAG 2.x relative luminance) of every element that shows text, against the first opaque
        # background behind it.
        ratios = page.evaluate(CONTRAST_JS)
        assert ratios and min(r for _, r in ratios) >= 4.5, sorted(ratios, key=lambda x: x[1])[:3]
        browser.close()


CONTRAST_JS = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                                      .reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                               if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
  return [...document.querySelectorAll('body *')]
    .filter(el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
    .map(el => { const a = lum(rgb(getComputedStyle(el).color).slice(0, 3)), b = lum(background(el));
                 return [el.tagName, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
}"""


def test_readme_page_screenshots_are_committed():
    for name in PAGE_SHOTS:
        path = SCREENSHOT_DIR / f"{name}.png"
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"run python -m {__name__}"


if __name__ == "__main__":  # pragma: no cover
    import tempfile

    work, port, _ = run_demo(Path(tempfile.mkdtemp()), PEOPLE, NIGHTS)
    for path in write_page_screenshots("/usr/bin/chromium", work, port):
        print(path)


@pytest.fixture(scope="module")
def one_person_demo(tmp_path_factory):
    """One person (and the demo's three wearers of other devices) over four weeks, on its own (the test above
    changes its people): the last digest is W30."""
    return run_demo(tmp_path_factory.mktemp("check-in"), 1, 28)


def test_the_weekly_question_answered_in_a_browser_shows_in_the_next_check_in(one_person_demo):
    from playwright.sync_api import sync_playwright

    binary = chromium()
    home, port, env = one_person_demo
    settings = load_settings(home=home, public_url=f"http://127.0.0.1:{port}", link_key=LINK_KEY)
    latest = read_eml(sorted(p for p in (home / "outbox").glob("*.eml")  # c01's: the device wearers get theirs
                             if read_eml(p)["Subject"] == "Your weekly check-in" and "c01@" in read_eml(p)["To"])[-1])
    text = latest.get_body(("plain",)).get_content()
    assert "How drained did this week leave you?" in " ".join(text.split())
    quite = re.search(r"^Quite: (\S+)$", text, re.MULTILINE).group(1)
    sunday = date(2026, 7, 26)  # the week that digest is about: Monday 20 to Sunday 26 July
    with Store(home / "emberwatch.duckdb") as store:
        assert store.query_rows("SELECT count(*) FROM check_ins")[0][0] == 0

    with serve(create_app(settings, clock=lambda: datetime(2026, 7, 28, 8, 0, tzinfo=UTC)), port=port):
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=binary, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 375, "height": 800})
            page.goto(quite)  # what opening the button does: a page, nothing recorded yet
            assert page.get_by_label("Quite").is_checked()
            with Store(home / "emberwatch.duckdb") as store:
                assert store.query_rows("SELECT count(*) FROM check_ins")[0][0] == 0
            page.get_by_role("button", name="Save my answer").click()
            assert "Your answer is saved" in page.inner_text("main")
            page.get_by_label("Well", exact=True).check()
            page.get_by_role("button", name="Save my answer").click()
            assert "Both answers are saved" in page.inner_text("main")
            browser.close()

    with Store(home / "emberwatch.duckdb") as store:
        stored = store.query_rows("SELECT person_id, report_date, scale, value, source FROM check_ins ORDER BY scale")
    assert stored == [("c01", sunday, "week_drained", 4.0, "weekly-email"),
                      ("c01", sunday, "week_sleep", 4.0, "weekly-email")]
    emberwatch(env, "weekly", "--date", "2026-08-03")  # the next check-in: the week of 27 July
    kind, period, body = ledger(home, "c01")[-1]
    assert (kind, period) == ("digest", "2026-W31")
    next_text = " ".join(email.message_from_bytes(body, policy=email.policy.default).get_body(
        ("plain",)).get_content().split())
    assert ("About the week before, you said it left you quite drained and that you slept well. "
            "Thank you for telling us.") in next_text
