"""pytest fixtures for testing applications against rpkit's fake OP.

Loaded automatically through the ``pytest11`` entry point once rpkit is installed.

* ``fake_op`` — a fresh in-process :class:`~rpkit.testing.FakeOP` (issuer
  ``https://op.rpkit.test``).
* ``fake_op_http`` — an :class:`httpx.AsyncClient` whose requests reach ``fake_op`` with no
  sockets; hand it to the code under test.
* ``fake_op_server`` — a :class:`~rpkit.testing.FakeOP` served on ``http://127.0.0.1:<port>``
  for the test (for browsers and other processes).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from rpkit.testing.op import FakeOP
from rpkit.testing.server import serve


@pytest.fixture
def fake_op() -> FakeOP:
    """A fresh, honest fake OP; set ``fake_op.misbehave`` knobs to break it."""
    return FakeOP()


@pytest.fixture
def fake_op_http(fake_op: FakeOP) -> httpx.AsyncClient:
    """An httpx client routed to ``fake_op`` in-process (nothing to close: no sockets)."""
    return httpx.AsyncClient(transport=fake_op.transport(), timeout=5.0)


@pytest.fixture
def fake_op_server() -> Iterator[FakeOP]:
    """A fake OP listening on 127.0.0.1 for the duration of the test."""
    with serve() as op:
        yield op
