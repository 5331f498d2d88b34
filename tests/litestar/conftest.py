"""A Litestar app with rpkit's plugin against the fake OP in-process, and a browser-like client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.events import EventListener
from litestar.testing import AsyncTestClient

from rpkit.client import Identity
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.litestar.session import SessionData
from rpkit.testing import FakeClient, FakeOP

BASE = "https://app.rpkit.test"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
"""What a browser sends on a navigation: rpkit answers it with HTML pages, not problem details."""
SECRET = "test-secret-" + "x" * 32


@get("/")
async def home() -> str:
    return "home"


@get("/me")
async def me(rpkit_user: NamedDependency[Identity | None]) -> dict[str, Any]:
    return {"subject": rpkit_user.subject if rpkit_user else None}


@get("/session")
async def session(rpkit_session: NamedDependency[SessionData | None]) -> dict[str, Any]:
    if rpkit_session is None:
        return {}
    return {"csrf_token": rpkit_session.csrf_token, "access_token": rpkit_session.access_token}


def make_app(
    op: FakeOP,
    *,
    listeners: Sequence[EventListener] = (),
    plugins: Sequence[Any] = (),
    app_options: dict[str, Any] | None = None,
    **config: Any,
) -> tuple[Litestar, RPKitPlugin]:
    op.register_client(
        FakeClient(
            redirect_uris=(f"{BASE}/auth/callback/fake",),
            post_logout_redirect_uris=(f"{BASE}/auth/logout/callback",),
            backchannel_logout_uri=f"{BASE}/auth/backchannel-logout/fake",
        )
    )
    provider = op.provider_config(
        scopes=("openid", "profile", "email", "offline_access"),
        post_logout_redirect_uri=f"{BASE}/auth/logout/callback",
    )
    settings: dict[str, Any] = {"providers": [provider], "secret": SECRET, "base_url": BASE}
    plugin = RPKitPlugin(RPKitConfig(**(settings | config)), http_transport=op.transport())
    app = Litestar(
        [home, me, session],
        plugins=[plugin, *plugins],
        listeners=list(listeners),
        **(app_options or {}),
    )
    return app, plugin


@dataclass
class Browser:
    """The app's test client, plus the fake OP standing in for the IdP's pages."""

    client: AsyncTestClient[Litestar]
    op: FakeOP

    async def start_login(self, path: str = "/auth/login/fake", **params: str) -> httpx.Response:
        return await self.client.get(path, params=params, follow_redirects=False)

    async def login(self, **params: str) -> httpx.Response:
        started = await self.start_login(**params)
        callback = await self.op.approve(started.headers["location"])
        return await self.deliver(callback)

    async def deliver(self, callback: Any) -> httpx.Response:
        if callback.method == "POST":
            form = dict(callback.params)
            return await self.client.post(callback.url, data=form, follow_redirects=False)
        return await self.client.get(callback.location, follow_redirects=False)


@pytest.fixture
async def browser(fake_op: FakeOP) -> AsyncIterator[Browser]:
    app, _ = make_app(fake_op)
    async with AsyncTestClient(app, base_url=BASE) as client:
        client.headers["accept"] = BROWSER_ACCEPT
        yield Browser(client, fake_op)


@pytest.fixture
async def open_browser(fake_op: FakeOP) -> AsyncIterator[Callable[..., Awaitable[Browser]]]:
    """Start an app with ``RPKitConfig`` changes (set OP knobs that discovery reads first: the
    app fetches discovery at startup) and return a browser for it; closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**config: Any) -> Browser:
            app, _ = make_app(fake_op, **config)
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            client.headers["accept"] = BROWSER_ACCEPT
            return Browser(client, fake_op)

        yield open_


@dataclass(frozen=True)
class SetCookie:
    """One ``Set-Cookie`` header as sent on the wire."""

    name: str
    value: str
    attributes: dict[str, str]
    """Attribute names in lower case; flags such as ``secure`` map to an empty string."""

    @property
    def deletes(self) -> bool:
        return self.attributes.get("max-age") == "0"


def set_cookies(response: httpx.Response) -> dict[str, SetCookie]:
    """The response's ``Set-Cookie`` headers by cookie name."""
    parsed: dict[str, SetCookie] = {}
    for header in response.headers.get_list("set-cookie"):
        pair, *attrs = (part.strip() for part in header.split(";"))
        name, _, value = pair.partition("=")
        attributes = {}
        for attr in attrs:
            key, _, val = attr.partition("=")
            attributes[key.lower()] = val
        parsed[name] = SetCookie(name, value.strip('"'), attributes)
    return parsed
