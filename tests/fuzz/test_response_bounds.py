"""Upstream answers against their byte bounds: whatever the status, body size, chunking,
``Content-Length`` (absent, true, a lie, not a number) or ``Content-Encoding``, rpkit's outbound
read either returns the whole body within the bound or refuses it typed, and never pulls more
than the bound (plus the chunk in flight) from the stream. Each client (discovery, JWKS, token,
UserInfo, profile) on top of it raises only its own typed error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from rpkit._outbound import Encoded, Redirected, Refused, TooLarge, fetch
from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata, fetch_metadata, parse_metadata
from rpkit.errors import (
    DiscoveryError,
    JWKSError,
    RPKitError,
    TokenEndpointError,
    UserInfoError,
)
from rpkit.jwks import JWKSCache
from rpkit.profile import profile_fetcher
from rpkit.testing import DEFAULT_REDIRECT_URI, FakeOP
from rpkit.tokens import TokenClient
from rpkit.userinfo import UserInfoClient
from tests.fuzz._budget import fuzz
from tests.fuzz.strategies import json_bytes

URL = "https://op.rpkit.test/document"
BOUND = 4096


class Served(httpx.AsyncByteStream):
    """``body`` in chunks of ``chunk`` bytes, counting what the reader pulled."""

    def __init__(self, body: bytes, chunk: int) -> None:
        self.body = body
        self.chunk = chunk
        self.served = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.served < len(self.body):
            piece = self.body[self.served : self.served + self.chunk]
            self.served += len(piece)
            yield piece


@dataclass(frozen=True)
class Answer:
    """One upstream answer: status, body, chunking and the two headers that matter."""

    status: int
    body: bytes
    chunk: int
    content_length: str | None
    content_encoding: str | None

    def __repr__(self) -> str:  # keeps Hypothesis's falsifying-example reports short
        return (
            f"Answer({self.status}, {len(self.body)} bytes of {self.body[:8]!r}, chunk "
            f"{self.chunk}, length {self.content_length!r}, encoding {self.content_encoding!r})"
        )

    def client(self) -> tuple[httpx.AsyncClient, Served]:
        """A permissive client whose every request gets this answer, and its counting body."""
        stream = Served(self.body, self.chunk)
        headers = [(b"Content-Type", b"application/json")]
        if self.content_length is not None:
            headers.append((b"Content-Length", self.content_length.encode("latin-1")))
        if self.content_encoding is not None:
            headers.append((b"Content-Encoding", self.content_encoding.encode("latin-1")))

        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(self.status, stream=stream, headers=headers)

        transport = httpx.MockTransport(answer)
        return httpx.AsyncClient(transport=transport, follow_redirects=True), stream

    def declared_over(self, bound: int) -> bool:
        """A plain decimal ``Content-Length`` larger than ``bound`` (rpkit believes only those)."""
        value = (self.content_length or "").strip()
        return value.isascii() and value.isdigit() and len(value) < 20 and int(value) > bound

    def encoded(self) -> bool:
        """A coding other than ``identity`` is named (empty list members do not count)."""
        codings = (self.content_encoding or "").split(",")
        return any(c.strip().lower() not in ("", "identity") for c in codings)


_header_text = st.text(
    alphabet=st.characters(codec="latin-1", exclude_characters="\r\n\x00"), max_size=24
)
statuses = st.sampled_from([*[200] * 10, 201, 204, 300, 301, 302, 303, 304, 307, 308, 401, 500])
sizes = st.one_of(st.integers(0, 2 * BOUND), st.sampled_from([BOUND, BOUND + 1, 3 * 1024 * 1024]))
fills = st.binary(min_size=1, max_size=16)


def _lengths(size: int) -> st.SearchStrategy[str | None]:
    return st.one_of(
        st.none(),
        st.just(str(size)),
        st.integers(-5, 4 * BOUND).map(str),
        st.sampled_from(["9" * 30, f"{size}, {size}", f" {size} ", "0x10", "1e9", "+1"]),
        _header_text,
    )


@st.composite
def answers(draw: st.DrawFn, bodies: st.SearchStrategy[bytes] | None = None) -> Answer:
    if bodies is None:
        size = draw(sizes)
        fill = draw(fills)
        body = (fill * (size // len(fill) + 1))[:size]
    else:
        body = draw(bodies)
        if draw(st.booleans()):  # an honest answer's headers, so documents also get accepted
            length = draw(st.sampled_from([None, str(len(body))]))
            return Answer(200, body, draw(st.integers(1, 8192)), length, None)
    encoding = draw(
        st.one_of(
            *[st.none()] * 4, st.sampled_from(["identity", " IDENTITY", "gzip", "br"]), _header_text
        )
    )
    return Answer(
        status=draw(statuses),
        body=body,
        chunk=draw(st.integers(1, 8192)),
        content_length=draw(_lengths(len(body))),
        content_encoding=encoding,
    )


@given(answer=answers())
@fuzz(300)
async def test_any_answer_is_read_whole_within_the_bound_or_refused_typed(answer: Answer):
    http, stream = answer.client()
    async with http:
        try:
            response = await fetch(http, "GET", URL, what="the document", max_bytes=BOUND)
        except Refused as exc:
            outcome: httpx.Response | Refused = exc
        else:
            outcome = response

    event(f"outcome: {type(outcome).__name__}")
    assert stream.served <= BOUND + answer.chunk
    if 300 <= answer.status < 400:
        assert isinstance(outcome, Redirected)
        assert stream.served == 0
    elif answer.encoded():
        assert isinstance(outcome, Encoded)
        assert stream.served == 0
    elif answer.declared_over(BOUND):
        assert isinstance(outcome, TooLarge)
        assert stream.served == 0
    elif len(answer.body) > BOUND:
        assert isinstance(outcome, TooLarge)
    else:
        assert isinstance(outcome, httpx.Response), outcome
        assert outcome.status_code == answer.status
        assert outcome.content == answer.body


# -- each client on top of it -------------------------------------------------------------------


@pytest.fixture(scope="module")
def op() -> FakeOP:
    return FakeOP()


Call = Callable[[httpx.AsyncClient, ProviderConfig, ProviderMetadata, int], Awaitable[Any]]


async def _discovery(http: httpx.AsyncClient, config: ProviderConfig, _: Any, bound: int) -> Any:
    return await fetch_metadata(http, config, max_bytes=bound)


async def _jwks(http: httpx.AsyncClient, _: Any, meta: ProviderMetadata, bound: int) -> Any:
    return await JWKSCache(http, max_bytes=bound).warm(meta.jwks_uri)


async def _token(
    http: httpx.AsyncClient, config: ProviderConfig, meta: ProviderMetadata, bound: int
) -> Any:
    return await TokenClient(http, max_bytes=bound).exchange_code(
        config, meta, code="c", redirect_uri=DEFAULT_REDIRECT_URI, code_verifier="v" * 43
    )


async def _userinfo(
    http: httpx.AsyncClient, config: ProviderConfig, meta: ProviderMetadata, bound: int
) -> Any:
    client = UserInfoClient(http, max_bytes=bound)
    return await client.fetch(config, meta, access_token="t", expected_sub="alice")


async def _profile(http: httpx.AsyncClient, _: Any, meta: ProviderMetadata, bound: int) -> Any:
    url = meta.userinfo_endpoint or ""
    return await profile_fetcher(http, url, "t", max_bytes=bound)(url)


CLIENTS: dict[str, tuple[Call, type[RPKitError]]] = {
    "discovery": (_discovery, DiscoveryError),
    "jwks": (_jwks, JWKSError),
    "token": (_token, TokenEndpointError),
    "userinfo": (_userinfo, UserInfoError),
    "profile": (_profile, UserInfoError),
}


def _documents(op: FakeOP, name: str) -> st.SearchStrategy[bytes]:
    """What a provider might send to client ``name``: its honest document, padded or not, or JSON
    of any shape, or any bytes."""
    honest = {
        "discovery": op.metadata(),
        "jwks": op.keys.jwks(),
        "token": {"access_token": "a", "token_type": "Bearer", "id_token": "x.y.z"},
        "userinfo": {"sub": "alice", "email": "alice@example.com"},
        "profile": {"id": 1, "login": "alice"},
    }[name]
    padded = st.integers(0, 2 * BOUND).map(
        lambda pad: json.dumps(honest | {"x_padding": "x" * pad}).encode()
    )
    return st.one_of(padded, st.one_of(json_bytes, st.binary(max_size=2 * BOUND)))


@given(data=st.data(), name=st.sampled_from(sorted(CLIENTS)))
@fuzz(250)
async def test_each_client_answers_with_its_own_typed_error_and_never_reads_past_its_bound(
    op: FakeOP, data: st.DataObject, name: str
):
    answer = data.draw(answers(_documents(op, name)), label="answer")
    size = len(answer.body)
    near = st.integers(max(1, size - 16), size + 16)  # just under, at and over the body's size
    bound = data.draw(st.one_of(st.integers(1, 3 * BOUND), near), label="bound")
    call, error = CLIENTS[name]
    config = op.provider_config()
    metadata = parse_metadata(json.dumps(op.metadata()).encode(), config)
    http, stream = answer.client()

    refused: RPKitError | None = None
    async with http:
        try:
            await call(http, config, metadata, bound)
        except error as exc:
            refused = exc

    event(f"{name}: {type(refused).__name__ if refused else 'accepted'}")
    assert stream.served <= bound + answer.chunk
    if refused is None:
        assert len(answer.body) <= bound
        assert answer.status < 300
    else:
        assert refused.detail
