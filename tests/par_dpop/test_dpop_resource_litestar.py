"""A Litestar API protected by ``OIDCBearerAuth`` with DPoP (RFC 9449 §7): bound tokens with a
fresh proof are served; every bad artefact is a 401 with a ``DPoP`` challenge naming ``algs``,
the handler is not called and the OP's keys are not fetched again (the warm-up fetch only).

Tokens are the fake OP's RFC 9068 access tokens carrying ``cnf.jkt``; proofs are made here with
joserfc, as a client makes them.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey, OctKey
from litestar import Litestar, Request, Response, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.stores.memory import MemoryStore as LitestarMemoryStore
from litestar.testing import AsyncTestClient

from rpkit.access_token import AccessToken, AccessTokenPolicy
from rpkit.dpop_verify import DPoPPolicy, access_token_hash
from rpkit.errors import ConfigurationError
from rpkit.litestar.bearer import BearerError, OIDCBearerAuth, requires_scopes
from rpkit.testing import DEFAULT_CLIENT_ID, FakeOP, FakeOPTransport

pytestmark = pytest.mark.par_dpop

API = "https://api.rpkit.test"
REALM = "orders-api"
ALGS = 'algs="ES256 PS256 RS256 EdDSA Ed25519"'
BEARER = f'Bearer realm="{REALM}"'
DPOP = f'DPoP realm="{REALM}"'
SECRET = b"s" * 32

calls: list[str] = []


@get("/me")
async def me(request: Request[Any, AccessToken, Any]) -> dict[str, Any]:
    calls.append("me")
    return {"sub": request.auth.sub, "jkt": request.auth.jkt}


@get("/orders", guards=[requires_scopes("orders:write")])
async def orders() -> list[str]:
    calls.append("orders")
    return []


@websocket("/live")
async def live(socket: WebSocket[Any, AccessToken, Any]) -> None:
    await socket.accept()
    await socket.send_json({"sub": socket.auth.sub})
    await socket.close()


@pytest.fixture(autouse=True)
def no_calls() -> None:
    calls.clear()


def mint(op: FakeOP, key: ECKey | None = None, **claims: Any) -> str:
    """An access token for the API, bound to ``key`` (``cnf.jkt``) when one is given."""
    if key is not None:
        claims["cnf"] = {"jkt": key.thumbprint()}
    return op.minter.mint_access_token(
        subject="alice",
        client_id=DEFAULT_CLIENT_ID,
        audience=API,
        scope="orders:read",
        claims=claims,
    )


def proof(
    key: Any,
    token: str,
    *,
    htm: str = "GET",
    htu: str = f"{API}/me",
    alg: str = "ES256",
    jwk: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A DPoP proof for ``token`` as a client makes it (RFC 9449 §4.2, §7.1)."""
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": jwk or key.as_dict(private=False)}
    body = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(time.time())}
    body["ath"] = access_token_hash(token)
    body.update(claims)
    return jws.serialize_compact(header, json.dumps(body).encode(), key, algorithms=[alg])


def dpop(token: str, *proofs: str) -> list[tuple[str, str]]:
    return [("Authorization", f"DPoP {token}"), *(("DPoP", value) for value in proofs)]


def policy_for(op: FakeOP) -> AccessTokenPolicy:
    return AccessTokenPolicy(issuers=(op.issuer,), jwks_uri=op.endpoints["jwks"], audience=(API,))


