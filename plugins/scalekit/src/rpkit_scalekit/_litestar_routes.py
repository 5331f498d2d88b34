"""The handlers of :class:`~rpkit_scalekit.litestar.ScalekitLitestarPlugin`, closing over it.

POST bodies are read once, here, bounded, with the CSRF rule of the plugin's docstring. Every
input is checked (:mod:`rpkit_scalekit._inbound`) before any store lookup or request to
Scalekit. The passwordless endpoints are in :mod:`rpkit_scalekit._passwordless_routes`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response, Router, get, post, route
from litestar.response import Redirect

from rpkit._log import get_logger
from rpkit.client import Identity
from rpkit.errors import PermissionDeniedError
from rpkit.flow import safe_return_to
from rpkit.litestar._cookies import binding_of, new_handle
from rpkit.litestar.responses import NO_STORE
from rpkit_scalekit._inbound import (
    MAX_BODY_BYTES,
    Body,
    UnsupportedBodyError,
    csrf_matches,
    csrf_token,
    refuse_email_content,
    return_to,
    text,
)
from rpkit_scalekit._passwordless_handlers import passwordless_handlers
from rpkit_scalekit._passwordless_pages import Step
from rpkit_scalekit._passwordless_routes import PasswordlessRoutes
from rpkit_scalekit.errors import InvalidEmailError, ScalekitError
from rpkit_scalekit.identity import ScalekitIdentity, passwordless_identity
from rpkit_scalekit.idp_initiated import check_token
from rpkit_scalekit.passwordless import VerifyResult
from rpkit_scalekit.routing import LoginRoute
from rpkit_scalekit.webhooks import MAX_BODY_BYTES as MAX_WEBHOOK_BYTES
from rpkit_scalekit.webhooks import WebhookVerifier, typed_event

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitRuntime
    from rpkit_scalekit.environment import ScalekitEnvironment
    from rpkit_scalekit.litestar import ScalekitLitestarPlugin

__all__ = ["build_router"]

AnyRequest = Request[Any, Any, Any]
_ROUTING = ("organization_id", "connection_id", "provider", "domain_hint", "prompt")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class _Routes:
    def __init__(self, plugin: ScalekitLitestarPlugin) -> None:
        self.plugin = plugin

    def runtime(self, request: AnyRequest) -> RPKitRuntime:
        return self.plugin.runtime(request.app)

    def env(self, request: AnyRequest) -> ScalekitEnvironment:
        return self.plugin.start(request.app)

    async def body(self, request: AnyRequest, handle: str | None) -> Body:
        """JSON, or a form with this browser's CSRF token; anything else is refused."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                values = msgspec.json.decode(await request.body())
            except (ValueError, RecursionError):  # msgspec's errors, bad UTF-8, deep nesting
                raise UnsupportedBodyError("the body is not JSON", field="body") from None
            if not isinstance(values, dict):
                raise UnsupportedBodyError("the body is not a JSON object", field="body")
            return Body(values, json=True)
        if kind in _FORMS:
            form = await request.form()
            presented = form.get("csrf_token")
            secret = self.runtime(request).config.secret
            expected = csrf_token(secret, handle) if handle else ""
            if not csrf_matches(presented, expected):
                raise PermissionDeniedError("this form needs its CSRF token", requirement="csrf")
            return Body({k: v for k, v in form.items() if isinstance(v, str)}, json=False)
        raise UnsupportedBodyError("send JSON or a form with its CSRF token", field="body")

    def return_to(self, request: AnyRequest, values: dict[str, Any]) -> str:
        return return_to(values, self.runtime(request).config.default_return_to)

    # -- SSO ---------------------------------------------------------------------------------
    async def begin_sso(
        self,
        request: AnyRequest,
        login: LoginRoute,
        return_to: str | None,
        *,
        json: bool,
    ) -> Response[Any]:
        """A fresh SP-initiated login (its own state, nonce and PKCE) with the route's
        parameters, pended in this browser as rpkit's ``/login`` route does."""
        runtime = self.runtime(request)
        provider_id = self.plugin.provider_id
        handle = runtime.browser_handle(request) or new_handle()
        started = await runtime.rp.begin_login(
            provider_id,
            redirect_uri=runtime.url_for(request, "rpkit:callback", provider_id=provider_id),
            return_to=safe_return_to(return_to, runtime.config.default_return_to),
            params=login.params(),
            binding=binding_of(handle),
        )
        response: Response[Any]
        if json:
            answer = {"next": "redirect", "location": started.url}
            response = Response(answer, headers=NO_STORE)
        else:
            response = Redirect(started.url, status_code=303, headers=NO_STORE)
        await runtime.pend_login(response, handle, started.state, runtime.rp.provider(provider_id))
        return response

    async def identity(self, request: AnyRequest, result: VerifyResult, method: str) -> Identity:
        config = self.runtime(request).rp.provider(self.plugin.provider_id)
        # The identity key of rpkit_scalekit.identity: the hosted login's key for this person
        # (with user management, their Scalekit user id, looked up by address).
        mapper = config.hooks.identity
        if isinstance(mapper, ScalekitIdentity):
            return await mapper.headless(config.id, config.issuer, result.email, method)
        return passwordless_identity(config.id, config.issuer, result.email, method)

    def name(self, suffix: str) -> str:
        return f"rpkit-scalekit:{self.plugin.provider_id}:{suffix}"


