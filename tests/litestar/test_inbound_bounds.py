"""Bounds on rpkit's routes (issue 13, section 1): every value a browser (or the provider's
back channel) sends is bounded and format-checked before rpkit's store is asked about it and
before any request reaches the provider; a refusal is a 400 with a stable code, never a session.
And through the routes, a failed sign-in still leaves one ``rpkit.login.failed`` line (section 5).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar.stores.memory import MemoryStore
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.testing import FakeOP, FakeUser
from tests.litestar.conftest import BASE, Browser, make_app, set_cookies

API = {"Accept": "application/json"}
SESSION_COOKIE = "__Host-rpkit_session"


class RecordingStore(MemoryStore):
    """Litestar's memory store, remembering every key read or deleted."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def get(self, key: str, renew_for: Any = None) -> bytes | None:
        self.asked.append(key)
        return await super().get(key, renew_for)

    async def delete(self, key: str) -> None:
        self.asked.append(key)
        await super().delete(key)


@pytest.fixture
def flows() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
async def app(fake_op: FakeOP, flows: RecordingStore) -> AsyncIterator[Browser]:
    application, _ = make_app(fake_op, app_options={"stores": {"rpkit_flows": flows}})
    async with AsyncTestClient(application, base_url=BASE) as client:
        yield Browser(client, fake_op)


def problem(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def assert_quiet(response: httpx.Response, op: FakeOP, before: dict[str, int]) -> None:
    """No session, no transaction cookie, and not one more request to the provider."""
    assert SESSION_COOKIE not in {
        name for name, cookie in set_cookies(response).items() if not cookie.deletes
    }
    assert op.oracle.counts() == before


async def pending_callback(app: Browser) -> list[tuple[str, str]]:
    started = await app.start_login()
    callback = await app.op.approve(started.headers["location"])
    return list(callback.params)


def replaced(params: list[tuple[str, str]], **values: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, values.get(name, value)) for name, value in params)


# -- the callback ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("c" * 2049, "parameter_too_large"),
        ("c" * 60_000, "parameter_too_large"),
        ("c0de\n", "parameter_malformed"),
        ("c0de\x00", "parameter_malformed"),
        ("c\u00f6de", "parameter_malformed"),
    ],
    ids=["2049", "60k", "newline", "nul", "non-ascii"],
)
async def test_a_callback_with_an_unbounded_code_never_reaches_the_token_endpoint(
    app: Browser, code: str, expected: str
) -> None:
    params = await pending_callback(app)
    before = app.op.oracle.counts()

    response = await app.client.get(
        "/auth/callback/fake", params=replaced(params, code=code), headers=API
    )

    assert problem(response) == (400, expected)
    assert_quiet(response, app.op, before)
    assert app.op.oracle.count("token") == 0


async def test_a_form_post_callback_with_an_oversized_code_is_refused(app: Browser) -> None:
    params = await pending_callback(app)
    before = app.op.oracle.counts()

    response = await app.client.post(
        "/auth/callback/fake", data=dict(replaced(params, code="c" * 5000)), headers=API
    )

    assert problem(response) == (400, "parameter_too_large")
    assert_quiet(response, app.op, before)


async def test_a_callback_whose_state_rpkit_never_minted_is_not_looked_up(
    app: Browser, flows: RecordingStore
) -> None:
    params = await pending_callback(app)
    state = dict(params)["state"]
    flows.asked.clear()
    before = app.op.oracle.counts()

    response = await app.client.get(
        "/auth/callback/fake", params=replaced(params, state=state + "x"), headers=API
    )

    assert problem(response) == (400, "invalid_state")
    assert_quiet(response, app.op, before)
    assert not any(state + "x" in key for key in flows.asked), flows.asked


async def test_a_callback_with_an_oversized_iss_is_refused(app: Browser) -> None:
    params = await pending_callback(app)
    before = app.op.oracle.counts()

    response = await app.client.get(
        "/auth/callback/fake",
        params=replaced(params, iss=app.op.issuer + "/" + "i" * 2048),
        headers=API,
    )

    assert problem(response) == (400, "parameter_too_large")
    assert_quiet(response, app.op, before)


async def test_a_refused_parameter_shows_a_neutral_page_to_a_browser(app: Browser) -> None:
    params = await pending_callback(app)

    response = await app.client.get(
        "/auth/callback/fake",
        params=replaced(params, code="c0de\n"),
        headers={"Accept": "text/html"},
    )

    assert response.status_code == 400
    assert "parameter_malformed" in response.text
    assert "c0de" not in response.text
    assert response.headers["cache-control"] == "no-store"


# -- starting a login ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"login_hint": "a" * 321}, "parameter_too_large"),
        ({"login_hint": "bob\u2028"}, "parameter_malformed"),
        ({"login_hint": "bob\x85"}, "parameter_malformed"),
        ({"login_hint": "bob\n"}, "parameter_malformed"),
        ({"prompt": "login\xa0consent"}, "parameter_malformed"),
        ({"max_age": "\u0661\u0662"}, "parameter_malformed"),
        ({"return_to": "/" + "r" * 2048}, "parameter_too_large"),
    ],
    ids=["long-hint", "separator", "nel", "newline", "nbsp-prompt", "arabic-digits", "return-to"],
)
async def test_a_login_request_out_of_bounds_is_refused_before_a_transaction_exists(
    app: Browser, flows: RecordingStore, params: dict[str, str], expected: str
) -> None:
    before = app.op.oracle.counts()

    response = await app.client.get(
        "/auth/login/fake", params=params, headers=API, follow_redirects=False
    )

    assert problem(response) == (400, expected)
    assert_quiet(response, app.op, before)
    assert set_cookies(response) == {}
    assert not flows._store  # no transaction, no pending-login list


