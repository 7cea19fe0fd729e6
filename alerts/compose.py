"""Compose the three-beat emails (docs/messages.md) from an explanation or a week summary; wrap as MIME.

Composition never reads the database: everything it says comes from the dataclasses of alerts.message_types,
and charts are drawn by the caller and passed in.
Health values reach the body only at the `numbers` and `charts` detail levels; at `minimal` the email
holds no digits at all, and every email passes the language check before it leaves this module (both
are enforced here, failing closed).
"""

from __future__ import annotations

import hashlib
import math
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from typing import Any

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from alerts.language import TEMPLATE_DIR, check_message, visible_text
from alerts.message_types import (
    AlertExplanation,
    ComposedEmail,
    FeatureMove,
    MessageSettings,
    Recipient,
    WeekSummary,
)
from alerts.strategies import (
    CASELOAD_FROM_NIGHTS,
    SUPERVISION_AFTER_NIGHTS,
    choose_strategy,
    pick_line,
    stable_index,
)

ALERT_SUBJECT = "A gentle note about your week"
DIGEST_SUBJECT = "Your weekly check-in"
CHART_ALT_TEXT = "A chart of your recent nights compared with your usual."
TEXT_WIDTH_CHARS = 72

# content-id -> PNG bytes, or an object with `.png` and `.alt` (alerts.charts.ChartImage): drawn by the caller
# from data it read, so composition stays pure.
Charts = Mapping[str, Any]

# Below this |robust z| a move is said to be "a little" different: a wording choice so that ordinary heavy
# weeks are not made to sound dramatic (no source; docs/messages.md, "Three beats", asks for no exaggeration).
A_LITTLE_BELOW_ABS_Z = 2.0
MAX_CLAUSES_PER_DOMAIN = 2
MAX_CLAUSES = 3  # docs/messages.md's example names two moves; past three a sentence stops being read
MAX_WENT_WELL = 2

SLEEP_FEATURES = (
    "tst_min",
    "efficiency_pct",
    "waso_min",
    "onset_latency_min",
    "awakenings_count",
    "bedtime_min",
    "midsleep_min",
    "wake_min",
)
# heart-rate variability as the device measures it, RMSSD (most devices) or SDNN (an Apple Watch): to a reader,
# one thing
HRV_FEATURES = ("ln_rmssd", "ln_sdnn")
RECOVERY_FEATURES = ("resting_hr_bpm", *HRV_FEATURES)
# Timing has no kind "worse" to name: later or earlier is described neutrally, whatever the `worse` flag says.
TIMING_FEATURES = frozenset({"bedtime_min", "midsleep_min", "wake_min"})
# Features a reader hears as the same thing: name one per group, and never praise one while naming its twin.
SAME_TO_A_READER = {
    "efficiency_pct": "awake_in_bed",
    "waso_min": "awake_in_bed",
    "bedtime_min": "timing",
    "midsleep_min": "timing",
    "wake_min": "timing",
    **{feature: "hrv" for feature in HRV_FEATURES},
}

# "{a}" becomes "a little " for small moves. Each phrase is a clause that can follow "Over the last few
# nights,".
MOVE_PHRASES: dict[tuple[str, str], str] = {
    ("tst_min", "down"): "you slept {a}less than your usual",
    ("tst_min", "up"): "you slept {a}more than your usual",
    ("efficiency_pct", "down"): "{a}more of your time in bed was spent awake",
    ("efficiency_pct", "up"): "{a}less of your time in bed was spent awake",
    ("waso_min", "up"): "there was {a}more time awake during the night",
    ("waso_min", "down"): "there was {a}less time awake during the night",
    ("onset_latency_min", "up"): "it has taken {a}longer to fall asleep",
    ("onset_latency_min", "down"): "you've been falling asleep {a}more quickly",
    ("awakenings_count", "up"): "you woke {a}more often during the night",
    ("awakenings_count", "down"): "you woke {a}less often during the night",
    ("bedtime_min", "up"): "you've been falling asleep later",
    ("bedtime_min", "down"): "you've been falling asleep earlier",
    ("midsleep_min", "up"): "the middle of your sleep has shifted later",
    ("midsleep_min", "down"): "the middle of your sleep has shifted earlier",
    ("wake_min", "up"): "you've been waking later",
    ("wake_min", "down"): "you've been waking earlier",
    ("resting_hr_bpm", "up"): "your overnight heart rate has been {a}higher",
    ("resting_hr_bpm", "down"): "your overnight heart rate has been {a}lower",
    **{(feature, direction):
       f"your heart-rate variability, a sign of overnight recovery, has been {{a}}{word}"
       for feature in HRV_FEATURES for direction, word in (("down", "lower"), ("up", "higher"))},
}

