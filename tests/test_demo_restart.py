"""``make demo`` with ``RPKIT_DEMO_REDIS_URL``: sessions live in Redis, and so do the fake
providers' signing keys (and the presets' ports), so after a restart a token minted before it
still passes the API and logout's ``id_token_hint`` is still the OP's own.

A real ``redis-server`` (``tests/redis/conftest.py``'s helper) backs each test.
"""

from __future__ import annotations

import html
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.redis.conftest import REDIS_SERVER, RedisServer, free_port

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "run.py"
USER_LINK = re.compile(r'<a class="fake-op-user" data-sub="([^"]+)" href="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip(f"{REDIS_SERVER} is missing: scripts/system-deps.sh installs redis-server")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


class Demo:
    """``run.py`` on fixed ports, so that a restart serves the same URLs."""

    def __init__(self, redis_url: str, log: Path) -> None:
        self.ports = [free_port() for _ in range(3)]
        self.app = f"http://127.0.0.1:{self.ports[0]}"
        self.op = f"http://127.0.0.1:{self.ports[1]}"
        self.env = {**os.environ, "RPKIT_DEMO_REDIS_URL": redis_url}
        self.log = log
        self.process: subprocess.Popen[str] | None = None
        self.banner: list[str] = []

    def start(self) -> None:
        port, op_port, scalekit_port = (str(p) for p in self.ports)
        command = [sys.executable, str(DEMO), "--port", port, "--op-port", op_port]
        with self.log.open("a") as stderr:
            self.process = subprocess.Popen(  # noqa: S603 - our own demo script
                [*command, "--scalekit-port", scalekit_port],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=self.env,
            )
        assert self.process.stdout is not None
        self.banner = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.banner.append(line)
            if "stores:" in line:
                return
        pytest.fail(f"the demo did not start: {self.banner} {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.communicate(timeout=20)
        self.process = None


@pytest.fixture
def demo(redis_url: str, tmp_path: Path) -> Iterator[Demo]:
    running = Demo(redis_url, tmp_path / "demo.log")
    try:
        yield running
    finally:
        running.stop()


def sign_in(client: httpx.Client, demo: Demo, provider: str, **params: str) -> httpx.Response:
    query = "&".join(f"{k}={v}" for k, v in {"return_to": "/profile", **params}.items())
    answer = client.get(f"{demo.app}/auth/login/{provider}?{query}", follow_redirects=True)
    links = dict(USER_LINK.findall(answer.text))
    if links:  # the fake OP's login page: pick bob
        answer = client.get(html.unescape(links["bob"]), follow_redirects=True)
    assert answer.url.path == "/profile", answer.text[:300]
    return answer


def sign_out(client: httpx.Client, demo: Demo) -> httpx.Response:
    profile = client.get(f"{demo.app}/profile")
    csrf = CSRF.search(profile.text)
    assert csrf is not None, profile.text[:300]
    return client.post(
        f"{demo.app}/auth/logout",
        data={"csrf_token": csrf[1], "return_to": "/?signed_out=1"},
        follow_redirects=True,
    )


def test_a_restart_keeps_tokens_verifiable_and_logout_hints_recognised(demo: Demo):
    demo.start()
    assert "0 of 12 fakes sign with the keys of the last run" in demo.banner[-1]
    fake, sso, keycloak = (httpx.Client(timeout=10) for _ in range(3))
    with fake, sso, keycloak:
        sign_in(fake, demo, "fake")
        sign_in(sso, demo, "scalekit", login_hint="carol@sso.example")
        sign_in(keycloak, demo, "keycloak")

        demo.stop()
        demo.start()
        assert "12 of 12 fakes sign with the keys of the last run" in demo.banner[-1]

        api = fake.get(f"{demo.app}/profile/api")
        sso_api = sso.get(f"{demo.app}/profile/api")
        outs = [sign_out(client, demo) for client in (fake, sso, keycloak)]

    assert "&quot;status&quot;: 200" in api.text
    assert "&quot;subject&quot;: &quot;bob&quot;" in api.text
    assert "&quot;status&quot;: 200" in sso_api.text
    for out in outs:
        assert str(out.url).startswith(demo.app), out.text[:300]
        assert "You are signed out." in out.text or out.url.path == "/auth/logout/callback"
    hops = [str(r.url) for r in outs[0].history]
    assert any(hop.startswith(f"{demo.op}/end_session") for hop in hops)  # the OP accepted it


def test_without_redis_state_a_restart_makes_new_keys(demo: Demo, redis_url: str):
    """The control: clearing the saved keys brings today's failure back (401 from the API)."""
    demo.start()
    with httpx.Client(timeout=10) as fake:
        sign_in(fake, demo, "fake")
        demo.stop()
        with redis.Redis.from_url(redis_url) as r:
            r.delete("rpkit-demo:fake-providers")
        demo.start()
        api = fake.get(f"{demo.app}/profile/api")

    assert "&quot;status&quot;: 401" in api.text
