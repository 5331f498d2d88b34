"""The fake Scalekit's browser and metadata endpoints: discovery, ``/keys``,
``/oauth/authorize`` (no UI, auto-approve, connection routing) and ``/oidc/logout``
(scalekit-sdk.md §8.1–§8.3, §8.5)."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import httpx

from rpkit.testing import FakeUser
from rpkit.testing._http import json_response
from rpkit_scalekit.testing._wire import OAuthError, ParsedRequest, html_response
from rpkit_scalekit.testing.registry import CodeGrant, Route

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit

PROMPTS = {"login", "create", "select_account", "none"}
SESSION_COOKIE = "sk_fake_session"
"""The fake's own browser-session cookie (lets ``/oidc/logout`` without a hint find it)."""


def metadata(fake: FakeScalekit) -> dict[str, Any]:
    """The discovery document (synthesised: no upstream copy is known)."""
    env = fake.issuer
    methods = ["client_secret_post"]
    if fake.answers.discovery_lists_basic:
        methods.append("client_secret_basic")
    return {
        "issuer": env,
        "authorization_endpoint": f"{env}/oauth/authorize",
        "token_endpoint": f"{env}/oauth/token",
        "jwks_uri": f"{env}/keys",
        "end_session_endpoint": f"{env}/oidc/logout",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": methods,
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["public"],
    }


