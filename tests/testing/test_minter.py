"""The TokenMinter signs ID and access tokens that verify against its key ring's published JWKS,
read back with joserfc's ordinary JWT API."""

from __future__ import annotations

import base64
import hashlib

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from rpkit.testing import KeyRing, TokenMinter

ISSUER = "https://op.minter.test"
NOW = 1_800_000_000
# joserfc warns that the "EdDSA" name is deprecated (RFC 9864); the kit still signs with it.
EDDSA = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:joserfc.errors.SecurityWarning")
ALGS = [
    pytest.param("RS256", hashlib.sha256, id="RS256"),
    pytest.param("PS256", hashlib.sha256, id="PS256"),
    pytest.param("ES256", hashlib.sha256, id="ES256"),
    pytest.param("EdDSA", hashlib.sha512, id="EdDSA", marks=EDDSA),
]


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing()


@pytest.fixture
def minter(ring: KeyRing) -> TokenMinter:
    return TokenMinter(ISSUER, ring, clock=lambda: NOW)


def _half_hash(value: str, digest) -> str:
    raw = digest(value.encode()).digest()
    return base64.urlsafe_b64encode(raw[: len(raw) // 2]).rstrip(b"=").decode()


@pytest.mark.parametrize(("alg", "digest"), ALGS)
def test_mint_id_token_verifies_against_the_ring_jwks(ring, minter, alg, digest):
    token = minter.mint_id_token(
        audience="client-1", subject="alice", nonce="n-1", access_token="at-1", alg=alg
    )

    decoded = jwt.decode(token, KeySet.import_key_set(ring.jwks()), algorithms=[alg])

    assert decoded.header == {"alg": alg, "typ": "JWT", "kid": ring.kid(alg)}
    assert decoded.claims == {
        "iss": ISSUER,
        "sub": "alice",
        "aud": "client-1",
        "iat": NOW,
        "exp": NOW + 300,
        "auth_time": NOW,
        "nonce": "n-1",
        "at_hash": _half_hash("at-1", digest),
    }


@pytest.mark.parametrize(("alg", "digest"), ALGS)
def test_mint_access_token_is_an_rfc9068_at_jwt(ring, minter, alg, digest):
    token = minter.mint_access_token(
        subject="alice", audience="api", client_id="client-1", scope="openid email", alg=alg
    )

    decoded = jwt.decode(token, KeySet.import_key_set(ring.jwks()), algorithms=[alg])

    assert decoded.header == {"alg": alg, "typ": "at+jwt", "kid": ring.kid(alg)}
    assert {name: decoded.claims[name] for name in ("iss", "sub", "aud", "client_id")} == {
        "iss": ISSUER,
        "sub": "alice",
        "aud": "api",
        "client_id": "client-1",
    }
    assert decoded.claims["scope"] == "openid email"
    assert (decoded.claims["iat"], decoded.claims["exp"]) == (NOW, NOW + 3600)
    assert decoded.claims["jti"]


def test_access_tokens_get_a_fresh_jti_each(ring, minter):
    tokens = [
        minter.mint_access_token(subject="alice", audience="api", client_id="c") for _ in range(3)
    ]

    keys = KeySet.import_key_set(ring.jwks())
    jtis = {jwt.decode(t, keys, algorithms=["RS256"]).claims["jti"] for t in tokens}
    assert len(jtis) == 3


def test_claims_argument_overrides_the_defaults_and_lifetime_sets_exp(ring, minter):
    token = minter.mint_id_token(
        audience=["client-1", "other"],
        subject="alice",
        lifetime=60,
        claims={"auth_time": NOW - 10, "acr": "urn:example:mfa"},
    )

    claims = jwt.decode(token, KeySet.import_key_set(ring.jwks()), algorithms=["RS256"]).claims
    assert claims["aud"] == ["client-1", "other"]
    assert claims["exp"] == NOW + 60
    assert claims["auth_time"] == NOW - 10
    assert claims["acr"] == "urn:example:mfa"


def test_header_member_set_to_none_is_removed(ring, minter):
    token = minter.mint_id_token(audience="client-1", subject="alice", header={"typ": None})

    decoded = jwt.decode(token, KeySet.import_key_set(ring.jwks()), algorithms=["RS256"])
    assert decoded.header == {"alg": "RS256", "kid": ring.kid("RS256")}


def test_hs256_without_a_secret_is_refused(minter):
    with pytest.raises(ValueError, match="client secret"):
        minter.mint_id_token(audience="client-1", subject="alice", alg="HS256")
