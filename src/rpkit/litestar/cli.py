"""``litestar rpkit ...``: see each provider's discovery and key status, and check the setup.

``litestar rpkit providers`` lists the providers with their discovery and JWKS status.
``litestar rpkit check`` fetches discovery (which checks the issuer exactly) and the JWKS, checks
the form of every redirect URI, and sends each provider two probes: a token request with a dummy
code (``invalid_grant`` means the client credentials were accepted, ``invalid_client`` that they
were not) and an authorization request (refused at once, it names a redirect URI the provider
does not know; answered with a sign-in page, registration stays unconfirmed: only a real login
shows it). It exits 1 when something needs fixing, with one line per problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlsplit

import click
import httpx
from litestar import Litestar

from rpkit._client_auth import new_code_verifier
from rpkit.client import RelyingParty
from rpkit.config import ProviderConfig, is_loopback_http
from rpkit.errors import ClientSecretError, InvalidGrantError, RPKitError, TokenEndpointError

if TYPE_CHECKING:
    from rpkit.litestar.plugin import RPKitPlugin

__all__ = [
    "CheckReport",
    "ProviderStatus",
    "build_cli_group",
    "check_problems",
    "install_error_hook",
    "provider_statuses",
    "run_check",
]

DUMMY_CODE = "rpkit-check-dummy-code"
"""The authorization code of the token probe: no provider ever issued it."""
_CLIENT_REFUSED = frozenset(
    {"invalid_client", "unauthorized_client", "incorrect_client_credentials"}
)
"""OAuth errors that mean "these client credentials are wrong" (GitHub has its own name)."""
_CODE_REFUSED = frozenset({"invalid_grant", "bad_verification_code"})
"""OAuth errors that mean "the client is fine, the code is not" (GitHub: bad_verification_code)."""
_NOT_CHECKED = (
    "not checked: whether each provider has the post-logout redirect URIs registered{more}: "
    "only a real sign-in (and sign-out) shows it"
)


@dataclass(frozen=True)
class ProviderStatus:
    """One provider as ``litestar rpkit providers`` shows it."""

    provider_id: str
    issuer: str
    discovery: str
    """``ok`` or the error code."""
    keys: int | None
    """How many usable signing keys the JWKS offers; None when it could not be fetched."""


@dataclass
class CheckReport:
    """What ``litestar rpkit check`` found, one line of text per finding."""

    problems: list[str] = field(default_factory=list)
    """Something to fix: a login would fail (exit status 1)."""
    passed: list[str] = field(default_factory=list)
    """Checked and right."""
    unconfirmed: list[str] = field(default_factory=list)
    """Could not be decided without a real login."""

    def add(self, kind: Literal["problem", "ok", "unconfirmed"], line: str) -> None:
        """Record one finding."""
        {"problem": self.problems, "ok": self.passed, "unconfirmed": self.unconfirmed}[kind].append(
            line
        )


async def provider_statuses(plugin: RPKitPlugin) -> list[ProviderStatus]:
    """Fetch each provider's discovery document and JWKS once."""
    async with _client(plugin) as http:
        rp = RelyingParty(plugin.config.providers, http=http)
        return [await _status(rp, config) for config in plugin.config.providers]


async def _status(rp: RelyingParty, config: ProviderConfig) -> ProviderStatus:
    try:
        metadata = await rp.metadata(config.id)
    except RPKitError as exc:
        return ProviderStatus(config.id, config.issuer, exc.code, None)
    if not metadata.jwks_uri:  # an OAuth 2.0-only provider signs no ID token
        return ProviderStatus(config.id, config.issuer, "ok", None)
    try:
        await rp.jwks.warm(metadata.jwks_uri)
        keys = rp.jwks.usable_keys(metadata.jwks_uri)
    except RPKitError:
        keys = None
    return ProviderStatus(config.id, config.issuer, "ok", keys)


async def check_problems(plugin: RPKitPlugin, app: Litestar) -> list[str]:
    """Everything ``litestar rpkit check`` would complain about (empty when all is well)."""
    return (await run_check(plugin, app)).problems


async def run_check(plugin: RPKitPlugin, app: Litestar, *, probes: bool = True) -> CheckReport:
    """Check every provider: discovery, keys, the redirect URIs' form and, with ``probes``, the
    client credentials (a token request with :data:`DUMMY_CODE`) and whether the provider
    refuses the redirect URI at once (an authorization request, not followed further)."""
    config = plugin.config
    report = CheckReport()
    if not config.base_url:
        report.add("problem", "base_url is not set: redirect URIs follow the Host header")
    base = config.base_url or "https://app.invalid"
    async with _client(plugin) as http:
        rp = RelyingParty(config.providers, http=http)
        for provider in config.providers:
            callback = base + app.route_reverse("rpkit:callback", provider_id=provider.id)
            await _check_provider(report, rp, http, provider, callback, probes=probes)
            if provider.frontchannel_logout:
                front = app.route_reverse("rpkit:frontchannel-logout", provider_id=provider.id)
                report.add(*_frontchannel_finding(provider, base + front))
    return report


