"""A Litestar app with rpkit's plugin and the Scalekit plugin against the fake Scalekit
in-process, and a browser-like client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient

from rpkit.client import Identity
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit_scalekit import scalekit
from rpkit_scalekit.litestar import ScalekitLitestarPlugin
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeScalekit

BASE = "https://app.rpkit.test"
SECRET = "test-secret-" + "x" * 32
SK = "/auth/scalekit"


@get("/me")
async def me(rpkit_user: NamedDependency[Identity | None]) -> dict[str, Any]:
    if rpkit_user is None:
        return {"subject": None}
    return {"subject": rpkit_user.subject, "email": rpkit_user.email}


@dataclass
class Browser:
    """The app's test client plus the fake Scalekit standing in for its hosted pages."""

    client: AsyncTestClient[Litestar]
    fake: FakeScalekit
    rpkit: RPKitPlugin

    @property
    def session_cookie(self) -> str:
        return self.rpkit.runtime.session_cookie

    def sets_session(self, response: httpx.Response) -> bool:
        return any(
            h.startswith(f"{self.session_cookie}=") and "Max-Age=0" not in h
            for h in response.headers.get_list("set-cookie")
        )

    async def post(self, path: str, **json: Any) -> httpx.Response:
        return await self.client.post(SK + path, json=json, follow_redirects=False)

    async def whoami(self) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.client.get("/me")).json()
        return answer

    async def follow_to_callback(self, authorize_url: str) -> httpx.Response:
        callback = await self.fake.approve(authorize_url)
        return await self.client.get(callback.location, follow_redirects=False)


def make_app(fake: FakeScalekit, **options: Any) -> tuple[Litestar, RPKitPlugin]:
    provider = scalekit(fake.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    rpkit = RPKitPlugin(
        RPKitConfig(providers=[provider], secret=SECRET, base_url=BASE),
        http_transport=fake.transport(),
    )
    app = Litestar([me], plugins=[rpkit, ScalekitLitestarPlugin(**options)])
    return app, rpkit


@pytest.fixture
async def open_browser(
    fake_scalekit: FakeScalekit,
) -> AsyncIterator[Callable[..., Awaitable[Browser]]]:
    """Start an app with these :class:`ScalekitLitestarPlugin` options; closed after the test.
    Call it again for a second browser on a second app instance sharing nothing but the fake."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**options: Any) -> Browser:
            app, rpkit = make_app(fake_scalekit, **options)
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            return Browser(client, fake_scalekit, rpkit)

        yield open_


@pytest.fixture
async def browser(open_browser: Callable[..., Awaitable[Browser]]) -> Browser:
    return await open_browser(passwordless=True, verify_page="/verify")
