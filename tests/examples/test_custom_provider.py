"""examples/custom_provider: the plugin object satisfies rpkit's ProviderPlugin protocol under
its entry-point name, and its preset signs in against a fake OP (without installing it)."""

from __future__ import annotations

import re
import tomllib

from litestar.testing import AsyncTestClient

from rpkit.plugins import ENTRY_POINT_GROUP, ProviderPlugin
from rpkit.testing import FakeClient, FakeOP
from tests.examples.conftest import APP_URL, EXAMPLES, load_example, sign_in

PACKAGE = EXAMPLES / "custom_provider"
provider_module = load_example("custom_provider/src/rpkit_example_provider/__init__.py")
example = load_example("custom_provider/app.py")


def test_the_entry_point_names_a_provider_plugin_with_its_name():
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"][ENTRY_POINT_GROUP]

    assert project["project"]["name"] == "rpkit-example-provider"
    assert entry_points == {"acme_id": "rpkit_example_provider:plugin"}
    assert isinstance(provider_module.plugin, ProviderPlugin)
    assert provider_module.plugin.name == "acme_id"


def test_the_preset_is_frozen_provider_data_with_acme_ids_parameters():
    config = provider_module.plugin.provider("https://w.acmeid.example/", "app-1", "s3cret")

    assert config.issuer == "https://w.acmeid.example"
    assert config.client_auth == "client_secret_post"
    assert "tenant_hint" in config.allowed_authorization_params
    assert config.allow_insecure_http is False


async def test_the_app_signs_in_with_the_preset_against_a_fake_tenant():
    client = FakeClient(
        client_id="acme-app",
        client_secret="acme-secret",
        redirect_uris=(f"{APP_URL}/auth/callback/acme_id",),
        token_endpoint_auth_method="client_secret_post",
    )
    op = FakeOP("https://tenant.acmeid.example", clients=[client])
    app = example.create_app(op.issuer, "acme-app", "acme-secret", http_transport=op.transport())
    async with AsyncTestClient(app, base_url=APP_URL) as browser:
        await sign_in(browser, op, "/auth/login/acme_id")
        home = await browser.get("/")

    assert re.search(r'id="who">\S+ at https://tenant.acmeid.example<', home.text)
