"""The nightly and weekly steps as plain functions: flows call them; tests call them directly.

Each step works on one store and reads like its name. None of them knows about Prefect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable

from alerts.compose import compose_alert, compose_digest, compose_door_note, to_email_message
from alerts.nightly_alert import alert_for_night
from alerts.digest import build_week_summary, period_key
from alerts.ledger import (already_queued, deliver_after, mark_attempt, mark_failed, mark_sent, postpone,
                           queue_email, queued, waiting)
from alerts.message_types import ComposedEmail, MessageSettings, Recipient
from alerts.rules import AlertRules, Outcome
from alerts.schedule import DAYTIME, EVERY_DAY, next_delivery_utc
from alerts.signed_links import LinkSigner, PersonLinks, person_links
from alerts.transport import (PermanentDeliveryError, SmtpConfig, TransientDeliveryError, send_smtp,
                              with_retries, write_to_outbox)
from connectors.base import PersonContext, Source
from connectors.live import LiveSource
from connectors.token_vault import ConsentRequired
from storage.crash_points import crash_point
from storage.store import Person, Store, utc_now
from storage.tokens import DbTokenStore
from features.thresholds import Thresholds
from pipelines.settings import Settings, link_keys, load_settings
from pipelines.sources import NEEDS_RECONSENT
# The writer's step lives apart so that a file import loads no emails or links; callers use it from here too.
from pipelines.ingest import Fetched, IngestReport, SyncResult, ingest, update_features  # noqa: F401

log = logging.getLogger("emberwatch")


def fetch_window(source: Source, ctx: PersonContext, start: date, end: date) -> Fetched:
    """One person's fetch of [start, end], as an outcome. Touches no database and sends nothing."""
    if isinstance(source, LiveSource):
        outcome = source.fetch_outcome(ctx, start, end)
        return Fetched(ctx, source, outcome.payloads, outcome.synced_types, outcome.synced_through,
                       outcome.consent_lost)
    return Fetched(ctx, source, list(source.fetch(ctx, start, end)))


def fetch_person(person: Person, source: Source, night: date, refetch_nights: int) -> Fetched:
    """Fetch the person's nights up to `night`, re-fetching the last few because watches sync late.
    Touches no database, so people can be fetched concurrently."""
    ctx = PersonContext(person.person_id, person.tz_name)
    fetched = fetch_window(source, ctx, night - timedelta(days=refetch_nights), night)
    crash_point("fetch")
    return fetched


def ask_to_reconnect(store: Store, lost: ConsentRequired) -> None:
    """The writer's side of a lost consent: forget the dead token and queue exactly one kind "please reconnect"
    email. With another device still connected, the person stays active (their notes go on from it) and the note
    names the device that stopped; the lost one is no longer synced (no token), so its loss is not found again.
    Otherwise the person is marked needs_reconsent (no email when they were marked already)."""
    from pipelines.sources import connected_live_sources

    DbTokenStore(store, None).delete(lost.person_id, lost.source)  # a dead token is no use, and keeps nothing safer
    person = store.person(lost.person_id)
    now = datetime.now(timezone.utc)
    if connected_live_sources(store, person):
        kind, period, device = "reconnect-device", f"{now.date().isoformat()} {lost.source}", lost.source
    elif person.status == NEEDS_RECONSENT:
        return
    else:
        person = store.set_person(lost.person_id, status=NEEDS_RECONSENT)
        kind, period, device = "reconnect", now.date().isoformat(), ""
    # Like every note, it waits for the person's delivery window rather than arriving at 3 a.m. (queue_email).
    queue_door_note(store, person, kind, period, load_settings(), now, to_connect=True, source=device)
    log.warning("Person %s must reconnect %s; a %s note is queued.", lost.person_id, lost.source, kind)


def message_settings(settings: Settings) -> MessageSettings:
    return MessageSettings(from_address=settings.email_from, support_resource=settings.support_resource)


@lru_cache(maxsize=4)
def _link_signer(keys: tuple[str, ...]) -> LinkSigner:
    return LinkSigner(list(keys))


def links_for(person: Person, settings: Settings, issued_at: datetime) -> PersonLinks:
    """The signed links in the person's emails, dated by the email's own clock (so a re-composed email is the
    same bytes)."""
    return person_links(settings.public_url, _link_signer(tuple(link_keys(settings))), person.person_id, issued_at)


