"""Fixtures of the fuzz tests, and the example count printed at the end of the session.

The Hypothesis profile and per-test budgets live in ``_budget.py``; this file prints, when any
fuzz test ran, one line such as ``rpkit fuzz: 4210 examples completed in 19 property tests``.
Each fixture is shared by the examples of one test: an app, a fake OP and its oracle, so a test
compares the oracle's counts before and after each example.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata, parse_metadata
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import FakeOP
from tests.fuzz._budget import BUDGETS, COMPLETED, SCALE
from tests.litestar.conftest import BASE, Browser, make_app, set_cookies

SESSION_COOKIE = "__Host-rpkit_session"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ran = {name: COMPLETED[name] for name in BUDGETS if COMPLETED[name]}
    if not ran:
        return
    terminalreporter.write_sep("-", "rpkit fuzz examples")
    for name, count in sorted(ran.items()):
        terminalreporter.write_line(f"{name}: {count} of {BUDGETS[name]}")
    terminalreporter.write_line(
        f"rpkit fuzz: {sum(ran.values())} examples completed in {len(ran)} property tests "
        f"(budget {sum(BUDGETS[n] for n in ran)}, RPKIT_FUZZ_SCALE={SCALE:g})"
    )


# -- the core, without a web framework ---------------------------------------------------------


@dataclass
class Core:
    """The fake OP, a provider configuration for it, its validated metadata and a validator
    whose key cache is already warm."""

    op: FakeOP
    config: ProviderConfig
    metadata: ProviderMetadata
    http: httpx.AsyncClient
    validator: TokenValidator
    jwks: JWKSCache

    def __repr__(self) -> str:  # keeps Hypothesis's falsifying-example reports short
        return f"Core(op={self.op.issuer!r}, client_id={self.config.client_id!r})"


@pytest.fixture
async def core(fake_op: FakeOP) -> AsyncIterator[Core]:
    config = fake_op.provider_config()
    metadata = parse_metadata(json.dumps(fake_op.metadata()).encode(), config)
    async with httpx.AsyncClient(transport=fake_op.transport(), timeout=5.0) as http:
        jwks = JWKSCache(http)
        await jwks.warm(metadata.jwks_uri)
        yield Core(fake_op, config, metadata, http, TokenValidator(jwks), jwks)


# -- the Litestar app ----------------------------------------------------------------------------


@pytest.fixture
async def app(fake_op: FakeOP) -> AsyncIterator[Browser]:
    """A browser on the app with rpkit's plugin, nobody signed in."""
    application, _ = make_app(fake_op)
    async with AsyncTestClient(application, base_url=BASE) as client:
        yield Browser(client, fake_op)


@pytest.fixture
async def signed_in(app: Browser) -> Browser:
    """A browser on the app, signed in as Alice."""
    landed = await app.login()
    assert landed.status_code == 303
    assert await subject_of(app) == "alice"
    return app


async def subject_of(browser: Browser) -> str | None:
    subject: str | None = (await browser.client.get("/me")).json()["subject"]
    return subject


def op_counts(op: FakeOP) -> Counter[str]:
    return op.oracle.counts()


def sets_session(response: httpx.Response) -> bool:
    cookie = set_cookies(response).get(SESSION_COOKIE)
    return cookie is not None and bool(cookie.value) and not cookie.deletes


def assert_refused_quietly(
    response: httpx.Response, op: FakeOP, before: Counter[str], *, status: set[int]
) -> None:
    """A refused request: one of the expected ``status`` codes (never a 500), no session
    cookie, and not one request to the OP."""
    assert response.status_code in status, (response.status_code, response.text[:300])
    assert not sets_session(response)
    assert op_counts(op) == before
