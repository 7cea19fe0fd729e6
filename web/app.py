"""The clinician's door: the pages a clinician reaches from the links in their emails (`emberwatch web`).

Routes, templates and signed-link checks only. What a click does is a function of pipelines.people, the same the
CLI calls. Every change is first recorded durably (storage.clicks), then applied to the database at once if it
is free, or before the next email goes out if the nightly run holds it; the person sees "done" either way.

Safe by default: links are signed per purpose (alerts.signed_links); tampered, expired, used or wrong-purpose
links get a plain 4xx page and change nothing; forms carry a signed token (CSRF); the "email me a link" form
answers the same for every address and is rate-limited; pages send no referrer, cannot be framed and load
nothing from elsewhere; no address, token or health value is logged (uvicorn's access log is off: paths hold
signed tokens).
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import zipfile
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from jinja2 import Environment, FileSystemLoader
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from alerts.compose import (WEEK_DRAINED_ANSWERS, WEEK_QUESTION, WEEK_SLEEP_ANSWERS, WEEK_SLEEP_QUESTION,
                            compose_door_note, to_email_message)
from alerts.ledger import message_id_for
from alerts.message_types import MessageSettings
from alerts.signed_links import LinkError, LinkSigner, SignedLink
from features.devices import DATA_TYPE_WORDS, DATA_TYPES, SOURCE_WORDS
from pipelines import validate
from pipelines.people import EmailChoices, Overview, apply_clicks, export_person, overview
from connectors.oauth import finish_consent, start_consent
from connectors.token_vault import TokenCipher
from pipelines.settings import Settings, link_keys, load_settings
from pipelines.sources import LIVE_SOURCES
from pipelines.steps import links_for, message_settings, recipient, transport_for
from storage.clicks import ClickLog
from storage.store import Store, StoreError
from storage.tokens import DbTokenStore
from web.limits import RateLimiter

log = logging.getLogger("emberwatch")
HERE = Path(__file__).resolve().parent

# How long a page waits for the database before it says "busy" (the nightly run holds it only while writing).
READ_WAIT_S = 3.0
APPLY_WAIT_S = 1.0
DAYS_CHOICES = ("Mon-Fri", "Sun-Thu", "Mon-Sat", "Mon-Sun")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class PageError(Exception):
    """Ends a request with a plain page: a status and one or two sentences."""

    def __init__(self, status: int, title: str, message: str, *, back: str | None = None,
                 fresh_link: bool = False) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message
        # where the page leads on: back to the form, or (a link that no longer works) to asking for a fresh one
        self.back, self.fresh_link = back, fresh_link


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def create_app(settings: Settings | None = None, *, clock: Callable[[], datetime] = _utc_now,
               send: Callable[[Any], object] | None = None) -> FastAPI:
    settings = settings or load_settings()
    signer = LinkSigner(link_keys(settings))
    clicks = ClickLog(settings.db_path)
    deliver = send or transport_for(settings)
    # Every template is HTML: escape everything (the default would leave `.j2` files unescaped).
    templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))
    link_requests = RateLimiter(per_window=5, window=timedelta(minutes=10))
    link_requests_per_address = RateLimiter(per_window=3, window=timedelta(hours=1))

    app = FastAPI(title="emberwatch", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # --- plumbing -------------------------------------------------------------------------------------------

    def page(request: Request, template: str, title: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, {
            "title": title, "support_resource": settings.support_resource, "notice": None, "back": None,
            "fresh_link": False,
            **context},
            status_code=status)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> HTMLResponse:
        headers = {"Retry-After": "120"} if exc.status == 503 else None
        response = page(request, "message.html.j2", exc.title, exc.status, message=exc.message, back=exc.back,
                        fresh_link=exc.fresh_link)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 404:
            return page(request, "message.html.j2", "Nothing here", 404,
                        message="This address does not lead to a page. The links in your emails do.")
        return page(request, "message.html.j2", "That did not work", exc.status_code,
                    message="This request could not be handled. The links in your emails lead to your page.")

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return page(request, "message.html.j2", "That did not work", 400,
                    message="Something in that request was missing or out of place. Please go back and try again.")

    def verify(purpose: str, token: str) -> SignedLink:
        try:
            return signer.verify(purpose, token, clock())
        except LinkError as exc:
            status = 410 if "expired" in str(exc) else 403
            raise PageError(status, "This link cannot be used", str(exc), fresh_link=True) from None

    def form_token(person_id: str) -> str:
        return signer.sign("form", person_id, clock())

    async def form_of(request: Request, person_id: str) -> dict[str, str]:
        """The posted form, after its CSRF token proves it came from this person's own page."""
        form = {k: str(v) for k, v in (await request.form()).items()}
        try:
            token = signer.verify("form", form.get("form_token", ""), clock())
        except LinkError:
            token = None
        if token is None or token.person_id != person_id:
            raise PageError(403, "Please try that again",
                            "This form has expired or did not come from your page. Please open your page again "
                            "from its link and try again; nothing was changed.")
        return form

    def open_store(wait_s: float) -> Store:
        try:
            return Store(settings.db_path, wait_s=wait_s)
        except StoreError:
            raise PageError(503, "Back in a few minutes",
                            "emberwatch is busy with its nightly update for a few minutes. Please try again "
                            "shortly; anything you saved is kept.") from None

    def apply_now() -> bool:
        """Apply recorded clicks if the database is free; False when they wait for the next run."""
        try:
            store = Store(settings.db_path, wait_s=APPLY_WAIT_S)
        except StoreError:
            return False
        with store:
            apply_clicks(store, clicks, settings, clock())
        return True

    def record(person_id: str, action: str, params: dict[str, Any]) -> bool:
        clicks.record(person_id, action, params)
        return apply_now()

    def known_person(link: SignedLink) -> Overview:
        with open_store(READ_WAIT_S) as store:
            try:
                return overview(store, link.person_id, clock())
            except StoreError:
                # Erased since the email was sent: the same answer as any link that no longer works.
                raise PageError(410, "This link cannot be used",
                                "This link no longer leads to a page. If you are enrolled, the link in your most "
                                "recent email will work.") from None

    def still_enrolled(link: SignedLink) -> None:
        """A link of someone whose data was erased leads nowhere (410), like their page link; while the database is
        busy the answer is recorded anyway and applied only to someone who is still enrolled."""
        try:
            known_person(link)
        except PageError as exc:
            if exc.status != 503:
                raise

    def send_note(kind: str, person_id: str, url: str) -> None:
        with open_store(READ_WAIT_S) as store:
            person = store.person(person_id)
        now = clock()
        to = recipient(person, links_for(person, settings, now))
        ms = message_settings(settings)
        # Unique per request (these are not ledger emails): the Message-ID names the kind and the moment.
        message_id = message_id_for(person_id, kind, now.isoformat())
        deliver(to_email_message(compose_door_note(kind, to, url, ms), to, ms, message_id, now))

    def answer(request: Request, token: str, done: str, applied: bool = True) -> Response:
        """Back to the page that was changed; while the database is busy the page cannot be drawn, so the
        answer is the sentence alone (the choice is recorded and applies before the next email)."""
        if applied:
            return _back(token, done)
        return page(request, "message.html.j2", "Saved", message=NOTICES[f"{done}-later"],
                    back=f"/me/{quote(token, safe='')}")

    def url_for(path: str) -> str:
        return url_for_public(settings, path)

    # --- the person's page ----------------------------------------------------------------------------------

    @app.get("/me/{token}", response_class=HTMLResponse)
    def my_page(request: Request, token: str, done: str | None = None) -> HTMLResponse:
        link = verify("page", token)
        if clicks.pending(link.person_id):
            apply_now()  # choices saved while the database was busy show as made once it is free
        status = known_person(link)
        pending = bool(clicks.pending(link.person_id))
        return page(request, "me.html.j2", "Your emberwatch page", token=token, s=status,
                    form_token=form_token(link.person_id), notice=_notice(done, pending),
                    words=_status_words(status), detail_levels=validate.DETAIL_LEVELS,
                    shared=shared_in_words(status.granted_scopes) if status.granted_scopes else None,
                    devices=_devices(status),
                    other_devices=[(source, SOURCE_WORDS.get(source, source), connected)
                                   for source, connected in status.other_live],
                    primary_device=SOURCE_WORDS.get(status.source, status.source),
                    days_choices=_days_choices(status.days), window_start=status.window.split("-")[0],
                    window_end=status.window.split("-")[1], today=_local_today(status, clock()).isoformat())

    @app.get("/me/{token}/pause", response_class=HTMLResponse)
    def pause_page(request: Request, token: str) -> HTMLResponse:
        link = verify("page", token)
        status = known_person(link)
        if status.emails == "stopped":  # an old email's pause link must not switch stopped emails back on
            return _stopped_no_pause(request, token)
        return page(request, "pause.html.j2", "Pause your emails", token=token, s=status,
                    form_token=form_token(link.person_id),
                    today=_local_today(status, clock()).isoformat(),
                    in_two_weeks=(_local_today(status, clock()) + timedelta(days=14)).isoformat())

    @app.post("/me/{token}/emails")
    async def save_emails(request: Request, token: str) -> Response:
        link = verify("page", token)
        form = await form_of(request, link.person_id)
        choices = EmailChoices(
            detail_level=form.get("detail_level") or None,
            window=f"{form['window_start']}-{form['window_end']}" if form.get("window_start") and form.get(
                "window_end") else None,
            days=form.get("days") or None)
        _check_choices(choices)
        return answer(request, token, "saved", record(link.person_id, "emails", _params(choices)))

    @app.post("/me/{token}/devices")
    async def save_devices(request: Request, token: str) -> Response:
        """Which of the person's devices counts for each kind of data (features/devices.py)."""
        link = verify("page", token)
        form = await form_of(request, link.person_id)
        status = known_person(link)
        if any(form.get(data_type, "") not in status.sources for data_type in DATA_TYPES):
            raise PageError(400, "Please check your choices",
                            "Each kind of data can count from one of your own devices. Please choose again; "
                            "nothing was changed.")
        # only what the person changed becomes their choice: the rest keeps following the usual order
        changed = {data_type: form[data_type] for data_type, counting, _ in status.counting
                   if form[data_type] != counting}
        if not changed:
            return _back(token, "unchanged")
        return answer(request, token, "devices", record(link.person_id, "devices", changed))

    @app.post("/me/{token}/pause")
    async def pause(request: Request, token: str) -> Response:
        link = verify("page", token)
        form = await form_of(request, link.person_id)
        until = None
        if form.get("until"):
            try:
                until = date.fromisoformat(form["until"])
            except ValueError:
                raise PageError(400, "Please check the date", "The date was not one we could read; please "
                                "pick it again.") from None
        try:
            status: Overview | None = known_person(link)
        except PageError as exc:
            if exc.status != 503:
                raise
            status = None  # the database is busy: recorded now, checked when applied (pipelines/people.py)
        if status is not None and status.emails == "stopped":
            return _stopped_no_pause(request, token)
        if status is not None and until is not None and until < _local_today(status, clock()):
            raise PageError(400, "Please check the date",
                            "That date has already passed, so nothing was paused. Please pick a later one, or "
                            "leave it empty to pause until you start them again.",
                            back=f"/me/{quote(token, safe='')}/pause")
        choices = EmailChoices(status="paused", paused_until=until)
        return answer(request, token, "paused", record(link.person_id, "emails", _params(choices)))

    def _stopped_no_pause(request: Request, token: str) -> HTMLResponse:
        return page(request, "message.html.j2", "Your emails are stopped",
                    message="Your emails are stopped, so there is nothing to pause. Your page can start them "
                            "again if you would like them back.", back=f"/me/{quote(token, safe='')}")

    @app.post("/me/{token}/{change}")
    async def resume_or_stop(request: Request, token: str, change: str) -> Response:
        status, done = {"resume": ("active", "resumed"), "stop": ("stopped", "stopped")}.get(change, (None, ""))
        if status is None:
            raise PageError(404, "Nothing here", "This address does not lead to a page.")
        link = verify("page", token)
        await form_of(request, link.person_id)
        return answer(request, token, done, record(link.person_id, "emails", _params(EmailChoices(status=status))))

    @app.post("/me/{token}/data/{kind}")
    async def ask_for_confirmation(request: Request, token: str, kind: str) -> Response:
        """Taking or erasing data needs a fresh link sent to the person's own address: a forwarded email is
        not enough to download or delete anything."""
        if kind not in ("export", "erase"):
            raise PageError(404, "Nothing here", "This address does not lead to a page.")
        link = verify("page", token)
        await form_of(request, link.person_id)
        confirm = quote(signer.sign(f"confirm-{kind}", link.person_id, clock()), safe="")
        send_note(f"confirm-{kind}", link.person_id, url_for(f"/confirm/{kind}/{confirm}"))
        return _back(token, f"sent-{kind}")

    # --- connecting a watch (OAuth authorization code with PKCE and a signed state) ------------------------

    callback_url = url_for_public(settings, "/oauth/callback")

    @app.get("/me/{token}/connect")
    def connect(request: Request, token: str) -> Response:
        link = verify("page", token)
        with open_store(READ_WAIT_S) as store:
            person = store.person(link.person_id) if _enrolled(store, link.person_id) else None
        if person is None:
            raise PageError(410, "This link cannot be used", "This link no longer leads to a page.")
        source = person.source if person.source in LIVE_SOURCES else DEFAULT_LIVE_SOURCE
        asked = request.query_params.get("source")
        if asked:  # one of their several devices (a reconnect note names it)
            if asked not in LIVE_SOURCES or asked not in person.sources:
                raise PageError(404, "This device is not yours here",
                                "This link asks to connect a device your page does not list. Your page shows "
                                "the devices emberwatch reads for you.")
            source = asked
        app_config = _oauth_app_or_page(source, person.config_for(source))
        state = signer.sign("oauth-state", person.person_id, clock(), source=source)
        url, _, verifier = start_consent(app_config, callback_url, state=state)
        clicks.begin_consent(signer.verify("oauth-state", state, clock()).nonce, verifier)
        return RedirectResponse(url, status_code=303)

    @app.get("/oauth/callback", response_class=HTMLResponse)
    def oauth_callback(request: Request, state: str = "", code: str = "", error: str = "") -> HTMLResponse:
        link = verify("oauth-state", state)
        verifier = clicks.take_consent(link.nonce)
        if verifier is None:
            raise _used()
        if error or not code:
            return page(request, "message.html.j2", "Your watch is not connected", 200,
                        message="The connection was not made, and nothing was stored. Your page can start it "
                                "again whenever suits you.")
        source = str(link.extra.get("source", DEFAULT_LIVE_SOURCE))
        with open_store(READ_WAIT_S) as store:
            person = store.person(link.person_id)
        app_config = _oauth_app_or_page(source, person.config_for(source))
        try:
            token, scopes = finish_consent(app_config, callback_url, state, verifier,
                                           f"{callback_url}?{request.url.query}")
        except Exception as exc:  # the provider's refusal, as a page (never its text: it may echo the code)
            log.warning("A consent for person %s could not be completed (%s).", link.person_id,
                        type(exc).__name__)
            raise PageError(502, "Your watch is not connected",
                            "The sign-in did not complete, and nothing was stored. Please try again from your "
                            "page in a little while.") from None
        # Saved at once in the token file (no wait for the database), then the person's source is changed.
        DbTokenStore(settings.db_path, TokenCipher()).save(link.person_id, source, token, scopes, new_consent=True)
        applied = record(link.person_id, "connect", {"source": source})
        return page(request, "connected.html.j2", "Your watch is connected", shared=shared_in_words(scopes),
                    back=None, later=not applied,
                    account={"oura": "Oura account", "fitbit-web": "Fitbit account"}.get(source, "Google account"))

    # --- the weekly question (check-ins) ----------------------------------------------------------------------
    # Answering needs no database: the week and the answer are in the signed link, the click is recorded at once.

    @app.get("/check-in/{token}", response_class=HTMLResponse)
    def check_in_page(request: Request, token: str) -> HTMLResponse:
        link = verify("check-in", token)
        still_enrolled(link)
        return page(request, "check_in.html.j2", "Your weekly check-in", token=token,
                    form_token=form_token(link.person_id), question=WEEK_QUESTION,
                    answers=list(enumerate(WEEK_DRAINED_ANSWERS, start=1)), chosen=int(link.extra.get("value", 0)),
                    action=f"/check-in/{quote(token, safe='')}", week=_week_words(link))

    async def record_answer(request: Request, token: str, scale: str) -> SignedLink:
        link = verify("check-in", token)
        form = await form_of(request, link.person_id)
        still_enrolled(link)
        record(link.person_id, "check-in", {"scale": scale, "value": _answer(form),
                                            "report_date": str(link.extra["week"])})
        return link

    @app.post("/check-in/{token}", response_class=HTMLResponse)
    async def check_in(request: Request, token: str) -> HTMLResponse:
        link = await record_answer(request, token, "week_drained")
        return page(request, "check_in.html.j2", "Thank you", token=token, form_token=form_token(link.person_id),
                    thanks="Thank you. Your answer is saved; only you will see it, beside your signals.",
                    question=WEEK_SLEEP_QUESTION, answers=list(enumerate(WEEK_SLEEP_ANSWERS, start=1)), chosen=0,
                    action=f"/check-in/{quote(token, safe='')}/sleep", week=_week_words(link))

    @app.post("/check-in/{token}/sleep", response_class=HTMLResponse)
    async def check_in_sleep(request: Request, token: str) -> HTMLResponse:
        await record_answer(request, token, "week_sleep")
        return page(request, "message.html.j2", "Thank you",
                    message="Both answers are saved. Your next weekly check-in will show them beside your signals.")

    # --- confirmations ---------------------------------------------------------------------------------------

    @app.get("/confirm/{kind}/{token}", response_class=HTMLResponse)
    def confirm_page(request: Request, kind: str, token: str) -> HTMLResponse:
        link = _confirmation(kind, token, consume=False)
        if clicks.was_used(link.nonce, link.purpose):
            if kind == "erase":  # said plainly: someone checking whether it happened must not read that it did not
                raise PageError(410, "Your data is deleted",
                                "This link has been used: everything emberwatch held about you is deleted (or, "
                                "during its nightly update, deleted within minutes), and no more emails will come.")
            raise _used()
        return page(request, "confirm.html.j2",
                    "Take a copy of your data" if kind == "export" else "Delete all your data",
                    kind=kind, token=token, form_token=form_token(link.person_id))

    @app.post("/confirm/{kind}/{token}")
    async def confirm(request: Request, kind: str, token: str) -> Response:
        link = _confirmation(kind, token, consume=False)
        await form_of(request, link.person_id)
        if kind == "export":
            store = open_store(READ_WAIT_S)  # busy: answer before the link is used up
            with store:
                if not clicks.use_once(link.nonce, link.purpose):
                    raise _used()
                body = _export_zip(store, link.person_id)
            return Response(body, media_type="application/zip", headers={
                "Content-Disposition": 'attachment; filename="emberwatch-my-data.zip"'})
        if not clicks.use_once(link.nonce, link.purpose):
            raise _used()
        applied = record(link.person_id, "erase", {})
        return page(request, "message.html.j2", "Your data is deleted" if applied else "Your data is being deleted",
                    message=("Everything emberwatch held about you is deleted, and no more emails will come. "
                             "Only the fact that a deletion happened is kept.") if applied else
                            ("emberwatch is in the middle of its nightly update; everything it holds about you "
                             "will be deleted within minutes, before any email could go out."))

    def _confirmation(kind: str, token: str, *, consume: bool) -> SignedLink:
        if kind not in ("export", "erase"):
            raise PageError(404, "Nothing here", "This address does not lead to a page.")
        return verify(f"confirm-{kind}", token)

    def _used() -> PageError:
        return PageError(410, "This link has been used",
                         "Each of these links works once. Your page can send you a new one.")

    # --- one-click unsubscribe (RFC 8058) ---------------------------------------------------------------------

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
        # Mail scanners open links: a GET only shows the button.
        still_enrolled(verify("unsubscribe", token))
        return page(request, "unsubscribe.html.j2", "Stop emberwatch emails?", token=token, home=url_for("/"))

    @app.post("/unsubscribe/{token}", response_class=HTMLResponse)
    async def unsubscribe(request: Request, token: str) -> HTMLResponse:
        # A mail client's one-click POST carries `List-Unsubscribe=One-Click` and no form token: the signed
        # link is the authority here, and stopping email is the one action safe to take on it alone.
        link = verify("unsubscribe", token)
        still_enrolled(link)
        form = await request.form()
        if form.get("List-Unsubscribe") != "One-Click":
            raise PageError(400, "That did not work", "Please use the button on the page to stop your emails.")
        record(link.person_id, "emails", _params(EmailChoices(status="stopped")))
        return page(request, "message.html.j2", "Your emails are stopped",
                    message="No more emails will come from emberwatch. Your page can start them again or "
                            "delete your data: the link in an email from the last two months opens it, and a "
                            f"fresh link can be asked for at {url_for('/')}.")

    # --- asking for a fresh link -----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        return page(request, "home.html.j2", "emberwatch", form_token=form_token("-"))

    @app.post("/link", response_class=HTMLResponse)
    async def email_me_a_link(request: Request) -> HTMLResponse:
        form = await form_of(request, "-")
        address = " ".join(form.get("email", "").split()).lower()
        client = request.client.host if request.client else "?"
        address_key = hashlib.sha256(address.encode()).hexdigest()
        if not link_requests.allow(client, clock()) or not link_requests_per_address.allow(address_key, clock()):
            raise PageError(429, "Please wait a little",
                            "Several links were asked for in a short time. Please try again in a while.")
        person_id = _person_with_address(address)
        if person_id is not None:
            to_page = quote(signer.sign("page", person_id, clock()), safe="")
            send_note("page-link", person_id, url_for(f"/me/{to_page}"))
        # The same answer whether or not the address is enrolled: the page must not tell who uses emberwatch.
        return page(request, "message.html.j2", "Check your inbox",
                    message="If that address is enrolled in emberwatch, a link to your page is on its way.")

    def _person_with_address(address: str) -> str | None:
        if "@" not in address or len(address) > 320:
            return None
        try:
            store = Store(settings.db_path, wait_s=READ_WAIT_S)
        except StoreError:
            log.warning("A page link was asked for while the database was busy; none was sent.")
            return None
        with store:
            # a stopped person too: stopping ends the routine emails, and their page (to start them again, take or
            # delete their data) must stay within reach once the links they hold have expired
            rows = store.query_rows("SELECT person_id FROM persons WHERE lower(email) = ?", [address])
        return rows[0][0] if rows else None

    return app


