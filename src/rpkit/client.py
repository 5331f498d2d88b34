"""The relying party: several providers, one shared HTTP client, one store.

:class:`RelyingParty` ties the core together — discovery, the JWKS cache, the login flow, token
exchange, ID-token validation, UserInfo, refresh and logout — and is what the Litestar adapter
wraps. It never creates an HTTP client: the caller owns one pooled ``httpx.AsyncClient``.

Example:
    >>> import httpx
    >>> from rpkit import ProviderConfig, RelyingParty
    >>> okta = ProviderConfig(id="okta", issuer="https://example.okta.com",
    ...                       client_id="0oa1", client_secret="s3cret")
    >>> rp = RelyingParty([okta], http=httpx.AsyncClient(timeout=10.0))
    >>> # login = await rp.begin_login("okta", redirect_uri="https://app.example/cb/okta")
    >>> # result = await rp.complete_login("okta", callback_params)
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from types import MappingProxyType
from typing import Any

import httpx
import msgspec

from rpkit import flow, logout, par
from rpkit._access_claims import AccessClaimsVerifier
from rpkit._client_auth import client_auth
from rpkit._frozen import freeze
from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT
from rpkit.config import ProviderConfig
from rpkit.discovery import DiscoveryCache, ProviderMetadata
from rpkit.dpop import DPoPKey, DPoPNonces
from rpkit.errors import (
    ConfigurationError,
    IdentityRefusedError,
    IDTokenValidationError,
    LogoutTokenValidationError,
    RPKitError,
    UnknownProviderError,
    UserInfoError,
)
from rpkit.hooks import AuthorizationContext, IdentityFields, IdentitySource, JSONFetcher
from rpkit.id_token import AccessToken, AccessTokenPolicy, IDToken, LogoutToken, TokenValidator
from rpkit.jwks import JWKSCache
from rpkit.logout import LogoutRequest, LogoutReturn
from rpkit.profile import profile_fetcher
from rpkit.store import KeyValueStore, MemoryStore
from rpkit.tokens import TokenClient, TokenSet
from rpkit.userinfo import UserInfoClient

__all__ = [
    "Identity",
    "LoginRequest",
    "LoginResult",
    "RefreshResult",
    "RelyingParty",
    "standard_fields",
]

_SUBJECT = re.compile(r"[^\x00-\x1f\x7f]{1,255}")
"""OpenID Connect Core §2: ``sub`` is at most 255 ASCII characters; no control characters."""
_PROVIDER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_OP_ERROR = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""An OAuth error code worth a log field (``access_denied``); anything else is left out."""
LockFactory = Callable[[str], AbstractAsyncContextManager[Any]]


class LoginRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Where to send the browser to sign in; the transaction itself stays server-side."""

    url: str
    state: str
    flow_id: str


class Identity(msgspec.Struct, frozen=True, kw_only=True):
    """Who signed in: what the provider's identity mapping settled on.

    For OpenID Connect providers without an :class:`~rpkit.hooks.IdentityMapper`, ``issuer``
    and ``subject`` come from the ID token (row 46) and the other fields from its standard
    claims. For OAuth 2.0-only providers, ``issuer`` is the configured one and the rest comes
    from the profile through the provider's mapper.
    """

    provider_id: str
    issuer: str
    subject: str
    """The provider's stable id for the user (never an email address)."""
    claims: Mapping[str, Any]
    """UserInfo claims overlaid by the ID token's (OAuth 2.0-only: the profile), read-only."""
    email: str | None = None
    """The user's email address. Check :attr:`email_verified` before trusting it to identify
    anyone."""
    email_verified: bool = False
    """True only when the provider says the address is verified (for OpenID Connect without a
    mapper: the ``email_verified`` claim is the JSON ``true``, not ``"true"``)."""
    name: str | None = None
    tenant: str | None = None
    """The tenant the user signed in from, for multi-tenant issuers (Entra ID's ``tid``)."""
    organization: str | None = None
    """The organization the user signed in as, for B2B providers (Scalekit's ``oid``)."""
    external_organization_id: str | None = None
    """The application's own id for that organization, when the provider keeps one."""
    external_user_id: str | None = None
    """The application's own id for the user, when the provider keeps one."""

    @property
    def provider(self) -> str:
        """The id of the provider the user signed in with (``provider_id``)."""
        return self.provider_id

    @classmethod
    def from_claims(
        cls, provider_id: str, issuer: str, subject: str, claims: Mapping[str, Any]
    ) -> Identity:
        """The identity that the standard OpenID Connect claims describe: ``email`` and
        ``name`` when they are strings, ``email_verified`` only when it is the JSON ``true``."""
        fields = standard_fields(subject, claims)
        return cls(
            provider_id=provider_id,
            issuer=issuer,
            subject=subject,
            claims=MappingProxyType(dict(claims)),
            email=fields.email,
            email_verified=fields.email_verified,
            name=fields.name,
        )


