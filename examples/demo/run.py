"""``make demo``: the demo app with two embedded identity providers, all on 127.0.0.1.

No account anywhere is needed: rpkit's fake OP (users alice and bob) and the fake Scalekit
(enterprise SSO for ``@sso.example``, passwordless for every other address, emails shown in the
app's dev mailbox) run as real HTTP servers next to the app. Environment variables swap in real
ones: ``RPKIT_DEMO_ISSUER``/``RPKIT_DEMO_CLIENT_ID``/``RPKIT_DEMO_CLIENT_SECRET`` for any OpenID
Provider, ``SCALEKIT_ENV_URL``/``SCALEKIT_CLIENT_ID``/``SCALEKIT_CLIENT_SECRET`` for Scalekit;
``RPKIT_DEMO_REDIS_URL`` keeps logins and sessions in Redis, and the fakes' signing keys with
them, so a restart keeps everyone signed in (with ``RPKIT_DEMO_SECRET``, shared by every run,
pending logins survive a restart too). Logs go to stderr in one format; the banner to stdout.
Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app import DemoConfig, create_app
from console import configure_logging, route_server_logs
from idps import IdentityProvider, generic_provider, scalekit_provider
from state import FakeState, StateError

from presets import preset_providers
from rpkit.errors import RPKitError
from rpkit.litestar.config import MIN_SECRET_LENGTH
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


class SetupError(Exception):
    """A setting the demo cannot start with; the message says what to change."""


def _secret() -> dict[str, str]:
    """``RPKIT_DEMO_SECRET`` when set; an empty one counts as unset (a fresh secret per run)."""
    secret = os.environ.get("RPKIT_DEMO_SECRET", "").strip()
    if not secret:
        return {}
    if len(secret) < MIN_SECRET_LENGTH:
        msg = (
            f"RPKIT_DEMO_SECRET has {len(secret)} characters, {MIN_SECRET_LENGTH} at least are "
            "needed; unset it for a fresh random secret per run"
        )
        raise SetupError(msg)
    return {"secret": secret}


def _providers(
    args: argparse.Namespace, app_url: str, state: FakeState | None
) -> list[IdentityProvider]:
    providers = [
        generic_provider(app_url, _bind(args.op_port, "fake OP")),
        scalekit_provider(app_url, _bind(args.scalekit_port, "fake Scalekit")),
    ]
    if os.environ.get("RPKIT_DEMO_PRESETS", "1") != "0":
        providers += preset_providers(app_url, state.port if state else None)
    return providers


def _keep_keys(state: FakeState, providers: list[IdentityProvider]) -> str:
    """Sign with last run's keys where there were some, then save this run's."""
    fakes = [(p.config.id, p.fake.keys, _port(p)) for p in providers if p.fake is not None]
    restored = sum(state.restore_keys(provider_id, keys) for provider_id, keys, _ in fakes)
    state.save(fakes)
    return f"{restored} of {len(fakes)} fakes sign with the keys of the last run"


def _port(provider: IdentityProvider) -> int | None:
    return provider.sock.getsockname()[1] if provider.sock is not None else None


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    configure_logging()
    redis_url = os.environ.get("RPKIT_DEMO_REDIS_URL", "").strip() or None
    try:
        secret = _secret()
        state = FakeState(redis_url) if redis_url else None
        app_sock = _bind(args.port, "demo app")
        app_url = f"http://127.0.0.1:{app_sock.getsockname()[1]}"
        providers = _providers(args, app_url, state)
        kept = _keep_keys(state, providers) if state else None
        fake_scalekit = providers[1].fake
        config = DemoConfig(
            providers,
            redis_url=redis_url,
            **secret,
            outbox=fake_scalekit.outbox.as_json if fake_scalekit is not None else None,
            new_credentials_on_resend=fake_scalekit is not None,
            organizations=(
                {o.id: o.name for o in fake_scalekit.organizations.values()}
                if fake_scalekit is not None
                else {}
            ),
        )
        app = create_app(config)
    except (SetupError, StateError, RPKitError) as exc:
        print(f"rpkit demo: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyError as exc:  # a real provider's variable missing next to the ones that are set
        print(f"rpkit demo: environment variable {exc.args[0]} is not set", file=sys.stderr)
        return 2
    servers = [ServerThread(p.asgi, p.sock) for p in providers if p.asgi and p.sock]
    servers.append(ServerThread(app, app_sock))
    route_server_logs()
    for server in servers:
        server.start()
    try:
        _banner(app_url, config, providers, kept)
        serve_until_interrupted(servers)
    except KeyboardInterrupt:  # Ctrl-C before serve_until_interrupted took the signal over
        for server in reversed(servers):
            server.stop()
    finally:
        print("rpkit demo stopped", flush=True)
    return 0


def _banner(
    app_url: str, config: DemoConfig, providers: list[IdentityProvider], kept: str | None
) -> None:
    print("rpkit demo is running (Ctrl-C stops it)", flush=True)
    print(f"  {'demo app:':<15}{app_url}/", flush=True)
    if config.outbox is not None:
        print(f"  {'dev mailbox:':<15}{app_url}/mailbox", flush=True)
    for provider in providers:
        for label, url in provider.banner.items():
            print(f"  {label + ':':<15}{url}", flush=True)
    if config.redis_url:
        print(f"  {'stores:':<15}Redis ({kept})", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
