"""The engine every live source runs on, written once: settings from the environment, an authorised session per
person (token load, refresh under the person's lock, the new token saved the moment it arrives), date-range
chunking, the incremental start with a trailing re-fetch, the raw-payload envelope, and the bundle a payload
parses from. Requests, retries and rate limits are connectors.http's.

A source declares its data types (name, payload group, scope, maximum days per request) and writes only what is
truly its own: how one window of one data type is requested (and paged), how an error reads, and how a group's
pages become records (Meltano's Singer SDK taps are the model: a stream declares, the base class runs).

A fetch touches no database and sends no email: `fetch_outcome` *returns* what happened (the payloads and the
bookmarks they justify, or that the person's consent is gone) and the one writer acts on it
(pipelines.steps.ingest). The only thing a fetch writes is a refreshed token, to the token store, at once:
refresh tokens may be single-use, so one that is not saved before it is used locks the person out.

Payloads: one per group and window, `{"<data type>": ["<response text, verbatim>", ...], ...}`, so each parses
on its own into complete records.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, ClassVar

import requests
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error
from requests_oauthlib import OAuth2Session

from connectors.base import ParseResult, PersonContext, RawPayload, Rejected, TransientSourceError
from connectors.http import ApiClient, ApiError, RetryPolicy, limiter_for, retry_after_s
from connectors.oauth import OAuthApp, allow_loopback_http, client_credentials
from connectors.records import storable_text
from connectors.token_vault import ConsentRequired, StoredToken, SyncBookmarks, TokenStore

TRAILING_REFETCH_DAYS = 3
REVOKED = "the authorisation was revoked or has expired"

GroupParser = Callable[[dict[str, Any], PersonContext, ParseResult], None]


@dataclass(frozen=True)
class DataType:
    """One data type as a source reads it. Sources add what their requests need (a path, a filter, a page size)."""

    name: str
    group: str  # the payload (RawPayload.resource) it travels in
    scope: str
    max_window_days: int


def groups(data_types: tuple[DataType, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t.group for t in data_types))


def chunks(start: date, end: date, days: int) -> Iterator[tuple[date, date]]:
    """[start, end] (inclusive) in pieces of at most `days` days, oldest first."""
    while start <= end:
        last = min(start + timedelta(days=days - 1), end)
        yield start, last
        start = last + timedelta(days=1)


@dataclass(frozen=True)
class LiveConfig:
    """Where a source's API and OAuth endpoints are: a person's source_config, else the environment, else the
    real service. Each source declares its defaults and the names of its settings."""

    api_base: str
    authorize_url: str
    token_url: str
    trailing_days: int = TRAILING_REFETCH_DAYS

    source: ClassVar[str]
    credentials: ClassVar[str]  # EMBERWATCH_<credentials>_CLIENT_ID / _CLIENT_SECRET
    urls: ClassVar[tuple[tuple[str, str], ...]]  # (default, environment variable) for the three URLs above
    scopes: ClassVar[tuple[str, ...]]
    authorize_params: ClassVar[tuple[tuple[str, str], ...]] = ()
    basic_auth: ClassVar[bool] = False

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> "LiveConfig":
        o = overrides or {}
        keys = ("api_base", "authorize_url", "token_url")
        return cls(*(o.get(key) or os.environ.get(env, default) for key, (default, env) in zip(keys, cls.urls)))

    def oauth_app(self) -> OAuthApp:
        client_id, secret = client_credentials(self.credentials)
        return OAuthApp(self.source, client_id, secret, self.authorize_url, self.token_url, self.scopes,
                        self.authorize_params, basic_auth=self.basic_auth)


@dataclass
class FetchOutcome:
    """What one person's fetch came back with. Either payloads (and the bookmarks the writer may move once it has
    stored them), or that the person's consent is gone (nothing else was fetched)."""

    person_id: str
    source: str
    payloads: list[RawPayload] = field(default_factory=list)
    synced_types: tuple[str, ...] = ()
    synced_through: date | None = None
    consent_lost: ConsentRequired | None = None


