"""OAuth 2.0-only providers and multi-tenant issuer templates through ``RelyingParty``, against
the fake OP's provider modes: every refusal asserts the typed error, no further request and no
transaction left."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from rpkit.access_token import AccessTokenPolicy
from rpkit.client import RelyingParty
from rpkit.config import Endpoints, ProviderConfig, TenantPolicy
from rpkit.errors import (
    AuthorizationResponseError,
    CallbackError,
    ConfigurationError,
    IdentityRefusedError,
    IDTokenValidationError,
    InvalidStateError,
    IssuerMismatchError,
    LogoutTokenValidationError,
    UserInfoError,
)
from rpkit.hooks import IdentityFields, IdentitySource, ProviderHooks
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.store import MemoryStore
from rpkit.tenants import is_allowed_issuer
from rpkit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FakeOP,
    FakeUser,
)
from rpkit.testing.registry import ALICE_TENANT_ID, BOB_TENANT_ID
from tests.checklist.conftest import Harness

pytestmark = pytest.mark.spi

FORGE = "https://forge.rpkit.test"


# -- OAuth 2.0-only ------------------------------------------------------------------------------


class ForgeIdentity:
    """A GitHub-like mapper: numeric id, verified primary email from /user/emails."""

    def __init__(self, emails_url: str) -> None:
        self.emails_url = emails_url

    async def __call__(self, source: IdentitySource) -> IdentityFields:
        user_id = source.claims.get("id")
        if type(user_id) is not int:
            raise IdentityRefusedError("the profile has no numeric id")
        emails = await source.fetch_json(self.emails_url)
        primary = [e for e in emails if e.get("primary")]
        verified = bool(primary) and primary[0].get("verified") is True
        return IdentityFields(
            subject=str(user_id),
            email=primary[0]["email"] if primary else None,
            email_verified=verified,
            name=source.claims.get("name"),
        )


def forge_op(**options: Any) -> FakeOP:
    emails = options.pop("emails", None) or (
        lambda u: [{"email": u.claims["email"], "primary": True, "verified": True}]
    )
    return FakeOP(FORGE, kind="oauth2", extra_json={"/user/emails": emails}, **options)


def forge_config(op: FakeOP, **changes: Any) -> ProviderConfig:
    settings: dict[str, Any] = {
        "id": "forge",
        "kind": "oauth2",
        "issuer": FORGE,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "scopes": ("read:user", "user:email"),
        "endpoints": Endpoints(**op.endpoint_urls()),
        "hooks": ProviderHooks(identity=ForgeIdentity(f"{FORGE}/user/emails")),
    }
    return ProviderConfig(**(settings | changes))


def forge_harness(op: FakeOP, **changes: Any) -> Harness:
    http = httpx.AsyncClient(transport=op.transport())
    return Harness(op, http, MemoryStore(), forge_config(op, **changes))


async def test_oauth2_login_takes_the_identity_from_the_profile():
    op = forge_op()
    harness = forge_harness(op)
    request, callback = await harness.start()
    query = httpx.URL(request.url).params
    assert query["code_challenge_method"] == "S256"
    assert query["state"] == request.state
    assert "nonce" not in query  # OAuth 2.0 has none; state and PKCE protect the flow

    result = await harness.finish(callback)

    alice = op.users["alice"]
    assert result.id_token is None
    assert result.identity.subject == str(op.profile(alice)["id"])
    assert result.identity.issuer == FORGE
    assert result.identity.email == alice.claims["email"]
    assert result.identity.email_verified is True
    assert op.oracle.counts()["discovery"] == 0


async def test_oauth2_unverified_primary_email_is_not_verified():
    op = forge_op(emails=lambda u: [{"email": u.claims["email"], "primary": True}])
    result = await forge_harness(op).login()
    assert result.identity.email == op.users["alice"].claims["email"]
    assert result.identity.email_verified is False


@pytest.mark.parametrize("profile", [[1, 2], "text", None])
async def test_oauth2_profile_that_is_not_an_object_is_refused(profile):
    op = forge_op(profile=lambda _: profile)
    harness = forge_harness(op)
    request, callback = await harness.start()
    with pytest.raises(UserInfoError) as caught:
        await harness.finish(callback)
    assert caught.value.reason == "not_object"
    assert op.oracle.count("extra") == 0, "the mapper ran on a bad profile"
    assert not await harness.transaction_exists(request.state)


async def test_oauth2_profile_without_the_stable_id_is_refused():
    op = forge_op(profile=lambda u: {"login": u.sub, "email": u.claims["email"]})
    harness = forge_harness(op)
    with pytest.raises(IdentityRefusedError):
        await harness.login()
    assert op.oracle.count("extra") == 0


async def test_oauth2_oversized_profile_is_refused():
    op = forge_op(profile=lambda u: {"id": 1, "bio": "x" * 300_000})
    with pytest.raises(UserInfoError) as caught:
        await forge_harness(op).login()
    assert caught.value.reason == "too_large"


async def test_oauth2_profile_fetch_never_leaves_the_profile_origin():
    op = forge_op()
    mapper = ForgeIdentity("https://elsewhere.rpkit.test/user/emails")
    harness = forge_harness(op, hooks=ProviderHooks(identity=mapper))
    with pytest.raises(UserInfoError) as caught:
        await harness.login()
    assert caught.value.reason == "origin"


async def test_oauth2_replayed_callback_is_refused_without_a_second_exchange():
    op = forge_op()
    harness = forge_harness(op)
    request, callback = await harness.start()
    await harness.finish(callback)
    error = await harness.rejected(InvalidStateError, callback, request)
    assert error.code == "invalid_state"  # type: ignore[attr-defined]
    assert op.oracle.count("token") == 1


async def test_oauth2_error_response_is_refused_before_the_token_endpoint():
    op = forge_op()
    op.misbehave.authorize_error = "access_denied"
    harness = forge_harness(op)
    request, callback = await harness.start()
    await harness.rejected(AuthorizationResponseError, callback, request)


async def test_oauth2_callback_for_another_provider_is_refused():
    op = forge_op()
    harness = forge_harness(op)
    other = FakeOP()
    http = httpx.AsyncClient(transport=op.transport(other))
    both = RelyingParty([harness.config, other.provider_config()], http=http, store=harness.store)
    harness.rp = both
    request, callback = await harness.start()
    with pytest.raises(CallbackError):  # refused by RFC 9207 iss or by state: never exchanged
        await both.complete_login("fake", list(callback.params))
    assert op.oracle.count("token") == 0
    assert await harness.transaction_exists(request.state)  # still the forge login's


async def test_oauth2_refresh_keeps_the_identity_without_an_id_token():
    op = forge_op(issue_refresh_tokens=True)
    harness = forge_harness(op)
    result = await harness.login()
    assert result.tokens.refresh_token
    fresh = await harness.rp.refresh("forge", result.tokens, None, key="s1")
    assert fresh.id_token is None
    assert fresh.tokens.access_token != result.tokens.access_token


async def test_oauth2_provider_has_no_backchannel_logout():
    op = forge_op()
    with pytest.raises(LogoutTokenValidationError):
        await forge_harness(op).rp.backchannel_logout("forge", "a.b.c")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoints": None}, "needs endpoints"),
        ({"hooks": ProviderHooks()}, "needs hooks.identity"),
        ({"scopes": ("openid", "read:user")}, "must not request 'openid'"),
    ],
)
def test_oauth2_contradictions_are_refused_at_construction(changes, message):
    with pytest.raises(ConfigurationError, match=message):
        forge_config(forge_op(), **changes)


def test_configured_endpoints_must_be_https():
    op = forge_op()
    urls = op.endpoint_urls() | {"token_endpoint": "http://forge.rpkit.test/token"}
    with pytest.raises(ConfigurationError, match="token_endpoint must be an https URL"):
        forge_config(op, endpoints=Endpoints(**urls))


# -- multi-tenant issuer templates ---------------------------------------------------------------


def tenant_harness(op: FakeOP, *tenants: str, any_tenant: bool = False) -> Harness:
    http = httpx.AsyncClient(transport=op.transport())
    policy = TenantPolicy(allowed=frozenset(tenants), any_tenant=any_tenant)
    config = op.provider_config(tenants=policy)
    return Harness(op, http, MemoryStore(), config)


async def test_allowed_tenant_signs_in_with_its_own_issuer():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    result = await tenant_harness(op, ALICE_TENANT_ID).login()
    assert result.identity.tenant == ALICE_TENANT_ID
    assert result.identity.issuer == f"https://login.rpkit.test/{ALICE_TENANT_ID}/v2.0"


async def test_tenant_not_allowed_is_refused_before_userinfo():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    op.login_as("bob")
    harness = tenant_harness(op, ALICE_TENANT_ID)
    request, callback = await harness.start()
    error = await harness.rejected(
        IDTokenValidationError, callback, request, stop_before="userinfo"
    )
    assert error.reason == "tenant"  # type: ignore[attr-defined]


async def test_iss_of_another_tenant_than_tid_is_refused():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    op.misbehave.id_token_claims = {"iss": f"https://login.rpkit.test/{BOB_TENANT_ID}/v2.0"}
    harness = tenant_harness(op, ALICE_TENANT_ID, BOB_TENANT_ID)
    request, callback = await harness.start()
    error = await harness.rejected(
        IDTokenValidationError, callback, request, stop_before="userinfo"
    )
    assert error.reason == "iss"  # type: ignore[attr-defined]


@pytest.mark.parametrize("tid", ["not-a-guid", "", 42, "{tenantid}", ALICE_TENANT_ID.upper()])
async def test_tid_that_is_not_a_tenant_id_is_refused(tid):
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    op.misbehave.id_token_claims = {
        "tid": tid,
        "iss": f"https://login.rpkit.test/{tid}/v2.0",
    }
    harness = tenant_harness(op, any_tenant=True)
    request, callback = await harness.start()
    error = await harness.rejected(
        IDTokenValidationError, callback, request, stop_before="userinfo"
    )
    assert error.reason == "tenant"  # type: ignore[attr-defined]


async def test_any_tenant_accepts_every_tenant_and_is_logged():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    op.login_as("bob")
    with capture_logs() as logs:
        harness = tenant_harness(op, any_tenant=True)
    result = await harness.login()
    assert result.identity.tenant == BOB_TENANT_ID
    settings = [e["setting"] for e in logs if e["event"] == "rpkit.startup.check_relaxed"]
    assert any(s.startswith("tenants.any_tenant") for s in settings)


async def test_templated_discovery_is_refused_without_a_tenant_policy():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    config = ProviderConfig(
        id="entra",
        issuer="https://login.rpkit.test/common/v2.0",
        discovery_url=op.discovery_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
    )
    rp = RelyingParty([config], http=httpx.AsyncClient(transport=op.transport()))
    with pytest.raises(IssuerMismatchError):
        await rp.begin_login("entra", redirect_uri="https://app.example/cb")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tenants": None}, "needs tenants"),
        ({"tenants": TenantPolicy()}, "list the allowed tenant ids"),
        ({"tenants": TenantPolicy(allowed=frozenset({"nope"}))}, "do not match"),
        ({"discovery_url": None}, "cannot be discovered"),
    ],
)
def test_tenant_contradictions_are_refused_at_construction(changes, message):
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    base = {"tenants": TenantPolicy(allowed=frozenset({ALICE_TENANT_ID}))}
    with pytest.raises(ConfigurationError, match=message):
        op.provider_config(**(base | changes))


def test_callback_iss_matches_only_allowed_tenants_of_the_template():
    template = "https://login.rpkit.test/{tenantid}/v2.0"
    policy = TenantPolicy(allowed=frozenset({ALICE_TENANT_ID}))
    assert is_allowed_issuer(f"https://login.rpkit.test/{ALICE_TENANT_ID}/v2.0", template, policy)
    assert not is_allowed_issuer(f"https://login.rpkit.test/{BOB_TENANT_ID}/v2.0", template, policy)
    assert not is_allowed_issuer(template, template, policy)
    assert not is_allowed_issuer("https://login.rpkit.test//v2.0", template, policy)


async def access_policy_check(op: FakeOP, user: FakeUser, **claims: Any) -> Any:
    policy = AccessTokenPolicy(
        issuers=("https://login.rpkit.test/{tenantid}/v2.0",),
        jwks_uri=op.endpoints["jwks"],
        audience=("api://orders",),
        tenants=TenantPolicy(allowed=frozenset({ALICE_TENANT_ID})),
    )
    client = next(iter(op.clients.values()))
    client.access_token_audience = "api://orders"
    token = op.issue_access_token(client, user, "orders:read")
    if claims:
        token = op.minter.mint_access_token(
            subject=user.sub,
            audience="api://orders",
            client_id=client.client_id,
            claims=claims,
        )
    validator = TokenValidator(JWKSCache(httpx.AsyncClient(transport=op.transport())))
    return await validator.validate_access_token(token, policy)


async def test_access_token_policy_accepts_an_allowed_tenant_only():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    accepted = await access_policy_check(op, op.users["alice"])
    assert accepted.iss == f"https://login.rpkit.test/{ALICE_TENANT_ID}/v2.0"
    with pytest.raises(Exception, match="not allowed") as refused:
        await access_policy_check(op, op.users["bob"])
    assert refused.value.reason == "tenant"  # type: ignore[attr-defined]


async def test_access_token_with_the_literal_template_as_iss_is_refused():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    with pytest.raises(Exception, match="tenant") as refused:
        await access_policy_check(
            op,
            op.users["alice"],
            iss="https://login.rpkit.test/{tenantid}/v2.0",
            tid="{tenantid}",
        )
    assert refused.value.reason == "tenant"  # type: ignore[attr-defined]
