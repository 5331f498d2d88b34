"""Headless Chromium against ``make demo``: the demo runs as a subprocess on 127.0.0.1 (its own
fake OP and fake Scalekit included), and each test drives a fresh browser context, taking a
screenshot after every step into a folder under pytest's tmp dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Everything the demo needs is on loopback; nothing else resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "run.py"
BANNER = re.compile(r"\s+(demo app|dev mailbox|fake OP|OP JWKS|fake Scalekit):\s+(\S+)")
STEP_TIMEOUT_MS = 10_000
_SCREENSHOT_ROOT = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: drives the demo in headless Chromium (needs /usr/bin/chromium)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    root = config.stash.get(_SCREENSHOT_ROOT, None)
    if root is not None:
        terminalreporter.write_line(f"e2e screenshots: {root}")


@dataclass(frozen=True)
class Demo:
    """The running demo's URLs."""

    app: str
    op: str
    scalekit: str


@pytest.fixture(scope="session")
def demo() -> Iterator[Demo]:
    """``examples/demo/run.py`` on free ports; Ctrl-C (SIGINT) at the end."""
    process = subprocess.Popen(  # noqa: S603 - our own demo script
        [sys.executable, str(DEMO), "--port", "0", "--op-port", "0", "--scalekit-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    urls: dict[str, str] = {}
    deadline = time.monotonic() + 30
    assert process.stdout is not None
    while "fake Scalekit" not in urls and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if match := BANNER.match(line):
            urls[match.group(1)] = match.group(2)
    try:
        assert "fake Scalekit" in urls, f"the demo did not start; it printed {urls}"
        yield Demo(
            app=urls["demo app"].rstrip("/"),
            op=urls["fake OP"].split("/.well-known")[0],
            scalekit=urls["fake Scalekit"].split("/.well-known")[0],
        )
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless; skipped (with the reason) when it is not installed. Module
    scope: Playwright's sync API keeps an event loop running in this thread while it is open,
    which would break the asyncio tests of later modules."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"e2e tests need Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshot_root(tmp_path_factory: pytest.TempPathFactory, request: Any) -> Path:
    root = tmp_path_factory.mktemp("e2e-screenshots", numbered=True)
    request.config.stash[_SCREENSHOT_ROOT] = root
    print(f"e2e screenshots: {root}")
    return root


@dataclass
class Person:
    """One person at one browser (its own cookies), with numbered screenshots."""

    page: Any
    context: Any
    demo: Demo
    screenshots: Path
    navigations: list[str] = field(default_factory=list)
    """Every URL the tab navigated to, redirects included."""
    _step: int = field(default=0)

    def __post_init__(self) -> None:
        self.page.on("request", self._on_request)

    # A method, not ``list.append``: Playwright tags listeners with an attribute.
    def _on_request(self, request: Any) -> None:
        if request.is_navigation_request():
            self.navigations.append(request.url)

    def shot(self, label: str) -> Path:
        self._step += 1
        path = self.screenshots / f"{self._step:02d}-{label}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def goto(self, path: str) -> None:
        self.page.goto(self.demo.app + path)

    def cookies(self) -> dict[str, dict[str, Any]]:
        """The browser's cookies for the demo app, by name."""
        return {c["name"]: dict(c) for c in self.context.cookies(self.demo.app)}

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()


@pytest.fixture
def person(chromium: Any, demo: Demo, screenshot_root: Path, request: Any) -> Iterator[Person]:
    screenshots = screenshot_root / request.node.name
    screenshots.mkdir()
    print(f"screenshots: {screenshots}")
    context = chromium.new_context()
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        yield Person(context.new_page(), context, demo, screenshots)
    finally:
        context.close()
