"""The verified-token cache of bearer APIs: a token's signature is verified once, and nothing
the cache keeps outlives the token's ``exp``, its signing key, or the policy that accepted it.

Signature verifications are counted at the one place rpkit verifies an asymmetric signature
(``rpkit._jwt.Compact.verify``), so "served from the cache" means "no verification ran".
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import msgspec
import pytest

from rpkit import _jwt
from rpkit.access_cache import VerifiedTokenCache
from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.errors import AccessTokenValidationError, ConfigurationError
from rpkit.id_token import TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.litestar.bearer import OIDCBearerAuth
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, Tamper

API = "https://api.rpkit.test"


class Clock:
    """Wall-clock seconds for the validator, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingVerifier:
    """``Compact.verify``, counting the signatures it checks."""

    def __init__(self, verify: Any) -> None:
        self.verify = verify
        self.calls = 0

    def __get__(self, compact: _jwt.Compact, owner: Any) -> Any:
        def verify(key: Any) -> None:
            self.calls += 1
            self.verify(compact, key)

        return verify


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> CountingVerifier:
    counting = CountingVerifier(_jwt.Compact.verify)
    monkeypatch.setattr(_jwt.Compact, "verify", counting)
    return counting


@pytest.fixture
def clock(fake_op: FakeOP) -> Clock:
    return Clock(float(fake_op.now()))


@pytest.fixture
def jwks(fake_op_http: httpx.AsyncClient) -> JWKSCache:
    return JWKSCache(fake_op_http)


@pytest.fixture
def validator(jwks: JWKSCache, clock: Clock) -> TokenValidator:
    return TokenValidator(jwks, clock=clock)


def policy_for(op: FakeOP, **changes: Any) -> AccessTokenPolicy:
    settings: dict[str, Any] = {
        "issuers": (op.issuer,),
        "jwks_uri": op.endpoints["jwks"],
        "audience": (API,),
    }
    return AccessTokenPolicy(**(settings | changes))


def mint(
    op: FakeOP, *, lifetime: int = 3600, claims: dict[str, Any] | None = None, **sign: Any
) -> str:
    return op.minter.mint_access_token(
        subject="alice",
        audience=API,
        client_id=DEFAULT_CLIENT_ID,
        scope="orders:read profile",
        lifetime=lifetime,
        claims=claims,
        **sign,
    )


def cache_of(validator: TokenValidator) -> VerifiedTokenCache:
    cache = validator.access_token_cache
    assert cache is not None
    return cache


async def reason(validator: TokenValidator, token: str, policy: AccessTokenPolicy) -> str:
    with pytest.raises(AccessTokenValidationError) as refused:
        await validator.validate_access_token(token, policy)
    return refused.value.reason


# -- the cache works -----------------------------------------------------------------------------


async def test_a_token_seen_again_is_not_verified_again(
    fake_op: FakeOP, validator: TokenValidator, verifications: CountingVerifier
):
    policy, token = policy_for(fake_op), mint(fake_op)

    first = await validator.validate_access_token(token, policy)
    again = [await validator.validate_access_token(token, policy) for _ in range(5)]

    assert verifications.calls == 1
    assert all(access is first for access in again)
    assert first.sub == "alice"
    assert len(cache_of(validator)) == 1


def test_the_cache_is_on_by_default_and_bounded():
    validator = TokenValidator(JWKSCache(httpx.AsyncClient()))

    assert cache_of(validator).max_entries == 10_000


# -- expiry --------------------------------------------------------------------------------------


async def test_an_entry_is_not_used_at_or_after_exp_and_the_token_then_expires(
    fake_op: FakeOP, validator: TokenValidator, clock: Clock, verifications: CountingVerifier
):
    policy, token = policy_for(fake_op, leeway=30), mint(fake_op, lifetime=120)
    accepted = await validator.validate_access_token(token, policy)

    clock.now = accepted.exp  # at exp, within the leeway: verified again, still accepted
    await validator.validate_access_token(token, policy)
    assert verifications.calls == 2
    assert len(cache_of(validator)) == 0  # an entry is never kept at or past exp

    clock.now = accepted.exp + 30  # past the leeway: refused, as without a cache
    assert await reason(validator, token, policy) == "exp"
    assert verifications.calls == 3
    assert len(cache_of(validator)) == 0


async def test_a_cached_token_is_refused_once_the_clock_goes_back_before_its_nbf(
    fake_op: FakeOP, validator: TokenValidator, clock: Clock, verifications: CountingVerifier
):
    policy = policy_for(fake_op, leeway=0)
    token = mint(fake_op, claims={"nbf": int(clock.now), "iat": int(clock.now) - 100})
    await validator.validate_access_token(token, policy)

    clock.now -= 10

    assert await reason(validator, token, policy) == "nbf"
    assert verifications.calls == 2


