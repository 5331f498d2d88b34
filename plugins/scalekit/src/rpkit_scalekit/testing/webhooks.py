"""Outbound messages of the fake Scalekit: signed webhooks and interceptor calls (Standard
Webhooks v1, as Scalekit's Svix sends them) and back-channel logout POSTs.

Signature: ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")), where the key is the
base64-decoding of the part of ``whsec_<base64>`` after the first ``_`` (scalekit-sdk.md §2.10,
§8.9). Defects (extra signatures, skewed timestamp, tampered body) are arguments of
:func:`build_webhook`.

Example:
    >>> from rpkit_scalekit.testing.webhooks import build_webhook, new_webhook_secret
    >>> secret = new_webhook_secret()
    >>> delivery = build_webhook(secret, "user.login", {"user_id": "usr_1"}, "https://rp.test/wh")
    >>> sorted(delivery.headers)[:2]
    ['content-type', 'webhook-id']
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from rpkit_scalekit.testing.registry import new_id

__all__ = [
    "OutboundMessage",
    "WebhookEndpoint",
    "build_webhook",
    "new_webhook_secret",
    "sign_webhook",
]


def new_webhook_secret() -> str:
    """A fresh ``whsec_<base64 of 32 random bytes>`` secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """One ``v1,<base64>`` signature entry over ``{msg_id}.{timestamp}.{body}``."""
    key = base64.b64decode(secret.split("_", 1)[1])
    raw = body if isinstance(body, bytes) else body.encode()
    signed = f"{msg_id}.{timestamp}.".encode() + raw
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class WebhookEndpoint:
    """A webhook subscription of the environment."""

    url: str
    secret: str = field(default_factory=new_webhook_secret)
    events: frozenset[str] | None = None
    """Event types delivered here; every type when None."""

    def wants(self, event_type: str) -> bool:
        """Whether ``event_type`` goes to this endpoint."""
        return self.events is None or event_type in self.events


@dataclass
class OutboundMessage:
    """A POST the fake made, or would make, to the RP."""

    kind: Literal["webhook", "interceptor", "backchannel_logout"]
    url: str
    headers: dict[str, str]
    body: bytes
    event: dict[str, Any] | None = None
    """The webhook envelope, parsed (None for back-channel logout)."""
    status: int | None = None
    """The RP's answer once delivered; None while pending."""
    error: str | None = None
    """Why delivery failed (a transport error)."""

    @property
    def delivered(self) -> bool:
        """Whether the RP answered at all."""
        return self.status is not None


def envelope(
    event_type: str,
    data: dict[str, Any],
    *,
    environment_id: str,
    organization_id: str | None = None,
    occurred_at: int | None = None,
) -> dict[str, Any]:
    """The Scalekit event envelope (OpenAPI ``webhooks``)."""
    when = dt.datetime.fromtimestamp(occurred_at or time.time(), dt.UTC)
    event: dict[str, Any] = {
        "spec_version": "1",
        "id": new_id("evt"),
        "type": event_type,
        "object": event_type.split(".", maxsplit=1)[0].capitalize(),
        "occurred_at": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "environment_id": environment_id,
        "organization_id": organization_id,
        "data": data,
        "display_name": event_type.replace(".", " ").replace("_", " ").title(),
    }
    return {k: v for k, v in event.items() if v is not None}


def build_webhook(
    secret: str,
    event_type: str,
    data: dict[str, Any],
    url: str,
    *,
    environment_id: str = "env_000000000000000001",
    organization_id: str | None = None,
    timestamp: int | None = None,
    timestamp_offset: int = 0,
    extra_signatures: tuple[str, ...] = (),
    wrong_secret: bool = False,
    tamper_body: bool = False,
    header_prefix: Literal["webhook", "interceptor"] = "webhook",
    header_case: Literal["lower", "title"] = "lower",
) -> OutboundMessage:
    """A signed event delivery, honest unless a defect is asked for.

    Args:
        secret: the ``whsec_`` secret shared with the RP.
        event_type: e.g. ``user.login``, ``user.logout``, ``organization.sso_enabled``.
        data: the event's ``data``.
        url: where it goes.
        environment_id: ``environment_id`` of the envelope.
        organization_id: ``organization_id`` of the envelope.
        timestamp: Unix seconds to sign and send; now when None.
        timestamp_offset: seconds added to the timestamp (±301 falls outside the SDK's ±5 min).
        extra_signatures: entries placed before the real one (``"v1,bogus"``, ``"v2,x"``).
        wrong_secret: sign with a fresh secret instead of ``secret``.
        tamper_body: change the body after signing.
        header_prefix: ``webhook-*`` headers, or ``interceptor-*`` for interceptor calls.
        header_case: ``Webhook-Id`` instead of ``webhook-id`` (the SDK's lookup is
            case-sensitive).
    """
    event = envelope(
        event_type, data, environment_id=environment_id, organization_id=organization_id
    )
    body = json.dumps(event, separators=(",", ":")).encode()
    msg_id = event["id"].replace("evt_", "msg_", 1)
    ts = (timestamp or int(time.time())) + timestamp_offset
    signature = sign_webhook(new_webhook_secret() if wrong_secret else secret, msg_id, ts, body)
    if tamper_body:
        event = {**event, "data": {**data, "tampered": True}}
        body = json.dumps(event, separators=(",", ":")).encode()
    names = [f"{header_prefix}-id", f"{header_prefix}-timestamp", f"{header_prefix}-signature"]
    if header_case == "title":
        names = ["-".join(part.capitalize() for part in name.split("-")) for name in names]
    headers = {
        "content-type": "application/json",
        names[0]: msg_id,
        names[1]: str(ts),
        names[2]: " ".join([*extra_signatures, signature]),
    }
    kind: Literal["webhook", "interceptor"] = (
        "webhook" if header_prefix == "webhook" else "interceptor"
    )
    return OutboundMessage(kind, url, headers, body, event)
