"""A fake Amazon Cognito user pool for the :mod:`rpkit.providers.cognito` preset.

It is :class:`~rpkit.testing.FakeOP` at Cognito's URLs, on two origins as the real service is:

- the pool, ``https://cognito-idp.{region}.amazonaws.com/{userPoolId}``: discovery in Cognito's
  shape (the managed-login endpoints, ``end_session_endpoint`` and ``revocation_endpoint``, no
  PKCE methods, no RFC 9207 ``iss``, no back-channel logout) and ``/.well-known/jwks.json``;
- the managed-login (hosted UI) domain: ``/oauth2/authorize``, ``/oauth2/token``,
  ``/oauth2/userInfo`` and ``/logout``, which takes ``client_id`` and ``logout_uri`` (one of the
  client's ``post_logout_redirect_uris``, Cognito's Allowed sign-out URLs) and refuses anything
  else. Served on 127.0.0.1, both share the one origin.

Users have UUID subjects and a ``cognito:username``; ID tokens carry ``token_use: id`` and no
``sid``; access tokens have no ``aud`` and no ``typ`` header, ``client_id``, ``username`` and
``token_use: access``; UserInfo writes ``email_verified`` as ``"true"``/``"false"``; token
responses have no ``scope``; a refresh returns no new refresh token. ``/oauth2/revoke`` is
advertised, not served. The knobs still apply.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from rpkit.config import ProviderConfig
from rpkit.providers.cognito import cognito, user_pool_issuer
from rpkit.testing._http import html_response, redirect
from rpkit.testing.op import FakeOP
from rpkit.testing.oracle import RecordedRequest
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import FakeClient, FakeUser, default_users
from rpkit.testing.transport import FakeOPTransport

__all__ = ["DEFAULT_USER_POOL_ID", "FakeCognito", "cognito_users"]

DEFAULT_USER_POOL_ID = "us-east-1_rpkitTest"
_NAMESPACE = uuid.UUID("c0691700-7e57-4000-8000-000000000002")


def cognito_users() -> list[FakeUser]:
    """Alice and Bob as Cognito users: a UUID ``sub`` and their name as ``cognito:username``."""
    return [
        FakeUser(
            str(uuid.uuid5(_NAMESPACE, user.sub)), {**user.claims, "cognito:username": user.sub}
        )
        for user in default_users()
    ]


class _AlsoAt:
    """Another origin of the same fake (the managed-login domain)."""

    def __init__(self, origin: str, fake: FakeCognito) -> None:
        self.origin = origin
        self.fake = fake

    async def handle(self, request: httpx.Request) -> httpx.Response:
        return await self.fake.handle(request)


class FakeCognito(FakeOP):
    """Cognito's shapes over :class:`~rpkit.testing.FakeOP`.

    Args:
        origin: the pool service's origin; ``https://cognito-idp.{region}.amazonaws.com`` for
            the pool id's region when None (``serve_fake`` passes its base URL).
        user_pool_id: the pool id, ``{region}_{id}``.
        hosted_ui: the managed-login domain's origin; by default a prefix domain
            ``https://rpkit-test.auth.{region}.amazoncognito.com``, or ``origin`` when given.
        **options: :class:`~rpkit.testing.FakeOP` options (users, clients, lifetimes...).
    """

    def __init__(
        self,
        origin: str | None = None,
        *,
        user_pool_id: str = DEFAULT_USER_POOL_ID,
        hosted_ui: str | None = None,
        **options: Any,
    ) -> None:
        real = user_pool_issuer(user_pool_id)
        region = urlsplit(real).netloc.split(".")[1]
        base = (origin or real.rsplit("/", 1)[0]).rstrip("/")
        default_ui = (
            f"https://rpkit-test.auth.{region}.amazoncognito.com" if origin is None else base
        )
        options.setdefault("users", cognito_users())
        options.setdefault("personality", self._personality())
        super().__init__(f"{base}/{user_pool_id}", **options)
        self.user_pool_id = user_pool_id
        self.hosted_ui = (hosted_ui or default_ui).rstrip("/")
        self.misbehave.refresh_rotation = False
        internal = dict(self.endpoints)
        self.endpoints.update(
            {
                "authorize": f"{self.hosted_ui}/oauth2/authorize",
                "token": f"{self.hosted_ui}/oauth2/token",
                "userinfo": f"{self.hosted_ui}/oauth2/userInfo",
                "end_session": f"{self.hosted_ui}/logout",
                "jwks": f"{self.issuer}/.well-known/jwks.json",
            }
        )
        self._moved = {
            urlsplit(self.endpoints[name]).path: internal[name]
            for name in ("authorize", "token", "userinfo", "jwks")
        }

    def reset(self) -> None:
        """Honest again (Cognito's honesty: refresh tokens are not rotated)."""
        super().reset()
        self.misbehave.refresh_rotation = False

    def provider_config(
        self, id: str = "cognito", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The :func:`~rpkit.providers.cognito.cognito` preset aimed at this fake, for one of
        its clients (the first by default); ``changes`` take any argument of the preset or
        configuration field."""
        client = client_of(self, client_id)
        settings: dict[str, Any] = {
            "id": id,
            "user_pool_id": self.user_pool_id,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        }
        if self.issuer != user_pool_issuer(self.user_pool_id):
            settings["issuer"] = self.issuer
        return cognito(**preset_arguments(self, changes, **settings))

    def transport(self, *others: FakeOP) -> FakeOPTransport:
        """An httpx transport to this fake, its managed-login domain included, and ``others``."""
        transport = super().transport(*others)
        if urlsplit(self.hosted_ui).netloc != urlsplit(self.origin).netloc:
            transport.add(_AlsoAt(self.hosted_ui, self))
        return transport

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer at Cognito's URLs: ``/logout`` here, the others moved onto the fake OP's own
        endpoints (the oracle shows the URL the client used)."""
        path = request.url.path
        if path == urlsplit(self.endpoints["end_session"]).path:
            return await self._logout(request)
        target = self._moved.get(path)
        if target is None:
            return await super().handle(request)
        query = request.url.query.decode()
        moved = httpx.Request(
            request.method,
            f"{target}?{query}" if query else target,
            headers=request.headers,
            content=await request.aread(),
        )
        response = await super().handle(moved)
        for record in reversed(list(self.oracle)):
            if record.url == str(moved.url):
                record.url = str(request.url)
                break
        return response

    async def _logout(self, request: httpx.Request) -> httpx.Response:
        """``GET /logout?client_id=...&logout_uri=...``: back to an Allowed sign-out URL."""
        await request.aread()
        query = tuple(parse_qsl(request.url.query.decode(), keep_blank_values=True))
        headers = {name.lower(): value for name, value in request.headers.items()}
        record = self.oracle.record(
            RecordedRequest("end_session", request.method, str(request.url), query, headers)
        )
        params = dict(query)
        client = self.clients.get(params.get("client_id", ""))
        target = params.get("logout_uri")
        if client is None or target is None or target not in client.post_logout_redirect_uris:
            record.outcome = "invalid_request"
            return html_response("<h1>An error was encountered with the requested page.</h1>", 400)
        record.outcome = "ok"
        return redirect(target)

    # -- Cognito's shapes -------------------------------------------------------------------------
    def _personality(self) -> Personality:
        return Personality(
            metadata=self._metadata,
            id_token_claims=_id_token_claims,
            access_token_claims=_access_token_claims,
            access_token_typ=None,
            userinfo_claims=_userinfo_claims,
            token_response=lambda body, _: {k: v for k, v in body.items() if k != "scope"},
        )

    def _metadata(self, honest: dict[str, Any]) -> dict[str, Any]:
        """A pool's document with a domain: these members, no others."""
        return {
            "authorization_endpoint": honest["authorization_endpoint"],
            "end_session_endpoint": honest["end_session_endpoint"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "issuer": honest["issuer"],
            "jwks_uri": honest["jwks_uri"],
            "response_types_supported": ["code", "token"],
            "revocation_endpoint": f"{self.hosted_ui}/oauth2/revoke",
            "scopes_supported": ["openid", "email", "phone", "profile"],
            "subject_types_supported": ["public"],
            "token_endpoint": honest["token_endpoint"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "userinfo_endpoint": honest["userinfo_endpoint"],
        }


def _username(user: FakeUser) -> str:
    return str(user.claims.get("cognito:username", user.sub))


def _ids() -> dict[str, str]:
    return {
        "origin_jti": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "jti": str(uuid.uuid4()),
    }


def _id_token_claims(
    claims: dict[str, Any], user: FakeUser | None, _: FakeClient
) -> dict[str, Any]:
    shaped = {name: value for name, value in claims.items() if name != "sid"}
    username = {"cognito:username": _username(user)} if user is not None else {}
    return shaped | username | {"token_use": "id"} | _ids()


def _access_token_claims(
    claims: dict[str, Any], user: FakeUser | None, _: FakeClient
) -> dict[str, Any]:
    shaped = {name: value for name, value in claims.items() if name != "aud"}
    username = {"username": _username(user)} if user is not None else {}
    return shaped | username | {"token_use": "access", "auth_time": claims["iat"]} | _ids()


def _userinfo_claims(
    claims: dict[str, Any], user: FakeUser | None, _: FakeClient
) -> dict[str, Any]:
    """Attributes as Cognito stores them: booleans as strings."""
    shaped: Mapping[str, Any] = {
        name: ("true" if value else "false") if isinstance(value, bool) else value
        for name, value in claims.items()
    }
    return {**shaped, "username": _username(user)} if user is not None else dict(shaped)
