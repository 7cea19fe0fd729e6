"""Every email variant in headless Chromium at 375 px and 800 px: no horizontal overflow. Also makes the README's
screenshots (`python -m tests.test_email_browser` rewrites docs/screenshots/).

Chromium is Debian's `chromium` package; .ci/run installs it. Without it the test skips locally with a reason,
and fails in CI (the `CI` environment variable set), where a missing browser must not pass silently.
"""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.compose import DOOR_NOTES, compose_alert, compose_digest, compose_door_note, to_email_message
from alerts.message_types import MessageSettings, Recipient
from alerts.transport import viewable_html
from tests.test_charts import builder as chart_builder
from tests.test_compose import ALERTS, DIGESTS, LINKS

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT_DIR = REPO / "docs" / "screenshots"
WIDTHS = (375, 800)
DETAILS = ("minimal", "numbers", "charts")
SETTINGS = MessageSettings()
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars", "--mute-audio",
)
# name -> (kind, variant, detail, width, height): the main variants shown in the README.
SCREENSHOTS = {
    "alert-minimal-375": ("alert", "both", "minimal", 375, 1500),
    "alert-numbers-800": ("alert", "persisting_week", "numbers", 800, 1250),
    "digest-charts-375": ("digest", "replayed", "charts", 375, 2900),
    "digest-charts-800": ("digest", "replayed", "charts", 800, 2200),
    "digest-warming-up-375": ("digest", "warming_up", "minimal", 375, 1350),
}


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("Chromium is missing in CI: .ci/run installs Debian's chromium package before `make test`.")
    pytest.skip("Chromium is not installed (apt-get install chromium); the browser check runs in CI.")


def variant_html(kind: str, name: str, detail: str) -> str:
    """The HTML body as a mail client gets it, with the CID images inlined as data: URIs (as the outbox does)."""
    recipient = Recipient(person_id="c01", email="ana@example.org", tz_name="Europe/London", detail_level=detail,
                          links=LINKS)
    charts = chart_builder(None) if detail == "charts" else None
    if kind == "alert":
        composed = compose_alert(recipient, ALERTS[name][0], SETTINGS, charts=charts)
    else:
        composed = compose_digest(recipient, DIGESTS[name][0], SETTINGS, charts=charts)
    msg = to_email_message(composed, recipient, SETTINGS, f"<{kind}.{name}.{detail}@emberwatch.local>",
                           datetime(2024, 5, 3, 6, 30, tzinfo=UTC))
    return viewable_html(msg)


def replayed_week_html(detail: str) -> str:
    """A weekly check-in of a real replayed week (synthetic cohort, seed 7, night by night through the nightly
    steps), composed as the weekly run composes it: the words and the charts come from the same nights."""
    import tempfile

    from connectors.synthetic import SyntheticCohort
    from pipelines.settings import Settings
    from pipelines.steps import compose_weekly, recipient as recipient_of
    from alerts.digest import build_week_summary
    from storage.store import Store
    from tests.test_pipeline import replay

    cohort = SyntheticCohort(n_people=2, n_nights=63, seed=7)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), link_key="screenshot-link-key-0123456789",
                            public_url="https://emberwatch.example.org")
        with Store(settings.db_path) as store:
            for p in cohort.people:
                store.add_person(p.person_id, p.email, p.tz_name, "synthetic",
                                 {"n_people": 2, "n_nights": 63, "seed": 7}, detail_level=detail)
            replay(store, cohort, settings, cohort.nights)
            person = store.person(cohort.people[0].person_id)
            monday = [n for n in cohort.nights if n.isoweekday() == 1][-1]
            summary = build_week_summary(store, person.person_id, monday - timedelta(days=7))
            at = datetime.combine(monday, datetime.min.time(), UTC) + timedelta(hours=6, minutes=30)
            to = recipient_of(person)
            to = Recipient(to.person_id, to.email, to.tz_name, detail, LINKS)
            composed = compose_weekly(store, person, summary, settings, at)(to, SETTINGS)
            msg = to_email_message(composed, to, SETTINGS, "<digest.replayed@emberwatch.local>", at)
    return viewable_html(msg)


def door_note_html(kind: str) -> str:
    """A door note as a mail client gets it (no health value at any level, so one detail level)."""
    recipient = Recipient(person_id="c01", email="ana@example.org", tz_name="Europe/London", detail_level="minimal",
                          links=LINKS)
    composed = compose_door_note(kind, recipient, LINKS.page + "/connect?source=oura", SETTINGS, "Oura ring")
    msg = to_email_message(composed, recipient, SETTINGS, f"<door.{kind}@emberwatch.local>",
                           datetime(2024, 5, 3, 6, 30, tzinfo=UTC))
    return viewable_html(msg)


