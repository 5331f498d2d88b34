"""LinkedIn ("Sign In with LinkedIn using OpenID Connect"): ID tokens without the ``nonce``,
accepted through the named relaxation ``accept_missing_nonce`` (a wrong nonce is still
refused); ``client_secret_post``; ``email_verified`` as the string ``"true"``; local logout.

Example:
    >>> from rpkit.providers.linkedin import linkedin
    >>> config = linkedin("78abc", "s3cret")
    >>> config.relaxations()
    ('accept_missing_nonce: ID tokens without a nonce are accepted',)
"""

from __future__ import annotations

from typing import Any

from rpkit.config import ProviderConfig
from rpkit.hooks import ProviderHooks
from rpkit.providers._mapping import ClaimsMapper
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = ["INFO", "LINKEDIN_ISSUER", "linkedin"]

LINKEDIN_ISSUER = "https://www.linkedin.com/oauth"
"""LinkedIn's issuer (discovery at ``{issuer}/.well-known/openid-configuration``); ID tokens
carry it too since April 2024 (before, they said ``https://www.linkedin.com``)."""
_DOCS = (
    "https://learn.microsoft.com/en-us/linkedin/consumer/integrations/self-serve/"
    "sign-in-with-linkedin-v2"
)
_SHARED = "https://learn.microsoft.com/en-us/linkedin/shared/authentication"

INFO = PresetInfo(
    name="linkedin",
    title="LinkedIn",
    kind="oidc",
    refresh="approved partners only (programmatic refresh tokens); access tokens live 60 days",
    logout=("local",),
    bearer=False,
    quirks=(
        Quirk(
            what="ID tokens carry no nonce: the preset sets accept_missing_nonce (logged at "
            "startup); the nonce is still sent and a wrong one still refused.",
            source="https://github.com/python-social-auth/social-core/pull/833",
        ),
        Quirk(
            what="The token endpoint wants the client secret in the form: client_secret_post.",
            source="nextauthjs/next-auth packages/core/src/providers/linkedin.ts",
        ),
        Quirk(
            what="The issuer is https://www.linkedin.com/oauth in discovery and in ID tokens; "
            "tokens with the pre-2024 https://www.linkedin.com are refused.",
            source="https://github.com/nextauthjs/next-auth/pull/10671",
        ),
        Quirk(
            what='ID tokens write email_verified as the string "true"; the preset reads it '
            "as verified (UserInfo sends a boolean).",
            source=_DOCS,
            confirmed=False,
        ),
        Quirk(
            what="The discovery document has no end_session_endpoint: logout is local only.",
            source="python-social-auth/social-core social_core/tests/backends/test_linkedin.py",
        ),
        Quirk(
            what="Refresh tokens only for approved Marketing Developer Platform partners; "
            "access tokens last 60 days, so sessions end with them.",
            source=f"{_SHARED}/programmatic-refresh-tokens",
        ),
        Quirk(
            what="PKCE is enabled per app by LinkedIn on request; rpkit always sends S256 PKCE, "
            "and a confidential web app without it was reported to refuse code_verifier.",
            source=f"{_SHARED}/authorization-code-flow-native",
            confirmed=False,
        ),
    ),
    relaxations=("accept_missing_nonce",),
)


def linkedin(client_id: str, client_secret: str, **changes: Any) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for LinkedIn's OpenID Connect product.

    Args:
        client_id: the app's client id (Developer Portal, "Auth" tab); the app needs the
            "Sign In with LinkedIn using OpenID Connect" product.
        client_secret: the app's primary client secret.
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last
            (``accept_missing_nonce=False`` would refuse every LinkedIn login).
    """
    settings: dict[str, Any] = {
        "id": "linkedin",
        "issuer": LINKEDIN_ISSUER,
        "client_id": client_id,
        "client_secret": client_secret,
        "client_auth": "client_secret_post",
        "scopes": ("openid", "profile", "email"),
        "accept_missing_nonce": True,
        "hooks": ProviderHooks(identity=ClaimsMapper(string_booleans=True)),
    }
    return build(settings, changes)
