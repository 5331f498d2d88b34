"""rpkit's guards without Litestar's per-guard copy of the route handler.

Litestar runs a route's guards as ``await guard(request, copy(handler))``: one shallow copy of
the handler per guard and request (about 9 µs on the benchmark machine, a third of a signed-in
route's cost over a bare one; ``bench/routes.py``). rpkit's guards never use that copy; they
read the session (or the bearer token) and, for the RFC 9728 exemption, the handler's ``opt``.

When every guard a route handler resolves (from the app, routers, controller and handler) is
one of rpkit's, :func:`hoist_guards` runs them instead, in the same order and with the same
request, as the first step of the handler's ``before_request`` hook, which Litestar calls right
after the guards and before dependencies, the request body and the handler; the route's own
``before_request`` (if any) runs after them, as it would after guards. Nothing else changes:
the same checks, the same errors and answers.

A handler is left to Litestar's guards (correct, just slower) when moving the checks could
change what runs first or at all:

* any guard is not rpkit's: a user's guard may rely on ``requires_login()`` having run first;
* the handler caches responses (``cache=``): Litestar serves a cached response before
  ``before_request``, so only a guard may stand in front of it;
* the route is not a plain HTTP route, or the handler class overrides how guards or hooks are
  resolved or run, or this Litestar keeps them elsewhere (checked on the handler after the
  change: if Litestar would not run the hook or would still run the guards, it is undone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from litestar.handlers import HTTPRouteHandler
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from litestar import Request
    from litestar.routes.base import BaseRoute

__all__ = ["hoist_guards", "rpkit_guard"]

_MARK = "__rpkit_guard__"
_HOOKED = "__rpkit_guards_hook__"

F = TypeVar("F", bound="Callable[..., Any]")


def rpkit_guard(guard: F) -> F:
    """Mark ``guard`` as one of rpkit's: it reads only the request and the handler's ``opt``,
    never changes the handler and may run from ``before_request``."""
    setattr(guard, _MARK, True)
    return guard


def hoist_guards(route: BaseRoute) -> None:
    """Run the rpkit guards of ``route``'s handlers from ``before_request`` where that is safe
    (see the module)."""
    if type(route) is HTTPRoute:
        for handler in route.route_handlers:
            _hoist(handler)


def _hoist(handler: HTTPRouteHandler) -> None:
    cls = type(handler)
    if (
        handler.cache
        or cls.authorize_connection is not BaseRouteHandler.authorize_connection
        or cls.resolve_guards is not BaseRouteHandler.resolve_guards
        or cls.resolve_before_request is not HTTPRouteHandler.resolve_before_request
        or not hasattr(handler, "_resolved_guards")
        or not hasattr(handler, "_resolved_before_request")
    ):
        return
    guards = tuple(handler.resolve_guards())
    if not guards or not all(getattr(guard, _MARK, False) for guard in guards):
        return
    then = handler.resolve_before_request()
    if getattr(then, _HOOKED, False):  # already done (a route seen twice)
        return
    hook = _before_request(guards, handler, then)
    resolved_guards, resolved_hook = handler._resolved_guards, handler._resolved_before_request
    handler._resolved_guards = []
    handler._resolved_before_request = hook
    if handler.resolve_guards() or handler.resolve_before_request() is not hook:
        handler._resolved_guards = resolved_guards
        handler._resolved_before_request = resolved_hook  # Litestar would not honour it


def _before_request(
    guards: Sequence[Callable[..., Any]], handler: HTTPRouteHandler, then: Any
) -> Callable[[Request[Any, Any, Any]], Any]:
    async def rpkit_guards(request: Request[Any, Any, Any]) -> Any:
        # The handler Litestar is running (a copy, when it copied the one it hooked), as a
        # guard would get it: the RFC 9728 exemption reads its ``opt``.
        running = request.scope.get("route_handler", handler)
        for guard in guards:
            await guard(request, running)
        return None if then is None else await then(request)

    setattr(rpkit_guards, _HOOKED, True)
    return rpkit_guards
