"""The in-memory store keeps one-time values one-time and forgets expired ones."""

from __future__ import annotations

import asyncio

from rpkit.store import KeyValueStore, MemoryStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_memory_store_satisfies_the_protocol():
    assert isinstance(MemoryStore(), KeyValueStore)


async def test_consume_returns_the_value_once():
    store = MemoryStore()
    await store.set("state-1", b"transaction", expires_in=600)

    first = await store.consume("state-1")
    second = await store.consume("state-1")

    assert first == b"transaction"
    assert second is None
    assert await store.get("state-1") is None


async def test_concurrent_consumers_get_the_value_exactly_once():
    store = MemoryStore()
    await store.set("state-1", b"transaction", expires_in=600)

    results = await asyncio.gather(*(store.consume("state-1") for _ in range(20)))

    assert results.count(b"transaction") == 1
    assert results.count(None) == 19


async def test_expired_values_are_gone_for_get_and_consume():
    clock = Clock()
    store = MemoryStore(clock)
    await store.set("a", b"1", expires_in=600)
    await store.set("b", b"2", expires_in=600)

    clock.now += 600

    assert await store.get("a") is None
    assert await store.consume("b") is None
    assert len(store) == 0


async def test_values_without_expiry_stay_and_delete_removes_them():
    clock = Clock()
    store = MemoryStore(clock)
    await store.set("k", b"v")
    clock.now += 10**9

    assert await store.get("k") == b"v"
    await store.delete("k")
    await store.delete("k")
    assert await store.get("k") is None


async def test_abandoned_entries_are_swept_as_the_store_grows():
    clock = Clock()
    store = MemoryStore(clock)
    for i in range(1000):
        await store.set(f"abandoned-{i}", b"x", expires_in=600)
    clock.now += 601

    for i in range(1100):
        await store.set(f"live-{i}", b"y", expires_in=600)

    assert len(store) == 1100


async def test_add_stores_only_when_absent_and_exactly_once_under_concurrency():
    clock = Clock()
    store = MemoryStore(clock)

    results = await asyncio.gather(*(store.add("jti-1", b"seen", expires_in=60) for _ in range(10)))

    assert results.count(True) == 1
    assert await store.get("jti-1") == b"seen"
    clock.now += 61
    assert await store.add("jti-1", b"again", expires_in=60) is True
