"""The IdP's discovery fails while the app starts: the app starts anyway, a login answers 503
with a message that says what is wrong, and logins work as soon as the IdP is back."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from rpkit.testing import Canned, FakeOP, serve
from tests.faults.conftest import TXN_COOKIE, OpenApp, signed_in_as
from tests.litestar.conftest import Browser, set_cookies

TIMEOUT = 0.5
UNREACHABLE = "The identity provider cannot be reached. Please try again."
FAILURES = [
    pytest.param({"respond": {"discovery": Canned.error(500)}}, id="http-500"),
    pytest.param({"respond": {"discovery": Canned.html()}}, id="html"),
    pytest.param({"latency": {"discovery": TIMEOUT + 1.0}}, id="timeout"),
]


async def assert_login_is_unavailable(browser: Browser) -> None:
    page = await browser.client.get("/auth/login/fake", headers={"accept": "text/html"})
    assert page.status_code == 503, page.text
    assert UNREACHABLE in page.text
    assert "discovery_failed" in page.text
    assert TXN_COOKIE not in set_cookies(page)
    api = await browser.client.get("/auth/login/fake", headers={"accept": "application/json"})
    assert api.status_code == 503
    assert api.json()["code"] == "discovery_failed"
    assert api.json()["title"] == UNREACHABLE


async def assert_login_works(browser: Browser) -> None:
    landed = await browser.login()
    assert landed.status_code == 303, landed.text
    assert await signed_in_as(browser) == "alice"


@pytest.mark.parametrize("failure", FAILURES)
async def test_app_starts_while_discovery_fails_then_recovers_with_the_idp(
    open_app: OpenApp, fake_op: FakeOP, failure: dict[str, Any]
):
    for knob, value in failure.items():
        setattr(fake_op.misbehave, knob, value)

    browser = await open_app(http_timeout=TIMEOUT)

    assert fake_op.oracle.count("discovery") == 1, "startup did not try discovery"
    await assert_login_is_unavailable(browser)
    assert fake_op.oracle.count("authorize") == 0
    fake_op.reset()
    await assert_login_works(browser)


async def test_app_starts_while_the_idp_is_down_then_recovers_when_it_comes_up(
    open_app: OpenApp,
):
    with socket.socket() as probe:  # a port nobody listens on, until the IdP comes up there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    offline = FakeOP(f"http://127.0.0.1:{port}")

    browser = await open_app(offline, served=True, http_timeout=TIMEOUT)
    await assert_login_is_unavailable(browser)

    with serve(port) as online:
        online.register_client(offline.clients[next(iter(offline.clients))])
        browser.op = online
        await assert_login_works(browser)
