"""What the fake OP knows: registered clients, users, and the grants it has issued."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_REDIRECT_URI",
    "DEFAULT_TENANT_ID",
    "AuthMethod",
    "FakeClient",
    "FakeUser",
    "default_users",
]

AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

DEFAULT_CLIENT_ID = "rpkit-test-client"
DEFAULT_CLIENT_SECRET = "s3cr:t +/%=é-fake-op-client-secret"
"""Holds every character RFC 6749 §2.3.1 form-encoding must escape (row 16)."""
DEFAULT_REDIRECT_URI = "https://app.rpkit.test/auth/callback/fake"
DEFAULT_TENANT_ID = "00000000-7e57-4000-8000-000000000000"
"""The tenant (a GUID, as in Entra ID) of a :class:`FakeUser` that names none."""
ALICE_TENANT_ID = "a11ce000-7e57-4000-8000-00000000000a"
BOB_TENANT_ID = "b0b00000-7e57-4000-8000-00000000000b"

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": (
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "picture",
        "locale",
        "updated_at",
    ),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
    "address": ("address",),
}
"""Which claims each standard scope releases (Core §5.4)."""


@dataclass
class FakeClient:
    """A client registered at the fake OP."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str | None = DEFAULT_CLIENT_SECRET
    redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,)
    """Compared exactly, as Core §3.1.2.1 requires."""
    post_logout_redirect_uris: tuple[str, ...] = ()
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"
    """The only method the token endpoint accepts from this client."""
    jwks: dict[str, Any] | None = None
    """Public keys for ``private_key_jwt``."""
    id_token_signed_response_alg: str = "RS256"
    userinfo_signed_response_alg: str | None = None
    """Answer UserInfo as a signed JWT with this algorithm (row 48)."""
    backchannel_logout_uri: str | None = None
    frontchannel_logout_uri: str | None = None
    """Framed with ``iss`` and ``sid`` by the end-session page when this client's OP session
    ends (Front-Channel Logout 1.0, ``frontchannel_logout_session_required``)."""
    access_token_audience: str | None = None
    """``aud`` of this client's access tokens; the client id when None."""


@dataclass
class FakeUser:
    """A user the fake OP signs in without asking anything."""

    sub: str
    claims: dict[str, Any] = field(default_factory=dict)
    """Profile, email and other claims, released by scope (Core §5.4)."""
    tenant_id: str | None = DEFAULT_TENANT_ID
    """The user's tenant at a multi-tenant OP (``FakeOP(multi_tenant=True)``): the ``tid`` of
    their tokens and the ``{tenantid}`` of their ``iss``. None: tokens without ``tid``, and the
    template itself as ``iss``."""
    access_token_claims: dict[str, Any] = field(default_factory=dict)
    """Claims added to this user's JWT access tokens, as an OP's role or permission mappers
    add them (``{"roles": ["admin"]}``); change them to change the next token (a refresh)."""

    def released(self, scope: str) -> dict[str, Any]:
        """The claims ``scope`` releases, plus ``sub``."""
        granted = {name for s in scope.split() for name in SCOPE_CLAIMS.get(s, ())}
        return {"sub": self.sub} | {k: v for k, v in self.claims.items() if k in granted}


def default_users() -> list[FakeUser]:
    """Alice and Bob, with profile and verified email claims, each in their own tenant."""
    return [
        _person("alice", "Alice", "Liddell", "alice@example.com", ALICE_TENANT_ID),
        _person("bob", "Bob", "Builder", "bob@example.org", BOB_TENANT_ID),
    ]


def _person(sub: str, given: str, family: str, email: str, tenant_id: str) -> FakeUser:
    return FakeUser(
        sub,
        {
            "name": f"{given} {family}",
            "given_name": given,
            "family_name": family,
            "preferred_username": sub,
            "email": email,
            "email_verified": True,
            "locale": "en",
            "updated_at": 1_700_000_000,
        },
        tenant_id,
    )


@dataclass
class CodeGrant:
    """An authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    user: FakeUser
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int
    sid: str
    expires_at: float
    used: bool = False
    dpop_jkt: str | None = None
    """The DPoP key thumbprint the authorization request named (RFC 9449 §10)."""


@dataclass
class TokenGrant:
    """A refresh token, or an access token, and what it stands for."""

    client_id: str
    user: FakeUser | None
    """None for client-credentials tokens."""
    scope: str
    auth_time: int
    sid: str | None
    expires_at: float = field(default_factory=lambda: time.time() + 86400)
    revoked: bool = False
    id_token: str | None = None
    """The last ID token issued with this grant (for ``id_token_hint`` checks)."""
    dpop_jkt: str | None = None
    """The DPoP key this grant's tokens are bound to (RFC 9449 §6.1), if any."""
