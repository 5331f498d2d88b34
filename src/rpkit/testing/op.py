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

import asyncio
import contextlib
import copy
import secrets
import time
from collections.abc import Iterator
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from rpkit.testing import _authorize, _resources, _token
from rpkit.testing._asgi import asgi_app
from rpkit.testing._http import OAuthError, OPRequest, html_response, parse
from rpkit.testing._jose import decode_unverified, half_hash, verify_compact
from rpkit.testing._logout import LogoutDefect, mint_logout_token
from rpkit.testing.browser import AuthorizationResponse
from rpkit.testing.keys import KeyRing
from rpkit.testing.knobs import Endpoint, Misbehaviour, apply_edits
from rpkit.testing.minter import TokenMinter
from rpkit.testing.oracle import Oracle, RecordedRequest
from rpkit.testing.registry import CodeGrant, FakeClient, FakeUser, TokenGrant, default_users

if TYPE_CHECKING:
    from rpkit.config import ProviderConfig
    from rpkit.testing.transport import FakeOPTransport

__all__ = ["DEFAULT_ISSUER", "FakeOP"]

DEFAULT_ISSUER = "https://op.rpkit.test"
DISCOVERY_PATH = "/.well-known/openid-configuration"
_HANDLERS = {
    "discovery": _resources.discovery,
    "jwks": _resources.jwks,
    "userinfo": _resources.userinfo,
    "authorize": _authorize.authorize,
    "end_session": _authorize.end_session,
    "token": _token.token,
}


