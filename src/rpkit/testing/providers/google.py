"""A fake Google: the fake OP with Google's discovery shape, claims and refresh-token rules.

What it reproduces:

- the discovery document's members (Google's reference): no ``end_session_endpoint`` and no
  back-channel logout, RFC 9207 ``iss`` in callbacks, ``plain`` and ``S256`` PKCE;
- ID tokens with ``azp`` and, for Google Workspace accounts, ``hd`` (the user's ``hd`` claim);
  no ``sid``; UserInfo with ``hd`` too; boolean ``email_verified``;
- opaque ``ya29.`` access tokens, not JWTs;
- refresh tokens only for ``access_type=offline``, and only at the user's first consent to
  the client unless the request says ``prompt=consent``; refreshing never rotates them.

Every endpoint lives under the issuer's origin (Google's are spread over
``oauth2.googleapis.com`` and ``www.googleapis.com``), so one transport or one served port
reaches them all. The misbehaviour knobs apply on top.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx

from rpkit.config import ProviderConfig
from rpkit.providers.google import GOOGLE_ISSUER, google
from rpkit.testing.browser import AuthorizationResponse
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import DEFAULT_REDIRECT_URI, FakeClient, FakeUser, TokenGrant

__all__ = ["FakeGoogle", "google_users"]

_APP = DEFAULT_REDIRECT_URI.rsplit("/auth/", 1)[0]
_GOOGLE_ONLY = {"sid", "preferred_username", "updated_at"}
_DOCUMENT = {
    "response_types_supported": [
        "code",
        "token",
        "id_token",
        "code token",
        "code id_token",
        "token id_token",
        "code token id_token",
        "none",
    ],
    "response_modes_supported": ["query", "fragment", "form_post"],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "scopes_supported": ["openid", "email", "profile"],
    "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    "claims_supported": [
        "aud",
        "email",
        "email_verified",
        "exp",
        "family_name",
        "given_name",
        "iat",
        "iss",
        "name",
        "picture",
        "sub",
    ],
    "code_challenge_methods_supported": ["plain", "S256"],
    "grant_types_supported": [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ],
}


def google_users() -> list[FakeUser]:
    """Alice, a Google Workspace user of ``example.com`` (``hd``), and Bob, a consumer Gmail
    account (no ``hd``); numeric subjects, as Google's are."""
    return [
        _person("110248495921238986420", "Alice", "Liddell", "alice@example.com", "example.com"),
        _person("117331200839475026812", "Bob", "Builder", "bob.builder@gmail.com", None),
    ]


def _person(sub: str, given: str, family: str, email: str, hd: str | None) -> FakeUser:
    claims: dict[str, Any] = {
        "name": f"{given} {family}",
        "given_name": given,
        "family_name": family,
        "picture": f"https://lh3.googleusercontent.com/a/{sub}",
        "email": email,
        "email_verified": True,
    }
    return FakeUser(sub, claims | ({"hd": hd} if hd else {}))


class FakeGoogle(FakeOP):
    """Google, in-process or served (``serve_fake(FakeGoogle)``).

    Args:
        issuer: the issuer; Google's own by default, so the preset's URLs reach this fake
            through :meth:`transport`.
        clients: registered clients; one ``client_secret_basic`` client whose redirect URI is
            ``https://app.rpkit.test/auth/callback/google`` when None.
        users: known users; :func:`google_users` when None.
        **options: any other :class:`~rpkit.testing.FakeOP` option.
    """

    def __init__(
        self,
        issuer: str = GOOGLE_ISSUER,
        *,
        clients: list[FakeClient] | None = None,
        users: list[FakeUser] | None = None,
        **options: Any,
    ) -> None:
        self.offline_sessions: set[str] = set()
        """OP sessions (``sid``) whose code exchange may return a refresh token."""
        personality = Personality(
            metadata=_document,
            id_token_claims=_google_claims,
            userinfo_claims=_google_claims,
            token_response=self._offline_only,
        )
        default = FakeClient(
            client_id="1234567890-rpkit.apps.googleusercontent.com",
            redirect_uris=(f"{_APP}/auth/callback/google",),
            post_logout_redirect_uris=(f"{_APP}/auth/logout/callback",),
        )
        super().__init__(
            issuer,
            clients=clients or [default],
            users=users or google_users(),
            personality=personality,
            **options,
        )
        self.misbehave.refresh_rotation = False

    def reset(self) -> None:
        """Honest again (Google's honesty: refresh tokens are not rotated)."""
        super().reset()
        self.misbehave.refresh_rotation = False

    def provider_config(
        self, id: str = "google", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The :func:`~rpkit.providers.google.google` preset aimed at this fake and one of its
        clients; ``allow_insecure_http`` is set for a served (``http://127.0.0.1``) fake."""
        client = client_of(self, client_id)
        arguments = preset_arguments(self, changes, id=id, issuer=self.issuer)
        return google(client.client_id, client.client_secret or "", **arguments)

    def issue_access_token(
        self, client: FakeClient, user: FakeUser | None, scope: str, sid: str | None = None
    ) -> str:
        """An opaque access token, as Google's are; remembered for UserInfo."""
        token = "ya29." + secrets.token_urlsafe(48)
        expires = self.now() + self.access_token_lifetime
        self.access_tokens[token] = TokenGrant(client.client_id, user, scope, 0, sid, expires)
        return token

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer as Google would; an authorization notes whether its code earns a refresh
        token (``access_type=offline``, and a first consent or ``prompt=consent``)."""
        if request.url.path != urlsplit(self.endpoints["authorize"]).path:
            return await super().handle(request)
        asked = request.url.params
        user = self.user_for_hint(asked.get("login_hint"))
        first = (asked.get("client_id"), user.sub) not in self.consents
        consent = "consent" in (asked.get("prompt") or "").split()
        response = await super().handle(request)
        grant = self.codes.get(AuthorizationResponse.from_response(response).get("code") or "")
        if grant is not None and asked.get("access_type") == "offline" and (first or consent):
            self.offline_sessions.add(grant.sid)
        return response

    def _offline_only(self, body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
        refresh = body.get("refresh_token")
        grant = self.access_tokens.get(str(body.get("access_token")))
        if refresh is None or (grant is not None and grant.sid in self.offline_sessions):
            return body
        self.refresh_tokens.pop(str(refresh), None)
        return {name: value for name, value in body.items() if name != "refresh_token"}


def _document(honest: dict[str, Any]) -> dict[str, Any]:
    kept = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    document = {name: honest[name] for name in kept}
    if "authorization_response_iss_parameter_supported" in honest:
        document["authorization_response_iss_parameter_supported"] = True
    return document | {name: list(value) for name, value in _DOCUMENT.items()}


def _google_claims(
    claims: dict[str, Any], user: FakeUser | None, client: FakeClient
) -> dict[str, Any]:
    shaped = {name: value for name, value in claims.items() if name not in _GOOGLE_ONLY}
    if "aud" in shaped:  # an ID token, not UserInfo
        shaped["azp"] = client.client_id
    if user is not None and "hd" in user.claims:
        shaped["hd"] = user.claims["hd"]
    return shaped
