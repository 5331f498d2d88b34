"""Shared fixtures: a respx-mocked Scalekit environment with the wire of scalekit-sdk.md §3, §8."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from rpkit.store import MemoryStore
from rpkit.testing import KeyRing, TokenMinter
from rpkit_scalekit.management import ManagementClient

ENV = "https://acme.scalekit.test"
CLIENT_ID = "skc_123"
CLIENT_SECRET = "sk-secret-value"
ERROR_INFO = "type.googleapis.com/scalekit.v1.errdetails.ErrorInfo"


class Clock:
    """A settable wall clock."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def token_answer(token: str = "m2m-1", expires_in: Any = 86399) -> httpx.Response:  # noqa: S107
    """``client_credentials`` success, as Scalekit sends it (§2.7, §8.4)."""
    body = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
    return httpx.Response(200, json=body | {"scope": "read write"})


def status_envelope(
    status: int,
    grpc_code: int,
    message: str,
    error_code: str,
    *,
    request_id: str | None = "req_42",
    violations: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A google.rpc.Status error with one ErrorInfo detail (§3, §8.6)."""
    info: dict[str, Any] = {"@type": ERROR_INFO, "error_code": error_code}
    if request_id is not None:
        info["request_info"] = {"request_id": request_id}
    if violations is not None:
        info["validation_error_info"] = {"field_violations": violations}
    body = {"code": grpc_code, "message": message, "details": [info]}
    return httpx.Response(status, json=body, headers=headers)


def json_body(request: httpx.Request) -> dict[str, Any]:
    value = json.loads(request.content)
    assert isinstance(value, dict)
    return value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=ENV, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    # One context for every client: building one per test costs a third of a second.
    return ssl.create_default_context()


@pytest.fixture
async def http(mock: respx.MockRouter, tls: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, verify=tls) as client:
        yield client


@pytest.fixture
def token_route(mock: respx.MockRouter) -> respx.Route:
    return mock.post("/oauth/token").mock(return_value=token_answer())


@pytest.fixture
def api(http: httpx.AsyncClient, clock: Clock) -> ManagementClient:
    return ManagementClient(
        http, env_url=ENV, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock
    )


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    # MemoryStore expects a monotonic clock; the test clock only moves forward, so it serves.
    return MemoryStore(clock=clock)


@pytest.fixture(scope="session")
def keyring() -> KeyRing:
    return KeyRing()


@pytest.fixture
def minter(keyring: KeyRing, clock: Clock) -> TokenMinter:
    return TokenMinter(ENV, keyring, clock=clock)


@pytest.fixture
def keys_route(mock: respx.MockRouter, keyring: KeyRing) -> respx.Route:
    """``GET /keys``, the documented JWKS path (RS256 keys only, as Scalekit publishes)."""
    jwks = keyring.jwks()
    rsa = [k for k in jwks["keys"] if k.get("alg") == "RS256"]
    return mock.get("/keys").respond(200, json={"keys": rsa})


def discovery_document(**changes: Any) -> dict[str, Any]:
    """The environment's discovery document as §8.2 synthesises it (plus the members rpkit's
    core requires)."""
    document = {
        "issuer": ENV,
        "authorization_endpoint": f"{ENV}/oauth/authorize",
        "token_endpoint": f"{ENV}/oauth/token",
        "jwks_uri": f"{ENV}/keys",
        "end_session_endpoint": f"{ENV}/oidc/logout",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    }
    return document | changes
