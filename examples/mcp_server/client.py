"""An MCP client for the example server, built only from the ``mcp`` SDK (no rpkit).

It connects to the server's URL with no token, and the SDK's own OAuth support does the rest:
the server's 401 names its RFC 9728 metadata (``resource_metadata``), the metadata names the
authorization server, the SDK fetches that server's RFC 8414 metadata and asks its token endpoint
for a client-credentials token for the resource (RFC 8707 ``resource``). Then it lists the tools
and calls ``greet``.

Run ``python examples/mcp_server/client.py MCP_URL ISSUER CLIENT_ID CLIENT_SECRET`` (``app.py``
prints the line to paste).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import httpx2
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

__all__ = ["MemoryStorage", "client_credentials", "greet"]


class MemoryStorage:
    """The SDK's ``TokenStorage``, in memory: the token lives as long as the process."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def client_credentials(
    url: str, issuer: str, client_id: str, client_secret: str
) -> ClientCredentialsOAuthProvider:
    """The SDK's client-credentials OAuth provider for the server at ``url``; credentials are
    only ever sent to ``issuer``."""
    return ClientCredentialsOAuthProvider(
        server_url=url,
        storage=MemoryStorage(),
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method, not a secret
        issuer=issuer,
    )


async def greet(url: str, auth: httpx2.Auth, name: str) -> tuple[list[str], Any]:
    """Connect to ``url`` with ``auth``; the tool names listed and the result of ``greet``."""
    async with (
        httpx2.AsyncClient(auth=auth, timeout=10.0) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        tools = await client.list_tools()
        result = await client.call_tool("greet", {"name": name})
    return [tool.name for tool in tools.tools], result


async def main(url: str, issuer: str, client_id: str, client_secret: str) -> None:
    auth = client_credentials(url, issuer, client_id, client_secret)
    names, result = await greet(url, auth, "Ada")
    print("tools:", ", ".join(names))
    print("greet:", result.content[0].text)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
