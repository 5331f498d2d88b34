"""The headless passwordless routes of :class:`~rpkit_scalekit.litestar.ScalekitLitestarPlugin`.

Pending sign-ins live in rpkit's flows store under the hash of the browser's transaction handle
(never the ``auth_request_id`` in a cookie or a page). A pending sign-in is verified under a
store lock (one upstream verify at a time, across workers) and consumed atomically before its
session is created, so it yields one session at most.

For a browser's form POST (and a magic link) with ``passwordless_page`` configured, a refused
step is answered with a 303 back to that page, the outcome kept server-side for
:func:`~rpkit_scalekit.litestar.passwordless_status` (POST → redirect → GET); JSON clients get
the typed problem responses of :mod:`rpkit_scalekit.errors` as before. A link opened in another
browser is never verified there: that browser is offered a new link of its own.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response
from litestar.response import Redirect

from rpkit.errors import PermissionDeniedError
from rpkit.litestar._cookies import binding_of, new_handle
from rpkit.litestar._locks import StoreLock
from rpkit.litestar.responses import NO_STORE
from rpkit.store import KeyValueStore
from rpkit_scalekit._inbound import refuse_email_content, text
from rpkit_scalekit._passwordless_pages import (
    LinkRecord,
    Outcome,
    Pending,
    Step,
    last_link,
    link_record,
    mark_used,
    pending_key,
    remember_last,
    remember_link,
    return_to_page,
    save_outcome,
)
from rpkit_scalekit.errors import (
    InvalidEmailError,
    PasswordlessExpiredError,
    PasswordlessInvalidCredentialError,
    PasswordlessNoLoginError,
    PasswordlessOtherBrowserError,
    PasswordlessUsedError,
    ScalekitError,
)
from rpkit_scalekit.passwordless import (
    PasswordlessEmail,
    SendResult,
    VerifyResult,
    mask_email,
)
from rpkit_scalekit.routing import check_email

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitRuntime
    from rpkit_scalekit._litestar_routes import _Routes

__all__ = ["PasswordlessRoutes"]

AnyRequest = Request[Any, Any, Any]
Verify = Callable[[Pending], Awaitable[VerifyResult]]
_LOCK = "scalekit:passwordless:"
_NOT_PENDING = "no passwordless sign-in is pending in this browser"
_PENDING_TTL = 600  # the transaction cookie's lifetime: the pending record cannot outlive it
_MAX_LINK_TTL = 86_400


class PasswordlessRoutes:
    """Send, resend, verify, magic-link and restart, over the plugin's shared route helpers."""

    def __init__(self, base: _Routes) -> None:
        self.base = base
        self.plugin = base.plugin

    def runtime(self, request: AnyRequest) -> RPKitRuntime:
        return self.base.runtime(request)

    def store(self, request: AnyRequest) -> KeyValueStore:
        return self.runtime(request).rp.store

    # -- sending -------------------------------------------------------------------------------
    async def send(
        self,
        request: AnyRequest,
        handle: str | None,
        values: dict[str, Any],
        *,
        json: bool,
        step: Step,
    ) -> Response[Any]:
        """Email a code or link to ``email``; what the email says is the server's alone."""
        refuse_email_content(values)
        email = text(values, "email")
        if email is None:
            raise InvalidEmailError
        address, _ = check_email(email)
        step.email = address
        destination = self.base.return_to(request, values)
        return await self.send_to(request, handle, address, destination, json=json, step=step)

    async def send_to(
        self,
        request: AnyRequest,
        handle: str | None,
        address: str,
        destination: str,
        *,
        json: bool,
        step: Step,
    ) -> Response[Any]:
        """A new sign-in for ``address`` in this browser; its records are written only once
        Scalekit has accepted the email."""
        runtime = self.runtime(request)
        content = await self.email_content(request, address)
        handle = handle or new_handle()
        state = secrets.token_urlsafe(24)
        ref = secrets.token_urlsafe(24)
        magic_link = runtime.url_for(request, self.base.name("magic-link-ref"), ref=ref)
        sent = await self.base.env(request).passwordless.send(
            address,
            template=content.template,
            magiclink_auth_uri=magic_link,
            state=state,
            expires_in=self.plugin.magic_link_expires_in,
            template_variables=content.template_variables,
        )
        pending = Pending(
            sent.auth_request_id,
            address,
            state,
            destination,
            ref,
            sent.passwordless_type,
            sent.expires_at,
        )
        await self.remember(request, handle, pending, sent)
        store, binding = self.store(request), binding_of(handle)
        ttl = min(max(sent.expires_in, _PENDING_TTL), _MAX_LINK_TTL)
        await remember_link(store, ref, LinkRecord(address, destination, binding), ttl)
        await remember_last(store, binding, ref)
        return await self.sent_response(request, handle, sent, pending, json=json, step=step)

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
        self, request: AnyRequest, handle: str, pending: Pending, sent: SendResult
    ) -> None:
        ttl = max(1, min(sent.expires_in, _PENDING_TTL))
        key = pending_key(binding_of(handle))
        await self.store(request).set(key, msgspec.json.encode(pending), ttl)

    async def resend(self, request: AnyRequest, *, json: bool, step: Step) -> Response[Any]:
        """The pending sign-in's email again (same ``auth_request_id``, same link)."""
        handle = self.handle(request)
        async with self.lock(request, handle):  # never rewrites a record a verify consumed
            pending = await self.pending(request, handle)
            if pending is None:
                return await self.without_pending(request, handle, None, page=not json, step=step)
            step.email = pending.email
            sent = await self.base.env(request).passwordless.resend(pending.auth_request_id)
            pending = msgspec.structs.replace(
                pending, auth_request_id=sent.auth_request_id, expires_at=sent.expires_at
            )
            await self.remember(request, handle, pending, sent)
        return await self.sent_response(request, handle, sent, pending, json=json, step=step)

    async def restart(self, request: AnyRequest, *, json: bool, step: Step) -> Response[Any]:
        """A new sign-in for the address of this browser's last link: after too many wrong
        codes, an expiry, or a link opened in another browser. The address never comes from
        the browser, and rate limits apply as to any send."""
        handle = self.handle(request)
        last = await last_link(self.store(request), binding_of(handle))
        if last is None:
            raise PasswordlessNoLoginError(_NOT_PENDING)
        _, link = last
        step.email = link.email
        async with self.lock(request, handle):
            return await self.send_to(
                request, handle, link.email, link.return_to, json=json, step=step
            )

    async def sent_response(
        self,
        request: AnyRequest,
        handle: str,
        sent: SendResult,
        pending: Pending,
        *,
        json: bool,
        step: Step,
    ) -> Response[Any]:
        runtime = self.runtime(request)
        page = self.plugin.verify_page or self.plugin.passwordless_page
        response: Response[Any]
        if json or page is None:
            answer = {
                "next": "verify",
                "passwordless_type": sent.passwordless_type,
                "expires_in": sent.expires_in,
            }
            response = Response(answer, headers=NO_STORE)
        else:
            voided = step.name == "resend" and self.plugin.new_credentials_on_resend
            outcome = Outcome(
                step=step.name,
                sent=True,
                masked_email=mask_email(pending.email),
                previous_voided=voided,
            )
            await save_outcome(self.store(request), binding_of(handle), outcome)
            response = Redirect(page, status_code=303, headers=NO_STORE)
        provider = runtime.rp.provider(self.plugin.provider_id)
        runtime.set_handle_cookie(response, handle, provider)
        return response

    # -- verifying -----------------------------------------------------------------------------
    def handle(self, request: AnyRequest) -> str:
        """This browser's transaction handle.

        Raises:
            PasswordlessNoLoginError: none (another browser, or it expired).
        """
        handle = self.runtime(request).browser_handle(request)
        if handle is None:
            raise PasswordlessNoLoginError(_NOT_PENDING)
        return handle

    async def pending(self, request: AnyRequest, handle: str) -> Pending | None:
        """The passwordless sign-in pending under ``handle`` (read it under :meth:`lock`)."""
        raw = await self.store(request).get(pending_key(binding_of(handle)))
        return msgspec.json.decode(raw, type=Pending) if raw is not None else None

    def lock(self, request: AnyRequest, handle: str) -> StoreLock:
        """The lock of the sign-in pending under ``handle``, held across every worker."""
        return self.plugin.locks(request.app)(_LOCK + binding_of(handle))

    async def verify(
        self,
        request: AnyRequest,
        verify: Verify,
        *,
        json: bool,
        method: str,
        step: Step,
        ref: str | None = None,
    ) -> Response[Any]:
        """Verify this browser's pending sign-in with ``verify`` and sign in: one upstream
        verify at a time per sign-in, and one session at most. A link (``ref``) of another
        sign-in than the pending one is not verified: a wrong link would spend an attempt."""
        handle = self.runtime(request).browser_handle(request)
        if handle is not None:
            async with self.lock(request, handle):
                pending = await self.pending(request, handle)
                if pending is not None and ref in (None, pending.ref):
                    step.email, step.pending = pending.email, pending
                    result = await verify(pending)
                    return await self.sign_in(
                        request, handle, pending, result, json=json, method=method
                    )
        link = await link_record(self.store(request), ref) if ref else None
        return await self.without_pending(request, handle, link, page=not json, step=step, ref=ref)

    async def without_pending(
        self,
        request: AnyRequest,
        handle: str | None,
        link: LinkRecord | None,
        *,
        page: bool,
        step: Step,
        ref: str | None = None,
    ) -> Response[Any]:
        """No sign-in of this browser to verify: the signed-in page for a browser already
        signed in (a used link, a reloaded callback), else the error that says why.

        Raises:
            PasswordlessUsedError, PasswordlessExpiredError: this browser's sign-in ended.
            PasswordlessOtherBrowserError: a link another browser asked for.
            PasswordlessNoLoginError: nothing is known of a sign-in here.
        """
        runtime = self.runtime(request)
        binding = binding_of(handle) if handle is not None else None
        if link is None and binding is not None:
            last = await last_link(self.store(request), binding)
            link = last[1] if last is not None and last[1].binding == binding else None
        if page:
            session = await runtime.current_session(request)
            email = session.email if session is not None else None
            if session is not None and (link is None or _same(email, link.email)):
                target = link.return_to if link else runtime.config.default_return_to
                return Redirect(target, status_code=303, headers=NO_STORE)
        if link is None:
            raise PasswordlessNoLoginError(_NOT_PENDING)
        step.email, step.restart_ref = link.email, ref
        if link.used:
            raise PasswordlessUsedError("this sign-in was completed already")
        if link.binding != binding:
            raise PasswordlessOtherBrowserError("the link was asked for in another browser")
        raise PasswordlessExpiredError("this browser's sign-in expired: send a new email")

    async def refused(
        self, request: AnyRequest, exc: ScalekitError, *, json: bool, step: Step
    ) -> Response[Any]:
        """A 303 to ``passwordless_page`` with the outcome kept for it; re-raises ``exc`` (the
        typed problem response) for JSON clients, without a page, and for tampering."""
        return await return_to_page(self, request, exc, json=json, step=step)

    async def sign_in(
        self,
        request: AnyRequest,
        handle: str,
        pending: Pending,
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
        # Before anything is spent: a failed user lookup (user management) writes nothing.
        default = await self.base.identity(request, result, method)
        # Single use is ours, not only Scalekit's: whoever consumes the record signs in.
        if await runtime.rp.store.consume(pending_key(binding_of(handle))) is None:
            raise PasswordlessUsedError("this sign-in was completed already")
        if pending.ref:
            await mark_used(runtime.rp.store, pending.ref, _PENDING_TTL)
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


def _same(a: str | None, b: str) -> bool:
    return a is not None and a.lower() == b.lower()
