"""Pages that show who is signed in are never cacheable: Back after logout must not show them."""

from __future__ import annotations

from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient

from rpkit.client import Identity
from rpkit.testing import FakeOP

from .conftest import BASE, Browser, make_app


@get("/hello")
async def hello(rpkit_user: NamedDependency[Identity | None]) -> str:
    return f"hello {rpkit_user.subject if rpkit_user else 'stranger'}"


@get("/cached-on-purpose")
async def cached(rpkit_user: NamedDependency[Identity | None]) -> Response[str]:
    return Response("x", headers={"Cache-Control": "private, max-age=5"})


@get("/public")
async def public() -> str:
    return "same for everyone"


async def open_app(fake_op: FakeOP) -> Any:
    app, _ = make_app(fake_op)
    app.register(hello)
    app.register(cached)
    app.register(public)
    return AsyncTestClient(app, base_url=BASE)


async def test_a_page_naming_the_signed_in_user_is_private_and_not_stored(fake_op: FakeOP):
    async with await open_app(fake_op) as client:
        await Browser(client, fake_op).login()
        page = await client.get("/hello")

    assert page.text == "hello alice"
    assert page.headers["cache-control"] == "private, no-store"
    assert "Cookie" in page.headers.get_list("vary")


async def test_signed_out_and_session_free_pages_keep_their_caching(fake_op: FakeOP):
    async with await open_app(fake_op) as client:
        signed_out = await client.get("/hello")
        await Browser(client, fake_op).login()
        public_page = await client.get("/public")
        own = await client.get("/cached-on-purpose")

    assert signed_out.text == "hello stranger"
    assert "cache-control" not in signed_out.headers
    assert "cache-control" not in public_page.headers
    assert own.headers["cache-control"] == "private, max-age=5"  # the handler's own choice