class Session:
    """One person's authorised client: the stored token, refreshed under the person's lock and saved before
    anything else uses it."""

    def __init__(self, source: "LiveSource", person_id: str) -> None:
        self.source, self.person_id = source, person_id
        stored = source.tokens.load(person_id, source.name)
        if stored is None:
            raise ConsentRequired(person_id, source.name, "no stored authorisation")
        self.granted_scopes = stored.granted_scopes
        cfg = source.config
        allow_loopback_http(cfg.token_url, cfg.api_base)
        self.app = cfg.oauth_app()
        self.oauth = source.open_oauth(self.app, stored.token)
        self.retry_after_s: float | None = None  # a source's own hint for a 429 without Retry-After
        self.limiter = limiter_for(source.name, cfg.api_base, person_id, source.requests_per_minute)
        self.client = ApiClient(self.oauth, source=source.name, limiter=self.limiter, refresh=self.refresh,
                                describe_error=lambda response: source.describe_error(response, person_id),
                                policy=source.policy, retry_after=self._retry_after)
        source.on_session(self)
        if float(stored.token.get("expires_at", 0) or 0) < time.time() + 60:
            self.refresh(stale=stored.token)

    def _retry_after(self, response: requests.Response) -> float | None:
        wait = retry_after_s(response)
        return self.retry_after_s if wait is None else wait

    def refresh(self, stale: dict[str, Any] | None = None) -> None:
        source, name = self.source, self.source.name
        stale = stale or dict(self.oauth.token)
        with source.tokens.lock(self.person_id, name):
            current = source.tokens.load(self.person_id, name)
            if current is None:
                raise ConsentRequired(self.person_id, name, "no stored authorisation")
            if current.token.get("access_token") != stale.get("access_token"):
                self.oauth.token = current.token  # another worker refreshed already
                return
            try:
                token = source.renew(self, current.token.get("refresh_token"))
            except InvalidGrantError:
                raise ConsentRequired(self.person_id, name, source.consent_lost_reason(current)) from None
            except OAuth2Error as exc:
                raise ApiError(f"{source.provider}'s token endpoint refused the refresh ({exc.error}).", 400,
                               exc.error) from None
            # Durable when save returns (storage.tokens; its crash point `token-saved` lets a test kill us here).
            source.tokens.save(self.person_id, name, dict(token))

    def get_json(self, path: str, what: str) -> dict[str, Any]:
        return json_object(self.source.name, self.client.request("GET", self.source.config.api_base + path), what)


def json_object(source: str, response: requests.Response, what: str) -> dict[str, Any]:
    """A response body as a JSON object, or a sentence: a bare JSONDecodeError would tell an operator nothing.
    (ApiClient already retries bodies that are not JSON at all; this catches JSON of the wrong shape too.)"""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TransientSourceError(
            f"{source} answered {what} with something other than a complete JSON object; the next run will try again.")
    return body


