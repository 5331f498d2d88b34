"""The Scalekit provider preset: an environment as an rpkit :class:`~rpkit.config.ProviderConfig`.

The issuer is the environment URL. Endpoints come from the environment's discovery document;
only when that document is *absent* (HTTP 404) does :class:`ScalekitDiscoveryCache` fall back to
the paths Scalekit documents (``/oauth/authorize``, ``/oauth/token``, ``/keys``,
``/oidc/logout``). Any other discovery failure (a wrong issuer, a malformed document, an outage)
still fails: a fallback there would hide a misconfiguration or an attack. Access tokens minted for
Scalekit resources (MCP servers, APIs) carry ``{env}`` or ``{env}/resources/{id}`` as issuer;
:func:`resource_token_policy` accepts both.

Example:
    >>> from rpkit_scalekit.provider import scalekit
    >>> config = scalekit("https://acme.scalekit.com", "skc_1", "s3cret", offline_access=True)
    >>> config.scopes
    ('openid', 'profile', 'email', 'offline_access')
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from types import MappingProxyType

import httpx

from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT
from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import AccessTokenClaims, ClaimPaths
from rpkit.config import ProviderConfig
from rpkit.discovery import MAX_DISCOVERY_BYTES, DiscoveryCache, ProviderMetadata
from rpkit.errors import ConfigurationError, DiscoveryError
from rpkit.hooks import ProviderHooks
from rpkit_scalekit.identity import ScalekitIdentity
from rpkit_scalekit.routing import LoginHintRouting

__all__ = [
    "CLAIM_PATHS",
    "DOCUMENTED_PATHS",
    "SCALEKIT_AUTHORIZATION_PARAMS",
    "ScalekitDiscoveryCache",
    "documented_metadata",
    "resource_token_policy",
    "scalekit",
]

DOCUMENTED_PATHS = MappingProxyType(
    {
        "authorization_endpoint": "/oauth/authorize",
        "token_endpoint": "/oauth/token",
        "jwks_uri": "/keys",
        "end_session_endpoint": "/oidc/logout",
    }
)
"""Where Scalekit serves each endpoint, per its documentation and SDKs."""

SCALEKIT_AUTHORIZATION_PARAMS = frozenset(
    {
        "login_hint",
        "prompt",
        "max_age",
        "domain_hint",
        "domain",
        "organization_id",
        "connection_id",
        "provider",
    }
)
"""Extra authorization parameters a Scalekit login may carry (the routing parameters)."""

CLAIM_PATHS = ClaimPaths(roles=("roles",), permissions=("permissions",), organization=("oid",))
"""Where Scalekit puts authorization data: ``roles`` and ``permissions`` (arrays of strings,
permissions as ``resource:action``) and the organization ``oid``, in the access token of a
full-stack-auth login (Scalekit's authorization concepts,
https://www.mintlify.com/scalekit-inc/developer-docs/concepts/authorization: "Access tokens
contain authorization information", ``"roles": ["admin", "editor"]``).
The preset reads them from the verified access token (``access_token_claims``, ``aud`` the
client id), and :func:`resource_token_policy` from API and MCP tokens."""


def scalekit(
    env_url: str,
    client_id: str,
    client_secret: str,
    *,
    id: str = "scalekit",
    offline_access: bool = False,
    post_logout_redirect_uri: str | None = None,
    leeway: int = 60,
    fetch_userinfo: bool = False,
    allow_insecure_http: bool = False,
    route_login_hint: bool = True,
    stable_identity_key: bool = True,
    user_management: bool = False,
) -> ProviderConfig:
    """The :class:`~rpkit.config.ProviderConfig` of one Scalekit environment.

    PKCE (S256), ``state`` and ``nonce`` are the core's and always on. The client authenticates
    with ``client_secret_post``, the only method Scalekit's SDKs use.

    Args:
        env_url: the environment URL (``https://<name>.scalekit.com`` or a custom domain); it is
            the issuer, compared exactly, so one trailing ``/`` is removed here.
        client_id: the application's client id (``skc_...``).
        client_secret: its secret.
        id: the provider id in routes, logs and sessions.
        offline_access: request ``offline_access``, which Scalekit needs to issue a refresh
            token. Without it the session ends when the access token does.
        post_logout_redirect_uri: where Scalekit returns after logout; it must be absolute and
            registered as a Post Logout URL.
        leeway: clock tolerance in seconds (Scalekit's SDK has none; 60 absorbs normal skew).
        fetch_userinfo: call UserInfo when the discovery document lists it. Off by default:
            Scalekit documents no UserInfo for relying parties and its ID token carries the
            profile claims.
        allow_insecure_http: development only: an ``http://`` loopback environment.
        route_login_hint: route core logins that carry a ``login_hint`` to the email's SSO
            connection (:class:`~rpkit_scalekit.routing.LoginHintRouting`, the preset's
            ``hooks.authorization_params``), as the plugin's email start does.
        stable_identity_key: the subject is Scalekit's identity key, the same for the hosted
            and the headless sign-in of one person (:mod:`rpkit_scalekit.identity`); False
            keeps Scalekit's ``sub`` (one subject per connection). Either way the identity
            carries ``oid``, ``xoid`` and ``xuid``
            (:class:`~rpkit_scalekit.identity.ScalekitIdentity`).
        user_management: the environment has user management (full-stack auth; hosted logins'
            ``sub`` is a ``usr_...`` id). A headless passwordless sign-in then looks the person
            up by address (``GET /api/v1/users:search``, with the management client's
            credentials) and is keyed by the same ``usr_...`` id as their hosted login; a failed
            lookup refuses the sign-in (503). Off, headless sign-ins are keyed ``email:...``;
            a hosted login with a ``usr_...`` ``sub`` then logs
            ``rpkit.scalekit.user_management_detected`` once.

    Raises:
        ConfigurationError: the resulting configuration is refused (e.g. not https).
    """
    scopes = ("openid", "profile", "email", *(("offline_access",) if offline_access else ()))
    return ProviderConfig(
        id=id,
        issuer=env_url.removesuffix("/"),
        client_id=client_id,
        client_secret=client_secret,
        client_auth="client_secret_post",
        scopes=scopes,
        leeway=leeway,
        allowed_authorization_params=SCALEKIT_AUTHORIZATION_PARAMS,
        post_logout_redirect_uri=post_logout_redirect_uri,
        fetch_userinfo=fetch_userinfo,
        claim_paths=CLAIM_PATHS,
        access_token_claims=AccessTokenClaims(),  # aud = [client_id], as Scalekit mints it
        allow_insecure_http=allow_insecure_http,
        hooks=ProviderHooks(
            authorization_params=LoginHintRouting() if route_login_hint else None,
            identity=ScalekitIdentity(
                stable_key=stable_identity_key, user_management=user_management
            ),
        ),
    )


def documented_metadata(config: ProviderConfig) -> ProviderMetadata:
    """The metadata Scalekit documents for ``config``'s environment, for when it publishes no
    discovery document. Only what Scalekit states is listed: code flow, RS256, S256,
    ``client_secret_post``; no UserInfo endpoint."""
    base = config.issuer
    return ProviderMetadata(
        issuer=base,
        authorization_endpoint=base + DOCUMENTED_PATHS["authorization_endpoint"],
        token_endpoint=base + DOCUMENTED_PATHS["token_endpoint"],
        jwks_uri=base + DOCUMENTED_PATHS["jwks_uri"],
        end_session_endpoint=base + DOCUMENTED_PATHS["end_session_endpoint"],
        response_types_supported=("code",),
        subject_types_supported=("public",),
        id_token_signing_alg_values_supported=("RS256",),
        grant_types_supported=("authorization_code", "refresh_token", "client_credentials"),
        code_challenge_methods_supported=("S256",),
        token_endpoint_auth_methods_supported=("client_secret_post",),
        scopes_supported=("openid", "profile", "email", "offline_access"),
    )


def discovery_absent(exc: DiscoveryError) -> bool:
    """True when discovery failed because the document does not exist (HTTP 404).

    Reads the chained ``httpx.HTTPStatusError`` that :func:`rpkit.discovery.fetch_metadata`
    raises from; see the report's proposed ``DiscoveryError.status`` seam.
    """
    cause = exc.__cause__
    return isinstance(cause, httpx.HTTPStatusError) and cause.response.status_code == 404


class ScalekitDiscoveryCache(DiscoveryCache):
    """rpkit's :class:`~rpkit.discovery.DiscoveryCache`, plus the documented endpoints for the
    Scalekit environments in ``fallback_for`` when their discovery document is absent.

    Pass it to :class:`~rpkit.client.RelyingParty` as ``discovery=``. Other providers are served
    exactly as by the base class. A fallback is re-checked every ``fallback_ttl`` seconds, so a
    document that appears later is picked up; a document once fetched is never replaced by the
    fallback (the base class serves it stale through outages instead).

    Args:
        http: the application's pooled client.
        fallback_for: the Scalekit provider configurations that may fall back.
        fallback_ttl: seconds the fallback is served before discovery is tried again.
        ttl: see :class:`~rpkit.discovery.DiscoveryCache`.
        retry_after: see :class:`~rpkit.discovery.DiscoveryCache`.
        max_bytes: the largest discovery document read, as for
            :class:`~rpkit.discovery.DiscoveryCache`.
        timeout: seconds the discovery request may take in all.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        fallback_for: Iterable[ProviderConfig],
        fallback_ttl: float = 3600,
        ttl: float = 3600,
        retry_after: float = 30,
        max_bytes: int = MAX_DISCOVERY_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            http,
            ttl=ttl,
            retry_after=retry_after,
            max_bytes=max_bytes,
            timeout=timeout,
            clock=clock,
        )
        if fallback_ttl <= 0:
            raise ConfigurationError("ScalekitDiscoveryCache needs fallback_ttl > 0")
        self._fallbacks = {config.issuer: documented_metadata(config) for config in fallback_for}
        self._fallback_ttl = fallback_ttl
        self._fallback_clock = clock
        self._fallback_until: dict[str, float] = {}

    async def get(self, config: ProviderConfig) -> ProviderMetadata:
        """The validated discovery document, or the documented endpoints when it is absent.

        Raises:
            IssuerMismatchError: the document names another issuer (never falls back).
            DiscoveryError: any failure other than an absent document.
        """
        fallback = self._fallbacks.get(config.issuer)
        if fallback is None:
            return await super().get(config)
        until = self._fallback_until.get(config.issuer)
        if until is not None and self._fallback_clock() < until:
            return fallback
        try:
            return await super().get(config)
        except DiscoveryError as exc:
            if not discovery_absent(exc):
                raise
        self._fallback_until[config.issuer] = self._fallback_clock() + self._fallback_ttl
        get_logger(provider=config.id, issuer=config.issuer).warning(
            "rpkit.scalekit.discovery_absent", using="documented_paths"
        )
        return fallback

    def invalidate(self, issuer: str) -> None:
        """Forget the document, or the fallback, of ``issuer``."""
        super().invalidate(issuer)
        self._fallback_until.pop(issuer, None)


def resource_token_policy(
    env_url: str,
    *,
    audience: str | Sequence[str],
    resource_id: str | None = None,
    accept_environment_issuer: bool = True,
    required_scopes: Sequence[str] = (),
    leeway: int = 60,
) -> AccessTokenPolicy:
    """An :class:`~rpkit.access_token.AccessTokenPolicy` for tokens Scalekit mints for an API or
    MCP resource.

    Scalekit is migrating resource tokens' ``iss`` from ``{env}`` to ``{env}/resources/{id}``;
    with ``resource_id`` both are accepted (unless ``accept_environment_issuer=False``). Keys
    always come from ``{env}/keys`` (``{env}/resources/{id}/keys`` does not exist).

    Args:
        env_url: the environment URL.
        audience: the resource's identifier(s) expected in ``aud`` (``res_...`` or its URL).
        resource_id: the resource id, enabling the resource-scoped issuer.
        accept_environment_issuer: also accept ``{env}`` as issuer. Every token the environment
            mints for any audience then has this issuer, so ``aud`` is what tells them apart.
        required_scopes: scopes every token must grant.
        leeway: clock tolerance in seconds.

    Raises:
        ConfigurationError: no issuer would be accepted, or the policy is contradictory.
    """
    env = env_url.removesuffix("/")
    issuers = [env] if accept_environment_issuer else []
    if resource_id is not None:
        issuers.append(f"{env}/resources/{resource_id}")
    if not issuers:
        raise ConfigurationError("accept_environment_issuer=False needs a resource_id")
    return AccessTokenPolicy(
        issuers=tuple(issuers),
        jwks_uri=env + DOCUMENTED_PATHS["jwks_uri"],
        audience=(audience,) if isinstance(audience, str) else tuple(audience),
        required_scopes=tuple(required_scopes),
        leeway=leeway,
        claim_paths=CLAIM_PATHS,
    )
