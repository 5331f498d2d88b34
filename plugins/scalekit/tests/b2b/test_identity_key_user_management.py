"""One identity per person with user management: a headless passwordless sign-in is keyed by
the person's Scalekit user id (``usr_...``), found with Scalekit's user search, as their hosted
login is."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from rpkit.client import Identity
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import Canned, FakeUser
from rpkit_scalekit import scalekit
from rpkit_scalekit.identity import MAX_SEARCH_PAGES, SEARCH_PAGE_SIZE
from rpkit_scalekit.litestar import ScalekitLitestarPlugin
from rpkit_scalekit.passwordless import VerifyResult
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeScalekit

from .conftest import ALICE, BASE, SECRET, Browser, Heard, me

pytestmark = pytest.mark.scalekit_b2b

BOB = "usr_100000000000000002"
OpenBrowser = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def open_app(fake_scalekit: FakeScalekit) -> AsyncIterator[OpenBrowser]:
    """An app whose preset says ``user_management`` (True unless told), with these
    :class:`ScalekitLitestarPlugin` options."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(*, user_management: bool = True, **options: Any) -> Browser:
            provider = scalekit(
                fake_scalekit.issuer,
                DEFAULT_CLIENT_ID,
                DEFAULT_CLIENT_SECRET,
                user_management=user_management,
            )
            rpkit = RPKitPlugin(
                RPKitConfig(providers=[provider], secret=SECRET, base_url=BASE),
                http_transport=fake_scalekit.transport(),
            )
            plugin = ScalekitLitestarPlugin(passwordless=True, **options)
            app = Litestar([me], plugins=[rpkit, plugin])
            client = await stack.enter_async_context(AsyncTestClient(app, base_url=BASE))
            return Browser(client, fake_scalekit, rpkit, Heard())

        yield open_


@pytest.fixture
async def browser(open_app: OpenBrowser) -> Browser:
    return await open_app()


async def code_sign_in(browser: Browser, email: str) -> httpx.Response:
    sent = await browser.post("/passwordless/send", email=email)
    assert sent.status_code == 200, sent.text
    return await browser.post("/passwordless/verify", code=browser.fake.outbox.last(email).otp)


def searches(fake: FakeScalekit) -> list[dict[str, str]]:
    return [dict(call.query) for call in fake.recording.of("users_search")]


async def test_hosted_sso_and_headless_code_share_the_scalekit_user_id(browser: Browser) -> None:
    hosted = await browser.hosted_login(login_hint="alice@acme.test")
    assert browser.sets_session(hosted)
    via_sso = await browser.whoami()
    await browser.sign_out()
    headless = await code_sign_in(browser, "Alice@ACME.test")

    assert headless.status_code == 200, headless.text
    assert browser.sets_session(headless)
    via_code = await browser.whoami()
    assert via_sso["subject"] == via_code["subject"] == ALICE
    assert via_code["email"] == "alice@acme.test"
    assert searches(browser.fake) == [{"query": "alice@acme.test", "page_size": "30"}]


async def test_hosted_sso_and_headless_magic_link_share_the_scalekit_user_id(
    browser: Browser,
) -> None:
    hosted = await browser.hosted_login(login_hint="ALICE@acme.test")
    via_sso = (await browser.whoami())["subject"]
    await browser.sign_out()
    browser.fake.passwordless.method = "LINK"
    sent = await browser.post("/passwordless/send", email="alice@Acme.Test")
    link = browser.fake.outbox.last("alice@acme.test").link
    assert sent.status_code == 200
    assert link
    landed = await browser.client.get(link, follow_redirects=False)

    assert browser.sets_session(hosted)
    assert landed.status_code == 303, landed.text
    assert browser.sets_session(landed)
    assert via_sso == (await browser.whoami())["subject"] == ALICE


@pytest.mark.parametrize(
    "typed", ["bob@example.org", "BOB@EXAMPLE.ORG", "Bob@Example.Org", "bOb@eXaMpLe.oRg"]
)
async def test_every_letter_case_of_the_address_finds_the_same_user(
    browser: Browser, typed: str
) -> None:
    users_before = len(browser.fake.users)

    await code_sign_in(browser, typed)

    assert (await browser.whoami())["subject"] == BOB
    assert len(browser.fake.users) == users_before


async def test_only_the_exact_address_counts_not_a_longer_one_containing_it(
    browser: Browser,
) -> None:
    # The search matches parts of addresses: "malice@acme.test" contains "alice@acme.test".
    browser.fake.users["usr_100000000000000099"] = FakeUser(
        "usr_100000000000000099", {"email": "malice@acme.test", "email_verified": True}
    )

    await code_sign_in(browser, "alice@acme.test")

    assert (await browser.whoami())["subject"] == ALICE


async def test_the_exact_address_is_found_on_a_later_page(browser: Browser) -> None:
    fake = browser.fake
    decoys = {
        f"usr_2000000000000{i:05d}": f"x{i}carol@example.net" for i in range(SEARCH_PAGE_SIZE + 5)
    }
    fake.users.update(
        {sub: FakeUser(sub, {"email": email}) for sub, email in decoys.items()}
        | {
            "usr_300000000000000001": FakeUser(
                "usr_300000000000000001", {"email": "carol@example.net"}
            )
        }
    )

    await code_sign_in(browser, "Carol@example.net")

    assert (await browser.whoami())["subject"] == "usr_300000000000000001"
    assert [s.get("page_token") for s in searches(fake)] == [None, str(SEARCH_PAGE_SIZE)]


