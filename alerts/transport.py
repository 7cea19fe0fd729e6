"""Hand a finished EmailMessage to a local outbox folder (.eml plus a viewable .html) or to an SMTP server.

Delivery errors are sorted into transient (try again later) and permanent (retrying will not help), and
their text never carries the recipient's address: these reasons end up in logs and run artifacts.
"""

from __future__ import annotations

import base64
import hashlib
import html as html_lib
import ipaddress
import os
import re
import smtplib
import socket
import ssl
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

OUTBOX_DIR_MODE = 0o700  # health-adjacent mail: readable by its owner only
OUTBOX_FILE_MODE = 0o600
MAX_STEM_CHARS = 150

SmtpSecurity = Literal["starttls", "ssl", "none"]


# ---------------------------------------------------------------------------------------------------- outbox


def outbox_stem(message_id: str) -> str:
    """A file name stem from a Message-ID: same id, same stem, so rewriting an email replaces it."""
    inner = message_id.strip().strip("<>").strip()
    readable = inner.replace("@", "_at_")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", readable).strip("._-")
    if not stem:
        raise ValueError(f"Cannot make a file name from Message-ID {message_id!r}.")
    if stem != readable or len(stem) > MAX_STEM_CHARS:
        # Characters were replaced or cut, so two ids could share a stem: a hash of the id tells them apart.
        stem = f"{stem[: MAX_STEM_CHARS - 17]}-{hashlib.sha256(inner.encode('utf-8')).hexdigest()[:16]}"
    return stem


def viewable_html(msg: EmailMessage) -> str:
    """The HTML body with cid: images inlined as data: URIs: it opens in a browser as the reader sees it."""
    body = msg.get_body(preferencelist=("html", "plain"))
    if body is None:
        raise ValueError("The message has no text or HTML body to write to the outbox.")
    content = body.get_content()
    if body.get_content_subtype() == "plain":
        return f'<!DOCTYPE html>\n<meta charset="utf-8">\n<pre>{html_lib.escape(content)}</pre>\n'
    data_uris: dict[str, str] = {}
    for part in msg.walk():
        content_id = part.get("Content-ID")
        if content_id and part.get_content_maintype() == "image":
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            encoded = base64.b64encode(payload).decode("ascii")
            data_uris[content_id.strip().strip("<>")] = f"data:{part.get_content_type()};base64,{encoded}"
    return re.sub(r"cid:([^\"'\s>]+)", lambda m: data_uris.get(m.group(1), m.group(0)), content)


