"""rpkit's policy for every request to a provider, whatever client the application passes: a
redirect is refused and never followed, a body past its byte bound is refused before it is read
whole, and rpkit's deadline holds even on a client configured with ``timeout=None``.

The attacker's variants run through :class:`~rpkit.client.RelyingParty` on a client built the
permissive way (``follow_redirects=True, timeout=None``) and assert the REJECT triple: the typed
error, no request to the redirect's target (or no further request to the OP), and no session.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from rpkit._outbound import Encoded, Redirected, TooLarge, fetch
from rpkit.client import LoginResult, RelyingParty
from rpkit.config import ProviderConfig
from rpkit.discovery import MAX_DISCOVERY_BYTES, DiscoveryCache, ProviderMetadata, parse_metadata
from rpkit.errors import (
    ConfigurationError,
    DiscoveryError,
    IDTokenValidationError,
    JWKSError,
    RPKitError,
    TokenExchangeError,
    UserInfoError,
)
from rpkit.jwks import MAX_JWKS_BYTES, JWKSCache
from rpkit.profile import MAX_PROFILE_BYTES, profile_fetcher
from rpkit.store import MemoryStore
from rpkit.testing import DEFAULT_REDIRECT_URI, Canned, Endpoint, FakeOP
from rpkit.testing.providers import FakeGitHub
from rpkit.tokens import MAX_TOKEN_RESPONSE_BYTES, TokenClient
from rpkit.userinfo import MAX_USERINFO_BYTES, UserInfoClient

URL = "https://op.rpkit.test/document"
CHUNK = 16 * 1024
HUGE = 4 * 1024 * 1024
LOOPBACK_ATTACKER = "http://127.0.0.1:8444"
TXN_PREFIX = "rpkit:txn:"


class Body(httpx.AsyncByteStream):
    """A response body served chunk by chunk, counting what the reader pulled from it."""

    def __init__(self, size: int, *, chunk: int = CHUNK, delay: float = 0.0) -> None:
        self.size = size
        self.chunk = chunk
        self.delay = delay
        self.served = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.served < self.size:
            if self.delay:
                await asyncio.sleep(self.delay)
            piece = min(self.chunk, self.size - self.served)
            self.served += piece
            yield b" " * piece

    async def aclose(self) -> None:
        self.closed = True


def permissive(transport: httpx.AsyncBaseTransport, **options: Any) -> httpx.AsyncClient:
    """A client as an application might build it: follows redirects, never times out."""
    no_timeout = None  # the point: the application's client would wait forever
    return httpx.AsyncClient(
        transport=transport, follow_redirects=True, timeout=no_timeout, **options
    )


def answering(*responses: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """Answer each request with the next of ``responses`` (the last one repeats)."""
    pending = list(responses)

    def answer(request: httpx.Request) -> httpx.Response:
        respond = pending.pop(0) if len(pending) > 1 else pending[0]
        return respond(request)

    return httpx.MockTransport(answer)


def redirect_to(location: str, status: int = 302) -> Canned:
    return Canned(status, b"", None, {"Location": location})


# -- fetch: the byte bound ------------------------------------------------------------------------


async def test_a_body_past_the_bound_is_refused_after_reading_no_more_than_the_bound():
    body = Body(HUGE)
    http = permissive(answering(lambda _: httpx.Response(200, stream=body)))

    with pytest.raises(TooLarge, match="the document answered more than 65536 bytes") as caught:
        await fetch(http, "GET", URL, what="the document", max_bytes=64 * 1024)

    assert caught.value.status == 200
    assert body.served <= 64 * 1024 + CHUNK
    assert body.closed


async def test_a_declared_length_past_the_bound_is_refused_before_any_byte_is_read():
    body = Body(HUGE)
    headers = {"Content-Length": str(HUGE)}
    http = permissive(answering(lambda _: httpx.Response(200, stream=body, headers=headers)))

    with pytest.raises(TooLarge):
        await fetch(http, "GET", URL, what="the document", max_bytes=64 * 1024)

    assert body.served == 0


async def test_a_body_of_exactly_the_bound_is_returned_whole():
    http = permissive(answering(lambda _: httpx.Response(200, stream=Body(1000, chunk=7))))

    response = await fetch(http, "GET", URL, what="the document", max_bytes=1000)

    assert response.status_code == 200
    assert response.content == b" " * 1000


@pytest.mark.parametrize("declared", ["-1", "1e9", "12, 12", "0x10", "", "99999999999999999999"])
async def test_a_content_length_that_is_not_a_plain_number_is_ignored_and_the_body_counted(
    declared: str,
):
    body = Body(HUGE)
    headers = {"Content-Length": declared}
    http = permissive(answering(lambda _: httpx.Response(200, stream=body, headers=headers)))

    with pytest.raises(TooLarge):
        await fetch(http, "GET", URL, what="the document", max_bytes=1024)

    assert body.served <= 1024 + CHUNK


async def test_a_compressed_body_is_refused_and_identity_is_what_rpkit_asks_for():
    seen: list[httpx.Request] = []

    def gzipped(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"\x1f\x8b", headers={"Content-Encoding": "gzip"})

    with pytest.raises(Encoded, match="'gzip'"):
        await fetch(permissive(answering(gzipped)), "GET", URL, what="x", max_bytes=1024)

    assert seen[0].headers["accept-encoding"] == "identity"


# -- fetch: redirects, credentials and time -------------------------------------------------------


@pytest.mark.parametrize("status", [300, 301, 302, 303, 304, 307, 308])
async def test_a_redirect_is_refused_unread_even_by_a_client_that_follows_redirects(status: int):
    body = Body(100)
    requested: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requested.append(request.url.path)
        return httpx.Response(status, stream=body, headers={"Location": "/elsewhere"})

    http = permissive(httpx.MockTransport(answer))

    with pytest.raises(
        Redirected, match=f"HTTP {status}, a redirect rpkit never follows"
    ) as caught:
        await fetch(http, "GET", URL, what="the document", max_bytes=1024)

    assert caught.value.status == status
    assert "/elsewhere" not in str(caught.value)
    assert requested == ["/document"]
    assert body.served == 0


async def test_the_applications_client_wide_credentials_are_not_sent_to_the_provider():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"{}")

    http = permissive(httpx.MockTransport(answer), auth=("app-user", "app-password"))

    await fetch(http, "GET", URL, what="x", max_bytes=1024)
    await fetch(http, "GET", URL, what="x", max_bytes=1024, headers={"Authorization": "Bearer t"})

    assert "authorization" not in seen[0].headers
    assert seen[1].headers["authorization"] == "Bearer t"


async def test_a_client_without_timeouts_still_gives_up_at_rpkits_deadline():
    async def silent(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(200)

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout, match=r"within 0\.2 s"):
        await fetch(
            permissive(httpx.MockTransport(silent)), "GET", URL, what="x", max_bytes=10, timeout=0.2
        )

    assert time.monotonic() - started < 2


async def test_a_body_that_trickles_in_is_cut_at_rpkits_deadline():
    trickle = Body(HUGE, chunk=1, delay=0.02)
    http = permissive(answering(lambda _: httpx.Response(200, stream=trickle)))

    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        await fetch(http, "GET", URL, what="x", max_bytes=HUGE, timeout=0.3)

    assert time.monotonic() - started < 2
    assert trickle.closed


@pytest.mark.parametrize(
    ("client_timeout", "expected"),
    [
        (None, {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}),
        (httpx.Timeout(60.0), {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}),
        (httpx.Timeout(0.5, connect=0.1), {"connect": 0.1, "read": 0.5, "write": 0.5, "pool": 0.5}),
        (httpx.Timeout(None, read=2.0), {"connect": 5.0, "read": 2.0, "write": 10.0, "pool": 10.0}),
    ],
)
async def test_each_phase_waits_the_tighter_of_the_clients_timeout_and_rpkits(
    client_timeout: httpx.Timeout | None, expected: dict[str, float]
):
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer), timeout=client_timeout)

    await fetch(http, "GET", URL, what="x", max_bytes=10)

    assert seen[0].extensions["timeout"] == expected


# -- every client refuses a multi-megabyte answer, read no further than its bound -----------------


def fake_metadata(op: FakeOP, config: ProviderConfig) -> ProviderMetadata:
    return parse_metadata(json.dumps(op.metadata()).encode(), config)


Call = Callable[[httpx.AsyncClient, ProviderConfig, ProviderMetadata], Awaitable[Any]]


async def _userinfo(http: httpx.AsyncClient, config: ProviderConfig, meta: ProviderMetadata) -> Any:
    return await UserInfoClient(http).fetch(config, meta, access_token="t", expected_sub="alice")


async def _token(http: httpx.AsyncClient, config: ProviderConfig, meta: ProviderMetadata) -> Any:
    return await TokenClient(http).exchange_code(
        config, meta, code="c", redirect_uri=DEFAULT_REDIRECT_URI, code_verifier="v" * 43
    )


async def _profile(http: httpx.AsyncClient, _: ProviderConfig, meta: ProviderMetadata) -> Any:
    url = meta.userinfo_endpoint or ""
    return await profile_fetcher(http, url, "t")(url)


CLIENTS: dict[str, tuple[Call, int, type[RPKitError], str]] = {
    "discovery": (
        lambda http, config, _: DiscoveryCache(http).get(config),
        MAX_DISCOVERY_BYTES,
        DiscoveryError,
        "more than 524288 bytes",
    ),
    "jwks": (
        lambda http, _, meta: JWKSCache(http).warm(meta.jwks_uri),
        MAX_JWKS_BYTES,
        JWKSError,
        "more than 262144 bytes",
    ),
    "token": (_token, MAX_TOKEN_RESPONSE_BYTES, TokenExchangeError, "more than 65536 bytes"),
    "userinfo": (_userinfo, MAX_USERINFO_BYTES, UserInfoError, "more than 262144 bytes"),
    "profile": (_profile, MAX_PROFILE_BYTES, UserInfoError, "more than 262144 bytes"),
}


@pytest.mark.parametrize("name", list(CLIENTS))
async def test_a_multi_megabyte_answer_is_refused_typed_after_reading_at_most_the_bound(
    fake_op: FakeOP, name: str
):
    call, bound, error, detail = CLIENTS[name]
    config = fake_op.provider_config()
    body = Body(HUGE)
    json_type = {"Content-Type": "application/json"}
    http = permissive(answering(lambda _: httpx.Response(200, stream=body, headers=json_type)))

    with pytest.raises(error, match=detail) as caught:
        await call(http, config, fake_metadata(fake_op, config))

    assert body.served <= bound + CHUNK
    assert getattr(caught.value, "reason", "too_large") == "too_large"
    assert getattr(caught.value, "unavailable", True)


def test_every_bound_and_timeout_must_be_positive():
    http = httpx.AsyncClient()
    for build in (
        lambda: DiscoveryCache(http, max_bytes=0),
        lambda: DiscoveryCache(http, timeout=0),
        lambda: JWKSCache(http, max_bytes=-1),
        lambda: TokenClient(http, timeout=-1.0),
        lambda: UserInfoClient(http, max_bytes=0),
        lambda: profile_fetcher(http, URL, "t", timeout=0),
    ):
        with pytest.raises(ConfigurationError, match="max_bytes > 0 and timeout > 0"):
            build()


# -- through RelyingParty: oversized documents ----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def padded(document: dict[str, Any], size: int = HUGE) -> bytes:
    """``document`` with a member that makes it ``size`` bytes or more: valid JSON, valid
    shape, only too large."""
    return json.dumps(document | {"x_padding": "x" * size}).encode()


async def login(rp: RelyingParty, op: FakeOP, config: ProviderConfig) -> LoginResult:
    request = await rp.begin_login(config.id, redirect_uri=DEFAULT_REDIRECT_URI)
    callback = await op.approve(request.url)
    return await rp.complete_login(config.id, list(callback.params))


async def refused_login(
    rp: RelyingParty, op: FakeOP, config: ProviderConfig, error: type[Exception]
) -> Exception:
    """A login that fails with ``error``: no result, and no transaction left behind."""
    try:
        request = await rp.begin_login(config.id, redirect_uri=DEFAULT_REDIRECT_URI)
    except error as exc:
        return exc
    callback = await op.approve(request.url)
    with pytest.raises(error) as caught:
        await rp.complete_login(config.id, list(callback.params))
    assert await rp.store.get(TXN_PREFIX + request.state) is None, "the transaction survived"
    return caught.value


@pytest.mark.parametrize(
    ("endpoint", "error", "stops_before"),
    [
        ("discovery", DiscoveryError, "authorize"),
        ("jwks", IDTokenValidationError, "userinfo"),
        ("token", TokenExchangeError, "userinfo"),
        ("userinfo", UserInfoError, None),
    ],
)
async def test_a_login_meeting_a_multi_megabyte_answer_fails_typed_without_a_session(
    fake_op: FakeOP, endpoint: Endpoint, error: type[RPKitError], stops_before: Endpoint | None
):
    config = fake_op.provider_config(fetch_userinfo=True)
    honest = {
        "discovery": fake_op.metadata(),
        "jwks": fake_op.keys.jwks(),
        "token": {"access_token": "a", "token_type": "Bearer"},
        "userinfo": {"sub": "alice"},
    }[endpoint]
    fake_op.misbehave.respond = {endpoint: Canned(200, padded(honest), "application/json")}
    rp = RelyingParty([config], http=permissive(fake_op.transport()), store=MemoryStore())

    refused = await refused_login(rp, fake_op, config, error)

    assert "more than" in str(refused), refused
    if stops_before is not None:
        assert fake_op.oracle.count(stops_before) == 0


async def test_a_cached_document_and_key_set_survive_an_oversized_refresh_and_keep_working(
    fake_op: FakeOP,
):
    attacker = FakeOP("https://attacker.rpkit.test")
    config = fake_op.provider_config()
    clock = Clock()
    http = permissive(fake_op.transport(attacker))
    discovery = DiscoveryCache(http, ttl=60, clock=clock)
    jwks = JWKSCache(http, clock=clock)
    rp = RelyingParty([config], http=http, store=MemoryStore(), discovery=discovery, jwks=jwks)
    await login(rp, fake_op, config)
    # Both oversized answers are otherwise acceptable, and would move the keys to the attacker.
    moved = fake_op.metadata() | {"jwks_uri": attacker.endpoints["jwks"]}
    fake_op.misbehave.respond = {
        "discovery": Canned(200, padded(moved), "application/json"),
        "jwks": Canned(200, padded(attacker.keys.jwks()), "application/json"),
    }
    clock.now += 100_000

    result = await login(rp, fake_op, config)

    assert result.identity.subject == "alice"
    cached = discovery.cached(config.issuer)
    assert cached is not None
    assert cached.jwks_uri == fake_op.endpoints["jwks"]
    assert fake_op.oracle.count("discovery") == 2
    assert fake_op.oracle.count("jwks") == 2
    assert attacker.oracle.count() == 0


# -- through RelyingParty: the attacker's redirects -----------------------------------------------


async def test_a_redirected_discovery_document_is_refused_and_its_target_never_asked(
    fake_op: FakeOP,
):
    attacker = FakeOP("https://attacker.rpkit.test")
    # The target claims the honest issuer and moves the keys to the attacker, who signs.
    forged = fake_op.metadata() | {"jwks_uri": attacker.endpoints["jwks"]}
    attacker.misbehave.respond = {"discovery": Canned.json(forged)}
    fake_op.minter.keys = attacker.keys
    fake_op.misbehave.respond = {"discovery": redirect_to(attacker.endpoints["discovery"])}
    config = fake_op.provider_config()
    store = MemoryStore()
    rp = RelyingParty([config], http=permissive(fake_op.transport(attacker)), store=store)

    error = await refused_login(rp, fake_op, config, DiscoveryError)

    assert "HTTP 302, a redirect rpkit never follows" in str(error)
    assert attacker.oracle.count() == 0
    assert fake_op.oracle.count("authorize") == 0
    assert len(store) == 0


async def test_a_redirected_key_set_is_refused_and_the_login_fails_on_the_attackers_keys(
    fake_op: FakeOP,
):
    attacker = FakeOP(LOOPBACK_ATTACKER)
    fake_op.minter.keys = attacker.keys  # the ID token verifies with the loopback target's keys
    fake_op.misbehave.respond = {"jwks": redirect_to(attacker.endpoints["jwks"])}
    config = fake_op.provider_config(fetch_userinfo=True)
    rp = RelyingParty([config], http=permissive(fake_op.transport(attacker)), store=MemoryStore())

    error = await refused_login(rp, fake_op, config, IDTokenValidationError)

    assert isinstance(error, IDTokenValidationError)
    assert error.reason == "key"
    assert attacker.oracle.count() == 0
    assert fake_op.oracle.count("userinfo") == 0
    assert rp.jwks.usable_keys(fake_op.endpoints["jwks"]) == 0


@pytest.mark.parametrize(
    ("endpoint", "error", "status"),
    [("token", TokenExchangeError, 307), ("userinfo", UserInfoError, 302)],
)
async def test_a_redirected_token_or_userinfo_request_is_refused_before_the_target(
    fake_op: FakeOP, endpoint: Endpoint, error: type[RPKitError], status: int
):
    attacker = FakeOP(LOOPBACK_ATTACKER)
    target = attacker.endpoints[endpoint]
    fake_op.misbehave.respond = {endpoint: redirect_to(target, status)}
    config = fake_op.provider_config(fetch_userinfo=True)
    rp = RelyingParty([config], http=permissive(fake_op.transport(attacker)), store=MemoryStore())

    refused = await refused_login(rp, fake_op, config, error)

    assert f"HTTP {status}" in str(refused)
    assert attacker.oracle.count() == 0  # neither the code, the secret nor the access token
    assert fake_op.oracle.count(endpoint) == 1


async def test_a_redirected_profile_request_is_refused_before_the_target():
    github = FakeGitHub()
    attacker = FakeOP(LOOPBACK_ATTACKER)
    github.misbehave.respond = {"profile": redirect_to(attacker.endpoints["userinfo"])}
    config = github.provider_config()
    rp = RelyingParty([config], http=permissive(github.transport(attacker)), store=MemoryStore())

    refused = await refused_login(rp, github, config, UserInfoError)

    assert isinstance(refused, UserInfoError)
    assert refused.reason == "status"
    assert attacker.oracle.count() == 0


# -- through RelyingParty: a slow provider and a client without timeouts -------------------------


def with_deadline(rp: RelyingParty, http: httpx.AsyncClient, seconds: float) -> RelyingParty:
    """``rp`` with every client's rpkit deadline shortened to ``seconds``."""
    rp.tokens = TokenClient(http, timeout=seconds)
    rp.userinfo = UserInfoClient(http, timeout=seconds)
    return rp