@asynccontextmanager
async def api(
    op: FakeOP, *, base_url: str = API, stores: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The API with DPoP allowed unless ``config`` says otherwise; the lifespan warms the keys."""
    http = httpx.AsyncClient(transport=FakeOPTransport(op), timeout=5.0)
    config.setdefault("dpop", "allowed")
    auth = OIDCBearerAuth(policies=[policy_for(op)], http=http, realm=REALM, **config)
    app = Litestar([me, orders, live], on_app_init=[auth.on_app_init], stores=stores)
    async with http, AsyncTestClient(app, base_url=base_url) as client:
        yield client


def assert_refused(
    response: httpx.Response, op: FakeOP, *, error: str, code: str, scheme: str = "DPoP"
) -> str:
    """401 with the error in the ``scheme`` challenge and ``algs`` in the DPoP one, problem
    details, no handler run and no key fetch beyond the warm-up; returns the challenge."""
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    erring = DPOP if scheme == "DPoP" else BEARER
    assert f'{erring}, error="{error}", error_description="' in challenge
    assert ALGS in challenge
    assert response.json()["code"] == code
    assert response.headers["cache-control"] == "no-store"
    assert calls == []
    assert op.oracle.count("jwks") == 1
    return challenge


def assert_bad_proof(response: httpx.Response, op: FakeOP) -> None:
    challenge = assert_refused(response, op, error="invalid_dpop_proof", code="dpop_proof_invalid")
    assert challenge.startswith(f"{BEARER}, {DPOP}, error=")  # Bearer offered, without error


# -- accepted ------------------------------------------------------------------------------------


async def test_a_bound_token_with_a_fresh_proof_is_served(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        response = await client.get("/me", headers=dpop(token, proof(key, token)))

    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "alice", "jkt": key.thumbprint()}
    assert calls == ["me"]
    assert fake_op.oracle.count("jwks") == 1


async def test_an_unbound_token_still_works_as_bearer(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {mint(fake_op)}"})

    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "jkt": None}


async def test_every_request_of_a_cached_token_needs_its_own_fresh_proof(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        for _ in range(3):
            served = await client.get("/me", headers=dpop(token, proof(key, token)))
            assert served.status_code == 200
        calls.clear()
        without = await client.get("/me", headers=dpop(token))

    assert_bad_proof(without, fake_op)


async def test_a_proxy_deployment_checks_htu_against_its_base_url(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    internal = "http://10.0.0.7:8000"
    settings = {"dpop_policy": DPoPPolicy(base_url=API), "base_url": internal}
    async with api(fake_op, **settings) as client:
        public = await client.get("/me", headers=dpop(token, proof(key, token)))
        assert public.status_code == 200
        calls.clear()
        own = await client.get("/me", headers=dpop(token, proof(key, token, htu=f"{internal}/me")))

    assert_bad_proof(own, fake_op)


async def test_forwarded_headers_are_not_trusted_for_htu(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.rpkit.test"}
    async with api(fake_op, base_url="http://10.0.0.7:8000") as client:
        headers = [*dpop(token, proof(key, token)), *forwarded.items()]
        response = await client.get("/me", headers=headers)

    assert_bad_proof(response, fake_op)


async def test_the_user_handler_path_checks_the_proof_too(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)

    async def user(access: AccessToken, _: Any) -> dict[str, str]:
        return {"name": access.sub}

    async with api(fake_op, retrieve_user_handler=user) as client:
        served = await client.get("/me", headers=dpop(token, proof(key, token)))
        assert served.status_code == 200
        calls.clear()
        replayed_to = proof(key, token, htu=f"{API}/elsewhere")
        refused = await client.get("/me", headers=dpop(token, replayed_to))

    assert_bad_proof(refused, fake_op)


async def first_message(client: AsyncTestClient[Litestar], headers: Any) -> Any:
    session = await client.websocket_connect("/live", headers=headers)
    with session:
        return session.receive_json()


async def test_a_websocket_handshake_is_proven_for_its_http_uri(fake_op: FakeOP) -> None:
    """The handshake is a GET to the http(s) URI of the ws(s) one (RFC 6455 §3); Litestar's test
    client connects over ws://, hence http:// here (wss:// is checked as https://)."""
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        made = proof(key, token, htu="http://api.rpkit.test/live")
        assert await first_message(client, dpop(token, made)) == {"sub": "alice"}
        refused = proof(key, token, htu="ws://api.rpkit.test/live")
        with pytest.raises(WebSocketDisconnect, match="another URI"):
            await first_message(client, dpop(token, refused))


# -- the bad artefacts ---------------------------------------------------------------------------


async def test_a_proof_for_another_uri_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        response = await client.get("/me", headers=dpop(token, proof(key, token, htu=f"{API}/x")))

    assert_bad_proof(response, fake_op)


async def test_a_proof_for_another_method_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        response = await client.get("/me", headers=dpop(token, proof(key, token, htm="POST")))

    assert_bad_proof(response, fake_op)


async def test_a_replayed_proof_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    once = proof(key, token)
    async with api(fake_op) as client:
        assert (await client.get("/me", headers=dpop(token, once))).status_code == 200
        calls.clear()
        again = await client.get("/me", headers=dpop(token, once))

    assert_bad_proof(again, fake_op)
    assert "already used" in again.json()["detail"]


async def test_a_proof_replayed_to_another_worker_sharing_the_store_is_refused(
    fake_op: FakeOP,
) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    once = proof(key, token)
    shared = LitestarMemoryStore()  # what a Redis store is to several processes
    async with api(fake_op, stores={"rpkit_dpop": shared}) as first:
        assert (await first.get("/me", headers=dpop(token, once))).status_code == 200
    calls.clear()
    fake_op.oracle.clear()
    async with api(fake_op, stores={"rpkit_dpop": shared}) as second:
        replayed = await second.get("/me", headers=dpop(token, once))

    assert_bad_proof(replayed, fake_op)


async def test_a_proof_for_another_token_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        made = proof(key, token, ath=access_token_hash(mint(fake_op, key)))
        response = await client.get("/me", headers=dpop(token, made))

    assert_bad_proof(response, fake_op)


async def test_a_token_bound_to_another_key_is_refused(fake_op: FakeOP) -> None:
    holder, thief = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    token = mint(fake_op, holder)
    async with api(fake_op) as client:
        response = await client.get("/me", headers=dpop(token, proof(thief, token)))

    challenge = assert_refused(
        response, fake_op, error="invalid_token", code="access_token_invalid"
    )
    assert "Invalid DPoP key binding" in challenge


@pytest.mark.parametrize("mode", ["allowed", "off"])
async def test_a_bound_token_sent_as_bearer_is_refused(fake_op: FakeOP, mode: str) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op, dpop=mode) as client:
        headers = {"Authorization": f"Bearer {token}", "DPoP": proof(key, token)}
        response = await client.get("/me", headers=headers)

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'{BEARER}, error="invalid_token", error_description="The access')
    assert "DPoP-bound" in challenge
    assert (ALGS in challenge) == (mode == "allowed")
    assert calls == []
    assert fake_op.oracle.count("jwks") == 1


