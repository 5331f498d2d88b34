"""Bearer-token authentication for Litestar APIs: RFC 6750 in, RFC 9457 out, RFC 9728 published.

:class:`OIDCBearerAuth` is a Litestar security config: its middleware
(:class:`OIDCBearerMiddleware`) reads ``Authorization: Bearer <token>`` (or, with ``dpop``, a
DPoP-bound token and its proof, RFC 9449), validates the token with
:meth:`rpkit.id_token.TokenValidator.validate_access_token` against the policy of the token's
issuer, and sets ``request.user`` and ``request.auth``. Failures become 401/403 answers
(:class:`BearerError`) with a ``WWW-Authenticate`` challenge and a problem-details body that never
echoes the token. :func:`requires_scopes` is the per-route scope guard. With a
:class:`~rpkit.litestar.protected_resource.ProtectedResource`, the config also serves the
resource's RFC 9728 metadata and names it in every challenge.

This module holds the configuration and its startup checks; the per-request code is in
``_bearer_middleware`` and the challenge in ``_challenge``, re-exported here.

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
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import httpx
from litestar.connection import ASGIConnection
from litestar.middleware import DefineMiddleware
from litestar.openapi.spec import Components, SecurityRequirement
from litestar.security.base import AbstractSecurityConfig
from litestar.utils.sync import ensure_async_callable

from rpkit._log import get_logger
from rpkit.access_cache import DEFAULT_ACCESS_TOKEN_CACHE_SIZE, VerifiedTokenCache
from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.dpop_verify import DPoPPolicy
from rpkit.errors import ConfigurationError, JWKSError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.litestar._bearer_middleware import (
    OIDCBearerMiddleware,
    requires_scopes,
    templated_policy,
)
from rpkit.litestar._challenge import (
    _DESCRIPTIONS,  # noqa: F401 - the error-code page (docs/hooks/gen_errors.py) reads it here
    PROBLEM_TYPE_BASE,
    QUOTABLE,
    SCOPE_TOKEN,
    BearerError,
)
from rpkit.litestar._dpop import DPOP_MODES, DPoPMode, openapi_scheme
from rpkit.litestar._encoders import encode_read_only_claims
from rpkit.litestar.protected_resource import ProtectedResource

if TYPE_CHECKING:
    from litestar import Litestar, Request, Response
    from litestar.config.app import AppConfig
    from litestar.handlers import HTTPRouteHandler
    from litestar.types import Guard, Method, Scopes

__all__ = [
    "PROBLEM_TYPE_BASE",
    "BearerError",
    "OIDCBearerAuth",
    "OIDCBearerMiddleware",
    "RetrieveUser",
    "requires_scopes",
]

_CLIENT_TIMEOUT = httpx.Timeout(5.0, connect=3.0)
_CLIENT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10)

RetrieveUser: TypeAlias = Callable[[AccessToken, ASGIConnection[Any, Any, Any, Any]], Any]
"""``(token, connection) -> user or None``, sync or async."""


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
    resource: ProtectedResource | None = None
    """This API as an RFC 9728 protected resource: its metadata document is served (without a
    token) at the well-known URL, every challenge names that URL (``resource_metadata``), and
    every policy's ``audience`` must list the resource identifier (refused at construction
    otherwise, with ``audience_claim="aud"``), so a token minted for another resource is
    refused (RFC 8707). See :class:`~rpkit.litestar.protected_resource.ProtectedResource`."""
    dpop: DPoPMode = "off"
    """DPoP sender-constrained tokens (RFC 9449). ``"off"``: ``Authorization: Bearer`` only.
    ``"allowed"``: also ``Authorization: DPoP`` with a ``DPoP`` proof header, checked on every
    request (the verified-token cache never spares it), and challenges name ``DPoP`` with the
    accepted ``algs``. ``"required"``: DPoP only. In every mode a DPoP-bound token (``cnf.jkt``)
    sent as ``Bearer`` is refused (§7.2: its binding cannot be skipped), and a token sent as
    ``DPoP`` must be bound to the proof's key. The OpenAPI scheme says so, and so does the
    metadata document of a :attr:`resource` (RFC 9728 §2: ``dpop_signing_alg_values_supported``,
    ``dpop_bound_access_tokens_required``)."""
    dpop_policy: DPoPPolicy = field(default_factory=DPoPPolicy)
    """What a DPoP proof may be: algorithms, ``iat`` window, the API's public ``base_url``
    behind a proxy (``X-Forwarded-*`` is never trusted), server nonces; see
    :class:`~rpkit.dpop_verify.DPoPPolicy`."""
    dpop_store: str = "rpkit_dpop"
    """Name of the Litestar store remembering proof ``jti`` values while the proofs are fresh.
    With several workers register a shared store (``RedisStore``) under this name: a
    per-process memory store refuses a replayed proof only on the worker that saw it first."""

    authentication_middleware_class = OIDCBearerMiddleware
    policies_by_issuer: dict[str, AccessTokenPolicy] = field(init=False, repr=False)
    """Issuer → the policy listing it (derived at construction)."""
    _keys: JWKSCache | None = field(default=None, init=False, repr=False)
    _validator: TokenValidator | None = field(default=None, init=False, repr=False)
    _token_cache: VerifiedTokenCache | None = field(default=None, init=False, repr=False)
    """The validator's verified-token cache while it is open, read by the middleware on
    every request."""
    _has_lifespan: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.policies = tuple(self.policies)
        self.policies_by_issuer = _index_by_issuer(self.policies)
        _log_relaxations(self.policies)
        if not QUOTABLE.fullmatch(self.realm):
            msg = "OIDCBearerAuth: realm must be printable ASCII without '\"' or '\\'"
            raise ConfigurationError(msg)
        if self.dpop not in DPOP_MODES:
            msg = f"OIDCBearerAuth: dpop must be one of {DPOP_MODES}, not {self.dpop!r}"
            raise ConfigurationError(msg)
        size = self.token_cache_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            msg = "OIDCBearerAuth: token_cache_size must be an integer >= 0 (0 turns it off)"
            raise ConfigurationError(msg)
        if self.retrieve_user_handler is not None:
            self.retrieve_user_handler = ensure_async_callable(self.retrieve_user_handler)
        if self.resource is not None:
            _check_resource(self.resource, self.policies, self.policies_by_issuer)
            self.resource.log_relaxations()
        if self.jwks is not None or self.http is not None:
            self._open(self.jwks or JWKSCache(self.http))  # type: ignore[arg-type]

    @property
    def resource_metadata_url(self) -> str | None:
        """The RFC 9728 metadata URL named in challenges, or None without :attr:`resource`."""
        return None if self.resource is None else self.resource.metadata_url

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
        """The HTTP security scheme: ``bearer`` (JWT), or ``DPoP`` when DPoP is required; its
        description names DPoP and the proof algorithms when DPoP is on."""
        scheme = openapi_scheme(self.dpop, self.dpop_policy.algorithms, self.description)
        return Components(security_schemes={self.openapi_security_scheme_name: scheme})

    @property
    def security_requirement(self) -> SecurityRequirement:
        """The OpenAPI security requirement naming the scheme."""
        return {self.openapi_security_scheme_name: []}

    @property
    def middleware(self) -> DefineMiddleware:
        """The authentication middleware, for ``middleware=[...]`` on a router or controller
        (then also register :attr:`exception_handlers` there, and :meth:`resource_handlers` on
        the app). Mounted this way, nothing opens rpkit's own HTTP client: pass ``http=`` (or
        ``jwks=``), or the app refuses to start (:class:`~rpkit.errors.ConfigurationError`)."""
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
        app_config.route_handlers.extend(self.resource_handlers())
        app_config.lifespan.append(self._lifespan)
        encode_read_only_claims(app_config)
        self._has_lifespan = True
        return app_config

    def __deepcopy__(self, memo: dict[int, Any]) -> OIDCBearerAuth:
        """The config itself: Litestar deep-copies a ``Router`` (and its ``middleware=[...]``,
        which holds this config) when registering it, and a copy would neither pickle the
        caller's ``http`` client (``cannot pickle '_thread.RLock'``) nor share the key cache and
        verified tokens the lifespan opens on the original. It is one API's protection, shared
        by every place that mounts it."""
        return self

    def resource_handlers(self) -> list[HTTPRouteHandler]:
        """The handlers serving :attr:`resource`'s RFC 9728 document (none without one), with
        the DPoP members this config implies. :meth:`on_app_init` registers them; register
        them yourself when the middleware is mounted on a router."""
        if self.resource is None:
            return []
        algorithms = self.dpop_policy.algorithms
        return self.resource.route_handlers(
            self.exclude_opt_key, dpop=self.dpop, dpop_algorithms=algorithms
        )

    def _error_response(self, request: Request[Any, Any, Any], exc: BearerError) -> Response[Any]:
        exc.set_realm(self.realm, self.resource_metadata_url)
        if self.dpop != "off":  # a guard's refusal names DPoP too
            exc.set_dpop(" ".join(self.dpop_policy.algorithms), bearer=self.dpop == "allowed")
        return exc.to_response(request)

    def _open(self, keys: JWKSCache) -> None:
        self._keys = keys
        self._validator = TokenValidator(keys, access_token_cache_size=self.token_cache_size)
        self._token_cache = self._validator.access_token_cache

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
                self._keys = self._validator = self._token_cache = None

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
        if policy.audience_claim != "aud":
            claim = policy.audience_claim
            relaxed.append(f"audience_claim={claim!r}: {claim} stands for aud")
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
        if not all(SCOPE_TOKEN.fullmatch(scope) for scope in policy.required_scopes):
            msg = f"OIDCBearerAuth: {policy.required_scopes} are not all RFC 6749 scope tokens"
            raise ConfigurationError(msg)
        for issuer in policy.issuers:
            if by_issuer.setdefault(issuer, policy) is not policy:
                msg = f"OIDCBearerAuth: issuer {issuer!r} is in two policies; list it in one"
                raise ConfigurationError(msg)
    return by_issuer


def _check_resource(
    resource: ProtectedResource,
    policies: Sequence[AccessTokenPolicy],
    by_issuer: dict[str, AccessTokenPolicy],
) -> None:
    """Every policy must take tokens for this resource only by ``aud`` (RFC 8707 §2: the
    audience of a token requested with ``resource``), and every advertised authorization server
    must be an issuer some policy accepts (else its tokens would all be refused)."""
    for policy in policies:
        if policy.audience_claim != "aud":
            msg = (
                "OIDCBearerAuth: a protected resource checks the audience in aud (RFC 8707); "
                f"the policy of {policy.issuers[0]!r} reads {policy.audience_claim} instead"
            )
            raise ConfigurationError(msg)
        if resource.resource not in policy.audience:
            msg = (
                f"OIDCBearerAuth: the policy of {policy.issuers[0]!r} must list the resource "
                f"identifier {resource.resource!r} in its audience, or tokens minted for this "
                "resource are refused and tokens for other resources may be accepted"
            )
            near = [a for a in policy.audience if a.rstrip("/") == resource.resource.rstrip("/")]
            if near:  # clients and authorization servers compare the identifier exactly
                msg += f" (its audience has {near[0]!r}: they differ by a trailing slash)"
            raise ConfigurationError(msg)
    for server in resource.authorization_servers:
        if server not in by_issuer and templated_policy(policies, server) is None:
            msg = (
                f"OIDCBearerAuth: authorization server {server!r} is advertised in the "
                "resource metadata but no policy accepts it as an issuer"
            )
            raise ConfigurationError(msg)
