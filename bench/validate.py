"""Bearer-token validation cost: rpkit against bare joserfc and raw ``cryptography``.

Runs standalone, in-process, with no network (the fake OP answers through an httpx transport):

    .venv/bin/python bench/validate.py                     # 7 interleaved rounds, ~0.15 s/case
    .venv/bin/python bench/validate.py --rounds 9 --cpu 1  # more rounds, pinned to CPU 1

Method (as in ``perf-baselines.md``): one RS256 (RSA-2048) access token with the claims of a
Scalekit access token; every case gets the same, already-parsed public key (the steady state of a
JWKS cache) and, except the raw floor, verifies the signature and checks ``iss``, ``aud``,
``exp``, ``nbf`` and ``iat``. Each case is sanity-checked first (the valid token passes, a
tampered one fails). Every round runs every case once, in a freshly shuffled order, in a batch
calibrated to about ``--case-seconds``; the figures are the median µs per token over rounds and the
median of the per-round ratios. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

import httpx
import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt

from rpkit._jwt import parse_compact
from rpkit.errors import AccessTokenValidationError
from rpkit.id_token import AccessTokenPolicy, TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.testing import FakeOP
from rpkit.testing._jose import b64url_decode, corrupt_signature

AUDIENCE = "skc_987654321098765432"
CASES = ("raw", "joserfc", "rpkit")


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
    """The three cases over one fake OP, one warm JWKS cache and one event loop."""

    def __init__(self) -> None:
        self.op = FakeOP()
        self.loop = asyncio.new_event_loop()
        self.jwks = JWKSCache(httpx.AsyncClient(transport=self.op.transport(), timeout=5.0))
        self.validator = TokenValidator(self.jwks)
        self.jwks_uri = self.op.endpoints["jwks"]
        self.policy = AccessTokenPolicy(
            issuers=(self.op.issuer,), jwks_uri=self.jwks_uri, audience=(AUDIENCE,)
        )
        self.token = mint_token(self.op)
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

    async def rpkit_batch(self, token: str, n: int) -> float:
        validate, policy = self.validator.validate_access_token, self.policy
        start = time.perf_counter()
        for _ in range(n):
            await validate(token, policy)
        return time.perf_counter() - start

    def timed(self, case: str, n: int) -> float:
        """Seconds for ``n`` validations of the valid token."""
        if case == "rpkit":
            return self.loop.run_until_complete(self.rpkit_batch(self.token, n))
        fn: Callable[[str], None] = getattr(self, case)
        token = self.token
        start = time.perf_counter()
        for _ in range(n):
            fn(token)
        return time.perf_counter() - start

    def sanity_check(self) -> None:
        """Every case accepts the valid token and rejects one with a corrupted signature."""
        bad = corrupt_signature(self.token)
        accepted = self.loop.run_until_complete(
            self.validator.validate_access_token(self.token, self.policy)
        )
        assert accepted.sub == "usr_987654321098765432"  # noqa: S101
        for case in ("raw", "joserfc"):
            getattr(self, case)(self.token)
            try:
                getattr(self, case)(bad)
            except Exception:  # noqa: S112 - InvalidSignature, BadSignatureError
                continue
            raise AssertionError(f"{case} accepted a tampered signature")
        if self.rpkit_reason(bad) != "signature":
            raise AssertionError("rpkit accepted a tampered signature")

    def rpkit_reason(self, token: str) -> str | None:
        """The rejection reason rpkit gives ``token``, or None when it accepts it."""
        try:
            self.loop.run_until_complete(self.validator.validate_access_token(token, self.policy))
        except AccessTokenValidationError as exc:
            return exc.reason
        return None

    def fetches_per_1000(self) -> int:
        before = self.jwks.fetches(self.jwks_uri)
        self.timed("rpkit", 1000)
        return self.jwks.fetches(self.jwks_uri) - before


def calibrate(bench: Bench, case: str, seconds: float) -> int:
    bench.timed(case, 50)
    n, elapsed = 50, bench.timed(case, 50)
    while elapsed < 0.05:
        n *= 2
        elapsed = bench.timed(case, n)
    return max(50, int(n * seconds / elapsed))


def run(rounds: int, case_seconds: float) -> dict[str, object]:
    bench = Bench()
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
    return summary(per_call, sizes, rounds, fetches, len(bench.token))


def summary(
    per_call: dict[str, list[float]], sizes: dict[str, int], rounds: int, fetches: int, size: int
) -> dict[str, object]:
    def ratio(a: str, b: str) -> float:
        return round(
            statistics.median(x / y for x, y in zip(per_call[a], per_call[b], strict=True)), 3
        )

    median = {case: round(statistics.median(values), 2) for case, values in per_call.items()}
    return {
        "rpkit_us": median["rpkit"],
        "joserfc_us": median["joserfc"],
        "raw_us": median["raw"],
        "rpkit_over_joserfc": ratio("rpkit", "joserfc"),
        "rpkit_over_raw": ratio("rpkit", "raw"),
        "joserfc_over_raw": ratio("joserfc", "raw"),
        "jwks_fetches_per_1000": fetches,
        "targets_met": ratio("rpkit", "joserfc") <= 1.15 and fetches == 0,
        "rounds": rounds,
        "n_per_batch": sizes,
        "token_bytes": size,
        "alg": "RS256 (RSA-2048)",
        "python": platform.python_version(),
        "joserfc": version("joserfc"),
        "cryptography": version("cryptography"),
        "msgspec": version("msgspec"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--case-seconds", type=float, default=0.15)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    random.seed(args.seed)
    # rpkit's logs (one jwks_fetched event) go to stderr, so stdout is exactly one JSON object.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    print(json.dumps(run(args.rounds, args.case_seconds), indent=2))


if __name__ == "__main__":
    main()
