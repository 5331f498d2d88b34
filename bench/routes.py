"""Protected Litestar routes over loopback HTTP: hello, bearer (rpkit, with and without its
verified-token cache) and session, driven by wrk.

    .venv/bin/python bench/routes.py                          # 5 rounds x 4 s per route, 32 conns
    .venv/bin/python bench/routes.py --rounds 7 --duration 10

One uvicorn worker (uvloop + httptools) on 127.0.0.1 serves four routes of one app:

* ``/hello``: no authentication (the floor);
* ``/bearer``: rpkit's :class:`~rpkit.litestar.bearer.OIDCBearerAuth` as documented (app-wide,
  its verified-token cache on by default), RS256 access token, keys from the fake OP served by
  :func:`rpkit.testing.serve` in this process and fetched once by the app's own lifespan client
  (steady state: warm key cache, no fetch during load);
* ``/session``: rpkit's ``requires_login()`` guard and ``rpkit_user`` over its server-side
  session (the default: the cookie holds an opaque id, the session lives in the Litestar store
  ``rpkit_sessions``, in memory for one worker), after a real login through ``/auth/login`` and
  the fake OP;
* ``/session-dependency``: the same session read by a handler that declares
  ``rpkit_user: NamedDependency[Identity]`` (no ``| None``) and no guard: the dependency itself
  refuses a signed-out request exactly as ``requires_login()`` does, without the guard call
  (``requires_login()`` alone on a route runs from ``before_request``, not from Litestar's guard
  loop and its per-guard copy of the handler: ``rpkit.litestar._guard_hook``).

A second worker serves the same app with the cache turned off (``token_cache_size=0``: every
request verifies the signature); its ``/bearer`` is reported as ``bearer_nocache``, over its own
``/hello`` in the same round. Both are pinned to the same CPU and loaded one at a time.

Every request carries the same ``Authorization`` and ``Cookie`` headers, so the routes differ
only by the work they do. Each route is checked first (valid credential 200, tampered or missing
401). Rounds run every route once for ``--duration`` seconds, alternating the order; ratios are
medians of per-round ratios. The server is pinned to one CPU and wrk (1 thread) to another.
Prints one JSON object on stdout; progress goes to stderr. Every process started is stopped, and
the server also stops itself after ``--max-seconds``. With ``RPKIT_BENCH_SMOKE=1`` (what
``tests/test_bench_commands.py`` sets) it runs one round of 1 s per route without warm-up,
whatever the arguments: the figures then only show that it works.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from importlib.metadata import version
from typing import Any

import httpx
import structlog
import uvicorn
from litestar import Litestar, Request, get
from litestar.di import NamedDependency

from rpkit.access_token import AccessTokenPolicy
from rpkit.client import Identity
from rpkit.config import ProviderConfig
from rpkit.litestar import RPKitConfig, RPKitPlugin, requires_login
from rpkit.litestar.bearer import OIDCBearerAuth
from rpkit.testing import FakeClient, FakeOP, FakeUser, Tamper, serve

ROUTES = ("hello", "bearer", "bearer_nocache", "session", "session_dependency")
"""The routes reported; ``bearer_nocache`` is ``/bearer`` of the second server, whose app is the
same with the verified-token cache off."""
WHERE = {
    "hello": ("cached", "/hello"),
    "bearer": ("cached", "/bearer"),
    "session": ("cached", "/session"),
    "session_dependency": ("cached", "/session-dependency"),
    "nocache_hello": ("nocache", "/hello"),
    "bearer_nocache": ("nocache", "/bearer"),
}
"""What each round loads, on which server: the reported routes, plus the second server's own
``/hello``, which its ``/bearer`` is measured against."""
MEASURED = tuple(WHERE)
HELLO_OF = {"cached": "hello", "nocache": "nocache_hello"}
"""Each server's floor: every route's ratio is taken against its own server's ``/hello``."""
AUDIENCE = "skc_987654321098765432"
SUBJECT = "usr_987654321098765432"
TARGETS = {"bearer_over_hello": 0.80, "bearer_nocache_over_hello": 0.55, "session_over_hello": 0.70}
SMOKE = os.environ.get("RPKIT_BENCH_SMOKE") == "1"


