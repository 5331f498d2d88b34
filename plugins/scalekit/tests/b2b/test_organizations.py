"""Organizations: ``oid``/``xoid``/``xuid`` on the identity, and switching organization with
``prompt=select_account`` + ``organization_id``, against the fake Scalekit."""

from __future__ import annotations

import pytest

from rpkit_scalekit import ScalekitInputError, switch_organization_params
from rpkit_scalekit.testing import FakeOrganization, FakeScalekit

from .conftest import ACME_ORG, ALICE, SK, Browser, query

pytestmark = pytest.mark.scalekit_b2b

INITECH = "org_700000000000000001"
SWITCH = f"{SK}/organizations/switch"


@pytest.fixture
def initech(fake_scalekit: FakeScalekit) -> FakeOrganization:
    """An organization Alice belongs to, with external ids for it and for Alice."""
    organization = FakeOrganization(INITECH, "Initech", external_id="ext_org_42", members={ALICE})
    fake_scalekit.organizations[INITECH] = organization
    fake_scalekit.users[ALICE].claims["xuid"] = "ext_usr_7"
    return organization


async def test_switching_signs_in_to_the_chosen_organization(
    browser: Browser, initech: FakeOrganization
) -> None:
    await browser.hosted_login(login_hint="alice@acme.test")
    assert (await browser.whoami())["organization"] == ACME_ORG

    started = await browser.client.get(
        SWITCH,
        params={"organization_id": INITECH, "return_to": "/dashboard"},
        follow_redirects=False,
    )
    assert started.status_code == 303
    asked = query(started.headers["location"])
    assert (asked["prompt"], asked["organization_id"]) == ("select_account", INITECH)
    assert {"state", "nonce", "code_challenge"} <= set(asked)
    done = await browser.follow(started)

    assert done.headers["location"] == "/dashboard"
    assert browser.sets_session(done)
    me = await browser.whoami()
    assert me == {
        "subject": ALICE,
        "email": "alice@acme.test",
        "organization": INITECH,
        "external_organization_id": "ext_org_42",
        "external_user_id": "ext_usr_7",
    }


async def test_without_an_organization_the_switcher_is_shown(
    browser: Browser, initech: FakeOrganization
) -> None:
    started = await browser.client.get(SWITCH, follow_redirects=False)

    assert started.status_code == 303
    asked = query(started.headers["location"])
    assert asked["prompt"] == "select_account"
    assert "organization_id" not in asked


async def test_switching_into_an_organization_one_does_not_belong_to_signs_nobody_in(
    browser: Browser, initech: FakeOrganization
) -> None:
    initech.members.clear()
    started = await browser.client.get(
        SWITCH, params={"organization_id": INITECH}, follow_redirects=False
    )
    done = await browser.follow(started)

    assert done.status_code >= 400
    assert not browser.sets_session(done)
    assert (await browser.whoami())["subject"] is None
    assert browser.fake.recording.count("token") == 0


@pytest.mark.parametrize(
    "organization_id",
    [
        "",
        "org_",
        "acme",
        "conn_200000000000000001",
        "org_1&prompt=none",
        "org_1/../x",
        "ORG_1",
        "org_" + "1" * 65,
        "org_1\n",
    ],
)
async def test_a_malformed_organization_id_is_400_and_stores_nothing(
    browser: Browser, organization_id: str
) -> None:
    before = len(browser.fake.recording)
    refused = await browser.client.get(
        SWITCH, params={"organization_id": organization_id}, headers={"Accept": "application/json"}
    )

    assert refused.status_code == 400
    assert refused.json()["code"] == "scalekit_invalid_input"
    assert "set-cookie" not in refused.headers
    assert len(browser.fake.recording) == before, "no request reached Scalekit"


async def test_the_identity_carries_the_organization_of_an_sso_login(browser: Browser) -> None:
    await browser.hosted_login(login_hint="alice@acme.test")

    me = await browser.whoami()
    assert me["organization"] == ACME_ORG
    assert me["external_organization_id"] is None
    assert me["external_user_id"] is None


def test_switch_parameters_refuse_what_is_not_an_organization_id() -> None:
    assert switch_organization_params("org_59615193906282635") == {
        "prompt": "select_account",
        "organization_id": "org_59615193906282635",
    }
    with pytest.raises(ScalekitInputError):
        switch_organization_params("org_1 ")


async def test_a_browser_asking_a_malformed_switch_gets_a_400_page(browser: Browser) -> None:
    refused = await browser.client.get(
        SWITCH, params={"organization_id": "org_1<script>"}, headers={"Accept": "*/*"}
    )

    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html")
    assert "<script>" not in refused.text
    assert "set-cookie" not in refused.headers
