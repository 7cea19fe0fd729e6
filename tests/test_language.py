"""The language check: it finds the banned words, it can fail, and the real templates and phrases pass it."""

from __future__ import annotations

import shutil
from datetime import date

import pytest
from jinja2 import Environment, FileSystemLoader, StrictUndefined

import alerts.compose as compose
from alerts.language import (
    TEMPLATE_DIR,
    BannedLanguageError,
    check_message,
    check_template_sources,
    find_banned,
    visible_text,
)
from alerts.message_types import AlertExplanation, FeatureMove, MessageSettings, Recipient
from alerts.strategies import STRATEGIES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We cannot diagnose anything.", ["diagnose"]),
        ("No DIAGNOSIS here", ["diagnosis"]),
        ("a sleep disorder", ["disorder"]),
        ("disordered sleep", ["disordered"]),
        ("signs of depression", ["depression"]),
        ("an anxiety disorder", ["anxiety disorder"]),
        ("possible insomnia", ["insomnia"]),
        ("Burnout detected!", ["burnout detected"]),
        ("your burnout\nrisk", ["burnout risk"]),
        ("abnormal nights", ["abnormal"]),
        ("you are failing", ["failing"]),
        ("poor sleep", ["poor"]),
        ("you slept poorly", ["poorly"]),
        ("poorer recovery", ["poorer"]),
        ("your patients", ["patients"]),
        ("be patient with yourself", ["patient"]),
        ("symptoms of stress", ["symptoms"]),
        ("your sleep score", ["score"]),
        ("you scored low", ["scored"]),
        ("You must rest.", ["you must"]),
        ("you should  sleep", ["you should"]),
        ("You need to stop", ["you need to"]),
        ("you have to", ["you have to"]),
        ("a five-night streak", ["streak"]),
        ("you slept less than most people", ["than most people"]),
        ("poor sleep and a poor week, you should rest", ["poor", "you should"]),
    ],
)
def test_find_banned_catches_words_and_their_inflections(text, expected):
    assert find_banned(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Over the last few nights, you slept a little less than your usual.",
        "Impatient for the weekend?",  # word boundaries: "impatient" is not "patient"
        "A scoreboard",  # not a score of you
        "Self-care doesn't always have to feel good in the moment.",  # "have to" without "you"
        "compared with your usual, this week",
        "You might try a short walk.",
    ],
)
def test_find_banned_leaves_kind_wording_alone(text):
    assert find_banned(text) == []
    check_message(text)


def test_check_message_fails_with_the_words_and_a_snippet():
    with pytest.raises(BannedLanguageError) as caught:
        check_message(
            "Over the last few nights your sleep was poor, and you should rest more.", source="sample"
        )
    error = caught.value
    assert error.words == ["poor", "you should"]
    assert "sleep was poor" in error.snippet
    assert "sample" in str(error) and "poor" in str(error)


def test_real_templates_pass_the_source_check():
    checked = {p.name for p in check_template_sources()}
    assert {
        "alert.txt.j2",
        "alert.html.j2",
        "digest.txt.j2",
        "digest.html.j2",
        "_footer.txt.j2",
        "_footer.html.j2",
    } <= checked


@pytest.fixture
def planted_templates(tmp_path):
    """A copy of the real templates with one banned word planted in the alert's text template."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATE_DIR, copy)
    alert_txt = copy / "alert.txt.j2"
    alert_txt.write_text(
        alert_txt.read_text(encoding="utf-8").replace(
            "{{ observation | wrap }}", "{{ observation | wrap }} Your recovery looks poor."
        ),
        encoding="utf-8",
    )
    return copy


def test_source_check_fails_on_a_planted_word(planted_templates):
    with pytest.raises(BannedLanguageError) as caught:
        check_template_sources(planted_templates)
    assert caught.value.words == ["poor"]
    assert caught.value.source == "alert.txt.j2"


def test_composition_refuses_to_send_a_planted_word(planted_templates, monkeypatch):
    env = Environment(
        loader=FileSystemLoader(planted_templates),
        autoescape=lambda name: name is not None and ".html" in name,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["wrap"] = compose._wrap
    env.filters["wrap_item"] = compose._wrap_item
    monkeypatch.setattr(compose, "template_environment", lambda: env)
    explanation = AlertExplanation(
        person_id="c01",
        night_date=date(2024, 5, 3),
        domains=("sleep",),
        window_nights=(),
        flagged_nights=(),
        moves=(FeatureMove("tst_min", "down", True, -1.5, 420.0, 380.0, "min"),),
        baseline_nights=40,
        persisting_nights=3,
    )
    recipient = Recipient(person_id="c01", email="ana@example.org", tz_name="Europe/London")
    with pytest.raises(BannedLanguageError, match="poor"):
        compose.compose_alert(recipient, explanation, MessageSettings())


def test_every_strategy_line_and_phrase_is_clean_and_offered_not_prescribed():
    lines = [line for strategy in STRATEGIES.values() for line in strategy.lines]
    phrases = [
        *compose.MOVE_PHRASES.values(),
        *compose.WENT_WELL_PHRASES.values(),
        *compose.DOMAIN_FALLBACK_PHRASES.values(),
    ]
    for text in lines + phrases:
        check_message(text.format(a="a little "), source=text)


def test_visible_text_drops_markup_and_styles_and_keeps_alt_text():
    html = (
        "<html><head><title>t</title><style>p{color:#123}</style></head>"
        '<body><p style="margin:0">It&#39;s <b>okay</b></p><img src="cid:x" alt="A chart"></body></html>'
    )
    assert visible_text(html) == "It's okay A chart"


def test_every_rendered_variant_at_every_detail_level_is_clean():
    """Each alert kind and digest state at minimal, numbers and charts (alt text of the real charts included)."""
    from tests.test_charts import builder
    from tests.test_compose import ALERTS, DIGESTS, LINKS

    checked = 0
    for detail in ("minimal", "numbers", "charts"):
        recipient = Recipient(person_id="c01", email="ana@example.org", tz_name="Europe/London", detail_level=detail,
                              links=LINKS)
        composed = [compose.compose_alert(recipient, a[0], MessageSettings(), charts=builder(a[0]))
                    for a in ALERTS.values()]
        composed += [compose.compose_digest(recipient, d[0], MessageSettings(), charts=builder(d[0]))
                     for d in DIGESTS.values()]
        for email_ in composed:
            for content in (email_.subject, email_.text, visible_text(email_.html)):
                assert find_banned(content) == [], content
            checked += 1
    assert checked == 3 * (len(ALERTS) + len(DIGESTS))
    for image in builder(None).values():
        check_message(image.alt, source="chart alt text")


def test_the_check_catches_imperatives_in_any_case():
    assert find_banned("You MUST rest. you Should sleep.") == ["you must", "you should"]