DOMAIN_FALLBACK_PHRASES = {
    "sleep": "your sleep has been a little more unsettled than your usual",
    "recovery": "your overnight recovery has been a little lower than your usual",
}

WENT_WELL_PHRASES = {
    "tst_min": "your sleep time held up well against your usual",
    "efficiency_pct": "your sleep stayed as settled as usual",
    "waso_min": "time awake during the night stayed close to your usual",
    "onset_latency_min": "falling asleep came as easily as usual",
    "awakenings_count": "you woke no more often than usual",
    "bedtime_min": "your sleep timing stayed regular",
    "midsleep_min": "your sleep timing stayed regular",
    "wake_min": "your sleep timing stayed regular",
    "resting_hr_bpm": "your overnight heart rate stayed at or below your usual",
    **{feature: "your overnight recovery held up well" for feature in HRV_FEATURES},
}

TIMING_LABELS = {
    "bedtime_min": "Falling asleep",
    "midsleep_min": "Middle of your sleep",
    "wake_min": "Waking",
}
DURATION_LABELS = {
    "tst_min": ("Sleep", " a night"),
    "waso_min": ("Time awake during the night", ""),
    "onset_latency_min": ("Time to fall asleep", ""),
}


# ------------------------------------------------------------------------------------------------ phrases


def feature_domain(feature: str) -> str | None:
    if feature in SLEEP_FEATURES:
        return "sleep"
    if feature in RECOVERY_FEATURES:
        return "recovery"
    return None


def describe_move(move: FeatureMove) -> str | None:
    """A kind, neutral clause for one move, without numbers; None for a feature we have no words for yet."""
    phrase = MOVE_PHRASES.get((move.feature, move.direction))
    if phrase is None:
        return None
    amount = "a little " if abs(move.robust_z) < A_LITTLE_BELOW_ABS_Z else ""
    return phrase.format(a=amount)


def reader_group(feature: str) -> str:
    return SAME_TO_A_READER.get(feature, feature)


def moves_to_name(moves: Iterable[FeatureMove]) -> list[FeatureMove]:
    """The moves worth naming: sleep, then recovery; amounts before timing; largest first; one per group."""
    by_domain: dict[str, list[FeatureMove]] = {"sleep": [], "recovery": []}
    for move in moves:
        domain = feature_domain(move.feature)
        if domain and (move.worse or move.feature in TIMING_FEATURES) and describe_move(move):
            by_domain[domain].append(move)
    chosen: dict[str, list[FeatureMove]] = {}
    for domain, candidates in by_domain.items():
        seen_groups: set[str] = set()
        chosen[domain] = []
        for move in sorted(candidates, key=lambda m: (m.feature in TIMING_FEATURES, -abs(m.robust_z))):
            if reader_group(move.feature) not in seen_groups:
                seen_groups.add(reader_group(move.feature))
                chosen[domain].append(move)
        chosen[domain] = chosen[domain][:MAX_CLAUSES_PER_DOMAIN]
    # Keep recovery whole and give sleep what is left of the budget, but always at least one clause.
    sleep_slots = max(1, MAX_CLAUSES - len(chosen["recovery"]))
    return chosen["sleep"][:sleep_slots] + chosen["recovery"]