# --- helpers ------------------------------------------------------------------------------------------------------


def _answer(form: dict[str, str]) -> int:
    try:
        value = int(form.get("answer", ""))
    except ValueError:
        value = 0
    if not 1 <= value <= 5:
        raise PageError(400, "Please choose an answer", "Please pick one of the five answers, then save.")
    return value


def _week_words(link: SignedLink) -> str:
    sunday = date.fromisoformat(str(link.extra["week"]))
    return f"the week of Monday {(sunday - timedelta(days=6)).day} {(sunday - timedelta(days=6)):%B}"

DEFAULT_LIVE_SOURCE = "google-health"  # the Fitbit Web API was retired on 2026-11-02


def url_for_public(settings: Settings, path: str) -> str:
    return settings.public_url.rstrip("/") + path


def _enrolled(store: Store, person_id: str) -> bool:
    return bool(store.query_rows("SELECT 1 FROM persons WHERE person_id = ?", [person_id]))


def _oauth_app_or_page(source: str, source_config: dict):
    from pipelines.cli_connectors import oauth_app

    try:
        return oauth_app(source, source_config)
    except RuntimeError:
        log.warning("Connecting %s is not configured (EMBERWATCH_*_CLIENT_ID / _SECRET).", source)
        raise PageError(503, "Connecting is not set up yet",
                        "This emberwatch cannot connect watches yet. The person who runs it for your "
                        "organisation can set it up; nothing about you has changed.") from None


