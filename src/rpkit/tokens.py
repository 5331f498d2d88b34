"""The token endpoint: the authorization-code exchange and refresh (RFC 6749 §4.1.3, §6).

Each grant is one POST over the application's shared client, never retried (a code is single-use,
and a replayed refresh token looks like theft) — except once when DPoP is used and the provider
refused the proof for want of its nonce (RFC 9449 §8), which it does before judging the grant.
The response must be a JSON object with a string ``access_token`` and a ``token_type`` of
``Bearer`` in any letter case (rows 18, 19), or ``DPoP`` when a proof was sent (RFC 9449 §5);
the code exchange also needs an ``id_token`` (row 17). The result is a :class:`TokenSet` that
records the scope actually granted. The ID token is *not* validated here: that is
:mod:`rpkit.id_token`'s job. A redirect is refused (it would carry the code or the client's
secret elsewhere), and the answer is read within a deadline and a byte bound
(:mod:`rpkit._outbound`).

Example:
    >>> import httpx
    >>> from rpkit.tokens import TokenClient
    >>> tokens = TokenClient(httpx.AsyncClient(timeout=10.0))
    >>> # token_set = await tokens.exchange_code(
    >>> #     config, metadata, code=code, redirect_uri=uri, code_verifier=verifier
    >>> # )
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, NoReturn

import httpx
import msgspec

from rpkit._client_auth import client_auth
from rpkit._frozen import freeze
from rpkit._json import decode as decode_json
from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT, Refused, check_bounds, fetch
from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.dpop import DPoPKey, DPoPNonces, nonce_challenge
from rpkit.errors import (
    ClientSecretError,
    DPoPTokenTypeError,
    InvalidGrantError,
    SessionExpiredError,
    TokenExchangeError,
)
from rpkit.hooks import ClientSecret

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_TOKEN_RESPONSE_BYTES",
    "SECRET_RENEW_MARGIN",
    "TokenClient",
    "TokenSet",
]

MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
"""Largest token response read: three tokens, even with large group claims, fit many times."""
MAX_DESCRIPTION_LENGTH = 200
"""Characters of the OP's ``error_description`` kept on an error (untrusted text)."""
# An OAuth error code is a short ASCII word (RFC 6749 §5.2); anything else is not repeated, so a
# hostile OP cannot smuggle a long or multi-line string into an error detail or a log line.
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_UNREADABLE = "unreadable_error"
_REDACTED = "<redacted>"
_BEARER = "bearer"  # RFC 6750; compared case-insensitively (RFC 6749 §5.1, row 19)
_DPOP = "dpop"  # RFC 9449 §5; compared case-insensitively too
_MAX_EXPIRES_IN = 2**31 - 1  # 68 years
_OAUTH2_SCOPE_SEPARATORS = r"[\s,]+"
SECRET_RENEW_MARGIN = 300
"""Seconds before a minted client secret expires at which rpkit mints the next one."""


