"""End-to-end harness for the provider presets: a Litestar app with rpkit's plugin, one preset's
configuration aimed at the preset's fake (in-process), and a browser-like client."""

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
from rpkit.config import ProviderConfig
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.litestar.session import SessionData
from rpkit.testing import FakeOP

BASE = "https://app.rpkit.test"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
"""What a browser sends on a navigation: rpkit answers it with HTML pages, not problem details."""
SECRET = "preset-secret-" + "x" * 32


def callback_url(provider_id: str) -> str:
    """The app's callback URL for ``provider_id`` (register it at the fake)."""
    return f"{BASE}/auth/callback/{provider_id}"


LOGOUT_CALLBACK = f"{BASE}/auth/logout/callback"


@get("/me")
async def me(rpkit_user: NamedDependency[Identity | None]) -> dict[str, Any]:
    if rpkit_user is None:
        return {}
    return {
        "provider": rpkit_user.provider_id,
        "issuer": rpkit_user.issuer,
        "subject": rpkit_user.subject,
        "email": rpkit_user.email,
        "email_verified": rpkit_user.email_verified,
        "name": rpkit_user.name,
        "tenant": rpkit_user.tenant,
    }


@get("/session")
async def session(rpkit_session: NamedDependency[SessionData | None]) -> dict[str, Any]:
    if rpkit_session is None:
        return {}
    return {
        "csrf_token": rpkit_session.csrf_token,
        "access_token": rpkit_session.access_token,
        "refresh_token": rpkit_session.refresh_token,
        "expires_at": rpkit_session.expires_at,
    }


@dataclass
class PresetBrowser:
    """The app's test client, and the fake standing in for the provider's pages."""

    client: AsyncTestClient[Litestar]
    fake: FakeOP
    provider_id: str
    plugin: RPKitPlugin

    async def start_login(self, **params: str) -> httpx.Response:
        path = f"/auth/login/{self.provider_id}"
        return await self.client.get(path, params=params, follow_redirects=False)

    async def login(self, **params: str) -> httpx.Response:
        """Start a login, let the fake approve it, deliver the callback; the callback's answer."""
        started = await self.start_login(**params)
        assert started.status_code == 303, started.text
        callback = await self.fake.approve(started.headers["location"])
        return await self.deliver(callback)

    async def deliver(self, callback: Any) -> httpx.Response:
        if callback.method == "POST":
            form = dict(callback.params)
            return await self.client.post(callback.url, data=form, follow_redirects=False)
        return await self.client.get(callback.location, follow_redirects=False)

    async def me(self) -> dict[str, Any]:
        response = await self.client.get("/me")
        assert response.status_code == 200
        result: dict[str, Any] = response.json()
        return result

    async def session(self) -> dict[str, Any]:
        result: dict[str, Any] = (await self.client.get("/session")).json()
        return result

    async def logs_out_locally(self) -> None:
        """Sign in, then out: a local logout answers 303 to the app's start page, sends the
        browser nowhere else, makes no request to the provider and leaves no session."""
        await self.login()
        before = len(self.fake.oracle)
        response = await self.logout()
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert len(self.fake.oracle) == before
        assert await self.me() == {}

    async def logout(self) -> httpx.Response:
        """POST rpkit's logout with the session's CSRF token; the redirect it answers."""
        csrf = (await self.session())["csrf_token"]
        return await self.client.post(
            "/auth/logout", data={"csrf_token": csrf}, follow_redirects=False
        )


@pytest.fixture
async def open_preset() -> AsyncIterator[Callable[..., Awaitable[PresetBrowser]]]:
    """``await open_preset(fake, config, *more_fakes, **rpkit_config)``: an app signing in with
    ``config`` against ``fake`` in-process (more fakes share the transport); closed after the
    test."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(
            fake: FakeOP, config: ProviderConfig, *more: Any, **options: Any
        ) -> PresetBrowser:
            transport = fake.transport()
            for other in more:
                transport.add(other)
            settings: dict[str, Any] = {"providers": [config], "secret": SECRET, "base_url": BASE}
            plugin = RPKitPlugin(RPKitConfig(**(settings | options)), http_transport=transport)
            app = Litestar([me, session], plugins=[plugin])
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            client.headers["accept"] = BROWSER_ACCEPT
            return PresetBrowser(client, fake, config.id, plugin)

        yield open_