# What each permission lets emberwatch read, in a person's words (Google Health scopes; Fitbit's older names).
SHARED_WORDS = (("sleep", "Sleep"), ("heart", "Heart"), ("health_metrics", "Heart"),
                ("activity", "Activity"), ("oxygen", "Breathing and temperature"),
                ("respiratory", "Breathing and temperature"), ("temperature", "Breathing and temperature"),
                # Oura: `daily` shares the sleep, readiness and activity summaries; `spo2Daily` the nightly SpO2
                ("daily", "Sleep"), ("daily", "Heart"), ("daily", "Activity"), ("spo2", "Breathing and temperature"))


def shared_in_words(scopes: tuple[str, ...] | list[str]) -> list[tuple[str, bool]]:
    """[("Sleep", True), ("Heart", True), ("Activity", False)]: what the person chose to share."""
    shown: dict[str, bool] = {"Sleep": False, "Heart": False, "Activity": False}
    for scope in scopes:
        for fragment, words in SHARED_WORDS:
            if fragment in scope.rsplit("/", 1)[-1]:
                shown[words] = True
    return list(shown.items())

NOTICES = {
    "saved": "Saved. Your next email follows these choices.",
    "saved-later": "Saved. emberwatch is in its nightly update; your choices apply before your next email.",
    "paused": "Your emails are paused.",
    "paused-later": "Your emails are paused; this applies before any email could go out.",
    "resumed": "Your emails are back on.",
    "resumed-later": "Your emails are back on from the next email.",
    "stopped": "Your emails are stopped.",
    "devices": "Saved. Your nights are worked out again from the devices you chose.",
    "devices-later": "Saved. emberwatch is in its nightly update; your nights will be worked out again from the "
                     "devices you chose before your next email.",
    "stopped-later": "Your emails are stopped; this applies before any email could go out.",
    "sent-export": "We have emailed you a link to download your data. It works once, within half an hour.",
    "sent-erase": "We have emailed you a link to delete your data. It works once, within half an hour.",
}


