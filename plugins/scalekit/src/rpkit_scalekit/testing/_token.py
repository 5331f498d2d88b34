"""The fake Scalekit's ``POST /oauth/token``: client authentication and the
``authorization_code`` (with PKCE), ``refresh_token`` (rotating) and ``client_credentials``
grants (scalekit-sdk.md §8.4)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlsplit

import httpx

from rpkit.testing._http import json_response
from rpkit.testing.knobs import apply_edits
from rpkit_scalekit.testing import _mint
from rpkit_scalekit.testing._wire import NO_STORE, OAuthError, ParsedRequest
from rpkit_scalekit.testing.registry import FakeApplication, RefreshGrant, ScalekitSession

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit


def token(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """Authenticate the client (any stray ``Authorization: Bearer`` is ignored), then serve the
    requested grant."""
    if req.method != "POST":
        raise OAuthError("invalid_request", "the token endpoint takes POST", status=405)
    app = _authenticate(fake, req)
    grant_type = req.param("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type is missing")
    if grant_type == "authorization_code":
        return _authorization_code(fake, req, app)
    if grant_type == "refresh_token":
        return _refresh(fake, req, app)
    if grant_type == "client_credentials":
        return _client_credentials(fake, req, app)
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


def _authenticate(fake: FakeScalekit, req: ParsedRequest) -> FakeApplication:
    basic = _basic(req) if fake.knobs.allow_client_secret_basic else None
    posted = req.param("client_secret")
    if basic is not None and posted is not None:
        raise OAuthError("invalid_request", "more than one client authentication method")
    client_id, secret = basic or (req.param("client_id"), posted)
    app = fake.apps.get(client_id or "")
    status = fake.answers.invalid_client_status
    if app is None or secret is None:
        raise OAuthError("invalid_client", "client authentication failed", status=status)
    if not hmac.compare_digest(secret.encode(), app.client_secret.encode()):
        raise OAuthError("invalid_client", "client authentication failed", status=status)
    if req.param("client_id") not in (None, app.client_id):
        raise OAuthError("invalid_request", "client_id differs from the credentials")
    return app


def _basic(req: ParsedRequest) -> tuple[str, str] | None:
    for value in req.headers.get_list("authorization"):
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            continue
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_request", "malformed Basic credentials") from exc
        return unquote_plus(user), unquote_plus(password)
    return None


def _authorization_code(
    fake: FakeScalekit, req: ParsedRequest, app: FakeApplication
) -> httpx.Response:
    code, redirect_uri = req.param("code"), req.param("redirect_uri")
    if not code or not redirect_uri:
        raise OAuthError("invalid_request", "code and redirect_uri are required")
    grant = fake.codes.get(code)
    if grant is None or grant.used or grant.expires_at <= fake.now():
        raise OAuthError("invalid_grant", "the code is unknown, used or expired")
    grant.used = True
    if grant.client_id != app.client_id or grant.redirect_uri != redirect_uri:
        raise OAuthError("invalid_grant", "the code was issued to another client or redirect_uri")
    if grant.code_challenge is not None:
        verifier = req.param("code_verifier") or ""
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if not hmac.compare_digest(expected, grant.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")
    if grant.session.revoked:
        raise OAuthError("invalid_grant", "the session has ended")
    body = _user_tokens(fake, app, grant.session, grant.scope, code=code, nonce=grant.nonce)
    return _answer(fake, body)


def _user_tokens(
    fake: FakeScalekit,
    app: FakeApplication,
    session: ScalekitSession,
    scope: str,
    *,
    code: str | None = None,
    nonce: str | None = None,
    with_id_token: bool = True,
) -> dict[str, Any]:
    access = _mint.access_token(fake, app, session, scope)
    body: dict[str, Any] = {
        "access_token": access,
        "expires_in": fake.knobs.access_token_lifetime - 1,
        "token_type": "Bearer",
    }
    if with_id_token:
        body["id_token"] = _mint.id_token(fake, app, session, access, code=code, nonce=nonce)
    if "offline_access" in scope.split():
        refresh = secrets.token_urlsafe(32)
        fake.refresh_tokens[refresh] = RefreshGrant(refresh, app.client_id, scope, session)
        body["refresh_token"] = refresh
    return body


def _refresh(fake: FakeScalekit, req: ParsedRequest, app: FakeApplication) -> httpx.Response:
    token_value = req.param("refresh_token")
    if not token_value:
        raise OAuthError("invalid_request", "refresh_token is required")
    grant = fake.refresh_tokens.get(token_value)
    if grant is None or grant.client_id != app.client_id or grant.session.revoked:
        raise OAuthError("invalid_grant", "the refresh token is unknown or revoked")
    now = fake.now()
    if grant.used_at is not None:
        grace = fake.knobs.refresh_grace_seconds
        if grace > 0 and grant.successor is not None and now - grant.used_at <= grace:
            return _answer(fake, dict(grant.successor))
        raise OAuthError("invalid_grant", "the refresh token was already used")
    body = _user_tokens(
        fake, app, grant.session, grant.scope, with_id_token=fake.knobs.id_token_on_refresh
    )
    grant.used_at, grant.successor = now, body
    return _answer(fake, body)


def _client_credentials(
    fake: FakeScalekit, req: ParsedRequest, app: FakeApplication
) -> httpx.Response:
    scopes = (req.param("scope") or "").split() or list(app.m2m_scopes)
    resource = req.param("resource")
    if resource is not None and (not urlsplit(resource).scheme or "#" in resource):
        # RFC 8707 §2: an absolute URI without a fragment, else invalid_target.
        raise OAuthError("invalid_target", "resource must be an absolute URI without fragment")
    access = fake.issue_m2m_token(app, scopes, resource=resource)
    body = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": fake.knobs.m2m_token_lifetime,
        "scope": " ".join(scopes),
    }
    return json_response(body, headers=NO_STORE)


def _answer(fake: FakeScalekit, body: dict[str, Any]) -> httpx.Response:
    return json_response(apply_edits(body, fake.knobs.token_fields), headers=NO_STORE)
