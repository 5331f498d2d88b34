"""The Litestar handlers of the headless passwordless endpoints: send, resend, verify, restart
and the magic-link landing. Each reads its body once (JSON, or a form with its CSRF token) and
answers a refusal through :meth:`~rpkit_scalekit._passwordless_routes.PasswordlessRoutes.refused`:
the application's page for a browser's form, the typed problem for a JSON client.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from rpkit_scalekit._inbound import MAX_BODY_BYTES, refuse_email_content
from rpkit_scalekit._passwordless_pages import Pending, Step
from rpkit_scalekit._passwordless_routes import PasswordlessRoutes
from rpkit_scalekit.errors import (
    PasswordlessCredentialFormatError,
    ScalekitError,
    ScalekitInputError,
)
from rpkit_scalekit.passwordless import VerifyResult, check_code, check_link_token

__all__ = ["check_ref", "passwordless_handlers"]

AnyRequest = Request[Any, Any, Any]
_REF = re.compile(r"[A-Za-z0-9_-]{16,64}")


def check_ref(ref: str) -> str:
    """``ref`` if it could be one this app put in a ``magiclink_auth_uri``.

    Raises:
        PasswordlessCredentialFormatError: anything else; nothing is looked up.
    """
    if not _REF.fullmatch(ref):
        raise PasswordlessCredentialFormatError("not a link this app sent", field="link")
    return ref


def passwordless_handlers(routes: PasswordlessRoutes, opt: dict[str, Any]) -> list[Any]:
    """The headless passwordless endpoints: send, resend, verify, restart and the
    magic-link landing (with and without the app's ``ref``)."""
    base = routes.base
    name = base.name
    bounded: dict[str, Any] = {
        "opt": opt,
        "status_code": 200,
        "request_max_body_size": MAX_BODY_BYTES,
    }

    @post("/passwordless/send", name=name("send"), **bounded)
    async def send(request: AnyRequest) -> Response[Any]:
        handle = base.runtime(request).browser_handle(request)
        body = await base.body(request, handle)
        step = Step("send")
        try:
            return await routes.send(request, handle, body.values, json=body.json, step=step)
        except ScalekitError as exc:
            return await routes.refused(request, exc, json=body.json, step=step)

    @post("/passwordless/resend", name=name("resend"), **bounded)
    async def resend(request: AnyRequest) -> Response[Any]:
        body = await base.body(request, base.runtime(request).browser_handle(request))
        step = Step("resend")
        try:
            return await routes.resend(request, json=body.json, step=step)
        except ScalekitError as exc:
            return await routes.refused(request, exc, json=body.json, step=step)

    @post("/passwordless/restart", name=name("restart"), **bounded)
    async def restart(request: AnyRequest) -> Response[Any]:
        body = await base.body(request, base.runtime(request).browser_handle(request))
        refuse_email_content(body.values)
        step = Step("restart")
        try:
            return await routes.restart(request, json=body.json, step=step)
        except ScalekitError as exc:
            return await routes.refused(request, exc, json=body.json, step=step)

    @post("/passwordless/verify", name=name("verify"), **bounded)
    async def verify(request: AnyRequest) -> Response[Any]:
        body = await base.body(request, base.runtime(request).browser_handle(request))
        step = Step("verify")
        try:
            if body.values.get("code") in (None, ""):
                raise ScalekitInputError("code is required", field="code")
            client = base.env(request).passwordless
            # Its shape, before the store is read: a typo spends none of the five attempts.
            code = check_code(body.values["code"], client.otp_length)

            def by_code(pending: Pending) -> Awaitable[VerifyResult]:
                return client.verify_code(code, auth_request_id=pending.auth_request_id)

            return await routes.verify(request, by_code, json=body.json, method="otp", step=step)
        except ScalekitError as exc:
            return await routes.refused(request, exc, json=body.json, step=step)

    async def land(request: AnyRequest, ref: str | None) -> Response[Any]:
        step = Step("magic_link")
        try:
            link_token = request.query_params.get("link_token")
            if not link_token:
                raise ScalekitInputError("link_token is required", field="link_token")
            check_link_token(link_token)
            client = base.env(request).passwordless

            def by_link(pending: Pending) -> Awaitable[VerifyResult]:
                return client.verify_link(link_token, auth_request_id=pending.auth_request_id)

            return await routes.verify(
                request, by_link, json=False, method="link", step=step, ref=ref
            )
        except ScalekitError as exc:
            return await routes.refused(request, exc, json=False, step=step)

    @get("/passwordless/magic-link", name=name("magic-link"), opt=opt)
    async def magic_link(request: AnyRequest) -> Response[Any]:
        return await land(request, None)

    @get("/passwordless/magic-link/{ref:str}", name=name("magic-link-ref"), opt=opt)
    async def magic_link_ref(request: AnyRequest, ref: FromPath[str]) -> Response[Any]:
        return await land(request, check_ref(ref))

    return [send, resend, restart, verify, magic_link, magic_link_ref]
