"""The fake OP's ID-token knobs (checklist group I, rows 20–37) put on the wire exactly the
artefact each row describes.

A plain httpx client logs in, reads the JWKS from the discovery document and checks the ID token
with ``cryptography`` and ``hmac`` directly, never with the kit's own JOSE helpers. Claim edits
are shown to arrive in an otherwise honest, validly signed token, so an RP that rejects it can
only be rejecting the edited claim.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import JWKRegistry

from rpkit.testing import (
    ABSENT,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ISSUER,
    FakeOP,
    Tamper,
)
from tests.testing.jws_check import verifies as _verifies

DISCOVERY_URL = f"{DEFAULT_ISSUER}/.well-known/openid-configuration"
DAY = 86_400


# -- an independent verifier ---------------------------------------------------------------------
def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, payload, _ = token.split(".")
    return json.loads(_unb64(head)), json.loads(_unb64(payload))


def _hmac_verifies(token: str, key: bytes) -> bool:
    head, payload, signature = token.split(".")
    mac = hmac.new(key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(_b64(mac), signature)


def _at_hash(access_token: str) -> str:
    return _b64(hashlib.sha256(access_token.encode()).digest()[:16])


async def _metadata(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get(DISCOVERY_URL)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def _published_keys(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get((await _metadata(http))["jwks_uri"])
    assert response.status_code == 200
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


def _key_named(keys: list[dict[str, Any]], kid: str) -> dict[str, Any]:
    matches = [key for key in keys if key.get("kid") == kid]
    assert len(matches) == 1, f"kid {kid!r} names {len(matches)} published keys"
    return matches[0]


async def _edited_claims(rp: Any, http: httpx.AsyncClient, edits: dict[str, Any]) -> dict[str, Any]:
    """Log in with ``edits`` on the ID token; check it is validly signed with the published key
    its ``kid`` names, and honest in every core claim that was not edited."""
    rp.op.misbehave.id_token_claims = edits
    tokens = await rp.tokens()
    keys = await _published_keys(http)
    header, claims = _parts(tokens["id_token"])
    assert _verifies(tokens["id_token"], _key_named(keys, header["kid"]))
    honest = {"iss": DEFAULT_ISSUER, "aud": DEFAULT_CLIENT_ID, "sub": "alice", "nonce": rp.nonce}
    for name, value in honest.items():
        if name not in edits:
            assert claims[name] == value, name
    return claims


def _shown(claims: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The named claims, with :data:`ABSENT` for a missing one."""
    return {name: claims.get(name, ABSENT) for name in names}


# -- row 20: the honest token --------------------------------------------------------------------
async def test_row_20_honest_token_verifies_with_the_key_its_kid_names(fake_op_http, rp):
    before = int(time.time())
    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header, claims = _parts(tokens["id_token"])
    key = _key_named(keys, header["kid"])
    others = [k for k in keys if k is not key]

    assert header == {"alg": "RS256", "typ": "JWT", "kid": key["kid"]}
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    assert _verifies(tokens["id_token"], key)
    assert not any(_verifies(tokens["id_token"], other) for other in others)
    assert _shown(claims, ("iss", "aud", "sub", "nonce", "azp")) == {
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_CLIENT_ID,
        "sub": "alice",
        "nonce": rp.nonce,
        "azp": ABSENT,
    }
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 300
    assert before <= claims["auth_time"] <= claims["iat"]
    assert claims["at_hash"] == _at_hash(tokens["access_token"])
    assert isinstance(claims["sid"], str)
    assert claims["sid"]


# -- rows 21–24: signatures and algorithms -------------------------------------------------------
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_row_21_bad_signature_fails_verification_with_the_published_key(
    fake_op: FakeOP, fake_op_http, rp, alg
):
    fake_op.misbehave.id_token_alg = alg
    fake_op.misbehave.id_token_tamper = Tamper.BAD_SIGNATURE

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header, claims = _parts(tokens["id_token"])
    key = _key_named(keys, header["kid"])
    assert header["alg"] == alg == key["alg"]
    assert not any(_verifies(tokens["id_token"], k) for k in keys)
    assert _shown(claims, ("iss", "aud", "sub", "nonce")) == {
        "iss": DEFAULT_ISSUER,
        "aud": DEFAULT_CLIENT_ID,
        "sub": "alice",
        "nonce": rp.nonce,
    }
    assert claims["at_hash"] == _at_hash(tokens["access_token"])
    honest_length = 256 if alg == "RS256" else 64
    assert len(_unb64(tokens["id_token"].split(".")[2])) == honest_length


