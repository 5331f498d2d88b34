"""A Litestar app with rpkit's plugin and the Scalekit plugin against the fake Scalekit
in-process, whose ``/me`` shows every identity field the B2B features fill."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.events import listener
from litestar.testing import AsyncTestClient

from rpkit.client import Identity
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit_scalekit import DIRECTORY_EVENTS, scalekit
from rpkit_scalekit.litestar import ScalekitLitestarPlugin
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeScalekit

BASE = "https://app.rpkit.test"
SECRET = "test-secret-" + "x" * 32
SK = "/auth/scalekit"
ACME_ORG = "org_300000000000000001"
ACME_CONNECTION = "conn_200000000000000001"
PASSWORDLESS_CONNECTION = "conn_200000000000000004"
ALICE = "usr_100000000000000001"


@get("/me")
async def me(rpkit_user: NamedDependency[Identity | None]) -> dict[str, Any]:
    if rpkit_user is None:
        return {"subject": None}
    return {
        "subject": rpkit_user.subject,
        "email": rpkit_user.email,
        "organization": rpkit_user.organization,
        "external_organization_id": rpkit_user.external_organization_id,
        "external_user_id": rpkit_user.external_user_id,
    }


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@dataclass
class Heard:
    """Litestar events the app emitted, by event id."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def record(self, name: str, kwargs: dict[str, Any]) -> None:
        self.events.setdefault(name, []).append(kwargs)

    async def wait_for(self, name: str, count: int = 1) -> list[dict[str, Any]]:
        """The events named ``name`` once ``count`` arrived (listeners run in the background)."""
        for _ in range(200):
            if len(self.events.get(name, [])) >= count:
                break
            await asyncio.sleep(0.01)
        return self.events.get(name, [])


def _listeners(heard: Heard) -> list[Any]:
    found = []
    for name in ["rpkit.scalekit.webhook", *DIRECTORY_EVENTS.values()]:

        async def hear(_name: str = name, **kwargs: Any) -> None:
            heard.record(_name, kwargs)

        found.append(listener(name)(hear))
    return found


@dataclass
class Browser:
    """The app's test client plus the fake Scalekit standing in for its hosted pages."""

    client: AsyncTestClient[Litestar]
    fake: FakeScalekit
    rpkit: RPKitPlugin
    heard: Heard

    def sets_session(self, response: httpx.Response) -> bool:
        cookie = self.rpkit.runtime.session_cookie
        return any(
            h.startswith(f"{cookie}=") and "Max-Age=0" not in h
            for h in response.headers.get_list("set-cookie")
        )

    async def post(self, path: str, **json: Any) -> httpx.Response:
        return await self.client.post(SK + path, json=json, follow_redirects=False)

    async def whoami(self) -> dict[str, Any]:
        answer: dict[str, Any] = (await self.client.get("/me")).json()
        return answer

    async def follow(self, response: httpx.Response) -> httpx.Response:
        """From a 303 (or a JSON ``location``) to Scalekit, through the fake, to the callback."""
        location = response.headers.get("location") or response.json()["location"]
        callback = await self.fake.approve(location)
        return await self.client.get(callback.location, follow_redirects=False)

    async def hosted_login(self, **params: str) -> httpx.Response:
        """rpkit's own login route (the preset's hooks route a ``login_hint``), then the
        callback."""
        started = await self.client.get(
            "/auth/login/scalekit", params=params, follow_redirects=False
        )
        assert started.status_code == 303, started.text
        return await self.follow(started)

    async def headless_login(self, email: str) -> httpx.Response:
        """Headless passwordless: an email, then its code."""
        sent = await self.post("/passwordless/send", email=email)
        assert sent.status_code == 200, sent.text
        code = self.fake.outbox.last(email).otp
        return await self.post("/passwordless/verify", code=code)

    async def sign_out(self) -> None:
        self.client.cookies.clear()


def make_app(fake: FakeScalekit, heard: Heard, **options: Any) -> tuple[Litestar, RPKitPlugin]:
    provider = scalekit(fake.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    rpkit = RPKitPlugin(
        RPKitConfig(providers=[provider], secret=SECRET, base_url=BASE),
        http_transport=fake.transport(),
    )
    plugins = [rpkit, ScalekitLitestarPlugin(**options)]
    app = Litestar([me], plugins=plugins, listeners=_listeners(heard))
    return app, rpkit


@pytest.fixture
async def open_browser(
    fake_scalekit: FakeScalekit,
) -> AsyncIterator[Callable[..., Awaitable[Browser]]]:
    """Start an app with these :class:`ScalekitLitestarPlugin` options against
    ``fake_scalekit``; closed after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**options: Any) -> Browser:
            heard = Heard()
            app, rpkit = make_app(fake_scalekit, heard, **options)
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            return Browser(client, fake_scalekit, rpkit, heard)

        yield open_


@pytest.fixture
async def browser(open_browser: Callable[..., Awaitable[Browser]]) -> Browser:
    return await open_browser(passwordless=True)
