"""Configuration of rpkit's Litestar plugin: routes, cookies, sessions and stores.

Every field states its security trade-off. Contradictions are refused at construction with a
:class:`~rpkit.errors.ConfigurationError` that says what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from rpkit.config import ProviderConfig
from rpkit.errors import ConfigurationError
from rpkit.flow import safe_return_to

__all__ = ["RPKitConfig"]

MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class RPKitConfig:
    """What the :class:`~rpkit.litestar.RPKitPlugin` needs to sign users in."""

    providers: Sequence[ProviderConfig]
    """The identity providers users may sign in with; each gets its own callback URL, which is
    the mix-up defence of checklist row 11."""
    secret: str = field(repr=False)
    """At least 32 characters; encrypts and authenticates the transaction cookie. Share it
    across workers and keep it out of source control; changing it cancels pending logins."""
    path: str = "/auth"
    """Prefix of rpkit's routes (login, callback, logout, back-channel logout)."""
    base_url: str | None = None
    """The public origin (``https://app.example``) redirect URIs are built from. When None they
    come from the request's Host header: then configure Litestar's ``AllowedHostsConfig``."""
    default_return_to: str = "/"
    """Where users land after login or logout when no safe ``return_to`` was given (row 65)."""
    session_lifetime: int = 8 * 3600
    """Seconds a server-side session lives after login, refreshed tokens or not."""
    session_backend: Literal["server", "cookie"] = "server"
    """Where sessions live. ``server`` (the default): the cookie holds an opaque id, the tokens
    stay in the ``sessions_store``, access tokens are refreshed, and logout (RP-initiated or
    back-channel) ends the session everywhere. ``cookie``: no server state; the cookie carries
    the identity claims only (no tokens: no refresh, no UserInfo or API calls with the user's
    token, logout without ``id_token_hint``), sealed with AES-GCM and valid for
    ``session_lifetime``. Trade-off: a copied cookie stays valid until it expires, because
    nothing on the server can revoke it; a back- or front-channel logout ends it only by its
    ``sid`` (remembered in the ``sessions_store``), never by ``sub``. A session
    above 3800 bytes is refused at login with :class:`~rpkit.errors.SessionTooLargeError`."""
    session_samesite: Literal["lax", "strict"] = "lax"
    """SameSite of the session cookie. ``strict`` hardens against CSRF but drops the session on
    the first navigation from another site (links from e-mail, the IdP's redirect back)."""
    transaction_samesite: Literal["lax", "none", "strict"] | None = None
    """SameSite of the short-lived transaction cookie; None picks ``lax`` for query responses
    and ``none`` for form_post ones. ``strict`` is refused: the OP's redirect back is a
    cross-site navigation, so a strict cookie is never sent with the callback (row 61)."""
    insecure_cookies_for_development: bool = False
    """Drop ``Secure`` and the ``__Host-`` prefix so cookies work on ``http://127.0.0.1``.
    Development only: anyone on the network path could read and replay the cookies."""
    refresh_before: int = 60
    """Refresh a session's access token this many seconds before it expires."""
    flows_store: str = "rpkit_flows"
    """Name of the Litestar store holding login and logout transactions."""
    sessions_store: str = "rpkit_sessions"
    """Name of the Litestar store holding sessions and their back-channel logout index."""
    workers: int = 1
    """How many worker processes serve the app. Above 1, stores that fall back to per-process
    memory break logins and logouts across workers: rpkit warns at startup."""
    http_timeout: float = 10.0
    """Seconds before a request to an identity provider times out."""
    login_page: str | None = None
    """The app's page that lets a person choose a provider. With several providers, a browser
    that a guard turns away for want of a login is sent here (with ``?return_to=``); with
    None it gets a 401 page. Guards naming one provider still go straight to its login."""
    error_page: str | None = None
    """Redirect browser-flow errors here (with ``?error=<code>``) instead of rpkit's page."""

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ConfigurationError(f"RPKitConfig: {problem}")

    @property
    def cookie_prefix(self) -> str:
        """``__Host-`` (Secure, Path=/, no Domain) unless development cookies are on."""
        return "" if self.insecure_cookies_for_development else "__Host-"


def _problems(config: RPKitConfig) -> list[str]:
    problems = []
    if len(config.secret) < MIN_SECRET_LENGTH:
        problems.append(f"secret must be at least {MIN_SECRET_LENGTH} characters")
    if not config.providers:
        problems.append("configure at least one provider")
    if config.transaction_samesite == "strict":
        problems.append(
            "transaction_samesite='strict' would break every login: the identity provider's "
            "redirect back is a cross-site navigation, and browsers do not send Strict cookies "
            "on it. Use 'lax' (query responses) or 'none' (form_post)"
        )
    form_post = [p.id for p in config.providers if p.response_mode == "form_post"]
    if form_post and config.insecure_cookies_for_development:
        problems.append(
            f"providers {form_post} use form_post, whose transaction cookie must be "
            "SameSite=None; Secure: browsers refuse it without Secure, so turn off "
            "insecure_cookies_for_development or use the query response mode"
        )
    if not config.path.startswith("/") or config.path.endswith("/"):
        problems.append("path must start with '/' and not end with one, e.g. '/auth'")
    if config.login_page is not None and safe_return_to(config.login_page, "") != config.login_page:
        problems.append("login_page must be a path on this app, such as '/login'")
    if config.base_url is not None and not config.base_url.startswith(("https://", "http://")):
        problems.append("base_url must be an absolute origin such as 'https://app.example'")
    if config.session_lifetime <= 0 or config.refresh_before < 0 or config.workers < 1:
        problems.append("session_lifetime and workers must be positive, refresh_before >= 0")
    return problems
