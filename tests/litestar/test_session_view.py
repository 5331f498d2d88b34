"""Who is signed in, remembered by the stored session's bytes (``SessionManager.load_view``):
what a signed-in request sees must be what the store holds now, and nothing a handler does to
what it was given may reach another request."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import pytest
from litestar import get
from litestar.di import NamedDependency

from rpkit.client import Identity
from rpkit.litestar import RPKitPlugin, requires_login
from rpkit.litestar import session as session_module
from rpkit.litestar.session import SessionData, SessionManager
from tests.litestar.conftest import Browser

SESSION_COOKIE = "__Host-rpkit_session"


@get("/who", guards=[requires_login()])
async def who(rpkit_user: NamedDependency[Identity]) -> dict[str, Any]:
    return {"subject": rpkit_user.subject, "name": rpkit_user.name, "claims": rpkit_user.claims}


@get("/meddle-user")
async def meddle_user(rpkit_user: NamedDependency[Identity]) -> dict[str, str]:
    """A handler that tries to change who is signed in; what each attempt raised."""
    attempts: dict[str, str] = {}
    for name, attempt in {
        "claims": lambda: rpkit_user.claims.__setitem__("name", "Mallory"),  # type: ignore[attr-defined]
        "groups": lambda: rpkit_user.claims["groups"].append("admins"),
        "address": lambda: rpkit_user.claims["address"].__setitem__("country", "XX"),
        "field": lambda: setattr(rpkit_user, "subject", "mallory"),
    }.items():
        try:
            attempt()
        except (TypeError, AttributeError) as exc:
            attempts[name] = type(exc).__name__
        else:
            attempts[name] = "changed"
    return attempts


@get("/meddle-session")
async def meddle_session(rpkit_session: NamedDependency[SessionData]) -> dict[str, str]:
    """A handler that changes the session data it was given (its own copy: nothing persists)."""
    rpkit_session.claims["name"] = "Mallory"
    rpkit_session.claims["groups"].append("admins")
    rpkit_session.subject = "mallory"
    return {"subject": rpkit_session.subject}


@get("/whole-session")
async def whole_session(rpkit_session: NamedDependency[SessionData]) -> dict[str, Any]:
    return {"subject": rpkit_session.subject, "claims": rpkit_session.claims}


def manager_of(browser: Browser) -> SessionManager:
    return browser.client.app.plugins.get(RPKitPlugin).runtime.sessions


async def signed_in(browser: Browser) -> None:
    for handler in (who, meddle_user, meddle_session, whole_session):
        browser.client.app.register(handler)
    await browser.login()


def session_key(browser: Browser) -> str:
    """The store key of the session under the browser's cookie."""
    return "rpkit:session:" + browser.client.cookies[SESSION_COOKIE]


async def stored_session(browser: Browser) -> SessionData:
    """The session under the browser's cookie, as the store holds it."""
    stored = await manager_of(browser).store.get(session_key(browser))
    assert stored is not None
    return msgspec.json.decode(stored, type=SessionData)


async def rewrite_session(browser: Browser, **changes: Any) -> None:
    """Change the stored session under the browser's cookie, as another worker's write would."""
    data = msgspec.structs.replace(await stored_session(browser), **changes)
    await manager_of(browser).store.set(session_key(browser), msgspec.json.encode(data), 3600)


def decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record every decoding of a stored session."""
    seen: list[bytes] = []
    decode = session_module._decode_session

    def counting(raw: bytes) -> SessionData:
        seen.append(raw)
        return decode(raw)

    monkeypatch.setattr(session_module, "_decode_session", counting)
    return seen


async def test_an_unchanged_session_is_decoded_once_for_its_signed_in_requests(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
):
    await signed_in(browser)
    seen = decodes(monkeypatch)

    answers = [(await browser.client.get("/who")).json()["subject"] for _ in range(3)]

    assert answers == ["alice"] * 3
    assert len(seen) == 1
    assert (await browser.client.get("/whole-session")).json()["subject"] == "alice"
    assert len(seen) == 2  # the whole session is decoded for the request that asks for it


async def test_a_session_rewritten_in_the_store_is_read_anew(browser: Browser):
    await signed_in(browser)
    assert (await browser.client.get("/who")).json()["name"] == "Alice Liddell"

    await rewrite_session(browser, name="Alice L.", claims={"sub": "alice", "name": "Alice L."})

    answer = (await browser.client.get("/who")).json()
    assert (answer["name"], answer["claims"]["name"]) == ("Alice L.", "Alice L.")


async def test_an_ended_session_is_not_served_from_memory(browser: Browser):
    await signed_in(browser)
    assert (await browser.client.get("/who")).status_code == 200

    await manager_of(browser).destroy(browser.client.cookies[SESSION_COOKIE])

    refused = await browser.client.get("/who", headers={"Accept": "*/*"})
    assert refused.status_code == 401
    assert (await browser.client.get("/me")).json() == {"subject": None}


async def test_a_refresh_falls_due_on_a_remembered_session(browser: Browser):
    browser.op.access_token_lifetime = 120
    await signed_in(browser)
    assert (await browser.client.get("/who")).json()["subject"] == "alice"  # remembered
    before = (await browser.client.get("/session")).json()["access_token"]

    manager_of(browser).clock = lambda: time.time() + 200  # past the access token's expiry
    browser.op.access_token_lifetime = 3600
    assert (await browser.client.get("/who")).json()["subject"] == "alice"

    refreshed = [
        r for r in browser.op.oracle.of("token") if r.param("grant_type") == "refresh_token"
    ]
    assert len(refreshed) == 1
    assert (await browser.client.get("/session")).json()["access_token"] != before


async def test_who_is_signed_in_is_read_only_to_handlers_deeply(browser: Browser):
    await signed_in(browser)
    nested = {"sub": "alice", "groups": ["staff"], "address": {"country": "UK"}}
    await rewrite_session(browser, claims=nested)

    attempts = (await browser.client.get("/meddle-user")).json()
    again = (await browser.client.get("/meddle-user")).json()

    assert "changed" not in attempts.values()
    assert attempts == again
    answer = (await browser.client.get("/who")).json()
    assert (answer["subject"], answer["claims"]) == ("alice", nested)


async def test_a_handler_changing_its_session_data_changes_nothing_for_the_next_request(
    browser: Browser,
):
    await signed_in(browser)
    nested = {"sub": "alice", "name": "Alice", "groups": ["staff"]}
    await rewrite_session(browser, claims=nested)
    assert (await browser.client.get("/who")).json()["claims"] == nested  # remembered

    assert (await browser.client.get("/meddle-session")).json() == {"subject": "mallory"}

    assert (await browser.client.get("/who")).json()["claims"] == nested
    assert (await browser.client.get("/whole-session")).json() == {
        "subject": "alice",
        "claims": nested,
    }


async def test_the_memory_keeps_the_most_recently_used_sessions_only(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
):
    await signed_in(browser)
    monkeypatch.setattr(session_module, "SESSION_MEMO_SIZE", 3)
    sessions = manager_of(browser)
    template = await stored_session(browser)
    for number in (0, 1, 2, 3, 4, 2, 5):  # user-2 read again before user-5 comes
        data = msgspec.structs.replace(template, subject=f"user-{number}")
        await sessions.store.set(f"rpkit:session:id-{number}", msgspec.json.encode(data), 3600)
        view = await sessions.load_view(f"id-{number}")
        assert view is not None
        assert view.identity.subject == f"user-{number}"

    remembered = [msgspec.json.decode(raw, type=SessionData).subject for raw in sessions._heads]
    assert remembered == ["user-4", "user-2", "user-5"]
    seen = decodes(monkeypatch)
    first = await sessions.load_view("id-0")  # forgotten: decoded again, and right
    assert first is not None
    assert (first.identity.subject, len(seen)) == ("user-0", 1)
