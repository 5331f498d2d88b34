"""``make demo``: run the demo app and the embedded fake OpenID Provider on 127.0.0.1.

No account anywhere is needed: the identity provider is rpkit's own fake OP, served as a real
HTTP server. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import create_app

from rpkit.testing import FakeClient, FakeOP
from rpkit.testing.server import ServerThread, bind_loopback

DEFAULT_APP_PORT = 8000
DEFAULT_OP_PORT = 9400


def _bind(port: int, what: str):
    try:
        return bind_loopback(port)
    except OSError:
        print(f"port {port} is busy; the {what} takes a free port instead", flush=True)
        return bind_loopback(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    app_port = int(os.environ.get("RPKIT_DEMO_PORT", DEFAULT_APP_PORT))
    op_port = int(os.environ.get("RPKIT_DEMO_OP_PORT", DEFAULT_OP_PORT))
    parser.add_argument("--port", type=int, default=app_port)
    parser.add_argument("--op-port", type=int, default=op_port)
    args = parser.parse_args(argv)

    app_sock = _bind(args.port, "demo app")
    op_sock = _bind(args.op_port, "fake OP")
    app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
    issuer = f"http://127.0.0.1:{op_sock.getsockname()[1]}"
    op = FakeOP(
        issuer,
        clients=[
            FakeClient(
                client_id="rpkit-demo",
                redirect_uris=(f"{app_url}/auth/callback/fake",),
                post_logout_redirect_uris=(f"{app_url}/",),
            )
        ],
    )
    servers = [ServerThread(op.asgi, op_sock), ServerThread(create_app(issuer), app_sock)]
    for server in servers:
        server.start()
    print("rpkit demo is running (Ctrl-C stops it)", flush=True)
    print(f"  demo app:   {app_url}/", flush=True)
    print(f"  fake OP:    {issuer}/.well-known/openid-configuration", flush=True)
    print(f"  OP JWKS:    {op.endpoints['jwks']}", flush=True)

    stop = threading.Event()
    # Explicit handlers: a shell that backgrounds the command may have set SIGINT to "ignore".
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        for server in reversed(servers):
            server.stop()
        print("rpkit demo stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
