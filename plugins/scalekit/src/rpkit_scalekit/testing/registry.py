"""What the fake Scalekit environment knows: the application, users, the connection table, and
the grants and sessions it has issued.

The connection table drives both ``GET /api/v1/connections`` and ``/oauth/authorize`` routing,
so a test that adds a connection sees it in both places (scalekit-sdk.md §8.8).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Literal

from rpkit.testing import FakeUser

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_ENV_URL",
    "DEFAULT_REDIRECT_URI",
    "CodeGrant",
    "Connection",
    "FakeApplication",
    "FakeOrganization",
    "IssuedM2MToken",
    "RefreshGrant",
    "Route",
    "ScalekitSession",
    "default_connections",
    "default_users",
]

DEFAULT_ENV_URL = "https://rpkit-test.scalekit.test"
DEFAULT_CLIENT_ID = "skc_00000000000000001"
DEFAULT_CLIENT_SECRET = "test_fake-scalekit-secret+/=%é"  # noqa: S105 - a test double's secret
"""Holds characters that form encoding must escape."""
DEFAULT_REDIRECT_URI = "https://app.rpkit.test/auth/callback/scalekit"
DEFAULT_POST_LOGOUT_URI = "https://app.rpkit.test/"

RouteKind = Literal["connection_id", "organization_id", "provider", "domain", "default"]


def new_id(prefix: str) -> str:
    """A Scalekit-shaped id: ``prefix`` plus 18 digits (``conn_…``, ``ses_…``, ``evt_…``)."""
    return f"{prefix}_{secrets.randbelow(10**18):018d}"


@dataclass
class FakeApplication:
    """The environment's application: an OAuth client of the hosted login and the M2M client
    of the management API at once, as the SDK's ``client_id``/``client_secret`` pair is."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    redirect_uris: tuple[str, ...] = (DEFAULT_REDIRECT_URI,)
    """Compared exactly."""
    post_logout_redirect_uris: tuple[str, ...] = (DEFAULT_POST_LOGOUT_URI,)
    initiate_login_uri: str | None = None
    """Where IdP-initiated logins land, with ``?idp_initiated_login=<JWT>``."""
    backchannel_logout_uri: str | None = None
    """Where ``/oidc/logout`` POSTs a back-channel ``logout_token``; none when None."""
    organization_id: str | None = None
    """``oid`` of this client's M2M tokens; omitted when None."""
    m2m_scopes: tuple[str, ...] = ()
    """``scopes`` of M2M tokens when the request names none."""


@dataclass
class Connection:
    """One row of the connection table (``ListConnection`` on the wire)."""

    id: str
    provider: str
    """``OKTA``, ``GOOGLE``, ``MICROSOFT_AD``, ``SCALEKIT``…"""
    type: str
    """``OIDC``, ``SAML``, ``OAUTH``, ``PASSWORDLESS``…"""
    organization_id: str | None = None
    organization_name: str | None = None
    domains: tuple[str, ...] = ()
    status: str = "COMPLETED"
    """``DRAFT``, ``IN_PROGRESS`` or ``COMPLETED``; only completed and enabled ones route."""
    enabled: bool = True
    provider_key: str | None = None
    """The social ``provider`` value that selects it (``google``…)."""
    ui_button_title: str | None = None
    key_id: str | None = None
    created_at: str = "2025-01-01T00:00:00Z"
    user: FakeUser | None = None
    """Who this connection's IdP signs in; the hinted or current user when None."""

    @property
    def active(self) -> bool:
        """Completed and enabled: what routing and the default listing consider."""
        return self.status == "COMPLETED" and self.enabled

    def as_json(self) -> dict[str, object]:
        """The ``ListConnection`` wire form (unset optional fields omitted)."""
        raw: dict[str, object | None] = {
            "id": self.id,
            "provider": self.provider,
            "type": self.type,
            "status": self.status,
            "enabled": self.enabled,
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "ui_button_title": self.ui_button_title,
            "domains": list(self.domains),
            "provider_key": self.provider_key,
            "key_id": self.key_id,
            "created_at": self.created_at,
        }
        return {k: v for k, v in raw.items() if v is not None}


@dataclass
class FakeOrganization:
    """An organization of a user-management environment: who belongs to it (for
    ``prompt=select_account`` with ``organization_id``) and its external id (``xoid``)."""

    id: str
    name: str = ""
    external_id: str | None = None
    """The application's own id for it, sent as ``xoid`` in tokens of logins into it."""
    members: set[str] = field(default_factory=set)
    """``sub`` of each member user."""


@dataclass(frozen=True)
class Route:
    """Where ``/oauth/authorize`` sent the browser (recorded on the issued code)."""

    kind: RouteKind
    """Which parameter decided: ``connection_id`` > ``organization_id`` > ``provider`` >
    ``domain`` (of ``login_hint``, ``domain_hint`` or ``domain``) > ``default``."""
    connection_id: str
    organization_id: str | None


@dataclass
class ScalekitSession:
    """A Scalekit session (``sid``, ``ses_…``)."""

    sid: str
    user: FakeUser
    client_id: str
    route: Route
    revoked: bool = False


@dataclass
class CodeGrant:
    """An authorization code and everything it is bound to."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    session: ScalekitSession
    expires_at: int
    used: bool = False


@dataclass
class RefreshGrant:
    """A refresh token and its rotation state."""

    token: str
    client_id: str
    scope: str
    session: ScalekitSession
    used_at: int | None = None
    """When it was rotated away; None while current."""
    successor: dict[str, object] | None = field(default=None, repr=False)
    """The response its rotation returned (replayed within the grace window)."""


@dataclass
class IssuedM2MToken:
    """A client-credentials token the management API will accept until ``expires_at``."""

    client_id: str
    scopes: list[str]
    expires_at: int
    revoked: bool = False


def default_users() -> list[FakeUser]:
    """Alice (Acme, SSO) and Bob (any other domain, passwordless)."""
    return [
        _person("usr_100000000000000001", "Alice", "Liddell", "alice@acme.test"),
        _person("usr_100000000000000002", "Bob", "Builder", "bob@example.org"),
    ]


def _person(sub: str, given: str, family: str, email: str) -> FakeUser:
    return FakeUser(
        sub,
        {
            "name": f"{given} {family}",
            "given_name": given,
            "family_name": family,
            "email": email,
            "email_verified": True,
        },
    )


def default_connections() -> list[Connection]:
    """Acme's Okta OIDC (``acme.test``), Globex's unfinished SAML (``globex.test``), Google
    social login, and the environment's passwordless connection."""
    return [
        Connection(
            "conn_200000000000000001",
            "OKTA",
            "OIDC",
            "org_300000000000000001",
            "Acme",
            ("acme.test",),
            ui_button_title="Acme SSO",
            key_id="acme-okta",
        ),
        Connection(
            "conn_200000000000000002",
            "MICROSOFT_AD",
            "SAML",
            "org_300000000000000002",
            "Globex",
            ("globex.test",),
            status="IN_PROGRESS",
            enabled=False,
        ),
        Connection("conn_200000000000000003", "GOOGLE", "OAUTH", provider_key="google"),
        Connection("conn_200000000000000004", "SCALEKIT", "PASSWORDLESS"),
    ]