def discovery(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /.well-known/openid-configuration``."""
    return json_response(metadata(fake))


def resource_metadata(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /.well-known/oauth-authorization-server/resources/{res}`` (RFC 8414 §3.1) or
    ``GET /resources/{res}/.well-known/oauth-authorization-server`` (MCP resources)."""
    resource = req.url.path.split("/resources/", 1)[1].split("/", 1)[0]
    base = f"{fake.issuer}/resources/{resource}"
    document = metadata(fake) | {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "registration_endpoint": f"{fake.issuer}/api/v1/resources/{resource}/clients:register",
        "jwks_uri": f"{fake.issuer}/keys",
        "client_id_metadata_document_supported": True,
    }
    document.pop("end_session_endpoint")
    return json_response(document)


def keys(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /keys``: no authentication required, a Bearer header tolerated."""
    max_age = fake.knobs.keys_max_age
    headers = {"Cache-Control": f"max-age={max_age}"} if max_age is not None else {}
    return json_response(fake.keys.jwks(), headers=headers)


def authorize(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /oauth/authorize``: validate, route, open a session and redirect with a code."""
    if req.method != "GET":
        raise OAuthError("invalid_request", "authorize takes GET", status=405, page=True)
    app = fake.apps.get(req.param("client_id") or "")
    if app is None:
        raise OAuthError("invalid_request", "unknown client_id", page=True)
    redirect_uri = req.param("redirect_uri") or ""
    if redirect_uri not in app.redirect_uris:
        raise OAuthError("invalid_request", "redirect_uri is not registered", page=True)
    state = req.param("state")
    try:
        grant = _approve(fake, req, app.client_id, redirect_uri)
    except OAuthError as error:
        params = {"error": error.error, "error_description": error.description, "state": state}
        return _back_to(redirect_uri, params, outcome=str(error), req=req)
    response = _back_to(redirect_uri, {"code": grant.code, "state": state}, outcome="ok", req=req)
    cookie = f"{SESSION_COOKIE}={grant.session.sid}; Path=/; HttpOnly; SameSite=Lax"
    response.headers["Set-Cookie"] = cookie
    return response


def _approve(
    fake: FakeScalekit, req: ParsedRequest, client_id: str, redirect_uri: str
) -> CodeGrant:
    if req.param("response_type") != "code":
        raise OAuthError("invalid_request", "response_type must be code")
    scope = req.param("scope") or ""
    if "openid" not in scope.split():
        raise OAuthError("invalid_request", "scope must include openid")
    challenge = req.param("code_challenge")
    method = req.param("code_challenge_method") or ("plain" if challenge else None)
    if challenge and method != "S256":
        raise OAuthError(fake.answers.plain_pkce_error, "code_challenge_method must be S256")
    if not challenge and fake.knobs.require_pkce:
        raise OAuthError("invalid_request", "code_challenge is required")
    prompt = req.param("prompt")
    if prompt is not None and prompt not in PROMPTS:
        raise OAuthError("invalid_request", f"unsupported prompt {prompt!r}")
    if prompt == "none" and fake.knobs.no_session:
        raise OAuthError(fake.answers.prompt_none_error, "no Scalekit session")
    if fake.knobs.authorize_error:
        raise OAuthError(fake.knobs.authorize_error, fake.knobs.authorize_error_description)
    organization_id = req.param("organization_id")
    if prompt == "select_account" and organization_id in fake.organizations:
        user, route = _switch(fake, req, organization_id)
    else:
        route = fake.route(
            connection_id=req.param("connection_id"),
            organization_id=organization_id,
            provider=req.param("provider"),
            login_hint=req.param("login_hint"),
            domain_hint=req.param("domain_hint") or req.param("domain"),
        )
        user = fake.user_for(route, req.param("login_hint"))
    session = fake.start_session(user, client_id, route)
    grant = CodeGrant(
        code=secrets.token_urlsafe(24),
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        nonce=req.param("nonce"),
        code_challenge=challenge,
        session=session,
        expires_at=fake.now() + fake.knobs.code_lifetime,
    )
    fake.codes[grant.code] = grant
    return grant


def _switch(fake: FakeScalekit, req: ParsedRequest, organization_id: str) -> tuple[FakeUser, Route]:
    """``prompt=select_account`` with a known ``organization_id``: the signed-in user (the
    fake's session cookie, else the current user) goes straight into that organization when a
    member (Scalekit's organization switcher); anyone else is refused with ``access_denied``."""
    previous = fake.sessions.get(req.cookie(SESSION_COOKIE) or "")
    user = previous.user if previous is not None and not previous.revoked else fake.current_user
    if user.sub not in fake.organizations[organization_id].members:
        raise OAuthError("access_denied", "the user is not a member of this organization")
    route = previous.route if previous is not None else fake.route()
    connection = route.connection_id
    return user, Route("organization_id", connection, organization_id)


def _back_to(
    redirect_uri: str, params: dict[str, str | None], *, outcome: str, req: ParsedRequest
) -> httpx.Response:
    query = httpx.QueryParams({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    req.outcome = outcome
    return httpx.Response(302, headers={"Location": f"{redirect_uri}{separator}{query}"})


def logout(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    """``GET /oidc/logout``: verify ``id_token_hint`` (expiry ignored), check the registered
    ``post_logout_redirect_uri``, end the session, then redirect with ``state``."""
    hint = req.param("id_token_hint")
    target = req.param("post_logout_redirect_uri")
    claims: dict[str, Any] | None = None
    if hint:
        claims = fake.keys.verify(hint)
        if claims is None:
            raise OAuthError("invalid_request", "id_token_hint does not verify", page=True)
    audience = (claims or {}).get("aud")
    hinted = fake.apps.get(audience[0] if isinstance(audience, list) and audience else "")
    allowed = {
        uri
        for app in ([hinted] if hinted else fake.apps.values())
        for uri in app.post_logout_redirect_uris
    }
    if target is not None and target not in allowed:
        raise OAuthError("invalid_request", "post_logout_redirect_uri is not registered", page=True)
    sid = (claims or {}).get("sid") or req.cookie(SESSION_COOKIE)
    session = fake.sessions.get(str(sid)) if sid else None
    if session is not None and not session.revoked:
        fake.end_session(session)
    if target is None:
        return html_response("<h1>Signed out</h1>")
    state = req.param("state")
    return _back_to(target, {"state": state}, outcome="ok", req=req)
