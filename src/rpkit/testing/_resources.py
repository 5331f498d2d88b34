"""The fake OP's machine-facing documents: discovery, JWKS and UserInfo."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from rpkit.testing._http import OAuthError, OPRequest, json_response
from rpkit.testing._par_dpop import DPOP_ALGS, resource_proof
from rpkit.testing.keys import SIGNING_ALGORITHMS
from rpkit.testing.knobs import apply_edits

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP
    from rpkit.testing.registry import FakeUser, TokenGrant

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


def metadata(op: FakeOP) -> dict[str, Any]:
    """The discovery document (Discovery §3) after the ``metadata`` knob's edits."""
    endpoints = dict(op.endpoints)
    if op.misbehave.http_endpoints:
        endpoints = {name: url.replace("https://", "http://", 1) for name, url in endpoints.items()}
    honest: dict[str, Any] = {
        "issuer": op.issuer_template or op.issuer,
        "authorization_endpoint": endpoints["authorize"],
        "token_endpoint": endpoints["token"],
        "userinfo_endpoint": endpoints["userinfo"],
        "jwks_uri": endpoints["jwks"],
        "end_session_endpoint": endpoints["end_session"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post", "fragment"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [*SIGNING_ALGORITHMS, "HS256"],
        "userinfo_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "at_hash",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "email",
            "email_verified",
            "locale",
            "updated_at",
        ],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
    if not op.authorization_response_iss:
        del honest["authorization_response_iss_parameter_supported"]
    honest["dpop_signing_alg_values_supported"] = list(DPOP_ALGS)
    if op.par:
        honest["pushed_authorization_request_endpoint"] = endpoints["par"]
        honest["require_pushed_authorization_requests"] = op.require_par
    if op.issuer_template:
        honest["claims_supported"] += ["tid", "oid"]
    return apply_edits(op.personality.metadata(honest), op.misbehave.metadata)


def discovery(op: FakeOP, req: OPRequest) -> httpx.Response:
    """``GET {issuer}/.well-known/openid-configuration``."""
    return json_response(
        metadata(op), headers={"Cache-Control": f"public, max-age={op.metadata_max_age}"}
    )


def jwks(op: FakeOP, req: OPRequest) -> httpx.Response:
    """``GET jwks_uri``: the key set of the configured layout."""
    knobs = op.misbehave
    document = op.keys.jwks(
        knobs.jwks_layout, key_params=knobs.jwks_key_params, extra_keys=knobs.jwks_extra_keys
    )
    return json_response(document, headers={"Cache-Control": f"public, max-age={op.jwks_max_age}"})


def bearer_user(op: FakeOP, req: OPRequest) -> tuple[TokenGrant, FakeUser]:
    """The grant and user of the access token in the ``Authorization: Bearer`` header (RFC 6750
    §2.1; a token in the query or form is refused).

    Raises:
        OAuthError: 401 with a ``WWW-Authenticate: Bearer`` challenge.
    """
    if req.all("access_token"):
        raise _bearer_error("invalid_request", "send the access token in the Authorization header")
    authorization = req.headers.get("authorization", "")
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() not in ("bearer", "dpop") or not presented:
        raise _bearer_error("invalid_request", "Bearer token required")
    grant = op.access_tokens.get(presented.strip())
    if grant is None or grant.revoked or grant.expires_at < op.now() or grant.user is None:
        raise _bearer_error("invalid_token", "unknown or expired access token")
    # RFC 9449 §7: a DPoP-bound token only with the DPoP scheme and a proof of its key.
    resource_proof(op, req, scheme.lower(), presented.strip(), grant.dpop_jkt)
    return grant, grant.user


def userinfo(op: FakeOP, req: OPRequest) -> httpx.Response:
    """UserInfo (Core §5.3): the Bearer header only, claims released by the granted scope."""
    grant, user = bearer_user(op, req)
    released = user.released(grant.scope)
    client = op.clients[grant.client_id]
    alg = client.userinfo_signed_response_alg or ("RS256" if op.misbehave.userinfo_signed else None)
    released = op.personality.userinfo_claims(released, user, client)
    if alg is None:
        claims = apply_edits(released, op.misbehave.userinfo_claims)
        return json_response(claims, headers={"Cache-Control": "no-store"})
    # Edit once, on the signed document, so callables see (and change) its iss and aud too.
    payload = apply_edits(
        {"iss": op.issuer_for(user), "aud": client.client_id, **released},
        op.misbehave.userinfo_claims,
    )
    signed = op.minter.sign(
        payload,
        alg=alg,
        secret=client.client_secret,
        tamper=op.misbehave.userinfo_tamper,
        layout=op.misbehave.jwks_layout,
    )
    return httpx.Response(
        200,
        content=signed.encode(),
        headers={"Content-Type": "application/jwt", "Cache-Control": "no-store"},
    )


def _bearer_error(error: str, description: str) -> OAuthError:
    challenge = f'Bearer error="{error}", error_description="{description}"'
    return OAuthError(error, description, status=401, headers={"WWW-Authenticate": challenge})
