"""Client-credentials tokens shared by workers through a store: two ``ClientCredentials`` (two
workers' worth: each its own relying party and cache) on one store fetch one token between them,
the one that waited gets the fetcher's token or its error, a refusal is remembered for both, an
invalidated token leaves the store, a crashed holder's lock only delays, and a failing store is
bypassed. On rpkit's in-memory store and on a real Redis (``redis-server``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.stores.redis import RedisStore
from redis.asyncio import Redis
from structlog.testing import capture_logs

from rpkit import RelyingParty
from rpkit.client_credentials import ClientCredentials
from rpkit.errors import (
    ClientCredentialsRefusedError,
    ClientCredentialsUnavailableError,
    StoreError,
)
from rpkit.litestar._store import LitestarKeyValueStore
from rpkit.store import KeyValueStore, MemoryStore
from rpkit.testing import Canned, FakeOP
from tests.redis.conftest import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.authz

PREFIX = "rpkit:m2m:"


class Clock:
    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"{REDIS_SERVER} is missing: scripts/system-deps.sh installs redis-server")
    server = RedisServer(tmp_path_factory.mktemp("m2m-redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[KeyValueStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    client = Redis.from_url(server.url)
    shared = RedisStore(client, namespace="m2m-test")
    await shared.delete_all()
    try:
        yield LitestarKeyValueStore(shared)
    finally:
        await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def worker(
    op: FakeOP, http: httpx.AsyncClient, store: KeyValueStore | None, clock: Clock, **options: Any
) -> ClientCredentials:
    """One worker's ClientCredentials: its own relying party, discovery and token cache."""
    rp = RelyingParty([op.provider_config()], http=http, clock=clock)
    return ClientCredentials(rp, http, store, **options)


@pytest.fixture
def workers(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, store: KeyValueStore, clock: Clock
) -> tuple[ClientCredentials, ClientCredentials]:
    return worker(fake_op, fake_op_http, store, clock), worker(fake_op, fake_op_http, store, clock)


async def stored_keys(store: KeyValueStore) -> dict[str, bytes]:
    """Every rpkit:m2m key and its value (the memory store's own table, or Redis's)."""
    if isinstance(store, MemoryStore):
        names = [k for k in store._data if k.startswith(PREFIX)]
    else:
        assert isinstance(store, LitestarKeyValueStore)
        redis: Redis = store.store._redis  # type: ignore[attr-defined]
        names = [k.decode().removeprefix("m2m-test:") for k in await redis.keys("m2m-test:*")]
    values = {name: await store.get(name) for name in names}
    return {name: value for name, value in values.items() if value is not None}


async def test_two_workers_fetch_one_token_between_them(
    fake_op: FakeOP, workers: tuple[ClientCredentials, ClientCredentials]
):
    a, b = workers
    fake_op.misbehave.latency = {"token": 0.1}

    tokens = await asyncio.gather(
        *(w.token("fake", scopes=["read"]) for w in (a, b) for _ in range(10))
    )

    assert len({t.access_token for t in tokens}) == 1
    assert fake_op.oracle.count("token") == 1


async def test_the_store_holds_the_token_for_its_lifetime_and_nothing_else(
    fake_op: FakeOP,
    workers: tuple[ClientCredentials, ClientCredentials],
    store: KeyValueStore,
    clock: Clock,
):
    a, b = workers
    fake_op.access_token_lifetime = 900

    token = await a.token("fake", audience="urn:orders", scopes=["read"])
    again = await b.token("fake", audience="urn:orders", scopes=["read"])

    entries = await stored_keys(store)
    (name,) = entries
    saved = msgspec.json.decode(entries[name])
    assert again == token
    assert fake_op.oracle.count("token") == 1
    assert name.startswith(PREFIX)
    assert name.endswith(":token")
    assert "orders" not in name  # a digest names the request
    assert saved == {
        "access_token": token.access_token,
        "expires_at": int(clock.now) + 900,
        "scope": ["read"],
        "renew_at": int(clock.now) + 900 - 60,
    }


async def test_a_worker_renews_the_stored_token_and_the_other_takes_the_renewal(
    fake_op: FakeOP, workers: tuple[ClientCredentials, ClientCredentials], clock: Clock
):
    a, b = workers
    fake_op.access_token_lifetime = 600
    first = await a.token("fake")
    assert await b.token("fake") == first

    clock.now += 600 - 59
    renewed = await b.token("fake")
    taken = await a.token("fake")

    assert renewed != first
    assert taken == renewed
    assert fake_op.oracle.count("token") == 2