class LiveSource:
    """A live source: its declarations (class attributes) plus the hooks below; fetch and parse are the engine's."""

    name: ClassVar[str]
    provider: ClassVar[str]  # the service's name in sentences
    data_types: ClassVar[tuple[DataType, ...]]
    config_type: ClassVar[type[LiveConfig]]
    requests_per_minute: ClassVar[int]
    backfill_slice_days: ClassVar[int]
    group_parsers: ClassVar[dict[str, GroupParser]]

    def __init__(self, tokens: TokenStore, bookmarks: SyncBookmarks | None = None, config: LiveConfig | None = None,
                 policy: RetryPolicy | None = None) -> None:
        self.tokens, self.bookmarks = tokens, bookmarks
        self.config = config or self.config_type.from_env()
        self.policy = policy or RetryPolicy()
        self.requests_sent = 0  # across fetches, for the request-count acceptance

    # --- what each source writes ------------------------------------------------------------------------------

    def open_oauth(self, app: OAuthApp, token: dict[str, Any]) -> OAuth2Session:
        return OAuth2Session(app.client_id, token=token)

    def on_session(self, session: Session) -> None:
        """A new session is ready (a source may hook its responses)."""

    def renew(self, session: Session, refresh_token: str | None) -> dict[str, Any]:
        return session.oauth.refresh_token(session.app.token_url, refresh_token=refresh_token,
                                           client_id=session.app.client_id, client_secret=session.app.client_secret)

    def consent_lost_reason(self, current: StoredToken) -> str:
        return REVOKED

    def describe_error(self, response: requests.Response, person_id: str) -> tuple[str, str]:
        raise NotImplementedError

    def pages(self, session: Session, data_type: Any, first: date, last: date) -> Iterator[str]:
        """The response texts answering one window of one data type (one per page)."""
        raise NotImplementedError

    def read_pages(self, texts: list[str]) -> Any:
        """A data type's page texts as its group parser reads them; ValueError when a page is not JSON."""
        return [json.loads(text) for text in texts]

    # --- the engine ---------------------------------------------------------------------------------------------

    def session(self, person_id: str) -> Session:
        return Session(self, person_id)

    def fetch_outcome(self, person: PersonContext, start: date, end: date) -> FetchOutcome:
        """Payloads covering [start, end] (from each data type's incremental start), or the lost consent."""
        outcome = FetchOutcome(person.person_id, self.name)
        try:
            # One person's fetch holds their lock: a refresh (single-use token) is never raced by a second worker.
            with self.tokens.lock(person.person_id, self.name):
                session = self.session(person.person_id)
                try:
                    outcome.payloads, fetched = self._fetch(session, person, start, end)
                finally:
                    self.requests_sent += session.client.requests_sent
        except ConsentRequired as exc:
            outcome.consent_lost = exc
            return outcome
        # The bookmarks the writer may move once every payload is stored (never before: a run that dies between
        # fetch and store would otherwise skip nights it never kept).
        outcome.synced_types, outcome.synced_through = tuple(t.name for t in fetched), end
        return outcome

    def fetch(self, person: PersonContext, start: date, end: date) -> Iterator[RawPayload]:
        """The Source protocol: the payloads, or ConsentRequired."""
        outcome = self.fetch_outcome(person, start, end)
        if outcome.consent_lost is not None:
            raise outcome.consent_lost
        yield from outcome.payloads

    def _fetch(self, session: Session, person: PersonContext, start: date,
               end: date) -> tuple[list[RawPayload], list[DataType]]:
        granted = set(session.granted_scopes)
        payloads, fetched = [], []
        for group in groups(self.data_types):
            types = [t for t in self.data_types if t.group == group and (not granted or t.scope in granted)]
            if not types:
                continue
            starts = {t.name: self.incremental_start(person.person_id, t, start) for t in types}
            texts = {t.name: [text for first, last in chunks(starts[t.name], end, t.max_window_days)
                              for text in self.pages(session, t, first, last)] for t in types}
            payloads.append(RawPayload(person.person_id, self.name, group, json.dumps(texts).encode(),
                                       datetime.now(timezone.utc), min(starts.values()), end))
            fetched.extend(types)
        return payloads, fetched

    def incremental_start(self, person_id: str, data_type: DataType, start: date) -> date:
        """From the bookmark less a trailing window when the bookmark is older than `start` (a missed night);
        late watch syncs are covered because the flow asks for the last few nights anyway."""
        through = None if self.bookmarks is None else self.bookmarks.synced_through(person_id, self.name,
                                                                                    data_type.name)
        if through is None:
            return start
        # The day after the bookmark, less the trailing window for late watch syncs (steady state: == start).
        return min(start, through + timedelta(days=1 - self.config.trailing_days))

    def parse(self, raw: RawPayload, person: PersonContext) -> ParseResult:
        result = ParseResult()
        try:
            bundle = json.loads(raw.body)
            # Each data type holds a list of page texts (a bare string would be read letter by letter).
            if not isinstance(bundle, dict) or not all(isinstance(texts, list) for texts in bundle.values()):
                raise ValueError
            pages = {name: self.read_pages(texts) for name, texts in bundle.items()}
        except (ValueError, TypeError, AttributeError, RecursionError):  # RecursionError: absurd nesting
            result.rejected.append(Rejected(raw.resource, (
                f"the {raw.resource} payload is not the bundle {self.name} writes "
                '({"<data type>": ["<page>", ...]}) or a page is not JSON; nothing from it was imported.')))
            return result
        parser = self.group_parsers.get(raw.resource)
        if parser is None:
            result.rejected.append(Rejected(raw.resource, f"'{raw.resource}' is not a resource of {self.name}."))
            return result
        # A data type this group does not read would otherwise be dropped without a word.
        known = {t.name for t in self.data_types if t.group == raw.resource}
        for name in sorted(set(pages) - known):
            shown = storable_text(name)
            # Quoted in the locator: a bundle key may be "" and a locator must still point somewhere.
            result.rejected.append(Rejected(f"data type '{shown}'", (
                f"{self.name}: '{shown}' is not a data type of the {raw.resource} payload; it was not imported.")))
        parser(pages, person, result)
        return result


def page_items(source: str, pages: dict[str, list[Any]], name: str, key: str | None, result: ParseResult,
               label: str | None = None) -> Iterator[tuple[str, Any]]:
    """(locator, item) for every item of a data type's pages: the list under `key` of each page (the page itself
    when `key` is None). A page of another shape (an error body, a single day's object) is rejected with a reason
    rather than vanishing silently; an empty list is an empty answer."""
    index = 0
    for page_index, doc in enumerate(pages.get(name, [])):
        items = doc if key is None else (doc.get(key) if isinstance(doc, dict) else None)
        if not isinstance(items, list):
            where = f"{name} page {page_index}"
            expected = "a list" if key is None else f"an object with a '{key}' list"
            result.rejected.append(Rejected(where, f"{source} at {where}: expected {expected}; "
                                                   "nothing from this page was imported."))
            continue
        for item in items:
            yield f"{label or key or name}[{index}]", item
            index += 1
