"""OpenID Provider discovery: fetch, validate and cache ``/.well-known/openid-configuration``.

A document is used only after it passes every check: the exact issuer (rows 2, 3), the required
members and ``https`` endpoints (row 4), and Authlib's per-member validators. Documents are cached
per issuer for a fixed TTL, concurrent fetches for one issuer share one request, and a failed or
rejected refresh keeps serving the last good document (stale-if-error). The document is fetched
without following redirects, within a deadline and a byte bound (:mod:`rpkit._outbound`).

Example:
    >>> import httpx
    >>> from rpkit.discovery import DiscoveryCache
    >>> discovery = DiscoveryCache(httpx.AsyncClient(timeout=10.0), ttl=3600)
    >>> # metadata = await discovery.get(provider_config)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
from authlib.oidc.discovery import OpenIDProviderMetadata

from rpkit._frozen import freeze
from rpkit._json import decode as decode_json
from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT, Refused, check_bounds, fetch
from rpkit.config import ProviderConfig, is_loopback_http
from rpkit.errors import ConfigurationError, DiscoveryError, IssuerMismatchError

__all__ = [
    "MAX_DISCOVERY_BYTES",
    "WELL_KNOWN_PATH",
    "DiscoveryCache",
    "ProviderMetadata",
    "configured_metadata",
    "discovery_url",
    "fetch_metadata",
    "parse_metadata",
]

WELL_KNOWN_PATH = "/.well-known/openid-configuration"
MAX_DISCOVERY_BYTES = 512 * 1024
"""Largest discovery document read; real ones are a few kilobytes (Entra ID's is about 2 KiB)."""
REQUIRED_MEMBERS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
)
# Checked here, more strictly than Authlib does: its issuer and URL validators accept any loopback
# http URL (and anything at all under AUTHLIB_INSECURE_TRANSPORT), and it demands RS256 in the
# algorithm list although rpkit takes the ID-token algorithm from the configuration (row 22).
# It also demands token_endpoint_auth_signing_alg_values_supported whenever private_key_jwt is
# listed, which refuses Entra ID's real document; rpkit takes the assertion's algorithm from
# the configuration (private_key_alg), so the member is checked here only for its shape.
_OWN_CHECKS = frozenset(
    {
        "issuer",
        "id_token_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    }
)


class ProviderMetadata(msgspec.Struct, frozen=True, kw_only=True):
    """A validated discovery document (Discovery §3). Unknown members are tolerated and stay
    available, read-only, in :attr:`raw`."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    response_types_supported: tuple[str, ...]
    subject_types_supported: tuple[str, ...]
    id_token_signing_alg_values_supported: tuple[str, ...]
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    registration_endpoint: str | None = None
    revocation_endpoint: str | None = None
    introspection_endpoint: str | None = None
    scopes_supported: tuple[str, ...] = ()
    response_modes_supported: tuple[str, ...] = ("query", "fragment")
    grant_types_supported: tuple[str, ...] = ("authorization_code", "implicit")
    code_challenge_methods_supported: tuple[str, ...] = ()
    """Empty when the OP does not advertise PKCE; rpkit sends S256 regardless (row 5)."""
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)
    token_endpoint_auth_signing_alg_values_supported: tuple[str, ...] = ()
    userinfo_signing_alg_values_supported: tuple[str, ...] = ()
    claims_supported: tuple[str, ...] = ()
    authorization_response_iss_parameter_supported: bool = False
    """RFC 9207: when true, a callback without ``iss`` is rejected (row 10b)."""
    backchannel_logout_supported: bool = False
    backchannel_logout_session_supported: bool = False
    frontchannel_logout_supported: bool = False
    pushed_authorization_request_endpoint: str | None = None
    """RFC 9126 §5: where authorization requests are pushed; None when the OP has no PAR."""
    require_pushed_authorization_requests: bool = False
    """RFC 9126 §5: the OP accepts authorization requests only through PAR."""
    dpop_signing_alg_values_supported: tuple[str, ...] = ()
    """RFC 9449 §5.1: the algorithms the OP accepts in DPoP proofs; empty when not advertised."""
    raw: Mapping[str, Any] = msgspec.field(default_factory=lambda: MappingProxyType({}))
    """The whole document as received, deeply read-only (mappings and tuples)."""


def discovery_url(issuer: str) -> str:
    """Where ``issuer`` publishes its metadata: one trailing ``/`` removed (Discovery §4)."""
    base = issuer[:-1] if issuer.endswith("/") else issuer
    return base + WELL_KNOWN_PATH


class _Entry(msgspec.Struct, frozen=True):
    metadata: ProviderMetadata
    refresh_at: float


class DiscoveryCache:
    """Validated provider metadata, per issuer, fetched over the application's shared client.

    Args:
        http: the application's pooled client; the cache never closes it. Its redirect setting
            is ignored (a redirect is refused), and its timeouts apply only where tighter than
            ``timeout``.
        ttl: seconds a document is served before it is refetched. Nothing the OP sends (such as
            ``Cache-Control``) lengthens it.
        retry_after: after a failed refresh, seconds the stale document is served before the
            next attempt, so an OP outage does not cost every login a failing request.
        max_bytes: the largest document read (default :data:`MAX_DISCOVERY_BYTES`, 512 KiB); a
            larger one is refused, and a cached document keeps being served.
        timeout: seconds one fetch may take in all (default 10).
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        ttl: float = 3600,
        retry_after: float = 30,
        max_bytes: int = MAX_DISCOVERY_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or retry_after < 0:
            msg = "DiscoveryCache needs ttl > 0 and retry_after >= 0"
            raise ConfigurationError(msg)
        check_bounds("DiscoveryCache", max_bytes, timeout)
        self._http = http
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._ttl = ttl
        self._retry_after = retry_after
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[ProviderMetadata]] = {}

    async def get(self, config: ProviderConfig) -> ProviderMetadata:
        """The provider's validated metadata, from the cache while it is fresh.

        Raises:
            IssuerMismatchError: the document's ``issuer`` is not exactly ``config.issuer``.
            DiscoveryError: the document could not be fetched or failed validation, and no
                earlier good document exists.
        """
        if config.endpoints is not None:
            return configured_metadata(config)
        entry = self._entries.get(config.issuer)
        if entry is not None and self._clock() < entry.refresh_at:
            return entry.metadata
        task = self._inflight.get(config.issuer)
        if task is None:
            task = asyncio.create_task(self._refresh(config))
            self._inflight[config.issuer] = task
            task.add_done_callback(lambda done: self._forget(config.issuer, done))
        # Shielded: a caller that gives up does not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    def invalidate(self, issuer: str) -> None:
        """Forget the document of ``issuer``; the next :meth:`get` fetches it again."""
        self._entries.pop(issuer, None)

    def cached(self, issuer: str) -> ProviderMetadata | None:
        """The last good document of ``issuer``, fresh or stale, without any I/O."""
        entry = self._entries.get(issuer)
        return entry.metadata if entry is not None else None

    def _forget(self, issuer: str, task: asyncio.Task[ProviderMetadata]) -> None:
        if self._inflight.get(issuer) is task:
            del self._inflight[issuer]
        if not task.cancelled():
            task.exception()  # retrieved here, so asyncio never reports it as unhandled

    async def _refresh(self, config: ProviderConfig) -> ProviderMetadata:
        log = get_logger(provider=config.id, issuer=config.issuer)
        previous = self._entries.get(config.issuer)
        try:
            metadata = await fetch_metadata(
                self._http, config, max_bytes=self._max_bytes, timeout=self._timeout
            )
        except DiscoveryError as exc:
            if previous is None:
                log.warning("rpkit.discovery.failed", code=exc.code, detail=exc.detail)
                raise
            log.warning("rpkit.discovery.serving_stale", code=exc.code, detail=exc.detail)
            retry_at = self._clock() + self._retry_after
            self._entries[config.issuer] = _Entry(previous.metadata, retry_at)
            return previous.metadata
        self._entries[config.issuer] = _Entry(metadata, self._clock() + self._ttl)
        log.info("rpkit.discovery.fetched", jwks_uri=metadata.jwks_uri)
        return metadata


