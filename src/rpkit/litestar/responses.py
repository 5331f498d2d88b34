"""rpkit errors to HTTP responses, in one table.

Browser flows get a small HTML page (or a redirect to the configured error page) that names the
likely cause without internals; API clients get RFC 9457 problem details. The core raises; only
this module knows HTTP.
"""

from __future__ import annotations

import html
from typing import Any, Final
from urllib.parse import quote, urlencode

from litestar import Request, Response
from litestar.exceptions.responses import create_exception_response
from litestar.response import Redirect

from rpkit import errors
from rpkit.flow import safe_return_to

__all__ = [
    "BEARER_REFUSALS",
    "NO_STORE",
    "PRIVATE",
    "STATUS_AND_MESSAGE",
    "error_response",
    "login_redirect",
    "status_and_message",
]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PRIVATE = {**NO_STORE, "Referrer-Policy": "no-referrer"}
"""Headers of every error on rpkit's routes: their URLs may carry a code or a state."""

STATUS_AND_MESSAGE: tuple[tuple[type[errors.RPKitError], int, str], ...] = (
    (errors.UnknownProviderError, 404, "This sign-in option does not exist."),
    (errors.ConfigurationError, 400, "The sign-in request was not valid."),
    (errors.StoreError, 503, "Sign-in is unavailable right now. Please try again shortly."),
    (errors.SessionTooLargeError, 500, "Sign-in could not be completed on this site."),
    (errors.DiscoveryError, 503, "The identity provider cannot be reached. Please try again."),
    (errors.JWKSError, 503, "The identity provider's keys cannot be fetched. Please try again."),
    (
        errors.InvalidStateError,
        400,
        "No sign-in is in progress here, or this sign-in link has expired or was already "
        "used. Please start again.",
    ),
    (
        errors.PushedAuthorizationUnavailableError,
        500,
        "Sign-in with this identity provider is not set up correctly on this site.",
    ),
    (
        errors.PushedAuthorizationError,
        502,
        "The identity provider refused to start the sign-in. Please try again.",
    ),
    (errors.AuthorizationResponseError, 400, "The identity provider did not sign you in."),
    (errors.OversizedParameterError, 400, "The sign-in request was not valid. Please start again."),
    (errors.MalformedParameterError, 400, "The sign-in request was not valid. Please start again."),
    (
        errors.CallbackError,
        400,
        "The identity provider's answer was not valid. Please start again.",
    ),
    (errors.ClientSecretError, 503, "Sign-in is unavailable right now. Please try again shortly."),
    (
        errors.ClientCredentialsError,
        503,
        "A service this page needs is unavailable right now. Please try again shortly.",
    ),
    (errors.SessionExpiredError, 401, "Your session has ended. Please sign in again."),
    (errors.TokenEndpointError, 400, "The identity provider refused to complete the sign-in."),
    (errors.LogoutTokenValidationError, 400, "The logout request was not valid."),
    (errors.TokenValidationError, 400, "The identity provider's answer failed verification."),
    (errors.IdentityRefusedError, 403, "This account may not sign in here."),
    (errors.UserInfoError, 400, "Your profile could not be read from the identity provider."),
    (errors.LogoutError, 400, "The logout request was not valid."),
    (errors.NotSignedInError, 401, "Please sign in to continue."),
    (errors.StepUpRequiredError, 401, "Please sign in again to continue."),
    (errors.PermissionDeniedError, 403, "You do not have access to this page."),
    (errors.RPKitError, 400, "Sign-in failed. Please start again."),
)
"""Error class → (status, what a person is told). The first matching row wins."""


BEARER_REFUSALS: Final = {
    "access_token_missing": (401, "Authentication required", None),
    "access_token_invalid": (401, "Invalid access token", "invalid_token"),
    "insufficient_scope": (403, "Insufficient scope", "insufficient_scope"),
    # A missing role, permission or organization (rpkit.litestar.authz): RFC 6750's
    # insufficient_scope is its "requires higher privileges than provided by the access token".
    "insufficient_authorization": (403, "Insufficient authorization", "insufficient_scope"),
    "access_token_ambiguous": (400, "Ambiguous credentials", "invalid_request"),
    "jwks_unavailable": (503, "Service unavailable", None),
    # RFC 9449 §7.1 and §9: a refused DPoP proof, and a proof without the server's nonce
    "dpop_proof_invalid": (401, "Invalid DPoP proof", "invalid_dpop_proof"),
    "dpop_nonce_required": (401, "DPoP nonce required", "use_dpop_nonce"),
    "store_unavailable": (503, "Service unavailable", None),
}
"""rpkit ``code`` → (HTTP status, problem title, RFC 6750 ``error``): the one table of bearer
refusals. No ``error`` on a 401 is the bare challenge of a request without bearer credentials
(RFC 6750 §3.1); a 503 carries no challenge, since the token was never judged."""


def status_and_message(exc: errors.RPKitError) -> tuple[int, str]:
    """The HTTP status and the person-facing message for ``exc``."""
    for kind, status, message in STATUS_AND_MESSAGE:
        if isinstance(exc, kind):
            return status, message
    return 500, "Sign-in failed."