# -- the server (a child process) ----------------------------------------------------------------


def rpkit_plugin(spec: dict[str, Any], port: int) -> RPKitPlugin:
    """rpkit's plugin with its server-side session (the default), against the served fake OP."""

    provider = ProviderConfig(
        id="fake",
        issuer=spec["issuer"],
        client_id=spec["client_id"],
        client_secret=spec["client_secret"],
        allow_insecure_http=True,
    )
    config = RPKitConfig(
        providers=[provider],
        secret=os.urandom(32).hex(),
        base_url=f"http://127.0.0.1:{port}",
        insecure_cookies_for_development=True,
    )
    return RPKitPlugin(config)


def build_app(spec: dict[str, Any], port: int) -> Any:
    """The app under test: hello, bearer and session routes; rpkit opens its own HTTP clients.
    ``spec["token_cache_size"]``, when given, is the bearer config's (0: the cache off)."""

    policy = AccessTokenPolicy(
        issuers=(spec["issuer"],), jwks_uri=spec["jwks_uri"], audience=(AUDIENCE,)
    )
    # The documented setup: app-wide middleware from on_app_init, its own lifespan and client,
    # the verified-token cache on unless this server is the one with it off.
    options = {"token_cache_size": spec["token_cache_size"]} if "token_cache_size" in spec else {}
    auth = OIDCBearerAuth(policies=[policy], realm="bench", exclude=["^/auth/"], **options)

    @get("/hello", exclude_from_auth=True)
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @get("/bearer")
    async def bearer(request: Request[Any, Any, Any]) -> dict[str, str]:
        return {"sub": request.auth.sub}

    @get("/session", exclude_from_auth=True, guards=[requires_login()])
    async def session(rpkit_user: NamedDependency[Identity]) -> dict[str, str]:
        return {"sub": rpkit_user.subject}

    @get("/session-dependency", exclude_from_auth=True)
    async def session_dependency(rpkit_user: NamedDependency[Identity]) -> dict[str, str]:
        return {"sub": rpkit_user.subject}

    return Litestar(
        [hello, bearer, session, session_dependency],
        plugins=[rpkit_plugin(spec, port)],
        on_app_init=[auth.on_app_init],
        openapi_config=None,
    )


def serve_app(port: int, cpu: int | None, max_seconds: float) -> None:
    """The server child: quiet logs, one pinned core, uvicorn with uvloop + httptools."""

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = build_app(json.loads(os.environ["RPKIT_BENCH_SPEC"]), port)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    watchdog = threading.Timer(max_seconds, lambda: setattr(server, "should_exit", True))
    watchdog.daemon = True
    watchdog.start()
    server.run()


# -- the driver ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(port: int, cpu: int | None, spec: dict[str, Any], limit: float) -> Any:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["RPKIT_BENCH_SPEC"] = json.dumps(spec)
    command = [sys.executable, __file__, "--serve", str(port), "--max-seconds", str(limit)]
    if cpu is not None:
        command += ["--server-cpu", str(cpu)]
    return subprocess.Popen(  # noqa: S603 - our own interpreter and script
        command, env=env, start_new_session=True, stdout=subprocess.DEVNULL
    )


def stop(proc: Any) -> None:
    """Stop the server we started: SIGTERM to its own process group, then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_ready(client: httpx.Client, proc: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited early ({proc.returncode})")
        try:
            if client.get("/hello").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def sign_in(client: httpx.Client) -> str:
    """A real login through rpkit's routes and the served fake OP; the session cookie it set."""
    started = client.get("/auth/login/fake", params={"login_hint": SUBJECT})
    answer = httpx.get(started.headers["location"], trust_env=False, timeout=5.0)
    landed = client.get(answer.headers["location"])
    if landed.status_code != 303:
        raise SystemExit(f"login failed: {landed.status_code} {landed.text[:200]}")
    return next(c for c in landed.headers.get_list("set-cookie") if c.startswith("rpkit_session="))


