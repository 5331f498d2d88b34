"""Email-first login with routing, and IdP-initiated login, through the Litestar routes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from rpkit_scalekit.testing import FakeScalekit

from .conftest import BASE, SK, Browser

ACME_CONNECTION = "conn_200000000000000001"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_sso_domain_routes_to_its_connection_and_signs_in(browser: Browser) -> None:
    started = await browser.post("/start", email="ada@acme.test", return_to="/welcome")

    assert started.status_code == 200
    assert started.json()["next"] == "redirect"
    asked = query(started.json()["location"])
    assert asked["connection_id"] == ACME_CONNECTION
    assert asked["login_hint"] == "ada@acme.test"
    assert browser.fake.recording.count("passwordless_send") == 0
    done = await browser.follow_to_callback(started.json()["location"])
    assert done.status_code == 303
    assert done.headers["location"] == "/welcome"
    assert browser.sets_session(done)
    assert (await browser.whoami())["email"] == "ada@acme.test"


async def test_form_start_redirects_to_scalekit(browser: Browser) -> None:
    started = await browser.client.get(
        f"{SK}/start", params={"email": "ada@acme.test"}, follow_redirects=False
    )

    assert started.status_code == 303
    assert query(started.headers["location"])["connection_id"] == ACME_CONNECTION


async def test_get_start_never_sends_mail(browser: Browser) -> None:
    started = await browser.client.get(
        f"{SK}/start", params={"email": "ada@example.com"}, follow_redirects=False
    )

    assert started.status_code == 303
    assert query(started.headers["location"])["login_hint"] == "ada@example.com"
    assert browser.fake.recording.count("passwordless_send") == 0


async def test_start_with_a_bad_email_is_400(browser: Browser) -> None:
    refused = await browser.post("/start", email="not an email")

    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_email"
    assert browser.fake.recording.count("connections") == 0
    assert not browser.sets_session(refused)


async def test_start_without_passwordless_goes_to_the_hosted_page(
    open_browser: object,
) -> None:
    browser = await open_browser()  # type: ignore[operator]
    started = await browser.post("/start", email="ada@example.com")

    assert started.json()["next"] == "redirect"
    assert "connection_id" not in query(started.json()["location"])
    assert browser.fake.recording.count("passwordless_send") == 0


async def test_idp_initiated_login_becomes_an_sp_initiated_login(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    token = fake_scalekit.idp_initiated_login_token(
        connection_id=ACME_CONNECTION, login_hint="ada@acme.test", relay_state="/reports"
    )
    started = await browser.client.get(
        f"{SK}/idp-initiated", params={"idp_initiated_login": token}, follow_redirects=False
    )

    assert started.status_code == 303
    asked = query(started.headers["location"])
    assert asked["connection_id"] == ACME_CONNECTION
    assert asked["state"]
    assert asked["code_challenge"]
    done = await browser.follow_to_callback(started.headers["location"])
    assert done.headers["location"] == "/reports"
    assert browser.sets_session(done)


async def test_idp_initiated_relay_state_off_site_is_dropped(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    token = fake_scalekit.idp_initiated_login_token(
        connection_id=ACME_CONNECTION, relay_state="https://evil.test/phish"
    )
    started = await browser.client.get(
        f"{SK}/idp-initiated", params={"idp_initiated_login": token}, follow_redirects=False
    )
    done = await browser.follow_to_callback(started.headers["location"])

    assert done.headers["location"] == "/"


async def test_idp_initiated_with_a_forged_token_is_refused(
    browser: Browser, fake_scalekit: FakeScalekit
) -> None:
    token = fake_scalekit.idp_initiated_login_token(connection_id=ACME_CONNECTION)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    refused = await browser.client.get(
        f"{SK}/idp-initiated",
        params={"idp_initiated_login": forged},
        headers={"accept": "application/json"},
        follow_redirects=False,
    )

    assert refused.status_code == 400
    assert refused.json()["code"] == "idp_initiated_login_invalid"
    assert fake_scalekit.recording.count("authorize") == 0
    assert not browser.sets_session(refused)
    assert BASE


@pytest.mark.spi
async def test_core_login_with_login_hint_is_routed_through_the_preset_hook(
    browser: Browser,
) -> None:
    started = await browser.client.get(
        "/auth/login/scalekit",
        params={"login_hint": "ada@acme.test", "return_to": "/welcome"},
        follow_redirects=False,
    )

    assert started.status_code == 303
    asked = query(started.headers["location"])
    assert asked["connection_id"] == ACME_CONNECTION
    assert asked["login_hint"] == "ada@acme.test"
    done = await browser.follow_to_callback(started.headers["location"])
    assert browser.sets_session(done)


@pytest.mark.spi
async def test_core_login_with_a_bad_login_hint_is_refused_before_anything_is_stored(
    browser: Browser,
) -> None:
    started = await browser.client.get(
        "/auth/login/scalekit", params={"login_hint": "not an email"}, follow_redirects=False
    )

    assert started.status_code == 400
    assert browser.fake.recording.count("connections") == 0
    assert "location" not in started.headers
