"""One identity per person: the hosted and the headless sign-in of one person get one key."""

from __future__ import annotations

from typing import Any

import pytest

from rpkit.hooks import IdentitySource
from rpkit.testing import FakeUser
from rpkit_scalekit import ScalekitIdentity, email_key, identity_key
from rpkit_scalekit.errors import InvalidEmailError
from rpkit_scalekit.testing import Connection, FakeScalekit

from .conftest import ACME_CONNECTION, ACME_ORG, ALICE, Browser, query

pytestmark = pytest.mark.scalekit_b2b

EVIL_CONNECTION = "conn_200000000000000066"


@pytest.fixture
def modular(fake_scalekit: FakeScalekit) -> FakeScalekit:
    """An environment without user management: ``sub`` is ``conn_...;<email>``."""
    fake_scalekit.user_management = False
    return fake_scalekit


async def test_hosted_login_with_user_management_is_keyed_by_the_scalekit_user_id(
    browser: Browser,
) -> None:
    done = await browser.hosted_login(login_hint="alice@acme.test")

    assert browser.sets_session(done)
    me = await browser.whoami()
    assert me["subject"] == ALICE
    assert me["organization"] == ACME_ORG


async def test_sso_and_headless_sign_in_of_one_person_share_one_key(
    browser: Browser, modular: FakeScalekit
) -> None:
    hosted = await browser.hosted_login(login_hint="ALICE@Acme.Test")
    assert browser.sets_session(hosted)
    via_sso = await browser.whoami()
    await browser.sign_out()
    headless = await browser.headless_login("alice@ACME.test")
    assert browser.sets_session(headless)
    via_email = await browser.whoami()

    assert via_sso["subject"] == via_email["subject"] == "email:alice@acme.test"
    assert via_sso["organization"] == ACME_ORG, "the SSO login went through Acme's connection"
    issued = [c for c in modular.recording.calls if c.endpoint == "authorize"]
    assert query(issued[0].url)["connection_id"] == ACME_CONNECTION


async def test_hosted_passwordless_and_headless_share_one_key(
    browser: Browser, modular: FakeScalekit
) -> None:
    users_before = len(modular.users)
    hosted = await browser.hosted_login(login_hint="BOB@EXAMPLE.ORG")
    assert browser.sets_session(hosted)
    via_hosted = await browser.whoami()
    await browser.sign_out()
    await browser.headless_login("Bob@Example.org")
    via_headless = await browser.whoami()

    assert via_hosted["subject"] == via_headless["subject"] == "email:bob@example.org"
    assert len(modular.users) == users_before, "the fake found Bob whatever the letter case"


async def test_without_the_key_option_the_subject_is_scalekits_sub(
    modular: FakeScalekit,
) -> None:
    mapper = ScalekitIdentity(stable_key=False)
    claims = {"sub": "conn_1;ada@example.com", "email": "ada@example.com", "email_verified": True}

    fields = await mapper(source(claims))

    assert fields.subject == "conn_1;ada@example.com"


async def test_an_organizations_idp_asserting_someone_elses_domain_is_kept_apart(
    browser: Browser, modular: FakeScalekit
) -> None:
    impostor = FakeUser(
        "usr_900000000000000001", {"email": "bob@example.org", "email_verified": True}
    )
    modular.add_connection(
        Connection(
            EVIL_CONNECTION, "OKTA", "OIDC", "org_900", "Evil", ("evil.test",), user=impostor
        )
    )
    started = await browser.post("/start", connection_id=EVIL_CONNECTION)
    done = await browser.follow(started)

    assert browser.sets_session(done)
    me = await browser.whoami()
    assert me["subject"] == f"{EVIL_CONNECTION};bob@example.org"
    assert me["subject"] != email_key("bob@example.org")


async def test_a_failed_domain_lookup_refuses_the_login_rather_than_split_the_person(
    browser: Browser, modular: FakeScalekit
) -> None:
    started = await browser.post("/start", connection_id=ACME_CONNECTION, email="ada@acme.test")
    modular.fail_next("connections", 503, times=None)
    done = await browser.follow(started)

    assert done.status_code == 503
    assert not browser.sets_session(done)
    assert (await browser.whoami())["subject"] is None


async def test_an_unverified_email_keeps_scalekits_sub(
    browser: Browser, modular: FakeScalekit
) -> None:
    modular.login_as(FakeUser("usr_900000000000000002", {"email": "eve@example.org"}))
    done = await browser.hosted_login()

    assert browser.sets_session(done)
    assert (await browser.whoami())["subject"].endswith(";eve@example.org")


def test_the_fake_matches_email_addresses_case_insensitively(fake_scalekit: FakeScalekit) -> None:
    alice = fake_scalekit.users[ALICE]

    assert fake_scalekit.login_as("ALICE@ACME.TEST") is alice
    assert fake_scalekit.user_by_email("Alice@Acme.Test") is alice
    route = fake_scalekit.route(login_hint="ALICE@ACME.TEST")
    assert fake_scalekit.user_for(route, "ALICE@ACME.TEST") is alice
    assert len(fake_scalekit.users) == 2, "no new user for another letter case"


@pytest.mark.parametrize(
    ("sub", "email", "verified", "key"),
    [
        ("usr_1", "Ada@Example.com", True, "usr_1"),
        ("conn_1;Ada@Example.com", "Ada@Example.com", True, "email:ada@example.com"),
        ("conn_1;ada@example.com", "ada@example.com", "true", "conn_1;ada@example.com"),
        ("conn_1;ada@example.com", "ada@example.com", False, "conn_1;ada@example.com"),
        ("conn_1;x", "not an address", True, "conn_1;x"),
        ("conn_1;x", None, True, "conn_1;x"),
    ],
)
def test_identity_key_rules(sub: str, email: Any, verified: Any, key: str) -> None:
    assert identity_key(sub, email=email, email_verified=verified) == key


def test_email_key_lowercases_the_whole_address_and_refuses_non_addresses() -> None:
    assert email_key("ADA.Lovelace@EXAMPLE.com") == "email:ada.lovelace@example.com"
    with pytest.raises(InvalidEmailError):
        email_key("ada@example.com\nX-Injected: 1")
    longest = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 55 + ".com"
    with pytest.raises(InvalidEmailError):
        email_key(longest)
    assert identity_key("conn_1;x", email=longest, email_verified=True) == "conn_1;x"


async def test_mapper_takes_oid_xoid_xuid_only_when_they_are_strings() -> None:
    claims = {"sub": "usr_1", "oid": "org_1", "xoid": "ext_org_1", "xuid": "ext_usr_1"}
    fields = await ScalekitIdentity()(source(claims))
    assert (fields.organization, fields.external_organization_id, fields.external_user_id) == (
        "org_1",
        "ext_org_1",
        "ext_usr_1",
    )

    odd = await ScalekitIdentity()(source({"sub": "usr_1", "oid": 7, "xoid": ["x"], "xuid": ""}))
    assert (odd.organization, odd.external_organization_id, odd.external_user_id) == (None,) * 3


def source(claims: dict[str, Any]) -> IdentitySource:
    async def no_fetch(url: str) -> Any:
        raise AssertionError(url)

    return IdentitySource(
        provider_id="scalekit",
        issuer="https://rpkit-test.scalekit.test",
        claims=claims,
        userinfo=None,
        extras={},
        tenant=None,
        fetch_json=no_fetch,
    )


def query_of(url: str) -> dict[str, str]:
    from .conftest import query

    return query(url)
