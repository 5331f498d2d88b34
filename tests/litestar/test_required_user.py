"""``rpkit_user: NamedDependency[Identity]`` (no ``| None``) means "signed in": signed out, the
route answers as ``requires_login()`` does, never with a 500 from Litestar's signature check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import get
from litestar.di import NamedDependency, Provide
from litestar.testing import AsyncTestClient

from rpkit.client import Identity
from rpkit.litestar import requires_login
from rpkit.litestar.session import SessionData
from rpkit.testing import FakeOP
from tests.litestar.conftest import BASE, Browser, make_app

PAGE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
API = {"accept": "application/json"}


@get("/needs-user")
async def needs_user(rpkit_user: NamedDependency[Identity]) -> dict[str, str]:
    return {"subject": rpkit_user.subject}


@get("/maybe-user")
async def maybe_user(rpkit_user: NamedDependency[Identity | None]) -> dict[str, str | None]:
    return {"subject": rpkit_user.subject if rpkit_user else None}


@get("/needs-session")
async def needs_session(rpkit_session: NamedDependency[SessionData]) -> dict[str, str]:
    return {"subject": rpkit_session.subject}


@get("/guarded", guards=[requires_login()])
async def guarded(rpkit_user: NamedDependency[Identity]) -> dict[str, str]:
    return {"subject": rpkit_user.subject}


async def email_of(rpkit_user: NamedDependency[Identity]) -> str:
    return rpkit_user.email or ""


@get("/needs-email", dependencies={"email": Provide(email_of)})
async def needs_email(email: NamedDependency[str]) -> dict[str, str]:
    return {"email": email}


ROUTES = (needs_user, maybe_user, needs_session, guarded, needs_email)


@pytest.fixture
async def browser(fake_op: FakeOP) -> AsyncIterator[Browser]:
    app, _ = make_app(fake_op)
    for route in ROUTES:
        app.register(route)
    async with AsyncTestClient(app, base_url=BASE) as client:
        yield Browser(client, fake_op)


@pytest.mark.parametrize("path", ["/needs-user", "/needs-session", "/needs-email"])
async def test_signed_out_api_client_gets_the_login_required_401_not_a_500(
    browser: Browser, path: str
) -> None:
    response = await browser.client.get(path, headers=API)
    assert response.status_code == 401
    assert response.json()["code"] == "login_required"
    assert response.json() == (await browser.client.get("/guarded", headers=API)).json()


@pytest.mark.parametrize("path", ["/needs-user", "/needs-session", "/needs-email"])
async def test_signed_out_browser_is_sent_to_sign_in_and_back(browser: Browser, path: str) -> None:
    response = await browser.client.get(path, headers=PAGE, follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert urlsplit(location).path == "/auth/login/fake"
    assert parse_qs(urlsplit(location).query) == {"return_to": [path]}
    started = await browser.client.get(location, follow_redirects=False)
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))
    assert landed.headers["location"] == path
    after = await browser.client.get(path, headers=API)
    assert after.status_code == 200


async def test_an_optional_user_stays_optional(browser: Browser) -> None:
    response = await browser.client.get("/maybe-user", headers=API)
    assert response.status_code == 200
    assert response.json() == {"subject": None}


async def test_signed_in_every_form_sees_the_same_user(browser: Browser) -> None:
    await browser.login()
    subjects = set()
    for path in ("/needs-user", "/maybe-user", "/needs-session", "/guarded"):
        response = await browser.client.get(path, headers=API)
        assert response.status_code == 200, path
        subjects.add(response.json()["subject"])
    assert len(subjects) == 1
    assert (await browser.client.get("/needs-email", headers=API)).status_code == 200


async def test_after_logout_the_required_user_route_refuses_again(browser: Browser) -> None:
    await browser.login()
    assert (await browser.client.get("/needs-user", headers=API)).status_code == 200
    browser.client.cookies.clear()
    response = await browser.client.get("/needs-user", headers=API)
    assert response.status_code == 401