def standard_fields(
    subject: str, claims: Mapping[str, Any], tenant: str | None = None
) -> IdentityFields:
    """The :class:`IdentityFields` of the standard claims (OpenID Connect Core §5.1)."""
    email = claims.get("email")
    name = claims.get("name")
    return IdentityFields(
        subject=subject,
        email=email if isinstance(email, str) else None,
        email_verified=claims.get("email_verified") is True,
        name=name if isinstance(name, str) else None,
        tenant=tenant,
    )


class LoginResult(msgspec.Struct, frozen=True, kw_only=True):
    """A completed login."""

    identity: Identity
    id_token: IDToken | None
    """The validated ID token; None for OAuth 2.0-only providers."""
    tokens: TokenSet
    userinfo: Mapping[str, Any] | None
    return_to: str
    dpop_key: DPoPKey | None = None
    """The login's DPoP key when the provider uses DPoP: the tokens are bound to it, and the
    session keeps it (server-side) for refresh, UserInfo and :class:`~rpkit.dpop.DPoPAuth`."""
    access_claims: Mapping[str, Any] | None = None
    """The access token's claims, read-only, when the provider's ``access_token_claims`` is set
    and the token passed every check; None otherwise (see :mod:`rpkit.authz`)."""


class RefreshResult(msgspec.Struct, frozen=True, kw_only=True):
    """Fresh tokens, and the ID token that now stands for the session."""

    tokens: TokenSet
    id_token: IDToken | None
    """None for OAuth 2.0-only providers."""
    access_claims: Mapping[str, Any] | None = None
    """The new access token's verified claims, as :attr:`LoginResult.access_claims`."""


