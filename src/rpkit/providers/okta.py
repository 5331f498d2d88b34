"""Okta: sign-in through the org authorization server or a custom one, and API access tokens.

An Okta org has two kinds of authorization server, each its own issuer: the org authorization
server (``https://{domain}``), whose access tokens are for Okta's own APIs only, and custom
authorization servers (``https://{domain}/oauth2/{id}``, ``default`` built in) whose access tokens
your APIs validate with :func:`bearer_policy`.

Example:
    >>> from rpkit.providers import okta
    >>> config = okta.okta("dev-123.okta.com", client_id="0oa1", client_secret="s3cret")
    >>> config.issuer
    'https://dev-123.okta.com/oauth2/default'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import ClaimPath, ClaimPaths
from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = ["INFO", "bearer_policy", "groups", "okta", "okta_issuer"]

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_SERVER_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_DOCS = "https://developer.okta.com/docs"

INFO = PresetInfo(
    name="okta",
    title="Okta",
    kind="oidc",
    refresh="offline_access scope (the app's Refresh Token grant enabled)",
    logout=("rp-initiated",),
    bearer=True,
    quirks=(
        Quirk(
            what="Two kinds of authorization server with different issuers: the org one "
            "(https://{domain}) and custom ones (https://{domain}/oauth2/{id}); "
            "authorization_server chooses, None for the org one.",
            source=f"{_DOCS}/guides/oie-embedded-common-download-setup-app/android/main/",
        ),
        Quirk(
            what="Refresh tokens only when offline_access is asked at /authorize (and the "
            "grant is enabled on the app): the preset asks for it.",
            source=f"{_DOCS}/guides/refresh-tokens/get-refresh-token/",
        ),
        Quirk(
            what="Org authorization server access tokens are for Okta's APIs only; "
            "bearer_policy refuses to build a policy for them.",
            source=f"{_DOCS}/guides/validate-access-tokens/python/overview/",
        ),
        Quirk(
            what="A custom authorization server's access tokens carry its audience as aud "
            "(api://default for the built-in one), not the client id: bearer_policy checks it.",
            source="https://help.okta.com/en-us/Content/topics/security/api-config-auth-server.htm",
        ),
        Quirk(
            what="A groups claim exists only when an admin configures one (ID token only on the "
            "org server; ID and access tokens on custom ones); groups() reads it.",
            source=f"{_DOCS}/guides/customize-tokens-groups-claim/main/",
        ),
        Quirk(
            what="/v1/logout requires id_token_hint and a registered post_logout_redirect_uri; "
            "rpkit sends the session's ID token.",
            source=f"{_DOCS}/api/openapi/okta-oauth/oauth/customas/logoutcustomas",
        ),
        Quirk(
            what="Access tokens name scopes in an scp array and the client in cid (rpkit reads "
            "scp); their sub is the user's login, not the ID token's user id.",
            source=f"{_DOCS}/reference/api/oidc/",
            confirmed=False,
        ),
    ),
)


def okta_issuer(domain: str, authorization_server: str | None = "default") -> str:
    """The issuer of ``authorization_server`` (None: the org authorization server) at
    ``domain``.

    Raises:
        ConfigurationError: ``domain`` is not a bare host name, or the server id is malformed.
    """
    if not _DOMAIN.fullmatch(domain):
        msg = f"okta: domain {domain!r} must be a host name like dev-123.okta.com (no https://)"
        raise ConfigurationError(msg)
    if authorization_server is None:
        return f"https://{domain}"
    if not _SERVER_ID.fullmatch(authorization_server):
        msg = f"okta: authorization_server {authorization_server!r} must be 'default' or an id"
        raise ConfigurationError(msg)
    return f"https://{domain}/oauth2/{authorization_server}"


def okta(
    domain: str,
    client_id: str,
    client_secret: str | None = None,
    *,
    authorization_server: str | None = "default",
    groups_claim: str | None = None,
    **changes: Any,
) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for an app registered in an Okta org.

    Args:
        domain: the org's host name (``dev-123.okta.com``) or its custom domain.
        client_id: the app's client id (``0oa...``).
        client_secret: the app's client secret; None for ``private_key_jwt`` or a public
            client (then pass ``client_auth=``).
        authorization_server: ``default``, a custom authorization server's id (``aus...``),
            or None for the org authorization server (sign-in only: its access tokens are not
            for your APIs).
        groups_claim: the name of the groups claim an admin configured (usually ``groups``;
            Okta sends none by default), read as the user's roles from the ID token: a JSON
            array of group names
            (https://developer.okta.com/docs/guides/customize-tokens-groups-claim/main/). None:
            no roles.
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last.

    Raises:
        ConfigurationError: a malformed domain or server id, or a contradictory configuration.
    """
    settings: dict[str, Any] = {
        "id": "okta",
        "issuer": okta_issuer(domain, authorization_server),
        "client_id": client_id,
        "client_secret": client_secret,
        "scopes": ("openid", "profile", "email", "offline_access"),
    }
    if groups_claim is not None:
        settings["claim_paths"] = ClaimPaths(roles=(ClaimPath.of(groups_claim),))
    return build(settings, changes)


def bearer_policy(
    domain: str,
    authorization_server: str | None = "default",
    audience: str = "api://default",
    **changes: Any,
) -> AccessTokenPolicy:
    """The :class:`~rpkit.access_token.AccessTokenPolicy` of an API protected by a custom
    authorization server: its issuer, its ``/v1/keys`` and its audience.

    Args:
        domain: the org's host name.
        authorization_server: the custom authorization server's id.
        audience: the audience configured on that server (``api://default`` for ``default``).
        **changes: any :class:`~rpkit.access_token.AccessTokenPolicy` field (``required_scopes``).

    Raises:
        ConfigurationError: the org authorization server (None), whose access tokens only Okta
            should consume.
    """
    if authorization_server is None:
        msg = (
            "okta: access tokens of the org authorization server are for Okta's APIs only; "
            "protect your API with a custom authorization server (e.g. 'default')"
        )
        raise ConfigurationError(msg)
    issuer = okta_issuer(domain, authorization_server)
    settings: dict[str, Any] = {
        "issuers": (issuer,),
        "jwks_uri": f"{issuer}/v1/keys",
        "audience": (audience,),
    }
    return AccessTokenPolicy(**(settings | changes))


def groups(claims: Mapping[str, Any]) -> frozenset[str]:
    """The names in Okta's ``groups`` claim (``Identity.claims`` or ``AccessToken.claims``);
    empty when no groups claim is configured or it is not an array of names."""
    value = claims.get("groups")
    if not isinstance(value, list | tuple):  # validated claims are frozen: arrays are tuples
        return frozenset()
    return frozenset(name for name in value if isinstance(name, str))
