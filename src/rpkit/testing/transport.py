"""Routing an ordinary :class:`httpx.AsyncClient` to fake OPs, with no sockets.

Example:
    >>> import httpx
    >>> from rpkit.testing import FakeOP, FakeOPTransport
    >>> honest, attacker = FakeOP("https://a.example"), FakeOP("https://b.example")
    >>> http = httpx.AsyncClient(transport=FakeOPTransport(honest, attacker))
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import httpx

__all__ = ["FakeOPTransport", "FakeServer", "mock_with_respx"]


class FakeServer(Protocol):
    """What the transport, :func:`mock_with_respx` and :func:`rpkit.testing.asgi_app` need of a
    fake: :class:`~rpkit.testing.FakeOP`, or a provider plugin's own fake (the fake Scalekit)."""

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` the fake answers for."""
        ...

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request, as the real server would."""
        ...


class FakeOPTransport(httpx.AsyncBaseTransport):
    """Send each request to the fake (OP, or any :class:`FakeServer`) at the request's origin.

    The client's read timeout is honoured: an OP slower than it (the ``latency`` knob) raises
    :class:`httpx.ReadTimeout`, as a real socket would.

    Args:
        ops: the fakes to route to.
        fallback: where requests for any other origin go; they fail with
            :class:`httpx.ConnectError` when None.
    """

    def __init__(self, *ops: FakeServer, fallback: httpx.AsyncBaseTransport | None = None) -> None:
        self._ops = {op.origin: op for op in ops}
        self._fallback = fallback

    def add(self, op: FakeServer) -> None:
        """Route ``op``'s origin to it too."""
        self._ops[op.origin] = op

    def include(self, other: FakeOPTransport) -> None:
        """Route every origin ``other`` routes, to the same fakes (a provider's fake may answer
        at several origins: GitHub's API host, Microsoft Graph)."""
        self._ops.update(other._ops)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        op = self._ops.get(origin)
        if op is None:
            if self._fallback is not None:
                return await self._fallback.handle_async_request(request)
            msg = f"no fake OP serves {origin}"
            raise httpx.ConnectError(msg, request=request)
        timeout = (request.extensions.get("timeout") or {}).get("read")
        try:
            async with asyncio.timeout(timeout):
                return await op.handle(request)
        except TimeoutError as exc:
            msg = f"the fake OP at {origin} did not answer within {timeout} s"
            raise httpx.ReadTimeout(msg, request=request) from exc


def mock_with_respx(router: Any, *ops: FakeServer) -> None:
    """Route requests to each OP's origin through a ``respx`` router, for code whose HTTP client
    the test cannot replace. The router's other routes keep working."""
    for op in ops:
        router.route(url__startswith=op.origin).mock(side_effect=op.handle)