async def test_row_22_es256_token_verifies_with_the_published_ec_key(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_alg = "ES256"

    tokens = await rp.tokens()
    metadata = await _metadata(fake_op_http)
    keys = await _published_keys(fake_op_http)

    header, claims = _parts(tokens["id_token"])
    key = _key_named(keys, header["kid"])
    assert header["alg"] == "ES256"
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")
    assert _verifies(tokens["id_token"], key)
    assert {"RS256", "ES256"} <= set(metadata["id_token_signing_alg_values_supported"])
    assert claims["nonce"] == rp.nonce


async def test_row_22_unknown_key_names_a_kid_absent_from_the_jwks(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_tamper = Tamper.UNKNOWN_KEY

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header, claims = _parts(tokens["id_token"])
    assert header["alg"] == "RS256"
    assert header["kid"] not in {k["kid"] for k in keys}
    assert not any(_verifies(tokens["id_token"], k) for k in keys)
    assert claims["nonce"] == rp.nonce


async def test_row_23_hs256_is_keyed_with_the_utf8_client_secret(fake_op: FakeOP, rp):
    fake_op.misbehave.id_token_alg = "HS256"

    tokens = await rp.tokens()

    header, claims = _parts(tokens["id_token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert _hmac_verifies(tokens["id_token"], DEFAULT_CLIENT_SECRET.encode("utf-8"))
    # The default secret has a non-ASCII character, so the encoding is pinned down.
    assert not _hmac_verifies(tokens["id_token"], DEFAULT_CLIENT_SECRET.encode("latin-1"))
    assert claims["aud"] == DEFAULT_CLIENT_ID
    assert claims["at_hash"] == _at_hash(tokens["access_token"])


async def test_row_23_corrupted_mac_fails_with_the_client_secret(fake_op: FakeOP, rp):
    fake_op.misbehave.id_token_alg = "HS256"
    fake_op.misbehave.id_token_tamper = Tamper.BAD_SIGNATURE

    tokens = await rp.tokens()

    header, claims = _parts(tokens["id_token"])
    assert header["alg"] == "HS256"
    assert not _hmac_verifies(tokens["id_token"], DEFAULT_CLIENT_SECRET.encode())
    assert claims["nonce"] == rp.nonce


async def test_row_23_hs256_with_a_multi_valued_aud_is_validly_maced(fake_op: FakeOP, rp):
    fake_op.misbehave.id_token_alg = "HS256"
    fake_op.misbehave.id_token_claims = {"aud": [DEFAULT_CLIENT_ID, "other-client"]}

    tokens = await rp.tokens()

    _, claims = _parts(tokens["id_token"])
    assert _hmac_verifies(tokens["id_token"], DEFAULT_CLIENT_SECRET.encode())
    assert claims["aud"] == [DEFAULT_CLIENT_ID, "other-client"]


async def test_row_23_hs256_public_key_is_maced_with_the_pem_of_the_published_rsa_key(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_tamper = Tamper.HS256_PUBLIC_KEY

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header, _ = _parts(tokens["id_token"])
    rsa_key = _key_named(keys, header["kid"])
    pem = JWKRegistry.import_key(rsa_key).public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert header["alg"] == "HS256"
    assert rsa_key["kty"] == "RSA"
    assert _hmac_verifies(tokens["id_token"], pem)
    assert not _hmac_verifies(tokens["id_token"], DEFAULT_CLIENT_SECRET.encode())


@pytest.mark.parametrize(
    "knobs",
    [
        pytest.param({"id_token_alg": "none"}, id="id_token_alg-none"),
        pytest.param({"id_token_tamper": Tamper.ALG_NONE}, id="tamper-alg-none"),
    ],
)
async def test_row_24_alg_none_token_has_an_empty_signature(fake_op: FakeOP, rp, knobs):
    with fake_op.misbehaving(**knobs):
        tokens = await rp.tokens()

    header, claims = _parts(tokens["id_token"])
    assert tokens["id_token"].endswith(".")
    assert header == {"alg": "none", "typ": "JWT"}
    assert claims["iss"] == DEFAULT_ISSUER
    assert claims["nonce"] == rp.nonce


async def test_row_24_metadata_lists_none_only_when_edited_to(fake_op: FakeOP, fake_op_http):
    honest = await _metadata(fake_op_http)
    algs = [*honest["id_token_signing_alg_values_supported"], "none"]
    fake_op.misbehave.metadata = {"id_token_signing_alg_values_supported": algs}

    edited = await _metadata(fake_op_http)

    assert "none" not in honest["id_token_signing_alg_values_supported"]
    assert "none" in edited["id_token_signing_alg_values_supported"]


# -- rows 25–29: who the token is from, for and about ---------------------------------------------
@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            {"iss": lambda c: c["iss"] + "1"}, {"iss": DEFAULT_ISSUER + "1"}, id="iss-plus-1"
        ),
        pytest.param(
            {"iss": "https://example.org/"}, {"iss": "https://example.org/"}, id="iss-other-host"
        ),
        pytest.param({"iss": ABSENT}, {"iss": ABSENT}, id="iss-missing"),
    ],
)
async def test_row_25_iss_edit_arrives_in_a_validly_signed_token(fake_op_http, rp, edits, expected):
    claims = await _edited_claims(rp, fake_op_http, edits)

    assert _shown(claims, expected) == expected


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            {"aud": lambda c: c["aud"] + "1"}, {"aud": DEFAULT_CLIENT_ID + "1"}, id="aud-plus-1"
        ),
        pytest.param({"aud": ABSENT}, {"aud": ABSENT}, id="aud-missing"),
    ],
)
async def test_row_26_aud_edit_arrives_in_a_validly_signed_token(fake_op_http, rp, edits, expected):
    claims = await _edited_claims(rp, fake_op_http, edits)

    assert _shown(claims, expected) == expected


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            {"aud": [DEFAULT_CLIENT_ID, "untrusted"]},
            {"aud": [DEFAULT_CLIENT_ID, "untrusted"], "azp": ABSENT},
            id="untrusted-extra-aud-no-azp",
        ),
        pytest.param(
            {"aud": [DEFAULT_CLIENT_ID, "untrusted"], "azp": DEFAULT_CLIENT_ID},
            {"aud": [DEFAULT_CLIENT_ID, "untrusted"], "azp": DEFAULT_CLIENT_ID},
            id="untrusted-extra-aud-with-azp",
        ),
        pytest.param(
            {"aud": lambda c: [c["aud"]]},
            {"aud": [DEFAULT_CLIENT_ID], "azp": ABSENT},
            id="one-element-array",
        ),
    ],
)
async def test_row_27_aud_array_arrives_in_a_validly_signed_token(
    fake_op_http, rp, edits, expected
):
    claims = await _edited_claims(rp, fake_op_http, edits)

    assert _shown(claims, expected) == expected


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param(
            {"aud": "other-client", "azp": DEFAULT_CLIENT_ID},
            {"aud": "other-client", "azp": DEFAULT_CLIENT_ID},
            id="other-aud-our-azp",
        ),
        pytest.param(
            {"azp": "other-client"},
            {"aud": DEFAULT_CLIENT_ID, "azp": "other-client"},
            id="our-aud-other-azp",
        ),
    ],
)
async def test_row_28_azp_edit_arrives_in_a_validly_signed_token(fake_op_http, rp, edits, expected):
    claims = await _edited_claims(rp, fake_op_http, edits)

    assert _shown(claims, expected) == expected


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({"sub": ABSENT}, {"sub": ABSENT}, id="sub-missing"),
        pytest.param({"sub": ""}, {"sub": ""}, id="sub-empty"),
        pytest.param({"sub": 42}, {"sub": 42}, id="sub-number"),
    ],
)
async def test_row_29_sub_edit_arrives_in_a_validly_signed_token(fake_op_http, rp, edits, expected):
    claims = await _edited_claims(rp, fake_op_http, edits)

    assert _shown(claims, expected) == expected


