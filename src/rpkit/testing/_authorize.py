"""The fake OP's browser-facing endpoints: authorization (auto-approve, or a page to choose the
user with ``FakeOP(choose_user=True)``) and end-session."""

from __future__ import annotations

import html
import json
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from rpkit.testing._http import OAuthError, OPRequest, auto_post_form, html_response, redirect
from rpkit.testing._logout import frontchannel_page, frontchannel_urls
from rpkit.testing._par_dpop import resolve_pushed
from rpkit.testing.knobs import apply_edits
from rpkit.testing.registry import CodeGrant, FakeClient, FakeUser

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP

PKCE_METHODS = ("S256", "plain")
_USER_LINK = re.compile(r'<a class="fake-op-user" data-sub="([^"]*)" href="([^"]*)"')
_CHOOSER_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:30rem;margin:2rem auto;padding:0 1rem}"
    "ul{list-style:none;padding:0}li{margin:.5rem 0}"
    "a.fake-op-user{display:block;padding:.6rem .8rem;border:1px solid #bbb;border-radius:6px;"
    "text-decoration:none;color:#222}a.fake-op-user:hover{background:#f2f2f2}"
)


def authorize(op: FakeOP, req: OPRequest) -> httpx.Response:
    """Validate the authorization request, sign a user in, and answer the RP: the user the
    ``login_hint`` names, else the current user; with ``choose_user`` and no ``login_hint``
    (nor ``prompt=none``), a page that lets the person pick one first."""
    client = _client_for(op, req.get("client_id"))
    req = resolve_pushed(op, req)  # RFC 9126 §4: a request_uri stands for the pushed request
    redirect_uri = req.get("redirect_uri")
    if redirect_uri not in client.redirect_uris:
        # Never redirect to an unregistered URI (RFC 6749 §4.1.2.1): show an error page.
        raise OAuthError("invalid_request", "redirect_uri is not registered", page=True)
    bounce = op.misbehave.authorize_bounce
    if bounce is not None:
        params = [(k, bounce.client_id if k == "client_id" else v) for k, v in req.query]
        if bounce.redirect_uri:
            params = [(k, bounce.redirect_uri if k == "redirect_uri" else v) for k, v in params]
        return redirect(f"{bounce.authorization_endpoint}?{urlencode(params)}")
    response_mode = req.get("response_mode") or "query"
    try:
        scope, challenge, method = _check_request(op, req)
    except OAuthError as error:
        req.record.outcome = str(error)
        error_params = [("error", error.error), ("error_description", error.description)]
        return _deliver(op, req, redirect_uri, response_mode, error_params)
    if op.misbehave.authorize_error:
        refusal = [("error", op.misbehave.authorize_error)]
        return _deliver(op, req, redirect_uri, response_mode, refusal)
    login_hint = req.get("login_hint")
    if op.choose_user and not login_hint and req.get("prompt") != "none":
        req.record.outcome = "chooser"
        return _chooser_page(op, req, client)
    user = op.user_for_hint(login_hint)
    pkce = (challenge, method)
    grant = _grant(op, req, client, redirect_uri=redirect_uri, user=user, scope=scope, pkce=pkce)
    code = secrets.token_urlsafe(32)
    op.codes[code] = grant
    result = [("code", code), *_first_login_user(op, grant)]
    return _deliver(op, req, redirect_uri, response_mode, result, grant=grant)


def _first_login_user(op: FakeOP, grant: CodeGrant) -> list[tuple[str, str]]:
    """Apple's ``user`` parameter, sent only the first time a user authorizes a client: their
    name and email as JSON, in Apple's shape:
    https://developer.apple.com/documentation/sign_in_with_apple/sign_in_with_apple_js/incorporating_sign_in_with_apple_into_other_platforms
    """
    consent = (grant.client_id, grant.user.sub)
    first = consent not in op.consents
    op.consents.add(consent)
    if not (first and op.first_login_user_field):
        return []
    claims = grant.user.claims
    names = (("given_name", "firstName"), ("family_name", "lastName"))
    name = {apple: claims[ours] for ours, apple in names if ours in claims}
    user: dict[str, Any] = {"name": name} if name else {}
    if "email" in claims:
        user["email"] = claims["email"]
    return [("user", json.dumps(user, separators=(",", ":")))]


def _client_for(op: FakeOP, client_id: str | None) -> FakeClient:
    client = op.clients.get(client_id or "")
    if client is None:
        raise OAuthError("invalid_request", f"unknown client_id {client_id!r}", page=True)
    return client


def _chooser_page(op: FakeOP, req: OPRequest, client: FakeClient) -> httpx.Response:
    """The login page of ``choose_user``: one link per user, each the same authorization request
    with ``login_hint`` set to that user's ``sub``."""
    base = str(req.url.copy_with(query=None))
    params = [*req.query, *req.form]  # a POSTed request becomes links (GET) all the same
    items = "".join(
        f'<li><a class="fake-op-user" data-sub="{html.escape(user.sub)}" '
        f'href="{html.escape(base + "?" + urlencode([*params, ("login_hint", user.sub)]))}" '
        f'id="user-{html.escape(user.sub)}">{_user_label(user)}</a></li>'
        for user in op.users.values()
    )
    body = (
        f"<style>{_CHOOSER_STYLE}</style><h1>Sign in</h1>"
        f"<p><code>{html.escape(client.client_id)}</code> asks <code>{html.escape(op.issuer)}"
        "</code> to sign you in. This is a fake OpenID Provider: pick a user, no password.</p>"
        f'<ul id="fake-op-users">{items}</ul>'
    )
    return html_response(body)


