"""What a person may do about their own emails and data: see where they stand, shape or stop their emails, take
their data, be forgotten. The CLI and the web door call these same functions."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.ledger import reschedule
from alerts.schedule import next_delivery_utc
from alerts.transport import outbox_stem
from features.devices import DATA_TYPES, default_source
from features.thresholds import Thresholds
from pipelines import validate
from pipelines.settings import Settings
from storage.check_ins import CheckIn, upsert_check_ins
from storage.clicks import ClickLog
from storage.store import Person, Store, StoreError
from storage.tokens import token_rows

log = logging.getLogger("emberwatch")

EMAIL_STATUSES = ("active", "paused", "stopped")


@dataclass(frozen=True)
class EmailChoices:
    """A change to a person's emails. None leaves that part as it is."""

    detail_level: str | None = None
    window: str | None = None  # "07:30-08:30", local time
    days: str | None = None    # "Mon-Fri", "Sun-Thu", "Mon,Wed,Fri"
    status: str | None = None  # active (resume), paused, stopped
    paused_until: date | None = None  # with status "paused": emails resume after this local date


def change_emails(store: Store, person_id: str, choices: EmailChoices, settings: Settings,
                  now_utc: datetime | None = None) -> Person:
    """Check every part of the change first (validate.InputError, a sentence), then apply it all. The change
    holds for the very next email: queued mail moves to the new window, and a new detail level composes the
    person's waiting alerts and check-ins again."""
    now_utc = now_utc or datetime.now(timezone.utc)
    person = store.person(person_id)
    if choices.detail_level is not None:
        validate.detail_level(choices.detail_level)
    if choices.status is not None and choices.status not in EMAIL_STATUSES:
        raise validate.InputError("Emails can be active, paused or stopped.")
    if choices.paused_until is not None:
        if choices.status != "paused":
            raise validate.InputError("A pause end date goes with pausing.")
        if choices.paused_until < now_utc.astimezone(ZoneInfo(person.tz_name)).date():
            raise validate.InputError("The pause would end in the past; choose today or a later date.")
    window = None if choices.window is None else validate.delivery_window(choices.window)
    days = None if choices.days is None else validate.working_days(choices.days)
    if window is not None or days is not None:
        store.set_delivery_preferences(person_id, window=window, days=days)
        current_window, current_days = store.delivery_preferences(person_id)
        reschedule(store, person_id, next_delivery_utc(now_utc, person.tz_name, current_window,
                                                       working_days=current_days))
    changed = store.set_person(person_id, status=choices.status, detail_level=choices.detail_level,
                               paused_until=choices.paused_until)
    if changed.detail_level != person.detail_level:
        from pipelines.steps import recompose_queued  # steps imports this module too

        recompose_queued(store, changed, settings)
    return changed


def connected(store: Store, person_id: str, source: str) -> Person:
    """After a consent: the person's data now comes from `source` (the one the nightly run syncs; their earlier
    sources stay theirs, add_source), and a person who had to reconnect is active again (their tokens are already
    saved in the token file). Reconnecting a second live device leaves the first one the primary."""
    from pipelines.sources import LIVE_SOURCES

    person = store.person(person_id)
    keeps_primary = source in person.sources and person.source in LIVE_SOURCES and person.source != source
    if not keeps_primary:
        store.add_person(person_id, person.email, person.tz_name, source, person.source_config)
    if person.status == "needs_reconsent":
        store.set_person(person_id, status="active")
    return store.person(person_id)


def add_source(store: Store, person_id: str, source: str, endpoints: dict[str, str] | None = None) -> bool:
    """A second device, or a new brand: the person's imports and connections from `source` are accepted from now
    on. Which device counts for each data type follows the default order (features/devices.py) until the person
    chooses. `endpoints`: that source's own API and OAuth URLs, where they are not the environment's (a second
    live source never borrows the first one's). False if they had it already."""
    store.person(person_id)  # a clear error for an unknown id
    return store.add_source(person_id, validate.source(source), endpoints)


def choose_sources(store: Store, person_id: str, choices: dict[str, str]) -> list[str]:
    """The person's choice of which of their devices counts, {data type: source}: every part is checked first
    (validate.InputError), then stored with its time. If anything changed, every night of theirs is worked out
    again at once, so their usual is learnt from the chosen device alone (night_signals.sql). Returns the data
    types that changed."""
    from features.engine import rebuild_all  # the engine is heavy; only this choice needs it here

    person = store.person(person_id)
    choices = {validate.data_type(d): validate.source_of_person(person, s) for d, s in choices.items()}
    before = store.source_choices(person_id)
    changed = [d for d, s in choices.items() if before.get(d) != s]
    for data_type in changed:
        store.set_source_choice(person_id, data_type, choices[data_type])
    if changed:
        rebuild_all(store, person_ids=[person_id])
    return changed


