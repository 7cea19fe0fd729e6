"""The one "please reconnect" email, sent when a person's watch authorisation is gone. Kind, short, no health data."""

from __future__ import annotations

import html
from datetime import date, datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime

from alerts.ledger import queue_email
from storage.store import Person, Store

SUBJECT = "Please reconnect your watch to emberwatch"
KIND = "reconnect"

_TEXT = """Hello,

emberwatch can no longer read your watch's data: the connection you gave it has ended. That happens now and then
(a password change, a permission taken back, or simply time) and nothing is wrong on your side.

If you would like emberwatch to carry on, reconnect whenever suits you by asking your emberwatch contact to run
the short sign-in again. Until then you will get no notes from us, and nothing about you is shared with anyone.

Take care,
emberwatch
"""


def compose_reconnect(person: Person, from_address: str, message_id: str, now_utc: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = person.email
    msg["Subject"] = SUBJECT
    msg["Date"] = format_datetime(now_utc.astimezone(timezone.utc))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(_TEXT, subtype="plain", charset="utf-8", cte="quoted-printable")
    paragraphs = "".join(f"<p>{html.escape(p).replace(chr(10), ' ')}</p>" for p in _TEXT.strip().split("\n\n"))
    msg.add_alternative(f"<!doctype html><html><body>{paragraphs}</body></html>", subtype="html",
                        charset="utf-8", cte="quoted-printable")
    return msg


def queue_reconnect(store: Store, person: Person, day: date, from_address: str, now_utc: datetime,
                    deliver_after_utc: datetime | None = None) -> bool:
    """Queue the email once per person and date (the ledger's key), for the person's next delivery window
    unless `deliver_after_utc` says otherwise; False when it was already queued."""
    return queue_email(store, person, KIND, day.isoformat(),
                       lambda message_id: compose_reconnect(person, from_address, message_id, now_utc),
                       now_utc, deliver_after_utc)
