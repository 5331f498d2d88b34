"""Signing in, refreshing and signing out through rpkit's Litestar routes, as a browser does it,
and the failures people and APIs see on the way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Response
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException
from litestar.testing import AsyncTestClient

from rpkit.litestar import RPKitPlugin
from rpkit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_REDIRECT_URI,
    Canned,
    FakeOP,
    LogoutDefect,
)
from tests.litestar.conftest import BASE, Browser, make_app, set_cookies

OpenBrowser = Callable[..., Awaitable[Browser]]
SESSION_COOKIE = "__Host-rpkit_session"
LOGOUT_RETURN = f"{BASE}/auth/logout/callback"


async def signed_in_as(browser: Browser) -> str | None:
    response = await browser.client.get("/me")
    subject: str | None = response.json()["subject"]
    return subject


async def csrf_token(browser: Browser) -> str:
    token: str = (await browser.client.get("/session")).json()["csrf_token"]
    return token


def refreshes(op: FakeOP) -> int:
    return sum(r.param("grant_type") == "refresh_token" for r in op.oracle.of("token"))


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def endpoint_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def plugin_of(browser: Browser) -> RPKitPlugin:
    return browser.client.app.plugins.get(RPKitPlugin)


# -- login ------------------------------------------------------------------------------------
async def test_login_passes_login_hint_to_the_op_and_signs_in_that_user(browser: Browser):
    landed = await browser.login(login_hint="bob")

    assert landed.status_code == 303
    assert browser.op.oracle.last("authorize").param("login_hint") == "bob"
    assert await signed_in_as(browser) == "bob"


async def test_login_start_redirects_to_the_op_without_caching(browser: Browser):
    started = await browser.start_login(return_to="/me")

    assert started.status_code == 303
    assert endpoint_of(started.headers["location"]) == browser.op.endpoints["authorize"]
    assert started.headers["cache-control"].startswith("no-store")
    assert query(started.headers["location"])["redirect_uri"] == [DEFAULT_REDIRECT_URI]


async def test_login_with_an_unknown_provider_is_a_404_page_and_reaches_no_op(browser: Browser):
    before = len(browser.op.oracle)

    response = await browser.start_login("/auth/login/nope")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "does not exist" in response.text
    assert len(browser.op.oracle) == before
    assert "__Host-rpkit_txn" not in set_cookies(response)


async def test_callback_with_an_altered_state_is_a_400_page_without_session(browser: Browser):
    started = await browser.start_login(return_to="/me")
    with browser.op.misbehaving(callback_state="altered"):
        callback = await browser.op.approve(started.headers["location"])

    response = await browser.deliver(callback)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "invalid_state" in response.text
    assert browser.op.oracle.count("token") == 0
    assert SESSION_COOKIE not in set_cookies(response)
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(13)
@pytest.mark.parametrize(
    "knobs",
    [
        {"callback_state": "altered"},
        {"callback_state": "missing"},
        {"callback_iss": "wrong"},
    ],
    ids=["other-state", "no-state", "wrong-iss"],
)
async def test_unsolicited_access_denied_does_not_cancel_the_pending_login(
    browser: Browser, knobs: dict[str, str]
):
    started = await browser.start_login(return_to="/me")
    url = started.headers["location"]
    with browser.op.misbehaving(authorize_error="access_denied", **knobs):
        unsolicited = await browser.op.approve(url)
    assert unsolicited.get("error") == "access_denied"

    refused = await browser.deliver(unsolicited)

    assert refused.status_code == 400
    assert browser.op.oracle.count("token") == 0
    assert SESSION_COOKIE not in set_cookies(refused)
    assert await signed_in_as(browser) is None
    landed = await browser.deliver(await browser.op.approve(url))
    assert landed.status_code == 303
    assert landed.headers["location"] == "/me"
    assert await signed_in_as(browser) == "alice"


@pytest.mark.checklist(13)
async def test_hand_made_access_denied_with_an_unknown_state_leaves_the_login_alive(
    browser: Browser,
):
    started = await browser.start_login(return_to="/me")

    refused = await browser.client.get(
        DEFAULT_REDIRECT_URI,
        params={"error": "access_denied", "state": "made-up"},
        follow_redirects=False,
    )

    assert refused.status_code == 400
    assert browser.op.oracle.count("token") == 0
    assert SESSION_COOKIE not in set_cookies(refused)
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))
    assert landed.headers["location"] == "/me"
    assert await signed_in_as(browser) == "alice"


async def test_api_client_gets_problem_details_for_a_failing_callback(browser: Browser):
    started = await browser.start_login()
    with browser.op.misbehaving(callback_state="missing"):
        callback = await browser.op.approve(started.headers["location"])

    response = await browser.client.get(callback.location, headers={"Accept": "application/json"})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400
    assert problem["code"] == "invalid_state"
    assert problem["type"].endswith("/invalid_state")
    assert response.headers["cache-control"].startswith("no-store")
    assert browser.op.oracle.count("token") == 0


# -- logout -----------------------------------------------------------------------------------
async def test_logout_redirects_to_the_op_and_returns_to_the_stored_path(browser: Browser):
    await browser.login()
    token = await csrf_token(browser)

    response = await browser.client.post(
        "/auth/logout", follow_redirects=False, data={"csrf_token": token, "return_to": "/goodbye"}
    )

    assert response.status_code == 303
    location = response.headers["location"]
    assert endpoint_of(location) == browser.op.endpoints["end_session"]
    params = query(location)
    assert set(params) == {"id_token_hint", "post_logout_redirect_uri", "state", "client_id"}
    assert params["post_logout_redirect_uri"] == [LOGOUT_RETURN]
    assert params["client_id"] == [DEFAULT_CLIENT_ID]
    assert len(params["state"][0]) >= 32
    assert set_cookies(response)[SESSION_COOKIE].deletes
    assert await signed_in_as(browser) is None

    back = await browser.op.approve(location)
    assert browser.op.oracle.last("end_session").outcome == "ok"
    assert back.url == LOGOUT_RETURN
    landed = await browser.deliver(back)
    assert landed.status_code == 303
    assert landed.headers["location"] == "/goodbye"
    assert await signed_in_as(browser) is None


async def test_logout_accepts_the_csrf_token_in_a_header(browser: Browser):
    await browser.login()

    response = await browser.client.post(
        "/auth/logout", follow_redirects=False, headers={"X-CSRF-Token": await csrf_token(browser)}
    )

    assert response.status_code == 303
    assert endpoint_of(response.headers["location"]) == browser.op.endpoints["end_session"]
    assert await signed_in_as(browser) is None


async def test_logout_without_a_session_lands_on_the_default_page(browser: Browser):
    response = await browser.client.post(
        "/auth/logout", follow_redirects=False, data={"return_to": "/bye"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert browser.op.oracle.count("end_session") == 0


async def test_replayed_logout_return_shows_the_neutral_page(browser: Browser):
    await browser.login()
    response = await browser.client.post(
        "/auth/logout",
        follow_redirects=False,
        data={"csrf_token": await csrf_token(browser), "return_to": "/bye"},
    )
    back = await browser.op.approve(response.headers["location"])
    first = await browser.deliver(back)
    assert first.headers["location"] == "/bye"

    replayed = await browser.deliver(back)

    assert replayed.status_code == 200
    assert "location" not in replayed.headers
    assert "signed out" in replayed.text


# -- refresh ----------------------------------------------------------------------------------
def expire_access_token(browser: Browser, seconds: int = 200) -> None:
    """Move the session manager's clock past the access token's expiry; tokens issued from
    now on live an hour, so only the expired one needs refreshing."""
    sessions = plugin_of(browser).runtime.sessions
    sessions.clock = lambda: time.time() + seconds
    browser.op.access_token_lifetime = 3600


async def test_expired_access_token_is_refreshed_once_and_the_session_continues(
    browser: Browser,
):
    browser.op.access_token_lifetime = 120
    await browser.login()
    before = (await browser.client.get("/session")).json()["access_token"]
    assert refreshes(browser.op) == 0

    expire_access_token(browser)
    after = (await browser.client.get("/session")).json()["access_token"]

    assert refreshes(browser.op) == 1
    assert browser.op.oracle.last("token").outcome == "ok"
    assert after != before
    assert await signed_in_as(browser) == "alice"
    assert refreshes(browser.op) == 1


async def test_refresh_before_covering_the_lifetime_refreshes_on_the_next_request(
    open_browser: OpenBrowser, fake_op: FakeOP
):
    fake_op.access_token_lifetime = 30
    browser = await open_browser(refresh_before=60)
    await browser.login()
    fake_op.access_token_lifetime = 3600

    assert await signed_in_as(browser) == "alice"
    assert await signed_in_as(browser) == "alice"

    assert refreshes(fake_op) == 1


def concurrently(browser: Browser, *paths: str) -> list[httpx.Response]:
    """GET ``paths`` at the same time, in the app's own event loop: the test client itself
    sends one request at a time."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=browser.client.app)
        cookies = browser.client.cookies
        async with httpx.AsyncClient(transport=transport, base_url=BASE, cookies=cookies) as c:
            return list(await asyncio.gather(*(c.get(path) for path in paths)))

    return browser.client.blocking_portal.call(send)


