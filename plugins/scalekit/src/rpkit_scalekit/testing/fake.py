"""A fake Scalekit environment that speaks Scalekit's REST and OAuth wire protocol.

:class:`FakeScalekit` answers :class:`httpx.Request` objects directly (:meth:`FakeScalekit.handle`),
so it runs in-process behind an httpx transport — alone or next to rpkit's
:class:`~rpkit.testing.FakeOP` in one :class:`~rpkit.testing.FakeOPTransport` — and as an ASGI
app (:attr:`FakeScalekit.asgi`) that :func:`~rpkit_scalekit.testing.serve_scalekit` runs on
127.0.0.1 (scalekit-sdk.md §8).

Example:
    >>> import httpx
    >>> from rpkit_scalekit.testing import FakeScalekit
    >>> fake = FakeScalekit()
    >>> http = httpx.AsyncClient(transport=fake.transport())
    >>> # await http.post(fake.issuer + "/oauth/token", data={...})
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from rpkit.testing import (
    AuthorizationResponse,
    FakeOPTransport,
    FakeServer,
    FakeUser,
    TokenMinter,
    asgi_app,
)
from rpkit_scalekit.testing import _dispatch, _mint, _oauth, _passwordless
from rpkit_scalekit.testing._directory import DirectoryMixin, FakeDirectory
from rpkit_scalekit.testing._wire import OAuthError, parse
from rpkit_scalekit.testing.events import EventsMixin
from rpkit_scalekit.testing.keys import ScalekitKeys
from rpkit_scalekit.testing.knobs import (
    Failure,
    OpenAnswers,
    PasswordlessSettings,
    ScalekitEndpoint,
    ScalekitKnobs,
)
from rpkit_scalekit.testing.outbox import Outbox
from rpkit_scalekit.testing.recording import RecordedCall, Recording
from rpkit_scalekit.testing.registry import (
    DEFAULT_ENV_URL,
    CodeGrant,
    Connection,
    FakeApplication,
    FakeOrganization,
    IssuedM2MToken,
    RefreshGrant,
    Route,
    ScalekitSession,
    default_connections,
    default_users,
    new_id,
)
from rpkit_scalekit.testing.webhooks import OutboundMessage, WebhookEndpoint

if TYPE_CHECKING:
    from rpkit.testing._asgi import ASGIApp

__all__ = ["FakeScalekit"]


class FakeScalekit(EventsMixin, DirectoryMixin):
    """An in-process Scalekit environment that auto-approves logins and never sends mail.

    Args:
        env_url: the environment URL; it is the issuer, and every endpoint lives under it.
        apps: the registered application(s); one default when None.
        users: known users; Alice (``alice@acme.test``) and Bob when None. A ``login_hint``
            naming an unknown address signs in a new user with that email.
        connections: the connection table; :func:`default_connections` when None.
        passwordless: dashboard settings and limits of headless passwordless.
        webhook_endpoints: webhook subscriptions; events go nowhere when empty.
        environment_id: ``environment_id`` of webhook envelopes.
        deliver_with: an httpx client that POSTs webhooks and back-channel logouts as soon as
            a request triggers them; when None they wait in :attr:`outbound` until
            :meth:`deliver`.
        dev_pages: serve the development mailbox at ``/_dev/outbox`` (HTML) and
            ``/_dev/outbox.json``.
        keys: the signing keys; a fresh RSA key when None (see :class:`ScalekitKeys` to share
            one pre-generated key among many fakes).
        user_management: True (full-stack auth): tokens' ``sub`` is the user's ``usr_...`` id,
            and ``GET /api/v1/users:search`` finds users by email, id or ``xuid``.
            False (modular SSO): ``sub`` is ``conn_<connection>;<email>``, as Scalekit sends it
            without user management.
        organizations: the organizations users can switch into (``prompt=select_account``
            with ``organization_id``); see :class:`FakeOrganization`.
        directories: the SCIM directories the Directory API serves; see
            :class:`~rpkit_scalekit.testing.FakeDirectory`.
    """

    def __init__(
        self,
        env_url: str = DEFAULT_ENV_URL,
        *,
        apps: list[FakeApplication] | None = None,
        users: list[FakeUser] | None = None,
        connections: list[Connection] | None = None,
        passwordless: PasswordlessSettings | None = None,
        webhook_endpoints: list[WebhookEndpoint] | None = None,
        environment_id: str = "env_000000000000000001",
        deliver_with: httpx.AsyncClient | None = None,
        dev_pages: bool = True,
        keys: ScalekitKeys | None = None,
        user_management: bool = True,
        organizations: list[FakeOrganization] | None = None,
        directories: list[FakeDirectory] | None = None,
    ) -> None:
        self.issuer = env_url.rstrip("/")
        self.apps = {a.client_id: a for a in apps or [FakeApplication()]}
        self.users = {u.sub: u for u in users or default_users()}
        self.current_user = next(iter(self.users.values()))
        self.connections = list(default_connections() if connections is None else connections)
        self.passwordless = passwordless or PasswordlessSettings()
        self.knobs = ScalekitKnobs()
        """Misbehaviours; see :class:`ScalekitKnobs`."""
        self.answers = OpenAnswers()
        """Answers to the open questions; see :class:`OpenAnswers`."""
        self.keys = keys or ScalekitKeys()
        self.minter = TokenMinter(self.issuer, self.keys, clock=self.now)
        self.recording = Recording()
        """Every request received; see :class:`Recording`."""
        self.outbox = Outbox()
        """Every passwordless email "sent"; see :class:`Outbox`."""
        self.webhook_endpoints = list(webhook_endpoints or [])
        self.environment_id = environment_id
        self.deliver_with = deliver_with
        self.outbound: list[OutboundMessage] = []
        """Webhooks and back-channel logouts emitted, delivered or pending."""
        self.dev_pages = dev_pages
        self.codes: dict[str, CodeGrant] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.sessions: dict[str, ScalekitSession] = {}
        self.m2m_tokens: dict[str, IssuedM2MToken] = {}
        self.auth_requests: dict[str, _passwordless.AuthRequest] = {}
        self.email_log: dict[str, list[int]] = {}
        """Lowercased address → fake-clock times of emails counted by the send limit."""
        self.base_path = urlsplit(self.issuer).path
        """The environment URL's path, under which every endpoint lives."""
        self.user_management = user_management
        self.organizations = {o.id: o for o in organizations or []}
        self.directories = {d.id: d for d in directories or []}

    # -- clock, users, routing -------------------------------------------------------------
    def now(self) -> int:
        """The fake's clock: wall time plus ``knobs.clock_offset``."""
        return int(time.time()) + self.knobs.clock_offset

    def advance(self, seconds: int) -> None:
        """Move the fake's clock forward (expiries and rate-limit windows follow)."""
        self.knobs.clock_offset += seconds

    def login_as(self, user: FakeUser | str) -> FakeUser:
        """Make ``user`` (an object, a known ``sub`` or email, in any letter case) the one the
        next login signs in."""
        if isinstance(user, str):
            wanted = user
            user = next(
                u for u in self.users.values() if wanted == u.sub or self._same_email(u, wanted)
            )
        self.users.setdefault(user.sub, user)
        self.current_user = user
        return user

    def add_connection(self, connection: Connection) -> Connection:
        """Add a row to the connection table (listing and routing both see it)."""
        self.connections.append(connection)
        return connection

    def route(
        self,
        *,
        connection_id: str | None = None,
        organization_id: str | None = None,
        provider: str | None = None,
        login_hint: str | None = None,
        domain_hint: str | None = None,
    ) -> Route:
        """Where an authorization request goes: ``connection_id`` > ``organization_id`` >
        ``provider`` > the domain of ``login_hint`` or ``domain_hint`` > the default
        (passwordless) connection.

        Raises:
            OAuthError: ``invalid_request`` for an unknown or inactive connection, an
                organization without one, or an unknown provider.
        """
        active = [c for c in self.connections if c.active]
        picks: list[tuple[Any, Any, Callable[[Connection], bool]]] = [
            ("connection_id", connection_id, lambda c: c.id == connection_id),
            ("organization_id", organization_id, lambda c: c.organization_id == organization_id),
            ("provider", provider, lambda c: (c.provider_key or "") == (provider or "").lower()),
        ]
        for kind, wanted, matches in picks:
            if wanted:
                found = next((c for c in active if matches(c)), None)
                if found is None:
                    raise OAuthError("invalid_request", f"no active connection for {kind}={wanted}")
                return Route(kind, found.id, found.organization_id)
        domain = (login_hint or "").rpartition("@")[2].lower() or (domain_hint or "").lower()
        by_domain = next((c for c in active if domain and domain in c.domains), None)
        if by_domain is not None:
            return Route("domain", by_domain.id, by_domain.organization_id)
        default = next((c for c in active if c.type == "PASSWORDLESS"), None)
        return Route("default", default.id if default else "conn_hosted", None)

    def user_for(self, route: Route, login_hint: str | None) -> FakeUser:
        """Who signs in through ``route``: the connection's own user, else the hinted email (a
        new user if unknown), else the current user."""
        connection = next((c for c in self.connections if c.id == route.connection_id), None)
        if connection is not None and connection.user is not None:
            return connection.user
        if login_hint and "@" in login_hint:
            known = next((u for u in self.users.values() if self._same_email(u, login_hint)), None)
            if known is None:
                known = FakeUser(new_id("usr"), {"email": login_hint, "email_verified": True})
                self.users[known.sub] = known
            return known
        return self.current_user

    def user_by_email(self, email: str) -> FakeUser | None:
        """The known user with this address; Scalekit compares addresses case-insensitively."""
        return next((u for u in self.users.values() if self._same_email(u, email)), None)

    @staticmethod
    def _same_email(user: FakeUser, email: str) -> bool:
        known = user.claims.get("email")
        return isinstance(known, str) and known.lower() == email.lower()

    def start_session(self, user: FakeUser, client_id: str, route: Route) -> ScalekitSession:
        """Open a Scalekit session (``ses_…``) and announce ``user.login`` to webhooks."""
        session = ScalekitSession(new_id("ses"), user, client_id, route)
        self.sessions[session.sid] = session
        self.emit("user.login", self._event_user(session), organization_id=route.organization_id)
        return session

    def end_session(self, session: ScalekitSession) -> None:
        """Revoke ``session`` (its refresh tokens stop working), queue the back-channel logout
        and announce ``user.logout`` to webhooks."""
        session.revoked = True
        app = self.apps.get(session.client_id)
        if app is not None and app.backchannel_logout_uri:
            self.queue_backchannel_logout(app, _mint.logout_token(self, app, session))
        data = self._event_user(session)
        self.emit("user.logout", data, organization_id=session.route.organization_id)

    @staticmethod
    def _event_user(session: ScalekitSession) -> dict[str, Any]:
        return {
            "user_id": session.user.sub,
            "email": session.user.claims.get("email"),
            "session_id": session.sid,
            "connection_id": session.route.connection_id,
        }

    # -- knobs -------------------------------------------------------------------------------
    def rotate_keys(self, *, keep_previous: bool = True) -> str:
        """Sign with a fresh key from now on and return its ``kid``; ``keep_previous=False``
        also stops publishing the old one."""
        self.keys.rotate(keep_previous=keep_previous)
        return self.keys.signing_kid

    def fail_next(
        self, endpoint: ScalekitEndpoint, status: int = 503, *, times: int | None = 1, **rest: Any
    ) -> Failure:
        """Make ``endpoint`` answer ``status`` for the next ``times`` requests (every request
        when None); ``rest`` sets the other :class:`Failure` fields."""
        failure = Failure(status=status, times=times, **rest)
        self.knobs.fail[endpoint] = failure
        return failure

    def expire_passwordless(self, auth_request_id: str | None = None) -> None:
        """Expire one auth request's credentials now (every one when None)."""
        targets = (
            [self.auth_requests[auth_request_id]]
            if auth_request_id
            else self.auth_requests.values()
        )
        for auth in targets:
            auth.expires_at = self.now()

    def expire_m2m_tokens(self) -> None:
        """Make every management token issued so far answer 401 (as expired ones do)."""
        for issued in self.m2m_tokens.values():
            issued.revoked = True

    @contextlib.contextmanager
    def misbehaving(self, **knobs: Any) -> Iterator[ScalekitKnobs]:
        """Set :class:`ScalekitKnobs` fields for the ``with`` block, then restore them.

        Raises:
            TypeError: a name that is not a knob.
        """
        previous = self.knobs
        copies = {f.name: copy.copy(getattr(previous, f.name)) for f in fields(previous)}
        self.knobs = replace(previous, **(copies | knobs))
        try:
            yield self.knobs
        finally:
            self.knobs = previous

    def reset(self) -> None:
        """Honest again: knobs, answers and settings back to defaults; recording, outbox and
        outbound messages cleared (keys, users and issued grants are kept)."""
        self.knobs, self.answers = ScalekitKnobs(), OpenAnswers()
        self.passwordless = PasswordlessSettings()
        self.recording.clear()
        self.outbox.clear()
        self.outbound.clear()
        self.email_log.clear()

    # -- tokens -------------------------------------------------------------------------------
    def issue_m2m_token(
        self,
        app: FakeApplication | None = None,
        scopes: list[str] | None = None,
        *,
        resource: str | None = None,
    ) -> str:
        """A client-credentials token the management API accepts, as the token endpoint would
        issue it (for tests that skip the token request); ``resource`` (RFC 8707) becomes its
        ``aud``, as for an API or MCP resource."""
        app = app or next(iter(self.apps.values()))
        chosen = list(app.m2m_scopes) if scopes is None else scopes
        token, expires_at = _mint.m2m_token(self, app, chosen, resource)
        self.m2m_tokens[token] = IssuedM2MToken(app.client_id, chosen, expires_at)
        return token

    def management_headers(self) -> dict[str, str]:
        """``Authorization`` for the management API, with a freshly issued token."""
        return {"Authorization": f"Bearer {self.issue_m2m_token()}"}

    # -- HTTP ---------------------------------------------------------------------------------
    def endpoint_for(self, path: str) -> ScalekitEndpoint | None:
        """Which endpoint serves ``path`` (None: not found)."""
        return _dispatch.endpoint_for(self, path)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one HTTP request as Scalekit would, and record it."""
        req = await parse(request)
        endpoint = self.endpoint_for(req.url.path)
        call = self.recording.add(
            RecordedCall(
                endpoint,
                req.method,
                str(req.url),
                req.url.path,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                req.body,
                req.query,
                req.form,
                req.json,
                req.request_id,
            )
        )
        response, outcome = await _dispatch.answer(self, endpoint, req)
        call.status, call.outcome = response.status_code, outcome
        if self.deliver_with is not None and self.pending():
            await self.deliver()
        return response

    async def approve(self, authorization_url: str) -> AuthorizationResponse:
        """Visit ``authorization_url`` as the browser would; return the redirect back."""
        response = await self.handle(httpx.Request("GET", authorization_url))
        return AuthorizationResponse.from_response(response)

    def transport(self, *others: FakeServer) -> FakeOPTransport:
        """An httpx transport routing to this fake (and ``others``, e.g. a
        :class:`~rpkit.testing.FakeOP`) by origin; it honours the client's read timeout."""
        return FakeOPTransport(self, *others)

    @property
    def origin(self) -> str:
        """Scheme, host and port of the environment URL."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def asgi(self) -> ASGIApp:
        """This fake as an ASGI application (for uvicorn or any ASGI server)."""
        return asgi_app(self)

    def metadata(self) -> dict[str, Any]:
        """The discovery document as served now."""
        return _oauth.metadata(self)
