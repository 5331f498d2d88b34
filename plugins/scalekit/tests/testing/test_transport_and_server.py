"""The fake Scalekit in-process next to rpkit's FakeOP, and as a real server on 127.0.0.1."""

from __future__ import annotations

import httpx

from rpkit.testing import FakeOP, FakeOPTransport
from rpkit_scalekit.testing import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, FakeScalekit


async def test_one_transport_serves_fake_op_and_fake_scalekit(fake_scalekit):
    op = FakeOP()

    async with httpx.AsyncClient(transport=FakeOPTransport(op, fake_scalekit)) as http:
        op_doc = await http.get(f"{op.issuer}/.well-known/openid-configuration")
        sk_doc = await http.get(f"{fake_scalekit.issuer}/.well-known/openid-configuration")

    assert op_doc.json()["issuer"] == op.issuer
    assert sk_doc.json()["issuer"] == fake_scalekit.issuer
    assert fake_scalekit.recording.count() == 1
    assert op.oracle.count() == 1


async def test_transport_method_accepts_others_and_refuses_unknown_origins(fake_scalekit):
    op = FakeOP()

    async with httpx.AsyncClient(transport=fake_scalekit.transport(op)) as http:
        ok = await http.get(f"{op.issuer}/.well-known/openid-configuration")
        try:
            await http.get("https://elsewhere.test/")
        except httpx.ConnectError:
            refused = True
        else:
            refused = False

    assert ok.status_code == 200
    assert refused


async def test_recording_keeps_headers_in_order_and_case(fake_scalekit, fake_scalekit_http):
    await fake_scalekit_http.get(
        f"{fake_scalekit.issuer}/keys",
        headers=[("Authorization", "Bearer new"), ("authorization", "Bearer stale")],
    )

    call = fake_scalekit.recording.last("keys")
    assert call.header_values("authorization") == ["Bearer new", "Bearer stale"]
    assert ("Authorization", "Bearer new") in call.headers
    assert call.body == b""


async def test_unknown_paths_are_404_and_counted(fake_scalekit, fake_scalekit_http):
    response = await fake_scalekit_http.get(f"{fake_scalekit.issuer}/nothing/here")

    assert response.status_code == 404
    assert fake_scalekit.recording.counts() == {"not_found": 1}


async def test_dev_pages_can_be_switched_off():
    fake = FakeScalekit(dev_pages=False)

    async with httpx.AsyncClient(transport=fake.transport()) as http:
        response = await http.get(f"{fake.issuer}/_dev/outbox")

    assert response.status_code == 404


async def test_env_url_with_a_path_serves_under_it():
    fake = FakeScalekit("https://tenant.scalekit.test/env/")

    async with httpx.AsyncClient(transport=fake.transport()) as http:
        doc = await http.get("https://tenant.scalekit.test/env/.well-known/openid-configuration")

    assert fake.issuer == "https://tenant.scalekit.test/env"
    assert doc.json()["jwks_uri"] == "https://tenant.scalekit.test/env/keys"


def test_served_fake_answers_real_http_and_shows_the_mailbox(fake_scalekit_server):
    base = fake_scalekit_server.issuer
    with httpx.Client(timeout=5) as http:
        token = http.post(
            f"{base}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret": DEFAULT_CLIENT_SECRET,
            },
        ).json()["access_token"]
        sent = http.post(
            f"{base}/api/v1/passwordless/email/send",
            json={"email": "ada@example.com"},
            headers={"Authorization": f"Bearer {token}"},
        )
        page = http.get(f"{base}/_dev/outbox")

    assert base.startswith("http://127.0.0.1:")
    assert sent.status_code == 200
    assert fake_scalekit_server.outbox.last().otp in page.text
    assert fake_scalekit_server.recording.counts() == {
        "token": 1,
        "passwordless_send": 1,
        "dev_outbox": 1,
    }
