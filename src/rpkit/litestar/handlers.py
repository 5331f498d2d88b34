"""rpkit's routes: login, callback, logout, the logout return, back- and front-channel logout.

Built by :func:`build_router` around the plugin's runtime, under the configured prefix, each
named (``rpkit:login``, ...) and excluded from authentication. What only a route reads (a
``return_to``, the third-party login's ``iss``, the logout form, a ``logout_token``) is bounded
here, before any store lookup or request to the provider; the core bounds the rest.
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from litestar import Request, Response, Router, get, post, route
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect

from rpkit._jwt import MAX_TOKEN_LENGTH
from rpkit._log import get_logger
from rpkit.errors import (
    InvalidStateError,
    LogoutTokenValidationError,
    OversizedParameterError,
    PermissionDeniedError,
    RPKitError,
)
from rpkit.flow import (
    MAX_ISSUER_LENGTH,
    MAX_RETURN_TO_LENGTH,
    is_issued_state,
    safe_return_to,
    single_values,
)
from rpkit.litestar._cookies import binding_of, new_handle
from rpkit.litestar.frontchannel import EVENT as PROVIDER_LOGOUT
from rpkit.litestar.frontchannel import frontchannel_handlers
from rpkit.litestar.responses import NO_STORE, PRIVATE, private_error_response

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitRuntime

__all__ = ["build_router"]

AnyRequest = Request[Any, Any, Any]
CALLBACK_HEADERS = PRIVATE
MAX_CSRF_TOKEN_LENGTH = 256
"""Longest ``csrf_token`` a logout form may carry (rpkit's are 43 characters)."""
MAX_LOGOUT_RETURN_LENGTH = 8192
"""Longest query of the browser's return from the provider's end-session endpoint."""
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
"""A signed compact JWS: what a logout token must be before the core is asked to read it."""
SIGNED_OUT_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>Signed out</title></head>"
    "<body><h1>You are signed out.</h1><p><a href='/'>Back to the start</a></p></body></html>"
)


