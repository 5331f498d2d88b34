"""Client credentials in a Litestar app with ``RPKitPlugin``: a route calls another API with a
token of the plugin's provider over the app's own httpx client, the plugin's relying party,
shared client and store serve the grant, and a refused client answers 503 problem details with
its code, once, without hammering the provider."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get
from litestar.testing import AsyncTestClient

from rpkit import ClientCredentials, ClientCredentialsAuth
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import Canned, FakeOP

pytestmark = pytest.mark.authz

ORDERS_API = "https://orders.example/api"
SECRET = "test-secret-" + "x" * 32


def orders_auth_of(app: Litestar) -> ClientCredentialsAuth:
    """Built on first use: the plugin's relying party, shared client and store exist once the
    app has started."""
    auth: ClientCredentialsAuth | None = app.state.get("orders_auth")
    if auth is None:
        runtime = app.plugins.get(RPKitPlugin).runtime
        machine = ClientCredentials(runtime.rp, runtime.http, runtime.rp.store)
        auth = ClientCredentialsAuth(machine, "fake", audience=ORDERS_API, scopes=["orders:read"])
        app.state.orders_auth = auth
    return auth


@get("/orders-summary")
async def orders_summary(request: Request[Any, Any, Any]) -> dict[str, int]:
    orders: httpx.AsyncClient = request.app.state.orders_api
    response = await orders.get("/orders", auth=orders_auth_of(request.app))
    response.raise_for_status()
    return {"orders": len(response.json())}


def orders_api(op: FakeOP) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        claims = op.verify_own_token(token)
        if claims is None or claims["aud"] != ORDERS_API:
            return httpx.Response(401)
        return httpx.Response(200, json=[{"id": 1}, {"id": 2}])

    return httpx.MockTransport(answer)


@pytest.fixture
def app(fake_op: FakeOP) -> Litestar:
    config = RPKitConfig(
        providers=[fake_op.provider_config()], secret=SECRET, base_url="https://app.example"
    )
    plugin = RPKitPlugin(config, http_transport=fake_op.transport())
    app = Litestar([orders_summary], plugins=[plugin])
    app.state.orders_api = httpx.AsyncClient(base_url=ORDERS_API, transport=orders_api(fake_op))
    return app


async def test_a_route_calls_another_api_with_the_plugins_provider(fake_op: FakeOP, app: Litestar):
    async with AsyncTestClient(app, base_url="https://app.example") as client:
        first = await client.get("/orders-summary")
        second = await client.get("/orders-summary")

    assert first.json() == second.json() == {"orders": 2}
    assert fake_op.oracle.count("token") == 1
    assert fake_op.oracle.last("token").param("audience") == ORDERS_API


async def test_a_refused_client_answers_503_problem_details_and_is_asked_once(
    fake_op: FakeOP, app: Litestar
):
    fake_op.misbehave.respond = {"token": Canned.json({"error": "invalid_client"}, status=401)}

    async with AsyncTestClient(app, base_url="https://app.example") as client:
        answers = [await client.get("/orders-summary") for _ in range(3)]

    assert [a.status_code for a in answers] == [503, 503, 503]
    assert answers[0].headers["content-type"] == "application/problem+json"
    assert answers[0].json()["code"] == "client_credentials_refused"
    assert "invalid_client" not in answers[0].text
    assert fake_op.oracle.count("token") == 1