def _frontchannel_finding(provider: ProviderConfig, uri: str) -> Finding:
    """The URI to register as ``frontchannel_logout_uri``, or why it cannot serve as one."""
    problems = _uri_problems(provider.id, "frontchannel_logout_uri", uri, provider)
    if problems:
        return "problem", problems[0]
    if provider.frontchannel_logout_without_iss:
        # Entra ID (the preset sets this relaxation) has no frontchannel_logout_uri or
        # frontchannel_logout_session_required: its app registration has a "Front-channel
        # logout URL", called with sid only, and sid reaches the ID token as an optional claim
        # (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#single-sign-out).
        return "ok", (
            f"{provider.id}: front-channel logout at {uri}: register it as the provider's "
            "front-channel logout URL (Entra ID: Authentication > Front-channel logout URL) and "
            "have sid in its ID tokens (Entra ID: Token configuration > optional claim sid); "
            "requests with sid only are accepted (frontchannel_logout_without_iss)"
        )
    return "ok", (
        f"{provider.id}: front-channel logout at {uri}: register it as frontchannel_logout_uri "
        "with frontchannel_logout_session_required=true"
    )


async def _check_provider(
    report: CheckReport,
    rp: RelyingParty,
    http: httpx.AsyncClient,
    provider: ProviderConfig,
    callback: str,
    *,
    probes: bool,
) -> None:
    pid = provider.id
    uris = [("redirect URI", callback)]
    if provider.post_logout_redirect_uri:
        uris.append(("post_logout_redirect_uri", provider.post_logout_redirect_uri))
    form = [p for what, uri in uris for p in _uri_problems(pid, what, uri, provider)]
    for problem in form:
        report.add("problem", problem)
    status = await _status(rp, provider)
    if status.discovery != "ok":
        report.add("problem", f"{pid}: discovery failed ({status.discovery})")
        return
    if status.keys == 0 or (status.keys is None and not provider.is_oauth2):
        report.add("problem", f"{pid}: the JWKS offers no usable signing key")
        return
    keys = "" if status.keys is None else f", {status.keys} signing keys"
    report.add("ok", f"{pid}: discovery of {provider.issuer} (issuer matches){keys}")
    if probes and not form:
        report.add(*await _probe_token_endpoint(rp, provider, callback))
        report.add(*await _probe_authorization(rp, http, provider, callback))


Finding = tuple[Literal["problem", "ok", "unconfirmed"], str]


async def _probe_token_endpoint(rp: RelyingParty, provider: ProviderConfig, uri: str) -> Finding:
    """Redeem a code no provider issued: how the token endpoint refuses it tells whether it
    authenticated the client first."""
    try:
        metadata = await rp.metadata(provider.id)
        await rp.tokens.exchange_code(
            provider, metadata, code=DUMMY_CODE, redirect_uri=uri, code_verifier=new_code_verifier()
        )
    except RPKitError as exc:
        return _token_finding(provider, exc)
    return "problem", f"{provider.id}: the token endpoint accepted a code no provider issued"


def _token_finding(provider: ProviderConfig, exc: RPKitError) -> Finding:
    pid = provider.id
    error = exc.error if isinstance(exc, TokenEndpointError) else None
    if isinstance(exc, InvalidGrantError) or error in _CODE_REFUSED:
        return "ok", f"{pid}: client credentials accepted (only the dummy code was refused)"
    if error in _CLIENT_REFUSED:
        return "problem", (
            f"{pid}: the token endpoint refused the client credentials ({error}): check "
            f"client_id {provider.client_id!r}, the secret or key, and client_auth "
            f"{provider.client_auth!r}"
        )
    if isinstance(exc, TokenEndpointError) and not isinstance(exc, ClientSecretError):
        return "problem", f"{pid}: a token request failed: {exc.detail}"
    return "problem", f"{pid}: {exc.detail}"  # no request made: a secret or key it cannot use


async def _probe_authorization(
    rp: RelyingParty, http: httpx.AsyncClient, provider: ProviderConfig, uri: str
) -> Finding:
    """Send the browser's first request of a login and read only the first answer."""
    pid = provider.id
    try:
        login = await rp.begin_login(pid, redirect_uri=uri)
        answer = await http.get(login.url, follow_redirects=False)
    except RPKitError as exc:
        return "problem", f"{pid}: an authorization request could not be made: {exc.detail}"
    except httpx.HTTPError as exc:
        return "problem", f"{pid}: the authorization endpoint did not answer ({type(exc).__name__})"
    if answer.status_code >= 400:
        return "problem", (
            f"{pid}: the provider refused an authorization request at once (HTTP "
            f"{answer.status_code}): is {uri} registered as a redirect URI of client "
            f"{provider.client_id!r}?"
        )
    target = urlsplit(answer.headers.get("location", ""))
    if answer.is_redirect and target._replace(query="", fragment="").geturl() == uri:
        error = dict(parse_qsl(target.query)).get("error")
        if error:
            return "problem", f"{pid}: the provider answered an authorization request with {error}"
        return "ok", f"{pid}: redirect URI {uri} accepted (the provider sent the browser back)"
    return "unconfirmed", (
        f"{pid}: redirect URI {uri} unconfirmed: the provider answered with its sign-in page "
        f"(HTTP {answer.status_code}), and shows a wrong redirect URI only after sign-in"
    )


