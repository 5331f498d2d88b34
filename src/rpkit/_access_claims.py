"""The relying party's own access token, verified so that its claims can authorize the session.

OAuth 2.0 clients are meant to treat access tokens as opaque, and most providers' are for some
other API. Some providers put the user's roles, permissions and organization only there
(Scalekit: "accessToken: Contains roles and permissions for authorization decisions"; Keycloak's
``realm_access``), so a provider may opt in with
:attr:`~rpkit.config.ProviderConfig.access_token_claims`. Then the token of each login and
refresh goes through the bearer checks of
:meth:`~rpkit.id_token.TokenValidator.validate_access_token` (signature with a key of the
provider's ``jwks_uri``, ``iss``, the audience rule, ``exp``, ``nbf``, ``iat``, and never an ID
token), and only a token that passes them contributes claims.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rpkit._log import get_logger
from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import AccessTokenClaims
from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.errors import AccessTokenValidationError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache

__all__ = ["AccessClaimsVerifier"]


class AccessClaimsVerifier:
    """Verifies access tokens of logins and refreshes against their provider's
    :class:`~rpkit.authz.AccessTokenClaims`.

    Its validator keeps no verified-token cache: each token is seen once (at its login or
    refresh), so caching it would only take memory from an API's cache.
    """

    def __init__(self, jwks: JWKSCache, *, clock: Callable[[], float]) -> None:
        self._validator = TokenValidator(jwks, clock=clock, access_token_cache_size=0)
        self._policies: dict[str, tuple[ProviderConfig, str, AccessTokenPolicy]] = {}

    async def verify(
        self, config: ProviderConfig, metadata: ProviderMetadata, token: str
    ) -> Mapping[str, Any] | None:
        """The verified claims of ``token`` (read-only), or None: the provider reads no access
        tokens, or this one failed a check (logged at info as ``rpkit.access_claims.unverified``
        with the failed ``check``; never an error for the caller)."""
        rules = config.access_token_claims
        if rules is None:
            return None
        log = get_logger(provider=config.id, issuer=config.issuer)
        if not metadata.jwks_uri:
            log.info("rpkit.access_claims.unverified", check="key", detail="no jwks_uri")
            return None
        policy = self._policy(config, rules, metadata.jwks_uri)
        try:
            access = await self._validator.validate_access_token(token, policy)
        except AccessTokenValidationError as exc:
            log.info("rpkit.access_claims.unverified", check=exc.reason)
            return None
        return access.claims

    def _policy(
        self, config: ProviderConfig, rules: AccessTokenClaims, jwks_uri: str
    ) -> AccessTokenPolicy:
        known = self._policies.get(config.id)
        if known is not None and known[0] is config and known[1] == jwks_uri:
            return known[2]
        policy = AccessTokenPolicy(
            issuers=(config.issuer,),
            jwks_uri=jwks_uri,
            audience=rules.audiences(config.client_id),
            algorithms=rules.algorithms,
            leeway=config.leeway,
            audience_claim=rules.audience_claim,
            tenants=config.tenants,
        )
        self._policies[config.id] = (config, jwks_uri, policy)
        return policy
