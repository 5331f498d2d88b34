"""``python -m rpkit.testing serve`` runs a fake provider alone, prints what a client needs, and
stops on Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import httpx
import pytest


def _serve(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "rpkit.testing", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    lines: dict[str, str] = {}
    deadline = time.monotonic() + 20
    while "users" not in lines and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if match := re.match(r"\s+(\w+):\s+(.+)$", line):
            lines[match[1]] = match[2].strip()
    return process, lines


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=15)
    return process.returncode


def test_serve_prints_the_issuer_client_and_users_and_stops_on_ctrl_c():
    process, lines = _serve("--redirect-uri", "http://127.0.0.1:8000/cb")
    try:
        discovery = httpx.get(lines["discovery"], timeout=5).json()
        assert discovery["issuer"] == lines["issuer"]
        assert lines["redirect_uris"] == "http://127.0.0.1:8000/cb"
        assert lines["users"] == "alice, bob"
    finally:
        assert _stop(process) == 0


@pytest.mark.parametrize("provider", ["github", "entra"])
def test_serve_runs_a_presets_fake(provider):
    process, lines = _serve("--provider", provider)
    try:
        assert lines["issuer"].startswith("http://127.0.0.1:")
        if provider == "github":
            assert lines["discovery"].startswith("(none")
        else:
            assert httpx.get(lines["discovery"], timeout=5).status_code == 200
    finally:
        assert _stop(process) == 0


def test_serve_can_show_the_user_chooser():
    process, lines = _serve("--choose-user")
    try:
        discovery = httpx.get(lines["discovery"], timeout=5).json()
        page = httpx.get(
            discovery["authorization_endpoint"],
            params={
                "response_type": "code",
                "client_id": lines["client_id"],
                "redirect_uri": "https://app.rpkit.test/auth/callback/fake",
                "scope": "openid",
                "state": "s" * 43,
                "code_challenge": "c" * 43,
                "code_challenge_method": "S256",
            },
            timeout=5,
        )
        assert page.status_code == 200
        assert 'id="user-alice"' in page.text
        assert 'id="user-bob"' in page.text
    finally:
        assert _stop(process) == 0
