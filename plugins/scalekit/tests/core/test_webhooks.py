"""Webhooks: Standard Webhooks v1 signatures as Scalekit sends them, read robustly, within five
minutes, once per webhook-id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from structlog.testing import capture_logs

from rpkit.errors import ConfigurationError
from rpkit_scalekit.errors import WebhookVerificationError
from rpkit_scalekit.webhooks import WebhookVerifier

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER_KEY = bytes(range(100, 132))
EVENT = {
    "spec_version": "1",
    "id": "evt_123",
    "type": "user.signup",
    "object": "User",
    "occurred_at": "2026-01-01T00:00:00Z",
    "environment_id": "env_1",
    "organization_id": "org_1",
    "data": {"user": {"id": "usr_1", "email": "ada@example.com"}},
    "display_name": "User signed up",
}
BODY = json.dumps(EVENT, separators=(",", ":")).encode()


def signature(key: bytes, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(clock, *, webhook_id="msg_1", timestamp=None, body=BODY, sig=None, case=str.lower):
    ts = int(clock.now) if timestamp is None else timestamp
    return {
        case("webhook-id"): webhook_id,
        case("webhook-timestamp"): str(ts),
        case("webhook-signature"): sig or signature(KEY, webhook_id, ts, body),
    }


@pytest.fixture
def verifier(store, clock) -> WebhookVerifier:
    return WebhookVerifier(SECRET, store=store, clock=clock)


async def test_a_valid_delivery_yields_the_typed_event(verifier, clock):
    event = await verifier.verify(headers(clock), BODY)

    assert (event.type, event.id, event.webhook_id) == ("user.signup", "evt_123", "msg_1")
    assert event.data["user"]["id"] == "usr_1"
    assert event.organization_id == "org_1"
    assert event.timestamp == int(clock.now)
    with pytest.raises(TypeError):
        event.data["user"] = {}  # type: ignore[index]


@pytest.mark.parametrize("case", [str.title, str.upper], ids=["title", "upper"])
async def test_header_names_are_case_insensitive(verifier, clock, case):
    event = await verifier.verify(headers(clock, case=case), BODY)

    assert event.type == "user.signup"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b.replace(b"usr_1", b"usr_2")),
        lambda h, b: (h | {"webhook-id": "msg_2"}, b),
        lambda h, b: (h | {"webhook-timestamp": str(int(h["webhook-timestamp"]) - 1)}, b),
        lambda h, b: (h, json.dumps(EVENT).encode()),  # re-serialised: not the signed bytes
    ],
    ids=["body", "id", "timestamp", "reserialised"],
)
async def test_a_tampered_delivery_is_refused(verifier, clock, tamper):
    tampered_headers, tampered_body = tamper(headers(clock), BODY)

    with pytest.raises(WebhookVerificationError) as caught:
        await verifier.verify(tampered_headers, tampered_body)

    assert caught.value.reason == "signature"


@pytest.mark.parametrize("skew", [-301, 301, -10_000_000])
async def test_a_timestamp_more_than_five_minutes_off_is_refused(verifier, clock, skew):
    ts = int(clock.now) + skew

    with pytest.raises(WebhookVerificationError) as caught:
        await verifier.verify(headers(clock, timestamp=ts), BODY)

    assert caught.value.reason == "timestamp"


@pytest.mark.parametrize("skew", [-299, 299])
async def test_a_timestamp_within_five_minutes_is_accepted(verifier, clock, skew):
    await verifier.verify(headers(clock, timestamp=int(clock.now) + skew), BODY)


async def test_a_replayed_delivery_is_refused(verifier, clock):
    delivery = headers(clock)
    await verifier.verify(delivery, BODY)
    clock.now += 60

    with pytest.raises(WebhookVerificationError) as caught:
        await verifier.verify(delivery, BODY)

    assert caught.value.reason == "replayed"


async def test_a_replay_is_refused_by_another_worker_sharing_the_store(store, clock):
    delivery = headers(clock)
    await WebhookVerifier(SECRET, store=store, clock=clock).verify(delivery, BODY)

    with pytest.raises(WebhookVerificationError) as caught:
        await WebhookVerifier(SECRET, store=store, clock=clock).verify(delivery, BODY)

    assert caught.value.reason == "replayed"


async def test_a_released_delivery_can_be_redelivered(verifier, clock):
    event = await verifier.verify(headers(clock), BODY)
    await verifier.release(event)
    clock.now += 5

    again = await verifier.verify(headers(clock), BODY)  # Scalekit's retry: same id, new time

    assert again.webhook_id == event.webhook_id


async def test_a_forged_delivery_does_not_poison_the_replay_cache(verifier, clock):
    forged = headers(clock, sig=signature(OTHER_KEY, "msg_1", int(clock.now), BODY))
    with pytest.raises(WebhookVerificationError):
        await verifier.verify(forged, BODY)

    event = await verifier.verify(headers(clock), BODY)

    assert event.webhook_id == "msg_1"


async def test_several_entries_verify_when_one_matches(verifier, clock):
    ts = int(clock.now)
    good = signature(KEY, "msg_1", ts, BODY)
    stale = signature(OTHER_KEY, "msg_1", ts, BODY)
    entries = f"v0,@@not-base64@@ v1,%%%broken {stale} v2,xyz {good}"

    event = await verifier.verify(headers(clock, sig=entries), BODY)

    assert event.id == "evt_123"


async def test_a_rotated_secret_pair_accepts_either(store, clock):
    other_secret = "whsec_" + base64.b64encode(OTHER_KEY).decode()
    verifier = WebhookVerifier([SECRET, other_secret], store=store, clock=clock)
    ts = int(clock.now)

    await verifier.verify(headers(clock, sig=signature(OTHER_KEY, "msg_1", ts, BODY)), BODY)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": "v1"}, "malformed"),
        ({"webhook-signature": "v1,***"}, "malformed"),
        ({"webhook-signature": "v0,abc v2,def"}, "malformed"),
        ({"webhook-signature": "t=1,v1=abcdef"}, "malformed"),  # the docs' Stripe-style helper
        ({"webhook-signature": " ".join(["v1,AAAA"] * 11)}, "malformed"),
        ({"webhook-timestamp": "12.5"}, "malformed"),
        ({"webhook-timestamp": "-5"}, "malformed"),
        ({"webhook-timestamp": "１２３"}, "malformed"),
        ({"webhook-id": "x" * 300}, "malformed"),
        ({"webhook-id": ""}, "missing_header"),
        ({"webhook-signature": "  "}, "missing_header"),
    ],
)
async def test_malformed_headers_fail_cleanly(verifier, clock, change, reason):
    with pytest.raises(WebhookVerificationError) as caught:
        await verifier.verify(headers(clock) | change, BODY)

    assert caught.value.reason == reason


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_missing_headers_fail_cleanly(verifier, clock, missing):
    delivery = headers(clock)
    del delivery[missing]

    with pytest.raises(WebhookVerificationError) as caught:
        await verifier.verify(delivery, BODY)

    assert caught.value.reason == "missing_header"


async def test_conflicting_duplicate_headers_are_refused(verifier, clock):
    delivery = headers(clock) | {"Webhook-Id": "msg_other"}

    with pytest.raises(WebhookVerificationError) as caught:
        await verifier.verify(delivery, BODY)

    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"id": "evt_1"}', b'{"type": "x", "data": [1]}'],
    ids=["not_json", "array", "no_type", "data_not_object"],
)
async def test_a_signed_but_unusable_payload_is_refused(verifier, clock, body):
    with pytest.raises(WebhookVerificationError) as caught:
        await verifier.verify(headers(clock, body=body), body)

    assert caught.value.reason == "payload"


@pytest.mark.parametrize(
    "secret",
    [
        "no-prefix",
        "whsec_",
        "whsec_" + base64.b64encode(b"short").decode(),
        "whsec_not*base64",
    ],
)
def test_unusable_secrets_are_refused_at_construction(store, secret):
    with pytest.raises(ConfigurationError):
        WebhookVerifier(secret, store=store)


async def test_without_a_store_replays_are_not_detected_and_that_is_logged(clock):
    with capture_logs() as logs:
        verifier = WebhookVerifier(SECRET, store=None, clock=clock)
    delivery = headers(clock)

    await verifier.verify(delivery, BODY)
    await verifier.verify(delivery, BODY)

    assert any(e["event"] == "rpkit.scalekit.webhook_replay_cache_off" for e in logs)


async def test_the_secret_never_appears_in_logs_or_repr(verifier, clock):
    with capture_logs() as logs, pytest.raises(WebhookVerificationError):
        await verifier.verify(headers(clock, sig="v1,AAAA"), BODY)

    encoded = SECRET.removeprefix("whsec_")
    assert encoded not in repr(logs)
    assert encoded not in repr(verifier)
