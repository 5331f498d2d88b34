"""A fake Auth0 tenant: the fake OP with Auth0's issuer, URLs and token shapes.

What it reproduces: the issuer with its trailing slash (``https://{domain}/``); Auth0's paths
(``/authorize``, ``/oauth/token``, ``/userinfo``, ``/.well-known/jwks.json``, ``/oidc/logout``
and the legacy ``/v2/logout`` with ``returnTo`` and ``client_id``); a discovery document whose
``end_session_endpoint`` is there only when the tenant enables it (``end_session_discovery``),
with back-channel logout and no RFC 9207; ``{connection}|{id}`` subjects; ID tokens with
``nickname``, ``picture``, ``updated_at`` as an ISO 8601 string, and the user's namespaced
custom claims (``https://...`` keys of :attr:`FakeUser.claims`); an opaque access token unless the
login asked for an ``audience``, else a JWT in Auth0's profile (``aud`` = [API, ``/userinfo``],
``azp``, ``scope``, no ``client_id``); a refresh token only with ``offline_access``. Not
reproduced: the Auth0 session cookie, so ``/v2/logout`` ends no OP session.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from rpkit.config import ProviderConfig
from rpkit.providers.auth0 import auth0
from rpkit.testing.knobs import Endpoint
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import FakeClient, FakeUser, TokenGrant, default_users

__all__ = ["DEFAULT_AUTH0_ORIGIN", "FakeAuth0", "auth0_users"]

DEFAULT_AUTH0_ORIGIN = "https://rpkit.us.auth0.com"
_PATHS: dict[Endpoint, str] = {
    "token": "/oauth/token",
    "jwks": "/.well-known/jwks.json",
    "end_session": "/oidc/logout",
}
_V2_LOGOUT = "/v2/logout"


def auth0_users() -> list[FakeUser]:
    """Alice and Bob of a database connection: ``auth0|alice`` and ``auth0|bob``."""
    return [
        FakeUser(f"auth0|{user.sub}", {**user.claims, "nickname": user.sub}, user.tenant_id)
        for user in default_users()
    ]


class FakeAuth0(FakeOP):
    """A fake Auth0 tenant (see the module docstring).

    Args:
        origin: the tenant's origin; ``http://127.0.0.1:<port>`` when served. The issuer is
            the origin with a trailing slash.
        end_session_discovery: publish ``end_session_endpoint`` (the tenant setting).
        **options: :class:`~rpkit.testing.FakeOP` options.
    """

    def __init__(
        self,
        origin: str = DEFAULT_AUTH0_ORIGIN,
        *,
        end_session_discovery: bool = True,
        **options: Any,
    ) -> None:
        options.setdefault("users", auth0_users())
        options.setdefault("clients", [FakeClient(client_id="rPkItTeStClIeNt0auth0AppId000001")])
        options.setdefault(
            "personality",
            Personality(
                metadata=self._metadata,
                id_token_claims=_id_token_claims,
                userinfo_claims=_userinfo_claims,
                token_response=_token_response,
            ),
        )
        super().__init__(origin.rstrip("/") + "/", **options)
        self.end_session_discovery = end_session_discovery
        self.authorization_response_iss = False
        self.audiences: dict[str, str] = {}
        """OP session id → the ``audience`` its login asked for."""
        self.serve_at(_PATHS)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer at Auth0's paths (and the fake OP's own)."""
        if request.url.path == _V2_LOGOUT:
            request = _v2_as_oidc_logout(request)
        response = await super().handle(request)
        if request.url.path == urlsplit(self.endpoints["authorize"]).path:
            self._remember_audience(request)
        return response

    def _remember_audience(self, request: httpx.Request) -> None:
        audience = request.url.params.get("audience")
        challenge = request.url.params.get("code_challenge")
        for grant in self.codes.values():
            if audience and challenge and grant.code_challenge == challenge:
                self.audiences[grant.sid] = audience

    def issue_access_token(
        self, client: FakeClient, user: FakeUser | None, scope: str, sid: str | None = None
    ) -> str:
        """Opaque without an ``audience``; a JWT in Auth0's profile for the asked API."""
        audience = self.audiences.get(sid) if sid else None
        if user is None:
            return super().issue_access_token(client, user, scope, sid)
        now = self.now()
        if audience is None:
            token = secrets.token_urlsafe(32)
        else:
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": user.sub,
                "aud": [audience, f"{self.issuer}userinfo"],
                "iat": now,
                "exp": now + self.access_token_lifetime,
                "scope": scope,
                "azp": client.client_id,
                **_custom_claims(user),
            }
            token = self.minter.sign(claims)
        expires = now + self.access_token_lifetime
        self.access_tokens[token] = TokenGrant(client.client_id, user, scope, 0, sid, expires)
        return token

    def provider_config(
        self, id: str = "auth0", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The ``auth0`` preset aimed at this fake and one of its clients (the first by
        default); an ``http`` (served) fake also gets its issuer and ``allow_insecure_http``."""
        client = client_of(self, client_id)
        served = {"issuer": self.issuer} if self.issuer.startswith("http://") else {}
        return auth0(
            urlsplit(self.origin).netloc,
            client.client_id,
            client.client_secret,
            **preset_arguments(self, changes, id=id, **served),
        )

    def _metadata(self, document: dict[str, Any]) -> dict[str, Any]:
        document.pop("frontchannel_logout_supported", None)
        if not self.end_session_discovery:
            document.pop("end_session_endpoint", None)
        document["id_token_signing_alg_values_supported"] = ["HS256", "RS256", "PS256"]
        document["code_challenge_methods_supported"] = ["S256", "plain"]
        document["token_endpoint_auth_methods_supported"] = [
            *("client_secret_basic", "client_secret_post", "private_key_jwt"),
        ]
        return document


def _v2_as_oidc_logout(request: httpx.Request) -> httpx.Request:
    """``/v2/logout?client_id&returnTo`` checked as the end-session endpoint checks
    ``post_logout_redirect_uri``: it must be registered for the client."""
    renamed = [
        ("post_logout_redirect_uri" if name == "returnTo" else name, value)
        for name, value in request.url.params.multi_items()
    ]
    url = request.url.copy_with(path=_PATHS["end_session"], params=renamed)
    return httpx.Request("GET", url, headers=request.headers)


def _custom_claims(user: FakeUser) -> dict[str, Any]:
    return {name: value for name, value in user.claims.items() if name.startswith("https://")}


def _iso(seconds: Any) -> Any:
    if not isinstance(seconds, int):
        return seconds
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(seconds))


def _id_token_claims(
    claims: dict[str, Any], user: FakeUser | None, client: FakeClient
) -> dict[str, Any]:
    shaped = _userinfo_claims(claims, user, client)
    if user is not None:
        shaped |= _custom_claims(user)
    return shaped


def _userinfo_claims(
    claims: dict[str, Any], user: FakeUser | None, _: FakeClient
) -> dict[str, Any]:
    shaped = dict(claims)
    if "updated_at" in shaped:
        shaped["updated_at"] = _iso(shaped["updated_at"])
    if user is not None and "name" in shaped and "nickname" in user.claims:
        shaped["nickname"] = user.claims["nickname"]
    return shaped


def _token_response(body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
    if "offline_access" not in str(body.get("scope", "")).split():
        body.pop("refresh_token", None)
    return body
