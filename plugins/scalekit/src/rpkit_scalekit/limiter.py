"""A local mirror of Scalekit's passwordless limits, so abuse is refused before it costs a call.

Scalekit allows 2 emails per minute per address (sends and resends) and 5 wrong codes per
``auth_request_id`` in 10 minutes. :class:`PasswordlessLimiter` enforces the same over rpkit's
:class:`~rpkit.store.KeyValueStore` — shared by every worker when the store is Redis.

**How.** A limit of *N* per *W* seconds is *N* slot keys. Taking a slot is one atomic
:meth:`~rpkit.store.KeyValueStore.add` with expiry *W*; when all *N* are held, the request is
refused. Every slot held was taken less than *W* seconds ago, so no window of *W* seconds ever
admits more than *N*: an exact sliding window, built from ``add`` alone, with no
read-modify-write. Attempts are reserved *before* the verify call, so concurrent guesses cannot
overshoot either.

**The races accepted.** (1) A slot given back (:meth:`release`, after an outage or a request
refused before anything was sent) is freed after the failure, not atomically with it: in between,
a concurrent request may be refused that would have fitted. That fails closed. (2) Store expiry has
one-second granularity, so a window may end up to a second late. (3) Scalekit's count and ours
can drift (a failure Scalekit counted but we gave back, an email sent by another client of the
environment); Scalekit still enforces its own limits and its 429 is mapped to the same errors.
(4) A resend is counted against the address recorded when the email was sent; if that record is
gone (expired, store flushed) the resend counts against its ``auth_request_id`` instead.

Keys hold no address: addresses are hashed, keyed with ``key`` when given, so a store dump does
not list who signs in.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import msgspec

from rpkit._log import get_logger
from rpkit.errors import ConfigurationError
from rpkit.store import KeyValueStore
from rpkit_scalekit.errors import PasswordlessAttemptsExhaustedError, PasswordlessRateLimitedError

__all__ = ["PasswordlessLimiter", "PasswordlessLimits", "Reservation", "check_limiter_key"]


class PasswordlessLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The limits enforced locally; Scalekit's documented values by default."""

    emails: int = 2
    """Emails (sends plus resends) per address per :attr:`email_window`."""
    email_window: int = 60
    """Seconds."""
    attempts: int = 5
    """Verify attempts per ``auth_request_id`` per :attr:`attempt_window`. Higher than
    Scalekit's is pointless; lower locks users out sooner than Scalekit would."""
    attempt_window: int = 600
    """Seconds."""

    def __post_init__(self) -> None:
        if min(self.emails, self.email_window, self.attempts, self.attempt_window) < 1:
            raise ConfigurationError("PasswordlessLimits values must all be at least 1")


def check_limiter_key(key: object) -> bytes | None:
    """``key`` when it is None or non-empty ``bytes``: it keys an HMAC.

    Raises:
        ConfigurationError: anything else, a ``str`` included.
    """
    if key is None or (type(key) is bytes and key):
        return key
    msg = (
        f"limiter_key must be non-empty bytes, not {type(key).__name__} "
        "(secrets.token_bytes(32), or a str secret .encode()d)"
    )
    raise ConfigurationError(msg)


class Reservation(msgspec.Struct, frozen=True):
    """One slot taken; give it back with :meth:`PasswordlessLimiter.release`."""

    key: str


