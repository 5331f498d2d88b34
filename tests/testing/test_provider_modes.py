"""The fake OP's provider modes, observed by a client written with plain httpx: an OAuth 2.0-only
provider (GitHub), a multi-tenant issuer (Entra ID), Apple's first-login ``user`` field and an OP
that does not echo the nonce (LinkedIn)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_REDIRECT_URI,
    DEFAULT_TENANT_ID,
    Canned,
    FakeClient,
    FakeOP,
    FakeUser,
    github_profile,
)
from tests.testing.conftest import PlainRP

pytestmark = pytest.mark.spi

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OAUTH2_SCOPE = "read:user user:email"


def plain_rp(op: FakeOP) -> PlainRP:
    return PlainRP(op, httpx.AsyncClient(transport=op.transport(), timeout=5.0))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def verified_claims(op: FakeOP, http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set((await http.get(op.endpoints["jwks"])).json())
    claims: dict[str, Any] = jwt.decode(token, keys, algorithms=["RS256"]).claims
    return claims


# -- OAuth 2.0-only provider (GitHub) -----------------------------------------------------------
@pytest.fixture
def github() -> FakeOP:
    return FakeOP(
        "https://github.rpkit.test",
        kind="oauth2",
        extra_json={
            "/user/emails": lambda u: [
                {"email": u.claims["email"], "primary": True, "verified": True}
            ]
        },
    )


async def test_oauth2_provider_serves_no_discovery_and_no_jwks(github: FakeOP):
    http = httpx.AsyncClient(transport=github.transport())

    discovery = await http.get(f"{github.issuer}/.well-known/openid-configuration")
    jwks = await http.get(f"{github.issuer}/jwks")

    assert discovery.status_code == 404
    assert jwks.status_code == 404
    assert [r.outcome for r in github.oracle] == ["not_found", "not_found"]
    assert github.discovery_url is None
    with pytest.raises(ValueError, match="no discovery document"):
        github.metadata()


async def test_oauth2_code_flow_reads_the_identity_from_the_profile_endpoint(github: FakeOP):
    rp = plain_rp(github)
    callback = await github.approve(rp.authorization_url(scope=OAUTH2_SCOPE))
    tokens = (await rp.exchange(callback.get("code") or "")).json()

    profile = await rp.http.get(
        github.endpoint_urls()["profile_endpoint"], headers=bearer(tokens["access_token"])
    )

    assert callback.get("state") == rp.state
    assert callback.get("iss") is None
    assert tokens["token_type"] == "bearer"
    assert "id_token" not in tokens
    assert "refresh_token" not in tokens
    assert profile.status_code == 200
    assert profile.json() == github_profile(github.users["alice"])
    assert profile.json()["login"] == "alice"
    assert isinstance(profile.json()["id"], int)
    assert github.oracle.counts() == {"authorize": 1, "token": 1, "profile": 1}


async def test_oauth2_token_response_has_no_id_token_even_for_an_openid_scope(github: FakeOP):
    tokens = await plain_rp(github).tokens(scope="openid email")

    assert "id_token" not in tokens
    assert tokens["token_type"] == "bearer"
    assert tokens["scope"] == "openid email"


async def test_oauth2_authorize_still_requires_pkce_and_has_no_openid_requirement(github: FakeOP):
    rp = plain_rp(github)
    url = rp.authorization_url(scope=OAUTH2_SCOPE)
    without_pkce = re.sub(r"&code_challenge[^&]*", "", url)

    refused = await github.approve(without_pkce)
    accepted = await github.approve(url)

    assert refused.get("error") == "invalid_request"
    assert refused.get("state") == rp.state
    assert accepted.get("code")


async def test_oauth2_issues_refresh_tokens_only_when_asked():
    github = FakeOP(kind="oauth2", issue_refresh_tokens=True)
    rp = plain_rp(github)
    tokens = await rp.tokens(scope=OAUTH2_SCOPE)

    refreshed = await rp.refresh(tokens["refresh_token"])

    assert refreshed.status_code == 200
    assert refreshed.json()["token_type"] == "bearer"
    assert "id_token" not in refreshed.json()
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param(bearer("not-a-token"), id="unknown-token"),
        pytest.param({"Authorization": "Basic eDp5"}, id="basic"),
    ],
)
async def test_oauth2_profile_endpoint_requires_a_bearer_token(github: FakeOP, headers):
    http = httpx.AsyncClient(transport=github.transport())

    response = await http.get(github.endpoints["profile"], headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert github.oracle.last("profile").outcome.startswith("invalid_")


async def test_oauth2_extra_json_endpoints_are_bearer_protected_and_recorded(github: FakeOP):
    rp = plain_rp(github)
    tokens = await rp.tokens(scope=OAUTH2_SCOPE)
    url = f"{github.issuer}/user/emails"

    emails = await rp.http.get(url, headers=bearer(tokens["access_token"]))
    anonymous = await rp.http.get(url)

    assert emails.json() == [{"email": "alice@example.com", "primary": True, "verified": True}]
    assert anonymous.status_code == 401
    assert [r.url for r in github.oracle.of("extra")] == [url, url]


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param(lambda u: [github_profile(u)], id="array"),
        pytest.param(lambda u: {"login": u.sub}, id="no-id"),
        pytest.param(lambda u: {"id": "12", "login": u.sub}, id="string-id"),
    ],
)
async def test_oauth2_profile_may_have_any_shape(shape):
    github = FakeOP(kind="oauth2", profile=shape, profile_path="/api/v3/user")
    rp = plain_rp(github)
    tokens = await rp.tokens(scope=OAUTH2_SCOPE)

    response = await rp.http.get(
        f"{github.issuer}/api/v3/user", headers=bearer(tokens["access_token"])
    )

    assert response.json() == shape(github.users["alice"])


async def test_oauth2_profile_answers_canned_responses_and_latency(github: FakeOP):
    rp = plain_rp(github)
    tokens = await rp.tokens(scope=OAUTH2_SCOPE)
    github.misbehave.respond = {"profile": Canned.html(), "extra": Canned.error(502)}

    profile = await rp.http.get(github.endpoints["profile"], headers=bearer(tokens["access_token"]))
    emails = await rp.http.get(
        f"{github.issuer}/user/emails", headers=bearer(tokens["access_token"])
    )

    assert profile.headers["content-type"].startswith("text/html")
    assert emails.status_code == 502
    assert github.oracle.last("profile").outcome == "canned 200"
    assert github.oracle.last("extra").outcome == "canned 502"


async def test_oauth2_callback_carries_iss_only_when_asked(github: FakeOP):
    rp = plain_rp(github)

    honest = await github.approve(rp.authorization_url(scope=OAUTH2_SCOPE))
    github.misbehave.callback_params = {"iss": github.issuer}
    asked = await github.approve(rp.authorization_url(scope=OAUTH2_SCOPE))
    github.misbehave.callback_params = {}
    github.misbehave.callback_iss = "wrong"
    wrong = await github.approve(rp.authorization_url(scope=OAUTH2_SCOPE))

    assert honest.get("iss") is None
    assert asked.get("iss") == github.issuer
    assert wrong.get("iss") == github.issuer + "1"


def test_endpoint_urls_name_what_a_client_configures(github: FakeOP):
    oidc = FakeOP(random_paths=True)

    assert github.endpoint_urls() == {
        "authorization_endpoint": "https://github.rpkit.test/authorize",
        "token_endpoint": "https://github.rpkit.test/token",
        "profile_endpoint": "https://github.rpkit.test/user",
    }
    assert oidc.endpoint_urls() == {
        "authorization_endpoint": oidc.endpoints["authorize"],
        "token_endpoint": oidc.endpoints["token"],
        "profile_endpoint": oidc.endpoints["userinfo"],
        "jwks_uri": oidc.endpoints["jwks"],
        "end_session_endpoint": oidc.endpoints["end_session"],
    }
    with pytest.raises(ValueError, match="endpoint_urls"):
        github.provider_config()


def test_profile_is_identity_stable_and_github_shaped():
    alice = FakeOP().users["alice"]

    first, again = github_profile(alice), github_profile(FakeUser("alice"))

    assert first == {
        "id": again["id"],
        "login": "alice",
        "name": "Alice Liddell",
        "email": "alice@example.com",
    }
    assert first["id"] != github_profile(FakeUser("bob"))["id"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"kind": "saml"}, "kind must be", id="unknown-kind"),
        pytest.param({"kind": "oauth2", "multi_tenant": True}, "multi_tenant", id="oauth2-tenants"),
        pytest.param({"profile": github_profile}, "profile is for", id="oidc-profile"),
        pytest.param({"kind": "oauth2", "profile_path": "/token"}, "already", id="path-clash"),
        pytest.param({"extra_json": {"/userinfo": github_profile}}, "already", id="extra-clash"),
        pytest.param({"extra_json": {"me": github_profile}}, "start with", id="relative-path"),
    ],
)
def test_contradictory_options_are_refused_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        FakeOP(**options)


async def test_oauth2_provider_is_served_over_asgi(github: FakeOP):
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=github.asgi), base_url=github.issuer)
    rp = PlainRP(github, http)
    tokens = await rp.tokens(scope=OAUTH2_SCOPE)

    response = await http.get("/user", headers=bearer(tokens["access_token"]))

    assert response.json()["login"] == "alice"


# -- multi-tenant issuer (Entra ID) --------------------------------------------------------------
@pytest.fixture
def entra() -> FakeOP:
    return FakeOP("https://login.rpkit.test", multi_tenant=True)


@pytest.mark.parametrize("tenant", ["common", "organizations"])
async def test_multi_tenant_discovery_publishes_the_issuer_template(entra: FakeOP, tenant):
    http = httpx.AsyncClient(transport=entra.transport())

    document = await http.get(f"{entra.issuer}/{tenant}/v2.0/.well-known/openid-configuration")
    at_root = await http.get(f"{entra.issuer}/.well-known/openid-configuration")

    assert document.json()["issuer"] == "https://login.rpkit.test/{tenantid}/v2.0"
    assert document.json()["jwks_uri"] == entra.endpoints["jwks"]
    assert "authorization_response_iss_parameter_supported" not in document.json()
    assert at_root.status_code == 404
    assert entra.issuer_template == "https://login.rpkit.test/{tenantid}/v2.0"
    assert entra.discovery_url == (
        "https://login.rpkit.test/common/v2.0/.well-known/openid-configuration"
    )


async def test_multi_tenant_tokens_carry_the_users_tenant(entra: FakeOP):
    rp = plain_rp(entra)
    callback = await entra.approve(rp.authorization_url())
    alice_tokens = (await rp.exchange(callback.get("code") or "")).json()
    entra.login_as("bob")
    bob_tokens = await rp.tokens()

    alice = await verified_claims(entra, rp.http, alice_tokens["id_token"])
    bob = await verified_claims(entra, rp.http, bob_tokens["id_token"])
    access = await verified_claims(entra, rp.http, alice_tokens["access_token"])

    assert callback.get("iss") is None
    assert alice["tid"] == entra.users["alice"].tenant_id
    assert alice["iss"] == f"https://login.rpkit.test/{alice['tid']}/v2.0"
    assert GUID.match(alice["tid"])
    assert GUID.match(alice["oid"])
    assert bob["tid"] != alice["tid"]
    assert bob["iss"] == f"https://login.rpkit.test/{bob['tid']}/v2.0"
    assert bob["oid"] != alice["oid"]
    assert (access["iss"], access["tid"], access["oid"]) == (
        alice["iss"],
        alice["tid"],
        alice["oid"],
    )


async def test_multi_tenant_oid_is_stable_across_ops_and_users_default_tenant():
    carol = FakeUser("carol", {"email": "carol@example.net"})
    first, second = FakeOP(multi_tenant=True), FakeOP(multi_tenant=True)
    tokens = []
    for op in (first, second):
        op.login_as(carol)
        rp = plain_rp(op)
        tokens.append(await verified_claims(op, rp.http, (await rp.tokens())["id_token"]))

    assert tokens[0]["oid"] == tokens[1]["oid"]
    assert tokens[0]["tid"] == DEFAULT_TENANT_ID
    assert first.issuer_for(carol) == f"{first.issuer}/{DEFAULT_TENANT_ID}/v2.0"


async def test_multi_tenant_user_without_tenant_gets_no_tid(entra: FakeOP):
    entra.login_as(FakeUser("nomad", tenant_id=None))
    rp = plain_rp(entra)

    claims = await verified_claims(entra, rp.http, (await rp.tokens())["id_token"])

    assert "tid" not in claims
    assert claims["iss"] == entra.issuer_template


OTHER_TENANT = "ffffffff-7e57-4000-8000-00000000000f"
ALICE_ISSUER = "https://login.rpkit.test/a11ce000-7e57-4000-8000-00000000000a/v2.0"


@pytest.mark.parametrize(
    ("edits", "expected_iss", "expected_tid"),
    [
        pytest.param({"tid": OTHER_TENANT}, ALICE_ISSUER, OTHER_TENANT, id="tid-of-another"),
        pytest.param(
            {"iss": f"https://login.rpkit.test/{OTHER_TENANT}/v2.0"},
            f"https://login.rpkit.test/{OTHER_TENANT}/v2.0",
            "a11ce000-7e57-4000-8000-00000000000a",
            id="iss-of-another",
        ),
        pytest.param({"tid": ABSENT}, ALICE_ISSUER, None, id="no-tid"),
        pytest.param(
            {"iss": lambda c: c["iss"].replace(c["tid"], "{tenantid}")},
            "https://login.rpkit.test/{tenantid}/v2.0",
            "a11ce000-7e57-4000-8000-00000000000a",
            id="raw-template",
        ),
    ],
)
async def test_multi_tenant_knobs_forge_tenant_mismatches(
    entra: FakeOP, edits, expected_iss, expected_tid
):
    entra.misbehave.id_token_claims = edits
    rp = plain_rp(entra)

    claims = await verified_claims(entra, rp.http, (await rp.tokens())["id_token"])

    assert (claims["iss"], claims.get("tid")) == (expected_iss, expected_tid)


def test_multi_tenant_provider_config_names_the_template_and_discovery_url(entra: FakeOP):
    from rpkit.config import TenantPolicy

    config = entra.provider_config(tenants=TenantPolicy(any_tenant=True))

    assert config.issuer == entra.issuer_template
    assert config.discovery_url == entra.discovery_url


# -- Apple: the first-login ``user`` field and string booleans -----------------------------------
@pytest.fixture
def apple() -> FakeOP:
    return FakeOP("https://appleid.rpkit.test", first_login_user_field=True)


async def test_apple_user_field_is_sent_on_the_first_login_only(apple: FakeOP):
    rp = plain_rp(apple)

    first = await apple.approve(
        rp.authorization_url(response_mode="form_post", scope="openid name email")
    )
    second = await apple.approve(rp.authorization_url(response_mode="form_post"))
    apple.login_as("bob")
    bobs_first = await apple.approve(rp.authorization_url(response_mode="form_post"))

    assert first.method == "POST"
    assert json.loads(first.get("user") or "") == {
        "name": {"firstName": "Alice", "lastName": "Liddell"},
        "email": "alice@example.com",
    }
    assert first.get("code")
    assert second.get("user") is None
    assert json.loads(bobs_first.get("user") or "")["email"] == "bob@example.org"


async def test_apple_user_field_is_per_client_and_resets_with_consents(apple: FakeOP):
    other = apple.register_client(FakeClient("other-app", redirect_uris=(DEFAULT_REDIRECT_URI,)))
    rp = plain_rp(apple)
    await apple.approve(rp.authorization_url())

    for_other = await apple.approve(rp.authorization_url(client_id=other.client_id))
    again = await apple.approve(rp.authorization_url())
    apple.consents.clear()
    after_reset = await apple.approve(rp.authorization_url())

    assert for_other.get("user") is not None
    assert again.get("user") is None
    assert after_reset.get("user") is not None


async def test_apple_user_field_is_off_by_default(fake_op: FakeOP, rp):
    callback = await fake_op.approve(rp.authorization_url())

    assert callback.get("user") is None
    assert fake_op.consents == {(DEFAULT_CLIENT_ID, "alice")}


@pytest.mark.parametrize(
    "raw",
    [pytest.param("x" * 100_000, id="oversized"), pytest.param("{not json", id="not-json")],
)
async def test_apple_user_field_can_carry_any_raw_value(apple: FakeOP, raw):
    apple.misbehave.callback_params = {"user": raw}
    rp = plain_rp(apple)

    first = await apple.approve(rp.authorization_url(response_mode="form_post"))
    second = await apple.approve(rp.authorization_url(response_mode="form_post"))

    assert first.get("user") == raw
    assert second.get("user") == raw


async def test_apple_email_verified_as_a_string_is_a_claim_edit(apple: FakeOP):
    apple.misbehave.id_token_claims = {"email_verified": "true", "is_private_email": "false"}
    rp = plain_rp(apple)

    claims = await verified_claims(apple, rp.http, (await rp.tokens())["id_token"])

    assert claims["email_verified"] == "true"
    assert claims["is_private_email"] == "false"


# -- LinkedIn: no nonce echo ---------------------------------------------------------------------
async def test_op_without_nonce_echo_omits_the_nonce_it_was_sent():
    linkedin = FakeOP("https://linkedin.rpkit.test", echo_nonce=False)
    rp = plain_rp(linkedin)

    tokens = await rp.tokens()
    refreshed = (await rp.refresh(tokens["refresh_token"])).json()

    assert linkedin.oracle.last("authorize").param("nonce") == rp.nonce
    assert "nonce" not in await verified_claims(linkedin, rp.http, tokens["id_token"])
    assert "nonce" not in await verified_claims(linkedin, rp.http, refreshed["id_token"])


async def test_op_echoes_the_nonce_by_default(fake_op: FakeOP, rp):
    tokens = await rp.tokens()

    claims = await verified_claims(fake_op, rp.http, tokens["id_token"])

    assert claims["nonce"] == rp.nonce
    assert fake_op.echo_nonce is True
    assert uuid.UUID(fake_op.users["alice"].tenant_id or "")


# -- a provider's own path layout ---------------------------------------------------------------
async def test_serve_at_moves_endpoints_to_the_providers_own_paths():
    op = FakeOP("https://idp.rpkit.test")
    op.serve_at({"token": "/oauth/token", "end_session": None})
    http = httpx.AsyncClient(transport=op.transport())

    discovery = (await http.get(f"{op.issuer}/.well-known/openid-configuration")).json()
    moved = await http.post("https://idp.rpkit.test/oauth/token", data={})
    old = await http.post("https://idp.rpkit.test/token", data={})

    assert discovery["token_endpoint"] == "https://idp.rpkit.test/oauth/token"
    assert moved.status_code in (400, 401)  # the token endpoint answers there (no client)
    assert old.status_code == 404
    assert op.oracle.last("token") is not None
    assert op.oracle.last("token").url == "https://idp.rpkit.test/oauth/token"
