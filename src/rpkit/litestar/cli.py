"""``litestar rpkit ...``: see each provider's discovery and key status, and check the setup.

``litestar rpkit providers`` lists the providers with their discovery and JWKS status;
``litestar rpkit check`` fetches discovery (which checks the issuer exactly) and checks every
redirect URI, and exits non-zero when something needs fixing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click
import httpx
from litestar import Litestar

from rpkit.client import RelyingParty
from rpkit.config import ProviderConfig, is_loopback_http
from rpkit.errors import RPKitError

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitPlugin

__all__ = ["ProviderStatus", "build_cli_group", "check_problems", "provider_statuses"]


@dataclass(frozen=True)
class ProviderStatus:
    """One provider as ``litestar rpkit providers`` shows it."""

    provider_id: str
    issuer: str
    discovery: str
    """``ok`` or the error code."""
    keys: int | None
    """How many usable signing keys the JWKS offers; None when it could not be fetched."""


async def provider_statuses(plugin: RPKitPlugin) -> list[ProviderStatus]:
    """Fetch each provider's discovery document and JWKS once."""
    async with _client(plugin) as http:
        rp = RelyingParty(plugin.config.providers, http=http)
        return [await _status(rp, config) for config in plugin.config.providers]


async def _status(rp: RelyingParty, config: ProviderConfig) -> ProviderStatus:
    try:
        metadata = await rp.metadata(config.id)
    except RPKitError as exc:
        return ProviderStatus(config.id, config.issuer, exc.code, None)
    try:
        await rp.jwks.warm(metadata.jwks_uri)
        keys = rp.jwks.usable_keys(metadata.jwks_uri)
    except RPKitError:
        keys = None
    return ProviderStatus(config.id, config.issuer, "ok", keys)


async def check_problems(plugin: RPKitPlugin, app: Litestar) -> list[str]:
    """Everything ``litestar rpkit check`` would complain about (empty when all is well)."""
    config = plugin.config
    problems = (
        [] if config.base_url else ["base_url is not set: redirect URIs follow the Host header"]
    )
    base = config.base_url or "https://app.invalid"
    for status in await provider_statuses(plugin):
        if status.discovery != "ok":
            problems.append(f"{status.provider_id}: discovery failed ({status.discovery})")
        elif not status.keys:
            problems.append(f"{status.provider_id}: the JWKS offers no usable signing key")
    for provider in config.providers:
        callback = base + app.route_reverse("rpkit:callback", provider_id=provider.id)
        problems += _uri_problems(provider.id, "redirect URI", callback, provider)
        if provider.post_logout_redirect_uri:
            problems += _uri_problems(
                provider.id, "post_logout_redirect_uri", provider.post_logout_redirect_uri, provider
            )
    return problems


def _uri_problems(provider_id: str, what: str, uri: str, provider: ProviderConfig) -> list[str]:
    parts = urlsplit(uri)
    if parts.fragment:
        return [f"{provider_id}: {what} {uri} has a fragment"]
    if parts.scheme == "https" or (provider.allow_insecure_http and is_loopback_http(uri)):
        return []
    return [
        f"{provider_id}: {what} {uri} must use https (loopback http only with allow_insecure_http)"
    ]


def _client(plugin: RPKitPlugin) -> httpx.AsyncClient:
    timeout = httpx.Timeout(plugin.config.http_timeout)
    return httpx.AsyncClient(timeout=timeout, transport=plugin.http_transport)


def build_cli_group(plugin_type: type[RPKitPlugin]) -> click.Group:
    """The ``rpkit`` command group; commands find the app's plugin by type."""
    from litestar.cli._utils import LitestarGroup  # noqa: PLC0415 - private, CLI-only import

    @click.group(cls=LitestarGroup, name="rpkit")
    def rpkit() -> None:
        """rpkit: identity providers and sign-in setup."""

    @rpkit.command(name="providers")  # type: ignore[untyped-decorator]
    def providers(app: Litestar) -> None:
        """List providers with their discovery and JWKS status."""
        for status in asyncio.run(provider_statuses(app.plugins.get(plugin_type))):
            keys = "-" if status.keys is None else str(status.keys)
            click.echo(
                f"{status.provider_id}\t{status.issuer}\tdiscovery={status.discovery}\tkeys={keys}"
            )

    @rpkit.command(name="check")  # type: ignore[untyped-decorator]
    def check(app: Litestar) -> None:
        """Fetch discovery, check the issuer and the redirect URIs; exit 1 on any problem."""
        problems = asyncio.run(check_problems(app.plugins.get(plugin_type), app))
        for problem in problems:
            click.echo(f"problem: {problem}", err=True)
        if problems:
            raise SystemExit(1)
        click.echo("rpkit: configuration looks right")

    return rpkit
