"""The Cognito preset end to end through the Litestar plugin, against FakeCognito: login through
the managed-login domain, UserInfo's string booleans, refresh without rotation, Cognito's own
logout request, tokens for another app client or pool refused, the bearer policy for access
tokens without ``aud``, and the fake served on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from rpkit.access_token import AccessTokenPolicy
from rpkit.client import RelyingParty
from rpkit.errors import AccessTokenValidationError, ConfigurationError
from rpkit.hooks import LogoutContext
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.providers import cognito as preset
from rpkit.store import MemoryStore
from rpkit.testing import ABSENT, DEFAULT_CLIENT_ID, FakeClient, FakeUser
from rpkit.testing.providers import FakeCognito
from rpkit.testing.providers.cognito import DEFAULT_USER_POOL_ID
from rpkit.testing.registry import TokenGrant
from rpkit.testing.server import serve_fake
from tests.presets.conftest import LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("cognito")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{DEFAULT_USER_POOL_ID}"
HOSTED_UI = "https://rpkit-test.auth.us-east-1.amazoncognito.com"


def fake_cognito(**options: Any) -> FakeCognito:
    fake = FakeCognito(**options)
    fake.register_client(
        FakeClient(
            redirect_uris=(callback_url("cognito"),), post_logout_redirect_uris=(LOGOUT_CALLBACK,)
        )
    )
    return fake


def config(fake: FakeCognito, **changes: Any) -> Any:
    return fake.provider_config(**({"post_logout_redirect_uri": LOGOUT_CALLBACK} | changes))


def alice(fake: FakeCognito) -> FakeUser:
    return next(u for u in fake.users.values() if u.claims["cognito:username"] == "alice")


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def endpoint_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# -- login ---------------------------------------------------------------------------------------
async def test_login_goes_through_the_managed_login_domain(open_preset: OpenPreset):
    fake = fake_cognito()
    browser = await open_preset(fake, config(fake))

    landed = await browser.login()

    assert landed.status_code == 303
    assert await browser.me() == {
        "provider": "cognito",
        "issuer": ISSUER,
        "subject": alice(fake).sub,
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    assert fake.oracle.last("discovery").url == f"{ISSUER}/.well-known/openid-configuration"
    assert fake.oracle.last("jwks").url == f"{ISSUER}/.well-known/jwks.json"
    assert endpoint_of(fake.oracle.last("authorize").url) == f"{HOSTED_UI}/oauth2/authorize"
    assert fake.oracle.last("token").url == f"{HOSTED_UI}/oauth2/token"
    assert fake.oracle.last("token").headers["authorization"].startswith("Basic ")
    assert fake.oracle.last("userinfo").url == f"{HOSTED_UI}/oauth2/userInfo"
    assert fake.oracle.last("authorize").param("scope") == "openid email profile"


@pytest.mark.parametrize(("userinfo", "verified"), [("true", True), ("false", False)])
async def test_userinfos_string_email_verified_is_read(
    open_preset: OpenPreset, userinfo: str, verified: bool
):
    fake = fake_cognito()
    fake.misbehave.id_token_claims = {"email_verified": ABSENT}  # only UserInfo says it
    fake.misbehave.userinfo_claims = {"email_verified": userinfo}
    browser = await open_preset(fake, config(fake))

    await browser.login()

    assert (await browser.me())["email_verified"] is verified


async def test_a_refresh_keeps_the_refresh_token(open_preset: OpenPreset):
    fake = fake_cognito(access_token_lifetime=30)
    browser = await open_preset(fake, config(fake), refresh_before=60)
    await browser.login()
    fake.access_token_lifetime = 3600

    assert (await browser.me())["subject"] == alice(fake).sub
    assert (await browser.me())["subject"] == alice(fake).sub

    refreshes = [r for r in fake.oracle.of("token") if r.param("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    assert refreshes[0].outcome == "ok"
    assert (await browser.session())["refresh_token"] == refreshes[0].param("refresh_token")


# -- logout --------------------------------------------------------------------------------------
async def test_logout_sends_client_id_and_logout_uri_and_stores_no_state(open_preset: OpenPreset):
    fake = fake_cognito()
    browser = await open_preset(fake, config(fake))
    await browser.login()

    response = await browser.logout()

    assert response.status_code == 303
    location = response.headers["location"]
    assert endpoint_of(location) == f"{HOSTED_UI}/logout"
    assert query(location) == {"client_id": [DEFAULT_CLIENT_ID], "logout_uri": [LOGOUT_CALLBACK]}
    assert await browser.me() == {}
    back = await fake.approve(location)
    assert fake.oracle.last("end_session").outcome == "ok"
    assert back.url == LOGOUT_CALLBACK
    landed = await browser.deliver(back)
    assert landed.status_code == 200  # no state came back: the neutral signed-out page
    assert "signed out" in landed.text


async def test_the_fakes_logout_refuses_a_logout_uri_that_is_not_allowed():
    fake = fake_cognito()
    params = {"client_id": DEFAULT_CLIENT_ID, "logout_uri": "https://evil.example/"}

    answer = await fake.handle(httpx.Request("GET", f"{HOSTED_UI}/logout?{urlencode(params)}"))

    assert answer.status_code == 400
    assert fake.oracle.last("end_session").outcome == "invalid_request"


def test_the_logout_hook_drops_what_cognito_does_not_take():
    params = {
        "client_id": "app",
        "id_token_hint": "eyJ...",
        "state": "s",
        "post_logout_redirect_uri": "x",
    }
    context = LogoutContext(
        provider_id="cognito", client_id="app", post_logout_redirect_uri="https://a/b"
    )

    assert preset.cognito_logout_params(params, context) == {
        "client_id": "app",
        "logout_uri": "https://a/b",
    }


# -- refused -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit",
    [
        {"aud": "another-app-client"},
        {"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"},
    ],
    ids=["another-app-client", "another-pool"],
)
async def test_an_id_token_of_another_app_client_or_pool_is_refused(
    open_preset: OpenPreset, edit: dict[str, str]
):
    fake = fake_cognito()
    fake.misbehave.id_token_claims = edit
    browser = await open_preset(fake, config(fake))

    landed = await browser.login()

    assert landed.status_code == 400
    assert "id_token_invalid" in landed.text
    assert fake.oracle.count("token") == 1
    assert fake.oracle.count("userinfo") == 0
    assert await browser.me() == {}


# -- the preset's configuration ------------------------------------------------------------------
def test_the_issuer_comes_from_the_pool_id_and_its_region():
    config = preset.cognito("eu-west-1_AbC123", "app", "s3cret")
    public = preset.cognito("eu-west-1_AbC123", "app")
    elsewhere = preset.cognito("eu-west-1_AbC123", "app", region="eu-central-1")

    assert config.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123"
    assert (config.client_auth, public.client_auth) == ("client_secret_basic", "none")
    assert config.scopes == ("openid", "email", "profile")
    assert config.endpoints is None  # discovered
    assert config.hooks.logout_params is preset.cognito_logout_params
    assert elsewhere.issuer.startswith("https://cognito-idp.eu-central-1.amazonaws.com/")
    assert config.relaxations() == ()


@pytest.mark.parametrize("pool", ["AbC123", "eu-west-1", "eu-west-1_", "https://x/eu-west-1_A"])
def test_a_malformed_pool_id_is_refused(pool: str):
    with pytest.raises(ConfigurationError, match="user pool id"):
        preset.cognito(pool, "app", "s3cret")


# -- the fake's discovery ------------------------------------------------------------------------
async def test_the_fake_publishes_cognitos_discovery_document():
    fake = fake_cognito()
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        document = (await http.get(f"{ISSUER}/.well-known/openid-configuration")).json()

    assert set(document) == {
        "authorization_endpoint",
        "end_session_endpoint",
        "id_token_signing_alg_values_supported",
        "issuer",
        "jwks_uri",
        "response_types_supported",
        "revocation_endpoint",
        "scopes_supported",
        "subject_types_supported",
        "token_endpoint",
        "token_endpoint_auth_methods_supported",
        "userinfo_endpoint",
    }
    assert document["end_session_endpoint"] == f"{HOSTED_UI}/logout"
    assert "offline_access" not in document["scopes_supported"]


# -- bearer --------------------------------------------------------------------------------------
async def validate(fake: FakeCognito, token: str, policy: AccessTokenPolicy) -> Any:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        return await TokenValidator(JWKSCache(http)).validate_access_token(token, policy)


def header(token: str) -> dict[str, Any]:
    head = token.split(".", maxsplit=1)[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return decoded


async def test_bearer_policy_accepts_an_access_token_by_its_client_id():
    fake = fake_cognito()
    token = fake.issue_access_token(fake.clients[DEFAULT_CLIENT_ID], alice(fake), "openid email")
    policy = preset.bearer_policy(DEFAULT_USER_POOL_ID, DEFAULT_CLIENT_ID)

    accepted = await validate(fake, token, policy)

    assert "typ" not in header(token)
    assert (accepted.aud, accepted.client_id) == ((), DEFAULT_CLIENT_ID)
    assert accepted.claims["token_use"] == "access"
    assert policy.audience == (DEFAULT_CLIENT_ID,)  # a string is one client, not its letters
    assert policy.jwks_uri == f"{ISSUER}/.well-known/jwks.json"


async def test_bearer_policy_refuses_another_app_clients_token_and_an_id_token():
    fake = fake_cognito()
    client, other = fake.clients[DEFAULT_CLIENT_ID], FakeClient(client_id="other-app-client")
    fake.register_client(other)
    access = fake.issue_access_token(client, alice(fake), "openid")
    grant = TokenGrant(client.client_id, alice(fake), "openid", fake.now(), None)
    id_token = fake.issue_id_token(client, grant, access, nonce=None, refreshing=False)
    policy = preset.bearer_policy(DEFAULT_USER_POOL_ID, [DEFAULT_CLIENT_ID])

    for token in (fake.issue_access_token(other, alice(fake), "openid"), id_token):
        with pytest.raises(AccessTokenValidationError) as caught:
            await validate(fake, token, policy)
        assert caught.value.reason == "aud"


# -- served --------------------------------------------------------------------------------------
async def test_the_fake_served_on_loopback_signs_in_through_a_real_client():
    with serve_fake(FakeCognito) as fake:
        fake.register_client(FakeClient(redirect_uris=(callback_url("cognito"),)))
        async with httpx.AsyncClient() as http:
            rp = RelyingParty([fake.provider_config()], http=http, store=MemoryStore())
            request = await rp.begin_login("cognito", redirect_uri=callback_url("cognito"))
            location = (await http.get(request.url, follow_redirects=False)).headers["location"]
            params = [(k, v) for k, vs in query(location).items() for v in vs]
            result = await rp.complete_login("cognito", params)

    assert fake.issuer == f"{fake.hosted_ui}/{DEFAULT_USER_POOL_ID}"
    assert request.url.startswith(f"{fake.hosted_ui}/oauth2/authorize?")
    assert result.identity.subject == alice(fake).sub
    assert result.userinfo is not None
    assert result.userinfo["email_verified"] == "true"
