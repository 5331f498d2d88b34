"""The cross-worker lock that makes a session's refresh single-flight: exclusion, a bounded wait,
release by its owner only, expiry after a crashed holder, and store failures as typed errors.
On Redis (``SET NX PX`` and a compare-and-delete script) and on a per-process Litestar store."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from rpkit.errors import StoreError
from rpkit.litestar._locks import LockTimeoutError, StoreLocks
from tests.redis.conftest import RedisServer, free_port


@contextlib.asynccontextmanager
async def redis_store(url: str) -> AsyncIterator[RedisStore]:
    client = Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        yield RedisStore(client, namespace="rpkit-lock-test")
    finally:
        await client.aclose()


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    async with redis_store(server.url) as shared:
        await shared.delete_all()
        yield shared


class FlakyStore(MemoryStore):
    """A per-process store whose reads and writes fail (OSError) while ``down`` is set."""

    down = False

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        if self.down:
            raise OSError("store unreachable")
        return await super().get(key, renew_for)


async def test_a_held_lock_keeps_others_out_for_the_bounded_wait_only(store: Store):
    locks = StoreLocks(store, ttl=10, wait=0.3)

    async with locks("session-1"):
        started = time.monotonic()
        with pytest.raises(LockTimeoutError) as refused:
            async with locks("session-1"):
                pytest.fail("two holders at once")
        waited = time.monotonic() - started
        async with locks("session-2"):  # other keys are free
            pass

    assert 0.3 <= waited < 1.5
    assert refused.value.code == "lock_timeout"
    assert "session-1" not in refused.value.detail  # the key holds a session id
    async with locks("session-1"):  # released on exit
        pass


async def test_a_waiter_enters_as_soon_as_the_holder_leaves(store: Store):
    locks = StoreLocks(store, ttl=10, wait=5)
    events: list[str] = []

    async def holder() -> None:
        async with locks("session"):
            events.append("holder in")
            await asyncio.sleep(0.3)
            events.append("holder out")

    async def waiter() -> None:
        await asyncio.sleep(0.05)
        async with locks("session"):
            events.append("waiter in")

    started = time.monotonic()
    await asyncio.gather(holder(), waiter())

    assert events == ["holder in", "holder out", "waiter in"]
    assert time.monotonic() - started < 1.5


async def test_a_holder_whose_lock_expired_does_not_release_the_next_holders(store: Store):
    short = StoreLocks(store, ttl=0.2, wait=0)
    patient = StoreLocks(store, ttl=10, wait=0.2)

    async with short("session"):
        await asyncio.sleep(0.4)  # outlived its TTL: another worker may take the lock
        async with patient("session"):
            pass  # taken and released by the other worker
        second = patient("session")
        await second.__aenter__()

    with pytest.raises(LockTimeoutError):  # the expired holder's exit left the new lock alone
        async with patient("session"):
            pass
    await second.__aexit__(None, None, None)


async def test_a_crashed_holders_lock_expires_after_its_ttl(store: Store):
    locks = StoreLocks(store, ttl=0.3, wait=5)
    assert await locks.try_acquire("rpkit:lock:session", "a-worker-that-died")

    started = time.monotonic()
    async with locks("session"):
        waited = time.monotonic() - started

    assert 0.2 <= waited < 2.0


async def test_an_unreachable_redis_is_a_store_error_not_a_wait():
    async with redis_store(f"redis://127.0.0.1:{free_port()}/0") as unreachable:
        locks = StoreLocks(unreachable, ttl=10, wait=30)
        started = time.monotonic()
        with pytest.raises(StoreError) as failed:
            async with locks("session"):
                pytest.fail("entered without a store")

    assert not isinstance(failed.value, LockTimeoutError)
    assert failed.value.code == "store_unavailable"
    assert time.monotonic() - started < 2.0


async def test_a_store_failing_on_release_does_not_fail_the_finished_work():
    store = FlakyStore()
    locks = StoreLocks(store, ttl=0.3, wait=5)

    async with locks("session"):
        store.down = True
    store.down = False

    async with locks("session"):  # the lock left behind expired with its TTL
        pass


async def test_invalid_timings_are_refused():
    with pytest.raises(ValueError, match="ttl > 0"):
        StoreLocks(MemoryStore(), ttl=0)
    with pytest.raises(ValueError, match="poll"):
        StoreLocks(MemoryStore(), poll=(0.5, 0.1))
