"""DPoP on the relying party's side (RFC 9449): the per-login key, the proofs on the token
request, refresh and UserInfo, ``dpop_jkt``, server nonces, the refusal of unbound tokens, the
key kept with the session for every worker, and :class:`~rpkit.dpop.DPoPAuth`."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient

from rpkit.dpop import DPoPAuth, DPoPKey, DPoPNonces, access_token_hash, htu_of
from rpkit.errors import ConfigurationError, DPoPTokenTypeError, TokenExchangeError, UserInfoError
from rpkit.litestar.session import SessionData
from rpkit.testing import Canned, FakeOP
from tests.par_dpop.conftest import (
    BASE,
    browser_login,
    claims_of,
    make_app,
    party,
    proof_of,
    shared_stores,
)
from tests.spi.test_kinds import forge_config

pytestmark = pytest.mark.par_dpop


# -- proofs -----------------------------------------------------------------------------------
def test_ath_is_the_base64url_sha256_of_the_access_token_as_in_rfc_9449():
    # RFC 9449 §7.1, Figure 13: the example access token and its "ath".
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize(
    ("url", "htu"),
    [
        ("https://RS.example:443/api/v1?x=1#frag", "https://rs.example/api/v1"),
        ("https://user:pass@rs.example:8443/a", "https://rs.example:8443/a"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/"),
    ],
)
def test_htu_leaves_out_query_fragment_userinfo_and_default_port(url: str, htu: str):
    assert htu_of(url) == htu


@pytest.mark.parametrize("alg", ["ES256", "ES384", "PS256", "EdDSA"])
def test_a_proof_names_its_public_key_and_never_the_private_one(alg: str):
    key = DPoPKey.generate(alg)
    proof = key.proof("get", "https://rs.example/x?q=1", access_token="t", nonce="n", now=100)
    header, claims = proof.split(".")[:2]

    from tests.par_dpop.conftest import b64json

    assert b64json(header)["typ"] == "dpop+jwt"
    assert b64json(header)["alg"] == alg
    assert "d" not in b64json(header)["jwk"]
    assert b64json(claims) | {"jti": None} == {
        "jti": None,
        "htm": "GET",
        "htu": "https://rs.example/x",
        "iat": 100,
        "ath": access_token_hash("t"),
        "nonce": "n",
    }
    assert key.to_private_jwk()["d"] not in repr(key)
    assert key.thumbprint in repr(key)
    assert DPoPKey.from_private_jwk(key.to_private_jwk()).thumbprint == key.thumbprint


def test_two_proofs_never_share_a_jti():
    key = DPoPKey.generate()
    jtis = {claims_of(key.proof("POST", "https://op.example/token"))["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_dpop_options_are_validated():
    op = FakeOP()
    with pytest.raises(ConfigurationError, match="dpop_alg"):
        op.provider_config(dpop=True, dpop_alg="HS256")
    with pytest.raises(ConfigurationError, match="a stored DPoP key"):
        DPoPKey.from_private_jwk({"kty": "oct", "k": "AAAA", "alg": "HS256"})
    public = {**DPoPKey.generate().public_jwk, "alg": "ES256"}
    with pytest.raises(ConfigurationError, match="private half"):
        DPoPKey.from_private_jwk(public)
    forge = FakeOP("https://forge.rpkit.test", kind="oauth2")
    with pytest.raises(ConfigurationError, match="dpop needs kind='oidc'"):
        forge_config(forge, dpop=True)


# -- the login: dpop_jkt, token request, UserInfo ---------------------------------------------
async def test_a_dpop_login_binds_the_tokens_and_proves_every_request():
    op = FakeOP()
    relying = party(op, dpop=True)

    result = await relying.login()

    jkt = dict(parse_qsl(urlsplit(op.oracle.last("authorize").url).query))["dpop_jkt"]
    exchange = proof_of(op.oracle.last("token"))
    assert exchange.jkt == jkt == result.dpop_key.thumbprint  # type: ignore[union-attr]
    assert exchange.header["typ"] == "dpop+jwt"
    assert exchange.header["alg"] == "ES256"
    assert exchange.claims["htm"] == "POST"
    assert exchange.claims["htu"] == op.endpoints["token"]
    assert abs(exchange.claims["iat"] - time.time()) < 5
    assert "ath" not in exchange.claims
    assert "nonce" not in exchange.claims
    assert result.tokens.token_type == "dpop"
    assert claims_of(result.tokens.access_token)["cnf"] == {"jkt": jkt}
    userinfo = op.oracle.last("userinfo")
    assert userinfo.headers["authorization"] == f"DPoP {result.tokens.access_token}"
    seen = proof_of(userinfo)
    assert seen.jkt == jkt
    assert seen.claims["htm"] == "GET"
    assert seen.claims["htu"] == op.endpoints["userinfo"]
    assert seen.claims["ath"] == access_token_hash(result.tokens.access_token)
    assert seen.claims["jti"] != exchange.claims["jti"]
    assert result.userinfo is not None
    assert result.userinfo["email"] == "alice@example.com"


async def test_dpop_jkt_is_pushed_with_par_and_never_in_the_browser_url():
    op = FakeOP(par=True)
    relying = party(op, dpop=True)

    started = await relying.rp.begin_login(
        "fake", redirect_uri=op.clients[next(iter(op.clients))].redirect_uris[0]
    )

    assert "dpop_jkt" not in dict(parse_qsl(urlsplit(started.url).query))
    pushed = dict(op.oracle.last("par").form)
    answer = await op.approve(started.url)
    result = await relying.rp.complete_login("fake", list(answer.params))
    assert pushed["dpop_jkt"] == result.dpop_key.thumbprint  # type: ignore[union-attr]
    assert proof_of(op.oracle.last("token")).jkt == pushed["dpop_jkt"]


async def test_each_login_gets_its_own_key():
    op = FakeOP()
    relying = party(op, dpop=True)

    first, second = await relying.login(), await relying.login()

    assert first.dpop_key is not None
    assert second.dpop_key is not None
    assert first.dpop_key.thumbprint != second.dpop_key.thumbprint


async def test_a_refresh_carries_a_proof_of_the_session_key_and_stays_bound():
    op = FakeOP()
    relying = party(op, dpop=True)
    result = await relying.login()

    fresh = await relying.rp.refresh(
        "fake", result.tokens, result.id_token, key="s1", dpop_key=result.dpop_key
    )

    refresh = op.oracle.last("token")
    assert refresh.param("grant_type") == "refresh_token"
    proof = proof_of(refresh)
    assert proof.jkt == result.dpop_key.thumbprint  # type: ignore[union-attr]
    assert proof.claims["htu"] == op.endpoints["token"]
    assert fresh.tokens.token_type == "dpop"
    assert claims_of(fresh.tokens.access_token)["cnf"]["jkt"] == proof.jkt


# -- a token that is not bound: refused, no UserInfo, no session -----------------------------
@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "N_A"])
async def test_a_token_response_that_is_not_dpop_is_refused_before_userinfo(token_type: str):
    op = FakeOP()
    relying = party(op, dpop=True)

    bearer = op.misbehaving(token_fields={"token_type": token_type})
    with bearer, pytest.raises(DPoPTokenTypeError) as refused:
        await relying.login()

    assert refused.value.code == "dpop_token_type"
    assert op.oracle.count("userinfo") == 0
    assert op.oracle.count("token") == 1
    assert len(relying.store) == 0  # the transaction was consumed; nothing else kept


async def test_a_refresh_answered_with_a_bearer_token_is_refused():
    op = FakeOP()
    relying = party(op, dpop=True)
    result = await relying.login()

    bearer = op.misbehaving(token_fields={"token_type": "Bearer"})
    with bearer, pytest.raises(DPoPTokenTypeError):
        await relying.rp.refresh(
            "fake", result.tokens, result.id_token, key="s2", dpop_key=result.dpop_key
        )


async def test_without_dpop_a_dpop_token_type_is_still_refused():
    op = FakeOP()
    relying = party(op)

    dpop = op.misbehaving(token_fields={"token_type": "DPoP"})
    with dpop, pytest.raises(TokenExchangeError) as refused:
        await relying.login()

    assert not isinstance(refused.value, DPoPTokenTypeError)
    assert "dpop" not in op.oracle.last("token").headers


async def test_the_plugin_makes_no_session_from_a_bearer_token_when_dpop_was_asked_for():
    op = FakeOP()
    app = make_app(op, provider={"dpop": True})
    op.misbehave.token_fields = {"token_type": "Bearer"}
    async with AsyncTestClient(app, base_url=BASE) as client:
        landed = await browser_login(client, op)
        session = (await client.get("/session")).json()

    assert landed.status_code == 400
    assert "dpop_token_type" in landed.text
    assert "__Host-rpkit_session" not in landed.headers.get("set-cookie", "")
    assert session == {}
    assert op.oracle.count("userinfo") == 0


# -- server nonces (RFC 9449 §8, §9): one retry, then the refusal stands ----------------------
async def test_a_nonce_the_op_asks_for_is_sent_in_one_retry_and_kept_for_its_origin():
    op = FakeOP()
    relying = party(op, dpop=True)

    with op.misbehaving(dpop_nonce="required"):
        result = await relying.login()

    first, retry = op.oracle.of("token")
    assert first.outcome.startswith("use_dpop_nonce")
    assert "nonce" not in proof_of(first).claims
    assert proof_of(retry).claims["nonce"] == op.dpop_nonce
    assert proof_of(retry).claims["jti"] != proof_of(first).claims["jti"]
    assert first.param("code") == retry.param("code")  # the same grant, sent once more
    # UserInfo is on the same origin: the nonce learnt at the token endpoint goes at once.
    assert op.oracle.count("userinfo") == 1
    assert proof_of(op.oracle.last("userinfo")).claims["nonce"] == op.dpop_nonce
    assert result.tokens.token_type == "dpop"


async def test_a_private_key_jwt_client_sends_a_fresh_assertion_with_the_retry():
    from rpkit.testing import FakeClient
    from rpkit.testing.keys import generate_key

    op = FakeOP()
    key = generate_key("ES256", kid="k1")
    client = FakeClient(
        client_id="pkjwt",
        client_secret=None,
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    op.clients = {client.client_id: client}
    relying = party(
        op, dpop=True, private_key=dict(key.as_dict(private=True)), private_key_alg="ES256"
    )

    with op.misbehaving(dpop_nonce="required"):
        await relying.login()

    first, retry = op.oracle.of("token")
    assert retry.outcome == "ok"
    assert first.param("client_assertion") != retry.param("client_assertion")


async def test_a_nonce_refused_again_after_the_retry_ends_the_login():
    op = FakeOP()
    relying = party(op, dpop=True)

    with op.misbehaving(dpop_nonce="stale"), pytest.raises(TokenExchangeError) as refused:
        await relying.login()

    assert refused.value.error == "use_dpop_nonce"
    assert op.oracle.count("token") == 2  # one retry, not a loop
    assert op.oracle.count("userinfo") == 0
    assert len(relying.store) == 0


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Canned.json({"error": "use_dpop_nonce"}, 400), id="no-nonce-header"),
        pytest.param(
            Canned.json({"error": "use_dpop_nonce"}, 400, {"DPoP-Nonce": "two words"}),
            id="nonce-with-a-space",
        ),
        pytest.param(
            Canned.json({"error": "use_dpop_nonce"}, 400, {"DPoP-Nonce": "n" * 513}),
            id="nonce-too-long",
        ),
        pytest.param(
            Canned.json({"error": "invalid_dpop_proof"}, 400, {"DPoP-Nonce": "fresh"}),
            id="another-error-with-a-nonce",
        ),
    ],
)
async def test_a_refusal_without_a_usable_nonce_is_not_retried(answer: Canned):
    op = FakeOP()
    relying = party(op, dpop=True)

    with op.misbehaving(respond={"token": answer}), pytest.raises(TokenExchangeError):
        await relying.login()

    assert op.oracle.count("token") == 1
    assert op.oracle.count("userinfo") == 0
    assert len(relying.store) == 0


async def test_userinfo_answers_its_own_nonce_challenge_once():
    op = FakeOP()
    relying = party(op, dpop=True)
    result = await relying.login()
    metadata = await relying.rp.metadata("fake")
    op.oracle.clear()
    op.dpop_nonce = "rotated-nonce"  # the server moved on; rpkit still holds none for it

    with op.misbehaving(dpop_nonce="required"):
        claims = await relying.rp.userinfo.fetch(
            relying.rp.provider("fake"),
            metadata,
            access_token=result.tokens.access_token,
            expected_sub="alice",
            dpop=result.dpop_key,
        )
    with op.misbehaving(dpop_nonce="stale"), pytest.raises(UserInfoError) as refused:
        await relying.rp.userinfo.fetch(
            relying.rp.provider("fake"),
            metadata,
            access_token=result.tokens.access_token,
            expected_sub="alice",
            dpop=result.dpop_key,
        )

    assert claims["sub"] == "alice"
    assert [r.outcome.split(":")[0] for r in op.oracle.of("userinfo")] == [
        "use_dpop_nonce",
        "ok",
        "use_dpop_nonce",
        "use_dpop_nonce",
    ]
    assert refused.value.reason == "unauthorized"


# -- the session keeps the key: any worker refreshes and calls APIs with it -------------------
async def test_a_second_worker_refreshes_the_session_with_the_key_of_the_login():
    op = FakeOP(access_token_lifetime=30)  # under refresh_before (60 s): every load refreshes
    stores = shared_stores()
    worker_a = make_app(op, provider={"dpop": True}, stores=stores)
    worker_b = make_app(op, provider={"dpop": True}, stores=stores)
    async with (
        AsyncTestClient(worker_a, base_url=BASE) as a,
        AsyncTestClient(worker_b, base_url=BASE) as b,
    ):
        landed = await browser_login(a, op)
        b.cookies = a.cookies
        seen = (await b.get("/session")).json()

    assert landed.status_code == 303
    login_jkt = dict(parse_qsl(urlsplit(op.oracle.last("authorize").url).query))["dpop_jkt"]
    refresh = op.oracle.last("token")
    assert refresh.param("grant_type") == "refresh_token"
    assert proof_of(refresh).jkt == login_jkt
    assert seen["dpop"] is True
    assert claims_of(seen["access_token"])["cnf"] == {"jkt": login_jkt}


async def test_dpop_auth_for_a_session_calls_an_api_with_a_fresh_proof(monkeypatch):
    op = FakeOP()
    stores = shared_stores()
    app = make_app(op, provider={"dpop": True}, stores=stores)
    async with AsyncTestClient(app, base_url=BASE) as client:
        await browser_login(client, op)
        session_id = client.cookies["__Host-rpkit_session"]
    raw = await stores["rpkit_sessions"].get(f"rpkit:session:{session_id}")
    import msgspec

    session = msgspec.json.decode(raw, type=SessionData)
    op.oracle.clear()
    async with httpx.AsyncClient(transport=op.transport()) as http:
        auth = DPoPAuth.for_session(session)
        answers = [await http.get(op.endpoints["userinfo"], auth=auth) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 200]
    first, second = (proof_of(r) for r in op.oracle.of("userinfo"))
    assert first.jkt == second.jkt == session.dpop_key().thumbprint  # type: ignore[union-attr]
    assert first.claims["jti"] != second.claims["jti"]
    assert first.claims["ath"] == access_token_hash(session.access_token)


async def test_the_key_is_kept_only_server_side_and_cookie_sessions_keep_none():
    op = FakeOP()
    app = make_app(op, provider={"dpop": True}, session_backend="cookie")
    async with AsyncTestClient(app, base_url=BASE) as client:
        landed = await browser_login(client, op)
        session = (await client.get("/session")).json()

    assert landed.status_code == 303
    assert op.oracle.last("token").headers.get("dpop")  # the login itself was proven
    assert session["dpop"] is False
    assert session["access_token"] == ""
    with pytest.raises(ConfigurationError):
        DPoPAuth.for_session(_Stub(access_token="", dpop_jwk=None))


class _Stub:
    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


# -- DPoPAuth against any API ---------------------------------------------------------------
def test_dpop_auth_answers_a_resource_nonce_challenge_once_and_no_more():
    key = DPoPKey.generate()
    seen: list[tuple[str, bytes]] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["dpop"], request.content))
        challenge = 'DPoP algs="ES256", error="use_dpop_nonce"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge, "DPoP-Nonce": "n-1"})

    nonces = DPoPNonces()
    with httpx.Client(transport=httpx.MockTransport(api)) as http:
        answer = http.post(
            "https://api.example/orders?page=2",
            json={"a": 1},
            auth=DPoPAuth("tok", key, nonces=nonces),
        )

    assert answer.status_code == 401
    assert len(seen) == 2
    first, retry = (claims_of(proof) for proof, _ in seen)
    assert first["htu"] == retry["htu"] == "https://api.example/orders"
    assert first["htm"] == "POST"
    assert first["ath"] == access_token_hash("tok")
    assert "nonce" not in first
    assert retry["nonce"] == "n-1"
    assert seen[1][1] == seen[0][1] == b'{"a":1}'  # the body went again
    assert nonces.get("https://api.example/other") == "n-1"


def test_dpop_auth_ignores_a_bearer_challenge_and_a_missing_nonce():
    key = DPoPKey.generate()
    calls = 0

    def api(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="use_dpop_nonce"'})

    with httpx.Client(transport=httpx.MockTransport(api)) as http:
        http.get("https://api.example/", auth=DPoPAuth("tok", key))

    assert calls == 1