def error_response(
    request: Request[Any, Any, Any],
    exc: errors.RPKitError,
    *,
    error_page: str | None,
    login_page: str | None = None,
) -> Response[str | dict[str, object]]:
    """The response for ``exc``: HTML for browsers, problem details for everything else."""
    status, message = status_and_message(exc)
    login = login_redirect(request, exc, login_page=login_page)
    if login is not None:
        return login
    if not _prefers_html(request):
        problem = {
            "type": f"https://rpkit.dev/errors/{exc.code}",
            "title": message,
            "status": status,
            "code": exc.code,
        }
        return Response(
            problem, status_code=status, media_type="application/problem+json", headers=NO_STORE
        )
    headers = PRIVATE
    if error_page is not None:
        location = f"{error_page}?{urlencode({'error': exc.code})}"
        return Redirect(location, status_code=303, headers=headers)
    page = ERROR_PAGE.format(
        message=html.escape(message),
        code=html.escape(exc.code),
        start=html.escape(login_page or "/"),
    )
    return Response(page, status_code=status, media_type="text/html", headers=headers)


ERROR_PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    "<meta name='viewport' content='width=device-width, initial-scale=1'>"
    "<meta name='referrer' content='no-referrer'><title>Sign-in problem</title>"
    "<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;"
    "padding:0 1rem;line-height:1.5;color:#222}}code{{background:#f3f3f3;padding:0 .2em}}"
    "</style></head><body><h1>Sign-in problem</h1><p>{message}</p>"
    "<p><small>Error code: <code>{code}</code></small></p>"
    "<p><a href='{start}'>Back to the start</a></p></body></html>"
)
"""rpkit's own error page (``message``, ``code`` and the ``start`` link, HTML-escaped). It links
to the app's ``login_page`` (else ``/``), never to the guarded page that failed. For a page of
your own, set ``RPKitConfig.error_page``: browsers are redirected there with ``?error=<code>``."""


def private_error_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors that are not rpkit's on rpkit's routes (a 405, a malformed form, a bug): the
    app's own handler for them when it has one, else Litestar's default response; either way
    with :data:`PRIVATE` headers the response does not set itself."""
    handler = _app_handler(request, exc)
    response = handler(request, exc) if handler else create_exception_response(request, exc)
    for name, value in PRIVATE.items():
        if name not in response.headers:
            response.headers[name] = value
    return response


def _app_handler(request: Request[Any, Any, Any], exc: Exception) -> Any:
    handlers = request.app.exception_handlers
    status = getattr(exc, "status_code", 500)
    if status in handlers:
        return handlers[status]
    return next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)


def login_redirect(
    request: Request[Any, Any, Any], exc: errors.RPKitError, *, login_page: str | None = None
) -> Response[Any] | None:
    """For a browser's page load (an HTML ``GET``) that a guard refused for want of a (recent
    enough) login: a 303 to the login route, with ``return_to`` the current path and query when
    it is safe, and ``prompt=login`` and ``max_age`` for a step-up. None otherwise."""
    wants_page = request.method == "GET" and _prefers_html(request)
    if not wants_page or not isinstance(exc, errors.NotSignedInError | errors.StepUpRequiredError):
        return None
    if exc.provider_id is None and login_page is None:
        return None
    query = request.scope.get("query_string", b"").decode("latin-1")
    here = safe_return_to(quote(request.url.path) + (f"?{query}" if query else ""), "")
    params = {"return_to": here} if here else {}
    if exc.provider_id is None:  # several providers fit: the app's page lets the user choose
        target = f"{login_page}?{urlencode(params)}" if params else str(login_page)
        return Redirect(target, status_code=303, headers=NO_STORE)
    if isinstance(exc, errors.StepUpRequiredError):
        params |= {"prompt": "login", "max_age": str(exc.max_age)}
    login = request.app.route_reverse("rpkit:login", provider_id=exc.provider_id)
    target = f"{login}?{urlencode(params)}" if params else login
    return Redirect(target, status_code=303, headers=NO_STORE)


def _prefers_html(request: Request[Any, Any, Any]) -> bool:
    """Whether the client prefers an HTML page to problem details: ``text/html`` (or XHTML)
    listed with a quality at least that of any JSON type. Browsers send that; ``curl``, httpx
    and urllib send ``*/*`` and get problem details. The back-channel endpoint never gets HTML."""
    handler = request.scope.get("route_handler")
    if getattr(handler, "name", None) == "rpkit:backchannel-logout":
        return False  # a server-to-server call: no HTML page, whatever it accepts
    html_q = json_q = 0.0
    for part in request.headers.get("accept", "").split(",")[:32]:
        media, _, params = part.strip().partition(";")
        quality = _quality(params)
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            html_q = max(html_q, quality)
        elif media == "application/json" or media.endswith("+json"):
            json_q = max(json_q, quality)
    return html_q > 0 and html_q >= json_q


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value.strip()), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0
