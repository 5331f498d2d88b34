"""Complete logins per second, rpkit's own CPU per login against Authlib's Starlette client, and
resident memory across completed and abandoned logins.

    .venv/bin/python bench/logins.py            # 2,000 + 2,000 compared; 10,000 + 10,000 logins
    .venv/bin/python bench/logins.py --quick    # a smoke run: 200 + 200 each

**What runs.** One Litestar app with rpkit's plugin (stores: Litestar's default in-memory
stores) and the fake OP, both in this process, on one event loop: the app is driven through
an ``httpx.AsyncClient`` over ``httpx.ASGITransport`` (ASGI in-process, no sockets; the app's
lifespan runs around it) and reaches the fake OP through its
httpx transport. So the figures are rpkit + Litestar + httpx's ASGI plumbing, with no server, no
kernel networking and no load generator.

A **completed login** is a fresh browser (no cookies) doing ``GET /auth/login/fake`` → the
fake OP's authorization endpoint → ``GET /auth/callback/fake`` (code exchange, ID-token
validation, UserInfo, a server-side session). An **abandoned login** is a fresh browser doing
only the first step: a transaction and its pending-login list stay in the ``rpkit_flows`` store.

**Who spends the time.** Every login's time is split three ways: the fake OP (its endpoints,
RSA signing included: the time inside ``FakeOP.handle``), the relying party (the time inside the
app's ASGI handler, less the OP's time nested in it: the framework, rpkit or Authlib, and httpx's
client side of the OP requests) and the driver (the rest: the test client, cookies, following
the redirects).

**Side by side with Authlib.** The same login (authorization request with PKCE and nonce, the
OP, callback, code exchange, ID-token validation, UserInfo, a session) also runs through
Authlib's Starlette OAuth client (``authlib.integrations.starlette_client``) on a Starlette app
with Starlette's cookie session, driven by an ``httpx.AsyncClient`` over ``httpx.ASGITransport``,
against the same fake OP (another registered client). ``--compare`` logins of each run
interleaved in ten rounds before the memory phases; ``rpkit_over_authlib`` is rpkit's relying-party
logins/s over Authlib's (the inverse ratio of their RP milliseconds per login), and
``rpkit_over_authlib_end_to_end`` the same with the OP and the drivers included. rpkit does more
per login (among others: ``iss`` in the callback, a server-side session and its indexes for
back-channel logout, the ``sub`` check of UserInfo).

**Expiry without waiting.** Litestar's ``MemoryStore`` stamps entries with
``datetime.now()`` of ``litestar.stores.base``; this script shifts that clock (and only that
clock) forward past rpkit's transaction lifetime (600 s) and, at the end, past the session
lifetime. The abandoned logins run in four rounds: round 2 starts after round 1 expired and
shows what happens when nobody removes expired entries; ``delete_expired()`` is then called on
both stores after each later round, which shows memory returning to a plateau.

The fake OP's records (codes, tokens, sessions, the oracle) are cleared every 500 logins so RSS
reflects the relying party. RSS is ``VmRSS`` from ``/proc/self/status`` after ``gc.collect()``.
Prints one JSON object on stdout; progress goes to stderr. With ``RPKIT_BENCH_SMOKE=1`` (what
``tests/test_bench_commands.py`` sets) it runs a few logins of each kind, whatever the
arguments: the figures then only show that it works.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Any

import httpx
import structlog
from authlib_app import AUTHLIB_BASE, OPTransport, authlib_login, build_authlib_app
from litestar import Litestar, get
from litestar.stores import base as store_base
from litestar.stores.memory import MemoryStore
from litestar.types import ASGIApp, Receive, Scope, Send

from rpkit.flow import TRANSACTION_TTL
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import FakeClient, FakeOP

BASE = "https://app.rpkit.test"
CHECKPOINTS_PER_PHASE = 4
OP_RESET_EVERY = 500
COMPARE_ROUNDS = 10
TARGETS = {"rpkit_over_authlib": 1.0, "rpkit_ms_per_login": 1.5, "kib_per_completed_login": 5.0}
TRACED_ROUND = 1000
"""Fewest abandoned logins per traced round (smaller rounds measure bounded caches filling)."""
PLATEAU_KIB = 0.05
"""Abandoned logins plateau when, with the sweeps, the Python objects they leave behind
(``tracemalloc``, between two swept rounds) take at most this much per login; without the
sweeps, about 1.3 KiB of RSS per abandoned login stayed. RSS after sweeps is reported too, but
it moves with the allocator's fragmentation, not with what is kept."""
SMOKE = os.environ.get("RPKIT_BENCH_SMOKE") == "1"


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