def observation_clauses(moves: Iterable[FeatureMove], domains: Iterable[str] = ()) -> list[str]:
    """What the note says moved: the moves worth naming, and for a flagged domain none of whose moves is named
    (its flag may rest on a 7-night band or on nights the 5-night medians smooth over) the domain in general
    words, so a note never speaks of one half of what set it off."""
    named = moves_to_name(moves)
    flagged = set(domains)
    clauses: list[str] = []
    for domain in ("sleep", "recovery"):
        own = [describe_move(m) or "" for m in named if feature_domain(m.feature) == domain]
        clauses += own or ([DOMAIN_FALLBACK_PHRASES[domain]] if domain in flagged else [])
    return clauses


def join_clauses(clauses: Sequence[str]) -> str:
    # Clauses are independent ("you slept less", "your heart rate has been higher"): ", and" even for two.
    if len(clauses) <= 1:
        return "".join(clauses)
    return ", ".join(clauses[:-1]) + ", and " + clauses[-1]


def duration_opener(persisting_nights: int) -> str:
    """How long, in words: numbers here would put counts of bad nights into a minimal email."""
    if persisting_nights >= CASELOAD_FROM_NIGHTS:
        return "For a few weeks now"
    if persisting_nights > SUPERVISION_AFTER_NIGHTS:
        return "For more than a week now"
    return "Over the last few nights"


def nights_in_words(nights: int) -> str:
    if nights <= 0:
        return "any night now"
    if nights <= 3:
        return "in a few more nights"
    if nights <= 10:
        return "in about a week"
    if nights <= 17:
        return "in about two weeks"
    return "in a few weeks"


def went_well_sentence(features: Iterable[str], moves: Iterable[FeatureMove] = ()) -> str:
    """What went well, leaving out anything the same email names as moving the other way. "Your overnight
    recovery held up well" speaks for the whole recovery domain, so it also goes when any recovery feature (a
    higher overnight heart rate, say) got worse."""
    moves = list(moves)
    worse_groups = {reader_group(m.feature) for m in moves if m.worse or m.feature in TIMING_FEATURES}
    recovery_worse = any(m.worse and feature_domain(m.feature) == "recovery" for m in moves)
    phrases: list[str] = []
    for feature in features:
        overruled = reader_group(feature) in worse_groups or (feature in HRV_FEATURES and recovery_worse)
        phrase = None if overruled else WENT_WELL_PHRASES.get(feature)
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    if not phrases:
        return ""
    return f"Something that went well: {join_clauses(phrases[:MAX_WENT_WELL])}."


# ------------------------------------------------------------------------------------------------ numbers


def _about(value: float) -> str:
    rounded = round(value)
    return str(rounded) if abs(value - rounded) < 0.05 or abs(value) >= 10 else f"{value:.1f}"


def format_duration_min(minutes: float) -> str:
    if minutes < 60:
        return f"{round(minutes)} min"
    total_min = int(
        round(minutes / 5) * 5
    )  # a night's sleep to the nearest 5 min: finer reads as false precision
    return f"{total_min // 60} h {total_min % 60:02d} min"


def format_clock(minutes_after_midnight: float) -> str:
    # Timing features are circular (23:30 may arrive as 1410 or -30): fold onto one day.
    total_min = int(round(minutes_after_midnight / 5) * 5) % (24 * 60)
    return f"{total_min // 60:02d}:{total_min % 60:02d}"


