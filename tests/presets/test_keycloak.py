"""The Keycloak preset against the fake Keycloak realm: the realm issuer, refresh, RP-initiated
and back-channel logout, roles, the account audience and the typ discriminator."""

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
from rpkit.providers import keycloak
from rpkit.store import MemoryStore
from rpkit.testing import FakeClient, LogoutDefect
from rpkit.testing.providers import FakeKeycloak
from rpkit.testing.server import serve_fake
from tests.presets.conftest import BASE, LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("keycloak")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
SERVER = "https://keycloak.rpkit.test"
ISSUER = f"{SERVER}/realms/rpkit"
CLIENT_ID = "rpkit-web"
API = "orders-api"
SESSION_COOKIE = "__Host-rpkit_session"


def keycloak_client(audience: str | None = API) -> FakeClient:
    return FakeClient(
        client_id=CLIENT_ID,
        client_secret="keycloak-client-secret",
        redirect_uris=(callback_url("keycloak"),),
        post_logout_redirect_uris=(LOGOUT_CALLBACK,),
        backchannel_logout_uri=f"{BASE}/auth/backchannel-logout/keycloak",
        access_token_audience=audience,
    )


def fake_keycloak(audience: str | None = API, **options: Any) -> FakeKeycloak:
    return FakeKeycloak(clients=[keycloak_client(audience)], **options)


async def signed_in(fake: FakeKeycloak, open_preset: OpenPreset, **options: Any) -> PresetBrowser:
    config = fake.provider_config(post_logout_redirect_uri=LOGOUT_CALLBACK)
    browser = await open_preset(fake, config, **options)
    landed = await browser.login()
    assert landed.status_code == 303, landed.text
    return browser


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def refreshes(fake: FakeKeycloak) -> int:
    return sum(r.param("grant_type") == "refresh_token" for r in fake.oracle.of("token"))


async def stored_session(browser: PresetBrowser) -> Any:
    data = await browser.plugin.runtime.sessions.peek(browser.client.cookies.get(SESSION_COOKIE))
    assert data is not None
    return data


async def validate(fake: FakeKeycloak, token: str, policy: AccessTokenPolicy) -> Any:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        return await TokenValidator(JWKSCache(http)).validate_access_token(token, policy)


