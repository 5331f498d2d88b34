"""The fake OP's key knobs (checklist group K, rows 38–44) publish, and sign with, exactly the key
sets each row describes.

A plain httpx client reads the JWKS through the discovery document and checks each ID token
against every published key with ``cryptography`` directly, never with the kit's own JOSE
helpers.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from cryptography import x509
from joserfc.errors import JoseError

from rpkit.testing import DEFAULT_ISSUER, Canned, FakeOP, JWKSLayout, Tamper
from tests.testing.jws_check import header_of as _header
from tests.testing.jws_check import public_key as _public_key
from tests.testing.jws_check import verifies_with as _verifies_with

DISCOVERY_URL = f"{DEFAULT_ISSUER}/.well-known/openid-configuration"
ML_DSA_KEY = {"kty": "AKP", "alg": "ML-DSA-44", "kid": "pq-1", "pub": "dGVzdC1wdWJsaWMta2V5"}


# -- an independent verifier ---------------------------------------------------------------------


def _verifies(token: str, jwk: Mapping[str, Any]) -> bool:
    """Whether ``token``'s signature checks out with the public ``jwk`` (whatever its ``use``)."""
    try:
        key = _public_key(jwk)
    except JoseError:
        return False
    return _verifies_with(token, key)


def _verifying(token: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [key for key in keys if _verifies(token, key)]


async def _published_keys(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get(await _jwks_uri(http))
    assert response.status_code == 200
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


async def _jwks_uri(http: httpx.AsyncClient) -> str:
    return str((await http.get(DISCOVERY_URL)).json()["jwks_uri"])


def _kids(keys: list[dict[str, Any]]) -> set[str]:
    return {key["kid"] for key in keys if "kid" in key}


def _key_named(keys: list[dict[str, Any]], kid: str) -> dict[str, Any]:
    matches = [key for key in keys if key.get("kid") == kid]
    assert len(matches) == 1, f"kid {kid!r} names {len(matches)} published keys"
    return matches[0]


def _shape(key: Mapping[str, Any]) -> tuple[str, str | None]:
    return key["kty"], key.get("crv")


# -- rows 38, 39: no kid ---------------------------------------------------------------------------
SIGNING_SHAPES = {("RSA", None), ("EC", "P-256"), ("EC", "secp256k1"), ("OKP", "Ed25519")}
SHAPE_FOR_ALG = [
    pytest.param("RS256", ("RSA", None), id="RS256"),
    pytest.param("PS256", ("RSA", None), id="PS256"),
    pytest.param("ES256", ("EC", "P-256"), id="ES256"),
    pytest.param("EdDSA", ("OKP", "Ed25519"), id="EdDSA"),
]


async def test_row_38_single_no_kid_jwks_has_one_signing_key_per_type_plus_enc_keys_with_kid(
    fake_op: FakeOP, fake_op_http
):
    fake_op.misbehave.jwks_layout = JWKSLayout.SINGLE_NO_KID

    keys = await _published_keys(fake_op_http)

    signing = [key for key in keys if key.get("use") == "sig"]
    encryption = [key for key in keys if key.get("use") == "enc"]
    assert len(signing) + len(encryption) == len(keys)
    assert Counter(_shape(key) for key in signing) == dict.fromkeys(SIGNING_SHAPES, 1)
    assert not any("kid" in key for key in signing)
    assert sorted(key["kty"] for key in encryption) == ["EC", "RSA"]
    assert all(key.get("kid") for key in encryption)


@pytest.mark.parametrize(("alg", "shape"), SHAPE_FOR_ALG)
async def test_row_38_token_without_kid_verifies_with_exactly_one_published_key(
    fake_op: FakeOP, fake_op_http, rp, alg, shape
):
    fake_op.misbehave.jwks_layout = JWKSLayout.SINGLE_NO_KID
    fake_op.misbehave.id_token_alg = alg

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header = _header(tokens["id_token"])
    assert header == {"alg": alg, "typ": "JWT"}
    [key] = _verifying(tokens["id_token"], keys)
    assert _shape(key) == shape
    assert key["use"] == "sig"


async def test_row_39_multiple_no_kid_jwks_has_three_distinct_signing_keys_per_type(
    fake_op: FakeOP, fake_op_http
):
    fake_op.misbehave.jwks_layout = JWKSLayout.MULTIPLE_NO_KID

    keys = await _published_keys(fake_op_http)

    assert Counter(_shape(key) for key in keys) == dict.fromkeys(SIGNING_SHAPES, 3)
    assert all(key["use"] == "sig" and "kid" not in key for key in keys)
    material = {key.get("n") or key["x"] for key in keys}
    assert len(material) == 12


@pytest.mark.parametrize(("alg", "shape"), SHAPE_FOR_ALG)
async def test_row_39_token_without_kid_verifies_with_one_of_three_same_type_keys(
    fake_op: FakeOP, fake_op_http, rp, alg, shape
):
    fake_op.misbehave.jwks_layout = JWKSLayout.MULTIPLE_NO_KID
    fake_op.misbehave.id_token_alg = alg

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    assert "kid" not in _header(tokens["id_token"])
    [key] = _verifying(tokens["id_token"], keys)
    assert _shape(key) == shape
    assert sum(_shape(k) == shape for k in keys) == 3


# -- row 40: rotation ------------------------------------------------------------------------------
async def test_row_40_rotate_changes_every_kid_between_two_logins(
    fake_op: FakeOP, fake_op_http, rp
):
    first = await rp.tokens()
    first_keys = await _published_keys(fake_op_http)

    fake_op.keys.rotate()
    second = await rp.tokens()
    second_keys = await _published_keys(fake_op_http)

    first_kid, second_kid = _header(first["id_token"])["kid"], _header(second["id_token"])["kid"]
    assert len(_kids(first_keys)) == len(_kids(second_keys)) == 4
    assert not _kids(first_keys) & _kids(second_keys)
    assert _verifies(first["id_token"], _key_named(first_keys, first_kid))
    assert _verifies(second["id_token"], _key_named(second_keys, second_kid))
    assert not _verifying(first["id_token"], second_keys)
    assert fake_op.oracle.count("jwks") == 2


async def test_row_40_rotate_keys_before_signing_rotates_once_while_the_cache_is_warm(
    fake_op: FakeOP, fake_op_http, rp
):
    warm = await _published_keys(fake_op_http)
    fake_op.misbehave.rotate_keys_before_signing = True

    rotated = await rp.tokens()
    refetched = await _published_keys(fake_op_http)
    unrotated = await rp.tokens()

    kid = _header(rotated["id_token"])["kid"]
    assert kid not in _kids(warm)
    assert not _kids(warm) & _kids(refetched)
    assert _verifies(rotated["id_token"], _key_named(refetched, kid))
    assert fake_op.misbehave.rotate_keys_before_signing is False
    assert _header(unrotated["id_token"])["kid"] == kid
    assert fake_op.oracle.count("jwks") == 2


# -- row 41: random kid ----------------------------------------------------------------------------
async def test_row_41_random_kid_is_fresh_and_unknown_on_every_token(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_tamper = Tamper.RANDOM_KID

    tokens = [await rp.tokens() for _ in range(3)]
    keys = await _published_keys(fake_op_http)

    kids = [_header(t["id_token"])["kid"] for t in tokens]
    assert len(set(kids)) == 3
    assert not set(kids) & _kids(keys)
    rs256 = next(key for key in keys if key["alg"] == "RS256")
    assert all(_verifying(t["id_token"], keys) == [rs256] for t in tokens)


# -- row 42: outage --------------------------------------------------------------------------------
async def test_row_42_jwks_outage_answers_500_while_tokens_stay_signed_by_cached_keys(
    fake_op: FakeOP, fake_op_http, rp
):
    warm = await _published_keys(fake_op_http)
    fake_op.misbehave.respond = {"jwks": Canned.error(500)}

    response = await fake_op_http.get(await _jwks_uri(fake_op_http))
    tokens = await rp.tokens()

    assert response.status_code == 500
    assert _verifies(tokens["id_token"], _key_named(warm, _header(tokens["id_token"])["kid"]))


async def test_row_42_jwks_can_answer_an_empty_key_set(fake_op: FakeOP, fake_op_http):
    fake_op.misbehave.respond = {"jwks": Canned.json({"keys": []})}

    response = await fake_op_http.get(await _jwks_uri(fake_op_http))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"keys": []}


async def test_row_42_slow_jwks_raises_read_timeout_through_the_transport(
    fake_op: FakeOP, fake_op_http
):
    jwks_uri = await _jwks_uri(fake_op_http)
    fake_op.misbehave.latency = {"jwks": 5.0}
    impatient = httpx.AsyncClient(transport=fake_op.transport(), timeout=0.05)

    with pytest.raises(httpx.ReadTimeout):
        await impatient.get(jwks_uri)

    assert fake_op.oracle.count("jwks") == 1
    assert fake_op.oracle.count("discovery") == 1


# -- row 43: key selection -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"use": "enc"}, {"use": "enc"}, id="use-enc"),
        pytest.param(
            {"key_ops": ["encrypt"]}, {"use": None, "key_ops": ["encrypt"]}, id="key_ops-encrypt"
        ),
        pytest.param(
            {"use": "sig", "key_ops": ["encrypt"]},
            {"use": "sig", "key_ops": ["encrypt"]},
            id="key_ops-encrypt-with-use-sig",
        ),
        pytest.param({"alg": "PS256"}, {"alg": "PS256"}, id="alg-PS256"),
    ],
)
async def test_row_43_key_params_appear_on_the_key_the_token_names(
    fake_op: FakeOP, fake_op_http, rp, params, expected
):
    fake_op.misbehave.jwks_key_params = {"RS256": params}

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header = _header(tokens["id_token"])
    key = _key_named(keys, header["kid"])
    assert header["alg"] == "RS256"
    assert {name: key.get(name) for name in expected} == expected
    assert _verifies(tokens["id_token"], key)


