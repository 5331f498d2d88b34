"""The fake Scalekit's record of every request it received, for assertions (scalekit-sdk.md
§8.10): "the RP never retried the send", "``/keys`` was fetched once", "the SDK sent its M2M
bearer to the token endpoint"."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rpkit_scalekit.testing.knobs import ScalekitEndpoint

__all__ = ["RecordedCall", "Recording"]


@dataclass
class RecordedCall:
    """One request as the fake saw it, and how it answered. Secrets are kept as sent."""

    endpoint: ScalekitEndpoint | None
    """Which endpoint it hit; None for a path the fake does not serve."""
    method: str
    url: str
    path: str
    headers: list[tuple[str, str]]
    """Every header in arrival order, names in the case the transport delivered (in-process
    keeps the client's case; HTTP/1.1 servers lower-case them)."""
    body: bytes
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    json: Any
    request_id: str
    at: float = field(default_factory=time.time)
    status: int | None = None
    """The HTTP status answered; None while in flight."""
    outcome: str = "pending"
    """``ok``, or why the fake refused (the error it answered)."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name``, matched case-insensitively."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (the SDK may repeat ``authorization``)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def param(self, name: str) -> str | None:
        """The first value of ``name`` in the query or form body."""
        return next((v for k, v in (*self.query, *self.form) if k == name), None)


class Recording:
    """Every request the fake received, in arrival order."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []

    def __iter__(self) -> Iterator[RecordedCall]:
        return iter(self.calls)

    def __len__(self) -> int:
        return len(self.calls)

    def add(self, call: RecordedCall) -> RecordedCall:
        """Append ``call`` (on arrival, before any latency)."""
        self.calls.append(call)
        return call

    def of(self, endpoint: ScalekitEndpoint) -> list[RecordedCall]:
        """The requests that reached ``endpoint``."""
        return [c for c in self.calls if c.endpoint == endpoint]

    def count(self, endpoint: ScalekitEndpoint | None = None) -> int:
        """How many requests reached ``endpoint`` (all requests when None)."""
        return len(self.calls) if endpoint is None else len(self.of(endpoint))

    def counts(self) -> Counter[str]:
        """Hits per endpoint name; unknown paths count as ``not_found``."""
        return Counter(c.endpoint or "not_found" for c in self.calls)

    def last(self, endpoint: ScalekitEndpoint) -> RecordedCall:
        """The most recent request to ``endpoint``.

        Raises:
            LookupError: ``endpoint`` was never called.
        """
        matching = self.of(endpoint)
        if not matching:
            msg = f"the fake Scalekit received no {endpoint} request"
            raise LookupError(msg)
        return matching[-1]

    def token_requests(self, grant_type: str) -> list[RecordedCall]:
        """Token-endpoint requests of one ``grant_type``."""
        return [c for c in self.of("token") if c.param("grant_type") == grant_type]

    def grant_counts(self) -> Counter[str]:
        """Token-endpoint hits per ``grant_type``."""
        return Counter(c.param("grant_type") or "" for c in self.of("token"))

    def sends_to(self, email: str) -> list[RecordedCall]:
        """Passwordless send requests for ``email`` (case-insensitive), whatever their outcome."""
        return [
            c
            for c in self.of("passwordless_send")
            if isinstance(c.json, dict) and str(c.json.get("email", "")).lower() == email.lower()
        ]

    def clear(self) -> None:
        """Forget every recorded request."""
        self.calls.clear()