def _uri_problems(provider_id: str, what: str, uri: str, provider: ProviderConfig) -> list[str]:
    parts = urlsplit(uri)
    if parts.fragment:
        return [f"{provider_id}: {what} {uri} has a fragment"]
    if parts.scheme == "https" or (provider.allow_insecure_http and is_loopback_http(uri)):
        return []
    return [
        f"{provider_id}: {what} {uri} must use https (loopback http only with allow_insecure_http)"
    ]


def _client(plugin: RPKitPlugin) -> httpx.AsyncClient:
    timeout = httpx.Timeout(plugin.config.http_timeout)
    return httpx.AsyncClient(timeout=timeout, transport=plugin.http_transport)


def install_error_hook(argv: Sequence[str] | None = None) -> bool:
    """Under ``litestar ... rpkit ...``, print an rpkit error that escapes while the app loads (a
    :class:`~rpkit.errors.ConfigurationError` raised by ``RPKitConfig``, say) as one line,
    ``rpkit: <code>: <detail>``, instead of a traceback; the exit status stays 1.

    It must run before the app module builds its configuration, so ``rpkit.litestar`` calls it
    on import. Anything else, and any other command line, keeps Python's own hook.

    Returns:
        Whether the hook was installed (``argv``, default ``sys.argv``, runs the Litestar CLI
        with an ``rpkit`` command).
    """
    args = list(sys.argv if argv is None else argv)
    program = Path(args[0]).parent.name if args and args[0].endswith("__main__.py") else ""
    program = program or (Path(args[0]).name if args else "")
    if program != "litestar" or "rpkit" not in args[1:]:
        return False
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, RPKitError):
            sys.stderr.write(f"rpkit: {exc.code}: {exc.detail}\n")
            return
        previous(kind, exc, tb)

    sys.excepthook = hook
    return True


def _echo_report(report: CheckReport) -> None:
    for line in report.passed:
        click.echo(f"ok: {line}")
    for line in report.unconfirmed:
        click.echo(f"unconfirmed: {line}")
    for line in report.problems:
        click.echo(f"problem: {line}", err=True)
    more = ", nor the redirect URIs marked unconfirmed" if report.unconfirmed else ""
    click.echo(_NOT_CHECKED.format(more=more))


@contextlib.contextmanager
def _quiet_http_log() -> Iterator[None]:
    """httpx logs every request at INFO, authorization URLs included: not for this output."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def build_cli_group(plugin_type: type[RPKitPlugin]) -> click.Group:
    """The ``rpkit`` command group; commands find the app's plugin by type."""
    from litestar.cli._utils import LitestarGroup  # noqa: PLC0415 - private, CLI-only import

    @click.group(cls=LitestarGroup, name="rpkit")
    def rpkit() -> None:
        """rpkit: identity providers and sign-in setup."""

    @rpkit.command(name="providers")  # type: ignore[untyped-decorator]
    def providers(app: Litestar) -> None:
        """List providers with their discovery and JWKS status."""
        try:
            with _quiet_http_log():
                statuses = asyncio.run(provider_statuses(app.plugins.get(plugin_type)))
        except RPKitError as exc:
            click.echo(f"problem: {exc.code}: {exc.detail}", err=True)
            raise SystemExit(1) from None
        for status in statuses:
            keys = "-" if status.keys is None else str(status.keys)
            click.echo(
                f"{status.provider_id}\t{status.issuer}\tdiscovery={status.discovery}\tkeys={keys}"
            )

    @rpkit.command(name="check")  # type: ignore[untyped-decorator]
    @click.option(
        "--no-probes",
        is_flag=True,
        help="Send no token or authorization request: discovery, keys and URI forms only.",
    )
    def check(app: Litestar, no_probes: bool) -> None:
        """Check discovery, keys, redirect URIs and client credentials; exit 1 on a problem."""
        try:
            report = asyncio.run(run_check(app.plugins.get(plugin_type), app, probes=not no_probes))
        except RPKitError as exc:
            click.echo(f"problem: {exc.code}: {exc.detail}", err=True)
            raise SystemExit(1) from None
        _echo_report(report)
        if report.problems:
            raise SystemExit(1)
        click.echo("rpkit: configuration looks right")

    return rpkit
