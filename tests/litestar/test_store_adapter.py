"""The core's KeyValueStore over Litestar stores: one-time values and the MemoryStore fast path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore

from rpkit.litestar._store import LitestarKeyValueStore


async def test_memory_reads_see_writes_deletes_and_expiry() -> None:
    backing = MemoryStore()
    store = LitestarKeyValueStore(backing)
    assert await store.get("k") is None
    await store.set("k", b"v1", 60)
    assert await store.get("k") == b"v1"
    await store.set("k", b"v2", 60)
    assert await store.get("k") == b"v2"
    await store.delete("k")
    assert await store.get("k") is None

    await store.set("gone", b"old", 60)
    held = backing._store["gone"]
    held.expires_at = datetime.now(tz=UTC) - timedelta(seconds=1)
    assert await store.get("gone") is None
    assert "gone" not in backing._store, (
        "an expired read goes through MemoryStore.get, which evicts"
    )


async def test_consume_hands_a_value_out_once_under_concurrency() -> None:
    store = LitestarKeyValueStore(MemoryStore())
    await store.set("state", b"txn", 60)
    results = await asyncio.gather(*(store.consume("state") for _ in range(20)))
    assert results.count(b"txn") == 1
    assert await store.get("state") is None


async def test_add_succeeds_once(tmp_path) -> None:
    for backing in (MemoryStore(), FileStore(tmp_path)):
        store = LitestarKeyValueStore(backing)
        outcomes = await asyncio.gather(*(store.add("jti", b"1", 60) for _ in range(10)))
        assert outcomes.count(True) == 1
        assert await store.get("jti") == b"1"


def test_redis_and_valkey_stores_use_their_atomic_commands() -> None:
    """GETDEL and SET NX on the server, not a per-process lock, for both Litestar stores."""
    from litestar.stores.redis import RedisStore
    from redis.asyncio import Redis

    redis_client = Redis()
    assert LitestarKeyValueStore(RedisStore(redis_client))._redis is redis_client
    from litestar.stores.valkey import ValkeyStore
    from valkey.asyncio import Valkey

    valkey_client = Valkey()
    assert LitestarKeyValueStore(ValkeyStore(valkey_client))._redis is valkey_client
