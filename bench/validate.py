"""Bearer-token validation cost: rpkit at first sight and for a token seen again, against bare
joserfc and raw ``cryptography``.

Runs standalone, in-process, with no network (the fake OP answers through an httpx transport):

    .venv/bin/python bench/validate.py                     # 7 interleaved rounds, ~0.15 s/case
    .venv/bin/python bench/validate.py --rounds 9 --cpu 1  # more rounds, pinned to CPU 1

Method (as in ``perf-baselines.md``): RS256 (RSA-2048) access tokens with the claims of a
Scalekit access token, a pool of ``--pool`` distinct ones; every case gets the same, already
parsed public key (the steady state of a JWKS cache) and, except the raw floor, verifies the
signature and checks ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat``. The cases:

* ``raw``: split, base64url-decode the signature, one ``cryptography`` RSA verify;
* ``joserfc``: ``jwt.decode`` + ``JWTClaimsRegistry.validate``;
* ``rpkit_cold``: ``TokenValidator.validate_access_token`` with its verified-token cache on
  and every token seen for the first time: the pool is cycled through a cache holding half of
  it, so every call misses (checked), verifies and inserts (evicting the oldest entry);
* ``rpkit_nocache``: the same with the cache off (``access_token_cache_size=0``);
* ``rpkit_repeat``: one token, already in the cache (the steady state of an API client).

``raw``, ``joserfc`` and the two first-sight cases cycle through the same pool. Each case is
sanity-checked first (the valid token passes, a tampered one fails). Every round runs every case
once, in a freshly shuffled order, in a batch calibrated to about ``--case-seconds``; the figures
are the median µs per token over rounds and the median of the per-round ratios.

Then ``raw`` and ``rpkit_nocache`` once more, call by call, with ``--evict-kib`` KiB of memory
(8 MiB by default, more than a core's L2 cache on the benchmark machine) written just before
each timed call: the CPU's caches then hold that memory rather than the validator's code and
data, as they do on a busy server between two of the validator's calls (``bench/README.md``).
``raw_evicted_us`` and ``rpkit_nocache_evicted_us`` are the medians over ``--evicted-calls``
calls of each; no target, a figure to judge changes by. Prints one JSON object. With
``RPKIT_BENCH_SMOKE=1`` it runs one short round over a small pool, whatever the arguments: the
figures then only show that it works.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from importlib.metadata import version
from typing import Any

import httpx
import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt

from rpkit._jwt import parse_compact
from rpkit.errors import AccessTokenValidationError
from rpkit.id_token import AccessToken, AccessTokenPolicy, TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import FakeOP
from rpkit.testing._jose import b64url_decode, corrupt_signature

AUDIENCE = "skc_987654321098765432"
CASES = ("raw", "joserfc", "rpkit_cold", "rpkit_nocache", "rpkit_repeat")
TARGETS = {"rpkit_cold_over_raw": 1.4, "rpkit_repeat_over_raw": 0.15, "jwks_fetches_per_1000": 0}
SMOKE = os.environ.get("RPKIT_BENCH_SMOKE") == "1"


def mint_token(op: FakeOP) -> str:
    """A Scalekit-shaped access token (``perf-baselines.md`` §1), signed by the fake OP."""
    now = op.now()
    return op.minter.mint_access_token(
        subject="usr_987654321098765432",
        audience=[AUDIENCE],
        client_id=AUDIENCE,
        scope="openid profile",
        claims={
            "nbf": now,
            "oid": "org_69615647365005430",
            "roles": ["project_manager", "member"],
            "permissions": ["projects:create", "projects:read", "tasks:assign"],
            "sid": "ses_987654321098765432",
        },
    )


class Bench:
    """The cases over one fake OP, one warm JWKS cache and one event loop."""

    def __init__(self, pool: int) -> None:
        self.op = FakeOP()
        self.loop = asyncio.new_event_loop()
        self.jwks = JWKSCache(httpx.AsyncClient(transport=self.op.transport(), timeout=5.0))
        self.jwks_uri = self.op.endpoints["jwks"]
        self.policy = AccessTokenPolicy(
            issuers=(self.op.issuer,), jwks_uri=self.jwks_uri, audience=(AUDIENCE,)
        )
        self.tokens = [mint_token(self.op) for _ in range(pool)]
        self.token = self.tokens[0]
        # First sight: a cache smaller than the pool, cycled in order, never holds the next one.
        self.cold = TokenValidator(self.jwks, access_token_cache_size=pool // 2)
        self.nocache = TokenValidator(self.jwks, access_token_cache_size=0)
        self.repeat = TokenValidator(self.jwks)
        # One cycle per case: the first-sight case must see the pool in order, without gaps.
        self.cycles = {case: itertools.cycle(self.tokens) for case in CASES}
        header = parse_compact(self.token).header
        self.key = self.loop.run_until_complete(self.jwks.key_for(self.jwks_uri, header, "RS256"))
        self.claims_registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.op.issuer},
            aud={"essential": True, "value": AUDIENCE},
            exp={"essential": True},
        )

    def raw(self, token: str) -> None:
        """The floor: one RSA verify, the signing input and signature split and decoded here."""
        head, payload, signature = token.split(".")
        public = self.key.public_key
        public.verify(  # type: ignore[call-arg,union-attr]
            b64url_decode(signature),
            f"{head}.{payload}".encode("ascii"),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )

    def joserfc(self, token: str) -> None:
        decoded = jwt.decode(token, self.key, algorithms=["RS256"])
        self.claims_registry.validate(decoded.claims)

    async def rpkit_batch(self, validator: TokenValidator, tokens: list[str]) -> float:
        validate, policy = validator.validate_access_token, self.policy
        start = time.perf_counter()
        for token in tokens:
            await validate(token, policy)
        return time.perf_counter() - start

    def timed(self, case: str, n: int) -> float:
        """Seconds for ``n`` validations: the repeat case of one token, the others of the next
        ``n`` tokens of the pool."""
        one = case == "rpkit_repeat"
        tokens = [self.token] * n if one else list(itertools.islice(self.cycles[case], n))
        if case.startswith("rpkit"):
            validator = {"rpkit_cold": self.cold, "rpkit_nocache": self.nocache}.get(case)
            return self.run(self.rpkit_batch(validator or self.repeat, tokens))
        fn: Callable[[str], None] = getattr(self, case)
        start = time.perf_counter()
        for token in tokens:
            fn(token)
        return time.perf_counter() - start

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def sanity_check(self) -> None:
        """Every case accepts the valid token and rejects one with a corrupted signature; the
        first-sight case never finds its token in the cache."""
        bad, policy = corrupt_signature(self.token), self.policy
        for validator in (self.cold, self.nocache, self.repeat):
            accepted: AccessToken = self.run(validator.validate_access_token(self.token, policy))
            assert accepted.sub == "usr_987654321098765432"  # noqa: S101
            if self.rpkit_reason(validator, bad) != "signature":
                raise AssertionError("rpkit accepted a tampered signature")
        for case in ("raw", "joserfc"):
            getattr(self, case)(self.token)
            try:
                getattr(self, case)(bad)
            except Exception:  # noqa: S112 - InvalidSignature, BadSignatureError
                continue
            raise AssertionError(f"{case} accepted a tampered signature")
        cache = self.cold.access_token_cache
        assert cache is not None  # noqa: S101
        cache.clear()  # from here on, it sees the pool in order only
        for token in itertools.islice(self.cycles["rpkit_cold"], 2 * len(self.tokens)):
            if self.cold.cached_access_token(token, policy) is not None:
                raise AssertionError("the first-sight case found a token in its cache")
            self.run(self.cold.validate_access_token(token, policy))
        if self.repeat.cached_access_token(self.token, self.policy) is None:
            raise AssertionError("the repeat case's token is not in its cache")

    def rpkit_reason(self, validator: TokenValidator, token: str) -> str | None:
        """The rejection reason rpkit gives ``token``, or None when it accepts it."""
        try:
            self.run(validator.validate_access_token(token, self.policy))
        except AccessTokenValidationError as exc:
            return exc.reason
        return None

    def evicted(self, calls: int, evict_kib: int) -> dict[str, float]:
        """Median µs of one call of the raw and the cache-off cases when ``evict_kib`` KiB of
        memory were written just before it (the CPU's caches then hold that, not the
        validator's code and data, as on a server between two of its requests); the two cases
        alternate, cycling through the pool, and only the call itself is timed."""
        stride = 64  # one write per cache line
        memory = bytearray(evict_kib * 1024)
        ones = b"\x01" * len(memory[::stride])
        tokens = itertools.cycle(self.tokens)
        validate, policy, clock = self.nocache.validate_access_token, self.policy, time.perf_counter

        async def measure() -> dict[str, list[float]]:
            times: dict[str, list[float]] = {"raw": [], "rpkit_nocache": []}
            for _ in range(calls):
                token = next(tokens)
                memory[::stride] = ones
                start = clock()
                self.raw(token)
                times["raw"].append(clock() - start)
                memory[::stride] = ones
                start = clock()
                await validate(token, policy)
                times["rpkit_nocache"].append(clock() - start)
            return times

        times = self.run(measure())
        return {case: statistics.median(values) * 1e6 for case, values in times.items()}

    def fetches_per_1000(self) -> int:
        before = self.jwks.fetches(self.jwks_uri)
        self.timed("rpkit_cold", 1000)
        return self.jwks.fetches(self.jwks_uri) - before


def calibrate(bench: Bench, case: str, seconds: float) -> int:
    bench.timed(case, 50)
    n, elapsed = 50, bench.timed(case, 50)
    while elapsed < 0.05 and elapsed < seconds:
        n *= 2
        elapsed = bench.timed(case, n)
    return max(50, int(n * seconds / elapsed))


def run(
    rounds: int, case_seconds: float, pool: int, evicted_calls: int, evict_kib: int
) -> dict[str, object]:
    bench = Bench(pool)
    bench.sanity_check()
    sizes = {case: calibrate(bench, case, case_seconds) for case in CASES}
    per_call: dict[str, list[float]] = {case: [] for case in CASES}
    for number in range(rounds):
        order = list(CASES)
        random.shuffle(order)
        for case in order:
            per_call[case].append(bench.timed(case, sizes[case]) / sizes[case] * 1e6)
        print(f"round {number + 1}/{rounds}", file=sys.stderr)
    fetches = bench.fetches_per_1000()
    evicted = bench.evicted(evicted_calls, evict_kib)
    context = {"rounds": rounds, "n_per_batch": sizes, "distinct_tokens": pool}
    context |= {
        "raw_evicted_us": round(evicted["raw"], 2),
        "rpkit_nocache_evicted_us": round(evicted["rpkit_nocache"], 2),
        "rpkit_nocache_evicted_over_raw": round(evicted["rpkit_nocache"] / evicted["raw"], 3),
        "evicted": {"calls": evicted_calls, "kib_written_before_each": evict_kib},
    }
    return summary(per_call, fetches, context | {"token_bytes": len(bench.token)})


def summary(
    per_call: dict[str, list[float]], fetches: int, context: dict[str, Any]
) -> dict[str, object]:
    def ratio(a: str, b: str) -> float:
        return round(
            statistics.median(x / y for x, y in zip(per_call[a], per_call[b], strict=True)), 3
        )

    result: dict[str, Any] = {
        f"{case}_us": round(statistics.median(values), 2) for case, values in per_call.items()
    }
    result |= {
        "rpkit_cold_over_raw": ratio("rpkit_cold", "raw"),
        "rpkit_repeat_over_raw": ratio("rpkit_repeat", "raw"),
        "rpkit_nocache_over_raw": ratio("rpkit_nocache", "raw"),
        "rpkit_cold_over_joserfc": ratio("rpkit_cold", "joserfc"),
        "joserfc_over_raw": ratio("joserfc", "raw"),
        "jwks_fetches_per_1000": fetches,
        "targets": TARGETS,
    }
    result["targets_met"] = (
        result["rpkit_cold_over_raw"] <= TARGETS["rpkit_cold_over_raw"]
        and result["rpkit_repeat_over_raw"] <= TARGETS["rpkit_repeat_over_raw"]
        and fetches == TARGETS["jwks_fetches_per_1000"]
    )
    return (
        result
        | {"smoke": SMOKE}
        | context
        | {
            "alg": "RS256 (RSA-2048)",
            "python": platform.python_version(),
            "joserfc": version("joserfc"),
            "cryptography": version("cryptography"),
            "msgspec": version("msgspec"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--case-seconds", type=float, default=0.15)
    parser.add_argument("--pool", type=int, default=1000, help="distinct tokens minted")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--evicted-calls", type=int, default=1000, help="calls of each case with caches evicted"
    )
    parser.add_argument(
        "--evict-kib", type=int, default=8192, help="KiB written before each of those calls"
    )
    args = parser.parse_args()
    if SMOKE:
        args.rounds, args.case_seconds, args.pool, args.evicted_calls = 1, 0.005, 16, 10
    if args.pool < 4:
        parser.error("--pool must be at least 4")
    if args.evicted_calls < 1 or args.evict_kib < 0:
        parser.error("--evicted-calls must be at least 1 and --evict-kib at least 0")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    random.seed(args.seed)
    # rpkit's logs (a jwks_fetched event, the tampered token's refusal) go to stderr, so stdout
    # is exactly one JSON object.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    result = run(args.rounds, args.case_seconds, args.pool, args.evicted_calls, args.evict_kib)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
