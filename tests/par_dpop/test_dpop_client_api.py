"""The two halves of rpkit's DPoP together: a token bound at login (``dpop=True``) sent by
:class:`~rpkit.dpop.DPoPAuth` to an API that rpkit protects (``OIDCBearerAuth(dpop=...)``,
RFC 9449 §7): accepted with a fresh proof, refused without one or with a replayed one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get
from litestar.testing import AsyncTestClient

from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.client import LoginResult
from rpkit.dpop import DPoPAuth
from rpkit.litestar.bearer import OIDCBearerAuth
from rpkit.testing import DEFAULT_REDIRECT_URI, FakeClient, FakeOP
from tests.par_dpop.conftest import party

pytestmark = pytest.mark.par_dpop

API = "https://orders.rpkit.test"
served: list[str] = []


@get("/orders")
async def orders(request: Request[Any, AccessToken, Any]) -> dict[str, Any]:
    served.append(request.auth.sub)
    return {"sub": request.auth.sub, "jkt": request.auth.jkt}


@asynccontextmanager
async def orders_api(op: FakeOP) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API, DPoP required, trusting ``op``'s tokens minted for it."""
    http = httpx.AsyncClient(transport=op.transport(), timeout=5.0)
    policy = AccessTokenPolicy(issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(API,))
    auth = OIDCBearerAuth(policies=[policy], http=http, dpop="required")
    app = Litestar([orders], on_app_init=[auth.on_app_init])
    async with http, AsyncTestClient(app, base_url=API) as client:
        yield client


async def bound_login() -> tuple[FakeOP, LoginResult]:
    op = FakeOP()
    op.clients = {}
    op.register_client(FakeClient(redirect_uris=(DEFAULT_REDIRECT_URI,), access_token_audience=API))
    result = await party(op, dpop=True).login()
    assert result.dpop_key is not None
    return op, result


@pytest.fixture(autouse=True)
def nothing_served() -> None:
    served.clear()


async def test_an_rpkit_api_accepts_the_bound_token_with_a_fresh_proof_from_dpop_auth():
    op, result = await bound_login()
    auth = DPoPAuth(result.tokens.access_token, result.dpop_key)  # type: ignore[arg-type]

    async with orders_api(op) as api:
        answers = [await api.get("/orders?page=1", auth=auth) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]  # a new proof each time
    assert answers[0].json() == {"sub": "alice", "jkt": result.dpop_key.thumbprint}  # type: ignore[union-attr]
    assert served == ["alice", "alice"]


async def test_the_bound_token_without_a_proof_is_refused():
    op, result = await bound_login()
    token = result.tokens.access_token

    async with orders_api(op) as api:
        as_bearer = await api.get("/orders", headers={"Authorization": f"Bearer {token}"})
        no_proof = await api.get("/orders", headers={"Authorization": f"DPoP {token}"})

    assert as_bearer.status_code == 401
    assert no_proof.status_code == 401
    assert as_bearer.headers["www-authenticate"].startswith("DPoP")
    assert "invalid_" in no_proof.headers["www-authenticate"]
    assert served == []


async def test_a_replayed_proof_is_refused_and_another_key_cannot_use_the_token():
    op, result = await bound_login()
    token = result.tokens.access_token
    key = result.dpop_key
    assert key is not None
    proof = key.proof("GET", f"{API}/orders", access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    thief = DPoPAuth(token, type(key).generate())  # a valid proof, but of another key

    async with orders_api(op) as api:
        first = await api.get("/orders", headers=headers)
        replayed = await api.get("/orders", headers=headers)
        stolen = await api.get("/orders", auth=thief)

    assert first.status_code == 200
    assert replayed.status_code == 401
    assert stolen.status_code == 401
    assert served == ["alice"]
