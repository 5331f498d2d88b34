"""The per-request side of bearer authentication: reading ``Authorization: Bearer`` (and
``DPoP``, through ``_dpop``), choosing the policy of the token's issuer, validating the token,
and the per-route scope guard.

:class:`OIDCBearerMiddleware` is made by :class:`~rpkit.litestar.bearer.OIDCBearerAuth`, which
holds the configuration; refusals are :class:`~rpkit.litestar._challenge.BearerError`.
"""

from __future__ import annotations

import base64
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)

from rpkit._log import get_logger
from rpkit.access_cache import CacheKey
from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.config import TENANT_PLACEHOLDER
from rpkit.errors import AccessTokenValidationError, ConfigurationError, JWKSError
from rpkit.litestar._challenge import SCOPE_TOKEN, BearerError, insufficient, invalid, missing
from rpkit.litestar._dpop import DPoPGate, Presented, refuse_downgrade
from rpkit.litestar._guard_hook import rpkit_guard
from rpkit.tenants import is_allowed_issuer

if TYPE_CHECKING:
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Guard, Method, Receive, Scope, Scopes, Send

    from rpkit.litestar.bearer import OIDCBearerAuth

__all__ = ["PUBLIC_METADATA_OPT", "OIDCBearerMiddleware", "requires_scopes"]

PUBLIC_METADATA_OPT = "rpkit_protected_resource_metadata"
"""``opt`` key of the RFC 9728 metadata route: :func:`requires_scopes` and the role,
permission and organization guards of :mod:`rpkit.litestar.authz` (also when set app-wide
through ``OIDCBearerAuth.guards``) let it through."""


class _Issuer(msgspec.Struct):
    iss: Any = None


_decode_issuer = msgspec.json.Decoder(_Issuer).decode


def _unverified_issuer(token: bytes) -> str:
    """The payload's ``iss``, read without verification, only to pick a policy.

    Raises:
        AccessTokenValidationError: ``malformed`` or ``jwe`` when it cannot be read.
    """
    parts = token.split(b".")
    if len(parts) != 3:
        reason = "jwe" if len(parts) == 5 else "malformed"
        raise AccessTokenValidationError(reason, "the token is not a three-part compact JWS")
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))
        # Only a string ``iss`` is used and nothing walks the value, so rpkit._json's nesting
        # bound (for code that recurses over decoded claims) is not needed here; msgspec bounds
        # its own recursion (RecursionError). ValueError: binascii, non-ASCII, not JSON.
        iss = _decode_issuer(raw).iss
    except (ValueError, RecursionError) as exc:
        raise _malformed_payload() from exc
    if type(iss) is not str:
        raise AccessTokenValidationError("iss", "the token has no string iss")
    return iss


def _malformed_payload() -> AccessTokenValidationError:
    return AccessTokenValidationError("malformed", "the payload is not base64url JSON")


def _keys_unreachable(exc: AccessTokenValidationError) -> bool:
    """The JWKS could not be fetched and none is cached: the token was never judged."""
    cause = exc.__cause__
    return exc.reason == "key" and isinstance(cause, JWKSError) and cause.unavailable


class OIDCBearerMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates each request by its bearer access token; made by
    :class:`~rpkit.litestar.bearer.OIDCBearerAuth`.

    Per request: one pass over the raw headers (no ``Headers`` object, no text copy of the
    token); with a single policy, a lookup of the header's bytes in the verified-token cache (a
    token that policy already accepted needs nothing else, and no coroutine); otherwise, with
    several policies, the one picked by the unverified ``iss`` (one dict lookup), and one
    :meth:`~rpkit.id_token.TokenValidator.validate_access_token` call against the warm key
    cache, which refuses a foreign ``iss`` before it looks up a key; no log line on success.
    """

    __slots__ = (
        "_by_issuer",
        "_config",
        "_direct",
        "_dpop",
        "_lane",
        "_metadata_url",
        "_only_policy",
        "_realm",
        "_retrieve_user",
    )

    def __init__(
        self,
        app: ASGIApp,
        config: OIDCBearerAuth,
        *,
        exclude: str | list[str] | None = None,
        exclude_from_auth_key: str = "exclude_from_auth",
        exclude_http_methods: Sequence[Method] | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        super().__init__(
            app,
            exclude=exclude,
            exclude_from_auth_key=exclude_from_auth_key,
            exclude_http_methods=exclude_http_methods,
            scopes=scopes,
        )
        if config._keys is None and not config._has_lifespan:
            # Mounted on a router (``middleware=[auth.middleware]``) without ``on_app_init``:
            # no lifespan will open a client, so every request would fail with a 500.
            msg = (
                "OIDCBearerAuth: its middleware is mounted without on_app_init, so nothing opens "
                "an HTTP client for the keys; pass http= (your client) or jwks= to OIDCBearerAuth"
            )
            raise ConfigurationError(msg)
        self._config = config
        self._realm = config.realm
        self._metadata_url = config.resource_metadata_url
        self._by_issuer = config.policies_by_issuer
        self._only_policy = config.policies[0] if len(config.policies) == 1 else None
        self._retrieve_user = config.retrieve_user_handler
        self._dpop = DPoPGate(config)
        # The steady-state lane of _authenticate: one policy, and Bearer accepted.
        self._lane = self._only_policy if config.dpop != "required" else None
        # Nothing needs a connection object: no user lookup, no subclass's own authentication.
        self._direct = (
            self._retrieve_user is None
            and type(self).authenticate_request is OIDCBearerMiddleware.authenticate_request
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Litestar's authentication middleware, without building a connection object and an
        :class:`AuthenticationResult` per request when nothing needs them."""
        if not should_bypass_middleware(
            exclude_http_methods=self.exclude_http_methods,
            exclude_opt_key=self.exclude_opt_key,
            exclude_path_pattern=self.exclude,
            scope=scope,
            scopes=self.scopes,
        ):
            if self._direct:
                access = self._authenticate(scope)
                if not isinstance(access, AccessToken):  # not from the cache: await its validation
                    access = await access
                scope["user"] = scope["auth"] = access
            else:
                result = await self.authenticate_request(ASGIConnection(scope))
                scope["user"] = result.user
                scope["auth"] = result.auth
        await self.app(scope, receive, send)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Validate the request's bearer token; ``user`` and ``auth`` are the :class:`AccessToken`
        unless ``retrieve_user_handler`` maps ``user``.

        Raises:
            BearerError: the request is refused.
        """
        access = self._authenticate(connection.scope)
        if not isinstance(access, AccessToken):
            access = await access
        try:
            user = await self._user(access, connection)
        except BearerError as exc:
            self._challenge(exc)
            raise
        return AuthenticationResult(user=user, auth=access)

    def _authenticate(self, scope: Scope) -> AccessToken | Coroutine[Any, Any, AccessToken]:
        """The request's access token, without a coroutine when nothing needs a wait (an API's
        steady state: a ``Bearer`` token from the verified-token cache, or verified with a key
        at hand); otherwise a coroutine that waits for it (:meth:`_validated`) or, for
        ``DPoP``, checks its proof too (:meth:`DPoPGate.with_proof`).

        The steady state itself is answered here in one pass, with one call below it (the
        cache's :meth:`~rpkit.access_cache.VerifiedTokenCache.find`): on a busy server every
        call on this path costs several times what it costs in a loop (measured in
        ``bench/README.md``). It takes only the plainest request: one ``Authorization`` header
        of exactly ``Bearer <token>`` (the scheme as RFC 6750 spells it, one space, a token
        without the spaces or commas the full parse strips or refuses), no ``DPoP`` header,
        one policy, a mode that accepts ``Bearer``; the token is served only when the cache
        holds it usable now and not DPoP-bound, and a cache miss (or a cache turned off) goes
        on under the key the cache computed. Everything else goes through the full parse
        (:meth:`_presented`), which answers the same for these requests (tested).

        Raises:
            BearerError: the request is refused (also raised by the coroutine).
        """
        lane = self._lane
        if lane is not None:
            header = None
            for name, value in scope["headers"]:
                if name == b"authorization" and header is None:
                    header = value
                elif name in {b"authorization", b"dpop"}:
                    header = None  # two credentials, or a proof: the full parse
                    break
            if header is not None and header.startswith(b"Bearer ") and header.find(b",") < 0:
                token = header[7:]
                if token and token.find(b" ") < 0:
                    cache = self._config._token_cache
                    if cache is None:  # the cache is off: validated now, or waited for
                        return self._bearer(token, None)
                    found = cache.find(token, lane, cache.clock())
                    if isinstance(found, AccessToken) and found.jkt is None:
                        return found
                    if found is not None:  # a miss (its key), or a bound token
                        return self._bearer(token, found)
        return self._presented(scope)

    def _presented(self, scope: Scope) -> AccessToken | Coroutine[Any, Any, AccessToken]:
        """:meth:`_authenticate` through the full parse of the credentials."""
        try:
            presented = self._dpop.credentials(scope)
            if presented.scheme == "DPoP":
                return self._with_proof(scope, presented)
        except BearerError as exc:
            self._challenge(exc)
            raise
        return self._bearer(presented.raw_token, None)

    def _bearer(
        self, token: bytes, found: AccessToken | CacheKey | None
    ) -> AccessToken | Coroutine[Any, Any, AccessToken]:
        """A ``Bearer`` token: ``found`` in the cache already, or validated now, or a coroutine
        that waits for it; refused if DPoP-bound. ``found`` is what the cache's ``find``
        returned (None when not asked yet)."""
        try:
            access = found if isinstance(found, AccessToken) else self._now(token, found)
            if access is None:
                return self._validated(token)
            refuse_downgrade(access)
        except BearerError as exc:
            self._challenge(exc)
            raise
        return access

    async def _validated(self, token: bytes) -> AccessToken:
        """A ``Bearer`` token that needs a wait (a key fetch, or another task verifying the
        same bytes), validated; refused if DPoP-bound."""
        try:
            access = await self._validate(token)
            refuse_downgrade(access)
        except BearerError as exc:
            self._challenge(exc)
            raise
        return access

    async def _with_proof(self, scope: Scope, presented: Presented) -> AccessToken:
        try:
            return await self._dpop.with_proof(scope, presented, self._validate, self._now)
        except BearerError as exc:
            self._challenge(exc)
            raise

    def _challenge(self, exc: BearerError) -> None:
        """Name this config's realm, metadata URL and DPoP scheme in a refusal's challenge."""
        self._dpop.challenge(exc)
        exc.set_realm(self._realm, self._metadata_url)

    async def _user(
        self, access: AccessToken, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Any:
        handler = self._retrieve_user
        if handler is None:
            return access
        user = await handler(access, connection)
        if user is None:
            _log_rejection(access.iss, "user", "retrieve_user_handler found no user")
            raise invalid("user")
        return user

    def _now(self, token: bytes, key: CacheKey | None = None) -> AccessToken | None:
        """The token validated under its issuer's policy without waiting
        (:meth:`~rpkit.id_token.TokenValidator.validate_access_token_now`); None when it must
        wait (then :meth:`_validate`). ``key`` is the cache's key for it when the cache was
        already asked (a miss), so it is not looked up and hashed again
        (:meth:`~rpkit.id_token.TokenValidator.verify_access_token_now`).
        """
        policy = None
        try:
            # One policy: the validator refuses another issuer before any key lookup itself.
            policy = self._only_policy or self._policy_for(token)
            validator = self._config._validator or self._config.validator
            if key is None:
                return validator.validate_access_token_now(token, policy)
            return validator.verify_access_token_now(token, policy, key)
        except AccessTokenValidationError as exc:
            raise _refusal(exc, policy) from exc

    async def _validate(self, token: bytes) -> AccessToken:
        """The token validated under its issuer's policy, once :meth:`_now` found it must
        wait (:meth:`~rpkit.id_token.TokenValidator.wait_for_access_token`)."""
        policy = None
        try:
            policy = self._only_policy or self._policy_for(token)
            return await self._config.validator.wait_for_access_token(token, policy)
        except AccessTokenValidationError as exc:
            raise _refusal(exc, policy) from exc

    def _policy_for(self, token: bytes) -> AccessTokenPolicy:
        iss = _unverified_issuer(token)
        policy = self._by_issuer.get(iss) or templated_policy(self._config.policies, iss)
        if policy is None:
            # Refused before any key is fetched: an unknown issuer never costs a JWKS request.
            _log_rejection(None, "iss", "the token's issuer matches no policy")
            raise AccessTokenValidationError("iss", "the token's issuer matches no policy")
        return policy


def _refusal(exc: AccessTokenValidationError, policy: AccessTokenPolicy | None) -> BearerError:
    """The answer to a refused token: 403 for a missing scope, 503 when the keys cannot be
    fetched, else 401 ``invalid_token``."""
    if exc.reason == "scope" and policy is not None:
        return insufficient(policy.required_scopes)
    if _keys_unreachable(exc):
        description = "The keys that verify access tokens cannot be fetched right now."
        return BearerError("jwks_unavailable", description)
    return invalid(exc.reason)


def templated_policy(policies: Sequence[AccessTokenPolicy], iss: str) -> AccessTokenPolicy | None:
    """The policy whose ``{tenantid}`` issuer template ``iss`` fills with an allowed tenant
    (multi-tenant issuers); the validator checks the token's own tenant claim again."""
    for policy in policies:
        for template in policy.issuers:
            if TENANT_PLACEHOLDER in template and is_allowed_issuer(iss, template, policy.tenants):
                return policy
    return None


def _log_rejection(issuer: str | None, reason: str, detail: str) -> None:
    get_logger(issuer=issuer).info("rpkit.bearer.rejected", reason=reason, detail=detail)


def requires_scopes(*scopes: str) -> Guard:
    """A guard that admits requests whose bearer token (``request.auth``) grants every scope.

    A miss answers 403 with ``WWW-Authenticate: Bearer error="insufficient_scope",
    scope="..."``; a request not authenticated by
    :class:`~rpkit.litestar.bearer.OIDCBearerAuth` (an excluded route, another auth backend)
    answers 401.

    Example:
        >>> from litestar import get
        >>> @get("/orders", guards=[requires_scopes("orders:read")])
        ... async def orders() -> list[str]:
        ...     return []

    Raises:
        ConfigurationError: no scope, or a scope that is not an RFC 6749 scope token.
    """
    bad = [scope for scope in scopes if not SCOPE_TOKEN.fullmatch(scope)]
    if not scopes or bad:
        msg = f"requires_scopes needs one or more RFC 6749 scope tokens, not {bad or 'none'}"
        raise ConfigurationError(msg)
    required = frozenset(scopes)

    # Async on purpose: Litestar runs a sync guard in a worker thread, which costs more than
    # the check itself.
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], route: BaseRouteHandler
    ) -> None:
        if route.opt.get(PUBLIC_METADATA_OPT):
            return  # RFC 9728 metadata is for clients without a token, even under app guards
        token = connection.scope.get("auth")
        if not isinstance(token, AccessToken):
            raise missing()
        if not required <= token.scopes:
            missing_scopes = sorted(required - token.scopes)
            get_logger(issuer=token.iss).info(
                "rpkit.bearer.insufficient_scope", missing=missing_scopes
            )
            raise insufficient(scopes).for_token(token.jkt)

    return rpkit_guard(guard)
