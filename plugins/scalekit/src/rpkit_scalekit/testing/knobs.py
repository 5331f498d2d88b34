"""The fake Scalekit's knobs: environment settings, misbehaviours and open-question answers.

Three dataclasses, each a plain attribute of :class:`~rpkit_scalekit.testing.FakeScalekit`:

* :class:`PasswordlessSettings` (``fake.passwordless``) — the dashboard settings and the
  documented limits of headless passwordless (scalekit-sdk.md §2.8, §8.7).
* :class:`ScalekitKnobs` (``fake.knobs``) — ways the server misbehaves: injected failures,
  latency, clock skew, corrupted claims, PKCE and client-authentication policy.
* :class:`OpenAnswers` (``fake.answers``) — what the fake answers where the sources are silent
  (§8.11), so a test can try each plausible answer.

Every default describes the documented, honest behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rpkit.testing import Canned, Tamper
from rpkit_scalekit.testing._wire import ApiError, Case

__all__ = [
    "ApiEndpoint",
    "ErrorAnswer",
    "Failure",
    "OpenAnswers",
    "PasswordlessMethod",
    "PasswordlessSettings",
    "ScalekitEndpoint",
    "ScalekitKnobs",
]

ScalekitEndpoint = Literal[
    "discovery",
    "resource_metadata",
    "keys",
    "authorize",
    "token",
    "logout",
    "passwordless_send",
    "passwordless_resend",
    "passwordless_verify",
    "connections",
    "domains",
    "directories",
    "directory",
    "directory_members",
    "users_search",
    "api_other",
    "dev_outbox",
]
"""The fake's endpoints, as named in knobs and in the recording. ``api_other`` is any other
``/api/v1/**`` path (authenticated, then 404); ``dev_outbox`` the development mailbox pages;
``directories``, ``directory`` and ``directory_members`` (users and groups pages) the Directory
API."""

ApiEndpoint = Literal[
    "passwordless_send",
    "passwordless_resend",
    "passwordless_verify",
    "connections",
    "domains",
    "directories",
    "directory",
    "directory_members",
    "users_search",
    "api_other",
]
"""Endpoints under ``/api/v1``: management-API authentication and the error envelope apply."""

PasswordlessMethod = Literal["OTP", "LINK", "LINK_OTP"]


@dataclass
class PasswordlessSettings:
    """Environment (dashboard) settings of headless passwordless, and its documented limits."""

    method: PasswordlessMethod = "OTP"
    """``passwordless_type``: the email carries a code, a magic link, or both. LINK and
    LINK_OTP make ``magiclink_auth_uri`` mandatory on send."""
    enforce_same_browser: bool = False
    """"Same-browser origin": a magic-link verify must also carry ``auth_request_id``."""
    new_credentials_on_resend: bool = False
    """A resend mints a new code and link and invalidates the old ones; otherwise it re-sends
    the same credentials."""
    send_limit: int = 2
    """Emails (sends and resends) allowed per lowercased address per ``send_window``."""
    send_window: int = 60
    """Seconds of the per-address send window."""
    max_attempts: int = 5
    """Wrong credentials allowed per ``auth_request_id`` per ``attempts_window``; once reached,
    verify answers 429 even for the right code, and the user must restart."""
    attempts_window: int = 600
    """Seconds over which wrong attempts count."""
    default_expires_in: int = 300
    """Seconds a code or link stays valid when send does not pass ``expires_in``."""


@dataclass
class ErrorAnswer:
    """An error the REST API answers with, where the real ``error_code`` or status is unknown."""

    status: int
    message: str
    error_code: str
    grpc_code: int | None = None
    """The envelope's ``code``; derived from ``status`` when None."""

    def error(self) -> ApiError:
        """This answer as a raisable error."""
        return ApiError(
            self.status, self.message, error_code=self.error_code, grpc_code=self.grpc_code
        )


@dataclass
class Failure:
    """An injected failure: the endpoint answers ``status`` instead of doing its job.

    ``/api/v1`` endpoints answer the ``google.rpc.Status`` envelope, the token endpoint an OAuth
    error JSON (``error``, default ``server_error``), others a bare body.
    """

    status: int = 503
    message: str = "service unavailable"
    times: int | None = 1
    """How many requests fail before the endpoint recovers; None fails every request."""
    error: str = "server_error"
    """The OAuth ``error`` for the token endpoint, and the ``error_code`` for the REST API
    (where ``server_error`` means "the gRPC code name")."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``Retry-After``."""


@dataclass
class ScalekitKnobs:
    """Every misbehaviour of the fake Scalekit. Defaults describe an honest server."""

    # -- any endpoint ------------------------------------------------------------------------
    fail: dict[ScalekitEndpoint, Failure] = field(default_factory=dict)
    """Endpoint → injected failure (503 once by default); see :meth:`FakeScalekit.fail_next`."""
    respond: dict[ScalekitEndpoint, Canned] = field(default_factory=dict)
    """Endpoint → a fixed response of any shape, every time."""
    latency: dict[ScalekitEndpoint, float] = field(default_factory=dict)
    """Endpoint → seconds to wait before answering; the in-process transport raises
    :class:`httpx.ReadTimeout` when the client's read timeout is shorter."""
    clock_offset: int = 0
    """Seconds added to the fake's clock: token times, expiries and rate-limit windows all
    follow it, so :meth:`FakeScalekit.advance` replaces sleeping."""

    # -- passwordless ------------------------------------------------------------------------
    passwordless_reusable: bool = False
    """Verify accepts a code or link that was verified already (a server not enforcing single
    use), to show that the application's own single-use check holds without Scalekit's."""

    # -- keys --------------------------------------------------------------------------------
    keys_max_age: int | None = None
    """``Cache-Control: max-age`` on ``/keys``; the real header is unknown, so none by
    default."""

    # -- authorize ---------------------------------------------------------------------------
    require_pkce: bool = False
    """Refuse authorization requests without ``code_challenge`` (the Python SDK cannot send
    one, so it is optional by default)."""
    authorize_error: str | None = None
    """Redirect back with this ``error`` (``access_denied``, ``invalid_request``,
    ``server_error``) instead of a code."""
    authorize_error_description: str = "injected by the fake Scalekit"
    no_session: bool = False
    """There is no Scalekit session: ``prompt=none`` fails with ``answers.prompt_none_error``."""

    # -- token endpoint ----------------------------------------------------------------------
    allow_client_secret_basic: bool = True
    """Also accept ``client_secret_basic`` (the SDKs only use ``client_secret_post``)."""
    refresh_grace_seconds: int = 0
    """Seconds after a rotation during which replaying the old refresh token returns the same
    new pair (the SDK mentions a ~30 s server-side window); 0 rejects every replay."""
    id_token_on_refresh: bool = True
    """Include an ``id_token`` in refresh responses."""
    token_fields: dict[str, Any] = field(default_factory=dict)
    """Edits to every code-exchange and refresh response (``ABSENT`` removes a member)."""
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    """Claim edits on ID tokens (wrong ``aud``/``iss``/``nonce``/``at_hash``, ``exp`` ABSENT,
    future ``iat``); a callable receives the honest claims."""
    access_token_claims: dict[str, Any] = field(default_factory=dict)
    """Claim edits on user access tokens."""
    m2m_token_claims: dict[str, Any] = field(default_factory=dict)
    """Claim edits on client-credentials tokens."""
    id_token_tamper: Tamper | None = None
    """Break ID-token signatures or headers in one way."""
    access_token_tamper: Tamper | None = None
    """Break access-token (user and M2M) signatures or headers in one way."""
    m2m_token_lifetime: int = 86399
    """``expires_in`` and lifetime of client-credentials tokens."""
    access_token_lifetime: int = 300
    """Lifetime of user access tokens (``expires_in`` is one second less, as observed)."""
    id_token_lifetime: int = 300
    code_lifetime: int = 600
    """Seconds an authorization code stays redeemable."""


@dataclass
class OpenAnswers:
    """Answers to the questions no source settles (scalekit-sdk.md §8.11)."""

    invalid_code: ErrorAnswer = field(
        default_factory=lambda: ErrorAnswer(
            400, "INVALID_CODE: the code is invalid", "INVALID_CODE"
        )
    )
    """A wrong OTP or unknown magic-link token (the demo apps match ``INVALID_CODE``)."""
    expired: ErrorAnswer = field(
        default_factory=lambda: ErrorAnswer(400, "auth request expired", "AUTH_REQUEST_EXPIRED", 9)
    )
    """An expired auth request, on resend or verify (the demos match "auth request
    expired")."""
    used: ErrorAnswer = field(
        default_factory=lambda: ErrorAnswer(
            400, "auth request already used", "AUTH_REQUEST_ALREADY_USED", 9
        )
    )
    """A credential verified once already."""
    attempts_exhausted: ErrorAnswer = field(
        default_factory=lambda: ErrorAnswer(
            429, "too many attempts: restart the authentication flow", "RESOURCE_EXHAUSTED"
        )
    )
    """Verify after ``max_attempts`` wrong credentials (429 is documented, the code is not)."""
    send_rate_limited: ErrorAnswer = field(
        default_factory=lambda: ErrorAnswer(
            429, "too many emails sent to this address", "RESOURCE_EXHAUSTED"
        )
    )
    """A third send or resend within a minute (429 is documented)."""
    unknown_auth_request: ErrorAnswer = field(
        default_factory=lambda: ErrorAnswer(404, "auth request not found", "NOT_FOUND")
    )
    """Resend or verify naming an ``auth_request_id`` the server never issued."""
    response_case: Case = "snake"
    """Key case of REST success bodies: the docs show snake_case; protojson would emit
    camelCase."""
    expires_at_as_string: bool = True
    """``expires_at`` (int64) as a JSON string, as grpc-gateway does; False sends a number."""
    invalid_client_status: int = 401
    """HTTP status of ``invalid_client`` from the token endpoint."""
    echo_nonce: bool = True
    """Echo the authorization request's ``nonce`` in the ID token."""
    discovery_lists_basic: bool = True
    """List ``client_secret_basic`` in the discovery document."""
    prompt_none_error: str = "login_required"
    """The error for ``prompt=none`` without a session."""
    plain_pkce_error: str = "invalid_request"
    """The error for ``code_challenge_method=plain`` (or any method but S256)."""
    idp_initiated_issuer: str | None = None
    """``iss`` of ``idp_initiated_login`` JWTs; the environment URL when None."""
    idp_initiated_audience: Literal["client_id", "none"] = "client_id"
    """``aud`` of ``idp_initiated_login`` JWTs: ``[client_id]`` or no ``aud`` at all."""
    idp_initiated_lifetime: int | None = 300
    """Seconds until ``exp`` of ``idp_initiated_login`` JWTs; None omits ``exp``."""
    logout_token_claims: dict[str, Any] = field(default_factory=dict)
    """Edits to the back-channel ``logout_token`` (OIDC Back-Channel Logout §2.4 by
    default; Scalekit's format is undocumented)."""
