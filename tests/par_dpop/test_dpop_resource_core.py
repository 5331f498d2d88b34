"""The framework-free DPoP proof checks of a protected resource (RFC 9449 §4.3, §6.1, §9, §11.1).

Proofs are made here with joserfc directly, the way a client would; each bad artefact is refused
with its own ``reason``, and only a proof that passed every check is recorded in the store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import warnings
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from rpkit._jwt import Rejected
from rpkit.access_token import AccessTokenPolicy, check_access_token_claims
from rpkit.dpop_verify import (
    DPoPPolicy,
    DPoPProof,
    DPoPVerifier,
    access_token_hash,
    normalize_htu,
)
from rpkit.errors import ConfigurationError, DPoPProofError, StoreError
from rpkit.store import MemoryStore

pytestmark = pytest.mark.par_dpop

URL = "https://api.example.com/orders"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
NOW = 1_800_000_000.0
SECRET = b"n" * 32


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def proof(
    key: Any = None,
    *,
    alg: str = "ES256",
    header: dict[str, Any] | None = None,
    jwk: Any = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A DPoP proof as a client makes it (RFC 9449 §4.2), with any member overridden."""
    key = key or ECKey.generate_key("P-256")
    head = {
        "typ": "dpop+jwt",
        "alg": alg,
        "jwk": key.as_dict(private=False) if jwk is None else jwk,
    }
    head.update(header or {})
    body = {
        "jti": secrets.token_urlsafe(12),
        "htm": "GET",
        "htu": URL,
        "iat": int(NOW),
        "ath": access_token_hash(TOKEN),
    }
    body.update(claims)
    for name in drop:
        body.pop(name, None)
        head.pop(name, None)
    payload = json.dumps(body).encode()
    return jws.serialize_compact(head, payload, key, algorithms=[alg])


