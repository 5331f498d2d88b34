"""Access-token validation against a Scalekit environment: rpkit's Scalekit provider against the
official SDK (``scalekit``), both warm, interleaved in one run. Not a timed test.

    .venv/bin/python bench/scalekit.py             # 7 interleaved rounds of 300 each
    .venv/bin/python bench/scalekit.py --rounds 9

Method: the fake Scalekit is served on 127.0.0.1 (the SDK only speaks real HTTP); it mints 200
RS256 M2M access tokens with ``aud=["res_bench"]``. rpkit validates them with
:func:`~rpkit_scalekit.resource_token_policy` through ``TokenValidator.validate_access_token``
(signature, ``iss``, ``aud``, ``exp``, ``nbf``, ``iat``, ``sub``, scopes, ID-token markers); the
SDK with its
``validate_access_token`` (signature, ``exp``; it checks no ``aud`` unless asked). Both are warmed
first (keys cached). Each round times a batch of each, in alternating order; the figures are
medians over rounds, and ``sdk_over_rpkit`` is the median of the per-round ratios (the SDK's
time over rpkit's in the same round), as the other benchmarks and the reference method
(``perf-baselines.md``: "ratios come from the same round") compute theirs, so drift between
rounds cancels out; ``sdk_over_rpkit_of_medians`` is the ratio of the two medians, as earlier
versions printed it. Then the fake rotates its signing key and both validate a token signed by
the new key: the JSON reports the ``/keys`` fetches each made and whether it accepted the token.
Every call is a first sight for rpkit: both cycle through 200 distinct tokens and rpkit's
verified-token cache holds 100 of them, so it verifies, caches and evicts on every call (the SDK
caches nothing). Prints one JSON object on stdout (logs go to stderr). With
``RPKIT_BENCH_SMOKE=1`` it runs one round of 20, whatever the arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and this ``scalekit.py`` would
# shadow the SDK's ``scalekit`` package: drop the folder before anything imports it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import httpx  # noqa: E402
import structlog  # noqa: E402

from rpkit.id_token import TokenValidator  # noqa: E402
from rpkit.jwks import JWKSCache  # noqa: E402
from rpkit_scalekit import resource_token_policy  # noqa: E402
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, serve_scalekit  # noqa: E402

AUDIENCE = "res_bench"
SMOKE = os.environ.get("RPKIT_BENCH_SMOKE") == "1"
TARGETS = {"sdk_over_rpkit": 4.0}
POOL = 200
"""Distinct tokens, cycled through by both."""


async def main(rounds: int, batch: int) -> dict[str, object]:
    warnings.filterwarnings("ignore")  # the SDK's pydantic deprecation warnings
    import scalekit  # noqa: PLC0415 - after the warning filter

    with serve_scalekit() as fake:
        fake.knobs.m2m_token_claims = {"aud": [AUDIENCE]}
        tokens = [fake.issue_m2m_token() for _ in range(POOL)]
        sdk = scalekit.ScalekitClient(fake.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        async with httpx.AsyncClient(timeout=5.0) as http:
            # First sight with rpkit's defaults: the cache on, but holding half of the pool,
            # which both cycle through in order, so rpkit never finds the next token in it.
            validator = TokenValidator(JWKSCache(http), access_token_cache_size=POOL // 2)
            policy = resource_token_policy(fake.issuer, audience=AUDIENCE)
            await validator.validate_access_token(tokens[0], policy)  # warm
            assert sdk.validate_access_token(tokens[0]) is True  # warm  # noqa: S101
            rpkit_tokens, sdk_tokens = itertools.cycle(tokens), itertools.cycle(tokens)

            async def rpkit_batch() -> float:
                chosen = list(itertools.islice(rpkit_tokens, batch))
                start = time.perf_counter()
                for token in chosen:
                    await validator.validate_access_token(token, policy)
                return (time.perf_counter() - start) / batch * 1e6

            def sdk_batch() -> float:
                chosen = list(itertools.islice(sdk_tokens, batch))
                start = time.perf_counter()
                for token in chosen:
                    sdk.validate_access_token(token)
                return (time.perf_counter() - start) / batch * 1e6

            rpkit_us, sdk_us = [], []
            for index in range(rounds):
                if index % 2:
                    sdk_us.append(sdk_batch())
                    rpkit_us.append(await rpkit_batch())
                else:
                    rpkit_us.append(await rpkit_batch())
                    sdk_us.append(sdk_batch())

            before = fake.recording.count("keys")
            fake.rotate_keys()
            rotated = fake.issue_m2m_token()
            accepted_rpkit = True
            try:
                await validator.validate_access_token(rotated, policy)
            except Exception:
                accepted_rpkit = False
            rpkit_fetches = fake.recording.count("keys") - before
            before = fake.recording.count("keys")
            accepted_sdk = bool(sdk.validate_access_token(rotated))
            sdk_fetches = fake.recording.count("keys") - before
    rpkit_median, sdk_median = statistics.median(rpkit_us), statistics.median(sdk_us)
    ratio = statistics.median(sdk / ours for sdk, ours in zip(sdk_us, rpkit_us, strict=True))
    return {
        "smoke": SMOKE,
        "rounds": rounds,
        "batch": batch,
        "rpkit_us": round(rpkit_median, 1),
        "sdk_us": round(sdk_median, 1),
        "sdk_over_rpkit": round(ratio, 2),
        "sdk_over_rpkit_of_medians": round(sdk_median / rpkit_median, 2),
        "per_round_us": [
            [round(ours, 1), round(sdk, 1)] for ours, sdk in zip(rpkit_us, sdk_us, strict=True)
        ],
        "targets": TARGETS,
        "targets_met": ratio >= TARGETS["sdk_over_rpkit"],
        "after_key_rotation": {
            "rpkit_jwks_fetches": rpkit_fetches,
            "rpkit_accepts_new_token": accepted_rpkit,
            "sdk_jwks_fetches": sdk_fetches,
            "sdk_accepts_new_token": accepted_sdk,
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args()
    if SMOKE:
        args.rounds, args.batch = 1, 20
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # logs off stdout
    print(json.dumps(asyncio.run(main(args.rounds, args.batch)), indent=2))