async def fetch_metadata(
    http: httpx.AsyncClient,
    config: ProviderConfig,
    *,
    max_bytes: int = MAX_DISCOVERY_BYTES,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - passed to rpkit._outbound.fetch
) -> ProviderMetadata:
    """Fetch and validate the discovery document of ``config``, without caching.

    A redirect is refused, never followed; so is a document larger than ``max_bytes``, and a
    fetch that takes longer than ``timeout`` seconds.

    Raises:
        IssuerMismatchError: the document names another issuer.
        DiscoveryError: anything else went wrong; the cause is chained (for an error status,
            an :class:`httpx.HTTPStatusError`).
    """
    url = config.discovery_url or discovery_url(config.issuer)
    try:
        response = await fetch(
            http,
            "GET",
            url,
            what=url,
            max_bytes=max_bytes,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )
    except Refused as exc:
        raise DiscoveryError(exc.detail) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        msg = f"fetching {url} failed: {type(exc).__name__}"
        raise DiscoveryError(msg) from exc
    if response.status_code != 200:
        msg = f"{url} answered HTTP {response.status_code}"
        status = httpx.HTTPStatusError(msg, request=response.request, response=response)
        raise DiscoveryError(msg) from status
    return parse_metadata(response.content, config)


def configured_metadata(config: ProviderConfig) -> ProviderMetadata:
    """The metadata of a provider whose :class:`~rpkit.config.Endpoints` are configured (no
    discovery; the URLs were checked when the configuration was built)."""
    endpoints = config.endpoints
    if endpoints is None:
        msg = f"provider {config.id!r} has no configured endpoints"
        raise ConfigurationError(msg)
    return ProviderMetadata(
        issuer=config.issuer,
        authorization_endpoint=endpoints.authorization_endpoint,
        token_endpoint=endpoints.token_endpoint,
        jwks_uri=endpoints.jwks_uri or "",
        response_types_supported=("code",),
        subject_types_supported=("public",),
        id_token_signing_alg_values_supported=(config.id_token_signed_response_alg,),
        userinfo_endpoint=endpoints.profile_endpoint,
        end_session_endpoint=endpoints.end_session_endpoint,
        code_challenge_methods_supported=("S256",),
        authorization_response_iss_parameter_supported=(
            endpoints.authorization_response_iss_parameter_supported
        ),
        raw=MappingProxyType(endpoints.urls()),
    )


