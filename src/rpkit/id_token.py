"""JWT validation for the relying party: ID tokens, bearer access tokens and logout tokens.

:class:`TokenValidator` checks ID tokens (Core §3.1.3.7, and §12.2 on refresh; rows 20–37,
56–58), access tokens against an :class:`~rpkit.access_token.AccessTokenPolicy`, back-channel
logout tokens (rows 53, 54) and signed UserInfo (row 48) on one core (:mod:`rpkit._jwt`): the
algorithm is pinned by configuration, the key comes only from
:meth:`~rpkit.jwks.JWKSCache.key_for` (or the client secret for HS*), the signature is always
verified, and the claims are checked in plain Python. Every failure raises the token kind's
:class:`~rpkit.errors.TokenValidationError` subclass with a stable ``reason``.

Example:
    >>> import httpx
    >>> from rpkit.id_token import TokenValidator
    >>> from rpkit.jwks import JWKSCache
    >>> validator = TokenValidator(JWKSCache(httpx.AsyncClient(timeout=10.0)))
    >>> # id_token = await validator.validate_id_token(raw, config=config, metadata=metadata,
    >>> #                                              expected_nonce=transaction.nonce)
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple, overload

import msgspec

from rpkit._frozen import freeze
from rpkit._jwt import (
    MAX_CLAIM_LENGTH,
    MISSING,
    Compact,
    Rejected,
    audiences,
    check_times,
    check_type,
    half_hash,
    integer,
    optional_str,
    parse_compact,
    show,
    string_claim,
    subject,
)
from rpkit._log import get_logger
from rpkit.access_cache import DEFAULT_ACCESS_TOKEN_CACHE_SIZE, CacheKey, VerifiedTokenCache
from rpkit.access_token import (
    AccessToken,
    AccessTokenPolicy,
    accept_claims,
    accepted_issuer,
)
from rpkit.config import TENANT_PLACEHOLDER, ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.errors import (
    AccessTokenValidationError,
    ConfigurationError,
    IDTokenValidationError,
    JWKSError,
    LogoutTokenValidationError,
    RefreshContinuityError,
    TokenValidationError,
    UserInfoError,
)
from rpkit.jwks import JWKSCache, VerificationKey
from rpkit.tenants import check_issuer

__all__ = [
    "BACKCHANNEL_LOGOUT_EVENT",
    "AccessToken",
    "AccessTokenPolicy",
    "IDToken",
    "LogoutToken",
    "TokenValidator",
    "id_token_from_claims",
]

BACKCHANNEL_LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
_ID_TOKEN_TYPES = frozenset({"jwt", "application/jwt"})
_LOGOUT_TYPES = frozenset({"logout+jwt", "application/logout+jwt"})


class IDToken(msgspec.Struct, frozen=True, kw_only=True):
    """A validated ID token: the identity of one login (``iss`` + ``sub``)."""

    iss: str
    sub: str
    aud: tuple[str, ...]
    """Always a tuple, also when the token carried a single string."""
    exp: int
    iat: int
    auth_time: int | None
    """When the user authenticated; kept unchanged across refreshes (§12.2)."""
    nonce: str | None
    azp: str | None
    sid: str | None
    """The OP session, for back-channel logout by ``sid``."""
    acr: str | None
    amr: tuple[str, ...] | None
    at_hash: str | None
    claims: Mapping[str, Any]
    """Every claim as received, deeply read-only (mappings and tuples)."""


class LogoutToken(msgspec.Struct, frozen=True, kw_only=True):
    """A validated back-channel logout token. ``jti`` replay is the caller's check."""

    iss: str
    sub: str | None
    sid: str | None
    jti: str
    iat: int
    exp: int


