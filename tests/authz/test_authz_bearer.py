"""The same guards on bearer APIs: the token's claims at the paths of the policy that accepted
it; a denial is a 403 with an RFC 6750 ``insufficient_scope`` challenge, as for scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import ClaimPaths
from rpkit.litestar import requires_org, requires_permission, requires_role, requires_scopes
from rpkit.litestar.bearer import OIDCBearerAuth
from rpkit.providers import keycloak
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, FakeOPTransport, Tamper
from rpkit.testing.providers.keycloak import FakeKeycloak
from tests.authz.conftest import PATHS

pytestmark = pytest.mark.authz

API = "https://api.rpkit.test"
REALM = "invoices-api"
GRANTS: dict[str, Any] = {
    "realm": {"roles": ["admin"]},
    "permissions": ["invoices:read", "invoices:write"],
    "org": "org_acme",
}


@get("/admin", guards=[requires_role("admin")])
async def admin() -> str:
    return "admin"


@get("/invoices", guards=[requires_permission("invoices:read", "invoices:write")])
async def invoices() -> str:
    return "invoices"


@get("/acme", guards=[requires_org("org_acme")])
async def acme() -> str:
    return "acme"


@get("/orders", guards=[requires_scopes("orders:read"), requires_role("admin")])
async def orders() -> str:
    return "orders"


@get("/public/admin", guards=[requires_role("admin")])
async def unauthenticated_admin() -> str:
    return "never"


HANDLERS = [admin, invoices, acme, orders, unauthenticated_admin]


def policy_for(op: FakeOP, **changes: Any) -> AccessTokenPolicy:
    settings: dict[str, Any] = {
        "issuers": (op.issuer,),
        "jwks_uri": op.endpoints["jwks"],
        "audience": (API,),
        "claim_paths": PATHS,
    }
    return AccessTokenPolicy(**(settings | changes))


def mint(op: FakeOP, claims: dict[str, Any], scope: str = "orders:read", **sign: Any) -> str:
    return op.minter.mint_access_token(
        subject="alice",
        audience=API,
        client_id=DEFAULT_CLIENT_ID,
        scope=scope,
        claims=claims,
        **sign,
    )


@asynccontextmanager
async def api(op: FakeOP, policy: AccessTokenPolicy) -> AsyncIterator[AsyncTestClient[Litestar]]:
    http = httpx.AsyncClient(transport=FakeOPTransport(op), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy], http=http, realm=REALM, exclude=["^/public/"])
    app = Litestar(HANDLERS, on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app) as client:
        yield client


async def get_with(client: AsyncTestClient[Litestar], path: str, token: str) -> httpx.Response:
    return await client.get(path, headers={"Authorization": f"Bearer {token}"})


def assert_denied(response: httpx.Response, kind: str) -> None:
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["code"] == "insufficient_authorization"
    assert body["type"] == "https://rpkit.dev/errors/insufficient_authorization"
    assert body["detail"] == f"The access token lacks the {kind} this needs."
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{REALM}", error="insufficient_scope", '
        f'error_description="The access token lacks the {kind} this needs."'
    )


async def test_roles_permissions_and_org_of_the_token_open_the_routes(fake_op):
    async with api(fake_op, policy_for(fake_op)) as client:
        token = mint(fake_op, GRANTS)
        for path in ("/admin", "/invoices", "/acme", "/orders"):
            assert (await get_with(client, path, token)).status_code == 200, path


@pytest.mark.parametrize(
    ("claims", "path", "kind"),
    [
        ({}, "/admin", "role"),
        ({"realm": {"roles": "admin"}}, "/admin", "role"),
        ({"realm": {"roles": [["admin"]]}}, "/admin", "role"),
        ({"realm": {"roles": ["user"]}}, "/admin", "role"),
        ({"permissions": ["invoices:read"]}, "/invoices", "permission"),
        ({"permissions": "invoices:read invoices:write"}, "/invoices", "permission"),
        ({"org": 7}, "/acme", "organization"),
        ({"org": "org_globex"}, "/acme", "organization"),
    ],
)
async def test_a_missing_or_mistyped_claim_is_a_403_challenge(fake_op, claims, path, kind):
    async with api(fake_op, policy_for(fake_op)) as client:
        denied = await get_with(client, path, mint(fake_op, claims))

    assert_denied(denied, kind)
    assert "orders:read" not in denied.text


async def test_a_policy_without_claim_paths_denies(fake_op):
    async with api(fake_op, policy_for(fake_op, claim_paths=None)) as client:
        denied = await get_with(client, "/admin", mint(fake_op, GRANTS))

    assert_denied(denied, "role")


async def test_requires_scopes_still_answers_for_scopes(fake_op):
    async with api(fake_op, policy_for(fake_op)) as client:
        no_scope = await get_with(client, "/orders", mint(fake_op, GRANTS, scope="profile"))
        no_role = await get_with(client, "/orders", mint(fake_op, {}, scope="orders:read"))

    assert no_scope.status_code == 403
    assert no_scope.json()["code"] == "insufficient_scope"
    assert 'scope="orders:read"' in no_scope.headers["www-authenticate"]
    assert_denied(no_role, "role")


async def test_a_forged_token_is_refused_before_any_guard_reads_it(fake_op):
    async with api(fake_op, policy_for(fake_op)) as client:
        refused = await get_with(client, "/admin", mint(fake_op, GRANTS, tamper=Tamper.UNKNOWN_KEY))

    assert refused.status_code == 401
    assert refused.json()["code"] == "access_token_invalid"


async def test_a_route_outside_bearer_auth_in_an_app_without_sessions_is_a_401(fake_op):
    async with api(fake_op, policy_for(fake_op)) as client:
        refused = await client.get("/public/admin")

    assert refused.status_code == 401
    assert refused.json()["code"] == "access_token_missing"
    assert refused.headers["www-authenticate"] == f'Bearer realm="{REALM}"'


async def test_keycloak_client_roles_through_the_presets_bearer_policy():
    fake = FakeKeycloak()
    fake.users["alice"].claims |= {
        "realm_access": {"roles": ["user"]},
        "resource_access": {"invoices.api": {"roles": ["admin"]}},
    }
    policy = keycloak.bearer_policy(fake.base_url, fake.realm, "invoices.api")
    client_id = next(iter(fake.clients))
    fake.clients[client_id].access_token_audience = "invoices.api"  # an Audience mapper
    token = fake.issue_access_token(
        fake.clients[client_id], fake.users["alice"], "openid profile", None
    )

    async with api(fake, policy) as client:
        allowed = await get_with(client, "/admin", token)
    fake.users["alice"].claims["resource_access"] = {"other.api": {"roles": ["admin"]}}
    other = fake.issue_access_token(fake.clients[client_id], fake.users["alice"], "openid", None)
    async with api(fake, policy) as client:
        denied = await get_with(client, "/admin", other)

    assert allowed.status_code == 200
    assert_denied(denied, "role")


def test_an_api_policy_reads_named_clients_not_the_placeholder():
    paths = keycloak.bearer_policy("https://sso.example", "acme", "invoices.api").claim_paths
    assert paths is not None
    assert [p.segments for p in paths.paths("roles")] == [
        ("realm_access", "roles"),
        ("resource_access", "invoices.api", "roles"),
    ]
    assert ClaimPaths(roles=("roles",)).bind("x") == ClaimPaths(roles=("roles",))