def describe_value(move: FeatureMove) -> str | None:
    """One line with the recent value against the person's usual, for the `numbers` detail level."""
    recent, usual = move.recent_median, move.baseline_median
    if move.feature in DURATION_LABELS:
        label, per = DURATION_LABELS[move.feature]
        return (
            f"{label}: about {format_duration_min(recent)}{per}; "
            f"your usual is about {format_duration_min(usual)}."
        )
    if move.feature in TIMING_LABELS:
        return (
            f"{TIMING_LABELS[move.feature]}: around {format_clock(recent)}; "
            f"your usual is around {format_clock(usual)}."
        )
    if move.feature == "efficiency_pct":
        return f"Time in bed spent asleep: about {round(recent)} %; your usual is about {round(usual)} %."
    if move.feature == "awakenings_count":
        return f"Awakenings: about {_about(recent)} a night; your usual is about {_about(usual)}."
    if move.feature == "resting_hr_bpm":
        # The difference of the rounded values shown, so the line adds up as read ("2 above: 70 against 69" would
        # not, though 70.4 − 68.6 rounds to 2).
        delta_bpm = round(recent) - round(usual)
        relation = (
            "about the same as your usual"
            if delta_bpm == 0
            else f"about {abs(delta_bpm)} bpm {'above' if delta_bpm > 0 else 'below'} your usual"
        )
        return (
            f"Resting heart rate: {relation} "
            f"(about {round(recent)} bpm; your usual is about {round(usual)} bpm)."
        )
    if move.feature in HRV_FEATURES:
        # People know HRV in milliseconds from their watch apps, not as a natural log.
        return (
            f"Heart-rate variability, a sign of overnight recovery: about {round(math.exp(recent))} ms; "
            f"your usual is about {round(math.exp(usual))} ms."
        )
    return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ------------------------------------------------------------------------------------------------ composing


def compose_alert(
    recipient: Recipient,
    explanation: AlertExplanation,
    settings: MessageSettings,
    *,
    charts: Charts | None = None,
) -> ComposedEmail:
    _check_same_person(recipient, explanation.person_id)
    rotation_key = f"{explanation.person_id}:{explanation.night_date.isoformat()}"
    strategy_key = explanation.strategy or choose_strategy(
        explanation.domains, explanation.persisting_nights, rotation_key=rotation_key
    )
    clauses = observation_clauses(explanation.moves, explanation.domains)
    observation = f"{duration_opener(explanation.persisting_nights)}, {join_clauses(clauses)}."

    values: list[str] = []
    basis = ""
    if _shows_numbers(recipient):
        values = [line for m in explanation.moves if (line := describe_value(m))]
        basis = (
            f"This pattern showed on {len(explanation.flagged_nights)} of the last "
            f"{_plural(len(explanation.window_nights), 'night')} with data, compared with your usual over "
            f"{_plural(explanation.baseline_nights, 'night')}."
        )
        if explanation.persisting_nights > len(explanation.window_nights):
            basis += f" It has shown for {explanation.persisting_nights} nights in a row."
    images, alts = _chart_images(recipient, charts)

    context = {
        "subject": ALERT_SUBJECT,
        "observation": observation,
        "humanity_kind": "persisting"
        if explanation.persisting_nights > SUPERVISION_AFTER_NIGHTS
        else "pattern",
        "step": pick_line(strategy_key, rotation_key),
        "values": values,
        "basis": basis,
        **_image_context(images, alts),
        **_footer_context(recipient, settings),
    }
    return _render("alert", context, recipient, settings, images)


# The weekly question (a check-in, storage.check_ins): five answers, each a signed link; a GET only shows a page
# with a button (mail scanners open links), so nothing is recorded until the person presses it.
WEEK_QUESTION = "How drained did this week leave you?"
WEEK_DRAINED_ANSWERS = ("Not at all", "A little", "Somewhat", "Quite", "Completely")
WEEK_SLEEP_QUESTION = "And how did you sleep this week?"
WEEK_SLEEP_ANSWERS = ("Very badly", "Not well", "So-so", "Well", "Very well")
_TOLD_US = {
    "week_drained": ("it left you {}", ("not drained at all", "a little drained", "somewhat drained",
                                       "quite drained", "completely drained")),
    "week_sleep": ("you slept {}", ("very badly", "not well", "so-so", "well", "very well")),
}


def told_us_sentence(told_us: Sequence[tuple[str, float]]) -> str:
    """Their own answers about the week before, in their words and without judgement."""
    parts = [template.format(words[int(value) - 1]) for scale, value in told_us if scale in _TOLD_US
             for template, words in [_TOLD_US[scale]] if 1 <= value <= 5]
    if not parts:
        return ""
    return f"About the week before, you said {' and that '.join(parts)}. Thank you for telling us."


NOT_MEASURED_SENTENCE = ("Your device does not record overnight heart-rate variability, so these notes speak of "
                         "your sleep only.")


