"""Fixtures of the interoperability tests: the installed oidc-provider, headless Chromium, and a
fresh browser context per visit with its screenshot folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.interop.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    MIN_NODE,
    ensure_node_modules,
    missing_binaries,
    node_too_old,
)
from tests.interop.pages import Visit

# Only the two loopback names resolve: oidc-provider's pages @import a web font, and no request
# may leave the machine.
NO_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "interop: runs rpkit against panva's oidc-provider (Node) through headless Chromium",
    )


@pytest.fixture(scope="session")
def oidc_provider_version() -> str:
    """oidc-provider installed in tests/interop/op/node_modules (``npm ci`` on first use)."""
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"interop tests need {', '.join(missing)}: run `bash scripts/system-deps.sh` "
            "(installs node, npm and chromium)"
        )
    too_old = node_too_old()
    if too_old:
        pytest.fail(f"oidc-provider needs Node >= {'.'.join(map(str, MIN_NODE))}, found {too_old}")
    return ensure_node_modules()


@pytest.fixture(scope="module")
def chromium(oidc_provider_version: str) -> Iterator[Browser]:
    """Debian's Chromium, headless; closed (with its processes) after the module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, NO_NETWORK]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_visit(chromium: Browser, tmp_path: Path) -> Iterator[Callable[[str], Visit]]:
    """Open a fresh browser context (no cookies); screenshots go to a folder under this test's
    tmp dir, whose path is printed."""
    contexts = []

    def open_(name: str = "visit") -> Visit:
        screenshots = tmp_path / f"screenshots-{name}"
        screenshots.mkdir()
        print(f"screenshots: {screenshots}")
        context = chromium.new_context()
        contexts.append(context)
        return Visit.open(context, screenshots)

    yield open_
    for context in contexts:
        context.close()
