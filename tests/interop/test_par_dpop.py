"""Pushed authorization requests (RFC 9126) and DPoP (RFC 9449) against panva's oidc-provider,
through headless Chromium on the provider's own pages.

The provider (``op/provider.mjs``) has ``features.pushedAuthorizationRequests`` and
``features.dPoP`` on (oidc-provider's configuration reference:
https://github.com/panva/node-oidc-provider/blob/v9.x/docs/README.md#featuresdpop and
#featurespushedauthorizationrequests). The ``pardpop`` client is registered with
``require_pushed_authorization_requests`` and ``dpop_bound_access_tokens``, its proofs must carry
a server nonce, and its access tokens live 30 seconds, so every page view of its session
refreshes them (rpkit refreshes 60 seconds before expiry).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import MediaType, Request, get
from litestar.di import NamedDependency

from rpkit.dpop import DPoPAuth
from rpkit.litestar import RPKitPlugin
from rpkit.litestar.session import SessionData
from tests.interop.harness import (
    OidcProvider,
    Registration,
    RunningApp,
    bind_app,
    free_port,
    lines,
)
from tests.interop.pages import Visit, query_of, sign_in

pytestmark = [pytest.mark.interop, pytest.mark.par_dpop]

OpenVisit = Callable[[str], Visit]
SECRET = "interop-client-secret"
BOUND = Registration(
    "pardpop", par="required", dpop=True, scopes=("openid", "profile", "email", "offline_access")
)
AUTO = Registration("parauto", par="auto")
SHORT_TTL = 30


@get("/dpop-session", media_type=MediaType.HTML)
async def dpop_session(rpkit_session: NamedDependency[SessionData | None]) -> str:
    """The session's token (a test app: shown whole, to introspect it) and its key's
    thumbprint; loading it refreshes the short-lived token."""
    key = rpkit_session.dpop_key() if rpkit_session else None
    shown = {
        "access_token": rpkit_session.access_token if rpkit_session else None,
        "token_type": rpkit_session.token_type if rpkit_session else None,
        "jkt": key.thumbprint if key else None,
    }
    return f"<!doctype html><pre id='shown'>{json.dumps(shown)}</pre>"


@get("/call-api", media_type=MediaType.HTML)
async def call_api(
    rpkit_session: NamedDependency[SessionData | None], request: Request[Any, Any, Any]
) -> str:
    """Call the provider's UserInfo, a DPoP-protected resource, three ways with the session's
    bound token: with :class:`DPoPAuth` (a fresh proof), as ``Bearer`` without a proof, and
    twice with one and the same proof."""
    assert rpkit_session is not None
    plugin = request.app.plugins.get(RPKitPlugin)
    rp = plugin.runtime.rp
    metadata = await rp.metadata(rpkit_session.provider_id)
    url = metadata.userinfo_endpoint
    token = rpkit_session.access_token
    key = rpkit_session.dpop_key()
    assert key is not None
    async with httpx.AsyncClient() as http:
        with_proof = await http.get(
            url, auth=DPoPAuth.for_session(rpkit_session, nonces=rp.dpop_nonces)
        )
        bearer = await http.get(url, headers={"Authorization": f"Bearer {token}"})
        proof = key.proof("GET", url, access_token=token, nonce=rp.dpop_nonces.get(url))
        replayed = [
            await http.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof})
            for _ in range(2)
        ]
    shown = {
        "with_proof": [with_proof.status_code, with_proof.json().get("sub")],
        "bearer": [bearer.status_code, bearer.headers.get("www-authenticate")],
        "replayed": [[r.status_code, r.headers.get("www-authenticate")] for r in replayed],
    }
    return f"<!doctype html><pre id='shown'>{json.dumps(shown)}</pre>"


@dataclass
class Interop:
    op: OidcProvider
    app: RunningApp

    @property
    def issuer(self) -> str:
        return self.op.issuer

    def shown(self, visit: Visit, path: str) -> dict[str, Any]:
        visit.page.goto(f"{self.app.origin}{path}")
        visit.shot(path.strip("/"))
        shown: dict[str, Any] = json.loads(visit.page.text_content("#shown") or "null")
        return shown

    def introspect(self, registration: Registration, token: str) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.issuer}/token/introspection",
            data={"token": token},
            auth=(registration.client_id, SECRET),
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found


@pytest.fixture(scope="module")
def interop(
    oidc_provider_version: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Interop]:
    workdir = tmp_path_factory.mktemp("oidc-provider-par-dpop")
    pending = bind_app("localhost")
    op = OidcProvider(
        free_port(),
        [BOUND.op_client(pending.urls), AUTO.op_client(pending.urls)],
        workdir,
        access_token_ttl={BOUND.client_id: SHORT_TTL},
        dpop_nonce_for=(BOUND.client_id,),
    )
    app: RunningApp | None = None
    try:
        op.start()
        app = pending.start(op.issuer, [BOUND, AUTO], route_handlers=[dpop_session, call_api])
        yield Interop(op, app)
    finally:
        if app is not None:
            app.stop()
        else:
            pending.close()
        op.stop()


def test_login_with_par_gets_dpop_bound_tokens_and_refreshes_them_with_a_proof(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("par-dpop")

    # oidc-provider grants offline_access only to a request with prompt=consent (OIDC Core 11);
    # with PAR the prompt travels in the pushed request.
    login = sign_in(
        visit, interop.app.origin, "pardpop", interop.issuer, login="alice", prompt="consent"
    )

    records = list(lines(interop.op.records))
    # RFC 9126 §4: the browser carried the client id and the request URI, nothing else.
    assert set(login.authorization_params) == {"client_id", "request_uri"}, records
    (pushed,) = interop.op.requests("/request", method="POST", client=BOUND.client_id)
    assert pushed["status"] == 201
    assert pushed["authorization"] == "Basic"  # client authentication at the PAR endpoint
    assert {"dpop_jkt", "code_challenge", "state", "nonce", "prompt"} <= set(pushed["body"])
    # RFC 9449 §8: the token request was refused for want of the nonce, and sent once more.
    exchanges = interop.op.requests("/token", method="POST", client=BOUND.client_id)
    assert [e["status"] for e in exchanges[:2]] == [400, 200], records
    assert all(e["dpop"] for e in exchanges)
    # UserInfo took the bound token (the profile's email and name come only from it).
    assert visit.profile(interop.app.origin)["claims"]["email"] == "alice@interop.example"

    first = interop.shown(visit, "/dpop-session")
    second = interop.shown(visit, "/dpop-session")

    assert first["token_type"] == "dpop"
    assert first["jkt"] == second["jkt"]
    assert first["access_token"] != second["access_token"]  # the 30 s token was refreshed
    refreshes = interop.op.events(
        "grant.success", client=BOUND.client_id, grant_type="refresh_token"
    )
    assert len(refreshes) >= 2, records
    assert interop.op.events("refresh_token.consumed", client=BOUND.client_id)
    # Every token request of the client, refreshes included, carried a DPoP proof.
    exchanges = interop.op.requests("/token", method="POST", client=BOUND.client_id)
    assert len(exchanges) >= 4
    assert all(e["dpop"] for e in exchanges)
    for shown in (first, second):
        found = interop.introspect(BOUND, shown["access_token"])
        assert found["active"] is True
        assert found["token_type"] == "DPoP"
        assert found["cnf"] == {"jkt": first["jkt"]}  # bound to the session's key (RFC 9449 §6)


def test_the_bound_token_opens_a_protected_api_only_with_a_fresh_proof(
    interop: Interop, open_visit: OpenVisit
):
    visit = open_visit("dpop-api")
    sign_in(visit, interop.app.origin, "pardpop", interop.issuer, login="bob")

    calls = interop.shown(visit, "/call-api")

    assert calls["with_proof"] == [200, "bob"]
    # RFC 9449 §7.2: a bound token without a proof is refused with a DPoP challenge.
    status, challenge = calls["bearer"]
    assert status == 401
    assert challenge.startswith("DPoP ")
    assert 'error="invalid_token"' in challenge
    # The same proof twice: accepted once, then refused as a replay (§11.1).
    (first, again) = calls["replayed"]
    assert first == [200, None]
    assert again[0] == 401
    assert again[1].startswith("DPoP ")


def test_par_auto_pushes_because_the_provider_advertises_its_endpoint(
    interop: Interop, open_visit: OpenVisit
):
    metadata = httpx.get(f"{interop.issuer}/.well-known/openid-configuration").json()
    visit = open_visit("par-auto")

    login = sign_in(visit, interop.app.origin, "parauto", interop.issuer, login="carol")

    assert metadata["pushed_authorization_request_endpoint"] == f"{interop.issuer}/request"
    assert set(query_of(login.authorization.url)) == {"client_id", "request_uri"}
    assert interop.op.requests("/request", method="POST", client=AUTO.client_id)
    exchanges = interop.op.requests("/token", method="POST", client=AUTO.client_id)
    assert [e["dpop"] for e in exchanges] == [False]
    assert visit.profile(interop.app.origin)["subject"] == "carol"