def forged(header: dict[str, Any]) -> str:
    """A proof joserfc would not serialise (a header member of the wrong type): refused before
    its signature is looked at."""
    body = {"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW), "ath": access_token_hash(TOKEN)}
    head = {"typ": "dpop+jwt", "alg": "ES256"} | header
    return f"{b64(json.dumps(head).encode())}.{b64(json.dumps(body).encode())}.{b64(b'sig')}"


def verifier(store: Any = None, clock: float = NOW, **policy: Any) -> DPoPVerifier:
    store = MemoryStore() if store is None else store
    return DPoPVerifier(DPoPPolicy(**policy), store, clock=lambda: clock)


def check(v: DPoPVerifier, *proofs: str, method: str = "GET", htu: str = URL) -> DPoPProof:
    return v.check(list(proofs), method=method, htu=htu, access_token=TOKEN)


def refused(v: DPoPVerifier, *proofs: str, **request: Any) -> str:
    with pytest.raises(DPoPProofError) as caught:
        check(v, *proofs, **request)
    assert caught.value.code == "dpop_proof_invalid"
    return caught.value.reason


# -- accepted ------------------------------------------------------------------------------------


async def test_a_valid_proof_is_accepted_confirmed_and_names_its_key() -> None:
    key = ECKey.generate_key("P-256")
    v = verifier()

    checked = check(v, proof(key, jti="one"))
    await v.confirm(checked, key.thumbprint())

    assert checked.jkt == key.thumbprint()
    assert (checked.jti, checked.htm, checked.htu, checked.iat) == ("one", "GET", URL, int(NOW))
    assert checked.alg == "ES256"
    assert checked.nonce is None


@pytest.mark.parametrize(
    ("alg", "make"),
    [
        ("ES256", lambda: ECKey.generate_key("P-256")),
        ("PS256", lambda: RSAKey.generate_key(2048)),
        ("RS256", lambda: RSAKey.generate_key(2048)),
        ("Ed25519", lambda: OKPKey.generate_key("Ed25519")),
    ],
)
def test_every_default_algorithm_verifies(alg: str, make: Any) -> None:
    key = make()
    assert check(verifier(), proof(key, alg=alg)).jkt == key.thumbprint()


def test_the_rfc_examples_give_the_rfc_thumbprint_and_token_hash() -> None:
    """RFC 9449 §6.1 and §7.1: the example proof key's thumbprint is the example ``cnf.jkt``,
    and the example token's hash the example ``ath``."""
    jwk = {
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256",
    }

    assert ECKey.import_key(jwk).thumbprint() == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    assert (
        access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")
        == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


@pytest.mark.parametrize(
    "claimed",
    [
        "HTTPS://API.Example.COM/orders",
        "https://api.example.com:443/orders",
        "https://api.example.com/./x/../orders",
        "https://api.example.com/%6Frders",
        "https://api.example.com/orders?page=2",
        "https://api.example.com/orders#top",
    ],
)
def test_htu_is_compared_after_normalisation(claimed: str) -> None:
    assert check(verifier(), proof(htu=claimed)).htu == claimed


# -- refused proofs ------------------------------------------------------------------------------


def test_a_request_without_a_proof_is_refused() -> None:
    assert refused(verifier()) == "missing"


def test_two_dpop_headers_are_refused() -> None:
    assert refused(verifier(), proof(), proof()) == "multiple"


@pytest.mark.parametrize(
    "value",
    ["", "not-a-jwt", "a.b.c", "x" * 9000, "a.b.c.d.e", "é.b.c"],
)
def test_a_malformed_proof_is_refused(value: str) -> None:
    assert refused(verifier(), value) == "malformed"


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", None])
def test_a_proof_not_typed_dpop_jwt_is_refused(typ: Any) -> None:
    header = {} if typ is None else {"typ": typ}
    drop = ("typ",) if typ is None else ()
    assert refused(verifier(), proof(header=header, drop=drop)) == "typ"
    assert refused(verifier(), forged({"typ": 7})) == "typ"


def test_an_unsigned_proof_is_refused() -> None:
    key = ECKey.generate_key("P-256")
    head = b64(json.dumps({"typ": "dpop+jwt", "alg": "none", "jwk": key.as_dict()}).encode())
    body = b64(json.dumps({"jti": "x", "htm": "GET", "htu": URL, "iat": int(NOW)}).encode())
    assert refused(verifier(), f"{head}.{body}.") == "alg"


def test_an_hmac_proof_is_refused() -> None:
    secret = OctKey.generate_key(256)
    assert refused(verifier(), proof(secret, alg="HS256", jwk={"kty": "oct"})) == "alg"


def test_an_algorithm_outside_the_policy_is_refused() -> None:
    key = ECKey.generate_key("P-384")
    assert refused(verifier(algorithms=("ES256",)), proof(key, alg="ES384")) == "alg"


def test_a_private_key_in_jwk_is_refused() -> None:
    key = ECKey.generate_key("P-256")
    assert refused(verifier(), proof(key, jwk=key.as_dict(private=True))) == "private_key"


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {f"m{i}": i for i in range(40)},
    ],
)
def test_a_jwk_that_is_no_usable_public_key_is_refused(jwk: Any) -> None:
    assert refused(verifier(), proof(jwk=jwk)) == "jwk"


@pytest.mark.parametrize("jwk", ["not-an-object", None, ["kty"]])
def test_a_jwk_header_that_is_no_object_is_refused(jwk: Any) -> None:
    assert refused(verifier(), forged({"jwk": jwk})) == "jwk"


def test_a_short_rsa_key_is_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = RSAKey.generate_key(1024)
    assert refused(verifier(), proof(short, alg="RS256")) == "jwk"


def test_a_proof_signed_by_another_key_than_its_jwk_is_refused() -> None:
    other = ECKey.generate_key("P-256").as_dict(private=False)
    assert refused(verifier(), proof(jwk=other)) == "signature"


@pytest.mark.parametrize("jti", [None, "", 12, "j" * 256])
def test_a_missing_or_oversized_jti_is_refused(jti: Any) -> None:
    made = proof(drop=("jti",)) if jti is None else proof(jti=jti)
    assert refused(verifier(), made) == "jti"


@pytest.mark.parametrize(("htm", "method"), [("POST", "GET"), ("get", "GET"), (None, "GET")])
def test_a_proof_for_another_method_is_refused(htm: Any, method: str) -> None:
    made = proof(drop=("htm",)) if htm is None else proof(htm=htm)
    assert refused(verifier(), made, method=method) == "htm"


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/orders/1",
        "https://evil.example.com/orders",
        "http://api.example.com/orders",
        "https://api.example.com:8443/orders",
        "https://user@api.example.com/orders",
        "ftp://api.example.com/orders",
        "/orders",
        "h" * 5000,
        7,
    ],
)
def test_a_proof_for_another_uri_is_refused(htu: Any) -> None:
    assert refused(verifier(), proof(htu=htu)) == "htu"