def back_channel(browser: PresetBrowser, fake: FakeKeycloak, token: str) -> httpx.Response:
    """POST ``token`` as Keycloak's server-to-server call: no browser cookies."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=browser.client.app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as op_http:
            return await fake.send_backchannel_logout(op_http, token)

    return browser.client.blocking_portal.call(send)


# -- the preset's configuration ---------------------------------------------------------------
def test_preset_names_the_realm_issuer_and_asks_for_no_offline_token():
    config = keycloak.keycloak(SERVER, "rpkit", CLIENT_ID, "s")
    legacy = keycloak.keycloak("https://sso.example.com/auth/", "acme", CLIENT_ID, "s")

    assert config.id == "keycloak"
    assert config.issuer == ISSUER
    assert config.scopes == ("openid", "profile", "email")
    assert legacy.issuer == "https://sso.example.com/auth/realms/acme"


@pytest.mark.parametrize(
    ("base_url", "realm"),
    [
        ("sso.example.com", "acme"),
        ("https://sso.example.com?x=1", "acme"),
        (SERVER, "a/b"),
        (SERVER, "my realm"),
        (SERVER, ""),
    ],
)
def test_preset_refuses_a_relative_base_url_and_a_realm_needing_encoding(base_url: str, realm: str):
    with pytest.raises(ConfigurationError, match="keycloak:"):
        keycloak.keycloak(base_url, realm, CLIENT_ID, "s")


def test_info_cites_a_source_for_every_quirk():
    assert keycloak.INFO.name == "keycloak"
    assert "back-channel" in keycloak.INFO.logout
    assert all(q.source for q in keycloak.INFO.quirks)


# -- login, refresh ---------------------------------------------------------------------------
async def test_login_signs_alice_in_with_her_keycloak_identity(open_preset: OpenPreset):
    fake = fake_keycloak()
    browser = await signed_in(fake, open_preset)

    assert await browser.me() == {
        "provider": "keycloak",
        "issuer": ISSUER,
        "subject": "alice",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    data = await stored_session(browser)
    assert data.id_token_claims["typ"] == "ID"
    assert "offline_access" not in fake.oracle.last("authorize").param("scope").split()
    assert data.refresh_token is not None


async def test_access_token_near_expiry_is_refreshed_on_the_next_request(
    open_preset: OpenPreset,
):
    fake = fake_keycloak(access_token_lifetime=30)
    browser = await signed_in(fake, open_preset, refresh_before=60)
    fake.access_token_lifetime = 3600
    before = (await stored_session(browser)).access_token

    assert (await browser.me())["subject"] == "alice"
    assert (await browser.me())["subject"] == "alice"

    assert refreshes(fake) == 1
    assert fake.oracle.last("token").outcome == "ok"
    assert (await stored_session(browser)).access_token != before


# -- the realm is part of the issuer ------------------------------------------------------------
async def test_id_token_of_another_realm_is_refused(open_preset: OpenPreset):
    fake = fake_keycloak()
    browser = await open_preset(fake, fake.provider_config())
    started = await browser.start_login()
    callback = await fake.approve(started.headers["location"])
    fake.misbehave.id_token_claims = {"iss": f"{SERVER}/realms/master"}

    refused = await browser.client.get(callback.location, headers={"Accept": "application/json"})

    assert refused.status_code == 400
    assert refused.json()["code"] == "id_token_invalid"
    assert fake.oracle.count("token") == 1
    assert fake.oracle.count("userinfo") == 0
    assert SESSION_COOKIE not in browser.client.cookies
    assert await browser.me() == {}


# -- logout ------------------------------------------------------------------------------------
async def test_logout_sends_the_browser_to_the_realms_logout_endpoint(open_preset: OpenPreset):
    fake = fake_keycloak()
    browser = await signed_in(fake, open_preset)

    response = await browser.logout()

    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith(f"{ISSUER}/protocol/openid-connect/logout?")
    params = query(location)
    assert set(params) == {"id_token_hint", "post_logout_redirect_uri", "state", "client_id"}
    assert params["client_id"] == [CLIENT_ID]
    assert await browser.me() == {}
    back = await fake.approve(location)
    assert fake.oracle.last("end_session").outcome == "ok"
    assert not fake.sessions
    assert (await browser.deliver(back)).status_code == 303


async def test_backchannel_logout_from_keycloak_ends_the_session(open_preset: OpenPreset):
    fake = fake_keycloak()
    browser = await signed_in(fake, open_preset)
    assert (await browser.me())["subject"] == "alice"
    token = fake.logout_token()

    response = back_channel(browser, fake, token)

    assert response.status_code == 200
    assert await browser.me() == {}
    assert (await browser.session()) == {}


async def test_malformed_logout_token_is_refused_and_the_session_survives(
    open_preset: OpenPreset,
):
    fake = fake_keycloak()
    browser = await signed_in(fake, open_preset)

    response = back_channel(browser, fake, fake.logout_token(defect=LogoutDefect.WRONG_ISSUER))

    assert response.status_code == 400
    assert response.json()["code"] == "logout_token_invalid"
    assert (await browser.me())["subject"] == "alice"


# -- access tokens, audiences and roles -----------------------------------------------------
async def test_access_token_with_the_api_audience_is_accepted_and_carries_roles(
    open_preset: OpenPreset,
):
    fake = fake_keycloak()
    fake.users["alice"].claims["realm_access"] = {"roles": ["admin"]}
    fake.users["alice"].claims["resource_access"] = {API: {"roles": ["orders:write"]}}
    browser = await signed_in(fake, open_preset)
    token = (await browser.session())["access_token"]

    validated = await validate(fake, token, keycloak.bearer_policy(SERVER, "rpkit", API))

    assert validated.aud == (API, "account")
    assert validated.client_id == CLIENT_ID
    assert keycloak.roles(validated.claims) == {"admin"}
    assert keycloak.roles(validated.claims, API) == {"orders:write"}
    assert "admin" not in str((await stored_session(browser)).id_token_claims)
    assert await keycloak.access_tokens_only(validated, None) is validated


async def test_access_token_without_an_audience_mapper_is_refused(open_preset: OpenPreset):
    fake = fake_keycloak(audience=None)
    browser = await signed_in(fake, open_preset)
    token = (await browser.session())["access_token"]

    with pytest.raises(AccessTokenValidationError) as refused:
        await validate(fake, token, keycloak.bearer_policy(SERVER, "rpkit", API))

    assert refused.value.reason == "aud"


def test_bearer_policy_refuses_the_account_audience():
    with pytest.raises(ConfigurationError, match="Audience mapper"):
        keycloak.bearer_policy(SERVER, "rpkit", "account")

    policy = keycloak.bearer_policy(SERVER, "rpkit", API, required_scopes=("orders",))
    assert policy.jwks_uri == f"{ISSUER}/protocol/openid-connect/certs"
    assert policy.required_scopes == ("orders",)


async def test_an_id_token_naming_the_api_is_refused_by_its_payload_typ():
    fake = fake_keycloak()
    id_like = fake.minter.sign(
        {"iss": ISSUER, "sub": "alice", "aud": API, "typ": "ID", "azp": API}
        | {"iat": fake.now(), "exp": fake.now() + 300}
    )

    with pytest.raises(AccessTokenValidationError) as refused:
        await validate(fake, id_like, keycloak.bearer_policy(SERVER, "rpkit", API))

    assert refused.value.reason == "id_token"


def test_roles_are_empty_when_absent_or_malformed():
    assert keycloak.roles({}) == frozenset()
    assert keycloak.roles({"realm_access": {"roles": "admin"}}) == frozenset()
    assert keycloak.roles({"resource_access": [API]}, API) == frozenset()
    assert keycloak.roles({"resource_access": {API: {"roles": ["a", 1]}}}, API) == {"a"}


# -- served ----------------------------------------------------------------------------------------
async def test_served_fake_keycloak_signs_in_through_a_real_http_client():
    with serve_fake(FakeKeycloak, realm="acme", clients=[keycloak_client()]) as fake:
        config = fake.provider_config()
        async with httpx.AsyncClient() as http:
            rp = RelyingParty([config], http=http, store=MemoryStore())
            request = await rp.begin_login("keycloak", redirect_uri=callback_url("keycloak"))
            callback = await fake.approve(request.url)
            result = await rp.complete_login("keycloak", list(callback.params))

    assert config.issuer == f"{fake.base_url}/realms/acme"
    assert config.allow_insecure_http
    assert request.url.startswith(f"{config.issuer}/protocol/openid-connect/auth?")
    assert result.identity.subject == "alice"
    assert result.id_token.claims["typ"] == "ID"
