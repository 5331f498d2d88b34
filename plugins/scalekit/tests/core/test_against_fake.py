"""The clients against the fake Scalekit (``rpkit_scalekit.testing``), in-process: the same
behaviour as against the respx wire, with the fake's own bookkeeping as the witness."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from rpkit.client import RelyingParty
from rpkit.jwks import JWKSCache
from rpkit.store import MemoryStore
from rpkit_scalekit.environment import ScalekitEnvironment
from rpkit_scalekit.errors import (
    PasswordlessAttemptsExhaustedError,
    PasswordlessExpiredError,
    PasswordlessInvalidCredentialError,
    PasswordlessRateLimitedError,
    PasswordlessUsedError,
    ScalekitUnavailableError,
    WebhookVerificationError,
)
from rpkit_scalekit.passwordless import PasswordlessClient
from rpkit_scalekit.provider import ScalekitDiscoveryCache, scalekit
from rpkit_scalekit.testing import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_ENV_URL,
    DEFAULT_REDIRECT_URI,
    FakeScalekit,
    new_webhook_secret,
)
from rpkit_scalekit.webhooks import WebhookVerifier

ACME_CONNECTION = "conn_200000000000000001"
CONFIG = scalekit(DEFAULT_ENV_URL, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)


@pytest.fixture
def fake() -> FakeScalekit:
    return FakeScalekit()


@pytest.fixture
async def fake_http(fake: FakeScalekit, tls: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=fake.transport(), timeout=5.0, verify=tls) as http:
        yield http


@pytest.fixture
def env(fake_http: httpx.AsyncClient) -> ScalekitEnvironment:
    return ScalekitEnvironment(
        CONFIG, http=fake_http, store=MemoryStore(), jwks=JWKSCache(fake_http)
    )


async def test_creating_the_environment_contacts_nothing(fake, env):
    assert fake.recording.count() == 0


async def test_login_hint_routing_matches_the_fakes_connection_table(fake, env):
    acme = await env.router.route(email="carol@ACME.test")
    unfinished = await env.router.route(email="dan@globex.test")
    personal = await env.router.route(email="erin@gmail.test")

    assert (acme.kind, acme.connection_id) == ("connection", ACME_CONNECTION)
    assert (unfinished.kind, unfinished.reason) == ("hosted", "no_sso_connection")
    assert personal.kind == "hosted"
    assert len(fake.recording.token_requests("client_credentials")) == 1


async def test_a_routed_login_completes_through_the_chosen_connection(fake, fake_http, env):
    rp = RelyingParty(
        [CONFIG],
        http=fake_http,
        discovery=ScalekitDiscoveryCache(fake_http, fallback_for=[CONFIG]),
    )
    route = await env.router.route(email="alice@acme.test")
    login = await rp.begin_login(
        "scalekit", redirect_uri=DEFAULT_REDIRECT_URI, params=route.params()
    )

    answer = await fake.approve(login.url)
    result = await rp.complete_login("scalekit", answer.params)

    assert result.id_token.amr == (ACME_CONNECTION,)
    assert result.identity.email == "alice@acme.test"


async def test_passwordless_otp_round_trip(fake, env):
    sent = await env.passwordless.send("Ada@example.test", state="s-1")
    code = fake.outbox.last().otp
    assert code is not None

    verified = await env.passwordless.verify_code(code, auth_request_id=sent.auth_request_id)

    assert verified.email.lower() == "ada@example.test"
    assert verified.state == "s-1"
    with pytest.raises(PasswordlessUsedError):
        await env.passwordless.verify_code(code, auth_request_id=sent.auth_request_id)


async def test_magic_link_round_trip_with_same_browser_origin(fake, fake_http):
    fake.passwordless.method = "LINK"
    fake.passwordless.enforce_same_browser = True
    env = ScalekitEnvironment(
        CONFIG,
        http=fake_http,
        store=MemoryStore(),
        jwks=JWKSCache(fake_http),
        same_browser_origin=True,
    )
    sent = await env.passwordless.send("ada@example.test", magiclink_auth_uri="https://app.test/m")
    token = fake.outbox.last().link_token
    assert token is not None

    verified = await env.passwordless.verify_link(token, auth_request_id=sent.auth_request_id)

    assert verified.passwordless_type == "LINK"


async def test_expired_auth_requests_are_typed(fake, env):
    sent = await env.passwordless.send("ada@example.test")
    fake.expire_passwordless(sent.auth_request_id)

    with pytest.raises(PasswordlessExpiredError):
        await env.passwordless.verify_code("000000", auth_request_id=sent.auth_request_id)


async def test_the_limiter_refuses_the_sixth_guess_before_the_fake_sees_it(fake, env):
    sent = await env.passwordless.send("ada@example.test")
    for _ in range(5):
        with pytest.raises(PasswordlessInvalidCredentialError):
            await env.passwordless.verify_code("000000", auth_request_id=sent.auth_request_id)

    with pytest.raises(PasswordlessAttemptsExhaustedError) as caught:
        await env.passwordless.verify_code(
            fake.outbox.last().otp or "", auth_request_id=sent.auth_request_id
        )

    assert caught.value.local
    assert fake.recording.count("passwordless_verify") == 5


async def test_the_fakes_own_limits_map_to_the_same_errors_without_the_limiter(fake, env):
    # Scalekit alone, as any other client of the environment would meet it.
    unlimited = PasswordlessClient(env.api)
    await unlimited.send("ada@example.test")
    await unlimited.send("ada@example.test")

    with pytest.raises(PasswordlessRateLimitedError) as caught:
        await unlimited.send("ada@example.test")

    assert not caught.value.local
    assert caught.value.grpc_code == 8


async def test_the_third_email_is_refused_locally(fake, env):
    await env.passwordless.send("ada@example.test")
    await env.passwordless.send("ada@example.test")

    with pytest.raises(PasswordlessRateLimitedError) as caught:
        await env.passwordless.send("ada@example.test")

    assert caught.value.local
    assert fake.recording.count("passwordless_send") == 2
    assert len(fake.outbox) == 2


async def test_a_send_answered_503_is_not_retried(fake, env):
    fake.fail_next("passwordless_send", 503)

    with pytest.raises(ScalekitUnavailableError):
        await env.passwordless.send("bob@example.test")

    assert fake.recording.count("passwordless_send") == 1
    assert len(fake.outbox) == 0


async def test_a_verify_answered_503_is_not_retried(fake, env):
    sent = await env.passwordless.send("ada@example.test")
    fake.fail_next("passwordless_verify", 503)
    code = fake.outbox.last().otp or ""

    with pytest.raises(ScalekitUnavailableError):
        await env.passwordless.verify_code(code, auth_request_id=sent.auth_request_id)

    assert fake.recording.count("passwordless_verify") == 1


async def test_an_expired_m2m_token_is_replaced_once(fake, env):
    await env.router.route(email="alice@acme.test")
    fake.expire_m2m_tokens()

    route = await env.router.route(email="bob@other.test")

    assert route.kind == "hosted"
    assert len(fake.recording.token_requests("client_credentials")) == 2


async def test_an_idp_initiated_login_from_the_fake_is_verified(fake, env, fake_http):
    metadata = await ScalekitDiscoveryCache(fake_http, fallback_for=[CONFIG]).get(CONFIG)
    token = fake.idp_initiated_login_token(
        connection_id=ACME_CONNECTION, login_hint="alice@acme.test", relay_state="/home"
    )

    login = await env.idp_initiated.verify(token, config=CONFIG, metadata=metadata)

    assert login.route.connection_id == ACME_CONNECTION
    assert login.return_to == "/home"


async def test_webhooks_from_the_fake_verify_and_its_defects_are_refused(fake):
    secret = new_webhook_secret()
    verifier = WebhookVerifier(secret, store=MemoryStore())
    url = "https://app.rpkit.test/webhooks/scalekit"
    honest, rotated, skewed, tampered = (
        fake.emit("user.signup", {"id": "usr_1"}, url=url, secret=secret, **defects)[0]
        for defects in (
            {"header_case": "title"},
            {"extra_signatures": ("v1,bogus", "v2,x")},
            {"timestamp_offset": 301},
            {"tamper_body": True},
        )
    )

    event = await verifier.verify(honest.headers, honest.body)
    assert (event.type, event.data["id"]) == ("user.signup", "usr_1")
    await verifier.verify(rotated.headers, rotated.body)
    for message, reason in ((skewed, "timestamp"), (tampered, "signature"), (honest, "replayed")):
        with pytest.raises(WebhookVerificationError) as caught:
            await verifier.verify(message.headers, message.body)
        assert caught.value.reason == reason