async def test_a_token_not_yet_valid_is_refused_and_never_cached(
    fake_op: FakeOP, validator: TokenValidator, clock: Clock, verifications: CountingVerifier
):
    policy = policy_for(fake_op, leeway=0)
    token = mint(fake_op, claims={"nbf": int(clock.now) + 300})

    assert await reason(validator, token, policy) == "nbf"
    assert await reason(validator, token, policy) == "nbf"
    assert verifications.calls == 2
    assert len(cache_of(validator)) == 0


# -- key removal ---------------------------------------------------------------------------------


async def test_an_entry_dies_when_its_signing_key_leaves_the_jwks(
    fake_op: FakeOP, validator: TokenValidator, jwks: JWKSCache, verifications: CountingVerifier
):
    policy, old = policy_for(fake_op), mint(fake_op)
    await validator.validate_access_token(old, policy)
    fake_op.keys.rotate()  # the key that signed ``old`` is no longer published
    new = mint(fake_op)

    await validator.validate_access_token(new, policy)  # its unknown kid refetches the JWKS

    assert jwks.fetches(policy.jwks_uri) == 2
    assert await reason(validator, old, policy) == "key"
    assert validator.cached_access_token(old, policy) is None
    assert validator.cached_access_token(new, policy) is not None


async def test_an_entry_is_not_used_once_its_key_set_expired(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, verifications: CountingVerifier
):
    monotonic = Clock(1000.0)
    jwks = JWKSCache(fake_op_http, default_ttl=300, min_ttl=60, clock=monotonic)
    validator = TokenValidator(jwks)
    fake_op.jwks_max_age = 300
    policy, token = policy_for(fake_op), mint(fake_op)
    await validator.validate_access_token(token, policy)

    monotonic.now += 301  # the key set is stale: the next use refetches it and verifies again
    await validator.validate_access_token(token, policy)
    await validator.validate_access_token(token, policy)

    assert jwks.fetches(policy.jwks_uri) == 2
    assert verifications.calls == 2


async def test_holds_tells_a_key_of_the_fresh_set_from_any_other(fake_op: FakeOP, jwks: JWKSCache):
    uri = fake_op.endpoints["jwks"]
    key = await _key(jwks, fake_op)

    assert jwks.holds(uri, key)
    jwks.invalidate(uri)
    assert not jwks.holds(uri, key)
    assert not jwks.holds("https://elsewhere.test/keys", key)


async def _key(jwks: JWKSCache, op: FakeOP) -> Any:
    header = _jwt.parse_compact(mint(op)).header
    return await jwks.key_for(op.endpoints["jwks"], header, "RS256")


# -- forged tokens -------------------------------------------------------------------------------


async def test_a_flood_of_distinct_forged_tokens_leaves_the_cache_empty(
    fake_op: FakeOP, validator: TokenValidator, verifications: CountingVerifier
):
    policy = policy_for(fake_op)
    forged = [mint(fake_op, tamper=Tamper.BAD_SIGNATURE) for _ in range(150)]

    reasons = {await reason(validator, token, policy) for token in forged}

    assert reasons == {"signature"}
    assert len(cache_of(validator)) == 0
    assert verifications.calls == len(forged)


async def test_a_refused_token_is_refused_again_and_verified_again(
    fake_op: FakeOP, validator: TokenValidator, verifications: CountingVerifier
):
    policy, token = policy_for(fake_op), mint(fake_op, tamper=Tamper.BAD_SIGNATURE)

    assert await reason(validator, token, policy) == "signature"
    assert await reason(validator, token, policy) == "signature"
    assert verifications.calls == 2


async def test_a_cached_tokens_payload_under_another_signature_is_verified_and_refused(
    fake_op: FakeOP, validator: TokenValidator, verifications: CountingVerifier
):
    policy, token = policy_for(fake_op), mint(fake_op)
    await validator.validate_access_token(token, policy)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"

    assert await reason(validator, forged, policy) == "signature"
    assert verifications.calls == 2


# -- the bound -----------------------------------------------------------------------------------


async def test_the_least_recently_used_entry_goes_first_at_the_bound(
    fake_op: FakeOP, jwks: JWKSCache, clock: Clock, verifications: CountingVerifier
):
    validator = TokenValidator(jwks, clock=clock, access_token_cache_size=3)
    policy = policy_for(fake_op)
    first, second, third, fourth = (mint(fake_op) for _ in range(4))
    for token in (first, second, third):
        await validator.validate_access_token(token, policy)
    await validator.validate_access_token(first, policy)  # used again: now the most recent

    await validator.validate_access_token(fourth, policy)  # evicts ``second``

    assert len(cache_of(validator)) == 3
    assert validator.cached_access_token(second, policy) is None
    assert all(validator.cached_access_token(t, policy) for t in (first, third, fourth))
    assert verifications.calls == 4


