"""The README's demo command serves the fake OP and the demo app on 127.0.0.1 and stops cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo" / "run.py"


def _read_urls(process: subprocess.Popen[str], deadline: float) -> dict[str, str]:
    urls: dict[str, str] = {}
    assert process.stdout is not None
    while len(urls) < 3 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        match = re.match(r"\s+(demo app|fake OP|OP JWKS):\s+(\S+)", line)
        if match:
            urls[match.group(1)] = match.group(2)
    return urls


def test_demo_serves_the_fake_op_and_the_app_on_loopback_then_stops_on_ctrl_c():
    process = subprocess.Popen(  # noqa: S603 - our own demo script
        [sys.executable, str(DEMO), "--port", "0", "--op-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        urls = _read_urls(process, time.monotonic() + 30)
        discovery = httpx.get(urls["fake OP"], timeout=5)
        home = httpx.get(urls["demo app"], timeout=5)
        health = httpx.get(urls["demo app"] + "health", timeout=5)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)

    issuer = urls["fake OP"].removesuffix("/.well-known/openid-configuration")
    assert urls["fake OP"].startswith("http://127.0.0.1:")
    assert discovery.status_code == 200
    assert discovery.json()["issuer"] == issuer
    assert discovery.json()["jwks_uri"] == urls["OP JWKS"]
    assert home.status_code == 200
    assert issuer in home.text
    assert health.json() == {"status": "ok", "issuer": issuer}
    assert process.returncode == 0
    assert "rpkit demo stopped" in output
