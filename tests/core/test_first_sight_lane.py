"""The lean first-sight path of access-token validation changes what is computed, not what is
accepted: RS* signatures verified straight with ``cryptography`` are refused exactly as before,
flat claims decoded as tuples end up as read-only as nested ones, strict base64url stays strict,
the compact split still tells a JWE from garbage, and a validation that never awaits needs no
flight mark to stay single."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from types import MappingProxyType
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from rpkit import _jwt, access_token
from rpkit._json import MAX_DEPTH
from rpkit.access_token import AccessTokenPolicy, check_access_token_claims
from rpkit.errors import AccessTokenValidationError, JWKSError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP
from tests.core.test_access_token_cache import CountingVerifier

API = "https://api.rpkit.test"


def policy_for(op: FakeOP) -> AccessTokenPolicy:
    return AccessTokenPolicy(issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(API,))


def mint(op: FakeOP, claims: dict[str, Any] | None = None) -> str:
    return op.minter.mint_access_token(
        subject="alice",
        audience=API,
        client_id=DEFAULT_CLIENT_ID,
        scope="orders:read",
        claims=claims,
    )


@pytest.fixture
def validator(fake_op_http: httpx.AsyncClient) -> TokenValidator:
    return TokenValidator(JWKSCache(fake_op_http))


# -- RS256/384/512 straight through cryptography -------------------------------------------------

RSA_KEY = RSAKey.generate_key(2048)
PUBLIC_RSA = RSAKey.import_key(RSA_KEY.as_dict(private=False))


def rsa_token(alg: str) -> str:
    return jws.serialize_compact({"alg": alg}, b'{"sub":"alice"}', RSA_KEY, algorithms=[alg])


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_every_rs_algorithm_verifies_and_a_wrong_signature_is_refused(alg: str) -> None:
    token = rsa_token(alg)
    _jwt.parse_compact(token).verify(PUBLIC_RSA)  # no exception: it verifies

    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[-1] ^= 1
    flipped = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    truncated = base64.urlsafe_b64encode(bytes(raw[:-1])).rstrip(b"=").decode()
    other = "RS512" if alg != "RS512" else "RS256"  # the same bytes under another hash
    for bad in (f"{head}.{payload}.{flipped}", f"{head}.{payload}.{truncated}"):
        with pytest.raises(_jwt.Rejected) as caught:
            _jwt.parse_compact(bad).verify(PUBLIC_RSA)
        assert caught.value.reason == "signature"
    relabelled = _jwt.parse_compact(token)._replace(alg=other)
    with pytest.raises(_jwt.Rejected, match="does not verify"):
        relabelled.verify(PUBLIC_RSA)


def _with_signature(token: str, signature: bytes) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _raw_rsa_signature(encoded_message: bytes) -> bytes:
    """RSASP1 of ``encoded_message`` with the test key: a signature of any block at all."""
    numbers = RSA_KEY.private_key.private_numbers()
    n = numbers.public_numbers.n
    return pow(int.from_bytes(encoded_message, "big"), numbers.d, n).to_bytes(256, "big")


SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")  # RFC 8017 §9.2
SHA256_NO_NULL = bytes.fromhex("302f300b06096086480165030402010420")  # parameters absent


def _block(digest_info: bytes, *, padding: int | None = None, tail: bytes = b"") -> bytes:
    body = digest_info + tail
    ff = 256 - 3 - len(body) if padding is None else padding
    return (b"\x00\x01" + b"\xff" * ff + b"\x00" + body).rjust(256, b"\x00")[-256:]


@pytest.mark.parametrize(
    ("shape", "accepted"),
    [
        ("the RFC 8017 encoding", True),
        ("DigestInfo without its NULL parameters", False),
        ("bytes after the hash", False),
        ("seven padding bytes, a shorter block", False),
        ("the hash of another input", False),
    ],
)
def test_rs256_accepts_exactly_the_pkcs1_encoding_of_the_hash(shape: str, accepted: bool) -> None:
    """The RS* lane compares the whole recovered block with the one expected encoding (RFC 8017
    §8.2.2), as cryptography's own verify does: the two agree on every shape."""
    token = rsa_token("RS256")
    compact = _jwt.parse_compact(token)
    digest = hashlib.sha256(compact.signing_input).digest()
    blocks = {
        "the RFC 8017 encoding": _block(SHA256_DIGEST_INFO + digest),
        "DigestInfo without its NULL parameters": _block(SHA256_NO_NULL + digest),
        "bytes after the hash": _block(SHA256_DIGEST_INFO + digest, tail=b"\x00" * 4),
        "seven padding bytes, a shorter block": _block(SHA256_DIGEST_INFO + digest, padding=7),
        "the hash of another input": _block(SHA256_DIGEST_INFO + hashlib.sha256(b"x").digest()),
    }
    signature = _raw_rsa_signature(blocks[shape])
    crafted = _jwt.parse_compact(_with_signature(token, signature))
    public = PUBLIC_RSA.public_key
    try:
        public.verify(signature, compact.signing_input, PKCS1v15(), SHA256())
        cryptography_accepts = True
    except InvalidSignature:
        cryptography_accepts = False
    assert cryptography_accepts is accepted
    if accepted:
        crafted.verify(PUBLIC_RSA)
    else:
        with pytest.raises(_jwt.Rejected) as caught:
            crafted.verify(PUBLIC_RSA)
        assert caught.value.reason == "signature"


