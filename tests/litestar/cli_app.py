"""An app for the CLI tests: rpkit's plugin wired to fake OPs in-process.

``fake`` is right; ``broken``'s discovery names another issuer; ``wrongsecret`` holds a client
secret its OP does not know; ``unregistered`` has a redirect URI its OP never registered.
"""

from __future__ import annotations

from litestar import Litestar

from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import FakeClient, FakeOP

BASE = "https://app.rpkit.test"

op = FakeOP()
op.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/fake",)))
broken = FakeOP("https://broken.rpkit.test")
broken.misbehave.metadata = {"issuer": "https://elsewhere.rpkit.test"}
wrong_secret = FakeOP("https://wrongsecret.rpkit.test")
wrong_secret.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/wrongsecret",)))
unregistered = FakeOP("https://unregistered.rpkit.test")  # knows only the default redirect URI

plugin = RPKitPlugin(
    RPKitConfig(
        providers=[
            op.provider_config(),
            broken.provider_config("broken"),
            wrong_secret.provider_config("wrongsecret", client_secret="not-the-registered-one"),
            unregistered.provider_config("unregistered"),
        ],
        secret="cli-test-secret-" + "x" * 32,
        base_url=BASE,
    ),
    http_transport=op.transport(broken, wrong_secret, unregistered),
)
app = Litestar(plugins=[plugin])
