"""Running ASGI apps (the fake OP, a demo app) as real HTTP servers on 127.0.0.1 in a thread."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from rpkit.testing.op import FakeOP

__all__ = ["ServerThread", "serve", "serve_fake", "serve_until_interrupted"]


class _Served(Protocol):
    @property
    def asgi(self) -> Any: ...


Fake = TypeVar("Fake", bound=_Served)


class ServerThread:
    """A uvicorn server for ``app`` on an already bound socket, in a daemon thread.

    Args:
        app: the ASGI application.
        sock: a bound TCP socket; see :func:`bind_loopback`.
    """

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn  # noqa: PLC0415 - an optional dependency (rpkit[testing])

        self.sock = sock
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"rpkit-server-{port}", daemon=True)

    def _run(self) -> None:
        self._server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> None:
        """Start serving and wait until the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                msg = f"server for {self.url} did not start"
                raise RuntimeError(msg)
            time.sleep(0.01)

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()


def bind_loopback(port: int = 0) -> socket.socket:
    """A TCP socket bound to 127.0.0.1 (``port`` 0 picks a free one)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.contextmanager
def serve(port: int = 0, **options: Any) -> Iterator[FakeOP]:
    """Run a :class:`FakeOP` as a real server on 127.0.0.1 for the ``with`` block.

    Its issuer is ``http://127.0.0.1:{port}``; ``options`` go to :class:`FakeOP`. An RP under
    test must allow loopback ``http`` through its explicit development flag.

    Example:
        >>> from rpkit.testing import serve
        >>> with serve() as op:  # doctest: +SKIP
        ...     print(op.issuer + "/.well-known/openid-configuration")
    """
    with serve_fake(FakeOP, port, **options) as op:
        yield op


@contextlib.contextmanager
def serve_fake(factory: Callable[..., Fake], port: int = 0, **options: Any) -> Iterator[Fake]:
    """Run ``factory(base_url, **options)`` — a fake with an ``asgi`` app, such as
    :class:`FakeOP` or a provider plugin's own fake — as a real server on 127.0.0.1 for the
    ``with`` block; its base URL is ``http://127.0.0.1:{port}`` (0 picks a free port)."""
    sock = bind_loopback(port)
    fake = factory(f"http://127.0.0.1:{sock.getsockname()[1]}", **options)
    server = ServerThread(fake.asgi, sock)
    server.start()
    try:
        yield fake
    finally:
        server.stop()


def serve_until_interrupted(servers: Sequence[ServerThread]) -> None:
    """Block until SIGINT or SIGTERM, then stop ``servers`` in reverse order: what a demo or an
    example's ``main`` does after starting them. The handlers are explicit because a shell that
    backgrounds the command may have set SIGINT to "ignore"."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        for server in reversed(servers):
            server.stop()
