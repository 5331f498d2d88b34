"""Checklist rows 50–52 (logout) and 61–66 (browser and session) through rpkit's Litestar routes:
what the browser is sent, what it may send back, and what must never follow from it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from rpkit._client_auth import s256_challenge
from rpkit.errors import ConfigurationError
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import ABSENT, DEFAULT_CLIENT_ID, FakeClient, FakeOP, FakeOPTransport
from tests.litestar.conftest import (
    BASE,
    SECRET,
    Browser,
    SetCookie,
    home,
    make_app,
    me,
    set_cookies,
)

OpenBrowser = Callable[..., Awaitable[Browser]]
TXN = "__Host-rpkit_txn"
SESSION = "__Host-rpkit_session"
LOGOUT_RETURN = f"{BASE}/auth/logout/callback"
EVIL = "https://evil.example"
THIRD_PARTY_MARKERS = ("<script", "<img", "<link", "<iframe", "src=", "http:", "https:", "//")


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def endpoint_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def signed_in_as(browser: Browser) -> str | None:
    subject: str | None = (await browser.client.get("/me")).json()["subject"]
    return subject


async def csrf_token(browser: Browser) -> str:
    token: str = (await browser.client.get("/session")).json()["csrf_token"]
    return token


async def logout(browser: Browser, **form: str) -> httpx.Response:
    form = {"csrf_token": await csrf_token(browser), **form}
    return await browser.client.post("/auth/logout", data=form, follow_redirects=False)


def plant(browser: Browser, name: str, value: str) -> None:
    """Put a cookie in the browser as an attacker (or another tab) would."""
    browser.client.cookies.delete(name)
    browser.client.cookies.set(name, value, domain="app.rpkit.test", path="/")


def assert_host_only_secure(cookie: SetCookie) -> None:
    """What a browser requires before it stores (or deletes) a ``__Host-`` cookie."""
    assert cookie.name.startswith("__Host-")
    assert "secure" in cookie.attributes
    assert cookie.attributes.get("path") == "/"
    assert "domain" not in cookie.attributes


# -- row 50 -----------------------------------------------------------------------------------
@pytest.mark.checklist(50)
async def test_end_session_request_carries_hint_registered_return_state_and_client_id(
    browser: Browser,
):
    await browser.login()
    sid = next(reversed(browser.op.sessions))

    response = await logout(browser)

    assert response.status_code == 303
    location = response.headers["location"]
    assert endpoint_of(location) == browser.op.endpoints["end_session"]
    params = query(location)
    assert {name: len(values) for name, values in params.items()} == {
        "id_token_hint": 1,
        "post_logout_redirect_uri": 1,
        "state": 1,
        "client_id": 1,
    }
    hint = browser.op.verify_own_token(params["id_token_hint"][0])
    assert hint is not None
    assert (hint["sub"], hint["aud"], hint["sid"]) == ("alice", DEFAULT_CLIENT_ID, sid)
    assert params["post_logout_redirect_uri"] == [LOGOUT_RETURN]
    assert params["client_id"] == [DEFAULT_CLIENT_ID]
    assert len(params["state"][0]) >= 43
    await browser.op.approve(location)
    assert browser.op.oracle.last("end_session").outcome == "ok"
    assert sid not in browser.op.sessions


@pytest.mark.checklist(50)
async def test_local_session_is_deleted_before_the_redirect_to_the_op(browser: Browser):
    await browser.login()
    session_id = browser.client.cookies[SESSION]

    response = await logout(browser)

    assert response.status_code == 303
    assert browser.op.oracle.count("end_session") == 0
    deletion = set_cookies(response)[SESSION]
    assert deletion.deletes
    assert_host_only_secure(deletion)
    assert await signed_in_as(browser) is None
    plant(browser, SESSION, session_id)
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(50)
async def test_logout_return_with_its_state_lands_on_the_stored_path(browser: Browser):
    await browser.login()
    response = await logout(browser, return_to="/goodbye?see=you")

    landed = await browser.deliver(await browser.op.approve(response.headers["location"]))

    assert landed.status_code == 303
    assert landed.headers["location"] == "/goodbye?see=you"
    assert landed.headers["cache-control"].startswith("no-store")
    assert await signed_in_as(browser) is None


# -- row 51 -----------------------------------------------------------------------------------
@pytest.mark.checklist(51)
@pytest.mark.parametrize("mode", ["other", "missing", "altered"])
async def test_logout_return_with_another_or_no_state_shows_the_neutral_page(
    browser: Browser, mode: str
):
    await browser.login()
    response = await logout(browser, return_to="/goodbye")
    with browser.op.misbehaving(logout_state=mode):
        back = await browser.op.approve(response.headers["location"])

    page = await browser.deliver(back)

    assert page.status_code == 200
    assert "location" not in page.headers
    assert "You are signed out." in page.text
    assert "/goodbye" not in page.text
    assert page.headers["cache-control"].startswith("no-store")
    assert SESSION not in set_cookies(page)
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(51)
async def test_logout_return_in_another_browser_shows_the_neutral_page(browser: Browser):
    await browser.login()
    response = await logout(browser, return_to="/goodbye")
    back = await browser.op.approve(response.headers["location"])
    browser.client.cookies.delete(TXN)  # the state is bound to the browser that logged out

    page = await browser.deliver(back)

    assert page.status_code == 200
    assert "location" not in page.headers
    assert "You are signed out." in page.text


# -- row 52 -----------------------------------------------------------------------------------
@pytest.mark.checklist(52)
async def test_without_end_session_endpoint_logout_is_local_and_lands_on_the_default_page(
    open_browser: OpenBrowser, fake_op: FakeOP
):
    fake_op.misbehave.metadata = {"end_session_endpoint": ABSENT}
    browser = await open_browser()
    await browser.login()

    response = await logout(browser, return_to=EVIL)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert set_cookies(response)[SESSION].deletes
    assert TXN not in set_cookies(response)
    assert fake_op.oracle.count("end_session") == 0
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(52)
@pytest.mark.parametrize("field", ["return_to", "post_logout_redirect_uri", "next"])
@pytest.mark.parametrize("where", ["form", "query"])
async def test_attacker_supplied_logout_target_is_ignored(browser: Browser, field: str, where: str):
    await browser.login()
    form = {"csrf_token": await csrf_token(browser)}
    extra = {field: EVIL}

    response = await browser.client.post(
        "/auth/logout",
        data=form | extra if where == "form" else form,
        params=extra if where == "query" else None,
        follow_redirects=False,
    )

    location = response.headers["location"]
    assert EVIL not in location
    assert query(location)["post_logout_redirect_uri"] == [LOGOUT_RETURN]
    landed = await browser.deliver(await browser.op.approve(location))
    assert landed.headers["location"] == "/"


@pytest.mark.checklist(52)
async def test_cross_site_get_to_logout_logs_no_one_out(browser: Browser):
    await browser.login()

    response = await browser.client.get(
        "/auth/logout",
        headers={"Sec-Fetch-Site": "cross-site", "Referer": f"{EVIL}/"},
        follow_redirects=False,
    )

    assert response.status_code == 405
    assert SESSION not in set_cookies(response)
    assert "location" not in response.headers
    assert await signed_in_as(browser) == "alice"


@pytest.mark.checklist(52)
@pytest.mark.parametrize("token", [None, "", "wrong-token"], ids=["none", "empty", "wrong"])
async def test_logout_post_without_the_csrf_token_is_refused(browser: Browser, token: str | None):
    await browser.login()
    form = {} if token is None else {"csrf_token": token}

    response = await browser.client.post("/auth/logout", data=form, follow_redirects=False)

    assert response.status_code == 403
    assert SESSION not in set_cookies(response)
    assert "location" not in response.headers
    assert await signed_in_as(browser) == "alice"


@pytest.mark.checklist(52)
async def test_logout_post_with_another_sessions_csrf_token_is_refused(browser: Browser):
    await browser.login()
    old_token = await csrf_token(browser)
    await browser.login()  # a new session, with a new token

    response = await browser.client.post(
        "/auth/logout", data={"csrf_token": old_token}, follow_redirects=False
    )

    assert response.status_code == 403
    assert await signed_in_as(browser) == "alice"


# -- row 61 -----------------------------------------------------------------------------------
@pytest.mark.checklist(61)
async def test_query_mode_transaction_cookie_is_lax_and_the_login_completes(browser: Browser):
    started = await browser.start_login(return_to="/me")

    assert set_cookies(started)[TXN].attributes.get("samesite", "").lower() == "lax"
    callback = await browser.op.approve(started.headers["location"])
    assert callback.method == "GET"
    landed = await browser.deliver(callback)
    assert landed.headers["location"] == "/me"
    assert await signed_in_as(browser) == "alice"


@pytest.mark.checklist(61)
async def test_form_post_transaction_cookie_is_samesite_none_secure_and_the_post_completes(
    open_browser: OpenBrowser, fake_op: FakeOP
):
    provider = fake_op.provider_config(
        scopes=("openid", "profile", "email"), response_mode="form_post"
    )
    browser = await open_browser(providers=[provider])

    started = await browser.start_login(return_to="/me")

    cookie = set_cookies(started)[TXN]
    assert cookie.attributes.get("samesite", "").lower() == "none"
    assert "secure" in cookie.attributes
    assert query(started.headers["location"])["response_mode"] == ["form_post"]
    callback = await browser.op.approve(started.headers["location"])
    assert callback.method == "POST"
    landed = await browser.deliver(callback)
    assert landed.status_code == 303
    assert landed.headers["location"] == "/me"
    assert await signed_in_as(browser) == "alice"


@pytest.mark.checklist(61)
def test_strict_transaction_cookie_is_refused_with_the_reason(fake_op: FakeOP):
    with pytest.raises(ConfigurationError) as refused:
        RPKitConfig(
            providers=[fake_op.provider_config()], secret=SECRET, transaction_samesite="strict"
        )

    message = str(refused.value)
    assert "transaction_samesite='strict'" in message
    assert "cross-site" in message
    assert "'lax'" in message


# -- row 62 -----------------------------------------------------------------------------------
@pytest.mark.checklist(62)
async def test_transaction_cookie_is_host_only_secure_httponly_and_short_lived(browser: Browser):
    started = await browser.start_login()

    cookie = set_cookies(started)[TXN]
    assert_host_only_secure(cookie)
    assert "httponly" in cookie.attributes
    assert cookie.attributes["max-age"] == "600"


@pytest.mark.checklist(62)
async def test_transaction_cookie_reveals_no_state_nonce_or_verifier(browser: Browser):
    started = await browser.start_login()
    sealed = set_cookies(started)[TXN].value
    authorize = query(started.headers["location"])

    await browser.deliver(await browser.op.approve(started.headers["location"]))

    verifier = browser.op.oracle.last("token").param("code_verifier")
    assert verifier
    secrets_ = [authorize["state"][0], authorize["nonce"][0], verifier]
    raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
    for value in secrets_:
        assert value not in sealed
        assert value.encode() not in raw


@pytest.mark.checklist(62)
async def test_tampered_transaction_cookie_is_ignored_like_another_browsers(browser: Browser):
    started = await browser.start_login(return_to="/me")
    sealed = browser.client.cookies[TXN]
    middle = len(sealed) // 2
    flipped = "A" if sealed[middle] != "A" else "B"
    plant(browser, TXN, sealed[:middle] + flipped + sealed[middle + 1 :])

    response = await browser.deliver(await browser.op.approve(started.headers["location"]))

    assert response.status_code == 400
    assert browser.op.oracle.count("token") == 0
    assert SESSION not in set_cookies(response)
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(62)
async def test_callback_deletes_the_transaction_cookie_and_sets_a_secure_session_cookie(
    browser: Browser,
):
    started = await browser.start_login()

    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))

    cookies = set_cookies(landed)
    deletion = cookies[TXN]
    assert deletion.deletes
    assert_host_only_secure(deletion)  # without Secure a browser ignores a __Host- deletion
    session = cookies[SESSION]
    assert_host_only_secure(session)
    assert "httponly" in session.attributes
    assert not session.deletes
    assert TXN not in browser.client.cookies
    assert await signed_in_as(browser) == "alice"


@pytest.mark.checklist(62)
async def test_session_cookie_holds_only_an_opaque_id(browser: Browser):
    landed = await browser.login()

    value = set_cookies(landed)[SESSION].value
    tokens = (await browser.client.get("/session")).json()
    assert tokens["access_token"] not in value
    assert "." not in value  # not a JWT or any other readable token
    assert len(value) >= 43


# -- row 63 -----------------------------------------------------------------------------------
@pytest.mark.checklist(63)
async def test_two_tabs_complete_in_reverse_order_each_on_its_own_return_to(browser: Browser):
    first = await browser.start_login(return_to="/first")
    second = await browser.start_login(return_to="/second")
    first_callback = await browser.op.approve(first.headers["location"])
    second_callback = await browser.op.approve(second.headers["location"])

    second_landed = await browser.deliver(second_callback)
    first_landed = await browser.deliver(first_callback)

    assert second_landed.status_code == 303
    assert second_landed.headers["location"] == "/second"
    assert first_landed.status_code == 303
    assert first_landed.headers["location"] == "/first"
    assert await signed_in_as(browser) == "alice"
    challenges = [r.param("code_challenge") for r in browser.op.oracle.of("authorize")]
    verifiers = [r.param("code_verifier") for r in browser.op.oracle.of("token")]
    assert [s256_challenge(v or "") for v in verifiers] == challenges[::-1]
    assert deleted(first_landed, TXN)
    assert not deleted(second_landed, TXN)


def deleted(response: httpx.Response, name: str) -> bool:
    cookie = set_cookies(response).get(name)
    return cookie is not None and cookie.deletes


@pytest.mark.checklist(63)
async def test_an_abandoned_tab_does_not_break_the_other_tabs_login(browser: Browser):
    await browser.start_login(return_to="/abandoned")
    started = await browser.start_login(return_to="/kept")

    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))

    assert landed.headers["location"] == "/kept"
    assert await signed_in_as(browser) == "alice"


@pytest.fixture
async def two_op_browser(fake_op: FakeOP) -> AsyncIterator[tuple[Browser, FakeOP]]:
    """One app with two providers at two OPs: ``fake`` (the fixture's OP) and ``other``."""
    other = FakeOP("https://other-op.rpkit.test")
    other.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/other",)))
    scopes = ("openid", "profile", "email")
    providers = [
        fake_op.provider_config(scopes=scopes),
        other.provider_config("other", scopes=scopes),
    ]
    config = RPKitConfig(providers=providers, secret=SECRET, base_url=BASE)
    plugin = RPKitPlugin(config, http_transport=fake_op.transport(other))
    app = Litestar([home, me], plugins=[plugin])
    async with AsyncTestClient(app, base_url=BASE) as client:
        yield Browser(client, fake_op), other


@pytest.mark.checklist(63)
async def test_two_tabs_at_two_ops_complete_in_reverse_order_without_mix_up(
    two_op_browser: tuple[Browser, FakeOP],
):
    browser, other = two_op_browser
    other.login_as("bob")
    first = await browser.start_login(return_to="/at-fake")
    second = await browser.start_login("/auth/login/other", return_to="/at-other")
    first_callback = await browser.op.approve(first.headers["location"])
    second_callback = await other.approve(second.headers["location"])

    second_landed = await browser.deliver(second_callback)
    assert second_landed.headers["location"] == "/at-other"
    assert await signed_in_as(browser) == "bob"
    first_landed = await browser.deliver(first_callback)

    assert first_landed.headers["location"] == "/at-fake"
    assert await signed_in_as(browser) == "alice"
    assert browser.op.oracle.count("token") == 1
    assert other.oracle.count("token") == 1
    for op in (browser.op, other):
        challenge = op.oracle.last("authorize").param("code_challenge")
        assert s256_challenge(op.oracle.last("token").param("code_verifier") or "") == challenge


# -- row 64 -----------------------------------------------------------------------------------
@pytest.mark.checklist(64)
async def test_planted_session_id_never_becomes_authenticated(browser: Browser):
    planted = "attacker-knows-this-session-id-0123456789abcdef"
    plant(browser, SESSION, planted)
    assert await signed_in_as(browser) is None

    landed = await browser.login()

    issued = set_cookies(landed)[SESSION].value
    assert issued != planted
    assert await signed_in_as(browser) == "alice"
    plant(browser, SESSION, planted)
    assert await signed_in_as(browser) is None


@pytest.mark.checklist(64)
async def test_logging_in_again_issues_a_new_id_and_csrf_token_and_ends_the_old_id(
    browser: Browser,
):
    first = set_cookies(await browser.login())[SESSION].value
    first_csrf = await csrf_token(browser)

    second = set_cookies(await browser.login())[SESSION].value

    assert second != first
    assert await csrf_token(browser) != first_csrf
    plant(browser, SESSION, first)
    assert await signed_in_as(browser) is None
    plant(browser, SESSION, second)
    assert await signed_in_as(browser) == "alice"


# -- row 65 -----------------------------------------------------------------------------------
UNSAFE_RETURN_TO = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "\\\\evil.example",
    " //evil.example",
]


