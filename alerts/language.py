"""The words emberwatch never uses (docs/messages.md, "Words"), and a check that fails loudly when one slips
in.

Matching is case-insensitive and on word boundaries ("poorly" is caught by its own pattern, "impatient" is
not a "patient"). Decisions beyond the literal list, all on the side of caution:

- Inflections that carry the same label or grade are banned too: diagnose/diagnosed/diagnosis/diagnostic,
  disorder(s)/disordered, depression/depressed/depressive/depressing, insomnia/insomniac,
  abnormal/abnormally/abnormality, fail/fails/failed/failing/failure(s), poor/poorer/poorest/poorly,
  patient(s), score/scores/scored/scoring.
- "symptom(s) of" is banned as the bare word symptom/symptoms/symptomatic: there is no kind use of it in a
  wellness note.
- "patient" is banned even as an adjective ("be patient with yourself"): a clinician reads it as their
  clients.
- docs/messages.md also rules out grades, streaks and comparison with other people; those get their own
  patterns.
- "burnout" alone is not banned (the project is about its physical side) but "burnout detected/risk" are.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

# Each entry is a regex fragment without anchors; find_banned adds word boundaries. Longer phrases come first
# so that "anxiety disorder" is reported as the phrase, not as "disorder".
BANNED_TERMS: tuple[str, ...] = (
    r"anxiety\s+disorders?",
    r"burnout\s+detected",
    r"burnout\s+risks?",
    r"diagnos(?:e|es|ed|ing|is|tic|tics)",
    r"disorder(?:s|ed)?",
    r"depress(?:ion|ions|ed|ive|ing)",
    r"insomnia|insomniacs?",
    r"abnormal(?:ly|ity|ities)?",
    r"fail(?:s|ed|ing|ures?)?",
    r"poor(?:er|est|ly)?",
    r"patients?",
    r"symptom(?:s|atic)?",
    r"scor(?:e|es|ed|ing)",
)

# docs/messages.md, "Words": no imperatives. Steps are offered as questions or with "might".
BANNED_IMPERATIVES: tuple[str, ...] = (
    r"you\s+must",
    r"you\s+should",
    r"you\s+need\s+to",
    r"you\s+have\s+to",
    r"you\s+ought\s+to",
)

# docs/messages.md, "Words": no grades, no streaks, no comparison with other people.
BANNED_FRAMINGS: tuple[str, ...] = (
    r"grade[sd]?",
    r"streaks?",
    r"than\s+(?:most|other)\s+(?:people|clinicians|colleagues|users)",
    r"than\s+others",
    r"compared\s+(?:with|to)\s+(?:others|other\s+people|other\s+clinicians|your\s+colleagues)",
)

_BANNED_RE = re.compile(
    r"\b(?:" + "|".join(f"(?:{p})" for p in BANNED_TERMS + BANNED_IMPERATIVES + BANNED_FRAMINGS) + r")\b",
    re.IGNORECASE,
)

SNIPPET_CONTEXT_CHARS = 40
TEMPLATE_DIR = Path(__file__).parent / "templates"


class BannedLanguageError(ValueError):
    def __init__(self, words: list[str], snippet: str, source: str = "") -> None:
        self.words = words
        self.snippet = snippet
        self.source = source
        where = f" in {source}" if source else ""
        super().__init__(
            f"Banned wording{where}: {', '.join(words)} (…{snippet}…). "
            "Rephrase it in the voice of docs/messages.md: signals, pattern, compared with your usual."
        )


def find_banned(text: str) -> list[str]:
    """The banned words and phrases found, lower-cased, each once, in order of first appearance."""
    found: list[str] = []
    for match in _BANNED_RE.finditer(text):
        word = re.sub(r"\s+", " ", match.group(0).lower())
        if word not in found:
            found.append(word)
    return found


def check_message(text: str, *, source: str = "") -> None:
    """Raise BannedLanguageError when the text uses a banned word; return None when it is clean."""
    match = _BANNED_RE.search(text)
    if match is None:
        return
    start = max(0, match.start() - SNIPPET_CONTEXT_CHARS)
    end = min(len(text), match.end() + SNIPPET_CONTEXT_CHARS)
    snippet = " ".join(text[start:end].split())
    raise BannedLanguageError(words=find_banned(text), snippet=snippet, source=source)


def check_template_sources(template_dir: Path = TEMPLATE_DIR) -> list[Path]:
    """Check every template's raw source (comments included); return the files checked.

    Raw, not rendered, so wording behind a branch no test happens to render is still checked.
    """
    checked: list[Path] = []
    for path in sorted(template_dir.glob("*.j2")):
        check_message(path.read_text(encoding="utf-8"), source=path.name)
        checked.append(path)
    if not checked:
        raise FileNotFoundError(f"No templates (*.j2) found in {template_dir}; nothing was checked.")
    return checked


class _VisibleText(HTMLParser):
    _HIDDEN = {"style", "script", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        for name, value in attrs:
            # alt text is read aloud by screen readers and shown when images are off: it is visible text.
            if name == "alt" and value:
                self.parts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The text a reader sees in an HTML email (tags and styles removed, entities decoded, alt text kept)."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return " ".join(" ".join(parser.parts).split())
