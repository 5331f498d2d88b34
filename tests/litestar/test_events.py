"""Litestar events rpkit emits: ``rpkit.login``, ``rpkit.logout`` and ``rpkit.refresh_failed``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from litestar.events import listener
from litestar.logging.config import StructLoggingConfig
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.testing import AsyncTestClient

from rpkit.client import Identity
from rpkit.litestar import RPKitPlugin
from rpkit.testing import FakeOP
from tests.litestar.conftest import BASE, Browser, make_app

Received = list[tuple[str, dict[str, Any]]]


@pytest.fixture
async def heard(fake_op: FakeOP) -> AsyncIterator[tuple[Browser, Received]]:
    received: Received = []

    # Litestar passes no event id to listeners: one listener per event records which it was.
    listeners = [
        listener(name)(_tagged(name, received))
        for name in ("rpkit.login", "rpkit.logout", "rpkit.refresh_failed")
    ]
    app, _ = make_app(fake_op, listeners=listeners)
    async with AsyncTestClient(app, base_url=BASE) as client:
        yield Browser(client, fake_op), received


def _tagged(name: str, received: Received) -> Any:
    async def record(**kwargs: Any) -> None:
        received.append((name, kwargs))

    return record


async def settled(received: Received, count: int) -> Received:
    """Litestar runs listeners in the background: wait (bounded) until ``count`` arrived."""
    for _ in range(200):
        if len(received) >= count:
            break
        await asyncio.sleep(0.01)
    return received


async def test_login_and_logout_emit_events_with_the_identity(heard):
    browser, received = heard
    await browser.login(login_hint="bob")
    await settled(received, 1)
    assert [name for name, _ in received] == ["rpkit.login"]
    identity = received[0][1]["identity"]
    assert isinstance(identity, Identity)
    assert (identity.provider_id, identity.subject) == ("fake", "bob")

    csrf = (await browser.client.get("/session")).json()["csrf_token"]
    await browser.client.post("/auth/logout", data={"csrf_token": csrf}, follow_redirects=False)
    await settled(received, 2)
    assert [name for name, _ in received] == ["rpkit.login", "rpkit.logout"]
    assert received[1][1]["identity"].subject == "bob"


async def test_refused_logout_and_refused_login_emit_nothing(heard):
    browser, received = heard
    await browser.login()
    await settled(received, 1)
    refused = await browser.client.post("/auth/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    started = await browser.start_login()
    callback = await browser.op.approve(started.headers["location"])
    bad = await browser.client.get(callback.location.replace("code=", "code=x"))
    assert bad.status_code == 400
    await asyncio.sleep(0.05)
    assert [name for name, _ in received] == ["rpkit.login"]


async def test_refused_refresh_emits_refresh_failed_with_the_error_code(heard):
    browser, received = heard
    browser.op.access_token_lifetime = 120
    await browser.login()
    sessions = browser.client.app.plugins.get(RPKitPlugin).runtime.sessions
    sessions.clock = lambda: time.time() + 200
    browser.op.misbehave.refresh_error = "invalid_grant"

    assert (await browser.client.get("/me")).json() == {"subject": None}

    await settled(received, 2)
    name, payload = received[1]
    assert name == "rpkit.refresh_failed"
    assert payload["identity"].subject == "alice"
    assert payload["code"] == "session_expired"


async def test_rpkit_logs_flow_through_litestars_structlog_plugin(fake_op: FakeOP):
    """With ``StructlogPlugin`` in the app, rpkit's events go through the app's processors (they
    bind to structlog's configuration when logged, not at import), and never carry a secret."""
    events: list[dict[str, Any]] = []

    def capture(_: Any, __: str, event_dict: dict[str, Any]) -> Any:
        events.append(dict(event_dict))
        raise structlog.DropEvent

    logging = StructLoggingConfig(processors=[capture], cache_logger_on_first_use=False)
    structured = StructlogPlugin(StructlogConfig(structlog_logging_config=logging))
    app, _ = make_app(fake_op, plugins=[structured])
    try:
        async with AsyncTestClient(app, base_url=BASE) as client:
            landed = await Browser(client, fake_op).login()
    finally:
        structlog.reset_defaults()

    assert landed.status_code == 303
    names = [e["event"] for e in events]
    assert {"rpkit.login.started", "rpkit.tokens.received", "rpkit.login.completed"} <= set(names)
    completed = events[names.index("rpkit.login.completed")]
    assert completed["provider"] == "fake"
    assert completed["issuer"] == fake_op.issuer
    secrets = [
        fake_op.provider_config().client_secret,
        *fake_op.access_tokens,
        *fake_op.refresh_tokens,
        *(r.param("code") for r in fake_op.oracle.of("token")),
    ]
    logged = repr([e for e in events if str(e["event"]).startswith("rpkit.")])
    assert not [s for s in secrets if s and s in logged]
