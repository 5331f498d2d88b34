"""The handlers of :class:`~rpkit_scalekit.litestar.ScalekitLitestarPlugin`, closing over it.

Pending passwordless sign-ins live in rpkit's flows store under the hash of the browser's
transaction handle (never the ``auth_request_id`` in a cookie or a page); POST bodies are read
once, here, bounded, with the CSRF rule of the plugin's docstring. Every input is checked
(:mod:`rpkit_scalekit._inbound`) before any store lookup or request to Scalekit. A pending
sign-in is verified under a store lock (one upstream verify at a time, across workers) and
consumed atomically before its session is created, so it yields one session at most.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response, Router, get, post, route
from litestar.response import Redirect

from rpkit._log import get_logger
from rpkit.client import Identity
from rpkit.errors import PermissionDeniedError
from rpkit.flow import safe_return_to
from rpkit.litestar._cookies import binding_of, new_handle
from rpkit.litestar._locks import StoreLock
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
from rpkit_scalekit.errors import (
    InvalidEmailError,
    PasswordlessInvalidCredentialError,
    PasswordlessUsedError,
    ScalekitInputError,
)
from rpkit_scalekit.idp_initiated import check_token
from rpkit_scalekit.passwordless import (
    PasswordlessEmail,
    SendResult,
    VerifyResult,
    check_code,
    check_link_token,
)
from rpkit_scalekit.routing import LoginRoute, check_email
from rpkit_scalekit.webhooks import MAX_BODY_BYTES as MAX_WEBHOOK_BYTES
from rpkit_scalekit.webhooks import WebhookVerifier

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitRuntime
    from rpkit_scalekit.environment import ScalekitEnvironment
    from rpkit_scalekit.litestar import ScalekitLitestarPlugin

__all__ = ["build_router"]

AnyRequest = Request[Any, Any, Any]
Verify = Callable[["_Pending"], Awaitable[VerifyResult]]
_PENDING = "rpkit:scalekit:passwordless:"
_LOCK = "scalekit:passwordless:"
_NOT_PENDING = "no passwordless sign-in is pending in this browser"
_PENDING_TTL = 600  # the transaction cookie's lifetime: the pending record cannot outlive it
_ROUTING = ("organization_id", "connection_id", "provider", "domain_hint", "prompt")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class _Pending(msgspec.Struct, frozen=True):
    auth_request_id: str
    email: str
    state: str
    return_to: str


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

    # -- passwordless ------------------------------------------------------------------------
    async def send(
        self, request: AnyRequest, handle: str | None, values: dict[str, Any], *, json: bool
    ) -> Response[Any]:
        """Email a code or link to ``email``; what the email says is the server's alone."""
        runtime = self.runtime(request)
        refuse_email_content(values)
        email = text(values, "email")
        if email is None:
            raise InvalidEmailError
        address, _ = check_email(email)
        destination = self.return_to(request, values)
        content = await self.email_content(request, address)
        handle = handle or new_handle()
        state = secrets.token_urlsafe(24)
        sent = await self.env(request).passwordless.send(
            address,
            template=content.template,
            magiclink_auth_uri=runtime.url_for(request, self.name("magic-link")),
            state=state,
            expires_in=self.plugin.magic_link_expires_in,
            template_variables=content.template_variables,
        )
        pending = _Pending(sent.auth_request_id, address, state, destination)
        await self.remember(request, handle, pending, sent)
        return self.sent_response(request, handle, sent, json=json)

    async def email_content(self, request: AnyRequest, email: str) -> PasswordlessEmail:
        """The configured email, or what the plugin's ``email_hook`` makes of it."""
        default = self.plugin.passwordless_email
        hook = self.plugin.email_hook
        if hook is None:
            return default
        content = await hook(request, email, default)
        if not isinstance(content, PasswordlessEmail):
            raise TypeError("an email hook must return a PasswordlessEmail")
        return content

    async def remember(
        self, request: AnyRequest, handle: str, pending: _Pending, sent: SendResult
    ) -> None:
        ttl = max(1, min(sent.expires_in, _PENDING_TTL))
        store = self.runtime(request).rp.store
        await store.set(_PENDING + binding_of(handle), msgspec.json.encode(pending), ttl)

    def handle(self, request: AnyRequest) -> str:
        """This browser's transaction handle.

        Raises:
            PasswordlessInvalidCredentialError: none (another browser, or it expired).
        """
        handle = self.runtime(request).browser_handle(request)
        if handle is None:
            raise PasswordlessInvalidCredentialError(_NOT_PENDING)
        return handle

    async def pending(self, request: AnyRequest, handle: str) -> _Pending:
        """The passwordless sign-in pending under ``handle`` (read it under :meth:`lock`).

        Raises:
            PasswordlessInvalidCredentialError: none (spent, or it expired).
        """
        raw = await self.runtime(request).rp.store.get(_PENDING + binding_of(handle))
        if raw is None:
            raise PasswordlessInvalidCredentialError(_NOT_PENDING)
        return msgspec.json.decode(raw, type=_Pending)

    def lock(self, request: AnyRequest, handle: str) -> StoreLock:
        """The lock of the sign-in pending under ``handle``, held across every worker."""
        return self.plugin.locks(request.app)(_LOCK + binding_of(handle))

    async def verify(
        self, request: AnyRequest, verify: Verify, *, json: bool, method: str
    ) -> Response[Any]:
        """Verify this browser's pending sign-in with ``verify`` and sign in: one upstream
        verify at a time per sign-in, and one session at most."""
        handle = self.handle(request)
        async with self.lock(request, handle):
            pending = await self.pending(request, handle)
            result = await verify(pending)
            return await self.sign_in(request, handle, pending, result, json=json, method=method)

    def sent_response(
        self, request: AnyRequest, handle: str, sent: SendResult, *, json: bool
    ) -> Response[Any]:
        runtime = self.runtime(request)
        response: Response[Any]
        if json or self.plugin.verify_page is None:
            answer = {
                "next": "verify",
                "passwordless_type": sent.passwordless_type,
                "expires_in": sent.expires_in,
            }
            response = Response(answer, headers=NO_STORE)
        else:
            response = Redirect(self.plugin.verify_page, status_code=303, headers=NO_STORE)
        provider = runtime.rp.provider(self.plugin.provider_id)
        runtime.set_handle_cookie(response, handle, provider)
        return response

    async def sign_in(
        self,
        request: AnyRequest,
        handle: str,
        pending: _Pending,
        result: VerifyResult,
        *,
        json: bool,
        method: str,
    ) -> Response[Any]:
        """A session for the verified email, under a new id; the pending record is spent."""
        runtime = self.runtime(request)
        state_matches = result.state is None or hmac.compare_digest(
            result.state.encode(), pending.state.encode()
        )
        if not state_matches or result.email.lower() != pending.email.lower():
            raise PasswordlessInvalidCredentialError("the verified request is not this browser's")
        # Single use is ours, not only Scalekit's: whoever consumes the record signs in.
        if await runtime.rp.store.consume(_PENDING + binding_of(handle)) is None:
            raise PasswordlessUsedError("this sign-in was completed already")
        default = self.identity(request, result, method)
        hook = self.plugin.user_hook
        identity = await hook(result, default) if hook is not None else default
        if identity is None:
            raise PermissionDeniedError("this email may not sign in", requirement="user")
        previous = request.cookies.get(runtime.session_cookie)
        session_id = await runtime.sessions.create_for_identity(identity, previous_id=previous)
        response: Response[Any]
        if json:
            response = Response({"signed_in": True, "return_to": pending.return_to})
            response.headers.update(NO_STORE)
        else:
            response = Redirect(pending.return_to, status_code=303, headers=NO_STORE)
        runtime.set_session_cookie(response, session_id)
        await runtime.end_login(response, handle, None)  # the handle cookie, unless still needed
        runtime.emit(request, "rpkit.login", identity=identity)
        return response

    def identity(self, request: AnyRequest, result: VerifyResult, method: str) -> Identity:
        config = self.runtime(request).rp.provider(self.plugin.provider_id)
        email = result.email.lower()
        claims = {"email": email, "email_verified": True, "amr": [method]}
        return Identity.from_claims(config.id, config.issuer, f"email:{email}", claims)

    def name(self, suffix: str) -> str:
        return f"rpkit-scalekit:{self.plugin.provider_id}:{suffix}"


