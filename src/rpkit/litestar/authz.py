"""Role, permission and organization guards, for browser sessions and bearer APIs alike.

:func:`requires_role`, :func:`requires_permission` and :func:`requires_org` read the claim
paths of the provider that authenticated the request (:class:`~rpkit.authz.ClaimPaths`, set by a
preset or plugin) with the strict readers of :mod:`rpkit.authz`: a missing claim, or one of the
wrong type, denies, and nothing is coerced.

Where the values come from:

* **A bearer request** (``request.auth`` is the :class:`~rpkit.access_token.AccessToken` that
  :class:`~rpkit.litestar.bearer.OIDCBearerAuth` validated): the token's claims, at the paths of
  the :class:`~rpkit.access_token.AccessTokenPolicy` that accepted it. A denial is a 403 problem
  (``code`` ``insufficient_authorization``) with ``WWW-Authenticate: Bearer
  error="insufficient_scope"``, as :func:`~rpkit.litestar.bearer.requires_scopes` answers. A
  bearer request is judged by its token alone, even if it also carries a session cookie.
* **A browser session** (any other request, with :class:`~rpkit.litestar.RPKitPlugin`): the
  provider's :attr:`~rpkit.config.ProviderConfig.claim_paths`, read in the session's verified
  access-token claims when the provider sets
  :attr:`~rpkit.config.ProviderConfig.access_token_claims`, else in the identity's claims (the ID
  token's over UserInfo's); never both, so a stale ID token cannot stand in for an access token
  that lost a role or failed verification. The organization, when the provider has no
  organization path, is :attr:`~rpkit.client.Identity.organization`. A denial is the session
  guards' :class:`~rpkit.errors.PermissionDeniedError` (403: an HTML page for browsers, problem
  details for API clients); no session is :class:`~rpkit.errors.NotSignedInError`.
* Neither (no token, no plugin): 401 with a bare ``Bearer`` challenge.

Example:
    >>> from litestar import get
    >>> from rpkit.litestar import requires_org, requires_permission, requires_role
    >>> @get("/admin", guards=[requires_role("admin"), requires_org("org_1")])
    ... async def admin() -> str:
    ...     return "welcome"
    >>> @get("/invoices", guards=[requires_permission("invoices:read", "invoices:list")])
    ... async def invoices() -> list[str]:
    ...     return []
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Literal

from rpkit._log import get_logger
from rpkit.access_token import AccessToken
from rpkit.authz import Kind, bound_paths, read_names, read_organization
from rpkit.errors import ConfigurationError, PermissionDeniedError
from rpkit.litestar._bearer_middleware import PUBLIC_METADATA_OPT
from rpkit.litestar._guard_hook import rpkit_guard
from rpkit.litestar.bearer import BearerError
from rpkit.litestar.guards import _guard
from rpkit.litestar.plugin import RPKitPlugin, RPKitRuntime

if TYPE_CHECKING:
    from collections.abc import Mapping

    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import Guard

    from rpkit.authz import ClaimPaths
    from rpkit.litestar.session import SessionData

__all__ = ["Match", "requires_org", "requires_permission", "requires_role"]

Match = Literal["any", "all"]
"""``any``: one of the named values suffices; ``all``: every one is needed."""
_REQUIREMENT: Final[dict[Kind, str]] = {
    "roles": "role",
    "permissions": "permission",
    "organization": "organization",
}
Value = frozenset[str] | str | None


def requires_role(*names: str, match: Match = "any") -> Guard:
    """Allow requests whose roles include one of ``names`` (``match="all"``: every one).

    Raises (from the guard):
        BearerError: a bearer request without the roles (403 ``insufficient_authorization``).
        NotSignedInError: no bearer token and no session.
        PermissionDeniedError: a session without the roles (``requirement="role"``).

    Raises:
        ConfigurationError: no name, an empty one, or an unknown ``match``.
    """
    return _authz_guard("roles", _names("requires_role", names), match)


def requires_permission(*names: str, match: Match = "all") -> Guard:
    """Allow requests whose permissions include every one of ``names`` (``match="any"``: one
    suffices). All by default, as :func:`~rpkit.litestar.bearer.requires_scopes`: a route that
    names two permissions usually does two things.

    Raises (from the guard):
        BearerError: a bearer request without them (403 ``insufficient_authorization``).
        NotSignedInError: no bearer token and no session.
        PermissionDeniedError: a session without them (``requirement="permission"``).

    Raises:
        ConfigurationError: no name, an empty one, or an unknown ``match``.
    """
    return _authz_guard("permissions", _names("requires_permission", names), match)


def requires_org(*ids: str) -> Guard:
    """Allow requests made as one of the organizations ``ids`` (one organization per token or
    session, so one of them is the only sensible reading).

    Raises (from the guard):
        BearerError: a bearer request for another or no organization (403
            ``insufficient_authorization``).
        NotSignedInError: no bearer token and no session.
        PermissionDeniedError: a session of another or no organization
            (``requirement="organization"``).

    Raises:
        ConfigurationError: no id, or an empty one.
    """
    return _authz_guard("organization", _names("requires_org", ids), "any")


def _names(factory: str, values: tuple[str, ...]) -> frozenset[str]:
    if not values or not all(isinstance(value, str) and value for value in values):
        raise ConfigurationError(f"{factory} needs at least one non-empty string")
    return frozenset(values)


def _authz_guard(kind: Kind, required: frozenset[str], match: Match) -> Guard:
    if match not in ("any", "all"):
        raise ConfigurationError(f"match must be 'any' or 'all', not {match!r}")
    allows = _allows(kind, required, match)

    def check(session: SessionData, runtime: RPKitRuntime) -> None:
        value = session_value(session, runtime, kind)
        if not allows(value):
            config = runtime.rp.providers.get(session.provider_id)
            paths = None if config is None else config.claim_paths
            _log_denial(kind, value, paths, provider=session.provider_id)
            detail = f"the session's {kind} do not satisfy this route"
            raise PermissionDeniedError(detail, requirement=_REQUIREMENT[kind])

    session_guard = _guard(check)

    # Async on purpose: Litestar runs a sync guard in a worker thread.
    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if handler.opt.get(PUBLIC_METADATA_OPT):
            return  # RFC 9728 metadata is for clients without a token, even under app guards
        token = connection.scope.get("auth")
        if isinstance(token, AccessToken):
            value = token_value(token, kind)
            if not allows(value):
                _log_denial(kind, value, token.claim_paths, issuer=token.iss)
                description = f"The access token lacks the {_REQUIREMENT[kind]} this needs."
                raise BearerError("insufficient_authorization", description).for_token(token.jkt)
            return
        if not _has_plugin(connection):
            description = "Send an access token as 'Authorization: Bearer'."
            raise BearerError("access_token_missing", description)
        checked = session_guard(connection, handler)
        if checked is not None:
            await checked

    return rpkit_guard(guard)


def _allows(kind: Kind, required: frozenset[str], match: Match) -> Callable[[Value], bool]:
    def allows(value: Value) -> bool:
        if value is None:
            return False
        if isinstance(value, str):
            return value in required
        return required <= value if match == "all" else not required.isdisjoint(value)

    return allows


def token_value(token: AccessToken, kind: Kind) -> Value:
    """What a bearer token says of ``kind``: the names (roles, permissions) or the
    organization at its policy's paths; None when the policy has none or the claims hold no
    valid value."""
    paths = token.claim_paths
    return None if paths is None else _read(token.claims, paths, kind)


def session_value(session: SessionData, runtime: RPKitRuntime, kind: Kind) -> Value:
    """What a session says of ``kind`` (module docstring: the access-token claims when the
    provider verifies access tokens, else the identity's claims; the identity's organization
    when the provider has no organization path); None when there is no valid value."""
    config = runtime.rp.providers.get(session.provider_id)
    if config is None:  # a provider removed from the configuration since the login
        return None
    paths = config.claim_paths
    if kind == "organization" and (paths is None or not paths.organization):
        return session.organization
    if paths is None:
        return None
    source = session.access_claims if config.access_token_claims is not None else session.claims
    if source is None:
        return None
    return _read(source, bound_paths(paths, config.client_id), kind)


def _read(claims: Mapping[str, Any], paths: ClaimPaths, kind: Kind) -> Value:
    if kind == "organization":
        return read_organization(claims, paths.paths(kind))
    return read_names(claims, paths.paths(kind))


def _has_plugin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    try:
        connection.app.plugins.get(RPKitPlugin)
    except KeyError:
        return False
    return True


def _log_denial(kind: Kind, value: Value, paths: ClaimPaths | None, **bound: str) -> None:
    """One ``rpkit.authz.denied`` info line: the kind, and ``reason`` ``not_granted`` (a value
    was read, without what the route needs) or ``no_value`` (nothing valid at the configured
    ``paths``, listed so that a typo in a path shows; ``none`` when there are none). The values a
    route wants, or a token holds, stay out of the log."""
    log = get_logger(**bound)
    if value is not None:
        log.info("rpkit.authz.denied", kind=kind, reason="not_granted")
        return
    configured = [] if paths is None else [str(path) for path in paths.paths(kind)]
    log.info("rpkit.authz.denied", kind=kind, reason="no_value", paths=configured or "none")
