"""Guards decide who reaches a route: browsers are sent to sign in (again), APIs get 401/403."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.testing import AsyncTestClient, RequestFactory

from rpkit.client import Identity
from rpkit.errors import (
    ConfigurationError,
    NotSignedInError,
    PermissionDeniedError,
    StepUpRequiredError,
)
from rpkit.litestar import (
    RPKitConfig,
    requires_acr,
    requires_claim,
    requires_login,
    requires_provider,
    requires_recent_auth,
)
from rpkit.litestar.plugin import _SESSION_STATE_KEY
from rpkit.litestar.session import SessionData, SessionView
from rpkit.testing import ABSENT, FakeOP
from tests.litestar.conftest import BASE, SECRET, Browser, make_app

PAGE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
API = {"accept": "application/json"}


@get("/private", guards=[requires_login()])
async def private() -> str:
    return "private"


@post("/private", guards=[requires_login()])
async def private_post() -> str:
    return "posted"


@get("/docs/{rest:path}", guards=[requires_login()])
async def docs(rest: FromPath[str]) -> str:
    return rest


@get("/fake-only", guards=[requires_provider("fake")])
async def fake_only() -> str:
    return "fake"


@get("/okta-only", guards=[requires_provider("okta")])
async def okta_only() -> str:
    return "okta"


@get("/admins", guards=[requires_claim("groups", "admins")])
async def admins() -> str:
    return "admins"


@get("/alice-only", guards=[requires_claim("email", "alice@example.com")])
async def alice_only() -> str:
    return "alice"


@get("/verified", guards=[requires_claim("email_verified", True)])
async def verified() -> str:
    return "verified"


@get("/mfa", guards=[requires_acr("urn:rpkit:mfa", "urn:rpkit:hwk")])
async def mfa() -> str:
    return "mfa"


@get("/recent", guards=[requires_recent_auth(300)])
async def recent() -> str:
    return "recent"


@get("/whoami", guards=[requires_login()])
async def whoami(rpkit_user: NamedDependency[Identity | None]) -> dict[str, Any]:
    assert rpkit_user is not None
    return {
        "provider": rpkit_user.provider,
        "subject": rpkit_user.subject,
        "email": rpkit_user.email,
        "email_verified": rpkit_user.email_verified,
        "name": rpkit_user.name,
    }


GUARDED = [private, private_post, docs, fake_only, okta_only, admins, alice_only]
GUARDED += [verified, mfa, recent, whoami]


def guarded_app(op: FakeOP, **config: Any) -> Litestar:
    app, _ = make_app(op, **config)
    for handler in GUARDED:
        app.register(handler)
    return app


@pytest.fixture
async def browser(fake_op: FakeOP) -> AsyncIterator[Browser]:
    async with AsyncTestClient(guarded_app(fake_op), base_url=BASE) as client:
        client.follow_redirects = False  # redirects are what these tests look at
        yield Browser(client, fake_op)


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


def assert_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert response.json()["status"] == status


# -- requires_login ----------------------------------------------------------------------------
async def test_signed_in_user_reaches_a_login_guarded_page(browser: Browser):
    await browser.login()

    response = await browser.client.get("/private", headers=PAGE)

    assert response.status_code == 200
    assert response.text == "private"


async def test_anonymous_page_load_is_sent_to_login_with_a_return_to(browser: Browser):
    response = await browser.client.get("/private?tab=1&x=a%20b", headers=PAGE)

    assert response.status_code == 303
    location = response.headers["location"]
    assert urlsplit(location).path == "/auth/login/fake"
    assert query_of(location) == {"return_to": ["/private?tab=1&x=a%20b"]}
    assert response.headers["cache-control"].startswith("no-store")
    assert browser.op.oracle.count("authorize") == 0


async def test_login_from_the_redirect_lands_back_on_the_guarded_page(browser: Browser):
    denied = await browser.client.get("/private?tab=1", headers=PAGE)
    started = await browser.client.get(denied.headers["location"], follow_redirects=False)
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))

    assert landed.headers["location"] == "/private?tab=1"
    assert (await browser.client.get("/private?tab=1", headers=PAGE)).status_code == 200


@pytest.mark.parametrize("path", ["/docs/a%5C%5Cevil.example", "/docs/a%0D%0ALocation:x"])
async def test_an_unsafe_current_path_is_not_offered_as_return_to(browser: Browser, path: str):
    response = await browser.client.get(path, headers=PAGE)

    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/auth/login/fake"
    assert "return_to" not in query_of(response.headers["location"])


async def test_anonymous_api_call_gets_a_401_problem(browser: Browser):
    response = await browser.client.get("/private", headers=API)

    assert_problem(response, 401, "login_required")
    assert "location" not in response.headers


async def test_anonymous_non_get_or_non_html_request_is_not_redirected(browser: Browser):
    posted = await browser.client.post("/private", headers=PAGE)
    fetched = await browser.client.get("/private", headers={"accept": "*/*"})

    assert posted.status_code == 401
    assert fetched.status_code == 401
    assert "location" not in posted.headers
    assert "location" not in fetched.headers


async def test_with_several_providers_an_anonymous_page_load_is_not_redirected(fake_op: FakeOP):
    two = [fake_op.provider_config(), fake_op.provider_config(id="other")]
    async with AsyncTestClient(guarded_app(fake_op, providers=two), base_url=BASE) as client:
        response = await client.get("/private", headers=PAGE, follow_redirects=False)

    assert response.status_code == 401
    assert "login_required" in response.text


async def test_with_several_providers_and_a_login_page_a_page_load_goes_there(fake_op: FakeOP):
    two = [fake_op.provider_config(), fake_op.provider_config(id="other")]
    app = guarded_app(fake_op, providers=two, login_page="/choose")
    async with AsyncTestClient(app, base_url=BASE) as client:
        page = await client.get("/private?tab=1", headers=PAGE, follow_redirects=False)
        api = await client.get("/private", headers=API, follow_redirects=False)
        only_fake = await client.get("/fake-only", headers=PAGE, follow_redirects=False)

    assert page.status_code == 303
    assert urlsplit(page.headers["location"]).path == "/choose"
    assert query_of(page.headers["location"])["return_to"] == ["/private?tab=1"]
    assert_problem(api, 401, "login_required")
    assert urlsplit(only_fake.headers["location"]).path == "/auth/login/fake"


@pytest.mark.parametrize("page", ["https://evil.example/login", "//evil.example", "login"])
def test_a_login_page_off_this_app_is_refused(fake_op: FakeOP, page: str):
    with pytest.raises(ConfigurationError, match="login_page"):
        RPKitConfig(providers=[fake_op.provider_config()], secret=SECRET, login_page=page)


# -- requires_provider -------------------------------------------------------------------------
async def test_provider_guard_allows_its_provider(browser: Browser):
    await browser.login()

    assert (await browser.client.get("/fake-only", headers=PAGE)).status_code == 200


async def test_provider_guard_refuses_another_provider_with_403(browser: Browser):
    await browser.login()

    page = await browser.client.get("/okta-only", headers=PAGE)
    api = await browser.client.get("/okta-only", headers=API)

    assert page.status_code == 403
    assert "location" not in page.headers
    assert_problem(api, 403, "forbidden")


async def test_provider_guard_sends_anonymous_browsers_to_its_own_provider(browser: Browser):
    response = await browser.client.get("/okta-only", headers=PAGE)

    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/auth/login/okta"


# -- requires_claim ----------------------------------------------------------------------------
async def test_claim_guard_allows_an_equal_claim_and_refuses_another_user(browser: Browser):
    await browser.login()
    assert (await browser.client.get("/alice-only", headers=API)).status_code == 200

    browser.op.login_as("bob")
    await browser.login()

    assert_problem(await browser.client.get("/alice-only", headers=API), 403, "forbidden")


async def test_claim_guard_allows_a_list_claim_containing_the_value(browser: Browser):
    browser.op.misbehave.id_token_claims = {"groups": ["staff", "admins"]}
    await browser.login()

    assert (await browser.client.get("/admins", headers=API)).status_code == 200


@pytest.mark.parametrize("groups", [["staff"], "staff", ABSENT])
async def test_claim_guard_refuses_a_missing_or_other_claim(browser: Browser, groups: Any):
    browser.op.misbehave.id_token_claims = {"groups": groups}
    await browser.login()

    assert_problem(await browser.client.get("/admins", headers=API), 403, "forbidden")


async def test_claim_guard_does_not_take_1_for_true(browser: Browser):
    await browser.login()
    assert (await browser.client.get("/verified", headers=API)).status_code == 200

    browser.op.misbehave.id_token_claims = {"email_verified": 1}
    await browser.login()

    assert_problem(await browser.client.get("/verified", headers=API), 403, "forbidden")


# -- requires_acr ------------------------------------------------------------------------------
async def test_acr_guard_allows_a_listed_acr(browser: Browser):
    browser.op.misbehave.id_token_claims = {"acr": "urn:rpkit:hwk"}
    await browser.login()

    assert (await browser.client.get("/mfa", headers=API)).status_code == 200


@pytest.mark.parametrize("acr", ["urn:rpkit:password", ABSENT])
async def test_acr_guard_refuses_another_or_missing_acr(browser: Browser, acr: Any):
    browser.op.misbehave.id_token_claims = {"acr": acr}
    await browser.login()

    assert_problem(await browser.client.get("/mfa", headers=API), 403, "forbidden")
    assert (await browser.client.get("/mfa", headers=PAGE)).status_code == 403


# -- requires_recent_auth ----------------------------------------------------------------------
async def test_recent_auth_guard_allows_a_fresh_login(browser: Browser):
    await browser.login()

    assert (await browser.client.get("/recent", headers=PAGE)).status_code == 200


@pytest.mark.parametrize("auth_time", [lambda c: c["auth_time"] - 3600, ABSENT])
async def test_stale_or_unknown_auth_gets_a_401_step_up_problem(browser: Browser, auth_time: Any):
    browser.op.misbehave.id_token_claims = {"auth_time": auth_time}
    await browser.login()

    assert_problem(await browser.client.get("/recent", headers=API), 401, "step_up_required")


async def test_stale_auth_page_load_steps_up_with_prompt_login_and_max_age(browser: Browser):
    browser.op.misbehave.id_token_claims = {"auth_time": lambda c: c["auth_time"] - 3600}
    await browser.login()
    browser.op.misbehave.id_token_claims = {}

    denied = await browser.client.get("/recent?r=1", headers=PAGE)
    assert denied.status_code == 303
    assert urlsplit(denied.headers["location"]).path == "/auth/login/fake"
    assert query_of(denied.headers["location"]) == {
        "return_to": ["/recent?r=1"],
        "prompt": ["login"],
        "max_age": ["300"],
    }
    started = await browser.client.get(denied.headers["location"], follow_redirects=False)
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))

    authorize = browser.op.oracle.last("authorize")
    assert authorize.param("prompt") == "login"
    assert authorize.param("max_age") == "300"
    assert landed.headers["location"] == "/recent?r=1"
    assert (await browser.client.get("/recent?r=1", headers=PAGE)).status_code == 200


async def test_a_step_up_whose_op_ignores_max_age_is_refused(browser: Browser):
    browser.op.misbehave.id_token_claims = {"auth_time": lambda c: c["auth_time"] - 3600}
    await browser.login()

    denied = await browser.client.get("/recent", headers=PAGE)
    started = await browser.client.get(denied.headers["location"], follow_redirects=False)
    landed = await browser.deliver(await browser.op.approve(started.headers["location"]))

    assert landed.status_code == 400
    assert "id_token_invalid" in landed.text


async def test_login_route_refuses_a_malformed_max_age(browser: Browser):
    response = await browser.start_login(max_age="soon")

    assert response.status_code == 400
    assert browser.op.oracle.count("authorize") == 0


# -- rpkit_user --------------------------------------------------------------------------------
async def test_rpkit_user_exposes_typed_profile_claims(browser: Browser):
    await browser.login()

    response = await browser.client.get("/whoami", headers=API)

    assert response.json() == {
        "provider": "fake",
        "subject": "alice",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
    }


async def test_rpkit_user_email_verified_is_false_unless_exactly_true(browser: Browser):
    browser.op.misbehave.id_token_claims = {"email_verified": "true", "name": 7}
    await browser.login()

    body = (await browser.client.get("/whoami", headers=API)).json()

    assert body["email_verified"] is False
    assert body["name"] is None


# -- unit tests with RequestFactory ------------------------------------------------------------
def session_data(**id_token_claims: Any) -> SessionData:
    return SessionData(
        provider_id="fake",
        issuer="https://op.rpkit.test",
        subject="alice",
        claims={"sub": "alice", "groups": ["admins"]},
        id_token="x.y.z",
        id_token_claims={"sub": "alice", **id_token_claims},
        access_token="at",
        token_type="Bearer",
        expires_at=int(time.time()) + 3600,
        refresh_token=None,
        scope=("openid",),
        csrf_token="csrf",
        created_at=int(time.time()),
    )


@pytest.fixture
def factory(fake_op: FakeOP) -> RequestFactory:
    return RequestFactory(app=make_app(fake_op)[0])


async def run_guard(guard: Any, factory: RequestFactory, session: SessionData | None) -> None:
    view = None if session is None else SessionView.of(session)  # as the runtime keeps it
    request = factory.get("/x", state={_SESSION_STATE_KEY: view})
    await guard(request, request.route_handler)


async def test_unit_guard_without_session_names_the_only_provider(factory: RequestFactory):
    with pytest.raises(NotSignedInError) as caught:
        await run_guard(requires_claim("groups", "admins"), factory, None)

    assert caught.value.provider_id == "fake"
    assert caught.value.code == "login_required"


async def test_unit_claim_guard_allows_and_denies(factory: RequestFactory):
    await run_guard(requires_claim("groups", "admins"), factory, session_data())

    with pytest.raises(PermissionDeniedError) as caught:
        await run_guard(requires_claim("groups", "staff"), factory, session_data())
    assert caught.value.requirement == "claim"


async def test_unit_recent_auth_counts_the_providers_leeway(factory: RequestFactory):
    now = time.time()
    guard = requires_recent_auth(300, clock=lambda: now)

    await run_guard(guard, factory, session_data(auth_time=int(now) - 330))  # within leeway 60
    with pytest.raises(StepUpRequiredError) as caught:
        await run_guard(guard, factory, session_data(auth_time=int(now) - 400))
    assert (caught.value.provider_id, caught.value.max_age) == ("fake", 300)


@pytest.mark.parametrize(
    "make",
    [
        requires_provider,
        lambda: requires_acr(""),
        lambda: requires_claim("", True),
        lambda: requires_recent_auth(0),
        lambda: requires_recent_auth(True),  # type: ignore[arg-type]
    ],
)
def test_guard_factories_refuse_meaningless_arguments(make: Any):
    with pytest.raises(ConfigurationError):
        make()
