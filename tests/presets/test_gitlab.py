"""The GitLab preset against the fake GitLab: sign-in on gitlab.com and on a self-managed
instance, profile claims from UserInfo, rotating refresh tokens, and local logout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from rpkit.client import RelyingParty
from rpkit.errors import ConfigurationError
from rpkit.providers import gitlab
from rpkit.providers._mapping import ClaimsMapper
from rpkit.store import MemoryStore
from rpkit.testing import AuthorizationResponse, FakeClient
from rpkit.testing.providers import FakeGitLab
from rpkit.testing.server import serve_fake
from tests.presets.conftest import LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("gitlab")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
CLIENT_ID = "9a1b" * 16
SESSION_COOKIE = "__Host-rpkit_session"
ALICE = "4815162"
SELF_MANAGED = "https://gitlab.example.test"


def gitlab_client(redirect_base: str | None = None) -> FakeClient:
    redirect = f"{redirect_base}/auth/callback/gitlab" if redirect_base else None
    return FakeClient(
        client_id=CLIENT_ID,
        client_secret="gloas-rpkit-test-secret",
        redirect_uris=(redirect or callback_url("gitlab"),),
        post_logout_redirect_uris=(LOGOUT_CALLBACK,),
    )


def fake_gitlab(*issuer: str, **options: Any) -> FakeGitLab:
    return FakeGitLab(*issuer, clients=[gitlab_client()], **options)


def refreshes(fake: FakeGitLab) -> int:
    return sum(r.param("grant_type") == "refresh_token" for r in fake.oracle.of("token"))


async def refused_login(browser: PresetBrowser) -> httpx.Response:
    started = await browser.start_login()
    callback = await browser.fake.approve(started.headers["location"])
    headers = {"Accept": "application/json"}
    return await browser.client.get(callback.location, headers=headers, follow_redirects=False)


# -- the preset's configuration ---------------------------------------------------------------
def test_preset_defaults_to_gitlab_com_and_merges_userinfo():
    config = gitlab.gitlab(CLIENT_ID, "s")

    assert (config.id, config.issuer) == ("gitlab", "https://gitlab.com")
    assert config.scopes == ("openid", "profile", "email")
    assert "offline_access" not in config.scopes
    assert config.client_auth == "client_secret_basic"
    assert isinstance(config.hooks.identity, ClaimsMapper)
    assert config.fetch_userinfo
    assert config.relaxations() == ()


def test_preset_takes_a_self_managed_instance_url_and_a_relative_url_install():
    assert gitlab.gitlab(CLIENT_ID, "s", base_url=SELF_MANAGED).issuer == SELF_MANAGED
    relative = gitlab.gitlab(CLIENT_ID, "s", base_url="https://example.test/gitlab")
    assert relative.issuer == "https://example.test/gitlab"


@pytest.mark.parametrize(
    "base_url",
    ["https://gitlab.example.test/", "https://gitlab.example.test?x=1", "gitlab.example.test", ""],
)
def test_preset_refuses_a_base_url_that_can_never_equal_gitlabs_issuer(base_url: str):
    with pytest.raises(ConfigurationError, match="gitlab: base_url"):
        gitlab.gitlab(CLIENT_ID, "s", base_url=base_url)


def test_preset_refuses_plain_http_for_a_remote_instance():
    with pytest.raises(ConfigurationError, match="https"):
        gitlab.gitlab(CLIENT_ID, "s", base_url="http://gitlab.example.test")


def test_preset_changes_override_any_field_last():
    config = gitlab.gitlab(CLIENT_ID, "s", id="work", client_auth="client_secret_post")

    assert (config.id, config.client_auth) == ("work", "client_secret_post")


def test_info_describes_local_logout_no_bearer_and_cites_every_quirk():
    info = gitlab.INFO
    assert (info.name, info.kind, info.logout, info.bearer) == ("gitlab", "oidc", ("local",), False)
    assert all(q.source.startswith("https://") for q in info.quirks)


# -- login, refresh, logout ---------------------------------------------------------------------
async def test_login_signs_alice_in_with_the_name_from_userinfo(open_preset: OpenPreset):
    fake = fake_gitlab()
    browser = await open_preset(fake, fake.provider_config())

    landed = await browser.login()

    assert landed.status_code == 303, landed.text
    assert await browser.me() == {
        "provider": "gitlab",
        "issuer": "https://gitlab.com",
        "subject": ALICE,
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    token = fake.oracle.last("token")
    assert token.headers["authorization"].startswith("Basic ")
    assert fake.oracle.count("userinfo") == 1
    assert (await browser.session())["refresh_token"] is not None


async def test_the_id_token_alone_has_no_name_userinfo_supplies_it(open_preset: OpenPreset):
    fake = fake_gitlab()
    browser = await open_preset(fake, fake.provider_config(fetch_userinfo=False))

    await browser.login()

    me = await browser.me()
    assert (me["subject"], me["email"], me["name"]) == (ALICE, "alice@example.com", None)


async def test_userinfo_of_another_user_is_refused_without_a_session(open_preset: OpenPreset):
    fake = fake_gitlab()
    browser = await open_preset(fake, fake.provider_config())
    fake.misbehave.userinfo_claims = {"sub": "2342108"}

    refused = await refused_login(browser)

    assert refused.status_code == 400
    assert refused.json()["code"] == "userinfo_invalid"
    assert (fake.oracle.count("token"), fake.oracle.count("userinfo")) == (1, 1)
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


async def test_self_managed_instance_signs_in_at_its_own_url(open_preset: OpenPreset):
    fake = fake_gitlab(SELF_MANAGED)
    browser = await open_preset(fake, fake.provider_config())

    started = await browser.start_login()
    landed = await browser.deliver(await fake.approve(started.headers["location"]))

    assert landed.status_code == 303
    assert started.headers["location"].startswith(f"{SELF_MANAGED}/authorize?")
    assert (await browser.me())["issuer"] == SELF_MANAGED


async def test_a_token_from_gitlab_com_is_refused_by_a_self_managed_login(
    open_preset: OpenPreset,
):
    fake = fake_gitlab(SELF_MANAGED)
    browser = await open_preset(fake, fake.provider_config())
    fake.misbehave.id_token_claims = {"iss": "https://gitlab.com"}

    refused = await refused_login(browser)

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert fake.oracle.count("token") == 1
    assert fake.oracle.count("userinfo") == 0
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


async def test_access_token_near_expiry_is_refreshed_and_the_rotated_token_kept(
    open_preset: OpenPreset,
):
    fake = fake_gitlab(access_token_lifetime=30)
    browser = await open_preset(fake, fake.provider_config(), refresh_before=60)
    await browser.login()
    fake.access_token_lifetime = 7200
    before = await browser.plugin.runtime.sessions.peek(browser.client.cookies.get(SESSION_COOKIE))
    assert before is not None
    assert before.refresh_token is not None

    assert (await browser.me())["subject"] == ALICE
    assert (await browser.me())["subject"] == ALICE

    after = await browser.session()
    assert refreshes(fake) == 1
    assert fake.oracle.last("token").outcome == "ok"
    assert after["access_token"] != before.access_token
    assert after["refresh_token"] not in (None, before.refresh_token)
    assert fake.refresh_tokens[before.refresh_token].revoked  # GitLab rotates


async def test_gitlabs_lower_case_bearer_is_accepted_but_another_token_type_refused(
    open_preset: OpenPreset,
):
    fake = fake_gitlab()
    browser = await open_preset(fake, fake.provider_config())
    fake.misbehave.token_fields = {"token_type": "mac"}

    refused = await refused_login(browser)

    assert refused.status_code == 400
    assert refused.json()["code"] == "token_exchange_failed"
    assert (fake.oracle.count("token"), fake.oracle.count("userinfo")) == (1, 0)
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}
    fake.misbehave.token_fields = {}
    assert (await browser.login()).status_code == 303  # GitLab's own "bearer"
    assert (await browser.me())["subject"] == ALICE


async def test_logout_is_local_gitlab_has_no_end_session_endpoint(open_preset: OpenPreset):
    fake = fake_gitlab()
    browser = await open_preset(
        fake, fake.provider_config(post_logout_redirect_uri=LOGOUT_CALLBACK)
    )
    await browser.logs_out_locally()


# -- the fake's shapes -----------------------------------------------------------------------------
def test_fake_publishes_doorkeepers_discovery_shape_without_logout_or_rfc_9207():
    document = FakeGitLab().metadata()

    assert document["issuer"] == "https://gitlab.com"
    assert document["claim_types_supported"] == ["normal"]
    absent = {
        "end_session_endpoint",
        "backchannel_logout_supported",
        "authorization_response_iss_parameter_supported",
    }
    assert not absent & set(document)


# -- served ----------------------------------------------------------------------------------------
async def test_served_fake_gitlab_signs_in_through_a_real_http_client():
    with serve_fake(FakeGitLab, clients=[gitlab_client()]) as fake:
        config = fake.provider_config()
        async with httpx.AsyncClient() as http:
            discovery = await http.get(f"{fake.issuer}/.well-known/openid-configuration")
            rp = RelyingParty([config], http=http, store=MemoryStore())
            request = await rp.begin_login("gitlab", redirect_uri=callback_url("gitlab"))
            answer = await http.get(request.url, follow_redirects=False)
            callback = AuthorizationResponse.from_response(answer)
            result = await rp.complete_login("gitlab", list(callback.params))

    assert config.allow_insecure_http
    assert discovery.json()["issuer"] == fake.issuer == config.issuer
    assert callback.get("iss") is None
    assert result.identity.subject == ALICE
    assert result.identity.name == "Alice Liddell"
    raw = result.tokens.raw
    assert (raw["token_type"], raw["expires_in"]) == ("bearer", 7200)
    assert isinstance(raw["created_at"], int)
    assert len(raw["access_token"]) == 64
    assert raw["refresh_token"]
    assert result.id_token is not None
    assert set(result.id_token.claims) == {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nonce",
        "auth_time",
        "sub_legacy",
        "email",
        "email_verified",
        "groups_direct",
    }
    assert result.userinfo is not None
    assert result.userinfo["nickname"] == "alice"
