"""Bearer access tokens for APIs: the acceptance policy and the claim checks.

An :class:`AccessTokenPolicy` names the accepted issuers, audience, algorithms, types and
required scopes; :meth:`rpkit.id_token.TokenValidator.validate_access_token` verifies the
signature with a key from the policy's ``jwks_uri`` and then applies the checks here, returning
an :class:`AccessToken`. This runs on every API request, so the checks are plain Python over the
decoded claims, with no per-call setup.

Example:
    >>> from rpkit.access_token import AccessTokenPolicy
    >>> policy = AccessTokenPolicy(
    ...     issuers=("https://auth.example.com",),
    ...     jwks_uri="https://auth.example.com/keys",
    ...     audience=("https://api.example.com",),
    ...     required_scopes=("orders:read",),
    ... )
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from rpkit._frozen import freeze
from rpkit._jwt import Rejected, audiences, check_times, show, string_claim
from rpkit.config import MAX_LEEWAY, TENANT_PLACEHOLDER, TenantPolicy
from rpkit.errors import ConfigurationError
from rpkit.jwks import KEY_TYPES
from rpkit.tenants import check_issuer

__all__ = ["AccessToken", "AccessTokenPolicy", "check_access_token_claims"]


class AccessTokenPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What a bearer-protected API accepts. Refused at construction when contradictory."""

    issuers: tuple[str, ...]
    """Accepted ``iss`` values, compared exactly (e.g. Scalekit's ``{env}`` and
    ``{env}/resources/{id}``). Every issuer listed can mint tokens for this API. With
    :attr:`tenants`, an entry may be a template containing ``{tenantid}``."""
    jwks_uri: str
    """Where the issuers' signing keys are published; the only source of keys."""
    audience: tuple[str, ...]
    """The token's ``aud`` must contain one of these. Use the API's own identifier, not an OAuth
    client id: an ID token's ``aud`` is the client id, so that choice lets ID tokens through
    unless ``required_scopes`` or ``accepted_types`` stop them."""
    algorithms: tuple[str, ...] = ("RS256",)
    """Accepted asymmetric algorithms. HS* and ``none`` are refused: an API shares no secret with
    the issuer, and an unsigned token proves nothing."""
    required_scopes: tuple[str, ...] = ()
    """Each must be granted (``scope`` string, ``scopes`` or ``scp``); a miss is
    ``reason="scope"`` (HTTP 403). Requiring a scope also keeps ID tokens out: they carry none."""
    leeway: int = 60
    """Clock tolerance in seconds for ``exp``, ``nbf`` and ``iat`` (at most 120). Larger values
    accept tokens that are already expired."""
    audience_claim: Literal["aud", "client_id"] = "aud"
    """Which claim must name one of :attr:`audience`. ``client_id`` is for issuers whose access
    tokens carry no ``aud`` (AWS Cognito user pools put the app client id in ``client_id``);
    then :attr:`audience` lists the accepted app client ids and ``aud`` is not read. Logged by
    the bearer integration as a relaxation: any app client of the pool listed here can call
    the API."""
    tenants: TenantPolicy | None = None
    """Multi-tenant issuers (Entra ID): a token whose ``iss`` is not listed exactly is accepted
    only when it equals a ``{tenantid}`` template of :attr:`issuers` filled with the token's own
    tenant claim, and that tenant is allowed."""
    accepted_types: tuple[str, ...] = ("at+jwt", "application/at+jwt", "jwt")
    """Accepted ``typ`` headers, compared case-insensitively (stored lower-case); a token without
    ``typ`` passes. Dropping ``jwt`` enforces RFC 9068 §4 and refuses ID tokens (``typ: JWT``)
    outright; keep it for issuers, like Scalekit, that label access tokens ``JWT``."""

    def __post_init__(self) -> None:
        problem = _policy_problem(self)
        if problem is not None:
            raise ConfigurationError(f"AccessTokenPolicy: {problem}")
        lowered = tuple(typ.lower() for typ in self.accepted_types)
        msgspec.structs.force_setattr(self, "accepted_types", lowered)