@pytest.mark.checklist(65)
@pytest.mark.parametrize("return_to", UNSAFE_RETURN_TO)
async def test_unsafe_return_to_lands_on_the_default_page(browser: Browser, return_to: str):
    landed = await browser.login(return_to=return_to)

    assert landed.status_code == 303
    assert landed.headers["location"] == "/"


@pytest.mark.checklist(65)
async def test_raw_percent_encoded_scheme_relative_return_to_lands_on_the_default_page(
    browser: Browser,
):
    started = await browser.client.get(
        "/auth/login/fake?return_to=%2F%2Fevil.example", follow_redirects=False
    )

    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))

    assert landed.headers["location"] == "/"


@pytest.mark.checklist(65)
async def test_safe_return_to_is_kept(browser: Browser):
    landed = await browser.login(return_to="/reports/2024?tab=summary")

    assert landed.headers["location"] == "/reports/2024?tab=summary"


@pytest.mark.checklist(65)
async def test_return_to_added_to_the_callback_is_ignored(browser: Browser):
    started = await browser.start_login(return_to="/me")
    callback = await browser.op.approve(started.headers["location"])

    injected = f"{callback.location}&{urlencode({'return_to': EVIL, 'next': EVIL})}"

    landed = await browser.client.get(injected, follow_redirects=False)

    assert landed.status_code == 303
    assert landed.headers["location"] == "/me"


