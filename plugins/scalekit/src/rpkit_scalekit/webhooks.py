"""Scalekit webhooks: Standard Webhooks v1 signatures, a time window and a replay cache.

Scalekit (through Svix) signs ``"{webhook-id}.{webhook-timestamp}.{raw body}"`` with HMAC-SHA256
under the base64 key of a ``whsec_...`` secret, and sends ``webhook-signature`` as space-separated
``v1,<base64>`` entries (several during a secret rotation). :class:`WebhookVerifier` reads the
headers in any letter case, skips entries of other versions without decoding them, compares in
constant time, refuses timestamps more than five minutes off, and records each ``webhook-id`` in
a :class:`~rpkit.store.KeyValueStore` with an atomic ``add`` so a captured delivery cannot be
replayed. Only then is the body parsed into a :class:`WebhookEvent`, and a directory (SCIM)
event's ``data`` into its typed payload (:func:`typed_event`,
:mod:`rpkit_scalekit.directory_events`).

Example:
    >>> # verifier = WebhookVerifier(secret, store=store)
    >>> # event = await verifier.verify(request.headers, await request.body())
    >>> # try: handle(event)
    >>> # except Exception: await verifier.release(event); raise   # let Scalekit retry
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from rpkit._log import get_logger
from rpkit.errors import ConfigurationError
from rpkit.store import KeyValueStore
from rpkit_scalekit._wire import frozen_mapping
from rpkit_scalekit.directory_events import DIRECTORY_EVENTS, DirectoryEvent, directory_event
from rpkit_scalekit.errors import WebhookVerificationError

__all__ = ["DIRECTORY_EVENTS", "DirectoryEvent", "WebhookEvent", "WebhookVerifier", "typed_event"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the documented prefix, not a secret
MIN_SECRET_BYTES = 24
MAX_ID_LENGTH = 256
MAX_BODY_BYTES = 1 << 20
MAX_SIGNATURE_ENTRIES = 10


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A verified delivery."""

    type: str
    """The event type, e.g. ``user.signup`` or ``organization.sso_enabled``."""
    id: str
    """The event id (``evt_...``), or the ``webhook-id`` when the body has none."""
    data: Mapping[str, Any]
    """The event's ``data`` object, read-only."""
    webhook_id: str
    """The delivery's ``webhook-id`` (the replay-cache key)."""
    timestamp: int
    """The delivery's ``webhook-timestamp``, epoch seconds."""
    organization_id: str | None = None
    environment_id: str | None = None
    occurred_at: str | None = None
    raw: Mapping[str, Any] = msgspec.field(default_factory=dict)
    """The whole envelope, read-only."""


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ConfigurationError("the webhook secret must be the whsec_... value from Scalekit")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error:
        raise ConfigurationError("the webhook secret is not whsec_ followed by base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"the webhook secret must hold at least {MIN_SECRET_BYTES} bytes")
    return key


class WebhookVerifier:
    """Verifies Scalekit webhook deliveries.

    Args:
        secret: the endpoint's signing secret, ``whsec_<base64>``; several during a rotation
            (a delivery verifies when any of them signed it).
        store: the replay cache; None turns replay detection off (and is logged at creation),
            leaving only the five-minute window.
        tolerance: seconds a timestamp may be off, either way.
        header_prefix: ``webhook`` for webhooks; ``interceptor`` for Scalekit interceptors,
            which use the same scheme under ``interceptor-*`` headers.
        clock: wall-clock seconds; injectable for tests.
    """

    def __init__(
        self,
        secret: str | Iterable[str],
        *,
        store: KeyValueStore | None,
        tolerance: int = 300,
        header_prefix: str = "webhook",
        clock: Callable[[], float] = time.time,
    ) -> None:
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets or tolerance < 1:
            raise ConfigurationError("WebhookVerifier needs a secret and tolerance >= 1")
        self._keys = tuple(_key(s) for s in secrets)
        self._store = store
        self._tolerance = tolerance
        self._prefix = header_prefix.lower()
        self._clock = clock
        self._log = get_logger(provider="scalekit")
        if store is None:
            self._log.warning("rpkit.scalekit.webhook_replay_cache_off")

    def __repr__(self) -> str:
        return f"WebhookVerifier(keys={len(self._keys)}, tolerance={self._tolerance})"

    async def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify one delivery and parse its event.

        Args:
            headers: the request headers; names in any letter case.
            body: the raw body, exactly as received (not re-serialised JSON).

        Raises:
            WebhookVerificationError: ``missing_header``, ``malformed``, ``timestamp``,
                ``signature``, ``replayed`` or ``payload``; act on nothing.
        """
        try:
            webhook_id, timestamp = self._check(headers, body)
            await self._first_delivery(webhook_id)
            event = _event(body, webhook_id, timestamp)
        except WebhookVerificationError as exc:
            self._log.info("rpkit.scalekit.webhook_rejected", reason=exc.reason, detail=exc.detail)
            raise
        self._log.info("rpkit.scalekit.webhook_verified", type=event.type, webhook_id=webhook_id)
        return event

    async def release(self, event: WebhookEvent) -> None:
        """Forget ``event``'s delivery id after the application failed to handle it, so the
        redelivery Scalekit makes after an error answer is accepted."""
        if self._store is not None:
            await self._store.delete(self._replay_key(event.webhook_id))

    def _check(self, headers: Mapping[str, str], body: bytes) -> tuple[str, int]:
        names = (f"{self._prefix}-id", f"{self._prefix}-timestamp", f"{self._prefix}-signature")
        webhook_id, raw_timestamp, signatures = _headers(headers, names)
        if len(webhook_id) > MAX_ID_LENGTH or not webhook_id.isprintable():
            raise WebhookVerificationError("malformed", f"{names[0]} is malformed")
        if not raw_timestamp.isascii() or not raw_timestamp.isdigit() or len(raw_timestamp) > 12:
            raise WebhookVerificationError("malformed", f"{names[1]} is not a number of seconds")
        timestamp = int(raw_timestamp)
        if abs(self._clock() - timestamp) > self._tolerance:
            raise WebhookVerificationError("timestamp", "the timestamp is outside the window")
        if len(body) > MAX_BODY_BYTES:
            raise WebhookVerificationError("payload", "the body is too large")
        candidates = _v1_signatures(signatures)
        signed = f"{webhook_id}.{raw_timestamp}.".encode() + body
        expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in self._keys]
        # Every pair is compared, in constant time each, whatever matched first.
        matched = [hmac.compare_digest(c, e) for c in candidates for e in expected]
        if not any(matched):
            raise WebhookVerificationError("signature", "no signature matches")
        return webhook_id, timestamp

    async def _first_delivery(self, webhook_id: str) -> None:
        if self._store is None:
            return
        # Kept for twice the tolerance: a delivery stays acceptable for at most that long.
        fresh = await self._store.add(self._replay_key(webhook_id), b"1", 2 * self._tolerance)
        if not fresh:
            raise WebhookVerificationError("replayed", "this delivery was already accepted")

    def _replay_key(self, webhook_id: str) -> str:
        digest = hashlib.sha256(webhook_id.encode()).hexdigest()[:40]
        return f"rpkit:scalekit:{self._prefix}:{digest}"


def _headers(headers: Mapping[str, str], names: tuple[str, ...]) -> list[str]:
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in names:
            if lowered in found and found[lowered] != value:
                raise WebhookVerificationError("malformed", f"{lowered} appears twice")
            found[lowered] = value
    missing = [name for name in names if not found.get(name, "").strip()]
    if missing:
        raise WebhookVerificationError("missing_header", f"missing headers {missing}")
    return [found[name].strip() for name in names]


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` entries; other versions are skipped undecoded, malformed ``v1``
    entries are dropped. None usable is ``malformed``."""
    entries = header.split()
    if len(entries) > MAX_SIGNATURE_ENTRIES:
        raise WebhookVerificationError("malformed", "too many signature entries")
    decoded = []
    for entry in entries:
        version, comma, value = entry.partition(",")
        if version != "v1" or not comma:
            continue
        try:
            decoded.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            continue
    if not decoded:
        raise WebhookVerificationError("malformed", "no well-formed v1 signature entry")
    return decoded


def _event(body: bytes, webhook_id: str, timestamp: int) -> WebhookEvent:
    try:
        envelope = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise WebhookVerificationError("payload", "the body is not JSON") from exc
    if type(envelope) is not dict or not isinstance(envelope.get("type"), str):
        raise WebhookVerificationError("payload", "the body is not an event with a type")
    data = envelope.get("data", {})
    if type(data) is not dict:
        raise WebhookVerificationError("payload", "the event's data is not an object")

    def text(name: str) -> str | None:
        value = envelope.get(name)
        return value if isinstance(value, str) else None

    return WebhookEvent(
        type=envelope["type"],
        id=text("id") or webhook_id,
        data=frozen_mapping(data),
        webhook_id=webhook_id,
        timestamp=timestamp,
        organization_id=text("organization_id"),
        environment_id=text("environment_id"),
        occurred_at=text("occurred_at"),
        raw=frozen_mapping(envelope),
    )


def typed_event(event: WebhookEvent) -> DirectoryEvent | None:
    """The typed payload of a verified directory event and the Litestar event id to emit it
    under (:data:`~rpkit_scalekit.directory_events.DIRECTORY_EVENTS`); None for every other
    type, which keeps its generic ``rpkit.scalekit.webhook`` event only.

    Raises:
        WebhookVerificationError: ``payload``: a directory event whose ``data`` does not have
            the documented shape; act on nothing of it.
    """
    return directory_event(event.type, event.data)
