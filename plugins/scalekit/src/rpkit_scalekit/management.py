"""The Scalekit management API over REST, authenticated with the plugin's own M2M token.

The token comes from ``client_credentials`` at ``{env}/oauth/token`` through rpkit's core
(:class:`~rpkit.client_credentials.ClientCredentials`): fetched lazily on the first call (never
in a constructor, so an application starts while Scalekit is down), cached until shortly before
it expires, and fetched once for all concurrent callers; a refused request is not repeated for a
few seconds. A 401 answer drops the token it was sent with and repeats the request once with a
fresh one: Scalekit authenticates before it acts, so a 401 request was never carried out.
Refusals become typed errors parsed from the google.rpc.Status envelope. Every request goes
through :mod:`rpkit._outbound`: a redirect is refused (it would carry the M2M token or the client
secret elsewhere), and every answer is read within a deadline and a byte bound.

Example:
    >>> import httpx
    >>> from rpkit_scalekit.management import ManagementClient
    >>> api = ManagementClient(
    ...     httpx.AsyncClient(timeout=10.0),
    ...     env_url="https://acme.scalekit.com",
    ...     client_id="skc_1",
    ...     client_secret="s3cret",
    ... )
    >>> # connections = await api.list_connections(domain="example.com")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import msgspec

from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT, Refused, check_bounds, fetch
from rpkit.client_credentials import ClientCredentials, ConfiguredProviders
from rpkit.config import Endpoints, ProviderConfig, is_loopback_http
from rpkit.errors import (
    ClientCredentialsError,
    ClientCredentialsRefusedError,
    ConfigurationError,
)
from rpkit.tokens import TokenClient
from rpkit_scalekit._wire import decode_object, error_for, read_problem
from rpkit_scalekit.errors import ScalekitAuthError, ScalekitError, ScalekitUnavailableError

__all__ = ["API_VERSION", "MAX_RESPONSE_BYTES", "Connection", "ManagementClient"]

API_VERSION = "20261012"
"""The ``x-api-version`` pin the response shapes here were read from (scalekit-sdk-python 2.21)."""
MAX_RESPONSE_BYTES = 256 * 1024
"""Largest answer read from the token endpoint or the API: an error envelope, a token, a page of
connections are each a few kilobytes."""
_TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
_PROVIDER_ID = "scalekit-api"
_REFUSAL_TTL = 5
"""Seconds a refused M2M token request is answered from memory (the secret will not change
sooner): an outage of credentials costs Scalekit one request per five seconds, not one per call."""


class Connection(msgspec.Struct, frozen=True, kw_only=True):
    """One SSO or social connection (``ListConnection``); unknown members are ignored."""

    id: str
    provider: str | None = None
    """``OKTA``, ``GOOGLE``, ``MICROSOFT_AD``...; a string, so new providers do not break."""
    type: str | None = None
    """``OIDC``, ``SAML``, ``PASSWORDLESS``, ``OAUTH``..."""
    status: str | None = None
    """``DRAFT``, ``IN_PROGRESS`` or ``COMPLETED``."""
    enabled: bool = False
    organization_id: str | None = None
    organization_name: str | None = None
    ui_button_title: str | None = None
    domains: tuple[str, ...] = ()
    created_at: str | None = None

    @property
    def active(self) -> bool:
        """Completed and enabled: a connection users can sign in with."""
        return self.enabled and self.status == "COMPLETED"


class _Connections(msgspec.Struct):
    connections: list[Connection] = msgspec.field(default_factory=list)


class ManagementClient:
    """Authenticated calls to ``{env}/api/v1/**``.

    Args:
        http: the application's pooled client; never closed here. Its redirect setting is
            ignored (a redirect is refused), and its timeouts apply only where tighter than
            ``timeout``.
        env_url: the environment URL, e.g. ``https://acme.scalekit.com`` (no trailing slash).
        client_id: an API client of the environment (``skc_...``) allowed to call the API.
        client_secret: its secret; sent only to the token endpoint, never logged.
        refresh_margin: seconds before expiry at which the token is replaced (at most half its
            lifetime), so no request leaves with a token about to expire in flight.
        api_version: the ``x-api-version`` header sent with API calls; None sends none.
        allow_insecure_http: development only: allow an ``http://`` loopback ``env_url``.
        max_response_bytes: the largest answer read (default :data:`MAX_RESPONSE_BYTES`,
            256 KiB); a larger one is a :class:`~rpkit_scalekit.errors.ScalekitUnavailableError`.
        timeout: seconds one request may take in all (default 10).
        clock: wall-clock seconds; injectable for tests.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        env_url: str,
        client_id: str,
        client_secret: str,
        refresh_margin: float = 60,
        api_version: str | None = API_VERSION,
        allow_insecure_http: bool = False,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        secure = env_url.startswith("https://") or (
            allow_insecure_http and is_loopback_http(env_url)
        )
        if not secure or env_url.endswith("/"):
            msg = (
                "env_url must be an https URL without a trailing slash (http only on loopback "
                "with allow_insecure_http=True): the client secret is sent to it"
            )
            raise ConfigurationError(msg)
        if not client_id or not client_secret or refresh_margin < 0:
            msg = "ManagementClient needs client_id, client_secret and refresh_margin >= 0"
            raise ConfigurationError(msg)
        check_bounds("ManagementClient", max_response_bytes, timeout)
        self._http = http
        self._max_bytes = max_response_bytes
        self._timeout = timeout
        self.env_url = env_url
        self._api_version = api_version
        self._clock = clock
        self._log = get_logger(provider="scalekit", issuer=env_url)
        api_client = ProviderConfig(
            id=_PROVIDER_ID,
            issuer=env_url,
            client_id=client_id,
            client_secret=client_secret,
            client_auth="client_secret_post",  # as Scalekit's SDKs send it
            endpoints=Endpoints(
                authorization_endpoint=f"{env_url}/oauth/authorize",
                token_endpoint=env_url + _TOKEN_PATH,
                jwks_uri=f"{env_url}/keys",
            ),
            allow_insecure_http=allow_insecure_http,
        )
        tokens = TokenClient(http, clock=clock, max_bytes=max_response_bytes, timeout=timeout)
        self._m2m = ClientCredentials(
            ConfiguredProviders([api_client], tokens=tokens, clock=clock),
            http,
            renew_before=refresh_margin,
            refusal_ttl=_REFUSAL_TTL,
            max_bytes=max_response_bytes,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"ManagementClient(env_url={self.env_url!r})"

    async def access_token(self) -> str:
        """The current M2M access token, fetched when absent or about to expire.

        Concurrent callers share one token request.

        Raises:
            ScalekitAuthError: the client credentials were refused (a 4xx); the same answer is
                given, without a request, for the next few seconds.
            ScalekitUnavailableError: the token endpoint could not be reached, answered 5xx or
                429, or answered something unusable.
        """
        try:
            token = await self._m2m.token(_PROVIDER_ID)
        except ClientCredentialsError as exc:
            raise _scalekit_error(exc) from exc
        return token.access_token

    def invalidate_token(self, used: str | None = None) -> None:
        """Drop the cached token, or only if it is still ``used`` (so a 401 seen by several
        concurrent requests causes one refetch, not one each)."""
        if used is None:
            cached = self._m2m.cached(_PROVIDER_ID)
            used = cached.access_token if cached is not None else None
        if used is not None:
            self._m2m.forget(used)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one authenticated request; on 401, once more with a fresh token.

        Any other status is returned as is: callers that give statuses a meaning of their own
        (passwordless) read the answer themselves. Nothing else is ever retried.

        Raises:
            ScalekitAuthError: still 401 with a fresh token, or the token was refused.
            ScalekitUnavailableError: no usable answer (connection error, timeout, a redirect,
                an answer larger than ``max_response_bytes``).
        """
        token = await self.access_token()
        response = await self._send(method, path, token, params, json)
        if response.status_code != 401:
            return response
        self._log.info("rpkit.scalekit.m2m_token_rejected", method=method, path=path)
        self.invalidate_token(token)
        response = await self._send(method, path, await self.access_token(), params, json)
        if response.status_code == 401:
            problem = read_problem(response, clock=self._clock)
            self._log.warning("rpkit.scalekit.m2m_token_refused_twice", path=path)
            raise ScalekitAuthError(
                f"{method} {path} refused a freshly fetched M2M token", **problem.fields()
            )
        return response

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """:meth:`request`, then the 2xx body as a JSON object with snake_case keys.

        Raises:
            ScalekitError: the refusal, typed by status (see :mod:`rpkit_scalekit.errors`).
        """
        response = await self.request(method, path, params=params, json=json)
        what = f"{method} {path}"
        if not response.is_success:
            problem = read_problem(response, clock=self._clock)
            self._log.info(
                "rpkit.scalekit.api_refused",
                method=method,
                path=path,
                status=problem.status,
                error_code=problem.error_code,
                request_id=problem.request_id,
            )
            raise error_for(problem, what)
        body = decode_object(response.content)
        if body is None:
            raise ScalekitUnavailableError(f"{what} answered with no JSON object", status=200)
        return body

    async def list_connections(
        self,
        *,
        domain: str | None = None,
        organization_id: str | None = None,
        include_all: bool = False,
    ) -> tuple[Connection, ...]:
        """``GET /api/v1/connections``: connections for an email domain and/or organization.

        Args:
            domain: an email domain; Scalekit matches it case-insensitively.
            organization_id: an organization (``org_...``).
            include_all: also drafts and disabled connections (``include=all``); by default
                Scalekit returns only active ones.
        """
        params = {"domain": domain, "organization_id": organization_id}
        query = {name: value for name, value in params.items() if value}
        if include_all:
            query["include"] = "all"
        body = await self.request_json("GET", "/api/v1/connections", params=query)
        try:
            entries = msgspec.convert(_tolerant_domains(body), _Connections)
        except msgspec.ValidationError as exc:
            msg = f"GET /api/v1/connections answered an unexpected shape: {exc}"
            raise ScalekitUnavailableError(msg, status=200) from exc
        return tuple(entries.connections)

    async def _send(
        self,
        method: str,
        path: str,
        token: str,
        params: Mapping[str, str] | None,
        json: Mapping[str, Any] | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if self._api_version:
            headers["x-api-version"] = self._api_version
        return await self._fetch(
            method, path, f"{method} {path}", params=params, json=json, headers=headers
        )

    async def _fetch(
        self,
        method: str,
        path: str,
        what: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request under rpkit's policy (:func:`rpkit._outbound.fetch`).

        Raises:
            ScalekitUnavailableError: no answer, or one rpkit does not read (a redirect, an
                oversized or compressed body); ``status`` is the refused answer's.
        """
        try:
            return await fetch(
                self._http,
                method,
                self.env_url + path,
                what=what,
                max_bytes=self._max_bytes,
                timeout=self._timeout,
                headers=headers,
                params=params,
                json=json,
                data=data,
            )
        except Refused as exc:
            self._log.warning("rpkit.scalekit.answer_refused", what=what, reason=exc.reason)
            raise ScalekitUnavailableError(exc.detail, status=exc.status) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            msg = f"{what} failed: {type(exc).__name__}"
            raise ScalekitUnavailableError(msg) from exc


def _scalekit_error(exc: ClientCredentialsError) -> ScalekitError:
    """The plugin's error for the core's: a refusal is an authentication error; no answer, a
    5xx, 429 or an unusable answer means Scalekit is unavailable."""
    kind = ScalekitAuthError if isinstance(exc, ClientCredentialsRefusedError) else None
    cls = kind or ScalekitUnavailableError
    return cls(
        exc.detail.replace("the token endpoint", "the M2M token request", 1),
        status=exc.status,
        error_code=exc.error,
        message=exc.description,
    )


def _tolerant_domains(body: dict[str, Any]) -> dict[str, Any]:
    """``domains`` entries as strings, whether sent as strings or ``{"domain": ...}`` objects."""
    entries = body.get("connections")
    if type(entries) is not list:
        return body
    for entry in entries:
        domains = entry.get("domains") if type(entry) is dict else None
        if type(domains) is list:
            entry["domains"] = [
                d.get("domain") if type(d) is dict else d
                for d in domains
                if isinstance(d, str) or (type(d) is dict and isinstance(d.get("domain"), str))
            ]
    return body