@pytest.mark.checklist(65)
async def test_third_party_login_for_an_unconfigured_provider_is_404_and_reaches_no_op(
    fake_op: FakeOP,
):
    evil = FakeOP(EVIL)
    app, plugin = make_app(fake_op)
    transport = plugin.http_transport
    assert isinstance(transport, FakeOPTransport)
    transport.add(evil)
    async with AsyncTestClient(app, base_url=BASE) as client:
        before = len(fake_op.oracle)

        response = await client.get(
            "/auth/login/evil",
            params={"iss": EVIL, "login_hint": "alice", "target_link_uri": f"{BASE}/me"},
            follow_redirects=False,
        )

    assert response.status_code == 404
    assert "location" not in response.headers
    assert TXN not in set_cookies(response)
    assert evil.oracle.count() == 0
    assert len(fake_op.oracle) == before


@pytest.mark.checklist(65)
async def test_third_party_login_for_a_configured_provider_passes_login_hint(browser: Browser):
    started = await browser.start_login(login_hint="bob@example.org", return_to="/me")

    assert query(started.headers["location"])["login_hint"] == ["bob@example.org"]
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))
    assert landed.headers["location"] == "/me"
    assert await signed_in_as(browser) == "bob"


@pytest.mark.checklist(65)
async def test_initiated_login_for_a_configured_issuer_passes_login_hint_and_lands_on_target(
    browser: Browser,
):
    started = await browser.client.get(
        "/auth/initiate",
        params={"iss": browser.op.issuer, "login_hint": "bob", "target_link_uri": f"{BASE}/me"},
        follow_redirects=False,
    )

    assert started.status_code == 303
    assert started.headers["location"].startswith(browser.op.endpoints["authorize"])
    assert query(started.headers["location"])["login_hint"] == ["bob"]
    assert TXN in set_cookies(started)
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))
    assert landed.headers["location"] == "/me"
    assert await signed_in_as(browser) == "bob"


