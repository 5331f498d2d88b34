"""Each provider kind, hook and relaxation through the Litestar plugin: what a browser sees."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from rpkit.config import Endpoints, ProviderConfig, TenantPolicy
from rpkit.hooks import ClientSecret, IdentityFields, IdentitySource, ProviderHooks
from rpkit.litestar import RPKitConfig, RPKitPlugin, requires_tenant
from rpkit.providers._mapping import ClaimsMapper
from rpkit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeClient, FakeOP
from rpkit.testing.registry import ALICE_TENANT_ID
from tests.presets.conftest import BASE, LOGOUT_CALLBACK, SECRET, callback_url, me, session
from tests.spi.test_kinds import ForgeIdentity

pytestmark = pytest.mark.spi


def register(op: FakeOP, provider_id: str, **client: Any) -> None:
    op.register_client(
        FakeClient(
            redirect_uris=(callback_url(provider_id),),
            post_logout_redirect_uris=(LOGOUT_CALLBACK,),
            **client,
        )
    )


# -- OAuth 2.0-only ------------------------------------------------------------------------------


def forge(op: FakeOP) -> ProviderConfig:
    return ProviderConfig(
        id="forge",
        kind="oauth2",
        issuer=op.issuer,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        scopes=("read:user", "user:email"),
        endpoints=Endpoints(**op.endpoint_urls()),
        hooks=ProviderHooks(identity=ForgeIdentity(f"{op.issuer}/user/emails")),
    )


def forge_op(**options: Any) -> FakeOP:
    emails = {"/user/emails": lambda u: [{"email": u.claims["email"], "primary": True}]}
    return FakeOP("https://forge.rpkit.test", kind="oauth2", extra_json=emails, **options)


async def test_oauth2_login_session_and_local_logout(open_preset):
    op = forge_op()
    register(op, "forge")
    browser = await open_preset(op, forge(op))

    done = await browser.login()
    assert done.status_code == 303
    who = await browser.me()
    assert who["subject"] == str(op.profile(op.users["alice"])["id"])
    assert who["email_verified"] is False  # the fake's email is primary but not verified

    out = await browser.logout()
    assert out.status_code == 303
    assert out.headers["location"] == "/"  # local logout: no end-session endpoint
    assert await browser.me() == {}


async def test_oauth2_profile_without_an_id_is_403_without_session(open_preset):
    op = forge_op(profile=lambda u: {"login": u.sub})
    register(op, "forge")
    browser = await open_preset(op, forge(op))

    done = await browser.login()
    assert done.status_code == 403
    assert "identity_refused" in done.text
    assert "set-cookie" not in done.headers or "rpkit_session" not in done.headers["set-cookie"]
    assert await browser.me() == {}
    assert op.oracle.count("extra") == 0


async def test_oauth2_replayed_callback_is_400_and_makes_no_second_session(open_preset):
    op = forge_op()
    register(op, "forge")
    browser = await open_preset(op, forge(op))
    started = await browser.start_login()
    callback = await op.approve(started.headers["location"])
    assert (await browser.deliver(callback)).status_code == 303
    browser.client.cookies.clear()

    replayed = await browser.deliver(callback)
    assert replayed.status_code == 400
    assert op.oracle.count("token") == 1
    assert await browser.me() == {}


# -- multi-tenant, with the tenant guard --------------------------------------------------------


@get("/tenant-only", guards=[requires_tenant(ALICE_TENANT_ID)])
async def tenant_only() -> str:
    return "inside"


async def tenant_app(op: FakeOP, tenants: TenantPolicy) -> AsyncTestClient[Any]:
    register(op, "fake")
    plugin = RPKitPlugin(
        RPKitConfig(providers=[op.provider_config(tenants=tenants)], secret=SECRET, base_url=BASE),
        http_transport=op.transport(),
    )
    return AsyncTestClient(Litestar([me, session, tenant_only], plugins=[plugin]), base_url=BASE)


async def login_through(client: AsyncTestClient[Any], op: FakeOP) -> Any:
    started = await client.get("/auth/login/fake", follow_redirects=False)
    callback = await op.approve(started.headers["location"])
    return await client.get(callback.location, follow_redirects=False)


async def test_tenant_guard_admits_the_allowed_tenant_and_refuses_another():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    async with await tenant_app(op, TenantPolicy(any_tenant=True)) as client:
        assert (await login_through(client, op)).status_code == 303
        assert (await client.get("/me")).json()["tenant"] == ALICE_TENANT_ID
        assert (await client.get("/tenant-only")).status_code == 200

        client.cookies.clear()
        op.login_as("bob")
        assert (await login_through(client, op)).status_code == 303
        refused = await client.get("/tenant-only", headers={"Accept": "application/json"})
        assert refused.status_code == 403


async def test_tenant_not_allowed_gets_no_session():
    op = FakeOP("https://login.rpkit.test", multi_tenant=True)
    op.login_as("bob")
    async with await tenant_app(op, TenantPolicy(allowed=frozenset({ALICE_TENANT_ID}))) as client:
        done = await login_through(client, op)
        assert done.status_code == 400
        assert (await client.get("/me")).json() == {}
        assert op.oracle.count("userinfo") == 0


# -- Apple-style form_post with a user field ----------------------------------------------------


class UserField:
    limits: Mapping[str, int] = {"user": 2048}

    def parse(self, values: Mapping[str, str]) -> Mapping[str, Any]:
        return {"user": json.loads(values["user"])} if "user" in values else {}


class NameFromUserField:
    async def __call__(self, source: IdentitySource) -> IdentityFields:
        base = await ClaimsMapper(string_booleans=True)(source)
        name = source.extras.get("user", {}).get("name", {})
        given = name.get("firstName") if isinstance(name, dict) else None
        return IdentityFields(
            subject=base.subject,
            email=base.email,
            email_verified=base.email_verified,
            name=given or base.name,
        )


def apple_like(op: FakeOP) -> ProviderConfig:
    return op.provider_config(
        response_mode="form_post",
        hooks=ProviderHooks(callback_extras=UserField(), identity=NameFromUserField()),
    )


async def test_form_post_user_field_names_the_user_on_the_first_login(open_preset):
    op = FakeOP(first_login_user_field=True)
    op.misbehave.id_token_claims = {"email_verified": "true"}
    register(op, "fake")
    browser = await open_preset(op, apple_like(op))

    first = await browser.login()
    assert first.status_code == 303
    who = await browser.me()
    assert who["name"] == "Alice"
    assert who["email_verified"] is True


async def test_oversized_user_field_is_400_before_the_token_request(open_preset):
    op = FakeOP()
    op.misbehave.callback_params = {"user": json.dumps({"name": "x" * 5000})}
    register(op, "fake")
    browser = await open_preset(op, apple_like(op))

    done = await browser.login()
    assert done.status_code == 400
    assert "parameter_too_large" in done.text
    assert op.oracle.count("token") == 0
    assert await browser.me() == {}


# -- the nonce relaxation ------------------------------------------------------------------------


async def test_provider_without_nonce_echo_is_refused_unless_relaxed(open_preset):
    op = FakeOP(echo_nonce=False)
    register(op, "fake")
    strict = await open_preset(op, op.provider_config())
    assert (await strict.login()).status_code == 400
    assert await strict.me() == {}
    assert op.oracle.count("userinfo") == 0

    relaxed = await open_preset(op, op.provider_config(accept_missing_nonce=True))
    assert (await relaxed.login()).status_code == 303
    assert (await relaxed.me())["subject"] == "alice"


# -- the client-secret factory ------------------------------------------------------------------


async def test_failing_client_secret_factory_is_503_without_token_request(open_preset):
    async def broken(now: float) -> ClientSecret:
        raise OSError("the key file is gone")

    op = FakeOP()
    register(op, "fake")
    config = op.provider_config(client_secret=None, hooks=ProviderHooks(client_secret=broken))
    browser = await open_preset(op, config)

    done = await browser.login()
    assert done.status_code == 503
    assert "client_secret_unavailable" in done.text
    assert op.oracle.count("token") == 0
    assert await browser.me() == {}


# -- the logout-parameters hook and the PKCE relaxation ------------------------------------------


def logout_uri_style(params: Mapping[str, str], context: Any) -> Mapping[str, str]:
    return {"client_id": context.client_id, "logout_uri": context.post_logout_redirect_uri or ""}


async def test_logout_params_hook_shapes_the_end_session_redirect(open_preset):
    op = FakeOP()
    register(op, "fake")
    config = op.provider_config(
        post_logout_redirect_uri=LOGOUT_CALLBACK,
        hooks=ProviderHooks(logout_params=logout_uri_style),
    )
    browser = await open_preset(op, config)
    await browser.login()

    out = await browser.logout()
    assert out.status_code == 303
    target = httpx.URL(out.headers["location"])
    assert str(target.copy_with(query=None)) == op.endpoints["end_session"]
    assert dict(target.params) == {"client_id": config.client_id, "logout_uri": LOGOUT_CALLBACK}
    assert await browser.me() == {}  # the local session ended first


async def test_skip_pkce_signs_in_without_a_challenge_through_the_plugin(open_preset):
    op = FakeOP(require_pkce=False)
    register(op, "fake")
    browser = await open_preset(op, op.provider_config(skip_pkce=True))

    started = await browser.start_login()
    assert "code_challenge" not in httpx.URL(started.headers["location"]).params
    callback = await op.approve(started.headers["location"])
    assert (await browser.deliver(callback)).status_code == 303
    assert (await browser.me())["subject"] == "alice"
