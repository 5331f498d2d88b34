"""What a newcomer to the role, permission and organization guards meets first: a claim path
with a stray space (read from an environment variable), and a route that answers 403 to every
request because a path does not match the provider's claims, with nothing in the log to say so.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.access_token import AccessTokenPolicy
from rpkit.authz import ClaimPath, ClaimPaths
from rpkit.errors import ConfigurationError
from rpkit.litestar import OIDCBearerAuth, requires_org, requires_role
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, FakeOPTransport
from tests.authz import test_protected_resource_dpop as dpop_api
from tests.authz.conftest import API, PATHS, App, alice, provider

pytestmark = pytest.mark.authz

AUDIENCE = "https://api.rpkit.test"


@get("/admin", guards=[requires_role("admin")])
async def admin() -> str:
    return "admin"


@get("/acme", guards=[requires_org("org_acme")])
async def acme() -> str:
    return "acme"


@pytest.mark.parametrize("path", ["realm_access. roles", " roles", "roles\t", "a.roles "])
def test_a_path_with_a_stray_space_is_refused_at_construction(path: str) -> None:
    """``os.environ["ROLES"].split(",")`` gives ``" groups"``: it would never match a claim, so
    every request would be denied; it is refused where the configuration is built."""
    with pytest.raises(ConfigurationError, match="whitespace"):
        ClaimPaths(roles=("roles", path))
    with pytest.raises(ConfigurationError, match="whitespace"):
        ClaimPath.of(*path.split("."))


def test_a_claim_name_with_inner_spaces_or_dots_stays_allowed() -> None:
    paths = ClaimPaths(roles=(ClaimPath.of("https://app.example/my roles"),))
    assert paths.roles[0].segments == ("https://app.example/my roles",)


async def bearer_denial(op: FakeOP, paths: ClaimPaths, claims: dict[str, Any], route: str) -> Any:
    policy = AccessTokenPolicy(
        issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(AUDIENCE,), claim_paths=paths
    )
    token = op.minter.mint_access_token(
        subject="alice", audience=AUDIENCE, client_id=DEFAULT_CLIENT_ID, claims=claims
    )
    http = httpx.AsyncClient(transport=FakeOPTransport(op), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy], http=http)
    app = Litestar([admin, acme], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app) as client:
        with capture_logs() as logs:
            response = await client.get(route, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_authorization"
    denied = [entry for entry in logs if entry["event"] == "rpkit.authz.denied"]
    assert len(denied) == 1
    assert denied[0]["log_level"] == "info"
    return denied[0]


async def test_a_typo_in_a_path_is_named_in_the_denial_log(fake_op: FakeOP) -> None:
    typo = ClaimPaths(roles=("realm_acces.roles",))  # the token has realm_access
    entry = await bearer_denial(fake_op, typo, {"realm_access": {"roles": ["admin"]}}, "/admin")

    assert entry["kind"] == "roles"
    assert entry["reason"] == "no_value"
    assert entry["paths"] == ["realm_acces.roles"]
    assert "admin" not in str(entry)  # neither what the route wants nor what the token holds


async def test_a_role_the_token_lacks_is_not_granted_and_no_paths_are_logged(
    fake_op: FakeOP,
) -> None:
    paths = ClaimPaths(roles=("realm_access.roles",))
    entry = await bearer_denial(fake_op, paths, {"realm_access": {"roles": ["user"]}}, "/admin")

    assert (entry["kind"], entry["reason"]) == ("roles", "not_granted")
    assert "paths" not in entry
    assert "user" not in str(entry)


async def test_a_policy_without_paths_says_none(fake_op: FakeOP) -> None:
    entry = await bearer_denial(fake_op, ClaimPaths(), {"org": "org_acme"}, "/acme")

    assert (entry["kind"], entry["reason"], entry["paths"]) == ("organization", "no_value", "none")


async def test_a_session_denial_names_the_providers_paths(open_app, fake_op: FakeOP) -> None:
    alice(fake_op).access_token_claims = {"realm": {"role": ["admin"]}}  # not PATHS' realm.roles
    app: App = await open_app(provider(fake_op))
    await app.login()

    with capture_logs() as logs:
        status = await app.status("/admin", API)

    assert status == 403
    denied = [entry for entry in logs if entry["event"] == "rpkit.authz.denied"]
    assert [(e["kind"], e["reason"], e["paths"]) for e in denied] == [
        ("roles", "no_value", [str(path) for path in PATHS.roles])
    ]
    assert denied[0]["provider"] == app.provider_id


async def test_a_dpop_request_without_the_role_is_told_in_the_dpop_challenge(
    fake_op: FakeOP,
) -> None:
    """RFC 9449 §7.1: the error goes in the challenge of the scheme the request used, as
    ``requires_scopes`` already did; a role guard put it in the ``Bearer`` one."""
    policy = AccessTokenPolicy(
        issuers=(fake_op.issuer,),
        jwks_uri=fake_op.endpoints["jwks"],
        audience=(dpop_api.RESOURCE,),
        claim_paths=ClaimPaths(roles=("roles",)),
    )
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = OIDCBearerAuth(
        policies=[policy],
        http=http,
        realm="mcp",
        resource=dpop_api.resource_for(fake_op),
        dpop="allowed",
    )

    @get("/mcp", guards=[requires_role("admin")])
    async def guarded() -> str:
        return "never"

    app = Litestar([guarded], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app, base_url=dpop_api.HOST) as client:
        response = await client.get("/mcp", headers=dpop_api.dpop_request(fake_op, "ES256"))

    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_authorization"
    bearer_challenge, dpop_challenge = response.headers["www-authenticate"].split(", DPoP ")
    assert "error=" not in bearer_challenge
    assert 'error="insufficient_scope"' in dpop_challenge
