"""The Okta preset against the fake Okta org: sign-in, refresh, logout, the two kinds of
authorization server, groups, and access tokens for APIs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rpkit.access_token import AccessTokenPolicy
from rpkit.client import RelyingParty
from rpkit.errors import AccessTokenValidationError, ConfigurationError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.providers import okta
from rpkit.store import MemoryStore
from rpkit.testing import FakeClient
from rpkit.testing.providers import FakeOkta
from rpkit.testing.server import serve_fake
from tests.presets.conftest import LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("okta")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
CLIENT_ID = "0oa1app2rpkit3test"
SESSION_COOKIE = "__Host-rpkit_session"


def okta_client(provider_id: str = "okta", redirect_base: str | None = None) -> FakeClient:
    redirect = f"{redirect_base}/auth/callback/{provider_id}" if redirect_base else None
    return FakeClient(
        client_id=CLIENT_ID,
        client_secret="okta-client-secret",
        redirect_uris=(redirect or callback_url(provider_id),),
        post_logout_redirect_uris=(LOGOUT_CALLBACK,),
    )


def fake_okta(**options: Any) -> FakeOkta:
    return FakeOkta(clients=[okta_client()], **options)


async def signed_in(fake: FakeOkta, open_preset: OpenPreset, **changes: Any) -> PresetBrowser:
    config = fake.provider_config(post_logout_redirect_uri=LOGOUT_CALLBACK, **changes)
    browser = await open_preset(fake, config)
    landed = await browser.login()
    assert landed.status_code == 303, landed.text
    return browser


def refreshes(fake: FakeOkta) -> int:
    return sum(r.param("grant_type") == "refresh_token" for r in fake.oracle.of("token"))


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def session_claims(browser: PresetBrowser) -> dict[str, Any]:
    session_id = browser.client.cookies.get(SESSION_COOKIE)
    data = await browser.plugin.runtime.sessions.peek(session_id)
    assert data is not None
    return data.claims


async def validate(fake: FakeOkta, token: str, policy: AccessTokenPolicy) -> Any:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        return await TokenValidator(JWKSCache(http)).validate_access_token(token, policy)


# -- the preset's configuration ---------------------------------------------------------------
def test_preset_signs_in_through_the_default_custom_server_and_asks_for_refresh_tokens():
    config = okta.okta("dev-123.okta.com", client_id=CLIENT_ID, client_secret="s")

    assert config.id == "okta"
    assert config.issuer == "https://dev-123.okta.com/oauth2/default"
    assert "offline_access" in config.scopes
    assert config.client_auth == "client_secret_basic"


def test_preset_names_the_org_server_by_the_domain_alone_and_custom_servers_by_id():
    org = okta.okta("dev-123.okta.com", CLIENT_ID, "s", authorization_server=None)
    custom = okta.okta("login.example.com", CLIENT_ID, "s", authorization_server="aus1x2y3")

    assert org.issuer == "https://dev-123.okta.com"
    assert custom.issuer == "https://login.example.com/oauth2/aus1x2y3"


@pytest.mark.parametrize(
    ("domain", "server"),
    [
        ("https://dev-123.okta.com", "default"),
        ("dev-123.okta.com/oauth2", "default"),
        ("", "default"),
        ("dev-123.okta.com", "../admin"),
        ("dev-123.okta.com", ""),
    ],
)
def test_preset_refuses_a_domain_with_a_scheme_or_path_and_a_malformed_server_id(
    domain: str, server: str
):
    with pytest.raises(ConfigurationError, match="okta:"):
        okta.okta(domain, CLIENT_ID, "s", authorization_server=server)


def test_preset_changes_override_any_field_last():
    config = okta.okta("dev-123.okta.com", CLIENT_ID, None, client_auth="none", id="work")

    assert (config.id, config.client_auth, config.client_secret) == ("work", "none", None)


def test_info_cites_a_source_for_every_quirk():
    assert okta.INFO.name == "okta"
    assert okta.INFO.bearer
    assert all(q.source.startswith("https://") for q in okta.INFO.quirks)


# -- login, refresh, logout ---------------------------------------------------------------------
async def test_login_signs_alice_in_with_her_okta_identity(open_preset: OpenPreset):
    fake = fake_okta()
    browser = await signed_in(fake, open_preset)

    me = await browser.me()
    assert me == {
        "provider": "okta",
        "issuer": "https://rpkit.okta.com/oauth2/default",
        "subject": "alice",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    authorize = fake.oracle.last("authorize")
    assert "offline_access" in authorize.param("scope").split()
    assert (await browser.session())["refresh_token"] is not None


async def test_org_authorization_server_signs_in_with_the_domain_as_issuer(
    open_preset: OpenPreset,
):
    fake = fake_okta(authorization_server=None)
    browser = await open_preset(fake, fake.provider_config())

    started = await browser.start_login()
    landed = await browser.deliver(await fake.approve(started.headers["location"]))

    assert landed.status_code == 303
    assert started.headers["location"].startswith("https://rpkit.okta.com/oauth2/v1/authorize?")
    assert (await browser.me())["issuer"] == "https://rpkit.okta.com"


async def test_groups_claim_reaches_the_session_claims(open_preset: OpenPreset):
    fake = fake_okta()
    fake.users["alice"].claims["groups"] = ["Everyone", "Engineering"]
    browser = await signed_in(fake, open_preset)

    assert okta.groups(await session_claims(browser)) == {"Everyone", "Engineering"}


def test_groups_is_empty_without_a_configured_groups_claim_or_with_a_malformed_one():
    assert okta.groups({}) == frozenset()
    assert okta.groups({"groups": "Everyone"}) == frozenset()
    assert okta.groups({"groups": ["Everyone", 7]}) == {"Everyone"}


async def test_access_token_near_expiry_is_refreshed_on_the_next_request(
    open_preset: OpenPreset,
):
    fake = fake_okta(access_token_lifetime=30)
    config = fake.provider_config(post_logout_redirect_uri=LOGOUT_CALLBACK)
    browser = await open_preset(fake, config, refresh_before=60)
    await browser.login()
    fake.access_token_lifetime = 3600
    before = await browser.plugin.runtime.sessions.peek(browser.client.cookies.get(SESSION_COOKIE))
    assert before is not None

    assert (await browser.me())["subject"] == "alice"
    assert (await browser.me())["subject"] == "alice"

    assert refreshes(fake) == 1
    assert fake.oracle.last("token").outcome == "ok"
    assert (await browser.session())["access_token"] != before.access_token


async def test_without_offline_access_okta_issues_no_refresh_token(open_preset: OpenPreset):
    fake = fake_okta()
    browser = await signed_in(fake, open_preset, scopes=("openid", "profile", "email"))

    assert (await browser.session())["refresh_token"] is None


async def test_logout_sends_the_browser_to_okta_v1_logout_with_the_id_token_hint(
    open_preset: OpenPreset,
):
    fake = fake_okta()
    browser = await signed_in(fake, open_preset)

    response = await browser.logout()

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("https://rpkit.okta.com/oauth2/default/v1/logout?")
    params = query(location)
    assert set(params) == {"id_token_hint", "post_logout_redirect_uri", "state", "client_id"}
    assert params["post_logout_redirect_uri"] == [LOGOUT_CALLBACK]
    assert await browser.me() == {}
    back = await fake.approve(location)
    assert fake.oracle.last("end_session").outcome == "ok"
    assert back.url == LOGOUT_CALLBACK
    assert (await browser.deliver(back)).status_code == 303


# -- the authorization server is part of the issuer -------------------------------------------
async def test_id_token_of_the_org_server_is_refused_by_a_custom_server_login(
    open_preset: OpenPreset,
):
    fake = fake_okta()
    config = fake.provider_config()
    browser = await open_preset(fake, config)
    started = await browser.start_login()
    callback = await fake.approve(started.headers["location"])
    fake.misbehave.id_token_claims = {"iss": "https://rpkit.okta.com"}

    refused = await browser.client.get(callback.location, headers={"Accept": "application/json"})

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert fake.oracle.count("token") == 1
    assert fake.oracle.count("userinfo") == 0
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


# -- access tokens for APIs ----------------------------------------------------------------------
async def test_bearer_policy_accepts_a_custom_server_access_token(open_preset: OpenPreset):
    fake = fake_okta()
    fake.users["alice"].claims["groups"] = ["Engineering"]
    browser = await signed_in(fake, open_preset)
    token = (await browser.session())["access_token"]

    validated = await validate(fake, token, okta.bearer_policy("rpkit.okta.com"))

    assert validated.iss == "https://rpkit.okta.com/oauth2/default"
    assert validated.aud == ("api://default",)
    assert validated.sub == "alice"
    assert {"openid", "offline_access"} <= validated.scopes
    assert validated.claims["cid"] == CLIENT_ID
    assert okta.groups(validated.claims) == {"Engineering"}


async def test_bearer_policy_refuses_a_token_for_another_audience_or_server():
    fake = fake_okta()
    token = fake.minter.mint_access_token(
        subject="alice", audience="api://other", client_id=CLIENT_ID, scope="orders:read"
    )
    keys = fake.endpoints["jwks"]

    with pytest.raises(AccessTokenValidationError) as wrong_aud:
        await validate(fake, token, okta.bearer_policy("rpkit.okta.com"))
    other = okta.bearer_policy("rpkit.okta.com", "aus9", "api://other", jwks_uri=keys)
    with pytest.raises(AccessTokenValidationError) as wrong_server:
        await validate(fake, token, other)

    assert wrong_aud.value.reason == "aud"
    assert wrong_server.value.reason == "iss"


def test_bearer_policy_refuses_the_org_authorization_server():
    with pytest.raises(ConfigurationError, match="Okta's APIs only"):
        okta.bearer_policy("dev-123.okta.com", None)


def test_bearer_policy_uses_the_servers_keys_and_takes_changes():
    policy = okta.bearer_policy("dev-123.okta.com", required_scopes=("orders:read",))

    assert policy.jwks_uri == "https://dev-123.okta.com/oauth2/default/v1/keys"
    assert policy.required_scopes == ("orders:read",)


# -- served ----------------------------------------------------------------------------------------
async def test_served_fake_okta_signs_in_through_a_real_http_client():
    with serve_fake(FakeOkta, clients=[okta_client()]) as fake:
        config = fake.provider_config()
        async with httpx.AsyncClient() as http:
            rp = RelyingParty([config], http=http, store=MemoryStore())
            request = await rp.begin_login("okta", redirect_uri=callback_url("okta"))
            callback = await fake.approve(request.url)
            result = await rp.complete_login("okta", list(callback.params))

    assert config.issuer == f"{fake.origin}/oauth2/default"
    assert config.allow_insecure_http
    assert result.identity.subject == "alice"
    assert request.url.startswith(f"{fake.origin}/oauth2/default/v1/authorize?")
    assert fake.oracle.count("token") == 1
