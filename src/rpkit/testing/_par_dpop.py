"""The fake OP's pushed authorization requests (RFC 9126) and DPoP proofs (RFC 9449).

The PAR endpoint authenticates the client as the token endpoint does (RFC 9126 §2.1), checks
the request as the authorization endpoint would, and answers ``201`` with a one-time
``request_uri`` (§2.2); the authorization endpoint then reads the pushed parameters (§4). The
token endpoint and UserInfo check a ``DPoP`` proof when one is sent (RFC 9449 §4.3), bind the
tokens to its key (``cnf.jkt``, §6.1), honour ``dpop_jkt`` (§10) and hand out nonces (§8, §9).
The ``par_error`` and ``dpop_nonce`` knobs make them misbehave.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from rpkit.testing._http import NO_STORE, OAuthError, OPRequest, json_response
from rpkit.testing._jose import b64url, decode_unverified, verify_compact

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP

__all__ = ["DPOP_ALGS", "PushedAuthorization"]

DPOP_ALGS = ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PROOF_WINDOW = 60
"""Seconds a proof's ``iat`` may be off the OP's clock."""
_CLIENT_AUTH = frozenset({"client_secret", "client_assertion", "client_assertion_type"})
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})


@dataclass
class PushedAuthorization:
    """A pushed request: the client, its parameters, and when its ``request_uri`` expires."""

    client_id: str
    params: list[tuple[str, str]]
    expires_at: int


def pushed_authorization(op: FakeOP, req: OPRequest) -> httpx.Response:
    """``POST`` the PAR endpoint (RFC 9126 §2): client authentication, then the authorization
    request's checks; a ``201`` with ``request_uri`` and ``expires_in``."""
    from rpkit.testing import _authorize, _token  # noqa: PLC0415 - they import this module

    if req.method != "POST":
        raise OAuthError("invalid_request", "the PAR endpoint takes POST", status=405)
    client = _token.authenticate_client(op, req)
    if op.misbehave.par_error:
        raise OAuthError(op.misbehave.par_error, "the fake OP was told to refuse the push")
    if req.all("request_uri"):
        raise OAuthError("invalid_request", "request_uri must not be pushed (RFC 9126 §2.1)")
    if req.get("redirect_uri") not in client.redirect_uris:
        raise OAuthError("invalid_request", "redirect_uri is not registered")
    params = [(k, v) for k, v in req.form if k not in _CLIENT_AUTH and k != "client_id"]
    pushed = OPRequest("GET", req.url, params, [], req.headers, None, req.record)
    _authorize._check_request(op, pushed)
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(24)
    op.pushed[request_uri] = PushedAuthorization(
        client.client_id, params, op.now() + op.par_lifetime
    )
    body = {"request_uri": request_uri, "expires_in": op.par_lifetime}
    return json_response(body, 201, NO_STORE)


def resolve_pushed(op: FakeOP, req: OPRequest) -> OPRequest:
    """The authorization request a browser brought: the pushed parameters for its
    ``request_uri`` (single use, before it expires, for the same client: RFC 9126 §4), or the
    query itself. Refused when PAR is required and the browser carries the parameters."""
    request_uri = req.get("request_uri")
    if request_uri is None:
        if op.require_par:
            msg = "pushed authorization requests are required"
            raise OAuthError("invalid_request", msg, page=True)
        return req
    pushed = op.pushed.pop(request_uri, None)
    if pushed is None or pushed.expires_at < op.now() or pushed.client_id != req.get("client_id"):
        raise OAuthError("invalid_request_uri", "unknown, used or expired request_uri", page=True)
    query = [("client_id", pushed.client_id), *pushed.params]
    return OPRequest(req.method, req.url, query, [], req.headers, None, req.record)


# -- DPoP --------------------------------------------------------------------------------------
def token_proof(op: FakeOP, req: OPRequest) -> str | None:
    """The thumbprint of the key a token request's ``DPoP`` proof proves, or None without a
    proof (RFC 9449 §5).

    Raises:
        OAuthError: ``invalid_dpop_proof``, or ``use_dpop_nonce`` with a ``DPoP-Nonce``.
    """
    return _proof(op, req, url=op.endpoints["token"], access_token=None, resource=False)


