"""The plugin object: what ``rpkit.providers`` loads exposes the preset and the clients, and
building them performs no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from rpkit.config import ProviderConfig
from rpkit.jwks import JWKSCache
from rpkit.plugins import provider_plugins
from rpkit_scalekit import (
    ScalekitDiscoveryCache,
    ScalekitEnvironment,
    ScalekitPlugin,
    WebhookVerificationError,
    WebhookVerifier,
)

from .conftest import CLIENT_ID, CLIENT_SECRET, ENV


def test_the_entry_point_plugin_builds_the_provider_preset():
    plugin = provider_plugins()["scalekit"]
    assert isinstance(plugin, ScalekitPlugin)

    config = plugin.provider(ENV, CLIENT_ID, CLIENT_SECRET, offline_access=True)

    assert isinstance(config, ProviderConfig)
    assert config.issuer == ENV
    assert "offline_access" in config.scopes


async def test_building_the_environment_and_discovery_sends_nothing(http, store, mock):
    plugin = ScalekitPlugin()
    config = plugin.provider(ENV, CLIENT_ID, CLIENT_SECRET)

    environment = plugin.environment(config, http=http, store=store, jwks=JWKSCache(http))
    discovery = plugin.discovery(http, fallback_for=[config])

    assert isinstance(environment, ScalekitEnvironment)
    assert isinstance(discovery, ScalekitDiscoveryCache)
    assert environment.api.env_url == ENV
    assert CLIENT_SECRET not in repr(environment)
    assert len(mock.calls) == 0


async def test_the_environment_webhook_verifier_keeps_its_replay_cache_in_the_store(
    http, store, clock
):
    config = ScalekitPlugin.provider(ENV, CLIENT_ID, CLIENT_SECRET)
    environment = ScalekitEnvironment(
        config, http=http, store=store, jwks=JWKSCache(http), clock=clock
    )
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"type": "user.login", "id": "evt_1", "data": {}}'
    stamp = str(int(clock.now))
    mac = hmac.new(key, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }

    await environment.webhooks(secret).verify(headers, body)
    with pytest.raises(WebhookVerificationError) as caught:
        await WebhookVerifier(secret, store=store, clock=clock).verify(headers, body)

    assert caught.value.reason == "replayed"
