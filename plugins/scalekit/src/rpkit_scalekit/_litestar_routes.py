"""The handlers of :class:`~rpkit_scalekit.litestar.ScalekitLitestarPlugin`, closing over it.

Pending passwordless sign-ins live in rpkit's flows store under the hash of the browser's
transaction handle (never the ``auth_request_id`` in a cookie or a page); POST bodies are read
once, here, with the CSRF rule of the plugin's docstring.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar import Request, Response, Router, get, post, route
from litestar.response import Redirect

from rpkit.client import Identity
from rpkit.errors import PermissionDeniedError
from rpkit.flow import safe_return_to
from rpkit.litestar._cookies import binding_of, new_handle
from rpkit.litestar.responses import NO_STORE
from rpkit_scalekit.errors import (
    InvalidEmailError,
    PasswordlessInvalidCredentialError,
    ScalekitInputError,
)
from rpkit_scalekit.passwordless import SendResult, Template, VerifyResult
from rpkit_scalekit.routing import LoginRoute
from rpkit_scalekit.webhooks import WebhookVerifier

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitRuntime
    from rpkit_scalekit.environment import ScalekitEnvironment
    from rpkit_scalekit.litestar import ScalekitLitestarPlugin

__all__ = ["build_router"]

AnyRequest = Request[Any, Any, Any]
_PENDING = "rpkit:scalekit:passwordless:"
_PENDING_TTL = 600  # the transaction cookie's lifetime: the pending record cannot outlive it
_ROUTING = ("organization_id", "connection_id", "provider", "domain_hint", "prompt")
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class _Pending(msgspec.Struct, frozen=True):
    auth_request_id: str
    email: str
    state: str
    return_to: str


class _Body(msgspec.Struct, frozen=True):
    values: dict[str, Any]
    json: bool


class UnsupportedBodyError(ScalekitInputError):
    """A POST that is neither JSON nor a form (answer 400; it is never read)."""

    code = "unsupported_body"


def csrf_token(secret: str, handle: str) -> str:
    """The double-submit token of one transaction handle."""
    key = hashlib.sha256(b"rpkit scalekit csrf\x00" + secret.encode()).digest()
    return hmac.new(key, binding_of(handle).encode(), hashlib.sha256).hexdigest()


def _text(values: dict[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ScalekitInputError(f"{name} must be a string", field=name)
    return value


class _Routes:
    def __init__(self, plugin: ScalekitLitestarPlugin) -> None:
        self.plugin = plugin

    def runtime(self, request: AnyRequest) -> RPKitRuntime:
        return self.plugin.runtime(request.app)

    def env(self, request: AnyRequest) -> ScalekitEnvironment:
        return self.plugin.start(request.app)

    async def body(self, request: AnyRequest, handle: str | None) -> _Body:
        """JSON, or a form with this browser's CSRF token; anything else is refused."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                values = msgspec.json.decode(await request.body())
            except (ValueError, RecursionError):  # msgspec's errors, bad UTF-8, deep nesting
                raise UnsupportedBodyError("the body is not JSON", field="body") from None
            if not isinstance(values, dict):
                raise UnsupportedBodyError("the body is not a JSON object", field="body")
            return _Body(values, json=True)
        if kind in _FORMS:
            form = await request.form()
            presented = form.get("csrf_token")
            secret = self.runtime(request).config.secret
            expected = csrf_token(secret, handle) if handle else ""
            if not (isinstance(presented, str) and expected):
                raise PermissionDeniedError("this form needs its CSRF token", requirement="csrf")
            if not hmac.compare_digest(presented.encode(), expected.encode()):
                raise PermissionDeniedError("this form needs its CSRF token", requirement="csrf")
            return _Body({k: v for k, v in form.items() if isinstance(v, str)}, json=False)
        raise UnsupportedBodyError("send JSON or a form with its CSRF token", field="body")

    def return_to(self, request: AnyRequest, values: dict[str, Any]) -> str:
        default = self.runtime(request).config.default_return_to
        return safe_return_to(_text(values, "return_to"), default)

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
        runtime = self.runtime(request)
        email = _text(values, "email")
        if email is None:
            raise InvalidEmailError
        template = _text(values, "template") or "SIGNIN"
        if template not in ("SIGNIN", "SIGNUP"):
            raise ScalekitInputError("template must be SIGNIN or SIGNUP", field="template")
        variables = values.get("template_variables")
        if variables is not None and not isinstance(variables, dict):
            raise ScalekitInputError("template_variables must be an object", field="template")
        handle = handle or new_handle()
        state = secrets.token_urlsafe(24)
        sent = await self.env(request).passwordless.send(
            email,
            template=cast("Template", template),
            magiclink_auth_uri=runtime.url_for(request, self.name("magic-link")),
            state=state,
            expires_in=self.plugin.magic_link_expires_in,
            template_variables=variables,
        )
        pending = _Pending(sent.auth_request_id, email, state, self.return_to(request, values))
        await self.remember(request, handle, pending, sent)
        return self.sent_response(request, handle, sent, json=json)

    async def remember(
        self, request: AnyRequest, handle: str, pending: _Pending, sent: SendResult
    ) -> None:
        ttl = max(1, min(sent.expires_in, _PENDING_TTL))
        store = self.runtime(request).rp.store
        await store.set(_PENDING + binding_of(handle), msgspec.json.encode(pending), ttl)

    async def pending(self, request: AnyRequest) -> tuple[str, _Pending]:
        """This browser's pending passwordless sign-in.

        Raises:
            PasswordlessInvalidCredentialError: none (another browser, or it expired).
        """
        handle = self.runtime(request).browser_handle(request)
        raw = None
        if handle is not None:
            raw = await self.runtime(request).rp.store.get(_PENDING + binding_of(handle))
        if handle is None or raw is None:
            msg = "no passwordless sign-in is pending in this browser"
            raise PasswordlessInvalidCredentialError(msg)
        return handle, msgspec.json.decode(raw, type=_Pending)

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
        await runtime.rp.store.delete(_PENDING + binding_of(handle))
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

    @route("/start", http_method=["GET", "POST"], name=name("start"), opt=opt, status_code=200)
    async def start(request: AnyRequest) -> Response[Any]:
        handle = routes.runtime(request).browser_handle(request)
        if request.method == "GET":
            body = _Body(dict(request.query_params.items()), json=False)
        else:
            body = await routes.body(request, handle)
        values = body.values
        asked = {key: _text(values, key) for key in _ROUTING}
        email = _text(values, "email")
        if email is None and not any(asked[k] for k in _ROUTING[:3]):
            raise InvalidEmailError
        login = await routes.env(request).router.route(email=email, **asked)
        if plugin.passwordless and login.kind == "hosted" and email and request.method == "POST":
            return await routes.send(request, handle, values, json=body.json)
        return await routes.begin_sso(
            request, login, routes.return_to(request, values), json=body.json
        )

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
        config = runtime.rp.provider(plugin.provider_id)
        login = await routes.env(request).idp_initiated.verify(
            request.query_params.get("idp_initiated_login") or "",
            config=config,
            metadata=await runtime.rp.metadata(plugin.provider_id),
        )
        return await routes.begin_sso(request, login.route, login.return_to, json=False)

    handlers: list[Any] = [start, csrf, idp_initiated, *_passwordless_handlers(routes, opt)]
    if plugin.webhook_secret is not None:
        handlers.append(_webhook_handler(routes, opt))
    return Router(path=plugin.path, route_handlers=handlers, include_in_schema=False)


