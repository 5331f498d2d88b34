"""Every request rpkit sends to a provider, under rpkit's own policy rather than the client's.

The application hands rpkit one ``httpx.AsyncClient`` and may have configured it for its own
needs (following redirects, no timeout, a client-wide ``auth``). :func:`fetch` sends each request
over that client's pool but never follows a redirect (a 3xx answer is refused unread), never
applies the client's ``auth``, waits no longer than rpkit's deadline (or the client's own
timeouts, when tighter), and reads the body with a byte bound: a declared ``Content-Length`` past
the bound is refused before any byte is read, and the body is counted as it streams.

Callers turn :class:`Refused` into their own typed error; network failures stay httpx's.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from rpkit.errors import ConfigurationError

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_TIMEOUT",
    "Encoded",
    "Redirected",
    "Refused",
    "TooLarge",
    "check_bounds",
    "fetch",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds one exchange may take from the start of the request to the last byte of the body."""
CONNECT_TIMEOUT = 5.0
"""Seconds to establish a connection (at most the exchange's timeout)."""

_LENGTH = re.compile(r"[0-9]{1,19}")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}")
# rpkit asks for the body as is: a compressed body would make the bound one of wire bytes only,
# and one compressed chunk can inflate a thousandfold before any check sees it.
_IDENTITY = "identity"


class Refused(Exception):
    """An answer rpkit does not read. Private: each caller raises its own typed error instead.

    Attributes:
        reason: ``redirect``, ``too_large`` or ``encoded``.
        detail: safe to log; never holds the ``Location`` or any of the body.
        status: the HTTP status of the refused answer.
    """

    reason: ClassVar[str] = "refused"

    def __init__(self, detail: str, *, status: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class Redirected(Refused):
    """A 3xx answer: rpkit never follows a redirect (it would carry a code, a secret or a
    token elsewhere, or fetch keys from wherever the redirect names)."""

    reason = "redirect"


class TooLarge(Refused):
    """The body is larger than the bound."""

    reason = "too_large"


class Encoded(Refused):
    """The body is content-encoded (compressed) although rpkit asked for ``identity``."""

    reason = "encoded"


def check_bounds(owner: str, max_bytes: int, timeout: float) -> None:
    """Refuse, at construction, a bound or timeout that would refuse every answer.

    Raises:
        ConfigurationError: ``max_bytes`` or ``timeout`` is not positive.
    """
    if max_bytes <= 0 or not timeout > 0:
        msg = f"{owner} needs max_bytes > 0 and timeout > 0 (seconds)"
        raise ConfigurationError(msg)


async def fetch(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    what: str,
    max_bytes: int,
    # Not the caller's asyncio.timeout: the value also sets httpx's per-phase timeouts.
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    json: Any = None,
) -> httpx.Response:
    """Send one request and return its answer with the body read (at most ``max_bytes``).

    Args:
        http: the application's client: its pool, transport, TLS settings and default headers
            are used; its redirect, timeout and ``auth`` settings are not.
        method: the HTTP method.
        url: the absolute URL.
        what: how errors name the source, e.g. ``"the token endpoint"``.
        max_bytes: the largest body read; one byte more and the answer is refused.
        timeout: seconds for the whole exchange; each of the client's own timeouts applies
            too when it is tighter.
        headers: request headers (``Accept-Encoding`` is always ``identity``).
        params: query parameters.
        data: a form body.
        json: a JSON body.

    Raises:
        Redirected: the answer was a 3xx (its body is not read).
        TooLarge: the body is larger than ``max_bytes`` (by its ``Content-Length`` or as read).
        Encoded: the body is content-encoded.
        httpx.HTTPError: the request failed; an exchange past ``timeout`` raises
            :class:`httpx.ReadTimeout`.
        httpx.InvalidURL: ``url`` is not a URL httpx can send to.
    """
    request = http.build_request(
        method,
        url,
        headers={**(headers or {}), "Accept-Encoding": _IDENTITY},
        params=params,
        data=data,
        json=json,
        timeout=_timeouts(http.timeout, timeout),
    )
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            return await _exchange(http, request, what, max_bytes)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        msg = f"{what} sent no complete answer within {timeout} s"
        raise httpx.ReadTimeout(msg, request=request) from exc


def _timeouts(client: httpx.Timeout, total: float) -> httpx.Timeout:
    """Per phase, the tighter of the client's timeout (None: none) and rpkit's."""
    own = {"connect": min(CONNECT_TIMEOUT, total), "read": total, "write": total, "pool": total}
    tighter = {
        phase: limit if getattr(client, phase) is None else min(getattr(client, phase), limit)
        for phase, limit in own.items()
    }
    return httpx.Timeout(**tighter)


async def _exchange(
    http: httpx.AsyncClient, request: httpx.Request, what: str, max_bytes: int
) -> httpx.Response:
    # auth=None: a client-wide credential of the application is never sent to a provider.
    streamed = await http.send(request, stream=True, follow_redirects=False, auth=None)
    try:
        status = streamed.status_code
        if 300 <= status < 400:
            msg = f"{what} answered HTTP {status}, a redirect rpkit never follows"
            raise Redirected(msg, status=status)
        _check_headers(streamed, what, max_bytes)
        body = await _read(streamed, what, max_bytes)
    finally:
        await streamed.aclose()
    return httpx.Response(status, headers=streamed.headers, content=body, request=request)


def _check_headers(response: httpx.Response, what: str, max_bytes: int) -> None:
    """Refuse before reading: an encoded body, or a declared length past the bound."""
    listed = (c.strip().lower() for c in response.headers.get("content-encoding", "").split(","))
    codings = [c for c in listed if c not in ("", _IDENTITY)]
    if codings:
        encoding = ", ".join(codings)
        named = repr(encoding) if _TOKEN.fullmatch(encoding) else "an unknown encoding"
        msg = f"{what} answered a body in {named}, which rpkit did not accept"
        raise Encoded(msg, status=response.status_code)
    declared = response.headers.get("content-length", "").strip()
    # Only a plain decimal is believed; anything else is ignored and the stream is counted.
    if _LENGTH.fullmatch(declared) and int(declared) > max_bytes:
        raise _too_large(response, what, max_bytes)


async def _read(response: httpx.Response, what: str, max_bytes: int) -> bytes:
    """The body, counted chunk by chunk: the read stops at the first byte past the bound."""
    chunks: list[bytes] = []
    size = 0
    # aiter_bytes, not aiter_raw: an in-process transport hands over a body already read, which
    # only aiter_bytes replays; with the identity encoding checked above, the bytes are the same.
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(response, what, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(response: httpx.Response, what: str, max_bytes: int) -> TooLarge:
    msg = f"{what} answered more than {max_bytes} bytes"
    return TooLarge(msg, status=response.status_code)