def credentials(client: httpx.Client, token: str) -> dict[str, str]:
    """The headers every load request carries: the bearer token and the session cookie."""
    cookie = sign_in(client).split(";")[0]
    return {"Authorization": f"Bearer {token}", "Cookie": cookie}


def check_routes(clients: dict[str, httpx.Client], headers: dict[str, str], bad_token: str) -> None:
    """Valid credentials get 200; a tampered token, no token or no cookie get 401."""
    for route in MEASURED:
        server, path = WHERE[route]
        response = clients[server].get(path, headers=headers)
        if response.status_code != 200 or ("hello" not in route and SUBJECT not in response.text):
            raise SystemExit(f"{route} refused valid credentials: {response.status_code}")
    refusals = {}
    for route in ("bearer", "bearer_nocache"):
        server, path = WHERE[route]
        client = clients[server]
        client.cookies.clear()
        tampered = client.get(path, headers={"Authorization": f"Bearer {bad_token}"})
        refusals[f"{route} tampered"] = tampered
        refusals[f"{route} without token"] = client.get(path)
    client = clients["cached"]
    for route in ("session", "session_dependency"):
        path = WHERE[route][1]
        refusals[f"{path} without cookie"] = client.get(path, headers={"Accept": "*/*"})
        refusals[f"{path}, forged cookie"] = client.get(path, headers={"Cookie": "rpkit_session=x"})
    for name, response in refusals.items():
        if response.status_code != 401:
            raise SystemExit(f"{name} answered {response.status_code}, not 401")


def url(bases: dict[str, str], route: str) -> str:
    """The URL ``route`` is loaded at, on its server."""
    server, path = WHERE[route]
    return bases[server] + path