@pytest.mark.checklist(65)
async def test_initiated_login_by_form_post_works_too(browser: Browser):
    started = await browser.client.post(
        "/auth/initiate",
        data={"iss": browser.op.issuer, "target_link_uri": "/me?tab=1"},
        follow_redirects=False,
    )

    assert started.status_code == 303
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))
    assert landed.headers["location"] == "/me?tab=1"


@pytest.mark.checklist(65)
@pytest.mark.parametrize(
    "asked",
    [
        {"iss": EVIL},
        {"iss": "https://OP.rpkit.test"},
        {"iss": "https://op.rpkit.test/"},
        {},
    ],
    ids=["foreign", "host-case", "trailing-slash", "missing"],
)
async def test_initiated_login_for_an_unconfigured_issuer_is_404_and_fetches_nothing(
    fake_op: FakeOP, asked: dict[str, str]
):
    evil = FakeOP(EVIL)
    app, plugin = make_app(fake_op)
    transport = plugin.http_transport
    assert isinstance(transport, FakeOPTransport)
    transport.add(evil)
    async with AsyncTestClient(app, base_url=BASE) as client:
        before = len(fake_op.oracle)
        response = await client.get(
            "/auth/initiate", params={**asked, "login_hint": "alice"}, follow_redirects=False
        )

    assert response.status_code == 404
    assert "location" not in response.headers
    assert TXN not in set_cookies(response)
    assert evil.oracle.count() == 0
    assert len(fake_op.oracle) == before


