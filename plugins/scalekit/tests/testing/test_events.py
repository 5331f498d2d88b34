"""Webhooks (Standard Webhooks v1), back-channel logout and IdP-initiated login from the fake
Scalekit, checked with an independent HMAC computation and PyJWT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from rpkit.testing import BACKCHANNEL_LOGOUT_EVENT
from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    FakeApplication,
    FakeScalekit,
    WebhookEndpoint,
    build_webhook,
    new_webhook_secret,
)

from .conftest import PlainRP, verify_jwt


def expected_signature(secret: str, msg_id: str, ts: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_secret_has_the_whsec_shape():
    secret = new_webhook_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) >= 24


def test_honest_webhook_signature_and_envelope():
    secret = new_webhook_secret()

    delivery = build_webhook(
        secret,
        "user.login",
        {"user_id": "usr_1"},
        "https://rp.test/wh",
        organization_id="org_1",
        timestamp=1_700_000_000,
    )

    headers = delivery.headers
    event = json.loads(delivery.body)
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == expected_signature(
        secret, headers["webhook-id"], "1700000000", delivery.body
    )
    assert event["spec_version"] == "1"
    assert event["id"].startswith("evt_")
    assert event["type"] == "user.login"
    assert event["organization_id"] == "org_1"
    assert event["data"] == {"user_id": "usr_1"}
    assert {"object", "occurred_at", "environment_id", "display_name"} <= set(event)


def test_webhook_defects():
    secret = new_webhook_secret()
    common = (secret, "user.login", {"a": 1}, "https://rp.test/wh")

    multi = build_webhook(*common, extra_signatures=("v1,bogus", "v2,other"), timestamp=100)
    skewed = build_webhook(*common, timestamp=1000, timestamp_offset=-301)
    tampered = build_webhook(*common, tamper_body=True, timestamp=100)
    foreign = build_webhook(*common, wrong_secret=True, timestamp=100)
    titled = build_webhook(*common, header_case="title")
    interceptor = build_webhook(*common, header_prefix="interceptor")

    parts = multi.headers["webhook-signature"].split(" ")
    assert parts[:2] == ["v1,bogus", "v2,other"]
    assert parts[2] == expected_signature(secret, multi.headers["webhook-id"], "100", multi.body)
    assert skewed.headers["webhook-timestamp"] == "699"
    for broken in (tampered, foreign):
        sig = broken.headers["webhook-signature"]
        assert sig != expected_signature(secret, broken.headers["webhook-id"], "100", broken.body)
    assert "Webhook-Signature" in titled.headers
    assert "interceptor-signature" in interceptor.headers
    assert interceptor.kind == "interceptor"


def receiver(log: list[httpx.Request]) -> httpx.AsyncClient:
    async def app(request: httpx.Request) -> httpx.Response:
        log.append(request)
        return httpx.Response(204)

    return httpx.AsyncClient(transport=httpx.MockTransport(app))


async def test_login_and_logout_emit_webhooks_to_subscribers_only():
    secret = new_webhook_secret()
    fake = FakeScalekit(
        webhook_endpoints=[
            WebhookEndpoint("https://rp.test/wh", secret, frozenset({"user.logout"}))
        ]
    )
    received: list[httpx.Request] = []
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        rp = PlainRP(fake, http)
        tokens = await rp.tokens(login_hint="alice@acme.test")
        await http.get(f"{fake.issuer}/oidc/logout", params={"id_token_hint": tokens["id_token"]})

    assert [m.event["type"] for m in fake.pending()] == ["user.logout"]
    async with receiver(received) as sink:
        delivered = await fake.deliver(sink)
    request = received[0]
    assert delivered[0].status == 204
    assert fake.pending() == []
    assert request.headers["webhook-signature"] == expected_signature(
        secret, request.headers["webhook-id"], request.headers["webhook-timestamp"], request.content
    )
    assert json.loads(request.content)["data"]["email"] == "alice@acme.test"
    assert json.loads(request.content)["organization_id"] == "org_300000000000000001"


async def test_deliver_with_posts_immediately_and_records_transport_errors():
    received: list[httpx.Request] = []
    async with receiver(received) as sink:
        fake = FakeScalekit(
            deliver_with=sink, webhook_endpoints=[WebhookEndpoint("https://rp.test/wh")]
        )
        async with httpx.AsyncClient(transport=fake.transport()) as http:
            await PlainRP(fake, http).code()

    assert [json.loads(r.content)["type"] for r in received] == ["user.login"]
    fake.emit("custom.event", {}, url="https://unreachable.test/", secret=new_webhook_secret())
    async with httpx.AsyncClient(transport=fake.transport()) as nowhere:
        failed = await fake.deliver(nowhere)
    assert failed[0].error
    assert "ConnectError" in failed[0].error


def test_emit_to_an_unknown_url_needs_a_secret():
    with pytest.raises(ValueError, match="no secret"):
        FakeScalekit().emit("user.login", {}, url="https://rp.test/wh")


async def test_logout_queues_a_verifiable_backchannel_logout_token():
    app = FakeApplication(backchannel_logout_uri="https://app.rpkit.test/backchannel")
    fake = FakeScalekit(apps=[app])
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        tokens = await PlainRP(fake, http).tokens()
        await http.get(f"{fake.issuer}/oidc/logout", params={"id_token_hint": tokens["id_token"]})

    message = fake.pending()[0]
    token = parse_qs(message.body.decode())["logout_token"][0]
    claims = verify_jwt(fake, token)
    id_claims = verify_jwt(fake, tokens["id_token"])
    assert message.kind == "backchannel_logout"
    assert message.url == "https://app.rpkit.test/backchannel"
    assert claims["events"] == {BACKCHANNEL_LOGOUT_EVENT: {}}
    assert claims["sid"] == id_claims["sid"]
    assert claims["sub"] == id_claims["sub"]
    assert claims["aud"] == DEFAULT_CLIENT_ID


async def test_logout_token_format_is_an_open_answer():
    from rpkit.testing import ABSENT

    fake = FakeScalekit(apps=[FakeApplication(backchannel_logout_uri="https://app.rpkit.test/bc")])
    fake.answers.logout_token_claims = {"sid": ABSENT, "event": "user.logout"}
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        tokens = await PlainRP(fake, http).tokens()
        await http.get(f"{fake.issuer}/oidc/logout", params={"id_token_hint": tokens["id_token"]})

    claims = verify_jwt(fake, parse_qs(fake.pending()[0].body.decode())["logout_token"][0])
    assert "sid" not in claims
    assert claims["event"] == "user.logout"


def test_idp_initiated_login_url_and_claims():
    fake = FakeScalekit(
        apps=[FakeApplication(initiate_login_uri="https://app.rpkit.test/login?x=1")]
    )

    url = fake.idp_initiated_login_url(
        connection_id="conn_1", organization_id="org_1", login_hint="a@acme.test", relay_state="rs"
    )

    parts = urlsplit(url)
    token = parse_qs(parts.query)["idp_initiated_login"][0]
    claims = verify_jwt(fake, token)
    assert url.startswith("https://app.rpkit.test/login?x=1&idp_initiated_login=")
    assert claims["iss"] == fake.issuer
    assert claims["aud"] == [DEFAULT_CLIENT_ID]
    assert claims["exp"] - claims["iat"] == 300
    assert (
        claims["connection_id"],
        claims["organization_id"],
        claims["login_hint"],
        claims["relay_state"],
    ) == ("conn_1", "org_1", "a@acme.test", "rs")


def test_idp_initiated_iss_aud_exp_are_open_answers():
    fake = FakeScalekit()
    fake.answers.idp_initiated_issuer = "https://other.example"
    fake.answers.idp_initiated_audience = "none"
    fake.answers.idp_initiated_lifetime = None

    claims = verify_jwt(fake, fake.idp_initiated_login_token(connection_id="conn_1"))

    assert claims["iss"] == "https://other.example"
    assert "aud" not in claims
    assert "exp" not in claims
    with pytest.raises(ValueError, match="initiate_login_uri"):
        fake.idp_initiated_login_url()