class TokenValidator:
    """Validates ID, access, logout and UserInfo JWTs with keys from one :class:`JWKSCache`.

    Failure ``reason`` values: ``malformed``, ``jwe``, ``crit``, ``alg``, ``typ``, ``key``,
    ``signature``, ``iss``, ``aud``, ``azp``, ``sub``, ``exp``, ``iat``, ``nbf``, ``nonce``,
    ``auth_time``, ``at_hash``, ``sid``, ``acr``, ``amr``; for access tokens also ``scope``;
    for logout tokens ``jti``, ``events`` and ``sub_or_sid``.

    Args:
        jwks: the application's key cache.
        clock: wall-clock seconds since the epoch; injectable for tests.
        access_token_cache_size: how many verified access tokens to keep
            (:class:`~rpkit.access_cache.VerifiedTokenCache`, about 2.5 KiB each), so that a
            token seen again skips its signature verification while the clock, its key and the
            policy's scopes are still checked on every use. 0 turns the cache off: every call
            verifies the signature. ID, logout and UserInfo tokens are never cached.
    """

    def __init__(
        self,
        jwks: JWKSCache,
        *,
        clock: Callable[[], float] = time.time,
        access_token_cache_size: int = DEFAULT_ACCESS_TOKEN_CACHE_SIZE,
    ) -> None:
        self._jwks = jwks
        self._clock = clock
        self._access_cache = (
            VerifiedTokenCache(jwks, access_token_cache_size, clock=self._clock)
            if access_token_cache_size
            else None
        )

    @property
    def access_token_cache(self) -> VerifiedTokenCache | None:
        """The verified access-token cache, or None when it is turned off."""
        return self._access_cache

    async def validate_id_token(
        self,
        token: str,
        *,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        expected_nonce: str | None,
        max_age: int | None = None,
        access_token: str | None = None,
        original: IDToken | None = None,
    ) -> IDToken:
        """Validate an ID token from the token endpoint (rows 20–37) or a refresh (56–58).

        Args:
            token: the compact JWT.
            config: the provider; its ``id_token_signed_response_alg`` is the only algorithm.
            metadata: the provider's metadata (for ``jwks_uri``).
            expected_nonce: the transaction's nonce; None means none was sent, and then a
                token carrying a ``nonce`` is rejected (row 34).
            max_age: the ``max_age`` sent, overriding ``config.max_age``.
            access_token: the access token of the same response, to check ``at_hash``.
            original: for a refresh, the session's ID token. Then ``iss``, ``sub``, ``aud``,
                ``azp`` and ``auth_time`` must equal its values, a ``nonce`` is tolerated only if
                equal to its nonce (Core §12.2: it SHOULD be absent), and ``auth_time`` is not
                aged against ``max_age`` (it still names the original login).

        Raises:
            RefreshContinuityError: a refreshed token changed identity.
            IDTokenValidationError: any other check failed.
            ConfigurationError: both ``expected_nonce`` and ``original`` were given.
        """
        if original is not None and expected_nonce is not None:
            msg = "a refreshed ID token has no expected nonce: pass expected_nonce=None"
            raise ConfigurationError(msg)
        try:
            compact, claims, key = await self._verified(token, config, metadata, _ID_TOKEN_TYPES)
            if original is not None:
                _check_continuity(claims, original)
            request = _IDTokenRequest(expected_nonce, max_age, access_token, original)
            return _id_token(claims, compact, key, config, request, now=self._clock())
        except Rejected as exc:
            kind = RefreshContinuityError if exc.continuity else IDTokenValidationError
            raise _rejection(exc, kind, **_bound(config)) from exc.__cause__

    async def validate_access_token(
        self, token: str | bytes, policy: AccessTokenPolicy
    ) -> AccessToken:
        """Validate a bearer access token for an API (``token`` as text, or the ASCII bytes a
        header carried).

        A token this validator already accepted under the same ``policy`` object comes from
        the verified-token cache (:mod:`rpkit.access_cache`) without a second signature
        verification, as long as it has not reached ``exp``, its ``nbf`` and ``iat`` still hold,
        the key that verified it is still in the fresh key set, and the policy's
        ``required_scopes`` are granted; anything else validates it in full.

        Raises:
            AccessTokenValidationError: ``reason="scope"`` when a required scope is missing
                (answer 403), any other reason for an invalid token (answer 401).
        """
        access = self.validate_access_token_now(token, policy)
        return access if access is not None else await self.wait_for_access_token(token, policy)

    def validate_access_token_now(
        self, token: str | bytes, policy: AccessTokenPolicy
    ) -> AccessToken | None:
        """:meth:`validate_access_token` when it needs no wait: the token from the cache, or
        verified with a key the fresh cached set already has (an API's steady state). None
        when it would have to wait, for a key fetch or for another task verifying these very
        bytes: then await :meth:`wait_for_access_token`. A caller that can skip a coroutine
        this way (the bearer middleware) saves its cost on every request.

        Raises:
            AccessTokenValidationError: as :meth:`validate_access_token` (never for a token
                it has not judged: a wait is None, not a refusal).
        """
        cache = self._access_cache
        if cache is None:
            access = self._access(token, policy, None)
        else:  # verify_access_token_now, inline (one call less on every first sight)
            found = cache.find(token, policy, self._clock())
            if isinstance(found, AccessToken):
                return found
            if found is not None and cache.in_flight(found):
                return None
            access = self._access(token, policy, found)
        return access if isinstance(access, AccessToken) else None

    def verify_access_token_now(
        self, token: str | bytes, policy: AccessTokenPolicy, key: CacheKey | None
    ) -> AccessToken | None:
        """:meth:`validate_access_token_now` after the verified-token cache missed: ``key`` is
        what :meth:`VerifiedTokenCache.find <rpkit.access_cache.VerifiedTokenCache.find>`
        returned for ``token`` under ``policy`` (None with the cache off), so a caller that
        looked the token up itself does not hash it again.

        Raises:
            AccessTokenValidationError: as :meth:`validate_access_token`.
        """
        cache = self._access_cache
        if cache is not None and key is not None and cache.in_flight(key):
            return None
        access = self._access(token, policy, key)
        return access if isinstance(access, AccessToken) else None

    async def wait_for_access_token(
        self, token: str | bytes, policy: AccessTokenPolicy
    ) -> AccessToken:
        """:meth:`validate_access_token` once :meth:`validate_access_token_now` returned None:
        waits for the key (which may fetch the set) or for another task's verification of the
        same bytes.

        Raises:
            AccessTokenValidationError: as :meth:`validate_access_token`.
        """
        cache = self._access_cache
        found = None if cache is None else cache.find(token, policy, self._clock())
        if isinstance(found, AccessToken):
            return found
        if cache is None or found is None:  # off, or refused before any decoding
            unverified = self._access(token, policy, None)
            if isinstance(unverified, AccessToken):
                return unverified
            key = await self._access_key(unverified, policy)
            return self._access(token, policy, None, key)
        digest = found
        # Another task is verifying these very bytes: wait for it, and validate only if it
        # ended without keeping the token (cancelled, or past exp) and nobody else took over.
        while (flight := cache.flight(digest)) is not None:
            refusal = await cache.wait(flight)
            if refusal is not None:
                raise AccessTokenValidationError(refusal.reason, refusal.detail) from (
                    refusal.__cause__
                )
            found = cache.find(token, policy, self._clock())
            if isinstance(found, AccessToken):
                return found
        # No await since the loop's check: this task alone validates these bytes.
        unverified = self._access(token, policy, digest)
        if isinstance(unverified, AccessToken):  # the key is at hand now: done (and kept)
            return unverified
        cache.take_off(digest)
        refusal = None
        try:
            key = await self._access_key(unverified, policy)
            return self._access(token, policy, digest, key)
        except AccessTokenValidationError as exc:
            refusal = exc
            raise
        finally:
            cache.land(digest, refusal)

    @overload
    def _access(
        self,
        token: str | bytes,
        policy: AccessTokenPolicy,
        cache_key: CacheKey | None,
        key: VerificationKey,
    ) -> AccessToken: ...

    @overload
    def _access(
        self, token: str | bytes, policy: AccessTokenPolicy, cache_key: CacheKey | None
    ) -> AccessToken | Compact: ...

    def _access(
        self,
        token: str | bytes,
        policy: AccessTokenPolicy,
        cache_key: CacheKey | None,
        key: VerificationKey | None = None,
    ) -> AccessToken | Compact:
        """Every check of an access token, in one pass: split and decoded, ``alg`` and ``typ``
        accepted, its unverified ``iss`` one of the policy's (so a token of another issuer never
        costs a key lookup or a JWKS fetch: nothing else is read from the payload before the
        signature verifies), then the signature with ``key`` or the key the fresh cached set
        already has, then the claims (:func:`~rpkit.access_token.accept_claims`). The token is
        kept under ``cache_key`` when given. Without a key at hand, returns the split token
        for :meth:`_access_key` (then call again with the key).

        One function rather than a call per step on purpose: this is every first sight's path,
        and on a busy server each call and object it touches costs several times what it costs
        in a loop (``bench/README.md``).
        """
        try:
            compact = parse_compact(token)
            header, alg = compact.header, compact.alg
            if alg not in policy.algorithms:
                raise Rejected("alg", f"algorithm {show(alg)} is not accepted")
            check_type(header, policy.accepted_types)
            claims, flat = compact.flat_claims()
            iss = claims.get("iss")
            if type(iss) is not str or iss not in policy.issuers or TENANT_PLACEHOLDER in iss:
                iss = accepted_issuer(claims, policy)  # a template's tenant, or a refusal
            if key is None:
                try:
                    key = self._jwks.cached_key(policy.jwks_uri, header, alg)
                except JWKSError as exc:
                    raise Rejected("key", exc.detail) from exc
                if key is None:
                    return compact
            now = self._clock()
            compact.verify(key)
            access, nbf = accept_claims(claims, policy, now, header, owned=True, flat=flat, iss=iss)
        except Rejected as exc:
            raise _access_rejection(exc, policy) from exc.__cause__
        cache = self._access_cache
        if cache is not None and cache_key is not None:
            # From the cache's miss to here nothing awaits: no other task started on these bytes.
            cache.put(cache_key, access, policy, key, nbf, now=now)
        return access

    async def _access_key(self, compact: Compact, policy: AccessTokenPolicy) -> VerificationKey:
        """The verification key from :meth:`JWKSCache.key_for`, which may fetch the set."""
        try:
            return await self._jwks.key_for(policy.jwks_uri, compact.header, compact.alg)
        except JWKSError as exc:
            rejected = Rejected("key", exc.detail)
            raise _access_rejection(rejected, policy) from exc

    def cached_access_token(
        self, token: str | bytes, policy: AccessTokenPolicy
    ) -> AccessToken | None:
        """``token`` (as text, or its bytes as a header carried them) from the verified-token
        cache, when this validator already accepted these exact bytes under this very ``policy``
        and every per-use check of :meth:`validate_access_token`'s cache hit passes now;
        otherwise None (then validate it). Never verifies, fetches or logs."""
        cache = self._access_cache
        found = None if cache is None else cache.find(token, policy, self._clock())
        return found if isinstance(found, AccessToken) else None

    async def validate_logout_token(
        self, token: str, *, config: ProviderConfig, metadata: ProviderMetadata
    ) -> LogoutToken:
        """Validate a back-channel logout token (Back-Channel Logout §2.6; rows 53, 54).

        Signed with the configured ID-token algorithm (never ``none``); ``iss``, ``aud``,
        ``iat`` and ``exp`` as for ID tokens; ``jti``, the logout event and ``sid`` and/or
        ``sub`` required; no ``nonce``; ``typ``, when present, ``logout+jwt``.

        Raises:
            LogoutTokenValidationError: any failed check.
        """
        try:
            if config.id_token_signed_response_alg == "none":  # noqa: S105 - an algorithm
                raise Rejected("alg", "logout tokens must be signed; this provider signs nothing")
            _, claims, _ = await self._verified(token, config, metadata, _LOGOUT_TYPES)
            return _logout_token(claims, config, self._clock())
        except Rejected as exc:
            error = _rejection(exc, LogoutTokenValidationError, **_bound(config))
            raise error from exc.__cause__

    async def validate_userinfo_jwt(
        self, token: str, *, config: ProviderConfig, metadata: ProviderMetadata
    ) -> Mapping[str, Any]:
        """Validate a signed UserInfo response (Core §5.3.2; row 48) and return its claims.

        Signed with ``config.userinfo_signed_response_alg``; ``iss`` must be the issuer and
        ``aud`` must contain the client id. ``sub`` is the caller's check.

        Raises:
            UserInfoError: ``reason`` as for ID tokens.
            ConfigurationError: the provider expects no signed UserInfo.
        """
        alg = config.userinfo_signed_response_alg
        if alg is None:
            raise ConfigurationError(f"provider {config.id!r}: signed UserInfo is not configured")
        try:
            _, claims, _ = await self._verified(token, config, metadata, None, alg=alg)
            check_issuer(claims, config.issuer, config.tenants)
            if config.client_id not in audiences(claims):
                raise Rejected("aud", "aud does not contain the client id")
            frozen: Mapping[str, Any] = freeze(claims)
        except Rejected as exc:
            _log_rejection(exc, "warning", kind="userinfo", **_bound(config))
            raise UserInfoError(exc.detail, reason=exc.reason) from exc.__cause__
        return frozen

    async def _verified(
        self,
        token: str,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        types: frozenset[str] | None,
        *,
        alg: str | None = None,
    ) -> tuple[Compact, dict[str, Any], VerificationKey | None]:
        """Parse, pin the algorithm, check ``typ``, verify; returns the claims and the key."""
        expected = alg or config.id_token_signed_response_alg
        compact = parse_compact(token)
        if compact.alg != expected:
            # Before any key is touched: an HS* token on an RSA client is refused here (23c).
            raise Rejected("alg", f"algorithm {show(compact.alg)} is not the configured {expected}")
        if types is not None:
            check_type(compact.header, types)
        key = None
        if expected == "none":
            compact.verify_unsigned()
        elif expected.startswith("HS"):
            compact.verify_hmac(config.client_secret or "")
        else:
            key = await self._key(metadata.jwks_uri, compact.header, expected)
            compact.verify(key)
        return compact, compact.claims(), key

    async def _key(self, jwks_uri: str, header: Mapping[str, Any], alg: str) -> VerificationKey:
        try:
            return await self._jwks.key_for(jwks_uri, header, alg)
        except JWKSError as exc:
            raise Rejected("key", exc.detail) from exc