def test_an_rs256_signature_must_be_exactly_the_modulus_length() -> None:
    """RFC 8017 §8.2.2 step 1: the same integer written with one byte fewer (its leading zero
    dropped) or one more is refused, so a signature has one spelling only."""
    for jti in range(5000):  # about one signature in 256 starts with a zero byte
        token = jws.serialize_compact(
            {"alg": "RS256"}, f'{{"jti":"{jti}"}}'.encode(), RSA_KEY, algorithms=["RS256"]
        )
        signature = _jwt.parse_compact(token).signature
        if signature[0] == 0:
            break
    else:
        pytest.fail("no signature with a leading zero byte")
    _jwt.parse_compact(token).verify(PUBLIC_RSA)
    for respelled in (signature[1:], b"\x00" + signature):
        with pytest.raises(_jwt.Rejected) as caught:
            _jwt.parse_compact(_with_signature(token, respelled)).verify(PUBLIC_RSA)
        assert caught.value.reason == "signature"


@pytest.mark.parametrize(
    "key", [ECKey.generate_key("P-256"), OKPKey.generate_key("Ed25519")], ids=["EC", "OKP"]
)
def test_an_rs256_signature_checked_with_another_key_type_is_refused_not_crashed(
    key: ECKey | OKPKey,
) -> None:
    with pytest.raises(_jwt.Rejected) as caught:
        _jwt.parse_compact(rsa_token("RS256")).verify(key)
    assert caught.value.reason == "signature"


# -- flat claims ---------------------------------------------------------------------------------


async def test_flat_claims_are_deeply_read_only_and_equal_what_was_signed(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    extra = {"roles": ["admin", "member"], "permissions": [], "ratio": 0.5, "flag": None}
    token = mint(fake_op, extra)
    claims, flat = _jwt.parse_compact(token).flat_claims()
    assert flat
    assert claims["roles"] == ("admin", "member")

    access = await validator.validate_access_token(token, policy_for(fake_op))

    assert type(access.claims) is MappingProxyType
    assert access.claims["roles"] == ("admin", "member")
    assert access.claims["permissions"] == ()
    assert access.claims["ratio"] == 0.5
    assert access.claims["flag"] is None
    assert access.aud == (API,)
    with pytest.raises(TypeError):
        access.claims["roles"] = ()  # type: ignore[index]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": [API, 3]}, "aud"),
        ({"aud": [API, ""]}, "aud"),
        ({"aud": []}, "aud"),
        ({"aud": ["https://other.example"]}, "aud"),
        ({"sub": "x" * 256}, "sub"),
        ({"sub": ""}, "sub"),
        ({"sub": 7}, "sub"),
        ({"client_id": 5}, "malformed"),
    ],
    ids=repr,
)
async def test_flat_claims_take_every_claim_check(
    fake_op: FakeOP, validator: TokenValidator, claims: dict[str, Any], reason: str
) -> None:
    """The first-sight lane's flat claims (arrays decoded as tuples, not lists) are refused
    wherever the general checks refuse them."""
    token = mint(fake_op, claims)
    assert _jwt.parse_compact(token).flat_claims()[1]  # the lane under test

    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(token, policy_for(fake_op))

    assert caught.value.reason == reason


_TEXT = st.sampled_from([API, "", "x", "x" * 255, "x" * 256, "https://other.example"])
_VALUE = st.one_of(st.none(), _TEXT, st.integers(-1, 1), st.booleans())
_ARRAY = st.lists(st.one_of(_TEXT, st.integers(0, 1)), max_size=3)
_ABSENT = object()
_CLAIM = st.one_of(  # flat (tuples) and general (lists); _ABSENT drops the claim
    st.just(_ABSENT), _VALUE, _ARRAY.map(tuple), _ARRAY
)