async def test_the_waiting_worker_gets_the_fetchers_refusal_and_both_remember_it(
    fake_op: FakeOP,
    workers: tuple[ClientCredentials, ClientCredentials],
    store: KeyValueStore,
    fake_op_http: httpx.AsyncClient,
    clock: Clock,
):
    a, b = workers
    fake_op.misbehave.latency = {"token": 0.1}
    fake_op.misbehave.respond = {"token": Canned.json({"error": "invalid_client"}, status=401)}

    outcomes = await asyncio.gather(a.token("fake"), b.token("fake"), return_exceptions=True)
    fake_op.misbehave.respond = {}
    with pytest.raises(ClientCredentialsRefusedError):
        await b.token("fake")
    late = worker(fake_op, fake_op_http, store, clock)
    with pytest.raises(ClientCredentialsRefusedError):
        await late.token("fake")  # a third worker, started after the refusal
    clock.now += 11
    token = await late.token("fake")

    assert [type(o) for o in outcomes] == [ClientCredentialsRefusedError] * 2
    assert all(o.error == "invalid_client" for o in outcomes)  # type: ignore[union-attr]
    assert token.access_token
    assert fake_op.oracle.count("token") == 2


async def test_the_waiting_worker_gets_a_transient_failure_that_nobody_remembers(
    fake_op: FakeOP, workers: tuple[ClientCredentials, ClientCredentials]
):
    a, b = workers
    fake_op.misbehave.latency = {"token": 0.1}
    fake_op.misbehave.respond = {"token": Canned.error(503)}

    outcomes = await asyncio.gather(a.token("fake"), b.token("fake"), return_exceptions=True)
    calls_for_one_failure = fake_op.oracle.count("token")
    fake_op.misbehave.respond = {}
    token = await b.token("fake")

    assert [type(o) for o in outcomes] == [ClientCredentialsUnavailableError] * 2
    assert calls_for_one_failure == 1
    assert await a.token("fake") == token
    assert fake_op.oracle.count("token") == 2


async def test_an_invalidated_token_leaves_the_store(
    fake_op: FakeOP,
    workers: tuple[ClientCredentials, ClientCredentials],
    store: KeyValueStore,
    fake_op_http: httpx.AsyncClient,
    clock: Clock,
):
    a, b = workers
    refused = await a.token("fake")
    assert await b.token("fake") == refused

    await b.invalidate(refused.access_token)
    fresh = await worker(fake_op, fake_op_http, store, clock).token("fake")

    assert fresh != refused
    assert fake_op.oracle.count("token") == 2
    await a.invalidate(refused.access_token)  # already replaced in the store: left there
    assert await a.token("fake") == fresh
    assert fake_op.oracle.count("token") == 2


async def test_a_crashed_holders_lock_delays_the_others_until_it_expires(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    ticks = [0.0]
    store = MemoryStore(clock=lambda: ticks[0])
    probe = worker(fake_op, fake_op_http, store, clock)
    await probe.token("fake")
    (token_key,) = await stored_keys(store)
    lock_key = token_key.removesuffix(":token") + ":lock"
    await store.delete(token_key)
    await store.set(lock_key, b"a-worker-that-died", expires_in=35)
    fake_op.oracle.clear()

    impatient = worker(fake_op, fake_op_http, store, clock, lock_wait=0.2)
    with pytest.raises(ClientCredentialsUnavailableError, match="another worker"):
        await impatient.token("fake")
    ticks[0] += 36  # the dead holder's lock expires
    token = await impatient.token("fake")

    assert token.access_token
    assert fake_op.oracle.count("token") == 1
    assert lock_key not in await stored_keys(store)


class BrokenStore(MemoryStore):
    """A store that is down: every call raises StoreError, as the Redis adapter does."""

    async def get(self, key: str) -> bytes | None:
        raise StoreError("the store failed to read: ConnectionError")

    async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
        raise StoreError("the store failed to add: ConnectionError")

    async def set(self, key: str, value: bytes, expires_in: int | None = None) -> None:
        raise StoreError("the store failed to write: ConnectionError")


async def test_a_failing_store_is_bypassed_and_logged(
    fake_op: FakeOP, fake_op_http: httpx.AsyncClient, clock: Clock
):
    alone = worker(fake_op, fake_op_http, BrokenStore(), clock)
    fake_op.misbehave.latency = {"token": 0.05}

    with capture_logs() as logs:
        tokens = await asyncio.gather(*(alone.token("fake") for _ in range(5)))
    again = await alone.token("fake")

    assert len({t.access_token for t in tokens}) == 1
    assert again == tokens[0]
    assert fake_op.oracle.count("token") == 1
    assert "rpkit.client_credentials.store_failed" in [entry["event"] for entry in logs]
