"""The core's :class:`~rpkit.store.KeyValueStore` over a Litestar store.

Litestar stores have no atomic get-and-delete. On Redis/Valkey this adapter uses ``GETDEL`` and
``SET NX``; on other stores it serialises consume and add with a lock, which is atomic within
one process only — so a per-process store must not be shared by several workers anyway.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.stores.base import StorageObject, Store
from litestar.stores.memory import MemoryStore

__all__ = ["LitestarKeyValueStore"]


class LitestarKeyValueStore:
    """A :class:`~rpkit.store.KeyValueStore` backed by a Litestar store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = asyncio.Lock()
        self._redis: Any = getattr(store, "_redis", None) or getattr(store, "_valkey", None)
        """The Redis/Valkey client of a RedisStore or ValkeyStore, for atomic commands."""
        self._memory: dict[str, StorageObject] | None = (
            store._store if type(store) is MemoryStore else None
        )
        """A MemoryStore's dict, read without its lock: ``MemoryStore.get`` takes an anyio lock
        and yields to the event loop on every read, a third of a session route's cost, although
        nothing awaits between its lookup and its expiry check. Reads that miss or find an
        expired entry go through ``get``, which also evicts."""

    def _key(self, key: str) -> str:
        make_key = getattr(self.store, "_make_key", None)
        return str(make_key(key)) if make_key else key

    async def get(self, key: str) -> bytes | None:
        if self._memory is not None:
            held = self._memory.get(key)
            if held is not None and not held.expired:
                return held.data
        return await self.store.get(key)

    async def set(self, key: str, value: bytes, expires_in: int | None = None) -> None:
        await self.store.set(key, value, expires_in)

    async def delete(self, key: str) -> None:
        await self.store.delete(key)

    async def consume(self, key: str) -> bytes | None:
        if self._redis is not None:
            value = await self._redis.getdel(self._key(key))
            return bytes(value) if value is not None else None
        async with self._lock:
            value = await self.store.get(key)
            if value is not None:
                await self.store.delete(key)
            return value

    async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
        if self._redis is not None:
            return bool(await self._redis.set(self._key(key), value, ex=expires_in, nx=True))
        async with self._lock:
            if await self.store.exists(key):
                return False
            await self.store.set(key, value, expires_in)
            return True