# -- rows 30–32: time ----------------------------------------------------------------------------
async def test_row_30_missing_iat_is_absent(fake_op_http, rp):
    claims = await _edited_claims(rp, fake_op_http, {"iat": ABSENT})

    assert "iat" not in claims
    assert claims["exp"] > time.time()


async def test_row_30_future_iat_is_an_hour_ahead(fake_op_http, rp):
    claims = await _edited_claims(rp, fake_op_http, {"iat": lambda c: c["iat"] + 3600})

    assert claims["iat"] >= time.time() + 3590


async def test_row_30_string_iat_is_not_a_number(fake_op_http, rp):
    claims = await _edited_claims(rp, fake_op_http, {"iat": lambda c: str(c["iat"])})

    assert isinstance(claims["iat"], str)
    assert abs(int(claims["iat"]) - time.time()) < 5


async def test_row_31_iat_a_week_ago_comes_with_a_valid_exp(fake_op_http, rp):
    claims = await _edited_claims(rp, fake_op_http, {"iat": lambda c: c["iat"] - 7 * DAY})

    now = time.time()
    assert now - 7 * DAY - 5 <= claims["iat"] <= now - 7 * DAY + 1
    assert claims["exp"] > now


async def test_row_32_expired_exp_is_six_minutes_past(fake_op_http, rp):
    claims = await _edited_claims(rp, fake_op_http, {"exp": lambda c: c["iat"] - 360})

    assert claims["exp"] <= time.time() - 359


