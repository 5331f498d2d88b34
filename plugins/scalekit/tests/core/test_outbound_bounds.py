"""The plugin's calls to Scalekit under rpkit's outbound policy, on a client the application built
the permissive way (``follow_redirects=True, timeout=None``): a redirect is refused before the M2M
token, the client secret or a passwordless request reaches its target; an oversized answer is
refused after reading at most the bound; a slow Scalekit times out at rpkit's deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from rpkit.errors import ConfigurationError
from rpkit.testing import Canned, FakeOP
from rpkit_scalekit.errors import ScalekitUnavailableError
from rpkit_scalekit.management import MAX_RESPONSE_BYTES, ManagementClient
from rpkit_scalekit.passwordless import PasswordlessClient
from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ENV_URL,
    FakeScalekit,
)
from rpkit_scalekit.testing.knobs import ScalekitEndpoint

ATTACKER = "http://127.0.0.1:8444"
CHUNK = 16 * 1024
HUGE = 4 * 1024 * 1024


class Body(httpx.AsyncByteStream):
    """A response body served chunk by chunk, counting what the reader pulled from it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.served = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.served < self.size:
            piece = min(CHUNK, self.size - self.served)
            self.served += piece
            yield b" " * piece


@pytest.fixture
def fake() -> FakeScalekit:
    return FakeScalekit()


@pytest.fixture
def attacker() -> FakeOP:
    return FakeOP(ATTACKER)


def permissive(transport: httpx.AsyncBaseTransport) -> httpx.AsyncClient:
    """A client as an application might build it: follows redirects, never times out."""
    no_timeout = None  # the point: the application's client would wait forever
    return httpx.AsyncClient(transport=transport, follow_redirects=True, timeout=no_timeout)


def api_on(http: httpx.AsyncClient, **options: Any) -> ManagementClient:
    return ManagementClient(
        http,
        env_url=DEFAULT_ENV_URL,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        **options,
    )


@pytest.fixture
def api(fake: FakeScalekit, attacker: FakeOP) -> ManagementClient:
    return api_on(permissive(fake.transport(attacker)))


def redirect_to(url: str, status: int = 302) -> Canned:
    return Canned(status, b"", None, {"Location": url})


def padded(document: dict[str, Any]) -> Canned:
    """``document`` with a member that makes it several megabytes: valid, only too large."""
    body = json.dumps(document | {"padding": "x" * HUGE}).encode()
    return Canned(200, body, "application/json")


# -- redirects ------------------------------------------------------------------------------------


async def test_a_redirected_api_call_is_refused_before_the_m2m_token_reaches_the_target(
    fake: FakeScalekit, attacker: FakeOP, api: ManagementClient
):
    fake.knobs.respond = {"connections": redirect_to(f"{ATTACKER}/steal")}

    with pytest.raises(ScalekitUnavailableError, match="HTTP 302, a redirect") as caught:
        await api.list_connections(domain="example.com")

    assert caught.value.status == 302
    assert attacker.oracle.count() == 0
    assert fake.recording.count("connections") == 1


async def test_a_redirected_m2m_token_request_is_refused_before_the_secret_reaches_the_target(
    fake: FakeScalekit, attacker: FakeOP, api: ManagementClient
):
    # 307 keeps the method and the form: followed, it would post the client secret elsewhere.
    fake.knobs.respond = {"token": redirect_to(f"{ATTACKER}/token", 307)}

    with pytest.raises(ScalekitUnavailableError, match="HTTP 307") as caught:
        await api.access_token()

    assert caught.value.status == 307
    assert attacker.oracle.count() == 0
    assert fake.recording.count("token") == 1


async def test_a_redirected_passwordless_send_is_refused_before_the_target(
    fake: FakeScalekit, attacker: FakeOP, api: ManagementClient
):
    fake.knobs.respond = {"passwordless_send": redirect_to(f"{ATTACKER}/send", 307)}

    with pytest.raises(ScalekitUnavailableError, match="HTTP 307"):
        await PasswordlessClient(api).send("ada@example.com")

    assert attacker.oracle.count() == 0
    assert fake.recording.count("passwordless_send") == 1
    assert len(fake.outbox) == 0


# -- byte bounds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "honest"),
    [
        ("token", {"access_token": "m2m", "token_type": "Bearer", "expires_in": 3600}),
        ("connections", {"connections": []}),
    ],
)
async def test_a_multi_megabyte_answer_is_refused_typed(
    fake: FakeScalekit, api: ManagementClient, endpoint: ScalekitEndpoint, honest: dict[str, Any]
):
    fake.knobs.respond = {endpoint: padded(honest)}

    with pytest.raises(ScalekitUnavailableError, match=f"more than {MAX_RESPONSE_BYTES} bytes"):
        await api.list_connections(domain="example.com")


async def test_an_oversized_answer_is_read_no_further_than_the_bound(fake: FakeScalekit):
    body = Body(HUGE)

    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return await fake.handle(request)
        return httpx.Response(200, stream=body, headers={"Content-Type": "application/json"})

    api = api_on(permissive(httpx.MockTransport(answer)), max_response_bytes=64 * 1024)

    with pytest.raises(ScalekitUnavailableError, match="more than 65536 bytes"):
        await api.list_connections(domain="example.com")

    assert body.served <= 64 * 1024 + CHUNK


# -- time -----------------------------------------------------------------------------------------


async def test_a_slow_scalekit_times_out_at_rpkits_deadline_on_a_client_without_timeouts(
    fake: FakeScalekit,
):
    fake.knobs.latency = {"connections": 30.0}
    api = api_on(permissive(fake.transport()), timeout=0.2)

    started = time.monotonic()
    async with asyncio.timeout(5):  # a bound that does not hold fails here, not after 30 s
        with pytest.raises(ScalekitUnavailableError, match="Timeout"):
            await api.list_connections(domain="example.com")

    assert time.monotonic() - started < 3
    assert fake.recording.count("connections") == 1


def test_a_bound_or_timeout_that_is_not_positive_is_refused_at_construction():
    http = httpx.AsyncClient()
    with pytest.raises(ConfigurationError, match="max_bytes > 0 and timeout > 0"):
        api_on(http, max_response_bytes=0)
    with pytest.raises(ConfigurationError, match="max_bytes > 0 and timeout > 0"):
        api_on(http, timeout=0)
