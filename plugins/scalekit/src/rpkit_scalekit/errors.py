"""Every error the Scalekit plugin raises, under rpkit's root with a stable ``code``.

Errors never speak HTTP: the Litestar adapter maps these classes to responses. Each row below
names the answer the adapter is expected to give, because the *upstream* status Scalekit
answered with (:attr:`ScalekitError.status`) is not the status the browser should see.

    RPKitError
    └── ScalekitError                              (status, error_code, request_id, grpc_code)
        ├── ScalekitInputError        ValueError   refused locally, nothing sent       → 400
        │   ├── InvalidEmailError                  not a usable email address          → 400
        │   ├── PasswordlessCredentialFormatError  code or link_token not as issued    → 400
        │   └── PasswordlessEmailContentError      the browser tried to set email text → 400
        ├── ScalekitUnavailableError               no usable answer: network, 5xx      → 503
        ├── ScalekitAuthError                      M2M credentials refused, or 401/403 → 503
        ├── ScalekitAPIError                       any other refusal (400, 404, 409)   → 502
        │   └── ScalekitNotFoundError              404                                 → 404
        ├── ScalekitRateLimitedError               429 (retry_after)                   → 429
        │   ├── PasswordlessRateLimitedError       2 emails/min/address (send, resend) → 429
        │   └── PasswordlessAttemptsExhaustedError 5 wrong codes/10 min: restart       → 429
        ├── PasswordlessCredentialError            (reason) the code or link is unusable → 400
        │   ├── PasswordlessExpiredError           the auth request expired: restart   → 400
        │   ├── PasswordlessInvalidCredentialError wrong code, unknown link            → 400
        │   │   ├── PasswordlessNoLoginError       no sign-in pending in this browser  → 400
        │   │   └── PasswordlessOtherBrowserError  a magic link opened elsewhere       → 400
        │   └── PasswordlessUsedError              already verified once               → 400
        ├── IdPInitiatedLoginError                 (reason) the idp_initiated_login JWT → 400
        └── WebhookVerificationError               (reason) signature, time, replay    → 400

Only :class:`ScalekitAPIError` and its kin carry what Scalekit said (``error_code``,
``request_id``, the gRPC ``code``); an error raised locally (a limiter refusal, an input check)
has them as None. ``detail`` is safe to log: it never holds an email, a code, a link token, a
secret or Scalekit's free-text ``message`` (kept apart, truncated, in :attr:`message`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from rpkit.errors import RPKitError

__all__ = [
    "FieldViolation",
    "IdPInitiatedLoginError",
    "InvalidEmailError",
    "PasswordlessAttemptsExhaustedError",
    "PasswordlessCredentialError",
    "PasswordlessCredentialFormatError",
    "PasswordlessEmailContentError",
    "PasswordlessExpiredError",
    "PasswordlessInvalidCredentialError",
    "PasswordlessNoLoginError",
    "PasswordlessOtherBrowserError",
    "PasswordlessRateLimitedError",
    "PasswordlessUsedError",
    "ScalekitAPIError",
    "ScalekitAuthError",
    "ScalekitError",
    "ScalekitInputError",
    "ScalekitNotFoundError",
    "ScalekitRateLimitedError",
    "ScalekitUnavailableError",
    "WebhookVerificationError",
]

FieldViolation = tuple[str, str]
"""``(field, constraint)`` of one ``validation_error_info.field_violations`` entry."""


class ScalekitError(RPKitError):
    """Root of the plugin's errors.

    Attributes:
        status: the HTTP status Scalekit answered with; None when no answer was involved.
        error_code: ``ErrorInfo.error_code`` (e.g. ``INVALID_ARGUMENT``), or the OAuth
            ``error`` of the token endpoint; None when absent or raised locally.
        request_id: ``ErrorInfo.request_info.request_id`` (or an ``x-request-id`` header),
            for Scalekit support.
        grpc_code: the envelope's numeric ``code`` (google.rpc.Code), when sent.
        message: Scalekit's ``message`` or ``error_description``, truncated. Untrusted text: show
            it to no user and keep it out of logs (it may echo the email address).
        violations: the field violations Scalekit listed, as ``(field, constraint)``.
    """

    code: ClassVar[str] = "scalekit_error"

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        grpc_code: int | None = None,
        message: str | None = None,
        violations: tuple[FieldViolation, ...] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error_code = error_code
        self.request_id = request_id
        self.grpc_code = grpc_code
        self.message = message
        self.violations = violations


class ScalekitInputError(ScalekitError, ValueError):
    """A value was refused locally, before any request: Scalekit never saw it.

    Attributes:
        field: the offending parameter, e.g. ``template_variables``.
    """

    code = "scalekit_invalid_input"

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.field = field


class InvalidEmailError(ScalekitInputError):
    """Not an email address rpkit can route or send to (answer 400)."""

    code = "invalid_email"

    def __init__(self, detail: str = "not a valid email address", *, field: str = "email") -> None:
        super().__init__(detail, field=field)


class PasswordlessCredentialFormatError(ScalekitInputError):
    """A one-time code or magic-link token not in the shape Scalekit issues (a code: exactly the
    configured number of ASCII digits; a link token: at most 100 URL-safe characters). Refused
    before any store lookup or request, so it spends none of the five attempts (answer 400).
    Digits of other scripts are refused, never converted."""

    code = "passwordless_credential_malformed"


class PasswordlessEmailContentError(ScalekitInputError):
    """The browser sent a field that shapes the email Scalekit sends (``template``,
    ``template_variables``...). Email content comes from the server only (answer 400; nothing
    is sent)."""

    code = "passwordless_email_content_refused"


class ScalekitUnavailableError(ScalekitError):
    """Scalekit could not be reached, timed out, answered 5xx or with an unreadable body."""

    code = "scalekit_unavailable"


class ScalekitAuthError(ScalekitError):
    """The plugin's own credentials were refused: ``client_credentials`` failed, or the API still
    answered 401/403 with a freshly fetched token. An operator problem, not the user's."""

    code = "scalekit_auth_failed"