def _bound(config: ProviderConfig) -> dict[str, str]:
    return {"provider": config.id, "issuer": config.issuer}


def _rejection(
    exc: Rejected, kind: type[TokenValidationError], **bound: Any
) -> TokenValidationError:
    # A refused ID or logout token is a failed sign-in or logout: a warning, so an application
    # logging at warning sees why. Refused access tokens are an API's routine (expired ones,
    # scanners) and the bearer middleware logs its own refusal: info.
    level = "info" if issubclass(kind, AccessTokenValidationError) else "warning"
    _log_rejection(exc, level, kind=kind.code, **bound)
    return kind(exc.reason, exc.detail)


def _access_rejection(exc: Rejected, policy: AccessTokenPolicy) -> TokenValidationError:
    return _rejection(exc, AccessTokenValidationError, jwks_uri=policy.jwks_uri)


def _log_rejection(exc: Rejected, level: str, **bound: Any) -> None:
    # The detail never holds a token, nonce or secret; only the failed check and short values.
    log = get_logger(**bound)
    emit = log.info if level == "info" else log.warning
    emit("rpkit.token.rejected", reason=exc.reason, detail=exc.detail)


# -- ID tokens -----------------------------------------------------------------------------------


class _IDTokenRequest(NamedTuple):
    """What the caller expects of one ID token, beyond the provider configuration."""

    expected_nonce: str | None
    max_age: int | None
    access_token: str | None
    original: IDToken | None