def _passwordless_handlers(routes: _Routes, opt: dict[str, Any]) -> list[Any]:
    """The headless passwordless endpoints: send, resend, verify and the magic-link landing."""
    name = routes.name

    @post("/passwordless/send", name=name("send"), opt=opt, status_code=200)
    async def send(request: AnyRequest) -> Response[Any]:
        handle = routes.runtime(request).browser_handle(request)
        body = await routes.body(request, handle)
        return await routes.send(request, handle, body.values, json=body.json)

    @post("/passwordless/resend", name=name("resend"), opt=opt, status_code=200)
    async def resend(request: AnyRequest) -> Response[Any]:
        body = await routes.body(request, routes.runtime(request).browser_handle(request))
        handle, pending = await routes.pending(request)
        sent = await routes.env(request).passwordless.resend(pending.auth_request_id)
        pending = msgspec.structs.replace(pending, auth_request_id=sent.auth_request_id)
        await routes.remember(request, handle, pending, sent)
        return routes.sent_response(request, handle, sent, json=body.json)

    @post("/passwordless/verify", name=name("verify"), opt=opt, status_code=200)
    async def verify(request: AnyRequest) -> Response[Any]:
        body = await routes.body(request, routes.runtime(request).browser_handle(request))
        handle, pending = await routes.pending(request)
        code = _text(body.values, "code")
        if code is None:
            raise ScalekitInputError("code is required", field="code")
        result = await routes.env(request).passwordless.verify_code(
            code, auth_request_id=pending.auth_request_id
        )
        return await routes.sign_in(request, handle, pending, result, json=body.json, method="otp")

    @get("/passwordless/magic-link", name=name("magic-link"), opt=opt)
    async def magic_link(request: AnyRequest) -> Response[Any]:
        link_token = request.query_params.get("link_token")
        if not link_token:
            raise ScalekitInputError("link_token is required", field="link_token")
        handle, pending = await routes.pending(request)
        result = await routes.env(request).passwordless.verify_link(
            link_token, auth_request_id=pending.auth_request_id
        )
        return await routes.sign_in(request, handle, pending, result, json=False, method="link")

    return [send, resend, verify, magic_link]


def _webhook_handler(routes: _Routes, opt: dict[str, Any]) -> Any:
    plugin = routes.plugin
    secret = plugin.webhook_secret
    assert secret is not None  # noqa: S101 - only routed with a secret

    @post("/webhooks", name=routes.name("webhooks"), opt=opt, status_code=200)
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
