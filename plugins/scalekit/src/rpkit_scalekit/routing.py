"""Home-realm discovery: from an email (or explicit choices) to where Scalekit should sign in.

:class:`LoginRouter` turns a login request into a :class:`LoginRoute`, a typed decision the
application can inspect, log or override through a hook before it becomes authorization
parameters. Explicit choices win, in Scalekit's own order: ``connection_id``, then
``organization_id``, then a social ``provider``, then ``domain_hint``. Otherwise the email's domain
is looked up (``GET /api/v1/connections?domain=``, cached with a TTL, misses cached too): one
active SSO connection routes to it, several of one organization route to that organization, and
anything else goes to the hosted page (passwordless or the login box) with ``login_hint``
pre-filled. A failed lookup degrades to that hosted page too, where Scalekit runs its own
discovery on the hint.

Example:
    >>> from rpkit_scalekit.routing import LoginRoute
    >>> LoginRoute(kind="hosted", reason="default", login_hint="ada@example.com").params()
    {'login_hint': 'ada@example.com'}
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

import msgspec

from rpkit._log import get_logger
from rpkit.errors import ConfigurationError
from rpkit.hooks import AuthorizationContext
from rpkit_scalekit.errors import InvalidEmailError, ScalekitError, ScalekitInputError
from rpkit_scalekit.management import Connection

__all__ = [
    "PROMPTS",
    "SOCIAL_PROVIDERS",
    "SSO_CONNECTION_TYPES",
    "ConnectionDirectory",
    "LoginHintRouting",
    "LoginRoute",
    "LoginRouter",
    "RouteHook",
    "RouteKind",
    "RouteRequest",
    "check_email",
]

PROMPTS = frozenset({"login", "create", "select_account", "none"})
"""The ``prompt`` values Scalekit documents."""
SOCIAL_PROVIDERS = frozenset({"google", "microsoft", "github", "gitlab", "linkedin", "salesforce"})
"""The social ``provider`` values Scalekit documents."""
SSO_CONNECTION_TYPES = frozenset({"OIDC", "SAML"})
"""Connection types that are enterprise SSO (a ``PASSWORDLESS`` or social one is not)."""
MAX_EMAIL_LENGTH = 320

RouteKind = Literal["connection", "organization", "provider", "domain", "hosted"]

# Always ``fullmatch``: with ``match`` and ``$``, a value ending in a bare "\n" passes.
_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_PROVIDER = re.compile(r"[a-z0-9_\-]{1,64}")
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}")
_LABEL = re.compile(r"(?!-)[a-z0-9\-]{1,63}(?<!-)")


def _domain(value: str, field: str) -> str:
    """``value`` as a lower-case ASCII (IDNA) domain with at least two labels."""
    if len(value) > 253:  # bounded before the IDNA codec runs on attacker-chosen text
        raise InvalidEmailError(f"{field} has an invalid domain", field=field)
    try:
        ascii_domain = value.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidEmailError(f"{field} has an invalid domain", field=field) from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or len(labels) < 2 or not all(map(_LABEL.fullmatch, labels)):
        raise InvalidEmailError(f"{field} has an invalid domain", field=field)
    if labels[-1].isdigit():
        raise InvalidEmailError(f"{field} must name a domain, not an address", field=field)
    return ascii_domain


def check_email(value: object, field: str = "email") -> tuple[str, str]:
    """A deliverable-looking address, as ``(address with its domain lower-cased, domain)``.

    Deliberately narrower than RFC 5322: no quoted local parts, comments or IP literals, which
    no SSO domain uses and which make log injection and confusion easy.

    Raises:
        InvalidEmailError: anything else (answer 400).
    """
    if not isinstance(value, str) or not value or len(value) > MAX_EMAIL_LENGTH:
        raise InvalidEmailError(f"{field} must be 1-{MAX_EMAIL_LENGTH} characters", field=field)
    local, at, domain = value.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or local.startswith(".") or ".." in local:
        raise InvalidEmailError(f"{field} is not an email address", field=field)
    if local.endswith("."):
        raise InvalidEmailError(f"{field} is not an email address", field=field)
    ascii_domain = _domain(domain, field)
    return f"{local}@{ascii_domain}", ascii_domain


def _check_id(value: str | None, field: str) -> None:
    if value is not None and not _ID.fullmatch(value):
        raise ScalekitInputError(f"{field} must be 1-128 letters, digits, '_' or '-'", field=field)


class LoginRoute(msgspec.Struct, frozen=True, kw_only=True):
    """Where one login goes; checked at construction, also when a hook builds one."""

    kind: RouteKind
    """What decided the destination: an explicit ``connection``, ``organization``, social
    ``provider`` or ``domain``, or the ``hosted`` page (passwordless or the login box)."""
    reason: str
    """Why, for logs and tests: ``explicit``, ``sso_connection``, ``sso_organization``,
    ``ambiguous_domain``, ``no_sso_connection``, ``lookup_failed``, ``idp_initiated``,
    ``default`` (or the hook's own)."""
    connection_id: str | None = None
    organization_id: str | None = None
    provider: str | None = None
    domain_hint: str | None = None
    """Sent as both ``domain_hint`` and ``domain`` (Node and Go SDKs do; the lite SDK reads
    ``domain``)."""
    login_hint: str | None = None
    """The email, pre-filled at Scalekit and used there for its own discovery."""
    prompt: str | None = None
    """``login``, ``create``, ``select_account`` or ``none``."""

    def __post_init__(self) -> None:
        _check_id(self.connection_id, "connection_id")
        _check_id(self.organization_id, "organization_id")
        if self.provider is not None and not _PROVIDER.fullmatch(self.provider):
            raise ScalekitInputError("provider must be a lower-case identifier", field="provider")
        if self.prompt is not None and self.prompt not in PROMPTS:
            raise ScalekitInputError(f"prompt must be one of {sorted(PROMPTS)}", field="prompt")
        if self.login_hint is not None:
            check_email(self.login_hint, "login_hint")
        if self.domain_hint is not None:
            _domain(self.domain_hint, "domain_hint")

    def params(self) -> dict[str, str]:
        """The extra authorization parameters, for ``RelyingParty.begin_login(params=...)``."""
        params = {
            "connection_id": self.connection_id,
            "organization_id": self.organization_id,
            "provider": self.provider,
            "domain_hint": self.domain_hint,
            "domain": self.domain_hint,
            "login_hint": self.login_hint,
            "prompt": self.prompt,
        }
        return {name: value for name, value in params.items() if value is not None}


class RouteRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the login asked for, after validation; what a :data:`RouteHook` sees."""

    email: str | None = None
    domain: str | None = None
    """The email's domain (lower-case ASCII), when an email was given."""
    organization_id: str | None = None
    connection_id: str | None = None
    provider: str | None = None
    domain_hint: str | None = None
    prompt: str | None = None


RouteHook = Callable[[RouteRequest, LoginRoute], Awaitable[LoginRoute]]
"""Inspect or replace the router's decision (e.g. force one organization for a tenant)."""


class ConnectionDirectory(Protocol):
    """Where connections are looked up; :class:`~rpkit_scalekit.management.ManagementClient`."""

    async def list_connections(
        self,
        *,
        domain: str | None = None,
        organization_id: str | None = None,
        include_all: bool = False,
    ) -> tuple[Connection, ...]:
        """Active connections for ``domain``."""
        ...


class _Entry(msgspec.Struct, frozen=True):
    connections: tuple[Connection, ...]
    expires_at: float


class LoginRouter:
    """Decides where a login goes (see the module docstring for the order).

    Args:
        directory: the connection lookup, normally the :class:`ManagementClient`.
        ttl: seconds a domain's connections are cached.
        negative_ttl: seconds a domain without SSO is cached. Short, so a newly configured
            connection is used soon; not zero, so a stream of unknown domains costs one lookup
            each per interval instead of one per login.
        max_entries: the cache's bound; domains are attacker-chosen input, so it must have one.
        failure_ttl: seconds after a failed lookup during which uncached domains go straight
            to the hosted page, so an outage does not make every login wait for a timeout.
        hook: replaces or adjusts each decision.
        social_providers: the ``provider`` values accepted.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        directory: ConnectionDirectory,
        *,
        ttl: float = 300,
        negative_ttl: float = 60,
        max_entries: int = 10_000,
        failure_ttl: float = 10,
        hook: RouteHook | None = None,
        social_providers: frozenset[str] = SOCIAL_PROVIDERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(ttl, negative_ttl, max_entries) <= 0 or failure_ttl < 0:
            msg = "LoginRouter needs ttl, negative_ttl, max_entries > 0 and failure_ttl >= 0"
            raise ConfigurationError(msg)
        self._directory = directory
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._failure_ttl = failure_ttl
        self._failing_until = float("-inf")
        self._hook = hook
        self._social = social_providers
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[tuple[Connection, ...]]] = {}
        self._log = get_logger(provider="scalekit")

    async def route(
        self,
        *,
        email: str | None = None,
        organization_id: str | None = None,
        connection_id: str | None = None,
        provider: str | None = None,
        domain_hint: str | None = None,
        prompt: str | None = None,
    ) -> LoginRoute:
        """Decide where this login goes.

        Raises:
            InvalidEmailError: ``email`` is not a usable address (answer 400).
            ScalekitInputError: another value is malformed, or ``provider`` unknown (400).
        """
        if prompt is not None and prompt not in PROMPTS:
            raise ScalekitInputError(f"prompt must be one of {sorted(PROMPTS)}", field="prompt")
        request = self._request(email, organization_id, connection_id, provider, domain_hint)
        request = msgspec.structs.replace(request, prompt=prompt)
        route = await self._decide(request)
        if self._hook is not None:
            route = await self._hook(request, route)
            if not isinstance(route, LoginRoute):
                raise TypeError("a route hook must return a LoginRoute")
        self._log.debug(
            "rpkit.scalekit.route_decided",
            kind=route.kind,
            reason=route.reason,
            domain=request.domain,
        )
        return route

    def _request(
        self,
        email: str | None,
        organization_id: str | None,
        connection_id: str | None,
        provider: str | None,
        domain_hint: str | None,
    ) -> RouteRequest:
        address, domain = check_email(email) if email is not None else (None, None)
        _check_id(organization_id, "organization_id")
        _check_id(connection_id, "connection_id")
        if provider is not None and provider not in self._social:
            raise ScalekitInputError(
                f"provider must be one of {sorted(self._social)}", field="provider"
            )
        hint = _domain(domain_hint, "domain_hint") if domain_hint is not None else None
        return RouteRequest(
            email=address,
            domain=domain,
            organization_id=organization_id,
            connection_id=connection_id,
            provider=provider,
            domain_hint=hint,
        )

    async def _decide(self, request: RouteRequest) -> LoginRoute:
        explicit = _explicit(request)
        if explicit is not None:
            return explicit
        if request.domain is None:
            return _route("hosted", "default", request)
        cached = self._cache.get(request.domain)
        fresh = cached is not None and self._clock() < cached.expires_at
        if not fresh and self._clock() < self._failing_until:
            return _route("hosted", "lookup_failed", request)
        try:
            connections = await self.connections_for(request.domain)
        except ScalekitError as exc:
            self._failing_until = self._clock() + self._failure_ttl
            self._log.warning(
                "rpkit.scalekit.route_lookup_failed", code=exc.code, domain=request.domain
            )
            return _route("hosted", "lookup_failed", request)
        return _by_connections(connections, request)

    async def connections_for(self, domain: str) -> tuple[Connection, ...]:
        """The active SSO connections of ``domain`` (lower-case ASCII), cached.

        Raises:
            ScalekitError: the lookup failed (failures are not cached).
        """
        entry = self._cache.get(domain)
        if entry is not None and self._clock() < entry.expires_at:
            return entry.connections
        task = self._inflight.get(domain)
        if task is None:
            task = asyncio.create_task(self._lookup(domain))
            self._inflight[domain] = task
            task.add_done_callback(lambda done: self._forget(domain, done))
        return await asyncio.shield(task)

    def _forget(self, domain: str, task: asyncio.Task[tuple[Connection, ...]]) -> None:
        if self._inflight.get(domain) is task:
            del self._inflight[domain]
        if not task.cancelled():
            task.exception()  # retrieved here, so asyncio never reports it as unhandled

    async def _lookup(self, domain: str) -> tuple[Connection, ...]:
        found = await self._directory.list_connections(domain=domain)
        usable = tuple(c for c in found if _is_sso_for(c, domain))
        ttl = self._ttl if usable else self._negative_ttl
        self._remember(domain, _Entry(usable, self._clock() + ttl))
        return usable

    def _remember(self, domain: str, entry: _Entry) -> None:
        self._cache.pop(domain, None)
        if len(self._cache) >= self._max_entries:
            now = self._clock()
            for stale in [d for d, e in self._cache.items() if e.expires_at <= now]:
                del self._cache[stale]
        while len(self._cache) >= self._max_entries:
            del self._cache[next(iter(self._cache))]  # the oldest insertion
        self._cache[domain] = entry


def _is_sso_for(connection: Connection, domain: str) -> bool:
    """Active, enterprise SSO, and (when it lists domains) really for ``domain``."""
    if not connection.active or (connection.type or "").upper() not in SSO_CONNECTION_TYPES:
        return False
    return not connection.domains or domain in {d.lower() for d in connection.domains}


def _route(
    kind: RouteKind,
    reason: str,
    request: RouteRequest,
    *,
    connection_id: str | None = None,
    organization_id: str | None = None,
    provider: str | None = None,
    domain_hint: str | None = None,
) -> LoginRoute:
    return LoginRoute(
        kind=kind,
        reason=reason,
        connection_id=connection_id,
        organization_id=organization_id,
        provider=provider,
        domain_hint=domain_hint,
        login_hint=request.email,
        prompt=request.prompt,
    )


def _explicit(request: RouteRequest) -> LoginRoute | None:
    """The route an explicit choice fixes, in Scalekit's precedence; None without one."""
    if request.connection_id:
        return _route(
            "connection",
            "explicit",
            request,
            connection_id=request.connection_id,
            organization_id=request.organization_id,
        )
    if request.organization_id:
        return _route("organization", "explicit", request, organization_id=request.organization_id)
    if request.provider:
        return _route("provider", "explicit", request, provider=request.provider)
    if request.domain_hint:
        return _route("domain", "explicit", request, domain_hint=request.domain_hint)
    return None


def _by_connections(connections: tuple[Connection, ...], request: RouteRequest) -> LoginRoute:
    if len(connections) == 1:
        only = connections[0]
        return _route(
            "connection",
            "sso_connection",
            request,
            connection_id=only.id,
            organization_id=only.organization_id,
        )
    organizations = {c.organization_id for c in connections}
    if len(organizations) == 1 and None not in organizations:
        return _route(
            "organization", "sso_organization", request, organization_id=organizations.pop()
        )
    return _route("hosted", "ambiguous_domain" if connections else "no_sso_connection", request)


_EXPLICIT = frozenset({"connection_id", "organization_id", "provider", "domain_hint", "domain"})


class LoginHintRouting:
    """The Scalekit preset's :class:`~rpkit.hooks.AuthorizationParamsHook`: a core login
    (``/auth/login/scalekit?login_hint=ada@acme.test``) is routed like the plugin's email
    start, so it lands on the user's SSO connection instead of Scalekit's login box.

    It routes only when the login names an email and no explicit destination, and only once
    :attr:`router` is bound (the :class:`~rpkit_scalekit.environment.ScalekitEnvironment` binds
    it when it is built); unbound, it adds nothing and Scalekit discovers the connection from
    ``login_hint`` itself.
    """

    def __init__(self) -> None:
        self.router: LoginRouter | None = None

    async def __call__(self, context: AuthorizationContext) -> Mapping[str, str]:
        email = context.params.get("login_hint")
        if self.router is None or email is None or _EXPLICIT & set(context.params):
            return {}
        route = await self.router.route(email=email, prompt=context.params.get("prompt"))
        return {k: v for k, v in route.params().items() if k not in context.params}