class RelyingParty:
    """Sign users in with any of several OpenID Providers.

    Args:
        providers: the provider configurations; ids must be unique.
        http: the application's pooled HTTP client; rpkit never follows its redirects and
            bounds its timeouts with ``outbound_timeout``.
        store: where transactions, logout states and replay caches live. The in-memory default
            is correct for one worker only.
        clock: wall-clock seconds (injectable for tests).
        lock_factory: returns an async lock for a session key, to make refresh single-flight
            across workers; in-process single-flight is always on.
        outbound_timeout: seconds a request to a provider may take in all (discovery, keys,
            token, UserInfo, profile), whatever ``http``'s own timeouts; rpkit never follows
            ``http``'s redirects either (see :mod:`rpkit._outbound`).
    """

    def __init__(
        self,
        providers: Iterable[ProviderConfig],
        *,
        http: httpx.AsyncClient,
        store: KeyValueStore | None = None,
        clock: Callable[[], float] = time.time,
        discovery: DiscoveryCache | None = None,
        jwks: JWKSCache | None = None,
        lock_factory: LockFactory | None = None,
        outbound_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.providers: Mapping[str, ProviderConfig] = MappingProxyType(_by_id(providers))
        # Not `store or ...`: an empty MemoryStore is falsy (it has __len__), and replacing it
        # would silently un-share transactions and replay caches with the caller's store.
        self.store = store if store is not None else MemoryStore()
        self.clock = clock
        timeout = outbound_timeout
        self.discovery = discovery or DiscoveryCache(http, timeout=timeout)
        self.jwks = jwks or JWKSCache(http, timeout=timeout)
        self.validator = TokenValidator(self.jwks, clock=clock)
        self._access_claims = AccessClaimsVerifier(self.jwks, clock=clock)
        self.dpop_nonces = DPoPNonces()
        """The servers' latest DPoP nonces by origin (RFC 9449 §8), shared by every request;
        pass it to :class:`~rpkit.dpop.DPoPAuth` too."""
        self.tokens = TokenClient(http, clock=clock, timeout=timeout, nonces=self.dpop_nonces)
        self.userinfo = UserInfoClient(http, timeout=timeout, nonces=self.dpop_nonces)
        self._timeout = timeout
        self._http = http
        self._lock_factory = lock_factory
        self._refreshing: dict[str, asyncio.Task[RefreshResult]] = {}

    def provider(self, provider_id: str) -> ProviderConfig:
        """The configuration of ``provider_id``.

        Raises:
            UnknownProviderError: no such provider is configured.
        """
        try:
            return self.providers[provider_id]
        except KeyError:
            raise UnknownProviderError(f"no provider {provider_id!r} is configured") from None

    async def metadata(self, provider_id: str) -> ProviderMetadata:
        """The validated discovery document of ``provider_id``."""
        return await self.discovery.get(self.provider(provider_id))

    def _now(self) -> int:
        return int(self.clock())

    async def begin_login(
        self,
        provider_id: str,
        *,
        redirect_uri: str,
        return_to: str | None = None,
        params: Mapping[str, str] | None = None,
        binding: str | None = None,
    ) -> LoginRequest:
        """Start a login: store a transaction and return the authorization URL. With PAR
        (:attr:`~rpkit.config.ProviderConfig.par`) the parameters are pushed first and the URL
        carries only ``client_id`` and ``request_uri``; a refused push stores nothing.

        Args:
            provider_id: which provider.
            redirect_uri: this provider's own callback URL (one per provider: row 11).
            return_to: where to land after login; unsafe values become ``/`` (row 65).
            params: extra authorization parameters, checked against the provider's allowlist.
            binding: a value tied to the browser; the callback must present the same.

        Raises:
            PushedAuthorizationUnavailableError: PAR is required (by ``par="required"`` or the
                provider) and cannot be used; nothing was sent or stored.
            PushedAuthorizationError: the push was refused; nothing was stored.
        """
        config = self.provider(provider_id)
        extra = flow.validate_params(config, params)
        metadata = await self.discovery.get(config)
        pushing = par.use_par(config, metadata)
        max_age = int(extra.pop("max_age")) if "max_age" in extra else None
        flow_id = secrets.token_hex(6)
        extra |= await _hook_params(config, redirect_uri, extra, flow_id)
        transaction = flow.new_transaction(
            config,
            redirect_uri=redirect_uri,
            now=self._now(),
            return_to=return_to,
            max_age=max_age,
            binding=binding,
            flow_id=flow_id,
        )
        key = DPoPKey.generate(config.dpop_alg) if config.dpop else None
        jkt = key.thumbprint if key is not None else None
        if key is not None:
            transaction = msgspec.structs.replace(transaction, dpop_jwk=key.to_private_jwk())
        if pushing:
            asked = flow.authorization_params(config, transaction, extra, dpop_jkt=jkt)
            pushed = await self._push(config, metadata, asked)
            transaction = msgspec.structs.replace(transaction, pushed_until=pushed.expires_at)
            url = par.authorization_url(metadata, config.client_id, pushed)
        else:
            url = flow.authorization_url(config, metadata, transaction, extra, dpop_jkt=jkt)
        await flow.store_transaction(self.store, transaction)
        log = _log(config, transaction.flow_id)
        log.info("rpkit.login.started", par=pushing, dpop=jkt is not None)
        return LoginRequest(url=url, state=transaction.state, flow_id=transaction.flow_id)

    async def _push(
        self, config: ProviderConfig, metadata: ProviderMetadata, params: Mapping[str, str]
    ) -> par.PushedRequest:
        """Push ``params`` with the client's authentication (RFC 9126 §2.1); a
        ``private_key_jwt`` assertion names the issuer as its audience (§2)."""
        secret = await self.tokens.client_secret(config)
        auth = client_auth(config, metadata.issuer, now=self._now(), secret=secret)
        return await par.push(
            self._http, config, metadata, params, auth=auth, now=self._now(), timeout=self._timeout
        )

    async def complete_login(
        self, provider_id: str, params: Sequence[tuple[str, str]], *, binding: str | None = None
    ) -> LoginResult:
        """Finish a login from the callback's parameters (query or form, repeats kept).

        Every refusal (any :class:`~rpkit.errors.RPKitError`) is logged once, as
        ``rpkit.login.failed`` at warning, with ``provider``, ``reason`` (the error's code),
        ``check`` (a token's or UserInfo's failed check), ``op_error`` (the OAuth error the
        provider answered) and ``flow_id`` once the transaction was found; never a token, code,
        state or secret.

        Raises:
            UnknownProviderError: no such provider is configured.
            CallbackError: any front-channel check failed; no token request was made.
            TokenEndpointError: the code exchange failed.
            IDTokenValidationError: the ID token failed validation; UserInfo was not called.
            UserInfoError: UserInfo failed or named another subject.
            IdentityRefusedError: the provider's identity mapping refused the user.
        """
        transaction: flow.Transaction | None = None
        try:
            config = self.provider(provider_id)
            metadata = await self.discovery.get(config)
            transaction, values = await flow.take_transaction(
                self.store, config, metadata, params, now=self._now(), binding=binding
            )
            callback = flow.read_response(config, transaction, values)
            return await self._finish_login(config, metadata, callback)
        except RPKitError as exc:
            flow_id = transaction.flow_id if transaction is not None else None
            _log_login_failure(self.providers.get(provider_id), provider_id, exc, flow_id)
            raise

    async def _finish_login(
        self, config: ProviderConfig, metadata: ProviderMetadata, callback: flow.Callback
    ) -> LoginResult:
        """Exchange the code of a callback that passed every front-channel check, validate what
        comes back and map the identity."""
        transaction = callback.transaction
        log = _log(config, transaction.flow_id)
        key = _dpop_key(transaction.dpop_jwk)
        tokens = await self.tokens.exchange_code(
            config,
            metadata,
            code=callback.code,
            redirect_uri=transaction.redirect_uri,
            code_verifier=transaction.code_verifier,
            dpop=key,
        )
        # One fetcher per login, bound to its access token: the OAuth 2.0 profile and any
        # further JSON an identity mapper reads (GitHub's /user/emails) go through it.
        fetch = profile_fetcher(
            self._http,
            metadata.userinfo_endpoint or "",
            tokens.access_token,
            timeout=self._timeout,
            dpop=key,
            nonces=self.dpop_nonces,
        )
        userinfo: Mapping[str, Any] | None
        claims: Mapping[str, Any]
        if config.is_oauth2:
            id_token = None
            userinfo = claims = await _profile(fetch, metadata.userinfo_endpoint or "")
        else:
            id_token = await self._login_id_token(config, metadata, tokens, transaction)
            userinfo = await self._userinfo(config, metadata, tokens, id_token, key)
            claims = id_token.claims
        source = IdentitySource(
            provider_id=config.id,
            issuer=id_token.iss if id_token else config.issuer,
            claims=claims,
            userinfo=None if config.is_oauth2 else userinfo,
            extras=callback.extras,
            tenant=_tenant(config, claims),
            fetch_json=fetch,
        )
        identity = await _map_identity(config, source, log)
        access_claims = await self._access_claims.verify(config, metadata, tokens.access_token)
        log.info("rpkit.login.completed")
        return LoginResult(
            identity=identity,
            id_token=id_token,
            tokens=tokens,
            userinfo=userinfo,
            return_to=transaction.return_to,
            dpop_key=key,
            access_claims=access_claims,
        )

    async def _login_id_token(
        self,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        tokens: TokenSet,
        transaction: flow.Transaction,
    ) -> IDToken:
        if tokens.id_token is None:
            raise IDTokenValidationError("missing", "the token response carried no ID token")
        return await self.validator.validate_id_token(
            tokens.id_token,
            config=config,
            metadata=metadata,
            expected_nonce=transaction.nonce,
            max_age=transaction.max_age,
            access_token=tokens.access_token,
        )

    async def _userinfo(
        self,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        tokens: TokenSet,
        id_token: IDToken,
        dpop: DPoPKey | None,
    ) -> Mapping[str, Any] | None:
        if not config.fetch_userinfo or metadata.userinfo_endpoint is None:
            return None
        return await self.userinfo.fetch(
            config,
            metadata,
            access_token=tokens.access_token,
            expected_sub=id_token.sub,
            verify_jwt=self._userinfo_verifier(config, metadata),
            dpop=dpop,
        )

    def _userinfo_verifier(
        self, config: ProviderConfig, metadata: ProviderMetadata
    ) -> Callable[[str], Awaitable[Mapping[str, Any]]]:
        async def verify(jwt: str) -> Mapping[str, Any]:
            return await self.validator.validate_userinfo_jwt(jwt, config=config, metadata=metadata)

        return verify

    async def refresh(
        self,
        provider_id: str,
        tokens: TokenSet,
        id_token: IDToken | None,
        *,
        key: str,
        reload: Callable[[], Awaitable[RefreshResult]] | None = None,
        dpop_key: DPoPKey | None = None,
    ) -> RefreshResult:
        """Refresh a session's tokens, single-flight per ``key`` (the session id).

        A concurrent call with the same ``key`` waits for, and shares, the running refresh
        instead of replaying the old refresh token (row 55). Across workers the
        ``lock_factory`` lock serialises refreshes, and ``reload`` stops the worker that waited
        from replaying the refresh token the other one just used up.

        Args:
            provider_id: the session's provider.
            tokens: the session's tokens as the caller loaded them.
            id_token: the ID token the session stands on (None for OAuth 2.0-only providers).
            key: the session id.
            reload: awaited once the lock is held; returns the session's tokens as stored now.
                When their access token is no longer ``tokens``', another worker refreshed
                meanwhile and they are returned as they are, without a request.
            dpop_key: the session's DPoP key (RFC 9449 §5): the refresh request carries a
                proof made with it, and the new access token must be ``DPoP``-bound.

        Raises:
            SessionExpiredError: the OP refused the refresh token: sign the user in again.
            RefreshContinuityError: the new ID token changed identity (rows 56–58).
        """
        running = self._refreshing.get(key)
        if running is None:
            refreshing = self._refresh(
                provider_id, tokens, id_token, key, reload, dpop_key=dpop_key
            )
            running = asyncio.ensure_future(refreshing)
            self._refreshing[key] = running
            running.add_done_callback(lambda _: self._refreshing.pop(key, None))
        return await asyncio.shield(running)

    async def _refresh(
        self,
        provider_id: str,
        tokens: TokenSet,
        id_token: IDToken | None,
        key: str,
        reload: Callable[[], Awaitable[RefreshResult]] | None,
        *,
        dpop_key: DPoPKey | None = None,
    ) -> RefreshResult:
        if tokens.refresh_token is None:
            raise ConfigurationError("this session has no refresh token (request offline_access)")
        config = self.provider(provider_id)
        lock = self._lock_factory(key) if self._lock_factory else nullcontext()
        async with lock:
            stored = await reload() if reload is not None else None
            if stored is not None and stored.tokens.access_token != tokens.access_token:
                _log(config, None).info("rpkit.refresh.done_elsewhere")
                return stored
            metadata = await self.discovery.get(config)
            fresh = await self.tokens.refresh(
                config, metadata, tokens.refresh_token, granted_scope=tokens.scope, dpop=dpop_key
            )
            new_id_token = id_token
            if fresh.id_token is not None and id_token is not None:
                new_id_token = await self.validator.validate_id_token(
                    fresh.id_token,
                    config=config,
                    metadata=metadata,
                    expected_nonce=None,
                    access_token=fresh.access_token,
                    original=id_token,
                )
            access_claims = await self._access_claims.verify(config, metadata, fresh.access_token)
        _log(config, None).info("rpkit.refresh.completed")
        return RefreshResult(tokens=fresh, id_token=new_id_token, access_claims=access_claims)

    async def validate_access_token(self, token: str, policy: AccessTokenPolicy) -> AccessToken:
        """Validate a bearer access token for an API (see :class:`AccessTokenPolicy`)."""
        return await self.validator.validate_access_token(token, policy)

    async def begin_logout(
        self,
        provider_id: str,
        *,
        id_token_hint: str | None,
        return_to: str | None = None,
        binding: str | None = None,
    ) -> LogoutRequest:
        """The end-session redirect, after the caller has ended its own session (row 50).
        ``binding`` ties the logout ``state`` to the browser, as for logins."""
        config = self.provider(provider_id)
        metadata = await self.discovery.get(config)
        return await logout.begin_logout(
            self.store,
            config,
            metadata,
            id_token_hint=id_token_hint,
            return_to=return_to,
            binding=binding,
        )

    async def complete_logout(
        self, params: Sequence[tuple[str, str]], *, binding: str | None = None
    ) -> LogoutReturn:
        """The browser's return from the OP's end-session endpoint (row 51)."""
        return await logout.complete_logout(self.store, params, binding=binding)

    async def backchannel_logout(self, provider_id: str, logout_token: str) -> LogoutToken:
        """Validate a back-channel logout token; the caller ends the sessions it names."""
        config = self.provider(provider_id)
        if config.is_oauth2:
            msg = f"provider {provider_id!r} is OAuth 2.0-only: it has no back-channel logout"
            raise LogoutTokenValidationError("unsupported", msg)
        metadata = await self.discovery.get(config)
        return await logout.check_logout_token(
            self.validator, self.store, config, metadata, logout_token, now=self._now()
        )


def _by_id(providers: Iterable[ProviderConfig]) -> dict[str, ProviderConfig]:
    by_id: dict[str, ProviderConfig] = {}
    for config in providers:
        if config.id in by_id:
            raise ConfigurationError(f"provider id {config.id!r} is configured twice")
        by_id[config.id] = config
        log = get_logger(provider=config.id, issuer=config.issuer)
        for relaxed in config.relaxations():
            log.warning("rpkit.startup.check_relaxed", setting=relaxed)
        if config.is_oauth2 or config.hooks.names():
            log.info("rpkit.startup.provider", kind=config.kind, hooks=config.hooks.names())
    if not by_id:
        raise ConfigurationError("configure at least one provider")
    return by_id


def _dpop_key(jwk: Mapping[str, Any] | None) -> DPoPKey | None:
    """The login's DPoP key, from its transaction; None when the login started without one."""
    if jwk is None:
        return None
    return DPoPKey.from_private_jwk(jwk)


async def _hook_params(
    config: ProviderConfig, redirect_uri: str, asked: Mapping[str, str], flow_id: str
) -> dict[str, str]:
    """The provider's ``hooks.authorization_params`` for this login, never a reserved one."""
    hook = config.hooks.authorization_params
    if hook is None:
        return {}
    context = AuthorizationContext(
        provider_id=config.id, redirect_uri=redirect_uri, params=dict(asked), flow_id=flow_id
    )
    added = dict(await hook(context))
    return flow.check_hook_params(config, added)


async def _profile(fetch: JSONFetcher, endpoint: str) -> Mapping[str, Any]:
    """The OAuth 2.0-only provider's profile: a JSON object, read-only."""
    document = await fetch(endpoint)
    if not isinstance(document, dict):
        msg = f"the profile must be a JSON object, got {type(document).__name__}"
        raise UserInfoError(msg, reason="not_object")
    frozen: Mapping[str, Any] = freeze(document)
    return frozen


def _tenant(config: ProviderConfig, claims: Mapping[str, Any]) -> str | None:
    """The tenant the validated token was issued for (already checked against the policy)."""
    if config.tenants is None:
        return None
    tenant = claims.get(config.tenants.claim)
    return tenant if isinstance(tenant, str) else None


async def _map_identity(config: ProviderConfig, source: IdentitySource, log: Any) -> Identity:
    """Run the provider's identity mapper (or the standard one) and check its subject."""
    mapper = config.hooks.identity
    if mapper is None:
        fields = standard_fields(source.claims["sub"], source.claims, source.tenant)
    else:
        fields = await mapper(source)
    if not _SUBJECT.fullmatch(fields.subject):
        log.warning("rpkit.login.identity_refused", reason="subject")
        msg = "the identity mapping produced no usable subject (1-255 printable characters)"
        raise IdentityRefusedError(msg)
    claims = {**(source.userinfo or {}), **source.claims}
    return Identity(
        provider_id=config.id,
        issuer=source.issuer,
        subject=fields.subject,
        claims=MappingProxyType(claims),
        email=fields.email,
        email_verified=fields.email_verified,
        name=fields.name,
        tenant=fields.tenant if fields.tenant is not None else source.tenant,
        organization=fields.organization,
        external_organization_id=fields.external_organization_id,
        external_user_id=fields.external_user_id,
    )


def _log_login_failure(
    config: ProviderConfig | None, asked: str, exc: RPKitError, flow_id: str | None
) -> None:
    """The one ``rpkit.login.failed`` line of a failed sign-in. Only stable codes and checked
    values: the error's detail may quote the provider's text, the log line does not."""
    fields: dict[str, Any] = {"reason": exc.code}
    check = getattr(exc, "reason", None)  # TokenValidationError, UserInfoError
    if isinstance(check, str):
        fields["check"] = check
    op_error = getattr(exc, "error", None)  # AuthorizationResponseError, TokenEndpointError
    if isinstance(op_error, str) and _OP_ERROR.fullmatch(op_error):
        fields["op_error"] = op_error
    if config is None:  # an unknown provider id, from the URL: logged only when it is one
        provider = asked if _PROVIDER_ID.fullmatch(asked) else None
        get_logger(provider=provider, flow_id=None).warning("rpkit.login.failed", **fields)
        return
    _log(config, flow_id).warning("rpkit.login.failed", **fields)


def _log(config: ProviderConfig, flow_id: str | None) -> Any:
    return get_logger(provider=config.id, issuer=config.issuer, flow_id=flow_id)