def calibration_sentence(widening_now: float | None) -> str:
    """One kind sentence when their own check-ins changed how emberwatch reads their sleep this week."""
    if widening_now is None:
        return ""
    if widening_now > 0:
        return ("Your own check-ins often said you felt much as usual after nights your device counted as short, "
                "so from now on emberwatch waits for a clearer change in your sleep before it mentions it.")
    return ("Lately your check-ins have matched what your device saw, so emberwatch is back to noticing smaller "
            "changes in your sleep.")


def compose_digest(
    recipient: Recipient,
    summary: WeekSummary,
    settings: MessageSettings,
    *,
    charts: Charts | None = None,
    ask: Sequence[str] = (),
) -> ComposedEmail:
    """`ask`: the five signed links that answer the weekly question, from "not at all" to "completely"."""
    _check_same_person(recipient, summary.person_id)
    rotation_key = f"{summary.person_id}:{summary.week_start.isoformat()}"
    numbers = _shows_numbers(recipient)
    went_well = ""
    reflect = False
    values: list[str] = []
    basis = ""

    if summary.warming_up:
        humanity_kind, default_strategy = "warming_up", "self_compassion"
        when = (
            f"So far there {'is' if summary.valid_nights_total == 1 else 'are'} "
            f"{_plural(summary.valid_nights_total, 'night')} with data; comparisons begin after about "
            f"{_plural(summary.nights_until_comparisons, 'more night')}."
            if numbers
            else f"Comparisons begin {nights_in_words(summary.nights_until_comparisons)}."
        )
        observation = (
            ("emberwatch" if summary.had_check_in_before else "Welcome to emberwatch. It") +
            f" is still learning your usual from your own nights, so there is nothing to compare yet. {when}"
        )
    elif summary.illness_explains_week:
        humanity_kind, default_strategy = "illness", "rest"
        observation = (
            "This week your signals look more like your body may be fighting something off than like a "
            "heavy week; rest is the kind choice."
        )
    else:
        clauses = observation_clauses(summary.moves)
        if summary.valid_nights_this_week == 0:
            humanity_kind = "steady"
            observation = (
                "There were no nights with data this week, so there is nothing to compare, and that is fine."
            )
        elif clauses:
            humanity_kind = "pattern"
            observation = f"This week, {join_clauses(clauses)}."
        else:
            humanity_kind = "steady"
            observation = ("This week your sleep and overnight recovery stayed close to your usual."
                           if summary.recovery_measured else "This week your sleep stayed close to your usual.")
        went_well = went_well_sentence(summary.went_well, summary.moves)
        reflect = True
        domains = [
            d
            for d, n in (("sleep", summary.sleep_flag_nights), ("recovery", summary.recovery_flag_nights))
            if n
        ]
        # A week summary carries no run length: persistence-based strategies come only from the rules layer.
        default_strategy = choose_strategy(domains, 0, rotation_key=rotation_key)

    if numbers and not summary.warming_up:
        values = [line for m in summary.moves if (line := describe_value(m))]
        basis = f"Based on {_plural(summary.valid_nights_this_week, 'night')} with data this week."
    # Illness outranks the week's pattern (it explains the signals: docs/messages.md), so the step is rest
    # even when the summary carries a strategy chosen from the flagged domains alone.
    strategy_key = "rest" if summary.illness_explains_week else (summary.strategy or default_strategy)
    images, alts = _chart_images(recipient, charts)

    context = {
        "subject": DIGEST_SUBJECT,
        "told_us": told_us_sentence(summary.told_us),
        "calibration": calibration_sentence(summary.sleep_calibration_now),
        # said plainly, so "close to your usual" is never read as "recovery too" (issue 16)
        "measures": "" if summary.warming_up or summary.recovery_measured else NOT_MEASURED_SENTENCE,
        "question": WEEK_QUESTION if ask else "",
        "answers": list(zip(WEEK_DRAINED_ANSWERS, ask)),
        "earlier_note": summary.alert_sent_this_week and not summary.warming_up,
        "observation": observation,
        "went_well": went_well,
        "humanity_kind": humanity_kind,
        "reflect": reflect,
        "reflection_index": stable_index(rotation_key + ":reflection", 2**31),
        "step": pick_line(strategy_key, rotation_key),
        "values": values,
        "basis": basis,
        **_image_context(images, alts),
        **_footer_context(recipient, settings),
    }
    return _render("digest", context, recipient, settings, images)


