"""With ``RPKIT_DEMO_REDIS_URL``, a person signed in before the demo restarts is still signed in
after it: the API accepts the access token minted before the restart, and signing out passes the
fake OP (which still knows its ``id_token_hint``) and lands back on the demo."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STEP_TIMEOUT_MS
from tests.test_demo_restart import Demo, redis_url

__all__ = ["redis_url"]


@pytest.fixture
def redis_demo(redis_url: str, tmp_path: Path) -> Iterator[Demo]:
    demo = Demo(redis_url, tmp_path / "demo.log")
    demo.start()
    try:
        yield demo
    finally:
        demo.stop()


def test_a_signed_in_person_survives_a_demo_restart(
    chromium: Any, redis_demo: Demo, screenshot_root: Path, request: Any
):
    shots = screenshot_root / request.node.name
    shots.mkdir()
    context = chromium.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(redis_demo.app + "/")
        page.click("#login-fake")
        page.click("#user-bob")
        page.wait_for_url(re.compile(r"/profile$"))
        page.screenshot(path=shots / "01-profile-before-restart.png", full_page=True)

        redis_demo.stop()
        redis_demo.start()

        page.click("#call-api")
        page.wait_for_selector("#api-result")
        page.screenshot(path=shots / "02-api-after-restart.png", full_page=True)
        result = json.loads(page.locator("#api-result").inner_text())
        page.click("#logout")
        page.wait_for_url(re.compile(r"/\?signed_out=1$"))
        page.screenshot(path=shots / "03-signed-out.png", full_page=True)
        notice = page.locator("#notice").inner_text()
        cookies = {c["name"] for c in context.cookies(redis_demo.app)}
    finally:
        context.close()

    assert result["status"] == 200
    assert result["body"]["subject"] == "bob"
    assert notice == "You are signed out."
    assert "rpkit_session" not in cookies
