"""``KeyRing.export()`` / ``restore()``: a fake restarted with its saved keys verifies the tokens
it issued before the restart, with the same ``kid`` values and JWKS."""

from __future__ import annotations

import json

import pytest

from rpkit.testing import FakeClient, FakeOP, KeyRing


def test_a_restored_ring_publishes_the_same_jwks_and_finds_retired_keys():
    ring = KeyRing()
    ring.rotate()
    saved = json.loads(json.dumps(ring.export()))  # survives a JSON round trip (Redis, a file)

    again = KeyRing()
    again.restore(saved)

    assert again.jwks() == ring.jwks()
    assert again.generation == 1
    retired_kid = ring.retired[0].kid
    assert again.find(retired_kid, "RS256") is not None


async def test_a_restarted_fake_accepts_its_earlier_id_token_as_logout_hint():
    client = FakeClient(post_logout_redirect_uris=("https://app.rpkit.test/bye",))
    before = FakeOP(clients=[client])
    id_token = before.minter.mint_id_token(audience=client.client_id, subject="alice")

    after = FakeOP(clients=[client])
    assert after.verify_own_token(id_token) is None  # fresh keys: today's restart problem
    after.keys.restore(before.keys.export())

    assert after.verify_own_token(id_token) is not None
    assert after.keys.kid("RS256") == before.keys.kid("RS256")


@pytest.mark.parametrize(
    "saved",
    [
        {},
        {"active": {"RS256": {"kty": "oct", "k": "c2VjcmV0"}}},
        {"active": {"RS256": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}},
    ],
    ids=["empty", "symmetric", "public-only"],
)
def test_restore_refuses_what_is_not_an_export(saved):
    ring = KeyRing()
    kids = {alg: ring.kid(alg) for alg in ring.active}

    with pytest.raises(ValueError, match=r"export|private|sign"):
        ring.restore(saved)

    assert {alg: ring.kid(alg) for alg in ring.active} == kids  # unchanged


def test_restore_refuses_keys_for_other_algorithms():
    ring = KeyRing()
    saved = ring.export()
    del saved["active"]["EdDSA"]

    with pytest.raises(ValueError, match="sign"):
        KeyRing().restore(saved)
