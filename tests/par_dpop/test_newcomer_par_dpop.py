"""What a newcomer meets around docs/howto/par-dpop.md: an identity mapper
(``ProviderHooks.identity``) that reads more JSON through ``source.fetch_json`` in a DPoP login.

The token is DPoP-bound (``cnf.jkt``), so it must travel as ``Authorization: DPoP`` with a fresh
proof carrying ``ath``; sent as ``Bearer`` a resource server refuses it (RFC 9449 §7.1, §7.2:
https://www.rfc-editor.org/rfc/rfc9449#section-7.2).
"""

from __future__ import annotations

from typing import Any

import pytest

from rpkit.dpop import access_token_hash
from rpkit.hooks import IdentityFields, IdentitySource, ProviderHooks
from rpkit.testing import FakeOP
from tests.par_dpop.conftest import party, proof_of

pytestmark = pytest.mark.par_dpop


def _reading_mapper(url: str, seen: list[Any]) -> ProviderHooks:
    async def identity(source: IdentitySource) -> IdentityFields:
        document = await source.fetch_json(url)
        seen.append(document)
        return IdentityFields(subject=str(source.claims["sub"]))

    return ProviderHooks(identity=identity)


async def test_an_identity_mapper_fetches_json_with_the_dpop_scheme_and_a_proof():
    op = FakeOP()
    seen: list[Any] = []
    relying = party(op, dpop=True, hooks=_reading_mapper(op.endpoints["userinfo"], seen))

    result = await relying.login()

    # UserInfo, then the mapper's own read of the same endpoint.
    first, mapper = op.oracle.of("userinfo")
    token = result.tokens.access_token
    assert mapper.headers["authorization"] == f"DPoP {token}"
    proof = proof_of(mapper)
    assert proof.jkt == result.dpop_key.thumbprint  # type: ignore[union-attr]
    assert proof.claims["htm"] == "GET"
    assert proof.claims["htu"] == op.endpoints["userinfo"]
    assert proof.claims["ath"] == access_token_hash(token)
    assert proof.claims["jti"] != proof_of(first).claims["jti"]
    assert seen == [dict(result.userinfo or {})]
    assert seen[0]["email"] == "alice@example.com"


async def test_the_mapper_fetch_answers_a_nonce_challenge_once():
    op = FakeOP()
    seen: list[Any] = []
    relying = party(
        op,
        dpop=True,
        fetch_userinfo=False,
        hooks=_reading_mapper(op.endpoints["userinfo"], seen),
    )

    with op.misbehaving(dpop_nonce="required"):
        await relying.login()

    # The nonce learnt at the token endpoint (same origin) goes with the mapper's first read.
    [mapper] = op.oracle.of("userinfo")
    assert proof_of(mapper).claims["nonce"] == op.dpop_nonce
    assert len(seen) == 1
    assert seen[0]["sub"] == "alice"


async def test_without_dpop_the_mapper_fetch_stays_bearer():
    op = FakeOP()
    seen: list[Any] = []
    relying = party(op, hooks=_reading_mapper(op.endpoints["userinfo"], seen))

    result = await relying.login()

    mapper = op.oracle.of("userinfo")[-1]
    assert mapper.headers["authorization"] == f"Bearer {result.tokens.access_token}"
    assert "dpop" not in mapper.headers
    assert seen[0]["sub"] == "alice"
