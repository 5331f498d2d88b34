"""The OP's signing keys: fetched from ``jwks_uri`` only, cached, and selected strictly.

:class:`JWKSCache` keeps one key set per ``jwks_uri`` for the TTL the OP's ``Cache-Control``
asks, clamped. A key is chosen by ``kid``, key type, curve, ``use``, ``key_ops`` and ``alg``;
a token without ``kid`` needs exactly one candidate (rows 38, 39). An unknown ``kid`` causes at
most one shared refetch per cooldown (rows 40, 41), and a failed, empty or oversized fetch never
empties the cached set (row 42). Keys announced in a token's header are never used (row 44), and
a redirect from ``jwks_uri`` is refused, never followed (:mod:`rpkit._outbound`).

Example:
    >>> import httpx
    >>> from rpkit.jwks import JWKSCache
    >>> keys = JWKSCache(httpx.AsyncClient(timeout=10.0))
    >>> # key = await keys.key_for(metadata.jwks_uri, token_header, "RS256")
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import httpx
import msgspec
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey

from rpkit._json import decode as decode_json
from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT, Refused, check_bounds, fetch
from rpkit.errors import ConfigurationError, JWKSError

__all__ = ["KEY_TYPES", "MAX_JWKS_BYTES", "JWKSCache", "VerificationKey"]

VerificationKey = RSAKey | ECKey | OKPKey
"""What :meth:`JWKSCache.key_for` returns: a public key for joserfc."""

KEY_TYPES: Mapping[str, tuple[str, frozenset[str] | None]] = MappingProxyType(
    {
        **{f"{family}{bits}": ("RSA", None) for family in ("RS", "PS") for bits in (256, 384, 512)},
        "ES256": ("EC", frozenset({"P-256"})),
        "ES384": ("EC", frozenset({"P-384"})),
        "ES512": ("EC", frozenset({"P-521"})),
        "ES256K": ("EC", frozenset({"secp256k1"})),
        "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
        "Ed25519": ("OKP", frozenset({"Ed25519"})),
        "Ed448": ("OKP", frozenset({"Ed448"})),
    }
)
"""JWS algorithm → the key type it needs and, for EC and OKP, the allowed curves."""

MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 256 * 1024
"""Largest key set read; a set of a few keys in rotation is a few kilobytes."""
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class _Candidate(NamedTuple):
    jwk: Mapping[str, Any]
    """The member set as published: selection filters on it, never on joserfc's view, which
    invents thumbprint ``kid`` values."""
    key: VerificationKey


class _JWKSDocument(msgspec.Struct):
    keys: list[Any]


_decode_key_set = msgspec.json.Decoder(_JWKSDocument).decode
_SECONDS = re.compile(r"[0-9]{1,10}")


class _KeySet:
    """One fetched key set. Replaced whole on refetch, so readers never see it half-built."""

    __slots__ = ("candidates", "expires_at", "key_ids", "known_kids", "memo")

    def __init__(
        self, candidates: tuple[_Candidate, ...], kids: frozenset[str], expires_at: float
    ) -> None:
        self.candidates = candidates
        self.key_ids = frozenset(id(candidate.key) for candidate in candidates)
        """The identities of the candidates' keys (alive as long as this set): what
        :meth:`JWKSCache.holds` asks, in one lookup."""
        self.known_kids = kids
        """Every ``kid`` the document named, usable or not (unknown types included)."""
        self.expires_at = expires_at
        self.memo: dict[tuple[str | None, str], VerificationKey] = {}
        """(kid, alg) → the key selected for it; only successful selections, so bounded."""

    def select(self, kid: str | None, alg: str) -> VerificationKey:
        """The one key for a token with ``kid`` (or none) signed with ``alg``.

        Raises:
            JWKSError: no candidate, or several.
        """
        kty, curves = KEY_TYPES[alg]
        found = [
            c.key
            for c in self.candidates
            if (kid is None or c.jwk.get("kid") == kid) and _usable(c.jwk, alg, kty, curves)
        ]
        if len(found) != 1:
            what = f"kid {kid!r}" if kid is not None else "a token without kid"
            amount = "no key" if not found else f"{len(found)} keys"
            msg = f"{amount} in the JWKS can verify {alg} for {what}"
            raise JWKSError(msg)
        self.memo[(kid, alg)] = found[0]
        return found[0]


def _usable(jwk: Mapping[str, Any], alg: str, kty: str, curves: frozenset[str] | None) -> bool:
    if jwk.get("kty") != kty or (curves is not None and jwk.get("crv") not in curves):
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    operations = jwk.get("key_ops")
    if operations is not None and "verify" not in operations:
        return False
    return bool(jwk.get("alg", alg) == alg)


class JWKSCache:
    """Signing keys per ``jwks_uri``, fetched over the application's shared client.

    Args:
        http: the application's pooled client; the cache never closes it. Its redirect setting
            is ignored (a redirect is refused), and its timeouts apply only where tighter than
            ``timeout``.
        default_ttl: seconds to keep a set when the response has no ``Cache-Control: max-age``.
        min_ttl: lower bound for the OP's ``max-age`` (``no-store`` counts as 0), and the delay
            before retrying a failed refresh while the stale set is served.
        max_ttl: upper bound for the OP's ``max-age``.
        refetch_cooldown: at most one forced refetch for unknown ``kid`` values per this many
            seconds per ``jwks_uri``: a stream of forged ``kid`` values cannot make rpkit hammer
            the OP (row 41).
        max_bytes: the largest key set read (default :data:`MAX_JWKS_BYTES`, 256 KiB); a larger
            one is refused, and the cached set stays in use.
        timeout: seconds one fetch may take in all (default 10).
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        default_ttl: float = 300,
        min_ttl: float = 60,
        max_ttl: float = 86400,
        refetch_cooldown: float = 60,
        max_bytes: int = MAX_JWKS_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_ttl <= default_ttl <= max_ttl or refetch_cooldown < 0:
            msg = "JWKSCache needs 0 < min_ttl <= default_ttl <= max_ttl and refetch_cooldown >= 0"
            raise ConfigurationError(msg)
        check_bounds("JWKSCache", max_bytes, timeout)
        self._http = http
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._default_ttl = default_ttl
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._cooldown = refetch_cooldown
        self._clock = clock
        self._sets: dict[str, _KeySet] = {}
        self._inflight: dict[str, asyncio.Task[_KeySet]] = {}
        self._forced_at: dict[str, float] = {}
        self._fetches: Counter[str] = Counter()

    async def key_for(self, jwks_uri: str, header: Mapping[str, Any], alg: str) -> VerificationKey:
        """The key that verifies a token with this protected ``header`` under ``alg``.

        Only ``kid`` is read from the header; ``jwk``, ``jku``, ``x5u`` and ``x5c`` are never
        used or fetched (row 44). ``alg`` is the algorithm the caller expects (from its
        configuration), not the header's.

        Raises:
            JWKSError: the set cannot be fetched, ``alg`` is not an asymmetric JWS algorithm,
                or not exactly one published key fits.
        """
        key = self.cached_key(jwks_uri, header, alg)
        if key is not None:
            return key  # the steady state: two dict lookups, no I/O, no lock
        kid = _header_kid(header)
        if alg not in KEY_TYPES:
            msg = f"{alg!r} is not verified with a key from the JWKS"
            raise JWKSError(msg)
        keys = self._sets.get(jwks_uri)
        if keys is not None and self._clock() < keys.expires_at:
            if kid is not None and kid not in keys.known_kids:
                keys = await self._refetch_for_unknown_kid(jwks_uri, keys, kid)
        else:
            keys = await self._shared_fetch(jwks_uri)
        return keys.select(kid, alg)

    def cached_key(
        self, jwks_uri: str, header: Mapping[str, Any], alg: str
    ) -> VerificationKey | None:
        """What :meth:`key_for` returns when it can answer from the fresh cached set alone (the
        steady state: a key already selected for this ``kid`` and ``alg``); None otherwise,
        then call :meth:`key_for`. Never fetches, so it needs no ``await``.

        Raises:
            JWKSError: the header's ``kid`` is not a string.
        """
        kid = _header_kid(header)
        keys = self._sets.get(jwks_uri)
        if keys is None or self._clock() >= keys.expires_at:
            return None
        # Only a selection key_for made under its own checks (alg among KEY_TYPES included)
        # is in the memo.
        return keys.memo.get((kid, alg))

    async def warm(self, jwks_uri: str) -> None:
        """Fetch the set unless a fresh one is cached (for example at application start).

        Raises:
            JWKSError: no set could be fetched and none is cached.
        """
        keys = self._sets.get(jwks_uri)
        if keys is None or self._clock() >= keys.expires_at:
            await self._shared_fetch(jwks_uri)

    def fetches(self, jwks_uri: str) -> int:
        """How many requests (successful or not) were sent to ``jwks_uri``."""
        return self._fetches[jwks_uri]

    def usable_keys(self, jwks_uri: str) -> int:
        """How many keys of the cached set can verify signatures (0 when nothing is cached)."""
        cached = self._sets.get(jwks_uri)
        return len(cached.candidates) if cached else 0

    def holds(self, jwks_uri: str, key: VerificationKey) -> bool:
        """Whether ``key``, as :meth:`key_for` returned it, is in the fresh set cached for
        ``jwks_uri``. False once that set has expired or been replaced (a refetch after a
        rotation or an unknown ``kid``), even when the new set publishes the same key again.
        Read-only: never fetches."""
        keys = self._sets.get(jwks_uri)
        return keys is not None and self._clock() < keys.expires_at and id(key) in keys.key_ids

    def invalidate(self, jwks_uri: str) -> None:
        """Forget the cached set; the next lookup fetches it again."""
        self._sets.pop(jwks_uri, None)

    async def _refetch_for_unknown_kid(self, jwks_uri: str, keys: _KeySet, kid: str) -> _KeySet:
        if jwks_uri not in self._inflight:
            last = self._forced_at.get(jwks_uri)
            now = self._clock()
            if last is not None and now - last < self._cooldown:
                log = get_logger(jwks_uri=jwks_uri)
                log.info(
                    "rpkit.jwks.refetch_throttled", kid=kid, retry_in=self._cooldown - (now - last)
                )
                return keys
            self._forced_at[jwks_uri] = now
        # A fetch already in flight (forced or not) is shared by every caller that missed.
        return await self._shared_fetch(jwks_uri)

    async def _shared_fetch(self, jwks_uri: str) -> _KeySet:
        task = self._inflight.get(jwks_uri)
        if task is None:
            task = asyncio.create_task(self._refresh(jwks_uri))
            self._inflight[jwks_uri] = task
            task.add_done_callback(lambda done: self._forget(jwks_uri, done))
        # Shielded: a caller that gives up does not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    def _forget(self, jwks_uri: str, task: asyncio.Task[_KeySet]) -> None:
        if self._inflight.get(jwks_uri) is task:
            del self._inflight[jwks_uri]
        if not task.cancelled():
            task.exception()  # retrieved here, so asyncio never reports it as unhandled

    async def _refresh(self, jwks_uri: str) -> _KeySet:
        previous = self._sets.get(jwks_uri)
        log = get_logger(jwks_uri=jwks_uri)
        try:
            keys = await self._fetch(jwks_uri)
        except JWKSError as exc:
            if previous is None:
                log.warning("rpkit.jwks.fetch_failed", detail=exc.detail)
                raise
            # Stale-if-error: keep the last good set, and retry no sooner than min_ttl.
            log.warning("rpkit.jwks.serving_cached", detail=exc.detail)
            previous.expires_at = max(previous.expires_at, self._clock() + self._min_ttl)
            return previous
        self._sets[jwks_uri] = keys
        log.info("rpkit.jwks.fetched", keys=len(keys.candidates), kids=sorted(keys.known_kids))
        return keys

    async def _fetch(self, jwks_uri: str) -> _KeySet:
        self._fetches[jwks_uri] += 1
        try:
            response = await fetch(
                self._http,
                "GET",
                jwks_uri,
                what=jwks_uri,
                max_bytes=self._max_bytes,
                timeout=self._timeout,
                headers={"Accept": "application/json"},
            )
        except Refused as exc:
            raise JWKSError(exc.detail, unavailable=True) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            msg = f"fetching {jwks_uri} failed: {type(exc).__name__}"
            raise JWKSError(msg, unavailable=True) from exc
        if response.status_code != 200:
            msg = f"{jwks_uri} answered HTTP {response.status_code}"
            status = httpx.HTTPStatusError(msg, request=response.request, response=response)
            raise JWKSError(msg, unavailable=True) from status
        ttl = self._ttl(response.headers.get("cache-control"))
        return _parse_key_set(response.content, jwks_uri, self._clock() + ttl)

    def _ttl(self, cache_control: str | None) -> float:
        max_age = _max_age(cache_control)
        if max_age is None:
            return self._default_ttl
        return min(max(float(max_age), self._min_ttl), self._max_ttl)


