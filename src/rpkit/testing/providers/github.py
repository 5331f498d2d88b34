"""A fake of GitHub, for testing an application that uses :func:`rpkit.providers.github.github`.

:class:`FakeGitHub` is the fake OP as an OAuth 2.0-only provider with GitHub's personality:

- GitHub's URLs: ``/login/oauth/authorize`` and ``/login/oauth/access_token`` on the web host,
  ``/user`` and ``/user/emails`` on the API host. In-process the fake answers for both
  github.com and api.github.com (its :meth:`~FakeGitHub.transport` routes both), and refuses an
  API path on the web host and the reverse. Served on 127.0.0.1 it is a GitHub Enterprise
  Server: the API is ``{base}/api/v3``.
- GitHub's shapes: a ``/user`` profile with a numeric ``id``, ``login``, ``name``, the public
  ``email``; a ``/user/emails`` list with a verified no-reply address first and the primary
  address (verified as the user's ``email_verified`` says); opaque ``gho_`` access tokens; token
  responses with ``token_type: bearer``, a comma-separated ``scope`` and no ``expires_in``.
- ``github_app=True``: a GitHub App with expiring user tokens (``ghu_``, eight hours) and
  rotating ``ghr_`` refresh tokens with ``refresh_token_expires_in``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from rpkit.config import ProviderConfig
from rpkit.providers.github import GITHUB_API_URL, GITHUB_URL, github
from rpkit.testing._http import html_response
from rpkit.testing._oauth2 import JSONSource, github_profile
from rpkit.testing.op import FakeOP
from rpkit.testing.personality import Personality
from rpkit.testing.providers._common import client_of, preset_arguments
from rpkit.testing.registry import DEFAULT_REDIRECT_URI, FakeClient, FakeUser
from rpkit.testing.transport import FakeOPTransport

__all__ = ["GITHUB_CLIENT_ID", "FakeGitHub", "github_emails", "github_user"]

GITHUB_CLIENT_ID = "Ov23liRpkitFakeClient"
GITHUB_CLIENT_SECRET = "0123456789abcdef0123456789abcdef01234567"
APP_TOKEN_LIFETIME = 28_800
APP_REFRESH_LIFETIME = 15_897_600


def github_user(user: FakeUser) -> dict[str, Any]:
    """GitHub's ``/user`` for ``user``: :func:`~rpkit.testing.github_profile` plus the members
    every profile has (``node_id``, ``type``, ``site_admin``, ``html_url``, ``avatar_url``)."""
    profile = github_profile(user)
    login = profile["login"]
    return profile | {
        "node_id": f"U_{hashlib.sha256(user.sub.encode()).hexdigest()[:12]}",
        "type": "User",
        "site_admin": False,
        "html_url": f"https://github.com/{login}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{profile['id']}?v=4",
    }


def github_emails(user: FakeUser) -> list[dict[str, Any]]:
    """GitHub's ``/user/emails`` for ``user``: the verified, non-primary no-reply address first,
    then the user's ``email`` as primary, verified only if ``email_verified`` is true."""
    profile = github_profile(user)
    noreply = f"{profile['id']}+{profile['login']}@users.noreply.github.com"
    emails = [{"email": noreply, "primary": False, "verified": True, "visibility": None}]
    if isinstance(email := user.claims.get("email"), str):
        verified = user.claims.get("email_verified") is True
        emails.append(
            {"email": email, "primary": True, "verified": verified, "visibility": "private"}
        )
    return emails


