"""A real ``redis-server``, a fake OP served on 127.0.0.1, two uvicorn worker processes of
``tests/redis/app.py`` sharing both, and browsers that follow redirects by hand.

Everything runs once per test session: the Redis and worker processes are killed at the end.
The tests play the load balancer: each request goes to the worker the test names.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from rpkit.testing import FakeClient, FakeOP, FakeUser, serve
from rpkit.testing.server import bind_loopback
from tests.redis.app import PUBLIC_ORIGIN

REPO = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
USERS = [FakeUser(f"user-{n:02d}", {"email": f"user-{n:02d}@example.com"}) for n in range(20)]
STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, what: str, timeout: float = STARTUP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            msg = f"{what} did not come up within {timeout} s"
            raise RuntimeError(msg)
        time.sleep(0.05)


class RedisServer:
    """A throw-away ``redis-server`` on 127.0.0.1: no persistence, stoppable and restartable on
    the same port (a restart loses every key, as an outage with no persistence does)."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log)  # noqa: S603
        wait_until(self.answers, f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """Freeze the server: connections open, nothing answered (a hung store)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def flush(self) -> None:
        with redis.Redis(port=self.port) as r:
            r.flushall()


@dataclass
class Worker:
    """One uvicorn process of ``tests/redis/app.py`` on its own loopback port."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def route(self, url: str) -> str:
        """``url`` on the public origin (or a path), sent to this worker instead."""
        parts = urlsplit(url)
        assert not parts.netloc or f"{parts.scheme}://{parts.netloc}" == PUBLIC_ORIGIN, url
        return self.url + parts.path + (f"?{parts.query}" if parts.query else "")

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class Cluster:
    """The system under test: two workers, their Redis and the fake OP."""

    a: Worker
    b: Worker
    redis: RedisServer
    op: FakeOP

    @property
    def workers(self) -> tuple[Worker, Worker]:
        return (self.a, self.b)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"{REDIS_SERVER} is missing: scripts/system-deps.sh installs redis-server")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def served_op() -> Iterator[FakeOP]:
    with serve(users=USERS) as op:
        op.register_client(
            FakeClient(
                redirect_uris=(f"{PUBLIC_ORIGIN}/auth/callback/fake",),
                post_logout_redirect_uris=(f"{PUBLIC_ORIGIN}/auth/logout/callback",),
            )
        )
        yield op


@pytest.fixture(scope="session")
def cluster(
    redis_server: RedisServer, served_op: FakeOP, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("workers")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO)])),
        "RPKIT_TEST_REDIS_URL": redis_server.url,
        "RPKIT_TEST_ISSUER": served_op.issuer,
    }
    workers: list[Worker] = []
    try:
        for name in ("a", "b"):
            workers.append(_launch(name, env, directory))
        for worker in workers:
            _wait_for(worker)
        yield Cluster(workers[0], workers[1], redis_server, served_op)
    finally:
        for worker in workers:
            _terminate(worker.process)


def _launch(name: str, env: dict[str, str], directory: Path) -> Worker:
    sock = bind_loopback()
    host, port = sock.getsockname()[:2]
    log = directory / f"worker-{name}.log"
    command = [sys.executable, "-m", "uvicorn", "tests.redis.app:create_app", "--factory"]
    command += ["--fd", str(sock.fileno()), "--log-level", "warning", "--no-access-log"]
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - a fixed command line
            command, pass_fds=(sock.fileno(),), cwd=REPO, env=env, stdout=out, stderr=out
        )
    sock.close()  # the worker listens on its own copy of the socket
    return Worker(name, process, f"http://{host}:{port}", log)


def _wait_for(worker: Worker) -> None:
    def healthy() -> bool:
        if not worker.alive():
            msg = f"worker {worker.name} exited:\n{worker.log_tail()}"
            raise RuntimeError(msg)
        try:
            return httpx.get(worker.url + "/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, f"worker {worker.name}")


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def fresh(cluster: Cluster) -> Cluster:
    """The cluster with an honest OP, an empty oracle and an empty Redis."""
    cluster.op.reset()
    cluster.op.access_token_lifetime = 3600
    if not cluster.redis.answers():
        cluster.redis.stop()
        cluster.redis.start()
    cluster.redis.flush()
    return cluster


# -- browsers ---------------------------------------------------------------------------------
@dataclass
class Browser:
    """One person's browser: its own cookie jar, redirects followed by hand."""

    http: httpx.AsyncClient

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(url, **kwargs)

    async def start_login(self, worker: Worker, login_hint: str) -> str:
        """The OP authorization URL the login route redirects to."""
        started = await self.get(
            worker.route("/auth/login/fake"), params={"login_hint": login_hint}
        )
        assert started.status_code == 303, started.text
        return started.headers["location"]

    async def authorize(self, authorization_url: str) -> str:
        """Visit the OP (which signs the hinted user in) and return its redirect back."""
        answer = await self.get(authorization_url)
        assert answer.status_code in (302, 303), answer.text
        return answer.headers["location"]

    async def subject(self, worker: Worker) -> str | None:
        me = await self.get(worker.route("/me"))
        assert me.status_code == 200, me.text
        subject: str | None = me.json()["subject"]
        return subject


@dataclass
class Browsers:
    """Makes browsers that share one connection pool but nothing else."""

    transport: httpx.AsyncHTTPTransport
    made: list[httpx.AsyncClient] = field(default_factory=list)

    def new(self) -> Browser:
        client = httpx.AsyncClient(
            transport=self.transport, timeout=15.0, trust_env=False, follow_redirects=False
        )
        self.made.append(client)
        return Browser(client)


@pytest.fixture
async def browsers() -> AsyncIterator[Browsers]:
    limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
    transport = httpx.AsyncHTTPTransport(limits=limits)
    try:
        yield Browsers(transport)
    finally:
        await transport.aclose()


def refresh_requests(op: FakeOP) -> list[str]:
    """The refresh tokens presented to the OP's token endpoint, in arrival order."""
    return [
        r.param("refresh_token") or ""
        for r in op.oracle.of("token")
        if r.param("grant_type") == "refresh_token"
    ]


def code_requests(op: FakeOP) -> list[str]:
    """The authorization codes presented to the OP's token endpoint, in arrival order."""
    return [
        r.param("code") or ""
        for r in op.oracle.of("token")
        if r.param("grant_type") == "authorization_code"
    ]