@pytest.mark.parametrize(
    ("edits", "check"),
    [
        pytest.param({"exp": ABSENT}, lambda c: "exp" not in c, id="exp-missing"),
        pytest.param(
            {"exp": lambda c: str(c["exp"])},
            lambda c: isinstance(c["exp"], str) and int(c["exp"]) > time.time(),
            id="exp-string",
        ),
        pytest.param(
            {"nbf": lambda c: c["iat"] + 3600},
            lambda c: c["nbf"] >= time.time() + 3590 and c["exp"] > time.time(),
            id="nbf-an-hour-ahead",
        ),
    ],
)
async def test_row_32_exp_and_nbf_edits_arrive_in_a_validly_signed_token(
    fake_op_http, rp, edits, check
):
    claims = await _edited_claims(rp, fake_op_http, edits)

    assert check(claims), claims


@pytest.mark.parametrize("offset", [600, -3600], ids=["ten-minutes-ahead", "an-hour-behind"])
async def test_rows_30_to_32_clock_offset_shifts_iat_exp_and_auth_time(
    fake_op: FakeOP, fake_op_http, rp, offset
):
    fake_op.misbehave.clock_offset = offset
    before = int(time.time()) + offset

    claims = await _edited_claims(rp, fake_op_http, {})

    after = int(time.time()) + offset
    assert before <= claims["iat"] <= after
    assert claims["exp"] == claims["iat"] + 300
    assert before <= claims["auth_time"] <= after


# -- rows 33–36: binding to this transaction and this access token -------------------------------
@pytest.mark.parametrize(
    ("edits", "suffix"),
    [
        pytest.param({"nonce": lambda c: c["nonce"] + "1"}, "1", id="nonce-plus-1"),
        pytest.param({"nonce": ABSENT}, None, id="nonce-missing"),
    ],
)
async def test_row_33_nonce_edit_arrives_in_a_validly_signed_token(fake_op_http, rp, edits, suffix):
    claims = await _edited_claims(rp, fake_op_http, edits)

    expected = ABSENT if suffix is None else rp.nonce + suffix
    assert claims.get("nonce", ABSENT) == expected


async def test_row_34_token_can_carry_the_nonce_of_another_transaction(fake_op_http, rp):
    await rp.tokens()
    earlier_nonce = rp.nonce

    claims = await _edited_claims(rp, fake_op_http, {"nonce": earlier_nonce})

    assert claims["nonce"] == earlier_nonce != rp.nonce


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        pytest.param({}, ABSENT, id="honest"),
        pytest.param({"nonce": "unsolicited"}, "unsolicited", id="nonce-added"),
    ],
)
async def test_row_34_nonce_appears_without_one_sent_only_when_edited_in(
    fake_op: FakeOP, rp, edits, expected
):
    url = urlsplit(rp.authorization_url())
    query = [(k, v) for k, v in parse_qsl(url.query) if k != "nonce"]
    fake_op.misbehave.id_token_claims = edits

    callback = await fake_op.approve(url._replace(query=urlencode(query)).geturl())
    response = await rp.exchange(callback.get("code") or "")

    assert fake_op.oracle.last("authorize").param("nonce") is None
    _, claims = _parts(response.json()["id_token"])
    assert claims.get("nonce", ABSENT) == expected


