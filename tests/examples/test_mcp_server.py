"""examples/mcp_server driven by the ``mcp`` SDK's own client, served on 127.0.0.1 against the
fake Scalekit: the challenge and the metadata it points to, an authorized session listing and
calling the tool, a token for another resource refused, a token without the tool's scope refused
with ``insufficient_scope``; then the JSON-RPC edges, in-process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from mcp import Client
from mcp.client.auth.utils import extract_resource_metadata_from_www_auth
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import ProtectedResourceMetadata
from mcp.shared.exceptions import MCPError

from rpkit.testing.server import ServerThread, bind_loopback
from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    FakeScalekit,
    serve_scalekit,
)
from tests.examples.conftest import load_example

pytestmark = pytest.mark.authz

example = load_example("mcp_server/app.py")
client_script = load_example("mcp_server/client.py")


@dataclass
class Served:
    fake: FakeScalekit
    url: str
    """The MCP endpoint (the resource identifier)."""

    @property
    def issuer(self) -> str:
        return f"{self.fake.issuer}/resources/{example.RESOURCE_ID}"


@pytest.fixture
def served() -> Iterator[Served]:
    with serve_scalekit() as fake:
        sock = bind_loopback()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        server = ServerThread(example.create_app(fake.issuer, url), sock)
        server.start()
        try:
            yield Served(fake, url)
        finally:
            server.stop()


@asynccontextmanager
async def recording_client(
    headers: dict[str, str] | None = None,
) -> AsyncIterator[tuple[httpx2.AsyncClient, list[httpx2.Response]]]:
    """An httpx2 client for the MCP transport that keeps every response it received."""
    seen: list[httpx2.Response] = []

    async def keep(response: httpx2.Response) -> None:
        await response.aread()
        seen.append(response)

    async with httpx2.AsyncClient(
        headers=headers, timeout=10.0, event_hooks={"response": [keep]}
    ) as http:
        yield http, seen


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mcp_error(exc: BaseException) -> MCPError | None:
    """The MCPError in ``exc``, which the SDK may wrap in a task group's exception group."""
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        return next((e for e in map(mcp_error, exc.exceptions) if e is not None), None)
    return None


