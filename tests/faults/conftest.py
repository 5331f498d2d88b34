"""A Litestar app with rpkit's plugin facing a misbehaving IdP: the fake OP in-process (its
transport honours the client's read timeout), or served on 127.0.0.1 over real sockets."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import FakeClient, FakeOP, serve
from tests.litestar.conftest import BASE, SECRET, Browser, home, me, session, set_cookies

OpenApp = Callable[..., Awaitable[Browser]]
SESSION_COOKIE = "__Host-rpkit_session"
TXN_COOKIE = "__Host-rpkit_txn"


def make_app(op: FakeOP, *, transport: httpx.AsyncBaseTransport | None, **config: Any) -> Litestar:
    """The app of ``tests/litestar`` reaching ``op`` through ``transport`` (None: the network)."""
    op.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/fake",)))
    provider = op.provider_config(
        scopes=("openid", "profile", "email", "offline_access"),
        allow_insecure_http=op.issuer.startswith("http://127.0.0.1"),
    )
    settings: dict[str, Any] = {"providers": [provider], "secret": SECRET, "base_url": BASE}
    plugin = RPKitPlugin(RPKitConfig(**(settings | config)), http_transport=transport)
    return Litestar([home, me, session], plugins=[plugin])


@pytest.fixture
async def open_app(fake_op: FakeOP) -> AsyncIterator[OpenApp]:
    """Start the app (its lifespan included) against ``op`` (the in-process ``fake_op`` unless
    given) with ``RPKitConfig`` changes; closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(
            op: FakeOP | None = None, *, served: bool = False, **config: Any
        ) -> Browser:
            op = op or fake_op
            app = make_app(op, transport=None if served else op.transport(), **config)
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            return Browser(client, op)

        yield open_


@pytest.fixture(scope="module")
def served_op() -> Iterator[FakeOP]:
    """One fake OP on 127.0.0.1 for the module: a slow answer still pending at the end of a
    test finishes in the background instead of holding up that test's teardown."""
    with serve() as op:
        yield op


@pytest.fixture
def honest_served_op(served_op: FakeOP) -> FakeOP:
    served_op.reset()
    return served_op


async def login_outcome(browser: Browser) -> httpx.Response:
    """A new browser's complete login (no cookies from earlier logins); the callback's answer,
    as problem details when it fails."""
    browser.client.cookies.clear()
    started = await browser.start_login()
    assert started.status_code == 303, started.text
    callback = await browser.op.approve(started.headers["location"])
    return await browser.client.get(
        callback.location, headers={"accept": "application/json"}, follow_redirects=False
    )


async def signed_in_as(browser: Browser) -> str | None:
    subject: str | None = (await browser.client.get("/me")).json()["subject"]
    return subject


def sets_session(response: httpx.Response) -> bool:
    cookie = set_cookies(response).get(SESSION_COOKIE)
    return cookie is not None and not cookie.deletes