class FakeGitHub(FakeOP):
    """GitHub (or an Enterprise Server), in-process or served.

    Args:
        base_url: ``https://github.com`` by default, so the preset's own URLs reach the fake
            through :meth:`transport`; an Enterprise Server's base (``http://127.0.0.1:<port>``
            when served).
        api_url: the REST API's base: ``https://api.github.com`` for github.com, else
            ``{base_url}/api/v3``.
        profile: ``/user`` for a user; :func:`github_user` by default.
        emails: ``/user/emails`` for a user; :func:`github_emails` by default.
        redirect_uris: the default client's registered callback URLs.
        github_app: issue expiring user tokens and refresh tokens, as a GitHub App does.
        **options: :class:`~rpkit.testing.FakeOP` options.
    """

    def __init__(
        self,
        base_url: str = GITHUB_URL,
        *,
        api_url: str | None = None,
        profile: JSONSource | None = None,
        emails: JSONSource | None = None,
        redirect_uris: Sequence[str] = (DEFAULT_REDIRECT_URI,),
        github_app: bool = False,
        **options: Any,
    ) -> None:
        base = base_url.rstrip("/")
        default_api = GITHUB_API_URL if base == GITHUB_URL else f"{base}/api/v3"
        self.api_url = (api_url or default_api).rstrip("/")
        self.github_app = github_app
        api = urlsplit(self.api_url)
        self.api_origin = f"{api.scheme}://{api.netloc}"
        client = FakeClient(
            client_id=GITHUB_CLIENT_ID,
            client_secret=GITHUB_CLIENT_SECRET,
            redirect_uris=tuple(redirect_uris),
            token_endpoint_auth_method="client_secret_post",
        )
        options.setdefault("clients", [client])
        if github_app:
            options.setdefault("access_token_lifetime", APP_TOKEN_LIFETIME)
        super().__init__(
            base,
            kind="oauth2",
            profile=profile or github_user,
            profile_path=f"{api.path}/user",
            extra_json={f"{api.path}/user/emails": emails or github_emails},
            issue_refresh_tokens=github_app,
            personality=Personality(token_response=self._token_response),
            **options,
        )
        self._api_paths = {f"{api.path}/user", f"{api.path}/user/emails"}
        self.endpoints["profile"] = f"{self.api_url}/user"
        if not options.get("random_paths"):
            self.serve_at(
                {"authorize": "/login/oauth/authorize", "token": "/login/oauth/access_token"}
            )

    def provider_config(
        self, id: str = "github", *, client_id: str | None = None, **changes: Any
    ) -> ProviderConfig:
        """The :func:`~rpkit.providers.github.github` preset aimed at this fake and one of its
        clients; ``allow_insecure_http`` is set for a served (``http://127.0.0.1``) fake."""
        client = client_of(self, client_id)
        return github(
            client_id=client.client_id,
            client_secret=client.client_secret or "",
            base_url=self.issuer,
            api_url=self.api_url,
            **preset_arguments(self, changes, id=id),
        )

    def transport(self, *others: FakeOP) -> FakeOPTransport:
        """An httpx transport to this fake on both its web and API hosts (and to ``others``)."""
        transport = super().transport(*others)
        if self.api_origin != self.origin:
            transport.add(_APIHost(self))
        return transport

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer as GitHub would: API paths only on the API host, the rest only on the web
        host (the same host for an Enterprise Server)."""
        origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
        if self.api_origin != self.origin and (
            (origin == self.api_origin) != (request.url.path in self._api_paths)
        ):
            return html_response("<h1>Not Found</h1>", 404)
        return await super().handle(request)

    def _token_response(self, body: dict[str, Any], _: FakeClient) -> dict[str, Any]:
        """GitHub's shape: opaque tokens, comma-separated scope, no expiry for OAuth apps."""
        shaped = dict(body)
        prefix = "ghu_" if self.github_app else "gho_"
        shaped["access_token"] = _rekey(self.access_tokens, body["access_token"], prefix)
        shaped["scope"] = ",".join(str(body.get("scope", "")).split())
        if not self.github_app:
            shaped.pop("expires_in", None)
        elif "refresh_token" in body:
            shaped["refresh_token"] = _rekey(self.refresh_tokens, body["refresh_token"], "ghr_")
            shaped["refresh_token_expires_in"] = APP_REFRESH_LIFETIME
        return shaped


class _APIHost:
    """api.github.com: the same fake, reached on the API's own origin."""

    def __init__(self, fake: FakeGitHub) -> None:
        self.fake = fake
        self.origin = fake.api_origin

    async def handle(self, request: httpx.Request) -> httpx.Response:
        return await self.fake.handle(request)


def _rekey(grants: dict[str, Any], token: str, prefix: str) -> str:
    """Store the grant of ``token`` under an opaque GitHub-style token instead."""
    opaque = prefix + secrets.token_urlsafe(27)[:36]
    grants[opaque] = grants.pop(token)
    return opaque
