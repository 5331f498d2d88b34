"""GitHub and GitHub Enterprise Server: an OAuth 2.0-only provider, whose identity is the
profile at ``GET /user`` and, for the email, the verified primary address at
``GET /user/emails``.

:func:`github` returns the configuration; :class:`GitHubIdentity` maps the profile to an
identity. Each quirk and its source is in :data:`INFO`.

Example:
    >>> from rpkit.providers.github import github
    >>> config = github(client_id="Ov23li...", client_secret="s3cret")
    >>> config.endpoints.profile_endpoint
    'https://api.github.com/user'
    >>> github(client_id="a", client_secret="b", base_url="https://ghe.example").endpoints.profile_endpoint
    'https://ghe.example/api/v3/user'
"""

from __future__ import annotations

from typing import Any

from rpkit.config import Endpoints, ProviderConfig
from rpkit.errors import IdentityRefusedError
from rpkit.hooks import IdentityFields, IdentitySource, ProviderHooks
from rpkit.providers._mapping import claim_text
from rpkit.providers._preset import PresetInfo, Quirk, build

__all__ = ["GITHUB_API_URL", "GITHUB_URL", "INFO", "GitHubIdentity", "github"]

GITHUB_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"
"""github.com's REST API; a GitHub Enterprise Server's is ``{base_url}/api/v3``."""


class GitHubIdentity:
    """An :class:`~rpkit.hooks.IdentityMapper` for GitHub's ``/user`` profile.

    The subject is the numeric ``id`` (a ``login`` can be renamed and then taken by someone
    else); the name is ``name``, else ``login``; the email is the primary address of
    ``/user/emails`` only when GitHub marks it verified (the profile's ``email`` is whatever
    the user made public).

    Args:
        emails_url: ``{api}/user/emails``, on the profile endpoint's origin; None reads no
            email (for apps without the ``user:email`` scope or the email permission).
    """

    def __init__(self, emails_url: str | None) -> None:
        self.emails_url = emails_url

    async def __call__(self, source: IdentitySource) -> IdentityFields:
        user_id = source.claims.get("id")
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id <= 0:
            raise IdentityRefusedError("the GitHub profile has no numeric id")
        email = None
        if self.emails_url is not None:
            email = _verified_primary(await source.fetch_json(self.emails_url))
        return IdentityFields(
            subject=str(user_id),
            email=email,
            email_verified=email is not None,
            name=claim_text(source.claims, "name") or claim_text(source.claims, "login"),
        )


def _verified_primary(emails: Any) -> str | None:
    """The address GitHub lists as primary and verified, else None."""
    for entry in emails if isinstance(emails, list) else []:
        if isinstance(entry, dict) and entry.get("primary") is True:
            address = entry.get("email")
            verified = entry.get("verified") is True
            return address if verified and isinstance(address, str) and address else None
    return None


def github(
    *,
    client_id: str,
    client_secret: str,
    base_url: str = GITHUB_URL,
    api_url: str | None = None,
    emails: bool = True,
    **changes: Any,
) -> ProviderConfig:
    """GitHub (an OAuth app, or a GitHub App signing users in) on github.com or a GitHub
    Enterprise Server.

    Args:
        client_id: the app's client id.
        client_secret: the app's client secret.
        base_url: ``https://github.com``, or the GitHub Enterprise Server's
            (``https://ghe.example``): the issuer, and where ``/login/oauth/...`` lives.
        api_url: the REST API's base; ``https://api.github.com`` for github.com and
            ``{base_url}/api/v3`` for an Enterprise Server when None. Change this rather than
            ``endpoints``, so that ``/user/emails`` follows the profile endpoint.
        emails: read the verified primary email from ``/user/emails`` (needs ``user:email``).
        **changes: any :class:`~rpkit.config.ProviderConfig` field, applied last.

    Raises:
        ConfigurationError: a URL that is not https (loopback http needs
            ``allow_insecure_http=True``), or any other invalid field.
    """
    base = base_url.rstrip("/")
    api = (api_url or (GITHUB_API_URL if base == GITHUB_URL else f"{base}/api/v3")).rstrip("/")
    settings: dict[str, Any] = {
        "id": "github",
        "kind": "oauth2",
        "issuer": base,
        "client_id": client_id,
        "client_secret": client_secret,
        "client_auth": "client_secret_post",
        "scopes": ("read:user", "user:email") if emails else ("read:user",),
        "allowed_authorization_params": frozenset({"login", "prompt", "allow_signup"}),
        "endpoints": Endpoints(
            authorization_endpoint=f"{base}/login/oauth/authorize",
            token_endpoint=f"{base}/login/oauth/access_token",
            profile_endpoint=f"{api}/user",
        ),
        "hooks": ProviderHooks(identity=GitHubIdentity(f"{api}/user/emails" if emails else None)),
    }
    return build(settings, changes)


_AUTHORIZING = "github/docs content/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps.md"
INFO = PresetInfo(
    name="github",
    title="GitHub",
    kind="oauth2",
    refresh="no for OAuth apps; GitHub Apps with expiring user tokens: 8 h tokens and a rotating "
    "refresh token, refreshed as usual",
    logout=("local",),
    bearer=False,
    quirks=(
        Quirk(
            what="OAuth 2.0 only: no discovery and no ID token; the identity is GET /user",
            source=_AUTHORIZING,
        ),
        Quirk(
            what="the subject is the numeric id; a profile without an integer id is refused "
            "(logins are renamed and reused, emails change hands)",
            source="nextauthjs/next-auth packages/core/src/providers/github.ts",
        ),
        Quirk(
            what="the email is the primary address of GET /user/emails when verified; /user's "
            "email is only the public one, often null",
            source="https://docs.github.com/en/rest/users/emails",
        ),
        Quirk(
            what="Enterprise Server: /login/oauth/... on its host, the API under /api/v3",
            source="https://docs.github.com/en/enterprise-server@3.10/rest/enterprise-admin",
        ),
        Quirk(
            what="scopes read:user user:email, sent space-separated",
            source="nextauthjs/next-auth packages/core/src/providers/github.ts",
        ),
        Quirk(
            what="the token response's scope is comma-separated ('repo,gist'): rpkit records it "
            "as one item",
            source=_AUTHORIZING,
        ),
        Quirk(
            what="JSON token responses only with Accept: application/json (rpkit always sends "
            "it); client id and secret go in the POST body",
            source=_AUTHORIZING,
        ),
        Quirk(
            what="token errors come with HTTP 200 and an error member: refused like any error",
            source="https://docs.rs/subspace-github-auth/0.1.0/subspace_github_auth/token/",
        ),
        Quirk(
            what="PKCE (S256) accepted since July 2025, not enforced; rpkit sends it always",
            source="https://github.blog/changelog/2025-07-14-pkce-support-for-oauth-and-github-app-authentication",
        ),
        Quirk(
            what="the account hint is login, not login_hint; prompt=select_account and "
            "allow_signup are the other parameters a login may pass",
            source=_AUTHORIZING,
        ),
        Quirk(
            what="GitHub Apps with expiring user tokens: 8 h access tokens and a 6-month refresh "
            "token that rotates on use; rpkit refreshes them like any other",
            source="https://docs.github.com/en/developers/apps/refreshing-user-to-server-access-tokens",
        ),
        Quirk(
            what="no end-session endpoint and no back-channel logout: local logout only (assumed "
            "from their absence in the OAuth documentation)",
            source=_AUTHORIZING,
            confirmed=False,
        ),
    ),
)
