"""``OIDCBearerAuth`` never lets an ID token through as an access token.

Each refused token is signed by the fake OP with a published key and names the API's audience;
the route requires no scope, so before the kind check such a token got 200. A refusal is a 401
``invalid_token`` challenge, the route handler never runs, nothing further reaches the OP (no
token, UserInfo or key request) and nothing like a session is set. Access tokens of the shapes
real OPs issue, ``typ: JWT`` ones included, still get through.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.litestar.bearer import OIDCBearerAuth
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP
from rpkit.testing.registry import TokenGrant

API = "https://api.rpkit.test"
CLIENT = DEFAULT_CLIENT_ID
REALM = "orders-api"
ID_TOKEN_DETAIL = "An ID token is not an access token: send the access token."

handled: list[str] = []


@get("/me")
async def me(request: Request[Any, AccessToken, Any]) -> dict[str, Any]:
    handled.append(request.auth.sub)
    return {"sub": request.auth.sub, "client_id": request.auth.client_id}


@pytest.fixture(autouse=True)
def _no_handler_calls_yet() -> None:
    handled.clear()


def policy_for(op: FakeOP, **changes: Any) -> AccessTokenPolicy:
    settings: dict[str, Any] = {
        "issuers": (op.issuer,),
        "jwks_uri": op.endpoints["jwks"],
        "audience": (API,),
    }
    return AccessTokenPolicy(**(settings | changes))


@asynccontextmanager
async def api(op: FakeOP, **changes: Any) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API (one route, no scope required) with the policy ``changes``; keys warmed."""
    http = httpx.AsyncClient(transport=op.transport(), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy_for(op, **changes)], http=http, realm=REALM)
    app = Litestar([me], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app) as client:
        yield client


def signed(op: FakeOP, header_typ: str | None = "JWT", **claims: Any) -> str:
    """A token naming the client and the API, with header ``typ`` ``header_typ``."""
    now = op.now()
    registered = {"iss": op.issuer, "sub": "alice", "aud": [CLIENT, API], "iat": now}
    return op.minter.sign(registered | {"exp": now + 300} | claims, header={"typ": header_typ})


def op_id_token(op: FakeOP) -> str:
    """The fake OP's own ID token (``nonce``, ``at_hash``), with the API added to ``aud``."""
    client, user = op.clients[CLIENT], op.users["alice"]
    access = op.issue_access_token(client, user, "openid")
    grant = TokenGrant(CLIENT, user, "openid", op.now(), "sid-1")
    op.misbehave.id_token_claims = {"aud": [CLIENT, API]}
    return op.issue_id_token(client, grant, access, nonce="n-1", refreshing=False)


async def get_me(client: AsyncTestClient[Litestar], token: str) -> httpx.Response:
    return await client.get("/me", headers={"Authorization": f"Bearer {token}"})


async def assert_refused_untouched(
    op: FakeOP, client: AsyncTestClient[Litestar], token: str, detail: str = ID_TOKEN_DETAIL
) -> None:
    """401 ``invalid_token``; the handler did not run; the OP saw nothing; no cookie set."""
    before, runs = op.oracle.counts(), list(handled)
    response = await get_me(client, token)

    assert response.status_code == 401
    assert response.json()["code"] == "access_token_invalid"
    assert response.json()["detail"] == detail
    challenge = response.headers["www-authenticate"]
    assert (
        challenge == f'Bearer realm="{REALM}", error="invalid_token", error_description="{detail}"'
    )
    assert token not in response.text
    assert handled == runs
    assert op.oracle.counts() == before  # no token, UserInfo or key request
    assert "set-cookie" not in response.headers


# -- refused -----------------------------------------------------------------------------------


async def test_an_id_token_with_nonce_and_at_hash_naming_the_api_is_refused(
    fake_op: FakeOP,
) -> None:
    token = op_id_token(fake_op)
    async with api(fake_op) as client:
        await assert_refused_untouched(fake_op, client, token)