# The short notes the web door sends: a link to the person's page, the two confirmations, an invitation, the
# reconnect and no-data notes. No health value in any of them, at any detail level.
DOOR_NOTES: dict[str, dict[str, Any]] = {
    "page-link": {
        "subject": "Your emberwatch page",
        "paragraphs": ["Here is the link to your page that you asked for. It works for a few weeks; every email "
                       "from emberwatch carries a fresh one."],
        "action": "Open your page",
        "closing": "If you did not ask for this, nothing needs doing: the link only opens your own page.",
    },
    "confirm-export": {
        "subject": "Your data from emberwatch",
        "paragraphs": ["You asked to take a copy of everything emberwatch holds about you. The link below "
                       "downloads it as one file; it works once, within half an hour."],
        "action": "Download your data",
        "closing": "If you did not ask for this, nothing needs doing: without this link nothing is downloaded.",
    },
    "confirm-erase": {
        "subject": "Deleting your data from emberwatch",
        "paragraphs": ["You asked to delete everything emberwatch holds about you. The link below asks you "
                       "once more, then deletes it all; it works once, within half an hour."],
        "action": "Delete my data",
        "closing": "If you did not ask for this, nothing needs doing: without this link nothing is deleted.",
    },
    "invite": {
        "subject": "Welcome to emberwatch",
        "paragraphs": [
            "emberwatch notices when your sleep and overnight recovery drift away from your own usual, and "
            "sends you a short, kind note when they do, plus a gentle weekly check-in.",
            "Only you see your data and your emails. Nobody at work does.",
        ],
        "action": "Connect your watch",
        "closing": "Connecting takes a minute or two, whenever suits you.",
    },
    # the welcome of someone whose nights come from an export they shared (no watch to connect)
    "invite-page": {
        "subject": "Welcome to emberwatch",
        "paragraphs": [
            "emberwatch notices when your sleep and overnight recovery drift away from your own usual, and "
            "sends you a short, kind note when they do, plus a gentle weekly check-in.",
            "Only you see your data and your emails. Nobody at work does.",
        ],
        "action": "Open your page",
        "closing": "Nothing needs doing now; your page is there whenever you want it.",
    },
    "reconnect": {
        "subject": "Please reconnect your watch to emberwatch",
        "paragraphs": [
            "emberwatch can no longer read your watch's data: the connection you gave it has ended. That "
            "happens now and then (a password change, a permission taken back, or simply time) and nothing "
            "is wrong on your side.",
            "Until you reconnect you will get no notes from us, and nothing about you is shared with anyone.",
        ],
        "action": "Reconnect your watch",
        "closing": "Reconnect whenever suits you; it takes a minute or two.",
    },
    # One of several devices lost its connection: the others still count, so the notes carry on meanwhile.
    "reconnect-device": {
        "subject": "Please reconnect your {device} to emberwatch",
        "paragraphs": [
            "emberwatch can no longer read your {device}'s data: the connection you gave it has ended. That "
            "happens now and then (a password change, a permission taken back, or simply time) and nothing "
            "is wrong on your side.",
            "Your other device's nights still count meanwhile, and your notes carry on as before.",
        ],
        "action": "Reconnect your {device}",
        "closing": "Reconnect whenever suits you; it takes a minute or two.",
    },
    "no-data": {
        "subject": "emberwatch has not heard from your watch",
        "paragraphs": [
            "emberwatch has received no nights from your watch for a few days. Often the watch simply has not "
            "synced with its app, or has been resting on a charger, and that is fine.",
            "Your page shows whether the connection still stands, and lets you reconnect if it does not.",
        ],
        "action": "Check your connection",
        "closing": "There will be no second note about this until data arrives again.",
    },
}


