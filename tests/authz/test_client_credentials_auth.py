"""``ClientCredentialsAuth`` on the application's own ``httpx.AsyncClient``: the token goes on
every request to the API, a 401 is retried once with a fresh token and then given up, a body is
sent again unchanged, nothing follows a redirect to another origin, and plain ``http`` to a
remote host is refused before anything is sent."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rpkit import RelyingParty
from rpkit.client_credentials import ClientCredentials, ClientCredentialsAuth
from rpkit.errors import ClientCredentialsRefusedError, ConfigurationError
from rpkit.testing import Canned, FakeOP

pytestmark = pytest.mark.authz

API = "https://orders.example"
AUDIENCE = "https://orders.example/api"


@dataclass
class OrdersAPI:
    """A resource server that accepts the fake OP's tokens for its audience, and can be told to
    refuse the next N requests or every request with a 401."""

    op: FakeOP
    refuse_next: int = 0
    refuse_all: bool = False
    seen: list[httpx.Request] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    """As each request arrived (a retried request is the same object, with a new header)."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        self.authorizations.append(request.headers.get("authorization", ""))
        if request.url.host != "orders.example":
            return httpx.Response(401 if self.refuse_all else 200, json={"host": request.url.host})
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "https://cdn.example/file"})
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        claims = self.op.verify_own_token(token) if scheme == "Bearer" else None
        if self.refuse_all or self.refuse_next > 0 or not claims or claims["aud"] != AUDIENCE:
            self.refuse_next -= 1
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return httpx.Response(
            200, json={"client": claims["client_id"], "body": request.content.decode()}
        )

    def tokens(self) -> list[str]:
        return self.authorizations


@pytest.fixture
def api(fake_op: FakeOP) -> OrdersAPI:
    return OrdersAPI(fake_op)


@pytest.fixture
def machine(fake_op: FakeOP, fake_op_http: httpx.AsyncClient) -> ClientCredentials:
    rp = RelyingParty([fake_op.provider_config()], http=fake_op_http)
    return ClientCredentials(rp, fake_op_http)


@pytest.fixture
def auth(machine: ClientCredentials) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(machine, "fake", audience=AUDIENCE, scopes=["orders:read"])


@pytest.fixture
def app_http(api: OrdersAPI, auth: ClientCredentialsAuth) -> httpx.AsyncClient:
    """The application's own client for its API, with the auth set client-wide."""
    return httpx.AsyncClient(transport=httpx.MockTransport(api.handle), auth=auth)


async def test_every_request_carries_the_cached_bearer_token(
    fake_op: FakeOP, api: OrdersAPI, app_http: httpx.AsyncClient
):
    first = await app_http.get(f"{API}/orders")
    second = await app_http.get(f"{API}/orders/1")

    assert first.status_code == second.status_code == 200
    assert first.json()["client"] == fake_op.provider_config().client_id
    assert api.tokens()[0] == api.tokens()[1]
    assert api.tokens()[0].startswith("Bearer ey")
    assert fake_op.oracle.count("token") == 1
    assert fake_op.oracle.last("token").param("audience") == AUDIENCE


async def test_per_request_auth_on_a_client_without_one(
    fake_op: FakeOP, api: OrdersAPI, auth: ClientCredentialsAuth
):
    plain = httpx.AsyncClient(transport=httpx.MockTransport(api.handle))

    anonymous = await plain.get(f"{API}/orders")
    authorized = await plain.get(f"{API}/orders", auth=auth)

    assert (anonymous.status_code, authorized.status_code) == (401, 200)
    assert fake_op.oracle.count("token") == 1


async def test_a_401_is_retried_once_with_a_fresh_token_and_the_same_body(
    fake_op: FakeOP, api: OrdersAPI, app_http: httpx.AsyncClient, machine: ClientCredentials
):
    await app_http.get(f"{API}/orders")
    api.refuse_next = 1

    response = await app_http.post(f"{API}/orders", content=b'{"item": 7}')

    assert response.status_code == 200
    assert response.json()["body"] == '{"item": 7}'
    stale, fresh = api.tokens()[1:]
    assert stale == api.tokens()[0]
    assert fresh != stale
    assert machine.cached("fake", audience=AUDIENCE, scopes=["orders:read"]) is not None
    assert fake_op.oracle.count("token") == 2


