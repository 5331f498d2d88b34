"""Role, permission and organization guards on browser sessions, with the claims of the
verified access token of the login, renewed by every refresh."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from rpkit.authz import ClaimPaths
from rpkit.hooks import IdentityFields, IdentitySource, ProviderHooks
from rpkit.testing import ABSENT, FakeOP, Tamper
from tests.authz.conftest import API, PAGE, PATHS, App, alice, provider

pytestmark = pytest.mark.authz

GRANTS: dict[str, Any] = {
    "realm": {"roles": ["admin", "user"]},
    "permissions": ["invoices:read", "invoices:write"],
    "org": "org_acme",
}


def grant(op: FakeOP, **claims: Any) -> None:
    """Alice's access tokens carry ``claims`` from the next token on."""
    alice(op).access_token_claims = dict(claims)


def jwks_fetches(op: FakeOP) -> int:
    return op.oracle.count("jwks")


# -- what a verified access token grants -------------------------------------------------------


async def test_roles_permissions_and_org_of_the_access_token_open_the_routes(open_app, fake_op):
    grant(fake_op, **GRANTS)
    app: App = await open_app()
    await app.login()

    for path in ("/admin", "/editors", "/invoices", "/any-invoice", "/acme"):
        assert await app.status(path) == 200, path
    assert await app.status("/both") == 403  # admin but not editor


async def test_the_session_keeps_only_what_the_paths_read(open_app, fake_op):
    grant(fake_op, **GRANTS, department="finance", realm_extra={"x": 1})
    app: App = await open_app()
    await app.login()

    data = await app.session()

    assert data.access_claims == GRANTS
    assert "jti" not in data.access_claims


async def test_any_of_and_all_of(open_app, fake_op):
    grant(fake_op, realm={"roles": ["editor"]}, permissions=["invoices:read"])
    app: App = await open_app()
    await app.login()

    assert await app.status("/editors") == 200
    assert await app.status("/admin") == 403
    assert await app.status("/any-invoice") == 200
    assert await app.status("/invoices") == 403


@pytest.mark.parametrize(
    ("claims", "path"),
    [
        ({}, "/admin"),
        ({"realm": {"roles": "admin"}}, "/admin"),  # a string is not split into roles
        ({"realm": {"roles": ["admin", 7]}}, "/admin"),
        ({"realm": ["admin"]}, "/admin"),
        ({"permissions": "invoices:read invoices:write"}, "/invoices"),
        ({"org": ["org_acme"]}, "/acme"),
        ({"org": "org_globex"}, "/acme"),
        ({"org": ""}, "/acme"),
    ],
)
async def test_a_missing_or_mistyped_claim_denies(open_app, fake_op, claims, path):
    grant(fake_op, **claims)
    app: App = await open_app()
    await app.login()

    denied = await app.client.get(path, headers=API)

    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert denied.json()["code"] == "forbidden"


async def test_a_browser_gets_the_forbidden_page_and_an_api_client_problem_details(
    open_app, fake_op
):
    app: App = await open_app()
    await app.login()

    page = await app.client.get("/admin", headers=PAGE)
    api = await app.client.get("/admin", headers={"accept": "*/*"})

    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "You do not have access to this page." in page.text
    assert api.status_code == 403
    assert api.json()["code"] == "forbidden"


async def test_without_a_session_a_browser_is_sent_to_sign_in_and_an_api_gets_401(open_app):
    app: App = await open_app()

    page = await app.client.get("/admin", headers=PAGE, follow_redirects=False)
    api = await app.client.get("/admin", headers=API)

    assert page.status_code == 303
    assert page.headers["location"].startswith("/auth/login/fake")
    assert api.status_code == 401
    assert api.json()["code"] == "login_required"


# -- an access token that proves nothing contributes nothing -----------------------------------


def forged_access_token(op: FakeOP, **sign: Any) -> str:
    client = next(iter(op.clients.values()))
    return op.minter.mint_access_token(
        subject="alice",
        audience=client.client_id,
        client_id=client.client_id,
        claims=GRANTS,
        **sign,
    )


