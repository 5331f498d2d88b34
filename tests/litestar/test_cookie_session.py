"""The opt-in client-side session: identity claims sealed in the cookie, no tokens, no store."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from rpkit.litestar import RPKitPlugin
from rpkit.litestar._cookies import HandleCodec
from rpkit.testing import FakeOP, FakeUser
from tests.litestar.conftest import SECRET, Browser, set_cookies

OpenBrowser = Callable[..., Awaitable[Browser]]
SESSION_COOKIE = "__Host-rpkit_session"


def sessions_store_keys(browser: Browser) -> list[str]:
    plugin = browser.client.app.plugins.get(RPKitPlugin)
    store = browser.client.app.stores.get(plugin.config.sessions_store)
    return list(store._store)


async def test_cookie_session_signs_in_with_identity_claims_only(open_browser: OpenBrowser):
    browser = await open_browser(session_backend="cookie")
    landed = await browser.login(login_hint="alice")

    assert landed.status_code == 303
    cookie = set_cookies(landed)[SESSION_COOKIE]
    assert {"httponly", "secure"} <= cookie.attributes.keys()
    assert len(SESSION_COOKIE) + 1 + len(cookie.value) <= 3800
    assert (await browser.client.get("/me")).json() == {"subject": "alice"}
    assert sessions_store_keys(browser) == []

    opened = HandleCodec(SECRET).open(cookie.value, SESSION_COOKIE, limit=4096)
    assert opened is not None
    # Sealed, not merely encoded: the e-mail is not readable in the cookie ...
    raw = base64.urlsafe_b64decode(cookie.value + "=" * (-len(cookie.value) % 4))
    assert b"alice@example.com" not in raw
    # ... and what is inside holds no token of any kind.
    assert '"access_token":""' in opened
    assert '"refresh_token":null' in opened
    assert '"id_token":""' in opened
    assert "alice@example.com" in opened


async def test_tampered_or_foreign_cookie_is_no_session(open_browser: OpenBrowser):
    browser = await open_browser(session_backend="cookie")
    landed = await browser.login(login_hint="alice")
    value = set_cookies(landed)[SESSION_COOKIE].value
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    for forged in (flipped, "x" * 5000, HandleCodec(SECRET).seal("{}", "__Host-rpkit_txn", 60)):
        browser.client.cookies.set(SESSION_COOKIE, forged)
        assert (await browser.client.get("/me")).json() == {"subject": None}


async def test_expired_cookie_session_is_no_session(open_browser: OpenBrowser):
    browser = await open_browser(session_backend="cookie", session_lifetime=60)
    landed = await browser.login(login_hint="alice")
    value = set_cookies(landed)[SESSION_COOKIE].value
    plugin = browser.client.app.plugins.get(RPKitPlugin)
    assert await plugin.runtime.sessions.load(value) is not None
    plugin.runtime.sessions.clock = lambda: 10**10
    assert await plugin.runtime.sessions.load(value) is None
    assert (await browser.client.get("/me")).json() == {"subject": None}


async def test_oversized_session_is_refused_at_login_with_no_cookie(
    open_browser: OpenBrowser, fake_op: FakeOP
):
    fake_op.users["carol"] = FakeUser("carol", {"name": "C" * 4000})
    browser = await open_browser(session_backend="cookie")
    refused = await browser.login(login_hint="carol")

    assert refused.status_code == 500
    assert "session_too_large" in refused.text
    assert "CCCC" not in refused.text
    assert SESSION_COOKIE not in set_cookies(refused)
    assert (await browser.client.get("/me")).json() == {"subject": None}
    assert sessions_store_keys(browser) == []


async def test_logout_clears_the_cookie_and_ends_at_the_op_without_id_token_hint(
    open_browser: OpenBrowser,
):
    browser = await open_browser(session_backend="cookie")
    await browser.login(login_hint="alice")
    csrf = (await browser.client.get("/session")).json()["csrf_token"]

    out = await browser.client.post(
        "/auth/logout", data={"csrf_token": csrf}, follow_redirects=False
    )

    assert out.status_code == 303
    assert "id_token_hint" not in out.headers["location"]
    assert "client_id=" in out.headers["location"]
    assert set_cookies(out)[SESSION_COOKIE].deletes
    assert (await browser.client.get("/me")).json() == {"subject": None}