async def test_concurrent_requests_share_one_refresh(browser: Browser):
    browser.op.access_token_lifetime = 120
    await browser.login()
    expire_access_token(browser)
    browser.op.misbehave.latency = {"token": 0.05}

    responses = concurrently(browser, "/me", "/me")

    assert [r.json()["subject"] for r in responses] == ["alice", "alice"]
    assert refreshes(browser.op) == 1
    assert all(r.outcome == "ok" for r in browser.op.oracle.of("token"))
    assert await signed_in_as(browser) == "alice"


async def test_refused_refresh_ends_the_session(browser: Browser):
    browser.op.access_token_lifetime = 120
    await browser.login()
    expire_access_token(browser)
    browser.op.misbehave.refresh_error = "invalid_grant"

    assert await signed_in_as(browser) is None

    assert refreshes(browser.op) == 1
    assert await signed_in_as(browser) is None
    assert (await browser.client.get("/session")).json() == {}
    assert refreshes(browser.op) == 1


async def test_unreachable_op_during_refresh_keeps_the_session(browser: Browser):
    browser.op.access_token_lifetime = 120
    await browser.login()
    expire_access_token(browser)

    with browser.op.misbehaving(respond={"token": Canned.error(500)}):
        assert await signed_in_as(browser) == "alice"

    assert await signed_in_as(browser) == "alice"
    assert refreshes(browser.op) == 2


