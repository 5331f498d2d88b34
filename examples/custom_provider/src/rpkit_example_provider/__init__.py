"""An example rpkit provider plugin: a preset for the (fictional) Acme ID service.

A provider is data plus a few hooks: :func:`acme_id` returns the
:class:`~rpkit.config.ProviderConfig` of one Acme ID tenant (what varies: issuer, scopes, the
authorization parameters Acme ID understands), and :data:`plugin` is the one object the
``rpkit.providers`` entry point names.

Example:
    >>> from rpkit_example_provider import plugin
    >>> config = plugin.provider("https://wonderland.acmeid.example", "app-1", "s3cret")
    >>> config.client_auth
    'client_secret_post'
"""

from __future__ import annotations

from rpkit.config import DEFAULT_AUTHORIZATION_PARAMS, ProviderConfig, is_loopback_http
from rpkit.plugins import ProviderPlugin

__all__ = ["ACME_ID_AUTHORIZATION_PARAMS", "AcmeIDPlugin", "acme_id", "plugin"]

ACME_ID_AUTHORIZATION_PARAMS = DEFAULT_AUTHORIZATION_PARAMS | {"tenant_hint"}
"""What a login may pass on to Acme ID: the standard hints plus its own ``tenant_hint``."""


def acme_id(
    tenant_url: str,
    client_id: str,
    client_secret: str,
    *,
    id: str = "acme_id",
    post_logout_redirect_uri: str | None = None,
) -> ProviderConfig:
    """The provider configuration of one Acme ID tenant.

    Args:
        tenant_url: the tenant's issuer (``https://<tenant>.acmeid.example``), compared exactly.
        client_id: the application's client id.
        client_secret: its secret; Acme ID authenticates clients with ``client_secret_post``.
        id: the provider id in routes, logs and sessions.
        post_logout_redirect_uri: where Acme ID returns after logout (registered there).
    """
    return ProviderConfig(
        id=id,
        issuer=tenant_url.removesuffix("/"),
        client_id=client_id,
        client_secret=client_secret,
        client_auth="client_secret_post",
        scopes=("openid", "profile", "email", "offline_access"),
        allowed_authorization_params=ACME_ID_AUTHORIZATION_PARAMS,
        post_logout_redirect_uri=post_logout_redirect_uri,
        # Only a local development tenant may be plain http; rpkit refuses http elsewhere.
        allow_insecure_http=is_loopback_http(tenant_url),
    )


class AcmeIDPlugin:
    """Acme ID as rpkit sees it through the ``rpkit.providers`` entry point."""

    name = "acme_id"
    """Equal to the entry-point name (rpkit checks)."""

    provider = staticmethod(acme_id)
    """:func:`acme_id`: the provider configuration of one tenant."""


plugin: ProviderPlugin = AcmeIDPlugin()
"""The object the ``rpkit.providers`` entry point names."""
