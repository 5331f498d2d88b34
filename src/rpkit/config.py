"""Provider configuration: what varies between identity providers, validated at construction.

A provider is data (this frozen Struct), not a subclass. Every field states its security
trade-off; contradictions are refused with a :class:`~rpkit.errors.ConfigurationError` that says
what to change.

Example:
    >>> from rpkit.config import ProviderConfig
    >>> okta = ProviderConfig(
    ...     id="okta",
    ...     issuer="https://example.okta.com",
    ...     client_id="0oa1",
    ...     client_secret="s3cret",
    ... )
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import msgspec

from rpkit.authz import AccessTokenClaims, ClaimPaths
from rpkit.errors import ConfigurationError
from rpkit.hooks import NO_HOOKS, ProviderHooks

__all__ = [
    "DEFAULT_AUTHORIZATION_PARAMS",
    "DPOP_ALGS",
    "RESERVED_AUTHORIZATION_PARAMS",
    "TENANT_PLACEHOLDER",
    "ClientAuthMethod",
    "Endpoints",
    "ParMode",
    "ProviderConfig",
    "ProviderKind",
    "TenantPolicy",
    "is_loopback_http",
]

ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
ParMode = Literal["auto", "required", "off"]
"""When to push the authorization request (RFC 9126): ``auto`` when the provider advertises a
``pushed_authorization_request_endpoint``, ``required`` always (a login refuses to start without
the endpoint), ``off`` never (refused when the provider requires PAR)."""
DPOP_ALGS = ("ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA")
"""Algorithms a DPoP key may sign proofs with (RFC 9449 §4.2: asymmetric only)."""
ProviderKind = Literal["oidc", "oauth2"]
"""``oidc``: OpenID Connect (ID token, discovery unless :class:`Endpoints` are given).
``oauth2``: OAuth 2.0 only (no ID token; the identity comes from a profile endpoint)."""
TENANT_PLACEHOLDER = "{tenantid}"
"""The placeholder of a multi-tenant issuer template (Entra ID's discovery of ``/common``)."""
GUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

RESERVED_AUTHORIZATION_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "response_mode",
        "request",
        "request_uri",
        "dpop_jkt",
    }
)
"""Parameters rpkit sets itself; no configuration or request may override them."""

DEFAULT_AUTHORIZATION_PARAMS = frozenset(
    {"login_hint", "prompt", "max_age", "acr_values", "ui_locales", "domain_hint"}
)
"""Extra authorization parameters a login request may carry unless the provider narrows them."""

