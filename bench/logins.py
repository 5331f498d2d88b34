"""Complete logins per second, and resident memory across completed and abandoned logins.

    .venv/bin/python bench/logins.py            # 10,000 completed + 10,000 abandoned, ~1-2 min
    .venv/bin/python bench/logins.py --quick    # a smoke run: 200 + 200

**What runs.** One Litestar app with rpkit's plugin (stores: Litestar's default in-memory
stores) and the fake OP, both in this process, on one event loop: the app is driven through
Litestar's ``AsyncTestClient`` (ASGI in-process, no sockets) and reaches the fake OP through its
httpx transport. So the figures are rpkit + Litestar + httpx's ASGI plumbing, with no server, no
kernel networking and no load generator. The fake OP's own work (signing the ID and access
tokens with RSA, issuing codes) is timed separately and reported as ``op_share``;
``rp_logins_per_s`` is the rate with that time taken out.

A **completed login** is a fresh browser (no cookies) doing ``GET /auth/login/fake`` → the
fake OP's authorization endpoint → ``GET /auth/callback/fake`` (code exchange, ID-token
validation, UserInfo, a server-side session). An **abandoned login** is a fresh browser doing
only the first step: a transaction and its pending-login list stay in the ``rpkit_flows`` store.

**Expiry without waiting.** Litestar's ``MemoryStore`` stamps entries with
``datetime.now()`` of ``litestar.stores.base``; this script shifts that clock (and only that
clock) forward past rpkit's transaction lifetime (600 s) and, at the end, past the session
lifetime. The abandoned logins run in four rounds: round 2 starts after round 1 expired and
shows what happens when nobody removes expired entries; ``delete_expired()`` is then called on
both stores after each later round, which shows memory returning to a plateau.

The fake OP's records (codes, tokens, sessions, the oracle) are cleared every 500 logins so RSS
reflects the relying party. RSS is ``VmRSS`` from ``/proc/self/status`` after ``gc.collect()``.
Prints one JSON object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/logins.py``, this folder comes first on sys.path, and its ``http.py``
# would shadow the standard library's ``http`` package: drop it before anything imports ``http``.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import platform
import time
from importlib.metadata import version
from typing import Any

import httpx
import structlog
from litestar import Litestar, get
from litestar.stores import base as store_base
from litestar.stores.memory import MemoryStore
from litestar.testing import AsyncTestClient

from rpkit.flow import TRANSACTION_TTL
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import FakeClient, FakeOP

BASE = "https://app.rpkit.test"
CHECKPOINTS_PER_PHASE = 4
OP_RESET_EVERY = 500


# -- a clock for Litestar's stores -----------------------------------------------------------


class StoreClock:
    """Shifts ``datetime.now()`` as Litestar's stores see it; nothing else is affected."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()
        clock = self

        class Shifted(dt.datetime):
            @classmethod
            def now(cls, tz: dt.tzinfo | None = None) -> Any:
                return dt.datetime.now(tz) + clock.offset

        self._original = store_base.datetime
        store_base.datetime = Shifted  # type: ignore[misc]

    def advance(self, seconds: float) -> None:
        self.offset += dt.timedelta(seconds=seconds)

    def restore(self) -> None:
        store_base.datetime = self._original  # type: ignore[misc]


# -- the app and the fake OP ---------------------------------------------------------------------


@get("/", sync_to_thread=False)
def home() -> str:
    return "home"


class TimedOP:
    """The fake OP, with the time spent inside it counted."""

    def __init__(self) -> None:
        self.op = FakeOP()
        self.seconds = 0.0
        answer = self.op.handle

        async def handle(request: httpx.Request) -> httpx.Response:
            start = time.perf_counter()
            try:
                return await answer(request)
            finally:
                self.seconds += time.perf_counter() - start

        self.op.handle = handle  # type: ignore[method-assign]

    def forget(self) -> None:
        """Drop what the OP remembers per login (not the RP's memory)."""
        op = self.op
        op.oracle.clear()
        op.codes.clear()
        op.access_tokens.clear()
        op.refresh_tokens.clear()
        op.sessions.clear()