def _notice(done: str | None, pending: bool) -> str | None:
    if done in NOTICES:
        return NOTICES[done]
    return "Your latest choices are saved and apply before your next email." if pending else None


def _back(token: str, done: str) -> RedirectResponse:
    # Post/redirect/get: reloading the page does not post the form again.
    return RedirectResponse(f"/me/{quote(token, safe='')}?done={done}", status_code=303)


def _params(choices: EmailChoices) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in vars(choices).items() if v is not None}


def _check_choices(choices: EmailChoices) -> None:
    """Refuse a choice now, with a sentence, rather than record one that could never be applied."""
    try:
        if choices.detail_level is not None:
            validate.detail_level(choices.detail_level)
        if choices.window is not None:
            validate.delivery_window(choices.window)
        if choices.days is not None:
            validate.working_days(choices.days)
    except validate.InputError as exc:
        raise PageError(400, "Please check your choices",
                        f"{exc} Please choose again; nothing was changed.") from None


def _devices(s: Overview) -> list[dict[str, Any]] | None:
    """For a person with more than one device: each kind of data, the device that counts, and the others."""
    if len(s.sources) < 2:
        return None
    return [{"data_type": data_type, "words": DATA_TYPE_WORDS[data_type], "counting": source, "chosen": chosen,
             "options": [(option, SOURCE_WORDS.get(option, option)) for option in s.sources]}
            for data_type, source, chosen in s.counting]


