"""Checklist group K (rows 38–44): which published key verifies an ID token, and how often
rpkit asks the OP's ``jwks_uri``, end to end through :class:`~rpkit.client.RelyingParty`.

Refusals are the harness's REJECT triple plus the failed check's ``reason``; the JWKS oracle
count shows that refusals never turn into a stream of key-set fetches, and that rotation costs
exactly one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rpkit.client import LoginResult, RelyingParty
from rpkit.errors import IDTokenValidationError
from rpkit.jwks import JWKSCache
from rpkit.store import MemoryStore
from rpkit.testing import Canned, FakeOP, FakeOPTransport, JWKSLayout, Tamper
from tests.checklist.conftest import (
    Harness,
    accepts_id_token,
    jose_header,
    provider_config,
    rejects_id_token,
)


def jwks_fetches(fake_op: FakeOP) -> int:
    return fake_op.oracle.count("jwks")


class SteppingClock:
    """A monotonic clock the test can move forward (the JWKS cache's TTL clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def harness_on(
    fake_op: FakeOP, http: httpx.AsyncClient, *, jwks_clock: SteppingClock | None = None
) -> Harness:
    """A harness whose RelyingParty uses ``http`` (and a JWKS cache on ``jwks_clock``)."""
    harness = Harness(fake_op, http, MemoryStore(), provider_config(fake_op))
    if jwks_clock is not None:
        jwks = JWKSCache(http, clock=jwks_clock)
        harness.rp = RelyingParty([harness.config], http=http, store=harness.store, jwks=jwks)
    return harness


async def warm_up(harness: Harness) -> LoginResult:
    """One honest login, so the RP holds the current key set."""
    result = await accepts_id_token(harness)
    assert jwks_fetches(harness.op) == 1
    return result


# -- row 38 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(38)
@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
async def test_token_without_kid_is_verified_by_the_single_key_that_fits_its_algorithm(
    harness: Harness, fake_op: FakeOP, alg: str
):
    harness.reconfigure(id_token_signed_response_alg=alg)
    fake_op.misbehave.id_token_alg = alg
    fake_op.misbehave.jwks_layout = JWKSLayout.SINGLE_NO_KID

    result = await accepts_id_token(harness)

    header = jose_header(result.tokens.id_token or "")
    assert header["alg"] == alg
    assert "kid" not in header
    assert jwks_fetches(fake_op) == 1


# -- row 39 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(39)
@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_token_without_kid_is_rejected_when_several_keys_fit_and_causes_no_refetch(
    harness: Harness, fake_op: FakeOP, alg: str
):
    harness.reconfigure(id_token_signed_response_alg=alg)
    fake_op.misbehave.id_token_alg = alg
    fake_op.misbehave.jwks_layout = JWKSLayout.MULTIPLE_NO_KID
    metadata = await harness.rp.metadata(harness.config.id)
    await harness.rp.jwks.warm(metadata.jwks_uri)
    assert jwks_fetches(fake_op) == 1

    for _ in range(2):
        await rejects_id_token(harness, "key")

    assert jwks_fetches(fake_op) == 1, "an ambiguous key caused a JWKS refetch"


# -- row 40 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(40)
async def test_key_rotation_between_two_logins_costs_exactly_one_jwks_fetch(
    harness: Harness, fake_op: FakeOP
):
    first = await warm_up(harness)

    fake_op.keys.rotate()
    second = await accepts_id_token(harness)

    kids = [jose_header(r.tokens.id_token or "")["kid"] for r in (first, second)]
    assert kids[0] != kids[1]
    assert jwks_fetches(fake_op) == 2


@pytest.mark.checklist(40)
async def test_key_rotation_just_before_signing_with_a_warm_cache_costs_exactly_one_refetch(
    harness: Harness, fake_op: FakeOP
):
    await warm_up(harness)
    fake_op.misbehave.rotate_keys_before_signing = True

    result = await accepts_id_token(harness)

    assert fake_op.keys.generation == 1
    assert jose_header(result.tokens.id_token or "")["kid"] == fake_op.keys.kid("RS256")
    assert jwks_fetches(fake_op) == 2


# -- row 41 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(41)
async def test_twenty_random_kids_within_a_minute_are_rejected_with_at_most_one_refetch(
    harness: Harness, fake_op: FakeOP
):
    await warm_up(harness)
    fake_op.misbehave.id_token_tamper = Tamper.RANDOM_KID
    began = time.monotonic()

    for _ in range(20):
        await rejects_id_token(harness, "key")

    assert time.monotonic() - began < 60
    assert jwks_fetches(fake_op) - 1 <= 1
    assert harness.counts()["token"] == 21