def resume_ended_pauses(store: Store, now_utc: datetime) -> list[str]:
    """People whose pause end date has passed in their own zone get their emails back. Returns their ids."""
    resumed = []
    for person in store.people(active_only=False):
        if person.status == "paused" and person.paused_until is not None \
                and now_utc.astimezone(ZoneInfo(person.tz_name)).date() > person.paused_until:
            store.set_person(person.person_id, status="active")
            resumed.append(person.person_id)
    return resumed


@dataclass(frozen=True)
class Overview:
    """Where a person stands, for their own page: no health value."""

    person_id: str
    tz_name: str
    source: str
    needs_reconnect: bool
    last_night: date | None
    valid_nights: int
    warming_up: bool
    nights_until_comparisons: int
    emails: str  # active, paused, stopped
    paused_until: date | None
    detail_level: str
    window: str
    days: str
    next_email_from_utc: datetime | None  # the start of the next window an email could go out in
    granted_scopes: tuple[str, ...] | None = None  # what a connected watch's owner chose to share
    sources: tuple[str, ...] = ()
    # per data type (features/devices.py: DATA_TYPES): (data type, the source that counts, whether the person
    # chose it rather than the default order)
    counting: tuple[tuple[str, str, bool], ...] = ()
    # the person's other live devices (beside `source`), each with whether it is connected now
    other_live: tuple[tuple[str, bool], ...] = ()


def overview(store: Store, person_id: str, now_utc: datetime, thresholds: Thresholds = Thresholds()) -> Overview:
    person = store.person(person_id)
    window, days = store.delivery_preferences(person_id)
    last_night, valid_nights = store.query_rows(
        "SELECT max(night_date), count(*) FILTER (WHERE valid_night) FROM nightly_features WHERE person_id = ?",
        [person_id])[0]
    # the latest night with a main sleep: a night without one has no baseline of its own (features/windows.py)
    # and would read as "still learning" after one missed night
    latest = store.query_rows(
        "SELECT warming_up FROM night_signals WHERE person_id = ? AND valid_night ORDER BY night_date DESC LIMIT 1",
        [person_id])
    warming_up = latest[0][0] if latest else True
    # The usual is learnt from valid nights that end a week before the night compared (features/sql).
    nights_left = max(thresholds.warmup_nights + thresholds.baseline_end_days - valid_nights, 1) if warming_up else 0
    next_from = None if person.status != "active" else next_delivery_utc(now_utc, person.tz_name, window,
                                                                        working_days=days)
    from pipelines.sources import LIVE_SOURCES, connected_live_sources

    connected_now = connected_live_sources(store, person)
    other_live = tuple((source, source in connected_now) for source in person.sources
                       if source in LIVE_SOURCES and source != person.source)
    granted = None
    if str(store.path) != ":memory:":
        rows = token_rows(store, "SELECT granted_scopes FROM oauth_tokens WHERE person_id = ? AND source = ?",
                          (person_id, person.source))
        granted = tuple(rows[0][0].split()) if rows else None
    chosen = store.source_choices(person_id)
    counting = tuple((data_type, chosen.get(data_type) or default_source(data_type, list(person.sources)),
                      data_type in chosen) for data_type in DATA_TYPES) if person.sources else ()
    return Overview(person_id, person.tz_name, person.source, person.status == "needs_reconsent", last_night,
                    int(valid_nights or 0), bool(warming_up), nights_left,
                    "stopped" if person.status == "stopped" else "paused" if person.status == "paused" else "active",
                    person.paused_until, person.detail_level, window, days, next_from, granted, person.sources,
                    counting, other_live)


def forget(store: Store, person_id: str, outbox_dir: Path) -> tuple[int, int]:
    """Remove every row about the person and their emails in the outbox. Returns (rows, files) removed."""
    address = store.person(person_id).email.lower()  # a clear error for an unknown id
    message_ids = [r[0] for r in store.query_rows(
        "SELECT message_id FROM email_ledger WHERE person_id = ?", [person_id])]
    stems = {outbox_stem(mid) for mid in message_ids}
    # and the door's notes, sent at once outside the ledger (page links, confirmations): found by their address
    if Path(outbox_dir).is_dir():
        from email.parser import BytesHeaderParser

        for eml in Path(outbox_dir).glob("*.eml"):
            with eml.open("rb") as f:
                if str(BytesHeaderParser().parse(f).get("To", "")).strip().lower() == address:
                    stems.add(eml.stem)
    files = 0
    for stem in stems:
        for suffix in (".eml", ".html"):
            path = Path(outbox_dir) / f"{stem}{suffix}"
            if path.exists():
                path.unlink()
                files += 1
    if str(store.path) != ":memory:":
        ClickLog(store.path).forget(person_id)  # what they clicked on their page goes too
    return store.forget_person(person_id, files_removed=files), files