async def test_a_bound_token_already_cached_is_still_refused_as_bearer(fake_op: FakeOP) -> None:
    """The verified-token cache holds the token after its DPoP use; a later Bearer use of the
    same bytes is taken from the cache and must still be refused (RFC 9449 §7.2)."""
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        served = await client.get("/me", headers=dpop(token, proof(key, token)))
        calls.clear()
        as_bearer = await client.get("/me", headers={"Authorization": f"Bearer {token}"})

    assert served.status_code == 200
    assert as_bearer.status_code == 401
    assert "DPoP-bound" in as_bearer.headers["www-authenticate"]
    assert calls == []


async def test_an_applications_own_handler_gets_the_whole_challenge_of_every_refusal(
    fake_op: FakeOP,
) -> None:
    """With the application's own ``BearerError`` handler (which wins over rpkit's), the
    middleware itself has named the realm and the DPoP scheme in the challenge, whichever
    path refused: a bad proof, a stolen binding, a bound token sent as Bearer (fresh or
    cached), a token that does not verify."""

    def own(_: Request[Any, Any, Any], exc: BearerError) -> Response[str]:
        return Response(exc.headers.get("WWW-Authenticate", ""), status_code=exc.status_code)

    holder, thief = ECKey.generate_key("P-256"), ECKey.generate_key("P-256")
    token = mint(fake_op, holder)
    http = httpx.AsyncClient(transport=FakeOPTransport(fake_op), timeout=5.0)
    auth = OIDCBearerAuth(policies=[policy_for(fake_op)], http=http, realm=REALM, dpop="allowed")
    app = Litestar([me], on_app_init=[auth.on_app_init], exception_handlers={BearerError: own})
    async with http, AsyncTestClient(app, base_url=API) as client:
        answers = {
            "no proof": await client.get("/me", headers=dpop(token)),
            "fresh as bearer": await client.get(
                "/me", headers={"Authorization": f"Bearer {token}"}
            ),
            "stolen binding": await client.get("/me", headers=dpop(token, proof(thief, token))),
            "served": await client.get("/me", headers=dpop(token, proof(holder, token))),
            "cached as bearer": await client.get(
                "/me", headers={"Authorization": f"Bearer {token}"}
            ),
            "bad signature": await client.get("/me", headers={"Authorization": f"Bearer {token}x"}),
        }

    assert answers.pop("served").status_code == 200
    for case, response in answers.items():
        assert response.status_code == 401, case
        assert response.text.startswith(f"{BEARER}, "), (case, response.text)
        assert f"{DPOP}, " in response.text, (case, response.text)
        assert ALGS in response.text, case


async def test_a_request_without_a_proof_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        response = await client.get("/me", headers=dpop(token))

    assert_bad_proof(response, fake_op)


async def test_two_proof_headers_are_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        response = await client.get(
            "/me", headers=dpop(token, proof(key, token), proof(key, token))
        )

    assert_bad_proof(response, fake_op)


async def test_a_private_key_in_the_proof_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        made = proof(key, token, jwk=key.as_dict(private=True))
        response = await client.get("/me", headers=dpop(token, made))

    assert_bad_proof(response, fake_op)


