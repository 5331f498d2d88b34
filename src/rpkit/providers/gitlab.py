"""GitLab (gitlab.com, GitLab Self-Managed and Dedicated) as an OpenID Provider: the instance
URL is the issuer, refresh tokens come with every code exchange and rotate, profile claims are
read from UserInfo, and logout is local (GitLab publishes no end-session endpoint).

Example:
    >>> from rpkit.providers.gitlab import gitlab
    >>> gitlab("app-id", "s3cret", base_url="https://gitlab.example.com").issuer
    'https://gitlab.example.com'
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError
from rpkit.hooks import ProviderHooks
from rpkit.providers._mapping import ClaimsMapper
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = ["GITLAB_COM", "INFO", "gitlab"]

GITLAB_COM = "https://gitlab.com"
"""gitlab.com's issuer; a self-managed instance's is its own URL."""
_OIDC_DOCS = "https://docs.gitlab.com/integration/openid_connect_provider"
_OAUTH_DOCS = "https://docs.gitlab.com/api/oauth2/"

INFO = PresetInfo(
    name="gitlab",
    title="GitLab",
    kind="oidc",
    refresh="always (no offline_access scope); each refresh rotates the refresh token",
    logout=("local",),
    bearer=False,
    quirks=(
        Quirk(
            what="The issuer is the instance URL (https://gitlab.com, or base_url for a "
            "self-managed instance); a token of another instance is refused.",
            source=_OIDC_DOCS,
        ),
        Quirk(
            what="Refresh tokens come with every code exchange, without offline_access; a "
            "refresh invalidates the old access and refresh tokens, and rpkit keeps the new ones.",
            source=_OAUTH_DOCS,
        ),
        Quirk(
            what="The token response says token_type 'bearer' in lower case; rpkit compares it "
            "case-insensitively.",
            source=_OAUTH_DOCS,
        ),
        Quirk(
            what="The ID token carries sub, email, email_verified and groups_direct only; name "
            "and the other profile claims come from UserInfo, which the preset merges (ID token "
            "first, same sub).",
            source=_OIDC_DOCS,
        ),
        Quirk(
            what="sub is the numeric user id as a string (sub_legacy is deprecated): the subject.",
            source=_OIDC_DOCS,
        ),
        Quirk(
            what="The discovery document has no end_session_endpoint: logout is local only.",
            source="https://github.com/torbenraab/plane/issues/28",
        ),
        Quirk(
            what="Access tokens are opaque (Doorkeeper), so the preset offers no bearer policy.",
            source=_OAUTH_DOCS,
        ),
    ),
)


def gitlab(
    client_id: str,
    client_secret: str,
    *,
    base_url: str = GITLAB_COM,
    **changes: Any,
) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for one GitLab instance.

    Args:
        client_id: the application id (``/user_settings/applications`` or an instance-wide
            application); it must have the ``openid`` scope.
        client_secret: the application secret.
        base_url: the instance URL, exactly as GitLab's discovery document states its issuer:
            ``https://gitlab.com`` (default) or e.g. ``https://gitlab.example.com`` (a path for
            a relative-URL install), with no trailing slash.
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last.

    Raises:
        ConfigurationError: ``base_url`` has a trailing slash, a query or a fragment (the issuer
            is compared exactly, so such a URL would never match).
    """
    parts = urlsplit(base_url)
    if base_url.endswith("/") or parts.query or parts.fragment or not parts.netloc:
        msg = (
            f"gitlab: base_url {base_url!r} must be the instance URL without a trailing "
            "slash, query or fragment, e.g. https://gitlab.example.com"
        )
        raise ConfigurationError(msg)
    settings: dict[str, Any] = {
        "id": "gitlab",
        "issuer": base_url,
        "client_id": client_id,
        "client_secret": client_secret,
        "scopes": ("openid", "profile", "email"),
        "hooks": ProviderHooks(identity=ClaimsMapper()),
    }
    return build(settings, changes)
