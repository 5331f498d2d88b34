"""The Google preset against the fake Google: sign-in, refresh tokens that need
``access_type=offline`` and ``prompt=consent``, local logout, the hosted-domain check, and the
exact issuer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from rpkit.client import RelyingParty
from rpkit.errors import ConfigurationError
from rpkit.hooks import ProviderHooks
from rpkit.providers import google
from rpkit.providers._mapping import ClaimsMapper
from rpkit.store import MemoryStore
from rpkit.testing import AuthorizationResponse, FakeClient
from rpkit.testing.providers import FakeGoogle
from rpkit.testing.server import serve_fake
from tests.presets.conftest import LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("google")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
CLIENT_ID = "1234567890-rpkit.apps.googleusercontent.com"
SESSION_COOKIE = "__Host-rpkit_session"
ALICE = "110248495921238986420"
BOB_EMAIL = "bob.builder@gmail.com"


def google_client(redirect_base: str | None = None) -> FakeClient:
    redirect = f"{redirect_base}/auth/callback/google" if redirect_base else None
    return FakeClient(
        client_id=CLIENT_ID,
        client_secret="google-client-secret",
        redirect_uris=(redirect or callback_url("google"),),
        post_logout_redirect_uris=(LOGOUT_CALLBACK,),
    )


def fake_google(**options: Any) -> FakeGoogle:
    return FakeGoogle(clients=[google_client()], **options)


def refreshes(fake: FakeGoogle) -> int:
    return sum(r.param("grant_type") == "refresh_token" for r in fake.oracle.of("token"))


async def refused_login(browser: PresetBrowser, **params: str) -> httpx.Response:
    started = await browser.start_login(**params)
    callback = await browser.fake.approve(started.headers["location"])
    headers = {"Accept": "application/json"}
    return await browser.client.get(callback.location, headers=headers, follow_redirects=False)


# -- the preset's configuration ---------------------------------------------------------------
def test_preset_asks_for_offline_access_with_consent_and_no_offline_access_scope():
    config = google.google(CLIENT_ID, "s")

    assert (config.id, config.issuer) == ("google", "https://accounts.google.com")
    assert config.scopes == ("openid", "email", "profile")
    assert config.extra_authorization_params == {"access_type": "offline", "prompt": "consent"}
    assert config.client_auth == "client_secret_basic"
    assert config.relaxations() == ()


def test_preset_sends_the_hosted_domain_as_a_hint_and_checks_it_on_the_token():
    config = google.google(CLIENT_ID, "s", hosted_domain="example.com", offline=False)

    assert config.extra_authorization_params == {"hd": "example.com"}
    assert isinstance(config.hooks.identity, google.GoogleIdentity)
    assert config.hooks.identity.hosted_domain == "example.com"


@pytest.mark.parametrize("domain", ["Example.com", "*", "example", "https://example.com", ""])
def test_preset_refuses_a_hosted_domain_that_is_not_a_lower_case_domain(domain: str):
    with pytest.raises(ConfigurationError, match="google: hosted_domain"):
        google.google(CLIENT_ID, "s", hosted_domain=domain)


def test_preset_refuses_hooks_that_would_drop_the_hosted_domain_check():
    with pytest.raises(ConfigurationError, match="hosted-domain check"):
        google.google(
            CLIENT_ID,
            "s",
            hosted_domain="example.com",
            hooks=ProviderHooks(identity=ClaimsMapper()),
        )


def test_preset_changes_override_any_field_last():
    config = google.google(CLIENT_ID, "s", id="work", client_auth="client_secret_post")

    assert (config.id, config.client_auth) == ("work", "client_secret_post")


def test_info_describes_local_logout_no_bearer_and_cites_every_quirk():
    info = google.INFO
    assert (info.name, info.kind, info.logout, info.bearer) == ("google", "oidc", ("local",), False)
    assert info.relaxations == ()
    assert all(q.source for q in info.quirks)


# -- login, refresh, logout ---------------------------------------------------------------------
async def test_login_signs_alice_in_with_her_google_identity(open_preset: OpenPreset):
    fake = fake_google()
    browser = await open_preset(fake, fake.provider_config(hosted_domain="example.com"))

    landed = await browser.login()

    assert landed.status_code == 303, landed.text
    assert await browser.me() == {
        "provider": "google",
        "issuer": "https://accounts.google.com",
        "subject": ALICE,
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    authorize = fake.oracle.last("authorize")
    assert authorize.param("access_type") == "offline"
    assert authorize.param("prompt") == "consent"
    assert authorize.param("hd") == "example.com"
    assert (await browser.session())["refresh_token"] is not None


async def test_every_login_gets_a_refresh_token_thanks_to_prompt_consent(
    open_preset: OpenPreset,
):
    fake = fake_google()
    browser = await open_preset(fake, fake.provider_config())

    await browser.login()
    await browser.login()

    assert (await browser.session())["refresh_token"] is not None


async def test_without_prompt_consent_google_returns_a_refresh_token_only_at_first_consent(
    open_preset: OpenPreset,
):
    fake = fake_google()
    config = fake.provider_config(extra_authorization_params={"access_type": "offline"})
    browser = await open_preset(fake, config)

    await browser.login()
    first = (await browser.session())["refresh_token"]
    await browser.login()

    assert first is not None
    assert (await browser.session())["refresh_token"] is None


async def test_without_offline_access_there_is_no_refresh_token(open_preset: OpenPreset):
    fake = fake_google()
    browser = await open_preset(fake, fake.provider_config(offline=False))

    await browser.login()

    assert fake.oracle.last("authorize").param("access_type") is None
    assert (await browser.session())["refresh_token"] is None


async def test_access_token_near_expiry_is_refreshed_and_the_refresh_token_kept(
    open_preset: OpenPreset,
):
    fake = fake_google(access_token_lifetime=30)
    browser = await open_preset(fake, fake.provider_config(), refresh_before=60)
    await browser.login()
    fake.access_token_lifetime = 3600
    before = await browser.plugin.runtime.sessions.peek(browser.client.cookies.get(SESSION_COOKIE))
    assert before is not None

    assert (await browser.me())["subject"] == ALICE
    assert (await browser.me())["subject"] == ALICE

    after = await browser.session()
    assert refreshes(fake) == 1
    assert fake.oracle.last("token").outcome == "ok"
    assert after["access_token"] != before.access_token
    assert after["access_token"].startswith("ya29.")
    assert after["refresh_token"] == before.refresh_token  # Google does not rotate


async def test_logout_is_local_google_has_no_end_session_endpoint(open_preset: OpenPreset):
    fake = fake_google()
    browser = await open_preset(
        fake, fake.provider_config(post_logout_redirect_uri=LOGOUT_CALLBACK)
    )
    await browser.logs_out_locally()
    assert "end_session_endpoint" not in fake.metadata()
    assert await browser.me() == {}


# -- the hosted domain is a check ------------------------------------------------------------------
async def test_a_consumer_account_is_refused_when_a_hosted_domain_is_required(
    open_preset: OpenPreset,
):
    fake = fake_google()
    browser = await open_preset(fake, fake.provider_config(hosted_domain="example.com"))

    refused = await refused_login(browser, login_hint=BOB_EMAIL)
    after = len(fake.oracle)

    assert refused.status_code == 403
    assert refused.json()["code"] == "identity_refused"
    assert (fake.oracle.count("token"), fake.oracle.count("userinfo")) == (1, 1)
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}
    assert len(fake.oracle) == after


async def test_an_id_token_of_another_hosted_domain_is_refused_whatever_userinfo_says(
    open_preset: OpenPreset,
):
    fake = fake_google()
    browser = await open_preset(fake, fake.provider_config(hosted_domain="example.com"))
    fake.misbehave.id_token_claims = {"hd": "evil.example"}
    fake.misbehave.userinfo_claims = {"hd": "example.com"}

    refused = await refused_login(browser)

    assert refused.status_code == 403
    assert refused.json()["code"] == "identity_refused"
    assert (fake.oracle.count("token"), fake.oracle.count("userinfo")) == (1, 1)
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


async def test_without_a_hosted_domain_any_google_account_signs_in(open_preset: OpenPreset):
    fake = fake_google()
    browser = await open_preset(fake, fake.provider_config())

    await browser.login(login_hint=BOB_EMAIL)

    assert (await browser.me())["email"] == BOB_EMAIL


# -- the issuer is compared exactly ----------------------------------------------------------------
async def test_the_legacy_scheme_less_issuer_is_refused(open_preset: OpenPreset):
    fake = fake_google()
    browser = await open_preset(fake, fake.provider_config())
    fake.misbehave.id_token_claims = {"iss": "accounts.google.com"}

    refused = await refused_login(browser)

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert fake.oracle.count("token") == 1
    assert fake.oracle.count("userinfo") == 0
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


# -- the fake's shapes -----------------------------------------------------------------------------
def test_fake_publishes_googles_discovery_shape():
    document = FakeGoogle().metadata()

    assert document["issuer"] == "https://accounts.google.com"
    assert document["token_endpoint_auth_methods_supported"] == [
        "client_secret_post",
        "client_secret_basic",
    ]
    assert document["code_challenge_methods_supported"] == ["plain", "S256"]
    absent = {
        "end_session_endpoint",
        "backchannel_logout_supported",
        "frontchannel_logout_supported",
    }
    assert not absent & set(document)


# -- served ----------------------------------------------------------------------------------------
async def test_served_fake_google_signs_in_through_a_real_http_client():
    with serve_fake(FakeGoogle, clients=[google_client()]) as fake:
        config = fake.provider_config(hosted_domain="example.com")
        async with httpx.AsyncClient() as http:
            discovery = await http.get(f"{fake.issuer}/.well-known/openid-configuration")
            rp = RelyingParty([config], http=http, store=MemoryStore())
            request = await rp.begin_login("google", redirect_uri=callback_url("google"))
            answer = await http.get(request.url, follow_redirects=False)
            callback = AuthorizationResponse.from_response(answer)
            result = await rp.complete_login("google", list(callback.params))

    assert config.allow_insecure_http
    assert discovery.json()["issuer"] == fake.issuer
    assert result.identity.subject == ALICE
    assert result.tokens.refresh_token is not None
    assert fake.oracle.count("token") == 1
