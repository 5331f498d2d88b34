"""Client authentication at the token endpoint (checklist row 16) and PKCE: each method sends
the client's credentials exactly as its RFC says, in exactly one place, and the fake OP, which
decodes them strictly, accepts them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from rpkit._client_auth import (
    ASSERTION_LIFETIME,
    JWT_BEARER_ASSERTION_TYPE,
    basic_authorization,
    client_auth,
    new_code_verifier,
    s256_challenge,
)
from rpkit.config import ProviderConfig
from rpkit.discovery import DiscoveryCache, ProviderMetadata
from rpkit.errors import ConfigurationError
from rpkit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    FakeClient,
    FakeOP,
    generate_key,
)
from rpkit.tokens import TokenClient, TokenSet

TOKEN_ENDPOINT = "https://op.example/token"
NOW = 1_700_000_000.0


def config_for(issuer: str, **changes: Any) -> ProviderConfig:
    settings: dict[str, Any] = {
        "id": "fake",
        "issuer": issuer,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
    }
    return ProviderConfig(**(settings | changes))


def jwt_config(issuer: str, client_id: str, alg: str, kid: str = "rp-1") -> ProviderConfig:
    key = generate_key(alg, kid)
    return config_for(
        issuer,
        client_id=client_id,
        client_secret=None,
        client_auth="private_key_jwt",
        private_key=dict(key.as_dict(private=True)),
        private_key_alg=alg,
    )


def public_jwks(config: ProviderConfig) -> dict[str, Any]:
    assert config.private_key is not None
    private = KeySet.import_key_set({"keys": [config.private_key]})
    return dict(private.as_dict(private=False))


def assertion_claims(assertion: str) -> dict[str, Any]:
    payload = assertion.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


# -- the encoding of each method, without an OP -----------------------------------------------
def test_basic_form_urlencodes_both_parts_before_base64():
    header = basic_authorization("app:one", "s3cr:t +/%=é")

    decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    assert header.startswith("Basic ")
    assert decoded == "app%3Aone:s3cr%3At+%2B%2F%25%3D%C3%A9"
    assert decoded.count(":") == 1  # the separator is the only raw colon


def test_basic_sends_the_secret_only_in_the_header():
    headers, form = client_auth(config_for("https://op.example"), TOKEN_ENDPOINT, now=NOW)

    assert headers == {
        "Authorization": basic_authorization(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    }
    assert form == {}


def test_post_sends_client_id_and_secret_in_the_body_only():
    config = config_for("https://op.example", client_auth="client_secret_post")

    headers, form = client_auth(config, TOKEN_ENDPOINT, now=NOW)

    assert headers == {}
    assert form == {"client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}


def test_none_sends_only_the_client_id():
    config = config_for("https://op.example", client_auth="none", client_secret=None)

    assert client_auth(config, TOKEN_ENDPOINT, now=NOW) == ({}, {"client_id": DEFAULT_CLIENT_ID})


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256"])
def test_private_key_jwt_assertion_has_the_rfc_7523_claims(alg):
    config = jwt_config("https://op.example", "jwt-client", alg)

    headers, form = client_auth(config, TOKEN_ENDPOINT, now=NOW)

    assert headers == {}
    assert form["client_id"] == "jwt-client"
    assert form["client_assertion_type"] == JWT_BEARER_ASSERTION_TYPE
    token = jwt.decode(form["client_assertion"], KeySet.import_key_set(public_jwks(config)), [alg])
    assert token.header["kid"] == "rp-1"
    claims = token.claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        "jwt-client",
        "jwt-client",
        TOKEN_ENDPOINT,
    )
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + ASSERTION_LIFETIME
    assert ASSERTION_LIFETIME <= 60
    assert len(claims["jti"]) >= 32
    assert "client_secret" not in form


def test_private_key_jwt_assertions_never_repeat_a_jti():
    config = jwt_config("https://op.example", "jwt-client", "ES256")

    jtis = {
        assertion_claims(client_auth(config, TOKEN_ENDPOINT, now=NOW)[1]["client_assertion"])["jti"]
        for _ in range(20)
    }

    assert len(jtis) == 20


def test_private_key_jwt_with_a_key_that_cannot_sign_the_algorithm_is_a_configuration_error():
    ec = jwt_config("https://op.example", "jwt-client", "ES256")
    config = config_for(
        "https://op.example",
        client_secret=None,
        client_auth="private_key_jwt",
        private_key=ec.private_key,
        private_key_alg="RS256",
    )

    with pytest.raises(ConfigurationError, match="cannot sign") as caught:
        client_auth(config, TOKEN_ENDPOINT, now=NOW)

    assert caught.value.__cause__ is not None
    assert str(ec.private_key["d"]) not in caught.value.detail


# -- PKCE ---------------------------------------------------------------------------------------
def test_code_verifier_is_43_base64url_characters_from_32_random_bytes():
    verifiers = {new_code_verifier() for _ in range(50)}

    assert len(verifiers) == 50
    for verifier in verifiers:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", verifier)
        assert len(base64.urlsafe_b64decode(verifier + "=")) == 32


def test_s256_challenge_matches_the_rfc_7636_appendix_b_example():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_challenge_is_unpadded_base64url_of_sha256():
    verifier = new_code_verifier()

    digest = hashlib.sha256(verifier.encode()).digest()
    assert s256_challenge(verifier) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize("verifier", ["short", "x" * 129, "é" * 43, "a b" * 20])
def test_s256_challenge_refuses_a_malformed_verifier(verifier):
    with pytest.raises(ValueError, match="code_verifier"):
        s256_challenge(verifier)


# -- row 16 against the fake OP -----------------------------------------------------------------
async def code_for(op: FakeOP, client_id: str = DEFAULT_CLIENT_ID) -> tuple[str, str]:
    """An authorization code for ``client_id`` (PKCE S256, state and nonce), and its verifier."""
    verifier = new_code_verifier()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": DEFAULT_REDIRECT_URI,
        "scope": "openid profile email",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
    }
    code = (await op.approve(f"{op.endpoints['authorize']}?{urlencode(params)}")).get("code")
    assert code, "the fake OP issued no code"
    return code, verifier


async def exchange(
    op: FakeOP, http: httpx.AsyncClient, config: ProviderConfig
) -> tuple[TokenSet, ProviderMetadata]:
    metadata = await DiscoveryCache(http).get(config)
    code, verifier = await code_for(op, config.client_id)
    tokens = await TokenClient(http).exchange_code(
        config, metadata, code=code, redirect_uri=DEFAULT_REDIRECT_URI, code_verifier=verifier
    )
    return tokens, metadata


async def test_row_16_basic_with_a_secret_full_of_reserved_characters_is_accepted(
    fake_op: FakeOP, fake_op_http
):
    config = config_for(fake_op.issuer)

    tokens, _ = await exchange(fake_op, fake_op_http, config)

    request = fake_op.oracle.last("token")
    assert tokens.access_token
    assert request.outcome == "ok"
    assert request.headers["authorization"] == basic_authorization(
        DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
    )
    assert request.param("client_secret") is None
    assert DEFAULT_CLIENT_SECRET not in dict(request.form).values()
    assert {name for name, _ in request.form} == {
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
    }
    assert request.param("redirect_uri") == DEFAULT_REDIRECT_URI


async def test_row_16_client_secret_post_is_accepted(fake_op: FakeOP, fake_op_http):
    fake_op.register_client(
        FakeClient("post-client", token_endpoint_auth_method="client_secret_post")
    )
    config = config_for(fake_op.issuer, client_id="post-client", client_auth="client_secret_post")

    tokens, _ = await exchange(fake_op, fake_op_http, config)

    request = fake_op.oracle.last("token")
    assert tokens.access_token
    assert "authorization" not in request.headers
    assert request.param("client_secret") == DEFAULT_CLIENT_SECRET


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_row_16_private_key_jwt_is_accepted(fake_op: FakeOP, fake_op_http, alg):
    config = jwt_config(fake_op.issuer, "jwt-client", alg)
    fake_op.register_client(
        FakeClient(
            "jwt-client",
            client_secret=None,
            token_endpoint_auth_method="private_key_jwt",
            jwks=public_jwks(config),
        )
    )

    tokens, metadata = await exchange(fake_op, fake_op_http, config)

    request = fake_op.oracle.last("token")
    claims = assertion_claims(request.param("client_assertion") or "")
    assert tokens.access_token
    assert request.outcome == "ok"
    assert claims["aud"] == metadata.token_endpoint
    assert claims["exp"] - claims["iat"] <= 60
    assert "authorization" not in request.headers


async def test_row_16_private_key_jwt_twice_uses_a_fresh_assertion(fake_op: FakeOP, fake_op_http):
    config = jwt_config(fake_op.issuer, "jwt-client", "ES256")
    fake_op.register_client(
        FakeClient(
            "jwt-client",
            client_secret=None,
            token_endpoint_auth_method="private_key_jwt",
            jwks=public_jwks(config),
        )
    )

    await exchange(fake_op, fake_op_http, config)
    await exchange(fake_op, fake_op_http, config)  # the OP refuses a reused jti

    assert [r.outcome for r in fake_op.oracle.of("token")] == ["ok", "ok"]


async def test_row_16_public_client_sends_only_its_client_id(fake_op: FakeOP, fake_op_http):
    fake_op.register_client(
        FakeClient("public-client", client_secret=None, token_endpoint_auth_method="none")
    )
    config = config_for(
        fake_op.issuer, client_id="public-client", client_secret=None, client_auth="none"
    )

    tokens, _ = await exchange(fake_op, fake_op_http, config)

    request = fake_op.oracle.last("token")
    assert tokens.access_token
    assert request.param("client_id") == "public-client"
    assert request.param("client_secret") is None
    assert request.param("client_assertion") is None
    assert "authorization" not in request.headers
