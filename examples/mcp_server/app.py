"""An MCP server protected by Scalekit: a Litestar Streamable-HTTP endpoint behind rpkit bearer
auth.

``POST /mcp`` speaks JSON-RPC 2.0 as the MCP specification's Streamable HTTP transport describes
it (revision 2025-11-25, the newest the ``initialize`` handshake of the ``mcp`` SDK offers;
2025-06-18 and 2025-03-26 are negotiated too): ``initialize``, ``ping``, ``tools/list`` and
``tools/call`` for one tool, ``greet``, each answered with one ``application/json`` response
(the transport allows that instead of an SSE stream); notifications get ``202 Accepted``. The
server keeps no session (no ``Mcp-Session-Id``) and offers no server-to-client stream, so
``GET`` and ``DELETE`` answer 405 (https://modelcontextprotocol.io/specification/2025-11-25/basic/transports).

Authorization is rpkit's: :class:`~rpkit.litestar.OIDCBearerAuth` with Scalekit's
:func:`~rpkit_scalekit.resource_token_policy` (the token's ``aud`` must be this server's URL,
its ``iss`` the environment or the resource) and a
:class:`~rpkit.litestar.ProtectedResource`, so an MCP client without a token gets
``401`` with ``WWW-Authenticate: Bearer ... resource_metadata="..."``, reads the RFC 9728
document there, and asks Scalekit for a token for this resource. ``greet`` needs the
``mcp:tools:greet`` scope: without it, ``tools/call`` answers 403 ``insufficient_scope``.

Run ``python examples/mcp_server/app.py``: a fake Scalekit environment and the server start on
127.0.0.1, and the client credentials to use are printed; ``client.py`` is an MCP client.
"""

from __future__ import annotations

import shlex
from typing import Any, Final

import httpx
import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State

from rpkit.access_token import AccessToken
from rpkit.litestar import OIDCBearerAuth, ProtectedResource
from rpkit.litestar.bearer import BearerError
from rpkit_scalekit import resource_token_policy

__all__ = ["RESOURCE_ID", "SUPPORTED_VERSIONS", "TOOL_SCOPE", "create_app", "main"]

RESOURCE_ID: Final = "res_mcp_example"
"""The MCP server's id in the Scalekit dashboard (``res_...``)."""
TOOL_SCOPE: Final = "mcp:tools:greet"
"""The scope ``greet`` needs (Scalekit's naming: ``mcp:tools:<tool>``)."""
SUPPORTED_VERSIONS: Final = ("2025-11-25", "2025-06-18", "2025-03-26")
"""MCP revisions this server speaks, newest first; the first is offered when the client's is
not among them (lifecycle, "Version Negotiation")."""
MAX_BODY: Final = 64 * 1024
"""A JSON-RPC message larger than this is refused (413) before it is parsed."""

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
_JSON = "application/json"
_GREET: Final = {
    "name": "greet",
    "title": "Greet someone",
    "description": "Say hello to someone by name, on behalf of the token's subject.",
    "inputSchema": {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100}},
        "required": ["name"],
        "additionalProperties": False,
    },
}


class _RPCError(Exception):
    """A JSON-RPC error; ``status`` is the HTTP status of a message refused as a whole."""

    def __init__(self, code: int, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _answer(msg_id: Any, *, result: Any = None, error: _RPCError | None = None) -> Response[bytes]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id}
    if error is None:
        body["result"] = result
    else:
        body["error"] = {"code": error.code, "message": error.message}
    status = 200 if error is None else error.status
    return Response(msgspec.json.encode(body), status_code=status, media_type=_JSON)


