"""``make demo``: the demo app with two embedded identity providers, all on 127.0.0.1.

No account anywhere is needed: rpkit's fake OP (users alice and bob) and the fake Scalekit
(enterprise SSO for ``@sso.example``, passwordless for every other address, emails shown in the
app's dev mailbox) run as real HTTP servers next to the app. Environment variables swap in real
ones: ``RPKIT_DEMO_ISSUER``/``RPKIT_DEMO_CLIENT_ID``/``RPKIT_DEMO_CLIENT_SECRET`` for any OpenID
Provider, ``SCALEKIT_ENV_URL``/``SCALEKIT_CLIENT_ID``/``SCALEKIT_CLIENT_SECRET`` for Scalekit;
``RPKIT_DEMO_REDIS_URL`` keeps logins and sessions in Redis (with ``RPKIT_DEMO_SECRET``, shared
by every run, pending logins survive a restart too). Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import DemoConfig, create_app
from idps import generic_provider, scalekit_provider

from presets import preset_providers
from rpkit.testing.server import ServerThread, bind_loopback, serve_until_interrupted

DEFAULT_APP_PORT = 8000
DEFAULT_OP_PORT = 9400
DEFAULT_SCALEKIT_PORT = 9401


def _bind(port: int, what: str) -> socket.socket:
    try:
        return bind_loopback(port)
    except OSError:
        print(f"port {port} is busy; the {what} takes a free port instead", flush=True)
        return bind_loopback(0)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    env = os.environ.get
    parser.add_argument("--port", type=int, default=int(env("RPKIT_DEMO_PORT", DEFAULT_APP_PORT)))
    parser.add_argument(
        "--op-port", type=int, default=int(env("RPKIT_DEMO_OP_PORT", DEFAULT_OP_PORT))
    )
    parser.add_argument(
        "--scalekit-port",
        type=int,
        default=int(env("RPKIT_DEMO_SCALEKIT_PORT", DEFAULT_SCALEKIT_PORT)),
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    app_sock = _bind(args.port, "demo app")
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    providers = [
        generic_provider(app_url, _bind(args.op_port, "fake OP")),
        scalekit_provider(app_url, _bind(args.scalekit_port, "fake Scalekit")),
    ]
    fake_scalekit = providers[1].fake
    if os.environ.get("RPKIT_DEMO_PRESETS", "1") != "0":
        providers += preset_providers(app_url)
    config = DemoConfig(
        providers,
        redis_url=os.environ.get("RPKIT_DEMO_REDIS_URL") or None,
        **(
            {"secret": os.environ["RPKIT_DEMO_SECRET"]} if "RPKIT_DEMO_SECRET" in os.environ else {}
        ),
        outbox=fake_scalekit.outbox.as_json if fake_scalekit is not None else None,
    )
    servers = [ServerThread(p.asgi, p.sock) for p in providers if p.asgi and p.sock]
    servers.append(ServerThread(create_app(config), app_sock))
    for server in servers:
        server.start()
    print("rpkit demo is running (Ctrl-C stops it)", flush=True)
    print(f"  {'demo app:':<15}{app_url}/", flush=True)
    if config.outbox is not None:
        print(f"  {'dev mailbox:':<15}{app_url}/mailbox", flush=True)
    for provider in providers:
        for label, url in provider.banner.items():
            print(f"  {label + ':':<15}{url}", flush=True)
    if config.redis_url:
        print(f"  {'stores:':<15}Redis", flush=True)

    try:
        serve_until_interrupted(servers)
    finally:
        print("rpkit demo stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