def build_router(runtime: RPKitRuntime) -> Router:
    """The router of rpkit's routes, closing over ``runtime`` (no module globals)."""
    config = runtime.config
    # Each route brings its own protection (state, a session-bound CSRF token, a signed logout
    # token), so Litestar's CSRF middleware, when the app uses it, must not refuse the OP's
    # cross-site form_post callback or back-channel POST.
    opt = {"exclude_from_auth": True, "skip_session": True, "exclude_from_csrf": True}

    async def start_login(
        request: AnyRequest, provider_id: str, return_to: str | None, **asked: str | None
    ) -> Response[Any]:
        _bounded("return_to", return_to, MAX_RETURN_TO_LENGTH)
        handle = runtime.browser_handle(request) or new_handle()
        started = await runtime.rp.begin_login(
            provider_id,
            redirect_uri=runtime.url_for(request, "rpkit:callback", provider_id=provider_id),
            return_to=safe_return_to(return_to, config.default_return_to),
            params=_present(**asked),
            binding=binding_of(handle),
        )
        response: Response[Any] = Redirect(started.url, status_code=303, headers=NO_STORE)
        await runtime.pend_login(response, handle, started.state, runtime.rp.provider(provider_id))
        return response

    @get("/login/{provider_id:str}", name="rpkit:login", opt=opt)
    async def login(
        request: AnyRequest,
        provider_id: FromPath[str],
        *,
        login_hint: FromQuery[str | None] = None,
        return_to: FromQuery[str | None] = None,
        prompt: FromQuery[str | None] = None,
        max_age: FromQuery[str | None] = None,
    ) -> Response[Any]:
        return await start_login(
            request, provider_id, return_to, login_hint=login_hint, prompt=prompt, max_age=max_age
        )

    @route("/initiate", http_method=["GET", "POST"], name="rpkit:initiate-login", opt=opt)
    async def initiate_login(request: AnyRequest) -> Response[Any]:
        """Login initiated by the OP or a third party (Core §4): ``iss`` must name a configured
        provider, compared exactly (nothing is discovered from it: no SSRF); ``target_link_uri``
        is kept only as a path on this app's own origin; ``login_hint`` is passed through."""
        asked = await _initiation_params(request)
        _bounded("iss", asked.get("iss"), MAX_ISSUER_LENGTH)
        _bounded("target_link_uri", asked.get("target_link_uri"), MAX_RETURN_TO_LENGTH)
        provider_id = runtime.provider_for_issuer(asked.get("iss"))
        target = _same_origin_path(asked.get("target_link_uri"), runtime.public_origin(request))
        return await start_login(request, provider_id, target, login_hint=asked.get("login_hint"))

    @route(
        "/callback/{provider_id:str}", http_method=["GET", "POST"], name="rpkit:callback", opt=opt
    )
    async def callback(request: AnyRequest, provider_id: FromPath[str]) -> Response[Any]:
        params = await _sent_params(request)
        handle = runtime.browser_handle(request)
        try:
            result = await runtime.rp.complete_login(
                provider_id, params, binding=binding_of(handle) if handle else None
            )
        except InvalidStateError:
            # A callback reloaded (or opened from history) after its login finished carries a
            # state rpkit issued and no error: a signed-in browser goes where signed-in users
            # go, not to an error page. Nothing was exchanged: the state was refused before any
            # request. Anything else (no state, a forged one, an error response) stays refused.
            sent = dict(params)
            spent = is_issued_state(sent.get("state") or "") and "error" not in sent
            if not spent or await runtime.current_session(request) is None:
                raise
            return Redirect(runtime.config.default_return_to, status_code=303)
        previous = request.cookies.get(runtime.session_cookie)
        try:
            session_id = await runtime.sessions.create(result, previous_id=previous)
        except RPKitError as exc:  # the core logged nothing: its part of the login succeeded
            get_logger(provider=provider_id).warning("rpkit.login.failed", reason=exc.code)
            raise
        response: Response[Any] = Redirect(
            result.return_to, status_code=303, headers=CALLBACK_HEADERS
        )
        runtime.set_session_cookie(response, session_id)
        await runtime.end_login(response, handle, dict(params).get("state"))
        runtime.emit(request, "rpkit.login", identity=result.identity)
        return response

    handlers = [
        login,
        initiate_login,
        callback,
        *_logout_handlers(runtime, opt),
        *frontchannel_handlers(runtime, opt),
    ]
    return Router(
        path=config.path,
        route_handlers=handlers,
        include_in_schema=False,
        exception_handlers={HTTPException: private_error_response, 500: private_error_response},
    )


