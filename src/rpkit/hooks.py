"""The provider SPI's typed hooks: the few places a provider may differ in behaviour, not data.

A provider is data (:class:`~rpkit.config.ProviderConfig`) plus, where data is not enough, the
optional hooks bundled in :class:`ProviderHooks`. Each hook is a ``typing.Protocol`` naming one
callable, and the core says exactly when it calls it:

- :class:`AuthorizationParamsHook` — in ``begin_login``, once per login, before the
  authorization URL is built: extra authorization parameters for this request.
- :class:`ClientSecretFactory` — before a token request that needs a client secret, only when
  the cached secret is about to expire (Apple's ES256 client-secret JWT).
- :class:`CallbackExtras` — in the callback, after the front-channel checks: reads
  provider-defined callback parameters (Apple's ``user``), each bounded in size.
- :class:`IdentityMapper` — after the ID token (and UserInfo) or the OAuth 2.0 profile were
  accepted: maps claims to :class:`IdentityFields` (string booleans, ``oid`` + ``tid``, ...).
- :class:`LogoutParamsHook` — in ``begin_logout``: rewrites the end-session parameters
  (Cognito's ``logout_uri`` and ``client_id``).

No hook can switch a check off: checks are relaxed only by the named fields of
``ProviderConfig``, each logged at startup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import msgspec

__all__ = [
    "AuthorizationContext",
    "AuthorizationParamsHook",
    "CallbackExtras",
    "ClientSecret",
    "ClientSecretFactory",
    "IdentityFields",
    "IdentityMapper",
    "IdentitySource",
    "JSONFetcher",
    "LogoutContext",
    "LogoutParamsHook",
    "ProviderHooks",
]


class AuthorizationContext(msgspec.Struct, frozen=True, kw_only=True):
    """What an :class:`AuthorizationParamsHook` knows about the login being started."""

    provider_id: str
    redirect_uri: str
    params: Mapping[str, str]
    """The extra parameters the login was asked for (already checked against the allowlist)."""
    flow_id: str


class AuthorizationParamsHook(Protocol):
    """Extra authorization parameters for one login (e.g. a routing parameter looked up from
    ``login_hint``). Called once per ``begin_login``; the result is merged over the asked
    parameters and checked like them, except that it need not be in the allowlist (the
    provider's author wrote it): reserved parameters (``state``, ``nonce``, ...) are refused."""

    def __call__(self, context: AuthorizationContext) -> Awaitable[Mapping[str, str]]: ...


class ClientSecret(msgspec.Struct, frozen=True, kw_only=True):
    """A client secret minted on demand, and until when it may be used."""

    value: str
    expires_at: float
    """Epoch seconds. rpkit mints a new one :data:`rpkit.tokens.SECRET_RENEW_MARGIN` seconds
    before this."""


class ClientSecretFactory(Protocol):
    """Mints the client secret (Apple: an ES256 JWT valid for at most six months). Called by the
    token client with the current time when no cached secret is good for another
    :data:`rpkit.tokens.SECRET_RENEW_MARGIN` seconds; at most one call runs per provider. An
    exception it raises becomes a :class:`~rpkit.errors.ClientSecretError` and no token request
    is made."""

    def __call__(self, now: float) -> Awaitable[ClientSecret]: ...


class CallbackExtras(Protocol):
    """Reads provider-defined callback parameters that are not part of OAuth (Apple sends the
    user's name, once, as a JSON ``user`` form field).

    The values are whatever the browser posted: never trust them for the email or anything
    that identifies the user. rpkit refuses a callback whose parameter exceeds its limit before
    any token request (:class:`~rpkit.errors.CallbackError`, the pending login is cleared), and
    passes the parsed result to the :class:`IdentityMapper` as :attr:`IdentitySource.extras`.
    """

    @property
    def limits(self) -> Mapping[str, int]:
        """Parameter name → most characters accepted."""
        ...

    def parse(self, values: Mapping[str, str]) -> Mapping[str, Any]:
        """The extras of ``values`` (only the names in :attr:`limits`, within their limits).
        Raise ``ValueError`` for a value that cannot be read: the callback is refused."""
        ...


JSONFetcher = Callable[[str], Awaitable[Any]]
"""GETs a JSON document with the login's access token (``Authorization: Bearer``, or ``DPoP``
with a fresh proof when the token is DPoP-bound), no redirects followed, bounded in size, and
only on the origin of the provider's profile endpoint; raises
:class:`~rpkit.errors.UserInfoError` otherwise."""


class IdentitySource(msgspec.Struct, frozen=True, kw_only=True):
    """What an :class:`IdentityMapper` maps: verified claims and the login's context."""

    provider_id: str
    issuer: str
    claims: Mapping[str, Any]
    """OpenID Connect: the validated ID token's claims. OAuth 2.0-only: the profile endpoint's
    JSON object. Trusted as far as the provider is."""
    userinfo: Mapping[str, Any] | None
    """UserInfo claims (OpenID Connect, when fetched); their ``sub`` equals the token's."""
    extras: Mapping[str, Any]
    """Parsed :class:`CallbackExtras`: browser-supplied, never evidence of an email."""
    tenant: str | None
    """The tenant id the issuer template was filled with, when the provider has one."""
    fetch_json: JSONFetcher
    """For providers that spread the identity over several endpoints (GitHub's
    ``/user/emails``)."""


class IdentityFields(msgspec.Struct, frozen=True, kw_only=True):
    """The identity a mapper settled on. rpkit checks ``subject`` (1–255 characters, no control
    characters: OpenID Connect Core §2) and refuses the login otherwise."""

    subject: str
    """The provider's stable id for the user, never an email address (emails change hands)."""
    email: str | None = None
    email_verified: bool = False
    """True only when the provider itself says the address is verified."""
    name: str | None = None
    tenant: str | None = None
    organization: str | None = None
    """The organization the user signed in as, for B2B providers (Scalekit's ``oid``)."""
    external_organization_id: str | None = None
    """The application's own id for that organization, when the provider keeps one (Scalekit's
    ``xoid``)."""
    external_user_id: str | None = None
    """The application's own id for the user, when the provider keeps one (Scalekit's ``xuid``)."""


class IdentityMapper(Protocol):
    """Maps a login's verified claims to :class:`IdentityFields`. Called once per login, after
    every token check (and for OAuth 2.0-only providers after the profile was fetched). Raise
    :class:`~rpkit.errors.IdentityRefusedError` to refuse the user (Google's ``hd``, say): no
    session is made."""

    def __call__(self, source: IdentitySource) -> Awaitable[IdentityFields]: ...


class LogoutContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a :class:`LogoutParamsHook` knows about the logout."""

    provider_id: str
    client_id: str
    post_logout_redirect_uri: str | None


class LogoutParamsHook(Protocol):
    """Rewrites the end-session request's parameters (RP-Initiated Logout §2 names
    ``id_token_hint``, ``client_id``, ``post_logout_redirect_uri`` and ``state``); Cognito wants
    ``client_id`` and ``logout_uri`` instead. Pure and synchronous."""

    def __call__(self, params: Mapping[str, str], context: LogoutContext) -> Mapping[str, str]: ...


class ProviderHooks(msgspec.Struct, frozen=True, kw_only=True):
    """The optional hooks of one provider; every one left None keeps the core's behaviour."""

    authorization_params: AuthorizationParamsHook | None = None
    """Extra authorization parameters per login (see :class:`AuthorizationParamsHook`)."""
    client_secret: ClientSecretFactory | None = None
    """Mints the client secret per token request, cached until shortly before it expires."""
    callback_extras: CallbackExtras | None = None
    """Reads provider-defined callback parameters, bounded in size."""
    identity: IdentityMapper | None = None
    """Claims → identity fields. Required for OAuth 2.0-only providers (there is no standard
    profile shape); OpenID Connect providers default to the standard claims."""
    logout_params: LogoutParamsHook | None = None
    """Rewrites the end-session parameters."""

    def names(self) -> tuple[str, ...]:
        """The hooks that are set, for startup logs."""
        return tuple(name for name in self.__struct_fields__ if getattr(self, name) is not None)


NO_HOOKS = ProviderHooks()
"""A provider without hooks."""