async def test_a_login_hint_at_its_bound_reaches_the_authorization_request(app: Browser) -> None:
    hint = "b" * 308 + "@example.org"

    response = await app.start_login(login_hint=hint)

    assert response.status_code == 303
    assert parse_qs(urlsplit(response.headers["location"]).query)["login_hint"] == [hint]


# -- third-party login -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("name", ["iss", "target_link_uri"])
async def test_an_oversized_third_party_login_parameter_is_refused(
    app: Browser, method: str, name: str
) -> None:
    params = {"iss": app.op.issuer, "target_link_uri": f"{BASE}/me"}
    params[name] += "/" + "x" * 2048
    before = app.op.oracle.counts()

    if method == "GET":
        response = await app.client.get("/auth/initiate", params=params, headers=API)
    else:
        response = await app.client.post("/auth/initiate", data=params, headers=API)

    assert problem(response) == (400, "parameter_too_large")
    assert_quiet(response, app.op, before)


async def test_a_third_party_login_hint_with_a_newline_is_refused(app: Browser) -> None:
    response = await app.client.get(
        "/auth/initiate", params={"iss": app.op.issuer, "login_hint": "bob\n"}, headers=API
    )

    assert problem(response) == (400, "parameter_malformed")


# -- logging out -----------------------------------------------------------------------------------


async def signed_in(app: Browser) -> str:
    landed = await app.login()
    assert landed.status_code == 303
    csrf: str = (await app.client.get("/session")).json()["csrf_token"]
    return csrf


@pytest.mark.parametrize(
    "form",
    [{"csrf_token": "t" * 257}, {"return_to": "/" + "r" * 2048}],
    ids=["csrf_token", "return_to"],
)
async def test_a_logout_form_over_its_bounds_is_refused_and_signs_nobody_out(
    app: Browser, form: dict[str, str]
) -> None:
    csrf = await signed_in(app)
    before = app.op.oracle.counts()

    response = await app.client.post("/auth/logout", data={"csrf_token": csrf, **form}, headers=API)

    assert problem(response) == (400, "parameter_too_large")
    assert_quiet(response, app.op, before)
    assert (await app.client.get("/me")).json()["subject"] == "alice"


@pytest.mark.parametrize(
    "query",
    [
        {"state": "s" * 44},
        {"state": "s" * 42 + "\n"},
        {"state": "s" * 10_000},
        {"state": "s" * 43, "x": "y" * 9000},
    ],
    ids=["44", "newline", "long", "long-query"],
)
async def test_a_logout_return_that_could_not_be_ours_is_not_looked_up(
    app: Browser, flows: RecordingStore, query: dict[str, str]
) -> None:
    flows.asked.clear()

    response = await app.client.get("/auth/logout/callback", params=query)

    assert response.status_code == 200
    assert "signed out" in response.text
    assert not any("logout" in key for key in flows.asked), flows.asked


async def test_a_logout_return_of_our_shape_is_still_matched(app: Browser) -> None:
    csrf = await signed_in(app)
    ended = await app.client.post(
        "/auth/logout", data={"csrf_token": csrf, "return_to": "/bye"}, follow_redirects=False
    )
    state = parse_qs(urlsplit(ended.headers["location"]).query)["state"][0]

    response = await app.client.get(
        "/auth/logout/callback", params={"state": state}, follow_redirects=False
    )

    assert (response.status_code, response.headers["location"]) == (303, "/bye")


# -- back-channel logout ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["e30." + "A" * 65_536 + ".AA", "e30.e30.", "e30.e30.AA\n", "e30.e30.A+A=", "e30 .e30.AA"],
    ids=["oversized", "unsigned", "newline", "base64", "space"],
)
async def test_a_logout_token_that_is_no_signed_compact_jwt_is_refused_unread(
    app: Browser, token: str
) -> None:
    await signed_in(app)
    before = app.op.oracle.counts()

    response = await app.client.post("/auth/backchannel-logout/fake", data={"logout_token": token})

    assert problem(response) == (400, "logout_token_invalid")
    assert app.op.oracle.counts() == before
    assert (await app.client.get("/me")).json()["subject"] == "alice"


# -- one failure line per failed sign-in, through the routes ------------------------------------


async def test_a_refused_callback_leaves_exactly_one_failure_line(app: Browser) -> None:
    params = await pending_callback(app)

    with capture_logs() as logs:
        response = await app.client.get(
            "/auth/callback/fake", params=replaced(params, code="c" * 3000), headers=API
        )

    assert response.status_code == 400
    failed = [entry for entry in logs if entry["event"] == "rpkit.login.failed"]
    assert [(entry["provider"], entry["reason"]) for entry in failed] == [
        ("fake", "parameter_too_large")
    ]
    assert "ccccc" not in json.dumps(logs, default=str)


async def test_a_session_that_cannot_be_stored_leaves_one_failure_line(fake_op: FakeOP) -> None:
    fake_op.users["carol"] = FakeUser("carol", {"name": "C" * 4000})
    application, _ = make_app(fake_op, session_backend="cookie")
    async with AsyncTestClient(application, base_url=BASE) as client:
        browser = Browser(client, fake_op)
        with capture_logs() as logs:
            refused = await browser.login(login_hint="carol")

    assert refused.status_code == 500
    failed = [entry for entry in logs if entry["event"] == "rpkit.login.failed"]
    assert [(entry["provider"], entry["reason"], entry["log_level"]) for entry in failed] == [
        ("fake", "session_too_large", "warning")
    ]
