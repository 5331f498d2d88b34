"""An IdP slower than ``RPKitConfig.http_timeout``: the step waiting for it fails with a typed
error once the timeout passes, over real sockets (the fake OP served on 127.0.0.1), and nothing
is retried or half-done."""

from __future__ import annotations

import time

import pytest

from rpkit.testing import Endpoint, FakeOP
from tests.faults.conftest import OpenApp, login_outcome, sets_session, signed_in_as

TIMEOUT = 0.5
LATENCY = TIMEOUT + 2.5
"""Longer than the bound the tests assert, so only a timeout can meet it."""
BOUND = TIMEOUT + 2.0


@pytest.mark.parametrize(
    ("endpoint", "code"),
    [("token", "token_exchange_failed"), ("userinfo", "userinfo_invalid")],
)
async def test_a_slow_idp_fails_the_callback_within_the_timeout_without_a_session(
    open_app: OpenApp, honest_served_op: FakeOP, endpoint: Endpoint, code: str
):
    op = honest_served_op
    browser = await open_app(op, served=True, http_timeout=TIMEOUT)
    op.misbehave.latency = {endpoint: LATENCY}

    started = time.monotonic()
    failed = await login_outcome(browser)
    elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert failed.status_code == 400, failed.text
    assert failed.json()["code"] == code
    assert not sets_session(failed)
    assert await signed_in_as(browser) is None
    assert op.oracle.count("token") == 1, "the code was sent twice"
    assert op.oracle.count("userinfo") == (1 if endpoint == "userinfo" else 0)


async def test_a_slow_idp_at_login_start_is_a_503_within_the_timeout(
    open_app: OpenApp, honest_served_op: FakeOP
):
    op = honest_served_op
    op.misbehave.latency = {"discovery": LATENCY}
    browser = await open_app(op, served=True, http_timeout=TIMEOUT)  # warm-up times out too

    started = time.monotonic()
    login = await browser.client.get("/auth/login/fake", headers={"accept": "application/json"})
    elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert login.status_code == 503, login.text
    assert login.json()["code"] == "discovery_failed"
    assert "location" not in login.headers
    assert op.oracle.count("authorize") == 0


async def test_a_slow_refresh_keeps_the_session_and_answers_within_the_timeout(
    open_app: OpenApp, honest_served_op: FakeOP
):
    op = honest_served_op
    op.access_token_lifetime = 30  # below refresh_before: due on the next request
    browser = await open_app(op, served=True, http_timeout=TIMEOUT, refresh_before=60)
    assert (await browser.login()).status_code == 303
    op.misbehave.latency = {"token": LATENCY}

    started = time.monotonic()
    subject = await signed_in_as(browser)
    elapsed = time.monotonic() - started

    assert elapsed < BOUND
    assert subject == "alice"
    refreshes = [r for r in op.oracle.of("token") if r.param("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
