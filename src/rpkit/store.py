"""The key-value store rpkit keeps one-time and cached values in, and an in-memory implementation.

Login transactions, back-channel logout ``jti`` values and passwordless counters live behind
:class:`KeyValueStore`. Its :meth:`~KeyValueStore.consume` is an *atomic* get-and-delete: two
callbacks carrying the same ``state`` must not both succeed, even on two workers; likewise
:meth:`~KeyValueStore.add` (set-if-absent) lets exactly one of two replays through. The Litestar
adapter implements the protocol over Litestar stores (``GETDEL`` on Redis).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["KeyValueStore", "MemoryStore"]


@runtime_checkable
class KeyValueStore(Protocol):
    """Async bytes-valued storage with expiry and an atomic consume."""

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, expires_in: int | None = None) -> None:
        """Store ``value`` under ``key``, for ``expires_in`` seconds (forever when None)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; absent keys are fine."""
        ...

    async def consume(self, key: str) -> bytes | None:
        """Atomically return and remove the value under ``key``; exactly one caller gets it."""
        ...

    async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
        """Atomically store ``value`` only if ``key`` is absent; True when it was stored.
        Replay caches (logout ``jti``, webhook ids) rely on exactly one caller winning."""
        ...


class MemoryStore:
    """A per-process :class:`KeyValueStore`. Correct for one worker only.

    Every operation completes without yielding to the event loop, which is what makes
    :meth:`consume` atomic here. Expired entries are dropped when read and swept as the store
    grows, so abandoned logins do not accumulate.

    Args:
        clock: a monotonic clock in seconds (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._sweep_at = 1024

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        """See :meth:`KeyValueStore.get`."""
        return self._live(key)

    async def set(self, key: str, value: bytes, expires_in: int | None = None) -> None:
        """See :meth:`KeyValueStore.set`."""
        expires_at = None if expires_in is None else self._clock() + expires_in
        self._data[key] = (value, expires_at)
        if len(self._data) >= self._sweep_at:
            self.sweep()
            self._sweep_at = max(1024, 2 * len(self._data))

    async def delete(self, key: str) -> None:
        """See :meth:`KeyValueStore.delete`."""
        self._data.pop(key, None)

    async def consume(self, key: str) -> bytes | None:
        """See :meth:`KeyValueStore.consume`."""
        value = self._live(key)
        self._data.pop(key, None)
        return value

    async def add(self, key: str, value: bytes, expires_in: int | None = None) -> bool:
        """See :meth:`KeyValueStore.add`."""
        if self._live(key) is not None:
            return False
        await self.set(key, value, expires_in)
        return True

    def sweep(self) -> int:
        """Drop every expired entry; returns how many were dropped."""
        now = self._clock()
        expired = [k for k, (_, at) in self._data.items() if at is not None and at <= now]
        for key in expired:
            del self._data[key]
        return len(expired)

    def _live(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= self._clock():
            del self._data[key]
            return None
        return value
