"""The demo's Litestar app: for now it shows the embedded fake OP it talks to.

Later issues grow this into the full demo (sign-in with several providers, passwordless, a
profile page, logout). It already uses the pattern the Litestar integration will: one shared
``httpx.AsyncClient`` created in the lifespan and closed on shutdown.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.response import Response


def create_app(issuer: str) -> Litestar:
    """A Litestar app that reads the fake OP's discovery document over real HTTP."""

    @asynccontextmanager
    async def http_client(app: Litestar) -> AsyncIterator[None]:
        timeout = httpx.Timeout(5.0, connect=2.0)
        async with httpx.AsyncClient(timeout=timeout) as client:
            app.state.http = client
            yield

    @get("/")
    async def home(state: State) -> Response[str]:
        discovery = await _discovery(state.http, issuer)
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in discovery.items()
            if k.endswith(("endpoint", "uri", "issuer"))
        )
        page = (
            "<h1>rpkit demo</h1>"
            "<p>This app talks to an embedded fake OpenID Provider at "
            f"<code>{html.escape(issuer)}</code>.</p>"
            f"<table>{rows}</table>"
        )
        return Response(page, media_type="text/html")

    @get("/health")
    async def health(state: State) -> dict[str, Any]:
        discovery = await _discovery(state.http, issuer)
        return {"status": "ok", "issuer": discovery["issuer"]}

    return Litestar([home, health], lifespan=[http_client], state=State({"issuer": issuer}))


async def _discovery(http: httpx.AsyncClient, issuer: str) -> dict[str, Any]:
    response = await http.get(f"{issuer}/.well-known/openid-configuration")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document
