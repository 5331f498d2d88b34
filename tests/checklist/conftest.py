"""The harness for the RP conformance checklist: rpkit's core against the fake OP, in-process.

A REJECT (``rp-conformance.md`` §2) is asserted three ways with :meth:`Harness.rejected`: the typed
error, no further request to the OP after the bad artefact, and the transaction gone.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from rpkit.client import LoginRequest, LoginResult, RelyingParty
from rpkit.config import ProviderConfig
from rpkit.errors import IDTokenValidationError
from rpkit.store import MemoryStore
from rpkit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_REDIRECT_URI,
    AuthorizationResponse,
    FakeOP,
)

TXN_PREFIX = "rpkit:txn:"


def provider_config(op: FakeOP, **changes: Any) -> ProviderConfig:
    """The fake OP's default client as an rpkit provider with id ``fake``."""
    scopes = ("openid", "profile", "email", "offline_access")
    return op.provider_config(**({"scopes": scopes} | changes))


@dataclass
class Harness:
    """Drives logins through :class:`RelyingParty` the way the Litestar adapter will."""

    op: FakeOP
    http: httpx.AsyncClient
    store: MemoryStore
    config: ProviderConfig
    rp: RelyingParty = field(init=False)
    redirect_uri: str = DEFAULT_REDIRECT_URI

    def __post_init__(self) -> None:
        self.rp = RelyingParty([self.config], http=self.http, store=self.store)

    def reconfigure(self, **changes: Any) -> RelyingParty:
        """Replace the provider configuration (a fresh RelyingParty, same store and OP)."""
        self.config = provider_config(self.op, **changes)
        self.rp = RelyingParty([self.config], http=self.http, store=self.store)
        return self.rp

    async def start(self, **kwargs: Any) -> tuple[LoginRequest, AuthorizationResponse]:
        """Begin a login and let the fake OP answer it as a browser would."""
        request = await self.rp.begin_login(
            self.config.id, redirect_uri=self.redirect_uri, **kwargs
        )
        return request, await self.op.approve(request.url)

    async def finish(
        self, callback: AuthorizationResponse | Sequence[tuple[str, str]], **kwargs: Any
    ) -> LoginResult:
        """Deliver the callback's parameters (query or form, repeats kept) to rpkit."""
        params = callback.params if isinstance(callback, AuthorizationResponse) else callback
        return await self.rp.complete_login(self.config.id, list(params), **kwargs)

    async def login(self, **kwargs: Any) -> LoginResult:
        """A complete login."""
        _, callback = await self.start(**kwargs)
        return await self.finish(callback)

    def counts(self) -> Counter[str]:
        """Requests per endpoint the OP has received so far."""
        return self.op.oracle.counts()

    async def transaction_exists(self, state: str) -> bool:
        return await self.store.get(TXN_PREFIX + state) is not None

    async def rejected(
        self,
        error: type[Exception],
        callback: AuthorizationResponse | Sequence[tuple[str, str]],
        request: LoginRequest,
        *,
        stop_before: str = "token",
        **kwargs: Any,
    ) -> Exception:
        """Deliver ``callback`` and assert a REJECT: ``error`` raised, no request to
        ``stop_before`` (``token`` after a bad callback, ``userinfo`` after a bad ID token)
        or any later endpoint, and the transaction gone."""
        before = self.counts()
        with pytest.raises(error) as caught:
            await self.finish(callback, **kwargs)
        after = self.counts()
        watched = ("token", "userinfo") if stop_before == "token" else ("userinfo",)
        for endpoint in watched:
            assert after[endpoint] == before[endpoint], (
                f"rpkit called {endpoint} after the bad artefact"
            )
        assert not await self.transaction_exists(request.state), "the transaction survived"
        return caught.value


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def harness(fake_op: FakeOP, fake_op_http: httpx.AsyncClient, store: MemoryStore) -> Harness:
    return Harness(fake_op, fake_op_http, store, provider_config(fake_op))


# -- ID tokens (groups I and K) ------------------------------------------------------------------


def jose_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, unverified."""
    head = token.split(".", maxsplit=1)[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return header


async def rejects_id_token(harness: Harness, reason: str, **start: Any) -> IDTokenValidationError:
    """Run one login whose ID token is bad: the REJECT triple, the ``reason``, and the token
    endpoint reached exactly once (so the refusal is the ID token's, not an earlier check's)."""
    request, callback = await harness.start(**start)
    tokens_before = harness.counts()["token"]
    error = await harness.rejected(
        IDTokenValidationError, callback, request, stop_before="userinfo"
    )
    assert isinstance(error, IDTokenValidationError)
    assert harness.counts()["token"] == tokens_before + 1, "the bad ID token never arrived"
    assert error.reason == reason, f"rejected for {error.reason!r}: {error}"
    return error


async def accepts_id_token(harness: Harness, **start: Any) -> LoginResult:
    """Run one login and assert it completed, UserInfo included."""
    userinfo_before = harness.counts()["userinfo"]
    result = await harness.login(**start)
    assert result.identity.subject == "alice"
    assert DEFAULT_CLIENT_ID in result.id_token.aud
    assert result.userinfo is not None
    assert harness.counts()["userinfo"] == userinfo_before + 1
    return result