def _check_transport(request: Request[Any, Any, Any]) -> None:
    """The HTTP-level rules: a foreign ``Origin`` (DNS rebinding), an ``Accept`` without JSON,
    a body that is not JSON."""
    origin = request.headers.get("origin")
    if origin is not None and origin != request.app.state.origin:
        raise _RPCError(INVALID_REQUEST, "Origin not allowed", 403)
    accepted = [
        part.split(";")[0].strip().lower()
        for part in request.headers.get("accept", "*/*").split(",")
    ]
    if not {_JSON, "application/*", "*/*"} & set(accepted):
        raise _RPCError(INVALID_REQUEST, "Not Acceptable: accept application/json", 406)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != _JSON:
        raise _RPCError(INVALID_REQUEST, "Unsupported Media Type: send application/json", 415)


def _parse(body: bytes) -> dict[str, Any]:
    """One JSON-RPC 2.0 message (batches were removed in revision 2025-06-18)."""
    try:
        message = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise _RPCError(PARSE_ERROR, "Parse error: the body is not JSON", 400) from exc
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise _RPCError(INVALID_REQUEST, "Invalid Request: one JSON-RPC 2.0 object", 400)
    msg_id = message.get("id")
    if "id" in message and (isinstance(msg_id, bool) or not isinstance(msg_id, str | int)):
        raise _RPCError(INVALID_REQUEST, "Invalid Request: id must be a string or an integer", 400)
    if "method" in message and not isinstance(message["method"], str):
        raise _RPCError(INVALID_REQUEST, "Invalid Request: method must be a string", 400)
    return message


def _params(message: dict[str, Any]) -> dict[str, Any]:
    params = message.get("params", {})
    if not isinstance(params, dict):
        raise _RPCError(INVALID_PARAMS, "Invalid params: params must be an object")
    return params


def _initialize(params: dict[str, Any]) -> dict[str, Any]:
    wanted = params.get("protocolVersion")
    if not isinstance(wanted, str):
        raise _RPCError(INVALID_PARAMS, "Invalid params: protocolVersion must be a string")
    return {
        "protocolVersion": wanted if wanted in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[0],
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": "rpkit-mcp-example", "version": "1.0.0"},
    }


def _call_tool(params: dict[str, Any], token: AccessToken) -> dict[str, Any]:
    if params.get("name") != "greet":
        raise _RPCError(INVALID_PARAMS, f"Unknown tool: {str(params.get('name'))[:64]!r}")
    if TOOL_SCOPE not in token.scopes:
        # The MCP authorization spec's scope challenge: 403, naming the scope, so the client
        # can ask for it (rpkit adds the realm and resource_metadata).
        description = f"The greet tool needs the {TOOL_SCOPE} scope."
        raise BearerError("insufficient_scope", description, scope=TOOL_SCOPE)
    name = _greet_name(params.get("arguments"))
    if name is None:
        # Revision 2025-11-25: bad tool input is a tool execution error the model can read and
        # correct, not a protocol error.
        text = "greet takes one argument, name: a string of 1 to 100 characters."
        return {"content": [{"type": "text", "text": text}], "isError": True}
    text = f"Hello, {name}! (asked by {token.sub})"
    return {"content": [{"type": "text", "text": text}], "isError": False}


def _greet_name(arguments: Any) -> str | None:
    """The ``name`` argument of ``greet``, or None when the arguments do not fit its schema."""
    if not isinstance(arguments, dict) or set(arguments) != {"name"}:
        return None
    name = arguments["name"]
    return name if isinstance(name, str) and 1 <= len(name) <= 100 else None


def _dispatch(message: dict[str, Any], request: Request[Any, AccessToken, Any]) -> Any:
    method, params = message.get("method"), _params(message)
    if method != "initialize":
        version = request.headers.get("mcp-protocol-version")
        if version is not None and version not in SUPPORTED_VERSIONS:
            raise _RPCError(
                INVALID_REQUEST, f"Unsupported MCP-Protocol-Version: {version[:32]}", 400
            )
    if method == "initialize":
        return _initialize(params)
    if method == "ping":
        return {}
    if method == "tools/list":
        return {"tools": [_GREET]}
    if method == "tools/call":
        return _call_tool(params, request.auth)
    raise _RPCError(METHOD_NOT_FOUND, f"Method not found: {str(method)[:64]}")


