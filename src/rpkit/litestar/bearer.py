"""Bearer-token authentication for Litestar APIs: RFC 6750 in, RFC 9457 out.

:class:`OIDCBearerAuth` is a Litestar security config: its middleware reads ``Authorization:
Bearer <token>``, validates the token with
:meth:`rpkit.id_token.TokenValidator.validate_access_token` against the policy of the token's
issuer, and sets ``request.user`` and ``request.auth``.
Failures become 401/403 answers with a ``WWW-Authenticate`` challenge and a problem-details body
that never echoes the token. :func:`requires_scopes` is the per-route scope guard.

Example:
    >>> from litestar import Litestar, Request, get
    >>> from rpkit.access_token import AccessToken, AccessTokenPolicy
    >>> from rpkit.litestar.bearer import OIDCBearerAuth, requires_scopes
    >>> auth = OIDCBearerAuth(
    ...     policies=[
    ...         AccessTokenPolicy(
    ...             issuers=("https://auth.example.com",),
    ...             jwks_uri="https://auth.example.com/keys",
    ...             audience=("https://api.example.com",),
    ...         )
    ...     ],
    ...     exclude=["^/schema"],
    ... )
    >>> @get("/orders", guards=[requires_scopes("orders:read")])
    ... async def orders(request: Request[AccessToken, AccessToken, object]) -> dict[str, str]:
    ...     return {"sub": request.user.sub}
    >>> app = Litestar([orders], on_app_init=[auth.on_app_init])
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import httpx
import msgspec
from litestar.connection import ASGIConnection
from litestar.middleware import DefineMiddleware
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.security.base import AbstractSecurityConfig
from litestar.utils.sync import ensure_async_callable

from rpkit._log import get_logger
from rpkit.access_cache import DEFAULT_ACCESS_TOKEN_CACHE_SIZE
from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.config import TENANT_PLACEHOLDER
from rpkit.errors import AccessTokenValidationError, ConfigurationError, JWKSError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.litestar.responses import BEARER_REFUSALS
from rpkit.tenants import is_allowed_issuer

if TYPE_CHECKING:
    from litestar import Litestar, Request, Response
    from litestar.config.app import AppConfig
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp, Guard, Method, Receive, Scope, Scopes, Send

__all__ = [
    "PROBLEM_TYPE_BASE",
    "BearerError",
    "OIDCBearerAuth",
    "OIDCBearerMiddleware",
    "RetrieveUser",
    "requires_scopes",
]

PROBLEM_TYPE_BASE: Final = "https://rpkit.dev/errors/"
"""Problem ``type`` URIs are this plus rpkit's stable ``code``."""

# RFC 6750 §3: realm and error_description are quoted strings without '"' and '\'; scope
# tokens (RFC 6749 §3.3) are the same characters without the space.
_QUOTABLE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_NO_STORE = "no-store"
_CLIENT_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_CLIENT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)

RetrieveUser: TypeAlias = Callable[[AccessToken, ASGIConnection[Any, Any, Any, Any]], Any]
"""``(token, connection) -> user or None``, sync or async."""

_INVALID = "The access token is not valid."
_DESCRIPTIONS: Final = {
    "malformed": "The access token is not a well-formed signed JWT.",
    "jwe": "Encrypted access tokens are not accepted.",
    "crit": "The access token marks a header parameter critical that is not supported.",
    "alg": "The access token's signing algorithm is not accepted.",
    "typ": "The access token's type (typ) is not accepted.",
    "key": "No trusted key verifies the access token.",
    "signature": "The access token's signature does not verify.",
    "iss": "The access token's issuer is not trusted.",
    "aud": "The access token is not meant for this API.",
    "sub": "The access token has no subject.",
    "exp": "The access token has expired.",
    "iat": "The access token's issue time is not valid.",
    "nbf": "The access token is not valid yet.",
    "user": "The access token's subject is not known here.",
    "id_token": "An ID token is not an access token: send the access token.",
    "client_id": "The access token names no client (client_id), which RFC 9068 requires.",
    "jti": "The access token has no identifier (jti), which RFC 9068 requires.",
}
"""Core ``reason`` → what the client is told. Fixed text, never the core's detail, which may
quote claim values from the token; the detail goes to the log instead."""


