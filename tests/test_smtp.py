"""Transports: a real SMTP server on loopback (aiosmtpd), error classification, and the owner-only outbox."""

from __future__ import annotations

import email
import email.policy
import smtplib
import socket
import stat
from datetime import UTC, date, datetime

import pytest

from alerts.compose import compose_alert, to_email_message
from tests.smtp_server import RecordingHandler, free_port, smtp_server  # noqa: F401 (fixture)
from alerts.message_types import AlertExplanation, FeatureMove, MessageSettings, Recipient
from alerts.transport import (
    PermanentDeliveryError,
    SmtpConfig,
    SmtpConfigError,
    TransientDeliveryError,
    is_loopback_host,
    outbox_stem,
    send_smtp,
    write_to_outbox,
)

RECIPIENT_EMAIL = "ana@example.org"
MESSAGE_ID = "<alert-c01-2024-05-03@emberwatch.local>"
OBSERVATION = "Over the last few nights, you slept a little less than your usual"


def build_message(detail: str = "minimal", charts=None, message_id: str = MESSAGE_ID):
    recipient = Recipient(
        person_id="c01", email=RECIPIENT_EMAIL, tz_name="Europe/London", detail_level=detail
    )
    explanation = AlertExplanation(
        person_id="c01",
        night_date=date(2024, 5, 3),
        domains=("sleep", "recovery"),
        window_nights=(),
        flagged_nights=(),
        moves=(
            FeatureMove("tst_min", "down", True, -1.6, 425.0, 370.0, "min"),
            FeatureMove("resting_hr_bpm", "up", True, 2.4, 58.0, 62.0, "bpm"),
        ),
        baseline_nights=48,
        persisting_nights=4,
    )
    settings = MessageSettings()
    composed = compose_alert(recipient, explanation, settings, charts=charts)
    sent_at = datetime(2024, 5, 3, 6, 45, tzinfo=UTC)
    return to_email_message(composed, recipient, settings, message_id, sent_at)


def plain_config(port: int, host: str = "127.0.0.1", **kwargs) -> SmtpConfig:
    return SmtpConfig(host=host, port=port, security="none", timeout_s=5, **kwargs)


# ---------------------------------------------------------------------------------------------------- SMTP


def test_plain_smtp_to_loopback_delivers_multipart_alternative_with_headers(smtp_server):
    handler, port = smtp_server
    send_smtp(build_message(), plain_config(port))

    assert len(handler.envelopes) == 1
    envelope = handler.envelopes[0]
    assert envelope.mail_from == "no-reply@emberwatch.local"
    assert envelope.rcpt_tos == [RECIPIENT_EMAIL]
    received = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert received.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in received.iter_parts()] == ["text/plain", "text/html"]
    assert received["Subject"] == "A gentle note about your week"
    assert received["Message-ID"] == MESSAGE_ID
    assert received["Auto-Submitted"] == "auto-generated"
    assert received["Date"] == "Fri, 03 May 2024 06:45:00 +0000"
    assert OBSERVATION in " ".join(received.get_body(("plain",)).get_content().split())


def test_plain_smtp_to_localhost_by_name_is_allowed(smtp_server):
    handler, port = smtp_server
    send_smtp(build_message(), plain_config(port, host="localhost"))
    assert len(handler.envelopes) == 1


