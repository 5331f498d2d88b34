"""``RPKitPlugin``: rpkit's core as a Litestar plugin.

It adds rpkit's routes, the dependencies ``rpkit``, ``rpkit_session`` and ``rpkit_user``, the
error table, and a lifespan that creates the one shared ``httpx.AsyncClient``, warms discovery
and keys best-effort, and closes the client. The application's own dependencies and exception
handlers always win over rpkit's.

Example:
    >>> from litestar import Litestar
    >>> from rpkit import ProviderConfig
    >>> from rpkit.litestar import RPKitConfig, RPKitPlugin
    >>> okta = ProviderConfig(id="okta", issuer="https://example.okta.com",
    ...                       client_id="0oa1", client_secret="s3cret")
    >>> rpkit = RPKitPlugin(RPKitConfig(providers=[okta], secret="x" * 32))
    >>> app = Litestar(plugins=[rpkit])
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import urlsplit

import click
import httpx
import msgspec
from litestar import Litestar, Request, Response
from litestar._parsers import parse_cookie_string
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.plugins import CLIPlugin, InitPlugin, ReceiveRoutePlugin
from litestar.routes.base import BaseRoute
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore as LitestarMemoryStore
from litestar.types import Message, Scope

from rpkit._log import get_logger
from rpkit.client import Identity, RelyingParty
from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError, NotSignedInError, RPKitError, UnknownProviderError
from rpkit.litestar._cookies import HandleCodec, binding_of
from rpkit.litestar._encoders import encode_read_only_claims
from rpkit.litestar._guard_hook import hoist_guards
from rpkit.litestar._locks import StoreLocks
from rpkit.litestar._store import LitestarKeyValueStore
from rpkit.litestar.config import RPKitConfig
from rpkit.litestar.frontchannel import log_frontchannel
from rpkit.litestar.handlers import build_router
from rpkit.litestar.responses import error_response
from rpkit.litestar.session import (
    CookieSessionManager,
    SessionData,
    SessionManager,
    SessionView,
)

__all__ = ["RPKitPlugin", "RPKitRuntime"]

AnyRequest = Request[Any, Any, Any]
TRANSACTION_COOKIE_LIFETIME = 600
_SESSION_STATE_KEY = "rpkit.session"
_PENDING_LOGINS = "rpkit:pending-logins:"


class RPKitRuntime:
    """What rpkit's handlers, dependencies and guards use at request time."""

    def __init__(self, config: RPKitConfig) -> None:
        self.config = config
        self.codec = HandleCodec(config.secret)
        self.handle_cookie = f"{config.cookie_prefix}rpkit_txn"
        self.session_cookie = f"{config.cookie_prefix}rpkit_session"
        self._rp: RelyingParty | None = None
        self._sessions: SessionManager | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def rp(self) -> RelyingParty:
        """The core relying party (available once the app has started)."""
        if self._rp is None:
            msg = "rpkit is not started: run the app (its lifespan creates the HTTP client)"
            raise RuntimeError(msg)
        return self._rp

    @property
    def http(self) -> httpx.AsyncClient:
        """The one shared HTTP client (available once the app has started), for plugins that
        talk to their provider's other APIs."""
        if self._http is None:
            msg = "rpkit is not started: run the app (its lifespan creates the HTTP client)"
            raise RuntimeError(msg)
        return self._http

    @property
    def sessions(self) -> SessionManager:
        """The session manager (available once the app has started)."""
        if self._sessions is None:
            msg = "rpkit is not started: run the app (its lifespan creates the HTTP client)"
            raise RuntimeError(msg)
        return self._sessions

    def start(self, app: Litestar, http: httpx.AsyncClient) -> None:
        """Build the core over the app's stores and the shared client."""
        self._http = http
        flows = LitestarKeyValueStore(app.stores.get(self.config.flows_store))
        sessions_store = app.stores.get(self.config.sessions_store)
        # Refreshes are single-flight across workers under locks in the sessions store. A lock
        # outlives the longest refresh (discovery, token and JWKS requests at worst); a waiter
        # gives up sooner and keeps the session's current tokens for this request.
        timeout = self.config.http_timeout
        locks = StoreLocks(sessions_store, ttl=3 * timeout + 5, wait=timeout + 5)
        self._rp = RelyingParty(
            self.config.providers,
            http=http,
            store=flows,
            lock_factory=locks,
            outbound_timeout=timeout,  # rpkit's own bound on every provider request
        )
        sessions = LitestarKeyValueStore(sessions_store)
        if self.config.session_backend == "cookie":
            self._sessions = CookieSessionManager(
                self.config, self._rp, sessions, cookie_name=self.session_cookie
            )
            return
        self._sessions = SessionManager(
            self.config,
            self._rp,
            sessions,
            on_refresh_failed=lambda data, exc: self.emit_app(
                app, "rpkit.refresh_failed", identity=data.identity, code=exc.code
            ),
        )

    def stop(self) -> None:
        self._http = None
        self._rp = None
        self._sessions = None

    def public_origin(self, request: AnyRequest) -> str:
        """``scheme://host[:port]`` users reach the app on: the configured ``base_url``, else the
        request's."""
        base = self.config.base_url or str(request.base_url)
        parts = urlsplit(base)
        return f"{parts.scheme}://{parts.netloc}"

    def url_for(self, request: AnyRequest, name: str, **params: Any) -> str:
        """An absolute URL of a named route, on the configured public origin if there is one."""
        base = self.config.base_url or str(request.base_url)
        return base.rstrip("/") + request.app.route_reverse(name, **params)

    def provider_for_issuer(self, issuer: str | None) -> str:
        """The id of the one configured provider whose issuer is exactly ``issuer``.

        Raises:
            UnknownProviderError: no configured provider has this issuer (nothing is fetched).
            ConfigurationError: several do; third-party logins cannot choose between them.
        """
        matches = [p.id for p in self.config.providers if issuer and p.issuer == issuer]
        if not matches:
            raise UnknownProviderError("no configured provider has this issuer")
        if len(matches) > 1:
            msg = (
                f"providers {matches} share this issuer: start the login at "
                f"{self.config.path}/login/<provider>"
            )
            raise ConfigurationError(msg)
        return matches[0]

    def browser_handle(self, request: AnyRequest) -> str | None:
        """The handle in this browser's transaction cookie, if it is genuine and current."""
        return self.codec.open(request.cookies.get(self.handle_cookie), self.handle_cookie)

    def _set_cookie(
        self,
        response: Response[Any],
        name: str,
        value: str,
        *,
        max_age: int,
        samesite: Literal["lax", "strict", "none"] = "lax",
        expires: int | None = None,
    ) -> None:
        """Every rpkit cookie: host-only, ``Path=/``, ``HttpOnly``, and ``Secure`` unless
        development cookies are on (what the ``__Host-`` prefix demands, deletions included)."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            expires=expires,
            path="/",
            secure=not self.config.insecure_cookies_for_development,
            httponly=True,
            samesite=samesite,
        )

    def set_handle_cookie(
        self, response: Response[Any], handle: str, provider: ProviderConfig
    ) -> None:
        """The short-lived transaction cookie: Lax for query responses, None for form_post."""
        samesite = self.config.transaction_samesite
        if samesite is None:
            samesite = "none" if provider.response_mode == "form_post" else "lax"
        sealed = self.codec.seal(handle, self.handle_cookie, TRANSACTION_COOKIE_LIFETIME)
        self._set_cookie(
            response,
            self.handle_cookie,
            sealed,
            max_age=TRANSACTION_COOKIE_LIFETIME,
            samesite=samesite,
        )

    def clear_cookie(self, response: Response[Any], name: str) -> None:
        """Expire one of rpkit's cookies. Browsers ignore any ``Set-Cookie`` for a ``__Host-``
        name without ``Secure`` and ``Path=/``, deletions included."""
        self._set_cookie(response, name, "", max_age=0, expires=0)

    async def _pending_logins(self, handle: str) -> tuple[str, list[str]]:
        """The store key and the states of this browser's pending logins."""
        key = _PENDING_LOGINS + binding_of(handle)
        return key, msgspec.json.decode(await self.rp.store.get(key) or b"[]", type=list[str])

    async def pend_login(
        self, response: Response[Any], handle: str, state: str, provider: ProviderConfig
    ) -> None:
        """Set the transaction cookie and remember that this browser has the login under
        ``state`` pending: several tabs may be signing in at once (row 63)."""
        key, pending = await self._pending_logins(handle)
        encoded = msgspec.json.encode([*pending[-15:], state])
        await self.rp.store.set(key, encoded, TRANSACTION_COOKIE_LIFETIME)
        self.set_handle_cookie(response, handle, provider)

    async def end_login(
        self, response: Response[Any], handle: str | None, state: str | None
    ) -> None:
        """Forget the login under ``state`` and delete the transaction cookie, unless another
        login of this browser is still pending: its callback needs the cookie (row 63)."""
        if handle is not None:
            key, pending = await self._pending_logins(handle)
            others = [s for s in pending if s != state]
            if others:
                encoded = msgspec.json.encode(others)
                await self.rp.store.set(key, encoded, TRANSACTION_COOKIE_LIFETIME)
                return
            await self.rp.store.delete(key)
        self.clear_cookie(response, self.handle_cookie)

    def set_session_cookie(self, response: Response[Any], session_id: str) -> None:
        """The session cookie: an opaque id, HttpOnly, Secure, host-only."""
        self._set_cookie(
            response,
            self.session_cookie,
            session_id,
            max_age=self.config.session_lifetime,
            samesite=self.config.session_samesite,
        )

    async def current_session(
        self, request: ASGIConnection[Any, Any, Any, Any]
    ) -> SessionData | None:
        """This request's session (loaded once per request, refreshed when due): of any
        connection, as it reads only the scope and its cookie."""
        view = await self.session_view(request)
        return None if view is None else view.data()

    async def session_view(self, request: ASGIConnection[Any, Any, Any, Any]) -> SessionView | None:
        """This request's session as a :class:`~rpkit.litestar.session.SessionView`: who is
        signed in without decoding the whole session (``requires_login()``, ``rpkit_user``).
        Loaded once per request, with :meth:`current_session`."""
        state = request.scope.setdefault("state", {})
        if _SESSION_STATE_KEY not in state:
            session_id = _cookie(request.scope, self.session_cookie)
            state[_SESSION_STATE_KEY] = await self.sessions.load_view(session_id)
        view: SessionView | None = state[_SESSION_STATE_KEY]
        return view

    def emit(self, request: AnyRequest, event_id: str, **kwargs: Any) -> None:
        """Emit a Litestar event if anyone listens (Litestar refuses events nobody listens to)."""
        self.emit_app(request.app, event_id, **kwargs)

    @staticmethod
    def emit_app(app: Litestar, event_id: str, **kwargs: Any) -> None:
        if event_id in getattr(app.event_emitter, "listeners", {}):
            app.emit(event_id, **kwargs)