def _policy_problem(policy: AccessTokenPolicy) -> str | None:
    if not policy.issuers or not policy.audience or not policy.jwks_uri:
        return "issuers, audience and jwks_uri must not be empty"
    weak = [alg for alg in policy.algorithms if alg not in KEY_TYPES]
    if weak or not policy.algorithms:
        return (
            f"algorithms must be asymmetric JWS algorithms, not {weak or 'an empty list'} "
            "(HS* would need a secret shared with the issuer; 'none' proves nothing)"
        )
    if not 0 <= policy.leeway <= MAX_LEEWAY:
        return f"leeway must be between 0 and {MAX_LEEWAY} seconds"
    templated = any(TENANT_PLACEHOLDER in issuer for issuer in policy.issuers)
    if templated != (policy.tenants is not None):
        return f"an issuer template with {TENANT_PLACEHOLDER} and tenants go together"
    return None


class AccessToken(msgspec.Struct, frozen=True):
    """A validated bearer access token. :attr:`claims` holds every claim, read-only."""

    iss: str
    sub: str
    aud: tuple[str, ...]
    exp: int
    iat: int
    scopes: frozenset[str]
    client_id: str | None
    """RFC 9068 ``client_id``, else ``azp``, else None."""
    claims: Mapping[str, Any]


def check_access_token_claims(
    claims: dict[str, Any], policy: AccessTokenPolicy, now: float
) -> AccessToken:
    """The claim checks of an access token whose signature was verified.

    Raises:
        Rejected: ``iss``, ``aud``, ``exp``, ``iat``, ``nbf``, ``sub``, ``scope`` or
            ``malformed``.
    """
    iss = _issuer(claims, policy)
    aud = _audience(claims, policy)
    iat, exp = check_times(claims, now, policy.leeway, None)
    sub = string_claim(claims)
    scopes = _scopes(claims)
    missing = [scope for scope in policy.required_scopes if scope not in scopes]
    if missing:
        raise Rejected("scope", f"required scopes {missing} were not granted")
    return AccessToken(iss, sub, aud, exp, iat, scopes, _client_id(claims), freeze(claims))


def _audience(claims: Mapping[str, Any], policy: AccessTokenPolicy) -> tuple[str, ...]:
    """``aud`` names one of the API's audiences; or, with ``audience_claim="client_id"``, the
    ``client_id`` claim is one of them (and ``aud``, when present, is still reported)."""
    if policy.audience_claim == "client_id":
        client_id = claims.get("client_id")
        if type(client_id) is not str or client_id not in policy.audience:
            raise Rejected("aud", f"client_id {show(client_id)} is not an accepted client")
        return audiences(claims) if "aud" in claims else ()
    aud = audiences(claims)
    if not any(audience in aud for audience in policy.audience):
        raise Rejected("aud", f"aud {show(list(aud))} names none of this API's audiences")
    return aud


def _issuer(claims: Mapping[str, Any], policy: AccessTokenPolicy) -> str:
    """``iss`` listed exactly, or a ``{tenantid}`` template filled with the token's own allowed
    tenant; never the template itself."""
    iss = claims.get("iss")
    if type(iss) is str and iss in policy.issuers and TENANT_PLACEHOLDER not in iss:
        return iss
    rejection = Rejected("iss", f"iss {show(iss)} is not an accepted issuer")
    for template in policy.issuers:
        if TENANT_PLACEHOLDER not in template:
            continue
        try:
            return check_issuer(claims, template, policy.tenants)[0]
        except Rejected as exc:
            rejection = exc
    raise rejection


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """Granted scopes: the RFC 9068 ``scope`` string, plus ``scopes``/``scp`` (string or array),
    which Scalekit, Okta and Entra ID use."""
    granted: set[str] = set()
    for name in ("scope", "scopes", "scp"):
        value = claims.get(name)
        if value is None:
            continue
        if type(value) is str:
            granted.update(value.split())
        elif type(value) is list and all(type(item) is str for item in value):
            granted.update(value)
        else:
            raise Rejected("malformed", f"{name} is not a string or an array of strings")
    return frozenset(granted)


def _client_id(claims: Mapping[str, Any]) -> str | None:
    client_id = claims.get("client_id", claims.get("azp"))
    if client_id is not None and type(client_id) is not str:
        raise Rejected("malformed", "client_id is not a string")
    return client_id
