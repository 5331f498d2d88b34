"""The fake OP's token endpoint: client authentication and the three grants it serves."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from rpkit.testing import _issue
from rpkit.testing._http import NO_STORE, OAuthError, OPRequest, json_response
from rpkit.testing._jose import b64url, decode_unverified, verify_compact
from rpkit.testing._par_dpop import token_proof
from rpkit.testing.knobs import apply_edits
from rpkit.testing.registry import CodeGrant, FakeClient, TokenGrant

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 600
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def token(op: FakeOP, req: OPRequest) -> httpx.Response:
    """Authenticate the client, then serve ``authorization_code``, ``refresh_token`` or
    ``client_credentials``."""
    if req.method != "POST":
        raise OAuthError("invalid_request", "the token endpoint takes POST", status=405)
    client = authenticate_client(op, req)
    jkt = token_proof(op, req)  # RFC 9449 §5: the key the new tokens are bound to, if any
    grant_type = req.get("grant_type")
    if grant_type == "authorization_code":
        return _authorization_code(op, req, client, jkt)
    if grant_type == "refresh_token":
        return _refresh(op, req, client, jkt)
    if grant_type == "client_credentials":
        return _client_credentials(op, req, client)
    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


def authenticate_client(op: FakeOP, req: OPRequest) -> FakeClient:
    """Identify and authenticate the client by exactly one method (RFC 6749 §2.3)."""
    basic = _basic_credentials(req.headers.get("authorization"))
    used = [
        method
        for method, present in (
            ("client_secret_basic", basic is not None),
            ("client_secret_post", req.get("client_secret") is not None),
            ("private_key_jwt", req.get("client_assertion") is not None),
        )
        if present
    ]
    if len(used) > 1:
        raise OAuthError("invalid_request", f"more than one client authentication method: {used}")
    method = used[0] if used else "none"
    client_id = basic[0] if basic else req.get("client_id")
    if method == "private_key_jwt":
        client_id = client_id or _assertion_subject(req.get("client_assertion") or "")
    client = op.clients.get(client_id or "")
    if client is None:
        raise OAuthError("invalid_client", f"unknown client {client_id!r}", status=401)
    if req.get("client_id") not in (None, client.client_id):
        raise OAuthError("invalid_request", "client_id in the body differs from the credentials")
    if client.token_endpoint_auth_method != method:
        raise OAuthError(
            "invalid_client",
            f"client is registered for {client.token_endpoint_auth_method}, used {method}",
            status=401,
        )
    if method == "client_secret_basic":
        try:
            _check_secret(op, client, basic[1] if basic else "")
        except OAuthError as error:  # RFC 6749 §5.2: answer Basic with a Basic challenge
            error.headers["WWW-Authenticate"] = 'Basic realm="token"'
            raise
    elif method == "client_secret_post":
        _check_secret(op, client, req.get("client_secret") or "")
    elif method == "private_key_jwt":
        _check_assertion(op, client, req)
    return client


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: Basic of form-urlencoded id ``:`` form-urlencoded secret."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "Basic credentials lack a colon", status=401)
    return unquote_plus(client_id), unquote_plus(secret)


def _check_secret(op: FakeOP, client: FakeClient, secret: str) -> None:
    verifier = op.personality.client_secret_verifier
    if verifier is not None:
        if not verifier(client, secret):
            raise OAuthError("invalid_client", "client secret refused", status=401)
        return
    expected = (client.client_secret or "").encode()
    if not expected or not hmac.compare_digest(expected, secret.encode()):
        raise OAuthError("invalid_client", "client secret does not match", status=401)


def _assertion_subject(assertion: str) -> str | None:
    try:
        return str(decode_unverified(assertion)[1].get("sub"))
    except ValueError:
        return None


def _check_assertion(op: FakeOP, client: FakeClient, req: OPRequest) -> None:
    """RFC 7523 §3: signed by a registered key, iss = sub = client_id, our audience, short
    lifetime, unique ``jti``."""
    if req.get("client_assertion_type") != JWT_BEARER_ASSERTION:
        raise OAuthError("invalid_client", "wrong client_assertion_type", status=401)
    assertion = req.get("client_assertion") or ""
    claims = _verify_assertion(client, assertion)
    now = op.now()
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    problems = [
        (
            "iss and sub must be the client_id",
            claims.get("iss") != client.client_id or claims.get("sub") != client.client_id,
        ),
        (
            "aud must name the token endpoint or issuer",
            not {op.endpoints["token"], op.issuer} & set(audiences),
        ),
        ("exp missing or passed", not isinstance(claims.get("exp"), int) or claims["exp"] <= now),
        (
            "exp too far ahead",
            isinstance(claims.get("exp"), int) and claims["exp"] - now > MAX_ASSERTION_LIFETIME,
        ),
        ("jti missing or reused", not claims.get("jti") or claims["jti"] in op.seen_assertion_ids),
    ]
    for message, failed in problems:
        if failed:
            raise OAuthError("invalid_client", f"client assertion: {message}", status=401)
    op.seen_assertion_ids.add(str(claims["jti"]))


def _verify_assertion(client: FakeClient, assertion: str) -> dict[str, Any]:
    try:
        header, _ = decode_unverified(assertion)
        keys = KeySet.import_key_set(client.jwks or {"keys": []})  # type: ignore[arg-type]
        key = keys.get_by_kid(header.get("kid"))
    except (ValueError, KeyError, JoseError) as exc:  # JoseError: unknown kid, no keys at all
        raise OAuthError("invalid_client", "client assertion key not found", status=401) from exc
    claims = verify_compact(assertion, key, str(header.get("alg")))
    if claims is None:
        raise OAuthError("invalid_client", "client assertion signature invalid", status=401)
    return claims


def _authorization_code(
    op: FakeOP, req: OPRequest, client: FakeClient, jkt: str | None = None
) -> httpx.Response:
    if op.misbehave.token_error:
        raise OAuthError(op.misbehave.token_error, "the fake OP was told to refuse")
    code = req.get("code") or ""
    grant = op.codes.get(code)
    if grant is None or grant.used or grant.expires_at < op.now():
        raise OAuthError("invalid_grant", "unknown, used or expired code")
    grant.used = True  # single use, even when a later check fails
    if grant.client_id != client.client_id:
        raise OAuthError("invalid_grant", "code was issued to another client")
    if req.get("redirect_uri") != grant.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
    _check_pkce(grant.code_challenge, grant.code_challenge_method, req.get("code_verifier"))
    if grant.dpop_jkt is not None and jkt != grant.dpop_jkt:  # RFC 9449 §10
        raise OAuthError("invalid_grant", "the DPoP proof's key is not the dpop_jkt of the code")
    access = _access_token(op, client, grant, jkt)
    refresh = TokenGrant(client.client_id, grant.user, grant.scope, grant.auth_time, grant.sid)
    refresh.dpop_jkt = jkt
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": _token_type(op, jkt),
        "expires_in": op.access_token_lifetime,
        "scope": grant.scope,
    }
    if op.kind == "oidc":
        body["id_token"] = op.issue_id_token(
            client, refresh, access, nonce=grant.nonce, refreshing=False
        )
    if op.issue_refresh_tokens:
        body["refresh_token"] = op.store_refresh_token(refresh)
    return _answer(
        apply_edits(op.personality.token_response(body, client), op.misbehave.token_fields)
    )


def _check_pkce(challenge: str | None, method: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier sent but no code_challenge was")
        return
    if verifier is None or not _VERIFIER.fullmatch(verifier):
        raise OAuthError("invalid_grant", "code_verifier missing or malformed (RFC 7636 §4.1)")
    derived = b64url(hashlib.sha256(verifier.encode()).digest()) if method == "S256" else verifier
    if not hmac.compare_digest(derived, challenge):
        raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")


def _refresh(
    op: FakeOP, req: OPRequest, client: FakeClient, jkt: str | None = None
) -> httpx.Response:
    knobs = op.misbehave
    if knobs.refresh_error:
        raise OAuthError(knobs.refresh_error, "the fake OP was told to refuse")
    presented = req.get("refresh_token") or ""
    grant = op.refresh_tokens.get(presented)
    if grant is None or grant.revoked or grant.client_id != client.client_id:
        raise OAuthError("invalid_grant", "unknown, revoked or foreign refresh token")
    if grant.dpop_jkt is not None and jkt != grant.dpop_jkt:  # RFC 9449 §5
        raise OAuthError("invalid_grant", "the refresh token is bound to another DPoP key")
    access = _access_token(op, client, grant, jkt)
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": _token_type(op, jkt),
        "expires_in": op.access_token_lifetime,
        "scope": grant.scope,
    }
    if not knobs.refresh_minimal:
        if op.kind == "oidc":
            body["id_token"] = op.issue_id_token(client, grant, access, nonce=None, refreshing=True)
        if knobs.refresh_rotation:
            grant.revoked = True
            successor = TokenGrant(
                client.client_id, grant.user, grant.scope, grant.auth_time, grant.sid
            )
            successor.dpop_jkt = grant.dpop_jkt
            successor.id_token = body.get("id_token")
            body["refresh_token"] = op.store_refresh_token(successor)
    return _answer(apply_edits(op.personality.token_response(body, client), knobs.token_fields))


def _access_token(
    op: FakeOP, client: FakeClient, grant: CodeGrant | TokenGrant, jkt: str | None
) -> str:
    """The access token of a grant; bound to ``jkt`` (``cnf.jkt``, RFC 9449 §6.1) when a DPoP
    proof came with the request, in the plain fake's shape (a preset's own shapes are unbound)."""
    if jkt is None:
        return op.issue_access_token(client, grant.user, grant.scope, grant.sid)
    return _issue.access_token(op, client, grant.user, grant.scope, grant.sid, jkt=jkt)


def _token_type(op: FakeOP, jkt: str | None = None) -> str:
    """``Bearer``; an OAuth 2.0-only provider writes it in lower case, as GitHub does; ``DPoP``
    for a token bound to a DPoP key (RFC 9449 §5)."""
    if jkt is not None:
        return "DPoP"
    return "bearer" if op.kind == "oauth2" else "Bearer"


def _answer(body: dict[str, Any]) -> httpx.Response:
    return json_response(body, 200, NO_STORE)


def new_refresh_token() -> str:
    """An opaque refresh token."""
    return "rt-" + secrets.token_urlsafe(32)


def _client_credentials(op: FakeOP, req: OPRequest, client: FakeClient) -> httpx.Response:
    """A token for the client itself; its ``aud`` is the RFC 8707 ``resource`` or the
    Auth0-style ``audience`` when one is sent (both refused: ``invalid_target``). The
    ``token_fields`` knob edits the answer, as for the other grants."""
    resource, audience = req.get("resource"), req.get("audience")
    if resource is not None and audience is not None:
        raise OAuthError("invalid_target", "send resource or audience, not both")
    target = resource or audience
    issued_for = replace(client, access_token_audience=target) if target else client
    scope = req.get("scope") or ""
    body = {
        "access_token": op.issue_access_token(issued_for, None, scope),
        "token_type": _token_type(op),
        "expires_in": op.access_token_lifetime,
        "scope": scope,
    }
    return _answer(apply_edits(body, op.misbehave.token_fields))