class FakeOP:
    """An in-process OpenID Provider that auto-approves a configured user.

    Args:
        issuer: the exact issuer string; endpoints live under it.
        clients: registered clients; one default confidential client when None.
        users: known users; Alice and Bob when None. The first signs in unless
            :meth:`login_as` or a matching ``login_hint`` picks another.
        random_paths: put a random segment in every endpoint path, so an RP that guesses paths
            instead of reading discovery fails (row 1).
        require_pkce: refuse authorization requests without ``code_challenge``.
        issue_refresh_tokens: include a refresh token in code exchanges.
        code_lifetime: seconds an authorization code stays redeemable.
        access_token_lifetime: ``expires_in`` of access tokens, in seconds.
        id_token_lifetime: seconds between an ID token's ``iat`` and ``exp``.
        jwks_max_age: ``Cache-Control: max-age`` of the JWKS response.
        metadata_max_age: ``Cache-Control: max-age`` of the discovery document.
    """

    def __init__(
        self,
        issuer: str = DEFAULT_ISSUER,
        *,
        clients: list[FakeClient] | None = None,
        users: list[FakeUser] | None = None,
        random_paths: bool = False,
        require_pkce: bool = True,
        issue_refresh_tokens: bool = True,
        code_lifetime: int = 60,
        access_token_lifetime: int = 3600,
        id_token_lifetime: int = 300,
        jwks_max_age: int = 300,
        metadata_max_age: int = 3600,
    ) -> None:
        self.issuer = issuer
        self.clients = {c.client_id: c for c in clients or [FakeClient()]}
        self.users = {u.sub: u for u in users or default_users()}
        self.current_user = next(iter(self.users.values()))
        self.require_pkce = require_pkce
        self.issue_refresh_tokens = issue_refresh_tokens
        self.code_lifetime = code_lifetime
        self.access_token_lifetime = access_token_lifetime
        self.id_token_lifetime = id_token_lifetime
        self.jwks_max_age = jwks_max_age
        self.metadata_max_age = metadata_max_age
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
        self.seen_assertion_ids: set[str] = set()
        prefix = f"/{secrets.token_hex(6)}" if random_paths else ""
        base_path = urlsplit(self.issuer).path.rstrip("/")
        self._paths: dict[str, Endpoint] = {f"{base_path}{DISCOVERY_PATH}": "discovery"}
        names: tuple[Endpoint, ...] = ("authorize", "token", "userinfo", "jwks", "end_session")
        self._paths |= {f"{base_path}{prefix}/{name}": name for name in names}
        self.endpoints: dict[Endpoint, str] = {e: self.origin + p for p, e in self._paths.items()}
        """Endpoint name → absolute URL."""

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
        ``allow_insecure_http=True``, stated explicitly as in any configuration.

        Example:
            >>> from rpkit.testing import FakeOP
            >>> config = FakeOP().provider_config(scopes=("openid", "offline_access"))
        """
        from rpkit.config import ProviderConfig  # noqa: PLC0415 - no import cycle at load time

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
        return ProviderConfig(**(settings | changes))

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

    # -- issuing ------------------------------------------------------------------------------
    def issue_access_token(
        self, client: FakeClient, user: FakeUser | None, scope: str, sid: str | None = None
    ) -> str:
        """A JWT access token, remembered for UserInfo; ending OP session ``sid`` revokes it."""
        subject = user.sub if user else client.client_id
        audience = client.access_token_audience or client.client_id
        access = self.minter.mint_access_token(
            subject=subject,
            audience=audience,
            client_id=client.client_id,
            scope=scope,
            lifetime=self.access_token_lifetime,
        )
        expires = self.now() + self.access_token_lifetime
        self.access_tokens[access] = TokenGrant(client.client_id, user, scope, 0, sid, expires)
        return access

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
        knobs = self.misbehave
        if knobs.rotate_keys_before_signing:
            self.keys.rotate()
            knobs.rotate_keys_before_signing = False
        alg = knobs.id_token_alg or client.id_token_signed_response_alg
        assert grant.user is not None  # noqa: S101 - only user grants get ID tokens
        honest = self.id_token_claims(client, grant, access_token, alg, nonce)
        edits = knobs.refresh_id_token_claims if refreshing else knobs.id_token_claims
        tamper = knobs.refresh_id_token_tamper if refreshing else knobs.id_token_tamper
        token = self.minter.sign(
            apply_edits(honest, edits),
            alg=alg,
            secret=client.client_secret,
            header=knobs.id_token_header,
            tamper=tamper,
            layout=knobs.jwks_layout,
        )
        grant.id_token = token
        return token

    def id_token_claims(
        self, client: FakeClient, grant: TokenGrant, access_token: str, alg: str, nonce: str | None
    ) -> dict[str, Any]:
        """The honest claims of an ID token, before any knob."""
        assert grant.user is not None  # noqa: S101
        now = self.now()
        claims = grant.user.released(grant.scope) | {
            "iss": self.issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + self.id_token_lifetime,
            "auth_time": grant.auth_time,
            "at_hash": half_hash(access_token, alg) if alg != "none" else None,
            "sid": grant.sid,
            "nonce": nonce,
        }
        return {name: value for name, value in claims.items() if value is not None}

    def store_refresh_token(self, grant: TokenGrant) -> str:
        """Remember ``grant`` under a new refresh token."""
        refresh = _token.new_refresh_token()
        self.refresh_tokens[refresh] = grant
        return refresh

    def front_channel_tokens(
        self, grant: CodeGrant, kinds: frozenset[str]
    ) -> list[tuple[str, str]]:
        """Tokens leaked into the authorization response (row 15)."""
        client = self.clients[grant.client_id]
        access = self.issue_access_token(client, grant.user, grant.scope, grant.sid)
        token_grant = TokenGrant(
            client.client_id, grant.user, grant.scope, grant.auth_time, grant.sid
        )
        tokens = {"access_token": access}
        if "id_token" in kinds:
            tokens["id_token"] = self.issue_id_token(
                client, token_grant, access, nonce=grant.nonce, refreshing=False
            )
        return [(kind, tokens[kind]) for kind in sorted(kinds)]

    def verify_own_token(self, token: str) -> dict[str, Any] | None:
        """Claims of a token this OP signed, with a current or retired key or a client's secret
        for HS*, else None. Expiry is not checked (an expired ``id_token_hint`` is fine)."""
        try:
            header, claims = decode_unverified(token)
        except ValueError:
            return None
        alg = str(header.get("alg"))
        if alg.startswith("HS"):
            audience = claims.get("aud")
            client = self.clients.get(audience if isinstance(audience, str) else "")
            secret = client.client_secret if client else None
            key: Any = secret.encode() if secret else None
        else:
            key = self.keys.find(header.get("kid"), alg)
        return verify_compact(token, key, alg) if key is not None else None

    # -- what a browser or the OP's back channel does ----------------------------------------
    async def approve(self, authorization_url: str) -> AuthorizationResponse:
        """Visit ``authorization_url`` as the browser would and return the OP's answer: the
        callback to deliver to the RP (or a bounce, or an error page)."""
        response = await self.handle(httpx.Request("GET", authorization_url))
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
        endpoint = self._paths.get(request.url.path)

        def record(query: Any, form: Any, payload: Any) -> RecordedRequest:
            headers = {k.lower(): v for k, v in request.headers.items()}
            return self.oracle.record(
                RecordedRequest(
                    endpoint, request.method, str(request.url), query, headers, form, payload
                )
            )

        req = await parse(request, record)
        if endpoint is None:
            req.record.outcome = "not_found"
            return html_response("<h1>Not found</h1>", 404)
        delay = self.misbehave.latency_for(endpoint)
        if delay:
            await asyncio.sleep(delay)
        canned = self.misbehave.respond.get(endpoint)
        if canned is not None:
            req.record.outcome = f"canned {canned.status}"
            headers = {"Content-Type": canned.content_type} if canned.content_type else {}
            return httpx.Response(
                canned.status, content=canned.body, headers={**headers, **canned.headers}
            )
        return self._dispatch(endpoint, req)

    def _dispatch(self, endpoint: Endpoint, req: OPRequest) -> httpx.Response:
        try:
            response = _HANDLERS[endpoint](self, req)
        except OAuthError as error:
            req.record.outcome = str(error)
            return error.response()
        if req.record.outcome == "pending":
            req.record.outcome = "ok"
        return response

    def transport(self, *others: FakeOP) -> FakeOPTransport:
        """An httpx transport that routes to this OP (and ``others``) by origin."""
        from rpkit.testing.transport import FakeOPTransport  # noqa: PLC0415 - avoids a cycle

        return FakeOPTransport(self, *others)

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
        """The discovery document as it would be served now."""
        return _resources.metadata(self)

    def knob_names(self) -> list[str]:
        """Every knob of :class:`Misbehaviour`."""
        return [f.name for f in fields(Misbehaviour)]
