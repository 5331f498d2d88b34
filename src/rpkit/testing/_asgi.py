"""A fake as an ASGI application: scope → :class:`httpx.Request` → the fake → ASGI messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from rpkit.testing.transport import FakeServer

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_app(op: FakeServer) -> ASGIApp:
    """Wrap a fake (:class:`~rpkit.testing.FakeOP` or a plugin's own) as an ASGI 3 application
    (HTTP and lifespan scopes), to serve it for real with :func:`rpkit.testing.serve`'s
    machinery or any ASGI server."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = httpx.Request(
            scope["method"], _url(scope), headers=_headers(scope), content=await _body(receive)
        )
        response = await op.handle(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k.encode("latin-1"), v.encode("latin-1"))
                    for k, v in response.headers.multi_items()
                ],
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]


def _url(scope: Scope) -> str:
    host = next((v for k, v in _headers(scope) if k.lower() == "host"), "127.0.0.1")
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = f"{scope['scheme']}://{host}{path.decode('latin-1')}"
    return f"{url}?{query.decode('latin-1')}" if query else url
