"""The fake OP serves a complete, honest code flow to a client written with plain httpx."""

from __future__ import annotations

import httpx
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from rpkit.testing import DEFAULT_CLIENT_ID, DEFAULT_ISSUER, FakeOP


async def test_discovery_document_passes_authlib_metadata_validation(fake_op_http):
    response = await fake_op_http.get(f"{DEFAULT_ISSUER}/.well-known/openid-configuration")

    assert response.status_code == 200
    metadata = OpenIDProviderMetadata(response.json())
    metadata.validate()
    assert metadata["issuer"] == DEFAULT_ISSUER


async def test_full_code_flow_with_plain_httpx(fake_op: FakeOP, fake_op_http, rp):
    discovery = (
        await fake_op_http.get(f"{DEFAULT_ISSUER}/.well-known/openid-configuration")
    ).json()
    jwks = KeySet.import_key_set((await fake_op_http.get(discovery["jwks_uri"])).json())

    tokens = await rp.tokens()
    id_token = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"])
    userinfo = await fake_op_http.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )

    assert id_token.claims["iss"] == DEFAULT_ISSUER
    assert id_token.claims["aud"] == DEFAULT_CLIENT_ID
    assert id_token.claims["nonce"] == rp.nonce
    assert id_token.claims["sub"] == "alice"
    assert tokens["token_type"] == "Bearer"
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == "alice"
    assert userinfo.json()["email"] == "alice@example.com"
    assert fake_op.oracle.counts() == {
        "discovery": 1,
        "jwks": 1,
        "authorize": 1,
        "token": 1,
        "userinfo": 1,
    }


async def test_code_is_single_use(rp):
    code = await rp.code()

    first = await rp.exchange(code)
    second = await rp.exchange(code)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"


async def test_wrong_code_verifier_is_refused(rp):
    code = await rp.code()
    rp.verifier = "x" * 43

    response = await rp.exchange(code)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_rotates_and_revokes_the_old_token(rp):
    tokens = await rp.tokens()

    refreshed = await rp.refresh(tokens["refresh_token"])
    replayed = await rp.refresh(tokens["refresh_token"])

    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]
    assert "id_token" in refreshed.json()
    assert replayed.json()["error"] == "invalid_grant"


async def test_client_credentials_grant(fake_op: FakeOP, fake_op_http: httpx.AsyncClient, rp):
    response = await fake_op_http.post(
        fake_op.endpoints["token"],
        data={"grant_type": "client_credentials", "scope": "api"},
        headers={"Authorization": rp.basic_auth()},
    )

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"
    assert "id_token" not in response.json()


def test_provider_config_describes_the_op_and_its_client_for_rpkit(fake_op: FakeOP):
    config = fake_op.provider_config(scopes=("openid", "offline_access"))

    assert config.issuer == fake_op.issuer
    assert config.client_id == DEFAULT_CLIENT_ID
    assert config.client_auth == "client_secret_basic"
    assert config.scopes == ("openid", "offline_access")
    assert config.allow_insecure_http is False
