"""A fake OpenID Provider for testing relying parties, with a knob for every misbehaviour.

The OP answers :class:`httpx.Request` objects directly (:meth:`FakeOP.handle`), so it plugs into
the code under test's normal :class:`httpx.AsyncClient` through :meth:`FakeOP.transport` or respx,
and it is also an ASGI app (:attr:`FakeOP.asgi`) that :func:`rpkit.testing.serve` runs on
127.0.0.1.

Example:
    >>> import httpx
    >>> from rpkit.testing import FakeOP
    >>> op = FakeOP()
    >>> http = httpx.AsyncClient(transport=op.transport())
    >>> # await http.get(op.issuer + "/.well-known/openid-configuration")
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx

from rpkit.testing import _authorize, _issue, _resources, _routes, _tenants
from rpkit.testing._asgi import asgi_app
from rpkit.testing._logout import LogoutDefect, mint_logout_token
from rpkit.testing._oauth2 import JSONSource, github_profile
from rpkit.testing._par_dpop import PushedAuthorization
from rpkit.testing._routes import DISCOVERY_PATH
from rpkit.testing._token import new_refresh_token
from rpkit.testing.browser import AuthorizationResponse
from rpkit.testing.keys import KeyRing
from rpkit.testing.knobs import Endpoint, Misbehaviour
from rpkit.testing.minter import TokenMinter
from rpkit.testing.oracle import Oracle
from rpkit.testing.personality import Personality
from rpkit.testing.registry import CodeGrant, FakeClient, FakeUser, TokenGrant, default_users

if TYPE_CHECKING:
    from rpkit.config import ProviderConfig
    from rpkit.testing.transport import FakeOPTransport

__all__ = ["DEFAULT_ISSUER", "DISCOVERY_PATH", "FakeOP", "OPKind"]

DEFAULT_ISSUER = "https://op.rpkit.test"
OPKind = Literal["oidc", "oauth2"]
"""``oidc``: an OpenID Provider. ``oauth2``: an OAuth 2.0-only provider (GitHub-style), with no
discovery, no ID token, and the identity at a bearer-protected profile endpoint."""


class FakeOP:
    """An in-process OpenID Provider that auto-approves a configured user (or, with
    ``choose_user``, lets the person at the browser pick one).

    Args:
        issuer: the exact issuer string; endpoints live under it. With ``multi_tenant``, the
            base of the issuer template.
        clients: registered clients; one default confidential client when None.
        users: known users; Alice and Bob when None. The first signs in unless
            :meth:`login_as` or a matching ``login_hint`` picks another.
        random_paths: put a random segment in every endpoint path, so an RP that guesses paths
            instead of reading discovery fails (row 1).
        require_pkce: refuse authorization requests without ``code_challenge``.
        issue_refresh_tokens: include a refresh token in code exchanges; None means yes for
            ``oidc`` and no for ``oauth2`` (GitHub's default).
        code_lifetime: seconds an authorization code stays redeemable.
        access_token_lifetime: ``expires_in`` of access tokens, in seconds.
        id_token_lifetime: seconds between an ID token's ``iat`` and ``exp``.
        jwks_max_age: ``Cache-Control: max-age`` of the JWKS response.
        metadata_max_age: ``Cache-Control: max-age`` of the discovery document.
        kind: ``oauth2`` for an OAuth 2.0-only provider: no discovery (404), no JWKS, no
            ``openid`` scope needed, token responses with ``token_type: bearer`` and no
            ``id_token``, no RFC 9207 ``iss`` in the callback, and the identity at
            ``{issuer}{profile_path}``.
        profile: ``oauth2`` only: the profile endpoint's JSON for a user (any shape);
            :func:`~rpkit.testing.github_profile` when None.
        profile_path: ``oauth2`` only: the profile endpoint's path under the issuer.
        extra_json: more bearer-protected GET endpoints, path under the issuer → JSON for the
            user (GitHub's ``/user/emails``); the oracle names them all ``extra``.
        multi_tenant: be a multi-tenant issuer, as Entra ID is: discovery at
            ``{issuer}/common/v2.0`` and ``/organizations/v2.0`` publishes
            :attr:`issuer_template`, and tokens carry the user's ``tid``, ``oid`` and tenant
            ``iss``.
        echo_nonce: put the request's ``nonce`` in the ID token; False omits it (LinkedIn).
        first_login_user_field: add Apple's ``user`` parameter (JSON name and email) to the
            authorization response of each user's first login at each client.
        personality: a real provider's shapes (:mod:`rpkit.testing.providers` sets it).
        choose_user: answer an authorization request that has no ``login_hint`` (and no
            ``prompt=none``) with a small login page listing the users, each a link that
            repeats the request with ``login_hint`` set to that user's ``sub``: for a person
            trying an app by hand. :meth:`approve` follows the current user's link, so tests
            work either way (the oracle then records two ``authorize`` requests).
        par: advertise the pushed authorization request endpoint (RFC 9126); it is served
            either way.
        require_par: advertise ``require_pushed_authorization_requests`` and refuse an
            authorization request that was not pushed.
        par_lifetime: ``expires_in`` of a pushed request's ``request_uri``, in seconds.

    Raises:
        ValueError: options that contradict each other or the kind.
    """

    def __init__(
        self,
        issuer: str = DEFAULT_ISSUER,
        *,
        clients: list[FakeClient] | None = None,
        users: list[FakeUser] | None = None,
        random_paths: bool = False,
        require_pkce: bool = True,
        issue_refresh_tokens: bool | None = None,
        code_lifetime: int = 60,
        access_token_lifetime: int = 3600,
        id_token_lifetime: int = 300,
        jwks_max_age: int = 300,
        metadata_max_age: int = 3600,
        kind: OPKind = "oidc",
        profile: JSONSource | None = None,
        profile_path: str = "/user",
        extra_json: Mapping[str, JSONSource] | None = None,
        multi_tenant: bool = False,
        echo_nonce: bool = True,
        first_login_user_field: bool = False,
        personality: Personality | None = None,
        choose_user: bool = False,
        par: bool = False,
        require_par: bool = False,
        par_lifetime: int = 60,
    ) -> None:
        _routes.check_options(kind, profile=profile, multi_tenant=multi_tenant)
        self.issuer = issuer
        self.kind: OPKind = kind
        self.clients = {c.client_id: c for c in clients or [FakeClient()]}
        self.users = {u.sub: u for u in users or default_users()}
        self.current_user = next(iter(self.users.values()))
        self.require_pkce = require_pkce
        refreshing = kind == "oidc" if issue_refresh_tokens is None else issue_refresh_tokens
        self.issue_refresh_tokens = refreshing
        self.code_lifetime = code_lifetime
        self.access_token_lifetime = access_token_lifetime
        self.id_token_lifetime = id_token_lifetime
        self.jwks_max_age = jwks_max_age
        self.metadata_max_age = metadata_max_age
        self.profile: JSONSource = profile or github_profile
        self.profile_path = profile_path
        self.extra_json: dict[str, JSONSource] = dict(extra_json or {})
        template = _tenants.issuer_template(issuer.rstrip("/"))
        self.issuer_template = template if multi_tenant else None
        """``{issuer}/{tenantid}/v2.0`` for a multi-tenant OP (the ``issuer`` its discovery
        publishes), else None."""
        self.echo_nonce = echo_nonce
        self.first_login_user_field = first_login_user_field
        self.choose_user = choose_user
        """Show the login page that lists the users when no ``login_hint`` picks one."""
        self.authorization_response_iss = kind == "oidc" and not multi_tenant
        """Whether callbacks carry the RFC 9207 ``iss`` and discovery advertises it."""
        self.personality = personality or Personality()
        """How this fake's honest answers are shaped (a real provider's fake sets it)."""
        self.misbehave = Misbehaviour()
        """The knobs; see :class:`rpkit.testing.Misbehaviour`."""
        self.oracle = Oracle()
        """Every request received; see :class:`rpkit.testing.Oracle`."""
        self.keys = KeyRing()
        self.minter = TokenMinter(self.issuer, self.keys, clock=self.now)
        self.codes: dict[str, CodeGrant] = {}
        self.refresh_tokens: dict[str, TokenGrant] = {}
        self.access_tokens: dict[str, TokenGrant] = {}
        self.sessions: dict[str, tuple[str, set[str]]] = {}
        """OP session id (``sid``) → (``sub``, client ids that took part)."""
        self.consents: set[tuple[str, str]] = set()
        """(client id, ``sub``) of every login so far; clear it to make the next one a first."""
        self.seen_assertion_ids: set[str] = set()
        self._start_par_dpop(par=par or require_par, require=require_par, lifetime=par_lifetime)
        self._paths = _routes.build_paths(self, random_paths=random_paths)
        self.endpoints: dict[Endpoint, str] = {}
        """Endpoint name → absolute URL (the first path of each; ``extra`` is left out)."""
        for path, endpoint in self._paths.items():
            if endpoint != "extra":
                self.endpoints.setdefault(endpoint, self.origin + path)

    def _start_par_dpop(self, *, par: bool, require: bool, lifetime: int) -> None:
        self.par = par
        """Whether discovery advertises the PAR endpoint (RFC 9126 §5)."""
        self.require_par = require
        self.par_lifetime = lifetime
        self.pushed: dict[str, PushedAuthorization] = {}
        """Pushed authorization requests by ``request_uri`` (RFC 9126), until used."""
        self.dpop_nonce = secrets.token_urlsafe(16)
        """The nonce DPoP proofs must carry under the ``dpop_nonce`` knob (RFC 9449 §8)."""
        self.seen_dpop_jtis: set[str] = set()

    # -- time, users, sessions -----------------------------------------------------------------
    def now(self) -> int:
        """The OP's clock, shifted by ``misbehave.clock_offset``."""
        return int(time.time()) + self.misbehave.clock_offset

    def login_as(self, user: FakeUser | str) -> FakeUser:
        """Make ``user`` (an object or a known ``sub``) the one the next authorization signs in."""
        if isinstance(user, str):
            user = self.users[user]
        self.users.setdefault(user.sub, user)
        self.current_user = user
        return user

    def user_for_hint(self, login_hint: str | None) -> FakeUser:
        """The user a ``login_hint`` names (by ``sub`` or email), else the current user."""
        for user in self.users.values():
            if login_hint and login_hint in (user.sub, user.claims.get("email")):
                return user
        return self.current_user

    def start_session(self, user: FakeUser, client_id: str) -> str:
        """Open an OP session for ``user`` and return its ``sid``."""
        sid = secrets.token_urlsafe(12)
        self.sessions[sid] = (user.sub, {client_id})
        return sid

    def end_session(self, sid: str) -> None:
        """End an OP session and revoke the refresh and access tokens issued in it."""
        self.sessions.pop(sid, None)
        for grant in [*self.refresh_tokens.values(), *self.access_tokens.values()]:
            if grant.sid == sid:
                grant.revoked = True

    def provider_config(
        self, id: str = "fake", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """An rpkit :class:`~rpkit.config.ProviderConfig` for this OP and one of its clients
        (the first registered one by default): its id, secret, authentication method and
        algorithms. ``changes`` win; a served OP (``http://127.0.0.1``) needs
        ``allow_insecure_http=True``, stated explicitly as in any configuration. A multi-tenant
        OP's configuration has :attr:`issuer_template` and :attr:`discovery_url`; pass
        ``tenants=`` yourself.

        Example:
            >>> from rpkit.testing import FakeOP
            >>> config = FakeOP().provider_config(scopes=("openid", "offline_access"))

        Raises:
            ValueError: an ``oauth2`` OP; configure the client from :meth:`endpoint_urls`.
        """
        from rpkit.config import ProviderConfig  # noqa: PLC0415 - no import cycle at load time

        if self.kind == "oauth2":
            msg = "an OAuth 2.0-only FakeOP has no OpenID configuration: use endpoint_urls()"
            raise ValueError(msg)

        client = self.clients[client_id or next(iter(self.clients))]
        keyless = client.token_endpoint_auth_method in ("none", "private_key_jwt")
        settings: dict[str, Any] = {
            "id": id,
            "issuer": self.issuer,
            "client_id": client.client_id,
            "client_secret": None if keyless else client.client_secret,
            "client_auth": client.token_endpoint_auth_method,
            "id_token_signed_response_alg": client.id_token_signed_response_alg,
            "userinfo_signed_response_alg": client.userinfo_signed_response_alg,
        }
        if self.issuer_template:
            settings |= {"issuer": self.issuer_template, "discovery_url": self.discovery_url}
        return ProviderConfig(**(settings | changes))

    def endpoint_urls(self) -> dict[str, str]:
        """The URLs a client configures when it does not read discovery, named as in
        discovery metadata: ``authorization_endpoint``, ``token_endpoint`` and
        ``profile_endpoint`` (UserInfo for an OpenID Provider), plus ``jwks_uri`` and
        ``end_session_endpoint`` for an OpenID Provider.

        Example:
            >>> from rpkit.testing import FakeOP
            >>> FakeOP(kind="oauth2").endpoint_urls()["profile_endpoint"]
            'https://op.rpkit.test/user'
        """
        return _routes.endpoint_urls(self)

    @property
    def discovery_url(self) -> str | None:
        """Where an RP fetches discovery: ``{issuer}/.well-known/openid-configuration``, or
        ``{issuer}/common/v2.0/.well-known/openid-configuration`` for a multi-tenant OP; None
        for an ``oauth2`` OP."""
        return self.endpoints.get("discovery")

    def issuer_for(self, user: FakeUser) -> str:
        """The ``iss`` of ``user``'s tokens: the issuer, or for a multi-tenant OP the template
        filled with the user's tenant."""
        if self.issuer_template is None:
            return self.issuer
        return str(_tenants.tenant_claims(self.issuer_template, user)["iss"])

    def register_client(self, client: FakeClient) -> FakeClient:
        """Add or replace a registered client."""
        self.clients[client.client_id] = client
        return client

    @contextlib.contextmanager
    def misbehaving(self, **knobs: Any) -> Iterator[Misbehaviour]:
        """Set knobs for the ``with`` block, then restore the previous ones.

        Raises:
            TypeError: a knob name that :class:`Misbehaviour` does not have.
        """
        previous = self.misbehave
        # Copy each knob, so that editing a knob's dict inside the block leaves ``previous`` alone.
        copies = {f.name: copy.copy(getattr(previous, f.name)) for f in fields(previous)}
        self.misbehave = replace(previous, **(copies | knobs))
        try:
            yield self.misbehave
        finally:
            self.misbehave = previous

    def reset(self) -> None:
        """Honest again: every knob back to its default, and the oracle cleared."""
        self.misbehave = Misbehaviour()
        self.oracle.clear()

    # -- issuing (the work is in _issue.py) ----------------------------------------------------
    def issue_access_token(
        self, client: FakeClient, user: FakeUser | None, scope: str, sid: str | None = None
    ) -> str:
        """A JWT access token, remembered for UserInfo; ending OP session ``sid`` revokes it."""
        return _issue.access_token(self, client, user, scope, sid)

    def issue_id_token(
        self,
        client: FakeClient,
        grant: TokenGrant,
        access_token: str,
        *,
        nonce: str | None,
        refreshing: bool,
    ) -> str:
        """An ID token for ``grant``, after the ID-token knobs."""
        return _issue.id_token(self, client, grant, access_token, nonce, refreshing=refreshing)

    def id_token_claims(
        self, client: FakeClient, grant: TokenGrant, access_token: str, alg: str, nonce: str | None
    ) -> dict[str, Any]:
        """The honest claims of an ID token, before any knob."""
        return _issue.id_token_claims(self, client, grant, access_token, alg, nonce=nonce)

    def store_refresh_token(self, grant: TokenGrant) -> str:
        """Remember ``grant`` under a new refresh token."""
        refresh = new_refresh_token()
        self.refresh_tokens[refresh] = grant
        return refresh

    def front_channel_tokens(
        self, grant: CodeGrant, kinds: frozenset[str]
    ) -> list[tuple[str, str]]:
        """Tokens leaked into the authorization response (row 15)."""
        return _issue.front_channel_tokens(self, grant, kinds)

    def verify_own_token(self, token: str) -> dict[str, Any] | None:
        """Claims of a token this OP signed, with a current or retired key or a client's secret
        for HS*, else None. Expiry is not checked (an expired ``id_token_hint`` is fine)."""
        return _issue.verify_own_token(self, token)

    # -- what a browser or the OP's back channel does ----------------------------------------
    async def approve(self, authorization_url: str) -> AuthorizationResponse:
        """Visit ``authorization_url`` as the browser would and return the OP's answer: the
        callback to deliver to the RP (or a bounce, or an error page). On the login page of
        ``choose_user``, pick the current user as a person would."""
        response = await self.handle(httpx.Request("GET", authorization_url))
        if self.choose_user and response.status_code == 200:
            chosen = _authorize.chosen_user_url(response.text, self.current_user.sub)
            if chosen is not None:
                response = await self.handle(httpx.Request("GET", chosen))
        return AuthorizationResponse.from_response(response)

    def logout_token(
        self,
        client_id: str | None = None,
        *,
        sub: str | None = None,
        sid: str | None = None,
        defect: LogoutDefect | None = None,
    ) -> str:
        """A back-channel logout token (row 53), or a malformed one (row 54). With neither
        ``sub`` nor ``sid``, it names the most recent OP session and its user."""
        client_id = client_id or next(iter(self.clients))
        if sub is None and sid is None:
            if not self.sessions:
                msg = "no OP session to log out: pass sub= or sid=, or sign a user in first"
                raise ValueError(msg)
            sid = next(reversed(self.sessions))
            sub = self.sessions[sid][0]
        return mint_logout_token(self, client_id, sub=sub, sid=sid, defect=defect)

    async def send_backchannel_logout(
        self, http: httpx.AsyncClient, token: str, client_id: str | None = None
    ) -> httpx.Response:
        """POST ``logout_token`` to the client's ``backchannel_logout_uri`` through ``http``
        (for example the RP app's test client), as the OP's back channel would."""
        client = self.clients[client_id or next(iter(self.clients))]
        if client.backchannel_logout_uri is None:
            msg = f"client {client.client_id!r} has no backchannel_logout_uri"
            raise ValueError(msg)
        return await http.post(client.backchannel_logout_uri, data={"logout_token": token})

    # -- HTTP -------------------------------------------------------------------------------
    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one HTTP request, as the OP's server would."""
        return await _routes.answer(self, request, self._paths)

    def serve_at(self, paths: Mapping[Endpoint, str | None]) -> None:
        """Serve endpoints at a real provider's own paths (absolute paths on this fake's
        origin, e.g. Keycloak's ``/realms/x/protocol/openid-connect/token``); None stops
        serving one. :attr:`endpoints`, and so the discovery document, follow."""
        self._paths = {p: e for p, e in self._paths.items() if e not in paths}
        for endpoint, moved in paths.items():
            if moved is not None:
                self._paths[moved] = endpoint
                self.endpoints[endpoint] = self.origin + moved

    def transport(self, *others: FakeOP) -> FakeOPTransport:
        """An httpx transport that routes to this OP (and ``others``, at every origin each
        answers at) by origin."""
        from rpkit.testing.transport import FakeOPTransport  # noqa: PLC0415 - avoids a cycle

        transport = FakeOPTransport(self)
        for other in others:
            transport.include(other.transport())
        return transport

    @property
    def origin(self) -> str:
        """Scheme, host and port of the issuer."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def asgi(self) -> Any:
        """This OP as an ASGI application (for uvicorn or any ASGI server)."""
        return asgi_app(self)

    def metadata(self) -> dict[str, Any]:
        """The discovery document as it would be served now.

        Raises:
            ValueError: an ``oauth2`` OP, which has none.
        """
        if self.kind == "oauth2":
            msg = "an OAuth 2.0-only FakeOP has no discovery document"
            raise ValueError(msg)
        return _resources.metadata(self)

    def knob_names(self) -> list[str]:
        """Every knob of :class:`Misbehaviour`."""
        return [f.name for f in fields(Misbehaviour)]
