"""What a newcomer meets around docs/scalekit.md: the one-time
``rpkit.scalekit.user_management_detected`` hint, an organization switch naming two
organizations, and a ``limiter_key`` given as a ``str``."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from rpkit.errors import ConfigurationError
from rpkit.hooks import IdentitySource
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.store import MemoryStore
from rpkit.testing import FakeUser
from rpkit_scalekit import ScalekitIdentity, scalekit
from rpkit_scalekit.identity import MAX_SEARCH_PAGES, SEARCH_PAGE_SIZE
from rpkit_scalekit.limiter import PasswordlessLimiter
from rpkit_scalekit.litestar import ScalekitLitestarPlugin
from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FakeDirectory,
    FakeDirectoryUser,
    FakeScalekit,
    WebhookEndpoint,
    new_webhook_secret,
)

from .conftest import ACME_ORG, ALICE, BASE, SECRET, SK, Browser, Heard, me

pytestmark = pytest.mark.scalekit_b2b

HINTED = "rpkit.scalekit.user_management_detected"


def _hints(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == HINTED]


def _source(sub: str, email: str = "ada@acme.test") -> IdentitySource:
    async def no_fetch(url: str) -> Any:
        raise AssertionError(f"the mapper fetched {url}")

    return IdentitySource(
        provider_id="scalekit",
        issuer="https://acme.scalekit.test",
        claims={"sub": sub, "email": email, "email_verified": True},
        userinfo=None,
        extras={},
        tenant=None,
        fetch_json=no_fetch,
    )


async def test_a_usr_subject_without_user_management_is_hinted_once_through_the_app(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    """The fixture's app calls ``scalekit()`` without ``user_management``; the fake has it on,
    so hosted logins' ``sub`` is ``usr_...``: the first logs the hint, the next do not."""
    assert fake_scalekit.user_management
    with capture_logs() as logs:
        first = await browser.hosted_login(login_hint="alice@acme.test")
        assert browser.sets_session(first)
        await browser.sign_out()
        second = await browser.hosted_login(login_hint="alice@acme.test")
        assert browser.sets_session(second)

    [hint] = _hints(logs)
    assert hint["log_level"] == "warning"
    assert hint["provider"] == "scalekit"
    assert "user_management=True" in hint["hint"]
    assert (await browser.whoami())["subject"] == ALICE  # the hint changes nothing


async def test_no_hint_with_user_management_or_without_a_usr_subject() -> None:
    managed = ScalekitIdentity(user_management=True)
    modular = ScalekitIdentity()
    with capture_logs() as logs:
        assert (await managed(_source("usr_100000000000000001"))).subject == (
            "usr_100000000000000001"
        )
        fields = await modular(_source("conn_200000000000000004;ada@acme.test"))
        assert fields.subject == "email:ada@acme.test"
    assert _hints(logs) == []


async def test_the_hint_is_once_per_mapper() -> None:
    mapper = ScalekitIdentity()
    with capture_logs() as logs:
        for _ in range(3):
            await mapper(_source("usr_100000000000000001"))
        await ScalekitIdentity()(_source("usr_100000000000000002"))
    assert len(_hints(logs)) == 2  # one per mapper (the second mapper is a second app)


async def test_an_organization_id_sent_twice_is_refused_before_any_login(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    """Which organization would the switch sign into? The route took the first and dropped the
    other; now it is a 400, with no login pended (no cookie) and nothing sent to Scalekit."""
    authorized = fake_scalekit.recording.count("authorize")
    answer = await browser.client.get(
        "/auth/scalekit/organizations/switch",
        params=[("organization_id", ACME_ORG), ("organization_id", "org_2")],
        headers={"accept": "application/json"},
        follow_redirects=False,
    )

    assert answer.status_code == 400
    assert answer.json()["code"] == "scalekit_invalid_input"
    assert answer.headers.get_list("set-cookie") == []
    assert fake_scalekit.recording.count("authorize") == authorized


@pytest.mark.parametrize("key", ["a-str-secret-from-the-environment" * 2, b"", 42])
def test_a_limiter_key_that_is_not_bytes_is_refused_when_configured(key: Any) -> None:
    """A ``str`` key (what an environment variable gives) used to pass and fail as a 500 at the
    first passwordless email (``hmac.new`` wants bytes)."""
    with pytest.raises(ConfigurationError, match="limiter_key must be non-empty bytes"):
        ScalekitLitestarPlugin(passwordless=True, limiter_key=key)
    with pytest.raises(ConfigurationError, match="limiter_key must be non-empty bytes"):
        PasswordlessLimiter(MemoryStore(), key=key)


async def test_a_bytes_limiter_key_lets_the_first_email_go_out(
    open_browser: Any, fake_scalekit: FakeScalekit
) -> None:
    browser = await open_browser(passwordless=True, limiter_key=b"k" * 32)

    done = await browser.headless_login("ada@acme.test")

    assert browser.sets_session(done)
    assert fake_scalekit.outbox.last("ada@acme.test").otp is not None


async def test_the_address_found_within_the_pages_read_signs_in_despite_more_partial_matches(
    fake_scalekit: FakeScalekit,
) -> None:
    """docs/scalekit.md said any search with more partial matches than three pages hold is
    refused; the code refuses it only when the address is not among the pages read (and never
    reads further). Alice's own user comes first, then more partial matches than are read."""
    count = SEARCH_PAGE_SIZE * MAX_SEARCH_PAGES + 1
    fake_scalekit.users.update(
        {
            f"usr_4000000000000{i:05d}": FakeUser(
                f"usr_4000000000000{i:05d}", {"email": f"x{i}alice@acme.test"}
            )
            for i in range(count)
        }
    )
    provider = scalekit(
        fake_scalekit.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, user_management=True
    )
    rpkit = RPKitPlugin(
        RPKitConfig(providers=[provider], secret=SECRET, base_url=BASE),
        http_transport=fake_scalekit.transport(),
    )
    app = Litestar([me], plugins=[rpkit, ScalekitLitestarPlugin(passwordless=True)])
    async with AsyncTestClient(app, base_url=BASE) as client:
        browser = Browser(client, fake_scalekit, rpkit, Heard())
        done = await browser.headless_login("alice@acme.test")

        assert browser.sets_session(done)
        assert (await browser.whoami())["subject"] == ALICE
    assert fake_scalekit.recording.count("users_search") == MAX_SEARCH_PAGES


async def test_the_fake_delivers_directory_events_only_to_a_registered_endpoint(
    open_browser: Any,
) -> None:
    """docs/scalekit.md's testing snippet: ``fake.deliver`` sends nothing (and says nothing)
    until the app's webhook URL is registered with the fake, as the snippet now does."""
    secret = new_webhook_secret()
    browser = await open_browser(webhook_secret=secret)
    fake = browser.fake
    directory = fake.add_directory(FakeDirectory("dir_1", "org_1"))
    ada = directory.add_user(FakeDirectoryUser("diruser_1", "ada@acme.test"))

    fake.send_directory_event("user_created", directory, ada)
    assert await fake.deliver(browser.client) == []

    fake.webhook_endpoints.append(WebhookEndpoint(f"{BASE}{SK}/webhooks", secret))
    fake.send_directory_event("user_created", directory, ada)
    [delivery] = await fake.deliver(browser.client)

    assert delivery.status == 200
    [heard] = await browser.heard.wait_for("rpkit.scalekit.directory.user_created")
    assert heard["payload"].email == "ada@acme.test"