def all_variants() -> dict[str, str]:
    out = {}
    for detail in DETAILS:
        for name in sorted(ALERTS):
            out[f"alert/{name}/{detail}"] = variant_html("alert", name, detail)
        for name in sorted(DIGESTS):
            out[f"digest/{name}/{detail}"] = variant_html("digest", name, detail)
    for kind in sorted(DOOR_NOTES):
        out[f"door/{kind}"] = door_note_html(kind)
    return out


MEASURE_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
{frames}
<pre id="result"></pre>
<script>
window.addEventListener("load", () => {{
  const rows = [];
  for (const frame of document.querySelectorAll("iframe")) {{
    const doc = frame.contentDocument;
    const root = doc.documentElement;
    const images = [...doc.images].map(i => [i.complete && i.naturalWidth > 0, i.getBoundingClientRect().right]);
    rows.push({{id: frame.id, width: root.clientWidth, scrollWidth: root.scrollWidth,
                bodyScrollWidth: doc.body.scrollWidth, images}});
  }}
  document.getElementById("result").textContent = "RESULT" + JSON.stringify(rows) + "END";
}});
</script></body></html>"""


def run_chromium(binary: str, args: list[str], timeout_s: float = 60) -> str:
    with tempfile.TemporaryDirectory(prefix="emberwatch-chromium-") as profile:
        done = subprocess.run(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def test_every_variant_fits_375_and_800_px_without_horizontal_overflow(tmp_path):
    binary = chromium()
    variants = all_variants()
    frames = []
    for width in WIDTHS:
        for key, html in variants.items():
            frames.append(
                f'<iframe id="{width}:{key}" style="width:{width}px;height:400px;border:0;display:block" '
                f'srcdoc="{html_lib.escape(html, quote=True)}"></iframe>'
            )
    page = tmp_path / "measure.html"
    page.write_text(MEASURE_PAGE.format(frames="\n".join(frames)), encoding="utf-8")
    dom = run_chromium(binary, ["--virtual-time-budget=10000", "--window-size=1000,800", "--dump-dom",
                                page.as_uri()])
    match = re.search(r"RESULT(.*?)END", html_lib.unescape(dom), re.S)
    assert match, "the measuring script did not run: " + dom[-500:]
    rows = json.loads(match.group(1))
    assert len(rows) == len(variants) * len(WIDTHS) == (30 + 8) * 2  # 30 alerts and digests, 8 door notes
    for row in rows:
        width = int(row["id"].split(":")[0])
        assert row["width"] == width, row
        assert row["scrollWidth"] <= width and row["bodyScrollWidth"] <= width, f"horizontal overflow: {row}"
        for loaded, right in row["images"]:
            assert loaded and right <= width, f"chart image not loaded or too wide: {row}"
    charts = [row for row in rows if row["id"].endswith("/charts")]
    assert all(len(row["images"]) == 3 for row in charts)


def test_readme_screenshots_are_committed():
    for name in SCREENSHOTS:
        path = SCREENSHOT_DIR / f"{name}.png"
        assert path.is_file(), f"{path} is missing: run `python -m tests.test_email_browser`"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def write_screenshots(binary: str, out_dir: Path = SCREENSHOT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, variant, detail, width, height) in SCREENSHOTS.items():
            page = Path(tmp) / f"{name}.html"
            # The check-ins with charts are real replayed weeks, so each sentence is true of the nights drawn.
            html = replayed_week_html(detail) if variant == "replayed" else variant_html(kind, variant, detail)
            page.write_text(html, encoding="utf-8")
            target = out_dir / f"{name}.png"
            run_chromium(binary, [f"--window-size={width},{height}", f"--screenshot={target}",
                                  "--virtual-time-budget=5000", page.as_uri()])
            _crop_trailing_background(target)
            written.append(target)
    return written


def _crop_trailing_background(path: Path, margin_px: int = 24) -> None:
    """Cut the empty page colour below the email (the window is taller than any variant)."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    background = rgb.getpixel((0, rgb.height - 1))
    bottom = rgb.height
    while bottom > 1 and all(rgb.getpixel((x, bottom - 1)) == background for x in range(0, rgb.width, 3)):
        bottom -= 1
    rgb.crop((0, 0, rgb.width, min(rgb.height, bottom + margin_px))).save(path, optimize=True)


if __name__ == "__main__":  # pragma: no cover
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise SystemExit("Install Chromium first (apt-get install chromium).")
    for path in write_screenshots(binary):
        print(path.relative_to(REPO))
