"""examples/multi_idp: the chooser offers four presets, each signs in against its fake on its
own callback, and each signs out back to the app."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.examples.conftest import APP_URL, load_example, sign_in

example = load_example("multi_idp/app.py")


def app_and_fakes():
    fakes = example.preset_fakes(APP_URL)
    providers = [(example.provider_of(fake, APP_URL), title) for fake, title in fakes]
    first, *others = [fake for fake, _ in fakes]
    app = example.create_app(providers, http_transport=first.transport(*others))
    return app, {pid: fake for (pid, _, _), (fake, _) in zip(example.PRESETS, fakes, strict=True)}


async def test_the_chooser_lists_every_preset():
    app, _ = app_and_fakes()
    async with AsyncTestClient(app, base_url=APP_URL) as client:
        chooser = await client.get("/")
    assert re.findall(r'id="login-(\w+)"', chooser.text) == [p for p, _, _ in example.PRESETS]


async def follow_logout(client: AsyncTestClient, fake, csrf: str):
    """POST the logout; for a provider with an end-session endpoint, let its fake redirect the
    browser back. Returns the app's final answer."""
    out = await client.post("/auth/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    location = out.headers["location"]
    if location.startswith(APP_URL) or location.startswith("/"):
        return location
    async with httpx.AsyncClient(transport=fake.transport()) as browser_at_op:
        at_op = await browser_at_op.get(location, follow_redirects=False)
    assert at_op.status_code in (302, 303), at_op.text
    back = at_op.headers["location"]
    assert back.startswith(f"{APP_URL}/auth/logout/callback"), back
    returned = await client.get(back, follow_redirects=False)
    return returned.headers.get("location", urlsplit(back).path)


@pytest.mark.parametrize("pid", ["github", "entra", "google", "keycloak"])
async def test_each_preset_signs_in_and_signs_out_back_to_the_app(pid):
    app, fakes = app_and_fakes()
    fake = fakes[pid]
    async with AsyncTestClient(app, base_url=APP_URL) as client:
        signed_in = await sign_in(client, fake, f"/auth/login/{pid}?return_to=/me")
        assert signed_in.status_code == 303, signed_in.text
        me = await client.get("/me")
        assert me.headers["cache-control"] == "no-store, private"
        who = re.search(r'id="who">([^<]+)<', me.text)
        assert who is not None
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', me.text)
        assert csrf is not None

        landed = await follow_logout(client, fake, csrf[1])
        after = await client.get("/me", headers={"Accept": "text/html"}, follow_redirects=False)

    assert landed in ("/", f"{APP_URL}/")
    assert after.status_code == 303  # signed out: the guard sends the browser to the chooser
    assert after.headers["location"].startswith("/?return_to=")


async def test_a_signed_out_browser_is_sent_to_the_chooser():
    app, _ = app_and_fakes()
    async with AsyncTestClient(app, base_url=APP_URL) as client:
        refused = await client.get("/me", headers={"Accept": "text/html"}, follow_redirects=False)

    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/?return_to=")
