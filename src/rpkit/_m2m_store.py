"""Client-credentials tokens shared by the workers through a :class:`~rpkit.store.KeyValueStore`.

For one request (a name: a digest of provider, client, audience, resource and scopes) the store
holds three keys: ``rpkit:m2m:<name>:token``, the token and when to renew it, kept as long as the
token lives; ``:lock``, set-if-absent (``add``) with an expiry and a random owner value while one
worker fetches; and ``:failed``, the outcome of that worker's failed fetch. A worker that finds no
fresh token takes the lock and fetches; the others poll (capped, jittered backoff) until the token
appears, the holder's failure appears (raised to them as their own), or their wait ends. A
refusal is also raised to later callers until it expires (``refusal_ttl``). A store that fails
(:class:`~rpkit.errors.StoreError`) is logged and bypassed: the process fetches on its own, as
it would without a store.

The release compares the owner value before deleting, in two steps: a holder could free a lock
that expired and was taken by another worker only after holding it past its expiry (three request
timeouts), which no fetch does.
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import msgspec

from rpkit._log import get_logger
from rpkit.errors import (
    ClientCredentialsError,
    ClientCredentialsRefusedError,
    ClientCredentialsResponseError,
    ClientCredentialsUnavailableError,
    StoreError,
)
from rpkit.store import KeyValueStore

__all__ = ["Outcome", "SharedTokens", "Stored"]

T = TypeVar("T")

_PREFIX = "rpkit:m2m:"
_FIRST_PAUSE = 0.01
_LONGEST_PAUSE = 0.25
Kind = Literal["refused", "unavailable", "response"]
_CLASSES: dict[str, type[ClientCredentialsError]] = {
    "refused": ClientCredentialsRefusedError,
    "unavailable": ClientCredentialsUnavailableError,
    "response": ClientCredentialsResponseError,
}


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    """A token as the store keeps it (a :class:`~rpkit.client_credentials.MachineToken` and
    when to renew it)."""

    access_token: str
    expires_at: int
    scope: tuple[str, ...]
    renew_at: float


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """A failed fetch, enough to raise the same error again."""

    kind: Kind
    detail: str
    status: int | None = None
    error: str | None = None
    description: str | None = None
    until: float = 0.0
    """For a refusal: raised again to any caller until then (wall-clock seconds)."""
    attempt: str | None = None
    """The lock owner value of the fetch that failed: raised to the workers that waited for it."""

    @classmethod
    def of(
        cls, exc: ClientCredentialsError, *, until: float = 0.0, attempt: str | None = None
    ) -> Outcome:
        kind: Kind = (
            "refused"
            if isinstance(exc, ClientCredentialsRefusedError)
            else "response"
            if isinstance(exc, ClientCredentialsResponseError)
            else "unavailable"
        )
        return cls(
            kind=kind,
            detail=exc.detail,
            status=exc.status,
            error=exc.error,
            description=exc.description,
            until=until,
            attempt=attempt,
        )

    def to_error(self) -> ClientCredentialsError:
        """A new error like the one that failed the fetch."""
        return _CLASSES[self.kind](
            self.detail, status=self.status, error=self.error, description=self.description
        )


class SharedTokens:
    """The cross-worker half of :class:`~rpkit.client_credentials.ClientCredentials`.

    Args:
        store: the shared store.
        lock_ttl: seconds a lock lives if its holder never frees it (a crashed worker).
        wait: seconds a worker waits for another's fetch.
        refusal_ttl: seconds a refusal is raised to later callers.
        clock: wall-clock seconds (renewal times are compared across workers).
    """

    def __init__(
        self,
        store: KeyValueStore,
        *,
        lock_ttl: int,
        wait: float,
        refusal_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self._lock_ttl = lock_ttl
        self._wait = wait
        self._refusal_ttl = refusal_ttl
        self._clock = clock
        self._log = get_logger()

    async def obtain(self, name: str, fetch: Callable[[], Awaitable[Stored]]) -> Stored:
        """A fresh token from the store, or from ``fetch`` run by this worker under the lock.

        Raises:
            ClientCredentialsError: the failure of ``fetch`` (here or in the worker waited
                for), a remembered refusal, or (unavailable) a wait past ``wait`` seconds.
        """
        seen: set[str] = set()
        attempt = secrets.token_urlsafe(16)
        deadline = time.monotonic() + self._wait
        pause = _FIRST_PAUSE
        while True:
            stored = await self._fresh(name)
            if stored is not None:
                return stored
            failure = await self._failure(name)
            if failure is not None and (
                failure.attempt in seen
                or (failure.kind == "refused" and self._clock() < failure.until)
            ):
                raise failure.to_error()
            holder = await self._take(name, attempt)
            if holder is None:
                break
            seen.add(holder)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = f"another worker has been fetching this token for more than {self._wait:g} s"
                raise ClientCredentialsUnavailableError(msg)
            await asyncio.sleep(min(remaining, pause * (0.5 + random.random())))  # noqa: S311
            pause = min(pause * 2, _LONGEST_PAUSE)
        try:
            return await self._fetch_under_lock(name, attempt, fetch)
        finally:
            # Shielded: a cancelled caller still frees the lock instead of leaving it to expire.
            await asyncio.shield(self._release(name, attempt))

    async def discard(self, name: str, access_token: str) -> None:
        """Delete the stored token of ``name`` if it is still ``access_token``."""
        stored = await self._read(name, "token", Stored)
        if stored is not None and stored.access_token == access_token:
            await self._step("delete a token", self.store.delete(_key(name, "token")))

    async def _fetch_under_lock(
        self, name: str, attempt: str, fetch: Callable[[], Awaitable[Stored]]
    ) -> Stored:
        stored = await self._fresh(name)  # saved between the last look and the lock
        if stored is not None:
            return stored
        try:
            stored = await fetch()
        except ClientCredentialsError as exc:
            refused = isinstance(exc, ClientCredentialsRefusedError)
            until = self._clock() + self._refusal_ttl if refused else 0.0
            outcome = Outcome.of(exc, until=until, attempt=attempt)
            # Kept while a waiter may still poll for it, and a refusal as long as it counts.
            ttl = max(self._lock_ttl, math.ceil(self._refusal_ttl) if refused else 0)
            failed = self.store.set(_key(name, "failed"), msgspec.json.encode(outcome), ttl)
            await self._step("record a failure", failed)
            raise
        ttl = max(1, int(stored.expires_at - self._clock()))
        await self._step(
            "save a token", self.store.set(_key(name, "token"), msgspec.json.encode(stored), ttl)
        )
        await self._step("clear a failure", self.store.delete(_key(name, "failed")))
        return stored

    async def _fresh(self, name: str) -> Stored | None:
        stored = await self._read(name, "token", Stored)
        if stored is None or self._clock() >= stored.renew_at:
            return None
        return stored

    async def _failure(self, name: str) -> Outcome | None:
        return await self._read(name, "failed", Outcome)

    async def _read(self, name: str, part: str, kind: type[T]) -> T | None:
        raw = await self._step(f"read a {part}", self.store.get(_key(name, part)))
        if not isinstance(raw, bytes):
            return None
        try:
            return msgspec.json.decode(raw, type=kind)
        except msgspec.DecodeError:
            self._log.warning("rpkit.client_credentials.store_entry_unreadable", part=part)
            return None

    async def _take(self, name: str, attempt: str) -> str | None:
        """None when this worker now holds the lock (or the store failed: go alone); else the
        holder's owner value (empty when it was freed meanwhile)."""
        lock = _key(name, "lock")
        added = await self._step(
            "take a lock", self.store.add(lock, attempt.encode(), self._lock_ttl)
        )
        if added is not False:
            return None
        holder = await self._step("read a lock", self.store.get(lock))
        return holder.decode("utf-8", "replace") if isinstance(holder, bytes) else ""

    async def _release(self, name: str, attempt: str) -> None:
        lock = _key(name, "lock")
        if await self._step("read a lock", self.store.get(lock)) == attempt.encode():
            await self._step("free a lock", self.store.delete(lock))

    async def _step(self, what: str, step: Awaitable[T]) -> T | None:
        """``step``'s result, or None (logged) when the store failed."""
        try:
            return await step
        except StoreError as exc:
            self._log.warning("rpkit.client_credentials.store_failed", what=what, detail=exc.detail)
            return None


def _key(name: str, part: str) -> str:
    return f"{_PREFIX}{name}:{part}"
