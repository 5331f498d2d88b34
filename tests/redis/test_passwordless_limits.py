"""The Scalekit passwordless limits hold across workers: each worker has its own Redis client
and limiter over the shared server, and races for the last slot cannot overshoot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis

from rpkit.litestar._store import LitestarKeyValueStore
from rpkit_scalekit.errors import PasswordlessAttemptsExhaustedError, PasswordlessRateLimitedError
from rpkit_scalekit.limiter import PasswordlessLimiter
from tests.redis.conftest import RedisServer

WORKERS = 4


@contextlib.asynccontextmanager
async def worker_limiters(url: str) -> AsyncIterator[list[PasswordlessLimiter]]:
    clients = [Redis.from_url(url) for _ in range(WORKERS)]
    try:
        stores = [RedisStore(c, namespace="rpkit-pl-test") for c in clients]
        await stores[0].delete_all()
        yield [PasswordlessLimiter(LitestarKeyValueStore(s)) for s in stores]
    finally:
        for client in clients:
            await client.aclose()


async def test_two_emails_per_minute_per_address_across_workers(redis_server: RedisServer):
    async with worker_limiters(redis_server.url) as limiters:
        outcomes = await asyncio.gather(
            *(limiter.reserve_email("Ada@Example.com") for limiter in limiters * 2),
            return_exceptions=True,
        )
        granted = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, PasswordlessRateLimitedError)]
        assert len(granted) == 2
        assert len(refused) == len(outcomes) - 2
        assert all(r.local and r.retry_after > 0 for r in refused)
        with pytest.raises(PasswordlessRateLimitedError):
            await limiters[-1].reserve_email("ada@example.com")
        await limiters[0].reserve_email("grace@example.com")  # other addresses are not held up


async def test_five_verify_attempts_per_auth_request_across_workers(redis_server: RedisServer):
    async with worker_limiters(redis_server.url) as limiters:
        outcomes = await asyncio.gather(
            *(limiter.reserve_attempt("req-1") for limiter in limiters * 3),
            return_exceptions=True,
        )
        granted = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(granted) == 5
        assert all(
            isinstance(o, PasswordlessAttemptsExhaustedError)
            for o in outcomes
            if isinstance(o, BaseException)
        )
        await limiters[1].release(granted[0])  # a slot whose request cannot have counted
        await limiters[2].reserve_attempt("req-1")
        with pytest.raises(PasswordlessAttemptsExhaustedError):
            await limiters[3].reserve_attempt("req-1")