def test_a_cache_bound_must_be_positive(jwks: JWKSCache):
    for bad in (-1, True, 2.5):
        with pytest.raises(ConfigurationError):
            TokenValidator(jwks, access_token_cache_size=bad)  # type: ignore[arg-type]


# -- policies ------------------------------------------------------------------------------------


async def test_a_verdict_under_one_policy_is_never_used_for_another(
    fake_op: FakeOP, validator: TokenValidator, verifications: CountingVerifier
):
    lenient, token = policy_for(fake_op), mint(fake_op)
    await validator.validate_access_token(token, lenient)

    needs_admin = policy_for(fake_op, required_scopes=("admin",))
    other_api = policy_for(fake_op, audience=("https://other.rpkit.test",))
    same_settings = policy_for(fake_op)

    assert await reason(validator, token, needs_admin) == "scope"
    assert await reason(validator, token, other_api) == "aud"
    assert (await validator.validate_access_token(token, same_settings)).sub == "alice"
    assert verifications.calls == 4  # every other policy verified it for itself
    assert validator.cached_access_token(token, needs_admin) is None
    assert validator.cached_access_token(token, lenient) is not None


async def test_a_policys_required_scopes_are_checked_on_every_use(
    fake_op: FakeOP, validator: TokenValidator, jwks: JWKSCache, clock: Clock
):
    policy = policy_for(fake_op, required_scopes=("orders:read",))
    token = mint(fake_op)
    access = await validator.validate_access_token(token, policy)
    # Policies are frozen, so only a planted entry can lack the scopes: it is not used.
    # The documented key: the SHA-256 of the token's bytes and the accepting policy's id.
    cache, key = cache_of(validator), (hashlib.sha256(token.encode()).digest(), id(policy))
    unscoped = msgspec.structs.replace(access, scopes=frozenset())
    cache.put(key, unscoped, policy, await _key(jwks, fake_op), None, now=clock.now)

    assert validator.cached_access_token(token, policy) is None
    assert (await validator.validate_access_token(token, policy)).scopes == access.scopes


# -- concurrency ---------------------------------------------------------------------------------


async def test_concurrent_first_validations_of_one_token_verify_it_once(
    fake_op: FakeOP, validator: TokenValidator, jwks: JWKSCache, verifications: CountingVerifier
):
    policy, token = policy_for(fake_op), mint(fake_op)
    # The key set is not fetched yet: every task suspends on the one shared fetch.
    results = await asyncio.gather(
        *(validator.validate_access_token(token, policy) for _ in range(50))
    )

    assert verifications.calls == 1
    assert jwks.fetches(policy.jwks_uri) == 1
    assert len({id(access) for access in results}) == 1


async def test_concurrent_validations_of_one_forged_token_verify_it_once_and_all_refuse(
    fake_op: FakeOP, validator: TokenValidator, verifications: CountingVerifier
):
    policy, token = policy_for(fake_op), mint(fake_op, tamper=Tamper.BAD_SIGNATURE)

    results = await asyncio.gather(
        *(validator.validate_access_token(token, policy) for _ in range(20)),
        return_exceptions=True,
    )

    assert all(isinstance(r, AccessTokenValidationError) for r in results)
    assert {r.reason for r in results if isinstance(r, AccessTokenValidationError)} == {"signature"}
    assert verifications.calls == 1
    assert len(cache_of(validator)) == 0


async def test_a_cancelled_first_validation_lets_the_waiting_ones_validate(
    fake_op: FakeOP, validator: TokenValidator, verifications: CountingVerifier
):
    policy, token = policy_for(fake_op), mint(fake_op)
    first = asyncio.create_task(validator.validate_access_token(token, policy))
    await asyncio.sleep(0)  # it is now waiting for the key set
    waiting = asyncio.create_task(validator.validate_access_token(token, policy))
    await asyncio.sleep(0)
    first.cancel()

    access = await waiting

    assert access.sub == "alice"
    with pytest.raises(asyncio.CancelledError):
        await first