def _user_label(user: FakeUser) -> str:
    name, email = user.claims.get("name"), user.claims.get("email")
    label = f"<b>{html.escape(str(name or user.sub))}</b>"
    return label + (f" <small>{html.escape(str(email))}</small>" if email else "")


def chosen_user_url(page: str, sub: str) -> str | None:
    """The link of the ``choose_user`` page that signs ``sub`` in; None when ``page`` is not that
    page or does not list ``sub``."""
    for link_sub, href in _USER_LINK.findall(page):
        if html.unescape(link_sub) == sub:
            return html.unescape(href)
    return None


def _check_request(op: FakeOP, req: OPRequest) -> tuple[str, str | None, str]:
    """Refuse a malformed request; return its scope and PKCE challenge and method."""
    if req.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")
    scope = req.get("scope") or ""
    if op.kind == "oidc" and "openid" not in scope.split():
        raise OAuthError("invalid_scope", "scope must include openid")
    if req.get("response_mode") not in (None, "query", "form_post", "fragment"):
        raise OAuthError("invalid_request", "unsupported response_mode")
    challenge, method = req.get("code_challenge"), req.get("code_challenge_method") or "plain"
    if challenge is None and op.require_pkce:
        raise OAuthError("invalid_request", "code_challenge is required")
    if challenge is not None and method not in PKCE_METHODS:
        raise OAuthError("invalid_request", f"code_challenge_method {method!r} not supported")
    for name in ("state", "nonce", "prompt", "max_age", "login_hint"):
        req.get(name)  # rejects a repeated parameter
    return scope, challenge, method


def _grant(
    op: FakeOP,
    req: OPRequest,
    client: FakeClient,
    *,
    redirect_uri: str,
    user: FakeUser,
    scope: str,
    pkce: tuple[str | None, str],
) -> CodeGrant:
    challenge, method = pkce
    return CodeGrant(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        user=user,
        scope=scope,
        nonce=req.get("nonce"),
        code_challenge=challenge,
        code_challenge_method=method if challenge else None,
        auth_time=op.now(),
        sid=op.start_session(user, client.client_id),
        expires_at=op.now() + op.code_lifetime,
        dpop_jkt=req.get("dpop_jkt"),
    )


def _deliver(
    op: FakeOP,
    req: OPRequest,
    redirect_uri: str,
    response_mode: str,
    result: list[tuple[str, str]],
    *,
    grant: CodeGrant | None = None,
) -> httpx.Response:
    knobs = op.misbehave
    params = list(result)
    state = req.all("state")[:1]
    if state and knobs.callback_state != "missing":
        params.append(("state", state[0] + ("1" if knobs.callback_state == "altered" else "")))
    if knobs.callback_iss == "wrong":
        params.append(("iss", op.issuer + "1"))
    elif knobs.callback_iss == "correct" and op.authorization_response_iss:
        params.append(("iss", op.issuer))
    fragment: list[tuple[str, str]] = []
    if grant is not None and knobs.front_channel_tokens:
        tokens = op.front_channel_tokens(grant, knobs.front_channel_tokens)
        (fragment if knobs.front_channel_in == "fragment" else params).extend(tokens)
    params = list(apply_edits(dict(params), knobs.callback_params).items())
    for name, how in knobs.callback_duplicates.items():
        first = next((v for k, v in params if k == name), "x")
        params.append((name, first if how == "same" else first + "-dup"))
    if response_mode == "form_post":
        return auto_post_form(redirect_uri, params + fragment)
    separator = "&" if "?" in redirect_uri else "?"
    location = f"{redirect_uri}{separator}{urlencode(params)}"
    if response_mode == "fragment":
        location = f"{redirect_uri}#{urlencode(params + fragment)}"
    elif fragment:
        location += f"#{urlencode(fragment)}"
    return redirect(location)


def end_session(op: FakeOP, req: OPRequest) -> httpx.Response:
    """RP-Initiated Logout §2: check the hint and the return URI, end the OP session, return."""
    hint = req.get("id_token_hint")
    client_id = req.get("client_id")
    target = req.get("post_logout_redirect_uri")
    claims = op.verify_own_token(hint) if hint else None
    if hint and claims is None:
        raise OAuthError("invalid_request", "id_token_hint was not issued by this OP", page=True)
    audience = claims.get("aud") if claims else None
    if claims and client_id and client_id != audience and client_id not in (audience or []):
        raise OAuthError("invalid_request", "client_id does not match id_token_hint", page=True)
    client_id = client_id or (audience if isinstance(audience, str) else None)
    client = op.clients.get(client_id or "")
    if target is not None and (client is None or target not in client.post_logout_redirect_uris):
        raise OAuthError("invalid_request", "post_logout_redirect_uri is not registered", page=True)
    frames = frontchannel_urls(op, str(claims["sid"])) if claims and claims.get("sid") else []
    if claims and claims.get("sid"):
        op.end_session(str(claims["sid"]))
    if target is None or frames:
        return html_response(frontchannel_page(frames, _returned(op, req, target)))
    return redirect(str(_returned(op, req, target)))


def _returned(op: FakeOP, req: OPRequest, target: str | None) -> str | None:
    """The post-logout redirect URI with ``state`` as the ``logout_state`` knob shapes it."""
    if target is None:
        return None
    state = req.get("state")
    mode = op.misbehave.logout_state
    params: list[tuple[str, str]] = []
    if mode == "other":
        params.append(("state", secrets.token_urlsafe(16)))
    elif state is not None and mode != "missing":
        params.append(("state", state + ("1" if mode == "altered" else "")))
    separator = "&" if "?" in target else "?"
    return f"{target}{separator}{urlencode(params)}" if params else target