class BearerError(ProblemDetailsException):
    """A refused bearer request, rendered from
    :data:`~rpkit.litestar.responses.BEARER_REFUSALS` by its ``code``.

    The body is ``application/problem+json`` with ``type``, ``title``, ``status``, ``detail``
    and rpkit's stable ``code``; 401, 403 and 400 carry an RFC 6750 ``WWW-Authenticate``
    challenge. :class:`OIDCBearerAuth` registers the handler; an application's own handler for
    this class, or for the status code, wins.

    Attributes:
        code: ``access_token_missing`` (401), ``access_token_invalid`` (401),
            ``insufficient_scope`` (403), ``access_token_ambiguous`` (400) or
            ``jwks_unavailable`` (503).
        error: the RFC 6750 error code, or None.
        scope: for ``insufficient_scope``, the space-separated scopes required.
        realm: the challenge's realm; None until the middleware or handler names it.
    """

    def __init__(
        self, code: str, description: str, *, scope: str | None = None, realm: str | None = None
    ) -> None:
        status, title, self.error = BEARER_REFUSALS[code]
        self.code, self.scope, self.realm = code, scope, realm
        super().__init__(
            detail=description,
            status_code=status,
            extra={"code": code},
            type_=PROBLEM_TYPE_BASE + code,
            title=title,
        )
        self.headers = self._headers()

    def set_realm(self, realm: str) -> None:
        """Name ``realm`` in the challenge unless one is already named."""
        if self.realm is None:
            self.realm = realm
            self.headers = self._headers()

    def _headers(self) -> dict[str, str]:
        if self.status_code == 503:
            return {"Cache-Control": _NO_STORE}
        params = [("realm", self.realm), ("error", self.error)]
        if self.error is not None:
            params += [("error_description", self.detail), ("scope", self.scope)]
        challenge = ", ".join(f'{name}="{value}"' for name, value in params if value is not None)
        return {"WWW-Authenticate": f"Bearer {challenge}".rstrip(), "Cache-Control": _NO_STORE}


def _missing() -> BearerError:
    return BearerError("access_token_missing", "Send an access token as 'Authorization: Bearer'.")


def _invalid(reason: str) -> BearerError:
    return BearerError("access_token_invalid", _DESCRIPTIONS.get(reason, _INVALID))


def _insufficient(scopes: Iterable[str]) -> BearerError:
    wanted = " ".join(scopes)
    description = f"The access token lacks a required scope ({wanted})."
    return BearerError("insufficient_scope", description, scope=wanted)


def _bearer_token(scope: Scope) -> str:
    """The token of the one ``Authorization: Bearer`` header (RFC 6750 §2.1; the scheme is
    case-insensitive). Query and body tokens are never read.

    Raises:
        BearerError: no bearer credentials (401, bare challenge), two ``Authorization`` headers
            (400 ``invalid_request``), or ``Bearer`` without a token (401 ``invalid_token``).
    """
    found: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":  # ASGI lower-cases header names
            if found is not None:
                raise BearerError("access_token_ambiguous", "Send one Authorization header.")
            found = value
    if found is None:
        raise _missing()
    scheme, _, credentials = found.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        raise _missing()  # another scheme is "no bearer credentials", not a bad token
    token = credentials.strip(" ")
    if not token:
        raise _invalid("malformed")
    return token


class _Issuer(msgspec.Struct):
    iss: Any = None


_decode_issuer = msgspec.json.Decoder(_Issuer).decode