class TokenSet(msgspec.Struct, frozen=True, kw_only=True):
    """The tokens of one successful grant. Its ``repr`` never shows a token."""

    access_token: str
    token_type: str
    """Lower-cased: ``bearer``, or ``dpop`` for a token bound to the login's DPoP key."""
    expires_at: int
    """Epoch seconds: ``expires_in`` after the response, or the provider's
    ``default_token_lifetime`` when the OP omits it (row 19)."""
    refresh_token: str | None
    """The OP's new refresh token; after a refresh without one, the token that was presented
    (row 59)."""
    id_token: str | None
    """The raw, *unvalidated* ID token; always present after a code exchange (row 17)."""
    scope: tuple[str, ...]
    """The granted scope: the response's ``scope`` when present, else the requested one."""
    raw: Mapping[str, Any]
    """The whole response as received, deeply read-only."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self.__rich_repr__())
        return f"TokenSet({fields})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        """What ``repr`` and rich (tracebacks with locals) show: no token, no raw response."""
        return [
            ("token_type", self.token_type),
            ("expires_at", self.expires_at),
            ("scope", self.scope),
            ("refresh_token", _REDACTED if self.refresh_token else None),
            ("id_token", _REDACTED if self.id_token else None),
        ]


class _TokenResponse(msgspec.Struct, kw_only=True):
    """RFC 6749 §5.1 members with their types; unknown members are ignored (kept in ``raw``)."""

    access_token: str | None = None
    token_type: str | None = None
    # Bounded so expires_at stays a sane epoch time: 10**400 would break every later float
    # comparison with the clock (the session's refresh check raised OverflowError).
    expires_in: Annotated[int, msgspec.Meta(ge=0, le=_MAX_EXPIRES_IN)] | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None


class TokenClient:
    """Code exchange and refresh against a provider's token endpoint.

    Args:
        http: the application's pooled client; never closed here. Its redirect setting is
            ignored (a redirect is refused), and its timeouts apply only where tighter than
            ``timeout``.
        clock: epoch seconds, for ``expires_at`` and client-assertion times; injectable for tests.
        max_bytes: the largest token response read (default :data:`MAX_TOKEN_RESPONSE_BYTES`,
            64 KiB); a larger one is a :class:`~rpkit.errors.TokenExchangeError`.
        timeout: seconds one token request may take in all (default 10).
        nonces: the servers' DPoP nonces (RFC 9449 §8), shared with the other clients.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        max_bytes: int = MAX_TOKEN_RESPONSE_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        nonces: DPoPNonces | None = None,
    ) -> None:
        check_bounds("TokenClient", max_bytes, timeout)
        self._nonces = nonces if nonces is not None else DPoPNonces()
        self._http = http
        self._clock = clock
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._secrets: dict[str, ClientSecret] = {}
        self._minting: dict[str, asyncio.Lock] = {}

    async def client_secret(self, config: ProviderConfig) -> str | None:
        """The secret minted by ``config.hooks.client_secret``, from the cache while it is good
        for another :data:`SECRET_RENEW_MARGIN` seconds; None when the provider mints none.
        One mint runs at a time per provider; the others wait for it.

        Raises:
            ClientSecretError: the factory raised, or returned an empty or expiring secret.
        """
        factory = config.hooks.client_secret
        if factory is None:
            return None
        lock = self._minting.setdefault(config.id, asyncio.Lock())
        async with lock:
            cached = self._secrets.get(config.id)
            now = self._clock()
            if cached is not None and cached.expires_at - SECRET_RENEW_MARGIN > now:
                return cached.value
            try:
                minted = await factory(now)
            except Exception as exc:  # a hook's failure of any kind: typed, no request made
                detail = f"the client-secret factory failed: {type(exc).__name__}"
                _logger(config).warning("rpkit.tokens.client_secret_failed", detail=detail)
                raise ClientSecretError(detail) from exc
            if not minted.value or minted.expires_at - SECRET_RENEW_MARGIN <= now:
                detail = "the client-secret factory returned an empty or expiring secret"
                _logger(config).warning("rpkit.tokens.client_secret_failed", detail=detail)
                raise ClientSecretError(detail)
            self._secrets[config.id] = minted
            _logger(config).info("rpkit.tokens.client_secret_minted", expires_at=minted.expires_at)
            return minted.value

    async def exchange_code(
        self,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        dpop: DPoPKey | None = None,
    ) -> TokenSet:
        """Exchange an authorization code for tokens: one request, never retried (row 18),
        except once with a DPoP nonce the provider asked for (RFC 9449 §8).

        With ``dpop``, the request carries a proof made with the key (RFC 9449 §5) and the
        answer's ``token_type`` must be ``DPoP``.

        Raises:
            DPoPTokenTypeError: DPoP was used and the token is not ``DPoP``-bound.
            InvalidGrantError: the OP refused the code (used, expired, wrong verifier).
            TokenExchangeError: any other OAuth error, a network failure, a body that is not a
                JSON object, a missing ``access_token`` or ``id_token`` (row 17), or a
                ``token_type`` other than Bearer.
        """
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }
        if not config.skip_pkce:
            form["code_verifier"] = code_verifier
        body, raw = await self._post(config, metadata, form, InvalidGrantError, dpop)
        access_token = _check(
            config, body, require_id_token="openid" in config.scopes, dpop=dpop is not None
        )
        return self._token_set(
            config, access_token, body, raw, fallback_scope=config.scopes, previous_refresh=None
        )

    async def refresh(
        self,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        refresh_token: str,
        *,
        granted_scope: Sequence[str] | None = None,
        dpop: DPoPKey | None = None,
    ) -> TokenSet:
        """Use ``refresh_token`` once (RFC 6749 §6); never retried.

        Args:
            config: the provider.
            metadata: its validated metadata.
            refresh_token: the session's current refresh token; kept in the result when the OP
                issues no new one (row 59).
            granted_scope: the scope granted so far, recorded when the response omits ``scope``
                (a refresh without ``scope`` keeps the original grant); ``config.scopes`` when
                None.
            dpop: the session's DPoP key: the request carries a proof (RFC 9449 §5) and the
                new token must be ``DPoP``-bound.

        Raises:
            SessionExpiredError: the OP answered ``invalid_grant`` (revoked, expired or
                replayed): sign the user in again (row 60).
            TokenExchangeError: anything else went wrong, as for :meth:`exchange_code`; the
                refresh token may still be good.
        """
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        body, raw = await self._post(config, metadata, form, SessionExpiredError, dpop)
        access_token = _check(config, body, require_id_token=False, dpop=dpop is not None)
        fallback = tuple(granted_scope) if granted_scope is not None else config.scopes
        return self._token_set(
            config, access_token, body, raw, fallback_scope=fallback, previous_refresh=refresh_token
        )

    async def _post(
        self,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        form: dict[str, str],
        invalid_grant: type[InvalidGrantError],
        dpop: DPoPKey | None = None,
    ) -> tuple[_TokenResponse, dict[str, Any]]:
        endpoint = metadata.token_endpoint
        response = await self._send(config, endpoint, form, dpop)
        if dpop is not None and nonce_challenge(self._nonces, endpoint, response) is not None:
            # RFC 9449 §8: the provider refused the proof for want of its nonce before looking
            # at the grant, so the same grant goes once more, with a new proof and assertion.
            _logger(config).info("rpkit.tokens.dpop_nonce_retry")
            response = await self._send(config, endpoint, form, dpop)
            self._nonces.learn(endpoint, response)
        raw = _decode(config, response)
        if response.status_code != 200 or "error" in raw:
            _raise_oauth_error(config, response.status_code, raw, invalid_grant)
        return _convert(config, raw), raw

    async def _send(
        self, config: ProviderConfig, endpoint: str, form: dict[str, str], dpop: DPoPKey | None
    ) -> httpx.Response:
        """One token request: fresh client authentication and, with ``dpop``, a fresh proof."""
        secret = await self.client_secret(config)
        now = self._clock()
        headers, auth_form = client_auth(config, endpoint, now=now, secret=secret)
        if dpop is not None:
            nonce = self._nonces.get(endpoint)
            headers["DPoP"] = dpop.proof("POST", endpoint, nonce=nonce, now=now)
        try:
            return await fetch(
                self._http,
                "POST",
                endpoint,
                what="the token endpoint",
                max_bytes=self._max_bytes,
                timeout=self._timeout,
                data=form | auth_form,
                headers={"Accept": "application/json", **headers},
            )
        except Refused as exc:
            raise _error(config, exc.detail) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _error(config, f"the token request failed: {type(exc).__name__}") from exc

    def _token_set(
        self,
        config: ProviderConfig,
        access_token: str,
        body: _TokenResponse,
        raw: dict[str, Any],
        *,
        fallback_scope: tuple[str, ...],
        previous_refresh: str | None,
    ) -> TokenSet:
        lifetime = config.default_token_lifetime if body.expires_in is None else body.expires_in
        tokens = TokenSet(
            access_token=access_token,
            token_type=(body.token_type or _BEARER).lower(),
            expires_at=int(self._clock()) + lifetime,
            refresh_token=body.refresh_token or previous_refresh,
            id_token=None if config.is_oauth2 else body.id_token or None,
            scope=_scope(config, body.scope) if body.scope is not None else fallback_scope,
            raw=freeze(raw),
        )
        _logger(config).info(
            "rpkit.tokens.received",
            scope=" ".join(tokens.scope),
            expires_at=tokens.expires_at,
            new_refresh_token=body.refresh_token is not None,
            id_token=tokens.id_token is not None,
        )
        return tokens


