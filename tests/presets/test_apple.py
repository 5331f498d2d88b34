"""Sign in with Apple through rpkit's Litestar plugin, against :class:`FakeApple`: the
form_post callback, the first-login ``user`` field, the ES256 client secret, string booleans,
refresh and local logout."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from rpkit.client import RelyingParty
from rpkit.errors import ConfigurationError
from rpkit.hooks import ClientSecret, ClientSecretFactory
from rpkit.providers.apple import (
    APPLE_ISSUER,
    MAX_SECRET_LIFETIME,
    USER_FIELD_LIMIT,
    AppleUserField,
    apple,
)
from rpkit.store import MemoryStore
from rpkit.testing import DEFAULT_REDIRECT_URI, AuthorizationResponse, FakeUser
from rpkit.testing.keys import generate_key
from rpkit.testing.providers import FakeApple
from rpkit.testing.providers.apple import APPLE_CLIENT_ID, APPLE_KEY_ID, APPLE_TEAM_ID
from rpkit.testing.server import serve_fake
from rpkit.tokens import TokenClient
from tests.presets.conftest import PresetBrowser, callback_url

pytestmark = pytest.mark.preset("apple")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
ID = "apple"


@pytest.fixture
def fake() -> FakeApple:
    return FakeApple(redirect_uris=(callback_url(ID),))


@pytest.fixture
async def browser(open_preset: OpenPreset, fake: FakeApple) -> PresetBrowser:
    return await open_preset(fake, fake.provider_config())


class CountingSecrets:
    """Wraps a client-secret factory and counts the mints."""

    def __init__(self, inner: ClientSecretFactory) -> None:
        self.inner = inner
        self.calls = 0

    async def __call__(self, now: float) -> ClientSecret:
        self.calls += 1
        return await self.inner(now)


def with_secret_factory(fake: FakeApple, factory: Any) -> Any:
    base = fake.provider_config()
    return fake.provider_config(hooks=msgspec.structs.replace(base.hooks, client_secret=factory))


def error_code(response: httpx.Response) -> str | None:
    """The rpkit error code on the error page."""
    found = re.search(r"Error code: <code>([a-z_]+)</code>", response.text)
    return found.group(1) if found else None


def refreshes(fake: FakeApple) -> int:
    return sum(r.param("grant_type") == "refresh_token" for r in fake.oracle.of("token"))


def user_field(**user: Any) -> str:
    return json.dumps(user, separators=(",", ":"))


def jwt_secret(key: Any, **claims: Any) -> str:
    now = claims.pop("now")
    honest = {
        "iss": APPLE_TEAM_ID,
        "iat": now,
        "exp": now + 3600,
        "aud": "https://appleid.apple.com",
        "sub": APPLE_CLIENT_ID,
    }
    kid = claims.pop("kid", APPLE_KEY_ID)
    return jwt.encode({"alg": "ES256", "kid": kid}, honest | claims, key, ["ES256"])


# -- login and identity -----------------------------------------------------------------------
async def test_login_uses_form_post_and_maps_apples_claims(browser: PresetBrowser, fake: FakeApple):
    started = await browser.start_login()
    callback = await fake.approve(started.headers["location"])
    landed = await browser.deliver(callback)

    assert landed.status_code == 303
    assert callback.method == "POST"
    authorize = fake.oracle.last("authorize")
    assert authorize.param("response_mode") == "form_post"
    assert authorize.param("scope") == "openid name email"
    assert authorize.param("code_challenge_method") == "S256"
    me = await browser.me()
    assert me == {
        "provider": ID,
        "issuer": APPLE_ISSUER,
        "subject": fake.current_user.sub,
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    token = fake.oracle.last("token")
    assert token.param("client_id") == APPLE_CLIENT_ID
    assert token.param("client_secret") is not None
    assert "authorization" not in token.headers
    assert fake.last_secret_problem is None
    assert fake.oracle.count("userinfo") == 0


async def test_the_user_fields_name_lands_on_the_first_login_only(
    browser: PresetBrowser, fake: FakeApple
):
    await browser.login()
    first = await browser.me()
    await browser.logout()

    started = await browser.start_login()
    callback = await fake.approve(started.headers["location"])
    await browser.deliver(callback)

    assert first["name"] == "Alice Liddell"
    assert callback.get("user") is None
    second = await browser.me()
    assert second["subject"] == first["subject"]
    assert second["name"] is None


async def test_a_user_field_with_another_email_does_not_change_the_identity_email(
    browser: PresetBrowser, fake: FakeApple
):
    forged = user_field(name={"firstName": "Mallory"}, email="mallory@evil.example")
    with fake.misbehaving(callback_params={"user": forged}):
        landed = await browser.login()

    assert landed.status_code == 303
    me = await browser.me()
    assert me["email"] == "alice@example.com"
    assert me["name"] == "Mallory"


async def test_an_oversized_user_field_is_refused_before_any_token_request(
    browser: PresetBrowser, fake: FakeApple
):
    padded = user_field(name={"firstName": "A" * USER_FIELD_LIMIT, "lastName": "B"})
    with fake.misbehaving(callback_params={"user": padded}):
        refused = await browser.login()

    assert refused.status_code == 400
    assert error_code(refused) == "parameter_too_large"
    assert fake.oracle.count("token") == 0
    assert await browser.me() == {}


@pytest.mark.parametrize(
    "field",
    ["{not json", '"Alice"', '{"name": "Alice"}', '{"name": {"firstName": 7}}'],
)
async def test_an_unreadable_user_field_is_refused_before_any_token_request(
    browser: PresetBrowser, fake: FakeApple, field: str
):
    with fake.misbehaving(callback_params={"user": field}):
        refused = await browser.login()

    assert refused.status_code == 400
    assert error_code(refused) == "callback_invalid"
    assert fake.oracle.count("token") == 0
    assert await browser.me() == {}


@pytest.mark.parametrize(
    ("claim", "verified"),
    [("true", True), (True, True), ("false", False), (False, False), ("yes", False)],
)
async def test_email_verified_may_be_a_string_boolean(
    browser: PresetBrowser, fake: FakeApple, claim: Any, verified: bool
):
    with fake.misbehaving(id_token_claims={"email_verified": claim}):
        await browser.login()

    assert (await browser.me())["email_verified"] is verified


async def test_the_fake_sends_apples_string_booleans(browser: PresetBrowser, fake: FakeApple):
    fake.login_as(
        FakeUser(
            "000777.feed.0777", {"email": "x1@privaterelay.appleid.com", "email_verified": False}
        )
    )
    await browser.login()

    grant = fake.refresh_tokens[(await browser.session())["refresh_token"]]
    claims = fake.verify_own_token(grant.id_token or "")
    assert claims is not None
    assert claims["email_verified"] == "false"
    assert claims["is_private_email"] == "true"
    assert claims["nonce_supported"] is True
    assert (await browser.me())["email_verified"] is False


# -- the client secret ------------------------------------------------------------------------
async def test_the_client_secret_is_minted_once_across_two_logins(
    open_preset: OpenPreset, fake: FakeApple
):
    factory = fake.provider_config().hooks.client_secret
    assert factory is not None
    counting = CountingSecrets(factory)
    browser = await open_preset(fake, with_secret_factory(fake, counting))

    await browser.login()
    await browser.logout()
    await browser.login()

    secrets = [r.param("client_secret") for r in fake.oracle.of("token")]
    assert counting.calls == 1
    assert len(secrets) == 2
    assert secrets[0] == secrets[1]
    assert (await browser.me())["subject"] == fake.current_user.sub


async def test_the_client_secret_is_reminted_before_it_expires(fake: FakeApple):
    config = fake.provider_config(secret_lifetime=600)
    now = [1_800_000_000.0]
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        tokens = TokenClient(http, clock=lambda: now[0])
        first = await tokens.client_secret(config)
        now[0] += 299  # 301 s left: still more than the 300 s margin
        cached = await tokens.client_secret(config)
        now[0] += 2  # 299 s left
        renewed = await tokens.client_secret(config)

    assert first is not None
    assert renewed is not None
    assert cached == first
    assert renewed != first
    registered = ECKey.import_key(fake.clients[APPLE_CLIENT_ID].jwks["keys"][0])  # type: ignore[index]
    minted = jwt.decode(first, registered)
    assert minted.header["alg"] == "ES256"
    assert minted.header["kid"] == APPLE_KEY_ID
    assert minted.claims == {
        "iss": APPLE_TEAM_ID,
        "iat": 1_800_000_000,
        "exp": 1_800_000_600,
        "aud": "https://appleid.apple.com",
        "sub": APPLE_CLIENT_ID,
    }
    assert jwt.decode(renewed, registered).claims["iat"] == 1_800_000_301


async def test_a_failing_secret_factory_is_an_error_with_no_token_request(
    open_preset: OpenPreset, fake: FakeApple
):
    async def broken(now: float) -> ClientSecret:
        raise RuntimeError("the key store is down")

    browser = await open_preset(fake, with_secret_factory(fake, broken))

    refused = await browser.login()

    assert refused.status_code == 503
    assert error_code(refused) == "client_secret_unavailable"
    assert fake.oracle.count("token") == 0
    assert await browser.me() == {}


class ForgedSecret:
    """Mints a secret the fake must refuse, while telling rpkit it is good for an hour."""

    def __init__(self, key: Any, **claims: Any) -> None:
        self.key = key
        self.claims = claims

    async def __call__(self, now: float) -> ClientSecret:
        claims = {"now": int(now)} | self.claims
        if "exp" in claims:
            claims["exp"] = int(now) + claims["exp"]
        return ClientSecret(value=jwt_secret(self.key, **claims), expires_at=now + 3600)


@pytest.mark.parametrize(
    ("forge", "problem"),
    [
        (lambda fake: ForgedSecret(generate_key("ES256")), "signature"),
        (lambda fake: ForgedSecret(fake.client_key, exp=-10), "expired"),
        (lambda fake: ForgedSecret(fake.client_key, exp=MAX_SECRET_LIFETIME + 10), "six months"),
        (lambda fake: ForgedSecret(fake.client_key, iss="OTHERTEAM1"), "iss"),
        (lambda fake: ForgedSecret(fake.client_key, aud="https://example.com"), "aud"),
        (lambda fake: ForgedSecret(fake.client_key, kid="UNKNOWNKID"), "kid"),
    ],
)
async def test_the_fake_refuses_a_bad_client_secret(
    open_preset: OpenPreset, fake: FakeApple, forge: Any, problem: str
):
    browser = await open_preset(fake, with_secret_factory(fake, forge(fake)))

    refused = await browser.login()

    assert refused.status_code == 400
    assert error_code(refused) == "token_exchange_failed"
    assert fake.oracle.last("token").outcome.startswith("invalid_client")
    assert problem in (fake.last_secret_problem or "")
    assert fake.oracle.requests[-1].endpoint == "token"  # nothing after the refused exchange
    assert await browser.me() == {}


# -- refresh and logout -----------------------------------------------------------------------
async def test_refresh_reuses_the_refresh_token_and_the_cached_secret(
    open_preset: OpenPreset, fake: FakeApple
):
    fake.access_token_lifetime = 30
    browser = await open_preset(fake, fake.provider_config(), refresh_before=60)
    await browser.login()
    issued = list(fake.refresh_tokens)
    fake.access_token_lifetime = 3600

    assert (await browser.me())["subject"] == fake.current_user.sub
    assert (await browser.me())["name"] == "Alice Liddell"

    assert refreshes(fake) == 1
    login, refresh = fake.oracle.of("token")
    assert refresh.outcome == "ok"
    assert refresh.param("client_secret") == login.param("client_secret")
    assert len(issued) == 1
    assert refresh.param("refresh_token") == issued[0]
    assert list(fake.refresh_tokens) == issued  # Apple issues no new one
    assert (await browser.session())["refresh_token"] == issued[0]


async def test_logout_is_local_only(browser: PresetBrowser, fake: FakeApple):
    await browser.login()
    seen = fake.oracle.count()

    response = await browser.logout()

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert await browser.me() == {}
    assert fake.oracle.count() == seen


# -- the preset and the fake ------------------------------------------------------------------
async def test_the_fakes_discovery_has_apples_shape(fake: FakeApple):
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        document = (await http.get(f"{APPLE_ISSUER}/.well-known/openid-configuration")).json()
        userinfo = await http.get(f"{APPLE_ISSUER}/userinfo")

    assert document["issuer"] == APPLE_ISSUER
    assert document["token_endpoint"] == f"{APPLE_ISSUER}/auth/token"
    assert document["jwks_uri"] == f"{APPLE_ISSUER}/auth/keys"
    assert "userinfo_endpoint" not in document
    assert "end_session_endpoint" not in document
    assert document["scopes_supported"] == ["openid", "email", "name"]
    assert document["token_endpoint_auth_methods_supported"] == ["client_secret_post"]
    assert userinfo.status_code == 404


def test_the_preset_defaults(fake: FakeApple):
    config = apple(
        client_id="com.example.web",
        team_id="ABCDE12345",
        key_id="KEY1234567",
        private_key=fake.client_key.as_dict(private=True),
    )

    assert config.id == "apple"
    assert config.issuer == APPLE_ISSUER
    assert config.kind == "oidc"
    assert config.client_auth == "client_secret_post"
    assert config.client_secret is None
    assert config.scopes == ("openid", "name", "email")
    assert "offline_access" not in config.scopes
    assert config.response_mode == "form_post"
    assert config.fetch_userinfo is False
    assert config.id_token_signed_response_alg == "RS256"
    assert config.hooks.names() == ("client_secret", "callback_extras", "identity")
    assert config.relaxations() == ()


@pytest.mark.parametrize(
    "changes",
    [
        {"private_key": generate_key("RS256").as_pem(private=True).decode()},
        {"private_key": generate_key("ES256").as_dict(private=False)},
        {"private_key": "not a key"},
        {"team_id": ""},
        {"secret_lifetime": MAX_SECRET_LIFETIME + 1},
        {"secret_lifetime": 300},
    ],
)
def test_the_preset_refuses_bad_key_material(fake: FakeApple, changes: dict[str, Any]):
    settings: dict[str, Any] = {
        "client_id": "com.example.web",
        "team_id": "ABCDE12345",
        "key_id": "KEY1234567",
        "private_key": fake.private_key,
    }
    with pytest.raises(ConfigurationError):
        apple(**(settings | changes))


def test_the_user_field_reader_keeps_only_the_name():
    reader = AppleUserField()

    assert reader.parse({}) == {}
    assert reader.parse({"user": user_field(email="a@example.com")}) == {}
    assert reader.parse(
        {"user": user_field(name={"firstName": " Ada ", "lastName": "Lovelace"})}
    ) == {"name": "Ada Lovelace"}
    assert "email" not in reader.parse({"user": user_field(name={"lastName": "X"}, email="e@x")})


async def test_the_served_fake_signs_in_through_a_real_http_client():
    with serve_fake(FakeApple) as fake:
        config = fake.provider_config()
        assert config.allow_insecure_http is True
        async with httpx.AsyncClient(timeout=10) as http:
            rp = RelyingParty([config], http=http, store=MemoryStore())
            started = await rp.begin_login(ID, redirect_uri=DEFAULT_REDIRECT_URI)
            page = await http.get(started.url)
            callback = AuthorizationResponse.from_response(page)
            result = await rp.complete_login(ID, list(callback.params))

    assert started.url.startswith(f"{fake.issuer}/auth/authorize?")
    assert callback.method == "POST"
    assert result.identity.issuer == fake.issuer
    assert result.identity.name == "Alice Liddell"
    assert result.identity.email_verified is True
    assert fake.last_secret_problem is None
