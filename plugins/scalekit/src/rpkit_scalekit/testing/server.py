"""Running the fake Scalekit as a real HTTP server on 127.0.0.1 (for browsers, the demo and the
official SDK), with rpkit's :class:`~rpkit.testing.server.ServerThread`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rpkit.testing.server import serve_fake
from rpkit_scalekit.testing.fake import FakeScalekit

__all__ = ["serve_scalekit"]


@contextlib.contextmanager
def serve_scalekit(port: int = 0, **options: Any) -> Iterator[FakeScalekit]:
    """Run a :class:`FakeScalekit` on ``http://127.0.0.1:{port}`` for the ``with`` block.

    The environment URL (and issuer) is the server's URL; ``options`` go to
    :class:`FakeScalekit`. Port 0 picks a free port.

    Example:
        >>> from rpkit_scalekit.testing import serve_scalekit
        >>> with serve_scalekit() as fake:  # doctest: +SKIP
        ...     print(fake.issuer + "/_dev/outbox")
    """
    with serve_fake(FakeScalekit, port, **options) as fake:
        yield fake
