"""The login of ``bench/logins.py`` through Authlib's Starlette OAuth client, for comparison.

The app is what Authlib's documentation shows for Starlette: ``OAuth().register(...)`` with the
provider's discovery URL, ``authorize_redirect`` on the login route and
``authorize_access_token`` on the callback (state from the session, PKCE S256, code exchange,
ID-token validation with the nonce), then UserInfo, and the user kept in Starlette's signed
cookie session (``SessionMiddleware``, which needs ``itsdangerous``). Authlib reaches the fake OP
through the same in-process httpx transport as rpkit.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from authlib.integrations.httpx_client._compat import httpx2
from authlib.integrations.starlette_client import OAuth
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from rpkit.testing import FakeClient, FakeOP

AUTHLIB_BASE = "https://authlib.rpkit.test"
SCOPE = "openid profile email offline_access"


class OPTransport(httpx2.AsyncBaseTransport):  # type: ignore[misc,name-defined]
    """The fake OP for Authlib's client, which is built on ``httpx2`` when it is installed (the
    fake OP speaks ``httpx``). The conversion is the bench's, not Authlib's: its time is counted
    in :attr:`seconds` so the caller can take it out of Authlib's."""

    def __init__(self, op: FakeOP) -> None:
        self.op = op
        self.seconds = 0.0

    async def handle_async_request(self, request: Any) -> Any:
        start = time.perf_counter()
        body = await request.aread()
        asked = httpx.Request(
            request.method, str(request.url), headers=request.headers.raw, content=body
        )
        mark = time.perf_counter()
        answer = await self.op.handle(asked)
        resumed = time.perf_counter()
        converted = httpx2.Response(
            answer.status_code, headers=answer.headers.raw, content=answer.content
        )
        self.seconds += (mark - start) + (time.perf_counter() - resumed)
        return converted


def build_authlib_app(op: FakeOP, transport: OPTransport) -> Starlette:
    """A Starlette app that signs users in at ``op`` with Authlib: ``/auth/login`` and
    ``/auth/callback``; Authlib reaches ``op`` through ``transport``."""
    # A plain secret: Authlib sends client_secret_basic credentials without the
    # form-urlencoding of RFC 6749 §2.3.1, which the fake OP's default secret (with ':', '+',
    # '%' and 'é' in it) is there to catch.
    client = op.register_client(
        FakeClient(
            client_id="authlib-bench",
            client_secret="authlib-bench-secret-0123456789",  # noqa: S106 - a fake OP's client
            redirect_uris=(f"{AUTHLIB_BASE}/auth/callback",),
        )
    )
    oauth = OAuth()
    fake: Any = oauth.register(
        "fake",
        client_id=client.client_id,
        client_secret=client.client_secret,
        server_metadata_url=f"{op.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256", "transport": transport},
    )

    async def login(request: Request) -> Response:
        response: Response = await fake.authorize_redirect(request, f"{AUTHLIB_BASE}/auth/callback")
        return response

    async def callback(request: Request) -> Response:
        token = await fake.authorize_access_token(request)  # state, code, ID token, nonce
        claims = token["userinfo"]
        userinfo = await fake.userinfo(token=token)
        if userinfo.get("sub") != claims["sub"]:
            return PlainTextResponse("UserInfo names another user", status_code=401)
        request.session["user"] = {**userinfo, **claims}
        return RedirectResponse("/", status_code=303)

    return Starlette(
        routes=[Route("/auth/login", login), Route("/auth/callback", callback)],
        middleware=[
            Middleware(SessionMiddleware, secret_key="bench-secret-" + "y" * 32, https_only=True)
        ],
    )


async def authlib_login(browser: httpx.AsyncClient, op: FakeOP) -> None:
    """One completed login by a fresh browser through the Authlib app."""
    browser.cookies.clear()
    started = await browser.get("/auth/login")
    answer = await op.approve(started.headers["location"])
    landed = await browser.get(answer.location)
    if landed.status_code != 303 or "session=" not in landed.headers.get("set-cookie", ""):
        raise SystemExit(f"an Authlib login failed: {landed.status_code} {landed.text[:200]}")
