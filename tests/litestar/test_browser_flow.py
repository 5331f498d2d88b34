"""A person signs in, uses the app, and signs out, through rpkit's Litestar routes."""

from __future__ import annotations

from tests.litestar.conftest import Browser


async def test_full_login_lands_on_return_to_with_a_session(browser: Browser):
    started = await browser.start_login(return_to="/me")
    callback = await browser.op.approve(started.headers["location"])
    landed = await browser.deliver(callback)

    assert started.status_code == 303
    assert landed.status_code == 303
    assert landed.headers["location"] == "/me"
    assert landed.headers["cache-control"].startswith("no-store")
    assert landed.headers["referrer-policy"] == "no-referrer"
    me = await browser.client.get("/me")
    assert me.json() == {"subject": "alice"}