def build_router(plugin: ScalekitLitestarPlugin) -> Router:
    """The plugin's routes under its ``path``; each brings its own CSRF protection."""
    routes = _Routes(plugin)
    emails = PasswordlessRoutes(routes)
    opt = {"exclude_from_auth": True, "skip_session": True, "exclude_from_csrf": True}
    name = routes.name

    @route(
        "/start",
        http_method=["GET", "POST"],
        name=name("start"),
        opt=opt,
        status_code=200,
        request_max_body_size=MAX_BODY_BYTES,
    )
    async def start(request: AnyRequest) -> Response[Any]:
        handle = routes.runtime(request).browser_handle(request)
        if request.method == "GET":
            return await route_login(request, handle, Body(dict(request.query_params), json=False))
        body = await routes.body(request, handle)
        if not plugin.passwordless:
            return await route_login(request, handle, body)
        step = Step("send")
        try:
            return await route_login(request, handle, body, step)
        except ScalekitError as exc:  # a form goes back to the app's page, if it has one
            return await emails.refused(request, exc, json=body.json, step=step)

    async def route_login(
        request: AnyRequest, handle: str | None, body: Body, step: Step | None = None
    ) -> Response[Any]:
        values = body.values
        sends = plugin.passwordless and request.method == "POST"
        if sends:
            refuse_email_content(values)
        asked = {key: text(values, key) for key in _ROUTING}
        email = text(values, "email")
        destination = routes.return_to(request, values)  # checked before the domain lookup
        if email is None and not any(asked[k] for k in _ROUTING[:3]):
            raise InvalidEmailError
        login = await routes.env(request).router.route(email=email, **asked)
        passwordless = bool(sends and login.kind == "hosted" and email)
        get_logger(provider=plugin.provider_id).info(
            "rpkit.scalekit.login_routed",
            kind="passwordless" if passwordless else login.kind,
            reason=login.reason,
        )
        if passwordless:
            step = step or Step("send")
            return await emails.send(request, handle, values, json=body.json, step=step)
        return await routes.begin_sso(request, login, destination, json=body.json)

    @get("/csrf", name=name("csrf"), opt=opt)
    async def csrf(request: AnyRequest) -> Response[Any]:
        runtime = routes.runtime(request)
        handle = runtime.browser_handle(request) or new_handle()
        token = csrf_token(runtime.config.secret, handle)
        response: Response[Any] = Response({"csrf_token": token}, headers=NO_STORE)
        runtime.set_handle_cookie(response, handle, runtime.rp.provider(plugin.provider_id))
        return response

    @get("/idp-initiated", name=name("idp-initiated"), opt=opt)
    async def idp_initiated(request: AnyRequest) -> Response[Any]:
        runtime = routes.runtime(request)
        token = check_token(request.query_params.get("idp_initiated_login"))
        config = runtime.rp.provider(plugin.provider_id)
        login = await routes.env(request).idp_initiated.verify(
            token, config=config, metadata=await runtime.rp.metadata(plugin.provider_id)
        )
        return await routes.begin_sso(request, login.route, login.return_to, json=False)

    handlers: list[Any] = [start, csrf, idp_initiated, *passwordless_handlers(emails, opt)]
    if plugin.webhook_secret is not None:
        handlers.append(_webhook_handler(routes, opt))
    return Router(path=plugin.path, route_handlers=handlers, include_in_schema=False)


def _webhook_handler(routes: _Routes, opt: dict[str, Any]) -> Any:
    plugin = routes.plugin
    secret = plugin.webhook_secret
    assert secret is not None  # noqa: S101 - only routed with a secret

    @post(
        "/webhooks",
        name=routes.name("webhooks"),
        opt=opt,
        status_code=200,
        request_max_body_size=MAX_WEBHOOK_BYTES,
    )
    async def webhooks(request: AnyRequest) -> Response[Any]:
        runtime = routes.runtime(request)
        verifier = WebhookVerifier(secret, store=runtime.rp.store)
        event = await verifier.verify(dict(request.headers.items()), await request.body())
        try:
            ended = 0
            typed = typed_event(event)  # a malformed directory event is refused before any emit
            user_id = event.data.get("user_id")
            if event.type == "user.logout" and isinstance(user_id, str) and user_id:
                ended = await runtime.sessions.end_for_logout(plugin.provider_id, None, user_id)
            runtime.emit(request, "rpkit.scalekit.webhook", event=event)
            if typed is not None:  # one Litestar event per directory event type
                runtime.emit(request, typed.name, event=event, payload=typed.payload)
        except Exception:
            await verifier.release(event)  # let Scalekit's redelivery through
            raise
        return Response({"received": True, "sessions_ended": ended}, headers=NO_STORE)

    return webhooks
