"""What the demo's fake providers keep in Redis, next to the sessions, so that a restart with
``RPKIT_DEMO_REDIS_URL`` leaves the sessions usable: each fake's private signing keys (tokens
issued before the restart still verify, logout's ``id_token_hint`` is still recognised) and the
ports of the presets' fakes (their issuers, which the sessions name, stay the same).

The keys are the fakes' own, made up by the demo: keeping them in the demo's Redis is fine. A
real provider's keys never pass through here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import redis

from rpkit.testing import KeyRing

__all__ = ["REDIS_KEY", "FakeState", "StateError"]

REDIS_KEY = "rpkit-demo:fake-providers"
"""One JSON document: ``{"keys": {provider id: KeyRing export}, "ports": {provider id: port}}``."""


class StateError(Exception):
    """Redis cannot be reached or holds something else under :data:`REDIS_KEY`."""


class FakeState:
    """The saved state, read once at start and written back once the fakes exist."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._client = redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
        self.saved = self._read()

    def _read(self) -> dict[str, Any]:
        try:
            raw = self._client.get(REDIS_KEY)
        except redis.RedisError as exc:
            msg = f"cannot reach Redis at {self.redis_url}: {exc}"
            raise StateError(msg) from None
        if raw is None:
            return {"keys": {}, "ports": {}}
        try:
            saved = json.loads(raw)
        except ValueError:
            saved = None
        if not isinstance(saved, dict):
            msg = f"Redis key {REDIS_KEY!r} holds something else: delete it to start afresh"
            raise StateError(msg)
        return saved

    def port(self, provider_id: str) -> int:
        """The port a preset's fake had last time; 0 (any free one) when unknown."""
        port = self.saved.get("ports", {}).get(provider_id, 0)
        return port if isinstance(port, int) else 0

    def restore_keys(self, provider_id: str, keys: KeyRing) -> bool:
        """Give ``keys`` the saved keys of ``provider_id``; False when none (or unusable) were
        saved, and ``keys`` stay fresh."""
        saved = self.saved.get("keys", {}).get(provider_id)
        if saved is None:
            return False
        try:
            keys.restore(saved)
        except ValueError:
            return False
        return True

    def save(self, fakes: Iterable[tuple[str, KeyRing, int | None]]) -> None:
        """Write ``(provider id, keys, port)`` of every fake; a port of None is not kept."""
        document: dict[str, Any] = {"keys": {}, "ports": {}}
        for provider_id, keys, port in fakes:
            document["keys"][provider_id] = keys.export()
            if port is not None:
                document["ports"][provider_id] = port
        try:
            self._client.set(REDIS_KEY, json.dumps(document))
        except redis.RedisError as exc:
            msg = f"cannot write to Redis at {self.redis_url}: {exc}"
            raise StateError(msg) from None
