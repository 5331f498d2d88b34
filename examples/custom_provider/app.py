"""A Litestar app signing in with the Acme ID provider plugin.

The plugin is found through the ``rpkit.providers`` entry point once ``rpkit-example-provider``
is installed (``pip install -e examples/custom_provider``); uninstalled, this script imports it
from ``src/`` so it runs straight from a checkout.

Run ``python examples/custom_provider/app.py``: a fake OP plays the Acme ID tenant on 127.0.0.1.
"""

from __future__ import annotations

import html
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.response import Response

from rpkit.client import Identity
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.plugins import ProviderPlugin, provider_plugins

__all__ = ["acme_plugin", "create_app", "main"]


def acme_plugin() -> Any:
    """The installed ``acme_id`` plugin, else the one in this folder's ``src/``."""
    installed: dict[str, ProviderPlugin] = provider_plugins()
    if "acme_id" in installed:
        return installed["acme_id"]
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from rpkit_example_provider import plugin  # noqa: PLC0415 - the uninstalled fallback

    return plugin


def create_app(
    tenant_url: str,
    client_id: str,
    client_secret: str,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> Litestar:
    """An app whose only provider is one Acme ID tenant."""
    provider = acme_plugin().provider(tenant_url, client_id, client_secret)
    config = RPKitConfig(
        providers=[provider],
        secret=secrets.token_urlsafe(32),
        insecure_cookies_for_development=True,
    )

    @get("/")
    async def home(rpkit_user: NamedDependency[Identity | None]) -> Response[str]:
        if rpkit_user is None:
            body = '<a id="login" href="/auth/login/acme_id">Sign in with Acme ID</a>'
        else:
            who = f"{rpkit_user.subject} at {rpkit_user.issuer}"
            body = f'<p id="who">{html.escape(who)}</p>'
        return Response(f"<!doctype html><h1>Acme ID example</h1>{body}", media_type="text/html")

    return Litestar([home], plugins=[RPKitPlugin(config, http_transport=http_transport)])


def main() -> None:
    """Serve a fake Acme ID tenant and the app on 127.0.0.1 until Ctrl-C."""
    from rpkit.testing import FakeClient, FakeOP  # noqa: PLC0415 - development only
    from rpkit.testing.server import (  # noqa: PLC0415
        ServerThread,
        bind_loopback,
        serve_until_interrupted,
    )

    app_sock, op_sock = bind_loopback(0), bind_loopback(0)
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    client = FakeClient(
        client_id="acme-app",
        client_secret="acme-secret",  # noqa: S106 - the fake tenant's
        redirect_uris=(f"{app_url}/auth/callback/acme_id",),
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
    )
    op = FakeOP(f"http://127.0.0.1:{op_sock.getsockname()[1]}", clients=[client])
    servers = [
        ServerThread(op.asgi, op_sock),
        ServerThread(create_app(op.issuer, "acme-app", "acme-secret"), app_sock),
    ]
    for server in servers:
        server.start()
    print(f"custom_provider example: {app_url}/ (Ctrl-C stops it)", flush=True)
    serve_until_interrupted(servers)


if __name__ == "__main__":
    main()
