"""Charts detail level: data read from the store, PNGs drawn by matplotlib, embedded by Content-ID with alt text."""

from __future__ import annotations

import math
from functools import lru_cache
import re
import struct
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from alerts.chart_data import CHART_FEATURES, ChartSeries, load_series
from alerts.charts import VIEWS, alt_text, render_charts
from alerts.compose import compose_alert, compose_digest, to_email_message
from alerts.language import check_message, visible_text
from alerts.message_types import MessageSettings, Recipient
from tests.test_compose import (ALERTS, DIGESTS, LINKS, assert_clean_language, assert_footer,
                                assert_three_beats)

SETTINGS = MessageSettings()
LAST_NIGHT = date(2024, 5, 3)
CHARTS = Recipient(person_id="c01", email="ana@example.org", tz_name="Europe/London", detail_level="charts",
                   links=LINKS)


def series(feature: str, recent_shift: float = 0.0, band: bool = True) -> ChartSeries:
    """Six weeks of nights around a usual value; the last week moved by `recent_shift`."""
    usual = {"tst_min": 425.0, "resting_hr_bpm": 58.0, "ln_rmssd": 3.8}[feature]
    wobble = {"tst_min": 15.0, "resting_hr_bpm": 1.0, "ln_rmssd": 0.05}[feature]
    nights = tuple(LAST_NIGHT - timedelta(days=d) for d in range(41, -1, -1))
    values = tuple(usual + wobble * math.sin(i) + (recent_shift if i >= 35 else 0.0) for i in range(42))
    spread = 2 * wobble
    return ChartSeries("c01", feature, nights[0], LAST_NIGHT, nights, values,
                       usual - spread if band else None, usual if band else None, usual + spread if band else None, 48)


SERIES = [series("tst_min", -60.0), series("resting_hr_bpm", 5.0), series("ln_rmssd", -0.2)]


@lru_cache(maxsize=1)
def _rendered():
    return render_charts(SERIES)


def builder(_subject):
    return _rendered()


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def test_charts_are_small_pngs_with_alt_text_in_words():
    images = render_charts(SERIES)
    assert list(images) == [VIEWS[s.feature].cid for s in SERIES]
    for image in images.values():
        assert png_size(image.png) == (560, 200)
        assert len(image.png) < 40_000  # small enough for an email
        check_message(image.alt)
    alts = [image.alt for image in images.values()]
    assert alts[0].startswith("A line chart of your sleep each night over the last six weeks, with your usual range")
    assert "sit mostly below that range" in alts[0]
    assert "sit mostly above that range" in alts[1]  # resting heart rate higher
    assert "sit mostly below that range" in alts[2]  # HRV lower, described in ms
    assert re.search(r"about \d+ ms to \d+ ms", alts[2])


def test_charts_are_deterministic():
    assert render_charts(SERIES) == render_charts(SERIES)


def test_a_chart_without_a_usual_yet_says_so():
    assert "still learning it" in alt_text(series("tst_min", band=False))


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_variant_with_charts_is_valid_mime_with_cid_images(name):
    expl, strategy_keys, humanity_kind, opener = ALERTS[name]
    composed = compose_alert(CHARTS, expl, SETTINGS, charts=builder(expl))
    assert_three_beats(composed, opener, humanity_kind, strategy_keys)
    assert_charts_email(composed)


@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_every_digest_variant_with_charts_is_valid_mime_with_cid_images(name):
    week, strategy_keys, humanity_kind, observation = DIGESTS[name]
    composed = compose_digest(CHARTS, week, SETTINGS, charts=builder(week))
    assert_three_beats(composed, observation, humanity_kind, strategy_keys)
    assert_charts_email(composed)


def assert_charts_email(composed) -> None:
    assert_footer(composed)
    assert_clean_language(composed)
    msg = to_email_message(composed, CHARTS, SETTINGS, "<x.1@emberwatch.local>", datetime(2024, 5, 3, 6, 30, tzinfo=UTC))
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    plain, related = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain" and plain.get_content_charset() == "utf-8"
    assert "The charts are in the HTML version of this email." in plain.get_content()
    assert len(plain.get_content().split()) > 120  # it reads on its own: the whole note, not a stub
    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.iter_parts()
    assert html_part.get_content_type() == "text/html"
    html = html_part.get_content()
    referenced = re.findall(r'src="cid:([^"]+)"', html)
    attached = [image["Content-ID"].strip("<>") for image in images]
    assert referenced == attached == [VIEWS[s.feature].cid for s in SERIES]
    for image in images:
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        png_size(image.get_content())
    alts = re.findall(r'<img [^>]*alt="([^"]+)"', html)
    assert len(alts) == 3 and all(a.startswith("A line chart of") for a in alts)
    assert "<h2" in html and "in pictures" in visible_text(html)
    assert not re.search(r"<img[^>]+src=\"https?:", html)  # no remote images, no tracking pixels


# ------------------------------------------------------------------------------------------------ from the store


