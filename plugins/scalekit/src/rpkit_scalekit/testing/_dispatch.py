"""Request dispatch of the fake Scalekit: path → endpoint, then latency, injected failures,
canned answers, management-API authentication and the endpoint's handler, in that order."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from rpkit_scalekit.testing import _directory, _management, _oauth, _passwordless, _token
from rpkit_scalekit.testing._wire import ApiError, OAuthError, ParsedRequest, html_response
from rpkit_scalekit.testing.knobs import ApiEndpoint, ScalekitEndpoint

if TYPE_CHECKING:
    from rpkit_scalekit.testing.fake import FakeScalekit

DEV_OUTBOX_PATHS = ("/_dev/outbox", "/_dev/outbox.json")
"""The development mailbox: an HTML page and its JSON, served when ``dev_pages`` is on."""

Handler = Callable[["FakeScalekit", ParsedRequest], httpx.Response]
_HANDLERS: dict[ScalekitEndpoint, Handler] = {
    "discovery": _oauth.discovery,
    "resource_metadata": _oauth.resource_metadata,
    "keys": _oauth.keys,
    "authorize": _oauth.authorize,
    "token": _token.token,
    "logout": _oauth.logout,
    "passwordless_send": _passwordless.send,
    "passwordless_resend": _passwordless.resend,
    "passwordless_verify": _passwordless.verify,
    "connections": _management.connections,
    "domains": _management.domains,
    "directories": _directory.directories,
    "directory": _directory.directory,
    "directory_members": _directory.members,
    "users_search": _management.users_search,
    "api_other": _management.other,
}
_PATHS: dict[str, ScalekitEndpoint] = {
    "/.well-known/openid-configuration": "discovery",
    "/keys": "keys",
    "/oauth/authorize": "authorize",
    "/oauth/token": "token",
    "/oidc/logout": "logout",
    "/api/v1/passwordless/email/send": "passwordless_send",
    "/api/v1/passwordless/email/resend": "passwordless_resend",
    "/api/v1/passwordless/email/verify": "passwordless_verify",
    "/api/v1/connections": "connections",
    "/api/v1/users:search": "users_search",
}
_RESOURCE_METADATA = re.compile(
    # Both spellings: RFC 8414 §3.1 inserts the well-known suffix before the issuer's path (what
    # MCP clients and FastMCP's Scalekit provider fetch); the older form appends it.
    r"/resources/[^/]+/\.well-known/oauth-authorization-server"
    r"|/\.well-known/oauth-authorization-server/resources/[^/]+"
)
_RESOURCE_TOKEN = re.compile(r"/resources/[^/]+/oauth/token")
"""The token endpoint the resource metadata names; the environment's own ``/oauth/token``."""
_PATTERNS: tuple[tuple[re.Pattern[str], ScalekitEndpoint], ...] = (
    (_management.DOMAINS_PATH, "domains"),
    (_directory.DIRECTORIES_PATH, "directories"),
    (_directory.DIRECTORY_PATH, "directory"),
    (_directory.MEMBERS_PATH, "directory_members"),
    (_RESOURCE_METADATA, "resource_metadata"),
    (_RESOURCE_TOKEN, "token"),
)
_API_ENDPOINTS: frozenset[str] = frozenset(ApiEndpoint.__args__)  # type: ignore[attr-defined]


def endpoint_for(fake: FakeScalekit, path: str) -> ScalekitEndpoint | None:
    """Which endpoint serves ``path`` (None: not found)."""
    if fake.base_path and path.startswith(fake.base_path):
        path = path[len(fake.base_path) :]
    if path in _PATHS:
        return _PATHS[path]
    for pattern, endpoint in _PATTERNS:
        if pattern.fullmatch(path):
            return endpoint
    if path.startswith("/api/v1/"):
        return "api_other"
    if fake.dev_pages and path in DEV_OUTBOX_PATHS:
        return "dev_outbox"
    return None


async def answer(
    fake: FakeScalekit, endpoint: ScalekitEndpoint | None, req: ParsedRequest
) -> tuple[httpx.Response, str]:
    """The fake's answer to ``req`` and how the recording describes it."""
    if endpoint is None:
        return html_response("<h1>Not found</h1>", 404), "not_found"
    delay = fake.knobs.latency.get(endpoint, 0.0)
    if delay:
        await asyncio.sleep(delay)
    overridden = _overridden(fake, endpoint, req)
    if overridden is not None:
        return overridden
    try:
        if endpoint == "dev_outbox":
            return _dev_outbox(fake, req), "ok"
        if endpoint in _API_ENDPOINTS:
            _management.authenticate(fake, req)
        response = _HANDLERS[endpoint](fake, req)
    except ApiError as error:
        return error.response(req.request_id), error.outcome
    except OAuthError as error:
        return error.response(), error.outcome
    return response, req.outcome or "ok"


def _overridden(
    fake: FakeScalekit, endpoint: ScalekitEndpoint, req: ParsedRequest
) -> tuple[httpx.Response, str] | None:
    """An injected failure or a canned answer instead of the endpoint's own."""
    injected = _injected(fake, endpoint, req)
    if injected is not None:
        return injected, f"injected {injected.status_code}"
    canned = fake.knobs.respond.get(endpoint)
    if canned is None:
        return None
    headers = {"Content-Type": canned.content_type} if canned.content_type else {}
    headers |= canned.headers
    return httpx.Response(canned.status, content=canned.body, headers=headers), (
        f"canned {canned.status}"
    )


def _injected(
    fake: FakeScalekit, endpoint: ScalekitEndpoint, req: ParsedRequest
) -> httpx.Response | None:
    failure = fake.knobs.fail.get(endpoint)
    if failure is None:
        return None
    if failure.times is not None:
        failure.times -= 1
        if failure.times <= 0:
            del fake.knobs.fail[endpoint]
    if endpoint in _API_ENDPOINTS:
        code = None if failure.error == "server_error" else failure.error
        response = ApiError(failure.status, failure.message, error_code=code).response(
            req.request_id
        )
    elif endpoint == "token":
        response = OAuthError(failure.error, failure.message, status=failure.status).response()
    else:
        response = httpx.Response(failure.status, text=failure.message)
    response.headers.update(failure.headers)
    return response


def _dev_outbox(fake: FakeScalekit, req: ParsedRequest) -> httpx.Response:
    if req.url.path.endswith(".json"):
        return httpx.Response(200, json={"emails": fake.outbox.as_json()})
    return html_response(fake.outbox.as_html())