def _unverified_issuer(token: str) -> str:
    """The payload's ``iss``, read without verification, only to pick a policy.

    Raises:
        AccessTokenValidationError: ``malformed`` or ``jwe`` when it cannot be read.
    """
    parts = token.split(".")
    if len(parts) != 3:
        reason = "jwe" if len(parts) == 5 else "malformed"
        raise AccessTokenValidationError(reason, "the token is not a three-part compact JWS")
    payload = parts[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
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
    """Authenticates each request by its bearer access token; made by :class:`OIDCBearerAuth`.

    Per request: one pass over the raw headers (no ``Headers`` object); with a single policy,
    a lookup in the verified-token cache (a token that policy already accepted needs nothing
    else); otherwise the policy picked by the unverified ``iss`` (one dict lookup, also with a
    single policy, so a foreign token never reaches the key cache) and one
    :meth:`~rpkit.id_token.TokenValidator.validate_access_token` call against the warm key
    cache; no log line on success.
    """

    __slots__ = ("_by_issuer", "_config", "_direct", "_only_policy", "_realm", "_retrieve_user")

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
        self._config = config
        self._realm = config.realm
        self._by_issuer = config.policies_by_issuer
        self._only_policy = config.policies[0] if len(config.policies) == 1 else None
        self._retrieve_user = config.retrieve_user_handler
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
                try:
                    access = await self._validate(_bearer_token(scope))
                except BearerError as exc:
                    exc.set_realm(self._realm)
                    raise
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
        try:
            token = _bearer_token(connection.scope)
            access = await self._validate(token)
            user = await self._user(access, connection)
        except BearerError as exc:
            exc.set_realm(self._realm)
            raise
        return AuthenticationResult(user=user, auth=access)

    async def _user(
        self, access: AccessToken, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Any:
        handler = self._retrieve_user
        if handler is None:
            return access
        user = await handler(access, connection)
        if user is None:
            _log_rejection(access.iss, "user", "retrieve_user_handler found no user")
            raise _invalid("user")
        return user

    async def _validate(self, token: str) -> AccessToken:
        validator = self._config.validator
        only = self._only_policy
        if only is not None:
            # One policy: a token it already accepted is the one the issuer lookup would pick.
            cached = validator.cached_access_token(token, only)
            if cached is not None:
                return cached
        policy = None
        try:
            policy = self._policy_for(token)
            return await validator.validate_access_token(token, policy)
        except AccessTokenValidationError as exc:
            if exc.reason == "scope" and policy is not None:
                raise _insufficient(policy.required_scopes) from exc
            if _keys_unreachable(exc):
                description = "The keys that verify access tokens cannot be fetched right now."
                raise BearerError("jwks_unavailable", description) from exc
            raise _invalid(exc.reason) from exc

    def _policy_for(self, token: str) -> AccessTokenPolicy:
        iss = _unverified_issuer(token)
        policy = self._by_issuer.get(iss) or _templated_policy(self._config.policies, iss)
        if policy is None:
            # Refused before any key is fetched: an unknown issuer never costs a JWKS request.
            _log_rejection(None, "iss", "the token's issuer matches no policy")
            raise AccessTokenValidationError("iss", "the token's issuer matches no policy")
        return policy


def _templated_policy(policies: Sequence[AccessTokenPolicy], iss: str) -> AccessTokenPolicy | None:
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
    scope="..."``; a request not authenticated by :class:`OIDCBearerAuth` (an excluded route,
    another auth backend) answers 401.

    Example:
        >>> from litestar import get
        >>> @get("/orders", guards=[requires_scopes("orders:read")])
        ... async def orders() -> list[str]:
        ...     return []

    Raises:
        ConfigurationError: no scope, or a scope that is not an RFC 6749 scope token.
    """
    bad = [scope for scope in scopes if not _SCOPE_TOKEN.fullmatch(scope)]
    if not scopes or bad:
        msg = f"requires_scopes needs one or more RFC 6749 scope tokens, not {bad or 'none'}"
        raise ConfigurationError(msg)
    required = frozenset(scopes)

    # Async on purpose: Litestar runs a sync guard in a worker thread, which costs more than
    # the check itself.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        token = connection.scope.get("auth")
        if not isinstance(token, AccessToken):
            raise _missing()
        if not required <= token.scopes:
            missing = sorted(required - token.scopes)
            get_logger(issuer=token.iss).info("rpkit.bearer.insufficient_scope", missing=missing)
            raise _insufficient(scopes)

    return guard


@dataclass
class OIDCBearerAuth(AbstractSecurityConfig[Any, AccessToken]):
    """Protects an API with bearer access tokens from one or more OpenID Providers.

    Register it with ``Litestar(on_app_init=[auth.on_app_init])``: that adds the middleware
    (outermost), the ``BearerError`` handler (yours wins), the OpenAPI HTTP-bearer scheme and,
    when rpkit owns the HTTP client, the lifespan that opens and closes it. A policy's
    ``required_scopes`` apply to every protected route; :func:`requires_scopes` adds per-route
    ones. The config is mutable because Litestar's base class stores encoders on it.
    """

    policies: Sequence[AccessTokenPolicy]
    """The accepted tokens: one policy per issuer, or per group of issuers sharing a
    ``jwks_uri``. A token is validated only against the policy listing its (unverified)
    ``iss``, so one issuer's keys never verify another's tokens and an unknown issuer costs no
    JWKS request; an issuer may appear in one policy only."""
    realm: str = "api"
    """The ``realm`` of ``WWW-Authenticate`` challenges. Public: clients see it. Printable
    ASCII without ``"`` or ``\\``."""
    http: httpx.AsyncClient | None = None
    """The application's pooled client for JWKS requests; the caller opens and closes it. When
    None (and ``jwks`` is None), the app lifespan opens one with short timeouts (connect 3 s,
    total 5 s: a JWKS refetch can sit on the request path) and bounded connections, and closes
    it on shutdown."""
    jwks: JWKSCache | None = None
    """A key cache shared with the rest of the application (login, other configs); it brings
    its own client and takes precedence over ``http``. Sharing one cache means one fetch and
    one refetch throttle per ``jwks_uri`` for the whole process."""
    retrieve_user_handler: RetrieveUser | None = None  # type: ignore[assignment]
    """Maps the validated token to ``request.user``; ``request.auth`` stays the
    :class:`AccessToken`. Returning None refuses the request (401). Make it ``async``: Litestar
    runs a sync one in a worker thread on every request. When None, ``request.user`` is the
    token itself and no lookup runs."""
    exclude: str | list[str] | None = None
    """Path patterns that need no token (for example ``"^/schema"`` for the OpenAPI docs).
    Each is a regex searched anywhere in the path: anchor it, or it may expose more than
    intended."""
    exclude_opt_key: str = "exclude_from_auth"
    """A route with this key truthy in its ``opt`` (``@get(..., exclude_from_auth=True)``)
    needs no token: the per-route opt-out, visible where the route is declared."""
    exclude_http_methods: Sequence[Method] | None = ("OPTIONS",)
    """Methods that need no token. Only ``OPTIONS`` (CORS preflights carry no credentials),
    unlike Litestar's default, which also lets ``HEAD`` through unauthenticated."""
    scopes: Scopes | None = None
    """ASGI scope types to authenticate; None means both ``http`` and ``websocket`` (a
    WebSocket handshake may carry ``Authorization``)."""
    token_cache_size: int = DEFAULT_ACCESS_TOKEN_CACHE_SIZE
    """How many verified tokens to remember (:class:`~rpkit.access_cache.VerifiedTokenCache`,
    least recently used dropped first; about 2.5 KiB each, so the default 10,000 takes about
    24 MiB). A token seen again skips its signature verification; its ``exp``, ``nbf`` and
    ``iat``, its signing key's presence in the fresh key set and the policy's scopes are still
    checked on every request, and only tokens that passed every check are kept. ``0`` turns
    the cache off: every request verifies the signature."""
    guards: Iterable[Guard] | None = None
    """Guards added to the whole application, e.g. ``[requires_scopes("api")]``."""
    openapi_security_scheme_name: str = "BearerToken"
    """The name of the security scheme in the OpenAPI document."""
    description: str = "An OAuth 2.0 access token (JWT) from a trusted OpenID Provider."
    """The OpenAPI description of the scheme."""

    authentication_middleware_class = OIDCBearerMiddleware
    policies_by_issuer: dict[str, AccessTokenPolicy] = field(init=False, repr=False)
    """Issuer → the policy listing it (derived at construction)."""
    _keys: JWKSCache | None = field(default=None, init=False, repr=False)
    _validator: TokenValidator | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.policies = tuple(self.policies)
        self.policies_by_issuer = _index_by_issuer(self.policies)
        _log_relaxations(self.policies)
        if not _QUOTABLE.fullmatch(self.realm):
            msg = "OIDCBearerAuth: realm must be printable ASCII without '\"' or '\\'"
            raise ConfigurationError(msg)
        size = self.token_cache_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            msg = "OIDCBearerAuth: token_cache_size must be an integer >= 0 (0 turns it off)"
            raise ConfigurationError(msg)
        if self.retrieve_user_handler is not None:
            self.retrieve_user_handler = ensure_async_callable(self.retrieve_user_handler)
        if self.jwks is not None or self.http is not None:
            self._open(self.jwks or JWKSCache(self.http))  # type: ignore[arg-type]

    @property
    def validator(self) -> TokenValidator:
        """The token validator.

        Raises:
            RuntimeError: rpkit owns the HTTP client and the app lifespan has not opened it.
        """
        if self._validator is None:
            msg = (
                "OIDCBearerAuth has no HTTP client: register it with on_app_init so the app "
                "lifespan opens one, or pass http= or jwks="
            )
            raise RuntimeError(msg)
        return self._validator

    @property
    def openapi_components(self) -> Components:
        """The HTTP bearer (JWT) security scheme."""
        scheme = SecurityScheme(
            type="http", scheme="bearer", bearer_format="JWT", description=self.description
        )
        return Components(security_schemes={self.openapi_security_scheme_name: scheme})

    @property
    def security_requirement(self) -> SecurityRequirement:
        """The OpenAPI security requirement naming the scheme."""
        return {self.openapi_security_scheme_name: []}

    @property
    def middleware(self) -> DefineMiddleware:
        """The authentication middleware, for ``middleware=[...]`` on a router or controller
        (then also register :attr:`exception_handlers` there)."""
        return DefineMiddleware(
            OIDCBearerMiddleware,
            config=self,
            exclude=self.exclude,
            exclude_from_auth_key=self.exclude_opt_key,
            exclude_http_methods=self.exclude_http_methods,
            scopes=self.scopes,
        )

    @property
    def exception_handlers(self) -> dict[type[Exception], Callable[..., Response[Any]]]:
        """Renders :class:`BearerError` as problem details with this config's realm."""
        return {BearerError: self._error_response}

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add the middleware, OpenAPI scheme, error handler and lifespan to the app."""
        app_config = super().on_app_init(app_config)
        for kind, handler in self.exception_handlers.items():
            app_config.exception_handlers.setdefault(kind, handler)  # the user's handler wins
        app_config.lifespan.append(self._lifespan)
        return app_config

    def _error_response(self, request: Request[Any, Any, Any], exc: BearerError) -> Response[Any]:
        exc.set_realm(self.realm)
        return exc.to_response(request)

    def _open(self, keys: JWKSCache) -> None:
        self._keys = keys
        self._validator = TokenValidator(keys, access_token_cache_size=self.token_cache_size)

    @asynccontextmanager
    async def _lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """Open rpkit's own client when none was given; warm every policy's keys either way."""
        if self._keys is not None:
            await self._warm(self._keys)
            yield
            return
        async with httpx.AsyncClient(timeout=_CLIENT_TIMEOUT, limits=_CLIENT_LIMITS) as http:
            keys = JWKSCache(http)
            self._open(keys)
            try:
                await self._warm(keys)
                yield
            finally:
                self._keys = self._validator = None

    async def _warm(self, keys: JWKSCache) -> None:
        # Best effort: a failure is logged by the cache and retried on the first request.
        uris = {policy.jwks_uri for policy in self.policies}
        await asyncio.gather(*(_warm_one(keys, uri) for uri in uris))


async def _warm_one(keys: JWKSCache, jwks_uri: str) -> None:
    try:
        await keys.warm(jwks_uri)
    except JWKSError:
        return


def _log_relaxations(policies: Sequence[AccessTokenPolicy]) -> None:
    for policy in policies:
        relaxed = []
        if policy.audience_claim == "client_id":
            relaxed.append("audience_claim='client_id': client_id stands for aud")
        if policy.tenants is not None and policy.tenants.any_tenant:
            relaxed.append("tenants.any_tenant: tokens of every tenant of the issuer accepted")
        if policy.ignored_id_token_claims:
            ignored = list(policy.ignored_id_token_claims)
            relaxed.append(f"ignored_id_token_claims={ignored}: they no longer mark ID tokens")
        for setting in relaxed:
            get_logger(issuer=policy.issuers[0]).warning(
                "rpkit.startup.check_relaxed", setting=setting
            )


def _index_by_issuer(policies: Sequence[AccessTokenPolicy]) -> dict[str, AccessTokenPolicy]:
    if not policies:
        raise ConfigurationError("OIDCBearerAuth: configure at least one AccessTokenPolicy")
    by_issuer: dict[str, AccessTokenPolicy] = {}
    for policy in policies:
        if not all(_SCOPE_TOKEN.fullmatch(scope) for scope in policy.required_scopes):
            msg = f"OIDCBearerAuth: {policy.required_scopes} are not all RFC 6749 scope tokens"
            raise ConfigurationError(msg)
        for issuer in policy.issuers:
            if by_issuer.setdefault(issuer, policy) is not policy:
                msg = f"OIDCBearerAuth: issuer {issuer!r} is in two policies; list it in one"
                raise ConfigurationError(msg)
    return by_issuer
