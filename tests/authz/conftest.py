"""Shared ground of the authorization tests (issue 14): a Litestar app whose routes are guarded
by roles, permissions and organizations, against the fake OP or a preset's fake in-process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from rpkit.authz import AccessTokenClaims, ClaimPaths
from rpkit.config import ProviderConfig
from rpkit.litestar import (
    RPKitConfig,
    RPKitPlugin,
    requires_org,
    requires_permission,
    requires_role,
)
from rpkit.litestar.session import SessionData
from rpkit.testing import FakeClient, FakeOP, FakeUser

BASE = "https://app.rpkit.test"
SECRET = "test-secret-" + "x" * 32
PAGE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
"""What a browser sends on a navigation."""
API = {"accept": "application/json"}
PATHS = ClaimPaths(
    roles=("realm.roles",),
    permissions=("permissions",),
    organization=("org",),
)
"""The fake OP's users carry these in their access tokens (``FakeUser.access_token_claims``)."""


@get("/admin", guards=[requires_role("admin")])
async def admin() -> str:
    return "admin"


@get("/editors", guards=[requires_role("admin", "editor")])
async def editors() -> str:
    return "editors"


@get("/both", guards=[requires_role("admin", "editor", match="all")])
async def both() -> str:
    return "both"


@get("/invoices", guards=[requires_permission("invoices:read", "invoices:write")])
async def invoices() -> str:
    return "invoices"


@get("/any-invoice", guards=[requires_permission("invoices:read", "invoices:write", match="any")])
async def any_invoice() -> str:
    return "any"


@get("/acme", guards=[requires_org("org_acme")])
async def acme() -> str:
    return "acme"


ROUTES = [admin, editors, both, invoices, any_invoice, acme]


@dataclass
class App:
    """The app's test client, the fake standing in for the IdP's pages, and the plugin."""

    client: AsyncTestClient[Litestar]
    op: FakeOP
    plugin: RPKitPlugin
    provider_id: str

    async def login(self) -> httpx.Response:
        """Sign in at the fake (its current user) through rpkit's routes."""
        started = await self.client.get(f"/auth/login/{self.provider_id}", follow_redirects=False)
        callback = await self.op.approve(started.headers["location"])
        return await self.client.get(callback.location, follow_redirects=False)

    async def status(self, path: str, headers: dict[str, str] | None = None) -> int:
        return (await self.client.get(path, headers=headers or API)).status_code

    async def session(self) -> SessionData:
        """The session as stored."""
        runtime = self.plugin.runtime
        cookie = self.client.cookies.get(runtime.session_cookie)
        data = await runtime.sessions.peek(cookie)
        assert data is not None
        return data

    def refresh_on_next_request(self) -> None:
        """Move the session manager's clock past the access token's expiry."""
        self.plugin.runtime.sessions.clock = lambda: time.time() + 7200


def provider(op: FakeOP, **changes: Any) -> ProviderConfig:
    """The fake OP's provider, reading ``PATHS`` in verified access tokens (``aud`` is the
    client id at the fake OP) unless ``changes`` say otherwise."""
    settings: dict[str, Any] = {
        "scopes": ("openid", "profile", "email", "offline_access"),
        "claim_paths": PATHS,
        "access_token_claims": AccessTokenClaims(),
    }
    return op.provider_config(**(settings | changes))


@pytest.fixture
async def open_app(fake_op: FakeOP) -> AsyncIterator[Callable[..., Awaitable[App]]]:
    """``await open_app(config=None, op=None, **rpkit_config)``: an app signing in with
    ``config`` (default: :func:`provider` of the fake OP) against ``op`` (default: the fake
    OP) in-process, with the guarded routes; closed after the test."""
    fake_op.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/fake",)))
    async with contextlib.AsyncExitStack() as stack:

        async def open_(
            config: ProviderConfig | None = None, *, op: FakeOP | None = None, **options: Any
        ) -> App:
            op = op or fake_op
            config = config or provider(op)
            settings: dict[str, Any] = {"providers": [config], "secret": SECRET, "base_url": BASE}
            plugin = RPKitPlugin(RPKitConfig(**(settings | options)), http_transport=op.transport())
            app = Litestar(ROUTES, plugins=[plugin])
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            return App(client, op, plugin, config.id)

        yield open_


def alice(op: FakeOP) -> FakeUser:
    """The fake OP's first user, who signs in by default."""
    return op.users["alice"]
