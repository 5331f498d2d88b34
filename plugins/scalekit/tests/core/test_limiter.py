"""The local passwordless limiter: Scalekit's limits (2 emails/min/address, 5 attempts per auth
request in 10 minutes) enforced over the shared store before any request reaches Scalekit."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from rpkit.errors import StoreError
from rpkit.store import MemoryStore
from rpkit_scalekit.errors import (
    PasswordlessAttemptsExhaustedError,
    PasswordlessInvalidCredentialError,
    PasswordlessRateLimitedError,
    ScalekitAPIError,
    ScalekitUnavailableError,
)
from rpkit_scalekit.limiter import PasswordlessLimiter, PasswordlessLimits
from rpkit_scalekit.passwordless import PasswordlessClient

from .conftest import status_envelope

SEND = "/api/v1/passwordless/email/send"
RESEND = "/api/v1/passwordless/email/resend"
VERIFY = "/api/v1/passwordless/email/verify"
AUTH_ID = "ar_limiter_1"
SENT = {"auth_request_id": AUTH_ID, "expires_at": "1800000300", "expires_in": 300}
WRONG = status_envelope(400, 3, "INVALID_CODE: the code is invalid", "INVALID_CODE")


class RecordingStore(MemoryStore):
    """A MemoryStore that remembers every key written."""

    def __init__(self, clock) -> None:
        super().__init__(clock=clock)
        self.keys: set[str] = set()

    async def set(self, key: str, value: bytes, expires_in: int | None = None) -> None:
        self.keys.add(key)
        await super().set(key, value, expires_in)


@pytest.fixture
def shared(clock) -> RecordingStore:
    return RecordingStore(clock)


@pytest.fixture
def limiter(shared, clock) -> PasswordlessLimiter:
    return PasswordlessLimiter(shared, clock=clock)


@pytest.fixture
def client(api, limiter) -> PasswordlessClient:
    return PasswordlessClient(api, limiter=limiter)


@pytest.fixture
def send(mock, token_route):
    return mock.post(SEND).respond(200, json=SENT)


@pytest.fixture
def verify(mock, token_route):
    return mock.post(VERIFY).mock(return_value=WRONG)


async def test_a_third_email_within_a_minute_is_refused_locally(client, send, clock):
    await client.send("ada@example.com")
    clock.now += 10
    await client.send("ADA@example.com")  # the same address, in another case
    clock.now += 10

    with pytest.raises(PasswordlessRateLimitedError) as caught:
        await client.send("ada@example.com")

    assert caught.value.local
    assert caught.value.retry_after == 40  # the first slot frees 60 s after the first send
    assert send.call_count == 2


async def test_the_email_window_slides(client, send, clock):
    await client.send("ada@example.com")
    clock.now += 30
    await client.send("ada@example.com")
    clock.now += 31  # the first send is now more than a minute old

    await client.send("ada@example.com")
    with pytest.raises(PasswordlessRateLimitedError):
        await client.send("ada@example.com")

    assert send.call_count == 3


async def test_other_addresses_are_not_affected(client, send):
    for _ in range(2):
        await client.send("ada@example.com")

    await client.send("bob@example.com")

    assert send.call_count == 3


async def test_resends_count_against_the_address_of_the_send(client, send, mock):
    resend = mock.post(RESEND).respond(200, json=SENT)
    await client.send("ada@example.com")
    await client.resend(AUTH_ID)

    with pytest.raises(PasswordlessRateLimitedError):
        await client.resend(AUTH_ID)
    with pytest.raises(PasswordlessRateLimitedError):
        await client.send("ada@example.com")

    assert (send.call_count, resend.call_count) == (1, 1)


async def test_workers_sharing_a_store_share_the_limit(api, shared, send, clock):
    workers = [
        PasswordlessClient(api, limiter=PasswordlessLimiter(shared, clock=clock)) for _ in range(3)
    ]

    await workers[0].send("ada@example.com")
    await workers[1].send("ada@example.com")
    with pytest.raises(PasswordlessRateLimitedError):
        await workers[2].send("ada@example.com")

    assert send.call_count == 2


async def test_concurrent_sends_cannot_overshoot(client, send):
    results = await asyncio.gather(
        *(client.send("ada@example.com") for _ in range(10)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, PasswordlessRateLimitedError)]
    assert len(refused) == 8
    assert send.call_count == 2


async def test_a_send_scalekit_refused_with_400_gives_its_slot_back(client, send):
    send.mock(
        side_effect=[
            status_envelope(400, 3, "bad", "INVALID_ARGUMENT"),
            httpx.Response(200, json=SENT),
            httpx.Response(200, json=SENT),
        ]
    )

    with pytest.raises(ScalekitAPIError):
        await client.send("ada@example.com")
    await client.send("ada@example.com")
    await client.send("ada@example.com")

    assert send.call_count == 3


async def test_a_send_that_may_have_gone_out_keeps_its_slot(client, send):
    send.mock(
        side_effect=[
            status_envelope(503, 14, "unavailable", "UNAVAILABLE"),
            httpx.Response(200, json=SENT),
        ]
    )

    with pytest.raises(ScalekitUnavailableError):
        await client.send("ada@example.com")
    await client.send("ada@example.com")
    with pytest.raises(PasswordlessRateLimitedError):
        await client.send("ada@example.com")

    assert send.call_count == 2


async def test_a_sixth_attempt_is_refused_locally_after_five_wrong_codes(client, verify):
    for _ in range(5):
        with pytest.raises(PasswordlessInvalidCredentialError):
            await client.verify_code("000000", auth_request_id=AUTH_ID)

    with pytest.raises(PasswordlessAttemptsExhaustedError) as caught:
        await client.verify_code("123456", auth_request_id=AUTH_ID)

    assert caught.value.local
    assert verify.call_count == 5


async def test_attempts_free_up_after_ten_minutes(client, verify, clock):
    for _ in range(5):
        with pytest.raises(PasswordlessInvalidCredentialError):
            await client.verify_code("000000", auth_request_id=AUTH_ID)
    clock.now += 601

    with pytest.raises(PasswordlessInvalidCredentialError):
        await client.verify_code("000000", auth_request_id=AUTH_ID)

    assert verify.call_count == 6


async def test_concurrent_guesses_cannot_overshoot(client, verify):
    results = await asyncio.gather(
        *(client.verify_code(f"{i:06d}", auth_request_id=AUTH_ID) for i in range(12)),
        return_exceptions=True,
    )

    exhausted = [r for r in results if isinstance(r, PasswordlessAttemptsExhaustedError)]
    assert len(exhausted) == 7
    assert verify.call_count == 5


async def test_an_outage_does_not_burn_attempts(client, verify):
    verify.mock(return_value=status_envelope(503, 14, "unavailable", "UNAVAILABLE"))
    for _ in range(6):
        with pytest.raises(ScalekitUnavailableError):
            await client.verify_code("000000", auth_request_id=AUTH_ID)

    verify.mock(return_value=WRONG)
    with pytest.raises(PasswordlessInvalidCredentialError):
        await client.verify_code("000000", auth_request_id=AUTH_ID)

    assert verify.call_count == 7


async def test_scalekits_own_exhaustion_is_remembered_locally(client, verify):
    verify.mock(return_value=status_envelope(429, 8, "too many attempts", "RESOURCE_EXHAUSTED"))
    with pytest.raises(PasswordlessAttemptsExhaustedError) as first:
        await client.verify_code("000000", auth_request_id=AUTH_ID)

    with pytest.raises(PasswordlessAttemptsExhaustedError) as second:
        await client.verify_code("123456", auth_request_id=AUTH_ID)

    assert (first.value.local, second.value.local) == (False, True)
    assert verify.call_count == 1


async def test_wrong_links_count_too_when_the_auth_request_is_known(client, verify):
    for _ in range(5):
        with pytest.raises(PasswordlessInvalidCredentialError):
            await client.verify_link("wrong_l", auth_request_id=AUTH_ID)

    with pytest.raises(PasswordlessAttemptsExhaustedError):
        await client.verify_link("right_l", auth_request_id=AUTH_ID)

    assert verify.call_count == 5


async def test_store_keys_hold_no_address(client, send, shared):
    await client.send("ada.lovelace@example.com")

    assert shared.keys
    assert not any("ada" in key or "example" in key for key in shared.keys)


async def test_keyed_hashes_differ_from_plain_ones(shared, clock):
    plain = PasswordlessLimiter(shared, clock=clock)
    keyed = PasswordlessLimiter(shared, key=b"k" * 32, clock=clock)

    first = await plain.reserve_email("ada@example.com")
    second = await keyed.reserve_email("ada@example.com")

    assert first.key.rsplit(":", 1)[0] != second.key.rsplit(":", 1)[0]


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        PasswordlessLimits(emails=0)


class FailingSetStore(MemoryStore):
    """A store whose plain ``set`` fails (``add`` still works)."""

    async def set(self, key: str, value: bytes, expires_in: int | None = None) -> None:
        if ":req:" in key:
            raise StoreError("redis went away")
        await super().set(key, value, expires_in)


async def test_a_store_failure_after_the_email_went_out_still_returns_the_auth_request(
    api, send, clock
):
    client = PasswordlessClient(
        api, limiter=PasswordlessLimiter(FailingSetStore(clock), clock=clock)
    )

    result = await client.send("ada@example.com")

    assert result.auth_request_id == AUTH_ID
    assert send.call_count == 1
