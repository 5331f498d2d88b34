"""The fake OP's record of every request it received, for assertions such as "no token request
followed the bad callback" (the OIDF suite's rejection signal, ``rp-conformance.md`` §0.2)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rpkit.testing.knobs import Endpoint

__all__ = ["Oracle", "RecordedRequest"]


@dataclass
class RecordedRequest:
    """One request as the OP saw it. Secrets are kept as sent: this is a test double."""

    endpoint: Endpoint | None
    """Which endpoint it hit; None for a path the OP does not serve."""
    method: str
    url: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    """Header names in lower case; a repeated header keeps its last value."""
    form: tuple[tuple[str, str], ...] = ()
    """The ``application/x-www-form-urlencoded`` body, in order, repeats kept."""
    json: Any = None
    at: float = field(default_factory=time.time)
    outcome: str = "pending"
    """``ok``, or the OAuth error (and reason) the OP answered with."""

    def params(self, name: str) -> list[str]:
        """Every value of ``name`` in the query and the form body."""
        return [value for key, value in (*self.query, *self.form) if key == name]

    def param(self, name: str) -> str | None:
        """The first value of ``name`` in the query or the form body."""
        values = self.params(name)
        return values[0] if values else None


class Oracle:
    """Every request the fake OP received, in arrival order."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.requests)

    def __len__(self) -> int:
        return len(self.requests)

    def record(self, request: RecordedRequest) -> RecordedRequest:
        """Append ``request`` (the OP calls this on arrival, before any latency)."""
        self.requests.append(request)
        return request

    def of(self, endpoint: Endpoint) -> list[RecordedRequest]:
        """The requests that reached ``endpoint``."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def count(self, endpoint: Endpoint | None = None) -> int:
        """How many requests reached ``endpoint`` (all requests when None)."""
        return len(self.requests) if endpoint is None else len(self.of(endpoint))

    def counts(self) -> Counter[str]:
        """Requests per endpoint name; paths the OP does not serve count as ``not_found``."""
        return Counter(r.endpoint or "not_found" for r in self.requests)

    def last(self, endpoint: Endpoint) -> RecordedRequest:
        """The most recent request to ``endpoint``.

        Raises:
            LookupError: ``endpoint`` was never called.
        """
        matching = self.of(endpoint)
        if not matching:
            msg = f"the fake OP received no {endpoint} request"
            raise LookupError(msg)
        return matching[-1]

    def clear(self) -> None:
        """Forget every recorded request."""
        self.requests.clear()

    def reused_values(self) -> dict[str, list[str]]:
        """``state``, ``nonce`` and ``code_challenge`` values seen in more than one authorization
        request: an RP must never reuse them (row 6; RFC 9700 asks OPs to flag this)."""
        reused: dict[str, list[str]] = {}
        for name in ("state", "nonce", "code_challenge"):
            seen = Counter(v for r in self.of("authorize") for v in r.params(name))
            repeats = sorted(value for value, n in seen.items() if n > 1)
            if repeats:
                reused[name] = repeats
        return reused