@pytest.mark.parametrize("status", [500, 503, 429, 403, 400])
async def test_a_failed_lookup_refuses_the_sign_in_without_splitting_the_person(
    browser: Browser, status: int
) -> None:
    fake = browser.fake
    fake.fail_next("users_search", status, times=None)
    sent = await browser.post("/passwordless/send", email="alice@acme.test")
    assert sent.status_code == 200
    refused = await browser.post("/passwordless/verify", code=fake.outbox.last().otp)

    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "scalekit_unavailable"
    assert not browser.sets_session(refused)
    assert (await browser.whoami())["subject"] is None
    last = fake.recording.calls[-1]
    assert last.endpoint == "users_search", "nothing was asked of Scalekit after the failure"


@pytest.mark.parametrize(
    "answer",
    [
        {"users": [{"id": "not-a-user-id", "email": "alice@acme.test"}]},
        {"users": {"id": ALICE}},
        {"users": [], "next_page_token": 7},
        ["users"],
    ],
)
async def test_an_unexpected_search_answer_refuses_the_sign_in(
    browser: Browser, answer: Any
) -> None:
    browser.fake.knobs.respond["users_search"] = Canned.json(answer)

    refused = await code_sign_in(browser, "alice@acme.test")

    assert refused.status_code == 503, refused.text
    assert not browser.sets_session(refused)
    assert browser.fake.recording.calls[-1].endpoint == "users_search"


async def test_a_failed_magic_link_lookup_refuses_the_sign_in(browser: Browser) -> None:
    fake = browser.fake
    fake.passwordless.method = "LINK"
    await browser.post("/passwordless/send", email="alice@acme.test")
    fake.fail_next("users_search", 503)

    refused = await browser.client.get(fake.outbox.last().link or "", follow_redirects=False)

    assert refused.status_code == 503, refused.text
    assert not browser.sets_session(refused)
    assert (await browser.whoami())["subject"] is None


async def test_two_users_with_the_address_refuse_the_sign_in(browser: Browser) -> None:
    browser.fake.users["usr_100000000000000098"] = FakeUser(
        "usr_100000000000000098", {"email": "ALICE@acme.test"}
    )

    refused = await code_sign_in(browser, "alice@acme.test")

    assert refused.status_code == 503
    assert not browser.sets_session(refused)


async def test_more_partial_matches_than_are_read_refuse_the_sign_in(browser: Browser) -> None:
    fake = browser.fake
    count = SEARCH_PAGE_SIZE * MAX_SEARCH_PAGES + 1
    fake.users.update(
        {
            f"usr_4000000000000{i:05d}": FakeUser(
                f"usr_4000000000000{i:05d}", {"email": f"a{i}dan@x.io"}
            )
            for i in range(count)
        }
    )

    refused = await code_sign_in(browser, "dan@x.io")

    assert refused.status_code == 503
    assert len(searches(fake)) == MAX_SEARCH_PAGES
    assert not browser.sets_session(refused)


async def test_an_unknown_person_keeps_the_email_key_and_no_user_is_created(
    browser: Browser,
) -> None:
    fake = browser.fake
    users_before = dict(fake.users)

    done = await code_sign_in(browser, "Newcomer@Example.net")

    assert browser.sets_session(done)
    assert (await browser.whoami())["subject"] == "email:newcomer@example.net"
    assert fake.users == users_before, "no Scalekit user was created behind the app's back"
    assert searches(fake) == [{"query": "newcomer@example.net", "page_size": "30"}]


async def test_an_application_can_refuse_people_scalekit_does_not_know(
    open_app: OpenBrowser,
) -> None:
    async def known_only(result: VerifyResult, default: Identity) -> Identity | None:
        return None if default.subject.startswith("email:") else default

    browser = await open_app(user_hook=known_only)
    refused = await code_sign_in(browser, "newcomer@example.net")
    await browser.sign_out()
    admitted = await code_sign_in(browser, "bob@example.org")

    assert refused.status_code == 403
    assert not browser.sets_session(refused)
    assert browser.sets_session(admitted)
    assert (await browser.whoami())["subject"] == BOB


async def test_without_user_management_the_email_key_is_unchanged(open_app: OpenBrowser) -> None:
    browser = await open_app(user_management=False)

    done = await code_sign_in(browser, "Alice@Acme.test")

    assert browser.sets_session(done)
    assert (await browser.whoami())["subject"] == "email:alice@acme.test"
    assert searches(browser.fake) == [], "no lookup without user management"


async def test_an_environment_without_user_management_refuses_the_lookup(
    browser: Browser,
) -> None:
    # The app says user management, the environment has none: the search is not served.
    browser.fake.user_management = False

    refused = await code_sign_in(browser, "alice@acme.test")

    assert refused.status_code == 503
    assert [c.status for c in browser.fake.recording.of("users_search")] == [404]
    assert not browser.sets_session(refused)


async def test_the_fake_search_validates_its_query(fake_scalekit: FakeScalekit) -> None:
    async with httpx.AsyncClient(transport=fake_scalekit.transport()) as http:
        token = (
            await http.post(
                fake_scalekit.issuer + "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": DEFAULT_CLIENT_ID,
                    "client_secret": DEFAULT_CLIENT_SECRET,
                },
            )
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        url = fake_scalekit.issuer + "/api/v1/users:search"
        short = await http.get(url, params={"query": "al"}, headers=headers)
        big_page = await http.get(
            url, params={"query": "alice", "page_size": "31"}, headers=headers
        )
        found = await http.get(url, params={"query": "ALICE@ACME"}, headers=headers)

    assert short.status_code == 400
    assert big_page.status_code == 400
    assert [u["id"] for u in found.json()["users"]] == [ALICE]