def _id_token(
    claims: dict[str, Any],
    compact: Compact,
    key: VerificationKey | None,
    config: ProviderConfig,
    request: _IDTokenRequest,
    *,
    now: float,
) -> IDToken:
    """Every claim check of Core §3.1.3.7 after the signature, in the checklist's order."""
    iss, _ = check_issuer(claims, config.issuer, config.tenants)
    aud, azp = _check_id_audience(claims, config)
    sub = subject(claims)
    iat, exp, _ = check_times(claims, now, config.leeway, config.max_iat_age)
    if request.original is None:
        _check_nonce(claims, request.expected_nonce, missing_ok=config.accept_missing_nonce)
    auth_time = _check_auth_time(claims, now, config, request)
    at_hash = _check_at_hash(claims, request.access_token, compact.alg, key)
    optional = _optional_claims(claims, max_length=MAX_CLAIM_LENGTH)
    return IDToken(
        iss=iss,
        sub=sub,
        aud=aud,
        exp=exp,
        iat=iat,
        auth_time=auth_time,
        azp=azp,
        at_hash=at_hash,
        claims=freeze(claims),
        **optional,
    )


def id_token_from_claims(claims: Mapping[str, Any]) -> IDToken:
    """The :class:`IDToken` of claims that already passed :meth:`TokenValidator.validate_id_token`
    and were stored as plain JSON (a session, say): no check is run again."""
    return IDToken(
        iss=claims["iss"],
        sub=claims["sub"],
        aud=audiences(claims),
        exp=integer(claims, "exp"),
        iat=integer(claims, "iat"),
        auth_time=integer(claims, "auth_time") if "auth_time" in claims else None,
        azp=claims.get("azp"),
        at_hash=claims.get("at_hash"),
        claims=freeze(dict(claims)),
        **_optional_claims(claims),
    )


