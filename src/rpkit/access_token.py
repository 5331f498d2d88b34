"""Bearer access tokens for APIs: the acceptance policy and the claim checks.

An :class:`AccessTokenPolicy` names the accepted issuers, audience, algorithms, types and
required scopes; :meth:`rpkit.id_token.TokenValidator.validate_access_token` verifies the
signature with a key from the policy's ``jwks_uri`` and then applies the checks here, returning
an :class:`AccessToken`. This runs on every API request, so the checks are plain Python over the
decoded claims, with no per-call setup.

**An ID token is never an access token.** Many OPs sign both with one key and label both
``typ: JWT``, and some put the API's audience in ID tokens too (LemonLDAP::NG's additional
audiences; Entra ID when the client and the API are one app registration), so signature, issuer
and audience cannot tell them apart. :func:`check_access_token_claims` decides the kind in this
order, refusing an ID token with ``reason="id_token"``:

1. What the issuer declares. Header ``typ: at+jwt`` declares an access token (RFC 9068 §2.1).
   Keycloak's payload ``typ`` is ``Bearer`` for access tokens and ``ID`` or ``Serialized-ID``
   for ID tokens (keycloak/keycloak ``core/src/main/java/org/keycloak/util/TokenUtil.java``);
   Cognito's ``token_use`` is ``access`` or ``id``
   (https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-the-access-token.html).
   A declared ID token is refused; a declared access token is not searched for ID-token claims,
   because Keycloak before 25 copied ``nonce`` into access tokens (keycloak/keycloak#26893, fixed
   by #27588).
2. Otherwise, the claims only ID tokens carry: ``nonce``, ``at_hash``, ``c_hash`` (OpenID
   Connect Core §2, §3.3.2.11) and ``s_hash`` (FAPI 1.0 Advanced §5.1). Azure AD B2C documents
   ``nonce``, ``at_hash`` and ``c_hash`` as ID-token-only
   (https://learn.microsoft.com/azure/active-directory-b2c/tokens-overview), and
   LemonLDAP::NG's token endpoint puts ``at_hash`` in every ID token it issues with an access
   token (``Lemonldap/NG/Portal/Issuer/OpenIDConnect.pm``).
3. Otherwise (no declaration, no ID-token claim) the token is taken for an access token: no
   documented claim tells such a token apart, and refusing it would refuse real access tokens
   (Scalekit's and Entra ID's are ``typ: JWT`` and carry none of these markers). Close that gap
   with ``required_scopes`` (ID tokens grant no scope) or ``require_rfc9068=True``.

Claims deliberately not used as markers: ``auth_time``, which access tokens carry too
(Cognito, per the page above; PingOne,
https://developer.pingidentity.com/pingone-api/foundations/authentication-concepts/access-tokens-and-id-tokens/token-claims.html;
Keycloak and Okta); ``sid``, ``acr``, ``azp`` (Keycloak access tokens carry them); ``roles``
(Entra ID puts app roles in ID tokens too,
https://learn.microsoft.com/graph/api/resources/approleassignment); and a missing ``scope``
(optional even in RFC 9068, §2.2.3).

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
from types import MappingProxyType
from typing import Any, Final, Literal

import msgspec

from rpkit._frozen import freeze, freeze_owned
from rpkit._jwt import MAX_CLAIM_LENGTH, Rejected, audiences, check_times, show, string_claim
from rpkit.authz import ClaimPaths
from rpkit.config import MAX_LEEWAY, TENANT_PLACEHOLDER, TenantPolicy
from rpkit.errors import ConfigurationError
from rpkit.jwks import KEY_TYPES
from rpkit.tenants import check_issuer

__all__ = [
    "ID_TOKEN_CLAIMS",
    "RFC9068_TYPES",
    "AccessToken",
    "AccessTokenPolicy",
    "accepted_issuer",
    "check_access_token_claims",
]

ID_TOKEN_CLAIMS: Final = ("nonce", "at_hash", "c_hash", "s_hash")
"""Claims only ID tokens carry (OpenID Connect Core §2, §3.3.2.11; FAPI 1.0 Advanced §5.1): any
of them marks a token that declares no kind as an ID token (see the module docstring)."""
RFC9068_TYPES: Final = ("at+jwt", "application/at+jwt")
"""The ``typ`` header values of an RFC 9068 JWT access token (§2.1, §4)."""
_DEFAULT_TYPES: Final = ("at+jwt", "application/at+jwt", "jwt")
# What issuers declare about a token's kind, claim → value → kind (module docstring, step 1):
# Keycloak's payload ``typ`` (TokenUtil.java) and Cognito's ``token_use``.
_DECLARATIONS: Final = {
    "typ": {"Bearer": "access", "ID": "id", "Serialized-ID": "id"},
    "token_use": {"access": "access", "id": "id"},
}
_KIND_CLAIMS: Final = frozenset((*_DECLARATIONS, *ID_TOKEN_CLAIMS))
"""Every claim that declares a token's kind or marks an ID token."""


class AccessTokenPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What a bearer-protected API accepts. Refused at construction when contradictory.

    ID tokens are refused whatever the other settings (``reason="id_token"``): a token is one
    when its issuer declares it so (Keycloak ``typ: ID``, Cognito ``token_use: id``) or, absent
    any declaration, when it carries an ID-token-only claim (:data:`ID_TOKEN_CLAIMS`). The
    module docstring gives the sources and the claims deliberately not used. A token with no
    marker at all is taken for an access token; :attr:`required_scopes` or
    :attr:`require_rfc9068` close that gap where the OP puts the API's audience in ID tokens.
    """

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
    audience_claim: Literal["aud", "client_id", "azp"] = "aud"
    """Which claim must name one of :attr:`audience`. ``client_id`` is for issuers whose access
    tokens carry no ``aud`` (AWS Cognito user pools put the app client id in ``client_id``);
    then :attr:`audience` lists the accepted app client ids and ``aud`` is not read. Logged by
    the bearer integration as a relaxation: any app client of the pool listed here can call
    the API. ``azp`` names the client that asked for the token (Keycloak); it is meant for a
    relying party reading its own login's token (:class:`rpkit.authz.AccessTokenClaims`), not
    for an API, which must check ``aud``."""
    tenants: TenantPolicy | None = None
    """Multi-tenant issuers (Entra ID): a token whose ``iss`` is not listed exactly is accepted
    only when it equals a ``{tenantid}`` template of :attr:`issuers` filled with the token's own
    tenant claim, and that tenant is allowed."""
    accepted_types: tuple[str, ...] = _DEFAULT_TYPES
    """Accepted ``typ`` headers, compared case-insensitively (stored lower-case); a token without
    ``typ`` passes unless :attr:`require_rfc9068`. Dropping ``jwt`` refuses every ``typ: JWT``
    token, ID tokens included; keep it for issuers, like Scalekit, Keycloak and Entra ID, that
    label access tokens ``JWT``."""
    require_rfc9068: bool = False
    """Accept only RFC 9068 JWT access tokens (§4): header ``typ`` present and ``at+jwt`` (or
    ``application/at+jwt``), and the ``client_id`` and ``jti`` claims present (``iss``, ``sub``,
    ``aud``, ``exp`` and ``iat`` are always required). The strictest discriminator: no ID token
    is typed ``at+jwt``. With the default :attr:`accepted_types` they narrow to
    :data:`RFC9068_TYPES`; listing another type, or ``audience_claim="client_id"`` (no ``aud``),
    is refused as a contradiction. Refuses tokens of issuers that do not follow RFC 9068
    (Scalekit, Keycloak, Entra ID, Cognito label theirs ``JWT`` or not at all)."""
    ignored_id_token_claims: tuple[str, ...] = ()
    """A relaxation, logged at startup by the bearer integration: names from
    :data:`ID_TOKEN_CLAIMS` that this issuer also copies into its access tokens, so that they no
    longer mark a token as an ID token (e.g. ``("nonce",)``). The other markers, and an
    issuer's own declaration (Keycloak ``typ: ID``, Cognito ``token_use: id``), still refuse ID
    tokens. Keycloak before 25 needs no entry: its access tokens declare ``typ: Bearer``."""
    claim_paths: ClaimPaths | None = None
    """Where this issuer's tokens hold roles, permissions and the organization, for the guards
    ``requires_role``, ``requires_permission`` and ``requires_org``
    (:class:`~rpkit.authz.ClaimPaths`; every accepted token carries them as
    :attr:`AccessToken.claim_paths`). A path must name the client itself: ``{client_id}`` is
    refused here, an API has no client id of its own. None: those guards deny."""

    def __post_init__(self) -> None:
        problem = _policy_problem(self)
        if problem is not None:
            raise ConfigurationError(f"AccessTokenPolicy: {problem}")
        lowered = tuple(typ.lower() for typ in self.accepted_types)
        if self.require_rfc9068 and lowered == _DEFAULT_TYPES:
            lowered = RFC9068_TYPES
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
    unknown = [name for name in policy.ignored_id_token_claims if name not in ID_TOKEN_CLAIMS]
    if unknown:
        return f"ignored_id_token_claims {unknown} are not among {list(ID_TOKEN_CLAIMS)}"
    problem = _rfc9068_problem(policy) if policy.require_rfc9068 else None
    paths = policy.claim_paths
    if problem is None and paths is not None and paths.needs_client_id:
        problem = "claim_paths: name the client instead of {client_id} (an API has no client id)"
    return problem


def _rfc9068_problem(policy: AccessTokenPolicy) -> str | None:
    if policy.audience_claim != "aud":
        return "require_rfc9068 needs aud (RFC 9068 §2.2); set audience_claim='aud'"
    types = {typ.lower() for typ in policy.accepted_types}
    if types != set(_DEFAULT_TYPES) and not types <= set(RFC9068_TYPES):
        others = sorted(types - set(RFC9068_TYPES))
        return f"require_rfc9068 accepts typ at+jwt only; drop {others} from accepted_types"
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
    jkt: str | None = None
    """The ``cnf.jkt`` of a DPoP-bound token (RFC 9449 §6.1): the thumbprint of the key whose
    proof must accompany every use of the token; None for an unbound token."""
    claim_paths: ClaimPaths | None = None
    """The :attr:`AccessTokenPolicy.claim_paths` of the policy that accepted the token."""


def check_access_token_claims(
    claims: dict[str, Any],
    policy: AccessTokenPolicy,
    now: float,
    *,
    header: Mapping[str, Any] | None = None,
) -> AccessToken:
    """The claim checks of an access token whose signature was verified.

    An ID token is refused before the scopes are read, so it is told it is not an access token
    (401) rather than that it lacks a scope (403).

    Args:
        claims: the verified payload (not changed: the token gets a read-only copy).
        policy: the policy of the token's issuer.
        now: the current time, in seconds.
        header: the token's protected header: its ``typ: at+jwt`` declares an access token,
            and :attr:`~AccessTokenPolicy.require_rfc9068` needs ``typ`` present. None when the
            caller checked ``typ`` against ``accepted_types`` and has no header to give; a
            missing ``typ`` then goes unnoticed.

    Raises:
        Rejected: ``iss``, ``aud``, ``exp``, ``iat``, ``nbf``, ``sub``, ``id_token``, ``typ``,
            ``client_id``, ``jti``, ``scope``, ``cnf`` or ``malformed``.
    """
    return accept_claims(claims, policy, now, header, owned=False)[0]


def accept_claims(  # noqa: PLR0912 - shortcuts inline, see the comment below
    claims: dict[str, Any],
    policy: AccessTokenPolicy,
    now: float,
    header: Mapping[str, Any] | None,
    *,
    owned: bool,
    flat: bool = False,
    iss: str | None = None,
) -> tuple[AccessToken, int | None]:
    """:func:`check_access_token_claims`, also returning the token's ``nbf`` (None when absent).

    ``owned``: ``claims`` is the caller's own fresh decoding, used by nobody else, so the token's
    read-only claims are made from it in place instead of from a copy (the validator's path);
    ``flat``: that decoding is :meth:`~rpkit._jwt.Compact.flat_claims`' flat one, already
    deeply read-only once wrapped; ``iss``: what :func:`accepted_issuer` already returned for
    these claims and this policy (the validator checks it before the key lookup).
    """
    # The commonest shapes are accepted inline: each shortcut holds only when the helper beside
    # it would return the same, and anything else goes to that helper, which decides. (A call
    # costs several times more on a busy server than in a loop: bench/README.md.)
    if iss is None:
        iss = accepted_issuer(claims, policy)
    aud = claims.get("aud")
    if type(aud) is tuple and len(aud) == 1:  # flat claims' one-element array
        aud = aud[0]
    if type(aud) is str and aud and aud in policy.audience and policy.audience_claim == "aud":
        auds: tuple[str, ...] = (aud,)
    else:
        auds = _audience(claims, policy)
    iat, exp, nbf = check_times(claims, now, policy.leeway, None)
    sub = claims.get("sub")
    if type(sub) is not str or not 0 < len(sub) <= MAX_CLAIM_LENGTH:
        sub = string_claim(claims)
    if not _KIND_CLAIMS.isdisjoint(claims):  # else no declaration in the payload and no marker
        _check_not_id_token(claims, header, policy)
    if policy.require_rfc9068:
        _check_rfc9068(claims, header)
    jkt = _confirmation(claims) if "cnf" in claims else None
    scope = claims.get("scope")
    if type(scope) is str and "scopes" not in claims and "scp" not in claims:
        scopes = frozenset(scope.split())  # RFC 9068's scope alone
    else:
        scopes = _scopes(claims)
    if policy.required_scopes:
        missing = [scope for scope in policy.required_scopes if scope not in scopes]
        if missing:
            raise Rejected("scope", f"required scopes {missing} were not granted")
    client_id = claims.get("client_id", claims.get("azp"))
    if client_id is not None and type(client_id) is not str:
        raise Rejected("malformed", "client_id is not a string")
    if not owned:
        frozen: Mapping[str, Any] = freeze(claims)
    else:
        frozen = MappingProxyType(claims) if flat else freeze_owned(claims)
    paths = policy.claim_paths
    return AccessToken(iss, sub, auds, exp, iat, scopes, client_id, frozen, jkt, paths), nbf


def _confirmation(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.jkt`` (RFC 9449 §6.1), or None without ``cnf``. A ``cnf`` naming no ``jkt``
    (``x5t#S256``, RFC 8705 §3.1) binds the token to something rpkit cannot confirm: refused,
    rather than accepted as a plain bearer token."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if type(cnf) is dict else None
    if type(jkt) is not str or not 0 < len(jkt) <= 128:
        raise Rejected("cnf", "cnf names no DPoP key (jkt); other confirmations are unsupported")
    return jkt


def _check_not_id_token(
    claims: Mapping[str, Any], header: Mapping[str, Any] | None, policy: AccessTokenPolicy
) -> None:
    """Refuse an ID token: declared so by its issuer, or carrying an ID-token-only claim while
    declaring nothing (module docstring). Names go to the detail, never claim values."""
    declared = _declared_kinds(claims, header)
    if "id" in declared:
        raise Rejected("id_token", f"the issuer declares an ID token ({declared['id']})")
    if declared:
        return
    markers = [
        name
        for name in ID_TOKEN_CLAIMS
        if name in claims and name not in policy.ignored_id_token_claims
    ]
    if markers:
        raise Rejected("id_token", f"an ID token: it carries {markers}, which only ID tokens do")


def _declared_kinds(claims: Mapping[str, Any], header: Mapping[str, Any] | None) -> dict[str, str]:
    """Kind (``access`` or ``id``) → the declaration that says so, for each one present."""
    declared: dict[str, str] = {}
    typ = header.get("typ") if header is not None else None
    if type(typ) is str and typ.lower() in RFC9068_TYPES:
        declared["access"] = f"header typ {typ!r}"
    for claim, kinds in _DECLARATIONS.items():
        value = claims.get(claim)
        if type(value) is str and value in kinds:
            declared.setdefault(kinds[value], f"{claim} {value!r}")
    return declared


def _check_rfc9068(claims: Mapping[str, Any], header: Mapping[str, Any] | None) -> None:
    """RFC 9068 §2.1, §2.2, §4: header ``typ`` is ``at+jwt`` (when the header is given),
    ``client_id`` and ``jti`` are non-empty strings."""
    typ = header.get("typ") if header is not None else "at+jwt"
    if type(typ) is not str or typ.lower() not in RFC9068_TYPES:
        raise Rejected("typ", f"an RFC 9068 access token is typed at+jwt, not {show(typ)}")
    string_claim(claims, "client_id")
    string_claim(claims, "jti")


def _audience(claims: Mapping[str, Any], policy: AccessTokenPolicy) -> tuple[str, ...]:
    """``aud`` names one of the API's audiences; or, with ``audience_claim`` ``client_id`` or
    ``azp``, that claim is one of them (and ``aud``, when present, is still reported)."""
    if policy.audience_claim != "aud":
        name = policy.audience_claim
        client_id = claims.get(name)
        if type(client_id) is not str or client_id not in policy.audience:
            raise Rejected("aud", f"{name} {show(client_id)} is not an accepted client")
        return audiences(claims) if "aud" in claims else ()
    aud = audiences(claims)  # (accept_claims takes the common one-audience case inline)
    for audience in policy.audience:
        if audience in aud:
            return aud
    raise Rejected("aud", f"aud {show(list(aud))} names none of this API's audiences")


def accepted_issuer(claims: Mapping[str, Any], policy: AccessTokenPolicy) -> str:
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
            continue
        if type(value) is list or type(value) is tuple:
            for item in value:  # a loop, not all(): this runs on every first sight
                if type(item) is not str:
                    break
            else:
                granted.update(value)
                continue
        raise Rejected("malformed", f"{name} is not a string or an array of strings")
    return frozenset(granted)
