"""Keycloak: sign-in at one realm of a self-hosted server, its roles, and its access tokens.

Each realm is its own issuer, ``{base_url}/realms/{realm}``. Roles travel in the access token
(``realm_access.roles``, ``resource_access.<client>.roles``), which :func:`roles` reads from
``AccessToken.claims`` (or from ``Identity.claims`` when the realm maps them into the ID token
or UserInfo). Access tokens name ``account`` as audience unless an Audience mapper adds your API,
so :func:`bearer_policy` wants that audience explicitly.

Example:
    >>> from rpkit.providers import keycloak
    >>> config = keycloak.keycloak("https://sso.example.com", "acme", "web", "s3cret")
    >>> config.issuer
    'https://sso.example.com/realms/acme'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.authz import AccessTokenClaims, ClaimPath, ClaimPaths
from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = [
    "CLAIM_PATHS",
    "INFO",
    "access_tokens_only",
    "bearer_policy",
    "keycloak",
    "realm_issuer",
    "roles",
]

_REALM = re.compile(r"^[A-Za-z0-9._~-]{1,255}$")
_PHASETWO = "https://phasetwo.io/tutorials"
CLAIM_PATHS = ClaimPaths(roles=("realm_access.roles", "resource_access.{client_id}.roles"))
"""The realm's roles and the client's own roles, arrays of names in the access token
(``AccessToken.Access.roles``, a ``Set<String>``:
https://www.keycloak.org/docs-api/latest/javadocs/org/keycloak/representations/AccessToken.Access.html).
The preset verifies its login's access token (``azp`` the client id) to read them."""

INFO = PresetInfo(
    name="keycloak",
    title="Keycloak",
    kind="oidc",
    refresh="always (refresh tokens come with every code-flow login)",
    logout=("rp-initiated", "back-channel"),
    bearer=True,
    quirks=(
        Quirk(
            what="Each realm is an issuer, {base_url}/realms/{realm}; servers before Keycloak 17 "
            "have /auth in base_url.",
            source="nextauthjs/next-auth packages/core/src/providers/keycloak.ts",
        ),
        Quirk(
            what="Roles are in the access token (realm_access.roles, resource_access.<client>."
            "roles), not in the ID token unless the realm maps them there: roles() reads them.",
            source="https://www.keycloak.org/docs-api/latest/javadocs/org/keycloak/"
            "representations/class-use/AccessToken.Access.html",
        ),
        Quirk(
            what="Access tokens' aud is 'account' (Audience Resolve) unless an Audience mapper "
            "adds the API; bearer_policy wants the API's audience and refuses 'account'.",
            source=f"{_PHASETWO}/clients/audience/",
        ),
        Quirk(
            what="A payload typ claim names the token kind (ID, Bearer, Refresh, Logout), while "
            "the header typ is JWT for all: access_tokens_only refuses all but Bearer.",
            source="keycloak/keycloak core/src/main/java/org/keycloak/util/TokenUtil.java",
        ),
        Quirk(
            what="Back-channel logout (a logout token to the client's URL) and RP-initiated "
            "logout at /protocol/openid-connect/logout are both supported.",
            source=f"{_PHASETWO}/sessions/oidc-logout/",
        ),
        Quirk(
            what="Refresh tokens come without offline_access, tied to the SSO session; "
            "offline_access would ask for an offline token that outlives logout, so the "
            "preset does not.",
            source="https://wjw465150.gitbooks.io/keycloak-documentation/server_admin/topics/"
            "sessions/offline.html",
        ),
    ),
)


def realm_issuer(base_url: str, realm: str) -> str:
    """``{base_url}/realms/{realm}``.

    Raises:
        ConfigurationError: ``base_url`` is not an absolute http(s) URL without query, or the
            realm name needs percent-encoding (then pass ``issuer=`` as Keycloak publishes it).
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        msg = f"keycloak: base_url {base_url!r} must be like https://sso.example.com"
        raise ConfigurationError(msg)
    if not _REALM.fullmatch(realm):
        msg = f"keycloak: realm {realm!r} must be [A-Za-z0-9._~-]; else pass issuer= as published"
        raise ConfigurationError(msg)
    return f"{base_url.rstrip('/')}/realms/{realm}"


def keycloak(
    base_url: str,
    realm: str,
    client_id: str,
    client_secret: str | None = None,
    **changes: Any,
) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for a client of one Keycloak realm.

    Args:
        base_url: the server's public URL (``https://sso.example.com``; with ``/auth`` before
            Keycloak 17).
        realm: the realm's name.
        client_id: the OpenID Connect client's id.
        client_secret: its secret (Credentials tab); None for ``private_key_jwt`` or a public
            client (then pass ``client_auth=``).
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last.

    Raises:
        ConfigurationError: a malformed base URL or realm, or a contradictory configuration.
    """
    settings: dict[str, Any] = {
        "id": "keycloak",
        "issuer": realm_issuer(base_url, realm),
        "client_id": client_id,
        "client_secret": client_secret,
        "scopes": ("openid", "profile", "email"),
        "claim_paths": CLAIM_PATHS,
        # aud is "account" unless an Audience mapper adds more; azp names this client.
        "access_token_claims": AccessTokenClaims(audience_claim="azp"),
    }
    return build(settings, changes)


def bearer_policy(base_url: str, realm: str, audience: str, **changes: Any) -> AccessTokenPolicy:
    """The :class:`~rpkit.access_token.AccessTokenPolicy` of an API whose tokens a realm
    issues. Pair it with :func:`access_tokens_only` to refuse ID and refresh tokens.

    Args:
        base_url: the server's public URL.
        realm: the realm's name.
        audience: the API's audience, added to access tokens by an Audience mapper (a client id
            or a custom string).
        **changes: any :class:`~rpkit.access_token.AccessTokenPolicy` field (``required_scopes``).

    Raises:
        ConfigurationError: ``account``, which Keycloak puts in the tokens of every user who
            holds account-console roles, whichever client asked: it names no API.
    """
    if audience == "account":
        msg = (
            "keycloak: 'account' is in nearly every access token of the realm; add an Audience "
            "mapper for your API and pass that audience"
        )
        raise ConfigurationError(msg)
    issuer = realm_issuer(base_url, realm)
    settings: dict[str, Any] = {
        "issuers": (issuer,),
        "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
        "audience": (audience,),
        "claim_paths": ClaimPaths(
            roles=("realm_access.roles", ClaimPath.of("resource_access", audience, "roles"))
        ),
    }
    return AccessTokenPolicy(**(settings | changes))


async def access_tokens_only(token: AccessToken, connection: Any) -> AccessToken | None:
    """An ``OIDCBearerAuth`` ``retrieve_user_handler``: the token when its payload ``typ`` is
    ``Bearer``, else None (401), so an ID token that happens to name the API is refused."""
    return token if token.claims.get("typ") == "Bearer" else None


def roles(claims: Mapping[str, Any], client_id: str | None = None) -> frozenset[str]:
    """The realm roles (``realm_access.roles``) or, with ``client_id``, that client's roles
    (``resource_access.<client_id>.roles``); empty when absent or malformed."""
    if client_id is None:
        access = claims.get("realm_access")
    else:
        resources = claims.get("resource_access")
        access = resources.get(client_id) if isinstance(resources, Mapping) else None
    names = access.get("roles") if isinstance(access, Mapping) else None
    if not isinstance(names, list | tuple):  # validated claims are frozen: arrays are tuples
        return frozenset()
    return frozenset(name for name in names if isinstance(name, str))