def _local_today(status: Overview, now_utc: datetime) -> date:
    return now_utc.astimezone(ZoneInfo(status.tz_name)).date()


def _days_choices(current: str) -> list[str]:
    return list(DAYS_CHOICES) if current in DAYS_CHOICES else [current, *DAYS_CHOICES]


def _day_words(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def _status_words(s: Overview) -> dict[str, str]:
    """The page's sentences about where things stand (no health value)."""
    source = {
        "google-health": "Your watch, through Google Health (Fitbit or Pixel Watch).",
        "fitbit-web": "Your Fitbit, through the old Fitbit connection (retired by Google).",
        "oura": "Your Oura ring.",
        "fitbit-export": "A Fitbit export you shared; no watch is connected.",
        "google-takeout": "A Google Takeout (Fitbit) download you shared; no watch is connected.",
        "apple-health": "An Apple Health export you shared; no watch is connected.",
        "synthetic": "Practice data (a demonstration).",
    }.get(s.source, s.source)
    if len(s.sources) > 1:  # every device, not only the one connected last; which counts for what is below
        names = [SOURCE_WORDS.get(x, x) for x in s.sources]
        source = f"Your devices: {', '.join(names[:-1])} and {names[-1]}. Which one counts for what is below."
    if s.needs_reconnect:
        source = "The connection to your watch has ended; you can reconnect it below."
    if s.warming_up:
        usual = (f"Still learning your usual: comparisons begin after about {s.nights_until_comparisons} more "
                 f"night{'s' if s.nights_until_comparisons != 1 else ''} with data.")
    else:
        usual = f"Learnt from your own nights ({s.valid_nights} nights with data so far)."
    if s.emails == "stopped":
        emails = "Stopped. Nothing will be sent until you start them again."
    elif s.emails == "paused":
        emails = (f"Paused until {_day_words(s.paused_until)}; they start again the day after."
                  if s.paused_until else "Paused until you start them again.")
    else:
        emails = f"On: {s.detail_level} detail, {s.window} on {s.days}, your time ({s.tz_name})."
    next_email = "None while your emails are paused or stopped."
    if s.next_email_from_utc is not None:
        local = s.next_email_from_utc.astimezone(ZoneInfo(s.tz_name))
        next_email = f"From {_day_words(local.date())}, {local:%H:%M}, if there is something to send."
    return {"source": source, "last_night": _day_words(s.last_night) if s.last_night else "None yet.",
            "usual": usual, "emails": emails, "next_email": next_email}


def _export_zip(store: Store, person_id: str) -> bytes:
    """The existing export (Parquet + CSV + README), as one zip download built in memory."""
    with tempfile.TemporaryDirectory(prefix="emberwatch-export-") as folder:
        files = export_person(store, person_id, Path(folder) / "data")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, f"emberwatch-my-data/{path.name}")
        return buffer.getvalue()
