"""Two identity providers in one app, and a login chooser page.

Every provider gets its own callback URL (``/auth/callback/{id}``), which is rpkit's mix-up
defence; the chooser page is the ``login_page`` guards send signed-out browsers to.

Run ``python examples/multi_idp/app.py``: two fake OPs ("Acme" and "Globex") and the app start
on 127.0.0.1.
"""

from __future__ import annotations

import html
import secrets
from collections.abc import Sequence

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
        body = (
            f'<p id="who">{html.escape(titles[rpkit_session.provider_id])}: '
            f"{html.escape(str(rpkit_session.claims.get('email', rpkit_session.subject)))}</p>"
            '<form method="post" action="/auth/logout">'
            f'<input type="hidden" name="csrf_token" value="{rpkit_session.csrf_token}">'
            '<button type="submit">Sign out</button></form>'
        )
        return _page("Signed in", body)

    return Litestar([chooser, me], plugins=[RPKitPlugin(config, http_transport=http_transport)])


def _page(title: str, body: str) -> Response[str]:
    page = f"<!doctype html><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}"
    return Response(page, media_type="text/html")


def main() -> None:
    """Serve two fake OPs and the app on 127.0.0.1 until Ctrl-C."""
    from rpkit.testing import FakeClient, FakeOP  # noqa: PLC0415 - development only
    from rpkit.testing.server import (  # noqa: PLC0415
        ServerThread,
        bind_loopback,
        serve_until_interrupted,
    )

    app_sock = bind_loopback(0)
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    servers, providers = [], []
    for pid, title in (("acme", "Acme"), ("globex", "Globex")):
        sock = bind_loopback(0)
        client = FakeClient(
            client_id=f"{pid}-app", redirect_uris=(f"{app_url}/auth/callback/{pid}",)
        )
        op = FakeOP(f"http://127.0.0.1:{sock.getsockname()[1]}", clients=[client])
        providers.append((op.provider_config(pid, allow_insecure_http=True), title))
        servers.append(ServerThread(op.asgi, sock))
    servers.append(ServerThread(create_app(providers), app_sock))
    for server in servers:
        server.start()
    print(f"multi_idp example: {app_url}/ (Ctrl-C stops it)", flush=True)
    serve_until_interrupted(servers)


if __name__ == "__main__":
    main()