def write_to_outbox(msg: EmailMessage, outbox_dir: Path) -> Path:
    """Write `<stem>.eml` and `<stem>.html` (owner-only, atomic, one pair per Message-ID); return the .eml.

    A full disk or an unwritable folder raises TransientDeliveryError: the email stays queued and the next run
    writes it, once the operator has made room (an OSError would stop the whole delivery run instead)."""
    message_id = msg["Message-ID"]
    if not message_id:
        raise ValueError("The message has no Message-ID; the outbox names files after it, so set one first.")
    stem = outbox_stem(str(message_id))
    outbox_dir = Path(outbox_dir)
    html_path, eml_path = outbox_dir / f"{stem}.html", outbox_dir / f"{stem}.eml"
    try:
        outbox_dir.mkdir(mode=OUTBOX_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(
            outbox_dir, OUTBOX_DIR_MODE
        )  # mkdir's mode is filtered by umask and ignored for an existing folder
        # The .html first, the .eml last: a present .eml means the pair is complete.
        _write_atomic(html_path, viewable_html(msg).encode("utf-8"))
        _write_atomic(eml_path, msg.as_bytes())
    except OSError as exc:
        if not eml_path.exists():
            html_path.unlink(missing_ok=True)  # no half pair: the outbox holds only what was delivered
        raise TransientDeliveryError(
            f"Could not write the email to the outbox folder {outbox_dir} ({exc.strerror or type(exc).__name__}); "
            "it stays queued and the next run will write it. Free some space or fix the folder's permissions."
        ) from None
    return eml_path


def _write_atomic(path: Path, data: bytes) -> None:
    # mkstemp creates the file 0600 from the start, so no other user can open it between creation and chmod.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, OUTBOX_FILE_MODE)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in repr, logs or errors
    security: SmtpSecurity = "starttls"
    timeout_s: float = 30.0


class DeliveryError(Exception):
    """A message was not delivered. `code` is the SMTP reply code when the server gave one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class TransientDeliveryError(DeliveryError):
    """Worth retrying later: connection trouble, timeouts, 4xx replies."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help: 5xx replies, TLS or configuration problems."""


class SmtpConfigError(PermanentDeliveryError, ValueError):
    """The SMTP settings are unsafe or incomplete; raised before any connection is made."""


def send_smtp(msg: EmailMessage, cfg: SmtpConfig) -> None:
    """Send one message; raise TransientDeliveryError or PermanentDeliveryError when it was not accepted."""
    _check_config(cfg)
    where = f"the mail server at {cfg.host}:{cfg.port}"
    client: smtplib.SMTP | None = None
    try:
        context = ssl.create_default_context()  # certificate and host name verification on
        if cfg.security == "ssl":
            client = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        if cfg.security == "starttls":
            client.starttls(context=context)
        if cfg.username:
            client.login(cfg.username, cfg.password or "")
        refused = client.send_message(msg)
        if refused:
            code, text = next(iter(refused.values()))
            raise _from_reply(code, text, f"{where} refused the recipient")
    except DeliveryError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise _from_reply(code, text, f"{where} refused the recipient") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentDeliveryError(
            f"{where} does not support a step emberwatch needs ({_redact(str(exc))}). "
            "Check the security setting (starttls, ssl) and the port."
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise _from_reply(exc.smtp_code, exc.smtp_error, f"{where} did not accept the message") from None
    except smtplib.SMTPServerDisconnected as exc:
        if isinstance(exc.__context__, TimeoutError):
            # smtplib reports a reply that never came as a disconnection; it is a stall, say so.
            raise _no_answer(where, cfg) from None
        raise TransientDeliveryError(
            f"{where} closed the connection early; emberwatch will try again later."
        ) from None
    except TimeoutError:
        raise _no_answer(where, cfg) from None
    except ConnectionRefusedError:
        raise TransientDeliveryError(
            f"Could not connect to {where}: nothing accepted the connection (is the server running, and are "
            "the host and port right?); emberwatch will try again later."
        ) from None
    except ssl.SSLError as exc:
        raise PermanentDeliveryError(
            f"The secure connection to {where} failed ({exc.reason or type(exc).__name__}). "
            "Check the security "
            "setting and the port (starttls usually 587, ssl usually 465) and the server's certificate."
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        # Refused connections, timeouts, DNS hiccups: the server may be back in a minute.
        raise TransientDeliveryError(
            f"Could not reach {where} ({type(exc).__name__}: {_redact(str(exc)) or 'no detail'}); "
            "emberwatch will try again later."
        ) from None
    finally:
        if client is not None:
            _close_quietly(client)


def _no_answer(where: str, cfg: SmtpConfig) -> TransientDeliveryError:
    # A server that accepts the connection and then stalls (at the greeting, or in the middle of DATA). After a
    # stall past the final "." the server may still deliver: a retry carries the same Message-ID (detectable).
    return TransientDeliveryError(
        f"{where} did not answer within {cfg.timeout_s:g} s (it may be overloaded, or stalled in the middle "
        "of the message); emberwatch will try again later."
    )


# Within one delivery run: up to four attempts, 1, 2 and 4 s apart (ours: a mail server restarting or a brief
# network hiccup clears in seconds; anything longer is left to the next run, when the message is still queued).
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0)


class RetryingSender:
    """Wrap a send function: retry TransientDeliveryError with backoff; permanent errors are raised at once.

    Once a message has used up its retries because the server could not be reached at all (no SMTP reply code),
    later messages of the same run get one attempt each without waiting: an outage should cost a run seconds,
    not seconds times the queue.
    """

    def __init__(
        self,
        send: Callable[[EmailMessage], object],
        delays_s: Sequence[float] = RETRY_DELAYS_S,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._send = send
        self.delays_s = tuple(delays_s)
        self._sleep = sleep
        self.server_unreachable = False
        self.attempts = 0  # every call of the wrapped send, for tests and logs

    def __call__(self, msg: EmailMessage) -> None:
        delays = () if self.server_unreachable else self.delays_s
        for attempt in range(len(delays) + 1):
            try:
                self.attempts += 1
                self._send(msg)
                self.server_unreachable = False
                return
            except TransientDeliveryError as exc:
                if attempt == len(delays):
                    if exc.code is None:
                        self.server_unreachable = True
                    raise
                self._sleep(delays[attempt])


def with_retries(
    send: Callable[[EmailMessage], object],
    delays_s: Sequence[float] = RETRY_DELAYS_S,
    sleep: Callable[[float], object] = time.sleep,
) -> RetryingSender:
    return RetryingSender(send, delays_s, sleep)


def _check_config(cfg: SmtpConfig) -> None:
    if cfg.security not in ("starttls", "ssl", "none"):
        raise SmtpConfigError(f"Unknown SMTP security {cfg.security!r}; use starttls, ssl or none.")
    if cfg.username and cfg.password is None:
        raise SmtpConfigError("An SMTP username is set but no password; set EMBERWATCH_SMTP_PASSWORD.")
    if cfg.security == "none" and not is_loopback_host(cfg.host):
        raise SmtpConfigError(
            "Plain SMTP (security 'none') is allowed only to this machine (localhost, 127.0.0.1, ::1), "
            "not to "
            f"{cfg.host!r}: mail would cross the network unencrypted. Use starttls or ssl."
        )


def is_loopback_host(host: str) -> bool:
    """True for a loopback address, or for "localhost" when every address it resolves to is loopback.

    Other names are refused without a lookup: a DNS answer is not proof of staying on this machine.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if name != "localhost":
            return False
        try:
            infos = socket.getaddrinfo(name, None)
        except OSError:
            return False
        return bool(infos) and all(_is_loopback_ip(str(info[4][0])) for info in infos)
    return _is_loopback_ip(str(address))


def _is_loopback_ip(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


_ADDRESS_RE = re.compile(r"<?[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*>?")


def _redact(text: str) -> str:
    # Servers often echo the address ("<ana@example.org>: Recipient address rejected"): keep the reason, drop
    # the address.
    return _ADDRESS_RE.sub("<recipient>", text).strip()


def _from_reply(code: int, text: bytes | str, what: str) -> DeliveryError:
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    reason = f"{what} (SMTP {code}: {_redact(' '.join(reply.split()))})"
    if 400 <= code < 500:
        return TransientDeliveryError(f"{reason}; emberwatch will try again later.", code)
    if 500 <= code < 600:
        return PermanentDeliveryError(
            f"{reason}; retrying will not help, check the address and SMTP settings.", code
        )
    return TransientDeliveryError(f"{reason}; an unexpected reply, emberwatch will try again later.", code)


def _close_quietly(client: smtplib.SMTP) -> None:
    # A failed QUIT after a successful send must not turn a delivered message into an error.
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()