def _helpers_alone(claims: dict[str, Any], policy: AccessTokenPolicy) -> object:
    """What the claim helpers decide, without accept_claims' inline shortcuts."""
    try:
        aud = access_token._audience(claims, policy)
        sub = _jwt.string_claim(claims)
        scopes = access_token._scopes(claims)
        client_id = claims.get("client_id", claims.get("azp"))
        if client_id is not None and type(client_id) is not str:
            return "malformed"
    except _jwt.Rejected as exc:
        return exc.reason
    return (aud, sub, scopes, client_id)


@settings(max_examples=400)
@given(
    drawn=st.dictionaries(
        st.sampled_from(["aud", "sub", "scope", "scopes", "scp", "client_id", "azp"]), _CLAIM
    ),
    audience_claim=st.sampled_from(["aud", "client_id", "azp"]),
)
def test_the_inline_claim_shortcuts_decide_exactly_as_the_helpers(
    drawn: dict[str, Any], audience_claim: Any
) -> None:
    """accept_claims takes the commonest ``aud``, ``sub``, ``scope`` and ``client_id`` shapes
    inline: whatever the claims, it accepts the same values, or refuses for the same reason,
    as the helpers alone (``_audience``, ``string_claim``, ``_scopes``)."""
    policy = AccessTokenPolicy(
        issuers=("https://op.rpkit.test",),
        jwks_uri="https://op.rpkit.test/jwks",
        audience=(API,),
        audience_claim=audience_claim,
    )
    valid = {"aud": API, "sub": "alice", "scope": "a b", "client_id": API}  # each drawn replaces
    claims = {"iss": "https://op.rpkit.test", "iat": 1000, "exp": 5000, **valid, **drawn}
    claims = {name: value for name, value in claims.items() if value is not _ABSENT}
    expected = _helpers_alone(claims, policy)

    try:
        access, _ = access_token.accept_claims(
            dict(claims), policy, 2000.0, None, owned=True, flat=True
        )
    except _jwt.Rejected as exc:
        got: object = exc.reason
    else:
        got = (access.aud, access.sub, access.scopes, access.client_id)

    assert got == expected


async def test_flat_claims_with_several_audiences_are_accepted(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    token = mint(fake_op, {"aud": ["https://other.example", API]})

    access = await validator.validate_access_token(token, policy_for(fake_op))

    assert access.aud == ("https://other.example", API)
    assert access.client_id == DEFAULT_CLIENT_ID


async def test_nested_claims_take_the_general_decoder_and_are_frozen_all_the_way_down(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    extra = {
        "realm_access": {"roles": ["admin"]},
        "matrix": [[1, 2], [3]],
        "details": [{"type": "payment", "locations": ["https://pay.example"]}],
    }
    token = mint(fake_op, extra)
    claims, flat = _jwt.parse_compact(token).flat_claims()
    assert not flat
    assert claims["matrix"] == [[1, 2], [3]]  # lists, as the general decoder gives them

    access = await validator.validate_access_token(token, policy_for(fake_op))

    realm = access.claims["realm_access"]
    assert type(realm) is MappingProxyType
    assert realm["roles"] == ("admin",)
    assert access.claims["matrix"] == ((1, 2), (3,))
    detail = access.claims["details"][0]
    assert type(detail) is MappingProxyType
    assert detail["locations"] == ("https://pay.example",)


async def test_a_signed_token_nested_too_deep_is_still_refused_as_malformed(
    fake_op: FakeOP, validator: TokenValidator
) -> None:
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    token = mint(fake_op, {"deep": deep})

    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(token, policy_for(fake_op))

    assert caught.value.reason == "malformed"
    assert fake_op.oracle.count("jwks") == 0  # refused before any key lookup


@pytest.mark.parametrize(
    "payload", [b"not json", b"[1, 2]", b'"text"', b'{"sub": "\xff"}', b'{"a": 1} trailing']
)
def test_flat_claims_refuse_what_claims_refuses(payload: bytes) -> None:
    segment = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    compact = _jwt.parse_compact(f"eyJhbGciOiJSUzI1NiJ9.{segment}.c2ln")
    for read in (compact.claims, compact.flat_claims):
        with pytest.raises(_jwt.Rejected) as caught:
            read()
        assert caught.value.reason == "malformed"


def test_checking_a_callers_claims_leaves_them_as_they_were(fake_op: FakeOP) -> None:
    claims = _jwt.parse_compact(mint(fake_op, {"roles": ["admin"]})).claims()
    before = {name: value for name, value in claims.items()}

    access = check_access_token_claims(claims, policy_for(fake_op), fake_op.now())

    assert claims == before
    assert type(claims["roles"]) is list  # the caller's list was not turned into a tuple
    assert access.claims["roles"] == ("admin",)


# -- strict base64url and the compact split ------------------------------------------------------

URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@given(st.text(alphabet=URL_SAFE + '+/= \n.!\\"\x00', max_size=16))
def test_base64url_decoding_is_as_strict_as_binascii_strict_mode(segment: str) -> None:
    raw = segment.encode()
    padded = raw.translate(bytes.maketrans(b"-_+/=", b"+/!!!")) + b"=" * (-len(raw) % 4)
    try:
        expected: bytes | None = binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error:
        expected = None
    try:
        got: bytes | None = _jwt._b64url(raw)
    except binascii.Error:
        got = None
    assert got == expected


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("a.b.c.d.e", "jwe"),
        ("a.b.c.d.e.f", "malformed"),
        ("a.b.c.d.e.", "malformed"),
        ("a.b.c.d", "malformed"),
        ("a.b", "malformed"),
        ("abc", "malformed"),
        ("." * 60000, "malformed"),
    ],
)
def test_the_split_tells_a_jwe_from_a_token_of_the_wrong_shape(token: str, reason: str) -> None:
    with pytest.raises(_jwt.Rejected) as caught:
        _jwt.parse_compact(token)
    assert caught.value.reason == reason