def parse_metadata(content: bytes, config: ProviderConfig) -> ProviderMetadata:
    """Validate a discovery document's bytes for ``config``.

    Raises:
        IssuerMismatchError: the document names another issuer.
        DiscoveryError: not a JSON object, or a member is missing, of the wrong type or insecure.
    """
    document = decode_json(content, _not_json)
    if not isinstance(document, dict):
        msg = "the discovery document is not a JSON object"
        raise DiscoveryError(msg)
    _check_issuer(document, config.issuer)
    _check_members(document, config)
    metadata = _convert(document)
    problem = _authlib_problem(document)
    if problem is not None:
        msg = f"the discovery document is invalid: {problem}"
        raise DiscoveryError(msg)
    return metadata


def _not_json() -> DiscoveryError:
    return DiscoveryError("the discovery document is not JSON")


def _check_issuer(document: dict[str, Any], expected: str) -> None:
    issuer = document.get("issuer")
    # Plain string comparison: no case folding, slash trimming, port or percent normalisation.
    if issuer != expected:
        msg = f"the discovery document names issuer {issuer!r}, configured {expected!r}"
        raise IssuerMismatchError(msg)


def _check_members(document: dict[str, Any], config: ProviderConfig) -> None:
    missing = [name for name in REQUIRED_MEMBERS if document.get(name) in (None, "", [])]
    if missing:
        msg = f"the discovery document lacks required members {missing}"
        raise DiscoveryError(msg)
    response_types = document["response_types_supported"]
    if not isinstance(response_types, list) or "code" not in response_types:
        msg = "the provider does not list response_type 'code' in response_types_supported"
        raise DiscoveryError(msg)
    for name, value in document.items():
        if (name.endswith("_endpoint") or name == "jwks_uri") and isinstance(value, str):
            _check_url(name, value, config.allow_insecure_http)
    algs = document.get("token_endpoint_auth_signing_alg_values_supported", [])
    if not isinstance(algs, list) or "none" in algs:
        msg = "token_endpoint_auth_signing_alg_values_supported must be a list without 'none'"
        raise DiscoveryError(msg)


def _check_url(name: str, url: str, allow_insecure_http: bool) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unbalanced '[' or ']'
        msg = f"{name} is not a valid URL: {url!r}"
        raise DiscoveryError(msg) from exc
    if parts.scheme == "https" and parts.hostname:
        return
    if allow_insecure_http and is_loopback_http(url):
        return
    msg = f"{name} must be an https URL, got {url!r}"
    if is_loopback_http(url):
        msg += " (allow_insecure_http=True permits loopback http in development)"
    raise DiscoveryError(msg)


def _authlib_problem(document: dict[str, Any]) -> str | None:
    """Run Authlib's per-member validators (untyped; wrapped here once) except the ones
    :data:`_OWN_CHECKS` replaces. Returns the first problem, or None."""
    metadata = OpenIDProviderMetadata(document)
    for key in metadata.REGISTRY_KEYS:
        if key in _OWN_CHECKS:
            continue
        try:
            getattr(metadata, f"validate_{key}")()
        # Authlib assumes well-typed members; whatever it raises on a malformed one is a rejection.
        except Exception as exc:
            return f"{key}: {exc}"
    return None


def _convert(document: dict[str, Any]) -> ProviderMetadata:
    typed = {name: value for name, value in document.items() if name != "raw"}
    try:
        metadata = msgspec.convert(typed, ProviderMetadata)
    except msgspec.ValidationError as exc:
        msg = f"the discovery document is invalid: {exc}"
        raise DiscoveryError(msg) from exc
    return msgspec.structs.replace(metadata, raw=freeze(document))