def _scope(config: ProviderConfig, scope: str) -> tuple[str, ...]:
    """The granted scopes: space-separated (RFC 6749 §3.3); OAuth 2.0-only providers may also
    separate them with commas (GitHub answers ``read:user,user:email``)."""
    separators = _OAUTH2_SCOPE_SEPARATORS if config.is_oauth2 else None
    return tuple(part for part in re.split(separators or r"\s+", scope.strip()) if part)


def _check(
    config: ProviderConfig, body: _TokenResponse, *, require_id_token: bool, dpop: bool = False
) -> str:
    """Check RFC 6749 §5.1 members (row 18c, d) and, for a login, the ID token (row 17);
    return the access token. With ``dpop`` the token must be ``DPoP`` (RFC 9449 §5), never
    ``Bearer``: a provider that ignored the proof issued a token anyone holding it can use."""
    if not body.access_token:
        raise _error(config, "the token response has no access_token")
    token_type = (body.token_type or "").lower()
    if dpop and token_type != _DPOP:
        detail = f"DPoP was used but the token_type is {_safe(body.token_type)!r}, not 'DPoP'"
        _logger(config).warning("rpkit.tokens.failed", detail=detail)
        raise DPoPTokenTypeError(detail)
    if not dpop and token_type != _BEARER:
        raise _error(config, f"the token response's token_type is {_safe(body.token_type)!r}")
    if require_id_token and not body.id_token:
        raise _error(config, "the token response has no id_token although openid was requested")
    return body.access_token