def _optional_claims(claims: Mapping[str, Any], max_length: int | None = None) -> dict[str, Any]:
    """``nonce``, ``sid``, ``acr`` and ``amr``; ``max_length`` bounds ``nonce`` and ``sid`` of a
    token being validated (not of claims stored after validation)."""
    return {
        "nonce": optional_str(claims, "nonce", max_length=max_length),
        "sid": optional_str(claims, "sid", max_length=max_length),
        "acr": optional_str(claims, "acr"),
        "amr": _amr(claims),
    }


def _check_id_audience(
    claims: Mapping[str, Any], config: ProviderConfig
) -> tuple[tuple[str, ...], str | None]:
    """``aud`` contains the client id; extra audiences only trusted ones, then with ``azp``
    equal to the client id; never several with a MAC (rows 23b, 26–28)."""
    client_id = config.client_id
    aud = audiences(claims)
    if client_id not in aud:
        raise Rejected("aud", f"aud {show(list(aud))} does not contain the client id")
    azp = claims.get("azp", MISSING)
    if len(set(aud)) > 1:
        if config.is_symmetric:
            raise Rejected("aud", "a MAC-signed token must not have several audiences")
        untrusted = sorted(set(aud) - {client_id} - config.trusted_audiences)
        if untrusted:
            raise Rejected("aud", f"aud names untrusted audiences {show(untrusted)}")
        if azp != client_id:
            raise Rejected("azp", "a token with several audiences needs azp = the client id")
    if azp is MISSING:
        return aud, None
    if azp != client_id:
        raise Rejected("azp", f"azp {show(azp)} is not the client id")
    return aud, client_id