SYMMETRIC_PREFIX = "HS"
ASYMMETRIC_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
MAX_LEEWAY = 120
MAX_IAT_AGE = 366 * 86400
"""Longest ``max_iat_age``: it also bounds how long a back-channel logout ``jti`` is kept."""
MAX_CODE_LENGTH = 65536
"""Largest ``max_code_length`` a provider may configure."""
_ORIGIN = re.compile(
    r"https?://(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
"""A bare origin: scheme, host (a DNS name or a bracketed IPv6 address) and optional port."""


def _split(url: str) -> SplitResult:
    """``url`` split, or an empty URL for text ``urlsplit`` cannot parse (an unbalanced ``[``
    or ``]``): every check on it then fails, and the issuer's check says why."""
    try:
        return urlsplit(url)
    except ValueError:
        return urlsplit("")


def is_loopback_http(url: str) -> bool:
    """True for ``http://`` URLs on 127.0.0.0/8, ``[::1]`` or ``localhost``; False for anything
    else, including text ``urlsplit`` cannot parse (an unbalanced ``[``)."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        if parts.scheme != "http" or not hostname:
            return False
        return hostname == "localhost" or ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class Endpoints(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's endpoints, configured instead of discovered: required for OAuth 2.0-only
    providers (they publish no discovery document), optional for OpenID Connect ones (then
    ``jwks_uri`` is required). Every URL must be ``https`` (loopback ``http`` only with
    ``allow_insecure_http``)."""

    authorization_endpoint: str
    """Where the browser is sent to sign in."""
    token_endpoint: str
    """Where the code is exchanged (and tokens refreshed); the client secret goes only here."""
    profile_endpoint: str | None = None
    """OAuth 2.0-only: where the identity is read (GitHub's ``/user``); OpenID Connect: the
    UserInfo endpoint."""
    jwks_uri: str | None = None
    """OpenID Connect: where the ID-token signing keys are published."""
    end_session_endpoint: str | None = None
    """RP-initiated logout; None logs out locally only."""
    authorization_response_iss_parameter_supported: bool = False
    """RFC 9207: when true, a callback without ``iss`` is refused."""

    def urls(self) -> dict[str, str]:
        """The configured URLs by member name."""
        return {
            name: value
            for name in self.__struct_fields__
            if isinstance(value := getattr(self, name), str)
        }


class TenantPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Which tenants of a multi-tenant issuer template may sign in.

    A token is accepted only when its ``iss`` equals the template with ``{tenantid}`` replaced by
    the token's own tenant claim, that claim has the tenant-id format, and the tenant is in
    :attr:`allowed` (or :attr:`any_tenant` is set).
    """

    allowed: frozenset[str] = frozenset()
    """Tenant ids whose users may sign in."""
    any_tenant: bool = False
    """Relaxation: accept every tenant of the provider — anyone with an account anywhere at the
    provider (any Microsoft work account, say) can sign in. Logged at startup. Use it only when
    the application authorises users itself after login."""
    claim: str = "tid"
    """The claim holding the token's tenant id."""
    pattern: str = GUID_PATTERN
    """A tenant id must match this (whole-string) regular expression; Entra ID's are GUIDs."""


class ProviderConfig(msgspec.Struct, frozen=True, kw_only=True):
    """One identity provider, as the relying party is registered at it."""

    id: str
    """Short identifier used in routes, logs and sessions (``[a-z0-9_-]``)."""
    issuer: str
    """The exact issuer. Compared as a plain string with the discovery document and every
    token's ``iss``: no normalisation, so a trailing slash matters (rows 2, 3)."""
    client_id: str
    """The client id registered at the provider."""
    client_secret: str | None = None
    """Shared secret for ``client_secret_basic``/``_post`` and HS* ID tokens. Keep it out of
    source control; it never appears in logs."""
    client_auth: ClientAuthMethod = "client_secret_basic"
    """How the token endpoint authenticates the client. ``private_key_jwt`` keeps no shared
    secret; ``none`` is for public clients and relies on PKCE alone."""
    private_key: dict[str, Any] | None = None
    """Private JWK for ``private_key_jwt`` (with ``kid``)."""
    private_key_alg: str = "RS256"
    """Signing algorithm of the ``private_key_jwt`` client assertion."""
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    """Requested scopes; must include ``openid``. Add ``offline_access`` for refresh tokens."""
    id_token_signed_response_alg: str = "RS256"  # noqa: S105 - an algorithm name
    """The one algorithm ID tokens may use. It comes from this configuration, never from the
    provider's metadata (row 22). HS* verifies with the client secret; ``none`` accepts unsigned
    tokens and must be chosen explicitly (row 24)."""
    userinfo_signed_response_alg: str | None = None
    """Expect UserInfo as a signed JWT with this algorithm; None expects JSON and rejects a JWT
    (row 48)."""
    leeway: int = 60
    """Clock tolerance in seconds for ``exp``, ``nbf`` and ``iat`` (at most 120). Larger values
    accept tokens that are already expired."""
    max_iat_age: int = 600
    """Reject ID and logout tokens whose ``iat`` is older than this many seconds (row 31), at
    most a year. In the code flow the provider mints the token at the exchange, so minutes are
    plenty; a logout token's ``jti`` is remembered for about this long."""
    max_age: int | None = None
    """Ask for re-authentication older than this many seconds (``max_age``); makes ``auth_time``
    required and checked (row 35)."""
    require_auth_time: bool = False
    """Require ``auth_time`` even without ``max_age``."""
    max_code_length: int = 2048
    """Longest authorization ``code`` a callback may carry, in characters (at most 65536). A
    longer code, or one outside RFC 6749's VSCHAR, is refused before the token request. RFC 6749
    sets no limit; raise this only for a provider whose codes are longer — every extra character
    is one more an attacker can make the token endpoint receive."""
    response_mode: Literal["query", "form_post"] = "query"
    """``form_post`` keeps the code out of URLs but needs a ``SameSite=None`` transaction cookie."""
    allowed_authorization_params: frozenset[str] = DEFAULT_AUTHORIZATION_PARAMS
    """Extra parameters a login request may pass to the provider; anything else is refused."""
    extra_authorization_params: dict[str, str] = msgspec.field(default_factory=dict)
    """Fixed extra parameters sent with every authorization request (must be allowed, never
    reserved)."""
    trusted_audiences: frozenset[str] = frozenset()
    """Extra ``aud`` values an ID token may carry besides the client id; ``azp`` must then equal
    the client id (row 27). Empty rejects any extra audience."""
    post_logout_redirect_uri: str | None = None
    """Where the provider sends the browser after RP-initiated logout; must be registered there."""
    frontchannel_logout: bool = False
    """Serve OpenID Connect Front-Channel Logout 1.0 for this provider (the Litestar route
    ``{path}/frontchannel-logout/{id}``; register it as the client's ``frontchannel_logout_uri``
    with ``frontchannel_logout_session_required=true``). rpkit then ends the sessions a request
    names by ``iss`` and ``sid`` and refuses one without them (400): a request naming nobody
    would have to end the framed browser's session, whose cookies are not sent cross-site. Off
    by default: anyone may send the browser there, so a leaked ``sid`` ends its session."""
    frontchannel_logout_frame_ancestors: tuple[str, ...] = ()
    """Origins (``https://host[:port]``) allowed to frame the front-channel logout route, in its
    ``Content-Security-Policy: frame-ancestors``. Empty: the issuer's origin and the discovered
    ``end_session_endpoint``'s origin, where the provider's logout page runs. Every other
    origin is refused by the browser."""
    frontchannel_logout_without_iss: bool = False
    """Relaxation for providers whose front-channel request carries ``sid`` but no ``iss``
    (Microsoft Entra ID; its preset sets it with ``frontchannel_logout``): a request naming
    only ``sid`` ends this provider's sessions of that ``sid``. An ``iss`` that is sent must
    still be this provider's, and ``sid`` is still required and bounded. Risk: ``sid`` is
    unique only per issuer (Front-Channel Logout §3), so the route's provider stands in for
    the issuer; the request proves no more than with ``iss`` (anyone who learns a ``sid`` can
    end its session). Needs ``frontchannel_logout=True``. Logged at startup."""
    allow_insecure_http: bool = False
    """Development only: allow ``http://`` issuers and endpoints on loopback addresses. Never
    enables ``http`` for other hosts."""
    default_token_lifetime: int = 300
    """Assumed access-token lifetime in seconds when the provider omits ``expires_in``."""
    fetch_userinfo: bool = True
    """Call UserInfo after login and merge its claims (identity always from the ID token)."""
    claim_paths: ClaimPaths | None = None
    """Where the provider puts roles, permissions and the organization
    (:class:`~rpkit.authz.ClaimPaths`), for the guards ``requires_role``,
    ``requires_permission`` and ``requires_org``. They are read from the verified access-token
    claims when :attr:`access_token_claims` is set, else from the identity's claims (the ID
    token's over UserInfo's). None: those guards deny every session of this provider."""
    access_token_claims: AccessTokenClaims | None = None
    """Verify the access token of each login and refresh as this says
    (:class:`~rpkit.authz.AccessTokenClaims`: the provider's keys and issuer, an audience rule,
    never an ID token) and keep what :attr:`claim_paths` read of it in the session. A token
    failing a check contributes nothing (logged at info); it never fails the login. None: the
    access token is never read, as OAuth 2.0 intends for clients."""
    kind: ProviderKind = "oidc"
    """``oidc`` or ``oauth2`` (OAuth 2.0-only: no ID token, identity from
    ``endpoints.profile_endpoint`` through ``hooks.identity``; ``state`` and PKCE stay
    mandatory, and ``scopes`` must not ask for ``openid``)."""
    endpoints: Endpoints | None = None
    """Configured endpoints instead of discovery (required for ``oauth2``)."""
    discovery_url: str | None = None
    """Where to fetch discovery when it is not under the issuer (Entra ID's ``/common``,
    ``/organizations``); the document's ``issuer`` must still equal :attr:`issuer` exactly."""
    tenants: TenantPolicy | None = None
    """Multi-tenant issuer: :attr:`issuer` is then a template containing ``{tenantid}``, and
    this policy says which tenants may sign in. Required exactly when the issuer has the
    placeholder."""
    accept_missing_nonce: bool = False
    """Relaxation for providers that do not echo the nonce (LinkedIn): the nonce is still sent,
    and a token with a *wrong* nonce is still refused, but a token *without* one is accepted.
    Risk: a stolen ID token of the same client could be replayed into another login of this
    provider (PKCE and the single-use code still stand in the way). Logged at startup."""
    skip_pkce: bool = False
    """Relaxation for providers that refuse PKCE for a client (LinkedIn enables PKCE per
    application): no ``code_challenge`` is sent and no ``code_verifier`` at the exchange. Risk: a
    stolen authorization code can be redeemed by whoever also holds the client secret, and
    nothing binds the code to this browser's login except ``state``. Refused for public
    clients (``client_auth='none'``), which have no secret. Logged at startup."""
    par: ParMode = "auto"
    """Pushed authorization requests (RFC 9126): the authorization parameters are POSTed to the
    provider with client authentication, and the browser carries only ``client_id`` and a
    one-time ``request_uri``, so they can be neither read nor altered on the way. ``auto`` (the
    default) pushes when discovery advertises ``pushed_authorization_request_endpoint``;
    ``required`` refuses to start a login without it; ``off`` never pushes (a relaxation, logged
    at startup; a login is refused when the provider sets
    ``require_pushed_authorization_requests``)."""
    dpop: bool = False
    """Sender-constrained tokens (RFC 9449): each login gets its own DPoP key (``dpop_alg``),
    kept server-side with the session; the token request, refresh and UserInfo carry a proof
    signed with it, and the authorization request carries its thumbprint (``dpop_jkt``). A
    token response whose ``token_type`` is not ``DPoP`` is refused. A stolen access or refresh
    token is useless without the key. Needs a provider that supports DPoP."""
    dpop_alg: str = "ES256"
    """The algorithm of DPoP keys and proofs: one of :data:`DPOP_ALGS` (asymmetric only)."""
    hooks: ProviderHooks = NO_HOOKS
    """The provider's typed hooks (:mod:`rpkit.hooks`); none by default."""

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ConfigurationError(f"provider {self.id!r}: {problem}")

    @property
    def is_symmetric(self) -> bool:
        """ID tokens are MACed with the client secret."""
        return self.id_token_signed_response_alg.startswith(SYMMETRIC_PREFIX)

    def relaxations(self) -> tuple[str, ...]:
        """Each check this configuration weakens on purpose, in words; logged at startup."""
        relaxed = []
        if self.allow_insecure_http:
            relaxed.append("allow_insecure_http: http:// accepted for loopback endpoints")
        if self.id_token_signed_response_alg == "none":  # noqa: S105 - an algorithm name
            relaxed.append("id_token_signed_response_alg='none': unsigned ID tokens accepted")
        elif self.is_symmetric:
            relaxed.append(
                f"id_token_signed_response_alg={self.id_token_signed_response_alg!r}: ID tokens "
                "verified with the client secret, which the provider also holds"
            )
        if self.trusted_audiences:
            relaxed.append(
                f"trusted_audiences={sorted(self.trusted_audiences)}: ID tokens may also be "
                "meant for these audiences"
            )
        if self.skip_pkce:
            relaxed.append("skip_pkce: no PKCE; state and the client secret protect the code")
        if self.accept_missing_nonce:
            relaxed.append("accept_missing_nonce: ID tokens without a nonce are accepted")
        if self.tenants is not None and self.tenants.any_tenant:
            relaxed.append("tenants.any_tenant: users of every tenant of the issuer may sign in")
        if self.frontchannel_logout_without_iss:
            relaxed.append(
                "frontchannel_logout_without_iss: a front-channel logout request naming only "
                "sid (no iss) ends this provider's sessions of that sid"
            )
        if self.par == "off":
            relaxed.append(
                "par='off': authorization requests travel in the browser's URL even where the "
                "provider offers pushed authorization requests"
            )
        return tuple(relaxed)

    @property
    def is_oauth2(self) -> bool:
        """An OAuth 2.0-only provider: no ID token."""
        return self.kind == "oauth2"


def _problems(config: ProviderConfig) -> list[str]:
    checks = [
        *_identity_problems(config),
        *_auth_problems(config),
        *_validation_problems(config),
        *_param_problems(config.extra_authorization_params, config.allowed_authorization_params),
        *_kind_problems(config),
        *_tenant_problems(config),
        *_authz_problems(config),
        *_frontchannel_problems(config),
        *_par_dpop_problems(config),
    ]
    return [message for message in checks if message]


def _identity_problems(config: ProviderConfig) -> list[str]:
    problems = []
    if not _PROVIDER_ID.fullmatch(config.id):
        problems.append("id must be 1-63 characters of a-z, 0-9, '_' and '-'")
    issuer = _split(config.issuer)
    if issuer.query or issuer.fragment or not issuer.netloc:
        problems.append("issuer must be an absolute URL without query or fragment")
    if issuer.scheme != "https" and not (
        config.allow_insecure_http and is_loopback_http(config.issuer)
    ):
        problems.append(
            "issuer must use https; for a local development provider on a loopback address set "
            "allow_insecure_http=True"
        )
    if not config.client_id:
        problems.append("client_id is required")
    if "openid" not in config.scopes and not config.is_oauth2:
        problems.append("scopes must include 'openid'")
    return problems


def _auth_problems(config: ProviderConfig) -> list[str]:
    method = config.client_auth
    minted = config.hooks.client_secret is not None
    if method in ("client_secret_basic", "client_secret_post") and not (
        config.client_secret or minted
    ):
        return [f"client_auth={method!r} needs client_secret or hooks.client_secret"]
    if minted and config.client_secret:
        return ["set client_secret or hooks.client_secret, not both"]
    if method == "private_key_jwt" and not (config.private_key and config.private_key.get("d")):
        return ["client_auth='private_key_jwt' needs private_key, a private JWK"]
    if method == "none" and config.skip_pkce:
        return ["skip_pkce is refused for public clients (client_auth='none'): PKCE is all"]
    if method == "none" and config.client_secret:
        return ["client_auth='none' is for public clients: remove client_secret or pick a method"]
    return []


def _validation_problems(config: ProviderConfig) -> list[str]:
    alg = config.id_token_signed_response_alg
    problems = []
    if alg not in ASYMMETRIC_ALGS and alg not in ("HS256", "HS384", "HS512", "none"):
        problems.append(f"id_token_signed_response_alg {alg!r} is not a supported JWS algorithm")
    if alg.startswith(SYMMETRIC_PREFIX) and not config.client_secret:
        problems.append(
            f"id_token_signed_response_alg={alg!r} is keyed by client_secret, which is unset"
        )
    if not 0 <= config.leeway <= MAX_LEEWAY:
        problems.append(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
    if not 0 < config.max_iat_age <= MAX_IAT_AGE:
        problems.append(f"max_iat_age must be between 1 and {MAX_IAT_AGE} seconds (a year)")
    if not 0 < config.max_code_length <= MAX_CODE_LENGTH:
        problems.append(f"max_code_length must be between 1 and {MAX_CODE_LENGTH} characters")
    if config.max_age is not None and config.max_age < 0:
        problems.append("max_age must be zero or positive")
    if config.default_token_lifetime <= 0:
        problems.append("default_token_lifetime must be positive")
    return problems


def _param_problems(params: dict[str, str], allowed: frozenset[str]) -> list[str]:
    reserved = sorted(RESERVED_AUTHORIZATION_PARAMS & (set(params) | allowed))
    if reserved:
        return [f"authorization parameters {reserved} are reserved: rpkit sets them itself"]
    unknown = sorted(set(params) - allowed)
    if unknown:
        return [f"extra_authorization_params {unknown} are not in allowed_authorization_params"]
    return []


def _frontchannel_problems(config: ProviderConfig) -> list[str]:
    ancestors = config.frontchannel_logout_frame_ancestors
    if ancestors and not config.frontchannel_logout:
        return ["frontchannel_logout_frame_ancestors needs frontchannel_logout=True"]
    if config.frontchannel_logout_without_iss and not config.frontchannel_logout:
        return ["frontchannel_logout_without_iss needs frontchannel_logout=True"]
    if config.frontchannel_logout and config.is_oauth2:
        return ["kind='oauth2' has no front-channel logout: there is no OpenID session (sid)"]
    tenant_host = TENANT_PLACEHOLDER in _split(config.issuer).netloc
    if config.frontchannel_logout and tenant_host and not ancestors:
        return [
            "an issuer template with the tenant in its host needs "
            "frontchannel_logout_frame_ancestors: its origin is not one origin"
        ]
    return _frame_ancestor_problems(config, ancestors)


def _frame_ancestor_problems(config: ProviderConfig, ancestors: Iterable[str]) -> list[str]:
    if isinstance(ancestors, str):  # else each character is reported as a bad origin
        return [
            "frontchannel_logout_frame_ancestors must be a tuple of origins, not one string: "
            f"write ({ancestors!r},)"
        ]
    bad = [origin for origin in ancestors if not _is_origin(config, origin)]
    if bad:
        return [
            f"frontchannel_logout_frame_ancestors {bad} must be origins such as "
            "'https://login.example' (no path, query or wildcard; http only on loopback with "
            "allow_insecure_http)"
        ]
    return []


def _is_origin(config: ProviderConfig, origin: str) -> bool:
    """A bare ``scheme://host[:port]``, nothing a CSP source list could read as more."""
    return bool(_ORIGIN.fullmatch(origin)) and _https_or_loopback(config, origin)


def _authz_problems(config: ProviderConfig) -> list[str]:
    if config.access_token_claims is not None and config.is_oauth2:
        return ["access_token_claims needs kind='oidc': an OAuth 2.0-only provider has no keys"]
    return []


def _kind_problems(config: ProviderConfig) -> list[str]:
    endpoints = config.endpoints
    problems = []
    if endpoints is not None:
        for name, url in endpoints.urls().items():
            if not _https_or_loopback(config, url):
                problems.append(f"endpoints.{name} must be an https URL")
        if not config.is_oauth2 and endpoints.jwks_uri is None:
            problems.append("an OpenID Connect provider with configured endpoints needs jwks_uri")
    if config.discovery_url is not None and not _https_or_loopback(config, config.discovery_url):
        problems.append("discovery_url must be an https URL")
    if not config.is_oauth2:
        return problems
    if endpoints is None or endpoints.profile_endpoint is None:
        problems.append("kind='oauth2' needs endpoints with a profile_endpoint (no discovery)")
    if config.hooks.identity is None:
        problems.append(
            "kind='oauth2' needs hooks.identity: there is no standard profile shape to read "
            "the stable user id from"
        )
    if "openid" in config.scopes:
        problems.append("kind='oauth2' must not request 'openid': no ID token would come back")
    if config.tenants is not None or config.discovery_url is not None:
        problems.append("kind='oauth2' has no issuer to template or discover")
    return problems


def _tenant_problems(config: ProviderConfig) -> list[str]:
    templated = TENANT_PLACEHOLDER in config.issuer
    policy = config.tenants
    if templated != (policy is not None):
        return [
            f"an issuer template with {TENANT_PLACEHOLDER} needs tenants=TenantPolicy(...), and "
            "tenants needs such an issuer"
        ]
    if policy is None:
        return []
    if templated and config.discovery_url is None and config.endpoints is None:
        return ["an issuer template cannot be discovered: set discovery_url (e.g. .../common)"]
    return _policy_problems(policy)


def _par_dpop_problems(config: ProviderConfig) -> list[str]:
    problems = []
    if config.par not in ("auto", "required", "off"):
        problems.append("par must be 'auto', 'required' or 'off'")
    if config.dpop_alg not in DPOP_ALGS:
        problems.append(f"dpop_alg must be one of {list(DPOP_ALGS)}")
    if config.dpop and config.is_oauth2:
        problems.append("dpop needs kind='oidc': OAuth 2.0-only profile endpoints take Bearer")
    return problems


def _policy_problems(policy: TenantPolicy) -> list[str]:
    if policy.allowed and policy.any_tenant:
        return ["tenants: give allowed tenant ids or any_tenant=True, not both"]
    if not policy.allowed and not policy.any_tenant:
        return ["tenants: list the allowed tenant ids, or set any_tenant=True (a relaxation)"]
    try:
        pattern = re.compile(policy.pattern)
    except re.error as exc:
        return [f"tenants.pattern is not a regular expression: {exc}"]
    bad = sorted(t for t in policy.allowed if not pattern.fullmatch(t))
    if bad:
        return [f"tenants.allowed {bad} do not match tenants.pattern"]
    return []


def _https_or_loopback(config: ProviderConfig, url: str) -> bool:
    parts = _split(url)
    if not parts.netloc:
        return False
    return parts.scheme == "https" or (config.allow_insecure_http and is_loopback_http(url))