def _decode(config: ProviderConfig, response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, whatever the status (error bodies are JSON too)."""
    status = response.status_code

    def not_json() -> TokenExchangeError:
        msg = f"the token endpoint answered HTTP {status} with a body that is not JSON"
        return _error(config, msg)

    document = decode_json(response.content, not_json)
    if not isinstance(document, dict):
        msg = f"the token endpoint answered HTTP {status} with JSON that is not an object"
        raise _error(config, msg)
    return document


def _convert(config: ProviderConfig, document: dict[str, Any]) -> _TokenResponse:
    try:
        return msgspec.convert(document, _TokenResponse)
    except msgspec.ValidationError as exc:
        # msgspec names the member and the expected type, never the value.
        raise _error(config, f"the token response is malformed: {exc}") from exc


def _raise_oauth_error(
    config: ProviderConfig,
    status: int,
    document: dict[str, Any],
    invalid_grant: type[InvalidGrantError],
) -> NoReturn:
    """Raise for an OAuth error response (RFC 6749 §5.2); ``invalid_grant`` as the grant's own
    class (rows 18a, 60)."""
    error = document.get("error")
    code = _safe(error) if error is not None else None
    description = document.get("error_description")
    kept = description[:MAX_DESCRIPTION_LENGTH] if isinstance(description, str) else None
    detail = f"the token endpoint answered HTTP {status}" + (f" {code!r}" if code else "")
    cls = invalid_grant if code == "invalid_grant" else TokenExchangeError
    _logger(config).warning("rpkit.tokens.refused", status=status, error=code, code=cls.code)
    raise cls(detail, error=code, description=kept)


def _error(config: ProviderConfig, detail: str) -> TokenExchangeError:
    """The error to raise, logged (``detail`` never holds a token, code or secret)."""
    _logger(config).warning("rpkit.tokens.failed", detail=detail)
    return TokenExchangeError(detail)


def _safe(error: object) -> str:
    """An OP-supplied error code or token type, repeated only if it looks like one."""
    if isinstance(error, str) and _ERROR_CODE.fullmatch(error):
        return error
    return _UNREADABLE


def _logger(config: ProviderConfig) -> Any:
    return get_logger(provider=config.id, issuer=config.issuer)
