"""A newcomer mounting the bearer auth of a protected resource on a ``Router`` or a
``Controller`` (``middleware=[auth.middleware]``) instead of the app (``on_app_init``).

Litestar deep-copies a router, its controllers and their middleware when it registers them; the
config (which holds the caller's ``httpx.AsyncClient``, with a lock) used to be copied too, so
``Litestar([...])`` failed with ``TypeError: cannot pickle '_thread.RLock' object``. Without
``http=`` the app started and then answered every request with a bare 500, since no lifespan
opens a client for a config that never went through ``on_app_init``.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from litestar import Controller, Litestar, Router, get
from litestar.testing import AsyncTestClient

from rpkit.access_token import AccessTokenPolicy
from rpkit.errors import ConfigurationError
from rpkit.litestar import (
    OIDCBearerAuth,
    ProtectedResource,
    requires_org,
    requires_permission,
    requires_role,
)
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, FakeOPTransport

pytestmark = pytest.mark.authz

HOST = "https://api.rpkit.test"
RESOURCE = f"{HOST}/api"
METADATA = "/.well-known/oauth-protected-resource/api"


@get("/tools", sync_to_thread=False)
def tools() -> str:
    return "tools"


class Tools(Controller):
    path = "/ctl"

    @get("/tools", sync_to_thread=False)
    def tools(self) -> str:
        return "controller tools"


@get("/health", sync_to_thread=False)
def health() -> str:
    return "ok"


def auth_for(op: FakeOP, http: httpx.AsyncClient | None) -> OIDCBearerAuth:
    policy = AccessTokenPolicy(
        issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(RESOURCE,)
    )
    resource = ProtectedResource(resource=RESOURCE, authorization_servers=(op.issuer,))
    return OIDCBearerAuth(policies=[policy], realm="tools", resource=resource, http=http)


def mint(op: FakeOP, audience: str = RESOURCE) -> str:
    return op.minter.mint_access_token(
        subject="svc", audience=audience, client_id=DEFAULT_CLIENT_ID
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def test_a_router_mounted_with_the_apps_client_serves_and_refuses(fake_op: FakeOP) -> None:
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = auth_for(fake_op, http)
    router = Router(
        "/api",
        route_handlers=[tools, Tools],
        middleware=[auth.middleware],
        exception_handlers=auth.exception_handlers,
    )
    app = Litestar([router, health, *auth.resource_handlers()])  # raised TypeError before
    async with http, AsyncTestClient(app, base_url=HOST) as client:
        accepted = await client.get("/api/tools", headers=bearer(mint(fake_op)))
        in_controller = await client.get("/api/ctl/tools", headers=bearer(mint(fake_op)))
        jwks_fetches = fake_op.oracle.count("jwks")
        missing = await client.get("/api/tools")
        foreign = await client.get("/api/tools", headers=bearer(mint(fake_op, f"{HOST}/other")))
        document = await client.get(METADATA)
        unprotected = await client.get("/health")

    assert (accepted.status_code, accepted.text) == (200, "tools")
    assert (in_controller.status_code, in_controller.text) == (200, "controller tools")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    challenge = missing.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="tools"')
    assert f'resource_metadata="{HOST}{METADATA}"' in challenge
    assert foreign.status_code == 401
    assert foreign.json()["code"] == "access_token_invalid"
    assert fake_op.oracle.count("jwks") == jwks_fetches  # refusals cost no key fetch
    assert document.json()["resource"] == RESOURCE
    assert unprotected.text == "ok"


async def test_a_router_and_the_app_share_one_config(fake_op: FakeOP) -> None:
    """The copy Litestar makes is the config itself: one key cache and one verified-token
    cache, whichever router serves the request."""
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = auth_for(fake_op, http)
    first = Router("/api", route_handlers=[tools], middleware=[auth.middleware])
    second = Router("/v2", route_handlers=[tools], middleware=[auth.middleware])
    app = Litestar([first, second], exception_handlers=auth.exception_handlers)
    token = mint(fake_op)
    async with http, AsyncTestClient(app, base_url=HOST) as client:
        assert (await client.get("/api/tools", headers=bearer(token))).status_code == 200
        fetched = fake_op.oracle.count("jwks")
        assert (await client.get("/v2/tools", headers=bearer(token))).status_code == 200

    assert fetched == 1
    assert fake_op.oracle.count("jwks") == 1  # the second router used the same warm keys
    assert copy.deepcopy(auth) is auth


def test_a_router_mount_without_a_client_is_refused_at_startup(fake_op: FakeOP) -> None:
    """Nothing would open rpkit's own client: a clear error when the app is built, not a bare
    500 on every request."""
    auth = auth_for(fake_op, None)
    router = Router("/api", route_handlers=[tools], middleware=[auth.middleware])

    with pytest.raises(ConfigurationError, match="pass http="):
        Litestar([router])


async def test_on_app_init_without_a_client_still_opens_its_own(fake_op: FakeOP) -> None:
    """The startup check leaves the usual registration alone: its lifespan opens the client."""
    auth = auth_for(fake_op, None)
    app = Litestar([Router("/api", route_handlers=[tools])], on_app_init=[auth.on_app_init])
    # rpkit's own client has no transport to the fake: the token is judged "keys unavailable"
    # rather than crashing, which proves the lifespan opened a client for the middleware.
    async with AsyncTestClient(app, base_url=HOST) as client:
        response = await client.get("/api/tools", headers=bearer(mint(fake_op)))

    assert response.status_code == 503
    assert response.json()["code"] == "jwks_unavailable"


@pytest.mark.parametrize(
    "guard",
    [requires_role("mcp-user"), requires_permission("tools:call"), requires_org("org_1")],
    ids=["role", "permission", "org"],
)
async def test_app_wide_role_guards_let_the_metadata_through(fake_op: FakeOP, guard: Any) -> None:
    """A client fetches the document because it has no token yet; an app-wide role guard used
    to answer it 401, so MCP clients could never discover the authorization server.
    ``requires_scopes`` already let it through."""
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    policy = AccessTokenPolicy(
        issuers=(fake_op.issuer,), jwks_uri=fake_op.endpoints["jwks"], audience=(RESOURCE,)
    )
    resource = ProtectedResource(
        resource=RESOURCE, authorization_servers=(fake_op.issuer,), serve_at_root=True
    )
    auth = OIDCBearerAuth(policies=[policy], resource=resource, http=http, guards=[guard])
    app = Litestar([Router("/api", route_handlers=[tools])], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app, base_url=HOST) as client:
        documents = [
            await client.get(path) for path in (METADATA, "/.well-known/oauth-protected-resource")
        ]
        guarded = await client.get("/api/tools", headers=bearer(mint(fake_op)))

    assert [d.status_code for d in documents] == [200, 200]
    assert all(d.json()["resource"] == RESOURCE for d in documents)
    assert guarded.status_code == 403  # the guard still applies everywhere else
    assert guarded.json()["code"] == "insufficient_authorization"


@pytest.mark.parametrize(
    ("identifier", "audience"),
    [(RESOURCE, f"{RESOURCE}/"), (f"{RESOURCE}/", RESOURCE), (HOST, f"{HOST}/")],
)
def test_a_trailing_slash_mismatch_is_named(
    fake_op: FakeOP, identifier: str, audience: str
) -> None:
    """The identifier is compared exactly (RFC 8707 §2, RFC 9728 §3.3), so the config is
    refused; the message says why, since the two URLs look the same at a glance."""
    policy = AccessTokenPolicy(
        issuers=(fake_op.issuer,), jwks_uri=fake_op.endpoints["jwks"], audience=(audience,)
    )
    resource = ProtectedResource(resource=identifier, authorization_servers=(fake_op.issuer,))

    with pytest.raises(ConfigurationError, match="differ by a trailing slash"):
        OIDCBearerAuth(policies=[policy], resource=resource)


def test_an_unrelated_audience_gets_no_slash_hint(fake_op: FakeOP) -> None:
    policy = AccessTokenPolicy(
        issuers=(fake_op.issuer,), jwks_uri=fake_op.endpoints["jwks"], audience=(f"{HOST}/v2",)
    )
    resource = ProtectedResource(resource=RESOURCE, authorization_servers=(fake_op.issuer,))

    with pytest.raises(ConfigurationError, match="must list the resource") as refused:
        OIDCBearerAuth(policies=[policy], resource=resource)
    assert "trailing slash" not in str(refused.value)


async def test_two_tokens_in_one_joined_header_are_ambiguous(fake_op: FakeOP) -> None:
    """A proxy or client joining two ``Authorization`` lines sends ``Bearer a, Bearer b``; it
    was judged as one five-part token ("Encrypted access tokens are not accepted")."""
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = auth_for(fake_op, http)
    app = Litestar([Router("/api", route_handlers=[tools])], on_app_init=[auth.on_app_init])
    token = mint(fake_op)
    async with http, AsyncTestClient(app, base_url=HOST) as client:
        fetched = fake_op.oracle.count("jwks")
        joined = await client.get(
            "/api/tools", headers={"authorization": f"Bearer {token}, Bearer {token}"}
        )
        refetched = fake_op.oracle.count("jwks")

    assert joined.status_code == 400
    assert joined.json()["code"] == "access_token_ambiguous"
    challenge = joined.headers["www-authenticate"]
    assert 'error="invalid_request"' in challenge
    assert f'resource_metadata="{HOST}{METADATA}"' in challenge
    assert refetched == fetched