def build_app(op: FakeOP) -> tuple[Litestar, RPKitConfig]:
    op.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/fake",)))
    provider = op.provider_config(scopes=("openid", "profile", "email", "offline_access"))
    config = RPKitConfig(providers=[provider], secret="bench-secret-" + "x" * 32, base_url=BASE)
    plugin = RPKitPlugin(config, http_transport=op.transport())
    return Litestar([home], plugins=[plugin], openapi_config=None), config


# -- one login -------------------------------------------------------------------------------


async def complete_login(client: AsyncTestClient[Litestar], op: FakeOP) -> None:
    client.cookies.clear()  # a fresh browser
    started = await client.get("/auth/login/fake", follow_redirects=False)
    answer = await op.approve(started.headers["location"])
    landed = await client.get(answer.location, follow_redirects=False)
    if landed.status_code != 303 or "rpkit_session" not in landed.headers.get("set-cookie", ""):
        raise SystemExit(f"a login failed: {landed.status_code} {landed.text[:200]}")


async def abandon_login(client: AsyncTestClient[Litestar]) -> None:
    client.cookies.clear()
    started = await client.get("/auth/login/fake", follow_redirects=False)
    if started.status_code != 303:
        raise SystemExit(f"a login did not start: {started.status_code} {started.text[:200]}")