@pytest.mark.parametrize(
    ("forge", "check"),
    [
        pytest.param(
            lambda op: forged_access_token(op, tamper=Tamper.BAD_SIGNATURE),
            "signature",
            id="bad-sig",
        ),
        pytest.param(
            lambda op: forged_access_token(op, tamper=Tamper.UNKNOWN_KEY), "key", id="wrong-key"
        ),
        pytest.param(
            lambda op: forged_access_token(op, tamper=Tamper.ALG_NONE), "alg", id="unsigned"
        ),
        pytest.param(
            lambda op: op.minter.mint_access_token(
                subject="alice", audience="another-api", client_id="another", claims=GRANTS
            ),
            "aud",
            id="wrong-audience",
        ),
        pytest.param(lambda op: forged_access_token(op, lifetime=-600), "exp", id="expired"),
        pytest.param(lambda op: "opaque-access-token-value", "malformed", id="opaque"),
    ],
)
async def test_an_unverifiable_access_token_grants_nothing_and_the_login_goes_on(
    open_app, fake_op, forge, check
):
    grant(fake_op, **GRANTS)
    fake_op.misbehave.id_token_claims = {"at_hash": ABSENT}  # so the swap itself is not refused
    fake_op.misbehave.token_fields = {"access_token": forge(fake_op)}
    # UserInfo would refuse a token the OP never issued: this test is about the RP's reading.
    app: App = await open_app(provider(fake_op, fetch_userinfo=False))

    with capture_logs() as logs:
        landed = await app.login()

    assert landed.status_code == 303  # signed in all the same
    unverified = [e for e in logs if e["event"] == "rpkit.access_claims.unverified"]
    assert [(e["check"], e["log_level"]) for e in unverified] == [(check, "info")]
    assert (await app.session()).access_claims is None
    for path in ("/admin", "/invoices", "/acme"):
        assert await app.status(path) == 403, path
    assert fake_op.oracle.count("userinfo") == 0
    assert jwks_fetches(fake_op) <= 2  # at most one refetch for an unknown kid, throttled


async def test_an_id_token_in_place_of_the_access_token_grants_nothing(open_app, fake_op):
    """The ID token names the client in aud, as the fake OP's access tokens do: only its
    ID-token claims (nonce) tell it apart."""
    fake_op.misbehave.id_token_claims = {"at_hash": ABSENT, **GRANTS}
    fake_op.misbehave.token_fields = {"access_token": lambda body: body["id_token"]}
    app: App = await open_app(provider(fake_op, fetch_userinfo=False))

    landed = await app.login()

    assert landed.status_code == 303
    assert (await app.session()).access_claims is None
    assert await app.status("/admin") == 403


async def test_with_access_token_claims_the_id_tokens_claims_are_not_read(open_app, fake_op):
    fake_op.misbehave.id_token_claims = dict(GRANTS)
    app: App = await open_app()
    await app.login()

    assert await app.status("/admin") == 403


async def test_without_access_token_claims_the_identity_claims_are_read(open_app, fake_op):
    grant(fake_op, **GRANTS)  # in the access token, which this provider never reads
    fake_op.misbehave.id_token_claims = {"realm": {"roles": ["editor"]}}
    app: App = await open_app(provider(fake_op, access_token_claims=None))
    await app.login()

    assert (await app.session()).access_claims is None
    assert await app.status("/editors") == 200
    assert await app.status("/admin") == 403


async def test_without_an_organization_path_the_identitys_organization_decides(open_app, fake_op):
    async def with_org(source: IdentitySource) -> IdentityFields:
        return IdentityFields(subject=source.claims["sub"], organization="org_acme")

    config = provider(
        fake_op,
        claim_paths=ClaimPaths(roles=PATHS.roles),
        hooks=ProviderHooks(identity=with_org),
    )
    grant(fake_op, org="org_globex")  # no organization path: never read
    app: App = await open_app(config)
    await app.login()

    assert await app.status("/acme") == 200


async def test_a_provider_without_claim_paths_denies_every_guard(open_app, fake_op):
    grant(fake_op, **GRANTS)
    app: App = await open_app(provider(fake_op, claim_paths=None))
    await app.login()

    assert (await app.session()).access_claims == {}
    for path in ("/admin", "/invoices", "/acme"):
        assert await app.status(path) == 403, path


# -- refresh ------------------------------------------------------------------------------------


async def test_a_role_removed_at_the_op_is_gone_after_the_next_refresh(open_app, fake_op):
    grant(fake_op, **GRANTS)
    app: App = await open_app()
    await app.login()
    assert await app.status("/admin") == 200

    grant(fake_op, realm={"roles": ["user"]}, permissions=[], org="org_acme")
    assert await app.status("/admin") == 200  # the current token still says admin
    app.refresh_on_next_request()

    assert await app.status("/admin") == 403
    assert sum(r.param("grant_type") == "refresh_token" for r in fake_op.oracle.of("token")) == 1
    assert (await app.session()).access_claims == {
        "realm": {"roles": ["user"]},
        "permissions": [],
        "org": "org_acme",
    }
    assert await app.status("/acme") == 200


async def test_a_refresh_with_an_unverifiable_access_token_clears_the_claims(open_app, fake_op):
    grant(fake_op, **GRANTS)
    app: App = await open_app()
    await app.login()
    assert await app.status("/admin") == 200

    fake_op.misbehave.refresh_id_token_claims = {"at_hash": ABSENT}
    fake_op.misbehave.token_fields = {
        "access_token": forged_access_token(fake_op, tamper=Tamper.UNKNOWN_KEY)
    }
    app.refresh_on_next_request()

    assert await app.status("/admin") == 403
    data = await app.session()
    assert data.access_claims is None
    assert data.subject == "alice"  # the session itself goes on


async def test_cookie_sessions_carry_the_kept_claims(open_app, fake_op):
    grant(fake_op, **GRANTS)
    app: App = await open_app(session_backend="cookie")
    await app.login()

    assert await app.status("/admin") == 200
    assert await app.status("/both") == 403
