"""examples/multi_idp: the chooser offers both providers and each signs in on its own callback."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from rpkit.testing import FakeClient, FakeOP
from tests.examples.conftest import APP_URL, load_example, sign_in

example = load_example("multi_idp/app.py")


def _op(pid: str) -> FakeOP:
    client = FakeClient(client_id=f"{pid}-app", redirect_uris=(f"{APP_URL}/auth/callback/{pid}",))
    return FakeOP(f"https://{pid}.op.test", clients=[client])


async def test_the_chooser_lists_both_providers_and_each_signs_in():
    acme, globex = _op("acme"), _op("globex")
    app = example.create_app(
        [(acme.provider_config("acme"), "Acme"), (globex.provider_config("globex"), "Globex")],
        http_transport=acme.transport(globex),
    )
    async with AsyncTestClient(app, base_url=APP_URL) as client:
        chooser = await client.get("/")
        signed_in = await sign_in(client, globex, "/auth/login/globex?return_to=/me")
        me = await client.get("/me")

    assert re.findall(r'id="login-(\w+)"', chooser.text) == ["acme", "globex"]
    assert signed_in.headers["location"] == "/me"
    assert re.search(r"id=\"who\">Globex: \S+@", me.text)


async def test_a_signed_out_browser_is_sent_to_the_chooser():
    acme, globex = _op("acme"), _op("globex")
    app = example.create_app(
        [(acme.provider_config("acme"), "Acme"), (globex.provider_config("globex"), "Globex")],
        http_transport=acme.transport(globex),
    )
    async with AsyncTestClient(app, base_url=APP_URL) as client:
        refused = await client.get("/me", headers={"Accept": "text/html"}, follow_redirects=False)

    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/?return_to=")
