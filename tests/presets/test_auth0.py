"""The Auth0 preset against the fake Auth0 tenant: the issuer's trailing slash, the audience of
API access tokens, refresh, both logout endpoints, back-channel logout and namespaced claims."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rpkit.access_token import AccessTokenPolicy
from rpkit.client import RelyingParty
from rpkit.errors import AccessTokenValidationError, ConfigurationError
from rpkit.hooks import LogoutContext
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.providers import auth0
from rpkit.store import MemoryStore
from rpkit.testing import FakeClient
from rpkit.testing.providers import FakeAuth0
from rpkit.testing.server import serve_fake
from tests.presets.conftest import BASE, LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("auth0")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
DOMAIN = "rpkit.us.auth0.com"
ISSUER = f"https://{DOMAIN}/"
CLIENT_ID = "k3yQvR9tXw2Lp8ZsA4bNc6DfGh1JmUeo"
API = "https://api.rpkit.test/orders"
SESSION_COOKIE = "__Host-rpkit_session"
ALICE = "auth0|alice"


def auth0_client() -> FakeClient:
    return FakeClient(
        client_id=CLIENT_ID,
        client_secret="auth0-client-secret",
        redirect_uris=(callback_url("auth0"),),
        post_logout_redirect_uris=(LOGOUT_CALLBACK,),
        backchannel_logout_uri=f"{BASE}/auth/backchannel-logout/auth0",
    )


def fake_auth0(**options: Any) -> FakeAuth0:
    return FakeAuth0(clients=[auth0_client()], **options)


async def signed_in(fake: FakeAuth0, open_preset: OpenPreset, **changes: Any) -> PresetBrowser:
    config = fake.provider_config(**({"post_logout_redirect_uri": LOGOUT_CALLBACK} | changes))
    browser = await open_preset(fake, config)
    landed = await browser.login()
    assert landed.status_code == 303, landed.text
    return browser


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def refreshes(fake: FakeAuth0) -> int:
    return sum(r.param("grant_type") == "refresh_token" for r in fake.oracle.of("token"))


async def stored_session(browser: PresetBrowser) -> Any:
    data = await browser.plugin.runtime.sessions.peek(browser.client.cookies.get(SESSION_COOKIE))
    assert data is not None
    return data


async def validate(fake: FakeAuth0, token: str, policy: AccessTokenPolicy) -> Any:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        return await TokenValidator(JWKSCache(http)).validate_access_token(token, policy)


# -- the preset's configuration ---------------------------------------------------------------
def test_preset_keeps_the_issuers_trailing_slash_and_asks_for_refresh_tokens():
    config = auth0.auth0(DOMAIN, CLIENT_ID, "s")

    assert config.id == "auth0"
    assert config.issuer == ISSUER
    assert "offline_access" in config.scopes
    assert config.endpoints is None
    assert config.extra_authorization_params == {}
    assert "audience" not in config.allowed_authorization_params


def test_preset_sends_and_allows_the_api_audience():
    config = auth0.auth0(DOMAIN, CLIENT_ID, "s", audience=API)

    assert config.extra_authorization_params == {"audience": API}
    assert "audience" in config.allowed_authorization_params
    assert "login_hint" in config.allowed_authorization_params


def test_v2_logout_configures_auth0s_endpoints_and_the_logout_hook():
    config = auth0.auth0(DOMAIN, CLIENT_ID, "s", logout="v2")

    assert config.endpoints is not None
    assert config.endpoints.end_session_endpoint == f"https://{DOMAIN}/v2/logout"
    assert config.endpoints.token_endpoint == f"https://{DOMAIN}/oauth/token"
    assert config.endpoints.jwks_uri == f"https://{DOMAIN}/.well-known/jwks.json"
    assert config.hooks.logout_params is auth0.v2_logout_params


def test_v2_logout_params_are_client_id_and_return_to_only():
    context = LogoutContext(
        provider_id="auth0", client_id=CLIENT_ID, post_logout_redirect_uri=LOGOUT_CALLBACK
    )
    asked = {"id_token_hint": "eyJ.x.y", "state": "s", "client_id": CLIENT_ID}

    assert auth0.v2_logout_params(asked, context) == {
        "client_id": CLIENT_ID,
        "returnTo": LOGOUT_CALLBACK,
    }


@pytest.mark.parametrize(
    ("domain", "changes"),
    [
        ("https://rpkit.us.auth0.com", {}),
        ("rpkit.us.auth0.com/", {}),
        (DOMAIN, {"logout": "federated"}),
    ],
)
def test_preset_refuses_a_url_as_domain_and_an_unknown_logout(domain: str, changes: dict[str, Any]):
    with pytest.raises(ConfigurationError, match="auth0:"):
        auth0.auth0(domain, CLIENT_ID, "s", **changes)


def test_info_cites_a_source_for_every_quirk():
    assert auth0.INFO.name == "auth0"
    assert all(q.source.startswith("https://") for q in auth0.INFO.quirks)


# -- login, refresh --------------------------------------------------------------------------
async def test_login_signs_alice_in_with_her_auth0_identity(open_preset: OpenPreset):
    fake = fake_auth0()
    browser = await signed_in(fake, open_preset)

    assert await browser.me() == {
        "provider": "auth0",
        "issuer": ISSUER,
        "subject": ALICE,
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    assert (await stored_session(browser)).claims["updated_at"] == "2023-11-14T22:13:20.000Z"
    assert (await browser.session())["refresh_token"] is not None


async def test_access_token_near_expiry_is_refreshed_on_the_next_request(
    open_preset: OpenPreset,
):
    fake = fake_auth0(access_token_lifetime=30)
    browser = await open_preset(fake, fake.provider_config(), refresh_before=60)
    await browser.login()
    fake.access_token_lifetime = 3600
    before = (await stored_session(browser)).access_token

    assert (await browser.me())["subject"] == ALICE
    assert (await browser.me())["subject"] == ALICE

    assert refreshes(fake) == 1
    assert fake.oracle.last("token").outcome == "ok"
    assert (await stored_session(browser)).access_token != before


# -- the issuer's trailing slash ----------------------------------------------------------------
async def test_id_token_whose_issuer_lacks_the_trailing_slash_is_refused(
    open_preset: OpenPreset,
):
    fake = fake_auth0()
    browser = await open_preset(fake, fake.provider_config())
    started = await browser.start_login()
    callback = await fake.approve(started.headers["location"])
    fake.misbehave.id_token_claims = {"iss": f"https://{DOMAIN}"}

    refused = await browser.client.get(callback.location, headers={"Accept": "application/json"})

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert fake.oracle.count("token") == 1
    assert fake.oracle.count("userinfo") == 0
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


# -- API access tokens --------------------------------------------------------------------------
async def test_login_with_audience_gets_an_access_token_the_api_accepts(
    open_preset: OpenPreset,
):
    fake = fake_auth0()
    browser = await signed_in(fake, open_preset, audience=API)
    token = (await browser.session())["access_token"]

    validated = await validate(fake, token, auth0.bearer_policy(DOMAIN, API))

    assert fake.oracle.last("authorize").param("audience") == API
    assert validated.iss == ISSUER
    assert validated.aud == (API, f"{ISSUER}userinfo")
    assert validated.sub == ALICE
    assert validated.client_id == CLIENT_ID


async def test_access_token_for_another_api_is_refused(open_preset: OpenPreset):
    fake = fake_auth0()
    browser = await signed_in(fake, open_preset, audience="https://api.rpkit.test/billing")
    token = (await browser.session())["access_token"]

    with pytest.raises(AccessTokenValidationError) as refused:
        await validate(fake, token, auth0.bearer_policy(DOMAIN, API))

    assert refused.value.reason == "aud"


async def test_login_without_audience_gets_an_opaque_token_no_api_accepts(
    open_preset: OpenPreset,
):
    fake = fake_auth0()
    browser = await signed_in(fake, open_preset)
    token = (await browser.session())["access_token"]

    with pytest.raises(AccessTokenValidationError) as refused:
        await validate(fake, token, auth0.bearer_policy(DOMAIN, API))

    assert fake.oracle.last("authorize").param("audience") is None
    assert refused.value.reason == "malformed"
    assert fake.oracle.count("userinfo") == 1  # the opaque token is good for /userinfo


def test_bearer_policy_refuses_the_userinfo_audience_and_takes_changes():
    with pytest.raises(ConfigurationError, match="/userinfo"):
        auth0.bearer_policy(DOMAIN, f"{ISSUER}userinfo")

    policy = auth0.bearer_policy(DOMAIN, API, required_scopes=("read:orders",))
    assert policy.issuers == (ISSUER,)
    assert policy.jwks_uri == f"{ISSUER}.well-known/jwks.json"
    assert policy.required_scopes == ("read:orders",)


# -- namespaced custom claims -----------------------------------------------------------------
async def test_namespaced_claims_of_an_action_reach_the_session(open_preset: OpenPreset):
    fake = fake_auth0()
    fake.users[ALICE].claims["https://rpkit.test/roles"] = ["admin"]
    fake.users[ALICE].claims["https://other.test/roles"] = ["root"]
    browser = await signed_in(fake, open_preset)

    claims = (await stored_session(browser)).claims

    assert auth0.namespaced_claims(claims, "https://rpkit.test/") == {"roles": ["admin"]}


def test_namespaced_claims_needs_a_url_namespace():
    with pytest.raises(ValueError, match="namespace"):
        auth0.namespaced_claims({"roles": ["admin"]}, "roles")
    assert auth0.namespaced_claims({"https://a.test/": 1, "x": 2}, "https://a.test/") == {}


# -- logout ------------------------------------------------------------------------------------
async def test_logout_uses_the_discovered_oidc_logout_endpoint(open_preset: OpenPreset):
    fake = fake_auth0()
    browser = await signed_in(fake, open_preset)

    response = await browser.logout()

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(f"https://{DOMAIN}/oidc/logout?")
    params = query(location)
    assert set(params) == {"id_token_hint", "post_logout_redirect_uri", "state", "client_id"}
    assert await browser.me() == {}
    back = await fake.approve(location)
    assert back.url == LOGOUT_CALLBACK
    assert (await browser.deliver(back)).status_code == 303


async def test_tenant_without_end_session_discovery_logs_out_locally(open_preset: OpenPreset):
    fake = fake_auth0(end_session_discovery=False)
    browser = await signed_in(fake, open_preset)

    response = await browser.logout()

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert fake.oracle.count("end_session") == 0
    assert await browser.me() == {}


async def test_v2_logout_sends_client_id_and_return_to(open_preset: OpenPreset):
    fake = fake_auth0(end_session_discovery=False)
    browser = await signed_in(fake, open_preset, logout="v2")

    response = await browser.logout()

    assert fake.oracle.count("discovery") == 0
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(f"https://{DOMAIN}/v2/logout?")
    assert query(location) == {"client_id": [CLIENT_ID], "returnTo": [LOGOUT_CALLBACK]}
    assert await browser.me() == {}
    back = await fake.approve(location)
    assert back.url == LOGOUT_CALLBACK
    assert (await browser.deliver(back)).status_code == 200  # no state: the neutral page


async def test_v2_logout_to_an_unregistered_return_url_is_refused_by_auth0(
    open_preset: OpenPreset,
):
    fake = fake_auth0()
    browser = await signed_in(
        fake, open_preset, logout="v2", post_logout_redirect_uri=f"{BASE}/elsewhere"
    )

    response = await browser.logout()
    refused = await fake.handle(httpx.Request("GET", response.headers["location"]))

    assert refused.status_code == 400
    assert await browser.me() == {}


async def test_backchannel_logout_ends_the_session(open_preset: OpenPreset):
    fake = fake_auth0()
    browser = await signed_in(fake, open_preset)
    assert (await browser.me())["subject"] == ALICE

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=browser.client.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as op_http:
            return await fake.send_backchannel_logout(op_http, fake.logout_token())

    response = browser.client.blocking_portal.call(send)

    assert response.status_code == 200
    assert await browser.me() == {}


# -- served ----------------------------------------------------------------------------------------
async def test_served_fake_auth0_signs_in_through_a_real_http_client():
    with serve_fake(FakeAuth0, clients=[auth0_client()]) as fake:
        config = fake.provider_config(audience=API)
        async with httpx.AsyncClient() as http:
            rp = RelyingParty([config], http=http, store=MemoryStore())
            request = await rp.begin_login("auth0", redirect_uri=callback_url("auth0"))
            callback = await fake.approve(request.url)
            result = await rp.complete_login("auth0", list(callback.params))
            discovery = (await http.get(f"{fake.origin}/.well-known/openid-configuration")).json()

    assert config.issuer == f"{fake.origin}/"
    assert discovery["issuer"] == f"{fake.origin}/"
    assert discovery["token_endpoint"] == f"{fake.origin}/oauth/token"
    assert result.identity.subject == ALICE
    assert fake.audiences == {next(iter(fake.sessions)): API}
