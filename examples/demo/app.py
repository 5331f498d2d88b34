"""The demo's Litestar app: sign in with a generic OpenID Provider or with Scalekit (enterprise
SSO by email domain, passwordless otherwise), a profile page, a bearer-protected API and logout.

rpkit's plugin brings the login, callback and logout routes and the server-side sessions; this
module adds the pages around them. Stores are in memory unless a Redis URL is given.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from console import app_logging_config
from idps import SSO_DOMAIN, IdentityProvider
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Redirect, Response
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from pages import home_page, mailbox_page, profile_page, verify_page

from rpkit.access_token import AccessToken
from rpkit.litestar import OIDCBearerAuth, RPKitConfig, RPKitPlugin, requires_login
from rpkit.litestar.session import SessionData

try:
    from rpkit_scalekit.litestar import ScalekitLitestarPlugin, passwordless_status
except ImportError:  # an rpkit-scalekit without the Litestar plugin: email goes to hosted login
    ScalekitLitestarPlugin = None  # type: ignore[assignment,misc]

__all__ = ["DemoConfig", "create_app"]

SCALEKIT_PATH = "/auth/scalekit"

PAGE = {"exclude_from_auth": True}
"""Pages use the browser session, not a bearer token."""


@dataclass
class DemoConfig:
    """What the demo app is built from."""

    providers: Sequence[IdentityProvider]
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    """Encrypts the transaction cookie; a fresh one per run cancels logins of a previous run."""
    redis_url: str | None = None
    """Keep ``rpkit_flows`` and ``rpkit_sessions`` in Redis (several workers, restarts)."""
    outbox: Callable[[], list[dict[str, Any]]] | None = None
    """The emails a fake Scalekit "sent", for the dev mailbox; None hides the mailbox."""
    email_provider: str = "scalekit"
    """The provider the email form signs in with (``login_hint`` routes it)."""
    new_credentials_on_resend: bool = False
    """Scalekit's "new credentials on resend" is on (the demo's fake Scalekit turns it on): a
    resend says the previous code and link no longer work."""
    organizations: Mapping[str, str] = field(default_factory=dict)
    """Organizations of the email provider (id → name) the profile offers to switch into (the
    demo's fake Scalekit has two); empty: one link to Scalekit's organization switcher."""

    @property
    def passwordless(self) -> bool:
        """Email sign-in goes through the Scalekit plugin (routing, then SSO or passwordless)."""
        return ScalekitLitestarPlugin is not None and any(
            p.config.id == self.email_provider for p in self.providers
        )


def create_app(config: DemoConfig) -> Litestar:
    """The demo app over ``config``'s providers."""
    rpkit = RPKitPlugin(
        RPKitConfig(
            providers=[p.config for p in config.providers],
            secret=config.secret,
            insecure_cookies_for_development=True,
            login_page="/",
        )
    )
    api_auth = OIDCBearerAuth(
        policies=[p.api_policy for p in config.providers if p.api_policy is not None],
        realm="rpkit-demo",
        exclude=["^/schema"],  # pages opt out with PAGE; rpkit's routes opt out themselves
    )
    plugins: list[Any] = [rpkit]
    if config.passwordless:
        plugins.append(
            ScalekitLitestarPlugin(
                provider_id=config.email_provider,
                path=SCALEKIT_PATH,
                passwordless=True,
                verify_page="/verify",
                # Every refused step comes back to /verify, which says why inline.
                passwordless_page="/verify",
                new_credentials_on_resend=config.new_credentials_on_resend,
            )
        )
    return Litestar(
        [*_pages(config), api_me],
        plugins=plugins,
        on_app_init=[api_auth.on_app_init],
        lifespan=[_http_client],
        stores=_stores(config.redis_url),
        logging_config=app_logging_config(),
    )


@asynccontextmanager
async def _http_client(app: Litestar) -> AsyncIterator[None]:
    # The pages' own client (the profile page calls the API); rpkit pools its own.
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0)) as client:
        app.state.http = client
        yield


def _stores(redis_url: str | None) -> dict[str, Store]:
    if not redis_url:
        return {"rpkit_flows": MemoryStore(), "rpkit_sessions": MemoryStore()}
    from litestar.stores.redis import RedisStore  # noqa: PLC0415 - only with Redis

    root = RedisStore.with_client(url=redis_url, namespace="rpkit-demo")
    return {
        "rpkit_flows": root.with_namespace("flows"),
        "rpkit_sessions": root.with_namespace("sessions"),
    }


@get("/api/me", sync_to_thread=False)
def api_me(request: Request[Any, AccessToken, Any]) -> dict[str, Any]:
    """Bearer-protected: who the access token speaks for."""
    token = request.auth
    return {
        "subject": token.sub,
        "issuer": token.iss,
        "client_id": token.client_id,
        "scopes": sorted(token.scopes),
    }