@post("/mcp", status_code=200, request_max_body_size=MAX_BODY)
async def mcp(request: Request[Any, AccessToken, Any]) -> Response[bytes]:
    """One JSON-RPC message in, its response (or 202 for a notification or response) out."""
    try:
        _check_transport(request)
        message = _parse(await request.body())
    except _RPCError as error:
        return _answer(None, error=error)
    if "method" not in message or "id" not in message:
        # A notification (notifications/initialized, cancelled) or a response: nothing to say.
        return Response(b"", status_code=202)
    try:
        return _answer(message["id"], result=_dispatch(message, request))
    except _RPCError as error:
        return _answer(message["id"], error=error)


@get("/mcp", sync_to_thread=False)
def no_stream() -> Response[bytes]:
    """No server-to-client SSE stream is offered: 405, as the transport allows."""
    return Response(b"", status_code=405, headers={"Allow": "POST"})


@delete("/mcp", status_code=405, sync_to_thread=False)
def no_session() -> Response[bytes]:
    """No session to end (the server issues no ``Mcp-Session-Id``): 405."""
    return Response(b"", status_code=405, headers={"Allow": "POST"})


def create_app(
    env_url: str, resource_url: str, *, http: httpx.AsyncClient | None = None
) -> Litestar:
    """The MCP server at ``resource_url`` (its public URL, ending in ``/mcp``), accepting tokens
    that the Scalekit environment ``env_url`` minted for it.

    Args:
        env_url: the Scalekit environment URL.
        resource_url: this server's MCP endpoint URL: the resource identifier in Scalekit's
            dashboard and the ``aud`` of its tokens.
        http: the client for Scalekit's keys; the app opens its own when None.
    """
    env = env_url.rstrip("/")
    resource = ProtectedResource(
        resource=resource_url,
        authorization_servers=(f"{env}/resources/{RESOURCE_ID}",),
        scopes_supported=(TOOL_SCOPE,),
        resource_name="rpkit MCP example",
    )
    policy = resource_token_policy(env, audience=resource_url, resource_id=RESOURCE_ID)
    auth = OIDCBearerAuth(policies=[policy], realm="mcp", resource=resource, http=http)
    origin = resource_url.split("/", 3)
    return Litestar(
        [mcp, no_stream, no_session],
        on_app_init=[auth.on_app_init],
        state=State({"origin": "/".join(origin[:3])}),
    )


def main() -> None:
    """Serve a fake Scalekit and the MCP server on 127.0.0.1 until Ctrl-C."""
    from rpkit.testing.server import (  # noqa: PLC0415 - development only
        ServerThread,
        bind_loopback,
        serve_until_interrupted,
    )
    from rpkit_scalekit.testing import (  # noqa: PLC0415
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        FakeScalekit,
    )

    fake_sock, app_sock = bind_loopback(0), bind_loopback(0)
    fake = FakeScalekit(f"http://127.0.0.1:{fake_sock.getsockname()[1]}")
    resource_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}/mcp"
    servers = [
        ServerThread(fake.asgi, fake_sock),
        ServerThread(create_app(fake.issuer, resource_url), app_sock),
    ]
    for server in servers:
        server.start()
    print(f"fake Scalekit: {fake.issuer}", flush=True)
    print(f"MCP server:    {resource_url}", flush=True)
    command = [resource_url, f"{fake.issuer}/resources/{RESOURCE_ID}", DEFAULT_CLIENT_ID]
    command.append(DEFAULT_CLIENT_SECRET)
    print(
        "client:", ".venv/bin/python examples/mcp_server/client.py", shlex.join(command), flush=True
    )
    serve_until_interrupted(servers)


if __name__ == "__main__":
    main()