def add_nights(store, person_id: str, first: date, nights: int, tst=lambda i: 420.0, rhr=lambda i: 58.0,
               ln_rmssd=lambda i: 3.8) -> None:
    given = ["person_id", "night_date", "tst_min", "resting_hr_bpm", "ln_rmssd", "day_sleep", "away_from_home",
             "valid_night"]
    # Other NOT NULL columns (flags added by later migrations) get a neutral value: false, 0 or ''.
    neutral = {"BOOLEAN": "false", "VARCHAR": "''"}
    extra = [(name, neutral.get(kind, "0")) for name, kind in store.query_rows(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'nightly_features' "
        "AND NOT is_nullable AND column_default IS NULL") if name not in given]
    columns = ", ".join(given + [name for name, _ in extra])
    values = ", ".join(["?, ?, ?, ?, ?, false, false, true"] + [value for _, value in extra])
    with store.cursor() as cur:
        for i in range(nights):
            cur.execute(f"INSERT INTO nightly_features ({columns}) VALUES ({values})",
                        [person_id, first + timedelta(days=i), tst(i), rhr(i), ln_rmssd(i)])


def test_chart_data_reads_six_weeks_and_the_usual_band_from_the_store(store):
    first = LAST_NIGHT - timedelta(days=99)
    add_nights(store, "c01", first, 100, tst=lambda i: 420.0 + (i % 5) * 20 - (120 if i >= 93 else 0))
    add_nights(store, "c02", first, 100, tst=lambda i: 300.0)  # someone else's nights never leak in
    got = {s.feature: s for s in load_series(store, "c01", LAST_NIGHT)}
    assert set(got) == set(CHART_FEATURES) - {"ln_sdnn"}  # RMSSD nights only: no SDNN chart
    tst = got["tst_min"]
    assert tst.nights[0] == LAST_NIGHT - timedelta(days=41) and tst.nights[-1] == LAST_NIGHT
    assert len(tst.values) == 42
    assert tst.baseline_nights == 60 and tst.band_mid == 460.0  # median of 420..500 in steps of 20; MAD 20
    assert tst.band_low == pytest.approx(460.0 - 1.4826 * 20) and tst.band_high == pytest.approx(460.0 + 29.652)
    # A flat resting HR has MAD 0: the band is the feature's floor (features/catalog.py), not a line.
    assert got["resting_hr_bpm"].band_high - got["resting_hr_bpm"].band_mid == pytest.approx(1.5)
    assert "below that range" in alt_text(tst)


def test_an_apple_watch_wearers_hrv_chart_is_drawn_from_sdnn_against_their_own_sdnn_usual(store):
    first = LAST_NIGHT - timedelta(days=99)
    # an Apple Watch: SDNN about 55 ms (ln 4.0), falling to about 33 ms (ln 3.5) in the last week; no RMSSD
    add_nights(store, "aw", first, 100, ln_rmssd=lambda i: None)
    with store.cursor() as cur:
        cur.execute("UPDATE nightly_features SET ln_sdnn = CASE WHEN night_date > ? THEN 3.5 ELSE 4.0 END, "
                    "sdnn_ms = exp(CASE WHEN night_date > ? THEN 3.5 ELSE 4.0 END) WHERE person_id = 'aw'",
                    [LAST_NIGHT - timedelta(days=7), LAST_NIGHT - timedelta(days=7)])
    got = {s.feature: s for s in load_series(store, "aw", LAST_NIGHT)}
    assert set(got) == {"tst_min", "resting_hr_bpm", "ln_sdnn"}  # one HRV chart, in the device's own metric
    sdnn = got["ln_sdnn"]
    assert sdnn.band_mid == 4.0 and len(sdnn.values) == 42
    assert alt_text(sdnn) == ("A line chart of your heart-rate variability (a sign of overnight recovery) over the "
                              "last six weeks, with your usual range shaded (about 50 ms to 59 ms). Over the last "
                              "week the nights sit mostly below that range.")
    images = render_charts(list(got.values()))
    assert list(images) == [VIEWS[f].cid for f in ("tst_min", "resting_hr_bpm", "ln_sdnn")]


def test_chart_data_leaves_out_sparse_features_and_draws_no_band_while_warming_up(store):
    add_nights(store, "c01", LAST_NIGHT - timedelta(days=9), 10)
    got = load_series(store, "c01", LAST_NIGHT)
    assert [s.band_mid for s in got] == [None, None, None]
    add_nights(store, "c03", LAST_NIGHT - timedelta(days=4), 5)
    assert load_series(store, "c03", LAST_NIGHT) == []


def test_the_pipeline_builds_charts_only_for_people_who_chose_them(store):
    from storage.store import Person
    from pipelines.steps import charts_for

    add_nights(store, "c01", LAST_NIGHT - timedelta(days=99), 100)
    charts = Person("c01", "a@example.org", "Europe/London", "test", {}, "active", "charts")
    numbers = Person("c01", "a@example.org", "Europe/London", "test", {}, "active", "numbers")
    assert charts_for(store, numbers, LAST_NIGHT) is None
    images = charts_for(store, charts, ALERTS["both"][0].night_date)
    assert len(images) == 3
    composed = compose_alert(CHARTS, ALERTS["both"][0], SETTINGS, charts=images)
    assert len(composed.images) == 3
    assert "within that range" in visible_text(composed.html)