def week_question_links(person: Person, settings: Settings, week_end: date, issued_at: datetime) -> tuple[str, ...]:
    """The weekly question's five answers ("not at all" .. "completely" drained), each a signed link to a page with
    a button: the week it asks about and the answer are in the signed link, nothing else."""
    signer = _link_signer(tuple(link_keys(settings)))
    base = settings.public_url.rstrip("/")
    return tuple(f"{base}/check-in/" + quote(signer.sign("check-in", person.person_id, issued_at,
                                                         week=week_end.isoformat(), value=value), safe="")
                 for value in range(1, 6))


def compose_weekly(store: Store, person: Person, summary, settings: Settings, issued_at: datetime):
    """The weekly check-in for `summary`'s week: charts if chosen, and the week's one optional question."""
    return lambda to, ms: compose_digest(to, summary, ms, charts=charts_for(store, person, summary.week_end),
                                         ask=week_question_links(person, settings, summary.week_end, issued_at))


def recipient(person: Person, links: PersonLinks | None = None) -> Recipient:
    return Recipient(person.person_id, person.email, person.tz_name, person.detail_level,  # type: ignore[arg-type]
                     links)


def charts_for(store: Store, person: Person, last_night: date) -> dict | None:
    """Charts for a person who chose them: a few weeks of sleep, resting HR and HRV against their usual band,
    drawn here from what the store holds so that composition never reads the database."""
    if person.detail_level != "charts":
        return None
    from alerts.chart_data import load_series  # matplotlib: paid only by people who chose charts
    from alerts.charts import render_charts

    return render_charts(load_series(store, person.person_id, last_night))


def queue_composed(store: Store, person: Person, kind: str, period: str, settings: Settings, now_utc: datetime,
                   compose: Callable[[Recipient, MessageSettings], ComposedEmail]) -> bool:
    """compose -> MIME -> ledger for one person's alert or check-in (alerts.ledger.queue_email: once per key)."""
    to, message_settings_ = recipient(person, links_for(person, settings, now_utc)), message_settings(settings)
    return queue_email(
        store, person, kind, period,
        lambda message_id: to_email_message(compose(to, message_settings_), to, message_settings_, message_id,
                                            now_utc),
        now_utc)


def recompose_queued(store: Store, person: Person, settings: Settings) -> int:
    """The person's alerts and check-ins still waiting for their window, composed again after a change of detail
    level, as of the moment each was queued (same Message-ID, same links, same Date): the very next email follows
    the change. Returns how many were composed again."""
    from alerts.digest import build_week_summary
    from alerts.ledger import replace_queued
    from alerts.nightly_alert import explanation_from_json

    waiting_mail = store.query_rows(
        "SELECT kind, period_key, message_id, queued_at FROM email_ledger WHERE person_id = ? AND status = 'queued' "
        "AND kind IN ('alert', 'digest')", [person.person_id])
    for kind, period, message_id, queued_at in waiting_mail:
        at = queued_at.replace(tzinfo=timezone.utc)
        to, ms = recipient(person, links_for(person, settings, at)), message_settings(settings)
        if kind == "alert":
            explanation = explanation_from_json(store.query_rows(
                "SELECT explanation_json FROM alerts WHERE person_id = ? AND night_date = ?",
                [person.person_id, date.fromisoformat(period)])[0][0])
            composed = compose_alert(to, explanation, ms, charts=charts_for(store, person, explanation.night_date))
        else:
            year, week = (int(part) for part in period.split("-W"))
            summary = build_week_summary(store, person.person_id, date.fromisocalendar(year, week, 1))
            composed = compose_weekly(store, person, summary, settings, at)(to, ms)
        replace_queued(store, message_id, bytes(to_email_message(composed, to, ms, message_id, at)))
    return len(waiting_mail)


def queue_door_note(store: Store, person: Person, kind: str, period: str, settings: Settings, now_utc: datetime,
                    *, to_connect: bool = False, deliver_now: bool = False, source: str = "") -> bool:
    """One of the door's short notes (alerts.compose.DOOR_NOTES: invite, reconnect, reconnect-device, no-data),
    once per person, kind and period. Its link opens the person's page, or goes straight to connecting their
    watch (or, with `source`, that one of their devices, which the note names)."""
    from features.devices import SOURCE_WORDS

    to = recipient(person, links_for(person, settings, now_utc))
    url = to.links.page + ("/connect" if to_connect else "")  # type: ignore[union-attr]
    url += f"?source={source}" if source and to_connect else ""
    device = SOURCE_WORDS.get(source, source)
    ms = message_settings(settings)
    note = "invite-page" if kind == "invite" and not to_connect else kind  # no watch: the welcome opens the page
    return queue_email(
        store, person, kind, period,
        lambda message_id: to_email_message(compose_door_note(note, to, url, ms, device), to, ms, message_id,
                                            now_utc),
        now_utc, now_utc if deliver_now else None)