def test_a_signature_segment_outside_the_url_safe_alphabet_is_refused(fake_op: FakeOP) -> None:
    head, payload, signature = mint(fake_op).split(".")
    for bad in (signature[:-1] + "+", signature[:-1] + "/", signature + "=", signature + " "):
        with pytest.raises(_jwt.Rejected) as caught:
            _jwt.parse_compact(f"{head}.{payload}.{bad}")
        assert caught.value.reason == "malformed"


# -- the key at hand, and no await ---------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_cached_key_answers_only_from_a_fresh_set_and_never_fetches(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient
) -> None:
    clock = Clock(float(fake_op.now()))
    jwks = JWKSCache(fake_op_http, clock=clock)
    uri = fake_op.endpoints["jwks"]
    header = _jwt.parse_compact(mint(fake_op)).header

    assert jwks.cached_key(uri, header, "RS256") is None  # nothing cached yet
    assert fake_op.oracle.count("jwks") == 0
    key = await jwks.key_for(uri, header, "RS256")
    assert jwks.cached_key(uri, header, "RS256") is key
    assert jwks.cached_key(uri, header, "ES256") is None  # another alg: key_for's checks
    clock.now += 10 * 24 * 3600  # the set expired: key_for must refetch it
    assert jwks.cached_key(uri, header, "RS256") is None
    with pytest.raises(JWKSError, match="kid"):
        jwks.cached_key(uri, {"alg": "RS256", "kid": ["not", "a", "string"]}, "RS256")
    assert fake_op.oracle.count("jwks") == 1


async def test_concurrent_first_sights_with_the_key_at_hand_verify_once(
    fake_op: FakeOP, validator: TokenValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = policy_for(fake_op)
    await validator.validate_access_token(mint(fake_op), policy)  # the key set is now cached
    verifications = CountingVerifier(_jwt.Compact.verify)
    monkeypatch.setattr(_jwt.Compact, "verify", verifications)
    token = mint(fake_op)

    results = await asyncio.gather(
        *(validator.validate_access_token(token, policy) for _ in range(5))
    )

    assert verifications.calls == 1
    assert all(result is results[0] for result in results)


@pytest.mark.parametrize("cache_size", [0, 100])
async def test_a_kid_that_is_not_a_string_is_refused_without_a_fetch_when_keys_are_cached(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, cache_size: int
) -> None:
    validator = TokenValidator(JWKSCache(fake_op_http), access_token_cache_size=cache_size)
    policy = policy_for(fake_op)
    await validator.validate_access_token(mint(fake_op), policy)  # the key set is now cached
    odd = fake_op.minter.mint_access_token(
        subject="alice",
        audience=API,
        client_id=DEFAULT_CLIENT_ID,
        scope="orders:read",
        header={"kid": ["rs256"]},
    )

    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(odd, policy)

    assert caught.value.reason == "key"
    assert fake_op.oracle.count("jwks") == 1