@pytest.mark.checklist(65)
@pytest.mark.parametrize(
    "target",
    [
        f"{EVIL}/me",
        "https://app.rpkit.test.evil.example/me",
        "http://app.rpkit.test/me",
        "//evil.example/me",
        "javascript:alert(1)",
        "/\\evil.example",
    ],
)
async def test_initiated_login_with_a_foreign_target_lands_on_the_default_page(
    browser: Browser, target: str
):
    started = await browser.client.get(
        "/auth/initiate",
        params={"iss": browser.op.issuer, "target_link_uri": target},
        follow_redirects=False,
    )

    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))

    assert landed.headers["location"] == "/"


@pytest.mark.checklist(65)
async def test_initiated_login_repeating_iss_is_refused(browser: Browser):
    before = browser.op.oracle.count()
    response = await browser.client.get(
        f"/auth/initiate?iss={browser.op.issuer}&iss={EVIL}", follow_redirects=False
    )

    assert response.status_code == 400
    assert TXN not in set_cookies(response)
    assert browser.op.oracle.count() == before


# -- row 66 -----------------------------------------------------------------------------------
@pytest.mark.checklist(66)
async def test_callback_response_is_a_no_store_no_referrer_303_to_a_clean_url(
    browser: Browser,
):
    started = await browser.start_login(return_to="/me")
    callback = await browser.op.approve(started.headers["location"])
    code, state = callback.get("code"), callback.get("state")
    assert code
    assert state

    landed = await browser.deliver(callback)

    assert landed.status_code == 303
    assert landed.headers["location"] == "/me"
    assert landed.headers["cache-control"].startswith("no-store")
    assert landed.headers["referrer-policy"] == "no-referrer"
    assert code not in landed.text
    assert state not in landed.text
    assert not any(marker in landed.text for marker in ("<script", "src="))


