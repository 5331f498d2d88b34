"""Google as an OpenID Provider: refresh through ``access_type=offline``, the Workspace
hosted-domain restriction as a check on the ID token's ``hd`` (not only a hint), and local
logout (Google publishes no end-session endpoint).

Example:
    >>> from rpkit.providers.google import google
    >>> config = google("123.apps.googleusercontent.com", "s3cret", hosted_domain="example.com")
    >>> config.extra_authorization_params["hd"]
    'example.com'
"""

from __future__ import annotations

import re
from typing import Any

from rpkit.config import DEFAULT_AUTHORIZATION_PARAMS, ProviderConfig
from rpkit.errors import ConfigurationError, IdentityRefusedError
from rpkit.hooks import IdentityFields, IdentitySource, ProviderHooks
from rpkit.providers._mapping import ClaimsMapper
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = ["GOOGLE_ISSUER", "INFO", "GoogleIdentity", "google"]

GOOGLE_ISSUER = "https://accounts.google.com"
"""Google's issuer. Its reference also names ``accounts.google.com`` (no scheme) for legacy
implementations; rpkit compares issuers exactly, so a token carrying that form is refused."""
_REFERENCE = "https://developers.google.com/identity/openid-connect/reference"
_NEXT_AUTH = "nextauthjs/next-auth packages/core/src/providers/google.ts"
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")

INFO = PresetInfo(
    name="google",
    title="Google",
    kind="oidc",
    refresh="access_type=offline with prompt=consent (Google does not rotate refresh tokens)",
    logout=("local",),
    bearer=False,
    quirks=(
        Quirk(
            what="Refresh tokens come only with access_type=offline, and only at the first "
            "consent unless prompt=consent is sent: the preset sends both (offline=False drops "
            "them).",
            source=_NEXT_AUTH,
        ),
        Quirk(
            what="hd is only a hint for the account chooser; the preset refuses an ID token "
            "whose hd claim is not the configured hosted_domain (identity_refused, no session).",
            source="https://github.com/oauth2-proxy/oauth2-proxy/issues/2363 (quotes "
            "developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken)",
        ),
        Quirk(
            what="The issuer is https://accounts.google.com; the legacy scheme-less "
            "'accounts.google.com' is refused, not accepted as an alias.",
            source=_REFERENCE,
        ),
        Quirk(
            what="The discovery document has no end_session_endpoint: logout is local only.",
            source=_REFERENCE,
        ),
        Quirk(
            what="Access tokens are opaque (ya29.…), so the preset offers no bearer policy.",
            source="https://developers.google.com/identity/protocols/oauth2",
            confirmed=False,
        ),
    ),
)


class GoogleIdentity(ClaimsMapper):
    """The standard claims (UserInfo merged under the ID token's), after Google's hosted-domain
    check: with ``hosted_domain`` set, the **ID token's** ``hd`` must equal it. UserInfo's ``hd``
    is never consulted, and a consumer account (no ``hd``) is refused.

    Args:
        hosted_domain: the Google Workspace domain users must belong to; None for any account.
    """

    def __init__(self, hosted_domain: str | None = None) -> None:
        super().__init__()
        self.hosted_domain = hosted_domain

    async def __call__(self, source: IdentitySource) -> IdentityFields:
        if self.hosted_domain is not None and source.claims.get("hd") != self.hosted_domain:
            msg = f"the Google account is not in the hosted domain {self.hosted_domain!r}"
            raise IdentityRefusedError(msg)
        return await super().__call__(source)


def google(
    client_id: str,
    client_secret: str,
    *,
    hosted_domain: str | None = None,
    offline: bool = True,
    **changes: Any,
) -> ProviderConfig:
    """A :class:`~rpkit.config.ProviderConfig` for Google.

    Args:
        client_id: the OAuth client id (``….apps.googleusercontent.com``).
        client_secret: the client secret from the Google Cloud console.
        hosted_domain: restrict sign-in to this Google Workspace domain: sent as the ``hd``
            hint and enforced on the ID token's ``hd`` claim. Lower case, no wildcard.
        offline: send ``access_type=offline`` and ``prompt=consent`` so every login gets a
            refresh token; the consent screen then shows at each login. False keeps sessions
            to the access token's hour.
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last.

    Raises:
        ConfigurationError: ``hosted_domain`` is not a lower-case domain name, or ``hooks``
            in ``changes`` would drop its check.
    """
    params = {"access_type": "offline", "prompt": "consent"} if offline else {}
    if hosted_domain is not None:
        if not _DOMAIN.fullmatch(hosted_domain):
            msg = f"google: hosted_domain {hosted_domain!r} must be a lower-case domain name"
            raise ConfigurationError(msg)
        params["hd"] = hosted_domain
    mapper = GoogleIdentity(hosted_domain)
    hooks = changes.get("hooks", ProviderHooks(identity=mapper))
    if hosted_domain is not None and not _checks_domain(hooks, hosted_domain):
        msg = "google: hooks= replaces the hosted-domain check; keep a GoogleIdentity in it"
        raise ConfigurationError(msg)
    settings: dict[str, Any] = {
        "id": "google",
        "issuer": GOOGLE_ISSUER,
        "client_id": client_id,
        "client_secret": client_secret,
        "scopes": ("openid", "email", "profile"),
        "allowed_authorization_params": DEFAULT_AUTHORIZATION_PARAMS | {"access_type", "hd"},
        "extra_authorization_params": params,
        "hooks": hooks,
    }
    return build(settings, changes)


def _checks_domain(hooks: ProviderHooks, hosted_domain: str) -> bool:
    mapper = hooks.identity
    return isinstance(mapper, GoogleIdentity) and mapper.hosted_domain == hosted_domain
