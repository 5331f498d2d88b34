"""The first-sight shortcuts of access-token validation take nothing off the checks: a foreign
issuer is refused before any key lookup, and a remembered JWS header is read-only, bounded and
never stands in for a signature."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rpkit import _jwt
from rpkit.access_token import AccessTokenPolicy
from rpkit.errors import AccessTokenValidationError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, Tamper

API = "https://api.rpkit.test"


def policy_for(op: FakeOP) -> AccessTokenPolicy:
    return AccessTokenPolicy(issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(API,))


def mint(op: FakeOP, **sign: Any) -> str:
    return op.minter.mint_access_token(
        subject="alice", audience=API, client_id=DEFAULT_CLIENT_ID, scope="orders:read", **sign
    )


async def refusal(validator: TokenValidator, token: str, policy: AccessTokenPolicy) -> str:
    with pytest.raises(AccessTokenValidationError) as caught:
        await validator.validate_access_token(token, policy)
    return caught.value.reason


@pytest.fixture(autouse=True)
def no_remembered_headers() -> None:
    _jwt._HEADERS.clear()


async def test_a_foreign_issuer_is_refused_before_any_key_is_fetched(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient
) -> None:
    stranger = FakeOP("https://stranger.rpkit.test")
    # The stranger's kid is unknown to our key set: looking it up would fetch our JWKS.
    token = mint(stranger)
    for cache_size in (0, 100):
        validator = TokenValidator(JWKSCache(fake_op_http), access_token_cache_size=cache_size)
        assert await refusal(validator, token, policy_for(fake_op)) == "iss"

    assert fake_op.oracle.count("jwks") == 0


async def test_a_remembered_header_is_shared_read_only_and_checked_every_time(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient
) -> None:
    validator = TokenValidator(JWKSCache(fake_op_http), access_token_cache_size=0)
    policy = policy_for(fake_op)
    first, second = mint(fake_op), mint(fake_op)
    await validator.validate_access_token(first, policy)

    one, other = _jwt.parse_compact(first).header, _jwt.parse_compact(second).header
    assert one is other  # parsed once for every token of this issuer and key
    with pytest.raises(TypeError):
        one["alg"] = "none"  # type: ignore[index]
    # The same header over a bad signature: the header was remembered, the signature is not.
    assert await refusal(validator, mint(fake_op, tamper=Tamper.BAD_SIGNATURE), policy) == (
        "signature"
    )
    assert (await validator.validate_access_token(second, policy)).sub == "alice"


def test_a_refused_header_is_never_remembered(fake_op: FakeOP) -> None:
    critical = fake_op.minter.sign({"sub": "alice"}, header={"crit": ["exp"]})
    for _ in range(2):
        with pytest.raises(_jwt.Rejected, match="critical"):
            _jwt.parse_compact(critical)

    assert _jwt._HEADERS == {}


def test_distinct_headers_sent_in_a_flood_stay_bounded(fake_op: FakeOP) -> None:
    for number in range(3 * _jwt._MAX_REMEMBERED_HEADERS):
        _jwt.parse_compact(fake_op.minter.sign({"sub": "a"}, header={"kid": f"k{number}"}))
    long_kid = "k" * 2 * _jwt._MAX_REMEMBERED_HEADER
    long_header = _jwt.parse_compact(
        fake_op.minter.sign({"sub": "a"}, header={"kid": long_kid})
    ).header

    assert 0 < len(_jwt._HEADERS) <= _jwt._MAX_REMEMBERED_HEADERS
    assert all(len(head) <= _jwt._MAX_REMEMBERED_HEADER for head in _jwt._HEADERS)
    assert long_header["kid"] == long_kid  # parsed as usual, just not remembered