def _logout_handlers(runtime: RPKitRuntime, opt: dict[str, Any]) -> list[Any]:
    """``POST /logout``, the logout return and the back-channel logout endpoint."""
    config = runtime.config

    @post("/logout", name="rpkit:logout", opt=opt, status_code=303)
    async def logout(request: AnyRequest) -> Response[Any]:
        form = await request.form()
        presented = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
        _bounded("csrf_token", str(presented), MAX_CSRF_TOKEN_LENGTH)
        _bounded("return_to", form.get("return_to"), MAX_RETURN_TO_LENGTH)
        session_id = request.cookies.get(runtime.session_cookie)
        data = await runtime.sessions.peek(session_id)
        target: str = config.default_return_to
        response: Response[Any]
        if data is None or session_id is None:
            response = Redirect(target, status_code=303, headers=NO_STORE)
            runtime.clear_cookie(response, runtime.session_cookie)
            return response
        if not hmac.compare_digest(str(presented).encode(), data.csrf_token.encode()):
            raise PermissionDeniedError("logout needs this app's CSRF token", requirement="csrf")
        await runtime.sessions.destroy(session_id)  # the local session ends first (row 50)
        handle = runtime.browser_handle(request) or new_handle()
        ended = await runtime.rp.begin_logout(
            data.provider_id,
            id_token_hint=data.id_token or None,  # cookie sessions keep no ID token
            return_to=safe_return_to(form.get("return_to"), config.default_return_to),
            binding=binding_of(handle),
        )
        response = Redirect(ended.url or target, status_code=303, headers=NO_STORE)
        runtime.clear_cookie(response, runtime.session_cookie)
        if ended.state:
            runtime.set_handle_cookie(response, handle, runtime.rp.provider(data.provider_id))
        runtime.emit(request, "rpkit.logout", identity=data.identity)
        return response

    @get("/logout/callback", name="rpkit:logout-callback", opt=opt)
    async def logout_callback(request: AnyRequest) -> Response[Any]:
        params = list(request.query_params.multi_items())
        if not _plausible_logout_return(request, params):  # nothing of ours: nothing to look up
            return Response(SIGNED_OUT_PAGE, media_type="text/html", headers=CALLBACK_HEADERS)
        handle = runtime.browser_handle(request)
        returned = await runtime.rp.complete_logout(
            params, binding=binding_of(handle) if handle else None
        )
        if returned.matched and returned.return_to:
            return Redirect(returned.return_to, status_code=303, headers=CALLBACK_HEADERS)
        return Response(SIGNED_OUT_PAGE, media_type="text/html", headers=CALLBACK_HEADERS)

    @post(
        "/backchannel-logout/{provider_id:str}",
        name="rpkit:backchannel-logout",
        opt=opt,
        status_code=200,
    )
    async def backchannel_logout(
        request: AnyRequest, provider_id: FromPath[str]
    ) -> Response[dict[str, Any]]:
        form = await request.form()
        tokens = form.getall("logout_token", [])
        if len(tokens) > 1:
            raise LogoutTokenValidationError("malformed", "the request repeats logout_token")
        token = str(tokens[0]) if tokens else ""
        if len(token) > MAX_TOKEN_LENGTH or not _COMPACT_JWS.fullmatch(token):
            msg = "logout_token is not a signed compact JWT of acceptable length"
            raise LogoutTokenValidationError("malformed", msg)
        logout_token = await runtime.rp.backchannel_logout(provider_id, token)
        ended = await runtime.sessions.end_for_logout(
            provider_id, logout_token.sid, logout_token.sub
        )
        runtime.emit(
            request,
            PROVIDER_LOGOUT,
            provider_id=provider_id,
            channel="back-channel",
            sessions_ended=ended,
        )
        return Response({}, status_code=200, headers=NO_STORE)

    return [logout, logout_callback, backchannel_logout]


def _bounded(name: str, value: Any, limit: int) -> None:
    """Refuse a route parameter over ``limit`` characters (a 400) before anything uses it."""
    if isinstance(value, str) and len(value) > limit:
        raise OversizedParameterError(f"{name} exceeds {limit} characters")


def _plausible_logout_return(request: AnyRequest, params: list[tuple[str, str]]) -> bool:
    """Whether a return from the end-session endpoint could match a logout of ours: a bounded
    query with one ``state`` of the shape rpkit mints. Anything else gets the signed-out page
    without a store lookup."""
    if len(request.scope.get("query_string", b"")) > MAX_LOGOUT_RETURN_LENGTH:
        return False
    states = [value for name, value in params if name == "state"]
    return len(states) == 1 and is_issued_state(states[0])


def _present(**asked: str | None) -> dict[str, str] | None:
    """The authorization parameters a login was given, passed through as given: the core checks
    them against the provider's allowlist (``prompt`` and ``max_age`` serve step-up)."""
    return {name: value for name, value in asked.items() if value} or None


async def _initiation_params(request: AnyRequest) -> dict[str, str]:
    """``iss``, ``login_hint`` and ``target_link_uri`` from the query (GET) or the form (POST);
    a repeated parameter is refused, as in callbacks."""
    wanted = {"iss", "login_hint", "target_link_uri"}
    sent = [(name, value) for name, value in await _sent_params(request) if name in wanted]
    return single_values(sent, "third-party login")


def _same_origin_path(target: str | None, origin: str) -> str | None:
    """The path and query of ``target`` when it is on ``origin`` (or already a relative path);
    None otherwise, so the login lands on the default page."""
    if not target:
        return None
    if target.startswith("/"):
        return target
    try:
        parts = urlsplit(target)
    except ValueError:  # an unbalanced '[' in the host, say
        return None
    if f"{parts.scheme}://{parts.netloc}".lower() != origin.lower() or not parts.path:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def _sent_params(request: AnyRequest) -> list[tuple[str, str]]:
    """The parameters as sent: the query for GET, the form for POST (an authorization
    response's form_post); repeated ones are kept so they can be refused (row 14)."""
    if request.method == "POST":
        form = await request.form()
        return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return list(request.query_params.multi_items())
