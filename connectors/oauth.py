"""OAuth 2.0 authorisation code with PKCE (S256) for live sources, on requests-oauthlib, plus the loopback
redirect catcher `emberwatch enroll` uses. Tokens never reach a log; the code and verifier live in memory only."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import logging

from requests.auth import HTTPBasicAuth
from oauthlib.oauth2 import WebApplicationClient
from requests_oauthlib import OAuth2Session


# requests-oauthlib and oauthlib log whole tokens at DEBUG ("Adding token {...} to request"): keep them above it
# whatever the root level, so turning on debug logging never writes a token to disk.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(max(logging.getLogger(_name).level, logging.INFO))


@dataclass(frozen=True)
class OAuthApp:
    source: str
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    extra_authorize_params: tuple[tuple[str, str], ...] = ()
    basic_auth: bool = False  # client credentials in an Authorization: Basic header (Fitbit) or the body (Google)

    def __repr__(self) -> str:
        return f"OAuthApp({self.source}, client_id={self.client_id[:6]}…, secret=<hidden>)"


def allow_loopback_http(*urls: str) -> None:
    """oauthlib insists on https; a loopback address (tests, the enroll redirect) is the one safe exception."""
    hosts = {urlparse(u).hostname for u in urls}
    if hosts <= {"127.0.0.1", "localhost", "::1"}:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def client_credentials(prefix: str) -> tuple[str, str]:
    client_id = os.environ.get(f"EMBERWATCH_{prefix}_CLIENT_ID")
    secret = os.environ.get(f"EMBERWATCH_{prefix}_CLIENT_SECRET")
    if not client_id or not secret:
        raise RuntimeError(
            f"EMBERWATCH_{prefix}_CLIENT_ID and EMBERWATCH_{prefix}_CLIENT_SECRET must be set to the OAuth client "
            "of your app (see the README section on live connectors)."
        )
    return client_id, secret


def start_consent(app: OAuthApp, redirect_uri: str, state: str | None = None) -> tuple[str, str, str]:
    """(URL to send the person to, state, PKCE code verifier). The caller keeps the verifier (in memory for the
    CLI's loopback sign-in, server-side for the web door) until the redirect comes back."""
    allow_loopback_http(redirect_uri)
    client = WebApplicationClient(app.client_id)
    verifier = client.create_code_verifier(64)
    session = OAuth2Session(app.client_id, scope=list(app.scopes), redirect_uri=redirect_uri)
    url, state = session.authorization_url(
        app.authorize_url, state=state, code_challenge=client.create_code_challenge(verifier, "S256"),
        code_challenge_method="S256", **dict(app.extra_authorize_params))
    return url, state, verifier


def finish_consent(app: OAuthApp, redirect_uri: str, state: str, verifier: str,
                   authorization_response: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Exchange the code for tokens; returns them with the scopes actually granted (a person may untick some).
    oauthlib checks that the response's `state` is the one this consent began with."""
    allow_loopback_http(app.token_url, authorization_response, redirect_uri)
    # A person may untick scopes; oauthlib would raise "Scope has changed". We record what was granted
    # instead, and sources skip the data types whose scope is missing.
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"
    session = OAuth2Session(app.client_id, scope=list(app.scopes), redirect_uri=redirect_uri, state=state)
    if app.basic_auth:
        token = session.fetch_token(app.token_url, authorization_response=authorization_response,
                                    code_verifier=verifier, auth=HTTPBasicAuth(app.client_id, app.client_secret))
    else:
        token = session.fetch_token(app.token_url, authorization_response=authorization_response,
                                    code_verifier=verifier, client_secret=app.client_secret,
                                    include_client_id=True)
    granted = token.get("scope") or app.scopes
    if isinstance(granted, str):
        granted = granted.split()
    return dict(token), tuple(granted)


class Consent:
    """One consent round trip for the CLI's loopback sign-in: the URL to open, then the exchange."""

    def __init__(self, app: OAuthApp, redirect_uri: str) -> None:
        self.app, self.redirect_uri = app, redirect_uri
        self.url, self.state, self._verifier = start_consent(app, redirect_uri)

    def exchange(self, authorization_response: str) -> tuple[dict[str, Any], tuple[str, ...]]:
        return finish_consent(self.app, self.redirect_uri, self.state, self._verifier, authorization_response)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        query = parse_qs(urlparse(self.path).query)
        if "code" in query or "error" in query:
            self.server.redirect_path = self.path  # type: ignore[attr-defined]
            body = b"<p>Thank you - emberwatch is connected. You can close this tab.</p>"
            if "error" in query:
                body = b"<p>The connection was not made. You can close this tab and try again.</p>"
        else:
            body = b"<p>Waiting for the sign-in to finish.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # the query holds the authorisation code: never log it
        pass


class LoopbackRedirect:
    """Listens on 127.0.0.1 for the one redirect that carries the authorisation code."""

    def __init__(self, port: int = 0) -> None:
        self.server = HTTPServer(("127.0.0.1", port), _Handler)
        self.server.redirect_path = None  # type: ignore[attr-defined]
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"

    def wait(self, timeout_s: float = 300.0) -> str:
        self.server.timeout = 1.0
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            while self.server.redirect_path is None and not deadline.is_set():  # type: ignore[attr-defined]
                self.server.handle_request()
        finally:
            timer.cancel()
            self.server.server_close()
        path = self.server.redirect_path  # type: ignore[attr-defined]
        if path is None:
            raise TimeoutError("No sign-in came back within the time allowed; run `emberwatch enroll` again.")
        if "error=" in path:
            raise PermissionError(
                "The person declined (or the provider refused) the connection; nothing was stored.")
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"