# Secrets are not "data about the person": exporting an encrypted token helps nobody and widens its reach.
EXPORT_SKIP = {"oauth_tokens"}

TABLE_NOTES = {
    "persons": "Your enrolment: id, address, time zone, source, email preferences.",
    "sleep_calibration": "Where your own check-ins often said you felt as usual after short nights, how far your "
                         "sleep threshold was widened, and from which night.",
    "sleep_calibration_pending": "Nights still to be worked out again after such a change (normally empty).",
    "person_sources": "Your devices and exports, and when each was added.",
    "source_choices": "Which of your devices you chose to count for a kind of data, and when.",
    "check_ins": "Your own reports of how you felt (morning reports you imported, answers to the weekly question).",
    "raw_payloads": ("Every payload fetched or imported for you, exactly as received (body as bytes; an Apple "
                     "Health export as its records per type and month, zlib-compressed)."),
    "quarantine": "Items that could not be read, with the reason.",
    "sleep_sessions": "Your sleep logs (main sleep and naps), instants in UTC with the zone in force.",
    "sleep_segments": "Stage segments of each sleep log.",
    "daily_activity": "Steps and active/sedentary minutes per day.",
    "daily_resting_hr": "Resting heart rate per day.",
    "nightly_hrv": "Overnight heart-rate variability (RMSSD).",
    "nightly_vitals": "Overnight breathing rate, skin temperature deviation, SpO2.",
    "nightly_features": "Features computed for each night (see docs/signals.md).",
    "night_signals": "Each night compared with your usual, and the domain flags.",
    "alerts": "Alerts decided for you, with their explanation.",
    "email_ledger": "Emails queued or sent to you (message bodies are dropped once sent).",
    "email_audit": "When each email was sent (no content).",
    "run_failures": "Runs that failed for you, with the error class.",
    "tags": "Context you tagged (illness, travel, on-call, …).",
    "sync_state": "Where each data type's sync stands.",
    "history_arrivals": "Nights that arrived in bulk (an import, a backfill) and the day they arrived (retention).",
}


def export_person(store: Store, person_id: str, out_dir: Path) -> list[Path]:
    """Everything held about a person, one Parquet and one CSV file per table, plus a README."""
    store.person(person_id)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tables = [r[0] for r in store.query_rows(
        "SELECT DISTINCT table_name FROM duckdb_columns() WHERE column_name = 'person_id' ORDER BY 1")]
    written, lines = [], [f"# Everything emberwatch holds about {person_id}", ""]
    for table in tables:
        if table in EXPORT_SKIP:
            continue
        df = store.query_df(f'SELECT * FROM "{table}" WHERE person_id = ?', [person_id])
        for suffix in (".parquet", ".csv"):
            path = out_dir / f"{table}{suffix}"
            df.to_parquet(path, index=False) if suffix == ".parquet" else df.to_csv(path, index=False)
            os.chmod(path, 0o600)
            written.append(path)
        rows = f"{len(df)} row{'' if len(df) == 1 else 's'}"
        lines.append(f"- `{table}.parquet` / `{table}.csv` ({rows}): {TABLE_NOTES.get(table, '')}")
    lines += ["", "Each table comes twice: Parquet (exact types) and CSV (opens anywhere).",
              "Encrypted sign-in tokens are not included: they are secrets, not data about you."]
    readme = out_dir / "README.md"
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(readme, 0o600)
    return written + [readme]


def apply_clicks(store: Store, clicks: ClickLog, settings: Settings, now_utc: datetime | None = None) -> int:
    """Apply what people chose on their page while the database was busy, oldest first. Returns how many."""
    applied = 0
    for click in clicks.pending():
        try:
            if click.action == "emails":
                params = dict(click.params)
                if params.get("paused_until"):
                    params["paused_until"] = date.fromisoformat(params["paused_until"])
                change_emails(store, click.person_id, EmailChoices(**params), settings, now_utc)
            elif click.action == "check-in":
                upsert_check_ins(store, [CheckIn(
                    click.person_id, date.fromisoformat(click.params["report_date"]), click.params["scale"],
                    float(click.params["value"]), "weekly-email", click.recorded_at)])
            elif click.action == "devices":
                choose_sources(store, click.person_id, click.params)
            elif click.action == "connect":
                connected(store, click.person_id, click.params["source"])
            elif click.action == "erase":
                forget(store, click.person_id, settings.outbox_dir)
                applied += 1
                continue  # the click itself went with the person's data
            else:
                log.warning("A recorded click of unknown kind %r was skipped.", click.action)
        except StoreError:
            pass  # the person was forgotten since: nothing left to change
        except validate.InputError as exc:
            log.warning("A recorded choice of person %s could not be applied: %s", click.person_id, exc)
        clicks.mark_applied(click.click_id)
        applied += 1
    return applied