_REQS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def run_wrk(url: str, headers: dict[str, str], conns: int, seconds: float) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", url]
    for name, value in headers.items():
        command[1:1] = ["-H", f"{name}: {value}"]
    out = subprocess.run(  # noqa: S603 - wrk from PATH, arguments built here
        command, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    reqs = _REQS.search(out)
    if reqs is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    non2xx = _NON2XX.search(out)
    errors = _ERRORS.search(out)
    return {
        "rps": float(reqs.group(1)),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
    }


def load(
    bases: dict[str, str], headers: dict[str, str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Warm every route, then ``args.rounds`` rounds of every route, alternating the order."""
    if args.warmup > 0:
        for route in MEASURED:
            run_wrk(url(bases, route), headers, args.conns, args.warmup)
    rounds = []
    for number in range(args.rounds):
        order = MEASURED if number % 2 == 0 else MEASURED[::-1]
        results = {
            route: run_wrk(url(bases, route), headers, args.conns, args.duration) for route in order
        }
        rounds.append(results)
        rates = ", ".join(f"{r} {results[r]['rps']:,.0f}" for r in MEASURED)
        print(f"round {number + 1}/{args.rounds}: {rates} req/s", file=sys.stderr)
    return rounds


def summary(rounds: list[dict[str, Any]], token: str, cookie: str, args: Any) -> dict[str, Any]:
    def median_rps(route: str) -> float:
        return round(statistics.median(float(r[route]["rps"]) for r in rounds), 1)

    def ratio(route: str) -> float:
        floor = HELLO_OF[WHERE[route][0]]
        return round(statistics.median(float(r[route]["rps"] / r[floor]["rps"]) for r in rounds), 3)

    result: dict[str, Any] = {f"{route}_rps": median_rps(route) for route in MEASURED}
    result |= {f"{route}_over_hello": ratio(route) for route in ROUTES if route != "hello"}
    result["targets"] = TARGETS
    result["targets_met"] = all(result[name] >= floor for name, floor in TARGETS.items())
    result["errors"] = sum(r[x]["non2xx"] + r[x]["socket_errors"] for r in rounds for x in MEASURED)
    result["per_round_rps"] = [{route: r[route]["rps"] for route in MEASURED} for r in rounds]
    result |= context(token, cookie, args)
    return result


def context(token: str, cookie: str, args: Any) -> dict[str, Any]:
    return {
        "smoke": SMOKE,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "conns": args.conns,
        "token_bytes": len(token),
        "cookie_bytes": len(cookie),
        "server": f"uvicorn {version('uvicorn')}, 1 worker, uvloop {version('uvloop')}, "
        f"httptools {version('httptools')}",
        "load_generator": "wrk -t1",
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "litestar": version("litestar"),
        "python": sys.version.split()[0],
    }


def mint(op: FakeOP, **sign: Any) -> str:
    """A Scalekit-shaped RS256 access token (about 950 bytes), as in ``bench/validate.py``."""
    now = op.now()
    extra = {
        "nbf": now,
        "oid": "org_69615647365005430",
        "roles": ["project_manager", "member"],
        "permissions": ["projects:create", "projects:read", "tasks:assign"],
        "sid": "ses_987654321098765432",
    }
    return op.minter.mint_access_token(
        subject=SUBJECT,
        audience=[AUDIENCE],
        client_id=AUDIENCE,
        scope="openid profile",
        claims=extra,
        **sign,
    )


def drive(args: argparse.Namespace) -> dict[str, Any]:
    # Fake OP, mint and wrk share the client CPU; the servers get the other one (one is loaded
    # at a time).
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    budget = (len(MEASURED) * (args.rounds * args.duration + args.warmup)) + 120
    with serve() as op:
        token, bad = mint(op), mint(op, tamper=Tamper.BAD_SIGNATURE)
        ports = {"cached": free_port(), "nocache": free_port()}
        client = op.register_client(
            FakeClient(
                client_id="bench",
                redirect_uris=tuple(
                    f"http://127.0.0.1:{port}/auth/callback/fake" for port in ports.values()
                ),
            )
        )
        op.users[SUBJECT] = FakeUser(SUBJECT, {"email": "alice@example.com", "name": "Alice"})
        spec = {
            "issuer": op.issuer,
            "jwks_uri": op.endpoints["jwks"],
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        }
        procs = {
            "cached": start_server(ports["cached"], args.server_cpu, spec, budget),
            "nocache": start_server(
                ports["nocache"], args.server_cpu, spec | {"token_cache_size": 0}, budget
            ),
        }
        bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        try:
            clients = {
                name: httpx.Client(base_url=base, trust_env=False, timeout=5.0)
                for name, base in bases.items()
            }
            try:
                for name, http in clients.items():
                    wait_ready(http, procs[name])
                headers = credentials(clients["cached"], token)
                check_routes(clients, headers, bad)
            finally:
                for http in clients.values():
                    http.close()
            before = dict(op.oracle.counts())
            rounds = load(bases, headers, args)
        finally:
            for proc in procs.values():
                stop(proc)
    result = summary(rounds, token, headers["Cookie"], args)
    after = op.oracle.counts()
    result["op_requests_during_load"] = {
        name: count - before.get(name, 0)
        for name, count in after.items()
        if count != before.get(name, 0)
    }
    return result


def parse_args() -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=4, help="seconds per route per round")
    parser.add_argument("--warmup", type=int, default=1, help="seconds per route before timing")
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--server-cpu", type=int, default=1 if cpus > 1 else None)
    parser.add_argument("--client-cpu", type=int, default=0 if cpus > 1 else None)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=600, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if SMOKE and args.serve is None:
        args.rounds, args.duration, args.warmup = 1, 1, 0
    return args


def main() -> None:
    args = parse_args()
    if args.serve is not None:
        serve_app(args.serve, args.server_cpu, args.max_seconds)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    print(json.dumps(drive(args), indent=2))


if __name__ == "__main__":
    main()
