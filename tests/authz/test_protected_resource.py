"""RFC 9728 protected-resource metadata through ``OIDCBearerAuth(resource=ProtectedResource(...))``.

The document is served without a token at the path-inserted well-known URL (§3), every challenge
names it (§5.1), and the config refuses to start unless every policy's audience is the resource
identifier, so a token minted for another resource (RFC 8707) is refused with no further request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.errors import ConfigurationError
from rpkit.litestar import OIDCBearerAuth, ProtectedResource, requires_scopes
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, FakeOPTransport
from rpkit.testing.server import ServerThread, bind_loopback

pytestmark = pytest.mark.authz

RESOURCE = "https://api.rpkit.test/mcp"
METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
METADATA_URL = "https://api.rpkit.test" + METADATA_PATH
POINTER = f'resource_metadata="{METADATA_URL}"'


@get("/mcp")
async def tools() -> list[str]:
    return ["greet"]


@get("/mcp/admin", guards=[requires_scopes("mcp:admin")])
async def admin() -> list[str]:
    return []


def resource_for(op: FakeOP, **changes: Any) -> ProtectedResource:
    settings: dict[str, Any] = {
        "resource": RESOURCE,
        "authorization_servers": (op.issuer,),
        "scopes_supported": ("mcp:tools", "mcp:admin"),
    }
    return ProtectedResource(**(settings | changes))


def policy_for(op: FakeOP, **changes: Any) -> AccessTokenPolicy:
    settings: dict[str, Any] = {
        "issuers": (op.issuer,),
        "jwks_uri": op.endpoints["jwks"],
        "audience": (RESOURCE,),
    }
    return AccessTokenPolicy(**(settings | changes))


def mint(op: FakeOP, audience: str = RESOURCE, scope: str = "mcp:tools", **options: Any) -> str:
    return op.minter.mint_access_token(
        subject="alice", audience=audience, client_id=DEFAULT_CLIENT_ID, scope=scope, **options
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def api(
    op: FakeOP, resource: ProtectedResource | None = None, **config: Any
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    http = httpx.AsyncClient(transport=FakeOPTransport(op), timeout=5.0)
    auth = OIDCBearerAuth(
        policies=[policy_for(op)],
        http=http,
        realm="mcp",
        resource=resource or resource_for(op),
        **config,
    )
    app = Litestar([tools, admin], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app) as client:
        yield client


# -- the document --------------------------------------------------------------------------------


async def test_the_document_is_served_without_a_token_at_the_path_inserted_well_known_url(
    fake_op: FakeOP,
) -> None:
    async with api(fake_op) as client:
        response = await client.get(METADATA_PATH)
        at_root = await client.get("/.well-known/oauth-protected-resource")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json() == {
        "resource": RESOURCE,
        "authorization_servers": [fake_op.issuer],
        "scopes_supported": ["mcp:tools", "mcp:admin"],
        "bearer_methods_supported": ["header"],
    }
    assert at_root.status_code == 404  # not published there unless asked: another resource's URL


async def test_optional_members_are_published_when_set_and_left_out_when_empty(
    fake_op: FakeOP,
) -> None:
    resource = resource_for(
        fake_op,
        scopes_supported=(),
        resource_name="Tools for Ada",
        resource_documentation="https://docs.rpkit.test/mcp",
        max_age=0,
    )
    async with api(fake_op, resource) as client:
        response = await client.get(METADATA_PATH)

    assert response.headers["cache-control"] == "no-cache"
    assert response.json() == {
        "resource": RESOURCE,
        "authorization_servers": [fake_op.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": "Tools for Ada",
        "resource_documentation": "https://docs.rpkit.test/mcp",
    }


@pytest.mark.parametrize(
    ("identifier", "metadata_url"),
    [
        ("https://api.rpkit.test", "https://api.rpkit.test/.well-known/oauth-protected-resource"),
        ("https://api.rpkit.test/", "https://api.rpkit.test/.well-known/oauth-protected-resource"),
        (
            "https://api.rpkit.test:8443/v1/mcp",
            "https://api.rpkit.test:8443/.well-known/oauth-protected-resource/v1/mcp",
        ),
        (
            "http://127.0.0.1:8000/mcp/",
            "http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp/",
        ),
    ],
)
def test_the_metadata_url_inserts_the_well_known_suffix_before_the_path(
    identifier: str, metadata_url: str
) -> None:
    resource = ProtectedResource(resource=identifier, authorization_servers=("https://as.test",))

    assert resource.metadata_url == metadata_url
    assert resource.document()["resource"] == identifier  # verbatim (RFC 9728 §3.3)


async def test_serve_at_root_also_publishes_the_document_at_the_host_root(fake_op: FakeOP) -> None:
    async with api(fake_op, resource_for(fake_op, serve_at_root=True)) as client:
        suffixed = await client.get(METADATA_PATH)
        root = await client.get("/.well-known/oauth-protected-resource")

    assert root.status_code == suffixed.status_code == 200
    assert root.content == suffixed.content


async def test_the_document_passes_app_wide_scope_guards(fake_op: FakeOP) -> None:
    async with api(fake_op, guards=[requires_scopes("mcp:tools")]) as client:
        metadata = await client.get(METADATA_PATH)
        anonymous = await client.get("/mcp")

    assert metadata.status_code == 200
    assert anonymous.status_code == 401


# -- every challenge points at it ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, None),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, None),
        ({"Authorization": "Bearer "}, "invalid_token"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid_token"),
        ({"Authorization": "Bearer a.b.c.d.e"}, "invalid_token"),
    ],
    ids=["no-header", "basic", "empty-bearer", "garbage", "jwe"],
)
async def test_every_401_without_a_usable_token_names_the_metadata(
    fake_op: FakeOP, headers: dict[str, str], error: str | None
) -> None:
    async with api(fake_op) as client:
        response = await client.get("/mcp", headers=headers)

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="mcp"')
    assert challenge.endswith(POINTER)
    assert (f'error="{error}"' in challenge) if error else ("error=" not in challenge)


@pytest.mark.parametrize(
    "token_for",
    [
        lambda op: mint(op, lifetime=-600),
        lambda op: mint(op, header={"kid": "no-such-key"}),
        lambda op: mint(op)[:-4] + "AAAA",
        lambda op: FakeOP("https://stranger.op.test").minter.mint_access_token(
            subject="alice", audience=RESOURCE, client_id=DEFAULT_CLIENT_ID
        ),
    ],
    ids=["expired", "unknown-key", "bad-signature", "unknown-issuer"],
)
async def test_every_refused_token_gets_invalid_token_naming_the_metadata(
    fake_op: FakeOP, token_for: Any
) -> None:
    token = token_for(fake_op)
    async with api(fake_op) as client:
        response = await client.get("/mcp", headers=bearer(token))

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert challenge.endswith(POINTER)
    assert token not in response.text


async def test_a_user_lookup_refusal_also_names_the_metadata(fake_op: FakeOP) -> None:
    async def nobody(token: AccessToken, _: object) -> None:
        return None

    async with api(fake_op, retrieve_user_handler=nobody) as client:
        response = await client.get("/mcp", headers=bearer(mint(fake_op)))

    assert response.status_code == 401
    assert response.headers["www-authenticate"].endswith(POINTER)


async def test_insufficient_scope_names_the_scope_and_the_metadata(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/mcp/admin", headers=bearer(mint(fake_op)))

    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="mcp:admin"' in challenge
    assert challenge.endswith(POINTER)


async def test_two_authorization_headers_are_refused_naming_the_metadata(fake_op: FakeOP) -> None:
    # Litestar's test client merges repeated headers, so this one goes through a real server.
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy_for(fake_op)], http=http, resource=resource_for(fake_op))
    server = ServerThread(Litestar([tools], on_app_init=[auth.on_app_init]), bind_loopback())
    server.start()
    headers = [("Authorization", f"Bearer {mint(fake_op)}"), ("Authorization", "Bearer b")]
    try:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            response = await client.get("/mcp", headers=headers)
    finally:
        server.stop()
        await http.aclose()

    assert response.status_code == 400
    assert response.headers["www-authenticate"].endswith(POINTER)


async def test_without_a_resource_the_challenge_is_unchanged(fake_op: FakeOP) -> None:
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy_for(fake_op)], http=http, realm="mcp")
    app = Litestar([tools], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app) as client:
        response = await client.get("/mcp")
        metadata = await client.get(METADATA_PATH)

    assert response.headers["www-authenticate"] == 'Bearer realm="mcp"'
    assert metadata.status_code == 404


# -- the audience is the resource (RFC 8707) -----------------------------------------------------


async def test_a_token_for_another_resource_is_refused_with_no_further_request(
    fake_op: FakeOP,
) -> None:
    token = mint(fake_op, audience="https://other.rpkit.test/mcp")
    async with api(fake_op) as client:
        accepted = await client.get("/mcp", headers=bearer(mint(fake_op)))
        before = len(fake_op.oracle)
        refused = await client.get("/mcp", headers=bearer(token))
        after = len(fake_op.oracle)

    assert accepted.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The access token is not meant for this API."
    assert refused.headers["www-authenticate"].endswith(POINTER)
    assert after == before  # the keys were warm: nothing more was asked of the issuer
    assert fake_op.oracle.count("jwks") == 1


def test_a_policy_whose_audience_is_not_the_resource_is_refused_at_startup(
    fake_op: FakeOP,
) -> None:
    policy = policy_for(fake_op, audience=("https://api.rpkit.test",))

    with pytest.raises(ConfigurationError, match="must list the resource identifier"):
        OIDCBearerAuth(policies=[policy], resource=resource_for(fake_op))


def test_a_policy_that_reads_client_id_for_the_audience_is_refused(fake_op: FakeOP) -> None:
    policy = policy_for(fake_op, audience=(RESOURCE,), audience_claim="client_id")

    with pytest.raises(ConfigurationError, match="RFC 8707"):
        OIDCBearerAuth(policies=[policy], resource=resource_for(fake_op))


def test_an_authorization_server_no_policy_accepts_is_refused(fake_op: FakeOP) -> None:
    resource = resource_for(fake_op, authorization_servers=("https://elsewhere.op.test",))

    with pytest.raises(ConfigurationError, match="no policy accepts it"):
        OIDCBearerAuth(policies=[policy_for(fake_op)], resource=resource)


# -- the resource itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resource": "http://api.rpkit.test/mcp"}, "must use https"),
        ({"resource": "/mcp"}, "not an absolute URL"),
        ({"resource": "https://api.rpkit.test/mcp?tenant=1"}, "no query and no fragment"),
        ({"resource": "https://api.rpkit.test/mcp#tools"}, "no query and no fragment"),
        ({"resource": "https://ada:pw@api.rpkit.test/mcp"}, "no user information"),
        ({"resource": 'https://api.rpkit.test/m"cp'}, "printable ASCII"),
        ({"resource": "https://[::1/mcp"}, "not a URL"),
        ({"authorization_servers": ()}, "at least one authorization server"),
        ({"authorization_servers": ("https://as.test?x=1",)}, "authorization server"),
        ({"scopes_supported": ("mcp tools",)}, "scope tokens"),
        ({"bearer_methods_supported": ("header", "query")}, "only be"),
        ({"resource_name": "Tools\n"}, "resource_name"),
        ({"resource_documentation": "javascript:alert(1)"}, "resource_documentation"),
        ({"max_age": -1}, "max_age"),
        ({"resource": None}, "must be strings"),
        ({"authorization_servers": "https://as.test"}, "not a string"),
    ],
)
def test_a_malformed_resource_is_refused_at_construction(
    changes: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {
        "resource": RESOURCE,
        "authorization_servers": ("https://as.test",),
    }
    with pytest.raises(ConfigurationError, match=message):
        ProtectedResource(**(settings | changes))


def test_http_on_loopback_is_accepted_and_logged_as_a_relaxation() -> None:
    op = FakeOP("http://127.0.0.1:9000")
    resource = ProtectedResource(
        resource="http://127.0.0.1:8000/mcp", authorization_servers=(op.issuer,)
    )
    policy = AccessTokenPolicy(
        issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(resource.resource,)
    )
    with capture_logs() as logs:
        OIDCBearerAuth(policies=[policy], resource=resource)

    relaxed = [entry for entry in logs if entry["event"] == "rpkit.startup.check_relaxed"]
    assert len(relaxed) == 2
    assert all("http://" in entry["setting"] for entry in relaxed)