class RPKitPlugin(InitPlugin, CLIPlugin, ReceiveRoutePlugin):
    """Sign users in with rpkit in a Litestar app. Reach it with
    ``app.plugins.get(RPKitPlugin)``."""

    __slots__ = ("config", "http_transport", "runtime", "sweep_interval")

    def __init__(
        self, config: RPKitConfig, *, http_transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """Args:
        config: the plugin's configuration.
        http_transport: the transport of the shared HTTP client; None for real network
            connections. Tests pass ``fake_op.transport()`` to reach the fake OP in-process.
        """
        self.config = config
        self.http_transport = http_transport
        self.runtime = RPKitRuntime(config)
        self.sweep_interval = 60.0
        """Seconds between sweeps of expired entries from in-process stores."""

    def on_cli_init(self, cli: click.Group) -> None:
        """Add ``litestar rpkit providers`` and ``litestar rpkit check``."""
        from rpkit.litestar.cli import build_cli_group  # noqa: PLC0415 - click only for the CLI

        cli.add_command(build_cli_group(type(self)))

    def receive_route(self, route: BaseRoute) -> None:
        """Run the route's rpkit guards from ``before_request`` when all its guards are
        rpkit's (:mod:`rpkit.litestar._guard_hook`): the same checks without Litestar's copy of
        the handler per guard and request."""
        hoist_guards(route)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        runtime = self.runtime
        app_config.route_handlers.append(build_router(runtime))
        app_config.lifespan.append(self._lifespan)
        ours = {
            "rpkit": Provide(lambda: runtime, sync_to_thread=False),
            "rpkit_session": Provide(_session_provider(runtime)),
            "rpkit_user": Provide(_user_provider(runtime)),
        }
        app_config.dependencies = {**ours, **dict(app_config.dependencies or {})}
        handlers: dict[int | type[Exception], Any] = {RPKitError: _error_handler(self.config)}
        app_config.exception_handlers = {**handlers, **dict(app_config.exception_handlers or {})}
        app_config.before_send.append(_private_when_signed_in)
        encode_read_only_claims(app_config)
        app_config.signature_namespace.update(
            {"RPKitRuntime": RPKitRuntime, "SessionData": SessionData, "Identity": Identity}
        )
        return app_config

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        timeout = httpx.Timeout(
            self.config.http_timeout, connect=min(5.0, self.config.http_timeout)
        )
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        async with httpx.AsyncClient(
            timeout=timeout, limits=limits, follow_redirects=False, transport=self.http_transport
        ) as http:
            self.runtime.start(app, http)
            self._warn_about_memory_stores(app)
            self._warn_about_relaxations()
            await self._warm()
            await log_frontchannel(self.runtime)
            sweeper = asyncio.create_task(self._sweep_expired(app), name="rpkit-store-sweeper")
            try:
                yield
            finally:
                sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweeper
                self.runtime.stop()

    async def _sweep_expired(self, app: Litestar) -> None:
        """Delete expired entries from rpkit's stores every ``sweep_interval`` seconds, where
        the store needs it: Litestar's memory and file stores drop an expired entry only when
        its key is read again, so every abandoned login would otherwise stay forever. Redis and
        Valkey expire keys themselves."""
        names = {self.config.flows_store, self.config.sessions_store}
        while True:
            await asyncio.sleep(self.sweep_interval)
            for name in names:
                store = app.stores.get(name)
                if isinstance(store, LitestarMemoryStore | FileStore):
                    try:
                        await store.delete_expired()
                    except OSError as exc:  # a file store's folder went away: try again later
                        get_logger().warning("rpkit.store.sweep_failed", store=name, error=str(exc))

    async def _warm(self) -> None:
        """Fetch discovery and keys now so the first login is fast; never fails startup."""
        rp = self.runtime.rp
        for provider_id in rp.providers:
            try:
                metadata = await rp.metadata(provider_id)
                if metadata.jwks_uri:  # an OAuth 2.0-only provider has no keys
                    await rp.jwks.warm(metadata.jwks_uri)
            except RPKitError as exc:
                get_logger(provider=provider_id).warning("rpkit.startup.warm_failed", code=exc.code)

    def _warn_about_relaxations(self) -> None:
        relaxed = []
        if self.config.insecure_cookies_for_development:
            relaxed.append("insecure_cookies_for_development: cookies without Secure or __Host-")
        if self.config.session_backend == "cookie":
            relaxed.append("session_backend='cookie': sessions cannot be revoked before expiry")
        for setting in relaxed:
            get_logger().warning("rpkit.startup.check_relaxed", setting=setting)

    def _warn_about_memory_stores(self, app: Litestar) -> None:
        if self.config.workers <= 1:
            return
        shared = [self.config.flows_store]
        if self.config.session_backend == "server":
            shared.append(self.config.sessions_store)
        for name in shared:
            if isinstance(app.stores.get(name), LitestarMemoryStore):
                get_logger().warning(
                    "rpkit.startup.memory_store",
                    store=name,
                    workers=self.config.workers,
                    advice="register a shared store (e.g. RedisStore) under this name",
                )


async def _private_when_signed_in(message: Message, scope: Scope) -> None:
    """A response that read the session (``rpkit_user``, ``rpkit_session``, a guard) and found
    someone signed in names who: it must never be stored by a shared cache or shown again by
    the browser's Back button after logout. Unless the handler set its own ``Cache-Control``,
    it gets ``private, no-store`` (and ``Vary: Cookie``)."""
    if message["type"] != "http.response.start":
        return
    state = scope.get("state")
    if not state or state.get(_SESSION_STATE_KEY) is None:
        return
    headers = message.get("headers")
    if type(headers) is not list:
        _make_private(MutableScopeHeaders.from_message(message))
        return
    # Litestar's own responses: a list of (name, value) byte pairs, names lower-case. This runs
    # on every signed-in response, so no header map is built for it.
    for name, _ in headers:
        if name.lower() == b"cache-control":
            return
    headers.append((b"cache-control", b"private, no-store"))
    headers.append((b"vary", b"Cookie"))


def _make_private(headers: MutableScopeHeaders) -> None:
    if "cache-control" not in headers:
        headers["Cache-Control"] = "private, no-store"
        headers.add("Vary", "Cookie")


def _cookie(scope: Scope, name: str) -> str | None:
    """Cookie ``name`` exactly as ``request.cookies`` reads it (Litestar's parser over the first
    ``Cookie`` header), without building the request's header map: the session route reads
    only this one cookie."""
    for key, value in scope["headers"]:
        if key == b"cookie":  # ASGI servers lower-case header names
            return parse_cookie_string(value.decode("latin-1")).get(name)
    return None


def _user_provider(runtime: RPKitRuntime) -> Any:
    async def rpkit_user(request: AnyRequest) -> Identity | None:
        view = await runtime.session_view(request)
        if view is not None:
            return view.identity
        _refuse_if_required(runtime, request, "rpkit_user")
        return None

    return rpkit_user


def _session_provider(runtime: RPKitRuntime) -> Any:
    async def rpkit_session(request: AnyRequest) -> SessionData | None:
        data = await runtime.current_session(request)
        if data is None:
            _refuse_if_required(runtime, request, "rpkit_session")
        return data

    return rpkit_session


def _refuse_if_required(runtime: RPKitRuntime, request: AnyRequest, name: str) -> None:
    """A handler that declares ``rpkit_user: NamedDependency[Identity]`` (not ``Identity |
    None``) needs a signed-in user: answer as :func:`~rpkit.litestar.guards.requires_login`
    does (a login redirect for a browser, 401 otherwise) rather than let Litestar's signature
    check turn the missing user into a 500. Runs only when nobody is signed in."""
    handler = request.scope.get("route_handler")
    if handler is not None and _requires(handler, name):
        raise not_signed_in(runtime)


def _requires(handler: Any, name: str) -> bool:
    """The handler, or one of the dependencies it resolves, declares ``name`` without
    ``| None``."""
    signatures = [getattr(handler, "parsed_fn_signature", None)]
    resolve = getattr(handler, "resolve_dependencies", None)
    if resolve is not None:
        signatures += [getattr(p, "parsed_fn_signature", None) for p in resolve().values()]
    for signature in signatures:
        declared = signature.parameters.get(name) if signature is not None else None
        if declared is not None and not declared.is_optional:
            return True
    return False


def not_signed_in(runtime: RPKitRuntime, hint: str | None = None) -> NotSignedInError:
    """The refusal of a route that needs a signed-in user, naming the provider to sign in with
    when ``hint`` gives one or only one is configured."""
    providers = runtime.config.providers
    only = providers[0].id if len(providers) == 1 else None
    return NotSignedInError("this route needs a signed-in user", provider_id=hint or only)


def _error_handler(config: RPKitConfig) -> Any:
    def handle(request: AnyRequest, exc: RPKitError) -> Response[Any]:
        return error_response(
            request, exc, error_page=config.error_page, login_page=config.login_page
        )

    return handle
