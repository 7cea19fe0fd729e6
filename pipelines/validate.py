"""Checks for what a person types, made before anything is touched: each returns the clean value or raises
`InputError` carrying one or two sentences (what was wrong, what to type instead).

Plain functions with no I/O beyond reading the file system, so the CLI and (soon) the web app share them. The
CLI turns an `InputError` into a red sentence and exit status 1 in one place (`pipelines/cli.py`).
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # kept light: the CLI imports this module before it knows which command runs
    from storage.store import Person, Store


class InputError(ValueError):
    """A wrong input: `str(exc)` is the sentence to show. Nothing was changed when it is raised."""


# Ids end up in file names, paths and logs: letters, digits, '-' and '_' only, starting with a letter or digit.
PERSON_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}"
_PERSON_ID_RE = re.compile(PERSON_ID_PATTERN)

# One bare address: a local part without spaces, quotes, brackets or separators, and a domain of dotted labels.
_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_DOMAIN_LABEL_RE = re.compile(r"[^\W_]([^\W_]|-)*", re.UNICODE)

DETAIL_LEVELS = ("minimal", "numbers", "charts")
# Synthetic people come only from `emberwatch demo`, which also writes the cohort they are drawn from.
SOURCES = ("fitbit-export", "google-health", "fitbit-web", "google-takeout", "oura", "apple-health")
FEATURE_EXPORT_SUFFIXES = (".csv", ".parquet")
# Wearable data older than this is a typo, and date arithmetic far below it overflows Python's date.
EARLIEST_DATE = date(2000, 1, 1)
_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def person_id(text: str) -> str:
    if not _PERSON_ID_RE.fullmatch(text or ""):
        raise InputError(
            f"{text!r} cannot be a person id: use 1 to 40 letters, digits, '-' or '_', starting with a letter or "
            "digit (for example c01 or p-07)."
        )
    return text


def email_address(text: str) -> str:
    shown = repr(text)
    if any(c in text for c in "\r\n\t\x00"):
        raise InputError(f"The address {shown} contains a line break or control character; type one address on "
                         "one line, for example you@example.org.")
    if any(c in text for c in " ,;<>\"()[]\\:"):
        raise InputError(f"{shown} is not one plain address; type exactly one, such as you@example.org, without "
                         "a name, spaces or commas.")
    if text.count("@") != 1:
        raise InputError(f"{shown} is not an email address: it needs exactly one '@', as in you@example.org.")
    local, domain = text.split("@")
    labels = domain.split(".")
    if (not _LOCAL_RE.fullmatch(local) or local.startswith(".") or local.endswith(".") or ".." in local
            or len(text) > 254):
        raise InputError(f"The part before '@' in {shown} is not a mailbox name; check the address.")
    if len(labels) < 2 or not all(_DOMAIN_LABEL_RE.fullmatch(label) and not label.endswith("-")
                                  for label in labels):
        raise InputError(f"{shown} has no domain after '@'; an address looks like you@example.org.")
    return text


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def time_zone(text: str) -> str:
    if text not in _zones():
        raise InputError(f"{text!r} is not an IANA time zone name; type one such as Europe/Oslo or "
                         "America/New_York (case matters).")
    return text


def iso_date(text: str | None, option: str, *, latest: date | None = None) -> date:
    """A civil date written YYYY-MM-DD only (Python would also take 20200301 or week dates)."""
    if not text:
        raise InputError(f"{option} needs a date written YYYY-MM-DD, for example 2026-03-14.")
    try:
        if not _ISO_DATE_RE.fullmatch(text):
            raise ValueError
        value = date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a date; write it as YYYY-MM-DD, for example 2026-03-14.") \
            from None
    if value < EARLIEST_DATE:
        raise InputError(f"{option} {text} is before {EARLIEST_DATE}; emberwatch reads wearable nights from "
                         f"{EARLIEST_DATE.year} on.")
    if latest is not None and value > latest:
        raise InputError(f"{option} {text} is in the future; choose a date up to {latest}.")
    return value


def night_range(first: date, last: date) -> tuple[date, date]:
    if last < first:
        raise InputError(f"The range ends ({last}) before it starts ({first}); swap --from and --to.")
    return first, last


def count(value: int, option: str, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise InputError(f"{option} {value} is out of range; type a whole number from {minimum} to {maximum}.")
    return value


def one_of(text: str, option: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise InputError(f"{option} {text!r} is not one emberwatch knows; type one of: {', '.join(choices)}.")
    return text


def detail_level(text: str) -> str:
    return one_of(text, "--detail", DETAIL_LEVELS)


def source(text: str) -> str:
    return one_of(text, "--source", SOURCES)


def live_source(text: str) -> str:
    from pipelines.sources import LIVE_SOURCES

    if text not in LIVE_SOURCES:
        raise InputError(f"--source {text!r} is not a live source to connect; type one of: "
                         f"{', '.join(LIVE_SOURCES)}.")
    return text


ENDPOINT_SETTINGS = ("api_base", "authorize_url", "token_url")  # connectors.live.LiveConfig's overridable URLs


def endpoint_settings(source_name: str, text: str) -> dict[str, str]:
    """`--endpoints` of a live source: a JSON object of its URLs (api_base, authorize_url, token_url), each http(s)."""
    live_source(source_name)
    try:
        settings = json.loads(text)
    except ValueError:
        raise InputError(f"--endpoints must be a JSON object such as "
                         f"'{{\"api_base\": \"https://proxy.example.org\"}}'; {text[:60]!r} is not JSON.") from None
    if not isinstance(settings, dict) or not settings:
        raise InputError("--endpoints must be a JSON object with one or more of: " + ", ".join(ENDPOINT_SETTINGS) + ".")
    for key, value in settings.items():
        if key not in ENDPOINT_SETTINGS:
            raise InputError(f"--endpoints: {key!r} is not a setting of a live source; use "
                             f"{', '.join(ENDPOINT_SETTINGS)}.")
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise InputError(f"--endpoints: {key} must be an http(s) URL.")
    return settings


def tag_kind(text: str) -> str:
    from features.tags import TAGS

    if text not in TAGS:
        raise InputError(f"{text!r} is not a tag emberwatch knows; type one of: {', '.join(TAGS)}.")
    return text


def delivery_window(text: str) -> str:
    """'7:30-8:30' -> '07:30-08:30', inside the hours emberwatch delivers."""
    from alerts.schedule import ScheduleError, parse_window

    try:
        start, end = parse_window(text)
    except ScheduleError as exc:
        raise InputError(str(exc)) from None
    return f"{start:%H:%M}-{end:%H:%M}"


def working_days(text: str) -> str:
    from alerts.schedule import ScheduleError, parse_working_days

    try:
        if not parse_working_days(text):
            raise ScheduleError(f"--days {text!r} names no day; write days like Mon-Fri or Mon,Wed,Fri.")
    except ScheduleError as exc:
        raise InputError(str(exc)) from None
    return text.replace(" ", "")


def fitbit_export_folder(path: Path) -> Path:
    from connectors.fitbit_export import FitbitExportSource

    if not path.exists():
        raise InputError(f"There is no folder {path}; point to the export's fitbit/ folder, for example "
                         "pmdata/p01/fitbit.")
    if not path.is_dir():
        raise InputError(f"{path} is a file; point to the folder that holds sleep.json, for example "
                         "pmdata/p01/fitbit.")
    try:
        FitbitExportSource(path)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    return path


def _inside_existing_folder(path: Path) -> Path:
    # A typo in --out must not leave a stray tree of new folders behind.
    if not path.parent.is_dir():
        raise InputError(f"The folder {path.parent} does not exist; create it first or choose --out inside an "
                         "existing folder.")
    return path


def new_export_folder(path: Path) -> Path:
    """`export --out`: a folder that is new or empty, inside one that exists."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file; --out takes a folder name, for example c01-data/.")
    if path.is_dir() and any(path.iterdir()):
        raise InputError(f"The folder {path} already holds files; choose a new or empty folder for the export.")
    return _inside_existing_folder(path)


