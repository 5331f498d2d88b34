"""Several identity providers in one app, from rpkit's presets, and a login chooser page.

Every provider gets its own callback URL (``/auth/callback/{id}``), which is rpkit's mix-up
defence; the chooser page is the ``login_page`` guards send signed-out browsers to.

Run ``python examples/multi_idp/app.py``: the fakes of four presets (GitHub, Microsoft Entra ID,
Google, Keycloak; ``rpkit.testing.providers``) and the app start on 127.0.0.1. With real
accounts, build the same list with ``rpkit.providers.github.github(...)``,
``rpkit.providers.entra.entra(...)`` and so on.
"""

from __future__ import annotations

import dataclasses
import html
import secrets
from collections.abc import Sequence
from typing import Any

import httpx
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Response

from rpkit.config import ProviderConfig
from rpkit.litestar import RPKitConfig, RPKitPlugin, requires_login
from rpkit.litestar.session import SessionData

__all__ = ["create_app", "main"]


def create_app(
    providers: Sequence[tuple[ProviderConfig, str]],
    *,
    secret: str | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
    dev_cookies: bool = True,
) -> Litestar:
    """The app over ``(provider, button title)`` pairs.

    Args:
        providers: the providers users may choose from, with the title of their button.
        secret: the transaction-cookie secret (32+ characters); a random one when None.
        http_transport: the shared HTTP client's transport (tests pass a fake OP's).
        dev_cookies: cookies without ``Secure`` for ``http://127.0.0.1``.
    """
    config = RPKitConfig(
        providers=[p for p, _ in providers],
        secret=secret or secrets.token_urlsafe(32),
        login_page="/",
        insecure_cookies_for_development=dev_cookies,
    )
    titles = {p.id: title for p, title in providers}

    @get("/")
    async def chooser(return_to: FromQuery[str | None] = None) -> Response[str]:
        target = html.escape(return_to or "/me", quote=True)
        buttons = "".join(
            f'<li><a id="login-{pid}" href="/auth/login/{pid}?return_to={target}">'
            f"Sign in with {html.escape(title)}</a></li>"
            for pid, title in titles.items()
        )
        return _page("Choose how to sign in", f"<ul>{buttons}</ul>")

    @get("/me", guards=[requires_login()])
    async def me(rpkit_session: NamedDependency[SessionData | None]) -> Response[str]:
        assert rpkit_session is not None  # noqa: S101 - the guard let a session through
        who = rpkit_session.email or rpkit_session.name or rpkit_session.subject
        body = (
            f'<p id="who">{html.escape(titles[rpkit_session.provider_id])}: '
            f"{html.escape(who)}</p>"
            '<form method="post" action="/auth/logout">'
            f'<input type="hidden" name="csrf_token" value="{rpkit_session.csrf_token}">'
            '<button id="logout" type="submit">Sign out</button></form>'
        )
        return _page("Signed in", body, private=True)

    return Litestar([chooser, me], plugins=[RPKitPlugin(config, http_transport=http_transport)])


def _page(title: str, body: str, *, private: bool = False) -> Response[str]:
    page = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}"
    headers = {"Cache-Control": "no-store, private"} if private else None
    return Response(page, media_type="text/html", headers=headers)


PRESETS = (
    ("github", "FakeGitHub", "GitHub"),
    ("entra", "FakeEntra", "Microsoft Entra ID"),
    ("google", "FakeGoogle", "Google"),
    ("keycloak", "FakeKeycloak", "Keycloak"),
)
"""The presets this example signs in with: (provider id, fake's class, button title)."""


def preset_fakes(app_url: str, bases: Sequence[str] | None = None) -> list[tuple[Any, str]]:
    """The fake of each preset in :data:`PRESETS` with this app registered as a client (like
    the fake's own default client, with this app's redirect URIs), and the button title.
    ``bases`` are the fakes' base URLs when served (None: their real URLs, in-process)."""
    from rpkit.testing import providers as fakes  # noqa: PLC0415 - development only

    made = []
    for index, (pid, fake_name, title) in enumerate(PRESETS):
        fake = getattr(fakes, fake_name)(*((bases[index],) if bases else ()))
        default = next(iter(fake.clients.values()))
        fake.register_client(
            dataclasses.replace(
                default,
                client_id=f"multi-idp-{pid}",
                client_secret=secrets.token_urlsafe(24),
                redirect_uris=(f"{app_url}/auth/callback/{pid}",),
                post_logout_redirect_uris=(f"{app_url}/auth/logout/callback",),
            )
        )
        made.append((fake, title))
    return made


def provider_of(fake: Any, app_url: str) -> ProviderConfig:
    """The preset's configuration aimed at ``fake`` with this app's client, logging out back
    to the app."""
    config: ProviderConfig = fake.provider_config(
        client_id=next(c for c in fake.clients if c.startswith("multi-idp-")),
        post_logout_redirect_uri=f"{app_url}/auth/logout/callback",
    )
    return config


def main() -> None:
    """Serve the presets' fakes and the app on 127.0.0.1 until Ctrl-C."""
    from rpkit.testing.server import (  # noqa: PLC0415 - development only
        ServerThread,
        bind_loopback,
        serve_until_interrupted,
    )

    app_sock = bind_loopback(0)
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    socks = [bind_loopback(0) for _ in PRESETS]
    bases = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in socks]
    fakes = preset_fakes(app_url, bases)
    servers = [ServerThread(fake.asgi, sock) for (fake, _), sock in zip(fakes, socks, strict=True)]
    providers = [(provider_of(fake, app_url), title) for fake, title in fakes]
    servers.append(ServerThread(create_app(providers), app_sock))
    for server in servers:
        server.start()
    print(f"multi_idp example: {app_url}/ (Ctrl-C stops it)", flush=True)
    for (_, title), base in zip(fakes, bases, strict=True):
        print(f"  fake {title}: {base}", flush=True)
    serve_until_interrupted(servers)


if __name__ == "__main__":
    main()