@pytest.mark.checklist(41)
async def test_twenty_concurrent_random_kids_are_rejected_and_share_at_most_one_refetch(
    harness: Harness, fake_op: FakeOP
):
    await warm_up(harness)
    logins = [await harness.start() for _ in range(20)]
    fake_op.misbehave.id_token_tamper = Tamper.RANDOM_KID
    userinfo_before = harness.counts()["userinfo"]

    outcomes = await asyncio.gather(
        *(harness.finish(callback) for _, callback in logins), return_exceptions=True
    )

    assert all(isinstance(o, IDTokenValidationError) and o.reason == "key" for o in outcomes), [
        repr(o) for o in outcomes
    ]
    assert harness.counts()["userinfo"] == userinfo_before
    for request, _ in logins:
        assert not await harness.transaction_exists(request.state)
    assert jwks_fetches(fake_op) - 1 <= 1


# -- row 42 ---------------------------------------------------------------------------------------
OUTAGES = [
    pytest.param({"respond": {"jwks": Canned.error(500)}}, id="http-500"),
    pytest.param({"latency": {"jwks": 5.0}}, id="timeout"),
    pytest.param({"respond": {"jwks": Canned.json({"keys": []})}}, id="empty-set"),
]


@pytest.fixture
async def short_timeout_http(fake_op: FakeOP) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a 0.2 s read timeout, so that the ``latency`` knob is a timeout."""
    async with httpx.AsyncClient(transport=fake_op.transport(), timeout=0.2) as http:
        yield http


@pytest.mark.checklist(42)
@pytest.mark.parametrize("outage", OUTAGES)
async def test_jwks_outage_after_warm_up_keeps_cached_keys_and_refuses_unknown_ones(
    fake_op: FakeOP, short_timeout_http: httpx.AsyncClient, outage: dict[str, Any]
):
    clock = SteppingClock()
    harness = harness_on(fake_op, short_timeout_http, jwks_clock=clock)
    await warm_up(harness)
    for name, value in outage.items():
        setattr(fake_op.misbehave, name, value)

    # An unknown kid forces a refetch, which meets the outage: refused, cache kept.
    fake_op.misbehave.id_token_tamper = Tamper.UNKNOWN_KEY
    await rejects_id_token(harness, "key")
    assert jwks_fetches(fake_op) == 2, "the outage was never reached"
    fake_op.misbehave.id_token_tamper = None
    await accepts_id_token(harness)

    # Past the cache's TTL the refresh meets the outage too: the known kid still verifies.
    clock.offset += fake_op.jwks_max_age + 1
    await accepts_id_token(harness)
    assert jwks_fetches(fake_op) == 3, "the expired set was not refreshed"

    fake_op.misbehave.id_token_tamper = Tamper.UNKNOWN_KEY
    await rejects_id_token(harness, "key")


# -- row 43 ---------------------------------------------------------------------------------------
@pytest.mark.checklist(43)
@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"use": "enc"}, id="use-enc"),
        pytest.param({"use": None, "key_ops": ["encrypt"]}, id="key_ops-encrypt"),
        pytest.param({"alg": "PS256"}, id="alg-PS256-on-RS256-token"),
    ],
)
async def test_kid_naming_a_key_not_meant_for_this_signature_is_rejected(
    harness: Harness, fake_op: FakeOP, params: dict[str, Any]
):
    fake_op.misbehave.jwks_key_params = {"RS256": params}

    await rejects_id_token(harness, "key")


@pytest.mark.checklist(43)
async def test_key_of_an_unknown_type_in_the_set_is_ignored(harness: Harness, fake_op: FakeOP):
    akp = {"kty": "AKP", "alg": "ML-DSA-44", "kid": "pq-1", "pub": "AAAA"}
    fake_op.misbehave.jwks_extra_keys = [akp]

    await accepts_id_token(harness)

    assert jwks_fetches(fake_op) == 1


# -- row 44 ---------------------------------------------------------------------------------------
class RecordingTransport(httpx.AsyncBaseTransport):
    """Where requests to any origin but the OP's go: recorded, then refused."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise httpx.ConnectError(f"unexpected request to {request.url}", request=request)


@pytest.mark.checklist(44)
@pytest.mark.parametrize(
    "tamper",
    [Tamper.HEADER_JWK, Tamper.HEADER_JKU, Tamper.HEADER_X5U, Tamper.HEADER_X5C],
    ids=["jwk", "jku", "x5u", "x5c"],
)
async def test_key_announced_in_the_token_header_is_never_used_nor_fetched(
    fake_op: FakeOP, tamper: Tamper
):
    attacker = FakeOP("https://attacker.example")
    elsewhere = RecordingTransport()
    transport = FakeOPTransport(fake_op, attacker, fallback=elsewhere)
    fake_op.misbehave.id_token_tamper = tamper

    async with httpx.AsyncClient(transport=transport, timeout=5.0) as http:
        await rejects_id_token(harness_on(fake_op, http), "signature")

    assert attacker.oracle.count() == 0
    assert elsewhere.requests == []
    assert all(r.endpoint is not None for r in fake_op.oracle), "a guessed path was requested"
    assert jwks_fetches(fake_op) == 1