class TimedASGI:
    """An ASGI app with the time spent inside it counted (the relying party's side)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seconds = 0.0
        self.inside = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        self.inside = True
        try:
            await self.app(scope, receive, send)
        finally:
            self.inside = False
            self.seconds += time.perf_counter() - start


class TimedOP:
    """The fake OP, with the time spent inside it counted, and the part of it spent while a
    relying party was waiting for it (nested in that app's time)."""

    def __init__(self) -> None:
        self.op = FakeOP()
        self.seconds = 0.0
        self.nested = 0.0
        self.apps: list[TimedASGI] = []
        answer = self.op.handle

        async def handle(request: httpx.Request) -> httpx.Response:
            start = time.perf_counter()
            try:
                return await answer(request)
            finally:
                spent = time.perf_counter() - start
                self.seconds += spent
                if any(app.inside for app in self.apps):
                    self.nested += spent

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
    plugin.sweep_interval = 10.0**9  # this script sweeps the stores itself, at chosen points
    return Litestar([home], plugins=[plugin], openapi_config=None), config


# -- one login -------------------------------------------------------------------------------


async def complete_login(client: httpx.AsyncClient, op: FakeOP) -> None:
    client.cookies.clear()  # a fresh browser
    started = await client.get("/auth/login/fake", follow_redirects=False)
    answer = await op.approve(started.headers["location"])
    landed = await client.get(answer.location, follow_redirects=False)
    if landed.status_code != 303 or "rpkit_session" not in landed.headers.get("set-cookie", ""):
        raise SystemExit(f"a login failed: {landed.status_code} {landed.text[:200]}")


async def abandon_login(client: httpx.AsyncClient) -> None:
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

    def __init__(self, client: httpx.AsyncClient, app: Litestar, timed: TimedOP, clock: StoreClock):
        self.client = client
        self.timed = timed
        self.clock = clock
        self.flows: MemoryStore = app.stores.get("rpkit_flows")  # type: ignore[assignment]
        self.sessions: MemoryStore = app.stores.get("rpkit_sessions")  # type: ignore[assignment]
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


class Side:
    """One relying party of the comparison: a login, its app's timer, and the totals."""

    def __init__(
        self, login: Callable[[], Awaitable[None]], app: TimedASGI, plumbing: Callable[[], float]
    ) -> None:
        self.login = login
        self.app = app
        self.plumbing = plumbing
        """Seconds the bench itself spent inside the app (converting requests for the OP)."""
        self.totals = dict.fromkeys(("wall", "op", "rp"), 0.0)
        self.rounds: list[float] = []
        """The relying party's milliseconds per login, per round."""

    async def batch(self, n: int, timed: TimedOP) -> None:
        before = (timed.seconds, timed.nested, self.app.seconds, self.plumbing())
        start = time.perf_counter()
        for number in range(1, n + 1):
            await self.login()
            if number % OP_RESET_EVERY == 0:
                timed.forget()
        wall = time.perf_counter() - start
        op, nested, app, plumbing = (
            after - first
            for after, first in zip(
                (timed.seconds, timed.nested, self.app.seconds, self.plumbing()),
                before,
                strict=True,
            )
        )
        rp = app - nested - plumbing
        self.totals["wall"] += wall
        self.totals["op"] += op
        self.totals["rp"] += rp
        self.rounds.append(rp / n * 1000)

    def figures(self, n: int, name: str) -> dict[str, float]:
        wall, op, rp = (self.totals[k] / n * 1000 for k in ("wall", "op", "rp"))
        return {
            f"{name}_ms_per_login": round(rp, 3),
            f"{name}_op_ms_per_login": round(op, 3),
            f"{name}_driver_ms_per_login": round(wall - op - rp, 3),
            f"{name}_wall_ms_per_login": round(wall, 3),
        }


async def compare(rpkit: Side, authlib: Side, timed: TimedOP, n: int) -> dict[str, Any]:
    """``n`` logins through each, interleaved in rounds (the order alternates)."""
    rounds = min(COMPARE_ROUNDS, n)
    size = n // rounds
    for number in range(rounds):
        pair = (rpkit, authlib) if number % 2 == 0 else (authlib, rpkit)
        for side in pair:
            await side.batch(size, timed)
        timed.forget()
    done = size * rounds
    result: dict[str, Any] = rpkit.figures(done, "rpkit") | authlib.figures(done, "authlib")
    ratios = [a / r for r, a in zip(rpkit.rounds, authlib.rounds, strict=True)]
    result["rpkit_over_authlib"] = round(statistics.median(ratios), 3)
    end_to_end = authlib.totals["wall"] / rpkit.totals["wall"]
    result["rpkit_over_authlib_end_to_end"] = round(end_to_end, 3)
    result["compared_logins"] = {"each": done, "rounds": rounds}
    return result


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    clock = StoreClock()
    timed = TimedOP()
    app, config = build_app(timed.op)
    rp_timer = TimedASGI(app.asgi_handler)
    app.asgi_handler = rp_timer
    transport = OPTransport(timed.op)
    authlib_timer = TimedASGI(build_authlib_app(timed.op, transport))
    timed.apps += [rp_timer, authlib_timer]
    # Both apps are driven alike: an httpx client over ASGITransport, in this event loop.
    authlib_driver = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=authlib_timer), base_url=AUTHLIB_BASE
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
    try:
        async with app.lifespan(), client, authlib_driver:
            run = Run(client, app, timed, clock)
            rpkit = Side(lambda: complete_login(client, timed.op), rp_timer, lambda: 0.0)
            authlib = Side(
                lambda: authlib_login(authlib_driver, timed.op),
                authlib_timer,
                lambda: transport.seconds,
            )
            for _ in range(args.warmup):
                await rpkit.login()
                await authlib.login()
            timed.forget()
            compared = await compare(rpkit, authlib, timed, args.compare)
            run.checkpoint("after warm-up and the comparison")
            result = compared | await phases(run, args, config)
    finally:
        clock.restore()
    result["targets"] = TARGETS | {"abandoned_plateau": True}
    result["targets_met"] = (
        result["rpkit_over_authlib"] >= TARGETS["rpkit_over_authlib"]
        and result["rpkit_ms_per_login"] <= TARGETS["rpkit_ms_per_login"]
        and result["kib_per_completed_login"] <= TARGETS["kib_per_completed_login"]
        and result["abandoned_plateau"]
    )
    result["smoke"] = SMOKE
    return result


