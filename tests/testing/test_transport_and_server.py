"""The kit's plumbing: reaching fake OPs through FakeOPTransport, respx, ASGI and a real server on
127.0.0.1, latency and timeouts, clock offsets, and issuers with a path."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest
import respx
from joserfc import jws

from rpkit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REDIRECT_URI,
    FakeOP,
    FakeOPTransport,
    mock_with_respx,
    serve,
)

DISCOVERY = "/.well-known/openid-configuration"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def basic_auth() -> str:
    raw = f"{quote_plus(DEFAULT_CLIENT_ID)}:{quote_plus(DEFAULT_CLIENT_SECRET)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(jws.extract_compact(token.encode()).payload)
    return claims


async def code_flow(issuer: str, http: httpx.AsyncClient) -> dict[str, Any]:
    """Discovery → authorize → token → UserInfo, every step an HTTP request through ``http``."""
    metadata = (await http.get(issuer + DISCOVERY)).json()
    verifier = b64url(secrets.token_bytes(32))
    authorization = await http.get(
        metadata["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": DEFAULT_CLIENT_ID,
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "scope": "openid email",
            "state": "st-1",
            "nonce": "n-1",
            "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
            "code_challenge_method": "S256",
        },
    )
    assert authorization.status_code == 302, authorization.text
    location = urlsplit(authorization.headers["location"])
    callback = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == DEFAULT_REDIRECT_URI
    assert callback["state"] == ["st-1"]
    assert callback["iss"] == [issuer]
    token = await http.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": callback["code"][0],
            "redirect_uri": DEFAULT_REDIRECT_URI,
            "code_verifier": verifier,
        },
        headers={"Authorization": basic_auth()},
    )
    assert token.status_code == 200, token.text
    tokens: dict[str, Any] = token.json()
    userinfo = await http.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert userinfo.status_code == 200, userinfo.text
    return {"metadata": metadata, "tokens": tokens, "userinfo": userinfo.json()}


def assert_signed_in_as_alice(op: FakeOP, flow: dict[str, Any]) -> None:
    id_token = unverified_claims(flow["tokens"]["id_token"])
    assert (id_token["iss"], id_token["sub"], id_token["nonce"]) == (op.issuer, "alice", "n-1")
    assert flow["userinfo"] == {
        "sub": "alice",
        "email": "alice@example.com",
        "email_verified": True,
    }
    assert op.oracle.counts() == {"discovery": 1, "authorize": 1, "token": 1, "userinfo": 1}


# -- FakeOPTransport --------------------------------------------------------------------------
async def test_latency_beyond_the_client_read_timeout_raises_read_timeout(fake_op: FakeOP):
    fake_op.misbehave.latency = {"jwks": 0.5}
    timeout = httpx.Timeout(5.0, read=0.05)
    async with httpx.AsyncClient(transport=fake_op.transport(), timeout=timeout) as http:
        discovery = await http.get(fake_op.issuer + DISCOVERY)
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await http.get(fake_op.endpoints["jwks"])
        elapsed = time.monotonic() - started

    assert discovery.status_code == 200
    assert elapsed < 0.4
    assert fake_op.oracle.count("jwks") == 1


async def test_latency_within_the_client_read_timeout_only_delays(fake_op: FakeOP):
    fake_op.misbehave.latency = {"jwks": 0.2}
    async with httpx.AsyncClient(transport=fake_op.transport(), timeout=5.0) as http:
        started = time.monotonic()
        response = await http.get(fake_op.endpoints["jwks"])
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert elapsed >= 0.2


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example/.well-known/openid-configuration",
        "http://op.rpkit.test/.well-known/openid-configuration",
        "https://op.rpkit.test:8443/.well-known/openid-configuration",
    ],
    ids=["other-host", "other-scheme", "other-port"],
)
async def test_unknown_origin_raises_connect_error(fake_op: FakeOP, fake_op_http, url):
    with pytest.raises(httpx.ConnectError, match="no fake OP serves"):
        await fake_op_http.get(url)

    assert fake_op.oracle.count() == 0


async def test_unknown_path_at_a_known_origin_is_a_404(fake_op: FakeOP, fake_op_http):
    response = await fake_op_http.get(fake_op.issuer + "/nope")

    assert response.status_code == 404
    assert fake_op.oracle.requests[0].endpoint is None


async def test_two_ops_behind_one_transport_are_routed_by_origin():
    honest = FakeOP("https://a.example")
    attacker = FakeOP("https://b.example")
    other_port = FakeOP("https://a.example:8443")
    transport = FakeOPTransport(honest, attacker)
    transport.add(other_port)

    async with httpx.AsyncClient(transport=transport) as http:
        issuers = [
            (await http.get(op.issuer + DISCOVERY)).json()["issuer"]
            for op in (honest, attacker, other_port, attacker)
        ]

    assert issuers == [honest.issuer, attacker.issuer, other_port.issuer, attacker.issuer]
    assert [op.oracle.count("discovery") for op in (honest, attacker, other_port)] == [1, 2, 1]


async def test_op_transport_with_others_routes_to_each(fake_op: FakeOP):
    second = FakeOP("https://second.example")

    async with httpx.AsyncClient(transport=fake_op.transport(second)) as http:
        flows = [await code_flow(op.issuer, http) for op in (fake_op, second)]

    assert_signed_in_as_alice(fake_op, flows[0])
    assert_signed_in_as_alice(second, flows[1])


async def test_fallback_transport_serves_other_origins(fake_op: FakeOP):
    fallback = httpx.MockTransport(lambda request: httpx.Response(204))
    transport = FakeOPTransport(fake_op, fallback=fallback)

    async with httpx.AsyncClient(transport=transport) as http:
        other = await http.get("https://api.example/ping")
        discovery = await http.get(fake_op.issuer + DISCOVERY)

    assert other.status_code == 204
    assert discovery.json()["issuer"] == fake_op.issuer
    assert fake_op.oracle.count() == 1


# -- respx ------------------------------------------------------------------------------------
async def test_mock_with_respx_routes_the_op_and_keeps_other_routes(fake_op: FakeOP):
    with respx.mock(assert_all_called=True) as router:
        ping = router.get("https://api.example/ping").respond(204)
        mock_with_respx(router, fake_op)
        async with httpx.AsyncClient() as http:
            flow = await code_flow(fake_op.issuer, http)
            pong = await http.get("https://api.example/ping")
        calls = len(router.calls)

    assert_signed_in_as_alice(fake_op, flow)
    assert pong.status_code == 204
    assert ping.call_count == 1
    assert calls == 5


async def test_mock_with_respx_routes_several_ops_by_origin(fake_op: FakeOP):
    second = FakeOP("https://second.example")
    with respx.mock as router:
        mock_with_respx(router, fake_op, second)
        async with httpx.AsyncClient() as http:
            issuers = [
                (await http.get(op.issuer + DISCOVERY)).json()["issuer"]
                for op in (second, fake_op, second)
            ]

    assert issuers == [second.issuer, fake_op.issuer, second.issuer]
    assert (fake_op.oracle.count("discovery"), second.oracle.count("discovery")) == (1, 2)


# -- clock ------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [-7200, 7200], ids=["behind", "ahead"])
async def test_clock_offset_shifts_every_issued_time(fake_op: FakeOP, fake_op_http, offset):
    fake_op.misbehave.clock_offset = offset

    flow = await code_flow(fake_op.issuer, fake_op_http)

    now = time.time()
    claims = unverified_claims(flow["tokens"]["id_token"])
    access = unverified_claims(flow["tokens"]["access_token"])
    for issued in (claims["iat"], claims["auth_time"], access["iat"]):
        assert abs(issued - (now + offset)) < 5
    assert claims["exp"] - claims["iat"] == fake_op.id_token_lifetime
    assert abs(fake_op.now() - (now + offset)) < 5


# -- ASGI -------------------------------------------------------------------------------------
async def test_asgi_app_serves_a_full_code_flow_through_asgi_transport(fake_op: FakeOP):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_op.asgi)) as http:
        flow = await code_flow(fake_op.issuer, http)

    assert_signed_in_as_alice(fake_op, flow)
    assert fake_op.oracle.last("token").headers["authorization"] == basic_auth()
    assert fake_op.oracle.last("token").form[0] == ("grant_type", "authorization_code")


async def test_asgi_app_answers_unknown_paths_with_404(fake_op: FakeOP):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_op.asgi)) as http:
        response = await http.get(fake_op.issuer + "/nope")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


# -- a real server on 127.0.0.1 ---------------------------------------------------------------
async def test_fake_op_server_answers_discovery_over_real_http(fake_op_server: FakeOP):
    async with httpx.AsyncClient(timeout=5.0) as http:
        response = await http.get(fake_op_server.issuer + DISCOVERY)

    assert fake_op_server.issuer.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert response.json()["issuer"] == fake_op_server.issuer
    assert response.json()["token_endpoint"] == f"{fake_op_server.issuer}/token"
    assert fake_op_server.oracle.count("discovery") == 1


async def test_fake_op_server_serves_a_full_code_flow_over_real_http(fake_op_server: FakeOP):
    async with httpx.AsyncClient(timeout=5.0) as http:
        flow = await code_flow(fake_op_server.issuer, http)

    assert_signed_in_as_alice(fake_op_server, flow)


async def test_serve_stops_listening_when_the_block_ends():
    with serve(require_pkce=False) as op:
        async with httpx.AsyncClient(timeout=5.0) as http:
            during = await http.get(op.issuer + DISCOVERY)
        assert not op.require_pkce

    async with httpx.AsyncClient(timeout=5.0) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(op.issuer + DISCOVERY)

    assert during.json()["issuer"] == op.issuer


# -- an issuer with a path --------------------------------------------------------------------
async def test_issuer_with_a_path_serves_discovery_and_endpoints_under_it():
    op = FakeOP("https://op.example/tenant-a")
    async with httpx.AsyncClient(transport=op.transport()) as http:
        flow = await code_flow(op.issuer, http)
        assert_signed_in_as_alice(op, flow)
        at_root = await http.get("https://op.example" + DISCOVERY)
        rfc_8414_style = await http.get(f"https://op.example{DISCOVERY}/tenant-a")

    metadata = flow["metadata"]
    assert metadata["issuer"] == "https://op.example/tenant-a"
    endpoint_members = [m for m in metadata if m.endswith(("_endpoint", "_uri"))]
    assert len(endpoint_members) == 5
    for member in endpoint_members:
        assert metadata[member].startswith("https://op.example/tenant-a/"), member
    assert at_root.status_code == 404
    assert rfc_8414_style.status_code == 404


async def test_oracle_counts_unknown_paths_as_not_found(fake_op, fake_op_http):
    await fake_op_http.get(f"{fake_op.issuer}/nowhere")

    assert fake_op.oracle.counts() == {"not_found": 1}
    assert fake_op.oracle.requests[0].outcome == "not_found"


async def test_fragment_response_values_are_found_by_get(fake_op, rp):
    callback = await fake_op.approve(rp.authorization_url(response_mode="fragment"))

    assert callback.params == ()
    assert callback.get("code")
    assert callback.get("state") == rp.state
