"""``python -m rpkit.testing serve``: run the fake OpenID Provider (or a preset's fake) on its
own, on 127.0.0.1, for a manual try with a browser or any client.

It prints the issuer, the discovery URL, the registered client (id, secret, redirect URIs) and
the users, then serves until Ctrl-C::

    python -m rpkit.testing serve --port 9400 --redirect-uri http://127.0.0.1:8000/cb
    python -m rpkit.testing serve --provider github
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from rpkit.testing import providers as preset_fakes
from rpkit.testing.op import FakeOP
from rpkit.testing.registry import FakeClient
from rpkit.testing.server import ServerThread, bind_loopback, serve_until_interrupted

__all__ = ["main"]


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rpkit.testing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a fake provider on 127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="the port (0: any free one)")
    serve.add_argument(
        "--provider",
        choices=sorted(preset_fakes._MODULES_BY_PRESET),
        help="serve this preset's fake (rpkit.testing.providers) instead of the generic fake OP",
    )
    serve.add_argument(
        "--choose-user",
        action="store_true",
        help="show a page listing the users when the login names none (the generic fake OP)",
    )
    serve.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="a redirect URI to register for the client (repeatable)",
    )
    serve.add_argument(
        "--post-logout-redirect-uri", action="append", default=[], help="(repeatable)"
    )
    return parser.parse_args(argv)


def _fake(base: str, provider: str | None, *, choose_user: bool) -> FakeOP:
    if provider is None:
        return FakeOP(base, choose_user=choose_user)
    fake_class = getattr(preset_fakes, preset_fakes._MODULES_BY_PRESET[provider])
    fake: FakeOP = fake_class(base, choose_user=choose_user)
    return fake


def _register(fake: FakeOP, args: argparse.Namespace) -> FakeClient:
    client = next(iter(fake.clients.values()))
    changes: dict[str, Any] = {}
    if args.redirect_uri:
        changes["redirect_uris"] = tuple(args.redirect_uri)
    if args.post_logout_redirect_uri:
        changes["post_logout_redirect_uris"] = tuple(args.post_logout_redirect_uri)
    if changes:
        client = dataclasses.replace(client, **changes)
        fake.register_client(client)
    return client


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C; 0 when stopped."""
    args = _arguments(argv)
    sock = bind_loopback(args.port)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    fake = _fake(base, args.provider, choose_user=args.choose_user)
    client = _register(fake, args)
    server = ServerThread(fake.asgi, sock)
    server.start()
    lines = {
        "issuer": getattr(fake, "issuer_template", None) or fake.issuer,
        "discovery": fake.discovery_url or "(none: OAuth 2.0 only)",
        "client_id": client.client_id,
        "client_secret": client.client_secret or "(public client)",
        "client_auth": client.token_endpoint_auth_method,
        "redirect_uris": " ".join(client.redirect_uris),
        "users": ", ".join(fake.users),
    }
    print(f"fake {args.provider or 'OpenID Provider'} on {base} (Ctrl-C stops it)", flush=True)
    for label, value in lines.items():
        print(f"  {label + ':':<15}{value}", flush=True)
    serve_until_interrupted([server])
    return 0


if __name__ == "__main__":
    sys.exit(main())
