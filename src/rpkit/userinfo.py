"""The UserInfo endpoint (Core §5.3): fetch the claims and refuse any answer that is not them.

The access token travels only in the ``Authorization`` header (``Bearer``, or ``DPoP`` with a
proof: RFC 9449 §7.1; row 46), never through a redirect, and the answer is read within a
deadline and a byte bound (:mod:`rpkit._outbound`). An error status, a redirect, an oversized
body, HTML, a JSON array, invalid JSON, an unexpected ``application/jwt`` body, or a ``sub``
other than the ID token's is a :class:`~rpkit.errors.UserInfoError` with a stable ``reason``,
never a silent success (rows 45, 47, 48). A signed UserInfo JWT is verified by the caller's
``verify_jwt`` (the ID-token validator); this module checks neither signatures nor
``iss``/``aud`` itself.

Aggregated and distributed claims (Core §5.6.2, row 49) are not supported: ``_claim_names`` and
``_claim_sources`` are dropped, and nothing is fetched from a claims source.

Example:
    >>> import httpx
    >>> from rpkit.userinfo import UserInfoClient
    >>> userinfo = UserInfoClient(httpx.AsyncClient(timeout=10.0))
    >>> # claims = await userinfo.fetch(
    >>> #     config, metadata, access_token=tokens.access_token, expected_sub=id_token.sub
    >>> # )
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from rpkit._frozen import freeze
from rpkit._json import decode as decode_json
from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT, Redirected, Refused, check_bounds, fetch
from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.dpop import DPoPKey, DPoPNonces, nonce_challenge
from rpkit.errors import ConfigurationError, RPKitError, UserInfoError

__all__ = ["DROPPED_MEMBERS", "MAX_USERINFO_BYTES", "JWTVerifier", "UserInfoClient"]

JWTVerifier = Callable[[str], Awaitable[Mapping[str, Any]]]
"""Verifies a signed UserInfo JWT (signature with the issuer's keys, the configured algorithm,
``iss`` and ``aud``) and returns its claims, or raises an :class:`~rpkit.errors.RPKitError`."""

DROPPED_MEMBERS = frozenset({"_claim_names", "_claim_sources"})
"""Members removed from the claims: aggregated and distributed claims are not supported."""

MAX_USERINFO_BYTES = 256 * 1024
"""Largest UserInfo answer read; a user's claims are a few kilobytes."""

_JSON = "application/json"
_JWT = "application/jwt"
_BEARER_ERROR = re.compile(r'\berror="([A-Za-z0-9_.\-]{1,64})"')
"""The ``error`` of a ``Bearer`` (RFC 6750 §3) or ``DPoP`` (RFC 9449 §7.1) challenge."""


