"""Microsoft Entra ID (v2.0 endpoints): one tenant, or several with the tenants pinned.

A single tenant (its GUID, or ``consumers``) has one exact issuer. ``organizations`` and
``common`` have the issuer template ``https://login.microsoftonline.com/{tenantid}/v2.0``; rpkit
accepts a token only when its ``iss`` is that template filled with its own ``tid``, a GUID on the
allowed list (or any tenant, a relaxation the caller names). The user is ``tid:oid``, and the
email is never taken as verified. The endpoints are configured, not discovered (see ``INFO``).

Front-channel logout (single sign-out) is opt-in: pass ``frontchannel_logout=True``, register
``{base_url}/auth/frontchannel-logout/{id}`` as the registration's "Front-channel logout URL"
(https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#single-sign-out) and add
the ``sid`` optional claim to the ID token ("Session ID, used for per-session user sign out",
https://learn.microsoft.com/entra/identity-platform/optional-claims-reference), or rpkit has no
``sid`` to end. Entra calls that URL with ``sid`` only, no ``iss``, so the preset then also sets
the named relaxation ``frontchannel_logout_without_iss`` (logged at startup).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import ClaimPaths
from rpkit.config import (
    GUID_PATTERN,
    TENANT_PLACEHOLDER,
    Endpoints,
    ProviderConfig,
    TenantPolicy,
)
from rpkit.errors import ConfigurationError, IdentityRefusedError
from rpkit.hooks import IdentityFields, IdentitySource, ProviderHooks
from rpkit.providers._mapping import ClaimsMapper
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = [
    "CLAIM_PATHS",
    "CONSUMERS_TENANT",
    "GRAPH",
    "INFO",
    "MICROSOFT_LOGIN",
    "MULTI_TENANT",
    "EntraIdentity",
    "bearer_policy",
    "entra",
]

MICROSOFT_LOGIN = "https://login.microsoftonline.com"
"""The public cloud's instance; national clouds have their own (``instance=``)."""
GRAPH = "https://graph.microsoft.com"
"""Microsoft Graph in the public cloud: UserInfo is there, not on the login host."""
CONSUMERS_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
"""The tenant of personal Microsoft accounts (``consumers``)."""
MULTI_TENANT = ("organizations", "common")
"""The tenant-independent endpoints, whose discovery publishes the issuer template."""
_GUID = re.compile(GUID_PATTERN)
_DOCS = "https://learn.microsoft.com/entra/identity-platform"
CLAIM_PATHS = ClaimPaths(roles=("roles",))
"""App roles: ``roles``, a JSON array of strings, in ID tokens and in access tokens for your
API (access-token-claims-reference and id-token-claims-reference under ``_DOCS``). Read from
the ID token: a login's access token is for Microsoft Graph, which no one else may verify.
``groups`` (object ids, or names where configured; omitted past 200 groups) is left out on
purpose: where group names are emitted, a user who may create groups could name one after a
role; add ``"groups"`` yourself (``claim_paths=ClaimPaths(roles=("roles", "groups"))``) only
with ids, or map groups to app roles."""


class EntraIdentity(ClaimsMapper):
    """Subject ``tid:oid``, the email never verified, and the tenant kept even for a single
    tenant; a ``tid`` that is not the tenant of the token's issuer is refused."""

    def __init__(self) -> None:
        super().__init__(subject=("tid", "oid"), trust_email_verified=False)

    async def __call__(self, source: IdentitySource) -> IdentityFields:
        tid = source.claims.get("tid")
        # A multi-tenant token was matched against the template already; a single tenant's
        # issuer is exact, so this is where its tid meets its iss (access-tokens doc, step 3).
        if not isinstance(tid, str) or not source.issuer.endswith(f"/{tid}/v2.0"):
            raise IdentityRefusedError("the token's tid is not the tenant of its issuer")
        fields = await super().__call__(source)
        return msgspec.structs.replace(fields, tenant=tid)


