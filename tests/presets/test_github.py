"""GitHub through rpkit's Litestar plugin, against :class:`FakeGitHub`: the identity from
``/user`` and ``/user/emails``, the numeric id as subject, refused profiles, state and PKCE,
GitHub Apps' refresh, Enterprise Server URLs and local logout."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from rpkit.client import RelyingParty
from rpkit.config import Endpoints
from rpkit.errors import ConfigurationError
from rpkit.providers.github import GITHUB_API_URL, GITHUB_URL, github
from rpkit.store import MemoryStore
from rpkit.testing import DEFAULT_REDIRECT_URI, AuthorizationResponse, Canned, FakeUser
from rpkit.testing.providers import FakeGitHub
from rpkit.testing.providers.github import GITHUB_CLIENT_ID, github_user
from rpkit.testing.server import serve_fake
from tests.presets.conftest import PresetBrowser, callback_url

pytestmark = pytest.mark.preset("github")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
ID = "github"


def make_fake(**options: Any) -> FakeGitHub:
    return FakeGitHub(redirect_uris=(callback_url(ID),), **options)


@pytest.fixture
def fake() -> FakeGitHub:
    return make_fake()


@pytest.fixture
async def browser(open_preset: OpenPreset, fake: FakeGitHub) -> PresetBrowser:
    return await open_preset(fake, fake.provider_config())


def error_code(response: httpx.Response) -> str | None:
    """The rpkit error code on the error page."""
    found = re.search(r"Error code: <code>([a-z_]+)</code>", response.text)
    return found.group(1) if found else None


def alice_id(fake: FakeGitHub) -> int:
    user_id: int = github_user(fake.users["alice"])["id"]
    return user_id


# -- login and identity -----------------------------------------------------------------------
async def test_login_reads_the_identity_from_user_and_user_emails(
    browser: PresetBrowser, fake: FakeGitHub
):
    landed = await browser.login()

    assert landed.status_code == 303
    assert await browser.me() == {
        "provider": ID,
        "issuer": GITHUB_URL,
        "subject": str(alice_id(fake)),
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Liddell",
        "tenant": None,
    }
    authorize = fake.oracle.last("authorize")
    assert authorize.url.startswith("https://github.com/login/oauth/authorize?")
    assert authorize.param("scope") == "read:user user:email"
    assert authorize.param("code_challenge_method") == "S256"
    token = fake.oracle.last("token")
    assert token.url == "https://github.com/login/oauth/access_token"
    assert token.headers["accept"] == "application/json"
    assert token.param("client_id") == GITHUB_CLIENT_ID
    assert token.param("client_secret") is not None
    profile = fake.oracle.last("profile")
    assert profile.url == f"{GITHUB_API_URL}/user"
    assert profile.headers["authorization"].startswith("Bearer gho_")
    assert [r.url for r in fake.oracle.of("extra")] == [f"{GITHUB_API_URL}/user/emails"]


async def test_the_subject_is_the_numeric_id_never_the_login_or_email(
    browser: PresetBrowser, fake: FakeGitHub
):
    fake.login_as(FakeUser("bob@example.org", {"preferred_username": "bob@example.org"}))

    await browser.login()

    me = await browser.me()
    profile = github_user(fake.current_user)
    assert me["subject"] == str(profile["id"])
    assert me["subject"] not in (profile["login"], "bob@example.org")
    assert me["email"] is None  # the user has no address at all
    assert me["name"] == "bob@example.org"  # no name: the login stands in


async def test_the_public_profile_email_is_not_the_identity_email(open_preset: OpenPreset):
    fake = make_fake(profile=lambda user: github_user(user) | {"email": "public@example.net"})
    browser = await open_preset(fake, fake.provider_config())

    await browser.login()

    assert (await browser.me())["email"] == "alice@example.com"


async def test_an_unverified_primary_email_is_not_taken(browser: PresetBrowser, fake: FakeGitHub):
    fake.login_as(FakeUser("carol", {"email": "carol@example.com", "email_verified": False}))

    await browser.login()

    me = await browser.me()
    assert me["email"] is None
    assert me["email_verified"] is False
    assert me["subject"] == str(github_user(fake.current_user)["id"])


async def test_without_emails_no_email_request_is_made(open_preset: OpenPreset, fake: FakeGitHub):
    browser = await open_preset(fake, fake.provider_config(emails=False))

    await browser.login()

    assert fake.oracle.last("authorize").param("scope") == "read:user"
    assert fake.oracle.count("extra") == 0
    assert (await browser.me())["email"] is None


@pytest.mark.parametrize(
    "profile",
    [
        lambda user: {"login": user.sub},
        lambda user: github_user(user) | {"id": str(github_user(user)["id"])},
        lambda user: github_user(user) | {"id": True},
        lambda user: github_user(user) | {"id": 0},
    ],
    ids=["no-id", "string-id", "boolean-id", "zero-id"],
)
async def test_a_profile_without_an_integer_id_is_refused(open_preset: OpenPreset, profile: Any):
    fake = make_fake(profile=profile)
    browser = await open_preset(fake, fake.provider_config())

    refused = await browser.login()

    assert refused.status_code == 403
    assert error_code(refused) == "identity_refused"
    assert fake.oracle.count("extra") == 0  # refused before /user/emails
    assert await browser.me() == {}


async def test_a_profile_that_is_not_an_object_is_refused(open_preset: OpenPreset):
    fake = make_fake(profile=lambda user: [github_user(user)])
    browser = await open_preset(fake, fake.provider_config())

    refused = await browser.login()

    assert refused.status_code == 400
    assert error_code(refused) == "userinfo_invalid"
    assert fake.oracle.count("extra") == 0
    assert await browser.me() == {}


async def test_a_token_error_sent_with_http_200_is_refused(
    browser: PresetBrowser, fake: FakeGitHub
):
    error = {"error": "bad_verification_code", "error_description": "The code is incorrect."}
    fake.misbehave.respond = {"token": Canned.json(error, status=200)}

    refused = await browser.login()

    assert refused.status_code == 400
    assert error_code(refused) == "token_exchange_failed"
    assert fake.oracle.count("profile") == 0
    assert await browser.me() == {}


# -- state and PKCE ---------------------------------------------------------------------------
async def test_a_replayed_callback_is_refused(browser: PresetBrowser, fake: FakeGitHub):
    started = await browser.start_login()
    callback = await fake.approve(started.headers["location"])
    assert (await browser.deliver(callback)).status_code == 303
    browser.client.cookies.clear()
    seen = fake.oracle.count()

    replayed = await browser.deliver(callback)

    assert replayed.status_code == 400
    assert error_code(replayed) == "invalid_state"
    assert fake.oracle.count() == seen
    assert await browser.me() == {}


async def test_an_altered_state_is_refused(browser: PresetBrowser, fake: FakeGitHub):
    with fake.misbehaving(callback_state="altered"):
        refused = await browser.login()

    assert refused.status_code == 400
    assert error_code(refused) == "invalid_state"
    assert fake.oracle.count("token") == 0
    assert await browser.me() == {}


async def test_the_code_is_exchanged_with_the_pkce_verifier(
    browser: PresetBrowser, fake: FakeGitHub
):
    await browser.login()

    authorize, token = fake.oracle.last("authorize"), fake.oracle.last("token")
    assert authorize.param("code_challenge")
    assert token.param("code_verifier")
    assert token.outcome == "ok"  # the fake checked the verifier against the challenge


# -- refresh and logout -----------------------------------------------------------------------
async def test_an_oauth_apps_session_has_no_refresh_token(browser: PresetBrowser, fake: FakeGitHub):
    await browser.login()

    session = await browser.session()
    assert session["refresh_token"] is None
    assert session["access_token"].startswith("gho_")


async def test_a_github_apps_expiring_token_is_refreshed_and_rotated(open_preset: OpenPreset):
    fake = make_fake(github_app=True, access_token_lifetime=30)
    browser = await open_preset(fake, fake.provider_config(), refresh_before=60)
    await browser.login()
    issued = list(fake.refresh_tokens)
    fake.access_token_lifetime = 3600

    assert (await browser.me())["subject"] == str(alice_id(fake))
    assert (await browser.me())["email"] == "alice@example.com"

    refreshes = [r for r in fake.oracle.of("token") if r.param("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    assert refreshes[0].param("refresh_token") == issued[0]
    assert refreshes[0].outcome == "ok"
    session = await browser.session()
    assert session["refresh_token"].startswith("ghr_")
    assert session["refresh_token"] != issued[0]
    assert session["access_token"].startswith("ghu_")
    assert fake.refresh_tokens[issued[0]].revoked


async def test_logout_is_local_only(browser: PresetBrowser, fake: FakeGitHub):
    await browser.login()
    seen = fake.oracle.count()

    response = await browser.logout()

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert await browser.me() == {}
    assert fake.oracle.count() == seen


# -- the preset and the fake ------------------------------------------------------------------
def test_the_preset_defaults():
    config = github(client_id="Ov23li", client_secret="s3cret")

    assert config.id == "github"
    assert config.kind == "oauth2"
    assert config.issuer == GITHUB_URL
    assert config.endpoints == Endpoints(
        authorization_endpoint="https://github.com/login/oauth/authorize",
        token_endpoint="https://github.com/login/oauth/access_token",
        profile_endpoint="https://api.github.com/user",
    )
    assert config.scopes == ("read:user", "user:email")
    assert config.client_auth == "client_secret_post"
    assert config.hooks.names() == ("identity",)
    assert "login" in config.allowed_authorization_params
    assert config.relaxations() == ()


def test_an_enterprise_server_has_its_api_under_api_v3():
    config = github(client_id="a", client_secret="b", base_url="https://ghe.example/")

    assert config.issuer == "https://ghe.example"
    assert config.endpoints is not None
    assert config.endpoints.authorization_endpoint == "https://ghe.example/login/oauth/authorize"
    assert config.endpoints.token_endpoint == "https://ghe.example/login/oauth/access_token"
    assert config.endpoints.profile_endpoint == "https://ghe.example/api/v3/user"


@pytest.mark.parametrize(
    "changes",
    [
        {"base_url": "http://ghe.example"},
        {"api_url": "http://api.ghe.example"},
        {"client_id": ""},
        {"scopes": ("openid", "read:user")},
    ],
)
def test_the_preset_refuses_an_invalid_configuration(changes: dict[str, Any]):
    settings: dict[str, Any] = {"client_id": "a", "client_secret": "b"}
    with pytest.raises(ConfigurationError):
        github(**(settings | changes))


async def test_an_enterprise_server_login_uses_its_own_host(open_preset: OpenPreset):
    fake = FakeGitHub("https://ghe.example", redirect_uris=(callback_url(ID),))
    browser = await open_preset(fake, fake.provider_config())

    await browser.login()

    assert (await browser.me())["issuer"] == "https://ghe.example"
    assert fake.oracle.last("token").url == "https://ghe.example/login/oauth/access_token"
    assert fake.oracle.last("profile").url == "https://ghe.example/api/v3/user"
    assert fake.oracle.last("extra").url == "https://ghe.example/api/v3/user/emails"


async def test_the_fake_answers_api_paths_only_on_the_api_host(fake: FakeGitHub):
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        web_user = await http.get(f"{GITHUB_URL}/user", headers={"Authorization": "Bearer x"})
        api_authorize = await http.get(f"{GITHUB_API_URL}/login/oauth/authorize")
        api_user = await http.get(f"{GITHUB_API_URL}/user", headers={"Authorization": "Bearer x"})

    assert web_user.status_code == 404
    assert api_authorize.status_code == 404
    assert api_user.status_code == 401  # served there, and the token is unknown


async def test_the_served_fake_signs_in_through_a_real_http_client():
    with serve_fake(FakeGitHub) as fake:
        config = fake.provider_config()
        async with httpx.AsyncClient(timeout=10) as http:
            rp = RelyingParty([config], http=http, store=MemoryStore())
            started = await rp.begin_login(ID, redirect_uri=DEFAULT_REDIRECT_URI)
            page = await http.get(started.url)
            callback = AuthorizationResponse.from_response(page)
            result = await rp.complete_login(ID, list(callback.params))

    assert config.allow_insecure_http is True
    assert started.url.startswith(f"{fake.issuer}/login/oauth/authorize?")
    assert result.identity.subject == str(alice_id(fake))
    assert result.identity.email == "alice@example.com"
    assert fake.oracle.last("profile").url == f"{fake.issuer}/api/v3/user"


async def test_githubs_comma_separated_scope_is_recorded_as_separate_scopes():
    fake = FakeGitHub(redirect_uris=(DEFAULT_REDIRECT_URI,))
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        rp = RelyingParty([fake.provider_config()], http=http, store=MemoryStore())
        request = await rp.begin_login(ID, redirect_uri=DEFAULT_REDIRECT_URI)
        callback = await fake.approve(request.url)
        result = await rp.complete_login(ID, list(callback.params))

    assert fake.oracle.last("token") is not None
    assert set(result.tokens.scope) == {"read:user", "user:email"}