class Gate(httpx.AsyncBaseTransport):
    """The fake OP behind a gate: requests wait until the test opens it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.open = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.open.wait()
        return await self.inner.handle_async_request(request)


async def test_tasks_arriving_while_a_waiter_took_over_wait_for_it_and_none_hangs(
    fake_op: FakeOP, verifications: CountingVerifier
):
    gate = Gate(fake_op.transport())
    validator = TokenValidator(JWKSCache(httpx.AsyncClient(transport=gate)))
    policy, token = policy_for(fake_op), mint(fake_op)
    leader = asyncio.create_task(validator.validate_access_token(token, policy))
    await asyncio.sleep(0)  # waiting for the key set, behind the gate
    waiters = [asyncio.create_task(validator.validate_access_token(token, policy)) for _ in "ab"]
    await asyncio.sleep(0)
    leader.cancel()
    for _ in range(5):  # the waiters wake; one takes over (and waits at the gate), one waits
        await asyncio.sleep(0)
    late = asyncio.create_task(validator.validate_access_token(token, policy))
    await asyncio.sleep(0)
    gate.open.set()

    results = await asyncio.wait_for(asyncio.gather(*waiters, late), timeout=5)

    assert {access.sub for access in results} == {"alice"}
    assert verifications.calls == 1
    assert leader.cancelled()


async def test_validating_now_answers_only_what_needs_no_wait(
    fake_op: FakeOP, validator: TokenValidator, jwks: JWKSCache, verifications: CountingVerifier
):
    """``validate_access_token_now`` (the bearer middleware's steady state, no coroutine):
    None, and no request, while the key is not at hand; once it is, a new token is verified
    and cached at once, and a refused one is refused at once."""
    policy, first, second = policy_for(fake_op), mint(fake_op), mint(fake_op)

    assert validator.validate_access_token_now(first, policy) is None
    assert (jwks.fetches(policy.jwks_uri), verifications.calls) == (0, 0)
    await validator.validate_access_token(first, policy)

    access = validator.validate_access_token_now(second.encode(), policy)  # header bytes too

    assert access is not None
    assert access.sub == "alice"
    assert verifications.calls == 2
    assert validator.cached_access_token(second, policy) is access
    forged = mint(fake_op, tamper=Tamper.BAD_SIGNATURE)
    with pytest.raises(AccessTokenValidationError) as refused:
        validator.validate_access_token_now(forged, policy)
    assert refused.value.reason == "signature"
    assert validator.cached_access_token(forged, policy) is None
    assert jwks.fetches(policy.jwks_uri) == 1


async def test_validating_now_leaves_bytes_another_task_is_verifying_to_that_task(
    fake_op: FakeOP, verifications: CountingVerifier
):
    """The key is at hand, but another task suspended while verifying these very bytes:
    ``validate_access_token_now`` leaves them to it (None) rather than verify them again."""
    gate = Gate(fake_op.transport())
    validator = TokenValidator(JWKSCache(httpx.AsyncClient(transport=gate)))
    policy, token, other = policy_for(fake_op), mint(fake_op), mint(fake_op)

    async def other_then_token_now() -> AccessToken | None:
        await validator.validate_access_token(other, policy)  # selects the key
        return validator.validate_access_token_now(token, policy)  # before the leader resumes

    helper = asyncio.create_task(other_then_token_now())
    await asyncio.sleep(0)  # waiting for the key set behind the gate, first in line
    leader = asyncio.create_task(validator.validate_access_token(token, policy))
    await asyncio.sleep(0)  # verifying ``token``, waiting for the same fetch, second in line
    gate.open.set()

    assert await asyncio.wait_for(helper, timeout=5) is None
    assert (await leader).sub == "alice"
    assert verifications.calls == 2  # ``other`` and ``token``, once each
    assert validator.validate_access_token_now(token, policy) is await leader


async def test_non_ascii_header_bytes_are_refused_as_malformed_before_any_key_lookup(
    fake_op: FakeOP, validator: TokenValidator, jwks: JWKSCache
):
    policy = policy_for(fake_op)
    token = mint(fake_op).encode() + b"\xe9"

    with pytest.raises(AccessTokenValidationError) as refused:
        validator.validate_access_token_now(token, policy)

    assert refused.value.reason == "malformed"
    assert jwks.fetches(policy.jwks_uri) == 0


# -- the opt-out ---------------------------------------------------------------------------------


async def test_without_the_cache_every_use_verifies_the_signature(
    fake_op: FakeOP, jwks: JWKSCache, verifications: CountingVerifier
):
    validator = TokenValidator(jwks, access_token_cache_size=0)
    policy, token = policy_for(fake_op), mint(fake_op)

    for _ in range(3):
        await validator.validate_access_token(token, policy)

    assert validator.access_token_cache is None
    assert validator.cached_access_token(token, policy) is None
    assert verifications.calls == 3


def test_bearer_auth_turns_the_cache_off_with_token_cache_size_0(fake_op: FakeOP):
    http = httpx.AsyncClient(transport=fake_op.transport())
    policies = [policy_for(fake_op)]

    on = OIDCBearerAuth(policies=policies, http=http)
    off = OIDCBearerAuth(policies=policies, http=http, token_cache_size=0)
    small = OIDCBearerAuth(policies=policies, http=http, token_cache_size=5)

    assert cache_of(on.validator).max_entries == 10_000
    assert off.validator.access_token_cache is None
    assert cache_of(small.validator).max_entries == 5
    with pytest.raises(ConfigurationError):
        OIDCBearerAuth(policies=policies, http=http, token_cache_size=-1)