def _check_nonce(claims: Mapping[str, Any], expected: str | None, *, missing_ok: bool) -> None:
    """The nonce sent, exactly (row 34). ``missing_ok`` (the ``accept_missing_nonce``
    relaxation) accepts a token without ``nonce``; a wrong one is refused all the same."""
    nonce = claims.get("nonce", MISSING)
    if expected is None:
        if nonce is not MISSING:
            raise Rejected("nonce", "the token carries a nonce, but none was sent (row 34)")
        return
    if nonce is MISSING and missing_ok:
        return
    if type(nonce) is not str or not hmac.compare_digest(nonce.encode(), expected.encode()):
        raise Rejected("nonce", "nonce is missing or not the one this transaction sent")


def _check_auth_time(
    claims: Mapping[str, Any], now: float, config: ProviderConfig, request: _IDTokenRequest
) -> int | None:
    """``auth_time`` required with ``max_age``/``require_auth_time``, and recent (row 35)."""
    max_age = request.max_age if request.max_age is not None else config.max_age
    if "auth_time" not in claims:
        if config.require_auth_time or max_age is not None:
            raise Rejected("auth_time", "auth_time is required (max_age or require_auth_time)")
        return None
    auth_time = integer(claims, "auth_time")
    if auth_time > now + config.leeway:
        raise Rejected("auth_time", "auth_time is in the future")
    # A refresh keeps the original auth_time: aging it against max_age would end the session.
    if (
        request.original is None
        and max_age is not None
        and now - auth_time > max_age + config.leeway
    ):
        raise Rejected("auth_time", f"the authentication is older than max_age={max_age}")
    return auth_time


