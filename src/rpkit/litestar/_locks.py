"""Cross-worker locks over a Litestar store, so a session's refresh is single-flight everywhere.

A lock is a key set only if absent, with an expiry and a random owner token: ``SET NX PX`` on a
Redis/Valkey store, released by an atomic compare-and-delete so a holder never frees a lock that
expired and was taken by another worker. Waiters poll with capped, jittered backoff for a bounded
time and then raise :class:`LockTimeoutError`. On other stores the same steps run under an
in-process lock: atomic within one process only, like the store itself.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from types import TracebackType
from typing import Any

from litestar.stores.base import Store

from rpkit._log import get_logger
from rpkit.errors import LockTimeoutError, StoreError
from rpkit.litestar._store import atomic_client, namespaced_key, store_failures_as_errors

__all__ = ["LockTimeoutError", "StoreLock", "StoreLocks"]

_PREFIX = "rpkit:lock:"
# Deletes the key only while it still holds this owner's token (one atomic step on the server).
_RELEASE = b"""
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class StoreLocks:
    """A :data:`~rpkit.client.LockFactory`: ``locks(key)`` is an async context manager that
    holds the lock named ``key`` across every worker sharing ``store``.

    Args:
        store: the shared Litestar store the lock keys live in.
        ttl: seconds a lock lives if its holder never releases it (a crashed worker); longer
            than the longest guarded work, or a second holder may enter while the first works.
        wait: seconds a waiter polls before :class:`LockTimeoutError`.
        poll: the first and the longest pause between two attempts, in seconds.

    Example:
        >>> from litestar.stores.memory import MemoryStore
        >>> locks = StoreLocks(MemoryStore(), ttl=30, wait=10)
        >>> # async with locks("session-id"): ...
    """

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = 30.0,
        wait: float = 30.0,
        poll: tuple[float, float] = (0.01, 0.25),
    ) -> None:
        if ttl <= 0 or wait < 0 or not 0 < poll[0] <= poll[1]:
            msg = "StoreLocks needs ttl > 0, wait >= 0 and 0 < first poll <= longest poll"
            raise ValueError(msg)
        self.store = store
        self.ttl = ttl
        self.wait = wait
        self.poll = poll
        self._redis: Any = atomic_client(store)
        self._release = self._redis.register_script(_RELEASE) if self._redis else None
        self._local = asyncio.Lock()

    def __call__(self, key: str) -> StoreLock:
        return StoreLock(self, _PREFIX + key)

    def _key(self, key: str) -> str:
        return namespaced_key(self.store, key)

    async def try_acquire(self, key: str, token: str) -> bool:
        """Take the lock ``key`` for ``token`` if nobody holds it; True when taken."""
        if self._redis is not None:
            px = max(1, int(self.ttl * 1000))
            return bool(await self._redis.set(self._key(key), token, px=px, nx=True))
        async with self._local:
            # Not ``exists``: Litestar's MemoryStore counts expired keys as existing.
            if await self.store.get(key) is not None:
                return False
            await self.store.set(key, token, timedelta(seconds=self.ttl))
            return True

    async def release(self, key: str, token: str) -> None:
        """Free the lock ``key`` if ``token`` still holds it."""
        if self._release is not None:
            await self._release(keys=[self._key(key)], args=[token])
            return
        async with self._local:
            if await self.store.get(key) == token.encode():
                await self.store.delete(key)


class StoreLock:
    """One acquisition of a :class:`StoreLocks` lock (``async with``; not reentrant)."""

    def __init__(self, locks: StoreLocks, key: str) -> None:
        self._locks = locks
        self._key = key
        self._token = secrets.token_urlsafe(16)

    async def __aenter__(self) -> None:
        locks = self._locks
        deadline = time.monotonic() + locks.wait
        pause = locks.poll[0]
        while not await self._attempt(locks.try_acquire):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # The key embeds a session id, a credential: it stays out of the message.
                msg = f"another worker held the lock for more than {locks.wait:g} s"
                raise LockTimeoutError(msg)
            jitter = 0.5 + random.random()  # noqa: S311 - spreads waiters, not a secret
            await asyncio.sleep(min(remaining, pause * jitter))
            pause = min(pause * 2, locks.poll[1])

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            # Shielded: a cancelled request still frees its lock instead of leaving it to the TTL.
            await asyncio.shield(self._attempt(self._locks.release))
        except StoreError as failure:
            # The guarded work is done (new tokens may be saved already): failing it now would
            # lose them. The lock expires with its TTL instead.
            get_logger().warning("rpkit.lock.release_failed", detail=failure.detail)

    async def _attempt(self, step: Callable[[str, str], Awaitable[object]]) -> bool:
        with store_failures_as_errors("take or free a lock"):
            return bool(await step(self._key, self._token))