# -- measuring ---------------------------------------------------------------------------------


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class Run:
    """The app under test, its stores, the counters and the checkpoints."""

    def __init__(self, client: AsyncTestClient[Litestar], timed: TimedOP, clock: StoreClock):
        self.client = client
        self.timed = timed
        self.clock = clock
        self.flows: MemoryStore = client.app.stores.get("rpkit_flows")  # type: ignore[assignment]
        self.sessions: MemoryStore = client.app.stores.get("rpkit_sessions")  # type: ignore[assignment]
        self.completed = 0
        self.abandoned = 0
        self.checkpoints: list[dict[str, Any]] = []

    def checkpoint(self, label: str) -> dict[str, Any]:
        gc.collect()
        point = {
            "label": label,
            "rss_kib": rss_kib(),
            "completed": self.completed,
            "abandoned": self.abandoned,
            # Litestar's MemoryStore keeps every entry, expired or not, in ``_store``.
            "flows_entries": len(self.flows._store),
            "sessions_entries": len(self.sessions._store),
            "store_clock_offset_s": int(self.clock.offset.total_seconds()),
        }
        self.checkpoints.append(point)
        print(
            f"{label}: RSS {point['rss_kib'] / 1024:.1f} MiB, flows {point['flows_entries']}, "
            f"sessions {point['sessions_entries']}",
            file=sys.stderr,
        )
        return point

    async def logins(self, n: int, *, abandon: bool, label: str) -> float:
        """``n`` completed (or abandoned) logins with checkpoints; the seconds they took."""
        every = max(1, n // CHECKPOINTS_PER_PHASE)
        elapsed = 0.0
        for number in range(1, n + 1):
            start = time.perf_counter()
            if abandon:
                await abandon_login(self.client)
                self.abandoned += 1
            else:
                await complete_login(self.client, self.timed.op)
                self.completed += 1
            elapsed += time.perf_counter() - start
            if number % OP_RESET_EVERY == 0:
                self.timed.forget()
            if number % every == 0 or number == n:
                self.checkpoint(f"{label} {number}/{n}")
        self.timed.forget()
        return elapsed

    async def sweep(self, label: str) -> dict[str, Any]:
        """What an application has to schedule with Litestar's MemoryStore: rpkit never does."""
        await self.flows.delete_expired()
        await self.sessions.delete_expired()
        return self.checkpoint(label)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    clock = StoreClock()
    timed = TimedOP()
    app, config = build_app(timed.op)
    try:
        async with AsyncTestClient(app, base_url=BASE) as client:
            run = Run(client, timed, clock)
            for _ in range(args.warmup):
                await complete_login(client, timed.op)
            timed.forget()
            run.checkpoint("after warm-up")
            return await phases(run, args, config)
    finally:
        clock.restore()


async def phases(run: Run, args: argparse.Namespace, config: RPKitConfig) -> dict[str, Any]:
    before_op = run.timed.seconds
    seconds = await run.logins(args.completed, abandon=False, label="completed")
    op_seconds = run.timed.seconds - before_op
    after_completed = run.checkpoints[-1]

    quarter = args.abandoned // 4
    rounds = [quarter, quarter, quarter, args.abandoned - 3 * quarter]
    await run.logins(rounds[0], abandon=True, label="abandoned round 1")
    round_1 = run.checkpoints[-1]
    run.clock.advance(TRANSACTION_TTL + 1)
    expired = run.checkpoint("round 1 expired (600 s later), nothing removed it")
    await run.logins(rounds[1], abandon=True, label="abandoned round 2, no sweep")
    no_sweep = run.checkpoints[-1]
    run.clock.advance(TRANSACTION_TTL + 1)
    swept = await run.sweep("round 2 expired, delete_expired()")
    plateau = []
    for number, size in enumerate(rounds[2:], start=3):
        await run.logins(size, abandon=True, label=f"abandoned round {number}")
        run.clock.advance(TRANSACTION_TTL + 1)
        plateau.append(await run.sweep(f"round {number} expired, delete_expired()"))
    run.clock.advance(config.session_lifetime + 1)
    final = await run.sweep("sessions expired too, delete_expired()")

    def kib_per(delta_from: dict[str, Any], delta_to: dict[str, Any], count: int) -> float:
        return round((delta_to["rss_kib"] - delta_from["rss_kib"]) / max(count, 1), 3)

    return {
        "completed_logins": run.completed,
        "abandoned_logins": run.abandoned,
        "abandoned_rounds": rounds,
        "logins_per_s": round(args.completed / seconds, 1),
        "rp_logins_per_s": round(args.completed / (seconds - op_seconds), 1),
        "op_share": round(op_seconds / seconds, 3),
        "ms_per_login": round(seconds / args.completed * 1000, 3),
        "rss_kib": {
            "after_warmup": run.checkpoints[0]["rss_kib"],
            "after_completed": after_completed["rss_kib"],
            "after_abandoned_round_1": round_1["rss_kib"],
            "after_abandoned_round_2_without_sweep": no_sweep["rss_kib"],
            "after_sweep": swept["rss_kib"],
            "plateau_after_sweeps": [p["rss_kib"] for p in plateau],
            "final": final["rss_kib"],
        },
        "kib_per_completed_login": kib_per(run.checkpoints[0], after_completed, run.completed),
        "kib_per_abandoned_login_kept_without_sweep": kib_per(round_1, no_sweep, rounds[1]),
        "flows_entries": {
            "after_completed": after_completed["flows_entries"],
            "after_round_1": round_1["flows_entries"],
            "after_round_1_expired": expired["flows_entries"],
            "after_round_2_without_sweep": no_sweep["flows_entries"],
            "after_sweeps": [p["flows_entries"] for p in [swept, *plateau]],
        },
        "sessions_entries": {
            "after_completed": after_completed["sessions_entries"],
            "final": final["sessions_entries"],
        },
        "expired_entries_removed_without_sweep": no_sweep["flows_entries"]
        < round_1["flows_entries"] + 2 * rounds[1],
        "checkpoints": run.checkpoints,
        "driver": "in-process: Litestar AsyncTestClient (ASGI, no sockets) -> rpkit plugin -> "
        "fake OP over its httpx transport; one event loop, one process",
        "stores": "Litestar MemoryStore (the plugin's default rpkit_flows and rpkit_sessions)",
        "warmup_logins": args.warmup,
        "litestar": version("litestar"),
        "httpx": version("httpx"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.platform()}",
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completed", type=int, default=10_000)
    parser.add_argument("--abandoned", type=int, default=10_000, help="split into 4 rounds")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="200 + 200 logins, 20 warm-up")
    args = parser.parse_args()
    if args.quick:
        args.completed, args.abandoned, args.warmup = 200, 200, 20
    if args.completed < 1 or args.abandoned < 4:
        parser.error("--completed must be at least 1 and --abandoned at least 4")
    return args


def main() -> None:
    args = parse_args()
    # rpkit logs an event per login: keep them off stdout (one JSON object) and out of timing.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    print(json.dumps(asyncio.run(measure(args)), indent=2))


if __name__ == "__main__":
    main()
