"""A browser MCP client may read the RFC 9728 document cross-origin, custom headers included.

The MCP authorization spec has clients send ``MCP-Protocol-Version`` with metadata discovery
requests, so a browser preflights the GET; the preflight must answer with CORS headers too.
"""

from __future__ import annotations

import pytest

from rpkit.testing import FakeOP
from tests.authz.test_protected_resource import METADATA_PATH, api

pytestmark = pytest.mark.authz

PREFLIGHT = {
    "origin": "https://inspector.example",
    "access-control-request-method": "GET",
}


async def test_a_preflight_with_the_mcp_header_is_allowed_from_any_origin(fake_op: FakeOP) -> None:
    asked = PREFLIGHT | {"access-control-request-headers": "mcp-protocol-version"}
    async with api(fake_op) as client:
        response = await client.options(METADATA_PATH, headers=asked)
        document = await client.get(
            METADATA_PATH, headers={"origin": PREFLIGHT["origin"], "mcp-protocol-version": "x"}
        )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET"
    assert response.headers["access-control-allow-headers"] == "mcp-protocol-version"
    assert "access-control-allow-credentials" not in response.headers
    assert document.status_code == 200
    assert document.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "asked",
    ["x-a\r\nset-cookie: y", "a b", "," * 3, "a" * 600],
    ids=["crlf", "space", "commas", "too-long"],
)
async def test_asked_header_names_that_are_not_a_token_list_are_not_echoed(
    fake_op: FakeOP, asked: str
) -> None:
    async with api(fake_op) as client:
        response = await client.options(
            METADATA_PATH, headers=PREFLIGHT | {"access-control-request-headers": asked}
        )

    assert response.status_code == 204
    assert "access-control-allow-headers" not in response.headers
    assert response.headers["access-control-allow-origin"] == "*"


async def test_a_preflight_needs_no_token_and_a_protected_route_keeps_its_challenge(
    fake_op: FakeOP,
) -> None:
    async with api(fake_op) as client:
        preflight = await client.options(METADATA_PATH, headers=PREFLIGHT)
        protected = await client.get("/mcp")

    assert preflight.status_code == 204
    assert protected.status_code == 401
    assert "resource_metadata=" in protected.headers["www-authenticate"]