def _pages(config: DemoConfig) -> list[Any]:
    mailbox = config.outbox is not None
    choices = [(p.config.id, p.title) for p in config.providers]
    if config.passwordless:
        email_action, csrf_url = f"{SCALEKIT_PATH}/start", f"{SCALEKIT_PATH}/csrf"
    else:
        email_action, csrf_url = f"/auth/login/{config.email_provider}", None

    @get("/", name="home", opt=PAGE)
    async def home(
        rpkit_session: NamedDependency[SessionData | None],
        signed_out: FromQuery[str | None] = None,
        return_to: FromQuery[str | None] = None,
    ) -> Response[str]:
        notice = "You are signed out." if signed_out else None
        if return_to and not notice:
            notice = "Sign in to see that page."
        page = home_page(
            providers=choices,
            email_action=email_action,
            email_field="email" if config.passwordless else "login_hint",
            csrf_url=csrf_url,
            signed_in_as=_who(rpkit_session),
            notice=notice,
            mailbox=mailbox,
            sso_domain=SSO_DOMAIN,
        )
        return Response(page, media_type="text/html")

    api_providers = {p.config.id for p in config.providers if p.api_policy is not None}
    titles = dict(choices)

    def _profile(session: SessionData | None, api_result: dict[str, Any] | None) -> Response[str]:
        # A Scalekit sign-in into an organization can switch (the plugin's switch route).
        switch_url = None
        if (
            session is not None
            and session.organization is not None
            and config.passwordless
            and session.provider_id == config.email_provider
        ):
            switch_url = f"{SCALEKIT_PATH}/organizations/switch"
        return _profile_page(
            session,
            api_result,
            mailbox=mailbox,
            api=api_providers,
            titles=titles,
            switch_url=switch_url,
            organizations=config.organizations,
        )

    @get("/profile", guards=[requires_login()], opt=PAGE)
    async def profile(rpkit_session: NamedDependency[SessionData | None]) -> Response[str]:
        return _profile(rpkit_session, None)

    @get("/profile/api", guards=[requires_login()], opt=PAGE)
    async def profile_api(
        request: Request[Any, Any, Any],
        state: State,
        rpkit_session: NamedDependency[SessionData | None],
    ) -> Response[str]:
        assert rpkit_session is not None  # noqa: S101 - the guard let a session through
        answer = await state.http.get(
            str(request.base_url).rstrip("/") + "/api/me",
            headers={"Authorization": f"Bearer {rpkit_session.access_token}"},
        )
        result = {"status": answer.status_code, "body": _json_or_text(answer)}
        return _profile(rpkit_session, result)

    @get("/verify", name="verify", opt=PAGE)
    async def verify(request: Request[Any, Any, Any]) -> Response[str]:
        page = verify_page(
            status=await passwordless_status(request),
            scalekit_path=SCALEKIT_PATH,
            mailbox=mailbox,
        )
        return Response(page, media_type="text/html", headers={"Cache-Control": "no-store"})

    @get("/mailbox", name="mailbox", opt=PAGE)
    async def mailbox_view() -> Response[str]:
        if config.outbox is None:
            return Redirect("/")  # type: ignore[return-value]
        return Response(mailbox_page(config.outbox()), media_type="text/html")

    @get("/health", sync_to_thread=False, opt=PAGE)
    def health() -> dict[str, Any]:
        return {"status": "ok", "issuers": [p.config.issuer for p in config.providers]}

    pages = [home, profile, profile_api, mailbox_view, health]
    return [*pages, verify] if config.passwordless else pages


def _who(session: SessionData | None) -> str | None:
    if session is None:
        return None
    return session.email or session.name or session.subject


def _profile_page(
    session: SessionData | None,
    api_result: dict[str, Any] | None,
    *,
    mailbox: bool,
    api: set[str],
    titles: dict[str, str],
    switch_url: str | None = None,
    organizations: Mapping[str, str] | None = None,
) -> Response[str]:
    assert session is not None  # noqa: S101 - the guard let a session through
    identity = {
        "provider_id": session.provider_id,
        "issuer": session.issuer,
        "subject": session.subject,
        "email": session.email,
        "email_verified": session.email_verified,
        "name": session.name,
        "tenant": session.tenant,
        "organization": session.organization,
    }
    page = profile_page(
        identity=identity,
        provider_title=titles.get(session.provider_id, session.provider_id),
        times=_times(session),
        claims=session.claims,
        csrf_token=session.csrf_token,
        has_access_token=bool(session.access_token),
        api_trusts_provider=session.provider_id in api,
        api_result=api_result,
        mailbox=mailbox,
        switch_url=switch_url,
        organizations=organizations,
    )
    return Response(page, media_type="text/html", headers={"Cache-Control": "no-store"})


def _times(session: SessionData) -> list[tuple[str, int]]:
    """The session's moments worth showing, as (label, Unix time)."""
    claims = {**session.claims, **session.id_token_claims}
    times = [("Signed in here", session.created_at)]
    if session.access_token:
        times.append(("Access token expires", session.expires_at))
    labels = {
        "auth_time": "Authenticated at the provider (auth_time)",
        "iat": "ID token issued (iat)",
        "exp": "ID token expires (exp)",
        "updated_at": "Profile last updated (updated_at)",
    }
    times += [(label, claims[name]) for name, label in labels.items() if name in claims]
    return [(label, value) for label, value in times if isinstance(value, int)]


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