async def test_row_43_extra_key_of_unknown_type_is_published_beside_the_real_ones(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.jwks_extra_keys = [ML_DSA_KEY]

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    assert ML_DSA_KEY in keys
    assert len(keys) == 5
    assert _verifies(tokens["id_token"], _key_named(keys, _header(tokens["id_token"])["kid"]))


# -- row 44: keys announced in the header ----------------------------------------------------------
async def test_row_44_header_jwk_token_verifies_only_with_the_embedded_key(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_tamper = Tamper.HEADER_JWK

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    embedded = _header(tokens["id_token"])["jwk"]
    assert embedded["kty"] == "RSA"
    assert "d" not in embedded
    assert embedded["n"] not in {key.get("n") for key in keys}
    assert _verifies(tokens["id_token"], embedded)
    assert not _verifying(tokens["id_token"], keys)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        pytest.param(Tamper.HEADER_JKU, {"jku": "https://attacker.example/jwks.json"}, id="jku"),
        pytest.param(Tamper.HEADER_X5U, {"x5u": "https://attacker.example/cert.pem"}, id="x5u"),
    ],
)
async def test_row_44_header_url_points_at_the_attacker_and_no_published_key_verifies(
    fake_op: FakeOP, fake_op_http, rp, tamper, expected
):
    fake_op.misbehave.id_token_tamper = tamper

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    [(member, url)] = expected.items()
    assert _header(tokens["id_token"])[member] == url
    assert not _verifying(tokens["id_token"], keys)
    with pytest.raises(httpx.ConnectError):
        await fake_op_http.get(url)


async def test_row_44_header_x5c_token_verifies_only_with_the_certificate_key(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_tamper = Tamper.HEADER_X5C

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    [der] = _header(tokens["id_token"])["x5c"]
    certificate = x509.load_der_x509_certificate(base64.b64decode(der))
    assert certificate.subject == certificate.issuer
    assert _verifies_with(tokens["id_token"], certificate.public_key())
    assert not _verifying(tokens["id_token"], keys)
