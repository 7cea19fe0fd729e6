"""The small optional steps an email may offer, as data (docs/messages.md, "Strategies"), and which fits
a signal.

Every line is an offer, never an instruction: a question or a "might". Lines are picked deterministically
from a stable key (person + period) so a person does not read the same line every week, and a re-run
renders the same email.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

# Persistence thresholds (nights in a row with at least one domain flagged; docs/messages.md, "Strategies"):
# both domains beyond a week -> supervision or a support network; three weeks or more -> caseload and
# professional help.
SUPERVISION_AFTER_NIGHTS = 7  # strictly more than this
CASELOAD_FROM_NIGHTS = 21  # this many or more


@dataclass(frozen=True)
class Strategy:
    key: str
    name: str
    lines: tuple[str, ...]


STRATEGIES: dict[str, Strategy] = {
    s.key: s
    for s in (
        Strategy(
            "self_compassion",
            "Self-compassion and self-reflection",
            (
                "Noticing this is itself a form of care.",
                "You might offer yourself a little of the kindness you offer others every day.",
            ),
        ),
        Strategy(
            "boundaries",
            "Self-care and boundaries",
            (
                "Could tonight end work a little earlier — no calls or email after your set hours?",
                "If it fits your week, one evening with a firm finish time for work might be a kind choice.",
            ),
        ),
        Strategy(
            "mindfulness",
            "Self-care and mindfulness",
            (
                "A few minutes of slow breathing or a short walk might be kind to tomorrow's you.",
                "If there's a quiet moment between sessions, a few unhurried breaths might help you land.",
            ),
        ),
        Strategy(
            "self_care",
            "Self-care",
            (
                "Self-care doesn't always have to feel good in the moment — it's about being kind to your "
                "future self. Could one small thing come off tomorrow's list?",
                "Perhaps an earlier, quieter wind-down tonight, if that feels possible.",
            ),
        ),
        Strategy(
            "supervision",
            "Supervision and consultation",
            (
                "Would it help to bring a heavy case to supervision or a trusted colleague this week?",
                "Is there a colleague you could think out loud with this week, even briefly?",
            ),
        ),
        Strategy(
            "support_network",
            "Support network",
            (
                "Is there someone — a friend, a colleague, family — you could spend a little unhurried time "
                "with this week?",
            ),
        ),
        Strategy(
            "caseload",
            "Caseload and professional help",
            ("It's okay to look at your caseload, and it's okay to have someone of your own to talk to.",),
        ),
        # Not a burnout-prevention strategy: for when an illness flag held the alert back (docs/messages.md).
        Strategy(
            "rest",
            "Self-care: rest",
            (
                "If you can, an early night and a lighter day might be the kindest plan.",
                "Rest counts as care too — might there be room for a little more of it this week?",
            ),
        ),
    )
}

FALLBACK_STRATEGY = "self_compassion"


def choose_strategy(
    domains: Iterable[str], persisting_nights: int, *, rotation_key: str | None = None
) -> str:
    """Match the strategy to the signal (docs/messages.md, "Strategies"); the longer it lasts, the more it
    looks out."""
    flagged = set(domains)
    if flagged and persisting_nights >= CASELOAD_FROM_NIGHTS:
        return "caseload"
    if {"sleep", "recovery"} <= flagged:
        if persisting_nights > SUPERVISION_AFTER_NIGHTS:
            # Both fit equally well; alternate by a stable key rather than always pointing to supervision.
            options = ("supervision", "support_network")
            return options[stable_index(rotation_key, len(options))] if rotation_key else options[0]
        return "self_care"
    if flagged == {"sleep"}:
        return "boundaries"
    if flagged == {"recovery"}:
        return "mindfulness"
    return FALLBACK_STRATEGY


def strategy(key: str) -> Strategy:
    try:
        return STRATEGIES[key]
    except KeyError:
        raise ValueError(
            f"Unknown strategy {key!r}; expected one of {', '.join(sorted(STRATEGIES))}."
        ) from None


def pick_line(key: str, rotation_key: str) -> str:
    """One line of the strategy: the same for the same key (e.g. person id + week), rotating across keys."""
    lines = strategy(key).lines
    return lines[stable_index(rotation_key, len(lines))]


def stable_index(rotation_key: str, n: int) -> int:
    # hashlib, not hash(): Python salts str hashes per process, which would make re-runs render differently.
    digest = hashlib.sha256(rotation_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n