def compose_door_note(kind: str, recipient: Recipient, url: str, settings: MessageSettings,
                      device: str = "") -> ComposedEmail:
    """One of DOOR_NOTES, with its link (and, for a note about one of several devices, that device's name);
    footers as in every email."""
    note = DOOR_NOTES[kind]
    if device:
        note = {key: [p.format(device=device) for p in value] if isinstance(value, list) else value.format(
            device=device) for key, value in note.items()}
    context = {**note, "url": url, **_footer_context(recipient, settings)}
    # Minimal at every level: these notes carry no health value, whatever the person chose.
    return _render("door", context, replace(recipient, detail_level="minimal"), settings, {})


def _check_same_person(recipient: Recipient, person_id: str) -> None:
    # Each person's signals go to that person and nobody else: a mix-up here must stop the email, not send it.
    if recipient.person_id != person_id:
        raise ValueError(
            "The recipient is not the person these signals belong to; refusing to compose. "
            "Check how the caller pairs recipients with explanations."
        )


def _shows_numbers(recipient: Recipient) -> bool:
    return recipient.detail_level in ("numbers", "charts")


def _chart_images(recipient: Recipient, charts: Charts | None) -> tuple[dict[str, bytes], dict[str, str]]:
    """(content-id -> PNG bytes, content-id -> alt text); empty unless the person chose charts."""
    if recipient.detail_level != "charts" or charts is None:
        return {}, {}
    images: dict[str, bytes] = {}
    alts: dict[str, str] = {}
    for cid, image in charts.items():
        if isinstance(image, bytes):
            images[cid], alts[cid] = image, CHART_ALT_TEXT
        else:
            images[cid], alts[cid] = image.png, image.alt or CHART_ALT_TEXT
    return images, alts


def _image_context(images: Mapping[str, bytes], alts: Mapping[str, str]) -> dict[str, Any]:
    return {"images": [{"cid": cid, "alt": alts.get(cid, CHART_ALT_TEXT)} for cid in images]}


def _footer_context(recipient: Recipient, settings: MessageSettings) -> dict[str, Any]:
    return {"links": recipient.links, "support_resource": settings.support_resource}


# ------------------------------------------------------------------------------------------------ rendering


@lru_cache(maxsize=1)
def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        # Escape only the HTML templates; the shared partials and text templates are plain text.
        autoescape=lambda name: name is not None and ".html" in name,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _wrap
    env.filters["wrap_item"] = _wrap_item
    return env


def _wrap(text: str) -> str:
    # Hyphens stay whole ("heart-rate") and long tokens such as commands are never split.
    return textwrap.fill(str(text), TEXT_WIDTH_CHARS, break_long_words=False, break_on_hyphens=False)


def _wrap_item(text: str) -> str:
    return textwrap.fill(
        str(text),
        TEXT_WIDTH_CHARS,
        initial_indent="- ",
        subsequent_indent="  ",
        break_long_words=False,
        break_on_hyphens=False,
    )