def _header_kid(header: Mapping[str, Any]) -> str | None:
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        msg = "the token header's kid is not a string"
        raise JWKSError(msg)
    return kid


def _max_age(cache_control: str | None) -> int | None:
    """``max-age`` in seconds; 0 for ``no-store``/``no-cache``; None when neither is given.

    A ``max-age`` that is not 1-10 ASCII digits (``²``, thousands of digits) counts as not
    given: ``int()`` would refuse the first and the cache bounds clamp any real one anyway.
    """
    result = None
    for directive in (cache_control or "").split(","):
        name, _, value = directive.strip().partition("=")
        name = name.lower()
        if name in ("no-store", "no-cache"):
            return 0
        if name == "max-age" and _SECONDS.fullmatch(value := value.strip('"')):
            result = int(value)
    return result


def _parse_key_set(content: bytes, jwks_uri: str, expires_at: float) -> _KeySet:
    def not_a_key_set() -> JWKSError:
        msg = f"{jwks_uri} did not return a JWK Set (a JSON object with a 'keys' array)"
        return JWKSError(msg, unavailable=True)

    document = decode_json(content, not_a_key_set, _decode_key_set)
    raw = [jwk for jwk in document.keys if isinstance(jwk, dict)]
    candidates = tuple(c for c in (_import(jwk, jwks_uri) for jwk in raw) if c is not None)
    if not candidates:
        # An empty set is treated as a failed fetch: it must never replace usable keys.
        msg = f"{jwks_uri} published no usable signing key"
        raise JWKSError(msg, unavailable=True)
    kids = frozenset(jwk["kid"] for jwk in raw if isinstance(jwk.get("kid"), str))
    return _KeySet(candidates, kids, expires_at)


