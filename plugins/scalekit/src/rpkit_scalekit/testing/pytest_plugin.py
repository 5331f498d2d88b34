"""pytest fixtures for testing applications against the fake Scalekit.

Loaded automatically through the ``pytest11`` entry point once ``rpkit-scalekit`` is
installed.

* ``fake_scalekit`` — a fresh in-process :class:`~rpkit_scalekit.testing.FakeScalekit`
  (environment ``https://rpkit-test.scalekit.test``).
* ``fake_scalekit_http`` — an :class:`httpx.AsyncClient` whose requests reach
  ``fake_scalekit`` with no sockets.
* ``fake_scalekit_server`` — a :class:`~rpkit_scalekit.testing.FakeScalekit` served on
  ``http://127.0.0.1:<port>`` for the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rpkit_scalekit.testing.fake import FakeScalekit
from rpkit_scalekit.testing.server import serve_scalekit


@pytest.fixture
def fake_scalekit() -> FakeScalekit:
    """A fresh, honest fake Scalekit; set ``knobs``, ``passwordless`` or ``answers`` to
    change it."""
    return FakeScalekit()


@pytest.fixture
def fake_scalekit_http(fake_scalekit: FakeScalekit) -> httpx.AsyncClient:
    """An httpx client routed to ``fake_scalekit`` in-process (a plain fixture, so it works
    in any pytest-asyncio mode; there are no sockets to close)."""
    return httpx.AsyncClient(transport=fake_scalekit.transport(), timeout=5.0)


@pytest.fixture
def fake_scalekit_server() -> Iterator[FakeScalekit]:
    """A fake Scalekit listening on 127.0.0.1 for the duration of the test."""
    with serve_scalekit() as fake:
        yield fake
