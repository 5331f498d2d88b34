"""A fake GitLab: the fake OP with the discovery shape, claims and token responses of GitLab's
Doorkeeper-based OpenID Provider, for gitlab.com or a self-managed instance.

What it reproduces:

- the discovery document's members (doorkeeper-openid_connect's): no ``end_session_endpoint``,
  no back-channel logout, no RFC 9207 ``iss`` in callbacks; ``client_secret_basic`` and
  ``_post``; ``plain`` and ``S256`` PKCE;
- lean ID tokens: ``sub`` (the numeric user id, as a string), ``sub_legacy``, ``email``,
  ``email_verified`` (a boolean) and ``groups_direct``, with no ``at_hash`` or ``sid``; the
  profile (``name``, ``nickname``, ``preferred_username``, ``website``, ``profile``,
  ``picture``, ``groups``) only at UserInfo;
- opaque access tokens of 64 hex digits, ``token_type: "bearer"`` in lower case, ``created_at``,
  two-hour ``expires_in``; a refresh token at every code exchange, rotated by every refresh.

The misbehaviour knobs apply on top.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from rpkit.config import ProviderConfig
from rpkit.providers.gitlab import GITLAB_COM, gitlab
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import DEFAULT_REDIRECT_URI, FakeClient, FakeUser, TokenGrant

__all__ = ["FakeGitLab", "gitlab_users"]

_APP = DEFAULT_REDIRECT_URI.rsplit("/auth/", 1)[0]
_ID_TOKEN = {"iss", "sub", "aud", "exp", "iat", "nonce", "auth_time", "sub_legacy", "email"}
_ID_TOKEN |= {"email_verified", "groups_direct"}
_PROFILE = ("name", "nickname", "preferred_username", "website", "profile", "picture")
_USERINFO = ("sub", "sub_legacy", *_PROFILE, "email", "email_verified", "groups")
_DOCUMENT = {
    "scopes_supported": [
        *("api", "read_api", "read_user", "read_repository"),
        *("openid", "profile", "email"),
    ],
    "response_types_supported": ["code"],
    "response_modes_supported": ["query", "fragment", "form_post"],
    "grant_types_supported": [
        *("authorization_code", "password", "client_credentials"),
        *("device_code", "refresh_token"),
    ],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "claim_types_supported": ["normal"],
    "claims_supported": [
        *("iss", "sub", "aud", "exp", "iat", "sub_legacy", *_PROFILE[:3]),
        *("email", "email_verified", *_PROFILE[3:], "groups", "groups_direct"),
    ],
    "code_challenge_methods_supported": ["plain", "S256"],
}


def gitlab_users() -> list[FakeUser]:
    """Alice and Bob, with numeric ids as subjects, usernames, and group memberships."""
    return [
        _person("4815162", "Alice Liddell", "alice", "alice@example.com", ["wonderland"]),
        _person("2342108", "Bob Builder", "bob", "bob@example.org", []),
    ]


def _person(sub: str, name: str, username: str, email: str, groups: list[str]) -> FakeUser:
    claims: dict[str, Any] = {
        "sub_legacy": hashlib.sha256(sub.encode()).hexdigest(),
        "name": name,
        "nickname": username,
        "preferred_username": username,
        "email": email,
        "email_verified": True,
        "profile": f"{GITLAB_COM}/{username}",
        "picture": f"https://secure.gravatar.com/avatar/{sub}",
        "groups": [*groups, *(f"{group}/tea-party" for group in groups)],
        "groups_direct": groups,
    }
    return FakeUser(sub, claims)


class FakeGitLab(FakeOP):
    """GitLab, in-process or served (``serve_fake(FakeGitLab)``).

    Args:
        issuer: the instance URL: gitlab.com by default, so the preset's URLs reach this fake
            through :meth:`transport`; a self-managed instance's URL otherwise.
        clients: registered clients; one ``client_secret_basic`` client whose redirect URI is
            ``https://app.rpkit.test/auth/callback/gitlab`` when None.
        users: known users; :func:`gitlab_users` when None.
        access_token_lifetime: GitLab's two hours by default.
        **options: any other :class:`~rpkit.testing.FakeOP` option.
    """

    def __init__(
        self,
        issuer: str = GITLAB_COM,
        *,
        clients: list[FakeClient] | None = None,
        users: list[FakeUser] | None = None,
        access_token_lifetime: int = 7200,
        **options: Any,
    ) -> None:
        personality = Personality(
            metadata=_document,
            id_token_claims=_id_token,
            userinfo_claims=_userinfo,
            token_response=self._doorkeeper_response,
        )
        default = FakeClient(
            client_id=hashlib.sha256(b"rpkit-gitlab-app").hexdigest(),
            client_secret="gloas-" + hashlib.sha256(b"rpkit-gitlab-secret").hexdigest(),
            redirect_uris=(f"{_APP}/auth/callback/gitlab",),
            post_logout_redirect_uris=(f"{_APP}/auth/logout/callback",),
        )
        super().__init__(
            issuer,
            clients=clients or [default],
            users=users or gitlab_users(),
            access_token_lifetime=access_token_lifetime,
            personality=personality,
            **options,
        )
        self.authorization_response_iss = False

    def provider_config(
        self, id: str = "gitlab", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The :func:`~rpkit.providers.gitlab.gitlab` preset for this instance and one of its
        clients; ``allow_insecure_http`` is set for a served (``http://127.0.0.1``) fake."""
        client = client_of(self, client_id)
        arguments = preset_arguments(self, changes, id=id, base_url=self.issuer)
        return gitlab(client.client_id, client.client_secret or "", **arguments)

    def issue_access_token(
        self, client: FakeClient, user: FakeUser | None, scope: str, sid: str | None = None
    ) -> str:
        """An opaque access token, as Doorkeeper's are; remembered for UserInfo."""
        token = secrets.token_hex(32)
        expires = self.now() + self.access_token_lifetime
        self.access_tokens[token] = TokenGrant(client.client_id, user, scope, 0, sid, expires)
        return token

    def _doorkeeper_response(self, body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
        return body | {"token_type": "bearer", "created_at": self.now()}


def _document(honest: dict[str, Any]) -> dict[str, Any]:
    kept = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    document = {name: honest[name] for name in kept}
    return document | {name: list(value) for name, value in _DOCUMENT.items()}


def _id_token(claims: dict[str, Any], user: FakeUser | None, _: FakeClient) -> dict[str, Any]:
    merged = claims | _from_user(user, ("sub_legacy", "groups_direct"))
    return {name: value for name, value in merged.items() if name in _ID_TOKEN}


def _userinfo(claims: dict[str, Any], user: FakeUser | None, _: FakeClient) -> dict[str, Any]:
    extra = _from_user(user, ("sub_legacy", "groups"))
    if "name" in claims:  # the profile scope was granted
        extra |= _from_user(user, _PROFILE)
    return {name: value for name, value in (claims | extra).items() if name in _USERINFO}


def _from_user(user: FakeUser | None, names: tuple[str, ...]) -> dict[str, Any]:
    """The user's claims of ``names`` that are set (Doorkeeper drops blank claims)."""
    claims = user.claims if user else {}
    return {name: claims[name] for name in names if claims.get(name) not in (None, "")}
