"""Machine-to-machine tokens: the client-credentials grant (RFC 6749 §4.4), cached and shared.

:class:`ClientCredentials` gets an access token for the application itself from any configured
provider, with the provider's client authentication (``client_secret_basic``,
``client_secret_post``, ``private_key_jwt``, a minted secret). A token is cached per provider,
``audience``, ``resource`` and set of scopes, and renewed ``renew_before`` seconds before it
expires. One request serves every concurrent caller in a process; with a shared store, one worker
fetches while the others wait for the token it saves. A refusal by the provider is never retried
automatically. :class:`ClientCredentialsAuth` puts the token on an ``httpx`` request and, on a
401, retries once with a fresh one.

What the provider answers decides the error:

- a 4xx (``invalid_client``, ``unauthorized_client``, ``invalid_scope``, ``invalid_target``...)
  is :class:`~rpkit.errors.ClientCredentialsRefusedError`: retrying the same request cannot
  help, so the refusal is remembered for ``refusal_ttl`` seconds (10 by default; 0 forgets it at
  once) and calls in that window raise it again without a request;
- no answer, a timeout, a 5xx, 408 or 429 is
  :class:`~rpkit.errors.ClientCredentialsUnavailableError`: nothing is retried within the call
  (the caller's deadline is its own), nothing is remembered, and the next call tries again;
- a 200 that is not a JSON object with a Bearer ``access_token`` and a sane ``expires_in`` (1 s
  to :data:`MAX_LIFETIME`; an integer, or a string of digits as Azure AD v1 and Scalekit send),
  a redirect or an oversized answer is :class:`~rpkit.errors.ClientCredentialsResponseError`.

``audience`` is the Auth0-style parameter: Auth0 requires it for this grant
(https://auth0.com/docs/tokens/guides/get-access-tokens), and so does Kinde
(https://docs.kinde.com/machine-to-machine-applications/about-m2m/authenticate-with-m2m).
``resource`` is RFC 8707's (§2), which Entra ID's v1 token endpoint also reads
(https://github.com/spring-projects/spring-security/issues/7379); Entra ID's v2 endpoint takes
neither (ask for the ``{resource}/.default`` scope), and Okta and Keycloak ignore ``audience``
(their authorization server's configuration sets it). Each is sent only when given.

Example:
    >>> import httpx
    >>> from rpkit import ProviderConfig, RelyingParty
    >>> from rpkit.client_credentials import ClientCredentials, ClientCredentialsAuth
    >>> http = httpx.AsyncClient(timeout=10.0)
    >>> okta = ProviderConfig(id="okta", issuer="https://example.okta.com",
    ...                       client_id="0oa1", client_secret="s3cret")
    >>> machine = ClientCredentials(RelyingParty([okta], http=http), http)
    >>> auth = ClientCredentialsAuth(machine, "okta", scopes=("orders:read",))
    >>> # orders = await http.get("https://orders.example/api", auth=auth)
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Sequence
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import httpx
import msgspec

from rpkit import _m2m_grant
from rpkit._client_auth import client_auth
from rpkit._log import get_logger
from rpkit._m2m_grant import MAX_LIFETIME
from rpkit._m2m_store import Outcome, SharedTokens, Stored
from rpkit._outbound import DEFAULT_TIMEOUT, check_bounds
from rpkit.config import ProviderConfig, is_loopback_http
from rpkit.discovery import ProviderMetadata, configured_metadata
from rpkit.errors import (
    ClientCredentialsError,
    ClientCredentialsRefusedError,
    ClientCredentialsUnavailableError,
    ClientSecretError,
    ConfigurationError,
    DiscoveryError,
    UnknownProviderError,
)
from rpkit.store import KeyValueStore
from rpkit.tokens import MAX_TOKEN_RESPONSE_BYTES, TokenClient

__all__ = [
    "MAX_LIFETIME",
    "ClientCredentials",
    "ClientCredentialsAuth",
    "ConfiguredProviders",
    "MachineToken",
    "Providers",
]

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")  # RFC 6749 §3.3 scope-token


class MachineToken(msgspec.Struct, frozen=True, kw_only=True):
    """A client-credentials access token. Its ``repr`` never shows the token."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    """Always ``Bearer`` (the answer's letter case is not kept)."""
    expires_at: int
    """Epoch seconds: ``expires_in`` after the answer (the provider's
    ``default_token_lifetime`` when the answer had none)."""
    scope: tuple[str, ...] = ()
    """The granted scopes: the answer's ``scope``, else the requested ones."""

    def __repr__(self) -> str:
        return f"MachineToken(expires_at={self.expires_at}, scope={self.scope!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """What rich (tracebacks with locals) shows: no token."""
        return [("expires_at", self.expires_at), ("scope", self.scope)]

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value: ``Bearer <token>``."""
        return f"Bearer {self.access_token}"


class Providers(Protocol):
    """Where :class:`ClientCredentials` finds a provider: a
    :class:`~rpkit.client.RelyingParty` is one, :class:`ConfiguredProviders` another."""

    tokens: TokenClient
    """Its token client: minted client secrets (``hooks.client_secret``) come from its cache."""
    clock: Callable[[], float]
    """Wall-clock seconds."""

    def provider(self, provider_id: str) -> ProviderConfig:
        """The configuration of ``provider_id`` (raises UnknownProviderError)."""
        ...

    async def metadata(self, provider_id: str) -> ProviderMetadata:
        """Its metadata, for the token endpoint (raises DiscoveryError)."""
        ...


class ConfiguredProviders:
    """Providers whose endpoints are configured (:class:`~rpkit.config.Endpoints`), for a
    service that signs nobody in and needs no :class:`~rpkit.client.RelyingParty`.

    Args:
        configs: the providers; each needs ``endpoints`` (there is no discovery here).
        tokens: the token client (its minted-secret cache is used).
        clock: wall-clock seconds.

    Raises:
        ConfigurationError: a provider without ``endpoints``, or two with one id.
    """

    def __init__(
        self,
        configs: Iterable[ProviderConfig],
        *,
        tokens: TokenClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._configs: dict[str, ProviderConfig] = {}
        for config in configs:
            if config.endpoints is None or config.id in self._configs:
                msg = f"provider {config.id!r}: configure endpoints, once per id"
                raise ConfigurationError(msg)
            self._configs[config.id] = config
        self.tokens = tokens
        self.clock = clock

    def provider(self, provider_id: str) -> ProviderConfig:
        """See :meth:`Providers.provider`."""
        try:
            return self._configs[provider_id]
        except KeyError:
            raise UnknownProviderError(f"no provider {provider_id!r} is configured") from None

    async def metadata(self, provider_id: str) -> ProviderMetadata:
        """See :meth:`Providers.metadata`."""
        return configured_metadata(self.provider(provider_id))


class _Key(NamedTuple):
    provider_id: str
    audience: str | None
    resource: str | None
    scopes: tuple[str, ...]


class _Entry(NamedTuple):
    token: MachineToken
    renew_at: float


class ClientCredentials:
    """Client-credentials tokens for every provider of ``providers``, cached and single-flight.

    Args:
        providers: a :class:`~rpkit.client.RelyingParty`, or :class:`ConfiguredProviders`.
        http: the application's pooled client (the relying party's); never closed here. Its
            redirect, timeout and ``auth`` settings are not used for the token request (see
            :mod:`rpkit._outbound`).
        store: a store shared by the workers: one worker fetches a token while the others wait,
            then read it from the store. Stored under ``rpkit:m2m:*`` keys named by a SHA-256
            of the issuer, client id, provider, ``audience``, ``resource`` and scopes: the token
            itself with its expiry and granted scope (kept as long as the token lives; it is a
            bearer credential, so the store must be as private as the session store), a lock
            while a worker fetches, and the outcome of a failed fetch (a refusal for
            ``refusal_ttl`` seconds). None: per-process cache and single-flight only.
        renew_before: seconds before expiry at which a token is replaced (at most half its
            lifetime), so no request leaves with a token about to expire.
        refusal_ttl: seconds a refusal (a 4xx) is remembered and raised again without a request;
            0 remembers none.
        lock_wait: seconds a worker waits for another worker's fetch before
            :class:`~rpkit.errors.ClientCredentialsUnavailableError`; by default as long as the
            lock may be held (three request timeouts and five seconds).
        max_bytes: the largest token response read (64 KiB by default).
        timeout: seconds one token request may take in all (default 10).
        clock: wall-clock seconds; the providers' clock by default.

    Raises:
        ConfigurationError: a negative ``renew_before``, ``refusal_ttl`` or ``lock_wait``, or a
            bound that is not positive.
    """

    def __init__(
        self,
        providers: Providers,
        http: httpx.AsyncClient,
        store: KeyValueStore | None = None,
        *,
        renew_before: float = 60,
        refusal_ttl: float = 10,
        lock_wait: float | None = None,
        max_bytes: int = MAX_TOKEN_RESPONSE_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        check_bounds("ClientCredentials", max_bytes, timeout)
        lock_ttl = math.ceil(3 * timeout + 5)
        wait = float(lock_ttl) if lock_wait is None else lock_wait
        if renew_before < 0 or refusal_ttl < 0 or wait < 0:
            msg = "ClientCredentials needs renew_before, refusal_ttl and lock_wait >= 0"
            raise ConfigurationError(msg)
        self._providers = providers
        self._http = http
        self._renew_before = renew_before
        self._refusal_ttl = refusal_ttl
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._clock = clock or providers.clock
        self._shared = (
            SharedTokens(
                store, lock_ttl=lock_ttl, wait=wait, refusal_ttl=refusal_ttl, clock=self._clock
            )
            if store is not None
            else None
        )
        self._cache: dict[_Key, _Entry] = {}
        self._refused: dict[_Key, Outcome] = {}
        self._inflight: dict[_Key, asyncio.Task[_Entry]] = {}

    async def token(
        self,
        provider_id: str,
        *,
        audience: str | None = None,
        resource: str | None = None,
        scopes: Iterable[str] = (),
    ) -> MachineToken:
        """A token of ``provider_id``'s client for ``audience``/``resource`` and ``scopes``,
        from the cache while it has more than ``renew_before`` seconds left.

        Args:
            provider_id: a configured provider.
            audience: sent as ``audience`` (Auth0, Kinde); None sends none.
            resource: sent as ``resource`` (RFC 8707): an absolute URI without a fragment.
            scopes: sent space-separated as ``scope``, in sorted order; none sends no
                ``scope`` (the provider's default for the client).

        Raises:
            UnknownProviderError: no such provider.
            ConfigurationError: a malformed scope (or ``scopes`` given as one string, which
                would be read letter by letter), ``resource`` or ``audience``, or a
                ``private_key`` that cannot sign the client assertion (no request is made).
            ClientCredentialsRefusedError: the provider refused (now, or within
                ``refusal_ttl`` seconds for the same request).
            ClientCredentialsUnavailableError: no usable answer for now; try again later.
            ClientCredentialsResponseError: the answer was unusable.
        """
        config = self._providers.provider(provider_id)
        key = _key(provider_id, audience, resource, scopes)
        entry = self._cache.get(key)
        now = self._clock()
        if entry is not None and now < entry.renew_at:
            return entry.token
        refused = self._refused.get(key)
        if refused is not None:
            if now < refused.until:
                raise refused.to_error()
            del self._refused[key]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._obtain(config, key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget_task(key, done))
        # Shielded: a caller that gives up does not cancel the fetch the others wait for.
        return (await asyncio.shield(task)).token

    def cached(
        self,
        provider_id: str,
        *,
        audience: str | None = None,
        resource: str | None = None,
        scopes: Iterable[str] = (),
    ) -> MachineToken | None:
        """The token this process holds for the request, fresh or not, without any I/O."""
        entry = self._cache.get(_key(provider_id, audience, resource, scopes))
        return entry.token if entry is not None else None

    def forget(self, access_token: str) -> bool:
        """Drop ``access_token`` from this process's cache (not from the store: see
        :meth:`invalidate`); True when it was cached. A token that was already replaced is
        left alone, so concurrent callers that all saw it refused cause one new request."""
        keys = [
            key for key, entry in self._cache.items() if entry.token.access_token == access_token
        ]
        for key in keys:
            del self._cache[key]
        return bool(keys)

    async def invalidate(self, access_token: str) -> bool:
        """:meth:`forget` ``access_token``, and remove it from the store if it is still there,
        so no worker hands it out again; the next :meth:`token` fetches a new one. Call it when
        an API refused the token (a 401). True when this process had it cached."""
        keys = [
            key for key, entry in self._cache.items() if entry.token.access_token == access_token
        ]
        self.forget(access_token)
        if self._shared is not None:
            for key in keys:
                await self._shared.discard(self._store_name(key), access_token)
        return bool(keys)

    # -- obtaining a token -----------------------------------------------------------------
    def _forget_task(self, key: _Key, task: asyncio.Task[_Entry]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so asyncio never reports it as unhandled

    async def _obtain(self, config: ProviderConfig, key: _Key) -> _Entry:
        try:
            if self._shared is None:
                entry = await self._fetch(config, key)
            else:
                stored = await self._shared.obtain(
                    self._store_name(key), lambda: self._fetch_stored(config, key)
                )
                token = MachineToken(
                    access_token=stored.access_token,
                    expires_at=stored.expires_at,
                    scope=stored.scope,
                )
                entry = _Entry(token, stored.renew_at)
        except ClientCredentialsRefusedError as exc:
            self._remember_refusal(key, exc)
            raise
        self._cache[key] = entry
        self._refused.pop(key, None)
        return entry

    def _store_name(self, key: _Key) -> str:
        config = self._providers.provider(key.provider_id)
        parts = [config.issuer, config.client_id, *key[:3], *key.scopes]
        material = "\x00".join(part or "" for part in parts).encode()
        return hashlib.sha256(material).hexdigest()

    async def _fetch_stored(self, config: ProviderConfig, key: _Key) -> Stored:
        entry = await self._fetch(config, key)
        token = entry.token
        return Stored(
            access_token=token.access_token,
            expires_at=token.expires_at,
            scope=token.scope,
            renew_at=entry.renew_at,
        )

    def _remember_refusal(self, key: _Key, exc: ClientCredentialsRefusedError) -> None:
        if self._refusal_ttl > 0:
            self._refused[key] = Outcome.of(exc, until=self._clock() + self._refusal_ttl)

    async def _fetch(self, config: ProviderConfig, key: _Key) -> _Entry:
        log = get_logger(provider=config.id, issuer=config.issuer)
        try:
            metadata = await self._providers.metadata(config.id)
            secret = await self._providers.tokens.client_secret(config)
        except (DiscoveryError, ClientSecretError) as exc:
            raise _failed(log, ClientCredentialsUnavailableError(exc.detail)) from exc
        endpoint = metadata.token_endpoint
        headers, auth_form = client_auth(config, endpoint, now=self._clock(), secret=secret)
        fields = _m2m_grant.form(key.audience, key.resource, key.scopes) | auth_form
        try:
            response = await _m2m_grant.post(
                self._http,
                endpoint,
                fields,
                headers,
                max_bytes=self._max_bytes,
                timeout=self._timeout,
            )
            grant = _m2m_grant.read(response, config.default_token_lifetime)
        except ClientCredentialsError as exc:
            _failed(log, exc)
            raise
        expires_at = int(self._clock()) + grant.lifetime
        token = MachineToken(
            access_token=grant.access_token, expires_at=expires_at, scope=grant.scope or key.scopes
        )
        log.info(
            "rpkit.client_credentials.received", scope=" ".join(token.scope), expires_at=expires_at
        )
        margin = min(self._renew_before, grant.lifetime / 2)
        return _Entry(token, expires_at - margin)


class ClientCredentialsAuth(httpx.Auth):
    """An ``httpx`` authentication flow: ``Authorization: Bearer`` with a client-credentials
    token; on a 401 from the same origin, the token is invalidated and the request sent once
    more with a fresh one (if the provider hands out a different token). Never more.

    For an :class:`httpx.AsyncClient` only: as ``auth=`` of the application's own client, or
    per request. httpx drops the ``Authorization`` header when it follows a redirect to
    another origin, and this flow does not retry a 401 that came from there.

    Args:
        credentials: where tokens come from.
        provider_id: the provider that issues them.
        audience: as for :meth:`ClientCredentials.token`.
        resource: as for :meth:`ClientCredentials.token`.
        scopes: as for :meth:`ClientCredentials.token`.
        allow_insecure_http: send the token over plain ``http`` to hosts other than loopback
            too (a private network with its own encryption). Off by default: RFC 6750 §5.3
            requires TLS for bearer tokens, and a request to another ``http://`` host raises
            :class:`~rpkit.errors.ConfigurationError` before anything is sent.

    Raises:
        ConfigurationError: a malformed scope, ``audience`` or ``resource``.
    """

    requires_request_body = True  # the body is read before the flow, so a retry can resend it

    def __init__(
        self,
        credentials: ClientCredentials,
        provider_id: str,
        *,
        audience: str | None = None,
        resource: str | None = None,
        scopes: Sequence[str] = (),
        allow_insecure_http: bool = False,
    ) -> None:
        self._credentials = credentials
        self._provider_id = provider_id
        self._key = _key(provider_id, audience, resource, scopes)  # malformed: refused now
        self._insecure = allow_insecure_http
        if allow_insecure_http:
            log = get_logger(provider=provider_id)
            log.warning("rpkit.startup.check_relaxed", setting="allow_insecure_http (bearer)")

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        """Refused: the token is fetched asynchronously.

        Raises:
            TypeError: always; use an :class:`httpx.AsyncClient`.
        """
        msg = "ClientCredentialsAuth works with httpx.AsyncClient only"
        raise TypeError(msg)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send ``request`` with a token; once more with a fresh token after a 401."""
        self._check_scheme(request.url)
        token = await self._token()
        request.headers["Authorization"] = token.authorization
        response = yield request
        if response.status_code != 401 or not _same_origin(response.request.url, request.url):
            return
        await self._credentials.invalidate(token.access_token)
        fresh = await self._token()
        if fresh.access_token == token.access_token:
            return  # the provider handed out the refused token again: no point in resending
        get_logger(provider=self._provider_id).info("rpkit.client_credentials.retry_after_401")
        request.headers["Authorization"] = fresh.authorization
        yield request

    async def _token(self) -> MachineToken:
        key = self._key
        return await self._credentials.token(
            key.provider_id, audience=key.audience, resource=key.resource, scopes=key.scopes
        )

    def _check_scheme(self, url: httpx.URL) -> None:
        if url.scheme == "https" or self._insecure or is_loopback_http(str(url)):
            return
        msg = f"refusing to send a bearer token over {url.scheme}:// to {url.host!r}"
        raise ConfigurationError(msg)


# -- helpers --------------------------------------------------------------------------------------
def _key(
    provider_id: str, audience: str | None, resource: str | None, scopes: Iterable[str]
) -> _Key:
    """The cache key, with every part checked: scopes sorted and unique."""
    if isinstance(scopes, str | bytes):
        # A lone string would be read letter by letter and ask for the scopes "a", "d", ":"...
        msg = f"scopes is a list of scope tokens, e.g. [{scopes!r:.40}], not a string"
        raise ConfigurationError(msg)
    given = tuple(scopes)
    for scope in given:
        if type(scope) is not str or not _SCOPE_TOKEN.fullmatch(scope):
            msg = f"scope {str(scope)[:40]!r} is not an RFC 6749 §3.3 scope token"
            raise ConfigurationError(msg)
    unique = tuple(sorted(set(given)))
    if audience is not None and not _visible_token(audience):
        raise ConfigurationError("audience must be non-empty visible ASCII without spaces")
    if resource is not None:
        parts = urlsplit(resource) if _visible_token(resource) else None
        if parts is None or not parts.scheme or not parts.netloc or parts.fragment:
            msg = "resource must be an absolute URI without a fragment (RFC 8707 §2)"
            raise ConfigurationError(msg)
    return _Key(provider_id, audience, resource, unique)


def _visible_token(value: object) -> bool:
    return type(value) is str and _m2m_grant.TOKEN_CHARS.fullmatch(value) is not None


def _failed(log: Any, exc: ClientCredentialsError) -> ClientCredentialsError:
    log.warning(
        "rpkit.client_credentials.failed",
        code=exc.code,
        status=exc.status,
        error=exc.error,
        detail=exc.detail,
    )
    return exc


def _same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)