def _tenant_policy(
    tenant: str, allowed_tenants: Iterable[str], any_tenant: bool
) -> tuple[str, TenantPolicy | None]:
    """The concrete tenant (or the template's placeholder) and the tenant policy.

    Raises:
        ConfigurationError: see :func:`entra`.
    """
    allowed = frozenset(t.lower() for t in allowed_tenants)
    if tenant not in MULTI_TENANT:
        single = CONSUMERS_TENANT if tenant == "consumers" else tenant.lower()
        if not _GUID.fullmatch(single):
            msg = f"tenant {tenant!r} must be a tenant id (GUID), consumers, {MULTI_TENANT}"
            raise ConfigurationError(f"entra: {msg}")
        if allowed or any_tenant:
            msg = f"tenant {tenant!r} is one tenant: allowed_tenants and any_tenant are for"
            raise ConfigurationError(f"entra: {msg} {MULTI_TENANT}")
        return single, None
    if bool(allowed) == any_tenant:
        msg = "a multi-tenant app needs allowed_tenants (tenant GUIDs) or any_tenant=True"
        raise ConfigurationError(f"entra: {msg} (a relaxation), not both")
    bad = sorted(t for t in allowed if not _GUID.fullmatch(t))
    if bad:
        raise ConfigurationError(f"entra: allowed_tenants {bad} are not tenant ids (GUIDs)")
    return TENANT_PLACEHOLDER, TenantPolicy(allowed=allowed, any_tenant=any_tenant)


