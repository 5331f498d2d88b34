"""Auth0: sign-in at a tenant, access tokens for your APIs, and the tenant's two logout endpoints.

An Auth0 tenant's issuer ends with a slash (``https://{domain}/``) and rpkit compares issuers
exactly. Access tokens are JWTs for your API only when the login names the API's identifier as
``audience``; :func:`bearer_policy` validates them.

Example:
    >>> from rpkit.providers import auth0
    >>> config = auth0.auth0("acme.eu.auth0.com", client_id="abc", client_secret="s3cret")
    >>> config.issuer
    'https://acme.eu.auth0.com/'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import AccessTokenClaims, ClaimPath, ClaimPaths
from rpkit.config import DEFAULT_AUTHORIZATION_PARAMS, Endpoints, ProviderConfig
from rpkit.errors import ConfigurationError
from rpkit.hooks import LogoutContext, ProviderHooks
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = ["INFO", "auth0", "bearer_policy", "namespaced_claims", "v2_logout_params"]

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_LOGOUT_KINDS = frozenset({"oidc", "v2"})
_DOCS = "https://auth0.com/docs"

INFO = PresetInfo(
    name="auth0",
    title="Auth0",
    kind="oidc",
    refresh="offline_access scope (Allow Offline Access on the API)",
    logout=("rp-initiated", "back-channel"),
    bearer=True,
    quirks=(
        Quirk(
            what="The issuer ends with a slash (https://{domain}/) in discovery and every token; "
            "the preset keeps it, and an iss without it is refused.",
            source=f"{_DOCS}/secure/tokens/access-tokens/access-token-profiles",
        ),
        Quirk(
            what="Access tokens are JWTs for an API only when the login sends audience (the "
            "API identifier); otherwise they are opaque, for /userinfo. audience= sends it.",
            source="https://support.auth0.com/center/s/article/value-of-the-audience-attribute-"
            "in-access-token-requests-and-its-significance",
        ),
        Quirk(
            what="An API access token's aud is [API identifier, https://{domain}/userinfo]; "
            "bearer_policy checks the identifier and refuses the /userinfo audience.",
            source=f"{_DOCS}/secure/tokens/access-tokens/access-token-profiles",
        ),
        Quirk(
            what="/oidc/logout is in discovery only when the tenant enables RP-Initiated Logout "
            "End Session Endpoint Discovery (default from 14 Nov 2023); otherwise logout is "
            "local only, or logout='v2' uses /v2/logout.",
            source=f"{_DOCS}/authenticate/login/logout/log-users-out-of-auth0",
        ),
        Quirk(
            what="/v2/logout takes client_id and returnTo (an Allowed Logout URL of the app), "
            "not id_token_hint or state: v2_logout_params rewrites them.",
            source=f"{_DOCS}/api/authentication/logout/auth-0-logout",
        ),
        Quirk(
            what="Custom claims should be namespaced with a URL (https://app.example/roles); "
            "namespaced_claims reads those of one namespace.",
            source=f"{_DOCS}/secure/tokens/json-web-tokens/create-custom-claims",
        ),
        Quirk(
            what="Refresh tokens only with offline_access (and Allow Offline Access on the API): "
            "the preset asks for it.",
            source=f"{_DOCS}/secure/tokens/refresh-tokens/get-refresh-tokens",
        ),
        Quirk(
            what="OIDC back-channel logout to a URL registered per application.",
            source="https://auth0.github.io/node-auth0/interfaces/management.ClientOidcLogout.html",
        ),
    ),
)


def v2_logout_params(params: Mapping[str, str], context: LogoutContext) -> Mapping[str, str]:
    """Auth0's ``/v2/logout`` parameters: ``client_id`` and ``returnTo`` (it must be one of the
    application's Allowed Logout URLs). No ``state`` comes back, so the return lands on rpkit's
    neutral signed-out page."""
    rewritten = {"client_id": context.client_id}
    if context.post_logout_redirect_uri:
        rewritten["returnTo"] = context.post_logout_redirect_uri
    return rewritten


def auth0(
    domain: str,
    client_id: str,
    client_secret: str | None = None,
    *,
    audience: str | None = None,
    logout: Literal["oidc", "v2"] = "oidc",
    roles_claim: str | None = None,
    **changes: Any,
) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for an application of an Auth0 tenant.

    Args:
        domain: the tenant's domain (``acme.eu.auth0.com``) or its custom domain.
        client_id: the application's client id.
        client_secret: its secret; None for ``private_key_jwt`` or a public client (then pass
            ``client_auth=``).
        audience: the API identifier to get access tokens for; sent with every login (a core
            caller may pass another per login). None: opaque access tokens, for /userinfo only.
        logout: ``oidc`` uses the discovered ``end_session_endpoint`` (``/oidc/logout``), or
            logs out locally if the tenant does not publish one; ``v2`` configures Auth0's
            endpoints under the issuer instead of discovery, with ``/v2/logout`` and
            :func:`v2_logout_params`.
        roles_claim: the namespaced claim an Action puts the user's roles in
            (``https://app.example/roles``, one claim name, dots and all); with ``audience``
            it is read from the access token, else from the ID token. None: no roles (Auth0
            puts none in tokens by itself).
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last (an
            ``issuer=`` here also moves the ``v2`` endpoints).

    Raises:
        ConfigurationError: a malformed domain, an unknown logout kind, or a contradictory
            configuration.
    """
    if not _DOMAIN.fullmatch(domain):
        msg = f"auth0: domain {domain!r} must be a host name like acme.auth0.com (no https://)"
        raise ConfigurationError(msg)
    if logout not in _LOGOUT_KINDS:
        msg = f"auth0: logout must be 'oidc' or 'v2', not {logout!r}"
        raise ConfigurationError(msg)
    issuer = str(changes.get("issuer", f"https://{domain}/"))
    settings: dict[str, Any] = {
        "id": "auth0",
        "issuer": issuer,
        "client_id": client_id,
        "client_secret": client_secret,
        "scopes": ("openid", "profile", "email", "offline_access"),
    }
    if audience is not None:
        settings["extra_authorization_params"] = {"audience": audience}
        settings["allowed_authorization_params"] = DEFAULT_AUTHORIZATION_PARAMS | {"audience"}
        settings["access_token_claims"] = AccessTokenClaims(audience=(audience,))
    settings["claim_paths"] = _claim_paths(audience, roles_claim)
    if logout == "v2":
        settings["endpoints"] = _v2_endpoints(issuer)
        settings["hooks"] = ProviderHooks(logout_params=v2_logout_params)
    return build(settings, changes)