class UserInfoClient:
    """Fetches and checks UserInfo claims over the application's shared client.

    Args:
        http: the application's pooled client; never closed here. Its redirect setting is
            ignored (a redirect is refused), and its timeouts apply only where tighter than
            ``timeout``.
        max_bytes: the largest answer read (default :data:`MAX_USERINFO_BYTES`, 256 KiB); a
            larger one is a :class:`~rpkit.errors.UserInfoError` with reason ``too_large``.
        timeout: seconds one request may take in all (default 10).
        nonces: the servers' DPoP nonces (RFC 9449 §9), shared with the other clients.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        max_bytes: int = MAX_USERINFO_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        nonces: DPoPNonces | None = None,
    ) -> None:
        check_bounds("UserInfoClient", max_bytes, timeout)
        self._nonces = nonces if nonces is not None else DPoPNonces()
        self._http = http
        self._max_bytes = max_bytes
        self._timeout = timeout

    async def fetch(
        self,
        config: ProviderConfig,
        metadata: ProviderMetadata,
        *,
        access_token: str,
        expected_sub: str,
        verify_jwt: JWTVerifier | None = None,
        dpop: DPoPKey | None = None,
    ) -> Mapping[str, Any]:
        """The UserInfo claims of ``access_token``'s user, read-only.

        Args:
            config: the provider; ``userinfo_signed_response_alg`` says whether to expect JSON
                (None) or a signed JWT.
            metadata: its validated metadata (``userinfo_endpoint``).
            access_token: sent as ``Authorization: Bearer`` only.
            expected_sub: the validated ID token's ``sub``; the claims must name it (row 45).
            verify_jwt: verifies a signed response; required when signed UserInfo is configured.
            dpop: the key ``access_token`` is bound to: the token goes as
                ``Authorization: DPoP`` with a proof carrying ``ath`` (RFC 9449 §7.1), sent
                once more with the server's nonce when it asks for one (§9).

        Raises:
            UserInfoError: the answer is unusable; ``reason`` is one of ``no_endpoint``,
                ``network``, ``unauthorized`` (401), ``status`` (also a redirect),
                ``too_large``, ``encoded`` (a compressed body), ``not_json``, ``not_object``,
                ``unexpected_jwt``, ``not_jwt``, ``jwt`` or ``sub``.
            ConfigurationError: signed UserInfo is configured but no ``verify_jwt`` was given.
        """
        log = get_logger(provider=config.id, issuer=config.issuer)
        signed = config.userinfo_signed_response_alg is not None
        if signed and verify_jwt is None:
            msg = f"provider {config.id!r}: userinfo_signed_response_alg is set; pass verify_jwt"
            raise ConfigurationError(msg)
        try:
            response = await self._get(metadata, access_token, signed=signed, dpop=dpop)
            claims = await _claims(response, verify_jwt if signed else None)
            _check_subject(claims, expected_sub)
        except UserInfoError as exc:
            log.warning("rpkit.userinfo.rejected", reason=exc.reason, detail=exc.detail)
            raise
        log.info("rpkit.userinfo.fetched", signed=signed, claims=len(claims))
        kept = {name: value for name, value in claims.items() if name not in DROPPED_MEMBERS}
        return MappingProxyType({name: freeze(value) for name, value in kept.items()})

    async def _get(
        self,
        metadata: ProviderMetadata,
        access_token: str,
        *,
        signed: bool,
        dpop: DPoPKey | None = None,
    ) -> httpx.Response:
        endpoint = metadata.userinfo_endpoint
        if endpoint is None:
            msg = "the provider's metadata has no userinfo_endpoint"
            raise UserInfoError(msg, reason="no_endpoint")
        response = await self._send(endpoint, access_token, signed=signed, dpop=dpop)
        if dpop is not None and nonce_challenge(self._nonces, endpoint, response) is not None:
            response = await self._send(endpoint, access_token, signed=signed, dpop=dpop)
            self._nonces.learn(endpoint, response)
        return response

    async def _send(
        self, endpoint: str, access_token: str, *, signed: bool, dpop: DPoPKey | None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {access_token}", "Accept": _JWT if signed else _JSON}
        if dpop is not None:
            headers["Authorization"] = f"DPoP {access_token}"
            nonce = self._nonces.get(endpoint)
            headers["DPoP"] = dpop.proof("GET", endpoint, access_token=access_token, nonce=nonce)
        try:
            # fetch never follows a redirect: the Bearer token would go along.
            return await fetch(
                self._http,
                "GET",
                endpoint,
                what="UserInfo",
                max_bytes=self._max_bytes,
                timeout=self._timeout,
                headers=headers,
            )
        except Refused as exc:
            raise _refusal(exc) from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            msg = f"the UserInfo request failed: {type(exc).__name__}"
            raise UserInfoError(msg, reason="network") from exc


async def _claims(response: httpx.Response, verify_jwt: JWTVerifier | None) -> Mapping[str, Any]:
    """The claims in a 200 response: JSON when ``verify_jwt`` is None, else a verified JWT."""
    _check_status(response)
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if verify_jwt is None:
        if media_type == _JWT:
            msg = "UserInfo answered application/jwt, but signed UserInfo is not configured"
            raise UserInfoError(msg, reason="unexpected_jwt")
        return _json_claims(response, media_type)
    if media_type != _JWT:
        msg = f"UserInfo answered {media_type or 'no content type'!r}, expected {_JWT!r}"
        raise UserInfoError(msg, reason="not_jwt")
    try:
        claims = await verify_jwt(response.text.strip())
    except RPKitError as exc:
        msg = f"the signed UserInfo response failed verification: {exc.code}"
        raise UserInfoError(msg, reason="jwt") from exc
    return _object(claims)


def _refusal(exc: Refused) -> UserInfoError:
    """The error for an answer :mod:`rpkit._outbound` refused; a redirect is an unusable
    ``status``, as it always was."""
    reason = "status" if isinstance(exc, Redirected) else exc.reason
    return UserInfoError(exc.detail, reason=reason)


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status == 401:
        found = _BEARER_ERROR.search(response.headers.get("www-authenticate", ""))
        error = found.group(1) if found else "no Bearer or DPoP error"
        msg = f"UserInfo refused the access token (HTTP 401, {error})"
        raise UserInfoError(msg, reason="unauthorized")
    if status != 200:
        msg = f"UserInfo answered HTTP {status}"
        raise UserInfoError(msg, reason="status")


def _json_claims(response: httpx.Response, media_type: str) -> Mapping[str, Any]:
    if media_type != _JSON:
        msg = f"UserInfo answered {media_type or 'no content type'!r}, expected {_JSON!r}"
        raise UserInfoError(msg, reason="not_json")
    document = decode_json(response.content, _invalid_json)
    return _object(document)


def _invalid_json() -> UserInfoError:
    return UserInfoError("UserInfo answered invalid JSON", reason="not_json")


def _object(document: Any) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        msg = f"UserInfo claims must be a JSON object, got {type(document).__name__}"
        raise UserInfoError(msg, reason="not_object")
    return document


def _check_subject(claims: Mapping[str, Any], expected_sub: str) -> None:
    """Core §5.3.2: the ``sub`` must be exactly the ID token's, or the claims are not used."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or sub != expected_sub:
        detail = "is absent" if sub is None else "differs from the ID token's"
        msg = f"the UserInfo sub {detail}"
        raise UserInfoError(msg, reason="sub")
