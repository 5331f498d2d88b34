"""What a newcomer to machine-to-machine tokens meets first: ``scopes="orders:read"`` (one string
where a list belongs) used to ask the provider for the scopes ``:``, ``a``, ``d``, ``e``...; an
``audience`` that is not a string was a bare ``TypeError``; and outside ``RPKitPlugin`` a failed
token request in a route is Litestar's 500 unless the handler the guide shows is registered.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, get
from litestar.testing import AsyncTestClient

from rpkit import ClientCredentials, ClientCredentialsAuth, RelyingParty
from rpkit.errors import ClientCredentialsError, ClientCredentialsRefusedError, ConfigurationError
from rpkit.litestar.responses import error_response
from rpkit.testing import Canned, FakeOP

pytestmark = pytest.mark.authz

ORDERS_API = "https://orders.rpkit.test/api"


def machine_for(op: FakeOP, http: httpx.AsyncClient) -> ClientCredentials:
    return ClientCredentials(RelyingParty([op.provider_config(id="okta")], http=http), http)


@pytest.mark.parametrize("scopes", ["orders:read", b"orders:read"])
async def test_scopes_given_as_one_string_are_refused_before_any_request(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, scopes: Any
) -> None:
    machine = machine_for(fake_op, fake_op_http)

    with pytest.raises(ConfigurationError, match="list of scope tokens"):
        await machine.token("okta", scopes=scopes)
    with pytest.raises(ConfigurationError, match="list of scope tokens"):
        ClientCredentialsAuth(machine, "okta", audience=ORDERS_API, scopes=scopes)

    assert fake_op.oracle.count("token") == 0
    token = await machine.token("okta", scopes=["orders:read"])  # the list form still works
    assert token.scope == ("orders:read",)
    assert fake_op.oracle.count("token") == 1


@pytest.mark.parametrize(
    "arguments",
    [
        {"audience": 123},
        {"resource": 42},
        {"scopes": ["orders:read", 7]},
        {"scopes": [["orders:read"]]},
    ],
)
async def test_values_of_the_wrong_type_are_a_configuration_error(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, arguments: dict[str, Any]
) -> None:
    machine = machine_for(fake_op, fake_op_http)

    with pytest.raises(ConfigurationError):
        await machine.token("okta", **arguments)

    assert fake_op.oracle.count("token") == 0


async def test_without_the_plugin_the_guides_handler_answers_503(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient
) -> None:
    """The handler of the guide's "A service without logins": problem details for API clients,
    rpkit's page for browsers, and the refusal is not retried within ``refusal_ttl``."""
    fake_op.misbehave.respond = {"token": Canned.json({"error": "invalid_client"}, status=401)}
    machine = machine_for(fake_op, fake_op_http)

    @get("/orders-summary")
    async def summary() -> str:
        await machine.token("okta", audience=ORDERS_API, scopes=["orders:read"])
        return "never"

    def machine_token_failed(
        request: Request[Any, Any, Any], exc: ClientCredentialsError
    ) -> Response[Any]:
        return error_response(request, exc, error_page=None)

    bare = Litestar([summary])
    handled = Litestar([summary], exception_handlers={ClientCredentialsError: machine_token_failed})
    async with AsyncTestClient(bare) as client:
        unhandled = await client.get("/orders-summary")
    async with AsyncTestClient(handled) as client:
        api = await client.get("/orders-summary", headers={"accept": "*/*"})
        page = await client.get("/orders-summary", headers={"accept": "text/html"})

    assert unhandled.status_code == 500  # what the guide now warns about
    assert api.status_code == 503
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["code"] == ClientCredentialsRefusedError.code
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert fake_op.oracle.count("token") == 1  # the refusal was remembered, not retried