def _check_at_hash(
    claims: Mapping[str, Any], access_token: str | None, alg: str, key: VerificationKey | None
) -> str | None:
    """``at_hash``, when present and the access token known, matches it (row 36)."""
    at_hash = optional_str(claims, "at_hash")
    if at_hash is None or access_token is None:
        return at_hash
    expected = half_hash(access_token, alg, key)
    if expected is not None and not hmac.compare_digest(at_hash.encode(), expected.encode()):
        raise Rejected("at_hash", "at_hash does not match the access token")
    return at_hash


def _amr(claims: Mapping[str, Any]) -> tuple[str, ...] | None:
    amr = claims.get("amr", MISSING)
    if amr is MISSING:
        return None
    if type(amr) is not list or not all(type(method) is str for method in amr):
        raise Rejected("amr", "amr is not an array of strings")
    return tuple(amr)


def _check_continuity(claims: Mapping[str, Any], original: IDToken) -> None:
    """A refreshed token names the same login (Core §12.2; rows 56–58)."""
    for name, before in (("iss", original.iss), ("sub", original.sub), ("azp", original.azp)):
        # azp: absent before means absent now; present before means the same value now.
        if claims.get(name) != before:
            raise Rejected(name, f"{name} differs from the original ID token", continuity=True)
    aud = claims.get("aud")
    now_aud = [aud] if type(aud) is str else aud if type(aud) is list else None
    if now_aud is None or not all(type(a) is str for a in now_aud):
        raise Rejected("aud", "aud differs from the original ID token", continuity=True)
    if set(now_aud) != set(original.aud):
        raise Rejected("aud", "aud differs from the original ID token", continuity=True)
    for name, before_value in (("auth_time", original.auth_time), ("nonce", original.nonce)):
        if name in claims and claims[name] != before_value:
            raise Rejected(name, f"{name} differs from the original", continuity=True)


# -- logout tokens -------------------------------------------------------------------------------


def _logout_token(claims: dict[str, Any], config: ProviderConfig, now: float) -> LogoutToken:
    iss, _ = check_issuer(claims, config.issuer, config.tenants)
    _check_id_audience(claims, config)
    iat, exp, _ = check_times(claims, now, config.leeway, config.max_iat_age)
    jti = string_claim(claims, "jti")
    events = claims.get("events")
    if type(events) is not dict or type(events.get(BACKCHANNEL_LOGOUT_EVENT)) is not dict:
        raise Rejected("events", "events lacks the back-channel logout event object")
    sub = subject(claims) if "sub" in claims else None
    sid = string_claim(claims, "sid") if "sid" in claims else None
    if sub is None and sid is None:
        raise Rejected("sub_or_sid", "the logout token names neither sid nor sub")
    if "nonce" in claims:
        raise Rejected("nonce", "a logout token must not carry a nonce")
    return LogoutToken(iss=iss, sub=sub, sid=sid, jti=jti, iat=iat, exp=exp)