async def refused_connection(url: str, http: httpx2.AsyncClient) -> MCPError:
    """Connect with the SDK's client, which must fail with an MCP error."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the group is unwrapped below
        async with Client(streamable_http_client(url, http_client=http)):
            pass
    found = mcp_error(caught.value)
    assert found is not None, caught.value
    return found


async def test_an_unauthenticated_call_gets_the_challenge_and_the_metadata_it_points_to(
    served: Served,
) -> None:
    async with recording_client() as (http, seen):
        await refused_connection(served.url, http)
        challenged = seen[0]
        pointer = extract_resource_metadata_from_www_auth(challenged)  # the SDK's own parser
        assert pointer is not None
        metadata = await http.get(pointer)

    assert challenged.status_code == 401
    assert challenged.headers["www-authenticate"].startswith('Bearer realm="mcp"')
    assert pointer == served.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
    document = ProtectedResourceMetadata.model_validate_json(metadata.content)
    assert str(document.resource) == served.url
    assert [str(server) for server in document.authorization_servers] == [served.issuer]
    assert document.scopes_supported == [example.TOOL_SCOPE]
    assert document.bearer_methods_supported == ["header"]
    assert all(response.status_code == 401 for response in seen[:-1])
    assert served.fake.recording.count("token") == 0


async def test_an_authorized_client_lists_and_calls_the_tool(served: Served) -> None:
    auth = client_script.client_credentials(
        served.url, served.issuer, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
    )

    names, result = await client_script.greet(served.url, auth, "Ada")

    assert names == ["greet"]
    assert result.is_error is False
    assert result.content[0].text == f"Hello, Ada! (asked by {DEFAULT_CLIENT_ID})"
    # The SDK found Scalekit from the challenge alone and asked for a token for this resource.
    metadata = served.fake.recording.last("resource_metadata")
    assert (
        metadata.path == f"/.well-known/oauth-authorization-server/resources/{example.RESOURCE_ID}"
    )
    (token_request,) = served.fake.recording.token_requests("client_credentials")
    assert token_request.path == f"/resources/{example.RESOURCE_ID}/oauth/token"
    assert token_request.param("resource") == served.url
    assert token_request.param("scope") == example.TOOL_SCOPE


async def test_a_token_for_another_resource_is_refused(served: Served) -> None:
    other = served.url.replace("/mcp", "/other-mcp")
    token = served.fake.issue_m2m_token(scopes=[example.TOOL_SCOPE], resource=other)
    mine = served.fake.issue_m2m_token(scopes=[example.TOOL_SCOPE], resource=served.url)
    async with (
        recording_client(bearer(mine)) as (http, _),
        Client(streamable_http_client(served.url, http_client=http)) as client,
    ):
        assert (await client.list_tools()).tools[0].name == "greet"  # the keys are warm
    before = len(served.fake.recording)

    async with recording_client(bearer(token)) as (http, seen):
        await refused_connection(served.url, http)

    assert {response.status_code for response in seen} == {401}
    challenge = seen[0].headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert "resource_metadata=" in challenge
    assert seen[0].json()["detail"] == "The access token is not meant for this API."
    assert len(served.fake.recording) == before  # refused without asking Scalekit anything


async def test_a_token_without_the_tools_scope_gets_insufficient_scope(served: Served) -> None:
    token = served.fake.issue_m2m_token(scopes=["mcp:tools:other"], resource=served.url)
    async with (
        recording_client(bearer(token)) as (http, seen),
        Client(streamable_http_client(served.url, http_client=http)) as client,
    ):
        listed = await client.list_tools()
        with pytest.raises(MCPError):
            await client.call_tool("greet", {"name": "Ada"})

    assert [tool.name for tool in listed.tools] == ["greet"]
    refused = seen[-1]
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{example.TOOL_SCOPE}"' in challenge
    assert extract_resource_metadata_from_www_auth(refused) == served.url.replace(
        "/mcp", "/.well-known/oauth-protected-resource/mcp"
    )


# -- the JSON-RPC and transport edges, in-process ------------------------------------------------

RESOURCE = "http://127.0.0.1:8000/mcp"
JSON_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@asynccontextmanager
async def mcp_app(scopes: list[str] | None = None) -> AsyncIterator[AsyncTestClient[Litestar]]:
    fake = FakeScalekit()
    token = fake.issue_m2m_token(scopes=scopes or [example.TOOL_SCOPE], resource=RESOURCE)
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        app = example.create_app(fake.issuer, RESOURCE, http=http)
        async with AsyncTestClient(app, base_url="http://127.0.0.1:8000") as client:
            client.headers.update(bearer(token) | JSON_HEADERS)
            yield client


def rpc(method: str, params: Any = None, msg_id: Any = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


@pytest.mark.parametrize(
    ("offered", "agreed"),
    [("2025-11-25", "2025-11-25"), ("2025-06-18", "2025-06-18"), ("1999-01-01", "2025-11-25")],
)
async def test_initialize_negotiates_the_protocol_version(offered: str, agreed: str) -> None:
    params = {"protocolVersion": offered, "capabilities": {}, "clientInfo": {"name": "t"}}
    async with mcp_app() as client:
        response = await client.post("/mcp", json=rpc("initialize", params))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "mcp-session-id" not in response.headers
    body = response.json()
    assert body["id"] == 1
    assert body["result"]["protocolVersion"] == agreed
    assert body["result"]["capabilities"] == {"tools": {"listChanged": False}}


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (rpc("resources/list"), -32601),
        (rpc("initialize", {"capabilities": {}}), -32602),
        (rpc("tools/list", ["not", "an", "object"]), -32602),
        (rpc("tools/call", {"name": "rm -rf", "arguments": {}}), -32602),
    ],
    ids=["unknown-method", "no-protocol-version", "params-not-object", "unknown-tool"],
)
async def test_request_errors_are_json_rpc_errors_with_the_request_id(
    message: dict[str, Any], code: int
) -> None:
    async with mcp_app() as client:
        response = await client.post("/mcp", json=message)

    assert response.status_code == 200
    assert response.json()["id"] == 1
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"{not json", {}, 400, -32700),
        (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', {}, 400, -32600),
        (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', {}, 400, -32600),
        (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', {}, 400, -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {"Accept": "text/html"}, 406, -32600),
        (b'{"jsonrpc":"2.0","id":1,"method":"ping"}', {"Content-Type": "text/plain"}, 415, -32600),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
            {"Origin": "https://evil.example"},
            403,
            -32600,
        ),
        (
            b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
            {"MCP-Protocol-Version": "2026-07-28"},
            400,
            -32600,
        ),
    ],
    ids=[
        "parse",
        "batch",
        "not-2.0",
        "bool-id",
        "accept",
        "content-type",
        "origin",
        "version",
    ],
)
async def test_messages_refused_as_a_whole_get_an_http_error_and_a_json_rpc_body(
    content: bytes, headers: dict[str, str], status: int, code: int
) -> None:
    async with mcp_app() as client:
        response = await client.post("/mcp", content=content, headers=headers)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code


async def test_a_client_accepting_anything_is_answered() -> None:
    async with mcp_app() as client:
        response = await client.post("/mcp", json=rpc("ping"), headers={"Accept": "*/*"})

    assert response.status_code == 200
    assert response.json() == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_notifications_are_accepted_without_a_body() -> None:
    async with mcp_app() as client:
        response = await client.post(
            "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}
        )

    assert response.status_code == 202
    assert response.content == b""


async def test_bad_tool_arguments_are_a_tool_error_the_model_can_read() -> None:
    async with mcp_app() as client:
        response = await client.post(
            "/mcp", json=rpc("tools/call", {"name": "greet", "arguments": {"name": 7}})
        )

    result = response.json()["result"]
    assert result["isError"] is True
    assert "name" in result["content"][0]["text"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_no_stream_and_no_session_answer_405(method: str) -> None:
    async with mcp_app() as client:
        response = await client.request(method, "/mcp")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_an_oversized_message_is_refused_before_it_is_parsed() -> None:
    padding = "x" * (example.MAX_BODY + 1)
    async with mcp_app() as client:
        response = await client.post("/mcp", json=rpc("ping", {"padding": padding}))

    assert response.status_code == 413