def _claim_paths(audience: str | None, roles_claim: str | None) -> ClaimPaths | None:
    """RBAC ``permissions`` (a JSON array of strings) are in the access token of an API whose
    "Add Permissions in the Access Token" is on
    (https://auth0.com/docs/get-started/apis/enable-role-based-access-control-for-apis), so
    only with ``audience``; roles only in the claim an Action names."""
    roles = (ClaimPath.of(roles_claim),) if roles_claim is not None else ()
    if audience is None and not roles:
        return None
    return ClaimPaths(roles=roles, permissions=("permissions",) if audience else ())


def _v2_endpoints(issuer: str) -> Endpoints:
    base = issuer.rstrip("/")
    return Endpoints(
        authorization_endpoint=f"{base}/authorize",
        token_endpoint=f"{base}/oauth/token",
        profile_endpoint=f"{base}/userinfo",
        jwks_uri=f"{base}/.well-known/jwks.json",
        end_session_endpoint=f"{base}/v2/logout",
    )


def bearer_policy(domain: str, audience: str, **changes: Any) -> AccessTokenPolicy:
    """The :class:`~rpkit.access_token.AccessTokenPolicy` of an API registered in the tenant.

    Args:
        domain: the tenant's domain.
        audience: the API identifier (the ``audience`` logins ask for).
        **changes: any :class:`~rpkit.access_token.AccessTokenPolicy` field (``required_scopes``).

    Raises:
        ConfigurationError: the tenant's ``/userinfo`` audience, which every API token carries
            too and which names Auth0's endpoint, not your API.
    """
    issuer = f"https://{domain}/"
    if audience == f"{issuer}userinfo":
        msg = "auth0: the /userinfo audience is Auth0's own; pass your API's identifier"
        raise ConfigurationError(msg)
    settings: dict[str, Any] = {
        "issuers": (issuer,),
        "jwks_uri": f"{issuer}.well-known/jwks.json",
        "audience": (audience,),
        "claim_paths": ClaimPaths(permissions=("permissions",)),
    }
    return AccessTokenPolicy(**(settings | changes))


def namespaced_claims(claims: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The custom claims an Auth0 Action set under ``namespace`` (``https://app.example/``),
    by the name after it: ``{"https://app.example/roles": [...]}`` gives ``{"roles": [...]}``.

    Raises:
        ValueError: a namespace that is not an ``http(s)`` URL ending with ``/``.
    """
    if not namespace.startswith(("https://", "http://")) or not namespace.endswith("/"):
        msg = f"namespace {namespace!r} must be a URL ending with '/' (https://app.example/)"
        raise ValueError(msg)
    size = len(namespace)
    return {k[size:]: v for k, v in claims.items() if k.startswith(namespace) and len(k) > size}
