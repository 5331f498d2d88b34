"""Amazon Cognito user pools, signing in through the pool's managed login (hosted UI) domain.

The issuer is ``https://cognito-idp.{region}.amazonaws.com/{userPoolId}``; its discovery document
lists the domain's ``/oauth2/*`` endpoints and ``/logout`` once the pool has a domain, so the
preset discovers them. Cognito's ``/logout`` takes ``client_id`` and ``logout_uri`` instead of
RP-Initiated Logout's parameters, UserInfo writes booleans as strings, and access tokens name the
app client in ``client_id`` with no ``aud``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import ClaimPaths
from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError
from rpkit.hooks import LogoutContext, ProviderHooks
from rpkit.providers._mapping import ClaimsMapper
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = [
    "CLAIM_PATHS",
    "INFO",
    "bearer_policy",
    "cognito",
    "cognito_logout_params",
    "user_pool_issuer",
]

_POOL_ID = re.compile(r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)_[0-9A-Za-z]+")
_DOCS = "https://docs.aws.amazon.com/cognito/latest/developerguide"


def user_pool_issuer(user_pool_id: str, region: str | None = None) -> str:
    """The pool's issuer; the region defaults to the pool id's prefix (``eu-west-1_AbC``).

    Raises:
        ConfigurationError: a pool id that is not ``{region}_{id}``.
    """
    match = _POOL_ID.fullmatch(user_pool_id)
    if match is None:
        msg = f"cognito: user pool id {user_pool_id!r} is not of the form eu-west-1_AbC123"
        raise ConfigurationError(msg)
    return f"https://cognito-idp.{region or match['region']}.amazonaws.com/{user_pool_id}"


def cognito_logout_params(params: Mapping[str, str], context: LogoutContext) -> Mapping[str, str]:
    """Cognito's ``/logout`` wants ``client_id`` and ``logout_uri`` (an Allowed sign-out URL of
    the app client); it knows no ``id_token_hint``, ``post_logout_redirect_uri`` or ``state``,
    so no logout state is stored and the return lands on the neutral signed-out page."""
    rewritten = {"client_id": context.client_id}
    if context.post_logout_redirect_uri:
        rewritten["logout_uri"] = context.post_logout_redirect_uri
    return rewritten


CLAIM_PATHS = ClaimPaths(roles=("cognito:groups",))
"""User-pool groups, ``cognito:groups``: a JSON array of group names in ID and access tokens
(https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-id-token.html).
Groups are made by the pool's administrators, not by users. Read from the ID token, which a
refresh renews."""


def cognito(
    user_pool_id: str,
    client_id: str,
    client_secret: str | None = None,
    *,
    region: str | None = None,
    **changes: Any,
) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for one app client of a Cognito user pool.

    Args:
        user_pool_id: the pool's id, ``{region}_{id}``; the pool needs a domain (prefix or
            custom) for its managed login endpoints to appear in discovery.
        client_id: the app client's id.
        client_secret: the app client's secret; None for a public app client (PKCE only).
        region: the pool's region, when it is not the pool id's prefix.
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last; set
            ``post_logout_redirect_uri`` to an Allowed sign-out URL for the Cognito logout.

    Raises:
        ConfigurationError: a malformed pool id (or any refusal of the configuration).
    """
    settings: dict[str, Any] = {
        "id": "cognito",
        "issuer": user_pool_issuer(user_pool_id, region),
        "client_id": client_id,
        "client_secret": client_secret,
        "client_auth": "client_secret_basic" if client_secret else "none",
        "scopes": ("openid", "email", "profile"),
        "hooks": ProviderHooks(
            identity=ClaimsMapper(string_booleans=True), logout_params=cognito_logout_params
        ),
        "claim_paths": CLAIM_PATHS,
    }
    return build(settings, changes)


def bearer_policy(
    user_pool_id: str,
    client_ids: str | Iterable[str],
    *,
    region: str | None = None,
    required_scopes: tuple[str, ...] = (),
    **changes: Any,
) -> AccessTokenPolicy:
    """An :class:`~rpkit.access_token.AccessTokenPolicy` for the pool's access tokens.

    Cognito access tokens carry no ``aud``: the app client is in ``client_id``, so the policy
    names the accepted app clients with ``audience_claim="client_id"`` (logged as a
    relaxation: every listed app client of the pool may call the API). ID tokens carry no
    ``client_id`` and are refused.

    Args:
        user_pool_id: the pool's id.
        client_ids: the app client (or clients) whose access tokens the API accepts.
        region: the pool's region, when it is not the pool id's prefix.
        required_scopes: scopes (custom resource-server scopes, say) every token must carry.
        **changes: any :class:`~rpkit.access_token.AccessTokenPolicy` field, applied last.
    """
    issuer = user_pool_issuer(user_pool_id, region)
    settings: dict[str, Any] = {
        "issuers": (issuer,),
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "audience": (client_ids,) if isinstance(client_ids, str) else tuple(client_ids),
        "audience_claim": "client_id",
        "required_scopes": required_scopes,
        "claim_paths": CLAIM_PATHS,
    }
    return AccessTokenPolicy(**(settings | changes))


INFO = PresetInfo(
    name="cognito",
    title="Amazon Cognito",
    kind="oidc",
    refresh="with every code exchange (no offline_access scope); not rotated by default",
    logout=("rp-initiated",),
    bearer=True,
    quirks=(
        Quirk(
            what="issuer https://cognito-idp.{region}.amazonaws.com/{userPoolId}; the region is "
            "the pool id's prefix",
            source=f"{_DOCS}/amazon-cognito-user-pools-using-the-id-token.html",
        ),
        Quirk(
            what="discovery lists the domain's managed-login endpoints, end_session_endpoint "
            "({domain}/logout) included since February 2024, so the preset discovers them",
            source="localstack/localstack#12914; swisstopo/swissgeol-boreholes-suite#1066",
        ),
        Quirk(
            what="/logout takes client_id and logout_uri (an Allowed sign-out URL), no "
            "id_token_hint or state: hooks.logout_params rewrites the end-session request",
            source=f"{_DOCS}/logout-endpoint.html",
        ),
        Quirk(
            what="UserInfo sends email_verified as the string 'true'/'false' (the ID token a "
            "boolean): the mapper reads string booleans",
            source="zitadel/oidc#137; pomerium/pomerium#792",
        ),
        Quirk(
            what="access tokens have no aud and no typ header: the app client is in client_id, "
            "token_use is 'access'; bearer_policy uses audience_claim='client_id'",
            source=f"{_DOCS}/amazon-cognito-user-pools-using-the-access-token.html",
        ),
        Quirk(
            what="a refresh token comes with every code exchange and a refresh returns none "
            "(not rotated, in the documented default); there is no offline_access scope",
            source=f"{_DOCS}/token-endpoint.html",
        ),
        Quirk(
            what="the token endpoint takes the client secret in HTTP Basic",
            source=f"{_DOCS}/token-endpoint.html",
        ),
        Quirk(
            what="the subject is sub, a UUID; the user name (cognito:username) may not be unique",
            source=f"{_DOCS}/amazon-cognito-user-pools-using-the-access-token.html",
        ),
        Quirk(
            what="no RFC 9207 iss in the callback and no back-channel logout (discovery "
            "advertises neither)",
            source="localstack/localstack#12914",
        ),
    ),
)
