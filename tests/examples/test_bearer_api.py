"""examples/bearer_api: tokens of both issuers are accepted; scope and audience are enforced."""

from __future__ import annotations

import httpx
from litestar.testing import AsyncTestClient

from rpkit.testing import FakeClient, FakeOP
from tests.examples.conftest import load_example

example = load_example("bearer_api/app.py")


def _ops() -> tuple[FakeOP, FakeOP, FakeClient]:
    client = FakeClient(client_id="orders-cli", access_token_audience=example.API_AUDIENCE)
    return FakeOP("https://a.op.test", clients=[client]), FakeOP("https://b.op.test"), client


async def test_tokens_from_either_issuer_reach_the_api_and_scopes_are_enforced():
    a, b, client = _ops()
    b.register_client(client)
    async with httpx.AsyncClient(transport=a.transport(b)) as http:
        app = example.create_app(
            [(a.issuer, a.endpoints["jwks"]), (b.issuer, b.endpoints["jwks"])], http=http
        )
        from_a = a.issue_access_token(client, a.current_user, "openid orders:read")
        from_b = b.issue_access_token(client, b.current_user, "openid orders:read")
        no_scope = b.issue_access_token(client, b.current_user, "openid")
        async with AsyncTestClient(app) as api:
            answers = [
                await api.get("/orders", headers={"Authorization": f"Bearer {token}"})
                for token in (from_a, from_b, no_scope)
            ]
            anonymous = await api.get("/orders")

    assert [r.status_code for r in answers] == [200, 200, 403]
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith('Bearer realm="orders"')


async def test_a_token_for_another_audience_is_refused():
    a, _, _ = _ops()
    other = a.register_client(FakeClient(client_id="someone-else"))
    async with httpx.AsyncClient(transport=a.transport()) as http:
        app = example.create_app([(a.issuer, a.endpoints["jwks"])], http=http)
        token = a.issue_access_token(other, a.current_user, "openid orders:read")
        async with AsyncTestClient(app) as api:
            refused = await api.get("/whoami", headers={"Authorization": f"Bearer {token}"})

    assert refused.status_code == 401
    assert token not in refused.text
