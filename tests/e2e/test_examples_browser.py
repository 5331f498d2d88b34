"""The multi_idp example in headless Chromium: sign in with each preset's fake and sign out
back to the example; Back after signing out never shows the signed-in page."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STEP_TIMEOUT_MS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi_idp" / "app.py"


@pytest.fixture(scope="module")
def multi_idp() -> Iterator[str]:
    process = subprocess.Popen(  # noqa: S603 - our own example
        [sys.executable, str(EXAMPLE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    match = None
    for _ in range(200):  # startup log lines come first
        line = process.stdout.readline()
        match = re.search(r"multi_idp example: (http://127\.0\.0\.1:\d+)/", line)
        if match or not line:
            break
    try:
        assert match is not None, "the example did not start"
        yield match[1]
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.mark.parametrize("preset", ["github", "entra", "google", "keycloak"])
def test_each_preset_signs_in_and_out_back_to_the_example(page: Any, multi_idp: str, preset: str):
    page.goto(multi_idp + "/")
    page.click(f"#login-{preset}")
    page.wait_for_url(re.compile(r"/me$"))
    assert "alice@example.com" in page.locator("#who").inner_text()

    page.click("#logout")
    page.wait_for_url(re.compile(re.escape(multi_idp) + r"/(\?.*)?$"))
    assert page.locator("#login-github").count() == 1  # back on the example's chooser

    page.go_back()  # the signed-in page was never stored: Back asks again and is turned away
    page.wait_for_load_state()
    assert "alice@example.com" not in page.content()