async def test_an_expired_proof_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        made = proof(key, token, iat=int(time.time()) - 120)
        response = await client.get("/me", headers=dpop(token, made))

    assert_bad_proof(response, fake_op)


async def test_an_unsigned_proof_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.as_dict(private=False)}
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    unsigned = f"{head}.{proof(key, token).split('.')[1]}."
    async with api(fake_op) as client:
        response = await client.get("/me", headers=dpop(token, unsigned))

    assert_bad_proof(response, fake_op)


async def test_an_hmac_proof_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    secret = OctKey.generate_key(256)
    async with api(fake_op) as client:
        made = proof(secret, token, alg="HS256", jwk=key.as_dict(private=False))
        response = await client.get("/me", headers=dpop(token, made))

    assert_bad_proof(response, fake_op)


async def test_an_unbound_token_sent_as_dpop_is_refused(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op)
    async with api(fake_op) as client:
        response = await client.get("/me", headers=dpop(token, proof(key, token)))

    assert_refused(response, fake_op, error="invalid_token", code="access_token_invalid")


# -- challenges, modes, nonces, stores -----------------------------------------------------------


async def test_a_request_without_credentials_is_offered_both_schemes(fake_op: FakeOP) -> None:
    async with api(fake_op) as client:
        response = await client.get("/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f"{BEARER}, {DPOP}, {ALGS}"


async def test_required_mode_refuses_bearer_and_offers_dpop_only(fake_op: FakeOP) -> None:
    async with api(fake_op, dpop="required") as client:
        response = await client.get("/me", headers={"Authorization": f"Bearer {mint(fake_op)}"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == f"{DPOP}, {ALGS}"
    assert calls == []


async def test_required_mode_refuses_bearer_even_for_a_token_in_the_cache(
    fake_op: FakeOP,
) -> None:
    """An unbound token sent with a proof is verified (and cached) before its binding is
    refused; sent as ``Bearer`` afterwards, it is refused as any Bearer request is."""
    key = ECKey.generate_key("P-256")
    token = mint(fake_op)
    async with api(fake_op, dpop="required") as client:
        unbound = await client.get("/me", headers=dpop(token, proof(key, token)))
        as_bearer = await client.get("/me", headers={"Authorization": f"Bearer {token}"})

    assert unbound.status_code == 401
    assert as_bearer.status_code == 401
    assert as_bearer.headers["www-authenticate"] == f"{DPOP}, {ALGS}"


async def test_off_mode_treats_the_dpop_scheme_as_no_credentials(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op, dpop="off") as client:
        response = await client.get("/me", headers=dpop(token, proof(key, token)))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BEARER
    assert calls == []


async def test_a_missing_scope_of_a_dpop_request_is_told_in_the_dpop_challenge(
    fake_op: FakeOP,
) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op) as client:
        made = proof(key, token, htu=f"{API}/orders")
        response = await client.get("/orders", headers=dpop(token, made))

    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'{BEARER}, {DPOP}, error="insufficient_scope"')
    assert calls == []


async def test_a_server_nonce_is_required_then_accepted(fake_op: FakeOP) -> None:
    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op, dpop_policy=DPoPPolicy(nonce_secret=SECRET)) as client:
        first = await client.get("/me", headers=dpop(token, proof(key, token)))
        nonce = first.headers["dpop-nonce"]
        assert_refused(first, fake_op, error="use_dpop_nonce", code="dpop_nonce_required")
        retried = await client.get("/me", headers=dpop(token, proof(key, token, nonce=nonce)))

    assert retried.status_code == 200
    assert calls == ["me"]


async def test_a_store_outage_refuses_the_request_with_503(fake_op: FakeOP) -> None:
    class Down(LitestarMemoryStore):
        async def set(self, key: str, value: Any, expires_in: Any = None) -> None:
            raise ConnectionError("the store is down")

    key = ECKey.generate_key("P-256")
    token = mint(fake_op, key)
    async with api(fake_op, stores={"rpkit_dpop": Down()}) as client:
        response = await client.get("/me", headers=dpop(token, proof(key, token)))

    assert response.status_code == 503
    assert response.json()["code"] == "store_unavailable"
    assert calls == []


def test_an_unknown_mode_is_refused_at_construction(fake_op: FakeOP) -> None:
    with pytest.raises(ConfigurationError, match="dpop must be one of"):
        OIDCBearerAuth(policies=[policy_for(fake_op)], dpop="sometimes")  # type: ignore[arg-type]