class ScalekitAPIError(ScalekitError):
    """Scalekit refused the request (a 4xx other than 401, 403 and 429)."""

    code = "scalekit_api_error"


class ScalekitNotFoundError(ScalekitAPIError):
    """The named object (organization, auth request...) does not exist."""

    code = "scalekit_not_found"


class ScalekitRateLimitedError(ScalekitError):
    """Too many requests, refused by Scalekit (429) or by the local limiter first.

    Attributes:
        retry_after: seconds to wait before trying again, when known.
        local: True when the local limiter refused and no request was sent.
    """

    code = "scalekit_rate_limited"

    def __init__(
        self,
        detail: str,
        *,
        retry_after: int | None = None,
        local: bool = False,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        grpc_code: int | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(
            detail,
            status=status,
            error_code=error_code,
            request_id=request_id,
            grpc_code=grpc_code,
            message=message,
        )
        self.retry_after = retry_after
        self.local = local


class PasswordlessRateLimitedError(ScalekitRateLimitedError):
    """Too many emails to one address (Scalekit allows 2 per minute, sends and resends)."""

    code = "passwordless_rate_limited"


class PasswordlessAttemptsExhaustedError(ScalekitRateLimitedError):
    """Too many wrong codes for one auth request (5 in 10 minutes): the flow must restart with
    a new send; even the right code is refused now."""

    code = "passwordless_attempts_exhausted"


CredentialProblem = Literal["expired", "invalid", "used"]


class PasswordlessCredentialError(ScalekitError):
    """The code or magic link cannot be used.

    Attributes:
        reason: ``expired``, ``invalid`` or ``used``.
    """

    code = "passwordless_credential_invalid"
    reason: ClassVar[CredentialProblem] = "invalid"


class PasswordlessExpiredError(PasswordlessCredentialError):
    """The auth request expired (default lifetime 300 s): send a new email."""

    code = "passwordless_expired"
    reason = "expired"


class PasswordlessInvalidCredentialError(PasswordlessCredentialError):
    """A wrong code, or an unknown link token or auth request. A wrong code counts toward the
    five attempts."""

    code = "passwordless_invalid"
    reason = "invalid"


class PasswordlessNoLoginError(PasswordlessInvalidCredentialError):
    """No passwordless sign-in is in progress in this browser (none was started here, it
    expired, or the transaction cookie is gone): there is no code to check and no email to send
    again. The person starts over with their email (answer 400)."""

    code = "passwordless_no_login"


class PasswordlessOtherBrowserError(PasswordlessInvalidCredentialError):
    """A magic link opened in a browser other than the one that asked for it. A link signs in
    only the browser that asked for the email (its ``auth_request_id`` never leaves that
    browser's server-side record), so it is not verified here; a new link can be sent to this
    browser instead (answer 400)."""

    code = "passwordless_other_browser"


class PasswordlessUsedError(PasswordlessCredentialError):
    """The auth request was already verified: codes and links are single-use."""

    code = "passwordless_used"
    reason = "used"


class IdPInitiatedLoginError(ScalekitError):
    """The ``idp_initiated_login`` token was refused; start an ordinary login instead.

    Attributes:
        reason: which check failed: ``malformed``, ``alg``, ``key``, ``signature``, ``iss``,
            ``aud``, ``exp``, ``iat``, ``nbf`` or ``claims``.
    """

    code = "idp_initiated_login_invalid"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class WebhookVerificationError(ScalekitError):
    """A webhook delivery was refused; nothing in it may be acted upon.

    Attributes:
        reason: ``missing_header``, ``malformed``, ``timestamp``, ``signature``, ``replayed``
            or ``payload``.
    """

    code = "webhook_invalid"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
