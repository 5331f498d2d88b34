"""Webhooks through the Litestar route: verification, and ``user.logout`` ending sessions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

from rpkit_scalekit.testing import FakeScalekit, OutboundMessage, new_webhook_secret

from .conftest import BASE, SK, Browser

URL = f"{BASE}{SK}/webhooks"
SECRET = new_webhook_secret()


async def signed_in(open_browser: Callable[..., Awaitable[Browser]]) -> tuple[Browser, str]:
    browser = await open_browser(webhook_secret=SECRET)
    started = await browser.post("/start", email="ada@acme.test")
    location = started.json()["location"]
    assert parse_qs(urlsplit(location).query)["connection_id"]
    await browser.follow_to_callback(location)
    me = await browser.whoami()
    assert me["subject"]
    return browser, me["subject"]


async def deliver(browser: Browser, message: OutboundMessage) -> int:
    response = await browser.client.post(message.url, content=message.body, headers=message.headers)
    return response.status_code


def logout_event(fake: FakeScalekit, subject: str, **defects: object) -> OutboundMessage:
    data = {"user_id": subject, "email": "ada@acme.test"}
    return fake.emit("user.logout", data, url=URL, secret=SECRET, **defects)[0]


async def test_user_logout_webhook_ends_that_users_session(
    open_browser: Callable[..., Awaitable[Browser]], fake_scalekit: FakeScalekit
) -> None:
    browser, subject = await signed_in(open_browser)

    assert await deliver(browser, logout_event(fake_scalekit, subject)) == 200
    assert (await browser.whoami())["subject"] is None


async def test_tampered_webhook_is_refused_and_ends_nothing(
    open_browser: Callable[..., Awaitable[Browser]], fake_scalekit: FakeScalekit
) -> None:
    browser, subject = await signed_in(open_browser)

    assert await deliver(browser, logout_event(fake_scalekit, subject, tamper_body=True)) == 400
    assert await deliver(browser, logout_event(fake_scalekit, subject, wrong_secret=True)) == 400
    assert (await browser.whoami())["subject"] == subject


async def test_skewed_webhook_is_refused(
    open_browser: Callable[..., Awaitable[Browser]], fake_scalekit: FakeScalekit
) -> None:
    browser, subject = await signed_in(open_browser)

    message = logout_event(fake_scalekit, subject, timestamp_offset=-301)
    assert await deliver(browser, message) == 400
    assert (await browser.whoami())["subject"] == subject


async def test_replayed_webhook_is_refused(
    open_browser: Callable[..., Awaitable[Browser]], fake_scalekit: FakeScalekit
) -> None:
    browser, subject = await signed_in(open_browser)
    message = fake_scalekit.emit("user.login", {"user_id": subject}, url=URL, secret=SECRET)[0]

    assert await deliver(browser, message) == 200
    assert await deliver(browser, message) == 400
    assert (await browser.whoami())["subject"] == subject


async def test_no_webhook_route_without_a_secret(browser: Browser) -> None:
    response = await browser.client.post(URL, content=b"{}")

    assert response.status_code in (404, 405)
