"""Who gets HTML and who gets problem details, what a bookmarked callback says, and rpkit's own
error page."""

from __future__ import annotations

import pytest
from litestar import get
from litestar.testing import AsyncTestClient

from rpkit.litestar import requires_login
from rpkit.testing import FakeOP

from .conftest import BASE, BROWSER_ACCEPT, Browser, make_app


@get("/private", guards=[requires_login()])
async def private() -> str:
    return "secret"


def app_for(fake_op: FakeOP, **config: object) -> AsyncTestClient:
    app, _ = make_app(fake_op, **config)
    app.register(private)
    return AsyncTestClient(app, base_url=BASE)


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", "text/html;q=0.1, application/json", "text/plain"],
)
async def test_api_clients_get_problem_details(fake_op: FakeOP, accept: str | None):
    headers = {"accept": accept} if accept is not None else {}
    async with app_for(fake_op) as client:
        if accept is None:
            client.headers.pop("accept", None)
        refused = await client.get("/private", headers=headers, follow_redirects=False)

    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "login_required"


@pytest.mark.parametrize(
    "accept", [BROWSER_ACCEPT, "text/html", "application/json;q=0.5, text/html;q=0.9"]
)
async def test_browsers_get_a_page_or_the_login(fake_op: FakeOP, accept: str):
    async with app_for(fake_op) as client:
        refused = await client.get("/private", headers={"accept": accept}, follow_redirects=False)

    # one provider: the browser is sent to its login instead of a 401 page
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/auth/login/fake")


async def test_a_bookmarked_callback_says_no_sign_in_is_in_progress(fake_op: FakeOP):
    async with app_for(fake_op) as client:
        browser = Browser(client, fake_op)
        client.headers["accept"] = BROWSER_ACCEPT
        started = await browser.start_login()
        callback = await fake_op.approve(started.headers["location"])
        assert (await browser.deliver(callback)).status_code == 303
        client.cookies.clear()  # signed out (another browser, or the session ended)
        # the same callback URL, later, without iss (as bookmarked by hand)
        bookmarked = callback.location.split("&iss=")[0].replace("iss=", "x=")
        again = await client.get(bookmarked, follow_redirects=False)

    assert again.status_code == 400
    assert "invalid_state" in again.text
    assert "No sign-in is in progress" in again.text
    assert fake_op.oracle.count("token") == 1


@pytest.mark.parametrize("accept", [BROWSER_ACCEPT, "*/*"])
async def test_a_callback_reloaded_while_signed_in_lands_on_the_signed_in_page(
    fake_op: FakeOP, accept: str
):
    """The Back button or a reload after the login finished: the state is spent, nothing is
    exchanged again, and the signed-in browser goes where signed-in users go."""
    async with app_for(fake_op) as client:
        browser = Browser(client, fake_op)
        client.headers["accept"] = accept
        started = await browser.start_login()
        callback = await fake_op.approve(started.headers["location"])
        landed = await browser.deliver(callback)
        cookies = dict(client.cookies)
        reloaded = await browser.deliver(callback)
        me = await client.get("/me", headers={"accept": "application/json"})

    assert landed.status_code == 303
    assert reloaded.status_code == 303
    assert reloaded.headers["location"] == "/"
    assert "set-cookie" not in reloaded.headers  # the session is untouched
    assert dict(client.cookies) == cookies
    assert me.json()["subject"] is not None
    assert fake_op.oracle.count("token") == 1


@pytest.mark.parametrize(
    "query",
    [
        {"iss": "https://op.rpkit.test"},  # no state at all
        {"code": "x", "state": "forged", "iss": "https://op.rpkit.test"},  # never issued
        {"error": "access_denied", "state": "A" * 43},  # an error response
    ],
    ids=["no-state", "forged-state", "error-response"],
)
async def test_a_signed_in_browser_still_gets_invalid_state_for_a_callback_rpkit_never_issued(
    fake_op: FakeOP, query: dict[str, str]
):
    """Only a spent state rpkit issued (a reload) sends a signed-in browser home."""
    async with app_for(fake_op) as client:
        browser = Browser(client, fake_op)
        client.headers["accept"] = "application/json"
        await browser.login()
        response = await client.get("/auth/callback/fake", params=query, follow_redirects=False)

    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_state", "authorization_error"}
    assert fake_op.oracle.count("token") == 1


async def test_the_error_page_is_readable_on_a_phone_and_never_links_to_a_guarded_page(
    fake_op: FakeOP,
):
    async with app_for(fake_op, login_page="/choose") as client:
        page = await client.get("/auth/callback/fake?state=x", headers={"accept": BROWSER_ACCEPT})

    assert page.status_code == 400
    assert "<meta name='viewport'" in page.text
    assert "<style>" in page.text
    assert "href='/choose'" in page.text