# -- back-channel logout ----------------------------------------------------------------------
def back_channel(browser: Browser, *, token: str | None) -> httpx.Response:
    """POST ``token`` as the OP's server-to-server back channel does: no browser cookies, in the
    app's own event loop."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=browser.client.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as op_http:
            if token is None:
                return await op_http.post("/auth/backchannel-logout/fake", data={})
            return await browser.op.send_backchannel_logout(op_http, token)

    return browser.client.blocking_portal.call(send)


@pytest.mark.checklist(53)
async def test_backchannel_logout_ends_that_users_session(browser: Browser):
    await browser.login()
    assert await signed_in_as(browser) == "alice"

    response = back_channel(browser, token=browser.op.logout_token())

    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("no-store")
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(53)
async def test_backchannel_logout_by_subject_ends_the_session(browser: Browser):
    await browser.login()

    response = back_channel(browser, token=browser.op.logout_token(sub="alice"))

    assert response.status_code == 200
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(54)
@pytest.mark.parametrize(
    "defect",
    [LogoutDefect.ALG_NONE, LogoutDefect.BAD_SIGNATURE, LogoutDefect.WRONG_AUD],
    ids=str,
)
async def test_malformed_logout_token_is_a_400_and_the_session_survives(
    browser: Browser, defect: LogoutDefect
):
    await browser.login()

    response = back_channel(browser, token=browser.op.logout_token(defect=defect))

    assert response.status_code == 400
    assert response.headers["cache-control"].startswith("no-store")
    assert await signed_in_as(browser) == "alice"


@pytest.mark.checklist(54)
async def test_replayed_logout_token_is_a_400(browser: Browser):
    await browser.login()
    token = browser.op.logout_token()
    first = back_channel(browser, token=token)
    await browser.login()

    replayed = back_channel(browser, token=token)

    assert first.status_code == 200
    assert replayed.status_code == 400
    assert await signed_in_as(browser) == "alice"


async def test_backchannel_logout_without_a_token_is_a_400(browser: Browser):
    await browser.login()

    response = back_channel(browser, token=None)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["cache-control"].startswith("no-store")
    assert response.json()["code"] == "logout_token_invalid"
    assert await signed_in_as(browser) == "alice"


# -- with Litestar's CSRF middleware ------------------------------------------------------------
async def test_apps_using_litestars_csrf_middleware_still_get_form_post_and_logout(
    fake_op: FakeOP,
):
    """rpkit's routes carry their own protection; Litestar's CSRF middleware must not refuse
    the OP's cross-site form_post, while the app's own POST routes stay protected by it."""
    provider = fake_op.provider_config(
        scopes=("openid", "profile", "email"), response_mode="form_post"
    )
    csrf = CSRFConfig(secret="c" * 32)
    app, _ = make_app(fake_op, providers=[provider], app_options={"csrf_config": csrf})
    async with AsyncTestClient(app, base_url=BASE) as client:
        browser = Browser(client, fake_op)
        landed = await browser.login()
        assert landed.status_code == 303
        assert await signed_in_as(browser) == "alice"

        out = await browser.client.post(
            "/auth/logout", data={"csrf_token": await csrf_token(browser)}, follow_redirects=False
        )
        assert out.status_code == 303
        assert await signed_in_as(browser) is None

        forged = await browser.client.post("/auth/logout", data={}, follow_redirects=False)
        assert forged.status_code == 303  # no session left: nothing to end, nothing refused


# -- errors that are not rpkit's, on rpkit's routes ---------------------------------------------
async def test_litestar_errors_on_rpkit_routes_are_private(browser: Browser):
    await browser.login()
    forged = await browser.client.post("/auth/logout", data={"csrf_token": "forged"})
    malformed = await browser.client.post(
        "/auth/callback/fake",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\n",
        headers={"content-type": "multipart/form-data"},
    )

    assert forged.status_code == 403
    assert malformed.status_code == 400
    for response in (forged, malformed):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert await signed_in_as(browser) == "alice"


async def test_the_apps_own_handler_still_answers_litestar_errors_on_rpkit_routes(
    fake_op: FakeOP,
):
    def own(_: Any, exc: HTTPException) -> Response[str]:
        return Response(f"app says {exc.status_code}", status_code=exc.status_code)

    app, _ = make_app(fake_op, app_options={"exception_handlers": {HTTPException: own}})
    async with AsyncTestClient(app, base_url=BASE) as client:
        response = await client.post(
            "/auth/callback/fake",
            content=b"--x\r\nContent-Disposition: form-data\r\n\r\n",
            headers={"content-type": "multipart/form-data"},
        )

    assert response.status_code == 400
    assert response.text == "app says 400"
    assert response.headers["cache-control"] == "no-store"
