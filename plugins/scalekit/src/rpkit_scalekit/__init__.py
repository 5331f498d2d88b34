"""Scalekit provider plugin for rpkit.

Registered through the ``rpkit.providers`` entry point. The plugin object is the single value
rpkit loads; everything Scalekit-specific hangs off it:

* :func:`~rpkit_scalekit.provider.scalekit` — the provider preset (a ``ProviderConfig``), with
  :class:`~rpkit_scalekit.provider.ScalekitDiscoveryCache` for environments without discovery
  and :func:`~rpkit_scalekit.provider.resource_token_policy` for resource access tokens;
* :class:`~rpkit_scalekit.environment.ScalekitEnvironment` — the clients of one environment:
  management API, ``login_hint`` routing, passwordless with its local limiter, IdP-initiated
  login, webhooks.
* :mod:`~rpkit_scalekit.identity` — one identity key per person across hosted and headless
  sign-in, and the organization fields (``oid``, ``xoid``, ``xuid``);
* :class:`~rpkit_scalekit.directory.DirectoryClient` and
  :mod:`~rpkit_scalekit.directory_events` — the Directory (SCIM) API and its typed webhook
  events; :func:`~rpkit_scalekit.organizations.switch_organization_params` — organization
  switching.

Example:
    >>> from rpkit_scalekit import plugin
    >>> config = plugin.provider("https://acme.scalekit.com", "skc_1", "s3cret")
    >>> config.issuer
    'https://acme.scalekit.com'
"""

from __future__ import annotations

from rpkit.plugins import ProviderPlugin
from rpkit_scalekit.directory import (
    Directory,
    DirectoryClient,
    DirectoryGroup,
    DirectoryPage,
    DirectoryResponseError,
    DirectoryUser,
)
from rpkit_scalekit.directory_events import (
    DIRECTORY_EVENTS,
    DirectoryEvent,
    DirectoryGroupEvent,
    DirectoryToggled,
    DirectoryUserDeleted,
    DirectoryUserEvent,
)
from rpkit_scalekit.environment import ScalekitEnvironment
from rpkit_scalekit.errors import (
    IdPInitiatedLoginError,
    InvalidEmailError,
    PasswordlessAttemptsExhaustedError,
    PasswordlessCredentialError,
    PasswordlessCredentialFormatError,
    PasswordlessEmailContentError,
    PasswordlessExpiredError,
    PasswordlessInvalidCredentialError,
    PasswordlessNoLoginError,
    PasswordlessOtherBrowserError,
    PasswordlessRateLimitedError,
    PasswordlessUsedError,
    ScalekitAPIError,
    ScalekitAuthError,
    ScalekitError,
    ScalekitInputError,
    ScalekitNotFoundError,
    ScalekitRateLimitedError,
    ScalekitUnavailableError,
    WebhookVerificationError,
)
from rpkit_scalekit.identity import ScalekitIdentity, email_key, identity_key, scalekit_user_id
from rpkit_scalekit.idp_initiated import IdPInitiatedLogin, IdPInitiatedVerifier
from rpkit_scalekit.limiter import PasswordlessLimiter, PasswordlessLimits
from rpkit_scalekit.management import Connection, ManagementClient
from rpkit_scalekit.organizations import check_organization_id, switch_organization_params
from rpkit_scalekit.passwordless import (
    PasswordlessClient,
    PasswordlessEmail,
    SendResult,
    VerifyResult,
)
from rpkit_scalekit.provider import ScalekitDiscoveryCache, resource_token_policy, scalekit
from rpkit_scalekit.routing import LoginRoute, LoginRouter, RouteRequest
from rpkit_scalekit.webhooks import WebhookEvent, WebhookVerifier

__all__ = [
    "DIRECTORY_EVENTS",
    "Connection",
    "Directory",
    "DirectoryClient",
    "DirectoryEvent",
    "DirectoryGroup",
    "DirectoryGroupEvent",
    "DirectoryPage",
    "DirectoryResponseError",
    "DirectoryToggled",
    "DirectoryUser",
    "DirectoryUserDeleted",
    "DirectoryUserEvent",
    "IdPInitiatedLogin",
    "IdPInitiatedLoginError",
    "IdPInitiatedVerifier",
    "InvalidEmailError",
    "LoginRoute",
    "LoginRouter",
    "ManagementClient",
    "PasswordlessAttemptsExhaustedError",
    "PasswordlessClient",
    "PasswordlessCredentialError",
    "PasswordlessCredentialFormatError",
    "PasswordlessEmail",
    "PasswordlessEmailContentError",
    "PasswordlessExpiredError",
    "PasswordlessInvalidCredentialError",
    "PasswordlessLimiter",
    "PasswordlessLimits",
    "PasswordlessNoLoginError",
    "PasswordlessOtherBrowserError",
    "PasswordlessRateLimitedError",
    "PasswordlessUsedError",
    "RouteRequest",
    "ScalekitAPIError",
    "ScalekitAuthError",
    "ScalekitDiscoveryCache",
    "ScalekitEnvironment",
    "ScalekitError",
    "ScalekitIdentity",
    "ScalekitInputError",
    "ScalekitNotFoundError",
    "ScalekitPlugin",
    "ScalekitRateLimitedError",
    "ScalekitUnavailableError",
    "SendResult",
    "VerifyResult",
    "WebhookEvent",
    "WebhookVerificationError",
    "WebhookVerifier",
    "check_organization_id",
    "email_key",
    "identity_key",
    "plugin",
    "resource_token_policy",
    "scalekit",
    "scalekit_user_id",
    "switch_organization_params",
]


class ScalekitPlugin:
    """The Scalekit plugin as rpkit sees it through the ``rpkit.providers`` entry point."""

    name = "scalekit"
    """Identifier used in configuration and logs."""

    provider = staticmethod(scalekit)
    """:func:`~rpkit_scalekit.provider.scalekit`: the provider configuration of one environment."""
    discovery = ScalekitDiscoveryCache
    """:class:`~rpkit_scalekit.provider.ScalekitDiscoveryCache`: discovery with the documented
    endpoints as fallback; pass it to ``RelyingParty(discovery=...)``."""
    environment = ScalekitEnvironment
    """:class:`~rpkit_scalekit.environment.ScalekitEnvironment`: the clients of one environment."""
    resource_token_policy = staticmethod(resource_token_policy)
    """:func:`~rpkit_scalekit.provider.resource_token_policy`: resource access tokens."""
    webhook_verifier = WebhookVerifier
    """:class:`~rpkit_scalekit.webhooks.WebhookVerifier`: Standard Webhooks v1 deliveries."""


plugin: ProviderPlugin = ScalekitPlugin()
"""The object the ``rpkit.providers`` entry point names."""
