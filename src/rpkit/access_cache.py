"""The verified-token cache: an API verifies the signature of a given bearer token once.

An API sees the same access token on many calls. :class:`VerifiedTokenCache` keeps what
:meth:`~rpkit.id_token.TokenValidator.validate_access_token` concluded about a token that passed
every check, keyed by the SHA-256 of the token's exact bytes and by the policy that accepted it,
so a later call with the same bytes under the same policy skips the signature verification and
the claim parsing. What a cached verdict may not outlive is checked again on every use:

* the clock: ``exp``, ``nbf`` and ``iat`` against the current time (an entry is never used at or
  after ``exp``, even within the policy's leeway: that window goes through the full validation);
* the key: the signing key must still be in the fresh key set that verified it; once the set
  expires or is replaced (a refetch after a rotation or an unknown ``kid``), the entry is dropped;
* the policy: only the very policy object that accepted the token finds the entry (policies are
  frozen), and its ``required_scopes`` are checked against the token's scopes again.

Only a token that passed every check enters, so no refusal is ever served from the cache, and a
flood of distinct forged tokens leaves it as it was. An entry stands for a token, never for a
request: a DPoP-bound token's entry keeps its ``cnf.jkt``, and the bearer middleware checks a
fresh proof against it on every request, cached or not. The cache is a bounded LRU (by count);
a miss that is already being validated by another task waits for that task instead of
verifying the same signature again.

Example:
    >>> import httpx
    >>> from rpkit.id_token import TokenValidator
    >>> from rpkit.jwks import JWKSCache
    >>> validator = TokenValidator(JWKSCache(httpx.AsyncClient()), access_token_cache_size=5000)
    >>> validator.access_token_cache.max_entries
    5000
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from hashlib import sha256 as _sha256
from typing import Final

from rpkit._jwt import MAX_TOKEN_LENGTH
from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.errors import AccessTokenValidationError, ConfigurationError
from rpkit.jwks import JWKSCache, VerificationKey

__all__ = [
    "DEFAULT_ACCESS_TOKEN_CACHE_SIZE",
    "ENTRY_BYTES",
    "CacheKey",
    "Flight",
    "VerifiedTokenCache",
]

DEFAULT_ACCESS_TOKEN_CACHE_SIZE: Final = 10_000
"""Entries kept by default: about 24 MiB at :data:`ENTRY_BYTES` each."""
ENTRY_BYTES: Final = 2500
"""Memory per entry: 2.4 KiB measured with ``tracemalloc`` (2,000 entries) for a 944-byte RS256
access token with 13 claims (Scalekit's shape): the validated token and its read-only claims,
the digest, the LRU slot and the entry. It grows with the claims, not with the signature: the
token itself is not kept."""

CacheKey = tuple[bytes, int]
"""The SHA-256 of the token's bytes and the ``id`` of the policy that accepted it (the entry
holds that policy, so the id cannot be reused while the entry lives)."""


_Entry = tuple[AccessToken, AccessTokenPolicy, VerificationKey, "int | None"]
"""The token as accepted, the policy that accepted it, the key (as
:class:`~rpkit.jwks.JWKSCache` returned it) that verified its signature, and its ``nbf``. A
plain tuple: built and unpacked in C on the request path."""


class Flight:
    """One validation in progress, made when a second task asks for the same key: the tasks
    waiting for it and, once it landed, its refusal."""

    __slots__ = ("refusal", "waiters")

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[None]] = []
        self.refusal: AccessTokenValidationError | None = None


_PENDING: Final = Flight()
"""The mark of a validation in progress that nobody waits for yet (the common case: no
allocation)."""


class VerifiedTokenCache:
    """A bounded LRU of access tokens that passed every check, keyed by their exact bytes.

    Memory per entry: about :data:`ENTRY_BYTES` (2.5 KiB) for a typical 1 KiB access token, so
    ``max_entries=10_000`` takes about 24 MiB; entries hold the token's claims, not the token.

    Safe for any number of concurrent tasks on the validator's event loop: every read and
    update happens without an ``await`` in between, and a token being validated by one task is
    waited for, not verified again, by the others (:meth:`flight`, :meth:`wait`).

    Args:
        jwks: the key cache the validator takes keys from; an entry is used only while the key
            that verified it is still in that cache's fresh set.
        max_entries: how many tokens to keep; the least recently used one goes first.
        clock: wall-clock seconds (:attr:`clock`), the validator's own.

    Raises:
        ConfigurationError: ``max_entries`` is not a positive integer.
    """

    __slots__ = ("_entries", "_flights", "_jwks", "clock", "max_entries")

    def __init__(
        self,
        jwks: JWKSCache,
        max_entries: int = DEFAULT_ACCESS_TOKEN_CACHE_SIZE,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            msg = "VerifiedTokenCache needs max_entries >= 1 (turn the cache off instead)"
            raise ConfigurationError(msg)
        self.max_entries = max_entries
        self.clock = clock
        """Wall-clock seconds, for callers of :meth:`find` (the validator's clock)."""
        self._jwks = jwks
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._flights: dict[CacheKey, Flight] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every entry (for example after revoking keys out of band)."""
        self._entries.clear()

    def find(
        self, token: str | bytes, policy: AccessTokenPolicy, now: float
    ) -> AccessToken | CacheKey | None:
        """The cached token for ``token``'s exact bytes under ``policy``, when it may still be
        used at ``now``. Otherwise the key to :meth:`put` it under once validated (an entry
        that may no longer be used is dropped), or None for input the validator refuses before
        decoding (not a string, empty or too long), which is never hashed.

        ``token`` may be the bytes a header carried: those of a token the validator accepted
        (ASCII, so the same as its text's UTF-8) hash to its key. One call for the whole
        lookup, as it runs on every request of a bearer API.
        """
        if type(token) is str:
            token = token.encode()
        elif type(token) is not bytes:
            return None
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        key = (_sha256(token).digest(), id(policy))
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            return key
        access, accepted_by, verified_with, nbf = entry
        leeway = policy.leeway
        if (
            accepted_by is not policy
            or now >= access.exp
            or access.iat > now + leeway
            or (nbf is not None and nbf > now + leeway)
            or not self._jwks.holds(policy.jwks_uri, verified_with)
            or (
                policy.required_scopes
                and any(scope not in access.scopes for scope in policy.required_scopes)
            )
        ):
            del entries[key]
            return key
        entries.move_to_end(key)
        return access

    def put(
        self,
        key: CacheKey,
        token: AccessToken,
        policy: AccessTokenPolicy,
        verified_with: VerificationKey,
        nbf: int | None,
        *,
        now: float,
    ) -> None:
        """Keep ``token``, which passed every check under ``policy`` with a signature verified
        by ``verified_with`` (``nbf`` as checked, if present); a token at or past its ``exp``
        is not kept."""
        if now >= token.exp:
            return
        entries = self._entries
        entries[key] = (token, policy, verified_with, nbf)
        if len(entries) > self.max_entries:
            entries.popitem(last=False)

    def flight(self, key: CacheKey) -> Flight | None:
        """The validation of ``key`` in progress in another task, to :meth:`wait` for; None
        when there is none."""
        flight = self._flights.get(key)
        if flight is _PENDING:
            flight = self._flights[key] = Flight()
        return flight

    def in_flight(self, key: CacheKey) -> bool:
        """Whether another task is validating ``key`` (then :meth:`flight` and :meth:`wait`)."""
        return key in self._flights

    def take_off(self, key: CacheKey) -> None:
        """Mark ``key`` as being validated by the calling task, until it calls :meth:`land`."""
        self._flights[key] = _PENDING

    def land(self, key: CacheKey, refusal: AccessTokenValidationError | None) -> None:
        """The validation of ``key`` ended: accepted (and kept) when ``refusal`` is None, or
        refused, or cancelled (``refusal`` None and nothing kept). Wakes the waiters."""
        flight = self._flights.pop(key, _PENDING)
        if flight is _PENDING:
            return
        flight.refusal = refusal
        for waiter in flight.waiters:
            if not waiter.done():
                waiter.set_result(None)

    @staticmethod
    async def wait(flight: Flight) -> AccessTokenValidationError | None:
        """Wait for ``flight`` to land; its refusal, or None (then look the key up again)."""
        waiter = asyncio.get_running_loop().create_future()
        flight.waiters.append(waiter)
        await waiter
        return flight.refusal