async def test_a_second_401_is_given_up_not_looped(
    fake_op: FakeOP, api: OrdersAPI, app_http: httpx.AsyncClient
):
    api.refuse_all = True

    response = await app_http.get(f"{API}/orders")

    assert response.status_code == 401
    assert len(api.seen) == 2
    assert api.tokens()[0] != api.tokens()[1]
    assert fake_op.oracle.count("token") == 2


async def test_the_refused_token_is_never_sent_again_when_the_op_hands_it_out_again(
    fake_op: FakeOP, api: OrdersAPI, app_http: httpx.AsyncClient
):
    fake_op.misbehave.token_fields = {"access_token": "the-same-opaque-token"}

    response = await app_http.get(f"{API}/orders")

    assert response.status_code == 401
    assert len(api.seen) == 1
    assert fake_op.oracle.count("token") == 2


async def test_a_refused_token_request_raises_and_sends_nothing_to_the_api(
    fake_op: FakeOP, api: OrdersAPI, app_http: httpx.AsyncClient
):
    fake_op.misbehave.respond = {"token": Canned.json({"error": "invalid_client"}, status=401)}

    with pytest.raises(ClientCredentialsRefusedError):
        await app_http.get(f"{API}/orders")
    with pytest.raises(ClientCredentialsRefusedError):
        await app_http.get(f"{API}/orders")

    assert api.seen == []
    assert fake_op.oracle.count("token") == 1  # the refusal is remembered, not retried


async def test_a_redirect_to_another_origin_carries_no_token_and_its_401_is_not_retried(
    fake_op: FakeOP, api: OrdersAPI, auth: ClientCredentialsAuth
):
    following = httpx.AsyncClient(
        transport=httpx.MockTransport(api.handle), auth=auth, follow_redirects=True
    )
    api.refuse_all = False

    response = await following.get(f"{API}/moved")
    api.refuse_all = True
    refused_elsewhere = await following.get(f"{API}/moved")

    assert response.status_code == 200
    assert response.json() == {"host": "cdn.example"}
    assert api.authorizations[1] == ""
    assert refused_elsewhere.status_code == 401
    assert len(api.seen) == 4  # two hops each: no retry after the other origin's 401
    assert fake_op.oracle.count("token") == 1


async def test_plain_http_to_a_remote_host_is_refused_before_anything_is_sent(
    fake_op: FakeOP, api: OrdersAPI, machine: ClientCredentials
):
    strict = ClientCredentialsAuth(machine, "fake", audience=AUDIENCE)
    relaxed = ClientCredentialsAuth(machine, "fake", audience=AUDIENCE, allow_insecure_http=True)
    http = httpx.AsyncClient(transport=httpx.MockTransport(api.handle))

    with pytest.raises(ConfigurationError, match="over http://"):
        await http.get("http://orders.example/orders", auth=strict)
    loopback = await http.get("http://127.0.0.1:8080/orders", auth=strict)
    internal = await http.get("http://orders.example/orders", auth=relaxed)

    assert fake_op.oracle.count("token") == 1
    assert len(api.seen) == 2
    assert loopback.status_code == 200  # the stub's other origin
    assert internal.status_code == 200


@pytest.mark.parametrize(
    "request_args",
    [{"scopes": ["orders read"]}, {"resource": "orders"}, {"audience": "a b"}],
    ids=repr,
)
def test_a_malformed_request_is_refused_when_the_auth_is_built(
    fake_op: FakeOP, machine: ClientCredentials, request_args: dict[str, Any]
):
    with pytest.raises(ConfigurationError):
        ClientCredentialsAuth(machine, "fake", **request_args)

    assert fake_op.oracle.count() == 0


def test_a_sync_client_is_refused(auth: ClientCredentialsAuth):
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)), auth=auth) as c,
        pytest.raises(TypeError, match="AsyncClient"),
    ):
        c.get(f"{API}/orders")


async def test_an_expired_token_is_replaced_before_the_request_leaves(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, api: OrdersAPI
):
    now = [float(int(time.time()))]
    rp = RelyingParty([fake_op.provider_config()], http=fake_op_http, clock=lambda: now[0])
    auth = ClientCredentialsAuth(ClientCredentials(rp, fake_op_http), "fake", audience=AUDIENCE)
    http = httpx.AsyncClient(transport=httpx.MockTransport(api.handle), auth=auth)
    fake_op.access_token_lifetime = 600

    await http.get(f"{API}/orders")
    now[0] += 600 - 59
    await http.get(f"{API}/orders")

    assert api.tokens()[0] != api.tokens()[1]
    assert len(api.seen) == 2  # renewed beforehand: no 401 round trip
    assert fake_op.oracle.count("token") == 2