async def test_a_lemonldap_style_id_token_is_refused_on_a_route_requiring_no_scope(
    fake_op: FakeOP,
) -> None:
    # typ JWT, the API among the audiences, at_hash, no nonce, no scope required anywhere.
    now = fake_op.now()
    token = signed(
        fake_op, azp=CLIENT, auth_time=now, acr="loa-2", at_hash="77QmUPtjPfzWtF2AnpK9RQ"
    )
    async with api(fake_op) as client:
        await assert_refused_untouched(fake_op, client, token)


async def test_a_keycloak_id_token_is_refused_and_its_access_token_accepted(
    fake_op: FakeOP,
) -> None:
    id_token = signed(fake_op, typ="ID", azp=CLIENT, acr="1", sid="s-1", jti="j-1")
    access = signed(fake_op, typ="Bearer", azp=CLIENT, scope="openid", nonce="n-1", sid="s-1")
    async with api(fake_op) as client:
        await assert_refused_untouched(fake_op, client, id_token)
        response = await get_me(client, access)

    assert response.json() == {"sub": "alice", "client_id": CLIENT}
    assert handled == ["alice"]


async def test_a_cognito_id_token_is_refused(fake_op: FakeOP) -> None:
    token = signed(fake_op, token_use="id", auth_time=fake_op.now(), **{"cognito:username": "a"})
    async with api(fake_op, audience=(CLIENT,)) as client:
        await assert_refused_untouched(fake_op, client, token)


async def test_an_id_token_on_a_policy_requiring_a_scope_is_a_401_not_a_403(
    fake_op: FakeOP,
) -> None:
    token = op_id_token(fake_op)
    async with api(fake_op, required_scopes=("orders:read",)) as client:
        await assert_refused_untouched(fake_op, client, token)


async def test_with_require_rfc9068_a_jwt_typed_token_without_client_id_or_jti_is_refused(
    fake_op: FakeOP,
) -> None:
    token = signed(fake_op, aud=API, scope="orders:read")
    detail = "The access token's type (typ) is not accepted."
    async with api(fake_op, require_rfc9068=True) as client:
        await assert_refused_untouched(fake_op, client, token, detail)


# -- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("require_rfc9068", [False, True], ids=["default", "require_rfc9068"])
async def test_an_rfc9068_access_token_is_accepted(fake_op: FakeOP, require_rfc9068: bool) -> None:
    token = fake_op.minter.mint_access_token(subject="alice", audience=API, client_id=CLIENT)
    async with api(fake_op, require_rfc9068=require_rfc9068) as client:
        response = await get_me(client, token)

    assert (response.status_code, handled) == (200, ["alice"])


async def test_a_scalekit_shaped_access_token_labelled_jwt_is_accepted(fake_op: FakeOP) -> None:
    token = signed(
        fake_op,
        aud=[API],
        client_id="skc_1",
        oid="org_1",
        sid="ses_1",
        jti="tkn_1",
        nbf=fake_op.now(),
        roles=["member"],
        permissions=[],
        scope="openid profile",
    )
    async with api(fake_op) as client:
        response = await get_me(client, token)

    assert response.json() == {"sub": "alice", "client_id": "skc_1"}


# -- the named relaxation ----------------------------------------------------------------------


async def test_ignored_id_token_claims_is_logged_at_startup_and_relaxes_only_its_claims(
    fake_op: FakeOP,
) -> None:
    with capture_logs() as logs:
        async with api(fake_op, ignored_id_token_claims=("nonce",)) as client:
            accepted = await get_me(client, signed(fake_op, nonce="n-1"))
            await assert_refused_untouched(fake_op, client, signed(fake_op, nonce="n", c_hash="c"))

    assert accepted.status_code == 200
    relaxed = [event for event in logs if event["event"] == "rpkit.startup.check_relaxed"]
    assert [event["log_level"] for event in relaxed] == ["warning"]
    assert "ignored_id_token_claims=['nonce']" in relaxed[0]["setting"]
    assert "n-1" not in json.dumps(logs, default=str)
