"""A fake LinkedIn: the fake OP with the discovery shape, ID tokens and token responses of
"Sign In with LinkedIn using OpenID Connect".

What it reproduces:

- the discovery document's members exactly: ``pairwise`` subjects, no
  ``token_endpoint_auth_methods_supported`` (the client must use ``client_secret_post``
  anyway), no PKCE metadata, no ``end_session_endpoint``, no RFC 9207 ``iss`` in callbacks;
- ID tokens without ``nonce`` (``echo_nonce=False``), ``at_hash``, ``auth_time`` or ``sid``,
  with ``email_verified`` as the string ``"true"``; UserInfo with a boolean ``email_verified``;
- opaque access tokens valid 60 days and no refresh tokens (those are for approved
  partners: ``issue_refresh_tokens=True`` plays one);
- a registered client that authenticates with ``client_secret_post`` only.

It plays an app for which LinkedIn has enabled PKCE (rpkit always sends it). Every endpoint
lives under the issuer's origin (LinkedIn's UserInfo is on ``api.linkedin.com``). The
misbehaviour knobs apply on top: ``id_token_claims={"nonce": "wrong"}`` sends a wrong nonce.
"""

from __future__ import annotations

import secrets
from typing import Any

from rpkit.config import ProviderConfig
from rpkit.providers.linkedin import LINKEDIN_ISSUER, linkedin
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import DEFAULT_REDIRECT_URI, FakeClient, FakeUser, TokenGrant

__all__ = ["FakeLinkedIn", "linkedin_users"]

_APP = DEFAULT_REDIRECT_URI.rsplit("/auth/", 1)[0]
_SIXTY_DAYS = 60 * 86400
_PROFILE = ("name", "given_name", "family_name", "picture", "email", "email_verified", "locale")
_ID_TOKEN = {"iss", "aud", "iat", "exp", "sub", "nonce", *_PROFILE}
_DOCUMENT = {
    "response_types_supported": ["code"],
    "subject_types_supported": ["pairwise"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "scopes_supported": ["openid", "profile", "email"],
    "claims_supported": ["iss", "aud", "iat", "exp", "sub", *_PROFILE],
}


def linkedin_users() -> list[FakeUser]:
    """Alice and Bob, with LinkedIn-style pairwise subjects."""
    return [
        _person("f1CNX59nrd", "Alice", "Liddell", "alice@example.com"),
        _person("cq7p3geg8a", "Bob", "Builder", "bob@example.org"),
    ]


def _person(sub: str, given: str, family: str, email: str) -> FakeUser:
    claims: dict[str, Any] = {
        "name": f"{given} {family}",
        "given_name": given,
        "family_name": family,
        "picture": f"https://media.licdn.com/dms/image/{sub}/profile-displayphoto-shrink_100_100",
        "email": email,
        "email_verified": True,
        "locale": "en_US",
    }
    return FakeUser(sub, claims)


class FakeLinkedIn(FakeOP):
    """LinkedIn, in-process or served (``serve_fake(FakeLinkedIn)``).

    Args:
        issuer: the issuer; LinkedIn's own by default, so the preset's URLs reach this fake
            through :meth:`transport`.
        clients: registered clients; one ``client_secret_post`` client whose redirect URI is
            ``https://app.rpkit.test/auth/callback/linkedin`` when None. Register yours with
            ``token_endpoint_auth_method="client_secret_post"``, as LinkedIn requires.
        users: known users; :func:`linkedin_users` when None.
        access_token_lifetime: LinkedIn's 60 days by default.
        issue_refresh_tokens: False (LinkedIn gives them to approved partners only).
        **options: any other :class:`~rpkit.testing.FakeOP` option.
    """

    def __init__(
        self,
        issuer: str = LINKEDIN_ISSUER,
        *,
        clients: list[FakeClient] | None = None,
        users: list[FakeUser] | None = None,
        access_token_lifetime: int = _SIXTY_DAYS,
        issue_refresh_tokens: bool = False,
        **options: Any,
    ) -> None:
        personality = Personality(
            metadata=_document, id_token_claims=_id_token, userinfo_claims=_userinfo
        )
        default = FakeClient(
            client_id="78rpkit0test0li",
            client_secret="WPL_AP1." + "rpkit-linkedin-secret",
            redirect_uris=(f"{_APP}/auth/callback/linkedin",),
            post_logout_redirect_uris=(f"{_APP}/auth/logout/callback",),
            token_endpoint_auth_method="client_secret_post",
        )
        super().__init__(
            issuer,
            clients=clients or [default],
            users=users or linkedin_users(),
            access_token_lifetime=access_token_lifetime,
            issue_refresh_tokens=issue_refresh_tokens,
            echo_nonce=False,
            personality=personality,
            **options,
        )
        self.authorization_response_iss = False

    def provider_config(
        self, id: str = "linkedin", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The :func:`~rpkit.providers.linkedin.linkedin` preset aimed at this fake and one of
        its clients; ``allow_insecure_http`` is set for a served (``http://127.0.0.1``) fake."""
        client = client_of(self, client_id)
        arguments = preset_arguments(self, changes, id=id, issuer=self.issuer)
        return linkedin(client.client_id, client.client_secret or "", **arguments)

    def issue_access_token(
        self, client: FakeClient, user: FakeUser | None, scope: str, sid: str | None = None
    ) -> str:
        """An opaque access token, as LinkedIn's are; remembered for UserInfo."""
        token = "AQV" + secrets.token_urlsafe(96)
        expires = self.now() + self.access_token_lifetime
        self.access_tokens[token] = TokenGrant(client.client_id, user, scope, 0, sid, expires)
        return token


def _document(honest: dict[str, Any]) -> dict[str, Any]:
    kept = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    document = {name: honest[name] for name in kept}
    return document | {name: list(value) for name, value in _DOCUMENT.items()}


def _id_token(claims: dict[str, Any], _: FakeUser | None, __: FakeClient) -> dict[str, Any]:
    shaped = {name: value for name, value in claims.items() if name in _ID_TOKEN}
    if isinstance(shaped.get("email_verified"), bool):
        shaped["email_verified"] = "true" if shaped["email_verified"] else "false"
    return shaped


def _userinfo(claims: dict[str, Any], _: FakeUser | None, __: FakeClient) -> dict[str, Any]:
    return {name: value for name, value in claims.items() if name in {"sub", *_PROFILE}}
