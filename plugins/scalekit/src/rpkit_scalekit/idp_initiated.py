"""IdP-initiated SSO: verify Scalekit's ``idp_initiated_login`` JWT and turn it into an ordinary,
SP-initiated login.

When a user starts from their identity provider's dashboard, Scalekit sends the browser to the
application's "Initiate Login URL" with ``?idp_initiated_login=<JWT>``. Nothing in that request is
a login: :class:`IdPInitiatedVerifier` checks the token (RS256 signature with a key from rpkit's
:class:`~rpkit.jwks.JWKSCache`, exact ``iss``, ``aud``, ``exp``) and returns a
:class:`~rpkit_scalekit.routing.LoginRoute` for a fresh authorization request with its own
``state``, ``nonce`` and PKCE. ``relay_state`` survives only as a same-origin relative path.
A replayed token can do no more than start another login, which still needs the IdP.

Example:
    >>> # verifier = IdPInitiatedVerifier(rp.jwks)
    >>> # metadata = await rp.metadata("scalekit")
    >>> # login = await verifier.verify(token, config=config, metadata=metadata)
    >>> # request = await rp.begin_login("scalekit", redirect_uri=..., return_to=login.return_to,
    >>> #                                params=login.route.params())
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from joserfc import jws
from joserfc.errors import JoseError

from rpkit._log import get_logger
from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.errors import JWKSError
from rpkit.flow import safe_return_to
from rpkit.jwks import JWKSCache
from rpkit_scalekit._wire import frozen_mapping
from rpkit_scalekit.errors import IdPInitiatedLoginError, ScalekitInputError
from rpkit_scalekit.routing import LoginRoute, RouteKind

__all__ = ["MAX_TOKEN_LENGTH", "IdPInitiatedLogin", "IdPInitiatedVerifier", "check_token"]

MAX_TOKEN_LENGTH = 8192
"""Characters of an ``idp_initiated_login`` token; a longer one is refused unread."""
# Header, payload and signature in base64url; an empty signature (``alg: none``) is left for
# the algorithm check to name.
_COMPACT = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_ROUTING_CLAIMS = ("connection_id", "organization_id", "login_hint", "relay_state")


class IdPInitiatedLogin(msgspec.Struct, frozen=True, kw_only=True):
    """A verified IdP-initiated login, ready to become an SP-initiated one."""

    route: LoginRoute
    """Where to send the new authorization request (``reason="idp_initiated"``)."""
    return_to: str | None
    """``relay_state`` when it is a safe same-origin relative path; None otherwise."""
    claims: Mapping[str, Any]
    """Every claim of the token, read-only."""


class IdPInitiatedVerifier:
    """Verifies ``idp_initiated_login`` tokens.

    Args:
        jwks: the application's key cache (the one the relying party uses).
        clock: wall-clock seconds; injectable for tests.
    """

    def __init__(self, jwks: JWKSCache, *, clock: Callable[[], float] = time.time) -> None:
        self._jwks = jwks
        self._clock = clock

    async def verify(
        self,
        token: str,
        *,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        audience: Sequence[str] | None = None,
    ) -> IdPInitiatedLogin:
        """Check ``token`` and derive the login it asks for.

        Args:
            token: the ``idp_initiated_login`` query parameter.
            config: the Scalekit provider (issuer, client id, leeway, algorithm).
            metadata: its metadata, for ``jwks_uri``.
            audience: accepted ``aud`` values; the client id by default. Scalekit does not
                document this claim, so a different value is configured here, not skipped.

        Raises:
            IdPInitiatedLoginError: any failed check (``reason`` names it); start an ordinary
                login instead.
        """
        log = get_logger(provider=config.id, issuer=config.issuer)
        try:
            claims = await self._verified_claims(token, config, metadata)
            _check_claims(claims, config, audience or (config.client_id,), self._clock())
            login = _login(claims)
        except IdPInitiatedLoginError as exc:
            log.info("rpkit.scalekit.idp_initiated_rejected", reason=exc.reason, detail=exc.detail)
            raise
        if claims.get("relay_state") is not None and login.return_to is None:
            log.info("rpkit.scalekit.idp_initiated_relay_state_dropped")
        log.info("rpkit.scalekit.idp_initiated_accepted", kind=login.route.kind)
        return login

    async def _verified_claims(
        self, token: str, config: ProviderConfig, metadata: ProviderMetadata
    ) -> dict[str, Any]:
        alg = config.id_token_signed_response_alg
        compact = _parse(token)
        header = compact.headers()
        if header.get("alg") != alg:
            raise IdPInitiatedLoginError("alg", f"the token is not signed with {alg}")
        if "crit" in header or "b64" in header:
            raise IdPInitiatedLoginError("malformed", "the token uses JWS extensions")
        try:
            key = await self._jwks.key_for(metadata.jwks_uri, header, alg)
        except JWKSError as exc:
            raise IdPInitiatedLoginError("key", exc.detail) from exc
        try:
            valid = jws.validate_compact(compact, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError) as exc:
            raise IdPInitiatedLoginError("signature", "the signature does not verify") from exc
        if not valid:
            raise IdPInitiatedLoginError("signature", "the signature does not verify")
        try:
            claims = msgspec.json.decode(compact.payload)
        except msgspec.DecodeError as exc:
            raise IdPInitiatedLoginError("malformed", "the payload is not JSON") from exc
        if type(claims) is not dict:
            raise IdPInitiatedLoginError("malformed", "the payload is not a JSON object")
        return claims


def check_token(token: object) -> str:
    """``token`` if it has the shape of a compact JWS of at most :data:`MAX_TOKEN_LENGTH`
    characters (three base64url segments, the last possibly empty), checked before any key or
    metadata is fetched.

    Raises:
        IdPInitiatedLoginError: ``reason="malformed"``.
    """
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        raise IdPInitiatedLoginError("malformed", "the token is missing or too long")
    if not _COMPACT.fullmatch(token):
        raise IdPInitiatedLoginError("malformed", "the token is not a compact JWS")
    return token


def _parse(token: object) -> jws.CompactSignature:
    token = check_token(token)
    try:
        return jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, TypeError) as exc:
        raise IdPInitiatedLoginError("malformed", "the token is not a compact JWS") from exc


def _number(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if type(value) not in (int, float):
        raise IdPInitiatedLoginError(name, f"{name} is not a number")
    return int(value)


def _check_claims(
    claims: Mapping[str, Any], config: ProviderConfig, audience: Sequence[str], now: float
) -> None:
    if claims.get("iss") != config.issuer:  # exact, no normalisation
        raise IdPInitiatedLoginError("iss", "iss is not this environment")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audience for a in audiences):
        raise IdPInitiatedLoginError("aud", "aud does not name this application")
    exp = _number(claims, "exp")
    if exp is None or now >= exp + config.leeway:
        raise IdPInitiatedLoginError("exp", "the token is expired or has no exp")
    for name in ("iat", "nbf"):
        moment = _number(claims, name)
        if moment is not None and moment > now + config.leeway:
            raise IdPInitiatedLoginError(name, f"{name} is in the future")


def _login(claims: dict[str, Any]) -> IdPInitiatedLogin:
    values = {name: claims.get(name) for name in _ROUTING_CLAIMS}
    if any(v is not None and not isinstance(v, str) for v in values.values()):
        raise IdPInitiatedLoginError("claims", "a routing claim is not a string")
    connection_id, organization_id, login_hint, relay_state = values.values()
    if not (connection_id or organization_id or login_hint):
        # An ID token of the same issuer and audience carries none of these: refuse it here.
        raise IdPInitiatedLoginError(
            "claims", "the token names no connection, organization or user"
        )
    kind: RouteKind = (
        "connection" if connection_id else "organization" if organization_id else "hosted"
    )
    try:
        route = LoginRoute(
            kind=kind,
            reason="idp_initiated",
            connection_id=connection_id or None,
            organization_id=organization_id or None,
            login_hint=login_hint or None,
        )
    except ScalekitInputError as exc:
        raise IdPInitiatedLoginError("claims", f"{exc.field} is malformed") from exc
    return_to = safe_return_to(relay_state, default="") or None
    return IdPInitiatedLogin(route=route, return_to=return_to, claims=frozen_mapping(claims))
