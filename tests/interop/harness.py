"""What the interoperability tests run: panva's oidc-provider as a Node process on 127.0.0.1,
rpkit's Litestar app in front of it, and the registrations that tie the two together.

The provider reports what it saw as JSON lines on stdout (see ``op/provider.mjs``); the app
shows who is signed in on ``/profile`` and records the requests it served.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, get
from litestar.di import NamedDependency

from rpkit.config import ProviderConfig
from rpkit.litestar import RPKitConfig, RPKitPlugin
from rpkit.litestar.session import SessionData
from rpkit.testing.keys import generate_key
from rpkit.testing.server import ServerThread, bind_loopback

OP_DIR = Path(__file__).parent / "op"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
APP_SECRET = "interop-app-secret-" + "s" * 32
BASIC_SECRET = "pa:ss+wo%rd/with space"
"""A client secret with every character RFC 6749 §2.3.1's form-encoding changes (``:``, ``+``,
``%``, ``/``, space): the provider form-decodes both parts of ``Basic`` credentials."""
LOGOUT_RETURN_TO = "/signed-out"


def missing_binaries() -> list[str]:
    """The programs these tests need that are not installed (scripts/system-deps.sh installs
    them)."""
    missing = [name for name in ("node", "npm") if shutil.which(name) is None]
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    return missing


MIN_NODE = (20, 19)
"""oidc-provider 9 is ESM with jose 6; upstream supports Node 22 LTS and later and warns
(``Unsupported runtime``) but works on the machine image's Node 20.20."""


def node_too_old() -> str | None:
    """Node's version when it is older than :data:`MIN_NODE`, else None."""
    done = subprocess.run(
        ["node", "--version"],  # noqa: S607 - node from PATH, like npm
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    version = done.stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    return version if (major, minor) < MIN_NODE else None


def pinned_version(op_dir: Path = OP_DIR) -> str:
    """The exact oidc-provider version ``op/package.json`` (or ``op_dir``'s) pins."""
    version: str = json.loads((op_dir / "package.json").read_text())["dependencies"][
        "oidc-provider"
    ]
    return version


def installed_version(op_dir: Path = OP_DIR) -> str | None:
    manifest = op_dir / "node_modules" / "oidc-provider" / "package.json"
    if not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text())["version"]
    return version