def _import(jwk: dict[str, Any], jwks_uri: str) -> _Candidate | None:
    """Import one published key, or None to skip it (with the reason logged)."""
    problem = _skip_reason(jwk)
    if problem is None:
        try:
            key = JWKRegistry.import_key(dict(jwk))
        # Remote input: whatever joserfc or cryptography raise for it, the key is just skipped.
        except Exception as exc:
            problem = f"import failed: {type(exc).__name__}"
        else:
            if isinstance(key, VerificationKey):
                return _Candidate(MappingProxyType(dict(jwk)), key)
            problem = "not an asymmetric key"
    get_logger(jwks_uri=jwks_uri).info("rpkit.jwks.key_skipped", kid=jwk.get("kid"), reason=problem)
    return None


def _skip_reason(jwk: Mapping[str, Any]) -> str | None:
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        return f"unsupported key type {kty!r}"
    if _PRIVATE_MEMBERS & jwk.keys():
        return "private key material published"
    for name in ("kid", "use", "alg", "crv"):
        if name in jwk and not isinstance(jwk[name], str):
            return f"{name} is not a string"
    operations = jwk.get("key_ops")
    if operations is not None and not (
        isinstance(operations, list) and all(isinstance(op, str) for op in operations)
    ):
        return "key_ops is not an array of strings"
    if kty == "RSA" and modulus_bits(jwk.get("n")) < MIN_RSA_BITS:
        return f"RSA modulus shorter than {MIN_RSA_BITS} bits"
    return None


def modulus_bits(n: Any) -> int:
    """The bit length of a JWK's base64url ``n``; 0 when it is not one."""
    if not isinstance(n, str):
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()