def features_file(path: Path) -> Path:
    if path.suffix.lower() not in FEATURE_EXPORT_SUFFIXES:
        raise InputError(f"'{path.name}' should end in .csv or .parquet; those are the formats the export writes.")
    if path.is_dir():
        raise InputError(f"{path} is a folder; --out takes a file name such as nights.parquet.")
    return _inside_existing_folder(path)


def google_takeout_path(path: Path) -> Path:
    """`import google-takeout`: the Takeout folder or its .zip/.tgz, read (never extracted) to check it holds health
    files and no member escapes the archive."""
    import tarfile
    import zipfile

    from connectors.google_takeout import GoogleTakeoutSource, UnsafeArchive

    if not path.exists():
        raise InputError(f"There is no {path}; point to the Google Takeout folder, or the .zip or .tgz as "
                         "downloaded.")
    try:
        GoogleTakeoutSource(path)
    except (FileNotFoundError, UnsafeArchive) as exc:
        raise InputError(str(exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError) as exc:  # a damaged or cut-off download
        raise InputError(f"{path} could not be read as an archive ({exc}); download it again.") from None
    return path


def takeout_person(person: Person) -> Person:
    return person_of_source(person, "google-takeout", "a Google Takeout", "archive")


def apple_health_path(path: Path) -> Path:
    """`import apple-health`: export.zip (holding apple_health_export/export.xml) or export.xml itself; opened,
    never extracted."""
    import zipfile

    from connectors.apple_health import open_export

    try:
        archive, stream = open_export(path)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:  # a damaged or cut-off download
        raise InputError(f"{path} could not be read as an archive ({exc}); export it again.") from None
    stream.close()
    if archive is not None:
        archive.close()
    return path


def apple_person(person: Person) -> Person:
    return person_of_source(person, "apple-health", "an Apple Health export", "export")

# --- checks that read the database (still change nothing) ---------------------------------------------------


def unknown_person(pid: str) -> str:
    return (f"No person with id '{pid}' is enrolled. `emberwatch status` lists everyone; "
            "`emberwatch person add` enrols someone.")


def enrolled_person(store: Store, text: str) -> Person:
    pid = person_id(text)
    for person in store.people(active_only=False):
        if person.person_id == pid:
            return person
    raise InputError(unknown_person(pid))


def new_person(store: Store, text: str) -> str:
    pid = person_id(text)
    if any(p.person_id == pid for p in store.people(active_only=False)):
        raise InputError(f"{pid} is already enrolled, and nothing was changed. To change their address or zone, "
                         f"type `emberwatch person set {pid} --email ADDRESS` (or --timezone ZONE).")
    return pid


def live_person(person: Person) -> Person:
    """Backfill fetches from a live API; people whose data comes from a file or the demo have none."""
    from pipelines.sources import LIVE_SOURCES

    if person.source not in LIVE_SOURCES:
        how = (f"`emberwatch import {person.source} PATH --person {person.person_id}` adds their history"
               if person.source in ("fitbit-export", "google-takeout", "apple-health") else "their data is generated by the demo")
        raise InputError(f"{person.person_id}'s data comes from {person.source}, not a live source, so there is "
                         f"nothing to backfill; {how}.")
    return person


def person_of_source(person: Person, source: str, what: str, thing: str) -> Person:
    """An import only into a person who has that kind of export among their sources: a second device is added
    on purpose first (`person add-source`), never by a typo in --person."""
    if source not in person.sources:
        raise InputError(f"{person.person_id}'s data comes from {', '.join(person.sources) or person.source}, not "
                         f"from {what}. If this {thing} is theirs too (a second device, or a new brand), add it "
                         f"first with `emberwatch person add-source {person.person_id} --source {source}`; "
                         f"otherwise enrol it under its own id with `emberwatch person add ID ... --source {source}`.")
    return person


def data_type(text: str) -> str:
    from features.devices import DATA_TYPES

    return one_of(text, "--data", tuple(DATA_TYPES))


def source_of_person(person: Person, text: str) -> str:
    """One of the person's own sources (a choice of which device counts)."""
    if text not in person.sources:
        raise InputError(f"{person.person_id} has no source {text!r}; type one of: {', '.join(person.sources)}.")
    return text


def export_person(person: Person) -> Person:
    return person_of_source(person, "fitbit-export", "a Fitbit export", "export")


# --- check-ins (`emberwatch import check-ins`, `emberwatch validate`) ---------------------------------------------

CHECK_IN_FORMATS = ("pmsys", "csv")


def check_in_format(text: str) -> str:
    return one_of(text, "--format", CHECK_IN_FORMATS)


def check_in_file(path: Path, fmt: str) -> Path:
    """A readable CSV whose header fits the format; rows are checked one by one on import (bad ones are
    quarantined with a reason), but a file of another kind altogether is refused before anything is stored."""
    from connectors.check_in_files import PMSYS_TIME_COLUMN, header_of, missing_columns

    if not path.exists():
        raise InputError(f"There is no file {path}; point to the reports file, for example pmdata/p01/pmsys/"
                         "wellness.csv.")
    if path.is_dir():
        raise InputError(f"{path} is a folder; point to the reports file inside it, for example wellness.csv.")
    header = header_of(path.read_bytes())
    if header is None:
        raise InputError(f"{path} is not UTF-8 text; save it as CSV (UTF-8) and import it again.")
    if missing_columns(header, fmt):
        expected = (f"{PMSYS_TIME_COLUMN},fatigue,mood,readiness,…" if fmt == "pmsys" else "date,scale,value")
        other = "csv" if fmt == "pmsys" else "pmsys"
        hint = f" (or is it --format {other}?)" if not missing_columns(header, other) else ""
        raise InputError(f"{path.name} does not start with the header {expected} that --format {fmt} reads"
                         f"{hint}.")
    return path


def no_check_ins(pids: list[str]) -> str:
    who = "No one has" if not pids else f"{', '.join(pids)} {'has' if len(pids) == 1 else 'have'} no"
    return (f"{who} check-ins to compare with yet; `emberwatch import check-ins FILE --person ID` brings in "
            "morning reports.")