@pytest.mark.parametrize(
    ("iat", "why"),
    [(NOW - 61, "too old"), (NOW + 6, "in the future"), ("1800000000", "a string"), (None, "none")],
)
def test_a_proof_outside_the_iat_window_is_refused(iat: Any, why: str) -> None:
    made = proof(drop=("iat",)) if iat is None else proof(iat=iat)
    assert refused(verifier(), made) == "iat", why


def test_the_iat_window_edges_are_accepted() -> None:
    v = verifier(max_age=60, clock_skew=5)
    check(v, proof(iat=int(NOW) - 60))
    check(v, proof(iat=int(NOW) + 5))


@pytest.mark.parametrize("ath", [None, access_token_hash("another.token.value"), 5])
def test_a_proof_for_another_token_is_refused(ath: Any) -> None:
    made = proof(drop=("ath",)) if ath is None else proof(ath=ath)
    assert refused(verifier(), made) == "ath"


def test_a_proof_with_too_many_claims_is_refused() -> None:
    padding = {f"x{i}": i for i in range(40)}
    assert refused(verifier(), proof(**padding)) == "malformed"


# -- confirmation: binding and replay ------------------------------------------------------------


async def test_a_token_bound_to_another_key_is_refused_and_its_jti_not_recorded() -> None:
    store = MemoryStore()
    v = verifier(store)
    checked = check(v, proof())

    with pytest.raises(DPoPProofError) as caught:
        await v.confirm(checked, ECKey.generate_key("P-256").thumbprint())

    assert caught.value.reason == "jkt"
    assert len(store) == 0


async def test_an_unbound_token_with_a_proof_is_refused() -> None:
    v = verifier()
    with pytest.raises(DPoPProofError) as caught:
        await v.confirm(check(v, proof()), None)
    assert caught.value.reason == "unbound"


async def test_a_replayed_proof_is_refused() -> None:
    key = ECKey.generate_key("P-256")
    made = proof(key)
    v = verifier()
    await v.confirm(check(v, made), key.thumbprint())

    with pytest.raises(DPoPProofError) as caught:
        await v.confirm(check(v, made), key.thumbprint())

    assert caught.value.reason == "replay"


async def test_a_proof_replayed_to_another_worker_sharing_the_store_is_refused() -> None:
    key = ECKey.generate_key("P-256")
    made = proof(key)
    shared = MemoryStore()
    first, second = verifier(shared), verifier(shared)
    await first.confirm(check(first, made), key.thumbprint())

    with pytest.raises(DPoPProofError) as caught:
        await second.confirm(check(second, made), key.thumbprint())

    assert caught.value.reason == "replay"


async def test_the_jti_is_remembered_for_the_window_only_and_under_a_hashed_key() -> None:
    recorded: list[tuple[str, int | None]] = []

    class Recording(MemoryStore):
        async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
            recorded.append((key, expires_in))
            return await super().add(key, value, expires_in)

    key = ECKey.generate_key("P-256")
    v = verifier(Recording(), max_age=60)
    jti = "j" * 255
    await v.confirm(check(v, proof(key, jti=jti, iat=int(NOW) - 20)), key.thumbprint())

    [(stored, expires_in)] = recorded
    assert jti not in stored
    assert len(stored) < 64
    assert expires_in == 41


async def test_a_store_failure_refuses_the_request() -> None:
    class Down(MemoryStore):
        async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
            raise StoreError("the store failed to add: ConnectionError")

    key = ECKey.generate_key("P-256")
    v = verifier(Down())
    with pytest.raises(StoreError):
        await v.confirm(check(v, proof(key)), key.thumbprint())


# -- server nonces -------------------------------------------------------------------------------


def test_a_proof_without_the_required_nonce_gets_one() -> None:
    v = verifier(nonce_secret=SECRET)
    with pytest.raises(DPoPProofError) as caught:
        check(v, proof())

    assert caught.value.reason == "use_dpop_nonce"
    assert caught.value.nonce == v.nonce()
    assert caught.value.nonce is not None
    assert len(caught.value.nonce) >= 32