async def test_row_35_honest_auth_time_is_present_when_max_age_is_sent(fake_op: FakeOP, rp):
    before = int(time.time())
    tokens = await rp.tokens(max_age="300")

    _, claims = _parts(tokens["id_token"])
    assert fake_op.oracle.last("authorize").param("max_age") == "300"
    assert before <= claims["auth_time"] <= int(time.time())


@pytest.mark.parametrize(
    ("edits", "check"),
    [
        pytest.param({"auth_time": ABSENT}, lambda c: "auth_time" not in c, id="missing"),
        pytest.param(
            {"auth_time": lambda c: c["auth_time"] - DAY},
            lambda c: c["auth_time"] <= time.time() - DAY + 1,
            id="a-day-old",
        ),
        pytest.param(
            {"auth_time": lambda c: str(c["auth_time"])},
            lambda c: isinstance(c["auth_time"], str),
            id="string",
        ),
    ],
)
async def test_row_35_auth_time_edit_arrives_with_max_age_sent(
    fake_op: FakeOP, fake_op_http, rp, edits, check
):
    fake_op.misbehave.id_token_claims = edits
    tokens = await rp.tokens(max_age="300")
    keys = await _published_keys(fake_op_http)

    header, claims = _parts(tokens["id_token"])
    assert fake_op.oracle.last("authorize").param("max_age") == "300"
    assert _verifies(tokens["id_token"], _key_named(keys, header["kid"]))
    assert check(claims), claims


async def test_row_36_honest_at_hash_is_the_left_half_of_the_access_tokens_sha256(rp):
    tokens = await rp.tokens()

    _, claims = _parts(tokens["id_token"])
    digest = hashlib.sha256(tokens["access_token"].encode("ascii")).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


async def test_row_36_wrong_at_hash_no_longer_matches_the_access_token(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_claims = {"at_hash": lambda c: c["at_hash"][::-1]}

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header, claims = _parts(tokens["id_token"])
    assert _verifies(tokens["id_token"], _key_named(keys, header["kid"]))
    assert len(claims["at_hash"]) == 22
    assert claims["at_hash"] != _at_hash(tokens["access_token"])


async def test_row_36_missing_at_hash_is_absent(fake_op_http, rp):
    claims = await _edited_claims(rp, fake_op_http, {"at_hash": ABSENT})

    assert "at_hash" not in claims


# -- row 37: JOSE hygiene ------------------------------------------------------------------------
async def test_row_37_crit_header_appears_on_a_validly_signed_token(
    fake_op: FakeOP, fake_op_http, rp
):
    fake_op.misbehave.id_token_header = {"crit": ["urn:rpkit:unknown"], "urn:rpkit:unknown": 1}

    tokens = await rp.tokens()
    keys = await _published_keys(fake_op_http)

    header, _ = _parts(tokens["id_token"])
    assert header["crit"] == ["urn:rpkit:unknown"]
    assert header["urn:rpkit:unknown"] == 1
    assert _verifies(tokens["id_token"], _key_named(keys, header["kid"]))


async def test_row_37_jwe_tamper_is_a_five_part_compact_jwe(fake_op: FakeOP, rp):
    fake_op.misbehave.id_token_tamper = Tamper.JWE

    tokens = await rp.tokens()

    parts = tokens["id_token"].split(".")
    assert len(parts) == 5
    header = json.loads(_unb64(parts[0]))
    assert header["alg"] == "RSA-OAEP-256"
    assert header["enc"] == "A256GCM"
    assert header["cty"] == "JWT"
    encrypted_key, iv, ciphertext, tag = (_unb64(part) for part in parts[1:])
    assert len(encrypted_key) == 256
    assert len(iv) == 12
    assert len(tag) == 16
    assert b"alice" not in ciphertext


async def test_row_37_extra_claims_and_unrequested_acr_amr_come_through_signed(fake_op_http, rp):
    extra = {"acr": "urn:rpkit:unrequested", "amr": ["pwd", "otp"], "x_unknown": {"a": [1, 2]}}

    claims = await _edited_claims(rp, fake_op_http, extra)

    assert _shown(claims, extra) == extra