# A watch that has sent nothing for this many nights gets one note (docs/email.md): long enough that a weekend
# off the wrist or a missed sync says nothing, short enough to catch a dead connection within the week.
NO_DATA_AFTER_NIGHTS = 4


def queue_no_data_notes(store: Store, people: Iterable[Person], night: date, settings: Settings,
                        now_utc: datetime) -> int:
    """One kind note when a connected watch has sent nothing for NO_DATA_AFTER_NIGHTS nights; keyed on the last
    night received, so there is no second note until data comes back (and a later gap gets its own)."""
    from pipelines.sources import LIVE_SOURCES

    queued = 0
    for person in people:
        if person.source not in LIVE_SOURCES or person.status != "active":
            continue
        last, enrolled = store.query_rows(
            "SELECT (SELECT max(night_date) FROM sleep_sessions WHERE person_id = ?), "
            "(SELECT enrolled_at FROM persons WHERE person_id = ?)", [person.person_id, person.person_id])[0]
        since = last or enrolled.date()
        if (night - since).days >= NO_DATA_AFTER_NIGHTS:
            queued += queue_door_note(store, person, "no-data", since.isoformat(), settings, now_utc)
    return queued


@dataclass
class AlertStepResult:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    queued: int = 0


def queue_alerts(
    store: Store, people: Iterable[Person], night: date, settings: Settings, now_utc: datetime,
    thresholds: Thresholds = Thresholds(), rules: AlertRules = AlertRules(),
) -> AlertStepResult:
    result = AlertStepResult()
    for person in people:
        outcome, explanation = alert_for_night(store, person.person_id, night, thresholds, rules)
        result.outcomes[person.person_id] = outcome
        if explanation is None or person.status != "active":
            continue
        result.queued += queue_composed(
            store, person, "alert", night.isoformat(), settings, now_utc,
            lambda to, ms, e=explanation, p=person: compose_alert(to, e, ms, charts=charts_for(store, p, e.night_date)))
    return result


def queue_digests(
    store: Store, people: Iterable[Person], week_start: date, settings: Settings, now_utc: datetime,
    thresholds: Thresholds = Thresholds(),
) -> int:
    count = 0
    period = period_key(week_start)
    for person in people:
        if person.status != "active" or already_queued(store, person.person_id, "digest", period):
            continue
        summary = build_week_summary(store, person.person_id, week_start, thresholds)
        if summary.valid_nights_total == 0:
            continue  # nothing synced yet: a welcome with no data would only be noise
        count += queue_composed(store, person, "digest", period, settings, now_utc,
                                compose_weekly(store, person, summary, settings, now_utc))
    return count


Transport = Callable[["object"], object]


def transport_for(settings: Settings) -> Callable:
    """SMTP when a host is configured (transient failures retried with backoff within the run); otherwise the
    outbox folder (.eml + .html) under EMBERWATCH_HOME."""
    if settings.smtp_host:
        cfg = SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            security=settings.smtp_security, timeout_s=settings.smtp_timeout_s,
        )
        return with_retries(lambda msg: send_smtp(msg, cfg))
    return lambda msg: write_to_outbox(msg, settings.outbox_dir)


@dataclass
class DeliveryResult:
    sent: int = 0
    deferred: int = 0  # tried and failed for now (transient): stays queued for a later run
    failed: int = 0
    waiting: int = 0  # queued but not due yet (outside the person's window), or the person is paused
    # due, but the run came after the person's window had closed: moved to the window's next opening
    postponed: int = 0


def apply_recorded_choices(store: Store, settings: Settings, now_utc: datetime) -> int:
    """Before anything is sent: what people chose on their page while the database was busy, and pauses whose
    end date has passed. Returns how many changes were applied."""
    from pipelines.people import apply_clicks, resume_ended_pauses
    from storage.clicks import ClickLog

    if str(store.path) == ":memory:":
        return len(resume_ended_pauses(store, now_utc))
    return apply_clicks(store, ClickLog(store.path), settings, now_utc) + \
        len(resume_ended_pauses(store, now_utc))


# Mail an operator sends by hand (`emberwatch invite`, while enrolling someone, who may be waiting for the link):
# it goes out at once, not at the next morning window, but never at night in the person's zone.
OPERATOR_SENT = frozenset({"invite"})