def entra(
    tenant: str,
    client_id: str,
    client_secret: str | None = None,
    *,
    allowed_tenants: Iterable[str] = (),
    any_tenant: bool = False,
    instance: str = MICROSOFT_LOGIN,
    graph: str = GRAPH,
    **changes: Any,
) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for an Entra ID app registration.

    Args:
        tenant: the directory's tenant id (GUID) for a single tenant; ``consumers`` for
            personal Microsoft accounts (tenant ``9188040d-...``); ``organizations`` (work and
            school accounts) or ``common`` (both) for a multi-tenant app.
        client_id: the Application (client) ID.
        client_secret: a client secret of the registration (None with ``private_key_jwt``).
        allowed_tenants: multi-tenant only: the tenant ids whose users may sign in (add
            ``CONSUMERS_TENANT`` to admit personal accounts through ``common``).
        any_tenant: multi-tenant only: admit every tenant instead, a relaxation logged at
            startup; authorise users yourself after login.
        instance: the cloud's login host (``https://login.microsoftonline.us``...).
        graph: the cloud's Microsoft Graph host, which serves UserInfo.
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last. With
            ``frontchannel_logout=True``, ``frontchannel_logout_without_iss`` is set too
            (Entra sends no ``iss``) unless ``changes`` name it.

    Raises:
        ConfigurationError: a tenant that is not a GUID or keyword, a tenant list for a single
            tenant, or a multi-tenant app with neither ``allowed_tenants`` nor ``any_tenant``.
    """
    instance = instance.rstrip("/")
    pinned, policy = _tenant_policy(tenant, allowed_tenants, any_tenant)
    # Configured, not discovered: Entra documents these paths, and a multi-tenant document is
    # shared by every tenant anyway; no discovery round trip at startup.
    base = f"{instance}/{tenant if policy is not None else pinned}"
    endpoints = Endpoints(
        authorization_endpoint=f"{base}/oauth2/v2.0/authorize",
        token_endpoint=f"{base}/oauth2/v2.0/token",
        profile_endpoint=f"{graph.rstrip('/')}/oidc/userinfo",
        jwks_uri=f"{base}/discovery/v2.0/keys",
        end_session_endpoint=f"{base}/oauth2/v2.0/logout",
    )
    settings: dict[str, Any] = {
        "id": "entra",
        "issuer": f"{instance}/{pinned}/v2.0",
        "client_id": client_id,
        "client_secret": client_secret,
        "scopes": ("openid", "profile", "email", "offline_access"),
        "endpoints": endpoints,
        "tenants": policy,
        "hooks": ProviderHooks(identity=EntraIdentity()),
        "claim_paths": CLAIM_PATHS,
        # Entra's front-channel request is "?sid=..." without iss: without this every one
        # would be refused (a relaxation, logged; an iss that is sent must still match).
        "frontchannel_logout_without_iss": bool(changes.get("frontchannel_logout")),
    }
    return build(settings, changes)


def bearer_policy(
    audience: str,
    tenant: str,
    *,
    allowed_tenants: Iterable[str] = (),
    any_tenant: bool = False,
    required_scopes: tuple[str, ...] = (),
    instance: str = MICROSOFT_LOGIN,
    **changes: Any,
) -> AccessTokenPolicy:
    """An :class:`~rpkit.access_token.AccessTokenPolicy` for v2.0 access tokens of your API.

    Args:
        audience: the API's Application (client) ID: a v2.0 token's ``aud`` is always it.
        tenant: as for :func:`entra`: one tenant's GUID, ``consumers``, or a multi-tenant
            keyword with ``allowed_tenants`` (or ``any_tenant``).
        allowed_tenants: multi-tenant only: the tenants whose tokens are accepted.
        any_tenant: multi-tenant only: accept every tenant (logged as a relaxation).
        required_scopes: delegated scopes (``scp``) every token must carry. Ask for one: an
            ID token of the same app registration has the same ``aud`` and ``typ: JWT``.
        instance: the cloud's login host.
        **changes: any :class:`~rpkit.access_token.AccessTokenPolicy` field, applied last.
    """
    instance = instance.rstrip("/")
    pinned, policy = _tenant_policy(tenant, allowed_tenants, any_tenant)
    keys = "common" if policy is not None else pinned
    settings: dict[str, Any] = {
        "issuers": (f"{instance}/{pinned}/v2.0",),
        "jwks_uri": f"{instance}/{keys}/discovery/v2.0/keys",
        "audience": (audience,),
        "required_scopes": required_scopes,
        "tenants": policy,
        "claim_paths": CLAIM_PATHS,
    }
    return AccessTokenPolicy(**(settings | changes))


INFO = PresetInfo(
    name="entra",
    title="Microsoft Entra ID",
    kind="oidc",
    refresh="offline_access scope; each refresh rotates the refresh token",
    logout=("rp-initiated",),
    bearer=True,
    quirks=(
        Quirk(
            what="organizations/common have the issuer template {instance}/{tenantid}/v2.0; a "
            "token is accepted when iss is the template filled with its own tid, a GUID on "
            "allowed_tenants (any_tenant: every tenant, logged)",
            source=f"{_DOCS}/access-tokens#validate-the-issuer",
        ),
        Quirk(
            what="the discovery document lists private_key_jwt without "
            "token_endpoint_auth_signing_alg_values_supported (Authlib's validator refuses that; "
            "rpkit checks the member itself); the preset configures the documented endpoints",
            source="AzureAD/microsoft-authentication-library-for-js "
            "lib/msal-browser/docs/performance.md",
        ),
        Quirk(
            what="consumers is the fixed tenant 9188040d-6c67-4c5b-b112-36a304b66dad, so the "
            "preset uses its exact issuer",
            source=f"{_DOCS}/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri",
        ),
        Quirk(
            what="sub is pairwise per app and oid is per tenant: the subject is tid:oid, and a "
            "tid that is not the issuer's tenant is refused",
            source=f"{_DOCS}/id-token-claims-reference#use-claims-to-reliably-identify-a-user",
        ),
        Quirk(
            what="email is not guaranteed correct (any tenant admin sets it): never verified",
            source=f"{_DOCS}/id-token-claims-reference#payload-claims",
        ),
        Quirk(
            what="over 200 groups, groups is replaced by _claim_names/_claim_sources (hasgroups "
            "in the implicit flow): read the groups from Microsoft Graph; the preset maps none",
            source=f"{_DOCS}/id-token-claims-reference#groups-overage-claim",
        ),
        Quirk(
            what="no RFC 9207 iss in the callback (discovery does not advertise it); UserInfo "
            "is on Microsoft Graph (graph=), another host",
            source="AzureAD/microsoft-authentication-library-for-js "
            "lib/msal-browser/docs/performance.md",
        ),
        Quirk(
            what="logout is end_session_endpoint with post_logout_redirect_uri; single sign-out "
            "is front-channel only, no back-channel logout tokens",
            source=f"{_DOCS}/v2-protocols-oidc#send-a-sign-out-request",
        ),
        Quirk(
            what="the Front-channel logout URL is called with sid but no iss: with "
            "frontchannel_logout=True the preset sets frontchannel_logout_without_iss (logged); "
            "the ID token carries sid only once the sid optional claim is added",
            source="https://github.com/nginxinc/nginx-openid-connect/issues/117; "
            f"{_DOCS}/v2-protocols-oidc#single-sign-out; {_DOCS}/optional-claims-reference",
        ),
        Quirk(
            what="bearer: v2.0 access tokens only (API manifest accessTokenAcceptedVersion=2), "
            "aud = the API's client id, typ JWT, keys at {instance}/common/discovery/v2.0/keys",
            source=f"{_DOCS}/access-tokens#token-formats",
        ),
        Quirk(
            what="the key set marks keys with an issuer scope (consumers keys for that tenant "
            "only); rpkit does not read it, so any Entra key verifies any tenant's token",
            source=f"{_DOCS}/access-tokens#validate-the-issuer",
        ),
    ),
)
