"""What the PAR and DPoP tests share: a relying party over the fake OP, a Litestar app with
rpkit's plugin for it, and the decoding of a DPoP proof the fake OP received."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.stores.memory import MemoryStore as LitestarMemoryStore
from litestar.testing import AsyncTestClient

from rpkit.client import LoginResult, RelyingParty
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.litestar.session import SessionData
from rpkit.store import MemoryStore
from rpkit.testing import DEFAULT_REDIRECT_URI, FakeClient, FakeOP
from rpkit.testing.oracle import RecordedRequest

BASE = "https://app.rpkit.test"
SECRET = "par-dpop-secret-" + "x" * 32
SCOPES = ("openid", "profile", "email", "offline_access")


def b64json(segment: str) -> dict[str, Any]:
    padded = segment + "=" * (-len(segment) % 4)
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(padded))
    return decoded


@dataclass(frozen=True)
class Proof:
    """A DPoP proof as a server would read it, its signature checked with its own ``jwk``."""

    header: dict[str, Any]
    claims: dict[str, Any]
    jkt: str


def proof_of(request: RecordedRequest) -> Proof:
    """The one ``DPoP`` proof of a request the fake OP recorded, verified with its own key."""
    token = request.headers["dpop"]
    head, payload, signature = token.split(".")
    header = b64json(head)
    key = JWKRegistry.import_key(header["jwk"])
    signing_input = f"{head}.{payload}".encode()
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    assert JWSRegistry.algorithms[header["alg"]].verify(signing_input, raw, key)
    return Proof(header, b64json(payload), key.thumbprint())


def claims_of(jwt: str) -> dict[str, Any]:
    return b64json(jwt.split(".")[1])


@dataclass
class Party:
    """A relying party over ``op``, with its store."""

    rp: RelyingParty
    op: FakeOP
    store: MemoryStore

    async def login(self, provider_id: str = "fake") -> LoginResult:
        started = await self.rp.begin_login(provider_id, redirect_uri=DEFAULT_REDIRECT_URI)
        answer = await self.op.approve(started.url)
        return await self.rp.complete_login(provider_id, list(answer.params))


def party(op: FakeOP, **changes: Any) -> Party:
    """A relying party for ``op``'s first client, with provider ``changes``."""
    store = MemoryStore()
    config = op.provider_config(**({"scopes": SCOPES} | changes))
    http = httpx.AsyncClient(transport=op.transport(), timeout=5.0)
    return Party(RelyingParty([config], http=http, store=store), op, store)


# -- the Litestar app --------------------------------------------------------------------------
@get("/session")
async def session_route(rpkit_session: NamedDependency[SessionData | None]) -> dict[str, Any]:
    if rpkit_session is None:
        return {}
    return {"access_token": rpkit_session.access_token, "dpop": rpkit_session.dpop_jwk is not None}


def make_app(
    op: FakeOP,
    *,
    provider: dict[str, Any] | None = None,
    stores: dict[str, Any] | None = None,
    **config: Any,
) -> Litestar:
    """rpkit's plugin for ``op`` (a client registered for the app's callback), provider
    settings from ``provider``; ``stores`` shared between apps stand for several workers."""
    op.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/fake",)))
    settings = {"scopes": SCOPES} | (provider or {})
    rpkit_config = RPKitConfig(
        providers=[op.provider_config(**settings)], secret=SECRET, base_url=BASE, **config
    )
    plugin = RPKitPlugin(rpkit_config, http_transport=op.transport())
    return Litestar([session_route], plugins=[plugin], stores=stores)


def shared_stores() -> dict[str, Any]:
    """The flows and sessions stores of several workers: one Redis stands for them in
    production, one in-process store here."""
    return {"rpkit_flows": LitestarMemoryStore(), "rpkit_sessions": LitestarMemoryStore()}


async def browser_login(client: AsyncTestClient[Litestar], op: FakeOP) -> httpx.Response:
    """A browser's login through the app: start, the OP's answer, the callback."""
    started = await client.get("/auth/login/fake", follow_redirects=False)
    assert started.status_code == 303, started.text
    answer = await op.approve(started.headers["location"])
    return await client.get(answer.location, follow_redirects=False)


@pytest.fixture
def par_op() -> FakeOP:
    """A fake OP that advertises its PAR endpoint."""
    return FakeOP(par=True)


def now() -> int:
    return int(time.time())
