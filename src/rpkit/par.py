"""Pushed authorization requests (RFC 9126): the authorization parameters go to the provider in
an authenticated POST, and the browser carries only ``client_id`` and the ``request_uri`` that
stands for them.

:func:`use_par` decides from the provider's ``par`` setting and its metadata (RFC 9126 §5:
``pushed_authorization_request_endpoint``, ``require_pushed_authorization_requests``) whether a
login pushes; :func:`push` sends the parameters with the client's authentication (§2.1: every
method the token endpoint takes) and returns the :class:`PushedRequest` of a ``201 Created``
answer (§2.2), refusing anything else with a typed
:class:`~rpkit.errors.PushedAuthorizationError` (§2.3). A pushed request is used for one login
only and never after its ``expires_in``: every login pushes afresh, so a login started after an
earlier request URI expired gets its own. :func:`authorization_url` is the browser's redirect
(§4). The answer is read without following redirects, within a deadline and a byte bound
(:mod:`rpkit._outbound`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
import msgspec

from rpkit._json import decode as decode_json
from rpkit._log import get_logger
from rpkit._outbound import DEFAULT_TIMEOUT, Refused, fetch
from rpkit.config import ProviderConfig
from rpkit.discovery import ProviderMetadata
from rpkit.errors import PushedAuthorizationError, PushedAuthorizationUnavailableError

__all__ = [
    "MAX_EXPIRES_IN",
    "MAX_PAR_RESPONSE_BYTES",
    "MAX_REQUEST_URI_LENGTH",
    "PushedRequest",
    "authorization_url",
    "push",
    "use_par",
]

MAX_PAR_RESPONSE_BYTES = 16 * 1024
"""Largest PAR answer read: two members."""
MAX_REQUEST_URI_LENGTH = 2048
"""Longest ``request_uri`` put in the browser's URL."""
MAX_EXPIRES_IN = 3600
"""Longest ``expires_in`` believed: RFC 9126 §2.2 suggests 5 to 600 seconds."""
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_REQUEST_URI = re.compile(r"[\x21-\x7e]{1,2048}")
"""A URI without spaces or control characters (RFC 3986 ``URI`` is printable ASCII)."""


class PushedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A ``201 Created`` answer of the PAR endpoint (RFC 9126 §2.2)."""

    request_uri: str
    """The reference the browser carries to the authorization endpoint instead of the
    parameters; single use at the provider."""
    expires_at: int
    """Epoch seconds after which the provider no longer accepts it."""


class _Answer(msgspec.Struct, kw_only=True):
    request_uri: str
    expires_in: Annotated[int, msgspec.Meta(gt=0)]


def use_par(config: ProviderConfig, metadata: ProviderMetadata) -> bool:
    """Whether a login of ``config`` pushes its authorization request.

    Raises:
        PushedAuthorizationUnavailableError: ``par="required"`` and the provider advertises no
            PAR endpoint, or the provider requires PAR and ``par="off"`` (or it requires PAR
            and publishes no endpoint).
    """
    endpoint = metadata.pushed_authorization_request_endpoint
    required = metadata.require_pushed_authorization_requests
    if config.par == "off":
        if required:
            msg = (
                f"provider {config.id!r} requires pushed authorization requests "
                "(require_pushed_authorization_requests) but par='off': set par='auto'"
            )
            raise PushedAuthorizationUnavailableError(msg)
        return False
    if endpoint is None and (config.par == "required" or required):
        msg = (
            f"provider {config.id!r} needs pushed authorization requests, but its metadata has "
            "no pushed_authorization_request_endpoint"
        )
        raise PushedAuthorizationUnavailableError(msg)
    return endpoint is not None


async def push(
    http: httpx.AsyncClient,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    params: Mapping[str, str],
    *,
    auth: tuple[dict[str, str], dict[str, str]],
    now: int,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - passed to rpkit._outbound.fetch
) -> PushedRequest:
    """POST the authorization ``params`` to the PAR endpoint with the client's authentication.

    Args:
        http: the application's pooled client.
        config: the provider.
        metadata: its validated metadata, with a ``pushed_authorization_request_endpoint``.
        params: the authorization request's parameters (never ``request_uri``, §2.1).
        auth: the ``(headers, form)`` of :func:`rpkit._client_auth.client_auth`.
        now: epoch seconds, for :attr:`PushedRequest.expires_at`.
        timeout: seconds the exchange may take in all.

    Raises:
        PushedAuthorizationError: a network failure, a redirect, a status other than 201, an
            OAuth error (``error`` set), or an answer without a usable ``request_uri`` or
            positive ``expires_in``.
    """
    endpoint = metadata.pushed_authorization_request_endpoint
    if endpoint is None:
        raise PushedAuthorizationUnavailableError("the provider has no PAR endpoint")
    headers, form = auth
    try:
        response = await fetch(
            http,
            "POST",
            endpoint,
            what="the PAR endpoint",
            max_bytes=MAX_PAR_RESPONSE_BYTES,
            timeout=timeout,
            data={**params, **form},
            headers={"Accept": "application/json", **headers},
        )
    except Refused as exc:
        raise _failed(config, exc.detail) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _failed(config, f"the PAR request failed: {type(exc).__name__}") from exc
    pushed = _read(config, response, now)
    get_logger(provider=config.id, issuer=config.issuer).info(
        "rpkit.par.pushed", expires_at=pushed.expires_at
    )
    return pushed


def _read(config: ProviderConfig, response: httpx.Response, now: int) -> PushedRequest:
    status = response.status_code

    def not_json() -> PushedAuthorizationError:
        return _failed(config, f"the PAR endpoint answered HTTP {status} with a body not JSON")

    document = decode_json(response.content, not_json)
    if not isinstance(document, dict):
        raise _failed(config, f"the PAR endpoint answered HTTP {status} with no JSON object")
    if status != 201 or "error" in document:
        raise _refused(config, status, document)
    try:
        answer = msgspec.convert(document, _Answer)
    except msgspec.ValidationError as exc:
        raise _failed(config, f"the PAR answer is malformed: {exc}") from exc
    if not _REQUEST_URI.fullmatch(answer.request_uri):
        raise _failed(config, "the PAR answer's request_uri is not a printable URI")
    lifetime = min(answer.expires_in, MAX_EXPIRES_IN)
    return PushedRequest(request_uri=answer.request_uri, expires_at=now + lifetime)


def _refused(
    config: ProviderConfig, status: int, document: dict[str, Any]
) -> PushedAuthorizationError:
    error = document.get("error")
    code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
    description = document.get("error_description")
    kept = description[:200] if isinstance(description, str) else None
    detail = f"the PAR endpoint answered HTTP {status}" + (f" {code!r}" if code else "")
    get_logger(provider=config.id, issuer=config.issuer).warning(
        "rpkit.par.refused", status=status, error=code
    )
    return PushedAuthorizationError(detail, error=code, description=kept)


def _failed(config: ProviderConfig, detail: str) -> PushedAuthorizationError:
    get_logger(provider=config.id, issuer=config.issuer).warning("rpkit.par.failed", detail=detail)
    return PushedAuthorizationError(detail)


def authorization_url(metadata: ProviderMetadata, client_id: str, pushed: PushedRequest) -> str:
    """The browser's redirect after a push (RFC 9126 §4): ``client_id`` and ``request_uri``
    only."""
    endpoint = metadata.authorization_endpoint
    query = urlencode({"client_id": client_id, "request_uri": pushed.request_uri})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