@pytest.mark.parametrize(
    ("endpoint", "error"),
    [
        ("discovery", DiscoveryError),
        ("jwks", IDTokenValidationError),
        ("token", TokenExchangeError),
        ("userinfo", UserInfoError),
    ],
)
async def test_a_slow_provider_times_out_at_rpkits_deadline_on_a_client_without_timeouts(
    fake_op: FakeOP, endpoint: Endpoint, error: type[RPKitError]
):
    config = fake_op.provider_config(fetch_userinfo=True)
    http = permissive(fake_op.transport())
    discovery = DiscoveryCache(http, timeout=0.2)
    jwks = JWKSCache(http, timeout=0.2)
    rp = RelyingParty([config], http=http, store=MemoryStore(), discovery=discovery, jwks=jwks)
    with_deadline(rp, http, 0.2)
    fake_op.misbehave.latency = {endpoint: 30.0}

    started = time.monotonic()
    async with asyncio.timeout(5):  # a bound that does not hold fails here, not after 30 s
        await refused_login(rp, fake_op, config, error)

    assert time.monotonic() - started < 3
    assert fake_op.oracle.count(endpoint) == 1


async def test_relying_party_bounds_every_request_with_its_outbound_timeout(fake_op):
    from rpkit.client import RelyingParty
    from rpkit.errors import DiscoveryError

    fake_op.misbehave.latency = {"discovery": 5.0}
    http = httpx.AsyncClient(transport=fake_op.transport(), timeout=None)  # noqa: S113 - the permissive client on purpose
    rp = RelyingParty([fake_op.provider_config()], http=http, outbound_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(DiscoveryError):
        await rp.begin_login("fake", redirect_uri="https://app.example/cb")
    assert time.monotonic() - started < 3
