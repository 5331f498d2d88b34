"""Front-channel logout (OpenID Connect Front-Channel Logout 1.0): the provider's logout page
frames ``GET {path}/frontchannel-logout/{provider}?iss=...&sid=...`` and rpkit ends the
sessions of that provider session.

The spec lets the OP leave out ``iss`` and ``sid`` ("if either is included, both MUST be", §2,
https://openid.net/specs/openid-connect-frontchannel-1_0.html#RPLogout); the RP would then have
to end "the logged-in session" of the framed browser, which it cannot find: the frame is
cross-site, so browsers send no ``SameSite=Lax`` cookie with it (§4.1 of the spec warns that
third-party state is blocked). rpkit therefore requires both (register the URI with
``frontchannel_logout_session_required=true``) and refuses a request without them (400).

Microsoft Entra ID sends ``sid`` without ``iss`` (``GET {logout URL}?sid=...``, nginx-openid-connect
issue #117 https://github.com/nginxinc/nginx-openid-connect/issues/117, mod_auth_openidc PR #855
https://github.com/OpenIDC/mod_auth_openidc/pull/855). The named relaxation
``ProviderConfig.frontchannel_logout_without_iss`` accepts that: the route names the provider,
so its sessions of that ``sid`` end; an ``iss`` that is sent must still match.
The answer is not cached (§2: ``Cache-Control: no-cache, no-store``, ``Pragma: no-cache``) and
may be framed only by the provider's origins (``Content-Security-Policy: frame-ancestors``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar import Request, Response, get
from litestar.params import FromPath

from rpkit._log import get_logger
from rpkit.config import ProviderConfig
from rpkit.errors import (
    LogoutError,
    MalformedParameterError,
    OversizedParameterError,
    RPKitError,
    UnknownProviderError,
)
from rpkit.flow import MAX_ISSUER_LENGTH
from rpkit.litestar.responses import error_response
from rpkit.tenants import is_allowed_issuer

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitRuntime

__all__ = ["MAX_SID_LENGTH", "frame_ancestors", "frontchannel_handlers", "log_frontchannel"]

AnyRequest = Request[Any, Any, Any]
MAX_SID_LENGTH = 255
"""Longest ``sid`` accepted. Its syntax is an OAuth 2.0 client identifier's (Front-Channel
Logout §3): VSCHAR, no length limit in the spec; real ones are UUIDs or ~40 characters."""
_VSCHAR = re.compile(r"[\x20-\x7e]+")
EVENT = "rpkit.provider_logout"
"""Emitted by the back- and front-channel routes with ``provider_id``, ``channel``
(``back-channel`` or ``front-channel``) and ``sessions_ended``."""
SIGNED_OUT_FRAME = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Signed out</title></head>"
    "<body><p>Signed out.</p></body></html>"
)
_HEADERS = {
    "Cache-Control": "no-cache, no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
}


def frontchannel_handlers(runtime: RPKitRuntime, opt: dict[str, Any]) -> list[Any]:
    """The front-channel logout route, for every provider with ``frontchannel_logout`` on."""

    @get("/frontchannel-logout/{provider_id:str}", name="rpkit:frontchannel-logout", opt=opt)
    async def frontchannel_logout(request: AnyRequest, provider_id: FromPath[str]) -> Response[Any]:
        provider = _enabled(runtime, provider_id)
        log = get_logger(provider=provider.id)
        try:
            sid = _named_session(list(request.query_params.multi_items()), provider)
        except RPKitError as exc:  # nothing looked up, nothing ended
            log.warning("rpkit.logout.frontchannel_refused", code=exc.code, reason=exc.detail)
            refused = error_response(request, exc, error_page=None)
            return _with_headers(refused, "'none'")
        ended = await runtime.sessions.end_for_logout(provider.id, sid, None)
        log.info("rpkit.logout.frontchannel", sessions_ended=ended)
        runtime.emit(
            request, EVENT, provider_id=provider.id, channel="front-channel", sessions_ended=ended
        )
        ancestors = " ".join(await frame_ancestors(runtime, provider))
        page = Response(SIGNED_OUT_FRAME, media_type="text/html", status_code=200)
        return _with_headers(page, ancestors)

    return [frontchannel_logout]


async def frame_ancestors(
    runtime: RPKitRuntime, provider: ProviderConfig, *, fetch: bool = True
) -> tuple[str, ...]:
    """The origins that may frame ``provider``'s front-channel route: the configured ones, else
    the issuer's origin and the ``end_session_endpoint``'s (when the provider has one). With
    ``fetch`` False, only discovery already cached is read."""
    if provider.frontchannel_logout_frame_ancestors:
        return provider.frontchannel_logout_frame_ancestors
    origins = [_origin(provider.issuer)]
    end_session = await _end_session_endpoint(runtime, provider, fetch=fetch)
    if end_session and _origin(end_session) not in origins:
        origins.append(_origin(end_session))
    return tuple(origins)


async def _end_session_endpoint(
    runtime: RPKitRuntime, provider: ProviderConfig, *, fetch: bool
) -> str | None:
    if provider.endpoints is not None:
        return provider.endpoints.end_session_endpoint
    if not fetch:
        cached = runtime.rp.discovery.cached(provider.issuer)
        return cached.end_session_endpoint if cached else None
    try:
        return (await runtime.rp.metadata(provider.id)).end_session_endpoint
    except RPKitError:  # the provider is unreachable: its issuer's origin still may frame
        return None


async def log_frontchannel(runtime: RPKitRuntime) -> None:
    """Log, once at startup (after discovery was warmed, never fetching it again), each
    provider with front-channel logout and who may frame its route."""
    for provider in runtime.config.providers:
        if provider.frontchannel_logout:
            ancestors = await frame_ancestors(runtime, provider, fetch=False)
            get_logger(provider=provider.id).info(
                "rpkit.startup.frontchannel_logout",
                frame_ancestors=list(ancestors),
                session_required=True,
                iss_required=not provider.frontchannel_logout_without_iss,
            )


def _enabled(runtime: RPKitRuntime, provider_id: str) -> ProviderConfig:
    """The provider, when it has front-channel logout on; a 404 otherwise."""
    provider = runtime.rp.provider(provider_id)
    if not provider.frontchannel_logout:
        msg = f"provider {provider_id!r} has no front-channel logout (frontchannel_logout=False)"
        raise UnknownProviderError(msg)
    return provider


def _named_session(params: list[tuple[str, str]], provider: ProviderConfig) -> str:
    """The ``sid`` a request names, after checking it and ``iss``; both must be sent once
    (``iss`` at most once with ``frontchannel_logout_without_iss``).

    Raises:
        LogoutError: ``iss`` or ``sid`` missing or repeated, or ``iss`` not this provider's.
        OversizedParameterError: ``iss`` or ``sid`` too long.
        MalformedParameterError: ``sid`` is not VSCHAR.
    """
    sent = {name: [v for k, v in params if k == name] for name in ("iss", "sid")}
    issuers = (0, 1) if provider.frontchannel_logout_without_iss else (1,)
    if len(sent["sid"]) != 1 or len(sent["iss"]) not in issuers:
        wanted = "at most one iss" if len(issuers) == 2 else "exactly one iss"
        raise LogoutError(f"front-channel logout needs {wanted} and one sid")
    iss, sid = next(iter(sent["iss"]), None), sent["sid"][0]
    if len(iss or "") > MAX_ISSUER_LENGTH or len(sid) > MAX_SID_LENGTH:
        msg = f"iss or sid exceeds {MAX_ISSUER_LENGTH} or {MAX_SID_LENGTH} characters"
        raise OversizedParameterError(msg)
    if not _VSCHAR.fullmatch(sid):
        raise MalformedParameterError("sid is not a string of printable ASCII (VSCHAR)")
    if iss is not None and not is_allowed_issuer(iss, provider.issuer, provider.tenants):
        raise LogoutError("iss is not this provider's issuer")
    return sid


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _with_headers(response: Response[Any], ancestors: str) -> Response[Any]:
    response.headers.update(_HEADERS)
    response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response
