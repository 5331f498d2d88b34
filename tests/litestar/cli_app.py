"""An app for the CLI tests: rpkit's plugin wired to a fake OP in-process."""

from __future__ import annotations

from litestar import Litestar

from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.testing import FakeClient, FakeOP

BASE = "https://app.rpkit.test"

op = FakeOP()
op.register_client(FakeClient(redirect_uris=(f"{BASE}/auth/callback/fake",)))
broken = FakeOP("https://broken.rpkit.test")
broken.misbehave.metadata = {"issuer": "https://elsewhere.rpkit.test"}

plugin = RPKitPlugin(
    RPKitConfig(
        providers=[op.provider_config(), broken.provider_config("broken")],
        secret="cli-test-secret-" + "x" * 32,
        base_url=BASE,
    ),
    http_transport=op.transport(broken),
)
app = Litestar(plugins=[plugin])
