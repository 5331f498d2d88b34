"""Scalekit's routes for a Litestar app that already uses rpkit's ``RPKitPlugin``.

:class:`ScalekitLitestarPlugin` builds one :class:`~rpkit_scalekit.environment.ScalekitEnvironment`
over rpkit's shared HTTP client, flows store and key cache, adds email-first login with routing,
headless passwordless (OTP and magic link), IdP-initiated login and (with a secret) webhooks
under ``path``, and maps every :class:`~rpkit_scalekit.errors.ScalekitError` to its status (the
app's own exception handlers still win). List it *after* ``RPKitPlugin``.

Routes (``path`` defaults to ``/auth/scalekit``):

* ``GET|POST {path}/start`` — ``email`` (plus optional ``organization_id``, ``connection_id``,
  ``provider``, ``domain_hint``, ``prompt``, ``return_to``): routes the login; SSO and social
  logins get a 303 to Scalekit (JSON: ``{"next": "redirect", "location": ...}``). With
  ``passwordless=True`` a POST whose route is the hosted page sends the email instead
  (JSON: ``{"next": "verify", ...}``; a form: 303 to ``verify_page``). A GET never sends mail.
* ``GET {path}/csrf`` — ``{"csrf_token": ...}`` for HTML forms (see below).
* ``POST {path}/passwordless/send`` — ``email``, ``return_to``. What the email says
  (``template``, ``template_variables``) is the server's: ``passwordless_email`` and
  ``email_hook``; a browser sending any email-content field gets 400 and no email is sent.
* ``POST {path}/passwordless/resend``, ``POST {path}/passwordless/verify`` (``code``: exactly
  ``otp_length`` ASCII digits, checked before anything else),
  ``GET {path}/passwordless/magic-link/<ref>?link_token=...`` (the ``magiclink_auth_uri``;
  ``ref`` names the send, so a link opened in another browser can offer a new one).
* ``POST {path}/passwordless/restart`` — a new email to the address of this browser's last
  sign-in (after too many wrong codes, an expiry, or a link opened in another browser); the
  address never comes from the browser.
* ``GET {path}/idp-initiated?idp_initiated_login=<JWT>`` — Scalekit's "Initiate Login URL".
* ``POST {path}/webhooks`` — only with ``webhook_secret``; ``user.logout`` ends that user's
  sessions; a directory (SCIM) event is also emitted typed, as
  ``rpkit.scalekit.directory.<kind>`` (:data:`~rpkit_scalekit.directory_events.DIRECTORY_EVENTS`).
* ``GET {path}/organizations/switch?organization_id=org_...`` — a new login into that
  organization (``prompt=select_account``); a malformed id is 400, nothing stored.

The ``auth_request_id`` never leaves the server: it is kept in rpkit's flows store under the
browser's transaction-cookie handle, so only the browser that asked for the email can verify it.
Verifies of one pending sign-in run one at a time across workers (a lock in the flows store),
and the pending record is consumed atomically before the session is created: one sign-in, one
session, whatever Scalekit answers. Every input is bounded and shape-checked before any store
lookup or request to Scalekit (POST bodies: 16 KiB, refused with 413 while streaming).

CSRF: a POST is accepted as ``application/json`` (which a cross-site page cannot send without a
CORS preflight this app does not grant) or as a form carrying ``csrf_token``, a double-submit
token derived from the transaction handle (``GET {path}/csrf`` sets the cookie and returns it).
Anything else is refused with 400, unread.

Example:
    >>> from litestar import Litestar
    >>> from rpkit.litestar import RPKitConfig, RPKitPlugin
    >>> from rpkit_scalekit import scalekit
    >>> from rpkit_scalekit.litestar import ScalekitLitestarPlugin
    >>> provider = scalekit("https://acme.scalekit.com", "skc_1", "s3cret")
    >>> app = Litestar(plugins=[
    ...     RPKitPlugin(RPKitConfig(providers=[provider], secret="x" * 32)),
    ...     ScalekitLitestarPlugin(passwordless=True, verify_page="/check-your-email"),
    ... ])
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from litestar import Litestar, Request, Response
from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin

from rpkit.client import Identity
from rpkit.errors import ConfigurationError
from rpkit.litestar import RPKitPlugin
from rpkit.litestar._locks import StoreLocks
from rpkit.litestar.responses import NO_STORE
from rpkit_scalekit._passwordless_pages import passwordless_status
from rpkit_scalekit.environment import ScalekitEnvironment
from rpkit_scalekit.errors import (
    IdPInitiatedLoginError,
    PasswordlessAttemptsExhaustedError,
    PasswordlessCredentialError,
    PasswordlessExpiredError,
    PasswordlessNoLoginError,
    PasswordlessOtherBrowserError,
    PasswordlessUsedError,
    ScalekitAPIError,
    ScalekitAuthError,
    ScalekitError,
    ScalekitInputError,
    ScalekitNotFoundError,
    ScalekitRateLimitedError,
    ScalekitUnavailableError,
    WebhookVerificationError,
)
from rpkit_scalekit.limiter import PasswordlessLimits, check_limiter_key
from rpkit_scalekit.passwordless import DEFAULT_OTP_LENGTH, PasswordlessEmail, VerifyResult
from rpkit_scalekit.routing import RouteHook

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitRuntime

__all__ = [
    "SCALEKIT_STATUS_AND_MESSAGE",
    "EmailHook",
    "ScalekitLitestarPlugin",
    "UserHook",
    "passwordless_status",
    "scalekit_error_response",
]

AnyRequest = Request[Any, Any, Any]
UserHook = Callable[[VerifyResult, Identity], Awaitable[Identity | None]]
"""Maps a verified passwordless email to the identity to sign in: it receives Scalekit's answer
and the default identity (subject ``email:<address lower-cased>``, the identity key of
:mod:`rpkit_scalekit.identity`, or the person's ``usr_...`` id when the environment has user
management and Scalekit knows them; claims ``email`` and
``email_verified=True``) and returns the identity to use, or None to refuse the sign-in (403)."""
EmailHook = Callable[[AnyRequest, str, PasswordlessEmail], Awaitable[PasswordlessEmail]]
"""Decides what one passwordless email says, on the server: it receives the request, the
address (checked, domain lower-cased) and the configured ``passwordless_email``, and returns the
email to send (e.g. ``SIGNUP`` for an address with no account yet). Never copy request values
into the variables: they appear in mail sent from your domain."""

SCALEKIT_STATUS_AND_MESSAGE: tuple[tuple[type[ScalekitError], int, str], ...] = (
    (ScalekitInputError, 400, "Please check what you entered and try again."),
    (ScalekitNotFoundError, 404, "This sign-in option does not exist."),
    (ScalekitUnavailableError, 503, "Sign-in is unavailable right now. Please try again."),
    (ScalekitAuthError, 503, "Sign-in is unavailable right now. Please try again."),
    (ScalekitAPIError, 502, "Sign-in failed. Please try again."),
    (
        PasswordlessAttemptsExhaustedError,
        429,
        "Too many wrong codes. Please request a new email.",
    ),
    (ScalekitRateLimitedError, 429, "Too many attempts. Please wait a moment and try again."),
    (PasswordlessExpiredError, 400, "This code or link has expired. Please request a new one."),
    (PasswordlessUsedError, 400, "This code or link was already used. Please sign in again."),
    (
        PasswordlessNoLoginError,
        400,
        "No sign-in is in progress in this browser. Please enter your email again.",
    ),
    (
        PasswordlessOtherBrowserError,
        400,
        "This link works only in the browser where you asked for it. Please sign in again here.",
    ),
    (PasswordlessCredentialError, 400, "This code or link is not valid."),
    (IdPInitiatedLoginError, 400, "This sign-in link is not valid. Please sign in again."),
    (WebhookVerificationError, 400, "The webhook delivery was refused."),
    (ScalekitError, 502, "Sign-in failed. Please try again."),
)
"""Error class → (status, what a person is told), as in :mod:`rpkit_scalekit.errors`; the first
matching row wins."""


def scalekit_error_response(request: AnyRequest, exc: ScalekitError) -> Response[Any]:
    """Problem details (or a small page for browsers) with the status of ``exc`` and, for rate
    limits, ``Retry-After``."""
    status, message = next(
        (s, m) for kind, s, m in SCALEKIT_STATUS_AND_MESSAGE if isinstance(exc, kind)
    )
    headers = dict(NO_STORE)
    retry_after = getattr(exc, "retry_after", None)
    if status == 429:
        headers["Retry-After"] = str(retry_after if retry_after is not None else 60)
    if _wants_json(request):
        problem = {
            "type": f"https://rpkit.dev/errors/{exc.code}",
            "title": message,
            "status": status,
            "code": exc.code,
        }
        return Response(
            problem, status_code=status, media_type="application/problem+json", headers=headers
        )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sign-in problem</title>"
        "<meta name='referrer' content='no-referrer'></head><body>"
        f"<h1>Sign-in problem</h1><p>{html.escape(message)}</p>"
        f"<p><small>Error code: <code>{html.escape(exc.code)}</code></small></p>"
        "<p><a href='/'>Back to the start</a></p></body></html>"
    )
    headers["Referrer-Policy"] = "no-referrer"
    return Response(page, status_code=status, media_type="text/html", headers=headers)


def _wants_json(request: AnyRequest) -> bool:
    if request.method == "POST" and request.url.path.endswith("/webhooks"):
        return True
    accept = request.headers.get("accept", "")
    content_type = request.headers.get("content-type", "")
    return ("json" in accept and "text/html" not in accept) or "json" in content_type


class ScalekitLitestarPlugin(InitPlugin):
    """Scalekit's login, passwordless, IdP-initiated and webhook routes for Litestar.

    Reach it with ``app.plugins.get(ScalekitLitestarPlugin)``; its :attr:`environment` is
    available once the app has started.

    Args:
        provider_id: the id of the Scalekit ``ProviderConfig`` among ``RPKitPlugin``'s
            providers.
        path: prefix of these routes (no trailing ``/``).
        passwordless: send headless passwordless emails from ``/start`` when routing finds no
            SSO connection. Off: such logins go to Scalekit's hosted page with ``login_hint``.
        verify_page: where a form POST lands after an email was sent ("enter your code"); None
            answers JSON.
        passwordless_page: the application's own passwordless page: a refused form POST (a
            wrong code, a rate limit, no sign-in in progress...) and a magic link that cannot
            sign in are answered with a 303 to it, and the page reads what to show with
            :func:`passwordless_status` (POST → redirect → GET). None answers with the error
            pages of :data:`SCALEKIT_STATUS_AND_MESSAGE`. JSON clients get problem details
            either way.
        new_credentials_on_resend: mirror of the dashboard's "new credentials on resend": a
            resend then tells the person that the previous code and link no longer work.
        webhook_secret: the webhook endpoint's ``whsec_...`` secret(s); None adds no webhook
            route.
        user_hook: maps a verified passwordless email to an identity (see :data:`UserHook`).
        api_client_id: management API client (the app's own client by default).
        api_client_secret: its secret.
        route_hook: adjusts each routing decision (see :class:`~rpkit_scalekit.LoginRouter`).
        same_browser_origin: mirror of the dashboard's "same browser origin" setting.
        limits: local passwordless limits (Scalekit's by default).
        limiter_key: a secret shared by the workers, keying address hashes in the store.
        magic_link_expires_in: seconds codes and links live; Scalekit's default (300) if None.
        passwordless_email: what every passwordless email says (template and template
            variables, checked against Scalekit's limits when built); ``SIGNIN`` with no
            variables by default. A browser can never set it: a request carrying an
            email-content field is refused with 400 and nothing is sent.
        email_hook: decides the email per request, on the server (see :data:`EmailHook`).
        otp_length: digits of the codes the environment issues (Scalekit: 6); any other code
            is refused with 400 before it can spend one of the five attempts.

    Raises:
        ConfigurationError: a contradictory path or page, a ``passwordless_email`` that is not
            a :class:`~rpkit_scalekit.passwordless.PasswordlessEmail`, ``otp_length``
            outside 1-20, or a ``limiter_key`` that is not non-empty ``bytes``. (A
            ``PasswordlessEmail`` past Scalekit's limits is refused when built.)
    """

    __slots__ = (
        "_environment",
        "_locks",
        "api_client_id",
        "api_client_secret",
        "email_hook",
        "limiter_key",
        "limits",
        "magic_link_expires_in",
        "new_credentials_on_resend",
        "otp_length",
        "passwordless",
        "passwordless_email",
        "passwordless_page",
        "path",
        "provider_id",
        "route_hook",
        "same_browser_origin",
        "user_hook",
        "verify_page",
        "webhook_secret",
    )

    def __init__(
        self,
        *,
        provider_id: str = "scalekit",
        path: str = "/auth/scalekit",
        passwordless: bool = False,
        verify_page: str | None = None,
        webhook_secret: str | Iterable[str] | None = None,
        user_hook: UserHook | None = None,
        api_client_id: str | None = None,
        api_client_secret: str | None = None,
        route_hook: RouteHook | None = None,
        same_browser_origin: bool = False,
        limits: PasswordlessLimits | None = None,
        limiter_key: bytes | None = None,
        magic_link_expires_in: int | None = None,
        passwordless_email: PasswordlessEmail | None = None,
        email_hook: EmailHook | None = None,
        otp_length: int = DEFAULT_OTP_LENGTH,
        passwordless_page: str | None = None,
        new_credentials_on_resend: bool = False,
    ) -> None:
        if not path.startswith("/") or path.endswith("/"):
            raise ConfigurationError("path must start with '/' and not end with one")
        pages = (("verify_page", verify_page), ("passwordless_page", passwordless_page))
        for page_name, page in pages:
            if page is not None and not (page.startswith("/") and not page.startswith("//")):
                msg = f"{page_name} must be a path on this app, such as '/verify'"
                raise ConfigurationError(msg)
        self.passwordless_page = passwordless_page
        self.new_credentials_on_resend = new_credentials_on_resend
        self.provider_id = provider_id
        self.path = path
        self.passwordless = passwordless
        self.verify_page = verify_page
        self.webhook_secret = (
            webhook_secret
            if webhook_secret is None or isinstance(webhook_secret, str)
            else tuple(webhook_secret)
        )
        self.user_hook = user_hook
        self.api_client_id = api_client_id
        self.api_client_secret = api_client_secret
        self.route_hook = route_hook
        self.same_browser_origin = same_browser_origin
        self.limits = limits
        self.limiter_key = check_limiter_key(limiter_key)  # a str would be a 500 at the first send
        self.magic_link_expires_in = magic_link_expires_in
        if passwordless_email is not None and not isinstance(passwordless_email, PasswordlessEmail):
            raise ConfigurationError("passwordless_email must be a PasswordlessEmail")
        self.passwordless_email = passwordless_email or PasswordlessEmail()
        self.email_hook = email_hook
        if type(otp_length) is not int or not 1 <= otp_length <= 20:
            raise ConfigurationError("otp_length must be 1-20 (Scalekit issues 6 digits)")
        self.otp_length = otp_length
        self._environment: ScalekitEnvironment | None = None
        self._locks: StoreLocks | None = None

    @property
    def environment(self) -> ScalekitEnvironment:
        """The environment's clients (available once the app has started)."""
        if self._environment is None:
            msg = "the Scalekit plugin is not started: run the app, with RPKitPlugin before it"
            raise RuntimeError(msg)
        return self._environment

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        from rpkit_scalekit._litestar_routes import build_router  # noqa: PLC0415 - cycle
        from rpkit_scalekit._org_routes import build_org_router  # noqa: PLC0415 - cycle

        app_config.route_handlers.append(build_router(self))
        app_config.route_handlers.append(build_org_router(self))
        app_config.lifespan.append(self._lifespan)
        handlers: dict[int | type[Exception], Any] = {ScalekitError: scalekit_error_response}
        app_config.exception_handlers = {**handlers, **dict(app_config.exception_handlers or {})}
        return app_config

    def runtime(self, app: Litestar) -> RPKitRuntime:
        """rpkit's runtime in ``app``."""
        return app.plugins.get(RPKitPlugin).runtime

    def start(self, app: Litestar) -> ScalekitEnvironment:
        """Build the environment over rpkit's started core (idempotent)."""
        runtime = self.runtime(app)
        rp = runtime.rp
        if self._environment is None:
            http = runtime.http  # the one shared client rpkit's lifespan opened
            self._environment = ScalekitEnvironment(
                rp.provider(self.provider_id),
                http=http,
                store=rp.store,
                jwks=rp.jwks,
                api_client_id=self.api_client_id,
                api_client_secret=self.api_client_secret,
                route_hook=self.route_hook,
                same_browser_origin=self.same_browser_origin,
                limits=self.limits,
                limiter_key=self.limiter_key,
                otp_length=self.otp_length,
            )
        return self._environment

    def locks(self, app: Litestar) -> StoreLocks:
        """The passwordless sign-in locks, in rpkit's flows store (shared by the workers when
        the store is). A lock outlives a verify (an M2M token and the verify request at worst,
        plus the session's write); a waiter gives up after a verify's worth of time (503)."""
        if self._locks is None:
            config = self.runtime(app).config
            timeout = config.http_timeout
            store = app.stores.get(config.flows_store)
            self._locks = StoreLocks(store, ttl=3 * timeout + 5, wait=2 * timeout + 5)
        return self._locks

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        with contextlib.suppress(RuntimeError):  # rpkit listed after us: built on first use
            self.start(app)
        try:
            yield
        finally:
            self._environment = None
            self._locks = None
