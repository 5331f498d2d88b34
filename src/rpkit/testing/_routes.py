"""The fake OP's URL layout for each kind of provider, and the dispatch of a request to the
endpoint that answers it (after the oracle, latency and canned-response knobs)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from rpkit.testing import _authorize, _oauth2, _par_dpop, _resources, _tenants, _token
from rpkit.testing._http import OAuthError, OPRequest, html_response, parse
from rpkit.testing.knobs import Endpoint
from rpkit.testing.oracle import RecordedRequest

if TYPE_CHECKING:
    from rpkit.testing.op import FakeOP

DISCOVERY_PATH = "/.well-known/openid-configuration"
_OIDC_ENDPOINTS: tuple[Endpoint, ...] = (
    "authorize",
    "token",
    "userinfo",
    "jwks",
    "end_session",
    "par",
)
_HANDLERS: dict[Endpoint, Callable[[FakeOP, OPRequest], httpx.Response]] = {
    "discovery": _resources.discovery,
    "jwks": _resources.jwks,
    "userinfo": _resources.userinfo,
    "authorize": _authorize.authorize,
    "end_session": _authorize.end_session,
    "token": _token.token,
    "profile": _oauth2.profile,
    "extra": _oauth2.extra,
    "par": _par_dpop.pushed_authorization,
}


def build_paths(op: FakeOP, *, random_paths: bool) -> dict[str, Endpoint]:
    """Path → endpoint for ``op``'s kind; discovery paths first, ``extra_json`` paths last.

    Raises:
        ValueError: ``profile_path`` or an ``extra_json`` path that does not start with ``/``
            or that an endpoint already uses.
    """
    base_path = urlsplit(op.issuer).path.rstrip("/")
    prefix = f"/{secrets.token_hex(6)}" if random_paths else ""
    paths: dict[str, Endpoint] = {}
    if op.kind == "oauth2":
        paths |= {f"{base_path}{prefix}/{name}": name for name in ("authorize", "token")}
        own: list[tuple[str, Endpoint]] = [(op.profile_path, "profile")]
    else:
        discovery = [f"{base_path}{DISCOVERY_PATH}"]
        if op.issuer_template:
            discovery = _tenants.discovery_paths(base_path, DISCOVERY_PATH)
        paths |= dict.fromkeys(discovery, "discovery")
        paths |= {f"{base_path}{prefix}/{name}": name for name in _OIDC_ENDPOINTS}
        own = []
    for path, endpoint in [*own, *((path, "extra") for path in op.extra_json)]:
        if not path.startswith("/"):
            msg = f"path {path!r} must start with '/': it goes under the issuer"
            raise ValueError(msg)
        if f"{base_path}{path}" in paths:
            msg = f"path {path!r} is already the {paths[base_path + path]} endpoint"
            raise ValueError(msg)
        paths[f"{base_path}{path}"] = endpoint
    return paths


def check_options(kind: str, *, profile: object, multi_tenant: bool) -> None:
    """Refuse FakeOP options that contradict each other or the kind.

    Raises:
        ValueError: an unknown kind, a multi-tenant OAuth 2.0 provider, a profile for OIDC.
    """
    if kind not in ("oidc", "oauth2"):
        msg = f"kind must be 'oidc' or 'oauth2', not {kind!r}"
        raise ValueError(msg)
    if kind == "oauth2" and multi_tenant:
        msg = "multi_tenant needs kind='oidc': an OAuth 2.0-only provider issues no ID tokens"
        raise ValueError(msg)
    if kind == "oidc" and profile is not None:
        msg = "profile is for kind='oauth2'; an OpenID Provider's identity is its ID token"
        raise ValueError(msg)


def endpoint_urls(op: FakeOP) -> dict[str, str]:
    """The URLs a client configures, named as in discovery metadata; ``profile_endpoint`` is
    UserInfo for an OpenID Provider."""
    urls = {
        "authorization_endpoint": op.endpoints["authorize"],
        "token_endpoint": op.endpoints["token"],
    }
    if op.kind == "oauth2":
        return urls | {"profile_endpoint": op.endpoints["profile"]}
    return urls | {
        "profile_endpoint": op.endpoints["userinfo"],
        "jwks_uri": op.endpoints["jwks"],
        "end_session_endpoint": op.endpoints["end_session"],
    }


async def answer(op: FakeOP, request: httpx.Request, paths: dict[str, Endpoint]) -> httpx.Response:
    """Record ``request``, then answer it from the endpoint at its path (or 404)."""
    endpoint = paths.get(request.url.path)

    def record(query: Any, form: Any, payload: Any) -> RecordedRequest:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return op.oracle.record(
            RecordedRequest(
                endpoint, request.method, str(request.url), query, headers, form, payload
            )
        )

    req = await parse(request, record)
    if endpoint is None:
        req.record.outcome = "not_found"
        return html_response("<h1>Not found</h1>", 404)
    delay = op.misbehave.latency_for(endpoint)
    if delay:
        await asyncio.sleep(delay)
    canned = op.misbehave.respond.get(endpoint)
    if canned is not None:
        req.record.outcome = f"canned {canned.status}"
        headers = {"Content-Type": canned.content_type} if canned.content_type else {}
        return httpx.Response(
            canned.status, content=canned.body, headers={**headers, **canned.headers}
        )
    return _dispatch(op, endpoint, req)


def _dispatch(op: FakeOP, endpoint: Endpoint, req: OPRequest) -> httpx.Response:
    try:
        response = _HANDLERS[endpoint](op, req)
    except OAuthError as error:
        req.record.outcome = str(error)
        return error.response()
    if req.record.outcome == "pending":
        req.record.outcome = "ok"
    return response