def test_the_current_and_the_previous_nonce_are_accepted_an_older_one_is_not() -> None:
    issued = verifier(nonce_secret=SECRET, nonce_lifetime=300).nonce()
    assert issued is not None

    assert check(verifier(nonce_secret=SECRET), proof(nonce=issued)).nonce == issued
    later = verifier(clock=NOW + 300, nonce_secret=SECRET)
    check(later, proof(nonce=issued, iat=int(NOW) + 300))
    much_later = verifier(clock=NOW + 600, nonce_secret=SECRET)
    with pytest.raises(DPoPProofError) as caught:
        check(much_later, proof(nonce=issued, iat=int(NOW) + 600))
    assert caught.value.reason == "use_dpop_nonce"
    assert caught.value.nonce == much_later.nonce() != issued


def test_nonces_are_shared_by_workers_with_the_same_secret_only() -> None:
    issued = verifier(nonce_secret=SECRET).nonce()

    check(verifier(nonce_secret=SECRET), proof(nonce=issued))
    with pytest.raises(DPoPProofError):
        check(verifier(nonce_secret=b"o" * 32), proof(nonce=issued))


def test_without_nonces_none_is_issued() -> None:
    assert verifier().nonce() is None


# -- the request URI and the policy --------------------------------------------------------------


def test_the_expected_uri_is_the_base_url_when_set_never_forwarded_headers() -> None:
    behind_proxy = verifier(base_url="https://api.example.com/v1/")

    assert behind_proxy.expected_htu("http", "10.0.0.7:8000", b"/orders") == (
        "https://api.example.com/v1/orders"
    )
    assert verifier().expected_htu("http", "127.0.0.1:8000", b"/orders") == (
        "http://127.0.0.1:8000/orders"
    )
    with pytest.raises(DPoPProofError) as caught:
        verifier().expected_htu("https", None, b"/orders")
    assert caught.value.reason == "htu"


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("HTTP://Example.COM:80", "http://example.com/"),
        ("https://example.com:8443/a/b/../c/./d/", "https://example.com:8443/a/c/d/"),
        ("https://example.com/%7euser/%2f%41", "https://example.com/~user/%2FA"),
        ("https://[::1]:443/x?y#z", "https://[::1]/x"),
        ("https://example.com:99999/", None),
        ("https://a@example.com/", None),
        ("mailto:a@example.com", None),
        ("https:///path", None),
        ("https://exämple.com/", None),
    ],
)
def test_normalize_htu(uri: str, normal: str | None) -> None:
    assert normalize_htu(uri) == normal


@pytest.mark.parametrize(
    "settings",
    [
        {"algorithms": ("HS256",)},
        {"algorithms": ("none",)},
        {"algorithms": ()},
        {"max_age": 0},
        {"max_age": 3600},
        {"clock_skew": -1},
        {"nonce_secret": b"short"},
        {"nonce_lifetime": 1},
        {"base_url": "api.example.com"},
        {"base_url": "https://api.example.com/?x=1"},
    ],
)
def test_an_unsafe_policy_is_refused_at_construction(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="DPoPPolicy"):
        DPoPPolicy(**settings)


# -- the access token's binding (cnf.jkt) --------------------------------------------------------

POLICY = AccessTokenPolicy(
    issuers=("https://op.example.com",), jwks_uri="https://op.example.com/jwks", audience=(URL,)
)


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "https://op.example.com", "sub": "alice", "aud": URL, "iat": now}
    return base | {"exp": now + 60} | extra


def test_a_bound_token_names_its_key_and_an_unbound_one_none() -> None:
    jkt = b64(hashlib.sha256(b"key").digest())

    assert check_access_token_claims(claims(cnf={"jkt": jkt}), POLICY, time.time()).jkt == jkt
    assert check_access_token_claims(claims(), POLICY, time.time()).jkt is None


@pytest.mark.parametrize(
    "cnf", [{"x5t#S256": "abc"}, {"jkt": 5}, {"jkt": ""}, {"jkt": "k" * 129}, "jkt", []]
)
def test_a_token_bound_by_anything_but_a_jkt_is_refused(cnf: Any) -> None:
    with pytest.raises(Rejected) as caught:
        check_access_token_claims(claims(cnf=cnf), POLICY, time.time())
    assert caught.value.reason == "cnf"