@pytest.mark.checklist(66)
@pytest.mark.parametrize(
    "knobs",
    [{"callback_state": "altered"}, {"authorize_error": "access_denied"}],
    ids=["bad-state", "op-error"],
)
async def test_callback_error_page_is_no_store_no_referrer_and_self_contained(
    browser: Browser, knobs: dict[str, str]
):
    started = await browser.start_login(return_to="/me")
    with browser.op.misbehaving(**knobs):
        callback = await browser.op.approve(started.headers["location"])

    page = await browser.deliver(callback)

    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"].startswith("no-store")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert not any(marker in page.text.lower() for marker in THIRD_PARTY_MARKERS)
    for name in ("code", "state"):
        value = callback.get(name)
        assert value is None or value not in page.text
    assert browser.op.oracle.count("token") == 0


@pytest.mark.checklist(66)
async def test_callback_error_redirect_to_the_apps_error_page_is_no_store_no_referrer(
    open_browser: OpenBrowser,
):
    browser = await open_browser(error_page="/sign-in-problem")
    started = await browser.start_login(return_to="/me")
    with browser.op.misbehaving(callback_state="altered"):
        callback = await browser.op.approve(started.headers["location"])

    response = await browser.deliver(callback)

    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in-problem?error=invalid_state"
    assert response.headers["cache-control"].startswith("no-store")
    assert response.headers["referrer-policy"] == "no-referrer"