def test_plain_smtp_to_a_remote_host_is_refused_before_connecting(monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("send_smtp tried to connect")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    monkeypatch.setattr(smtplib.SMTP, "connect", no_connection)
    with pytest.raises(SmtpConfigError, match="only to this machine"):
        send_smtp(build_message(), SmtpConfig(host="smtp.example.org", port=25, security="none"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST."])
def test_loopback_hosts(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["smtp.example.org", "10.0.0.5", "0.0.0.0", "localhost.example.org", "192.168.1.1"]
)
def test_non_loopback_hosts(host):
    assert not is_loopback_host(host)


def test_starttls_is_never_silently_skipped(smtp_server):
    # The test server offers no STARTTLS: sending in the clear instead would be a silent downgrade.
    handler, port = smtp_server
    with pytest.raises(PermanentDeliveryError, match="does not support"):
        send_smtp(build_message(), SmtpConfig(host="127.0.0.1", port=port, security="starttls", timeout_s=5))
    assert handler.envelopes == []


def test_550_reply_is_a_permanent_error_with_its_code(smtp_server):
    handler, port = smtp_server
    handler.data_reply = "550 5.7.1 Message rejected by policy"
    with pytest.raises(PermanentDeliveryError) as caught:
        send_smtp(build_message(), plain_config(port))
    assert caught.value.code == 550
    assert "Message rejected by policy" in caught.value.reason


def test_451_reply_is_a_transient_error_with_its_code(smtp_server):
    handler, port = smtp_server
    handler.data_reply = "451 4.3.0 Try again later"
    with pytest.raises(TransientDeliveryError) as caught:
        send_smtp(build_message(), plain_config(port))
    assert caught.value.code == 451


def test_refused_recipient_reason_does_not_carry_the_address(smtp_server):
    handler, port = smtp_server
    handler.rcpt_reply = "550 5.1.1 <{address}>: Recipient address rejected"
    with pytest.raises(PermanentDeliveryError) as caught:
        send_smtp(build_message(), plain_config(port))
    assert caught.value.code == 550
    assert "Recipient address rejected" in caught.value.reason
    assert RECIPIENT_EMAIL not in str(caught.value)
    assert "ana" not in str(caught.value)


def test_refused_recipient_with_4xx_is_transient(smtp_server):
    handler, port = smtp_server
    handler.rcpt_reply = "450 4.2.1 Mailbox busy"
    with pytest.raises(TransientDeliveryError) as caught:
        send_smtp(build_message(), plain_config(port))
    assert caught.value.code == 450


def test_connection_refused_is_transient():
    port = free_port()  # nothing listens there once the probe socket is closed
    with pytest.raises(TransientDeliveryError, match="try again later") as caught:
        send_smtp(build_message(), plain_config(port))
    assert caught.value.code is None


def test_a_server_that_never_greets_times_out_as_transient():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        config = SmtpConfig(host="127.0.0.1", port=port, security="none", timeout_s=0.5)
        with pytest.raises(TransientDeliveryError):
            send_smtp(build_message(), config)


def test_password_stays_out_of_repr_and_a_username_needs_one():
    config = SmtpConfig(host="smtp.example.org", username="emberwatch", password="hunter2-secret")
    assert "hunter2-secret" not in repr(config)
    assert "hunter2-secret" not in str(config)
    with pytest.raises(SmtpConfigError, match="no password"):
        send_smtp(build_message(), SmtpConfig(host="smtp.example.org", username="emberwatch"))


# ---------------------------------------------------------------------------------------------------- outbox


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outbox_writes_eml_and_html_owner_only(tmp_path):
    outbox = tmp_path / "home" / "outbox"
    eml_path = write_to_outbox(build_message(), outbox)

    assert eml_path == outbox / "alert-c01-2024-05-03_at_emberwatch.local.eml"
    html_path = eml_path.with_suffix(".html")
    assert mode(outbox) == 0o700
    assert mode(eml_path) == 0o600 and mode(html_path) == 0o600
    parsed = email.message_from_bytes(eml_path.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == MESSAGE_ID
    assert parsed.get_content_type() == "multipart/alternative"
    html = html_path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert OBSERVATION in html


def test_outbox_is_idempotent_per_message_id(tmp_path):
    outbox = tmp_path / "outbox"
    first = write_to_outbox(build_message(), outbox)
    again = write_to_outbox(build_message(detail="numbers"), outbox)

    assert first == again
    assert sorted(p.name for p in outbox.iterdir()) == [
        "alert-c01-2024-05-03_at_emberwatch.local.eml",
        "alert-c01-2024-05-03_at_emberwatch.local.html",
    ]  # no second copy, no temporary files left behind
    assert "What the numbers say" in again.with_suffix(".html").read_text(encoding="utf-8")


def test_outbox_html_inlines_chart_images_as_data_uris(tmp_path):
    png = b"\x89PNG\r\n\x1a\nfake"
    msg = build_message(detail="charts", charts={"chart-1@emberwatch.local": png})
    html = write_to_outbox(msg, tmp_path / "outbox").with_suffix(".html").read_text(encoding="utf-8")
    assert "cid:" not in html
    assert 'src="data:image/png;base64,iVBORw0KGgpmYWtl"' in html


def test_outbox_names_stay_inside_the_folder():
    stem = outbox_stem("<../../etc/passwd@evil>")
    assert "/" not in stem and not stem.startswith(".")
    assert outbox_stem("<a/b@x>") != outbox_stem("<a_b@x>")
    with pytest.raises(ValueError):
        outbox_stem("<>")
