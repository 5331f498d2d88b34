"""Keycloak's nested roles, end to end: the preset's fake signs in through rpkit's Litestar
routes, the preset verifies the login's access token (``azp`` its client) and the guards read
``realm_access.roles`` and ``resource_access.<client>.roles``."""

from __future__ import annotations

import pytest

from rpkit.testing import ABSENT, FakeClient
from rpkit.testing.providers.keycloak import FakeKeycloak
from tests.authz.conftest import BASE, App

pytestmark = pytest.mark.authz

CLIENT = "web.app"
"""A client id with a dot: ``{client_id}`` fills one path segment."""


def fake_keycloak(realm_roles: list[str], client_roles: list[str]) -> FakeKeycloak:
    fake = FakeKeycloak(
        clients=[
            FakeClient(
                client_id=CLIENT,
                client_secret="kc-secret",
                redirect_uris=(f"{BASE}/auth/callback/keycloak",),
            )
        ]
    )
    fake.users["alice"].claims |= {
        "realm_access": {"roles": realm_roles},
        "resource_access": {CLIENT: {"roles": client_roles}, "other": {"roles": ["editor"]}},
    }
    return fake


async def test_realm_and_client_roles_open_the_routes(open_app):
    fake = fake_keycloak(["admin"], ["editor"])
    app: App = await open_app(fake.provider_config(), op=fake)
    await app.login()

    assert await app.status("/admin") == 200
    assert await app.status("/both") == 200
    assert (await app.session()).access_claims == {
        "realm_access": {"roles": ["admin"]},
        "resource_access": {CLIENT: {"roles": ["editor"]}},
    }


async def test_another_clients_roles_do_not_count(open_app):
    fake = fake_keycloak(["user"], [])
    app: App = await open_app(fake.provider_config(), op=fake)
    await app.login()

    assert await app.status("/editors") == 403  # "editor" is the other client's role


async def test_a_token_for_another_client_grants_nothing(open_app):
    fake = fake_keycloak(["admin"], ["editor"])
    forged = fake.minter.sign(
        {
            "iss": fake.issuer,
            "sub": "alice",
            "aud": "account",
            "azp": "another-client",
            "typ": "Bearer",
            "iat": fake.now(),
            "exp": fake.now() + 300,
            "realm_access": {"roles": ["admin"]},
        }
    )
    fake.misbehave.id_token_claims = {"at_hash": ABSENT}
    fake.misbehave.token_fields = {"access_token": forged}
    app: App = await open_app(fake.provider_config(fetch_userinfo=False), op=fake)

    assert (await app.login()).status_code == 303
    assert (await app.session()).access_claims is None
    assert await app.status("/admin") == 403


async def test_a_keycloak_id_token_is_never_read_as_the_access_token(open_app):
    fake = fake_keycloak(["admin"], ["editor"])
    fake.misbehave.id_token_claims = {"at_hash": ABSENT, "realm_access": {"roles": ["admin"]}}
    fake.misbehave.token_fields = {"access_token": lambda body: body["id_token"]}
    app: App = await open_app(fake.provider_config(fetch_userinfo=False), op=fake)

    assert (await app.login()).status_code == 303
    assert (await app.session()).access_claims is None
    assert await app.status("/admin") == 403


async def test_a_realm_role_removed_in_keycloak_is_gone_after_refresh(open_app):
    fake = fake_keycloak(["admin"], [])
    app: App = await open_app(fake.provider_config(scopes=("openid", "profile")), op=fake)
    await app.login()
    assert await app.status("/admin") == 200

    fake.users["alice"].claims["realm_access"] = {"roles": ["user"]}
    app.refresh_on_next_request()

    assert await app.status("/admin") == 403
