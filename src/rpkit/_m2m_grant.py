"""The client-credentials request and the reading of its answer (RFC 6749 §4.4, §5).

:func:`post` sends one token request under rpkit's outbound policy; :func:`read` turns the answer
into a :class:`Grant` or the typed error its status and body call for. Nothing here caches or
logs: :mod:`rpkit.client_credentials` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import httpx

from rpkit._json import decode as decode_json
from rpkit._outbound import Refused, fetch
from rpkit.errors import (
    ClientCredentialsError,
    ClientCredentialsRefusedError,
    ClientCredentialsResponseError,
    ClientCredentialsUnavailableError,
)
from rpkit.tokens import MAX_DESCRIPTION_LENGTH

__all__ = ["MAX_LIFETIME", "TOKEN_CHARS", "Grant", "form", "post", "read"]

MAX_LIFETIME = 366 * 86400
"""The longest ``expires_in`` believed (a year); a longer one is refused as absurd."""
# An access token goes into an Authorization header: visible ASCII without spaces (a superset of
# RFC 6750 §2.1's b64token), so no answer can inject a header or break the request line.
TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,10}")
_TRANSIENT = frozenset({408, 429})
_BEARER = "bearer"


class Grant(NamedTuple):
    """A usable answer."""

    access_token: str
    lifetime: int
    """Seconds: ``expires_in``, or the provider's default when the answer had none."""
    scope: tuple[str, ...]
    """The answer's ``scope``, sorted; empty when it had none."""


def form(audience: str | None, resource: str | None, scopes: tuple[str, ...]) -> dict[str, str]:
    """The grant's form fields; ``scope``, ``resource`` and ``audience`` only when given."""
    fields = {"grant_type": "client_credentials"}
    if scopes:
        fields["scope"] = " ".join(scopes)
    if resource is not None:
        fields["resource"] = resource
    if audience is not None:
        fields["audience"] = audience
    return fields


async def post(
    http: httpx.AsyncClient,
    endpoint: str,
    fields: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    max_bytes: int,
    timeout: float,  # noqa: ASYNC109 - passed to rpkit._outbound.fetch
) -> httpx.Response:
    """One POST to the token endpoint, its answer read within the bounds.

    Raises:
        ClientCredentialsResponseError: a redirect, an oversized or compressed answer.
        ClientCredentialsUnavailableError: no answer (connection, timeout).
    """
    try:
        return await fetch(
            http,
            "POST",
            endpoint,
            what="the token endpoint",
            max_bytes=max_bytes,
            timeout=timeout,
            data=fields,
            headers={"Accept": "application/json", **headers},
        )
    except Refused as exc:
        raise ClientCredentialsResponseError(exc.detail, status=exc.status) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        detail = f"the token request failed: {type(exc).__name__}"
        raise ClientCredentialsUnavailableError(detail) from exc


def read(response: httpx.Response, default_lifetime: int) -> Grant:
    """The grant in a 200 answer.

    Raises:
        ClientCredentialsError: the refusal or failure the answer is (see :func:`_refusal`), or
            an unusable 200.
    """
    status = response.status_code
    document = _document(response.content)
    if status != 200 or (document is not None and "error" in document):
        raise _refusal(status, document or {})
    if document is None:
        msg = "the token endpoint answered HTTP 200 with a body that is not a JSON object"
        raise ClientCredentialsResponseError(msg, status=status)
    return _check(document, default_lifetime)


def _document(content: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None."""
    try:
        document = decode_json(content, ValueError)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _check(document: Mapping[str, Any], default_lifetime: int) -> Grant:
    """The access token, lifetime and granted scope of a 200 answer (RFC 6749 §5.1).

    Raises:
        ClientCredentialsResponseError: a member is missing, of the wrong type or absurd.
    """
    token = document.get("access_token")
    if not isinstance(token, str) or not TOKEN_CHARS.fullmatch(token):
        raise _unusable("has no access_token usable in an Authorization header")
    token_type = document.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != _BEARER:
        named = (
            token_type
            if isinstance(token_type, str) and _ERROR_CODE.fullmatch(token_type)
            else None
        )
        raise _unusable(f"has token_type {named!r}, not Bearer")
    lifetime = _lifetime(document.get("expires_in"), default_lifetime)
    scope = document.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise _unusable("has a scope that is not a string")
    return Grant(token, lifetime, tuple(sorted(set(scope.split()))) if scope else ())


def _lifetime(value: object, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if type(value) is not int or not 0 < value <= MAX_LIFETIME:
        raise _unusable(f"has an expires_in that is not 1 to {MAX_LIFETIME} seconds")
    return value


def _unusable(what: str) -> ClientCredentialsResponseError:
    return ClientCredentialsResponseError(f"the token response {what}", status=200)


def _refusal(status: int, document: Mapping[str, Any]) -> ClientCredentialsError:
    """The error for an error answer: a client error (4xx) or a transient one (5xx, 408, 429,
    anything else unexpected is an unusable answer)."""
    error = document.get("error")
    code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
    description = document.get("error_description")
    kept = description[:MAX_DESCRIPTION_LENGTH] if isinstance(description, str) else None
    detail = f"the token endpoint answered HTTP {status}" + (f" {code!r}" if code else "")
    if 400 <= status < 500 and status not in _TRANSIENT:
        kind: type[ClientCredentialsError] = ClientCredentialsRefusedError
    elif status >= 500 or status in _TRANSIENT:
        kind = ClientCredentialsUnavailableError
    else:
        kind = ClientCredentialsResponseError
    return kind(detail, status=status, error=code, description=kept)
