"""The LinkedIn preset against the fake LinkedIn: sign-in with ID tokens that carry no nonce
(the named relaxation), a wrong nonce still refused, ``client_secret_post``, the string
``email_verified``, no refresh tokens, and local logout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from rpkit.client import RelyingParty
from rpkit.providers import linkedin
from rpkit.providers._mapping import ClaimsMapper
from rpkit.store import MemoryStore
from rpkit.testing import AuthorizationResponse, FakeClient
from rpkit.testing.providers import FakeLinkedIn
from rpkit.testing.server import serve_fake
from tests.presets.conftest import LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("linkedin")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
CLIENT_ID = "78bihyg95w4jjp"
SECRET = "WPL_AP1.linkedin-test-secret"
SESSION_COOKIE = "__Host-rpkit_session"
ALICE = "f1CNX59nrd"


def linkedin_client(redirect_base: str | None = None) -> FakeClient:
    redirect = f"{redirect_base}/auth/callback/linkedin" if redirect_base else None
    return FakeClient(
        client_id=CLIENT_ID,
        client_secret=SECRET,
        redirect_uris=(redirect or callback_url("linkedin"),),
        post_logout_redirect_uris=(LOGOUT_CALLBACK,),
        token_endpoint_auth_method="client_secret_post",
    )


def fake_linkedin(**options: Any) -> FakeLinkedIn:
    return FakeLinkedIn(clients=[linkedin_client()], **options)


async def refused_login(browser: PresetBrowser) -> httpx.Response:
    started = await browser.start_login()
    callback = await browser.fake.approve(started.headers["location"])
    headers = {"Accept": "application/json"}
    return await browser.client.get(callback.location, headers=headers, follow_redirects=False)


# -- the preset's configuration ---------------------------------------------------------------
def test_preset_names_its_relaxation_and_posts_the_client_secret():
    config = linkedin.linkedin(CLIENT_ID, SECRET)

    assert (config.id, config.issuer) == ("linkedin", "https://www.linkedin.com/oauth")
    assert config.client_auth == "client_secret_post"
    assert config.scopes == ("openid", "profile", "email")
    assert config.accept_missing_nonce
    assert config.relaxations() == ("accept_missing_nonce: ID tokens without a nonce are accepted",)
    mapper = config.hooks.identity
    assert isinstance(mapper, ClaimsMapper)
    assert mapper.string_booleans


def test_preset_changes_override_any_field_last():
    config = linkedin.linkedin(CLIENT_ID, SECRET, id="li", fetch_userinfo=False)

    assert (config.id, config.fetch_userinfo, config.accept_missing_nonce) == ("li", False, True)


def test_info_lists_the_relaxation_and_cites_every_quirk():
    info = linkedin.INFO
    assert (info.name, info.logout, info.bearer) == ("linkedin", ("local",), False)
    assert info.relaxations == ("accept_missing_nonce",)
    assert all(q.source for q in info.quirks)


# -- login, no nonce, wrong nonce ------------------------------------------------------------------
async def test_login_without_a_nonce_in_the_id_token_signs_alice_in(open_preset: OpenPreset):
    fake = fake_linkedin()
    browser = await open_preset(fake, fake.provider_config())

    landed = await browser.login()

    assert landed.status_code == 303, landed.text
    assert await browser.me() == {
        "provider": "linkedin",
        "issuer": "https://www.linkedin.com/oauth",
        "subject": ALICE,
        "email": "alice@example.com",
        "email_verified": True,  # the ID token's string "true"
        "name": "Alice Liddell",
        "tenant": None,
    }
    assert fake.oracle.last("authorize").param("nonce")  # still sent
    token = fake.oracle.last("token")
    assert token.param("client_secret") == SECRET
    assert "authorization" not in token.headers


async def test_the_same_token_is_refused_without_the_relaxation(open_preset: OpenPreset):
    fake = fake_linkedin()
    browser = await open_preset(fake, fake.provider_config(accept_missing_nonce=False))

    refused = await refused_login(browser)

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert (fake.oracle.count("token"), fake.oracle.count("userinfo")) == (1, 0)
    assert await browser.me() == {}


async def test_a_wrong_nonce_is_still_refused_without_a_session(open_preset: OpenPreset):
    fake = fake_linkedin()
    browser = await open_preset(fake, fake.provider_config())
    fake.misbehave.id_token_claims = {"nonce": "wrong"}

    refused = await refused_login(browser)

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert fake.oracle.count("token") == 1
    assert fake.oracle.count("userinfo") == 0
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


async def test_an_id_token_with_the_pre_2024_issuer_is_refused(open_preset: OpenPreset):
    fake = fake_linkedin()
    browser = await open_preset(fake, fake.provider_config())
    fake.misbehave.id_token_claims = {"iss": "https://www.linkedin.com"}

    refused = await refused_login(browser)

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert (fake.oracle.count("token"), fake.oracle.count("userinfo")) == (1, 0)
    assert await browser.me() == {}


async def test_an_unverified_email_stays_unverified(open_preset: OpenPreset):
    fake = fake_linkedin()
    browser = await open_preset(fake, fake.provider_config())
    fake.misbehave.id_token_claims = {"email_verified": "false"}
    fake.misbehave.userinfo_claims = {"email_verified": False}

    await browser.login()

    assert (await browser.me())["email_verified"] is False


# -- no refresh, local logout ----------------------------------------------------------------------
async def test_linkedin_issues_no_refresh_token_and_a_sixty_day_access_token(
    open_preset: OpenPreset,
):
    fake = fake_linkedin()
    browser = await open_preset(fake, fake.provider_config())

    await browser.login()

    session = await browser.session()
    assert session["refresh_token"] is None
    assert session["expires_at"] - fake.now() > 59 * 86400


async def test_logout_is_local_linkedin_has_no_end_session_endpoint(open_preset: OpenPreset):
    fake = fake_linkedin()
    config = fake.provider_config(post_logout_redirect_uri=LOGOUT_CALLBACK)
    browser = await open_preset(fake, config)
    await browser.logs_out_locally()


# -- the fake's shapes -----------------------------------------------------------------------------
def test_fake_publishes_linkedins_discovery_document_and_nothing_more():
    document = FakeLinkedIn().metadata()

    assert document["issuer"] == "https://www.linkedin.com/oauth"
    assert document["subject_types_supported"] == ["pairwise"]
    assert set(document) == {
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "scopes_supported",
        "claims_supported",
    }


# -- served ----------------------------------------------------------------------------------------
async def test_served_fake_linkedin_signs_in_through_a_real_http_client():
    with serve_fake(FakeLinkedIn, clients=[linkedin_client()]) as fake:
        config = fake.provider_config()
        async with httpx.AsyncClient() as http:
            discovery = await http.get(f"{fake.issuer}/.well-known/openid-configuration")
            rp = RelyingParty([config], http=http, store=MemoryStore())
            request = await rp.begin_login("linkedin", redirect_uri=callback_url("linkedin"))
            answer = await http.get(request.url, follow_redirects=False)
            callback = AuthorizationResponse.from_response(answer)
            result = await rp.complete_login("linkedin", list(callback.params))

    assert config.allow_insecure_http
    assert discovery.json()["issuer"] == fake.issuer == config.issuer
    assert result.identity.subject == ALICE
    assert result.id_token is not None
    assert "nonce" not in result.id_token.claims
    assert result.id_token.claims["email_verified"] == "true"
    assert result.userinfo is not None
    assert result.userinfo["email_verified"] is True
    assert result.tokens.refresh_token is None