async def retained_per_abandoned_login(run: Run, n: int) -> float:
    """KiB of Python objects (the app's and the driver's) that ``n`` more abandoned logins leave
    behind once expired and swept: ``tracemalloc`` between the second and third of three such
    rounds (the first fills bounded caches, e.g. ``urllib.parse``'s). Run last: tracemalloc's
    own memory would show in the RSS figures. Not counted as logins."""
    tracemalloc.start()
    traced = []
    for _ in range(3):
        for _ in range(n):
            await abandon_login(run.client)
        run.clock.advance(TRANSACTION_TTL + 1)
        await run.flows.delete_expired()
        gc.collect()
        traced.append(tracemalloc.get_traced_memory()[0])
    tracemalloc.stop()
    return round((traced[2] - traced[1]) / n / 1024, 4)


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
    retained = await retained_per_abandoned_login(run, max(rounds[0], TRACED_ROUND))

    def kib_per(delta_from: dict[str, Any], delta_to: dict[str, Any], count: int) -> float:
        return round((delta_to["rss_kib"] - delta_from["rss_kib"]) / max(count, 1), 3)

    after_sweeps = kib_per(swept, plateau[-1], rounds[2] + rounds[3])
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
        "kib_per_abandoned_login_after_sweeps": after_sweeps,
        "kib_retained_per_abandoned_login_traced": retained,
        "abandoned_plateau": retained <= PLATEAU_KIB,
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
        "driver": "in-process: httpx.AsyncClient over ASGITransport -> Litestar app, rpkit "
        "plugin -> fake OP over its httpx transport; Authlib: the same driver -> "
        "Starlette app -> Authlib's client -> the same fake OP; one event loop, one process",
        "stores": "Litestar MemoryStore (the plugin's default rpkit_flows and rpkit_sessions)",
        "warmup_logins": args.warmup,
        "litestar": version("litestar"),
        "authlib": version("authlib"),
        "starlette": version("starlette"),
        "httpx": version("httpx"),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.platform()}",
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completed", type=int, default=10_000)
    parser.add_argument("--abandoned", type=int, default=10_000, help="split into 4 rounds")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--compare", type=int, default=2000, help="logins each, with Authlib")
    parser.add_argument("--quick", action="store_true", help="200 + 200 logins, 20 warm-up")
    args = parser.parse_args()
    if args.quick:
        args.completed, args.abandoned, args.warmup, args.compare = 200, 200, 20, 200
    if SMOKE:
        args.completed, args.abandoned, args.warmup, args.compare = 20, 8, 2, 20
    if args.completed < 1 or args.abandoned < 4 or args.compare < 1:
        parser.error("--completed and --compare must be at least 1, --abandoned at least 4")
    return args


def main() -> None:
    args = parse_args()
    # rpkit logs an event per login: keep them off stdout (one JSON object) and out of timing.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    print(json.dumps(asyncio.run(measure(args)), indent=2))


if __name__ == "__main__":
    main()