def build_router(plugin: ScalekitLitestarPlugin) -> Router:
    """The plugin's routes under its ``path``; each brings its own CSRF protection."""
    routes = _Routes(plugin)
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
            body = Body(dict(request.query_params.items()), json=False)
        else:
            body = await routes.body(request, handle)
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
            return await routes.send(request, handle, values, json=body.json)
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

    handlers: list[Any] = [start, csrf, idp_initiated, *_passwordless_handlers(routes, opt)]
    if plugin.webhook_secret is not None:
        handlers.append(_webhook_handler(routes, opt))
    return Router(path=plugin.path, route_handlers=handlers, include_in_schema=False)


def _passwordless_handlers(routes: _Routes, opt: dict[str, Any]) -> list[Any]:
    """The headless passwordless endpoints: send, resend, verify and the magic-link landing."""
    name = routes.name
    bounded: dict[str, Any] = {
        "opt": opt,
        "status_code": 200,
        "request_max_body_size": MAX_BODY_BYTES,
    }

    @post("/passwordless/send", name=name("send"), **bounded)
    async def send(request: AnyRequest) -> Response[Any]:
        handle = routes.runtime(request).browser_handle(request)
        body = await routes.body(request, handle)
        return await routes.send(request, handle, body.values, json=body.json)

    @post("/passwordless/resend", name=name("resend"), **bounded)
    async def resend(request: AnyRequest) -> Response[Any]:
        body = await routes.body(request, routes.runtime(request).browser_handle(request))
        handle = routes.handle(request)
        async with routes.lock(request, handle):  # never rewrites a record a verify consumed
            pending = await routes.pending(request, handle)
            sent = await routes.env(request).passwordless.resend(pending.auth_request_id)
            pending = msgspec.structs.replace(pending, auth_request_id=sent.auth_request_id)
            await routes.remember(request, handle, pending, sent)
        return routes.sent_response(request, handle, sent, json=body.json)

    @post("/passwordless/verify", name=name("verify"), **bounded)
    async def verify(request: AnyRequest) -> Response[Any]:
        body = await routes.body(request, routes.runtime(request).browser_handle(request))
        if body.values.get("code") in (None, ""):
            raise ScalekitInputError("code is required", field="code")
        client = routes.env(request).passwordless
        # Its shape, before the store is read: a typo spends none of the five attempts.
        code = check_code(body.values["code"], client.otp_length)

        def by_code(pending: _Pending) -> Awaitable[VerifyResult]:
            return client.verify_code(code, auth_request_id=pending.auth_request_id)

        return await routes.verify(request, by_code, json=body.json, method="otp")

    @get("/passwordless/magic-link", name=name("magic-link"), opt=opt)
    async def magic_link(request: AnyRequest) -> Response[Any]:
        link_token = request.query_params.get("link_token")
        if not link_token:
            raise ScalekitInputError("link_token is required", field="link_token")
        check_link_token(link_token)
        client = routes.env(request).passwordless

        def by_link(pending: _Pending) -> Awaitable[VerifyResult]:
            return client.verify_link(link_token, auth_request_id=pending.auth_request_id)

        return await routes.verify(request, by_link, json=False, method="link")

    return [send, resend, verify, magic_link]


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
            user_id = event.data.get("user_id")
            if event.type == "user.logout" and isinstance(user_id, str) and user_id:
                ended = await runtime.sessions.end_for_logout(plugin.provider_id, None, user_id)
            runtime.emit(request, "rpkit.scalekit.webhook", event=event)
        except Exception:
            await verifier.release(event)  # let Scalekit's redelivery through
            raise
        return Response({"received": True, "sessions_ended": ended}, headers=NO_STORE)

    return webhooks