def ensure_node_modules(op_dir: Path = OP_DIR) -> str:
    """Install the locked packages into ``op/node_modules`` (or ``op_dir``'s) unless the pinned
    version is there; returns the installed oidc-provider version."""
    if installed_version(op_dir) != pinned_version(op_dir):
        # The lock file holds integrity hashes but no registry URLs: npm's configured registry.
        command = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        done = subprocess.run(  # noqa: S603 - a fixed command
            command, cwd=op_dir, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode != 0:
            msg = f"npm ci in {op_dir} failed:\n{done.stdout}\n{done.stderr}"
            raise RuntimeError(msg)
    version = installed_version(op_dir)
    assert version == pinned_version(op_dir), f"npm ci installed oidc-provider {version}"
    return version


def free_port() -> int:
    sock = bind_loopback(0)
    port: int = sock.getsockname()[1]
    sock.close()
    return port


# -- the provider process -------------------------------------------------------------------
class OidcProvider:
    """One run of ``op/provider.mjs``: started, read line by line, stopped.

    Args:
        port: where it listens on 127.0.0.1; the issuer is ``http://127.0.0.1:{port}``.
        clients: oidc-provider client metadata.
        workdir: where its configuration and stderr go.
        access_token_ttl: access-token lifetime by client id (default one hour).
        strip_iss_for: client ids whose authorization responses lose their RFC 9207 ``iss``
            on the way to the browser, as a network attacker would remove it.
        op_dir: the folder of ``provider.mjs`` and its ``node_modules`` (``op_frontchannel``
            runs oidc-provider 6, which still has front-channel logout).
        dpop_nonce_for: client ids whose DPoP proofs must carry a server nonce (RFC 9449 §8).
    """

    def __init__(
        self,
        port: int,
        clients: list[dict[str, Any]],
        workdir: Path,
        access_token_ttl: dict[str, int] | None = None,
        strip_iss_for: tuple[str, ...] = (),
        *,
        op_dir: Path = OP_DIR,
        dpop_nonce_for: tuple[str, ...] = (),
    ) -> None:
        self.port = port
        self.op_dir = op_dir
        self.issuer = f"http://127.0.0.1:{port}"
        self.records: list[dict[str, Any]] = []
        self.kids: dict[str, str] = {}
        self._workdir = workdir
        self._config = {
            "port": port,
            "clients": clients,
            "accessTokenTtl": access_token_ttl or {},
            "stripIssFor": list(strip_iss_for),
            "dpopNonceFor": list(dpop_nonce_for),
        }
        self._changed = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> None:
        config = self._workdir / f"op-{self.port}.json"
        config.write_text(json.dumps(self._config))
        stderr = (self._workdir / f"op-{self.port}.stderr").open("a")
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments
            ["node", str(self.op_dir / "provider.mjs"), str(config)],  # noqa: S607 - node from PATH
            cwd=self.op_dir,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        stderr.close()
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()
        ready = self.wait_for("ready", timeout=timeout)
        self.kids = ready["kids"]

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            record = json.loads(line) if line.startswith("{") else {"event": "text", "line": line}
            with self._changed:
                self.records.append(record)
                self._changed.notify_all()

    def stop(self) -> None:
        """End the process (SIGTERM, then SIGKILL) and wait for its output to be read."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def events(self, event: str, **match: Any) -> list[dict[str, Any]]:
        """The records of ``event`` whose fields equal ``match``."""
        with self._changed:
            records = list(self.records)
        return [
            r
            for r in records
            if r.get("event") == event and all(r.get(k) == v for k, v in match.items())
        ]

    def requests(self, path: str, **match: Any) -> list[dict[str, Any]]:
        """The HTTP requests the provider answered on ``path`` (``method``, ``client``...)."""
        return self.events("request", path=path, **match)

    def wait_for(self, event: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.events(event, **match)
                if found:
                    return found[-1]
                remaining = deadline - time.monotonic()
                exited = self._process is not None and self._process.poll() is not None
                if remaining <= 0 or exited:
                    msg = f"oidc-provider sent no {event} {match}; its output: {self.records}"
                    raise AssertionError(msg)
                self._changed.wait(min(remaining, 0.2))


# -- registrations: one client at the provider = one provider in rpkit ----------------------
@dataclass(frozen=True)
class Registration:
    """A client registered at oidc-provider, and rpkit's provider entry for it."""

    provider_id: str
    client_auth: str = "client_secret_basic"
    client_secret: str | None = "interop-client-secret"
    alg: str = "RS256"
    response_mode: str = "query"
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    private_key: dict[str, Any] | None = field(default=None, repr=False)
    public_key: dict[str, Any] | None = field(default=None, repr=False)
    par: str = "off"
    """rpkit's ``par`` setting. oidc-provider advertises PAR to every client, so the other
    tests keep their parameters in the browser's URL with ``off``; ``required`` also makes the
    provider refuse this client's unpushed requests."""
    dpop: bool = False
    """rpkit's ``dpop``; the provider then issues this client DPoP-bound tokens only."""

    @property
    def client_id(self) -> str:
        return f"rp-{self.provider_id}"

    @classmethod
    def with_private_key_jwt(cls, provider_id: str) -> Registration:
        key = generate_key("RS256", kid=f"{provider_id}-assertion-key")
        return cls(
            provider_id,
            client_auth="private_key_jwt",
            client_secret=None,
            private_key=dict(key.as_dict(private=True)),
            public_key=dict(key.as_dict(private=False)),
        )

    def op_client(self, app: AppUrls) -> dict[str, Any]:
        """The client metadata oidc-provider is started with. ``application_type`` stays
        ``web`` (the default): oidc-provider accepts ``http`` redirect URIs for web clients
        of the code flow and refuses them only for implicit ones."""
        client: dict[str, Any] = {
            "client_id": self.client_id,
            "redirect_uris": [app.callback(self.provider_id)],
            "post_logout_redirect_uris": [app.logout_callback],
            "backchannel_logout_uri": app.backchannel(self.provider_id),
            "backchannel_logout_session_required": True,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": self.client_auth,
            "id_token_signed_response_alg": self.alg,
        }
        if self.client_secret is not None:
            client["client_secret"] = self.client_secret
        if self.public_key is not None:
            client["jwks"] = {"keys": [self.public_key]}
        if self.par == "required":
            client["require_pushed_authorization_requests"] = True
        if self.dpop:
            client["dpop_bound_access_tokens"] = True
        return client

    def provider_config(self, issuer: str, app: AppUrls) -> ProviderConfig:
        return ProviderConfig(
            id=self.provider_id,
            issuer=issuer,
            client_id=self.client_id,
            client_secret=self.client_secret,
            client_auth=self.client_auth,  # type: ignore[arg-type]
            private_key=self.private_key,
            id_token_signed_response_alg=self.alg,
            response_mode=self.response_mode,  # type: ignore[arg-type]
            scopes=self.scopes,
            post_logout_redirect_uri=app.logout_callback,
            allow_insecure_http=True,
            par=self.par,  # type: ignore[arg-type]
            dpop=self.dpop,
        )


@dataclass(frozen=True)
class AppUrls:
    """Where the browser reaches the app (``origin``) and where the provider's back-channel
    requests do (``direct``): the same server on 127.0.0.1."""

    origin: str
    direct: str

    def callback(self, provider_id: str) -> str:
        return f"{self.origin}/auth/callback/{provider_id}"

    def backchannel(self, provider_id: str) -> str:
        return f"{self.direct}/auth/backchannel-logout/{provider_id}"

    @property
    def logout_callback(self) -> str:
        return f"{self.origin}/auth/logout/callback"


# -- rpkit's app ----------------------------------------------------------------------------
def _fingerprint(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest()[:16] if value else None


def _jose_header(token: str) -> dict[str, Any]:
    segment = token.split(".", maxsplit=1)[0]
    header: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return header


def profile_of(session: SessionData | None) -> dict[str, Any]:
    """What ``/profile`` shows: who is signed in, through which provider, with what tokens.
    The refresh token is shown whole (a test app: the refresh test replays an old one at the
    provider); the access token only as a fingerprint."""
    if session is None:
        return {"subject": None}
    return {
        "subject": session.subject,
        "issuer": session.issuer,
        "provider": session.provider_id,
        "claims": dict(session.claims),
        "id_token_header": _jose_header(session.id_token),
        "sid": session.id_token_claims.get("sid"),
        "access_token": _fingerprint(session.access_token),
        "refresh_token": session.refresh_token,
        "expires_at": session.expires_at,
    }


@get("/profile", media_type=MediaType.HTML)
async def profile(rpkit_session: NamedDependency[SessionData | None]) -> str:
    shown = html.escape(json.dumps(profile_of(rpkit_session), indent=1))
    form = ""
    if rpkit_session is not None:
        csrf = html.escape(rpkit_session.csrf_token)
        form = (
            "<form method='post' action='/auth/logout'>"
            f"<input type='hidden' name='csrf_token' value='{csrf}'>"
            f"<input type='hidden' name='return_to' value='{LOGOUT_RETURN_TO}'>"
            "<button id='logout' type='submit'>Sign out</button></form>"
        )
    return f"<!doctype html><title>Profile</title><pre id='profile'>{shown}</pre>{form}"


@get(LOGOUT_RETURN_TO, media_type=MediaType.HTML)
async def signed_out() -> str:
    return "<!doctype html><title>Signed out</title><h1 id='signed-out'>Signed out</h1>"


class RunningApp:
    """rpkit's Litestar app served by uvicorn on 127.0.0.1 in a thread; ``requests`` lists
    (method, path) of everything it served."""

    def __init__(self, urls: AppUrls, plugin: RPKitPlugin, server: ServerThread) -> None:
        self.urls = urls
        self.plugin = plugin
        self.requests: list[tuple[str, str]] = []
        self._server = server

    @property
    def origin(self) -> str:
        return self.urls.origin

    def stop(self) -> None:
        self._server.stop()


@dataclass
class PendingApp:
    """An app whose socket is bound (so its URLs are known to register at the provider) but
    which starts only once the provider runs: it fetches discovery and keys at startup."""

    urls: AppUrls
    sock: Any

    def close(self) -> None:
        """Release the socket of an app that was never started."""
        self.sock.close()

    def start(
        self,
        issuer: str,
        registrations: Iterable[Registration],
        *,
        route_handlers: Sequence[Any] = (),
        **config: Any,
    ) -> RunningApp:
        providers = [r.provider_config(issuer, self.urls) for r in registrations]
        settings: dict[str, Any] = {
            "providers": providers,
            "secret": APP_SECRET,
            "base_url": self.urls.origin,
        }
        plugin = RPKitPlugin(RPKitConfig(**(settings | config)))
        litestar = Litestar([profile, signed_out, *route_handlers], plugins=[plugin])
        holder: list[RunningApp] = []
        server = ServerThread(_recording(litestar, lambda: holder[0].requests), self.sock)
        running = RunningApp(self.urls, plugin, server)
        holder.append(running)
        server.start()
        return running


def bind_app(host: str) -> PendingApp:
    """Bind the app's socket on 127.0.0.1; the browser reaches it as ``http://{host}:port``."""
    sock = bind_loopback(0)
    port = sock.getsockname()[1]
    return PendingApp(AppUrls(f"http://{host}:{port}", f"http://127.0.0.1:{port}"), sock)


def _recording(app: Any, log: Callable[[], list[tuple[str, str]]]) -> Any:
    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            log().append((scope["method"], scope["path"]))
        await app(scope, receive, send)

    return asgi


def lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Records as text, for assertion messages."""
    for record in records:
        yield json.dumps(record)