def _window_opens(store: Store, person: Person, *, operator_sent: bool, now_utc: datetime) -> datetime:
    """`now_utc` while the person's window for this mail is open, else its next opening: daytime any day for
    OPERATOR_SENT mail, the person's own window and days for everything else."""
    if operator_sent:
        return next_delivery_utc(now_utc, person.tz_name, DAYTIME, working_days=EVERY_DAY)
    return deliver_after(store, person, now_utc)


def deliver_queued(store: Store, send: Callable, now_utc: datetime | None = None) -> DeliveryResult:
    """Send what is queued and due, only while its person's window is open: mail a run finds after the window
    has closed (a late run, a pause that just ended, a server that was down) waits for the next opening instead of
    arriving at night or on a day off. Transient failures stay queued for the next run; permanent ones are
    recorded with their reason and not retried."""
    from email import message_from_bytes, policy
    from email.utils import format_datetime

    now_utc = now_utc or datetime.now(timezone.utc)
    result = DeliveryResult()
    due = queued(store, due_at=now_utc)
    opens: dict[tuple[str, bool], datetime] = {}  # now while the window is open, else its next opening
    for item in due:
        key = (item.person_id, item.kind in OPERATOR_SENT)
        if key not in opens:
            opens[key] = _window_opens(store, store.person(item.person_id), operator_sent=key[1], now_utc=now_utc)
        if opens[key] > now_utc:
            postpone(store, item.message_id, opens[key])
            result.postponed += 1
            continue
        msg = message_from_bytes(item.message_bytes, policy=policy.default)
        # dated when it goes out, not when it was queued: a client that shows or sorts by Date would otherwise
        # put a note found at 03:00, or held over a weekend, at that hour
        del msg["Date"]
        msg["Date"] = format_datetime(now_utc)
        mark_attempt(store, item.message_id)
        if item.attempts > 0 and item.last_error is None:
            # A previous attempt may have been delivered before its run died: same Message-ID, so it is detectable.
            log.warning("Re-sending %s %s for %s after an earlier unfinished attempt", item.kind, item.period_key,
                        item.person_id)
        try:
            send(msg)
        except TransientDeliveryError as exc:
            mark_failed(store, item.message_id, str(exc), permanent=False)
            result.deferred += 1
            log.warning("Delivery deferred for person %s (%s): %s", item.person_id, item.kind, exc)
            continue
        except PermanentDeliveryError as exc:
            mark_failed(store, item.message_id, str(exc), permanent=True)
            result.failed += 1
            log.error("Delivery failed for person %s (%s): %s", item.person_id, item.kind, exc)
            continue
        crash_point("send")  # the server has it; the ledger does not yet (the documented edge)
        mark_sent(store, item.message_id, now_utc)
        crash_point("sent")
        log.debug("Sent %s %s to person %s", item.kind, item.period_key, item.person_id)
        result.sent += 1
    result.waiting = waiting(store) - result.deferred
    return result


def deliver_until(store: Store, send: Callable, until_utc: datetime,
                  before_each: Callable[[datetime], object] | None = None) -> DeliveryResult:
    """What the 15-minute `deliver` schedule would have sent before `until_utc`: each queued email at the moment it
    falls due, inside its person's own window (people live in several zones), and mail a run postponed found again
    at its new moment. For replays (the demo) and tests; `before_each(moment)` runs before each delivery (the
    page choices recorded meanwhile). A paused person's mail stays queued and is passed over."""
    total, after = DeliveryResult(), None
    while True:
        [(due,)] = store.query_rows(
            "SELECT min(e.deliver_after_utc) FROM email_ledger e JOIN persons p USING (person_id) "
            "WHERE e.status = 'queued' AND p.status = 'active' AND e.deliver_after_utc < ? "
            "AND (CAST(? AS TIMESTAMP) IS NULL OR e.deliver_after_utc > ?)",
            [until_utc.astimezone(timezone.utc).replace(tzinfo=None), after, after])
        if due is None:
            total.waiting = waiting(store)
            return total
        at = due.replace(tzinfo=timezone.utc)
        if before_each is not None:
            before_each(at)
        result = deliver_queued(store, send, at)
        total.sent += result.sent
        total.deferred += result.deferred
        total.failed += result.failed
        total.postponed += result.postponed
        after = due


def failure_text(exc: BaseException) -> str:
    """Only the error's class and first line: messages from libraries can carry payload fragments."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"


def record_failure(store: Store, run_label: str, person_id: str, stage: str, exc: BaseException) -> None:
    text = failure_text(exc)
    with store.cursor() as cur:
        cur.execute("INSERT INTO run_failures VALUES (?, ?, ?, ?, ?)", [run_label, person_id, stage, text, utc_now()])