def resource_proof(op: FakeOP, req: OPRequest, scheme: str, token: str, jkt: str | None) -> None:
    """Check how a protected resource (UserInfo) got ``token``: a bound token only as
    ``DPoP`` with a proof of its key and ``ath`` (RFC 9449 §7), an unbound one only as
    ``Bearer``.

    Raises:
        OAuthError: 401 with a ``DPoP`` or ``Bearer`` challenge.
    """
    if jkt is None:
        if scheme != "bearer":
            raise _challenge("invalid_token", "the token is not DPoP-bound", scheme="Bearer")
        return
    if scheme != "dpop":
        raise _challenge("invalid_token", "a DPoP-bound token needs the DPoP scheme")
    url = str(req.url.copy_with(query=None, fragment=None))
    proven = _proof(op, req, url=url, access_token=token, resource=True)
    if proven != jkt:
        raise _challenge("invalid_dpop_proof", "the proof's key is not the token's")


def _proof(
    op: FakeOP, req: OPRequest, *, url: str, access_token: str | None, resource: bool
) -> str | None:
    proofs = req.headers.get_list("dpop")
    if not proofs:
        if resource:
            raise _challenge("invalid_dpop_proof", "no DPoP proof")
        return None
    if len(proofs) > 1:
        raise _invalid("more than one DPoP header", resource)
    try:
        header, claims = decode_unverified(proofs[0])
        key = JWKRegistry.import_key(header["jwk"])
    except (ValueError, KeyError, TypeError, JoseError) as exc:
        raise _invalid("the proof is not a JWT with a jwk header", resource) from exc
    alg, iat = header.get("alg"), claims.get("iat")
    problems = [
        ("typ", header.get("typ") != "dpop+jwt"),
        ("alg", alg not in DPOP_ALGS),
        ("private jwk", bool(_PRIVATE & set(header["jwk"]))),
        ("signature", verify_compact(proofs[0], key, str(alg)) is None),
        ("htm", claims.get("htm") != req.method),
        ("htu", claims.get("htu") != url),
        ("iat", not isinstance(iat, int) or abs(iat - op.now()) > PROOF_WINDOW),
        ("jti", not claims.get("jti") or claims["jti"] in op.seen_dpop_jtis),
        ("ath", access_token is not None and claims.get("ath") != _ath(access_token)),
    ]
    for name, failed in problems:
        if failed:
            raise _invalid(f"the proof's {name} is wrong", resource)
    _check_nonce(op, claims.get("nonce"), resource)
    op.seen_dpop_jtis.add(str(claims["jti"]))
    return key.thumbprint()


def _check_nonce(op: FakeOP, nonce: Any, resource: bool) -> None:
    mode = op.misbehave.dpop_nonce
    if mode == "off" or (mode == "required" and nonce == op.dpop_nonce):
        return
    if mode == "stale":
        op.dpop_nonce = secrets.token_urlsafe(16)
    headers = {} if mode == "no_header" else {"DPoP-Nonce": op.dpop_nonce}
    if resource:
        raise _challenge("use_dpop_nonce", "a fresh nonce is required", headers=headers)
    raise OAuthError("use_dpop_nonce", "a fresh nonce is required", headers=headers)


def _ath(token: str) -> str:
    return b64url(hashlib.sha256(token.encode()).digest())


def _invalid(description: str, resource: bool) -> OAuthError:
    if resource:
        return _challenge("invalid_dpop_proof", description)
    return OAuthError("invalid_dpop_proof", description)


def _challenge(
    error: str, description: str, *, scheme: str = "DPoP", headers: dict[str, str] | None = None
) -> OAuthError:
    algs = f' algs="{" ".join(DPOP_ALGS)}",' if scheme == "DPoP" else ""
    challenge = f'{scheme}{algs} error="{error}", error_description="{description}"'
    return OAuthError(
        error, description, status=401, headers={"WWW-Authenticate": challenge, **(headers or {})}
    )
