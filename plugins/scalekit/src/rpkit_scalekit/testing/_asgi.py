"""Any ``httpx.Request -> httpx.Response`` handler as an ASGI 3 app (HTTP and lifespan).

rpkit's own adapter (``rpkit.testing._asgi``) is private and typed for ``FakeOP``; this is the
same bridge for any handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def asgi_app(handle: Handler) -> ASGIApp:
    """Wrap ``handle`` as an ASGI application."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        request = httpx.Request(
            scope["method"], _url(scope, headers), headers=headers, content=await _body(receive)
        )
        response = await handle(request)
        raw = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.multi_items()
        ]
        await send({"type": "http.response.start", "status": response.status_code, "headers": raw})
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


def _url(scope: Scope, headers: list[tuple[str, str]]) -> str:
    host = next((v for k, v in headers if k.lower() == "host"), "127.0.0.1")
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = f"{scope['scheme']}://{host}{path.decode('latin-1')}"
    return f"{url}?{query.decode('latin-1')}" if query else url
