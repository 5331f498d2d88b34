"""Every error rpkit raises, under one root with a stable ``code``.

The core never speaks HTTP: adapters (``rpkit.litestar``) map these classes to responses in one
table. Causes are always chained (``raise ... from exc``).

    RPKitError
    ├── ConfigurationError
    ├── UnknownProviderError
    ├── StoreError
    │   └── LockTimeoutError             (another worker held a refresh lock too long)
    ├── SessionTooLargeError             (a client-side session cookie would exceed its limit)
    ├── DiscoveryError
    │   └── IssuerMismatchError
    ├── JWKSError
    ├── PushedAuthorizationError         (RFC 9126: the push was refused or unusable)
    │   └── PushedAuthorizationUnavailableError  (PAR required by one side, absent or off)
    ├── CallbackError
    │   ├── DuplicateParameterError
    │   ├── OversizedParameterError          (a parameter from the browser is over its bound)
    │   ├── MalformedParameterError          (a parameter from the browser has the wrong shape)
    │   ├── ResponseIssuerError
    │   ├── InvalidStateError
    │   ├── AuthorizationResponseError      (the OP answered with ``error=``)
    │   └── FrontChannelTokenError
    ├── TokenEndpointError
    │   ├── ClientSecretError                (the client-secret factory failed: no request made)
    │   ├── TokenExchangeError
    │   │   └── DPoPTokenTypeError           (DPoP was asked for, another token_type came back)
    │   ├── InvalidGrantError
    │   │   └── SessionExpiredError          (refresh refused: sign in again)
    │   └── ClientCredentialsError           (no machine-to-machine token: ``status``)
    │       ├── ClientCredentialsRefusedError      (a 4xx: not retried automatically)
    │       ├── ClientCredentialsUnavailableError  (no answer, 5xx, 408, 429: try later)
    │       └── ClientCredentialsResponseError     (an unusable answer)
    ├── TokenValidationError
    │   ├── IDTokenValidationError
    │   │   └── RefreshContinuityError
    │   ├── AccessTokenValidationError
    │   ├── DPoPProofError               (a DPoP proof, or a token's DPoP binding, was refused)
    │   └── LogoutTokenValidationError
    ├── UserInfoError                    (also an OAuth 2.0 profile endpoint's bad answer)
    ├── IdentityRefusedError             (the provider's identity mapping refused the user)
    ├── LogoutError
    ├── NotSignedInError                 (a guard found no session)
    ├── PermissionDeniedError            (signed in, but not with what a guard requires)
    └── StepUpRequiredError              (signed in too long ago for a guard)
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessTokenValidationError",
    "AuthorizationResponseError",
    "CallbackError",
    "ClientCredentialsError",
    "ClientCredentialsRefusedError",
    "ClientCredentialsResponseError",
    "ClientCredentialsUnavailableError",
    "ClientSecretError",
    "ConfigurationError",
    "DPoPProofError",
    "DPoPTokenTypeError",
    "DiscoveryError",
    "DuplicateParameterError",
    "FrontChannelTokenError",
    "IDTokenValidationError",
    "IdentityRefusedError",
    "InvalidGrantError",
    "InvalidStateError",
    "IssuerMismatchError",
    "JWKSError",
    "LockTimeoutError",
    "LogoutError",
    "LogoutTokenValidationError",
    "MalformedParameterError",
    "NotSignedInError",
    "OversizedParameterError",
    "PermissionDeniedError",
    "PushedAuthorizationError",
    "PushedAuthorizationUnavailableError",
    "RPKitError",
    "RefreshContinuityError",
    "ResponseIssuerError",
    "SessionExpiredError",
    "SessionTooLargeError",
    "StepUpRequiredError",
    "StoreError",
    "TokenEndpointError",
    "TokenExchangeError",
    "TokenValidationError",
    "UnknownProviderError",
    "UserInfoError",
]


class RPKitError(Exception):
    """Root of every rpkit error.

    Attributes:
        code: a stable, machine-readable identifier (documented in the error-code table).
        detail: what went wrong, safe to log: never a token, code, secret or OTP.
    """

    code: ClassVar[str] = "rpkit_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


class ConfigurationError(RPKitError, ValueError):
    """A configuration is contradictory or unsafe; the message says what to change."""

    code = "configuration_invalid"


class UnknownProviderError(RPKitError):
    """A request named a provider id that is not configured."""

    code = "unknown_provider"


class StoreError(RPKitError):
    """The key-value store failed (unreachable, timed out, corrupt entry)."""

    code = "store_unavailable"


class LockTimeoutError(StoreError):
    """Another worker held a lock (a session's refresh) longer than this one may wait."""

    code = "lock_timeout"


class SessionTooLargeError(RPKitError):
    """A client-side (cookie) session would not fit in one cookie; nothing was stored.

    Attributes:
        size: the bytes the session cookie would have taken.
        limit: the most bytes allowed.
    """

    code = "session_too_large"

    def __init__(self, detail: str, *, size: int, limit: int) -> None:
        super().__init__(detail)
        self.size = size
        self.limit = limit


class DiscoveryError(RPKitError):
    """The OP's discovery document could not be fetched or failed validation."""

    code = "discovery_failed"


class IssuerMismatchError(DiscoveryError):
    """The discovery document's ``issuer`` is not, character for character, the configured one."""

    code = "issuer_mismatch"


class JWKSError(RPKitError):
    """No usable signing key: the JWKS could not be fetched, or no single key matches.

    Attributes:
        unavailable: True when the keys could not be had at all (the fetch failed, the answer
            was not a JWK Set, or it published no usable key), so no token was judged; False
            when the set was read but no single key fits the token.
    """

    code = "jwks_unavailable"

    def __init__(self, detail: str, *, unavailable: bool = False) -> None:
        super().__init__(detail)
        self.unavailable = unavailable


class _OAuthErrorAnswer(Exception):
    """The ``error`` and ``error_description`` of an OAuth error answer, carried by the errors
    of the endpoints that give one."""

    error: str | None
    description: str | None

    def __init__(
        self, detail: str, *, error: str | None = None, description: str | None = None
    ) -> None:
        super().__init__(detail)
        self.error = error
        self.description = description


class PushedAuthorizationError(_OAuthErrorAnswer, RPKitError):
    """The pushed authorization request (RFC 9126 §2) was refused or its answer was unusable:
    no ``request_uri``, so no redirect was made and no login transaction was stored.

    Attributes:
        error: the OAuth error code the provider answered with (RFC 9126 §2.3), if any.
        description: the provider's ``error_description``, truncated (untrusted text).
    """

    code = "pushed_authorization_failed"


class PushedAuthorizationUnavailableError(PushedAuthorizationError):
    """A login cannot start: the provider is configured with ``par="required"`` but its
    metadata has no ``pushed_authorization_request_endpoint``, or the provider requires PAR
    (``require_pushed_authorization_requests``) and the configuration says ``par="off"``."""

    code = "pushed_authorization_unavailable"


class CallbackError(RPKitError):
    """The authorization response (the callback) was rejected before any token request."""

    code = "callback_invalid"


class DuplicateParameterError(CallbackError):
    """A callback parameter appeared more than once (RFC 6749 §3.1)."""

    code = "duplicate_parameter"


class OversizedParameterError(CallbackError):
    """A parameter from the browser (a callback's ``code``, ``iss`` or ``error_description``, a
    login's ``login_hint``, a provider-defined extra such as Apple's ``user``) exceeds its size
    limit; refused before any store lookup or request to the provider."""

    code = "parameter_too_large"


class MalformedParameterError(CallbackError):
    """A parameter from the browser is not of the shape its specification (or rpkit) gives it:
    an authorization ``code`` outside RFC 6749's VSCHAR, an OAuth ``error`` outside NQSCHAR, a
    ``login_hint`` with control characters, a ``prompt`` or ``max_age`` that is not one; refused
    before any store lookup or request to the provider. The detail names the parameter,
    never its value."""

    code = "parameter_malformed"


class ResponseIssuerError(CallbackError):
    """The RFC 9207 ``iss`` parameter is wrong, or missing although the OP advertises it."""

    code = "response_issuer_mismatch"


class InvalidStateError(CallbackError):
    """``state`` is missing, unknown, expired or already used."""

    code = "invalid_state"


class AuthorizationResponseError(CallbackError):
    """The OP answered the authorization request with an OAuth error (``error=``).

    Attributes:
        error: the OAuth error code the OP sent, e.g. ``access_denied``.
        description: the OP's ``error_description``, if any (untrusted text).
    """

    code = "authorization_denied"

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(f"the identity provider answered {error!r}")
        self.error = error
        self.description = description


class FrontChannelTokenError(CallbackError):
    """Tokens arrived in the front channel of a code flow (row 15)."""

    code = "front_channel_token"


class TokenEndpointError(_OAuthErrorAnswer, RPKitError):
    """The token endpoint's answer was unusable.

    Attributes:
        error: the OAuth error code the OP answered with (RFC 6749 §5.2), if any.
        description: the OP's ``error_description``, truncated (untrusted text: not for logs).
    """

    code = "token_endpoint_error"


class ClientSecretError(TokenEndpointError):
    """The provider's client-secret factory (``hooks.client_secret``) failed or returned an
    unusable secret; no token request was made."""

    code = "client_secret_unavailable"


class TokenExchangeError(TokenEndpointError):
    """The token response was an error, not JSON, or lacked a required member."""

    code = "token_exchange_failed"


class DPoPTokenTypeError(TokenExchangeError):
    """DPoP was used for the token request, but the token response's ``token_type`` is not
    ``DPoP`` (RFC 9449 §5): the provider issued a token that is not bound to the key, so it is
    refused and no session is made."""

    code = "dpop_token_type"


class InvalidGrantError(TokenEndpointError):
    """The OP refused the code or refresh token (``invalid_grant``)."""

    code = "invalid_grant"


class SessionExpiredError(InvalidGrantError):
    """A refresh was refused: the session is over and the user must sign in again."""

    code = "session_expired"


class ClientCredentialsError(TokenEndpointError):
    """No client-credentials (machine-to-machine) token could be had
    (:mod:`rpkit.client_credentials`).

    Attributes:
        status: the HTTP status the token endpoint answered with; None when no answer came.
    """

    code = "client_credentials_failed"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(detail, error=error, description=description)
        self.status = status


class ClientCredentialsRefusedError(ClientCredentialsError):
    """The provider refused the client-credentials request with a client error (a 4xx such as
    ``invalid_client``, ``unauthorized_client``, ``invalid_scope``, ``invalid_target``): it is
    never retried automatically, and the same request is refused without a request for a short
    while (``refusal_ttl``)."""

    code = "client_credentials_refused"


class ClientCredentialsUnavailableError(ClientCredentialsError):
    """The token endpoint could not be reached, timed out, or answered 5xx, 408 or 429 (or the
    provider's metadata or minted secret could not be had): a transient failure, nothing
    remembered; a later call tries again."""

    code = "client_credentials_unavailable"


class ClientCredentialsResponseError(ClientCredentialsError):
    """The token endpoint's answer was unusable: not a JSON object, no access token, a
    ``token_type`` other than Bearer, an absurd ``expires_in``, a redirect or an oversized
    body."""

    code = "client_credentials_invalid_response"


class TokenValidationError(RPKitError):
    """A JWT failed validation.

    Attributes:
        reason: which check failed, e.g. ``signature``, ``aud``, ``nonce``.
    """

    code = "token_invalid"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class IDTokenValidationError(TokenValidationError):
    """An ID token failed one of the checks of Core §3.1.3.7."""

    code = "id_token_invalid"


class RefreshContinuityError(IDTokenValidationError):
    """A refreshed ID token changed ``iss``, ``sub``, ``aud``, ``azp`` or ``auth_time`` (§12.2)."""

    code = "refresh_continuity"


class AccessTokenValidationError(TokenValidationError):
    """A bearer access token failed validation."""

    code = "access_token_invalid"


class DPoPProofError(TokenValidationError):
    """A request's DPoP proof (RFC 9449 §4.3) or its access token's DPoP binding (§6, §7) was
    refused; the request was not served.

    Attributes:
        reason: which check failed: ``missing``, ``multiple``, ``malformed``, ``typ``, ``alg``,
            ``jwk``, ``private_key``, ``signature``, ``jti``, ``htm``, ``htu``, ``iat``,
            ``ath``, ``use_dpop_nonce`` (a server nonce is required or stale), ``replay``,
            ``jkt`` (the token is bound to another key), ``bound_bearer`` (a DPoP-bound token
            sent as ``Bearer``, §7.2) or ``unbound`` (an unbound token sent as ``DPoP``).
        nonce: with ``use_dpop_nonce``, the nonce the client must put in its next proof.
    """

    code = "dpop_proof_invalid"

    def __init__(self, reason: str, detail: str, *, nonce: str | None = None) -> None:
        super().__init__(reason, detail)
        self.nonce = nonce


class LogoutTokenValidationError(TokenValidationError):
    """A back-channel logout token failed validation (Back-Channel Logout §2.6)."""

    code = "logout_token_invalid"


class UserInfoError(RPKitError):
    """The UserInfo response was an error, not a JSON object, or named another subject.

    Attributes:
        reason: which check failed, e.g. ``unauthorized``, ``not_json``, ``sub``, ``jwt``.
    """

    code = "userinfo_invalid"

    def __init__(self, detail: str, *, reason: str = "invalid") -> None:
        super().__init__(detail)
        self.reason = reason


class IdentityRefusedError(RPKitError):
    """The provider's identity mapping refused the user (a Google account outside the required
    hosted domain, a profile without a stable id, a subject that is not one); no session."""

    code = "identity_refused"


class LogoutError(RPKitError):
    """A logout request or return could not be processed."""

    code = "logout_invalid"


class NotSignedInError(RPKitError):
    """A page or API needs a signed-in user and there is none.

    Attributes:
        provider_id: the provider to sign in with, when only one fits; None when the user must
            choose.
    """

    code = "login_required"

    def __init__(self, detail: str = "sign in first", *, provider_id: str | None = None) -> None:
        super().__init__(detail)
        self.provider_id = provider_id


class PermissionDeniedError(RPKitError):
    """The user is signed in, but not with the provider, claim or ``acr`` a route requires.

    Attributes:
        requirement: which requirement failed: ``provider``, ``tenant``, ``claim``, ``acr``,
            ``role``, ``permission`` or ``organization``.
    """

    code = "forbidden"

    def __init__(self, detail: str, *, requirement: str) -> None:
        super().__init__(detail)
        self.requirement = requirement


class StepUpRequiredError(RPKitError):
    """The user signed in longer ago than a route allows and must authenticate again.

    Attributes:
        provider_id: the provider of the current session, where the user re-authenticates.
        max_age: the most seconds the new authentication may be old (sent as ``max_age``).
    """

    code = "step_up_required"

    def __init__(self, detail: str, *, provider_id: str, max_age: int) -> None:
        super().__init__(detail)
        self.provider_id = provider_id
        self.max_age = max_age
