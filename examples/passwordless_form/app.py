"""Passwordless sign-in with server-rendered forms over the Scalekit plugin's headless endpoints.

``/`` asks for an email and posts it to ``/auth/scalekit/passwordless/send``; the plugin sends
a code and a magic link and redirects to ``/verify``, whose form posts the code to
``/auth/scalekit/passwordless/verify``. The ``auth_request_id`` never reaches the browser: the
plugin keeps it server-side under the transaction cookie. ``/verify`` is also the plugin's
``passwordless_page``: a refused step (a wrong code, too many emails, no sign-in in progress, a
link opened in another browser) comes back to it, and ``passwordless_status`` says what to show.
Form posts carry the plugin's double-submit CSRF token, which the page fetches from
``/auth/scalekit/csrf`` (that request also sets the cookie the token is bound to).

Run ``python examples/passwordless_form/app.py``: a fake Scalekit starts on 127.0.0.1 and its
mailbox is at ``<scalekit>/_dev/outbox``.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Any

import httpx
from litestar import Litestar, Request, get
from litestar.di import NamedDependency
from litestar.response import Response

from rpkit.client import Identity
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit_scalekit import scalekit
from rpkit_scalekit.litestar import ScalekitLitestarPlugin, passwordless_status

__all__ = ["create_app", "main"]

PATH = "/auth/scalekit"
_FILL_CSRF = (
    "<script>for (const form of document.forms) form.addEventListener('submit', async (e) => {"
    "if (form.elements.csrf_token.value) return; e.preventDefault();"
    f"const r = await fetch({json.dumps(PATH + '/csrf')});"
    "form.elements.csrf_token.value = (await r.json()).csrf_token; form.submit();});</script>"
)


def _form(form_id: str, action: str, fields: str, button: str) -> str:
    return (
        f'<form id="{form_id}" method="post" action="{action}">'
        '<input type="hidden" name="csrf_token" value="">'
        f'{fields}<button type="submit">{button}</button></form>'
    )


def _page(title: str, body: str) -> Response[str]:
    page = f"<!doctype html><title>{title}</title><h1>{title}</h1>{body}{_FILL_CSRF}"
    return Response(page, media_type="text/html", headers={"Cache-Control": "no-store"})


@get("/")
async def email_page(rpkit_user: NamedDependency[Identity | None]) -> Response[str]:
    if rpkit_user is not None:
        who = html.escape(str(rpkit_user.claims.get("email")))
        return _page("Signed in", f'<p id="who">{who}</p>')
    fields = (
        '<input id="email" type="email" name="email" required>'
        '<input type="hidden" name="return_to" value="/">'
    )
    return _page("Sign in", _form("send", f"{PATH}/passwordless/send", fields, "Email me"))


@get("/verify")
async def verify_page(request: Request[Any, Any, Any]) -> Response[str]:
    status = await passwordless_status(request)
    body = ""
    if status.message:  # what the last step did, inline: the code, attempts left, seconds to wait
        body += f'<p id="message" data-code="{status.code or ""}">{html.escape(status.message)}</p>'
    usable = status.pending and status.code not in _ENDED
    if usable:
        fields = '<input id="code" name="code" inputmode="numeric" required>'
        body += (
            "<p>Type the code from the email, or open its link in this browser.</p>"
            + _form("verify", f"{PATH}/passwordless/verify", fields, "Sign in")
            + _form("resend", f"{PATH}/passwordless/resend", "", "Send a new email")
        )
    if status.restart and not usable:  # the same address, never typed again
        body += _form("restart", f"{PATH}/passwordless/restart", "", "Send a new email")
    if not usable:
        body += '<p><a href="/">Sign in with another address</a></p>'
    return _page("Check your email" if usable else "Sign in", body)


_ENDED = (
    "passwordless_attempts_exhausted",
    "passwordless_expired",
    "passwordless_used",
    "passwordless_other_browser",
)
"""Refusals after which the pending code cannot sign in any more."""


def create_app(
    env_url: str,
    client_id: str,
    client_secret: str,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> Litestar:
    """The app over one Scalekit environment (passwordless enabled in its dashboard)."""
    provider = scalekit(
        env_url, client_id, client_secret, allow_insecure_http=env_url.startswith("http://127.")
    )
    config = RPKitConfig(
        providers=[provider],
        secret=secrets.token_urlsafe(32),
        insecure_cookies_for_development=True,
    )
    return Litestar(
        [email_page, verify_page],
        plugins=[
            RPKitPlugin(config, http_transport=http_transport),
            ScalekitLitestarPlugin(
                path=PATH, passwordless=True, verify_page="/verify", passwordless_page="/verify"
            ),
        ],
    )


def main() -> None:
    """Serve a fake Scalekit and the app on 127.0.0.1 until Ctrl-C."""
    from rpkit.testing.server import (  # noqa: PLC0415
        ServerThread,
        bind_loopback,
        serve_until_interrupted,
    )
    from rpkit_scalekit.testing import FakeApplication, FakeScalekit  # noqa: PLC0415

    app_sock, sk_sock = bind_loopback(0), bind_loopback(0)
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    fake = FakeScalekit(
        f"http://127.0.0.1:{sk_sock.getsockname()[1]}",
        apps=[FakeApplication(redirect_uris=(f"{app_url}/auth/callback/scalekit",))],
    )
    fake.passwordless.method = "LINK_OTP"
    app_config = next(iter(fake.apps.values()))
    app = create_app(fake.issuer, app_config.client_id, app_config.client_secret)
    servers = [ServerThread(fake.asgi, sk_sock), ServerThread(app, app_sock)]
    for server in servers:
        server.start()
    print(f"passwordless_form example: {app_url}/  mailbox: {fake.issuer}/_dev/outbox", flush=True)
    serve_until_interrupted(servers)


if __name__ == "__main__":
    main()
