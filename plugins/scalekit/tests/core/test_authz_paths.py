"""Scalekit's roles, permissions and organization guard routes, end to end: the fake Scalekit
signs in through rpkit's Litestar routes, the preset verifies the login's access token
(``aud`` the client id) and the guards read ``roles``, ``permissions`` and ``oid``."""

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

from rpkit.litestar import (
    RPKitConfig,
    RPKitPlugin,
    requires_org,
    requires_permission,
    requires_role,
    requires_scopes,
)
from rpkit.litestar.bearer import OIDCBearerAuth
from rpkit.testing import ABSENT, Tamper
from rpkit_scalekit.provider import CLAIM_PATHS, resource_token_policy, scalekit
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeScalekit

pytestmark = pytest.mark.authz

BASE = "https://app.rpkit.test"
SECRET = "test-secret-" + "x" * 32
ACME_ORG = "org_300000000000000001"
ALICE = "alice@acme.test"


@get("/admin", guards=[requires_role("admin")])
async def admin() -> str:
    return "admin"


@get("/reports", guards=[requires_permission("reports:read")])
async def reports() -> str:
    return "reports"


@get("/acme", guards=[requires_org(ACME_ORG)])
async def acme() -> str:
    return "acme"


@dataclass
class App:
    client: AsyncTestClient[Litestar]
    fake: FakeScalekit
    plugin: RPKitPlugin

    async def login(self, email: str = ALICE) -> None:
        started = await self.client.get(
            "/auth/login/scalekit", params={"login_hint": email}, follow_redirects=False
        )
        answer = await self.fake.approve(started.headers["location"])
        landed = await self.client.get(answer.location, follow_redirects=False)
        assert landed.status_code == 303, landed.text

    async def status(self, path: str) -> int:
        return (await self.client.get(path, headers={"accept": "application/json"})).status_code


@pytest.fixture
async def open_app(fake_scalekit: FakeScalekit) -> AsyncIterator[Callable[..., Awaitable[App]]]:
    async with contextlib.AsyncExitStack() as stack:

        async def open_(**changes: Any) -> App:
            provider = scalekit(
                fake_scalekit.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, **changes
            )
            plugin = RPKitPlugin(
                RPKitConfig(providers=[provider], secret=SECRET, base_url=BASE),
                http_transport=fake_scalekit.transport(),
            )
            app = Litestar([admin, reports, acme], plugins=[plugin])
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            return App(client, fake_scalekit, plugin)

        yield open_


def grant(fake: FakeScalekit, **claims: Any) -> None:
    user = fake.user_by_email(ALICE)
    assert user is not None
    user.claims |= claims


def test_the_preset_reads_roles_permissions_and_oid_in_verified_access_tokens():
    config = scalekit("https://acme.scalekit.test", "skc_1", "s3cret")

    assert config.claim_paths == CLAIM_PATHS
    assert config.access_token_claims is not None
    assert config.access_token_claims.audiences("skc_1") == ("skc_1",)


async def test_scalekit_roles_permissions_and_organization_open_the_routes(open_app):
    app: App = await open_app()
    grant(app.fake, roles=["admin"], permissions=["reports:read"])
    await app.login()

    assert await app.status("/admin") == 200
    assert await app.status("/reports") == 200
    assert await app.status("/acme") == 200
    runtime = app.plugin.runtime
    data = await runtime.sessions.peek(app.client.cookies.get(runtime.session_cookie))
    assert data is not None
    assert data.access_claims == {
        "roles": ["admin"],
        "permissions": ["reports:read"],
        "oid": ACME_ORG,
    }


async def test_the_default_member_role_opens_nothing_for_admins(open_app):
    app: App = await open_app()
    await app.login()  # Scalekit's default role: member; no permissions

    assert await app.status("/admin") == 403
    assert await app.status("/reports") == 403
    assert await app.status("/acme") == 200


async def test_a_mistyped_scalekit_claim_denies(open_app):
    app: App = await open_app()
    app.fake.knobs.access_token_claims = {"roles": "admin", "oid": ["org"]}
    await app.login()

    assert await app.status("/admin") == 403
    assert await app.status("/acme") == 403


async def test_a_tampered_access_token_grants_nothing(open_app):
    app: App = await open_app()
    grant(app.fake, roles=["admin"])
    app.fake.knobs.access_token_tamper = Tamper.UNKNOWN_KEY
    app.fake.knobs.id_token_claims = {"at_hash": ABSENT}
    await app.login()

    assert await app.status("/admin") == 403
    assert await app.status("/acme") == 403


async def test_a_role_removed_in_scalekit_is_gone_after_refresh(open_app):
    app: App = await open_app(offline_access=True)
    grant(app.fake, roles=["admin"])
    await app.login()
    assert await app.status("/admin") == 200

    grant(app.fake, roles=["member"])
    app.plugin.runtime.sessions.clock = lambda: time.time() + 3600

    assert await app.status("/admin") == 403
    assert await app.status("/acme") == 200


@get("/api/reports", guards=[requires_scopes("reports:read"), requires_role("admin")])
async def api_reports() -> str:
    return "reports"


def resource_token(fake: FakeScalekit, **claims: Any) -> str:
    now = int(time.time())
    honest = {
        "iss": fake.issuer,
        "aud": ["res_1"],
        "sub": "usr_100000000000000001",
        "oid": ACME_ORG,
        "iat": now,
        "exp": now + 300,
        "client_id": DEFAULT_CLIENT_ID,
        "scope": "reports:read",
    }
    return fake.minter.sign(honest | claims, typ="JWT")


async def test_resource_tokens_for_apis_read_the_same_paths_and_scopes_still_count(
    fake_scalekit: FakeScalekit,
):
    policy = resource_token_policy(fake_scalekit.issuer, audience="res_1")
    assert policy.claim_paths == CLAIM_PATHS
    http = httpx.AsyncClient(transport=fake_scalekit.transport(), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy], http=http)
    app = Litestar([api_reports], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app) as client:

        async def status(token: str) -> int:
            answer = await client.get("/api/reports", headers={"authorization": f"Bearer {token}"})
            return answer.status_code

        allowed = await status(resource_token(fake_scalekit, roles=["admin"]))
        no_role = await status(resource_token(fake_scalekit, roles=["member"]))
        no_scope = await status(resource_token(fake_scalekit, roles=["admin"], scope="other"))

    assert (allowed, no_role, no_scope) == (200, 403, 403)