class PasswordlessLimiter:
    """Refuses passwordless sends and verifies beyond Scalekit's limits, across workers.

    Args:
        store: the application's store; Redis (or another shared store) for several workers,
            otherwise each worker allows the full budget.
        limits: the limits (Scalekit's by default).
        key: a secret shared by all workers, keying the address hashes. Without it addresses
            are hashed with plain SHA-256, which a dictionary of addresses can reverse.
        prefix: the store key prefix.
        clock: wall-clock seconds; injectable for tests.

    Raises:
        ConfigurationError: ``key`` is not non-empty ``bytes`` (a ``str`` would fail only at
            the first send, as a 500).
    """

    def __init__(
        self,
        store: KeyValueStore,
        *,
        limits: PasswordlessLimits | None = None,
        key: bytes | None = None,
        prefix: str = "rpkit:scalekit:pl:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.limits = limits or PasswordlessLimits()
        self._key = check_limiter_key(key)
        self._prefix = prefix
        self._clock = clock

    def _digest(self, value: str) -> str:
        data = value.encode()
        if self._key is not None:
            return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:40]
        return hashlib.sha256(data).hexdigest()[:40]

    async def reserve_email(self, email: str) -> Reservation:
        """Take one of the address's email slots.

        Raises:
            PasswordlessRateLimitedError: all are taken (``local=True``, with ``retry_after``).
        """
        return await self._reserve_email_slot(self._digest(email.lower()))

    async def reserve_resend(self, auth_request_id: str) -> Reservation:
        """Take an email slot of the address ``auth_request_id`` was sent to.

        Raises:
            PasswordlessRateLimitedError: all are taken.
        """
        recorded = await self._store.get(self._request_key(auth_request_id))
        owner = recorded.decode() if recorded else "req-" + self._digest(auth_request_id)
        return await self._reserve_email_slot(owner)

    async def remember_address(self, auth_request_id: str, email: str) -> None:
        """Record which address ``auth_request_id`` mails, so resends count against it."""
        await self._store.set(
            self._request_key(auth_request_id),
            self._digest(email.lower()).encode(),
            max(self.limits.attempt_window, self.limits.email_window),
        )

    async def reserve_attempt(self, auth_request_id: str) -> Reservation:
        """Take one of ``auth_request_id``'s verify slots, before the verify call.

        Raises:
            PasswordlessAttemptsExhaustedError: all are taken (``local=True``).
        """
        base = self._attempt_base(auth_request_id)
        slot = await self._take(base, self.limits.attempts, self.limits.attempt_window)
        if slot is not None:
            return slot
        get_logger(provider="scalekit").info(
            "rpkit.scalekit.passwordless_limited", limit="attempts"
        )
        raise PasswordlessAttemptsExhaustedError(
            "too many attempts for this auth request: restart the flow",
            retry_after=await self._retry_after(base, self.limits.attempts),
            local=True,
        )

    async def attempts_left(self, auth_request_id: str) -> int:
        """How many verifies of ``auth_request_id`` the window still admits (read only: a
        concurrent verify may take one in between)."""
        base = self._attempt_base(auth_request_id)
        held = 0
        for index in range(self.limits.attempts):
            if await self._store.get(f"{base}{index}") is not None:
                held += 1
        return self.limits.attempts - held

    async def exhaust(self, auth_request_id: str) -> None:
        """Take every free verify slot (Scalekit answered 429): later verifies of this auth
        request are refused locally for the rest of the window."""
        base = self._attempt_base(auth_request_id)
        for _ in range(self.limits.attempts):  # bounded, whatever the store answers
            if await self._take(base, self.limits.attempts, self.limits.attempt_window) is None:
                return

    async def release(self, reservation: Reservation) -> None:
        """Give a slot back: the request it was taken for cannot have counted."""
        await self._store.delete(reservation.key)

    async def _reserve_email_slot(self, owner: str) -> Reservation:
        base = f"{self._prefix}email:{owner}:"
        slot = await self._take(base, self.limits.emails, self.limits.email_window)
        if slot is not None:
            return slot
        get_logger(provider="scalekit").info("rpkit.scalekit.passwordless_limited", limit="emails")
        raise PasswordlessRateLimitedError(
            "too many emails to this address",
            retry_after=await self._retry_after(base, self.limits.emails),
            local=True,
        )

    def _request_key(self, auth_request_id: str) -> str:
        return f"{self._prefix}req:{self._digest(auth_request_id)}"

    def _attempt_base(self, auth_request_id: str) -> str:
        return f"{self._prefix}attempt:{self._digest(auth_request_id)}:"

    async def _take(self, base: str, slots: int, window: int) -> Reservation | None:
        """The first free slot, taken atomically; each holds its own expiry time."""
        expires_at = str(int(self._clock()) + window).encode()
        for index in range(slots):
            if await self._store.add(f"{base}{index}", expires_at, window):
                return Reservation(f"{base}{index}")
        return None

    async def _retry_after(self, base: str, slots: int) -> int:
        """Seconds until the first slot frees (at least 1)."""
        now = int(self._clock())
        ends = []
        for index in range(slots):
            value = await self._store.get(f"{base}{index}")
            if value is not None and value.isdigit():
                ends.append(int(value))
        return max(1, min(ends, default=now + 1) - now)
