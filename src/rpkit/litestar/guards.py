"""Route guards: who may reach a handler, decided from the request's rpkit session.

Each factory returns a Litestar guard that loads the session once per request (shared with the
``rpkit_session`` and ``rpkit_user`` dependencies) and raises a typed :mod:`rpkit.errors` error
to deny. The plugin's error table turns a denial into a login redirect for browsers and a
401/403 problem for APIs.

Example:
    >>> from litestar import get
    >>> from rpkit.litestar import requires_claim, requires_recent_auth
    >>> @get("/admin", guards=[requires_claim("groups", "admins"), requires_recent_auth(300)])
    ... async def admin() -> str:
    ...     return "welcome"
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

from rpkit.errors import (
    ConfigurationError,
    PermissionDeniedError,
    StepUpRequiredError,
)
from rpkit.litestar._guard_hook import rpkit_guard
from rpkit.litestar.plugin import RPKitPlugin, RPKitRuntime, not_signed_in

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import Guard

    from rpkit.litestar.session import SessionData

__all__ = (
    "requires_acr",
    "requires_claim",
    "requires_login",
    "requires_provider",
    "requires_recent_auth",
    "requires_tenant",
)

Check = Callable[["SessionData", RPKitRuntime], None]


def requires_login() -> Guard:
    """Allow any signed-in user.

    Raises (from the guard):
        NotSignedInError: there is no session; browsers are sent to the login route when one
            provider fits.
    """
    return _guard(None)


def requires_provider(*provider_ids: str) -> Guard:
    """Allow users signed in with one of ``provider_ids``.

    Raises (from the guard):
        NotSignedInError: there is no session; with a single ``provider_ids`` browsers are sent
            to that provider's login.
        PermissionDeniedError: the session is from another provider (``requirement="provider"``).
    """
    allowed = frozenset(_required("requires_provider", provider_ids))

    def check(session: SessionData, _: RPKitRuntime) -> None:
        if session.provider_id not in allowed:
            detail = f"signed in with {session.provider_id!r}, not one of {sorted(allowed)}"
            raise PermissionDeniedError(detail, requirement="provider")

    return _guard(check, hint=provider_ids[0] if len(allowed) == 1 else None)


def requires_tenant(*tenant_ids: str) -> Guard:
    """Allow users who signed in from one of ``tenant_ids`` of a multi-tenant provider (the
    identity's :attr:`~rpkit.client.Identity.tenant`, Entra ID's ``tid``).

    Raises (from the guard):
        NotSignedInError: there is no session.
        PermissionDeniedError: the session has no tenant or another one
            (``requirement="tenant"``).
    """
    allowed = frozenset(_required("requires_tenant", tenant_ids))

    def check(session: SessionData, _: RPKitRuntime) -> None:
        if session.tenant not in allowed:
            detail = "the session's tenant is not one this page allows"
            raise PermissionDeniedError(detail, requirement="tenant")

    return _guard(check)


def requires_claim(name: str, value: Any) -> Guard:
    """Allow users whose claim ``name`` equals ``value``, or contains it when it is a list.

    The claims are the session's UserInfo claims overlaid by the ID token's. ``True`` and ``1``
    are different values here, as they are in JSON.

    Raises (from the guard):
        NotSignedInError: there is no session.
        PermissionDeniedError: the claim is missing or does not match (``requirement="claim"``).
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError("requires_claim needs a claim name")

    def check(session: SessionData, _: RPKitRuntime) -> None:
        if name not in session.claims or not _matches(session.claims[name], value):
            detail = f"the {name!r} claim does not allow this"
            raise PermissionDeniedError(detail, requirement="claim")

    return _guard(check)


def requires_acr(*values: str) -> Guard:
    """Allow users whose ID token's ``acr`` is one of ``values``.

    Raises (from the guard):
        NotSignedInError: there is no session.
        PermissionDeniedError: ``acr`` is missing or another value (``requirement="acr"``).
    """
    allowed = frozenset(_required("requires_acr", values))

    def check(session: SessionData, _: RPKitRuntime) -> None:
        if session.id_token_claims.get("acr") not in allowed:
            raise PermissionDeniedError(f"acr is not one of {sorted(allowed)}", requirement="acr")

    return _guard(check)


def requires_recent_auth(max_age: int, *, clock: Callable[[], float] = time.time) -> Guard:
    """Allow users who authenticated at most ``max_age`` seconds ago (the ID token's
    ``auth_time``), with the provider's clock ``leeway`` as the core's ``max_age`` check allows.

    Args:
        max_age: seconds; positive, since 0 would ask for a new login on every request.
        clock: wall-clock seconds (injectable for tests).

    Raises (from the guard):
        NotSignedInError: there is no session.
        StepUpRequiredError: ``auth_time`` is missing or too old; browsers are sent to log in
            again with ``prompt=login`` and ``max_age``.
    """
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
        raise ConfigurationError("requires_recent_auth needs max_age > 0 (seconds)")

    def check(session: SessionData, runtime: RPKitRuntime) -> None:
        auth_time = session.id_token_claims.get("auth_time")
        if not _is_number(auth_time) or clock() - auth_time > max_age + _leeway(runtime, session):
            raise StepUpRequiredError(
                f"the last authentication is older than {max_age}s",
                provider_id=session.provider_id,
                max_age=max_age,
            )

    return _guard(check)


def _guard(check: Check | None, *, hint: str | None = None) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        runtime = _runtime(connection)
        view = await runtime.session_view(connection)  # who, without decoding the session
        if view is None:
            raise not_signed_in(runtime, hint)
        if check is not None:
            check(view.data(), runtime)

    return rpkit_guard(guard)


def _runtime(connection: ASGIConnection[Any, Any, Any, Any]) -> RPKitRuntime:
    try:
        return connection.app.plugins.get(RPKitPlugin).runtime
    except KeyError:
        msg = "rpkit guards need RPKitPlugin in the app's plugins"
        raise RuntimeError(msg) from None


def _leeway(runtime: RPKitRuntime, session: SessionData) -> int:
    configs = (p for p in runtime.config.providers if p.id == session.provider_id)
    return next((p.leeway for p in configs), 0)


def _required(factory: str, values: tuple[str, ...]) -> tuple[str, ...]:
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ConfigurationError(f"{factory} needs at least one non-empty string")
    return values


def _matches(claim: Any, value: Any) -> bool:
    if isinstance(claim, list | tuple):
        return any(_equal(item, value) for item in claim)
    return _equal(claim, value)


def _equal(claim: Any, value: Any) -> bool:
    # Python's True == 1: a claim of 1 must not satisfy a required True (or the reverse).
    return bool(claim == value) and isinstance(claim, bool) == isinstance(value, bool)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
