"""Composition: three beats, footer, banned words, no digits at `minimal`, values at `numbers`, MIME shape."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from alerts.compose import (
    DOOR_NOTES,
    compose_door_note,
    ALERT_SUBJECT,
    DIGEST_SUBJECT,
    compose_alert,
    compose_digest,
    describe_move,
    describe_value,
    format_clock,
    format_duration_min,
    observation_clauses,
    to_email_message,
    went_well_sentence,
)
from alerts.language import check_message, find_banned, visible_text
from alerts.message_types import AlertExplanation, FeatureMove, MessageSettings, Recipient, WeekSummary
from alerts.signed_links import LinkSigner, person_links
from alerts.strategies import STRATEGIES, choose_strategy, pick_line

SETTINGS = MessageSettings()
NIGHT = date(2024, 5, 3)
PUBLIC_URL = "https://emberwatch.example.org"
LINKS = person_links(PUBLIC_URL, LinkSigner(["test-link-key-0123456789"]), "c01", datetime(2024, 5, 3, 6, 45, tzinfo=UTC))
WEEK_START = date(2024, 4, 29)

TST_DOWN = FeatureMove("tst_min", "down", True, -1.6, 425.0, 370.0, "min")
WASO_UP = FeatureMove("waso_min", "up", True, 2.5, 22.0, 41.0, "min")
BEDTIME_LATER = FeatureMove("bedtime_min", "up", True, 1.8, 1385.0, 1420.0, "min after midnight")
RHR_UP = FeatureMove("resting_hr_bpm", "up", True, 2.4, 58.0, 62.0, "bpm")
HRV_DOWN = FeatureMove("ln_rmssd", "down", True, -1.3, 3.81, 3.61, "ln(ms)")

HUMANITY = {
    "pattern": "Many clinicians see this pattern during heavy weeks. It says nothing about how well you do "
    "your work.",
    "persisting": "Many clinicians see this pattern during long, heavy stretches. It says nothing about how "
    "well you do your work.",
    "steady": "Weeks rise and fall for everyone who does this work",
    "warming_up": "Everyone's usual is their own, which is why emberwatch only ever compares you with "
    "yourself.",
    "illness": "It says nothing about how well you do your work.",
}
FOOTER_PHRASES = (
    "Wellness information, not medical advice or therapy.",
    "Nobody watches these signals in real time.",
    f"If you are struggling, reach out to {SETTINGS.support_resource}.",
    "These emails are yours to shape.",
    "change how much detail they show and when they arrive, pause or stop them, and take or delete your data",
    "Pause them for a while",
    "Stop them",
)
# A shell command in an email is a feature that is not finished (the clinician never opens a terminal).
SHELL_COMMAND = re.compile(r"\bemberwatch\s+(person|forget|export|enroll|tag|backfill)\b|\s--[a-z]|<your id>")


def recipient(detail: str = "minimal") -> Recipient:
    return Recipient(person_id="c01", email="ana@example.org", tz_name="Europe/London", detail_level=detail,
                     links=LINKS)


def explanation(domains, moves, persisting_nights: int = 4, strategy: str = "") -> AlertExplanation:
    window = tuple(NIGHT - timedelta(days=i) for i in range(4, -1, -1))
    return AlertExplanation(
        person_id="c01",
        night_date=NIGHT,
        domains=tuple(domains),
        window_nights=window,
        flagged_nights=window[1:],
        moves=tuple(moves),
        baseline_nights=48,
        persisting_nights=persisting_nights,
        strategy=strategy,
    )


def summary(**overrides) -> WeekSummary:
    fields = dict(
        person_id="c01",
        week_start=WEEK_START,
        week_end=WEEK_START + timedelta(days=6),
        warming_up=False,
        valid_nights_total=60,
        nights_until_comparisons=0,
        valid_nights_this_week=6,
    )
    fields.update(overrides)
    return WeekSummary(**fields)


# name -> (explanation, expected strategy keys, humanity kind, observation opener)
ALERTS = {
    "sleep_only": (
        explanation(["sleep"], [TST_DOWN, WASO_UP]),
        {"boundaries"},
        "pattern",
        "Over the last few nights,",
    ),
    "recovery_only": (
        explanation(["recovery"], [RHR_UP, HRV_DOWN], 3),
        {"mindfulness"},
        "pattern",
        "Over the last few nights,",
    ),
    "both": (
        explanation(["sleep", "recovery"], [TST_DOWN, RHR_UP]),
        {"self_care"},
        "pattern",
        "Over the last few nights,",
    ),
    "persisting_week": (
        explanation(["sleep", "recovery"], [TST_DOWN, RHR_UP, HRV_DOWN], 10),
        {"supervision", "support_network"},
        "persisting",
        "For more than a week now,",
    ),
    "persisting_weeks": (
        explanation(["sleep", "recovery"], [TST_DOWN, BEDTIME_LATER, RHR_UP], 24),
        {"caseload"},
        "persisting",
        "For a few weeks now,",
    ),
}

# name -> (summary, expected strategy keys, humanity kind, observation phrase)
DIGESTS = {
    "warming_up": (
        summary(warming_up=True, valid_nights_total=5, nights_until_comparisons=9, valid_nights_this_week=5),
        {"self_compassion"},
        "warming_up",
        "It is still learning your usual",
    ),
    "week_went_well": (
        summary(
            moves=(TST_DOWN, RHR_UP),
            went_well=("ln_rmssd", "efficiency_pct"),
            sleep_flag_nights=2,
            recovery_flag_nights=1,
        ),
        {"self_care"},
        "pattern",
        "This week, you slept a little less than your usual",
    ),
    "week_nothing_went_well": (
        summary(moves=(WASO_UP,), sleep_flag_nights=3),
        {"boundaries"},
        "pattern",
        "This week, there was more time awake during the night",
    ),
    "week_steady": (
        summary(went_well=("tst_min", "resting_hr_bpm")),
        {"self_compassion"},
        "steady",
        "This week your sleep and overnight recovery stayed close to your usual.",
    ),
    "illness_explains_week": (
        summary(moves=(RHR_UP,), illness_explains_week=True, recovery_flag_nights=2),
        {"rest"},
        "illness",
        "fighting something off than like a heavy week; rest is the kind choice",
    ),
}


def flat(text: str) -> str:
    return " ".join(text.split())


def seen(composed) -> str:
    """Everything a reader sees: subject, plain text and the HTML's visible text (the footer's link addresses,
    which carry signed tokens, left out)."""
    text = composed.text
    for url in (LINKS.page, LINKS.pause, LINKS.unsubscribe):
        text = text.replace(url, "")
    return flat(" ".join((composed.subject, text, visible_text(composed.html))))


def assert_three_beats(composed, observation: str, humanity_kind: str, strategy_keys: set[str]) -> None:
    for body in (flat(composed.text), visible_text(composed.html)):
        assert observation in body
        assert HUMANITY[humanity_kind] in body
        assert "One small thing, only if it helps:" in body
        lines = [line for key in strategy_keys for line in STRATEGIES[key].lines]
        assert any(line in body for line in lines), f"no step from {strategy_keys} in: {body}"


def assert_footer(composed) -> None:
    for body in (flat(composed.text), visible_text(composed.html)):
        for phrase in FOOTER_PHRASES:
            assert phrase in body
        assert not SHELL_COMMAND.search(body), body
    for url in (LINKS.page, LINKS.pause, LINKS.unsubscribe):
        assert url in composed.text.split()
        assert f'href="{url}"' in composed.html


def assert_clean_language(composed) -> None:
    for content in (composed.subject, composed.text, composed.html, visible_text(composed.html)):
        check_message(content)
        assert find_banned(content) == []


def assert_no_digits(composed) -> None:
    assert not re.search(r"\d", seen(composed)), seen(composed)


@pytest.mark.parametrize("detail", ["minimal", "numbers"])
@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_variants_have_three_beats_footer_and_clean_words(name, detail):
    expl, strategy_keys, humanity_kind, opener = ALERTS[name]
    composed = compose_alert(recipient(detail), expl, SETTINGS)

    assert composed.subject == ALERT_SUBJECT
    assert_three_beats(composed, opener, humanity_kind, strategy_keys)
    assert_footer(composed)
    assert_clean_language(composed)
    if detail == "minimal":
        assert_no_digits(composed)
        assert "c01" not in seen(composed)
    else:
        assert "What the numbers say, compared with your usual" in seen(composed)
        assert re.search(r"\d", flat(composed.text))


@pytest.mark.parametrize("detail", ["minimal", "numbers"])
@pytest.mark.parametrize("name", sorted(DIGESTS))
def test_digest_variants_have_three_beats_footer_and_clean_words(name, detail):
    week, strategy_keys, humanity_kind, observation = DIGESTS[name]
    composed = compose_digest(recipient(detail), week, SETTINGS)

    assert composed.subject == DIGEST_SUBJECT
    assert_three_beats(composed, observation, humanity_kind, strategy_keys)
    assert_footer(composed)
    assert_clean_language(composed)
    if detail == "minimal":
        assert_no_digits(composed)


def test_alert_observation_names_each_worse_move_in_plain_words():
    composed = compose_alert(recipient(), ALERTS["both"][0], SETTINGS)
    assert (
        "Over the last few nights, you slept a little less than your usual, and your overnight heart rate "
        "has been higher." in flat(composed.text)
    )


def test_recovery_alert_explains_hrv_as_overnight_recovery():
    text = flat(compose_alert(recipient(), ALERTS["recovery_only"][0], SETTINGS).text)
    assert "your heart-rate variability, a sign of overnight recovery, has been a little lower" in text


def test_timing_moves_are_described_neutrally_as_later_or_earlier():
    assert describe_move(BEDTIME_LATER) == "you've been falling asleep later"
    earlier = FeatureMove("wake_min", "down", True, -2.5, 420.0, 380.0, "min after midnight")
    assert describe_move(earlier) == "you've been waking earlier"


def test_numbers_alert_shows_values_against_usual():
    text = flat(compose_alert(recipient("numbers"), ALERTS["persisting_week"][0], SETTINGS).text)
    assert "Sleep: about 6 h 10 min a night; your usual is about 7 h 05 min." in text
    assert "Resting heart rate: about 4 bpm above your usual" in text
    assert "about 37 ms; your usual is about 45 ms" in text
    assert (
        "This pattern showed on 4 of the last 5 nights with data, compared with your usual over 48 nights."
        in text
    )
    assert "It has shown for 10 nights in a row." in text


def test_value_formatting_rounds_kindly_and_folds_clock_times():
    assert format_duration_min(371) == "6 h 10 min"
    assert format_duration_min(41.4) == "41 min"
    assert format_clock(1420) == "23:40"
    assert format_clock(-30) == "23:30"
    assert format_clock(1470) == "00:30"
    assert describe_value(BEDTIME_LATER) == "Falling asleep: around 23:40; your usual is around 23:05."
    steady_hr = FeatureMove("resting_hr_bpm", "up", False, 0.2, 58.0, 58.3, "bpm")
    assert describe_value(steady_hr).startswith("Resting heart rate: about the same as your usual")


def test_warming_up_digest_counts_nights_only_when_numbers_were_chosen():
    week = DIGESTS["warming_up"][0]
    minimal = flat(compose_digest(recipient(), week, SETTINGS).text)
    numbers = flat(compose_digest(recipient("numbers"), week, SETTINGS).text)
    assert "Comparisons begin in about a week." in minimal
    assert "comparisons begin after about 9 more nights" in numbers
    assert "Welcome to emberwatch." in minimal
    later = flat(compose_digest(recipient(), replace(week, had_check_in_before=True), SETTINGS).text)
    assert "Welcome" not in later  # once, in the first check-in only
    assert "emberwatch is still learning your usual from your own nights" in later


def test_digest_mentions_what_went_well_only_when_something_did():
    went_well = flat(compose_digest(recipient(), DIGESTS["week_went_well"][0], SETTINGS).text)
    nothing = flat(compose_digest(recipient(), DIGESTS["week_nothing_went_well"][0], SETTINGS).text)
    # the week's overnight heart rate was higher: "recovery held up well" would contradict it, so only sleep is said
    assert "Something that went well: your sleep stayed as settled as usual." in went_well
    assert "recovery held up well" not in went_well
    assert "Something that went well" not in nothing
    for text in (went_well, nothing):
        assert "A question to sit with, if you like:" in text


def test_recovery_held_up_is_said_only_when_no_recovery_feature_got_worse():
    assert went_well_sentence(["ln_rmssd"], [TST_DOWN]) == \
        "Something that went well: your overnight recovery held up well."
    assert went_well_sentence(["ln_rmssd"], [RHR_UP]) == ""
    assert went_well_sentence(["ln_rmssd", "tst_min"], [RHR_UP]) == \
        "Something that went well: your sleep time held up well against your usual."


def test_a_note_names_both_domains_that_set_it_off_even_when_one_has_no_move_to_name():
    both = observation_clauses([TST_DOWN], ("sleep", "recovery"))
    assert both == ["you slept a little less than your usual",
                    "your overnight recovery has been a little lower than your usual"]
    assert observation_clauses([TST_DOWN], ("sleep",)) == ["you slept a little less than your usual"]
    assert observation_clauses([RHR_UP], ("sleep", "recovery")) == [
        "your sleep has been a little more unsettled than your usual", "your overnight heart rate has been higher"]


def test_illness_digest_speaks_of_rest_not_of_a_pattern():
    text = flat(compose_digest(recipient(), DIGESTS["illness_explains_week"][0], SETTINGS).text)
    assert "your body may be fighting something off" in text
    assert "rest is the kind choice" in text
    assert "Many clinicians see this pattern" not in text


def test_digest_after_an_alert_says_so_gently():
    week = summary(moves=(TST_DOWN,), sleep_flag_nights=3, alert_sent_this_week=True)
    assert "You had a gentle note from emberwatch earlier this week" in flat(
        compose_digest(recipient(), week, SETTINGS).text
    )


def test_support_resource_may_hold_a_phone_number_even_at_minimal():
    settings = MessageSettings(support_resource="the Samaritans on 116 123")
    composed = compose_digest(recipient(), DIGESTS["week_steady"][0], settings)
    assert "reach out to the Samaritans on 116 123." in flat(composed.text)


def test_composing_for_someone_else_is_refused():
    other = Recipient(person_id="c02", email="bo@example.org", tz_name="Europe/London")
    with pytest.raises(ValueError, match="not the person"):
        compose_alert(other, ALERTS["both"][0], SETTINGS)
    with pytest.raises(ValueError, match="not the person"):
        compose_digest(other, DIGESTS["week_steady"][0], SETTINGS)


def test_composition_is_deterministic():
    first = compose_alert(recipient("numbers"), ALERTS["both"][0], SETTINGS)
    again = compose_alert(recipient("numbers"), ALERTS["both"][0], SETTINGS)
    assert first == again


def test_strategy_set_by_the_rules_layer_wins():
    expl = explanation(["sleep"], [TST_DOWN], strategy="caseload")
    text = flat(compose_alert(recipient(), expl, SETTINGS).text)
    assert STRATEGIES["caseload"].lines[0] in text


def test_unknown_strategy_key_is_an_error_not_a_silent_fallback():
    with pytest.raises(ValueError, match="Unknown strategy"):
        compose_alert(recipient(), explanation(["sleep"], [TST_DOWN], strategy="yoga"), SETTINGS)


@pytest.mark.parametrize(
    ("domains", "persisting", "expected"),
    [
        (["sleep"], 3, {"boundaries"}),
        (["recovery"], 3, {"mindfulness"}),
        (["sleep", "recovery"], 5, {"self_care"}),
        (["sleep", "recovery"], 7, {"self_care"}),
        (["sleep", "recovery"], 8, {"supervision", "support_network"}),
        (["sleep"], 10, {"boundaries"}),
        (["recovery"], 21, {"caseload"}),
        (["sleep", "recovery"], 30, {"caseload"}),
        ([], 0, {"self_compassion"}),
    ],
)
def test_choose_strategy_matches_the_messages_table(domains, persisting, expected):
    assert choose_strategy(domains, persisting) in expected
    assert choose_strategy(domains, persisting, rotation_key="c01:2024-05-03") in expected


def test_lines_rotate_by_a_stable_key():
    keys = [f"c01:2024-W{week:02d}" for week in range(1, 30)]
    picks = [pick_line("boundaries", key) for key in keys]
    assert picks == [pick_line("boundaries", key) for key in keys]
    assert len(set(picks)) == len(STRATEGIES["boundaries"].lines)
    both = {choose_strategy(["sleep", "recovery"], 9, rotation_key=key) for key in keys}
    assert both == {"supervision", "support_network"}


def test_html_is_single_column_self_contained_and_neither_red_nor_green():
    composed = compose_alert(recipient("numbers"), ALERTS["both"][0], SETTINGS)
    html = composed.html
    assert re.search(r"max-width:\s*600px", html)
    assert "<h1" in html and "<ul" in html and "<p" in html
    # No remote images, no tracking pixels: the only addresses are the footer's links to the person's own page.
    assert set(re.findall(r"https?://[^/\"]+", html)) == {PUBLIC_URL}
    assert not re.search(r"<img[^>]+src=\"https?:", html)
    assert "<img" not in html
    # The template's stylesheet was inlined by css-inline: no <style> block and no classes are left.
    assert "<style" not in html and "class=" not in html
    assert 'style="margin: 0 0 18px;' in html  # the h1 rule, now on the element
    assert not re.search(r"\b(red|green)\b", html, re.IGNORECASE)
    for hex_colour in re.findall(r"#([0-9a-fA-F]{6})\b", html):
        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (0, 2, 4))
        assert r - max(g, b) <= 40 and g - max(r, b) <= 40, hex_colour


def test_html_escapes_what_it_prints():
    settings = MessageSettings(support_resource="<b>the wellbeing team</b>")
    html = compose_alert(recipient(), ALERTS["both"][0], settings).html
    assert "&lt;b&gt;the wellbeing team&lt;/b&gt;" in html


def test_charts_only_when_chosen_and_given():
    png = b"\x89PNG\r\n\x1a\nfake"

    charts = {"chart-sleep@emberwatch.local": png}

    with_charts = compose_alert(recipient("charts"), ALERTS["both"][0], SETTINGS, charts=charts)
    assert with_charts.images == {"chart-sleep@emberwatch.local": png}
    assert 'src="cid:chart-sleep@emberwatch.local"' in with_charts.html
    assert 'alt="A chart of your recent nights compared with your usual."' in with_charts.html
    assert "The charts are in the HTML version of this email." in with_charts.text

    minimal = compose_alert(recipient("minimal"), ALERTS["both"][0], SETTINGS, charts=charts)
    no_builder = compose_alert(recipient("charts"), ALERTS["both"][0], SETTINGS)
    assert minimal.images == {} and no_builder.images == {}
    assert "<img" not in no_builder.html


# ---------------------------------------------------------------------------------------------------- MIME

MESSAGE_ID = "<alert-c01-2024-05-03@emberwatch.local>"
SENT_AT = datetime(2024, 5, 3, 6, 45, tzinfo=UTC)


def test_email_message_is_multipart_alternative_text_then_html_with_headers():
    composed = compose_alert(recipient(), ALERTS["both"][0], SETTINGS)
    msg = to_email_message(composed, recipient(), SETTINGS, MESSAGE_ID, SENT_AT)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)

    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert parsed["From"] == SETTINGS.from_address
    assert parsed["To"] == "ana@example.org"
    assert parsed["Subject"] == ALERT_SUBJECT
    assert parsed["Message-ID"] == MESSAGE_ID
    assert parsed["Date"] == "Fri, 03 May 2024 06:45:00 +0000"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Auto-Submitted"] == "auto-generated"
    # RFC 8058 one-click unsubscribe: the link, and the header that says a POST is enough.
    assert parsed["List-Unsubscribe"] == f"<{LINKS.unsubscribe}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = flat(parts[0].get_content())
    assert "Over the last few nights, you slept a little less than your usual" in plain
    assert "Wellness information, not medical advice or therapy." in plain
    assert visible_text(parts[1].get_content()) == visible_text(composed.html)
    assert msg.as_bytes().isascii()  # quoted-printable: safe through servers without 8BITMIME


def test_email_message_carries_chart_images_as_related_parts():
    png = b"\x89PNG\r\n\x1a\nfake"
    composed = compose_alert(
        recipient("charts"),
        ALERTS["both"][0],
        SETTINGS,
        charts={"chart-1@emberwatch.local": png},
    )
    msg = to_email_message(composed, recipient("charts"), SETTINGS, MESSAGE_ID, SENT_AT)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)

    text_part, related = parsed.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image_part = related.iter_parts()
    assert html_part.get_content_type() == "text/html"
    assert image_part.get_content_type() == "image/png"
    assert image_part["Content-ID"] == "<chart-1@emberwatch.local>"
    assert image_part.get_content() == png
    assert "cid:chart-1@emberwatch.local" in html_part.get_content()


@pytest.mark.parametrize("bad_id", ["alert-1@emberwatch.local", "<no-at-sign>", "<a b@c>"])
def test_message_id_must_be_well_formed(bad_id):
    composed = compose_alert(recipient(), ALERTS["both"][0], SETTINGS)
    with pytest.raises(ValueError, match="Message-ID"):
        to_email_message(composed, recipient(), SETTINGS, bad_id, SENT_AT)


def test_date_must_be_utc():
    composed = compose_alert(recipient(), ALERTS["both"][0], SETTINGS)
    with pytest.raises(ValueError, match="UTC"):
        to_email_message(composed, recipient(), SETTINGS, MESSAGE_ID, datetime(2024, 5, 3, 6, 45))


def test_minimal_guard_stops_an_email_that_would_show_a_number(monkeypatch):
    import alerts.compose as compose_module

    monkeypatch.setattr(compose_module, "nights_in_words", lambda nights: f"after {nights} more nights")
    with pytest.raises(ValueError, match="minimal digest email would contain digits"):
        compose_digest(recipient(), DIGESTS["warming_up"][0], SETTINGS)


def test_timing_is_named_once_and_after_amounts():
    midsleep_later = FeatureMove("midsleep_min", "up", True, 2.6, 200.0, 240.0, "min after midnight")
    moves = [BEDTIME_LATER, midsleep_later, TST_DOWN]
    text = flat(compose_alert(recipient(), explanation(["sleep"], moves), SETTINGS).text)
    assert (
        "Over the last few nights, you slept a little less than your usual, and the middle of your sleep "
        "has shifted later." in text
    )
    assert "falling asleep later" not in text


def test_illness_digest_offers_rest_even_when_the_summary_carries_another_strategy():
    week = summary(moves=(RHR_UP,), illness_explains_week=True, recovery_flag_nights=2, strategy="mindfulness")
    text = flat(compose_digest(recipient(), week, SETTINGS).text)
    assert any(line in text for line in STRATEGIES["rest"].lines)


def test_observation_names_at_most_three_moves_and_one_of_each_kind():
    efficiency_down = FeatureMove("efficiency_pct", "down", True, -3.0, 91.0, 84.0, "%")
    onset_up = FeatureMove("onset_latency_min", "up", True, 2.2, 12.0, 25.0, "min")
    moves = [efficiency_down, WASO_UP, onset_up, TST_DOWN, RHR_UP, HRV_DOWN]
    text = flat(compose_alert(recipient(), explanation(["sleep", "recovery"], moves), SETTINGS).text)
    assert (
        "Over the last few nights, more of your time in bed was spent awake, your overnight heart rate has "
        "been higher, and your heart-rate variability, a sign of overnight recovery, has been a little lower."
        in text
    )
    assert "time awake during the night" not in text.split("Many clinicians")[0]


def test_digest_does_not_praise_what_it_names_as_moving_the_other_way():
    efficiency_down = FeatureMove("efficiency_pct", "down", True, -2.2, 91.0, 86.0, "%")
    week = summary(moves=(efficiency_down,), went_well=("waso_min", "tst_min"), sleep_flag_nights=2)
    text = flat(compose_digest(recipient(), week, SETTINGS).text)
    assert "Something that went well: your sleep time held up well against your usual." in text
    assert "time awake during the night stayed close" not in text


def test_composing_the_same_email_twice_gives_the_same_bytes():
    """A rerun after a crash re-composes queued mail: stable MIME boundaries keep it byte-identical."""
    from datetime import datetime, timezone

    from alerts.compose import to_email_message
    from alerts.message_types import ComposedEmail, MessageSettings, Recipient

    composed = ComposedEmail(subject="A gentle note", text="Hello.\n", html="<p>Hello.</p>",
                             images={"chart-sleep": b"\x89PNG fake"})
    who = Recipient("c01", "c01@example.org", "Europe/Oslo", "charts")
    when = datetime(2026, 8, 21, 6, 30, tzinfo=timezone.utc)
    first = bytes(to_email_message(composed, who, MessageSettings(), "<alert.abc@emberwatch.local>", when))
    second = bytes(to_email_message(composed, who, MessageSettings(), "<alert.abc@emberwatch.local>", when))
    other = bytes(to_email_message(composed, who, MessageSettings(), "<alert.def@emberwatch.local>", when))
    assert first == second
    assert first != other and b"=_emberwatch_" in first
    assert first.count(b"Content-Type: multipart/") == 2  # alternative, and related for the chart


@pytest.mark.parametrize("kind", sorted(DOOR_NOTES))
def test_door_notes_carry_a_link_no_command_and_no_health_value(kind):
    url = PUBLIC_URL + "/me/token/connect"
    composed = compose_door_note(kind, recipient("numbers"), url, SETTINGS)
    assert composed.subject == DOOR_NOTES[kind]["subject"]
    assert url in composed.text.split() and f'href="{url}"' in composed.html
    assert_footer(composed)
    assert_clean_language(composed)
    assert_no_digits(composed)  # whatever the person chose: these notes say nothing about their nights


@pytest.mark.parametrize("recent, usual", [(70.4, 68.6), (58.5, 57.4), (61.2, 61.4), (66.6, 62.5)])
def test_a_resting_heart_rate_line_adds_up_as_read(recent, usual):
    line = describe_value(FeatureMove("resting_hr_bpm", "up", True, 1.0, usual, recent, "bpm"))
    shown_recent, shown_usual = (int(x) for x in re.findall(r"about (\d+) bpm[;)]", line))
    difference = re.search(r"about (\d+) bpm (above|below)", line)
    told = 0 if difference is None else int(difference[1]) * (1 if difference[2] == "above" else -1)
    assert told == shown_recent - shown_usual, line


def test_a_steady_week_claims_nothing_about_recovery_where_it_was_not_measured():

    steady = DIGESTS["week_steady"][0]
    measured = compose_digest(recipient(), steady, SETTINGS)
    without_hrv = compose_digest(recipient(), replace(steady, recovery_measured=False), SETTINGS)
    assert "sleep and overnight recovery stayed close to your usual" in flat(measured.text)
    assert "This week your sleep stayed close to your usual." in flat(without_hrv.text)
    assert "recovery" not in flat(without_hrv.text).split("--")[0]
    from alerts.compose import NOT_MEASURED_SENTENCE

    assert NOT_MEASURED_SENTENCE in flat(without_hrv.text) and NOT_MEASURED_SENTENCE not in flat(measured.text)
    assert NOT_MEASURED_SENTENCE in visible_text(without_hrv.html)
