"""Access-token validation against a Scalekit environment: rpkit's Scalekit provider against the
official SDK (``scalekit``), both warm, interleaved in one run. Not a timed test.

    .venv/bin/python bench/scalekit.py             # 7 interleaved rounds
    .venv/bin/python bench/scalekit.py --rounds 9

Method: the fake Scalekit is served on 127.0.0.1 (the SDK only speaks real HTTP); it mints one
RS256 M2M access token with ``aud=["res_bench"]``. rpkit validates it with
:func:`~rpkit_scalekit.resource_token_policy` through ``TokenValidator.validate_access_token``
(signature, ``iss``, ``aud``, ``exp``, ``nbf``, ``iat``); the SDK with its
``validate_access_token`` (signature, ``exp``; it checks no ``aud`` unless asked). Both are warmed
first (keys cached). Each round times a batch of each, in alternating order; the figures are
medians over rounds. Then the fake rotates its signing key and both validate a token signed by
the new key: the JSON reports the ``/keys`` fetches each made and whether it accepted the token.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file's folder holds ``http.py`` and this ``scalekit.py``, which would shadow the standard
# library's ``http`` and the SDK's ``scalekit`` package when run as a script.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import httpx  # noqa: E402

from rpkit.id_token import TokenValidator  # noqa: E402
from rpkit.jwks import JWKSCache  # noqa: E402
from rpkit_scalekit import resource_token_policy  # noqa: E402
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, serve_scalekit  # noqa: E402

AUDIENCE = "res_bench"


async def main(rounds: int, batch: int) -> dict[str, object]:
    warnings.filterwarnings("ignore")  # the SDK's pydantic deprecation warnings
    import scalekit  # noqa: PLC0415 - after the warning filter

    with serve_scalekit() as fake:
        fake.knobs.m2m_token_claims = {"aud": [AUDIENCE]}
        token = fake.issue_m2m_token()
        sdk = scalekit.ScalekitClient(fake.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        async with httpx.AsyncClient(timeout=5.0) as http:
            validator = TokenValidator(JWKSCache(http))
            policy = resource_token_policy(fake.issuer, audience=AUDIENCE)
            await validator.validate_access_token(token, policy)  # warm
            assert sdk.validate_access_token(token) is True  # warm  # noqa: S101

            async def rpkit_batch() -> float:
                start = time.perf_counter()
                for _ in range(batch):
                    await validator.validate_access_token(token, policy)
                return (time.perf_counter() - start) / batch * 1e6

            def sdk_batch() -> float:
                start = time.perf_counter()
                for _ in range(batch):
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
    return {
        "rounds": rounds,
        "batch": batch,
        "rpkit_us": round(rpkit_median, 1),
        "sdk_us": round(sdk_median, 1),
        "sdk_over_rpkit": round(sdk_median / rpkit_median, 2),
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
    print(json.dumps(asyncio.run(main(args.rounds, args.batch)), indent=2))
