"""The core's KeyValueStore over Litestar stores: one-time values and the MemoryStore fast path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.testing import AsyncTestClient

from rpkit.litestar._store import LitestarKeyValueStore
from rpkit.testing import FakeOP
from tests.litestar.conftest import BASE, make_app


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


async def test_the_plugin_sweeps_abandoned_logins_out_of_memory_stores(fake_op: FakeOP) -> None:
    """Litestar's MemoryStore drops an expired entry only when it is read again: an abandoned
    login would stay forever without the plugin's sweeper."""
    app, plugin = make_app(fake_op)
    plugin.sweep_interval = 0.05
    async with AsyncTestClient(app, base_url=BASE) as client:
        started = await client.get("/auth/login/fake", follow_redirects=False)
        assert started.status_code == 303
        flows = app.stores.get(plugin.config.flows_store)
        assert isinstance(flows, MemoryStore)
        assert len(flows._store) >= 2  # the transaction and the browser's pending-login list
        for held in flows._store.values():
            held.expires_at = datetime.now(tz=UTC) - timedelta(seconds=1)
        for _ in range(100):
            if not flows._store:
                break
            await asyncio.sleep(0.02)
        assert flows._store == {}


async def test_a_deleted_session_stays_deleted_after_the_sweeper_ran():
    """MemoryStore.delete_expired() replaces its dict; the adapter's fast read must follow it,
    or a logged-out session would still be found (found by bench/logins.py)."""
    from litestar.stores.memory import MemoryStore as LitestarMemoryStore

    from rpkit.litestar._store import LitestarKeyValueStore

    memory = LitestarMemoryStore()
    adapter = LitestarKeyValueStore(memory)
    await adapter.set("rpkit:session:abc", b"session", 3600)
    await memory.delete_expired()
    await adapter.delete("rpkit:session:abc")

    assert await adapter.get("rpkit:session:abc") is None
    assert await memory.get("rpkit:session:abc") is None
