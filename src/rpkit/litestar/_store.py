"""The core's :class:`~rpkit.store.KeyValueStore` over a Litestar store.

Litestar stores have no atomic get-and-delete. On Redis/Valkey this adapter uses ``GETDEL`` and
``SET NX``; on other stores it serialises consume and add with a lock, which is atomic within
one process only — so a per-process store must not be shared by several workers anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from rpkit.errors import StoreError

__all__ = [
    "STORE_FAILURES",
    "LitestarKeyValueStore",
    "atomic_client",
    "namespaced_key",
    "store_failures_as_errors",
]


def _store_failures() -> tuple[type[Exception], ...]:
    """What a store's client raises when the store is unreachable or too slow: OS-level errors,
    and the base errors of the Redis and Valkey clients when they are installed."""
    failures: list[type[Exception]] = [OSError, TimeoutError]
    for module, name in (("redis.exceptions", "RedisError"), ("valkey.exceptions", "ValkeyError")):
        with contextlib.suppress(ImportError):
            failures.append(getattr(importlib.import_module(module), name))
    return tuple(failures)


STORE_FAILURES = _store_failures()


def atomic_client(store: Store) -> Any:
    """The Redis/Valkey client of a RedisStore or ValkeyStore, for atomic commands; None for
    stores without one."""
    return getattr(store, "_redis", None) or getattr(store, "_valkey", None)


def namespaced_key(store: Store, key: str) -> str:
    """``key`` as the store itself names it on the server (with its namespace), for commands
    sent to :func:`atomic_client` directly."""
    make_key = getattr(store, "_make_key", None)
    return str(make_key(key)) if make_key else key


@contextlib.contextmanager
def store_failures_as_errors(what: str) -> Iterator[None]:
    """Turn a store client's failure into :class:`~rpkit.errors.StoreError` (a 503), cause
    chained, so an outage never surfaces as a 500."""
    try:
        yield
    except STORE_FAILURES as exc:
        msg = f"the store failed to {what}: {type(exc).__name__}"
        raise StoreError(msg) from exc


class LitestarKeyValueStore:
    """A :class:`~rpkit.store.KeyValueStore` backed by a Litestar store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = asyncio.Lock()
        self._redis: Any = atomic_client(store)
        self._memory: MemoryStore | None = store if type(store) is MemoryStore else None
        """A MemoryStore whose dict is read without its lock: ``MemoryStore.get`` takes an
        anyio lock and yields to the event loop on every read, a third of a session route's
        cost, although nothing awaits between its lookup and its expiry check. The dict is
        looked up on every read: ``delete_expired()`` replaces it. Reads that miss or find an
        expired entry go through ``get``, which also evicts."""

    def _key(self, key: str) -> str:
        return namespaced_key(self.store, key)

    async def get(self, key: str) -> bytes | None:
        if self._memory is not None:
            held = self._memory._store.get(key)
            if held is not None and not held.expired:
                return held.data
        with store_failures_as_errors("read"):
            return await self.store.get(key)

    async def set(self, key: str, value: bytes, expires_in: int | None = None) -> None:
        with store_failures_as_errors("write"):
            await self.store.set(key, value, expires_in)

    async def delete(self, key: str) -> None:
        with store_failures_as_errors("delete"):
            await self.store.delete(key)

    async def consume(self, key: str) -> bytes | None:
        with store_failures_as_errors("consume"):
            if self._redis is not None:
                value = await self._redis.getdel(self._key(key))
                return bytes(value) if value is not None else None
            async with self._lock:
                value = await self.store.get(key)
                if value is not None:
                    await self.store.delete(key)
                return value

    async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
        with store_failures_as_errors("add"):
            if self._redis is not None:
                added = await self._redis.set(self._key(key), value, ex=expires_in, nx=True)
                return bool(added)
            async with self._lock:
                # get, not exists: a memory store counts an expired key as existing until read
                if await self.store.get(key) is not None:
                    return False
                await self.store.set(key, value, expires_in)
                return True
