"""The Entra ID preset end to end through the Litestar plugin, against FakeEntra: tenants pinned
on a multi-tenant issuer (and refused when they are not allowed, lie about their issuer or are
no GUID), a single tenant, the ``tid:oid`` subject with an unverified email, refresh, logout,
the tenant guard, the bearer policy, and the fake served on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import get
from structlog.testing import capture_logs

from rpkit.access_token import AccessTokenPolicy
from rpkit.client import RelyingParty
from rpkit.errors import AccessTokenValidationError, ConfigurationError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.litestar import requires_tenant
from rpkit.providers import entra as preset
from rpkit.store import MemoryStore
from rpkit.testing import FakeClient, FakeUser
from rpkit.testing.providers import FakeEntra
from rpkit.testing.server import serve_fake
from tests.presets.conftest import LOGOUT_CALLBACK, PresetBrowser, callback_url

pytestmark = pytest.mark.preset("entra")

OpenPreset = Callable[..., Awaitable[PresetBrowser]]
LOGIN = preset.MICROSOFT_LOGIN
CONTOSO = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FABRIKAM = "b0b00000-7e57-4000-8000-00000000000b"
API = "6e74172b-be56-4843-9ff4-e66a39bb12e3"


def person(name: str, tenant: str, oid: str) -> FakeUser:
    claims = {"name": name.title(), "email": f"{name}@example.com", "email_verified": True}
    return FakeUser(
        name, {**claims, "preferred_username": f"{name}@example.com", "oid": oid}, tenant
    )


ALICE = person("alice", CONTOSO, "00000000-0000-4000-8000-0000000a11ce")
BOB = person("bob", FABRIKAM, "00000000-0000-4000-8000-000000000b0b")


def fake_entra(**options: Any) -> FakeEntra:
    fake = FakeEntra(users=[ALICE, BOB], **options)
    fake.register_client(
        FakeClient(
            redirect_uris=(callback_url("entra"),),
            post_logout_redirect_uris=(LOGOUT_CALLBACK,),
            access_token_audience=API,
        )
    )
    return fake


def config(fake: FakeEntra, **changes: Any) -> Any:
    settings = {"allowed_tenants": [CONTOSO], "post_logout_redirect_uri": LOGOUT_CALLBACK}
    return fake.provider_config(**(settings | changes))


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def endpoint_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def refused(browser: PresetBrowser, code: str) -> None:
    """The REJECT triple after a bad ID token: the error, nothing further reached the provider
    (the token endpoint was reached once, UserInfo never), and no session."""
    tokens = browser.fake.oracle.count("token")
    landed = await browser.login()
    assert landed.status_code == 400
    assert code in landed.text
    assert browser.fake.oracle.count("token") == tokens + 1, "the bad ID token never arrived"
    assert browser.fake.oracle.count("userinfo") == 0
    assert await browser.me() == {}


# -- multi-tenant --------------------------------------------------------------------------------
async def test_login_from_an_allowed_tenant_is_tid_oid_with_an_unverified_email(
    open_preset: OpenPreset,
):
    fake = fake_entra()
    fake.misbehave.id_token_claims = {"email_verified": True}  # Entra sends none; ignored anyway
    browser = await open_preset(fake, config(fake))

    landed = await browser.login()

    assert landed.status_code == 303
    assert await browser.me() == {
        "provider": "entra",
        "issuer": f"{LOGIN}/{CONTOSO}/v2.0",
        "subject": f"{CONTOSO}:{ALICE.claims['oid']}",
        "email": "alice@example.com",
        "email_verified": False,
        "name": "Alice",
        "tenant": CONTOSO,
    }
    assert fake.oracle.count("discovery") == 0  # configured endpoints: see the xfail below
    assert endpoint_of(fake.oracle.last("authorize").url) == (
        f"{LOGIN}/organizations/oauth2/v2.0/authorize"
    )
    assert fake.oracle.last("userinfo").url == "https://graph.microsoft.com/oidc/userinfo"
    assert "offline_access" in fake.oracle.last("authorize").param("scope").split()


async def test_a_user_of_a_tenant_not_allowed_is_refused(open_preset: OpenPreset):
    fake = fake_entra()
    fake.login_as(BOB)
    browser = await open_preset(fake, config(fake))

    await refused(browser, "id_token_invalid")


async def test_a_token_whose_iss_is_another_tenants_than_its_tid_is_refused(
    open_preset: OpenPreset,
):
    fake = fake_entra()
    fake.misbehave.id_token_claims = {"iss": f"{LOGIN}/{FABRIKAM}/v2.0"}  # tid stays Contoso
    browser = await open_preset(fake, config(fake, allowed_tenants=[CONTOSO, FABRIKAM]))

    await refused(browser, "id_token_invalid")


async def test_a_tid_that_is_not_a_guid_is_refused(open_preset: OpenPreset):
    fake = fake_entra()
    domain = "contoso.onmicrosoft.com"
    fake.misbehave.id_token_claims = {"tid": domain, "iss": f"{LOGIN}/{domain}/v2.0"}
    browser = await open_preset(fake, config(fake, allowed_tenants=(), any_tenant=True))

    await refused(browser, "id_token_invalid")


async def test_any_tenant_admits_every_tenant_and_is_logged(open_preset: OpenPreset):
    fake = fake_entra()
    fake.login_as(BOB)
    with capture_logs() as logs:
        browser = await open_preset(fake, config(fake, allowed_tenants=(), any_tenant=True))
        assert (await browser.login()).status_code == 303

    assert (await browser.me())["tenant"] == FABRIKAM
    settings = [e["setting"] for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert any(s.startswith("tenants.any_tenant") for s in settings)


@get("/contoso-only", guards=[requires_tenant(CONTOSO)])
async def contoso_only() -> str:
    return "inside"


async def test_the_tenant_guard_reads_the_identitys_tenant(open_preset: OpenPreset):
    fake = fake_entra()
    browser = await open_preset(fake, config(fake, allowed_tenants=[CONTOSO, FABRIKAM]))
    browser.client.app.register(contoso_only)
    await browser.login()
    assert (await browser.client.get("/contoso-only")).text == "inside"

    browser.client.cookies.clear()
    fake.login_as(BOB)
    await browser.login()
    denied = await browser.client.get("/contoso-only", headers={"Accept": "application/json"})

    assert (await browser.me())["tenant"] == FABRIKAM
    assert denied.status_code == 403


# -- one tenant ----------------------------------------------------------------------------------
async def test_a_single_tenant_has_its_own_issuer_and_keeps_the_tenant(
    open_preset: OpenPreset,
):
    fake = fake_entra()
    browser = await open_preset(fake, config(fake, tenant=CONTOSO, allowed_tenants=()))

    assert (await browser.login()).status_code == 303

    me = await browser.me()
    assert (me["issuer"], me["tenant"]) == (f"{LOGIN}/{CONTOSO}/v2.0", CONTOSO)
    assert endpoint_of(fake.oracle.last("token").url) == f"{LOGIN}/{CONTOSO}/oauth2/v2.0/token"


async def test_a_single_tenant_refuses_a_user_of_another_tenant(open_preset: OpenPreset):
    fake = fake_entra()
    fake.login_as(BOB)
    browser = await open_preset(fake, config(fake, tenant=CONTOSO, allowed_tenants=()))

    await refused(browser, "id_token_invalid")


async def test_a_single_tenant_refuses_a_tid_that_is_not_its_issuers(open_preset: OpenPreset):
    fake = fake_entra()
    fake.misbehave.id_token_claims = {"tid": FABRIKAM}  # iss stays Contoso's
    browser = await open_preset(fake, config(fake, tenant=CONTOSO, allowed_tenants=()))

    landed = await browser.login()

    assert landed.status_code == 403
    assert "identity_refused" in landed.text
    assert await browser.me() == {}


async def test_consumers_is_the_personal_account_tenant(open_preset: OpenPreset):
    carol = person("carol", preset.CONSUMERS_TENANT, "00000000-0000-0000-0001-000000000ca7")
    fake = fake_entra()
    fake.login_as(carol)
    browser = await open_preset(fake, config(fake, tenant="consumers", allowed_tenants=()))

    assert (await browser.login()).status_code == 303

    assert (await browser.me())["issuer"] == f"{LOGIN}/{preset.CONSUMERS_TENANT}/v2.0"


# -- refresh and logout --------------------------------------------------------------------------
async def test_an_access_token_about_to_expire_is_refreshed(open_preset: OpenPreset):
    fake = fake_entra(access_token_lifetime=30)
    browser = await open_preset(fake, config(fake), refresh_before=60)
    await browser.login()
    fake.access_token_lifetime = 3600

    assert (await browser.me())["subject"] == f"{CONTOSO}:{ALICE.claims['oid']}"
    assert (await browser.me())["tenant"] == CONTOSO

    refreshes = [r for r in fake.oracle.of("token") if r.param("grant_type") == "refresh_token"]
    assert len(refreshes) == 1
    assert refreshes[0].outcome == "ok"
    rotated = (await browser.session())["refresh_token"]
    assert rotated not in (None, refreshes[0].param("refresh_token"))  # Entra rotates it


async def test_logout_goes_to_the_tenants_end_session_endpoint_and_back(open_preset: OpenPreset):
    fake = fake_entra()
    browser = await open_preset(fake, config(fake))
    await browser.login()

    response = await browser.logout()

    assert response.status_code == 303
    location = response.headers["location"]
    assert endpoint_of(location) == f"{LOGIN}/organizations/oauth2/v2.0/logout"
    params = query(location)
    assert params["post_logout_redirect_uri"] == [LOGOUT_CALLBACK]
    assert params["client_id"] == [fake.provider_config().client_id]
    assert "state" in params
    assert await browser.me() == {}
    back = await fake.approve(location)
    landed = await browser.deliver(back)
    assert landed.status_code == 303
    assert landed.headers["location"] == "/"


# -- the fake's discovery ------------------------------------------------------------------------
async def test_the_fake_publishes_entras_discovery_documents():
    fake = fake_entra()
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        common = (await http.get(f"{LOGIN}/common/v2.0/.well-known/openid-configuration")).json()
        consumers = await http.get(f"{LOGIN}/consumers/v2.0/.well-known/openid-configuration")
        domain = await http.get(f"{LOGIN}/contoso.com/v2.0/.well-known/openid-configuration")

    assert common["issuer"] == f"{LOGIN}/{{tenantid}}/v2.0"
    assert common["jwks_uri"] == f"{LOGIN}/common/discovery/v2.0/keys"
    assert common["userinfo_endpoint"] == "https://graph.microsoft.com/oidc/userinfo"
    assert common["subject_types_supported"] == ["pairwise"]
    assert "private_key_jwt" in common["token_endpoint_auth_methods_supported"]
    absent = {
        "authorization_response_iss_parameter_supported",
        "backchannel_logout_supported",
        "code_challenge_methods_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    }
    assert not absent & common.keys()
    assert consumers.json()["issuer"] == f"{LOGIN}/{preset.CONSUMERS_TENANT}/v2.0"
    assert consumers.json()["token_endpoint"] == f"{LOGIN}/consumers/oauth2/v2.0/token"
    assert domain.status_code == 404


async def test_entras_own_discovery_document_is_accepted():
    """Entra's document lists private_key_jwt without
    token_endpoint_auth_signing_alg_values_supported; rpkit checks that member itself (Authlib
    would refuse the document). The preset still configures the endpoints: no discovery
    request at startup."""
    fake = fake_entra()
    config = fake.provider_config(endpoints=None, discovery_url=fake.discovery_url)
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        rp = RelyingParty([config], http=http, store=MemoryStore())
        request = await rp.begin_login("entra", redirect_uri=callback_url("entra"))

    assert endpoint_of(request.url) == f"{LOGIN}/common/oauth2/v2.0/authorize"


# -- the preset's configuration ------------------------------------------------------------------
def test_a_multi_tenant_preset_has_the_template_entras_endpoints_and_the_tenants():
    config = preset.entra("organizations", "app-id", "s3cret", allowed_tenants=[CONTOSO.upper()])

    assert config.issuer == f"{LOGIN}/{{tenantid}}/v2.0"
    assert config.endpoints is not None
    assert config.endpoints.urls() == {
        "authorization_endpoint": f"{LOGIN}/organizations/oauth2/v2.0/authorize",
        "token_endpoint": f"{LOGIN}/organizations/oauth2/v2.0/token",
        "profile_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "jwks_uri": f"{LOGIN}/organizations/discovery/v2.0/keys",
        "end_session_endpoint": f"{LOGIN}/organizations/oauth2/v2.0/logout",
    }
    assert config.tenants is not None
    assert config.tenants.allowed == frozenset({CONTOSO})
    assert config.scopes == ("openid", "profile", "email", "offline_access")
    assert isinstance(config.hooks.identity, preset.EntraIdentity)
    assert config.relaxations() == ()


def test_single_tenant_consumers_and_national_clouds_have_exact_issuers():
    single = preset.entra(CONTOSO, "app-id", "s3cret")
    consumers = preset.entra("consumers", "app-id", "s3cret")
    us_gov = preset.entra(
        CONTOSO,
        "app-id",
        "s3cret",
        instance="https://login.microsoftonline.us/",
        graph="https://graph.microsoft.us",
    )

    assert (single.issuer, single.tenants) == (f"{LOGIN}/{CONTOSO}/v2.0", None)
    assert single.endpoints is not None
    assert single.endpoints.token_endpoint == f"{LOGIN}/{CONTOSO}/oauth2/v2.0/token"
    assert consumers.issuer == f"{LOGIN}/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
    assert us_gov.issuer == f"https://login.microsoftonline.us/{CONTOSO}/v2.0"
    assert us_gov.endpoints is not None
    assert us_gov.endpoints.profile_endpoint == "https://graph.microsoft.us/oidc/userinfo"


@pytest.mark.parametrize(
    ("tenant", "options", "message"),
    [
        ("contoso.onmicrosoft.com", {}, "must be a tenant id"),
        (CONTOSO, {"allowed_tenants": [CONTOSO]}, "is one tenant"),
        ("consumers", {"any_tenant": True}, "is one tenant"),
        ("organizations", {}, "needs allowed_tenants"),
        ("common", {"allowed_tenants": [CONTOSO], "any_tenant": True}, "not both"),
        ("common", {"allowed_tenants": ["contoso"]}, "not tenant ids"),
    ],
)
def test_contradictory_tenants_are_refused(tenant: str, options: dict[str, Any], message: str):
    with pytest.raises(ConfigurationError, match=message):
        preset.entra(tenant, "app-id", "s3cret", **options)


def test_any_field_can_be_changed_last():
    config = preset.entra(CONTOSO, "app-id", "s3cret", id="work", scopes=("openid", "profile"))

    assert (config.id, config.scopes) == ("work", ("openid", "profile"))


# -- bearer --------------------------------------------------------------------------------------
async def validate(fake: FakeEntra, token: str, policy: AccessTokenPolicy) -> Any:
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        return await TokenValidator(JWKSCache(http)).validate_access_token(token, policy)


def access_token(fake: FakeEntra, user: FakeUser, scope: str = "access_as_user") -> str:
    return fake.issue_access_token(next(iter(fake.clients.values())), user, scope)


async def test_bearer_policy_accepts_a_v2_token_of_an_allowed_tenant():
    fake = fake_entra()
    policy = preset.bearer_policy(
        API, "organizations", allowed_tenants=[CONTOSO], required_scopes=("access_as_user",)
    )

    token = await validate(fake, access_token(fake, ALICE), policy)

    assert policy.jwks_uri == f"{LOGIN}/common/discovery/v2.0/keys"
    assert (token.iss, token.aud, token.claims["tid"]) == (
        f"{LOGIN}/{CONTOSO}/v2.0",
        (API,),
        CONTOSO,
    )
    assert token.client_id == fake.provider_config().client_id  # azp


@pytest.mark.parametrize(
    ("user", "policy", "reason"),
    [
        (ALICE, {"audience": "another-api"}, "aud"),
        (BOB, {}, "tenant"),
        (ALICE, {"tenant": FABRIKAM, "allowed_tenants": ()}, "iss"),
        (ALICE, {"required_scopes": ("admin",)}, "scope"),
    ],
    ids=["wrong-audience", "tenant-not-allowed", "other-single-tenant", "missing-scope"],
)
async def test_bearer_policy_refuses(user: FakeUser, policy: dict[str, Any], reason: str):
    fake = fake_entra()
    settings: dict[str, Any] = {"audience": API, "tenant": "organizations"}
    settings["allowed_tenants"] = [CONTOSO]
    arguments = settings | policy

    with pytest.raises(AccessTokenValidationError) as caught:
        await validate(fake, access_token(fake, user), preset.bearer_policy(**arguments))

    assert caught.value.reason == reason


async def test_bearer_policy_with_a_scope_refuses_an_id_token_of_the_same_app():
    fake = fake_entra()
    fake.register_client(FakeClient(client_id=API, redirect_uris=(callback_url("entra"),)))
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        rp = RelyingParty([fake.provider_config(client_id=API)], http=http, store=MemoryStore())
        request = await rp.begin_login("entra", redirect_uri=callback_url("entra"))
        result = await rp.complete_login("entra", (await fake.approve(request.url)).params)
    policy = preset.bearer_policy(
        API, "organizations", allowed_tenants=[CONTOSO], required_scopes=("access_as_user",)
    )
    assert result.tokens.id_token is not None

    with pytest.raises(AccessTokenValidationError) as caught:
        await validate(fake, result.tokens.id_token, policy)

    assert caught.value.reason == "id_token"  # same aud, same typ: its nonce and at_hash tell


# -- served --------------------------------------------------------------------------------------
async def test_the_fake_served_on_loopback_signs_in_through_a_real_client():
    with serve_fake(FakeEntra, users=[ALICE, BOB]) as fake:
        fake.register_client(FakeClient(redirect_uris=(callback_url("entra"),)))
        async with httpx.AsyncClient() as http:
            tenant_document = (
                await http.get(f"{fake.issuer}/{CONTOSO}/v2.0/.well-known/openid-configuration")
            ).json()
            rp = RelyingParty([fake.provider_config()], http=http, store=MemoryStore())
            request = await rp.begin_login("entra", redirect_uri=callback_url("entra"))
            callback = (await http.get(request.url, follow_redirects=False)).headers["location"]
            result = await rp.complete_login("entra", parse_qs_list(callback))

    assert tenant_document["issuer"] == f"{fake.issuer}/{CONTOSO}/v2.0"
    assert tenant_document["userinfo_endpoint"] == f"{fake.issuer}/oidc/userinfo"
    assert result.identity.subject == f"{CONTOSO}:{ALICE.claims['oid']}"
    assert result.userinfo is not None


def parse_qs_list(url: str) -> list[tuple[str, str]]:
    return [(k, v) for k, values in parse_qs(urlsplit(url).query).items() for v in values]