def _tidy_text(text: str) -> str:
    # Keep "-- " exactly: it is the standard signature separator (RFC 3676), so mail clients fold the footer.
    lines = [line if line == "-- " else line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n") + "\n"


def _render(
    name: str,
    context: dict[str, Any],
    recipient: Recipient,
    settings: MessageSettings,
    images: dict[str, bytes],
) -> ComposedEmail:
    env = template_environment()
    text = _tidy_text(env.get_template(f"{name}.txt.j2").render(context))
    html = inline_css(env.get_template(f"{name}.html.j2").render(context))
    subject = context["subject"]
    seen_html = visible_text(html)
    for part, content in (("subject", subject), ("text", text), ("html", seen_html)):
        check_message(content, source=f"{name} email {part}")
    if recipient.detail_level == "minimal":
        _check_no_digits(" ".join((subject, text, seen_html)), recipient, settings, name)
    return ComposedEmail(subject=subject, text=text, html=html, images=images)


@lru_cache(maxsize=1)
def _css_inliner() -> css_inline.CSSInliner:
    # Never fetch a stylesheet: an email must not make (or carry) a remote request.
    return css_inline.CSSInliner(load_remote_stylesheets=False, keep_link_tags=False)


_CLASS_ATTR_RE = re.compile(r'\s+class="[^"<>]*"')


def inline_css(html: str) -> str:
    """Move the template's <style> rules into style attributes (many mail clients drop <style> blocks), then
    drop the class attributes that only served the selectors."""
    return _CLASS_ATTR_RE.sub("", _css_inliner().inline(html))


_URL_RE = re.compile(r"https?://\S+")


def _check_no_digits(content: str, recipient: Recipient, settings: MessageSettings, name: str) -> None:
    # The support resource is configured by the organisation (a helpline number is welcome there); it says
    # nothing about the person, so it is the one place digits may appear in a minimal email.
    content = " ".join(content.split())  # wrapping may have broken the resource across lines
    # Links carry signed tokens (and perhaps a port); they say nothing about the person's nights.
    links = [recipient.links.page, recipient.links.pause, recipient.links.unsubscribe] if recipient.links else []
    # Every link (the footer's, the weekly question's answers) carries a signed token, not a value.
    for allowed in (settings.support_resource, *links, *_URL_RE.findall(content)):
        content = content.replace(" ".join(allowed.split()), "")
    if re.search(r"\d", content):
        raise ValueError(
            f"The minimal {name} email would contain digits, which the minimal detail level promises "
            "not to show. "
            "Fix the template or phrase helper that printed a number."
        )


# ------------------------------------------------------------------------------------------------ MIME

_MESSAGE_ID_RE = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")


def to_email_message(
    composed: ComposedEmail,
    recipient: Recipient,
    settings: MessageSettings,
    message_id: str,
    date_utc: datetime,
) -> EmailMessage:
    """multipart/alternative (text/plain, then text/html; images as multipart/related under the HTML)."""
    if not _MESSAGE_ID_RE.fullmatch(message_id):
        raise ValueError(f"Message-ID must look like <unique-part@domain>, got {message_id!r}.")
    if date_utc.tzinfo is None or date_utc.utcoffset() != timedelta(0):
        raise ValueError("date_utc must be a timezone-aware datetime in UTC.")

    msg = EmailMessage()
    msg["From"] = settings.from_address
    msg["To"] = recipient.email
    msg["Subject"] = composed.subject
    msg["Date"] = format_datetime(date_utc)
    msg["Message-ID"] = message_id
    # RFC 3834: marks the mail as automatic so auto-responders stay quiet; Exchange reads the second header.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    if recipient.links is not None:
        # RFC 8058 one-click: a mail client's "unsubscribe" POSTs `List-Unsubscribe=One-Click` to this link, which
        # stops the emails at once; a GET (a person, or a scanner following links) only shows a confirm button.
        msg["List-Unsubscribe"] = f"<{recipient.links.unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # quoted-printable keeps the message 7-bit clean, so servers without 8BITMIME accept it unchanged.
    msg.set_content(composed.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(composed.html, subtype="html", charset="utf-8", cte="quoted-printable")
    if composed.images:
        html_part = msg.get_body(preferencelist=("html",))
        if html_part is None:  # unreachable: the HTML alternative was added just above
            raise RuntimeError("The HTML part went missing while adding images.")
        for index, (cid, png) in enumerate(composed.images.items()):
            html_part.add_related(
                png,
                maintype="image",
                subtype="png",
                cid=f"<{cid}>",
                disposition="inline",
                filename=f"chart-{index + 1}.png",
            )
    _set_stable_boundaries(msg, message_id)
    return msg


def _set_stable_boundaries(msg: EmailMessage, message_id: str) -> None:
    """MIME boundaries derived from the Message-ID instead of random ones: composing the same email twice
    (a rerun after a crash) gives the same bytes, so a rerun's ledger equals a clean run's. '=_' never occurs
    in quoted-printable or base64 bodies, so the boundary cannot collide with content."""
    for index, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        digest = hashlib.sha256(f"{message_id}|{index}".encode()).hexdigest()[:32]
        part.set_boundary(f"=_emberwatch_{digest}")
